//! One error type for the three query languages.

use firedrill_logql::LogqlError;
use firedrill_traceql::TraceqlError;

/// Why a query could not be answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// A PromQL query failed to parse or evaluate.
    #[error("PromQL {0}")]
    Promql(#[from] firedrill_promql::QueryError),
    /// A LogQL query failed to parse or evaluate.
    #[error("LogQL {0}")]
    Logql(#[from] LogqlError),
    /// A TraceQL search failed to parse or evaluate.
    #[error("TraceQL {0}")]
    Traceql(#[from] TraceqlError),
    /// A trace id that is not 1 to 32 hexadecimal digits.
    #[error("invalid trace id {id:?}: expected 1 to 32 hexadecimal digits")]
    InvalidTraceId {
        /// The id as given.
        id: String,
    },
    /// A well-formed trace id this world never sampled, or whose tick is no longer retained.
    #[error("trace {id} not found")]
    TraceNotFound {
        /// The id as given.
        id: String,
    },
}

impl QueryError {
    /// Byte offset in the query of a parse error, when the parser could tell.
    pub fn position(&self) -> Option<usize> {
        match self {
            QueryError::Promql(firedrill_promql::QueryError::Parse { position, .. }) => *position,
            QueryError::Logql(e) => e.position(),
            QueryError::Traceql(e) => e.position(),
            _ => None,
        }
    }

    /// Whether the query text itself is malformed (as opposed to valid but not answerable).
    pub fn is_parse_error(&self) -> bool {
        matches!(
            self,
            QueryError::Promql(firedrill_promql::QueryError::Parse { .. })
                | QueryError::Logql(LogqlError::Parse { .. })
                | QueryError::Traceql(TraceqlError::Parse { .. })
                | QueryError::InvalidTraceId { .. }
        )
    }

    /// The Prometheus API's `errorType` for this error: `bad_data` for malformed input, `execution` for a query
    /// that cannot be evaluated, `not_found` for an unknown trace.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Promql(firedrill_promql::QueryError::Parse { .. })
            | QueryError::Promql(firedrill_promql::QueryError::BadParameters(_))
            | QueryError::Logql(LogqlError::Parse { .. } | LogqlError::InvalidRequest(_))
            | QueryError::Traceql(TraceqlError::Parse { .. } | TraceqlError::InvalidRequest(_))
            | QueryError::InvalidTraceId { .. } => "bad_data",
            QueryError::TraceNotFound { .. } => "not_found",
            _ => "execution",
        }
    }
}
