//! PromQL, LogQL and TraceQL over a simulated [`World`].
//!
//! The engines (`firedrill-promql`, `firedrill-logql`, `firedrill-traceql`) read data through small traits;
//! this crate implements them over a world, rendering telemetry from its frames and events only when a query
//! reads it:
//!
//! * [`WorldStorage`]: the PromQL `Storage` (metric families chosen by the selector's `__name__` matchers,
//!   staleness markers where a series stops being exported, the world's bounded retention);
//! * [`WorldLogs`]: the LogQL `LogSource` (streams by `namespace`, `service`, `pod`, `level`);
//! * [`WorldTraces`]: the TraceQL `TraceSource` (sampled traces, regenerated from their ids).
//!
//! The facade functions answer one query against a world: the typed ones ([`promql_instant`], [`logql`],
//! [`traceql_search`], [`trace`]...) return the engines' values, the `evaluate_*` / [`search_traces`] /
//! [`trace_by_id`] ones return the `data` object the Prometheus, Loki or Tempo HTTP API would send. Errors are
//! one [`QueryError`] carrying the byte position of parse errors.
//!
//! Times: PromQL takes Unix milliseconds, LogQL and TraceQL Unix nanoseconds, as their APIs' engines do.
//! [`now_ms`] is the world's current time; [`unix_ms`] converts simulated seconds since the world began.
//!
//! ```no_run
//! # fn demo(world: &firedrill_world::World) -> Result<(), firedrill_query::QueryError> {
//! use firedrill_query::*;
//! let now = now_ms(world);
//! let p99 = evaluate_promql_instant(
//!     world,
//!     "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m])))",
//!     now,
//! )?;
//! assert_eq!(p99["resultType"], "vector");
//! let levels = evaluate_logql(
//!     world,
//!     &LogSourceOptions::default(),
//!     r#"sum by (level) (count_over_time({service="order-service"} [10m]))"#,
//!     &LogqlRequest::instant(now * 1_000_000),
//! )?;
//! let hits = search_traces(world, "{ status = error }", (now - 3_600_000) * 1_000_000, now * 1_000_000, 20)?;
//! # Ok(()) }
//! ```
//!
//! Everything is deterministic: the world renders the same telemetry for the same state, and every result is
//! sorted by labels or ids.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod logs;
mod metrics;
mod traces;

use firedrill_logql::{Direction, Expr, QueryResult};
use firedrill_promql::{Engine, EngineOptions, Value};
use firedrill_traceql::{SearchOptions, SearchResponse, Trace, TraceSource};
use firedrill_world::World;
use serde_json::Value as Json;

pub use error::QueryError;
pub use logs::{LineFormat, LogSourceOptions, WorldLogs, stream_labels};
pub use metrics::{CachedWorldStorage, SeriesCache, WorldStorage};
pub use traces::{INT_ATTRIBUTES, TRACE_START_MARGIN_MS, WorldTraces, convert_trace};

/// Loki's default `limit` of log lines.
pub const DEFAULT_LOG_LIMIT: usize = 100;
/// How far back a log query "as of" a time looks: Grafana Explore's default range, one hour.
pub const DEFAULT_LOG_LOOKBACK_NS: i64 = 3_600 * 1_000_000_000;

/// Unix milliseconds of the world's current time: the timestamp of its latest samples.
pub fn now_ms(world: &World) -> i64 {
    firedrill_telemetry::metrics::tick_ms(world, world.tick_count())
}

/// Unix milliseconds of a simulated time given in seconds since the world began.
pub fn unix_ms(world: &World, world_s: f64) -> i64 {
    ((world.epoch_unix_s() as f64 + world_s) * 1000.0).round() as i64
}

/// Simulated seconds since the world began of a Unix time in milliseconds.
pub fn world_s(world: &World, unix_ms: i64) -> f64 {
    unix_ms as f64 / 1000.0 - world.epoch_unix_s() as f64
}

fn promql_engine() -> Engine {
    Engine::new(EngineOptions::default())
}

