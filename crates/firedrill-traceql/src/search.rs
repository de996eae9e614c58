//! Trace search and the JSON shapes of Tempo's `/api/search` and `/api/traces/{id}`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::TraceqlError;
use crate::model::{AttrValue, Span, SpanStatus, Trace, TraceSource, to_hex};
use crate::query::{Query, TraceCtx, eval, field_attr, parse, referenced_fields};

/// Tempo's default number of traces returned.
pub const DEFAULT_LIMIT: usize = 20;
/// Tempo's default spans per spanset (`spss`).
pub const DEFAULT_SPSS: usize = 3;

/// Search parameters beyond the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchOptions {
    /// Start of the time range, Unix ns (inclusive).
    pub start_ns: i64,
    /// End of the time range, Unix ns (exclusive).
    pub end_ns: i64,
    /// Most traces returned; 0 means [`DEFAULT_LIMIT`].
    pub limit: usize,
    /// Most spans listed per spanset; 0 means [`DEFAULT_SPSS`].
    pub spss: usize,
    /// Cap on spans inspected; exceeding it is an error.
    pub max_inspected_spans: usize,
}

impl SearchOptions {
    /// Options for a time range with Tempo's defaults.
    pub fn new(start_ns: i64, end_ns: i64) -> Self {
        Self {
            start_ns,
            end_ns,
            limit: DEFAULT_LIMIT,
            spss: DEFAULT_SPSS,
            max_inspected_spans: 5_000_000,
        }
    }
}

/// A matched span as listed in a search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanSummary {
    /// Hex span id.
    pub span_id: String,
    /// Span name.
    pub name: String,
    /// Start, Unix ns.
    pub start_ns: i64,
    /// Duration, ns.
    pub duration_ns: i64,
    /// Values of the fields the query compared, in query order.
    pub attributes: Vec<(String, AttrValue)>,
}

/// Matched spans of one trace (at most `spss` listed; `matched` counts all).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanSet {
    /// Listed spans, by start time.
    pub spans: Vec<SpanSummary>,
    /// Total number of matching spans.
    pub matched: usize,
}

/// Per-service span counts of a trace (Tempo's `serviceStats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceStats {
    /// Spans of this service in the trace.
    pub span_count: u64,
    /// Of which with error status.
    pub error_count: u64,
}

/// One hit of a trace search: Tempo's `TraceSearchMetadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// Hex trace id.
    pub trace_id: String,
    /// Root span's service (`<root span not yet received>` when there is no root).
    pub root_service_name: String,
    /// Root span's name.
    pub root_trace_name: String,
    /// Earliest span start, Unix ns.
    pub start_ns: i64,
    /// Trace duration in whole milliseconds.
    pub duration_ms: u64,
    /// Matched spans.
    pub span_sets: Vec<SpanSet>,
    /// Span counts per service.
    pub service_stats: BTreeMap<String, ServiceStats>,
}

/// Work counters of a search (Tempo's `metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchMetrics {
    /// Traces looked at.
    pub inspected_traces: u64,
    /// Spans looked at.
    pub inspected_spans: u64,
}

/// Search hits plus work counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchResponse {
    /// Hits, newest first.
    pub traces: Vec<TraceSummary>,
    /// Work counters.
    pub metrics: SearchMetrics,
}

impl SearchResponse {
    /// Tempo's `/api/search` body.
    pub fn to_json(&self) -> Value {
        json!({
            "traces": self.traces.iter().map(TraceSummary::to_json).collect::<Vec<_>>(),
            "metrics": {
                "inspectedTraces": self.metrics.inspected_traces,
                "inspectedSpans": self.metrics.inspected_spans.to_string(),
                "inspectedBytes": "0",
                "totalBlocks": 0,
                "completedJobs": 1,
                "totalJobs": 1
            }
        })
    }
}

/// OTLP JSON `AnyValue` (int64 as a string, as protobuf JSON requires).
pub fn otlp_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::String(s) => json!({ "stringValue": s }),
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => json!({ "doubleValue": n }),
            // JSON has no NaN/Inf; protobuf JSON spells them as strings.
            None => {
                json!({ "doubleValue": if f.is_nan() { "NaN" } else if *f > 0.0 { "Infinity" } else { "-Infinity" } })
            }
        },
        AttrValue::Bool(b) => json!({ "boolValue": b }),
    }
}

fn kv(key: &str, v: &AttrValue) -> Value {
    json!({ "key": key, "value": otlp_value(v) })
}

