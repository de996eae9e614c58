//! The span model and the data seam between the search engine and whatever stores spans.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A 16-byte trace id.
pub type TraceId = [u8; 16];
/// An 8-byte span id.
pub type SpanId = [u8; 8];

/// OpenTelemetry span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    /// Handles an incoming request.
    Server,
    /// Makes an outgoing request.
    Client,
    /// In-process work.
    Internal,
    /// Sends a message.
    Producer,
    /// Receives a message.
    Consumer,
}

impl SpanKind {
    /// TraceQL spelling (`server`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
            Self::Internal => "internal",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }

    /// OTLP JSON enum name (`SPAN_KIND_SERVER`, ...).
    pub fn otlp_name(self) -> &'static str {
        match self {
            Self::Server => "SPAN_KIND_SERVER",
            Self::Client => "SPAN_KIND_CLIENT",
            Self::Internal => "SPAN_KIND_INTERNAL",
            Self::Producer => "SPAN_KIND_PRODUCER",
            Self::Consumer => "SPAN_KIND_CONSUMER",
        }
    }

    /// Parses the TraceQL spelling.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "server" => Self::Server,
            "client" => Self::Client,
            "internal" => Self::Internal,
            "producer" => Self::Producer,
            "consumer" => Self::Consumer,
            _ => return None,
        })
    }
}

/// OpenTelemetry span status code.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SpanStatus {
    /// Not set by the instrumentation.
    #[default]
    Unset,
    /// Explicitly OK.
    Ok,
    /// Failed.
    Error,
}

impl SpanStatus {
    /// TraceQL spelling (`unset`, `ok`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }

    /// Parses the TraceQL spelling.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "unset" => Self::Unset,
            "ok" => Self::Ok,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

/// A span attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// String.
    String(String),
    /// 64-bit integer.
    Int(i64),
    /// Double.
    Float(f64),
    /// Boolean.
    Bool(bool),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<i64> for AttrValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<f64> for AttrValue {
    fn from(x: f64) -> Self {
        Self::Float(x)
    }
}

impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

/// One span. `service` is the resource attribute `service.name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Trace this span belongs to.
    pub trace_id: TraceId,
    /// This span's id.
    pub span_id: SpanId,
    /// Parent span, `None` for a root.
    pub parent_span_id: Option<SpanId>,
    /// `service.name` of the emitting service.
    pub service: String,
    /// Operation name.
    pub name: String,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, Unix epoch nanoseconds.
    pub start_ns: i64,
    /// Duration in nanoseconds.
    pub duration_ns: i64,
    /// Status code.
    pub status: SpanStatus,
    /// Span attributes (sorted by key).
    pub attributes: BTreeMap<String, AttrValue>,
}

impl Span {
    /// End time, Unix epoch nanoseconds.
    pub fn end_ns(&self) -> i64 {
        self.start_ns.saturating_add(self.duration_ns)
    }
}

/// A trace: all spans sharing a trace id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Trace id.
    pub trace_id: TraceId,
    /// Spans in any order.
    pub spans: Vec<Span>,
}

impl Trace {
    /// The root span: the earliest span without a parent, if it has been received.
    pub fn root(&self) -> Option<&Span> {
        self.spans
            .iter()
            .filter(|s| s.parent_span_id.is_none())
            .min_by_key(|s| (s.start_ns, s.span_id))
    }

    /// Earliest span start (0 for an empty trace).
    pub fn start_ns(&self) -> i64 {
        self.spans.iter().map(|s| s.start_ns).min().unwrap_or(0)
    }

    /// Latest span end (0 for an empty trace).
    pub fn end_ns(&self) -> i64 {
        self.spans.iter().map(Span::end_ns).max().unwrap_or(0)
    }
}

/// Where search reads traces from. The simulator implements this over its world state.
pub trait TraceSource {
    /// The trace with this id, if known.
    fn trace(&self, id: &TraceId) -> Option<Trace>;

    /// Traces with at least one span starting in `[start_ns, end_ns)`, complete (all spans),
    /// in any order (search sorts its output itself).
    fn traces_in(&self, start_ns: i64, end_ns: i64) -> Vec<Trace>;
}

/// An in-memory [`TraceSource`] for tests and fixtures.
#[derive(Debug, Clone, Default)]
pub struct MemTraceSource {
    traces: BTreeMap<TraceId, Vec<Span>>,
}

impl MemTraceSource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a span to its trace.
    pub fn push(&mut self, span: Span) {
        self.traces.entry(span.trace_id).or_default().push(span);
    }

    /// Number of traces.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Whether the source holds no traces.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }
}

impl TraceSource for MemTraceSource {
    fn trace(&self, id: &TraceId) -> Option<Trace> {
        self.traces.get(id).map(|spans| Trace {
            trace_id: *id,
            spans: spans.clone(),
        })
    }

    fn traces_in(&self, start_ns: i64, end_ns: i64) -> Vec<Trace> {
        self.traces
            .iter()
            .filter(|(_, spans)| {
                spans
                    .iter()
                    .any(|s| s.start_ns >= start_ns && s.start_ns < end_ns)
            })
            .map(|(id, spans)| Trace {
                trace_id: *id,
                spans: spans.clone(),
            })
            .collect()
    }
}

/// Lower-case hex, the form Tempo uses in URLs and search results.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn parse_hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    let s = s.trim();
    if s.is_empty() || s.len() > out.len() * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Tempo accepts ids shorter than 32 hex digits and left-pads them with zeros.
    let padded = format!("{s:0>width$}", width = out.len() * 2);
    for (i, chunk) in padded.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(())
}

/// Parses a hex trace id (up to 32 digits, left-padded like Tempo does).
pub fn parse_trace_id(s: &str) -> Option<TraceId> {
    let mut id = [0u8; 16];
    parse_hex_into(s, &mut id).map(|()| id)
}

/// Parses a hex span id (up to 16 digits).
pub fn parse_span_id(s: &str) -> Option<SpanId> {
    let mut id = [0u8; 8];
    parse_hex_into(s, &mut id).map(|()| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids() {
        let id = parse_trace_id("2f3e0cee77ae5dc9c17ade3689eb2e54").unwrap();
        assert_eq!(to_hex(&id), "2f3e0cee77ae5dc9c17ade3689eb2e54");
        let short = parse_trace_id("d6e9329d67b6146a").unwrap();
        assert_eq!(to_hex(&short), "0000000000000000d6e9329d67b6146a");
        assert!(parse_trace_id("xyz").is_none());
        assert!(parse_trace_id("").is_none());
        assert!(parse_trace_id(&"a".repeat(33)).is_none());
        assert_eq!(
            to_hex(&parse_span_id("563d623c76514f8e").unwrap()),
            "563d623c76514f8e"
        );
    }
}
