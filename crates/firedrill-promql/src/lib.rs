//! A PromQL engine with Prometheus 3.x semantics for float samples, plus a runner for
//! Prometheus's `promqltest` conformance scripts.
//!
//! The engine reads data through the [`Storage`] trait so the simulator can plug in its own
//! store; [`MemStorage`] is a simple in-memory implementation.
//!
//! ```
//! use firedrill_promql::{Engine, EngineOptions, Labels, MemStorage, Value};
//!
//! let mut store = MemStorage::new();
//! let l = Labels::new([("__name__", "up"), ("job", "api")]);
//! for i in 0..10 {
//!     store.append(&l, i * 15_000, 1.0);
//! }
//! let engine = Engine::new(EngineOptions::default());
//! let v = engine.instant(&store, "sum by (job) (up)", 120_000).unwrap();
//! assert!(matches!(v, Value::Vector(ref s) if s.len() == 1));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod engine;
mod error;
mod hash;
mod labels;
mod position;
pub mod promqltest;
mod storage;
mod value;

pub use engine::plan::{EndsRead, InstantPlan, KeyedStorage, Window, WindowFacts};
pub use engine::util::almost_equal;
pub use engine::{Engine, EngineOptions, PreparedQuery, parse_query};
pub use error::QueryError;
pub use labels::{Label, LabelMatcher, Labels, METRIC_NAME, MatchOp};
pub use storage::{
    MemStorage, STALE_NAN_BITS, Sample, Series, SeriesRef, Storage, StorageError, is_stale_nan,
    stale_nan,
};
pub use value::{Value, format_value};

/// Re-export of the parser crate, so callers can inspect parsed expressions.
pub use promql_parser;
