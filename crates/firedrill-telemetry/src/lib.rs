//! Telemetry rendered from a [`firedrill_world::World`]: key signals, Prometheus-style metric series,
//! structured logs, change history and traces (alert rules are PromQL, in `firedrill-alerting`).
//!
//! Nothing here stores telemetry tick by tick: series, log lines and spans are rendered from the world's frames
//! and events when they are read, so ticking stays cheap and the text is always consistent with the state.

mod det;
pub mod duration;
pub mod key;
pub mod logs;
pub mod metrics;
pub mod traces;

pub use key::{Comparison, KeyMetric};
pub use logs::{ChangeView, Level, LogOptions, LogRecord, audit_log, deploy_history};
pub use metrics::{MetricInfo, MetricKind, MetricSeries, PodNames, catalogue};
pub use traces::{
    Span, SpanDetail, SpanKind, SpanStatus, ThroughQuery, Trace, TraceOutline, build_traces,
    find_trace, newest_through, outlines_between, traces_at, traces_between,
};