impl SpanSet {
    fn to_json(&self) -> Value {
        json!({
            "spans": self.spans.iter().map(|s| json!({
                "spanID": s.span_id,
                "name": s.name,
                "startTimeUnixNano": s.start_ns.to_string(),
                "durationNanos": s.duration_ns.to_string(),
                "attributes": s.attributes.iter().map(|(k, v)| kv(k, v)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "matched": self.matched,
        })
    }
}

impl TraceSummary {
    /// One element of Tempo's `traces` array.
    pub fn to_json(&self) -> Value {
        let mut stats = serde_json::Map::new();
        for (svc, st) in &self.service_stats {
            let mut o = serde_json::Map::new();
            o.insert("spanCount".into(), json!(st.span_count));
            // Protobuf JSON omits zero values.
            if st.error_count > 0 {
                o.insert("errorCount".into(), json!(st.error_count));
            }
            stats.insert(svc.clone(), Value::Object(o));
        }
        let sets: Vec<Value> = self.span_sets.iter().map(SpanSet::to_json).collect();
        let mut o = json!({
            "traceID": self.trace_id,
            "rootServiceName": self.root_service_name,
            "rootTraceName": self.root_trace_name,
            "startTimeUnixNano": self.start_ns.to_string(),
            "durationMs": self.duration_ms,
            "spanSets": sets,
            "serviceStats": stats,
        });
        // Older Grafana versions read the deprecated single `spanSet`; Tempo still sends it.
        if let (Some(first), Value::Object(m)) = (sets.first(), &mut o) {
            m.insert("spanSet".into(), first.clone());
        }
        o
    }
}

/// Tempo's `/api/search` body for a list of hits.
pub fn to_tempo_search_json(traces: &[TraceSummary]) -> Value {
    SearchResponse {
        traces: traces.to_vec(),
        metrics: SearchMetrics {
            inspected_traces: traces.len() as u64,
            inspected_spans: 0,
        },
    }
    .to_json()
}

/// Runs a TraceQL search over traces with spans starting in `[start_ns, end_ns)`.
/// Hits are ordered newest first (then by trace id); `limit` 0 means Tempo's default of 20.
pub fn search(
    src: &dyn TraceSource,
    query: &str,
    start_ns: i64,
    end_ns: i64,
    limit: usize,
) -> Result<Vec<TraceSummary>, TraceqlError> {
    let mut opts = SearchOptions::new(start_ns, end_ns);
    opts.limit = limit;
    search_with(src, query, &opts).map(|r| r.traces)
}

/// [`search`] with all options, returning work counters too.
pub fn search_with(
    src: &dyn TraceSource,
    query: &str,
    opts: &SearchOptions,
) -> Result<SearchResponse, TraceqlError> {
    let q = parse(query)?;
    search_parsed(src, &q, opts)
}

/// [`search_with`] for an already parsed query.
pub fn search_parsed(
    src: &dyn TraceSource,
    q: &Query,
    opts: &SearchOptions,
) -> Result<SearchResponse, TraceqlError> {
    if opts.end_ns < opts.start_ns {
        return Err(TraceqlError::InvalidRequest(
            "invalid time range: end is before start".into(),
        ));
    }
    let limit = if opts.limit == 0 {
        DEFAULT_LIMIT
    } else {
        opts.limit
    };
    let spss = if opts.spss == 0 {
        DEFAULT_SPSS
    } else {
        opts.spss
    };
    let fields = referenced_fields(q);
    let mut metrics = SearchMetrics::default();
    let mut hits = Vec::new();
    for trace in src.traces_in(opts.start_ns, opts.end_ns) {
        metrics.inspected_traces += 1;
        metrics.inspected_spans += trace.spans.len() as u64;
        if metrics.inspected_spans > opts.max_inspected_spans as u64 {
            return Err(TraceqlError::LimitExceeded(format!(
                "the search would inspect more than {} spans; narrow the time range",
                opts.max_inspected_spans
            )));
        }
        let ctx = TraceCtx::new(&trace);
        let Some(matched) = eval(q, &trace, &ctx) else {
            continue;
        };
        hits.push(summarize(&trace, &ctx, &matched, &fields, spss));
    }
    hits.sort_by(|a, b| {
        b.start_ns
            .cmp(&a.start_ns)
            .then_with(|| a.trace_id.cmp(&b.trace_id))
    });
    hits.truncate(limit);
    Ok(SearchResponse {
        traces: hits,
        metrics,
    })
}

fn summarize(
    trace: &Trace,
    ctx: &TraceCtx<'_>,
    matched: &[usize],
    fields: &[crate::query::Field],
    spss: usize,
) -> TraceSummary {
    let mut spans: Vec<&Span> = matched.iter().filter_map(|&i| trace.spans.get(i)).collect();
    spans.sort_by_key(|s| (s.start_ns, s.span_id));
    let listed = spans
        .iter()
        .take(spss)
        .map(|s| SpanSummary {
            span_id: to_hex(&s.span_id),
            name: s.name.clone(),
            start_ns: s.start_ns,
            duration_ns: s.duration_ns,
            attributes: fields
                .iter()
                .filter(|f| !matches!(f, crate::query::Field::Name | crate::query::Field::Duration))
                .filter_map(|f| field_attr(f, s, ctx).map(|v| (f.key().to_owned(), v)))
                .collect(),
        })
        .collect();
    let mut service_stats: BTreeMap<String, ServiceStats> = BTreeMap::new();
    for s in &trace.spans {
        let st = service_stats.entry(s.service.clone()).or_default();
        st.span_count += 1;
        if s.status == SpanStatus::Error {
            st.error_count += 1;
        }
    }
    let start = trace.start_ns();
    TraceSummary {
        trace_id: to_hex(&trace.trace_id),
        root_service_name: ctx.root.map_or_else(
            || "<root span not yet received>".to_owned(),
            |r| r.service.clone(),
        ),
        root_trace_name: ctx.root.map(|r| r.name.clone()).unwrap_or_default(),
        start_ns: start,
        duration_ms: u64::try_from(trace.end_ns().saturating_sub(start) / 1_000_000).unwrap_or(0),
        span_sets: vec![SpanSet {
            spans: listed,
            matched: spans.len(),
        }],
        service_stats,
    }
}

/// How ids are written in trace JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdEncoding {
    /// Lower-case hex, as OTLP/JSON specifies.
    #[default]
    Hex,
    /// Standard base64, as protobuf's generic JSON mapping of `bytes` (and some Tempo versions) write.
    Base64,
}

fn encode_id(bytes: &[u8], enc: IdEncoding) -> String {
    match enc {
        IdEncoding::Hex => to_hex(bytes),
        IdEncoding::Base64 => base64(bytes),
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Tempo's `/api/traces/{id}` JSON (OTLP shape with top-level `batches`), ids in hex.
pub fn trace_to_tempo_json(trace: &Trace) -> Value {
    trace_to_tempo_json_with(trace, IdEncoding::Hex)
}

/// [`trace_to_tempo_json`] with a choice of id encoding.
///
/// One batch per service (sorted by name), spans sorted by start time then span id.
pub fn trace_to_tempo_json_with(trace: &Trace, enc: IdEncoding) -> Value {
    let mut by_service: BTreeMap<&str, Vec<&Span>> = BTreeMap::new();
    for s in &trace.spans {
        by_service.entry(&s.service).or_default().push(s);
    }
    let batches: Vec<Value> = by_service
        .into_iter()
        .map(|(svc, mut spans)| {
            spans.sort_by_key(|s| (s.start_ns, s.span_id));
            let spans: Vec<Value> = spans
                .into_iter()
                .map(|s| {
                    let mut o = serde_json::Map::new();
                    o.insert("traceId".into(), json!(encode_id(&s.trace_id, enc)));
                    o.insert("spanId".into(), json!(encode_id(&s.span_id, enc)));
                    if let Some(p) = s.parent_span_id {
                        o.insert("parentSpanId".into(), json!(encode_id(&p, enc)));
                    }
                    o.insert("name".into(), json!(s.name));
                    o.insert("kind".into(), json!(s.kind.otlp_name()));
                    o.insert("startTimeUnixNano".into(), json!(s.start_ns.to_string()));
                    o.insert("endTimeUnixNano".into(), json!(s.end_ns().to_string()));
                    o.insert(
                        "attributes".into(),
                        Value::Array(s.attributes.iter().map(|(k, v)| kv(k, v)).collect()),
                    );
                    // Protobuf JSON omits the default (UNSET) code.
                    let status = match s.status {
                        SpanStatus::Unset => json!({}),
                        SpanStatus::Ok => json!({ "code": "STATUS_CODE_OK" }),
                        SpanStatus::Error => json!({ "code": "STATUS_CODE_ERROR" }),
                    };
                    o.insert("status".into(), status);
                    Value::Object(o)
                })
                .collect();
            json!({
                "resource": {
                    "attributes": [kv("service.name", &AttrValue::String(svc.to_owned()))]
                },
                "scopeSpans": [{
                    "scope": { "name": "firedrill" },
                    "spans": spans
                }]
            })
        })
        .collect();
    json!({ "batches": batches })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff; 8]), "//////////8=");
    }

    #[test]
    fn otlp_values() {
        assert_eq!(otlp_value(&AttrValue::Int(200)), json!({"intValue": "200"}));
        assert_eq!(
            otlp_value(&AttrValue::Float(0.5)),
            json!({"doubleValue": 0.5})
        );
        assert_eq!(
            otlp_value(&AttrValue::Bool(true)),
            json!({"boolValue": true})
        );
        assert_eq!(otlp_value(&"x".into()), json!({"stringValue": "x"}));
        assert_eq!(
            otlp_value(&AttrValue::Float(f64::NAN)),
            json!({"doubleValue": "NaN"})
        );
    }
}
