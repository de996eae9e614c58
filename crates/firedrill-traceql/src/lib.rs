//! Spans, traces, a TraceQL search subset and the JSON shapes Tempo serves, for firedrill.
//!
//! * The model: [`Span`], [`Trace`], and the [`TraceSource`] seam the simulator implements
//!   ([`MemTraceSource`] is an in-memory one).
//! * [`search`] runs a TraceQL query (spanset filters on intrinsics and attributes, combined
//!   with `&&`/`||`; see [`query`] for the grammar) and returns Tempo search hits.
//! * [`to_tempo_search_json`] and [`trace_to_tempo_json`] render `/api/search` and
//!   `/api/traces/{id}` bodies.
//!
//! ```
//! use firedrill_traceql::*;
//! use std::collections::BTreeMap;
//!
//! let mut src = MemTraceSource::new();
//! src.push(Span {
//!     trace_id: parse_trace_id("2f3e0cee77ae5dc9c17ade3689eb2e54").unwrap(),
//!     span_id: parse_span_id("563d623c76514f8e").unwrap(),
//!     parent_span_id: None,
//!     service: "checkout".into(),
//!     name: "POST /pay".into(),
//!     kind: SpanKind::Server,
//!     start_ns: 1_000_000_000,
//!     duration_ns: 700_000_000,
//!     status: SpanStatus::Error,
//!     attributes: BTreeMap::from([("http.status_code".to_owned(), AttrValue::Int(502))]),
//! });
//! let hits = search(&src, r#"{ .service.name = "checkout" && duration > 500ms }"#, 0, 2_000_000_000, 20).unwrap();
//! assert_eq!(to_tempo_search_json(&hits)["traces"][0]["rootTraceName"], "POST /pay");
//! ```
//!
//! Output is deterministic: hits newest first then by trace id, batches by service, spans by
//! start time then span id. No input makes the parser or search panic; work is capped.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod model;
pub mod query;
mod search;

pub use error::TraceqlError;
pub use model::{
    AttrValue, MemTraceSource, Span, SpanId, SpanKind, SpanStatus, Trace, TraceId, TraceSource,
    parse_span_id, parse_trace_id, to_hex,
};
pub use query::{Query, parse};
pub use search::{
    DEFAULT_LIMIT, DEFAULT_SPSS, IdEncoding, SearchMetrics, SearchOptions, SearchResponse,
    ServiceStats, SpanSet, SpanSummary, TraceSummary, otlp_value, search, search_parsed,
    search_with, to_tempo_search_json, trace_to_tempo_json, trace_to_tempo_json_with,
};
