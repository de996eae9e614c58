//! Telemetry rendered from a [`firedrill_world::World`]: key signals, alert rules with Prometheus `for`
//! semantics, Prometheus-style metric series, structured logs, change history and traces.
//!
//! Nothing here stores telemetry tick by tick: series, log lines and spans are rendered from the world's frames
//! and events when they are read, so ticking stays cheap and the text is always consistent with the state.

pub mod alerts;
mod det;
pub mod duration;
pub mod key;
pub mod logs;
pub mod metrics;
pub mod traces;

pub use alerts::{AlertEngine, AlertRule, AlertRuleSpec, AlertState};
pub use key::KeyMetric;
pub use logs::{ChangeView, Level, LogOptions, LogRecord, audit_log, deploy_history};
pub use metrics::{MetricInfo, MetricKind, MetricSeries, PodNames, catalogue};
pub use traces::{Span, SpanKind, SpanStatus, Trace, find_trace, traces_at, traces_between};
