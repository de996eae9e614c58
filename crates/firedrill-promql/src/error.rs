//! Query errors.

use crate::storage::StorageError;

/// Everything that can go wrong while parsing or evaluating a query.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query text is not valid PromQL.
    #[error("parse error{}: {message}", position.map(|p| format!(" at position {p}")).unwrap_or_default())]
    Parse {
        /// Parser message.
        message: String,
        /// Byte offset of the offending input when it could be determined.
        position: Option<usize>,
    },
    /// The query parameters (times, step) are unusable.
    #[error("bad query parameters: {0}")]
    BadParameters(String),
    /// Evaluation failed (type errors found late, matching errors, duplicate label sets...).
    #[error("{0}")]
    Execution(String),
    /// The query would touch more samples than allowed.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl QueryError {
    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        QueryError::Execution(msg.into())
    }
}
