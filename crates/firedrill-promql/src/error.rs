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

    /// For a parse error with a position: its 1-based line and column in `query`, the text that was
    /// parsed. Columns count characters, not bytes.
    pub fn line_column(&self, query: &str) -> Option<(usize, usize)> {
        match self {
            QueryError::Parse {
                position: Some(p), ..
            } => Some(line_column(query, *p)),
            _ => None,
        }
    }
}

/// 1-based line and column (in characters) of byte offset `offset` in `text`; an offset past the end is
/// the end.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("abc", 3), (1, 4));
        assert_eq!(line_column("a\nbc", 3), (2, 2));
        assert_eq!(line_column("a\n\nc", 3), (3, 1));
        assert_eq!(line_column("é + x", 5), (1, 5));
        assert_eq!(line_column("é", 1), (1, 1));
        assert_eq!(line_column("ab", 99), (1, 3));
    }
}
