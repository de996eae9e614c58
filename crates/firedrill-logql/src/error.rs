//! Error types shared by the parser, the engine and log sources.

/// An error reported by a [`crate::LogSource`] implementation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// Human-readable description of what went wrong in the source.
    pub message: String,
}

impl SourceError {
    /// Builds a source error from any displayable message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Everything that can go wrong when parsing or evaluating a LogQL query.
///
/// The variants map onto HTTP status codes the way Loki does it: every
/// variant except [`LogqlError::Source`] is the client's fault (400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LogqlError {
    /// The query text is not valid LogQL. `pos` is a byte offset into the query.
    #[error("parse error at position {pos}: {message}")]
    Parse {
        /// Byte offset of the offending token in the query string.
        pos: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// The query parsed but the request is invalid (bad time range, step, limit...).
    #[error("{0}")]
    InvalidRequest(String),
    /// The query would exceed one of the engine's [`crate::Limits`].
    #[error("{0}")]
    LimitExceeded(String),
    /// The query is valid but cannot be evaluated as asked (pipeline errors, matching errors).
    #[error("{0}")]
    Execution(String),
    /// The log source failed.
    #[error("log source error: {0}")]
    Source(#[from] SourceError),
}

impl LogqlError {
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

    /// Whether the error is caused by the request (HTTP 400) rather than by the backend (HTTP 500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Source(_))
    }
}
