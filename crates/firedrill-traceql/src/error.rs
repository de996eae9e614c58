//! Errors.

/// Everything that can go wrong in a TraceQL search.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceqlError {
    /// The query is not valid (for this subset of) TraceQL. `pos` is a byte offset.
    #[error("parse error at position {pos}: {message}")]
    Parse {
        /// Byte offset of the offending token.
        pos: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// The request is invalid (time range, limits).
    #[error("{0}")]
    InvalidRequest(String),
    /// The search would exceed a work cap.
    #[error("{0}")]
    LimitExceeded(String),
}

impl TraceqlError {
    pub(crate) fn parse(pos: usize, message: impl Into<String>) -> Self {
        Self::Parse {
            pos,
            message: message.into(),
        }
    }

    /// Byte offset of a parse error, if this is one.
    pub fn position(&self) -> Option<usize> {
        match self {
            Self::Parse { pos, .. } => Some(*pos),
            _ => None,
        }
    }
}
