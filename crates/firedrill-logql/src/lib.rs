//! A LogQL engine with Grafana Loki semantics, for firedrill's simulated observability stack.
//!
//! * [`parse`] turns a query into an [`Expr`]; errors carry the byte offset of the problem.
//! * [`Engine`] evaluates queries against any [`LogSource`] (the simulator implements it;
//!   [`MemLogSource`] is an in-memory one for tests) as range or instant queries.
//! * [`QueryResult::to_loki_data`] renders the `data` field of Loki's HTTP API.
//!
//! ```
//! use firedrill_logql::{Direction, Engine, MemLogSource};
//!
//! let mut src = MemLogSource::new();
//! let s = 1_000_000_000i64;
//! src.push_kv(&[("service", "api")], 10 * s, "level=error msg=timeout");
//! src.push_kv(&[("service", "api")], 20 * s, "level=info msg=ok");
//!
//! let logs = Engine::new()
//!     .query_range(&src, r#"{service="api"} | logfmt | level="error""#, 0, 60 * s, s, 100, Direction::Backward)
//!     .unwrap();
//! assert_eq!(logs.to_loki_data()["result"][0]["values"][0][1], "level=error msg=timeout");
//!
//! let counts = Engine::new()
//!     .query_instant(&src, r#"sum by (level) (count_over_time({service="api"} | logfmt [1m]))"#, 60 * s, 100, Direction::Backward)
//!     .unwrap();
//! assert_eq!(counts.to_loki_data()["resultType"], "vector");
//! ```
//!
//! All output is deterministic: streams and series are sorted by labels, and nothing depends on
//! hash-map iteration order. Work is capped by [`Limits`]; no input makes the engine panic.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
mod error;
mod eval;
mod lexer;
mod parser;
mod pipeline;
mod result;
mod source;
pub mod template;
mod units;

pub use ast::{Expr, LogExpr, MetricExpr};
pub use error::{LogqlError, SourceError};
pub use eval::{Direction, Engine, Limits, default_step_ns};
pub use parser::{MAX_QUERY_BYTES, parse, parse_selector};
pub use pipeline::{ERROR_DETAILS_LABEL, ERROR_LABEL};
pub use result::{QueryResult, Sample, Series, Stats, StreamResult, format_value, unix_seconds};
pub use source::{
    LogEntry, LogSource, LogStream, MatchOp, MemLogSource, StreamMatcher, matches_all,
};
