//! The one error type of the query language, for both of its forms.

use std::fmt;

use gantry_workflow::diagnostic::LineIndex;

/// Why a query (or a sort list) was refused.
///
/// An error in the text form carries the byte range it points at and its line and column; an
/// error in the JSON rule form carries the JSON path of the offending value (`rules[1].operator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    message: String,
    at: At,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum At {
    Text {
        span: (usize, usize),
        line: u32,
        column: u32,
    },
    Json(String),
}

impl QueryError {
    /// An error at `span` (a byte range) of `src`.
    pub(crate) fn text(src: &str, span: (usize, usize), message: impl Into<String>) -> Self {
        let lc = LineIndex::new(src).line_col(u32::try_from(span.0).unwrap_or(u32::MAX));
        QueryError {
            message: message.into(),
            at: At::Text {
                span,
                line: lc.line,
                column: lc.column,
            },
        }
    }

    /// An error at `path` of the JSON rule form (`""` for the whole value).
    pub(crate) fn json(path: &str, message: impl Into<String>) -> Self {
        QueryError {
            message: message.into(),
            at: At::Json(path.to_string()),
        }
    }

    /// What is wrong, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The byte range of the text the error points at (text form only).
    pub fn span(&self) -> Option<(usize, usize)> {
        match &self.at {
            At::Text { span, .. } => Some(*span),
            At::Json(_) => None,
        }
    }

    /// The 1-based line and column (in characters) where the error starts (text form only).
    pub fn line_column(&self) -> Option<(u32, u32)> {
        match &self.at {
            At::Text { line, column, .. } => Some((*line, *column)),
            At::Json(_) => None,
        }
    }

    /// The JSON path of the offending value (JSON form only); empty for the whole value.
    pub fn path(&self) -> Option<&str> {
        match &self.at {
            At::Json(p) => Some(p),
            At::Text { .. } => None,
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            At::Text { line, column, .. } => write!(f, "{line}:{column}: {}", self.message),
            At::Json(p) if p.is_empty() => f.write_str(&self.message),
            At::Json(p) => write!(f, "{p}: {}", self.message),
        }
    }
}

impl std::error::Error for QueryError {}
