//! The TraceQL [`TraceSource`] over a world: sampled traces regenerated on demand and converted to the span
//! model of `firedrill-traceql`.

use std::collections::BTreeMap;

use firedrill_telemetry::traces as tel;
use firedrill_traceql::{
    AttrValue, Span, SpanKind, SpanStatus, Trace, TraceId, TraceSource, parse_span_id,
    parse_trace_id, to_hex,
};
use firedrill_world::World;

/// Attributes the OpenTelemetry semantic conventions type as integers; the renderer writes every attribute as
/// text, and TraceQL compares `span.http.status_code >= 500` numerically only on integer values.
pub const INT_ATTRIBUTES: &[&str] = &[
    "http.status_code",
    "http.response.status_code",
    "http.request.resend_count",
    "db.client.connection.wait_ms",
    "server.port",
];

/// How far before a search window a trace's root may start and still have spans starting inside the window.
/// Traces are rendered per root; this margin bounds the extra ticks rendered. It exceeds every client timeout
/// times its retries in the built-in topologies.
pub const TRACE_START_MARGIN_MS: i64 = 2 * 60 * 1000;

/// A TraceQL [`TraceSource`] reading a [`World`]'s sampled traces.
#[derive(Debug, Clone, Copy)]
pub struct WorldTraces<'a> {
    world: &'a World,
}

impl<'a> WorldTraces<'a> {
    /// A trace source over `world`.
    pub fn new(world: &'a World) -> Self {
        WorldTraces { world }
    }
}

/// A rendered trace in the search engine's span model; spans whose ids do not parse are left out (the
/// renderer always writes valid ones).
pub fn convert_trace(t: &tel::Trace) -> Option<Trace> {
    let trace_id = parse_trace_id(&t.trace_id)?;
    let spans = t
        .spans
        .iter()
        .filter_map(|s| convert_span(trace_id, s))
        .collect();
    Some(Trace { trace_id, spans })
}

fn convert_span(trace_id: TraceId, s: &tel::Span) -> Option<Span> {
    let parent_span_id = match &s.parent_span_id {
        Some(p) => Some(parse_span_id(p)?),
        None => None,
    };
    let attributes: BTreeMap<String, AttrValue> = s
        .attributes
        .iter()
        .map(|(k, v)| {
            let value = match v.parse::<i64>() {
                Ok(i) if INT_ATTRIBUTES.contains(&k.as_str()) => AttrValue::Int(i),
                _ => AttrValue::String(v.clone()),
            };
            (k.clone(), value)
        })
        .collect();
    Some(Span {
        trace_id,
        span_id: parse_span_id(&s.span_id)?,
        parent_span_id,
        service: s.service.clone(),
        name: s.name.clone(),
        kind: match s.kind {
            tel::SpanKind::Server => SpanKind::Server,
            tel::SpanKind::Client => SpanKind::Client,
        },
        start_ns: s.start_ns,
        duration_ns: s.duration_ns,
        status: match s.status {
            tel::SpanStatus::Ok => SpanStatus::Ok,
            tel::SpanStatus::Error => SpanStatus::Error,
        },
        attributes,
    })
}

impl TraceSource for WorldTraces<'_> {
    fn trace(&self, id: &TraceId) -> Option<Trace> {
        tel::find_trace(self.world, &to_hex(id)).and_then(|t| convert_trace(&t))
    }

    fn traces_in(&self, start_ns: i64, end_ns: i64) -> Vec<Trace> {
        if end_ns <= start_ns {
            return Vec::new();
        }
        let start_ms = start_ns
            .div_euclid(1_000_000)
            .saturating_sub(TRACE_START_MARGIN_MS);
        let end_ms = end_ns.div_euclid(1_000_000).saturating_add(1);
        tel::traces_between(self.world, start_ms, end_ms, usize::MAX)
            .iter()
            .filter(|t| {
                t.spans
                    .iter()
                    .any(|s| s.start_ns >= start_ns && s.start_ns < end_ns)
            })
            .filter_map(convert_trace)
            .collect()
    }
}