/// A PromQL instant query at `time_ms` (Prometheus `/api/v1/query`).
pub fn promql_instant(world: &World, query: &str, time_ms: i64) -> Result<Value, QueryError> {
    Ok(promql_engine().instant(&WorldStorage::new(world), query, time_ms)?)
}

/// A PromQL range query (Prometheus `/api/v1/query_range`): evaluated at `start_ms`, `start_ms + step_ms`, ...
/// up to `end_ms` inclusive.
pub fn promql_range(
    world: &World,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Value, QueryError> {
    Ok(promql_engine().range(&WorldStorage::new(world), query, start_ms, end_ms, step_ms)?)
}

/// The `data` object of Prometheus's `/api/v1/query` for a query at `time_ms`.
pub fn evaluate_promql_instant(
    world: &World,
    query: &str,
    time_ms: i64,
) -> Result<Json, QueryError> {
    promql_instant(world, query, time_ms).map(|v| v.to_prometheus_data())
}

/// The `data` object of Prometheus's `/api/v1/query_range`.
pub fn evaluate_promql_range(
    world: &World,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Json, QueryError> {
    promql_range(world, query, start_ms, end_ms, step_ms).map(|v| v.to_prometheus_data())
}

/// When a LogQL query is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogqlWindow {
    /// Loki's `/query` at a time: metric queries only (log queries are an error, as in Loki 3).
    Instant {
        /// Evaluation time, Unix ns.
        time_ns: i64,
    },
    /// Loki's `/query_range`: log lines in `[start_ns, end_ns)`, or a metric query at each step.
    Range {
        /// Start, Unix ns.
        start_ns: i64,
        /// End, Unix ns.
        end_ns: i64,
        /// Step of metric queries; `None` is Loki's default (about 250 points).
        step_ns: Option<i64>,
    },
    /// What an investigator means by "now": a metric query is an instant query at `time_ns`; a log query
    /// returns the lines of the `lookback_ns` up to and including `time_ns`.
    AsOf {
        /// The time, Unix ns.
        time_ns: i64,
        /// How far back log queries look.
        lookback_ns: i64,
    },
}

/// A LogQL request: when, how many lines, in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogqlRequest {
    /// When.
    pub window: LogqlWindow,
    /// Most log lines returned (log queries only).
    pub limit: usize,
    /// Order of log lines (log queries only).
    pub direction: Direction,
}

impl LogqlRequest {
    /// An instant request with Loki's defaults (limit 100, newest first).
    pub fn instant(time_ns: i64) -> Self {
        Self::with_window(LogqlWindow::Instant { time_ns })
    }

    /// A range request with Loki's defaults.
    pub fn range(start_ns: i64, end_ns: i64, step_ns: Option<i64>) -> Self {
        Self::with_window(LogqlWindow::Range {
            start_ns,
            end_ns,
            step_ns,
        })
    }

    /// An "as of" request ([`LogqlWindow::AsOf`]) looking back [`DEFAULT_LOG_LOOKBACK_NS`] for log queries.
    pub fn as_of(time_ns: i64) -> Self {
        Self::with_window(LogqlWindow::AsOf {
            time_ns,
            lookback_ns: DEFAULT_LOG_LOOKBACK_NS,
        })
    }

    fn with_window(window: LogqlWindow) -> Self {
        LogqlRequest {
            window,
            limit: DEFAULT_LOG_LIMIT,
            direction: Direction::Backward,
        }
    }
}

/// Checks that a PromQL query parses (and type-checks), without evaluating it.
pub fn check_promql(query: &str) -> Result<(), QueryError> {
    firedrill_promql::parse_query(query)?;
    Ok(())
}

/// Checks that a LogQL query parses, without evaluating it.
pub fn check_logql(query: &str) -> Result<(), QueryError> {
    firedrill_logql::parse(query)?;
    Ok(())
}

/// Checks that a TraceQL query parses, without searching.
pub fn check_traceql(query: &str) -> Result<(), QueryError> {
    firedrill_traceql::parse(query)?;
    Ok(())
}

/// Checks that a trace id is well formed (1 to 32 hex digits), without looking it up.
pub fn check_trace_id(id: &str) -> Result<(), QueryError> {
    firedrill_traceql::parse_trace_id(id)
        .map(|_| ())
        .ok_or_else(|| QueryError::InvalidTraceId { id: id.to_string() })
}

/// Whether a LogQL query is a log query (returns lines) rather than a metric query (returns numbers).
pub fn logql_is_log_query(query: &str) -> Result<bool, QueryError> {
    Ok(matches!(firedrill_logql::parse(query)?, Expr::Log(_)))
}

/// A LogQL query against the world's logs.
pub fn logql(
    world: &World,
    logs: &LogSourceOptions,
    query: &str,
    request: &LogqlRequest,
) -> Result<QueryResult, QueryError> {
    let src = WorldLogs::new(world, *logs);
    let engine = firedrill_logql::Engine::new();
    let expr = firedrill_logql::parse(query)?;
    let (limit, dir) = (request.limit, request.direction);
    let range = |start_ns: i64, end_ns: i64, step_ns: Option<i64>| {
        let step = step_ns.unwrap_or_else(|| firedrill_logql::default_step_ns(start_ns, end_ns));
        engine.eval_range(&src, &expr, start_ns, end_ns, step, limit, dir)
    };
    let r = match request.window {
        LogqlWindow::Instant { time_ns } => engine.eval_instant(&src, &expr, time_ns, limit, dir),
        LogqlWindow::Range {
            start_ns,
            end_ns,
            step_ns,
        } => range(start_ns, end_ns, step_ns),
        LogqlWindow::AsOf {
            time_ns,
            lookback_ns,
        } => match expr {
            // The range's end is exclusive; a line stamped exactly at `time_ns` belongs to "as of".
            Expr::Log(_) => range(
                time_ns.saturating_sub(lookback_ns.max(0)),
                time_ns.saturating_add(1),
                None,
            ),
            Expr::Metric(_) => engine.eval_instant(&src, &expr, time_ns, limit, dir),
        },
    };
    Ok(r?)
}

/// The `data` object of Loki's `/query` or `/query_range` (`resultType`, `result`, `stats`).
pub fn evaluate_logql(
    world: &World,
    logs: &LogSourceOptions,
    query: &str,
    request: &LogqlRequest,
) -> Result<Json, QueryError> {
    logql(world, logs, query, request).map(|r| r.to_loki_data())
}

/// A TraceQL search over traces with spans starting in `[opts.start_ns, opts.end_ns)`, newest first.
pub fn traceql_search(
    world: &World,
    query: &str,
    opts: &SearchOptions,
) -> Result<SearchResponse, QueryError> {
    Ok(firedrill_traceql::search_with(
        &WorldTraces::new(world),
        query,
        opts,
    )?)
}

/// The body of Tempo's `/api/search` for a TraceQL query over `[start_ns, end_ns)` (`limit` 0: Tempo's 20).
pub fn search_traces(
    world: &World,
    query: &str,
    start_ns: i64,
    end_ns: i64,
    limit: usize,
) -> Result<Json, QueryError> {
    let mut opts = SearchOptions::new(start_ns, end_ns);
    opts.limit = limit;
    traceql_search(world, query, &opts).map(|r| r.to_json())
}

/// The trace with this id (1 to 32 hex digits, left-padded like Tempo does).
pub fn trace(world: &World, id: &str) -> Result<Trace, QueryError> {
    let parsed = firedrill_traceql::parse_trace_id(id)
        .ok_or_else(|| QueryError::InvalidTraceId { id: id.to_string() })?;
    WorldTraces::new(world)
        .trace(&parsed)
        .ok_or_else(|| QueryError::TraceNotFound { id: id.to_string() })
}

/// The body of Tempo's `/api/traces/{id}` (OTLP JSON with `batches`, hex ids).
pub fn trace_by_id(world: &World, id: &str) -> Result<Json, QueryError> {
    trace(world, id).map(|t| firedrill_traceql::trace_to_tempo_json(&t))
}
