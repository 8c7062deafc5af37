use std::ops::Range;

/// A syntax error. `span` is a byte range into the string given to the parse function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (bytes {}..{})", span.start, span.end)]
pub struct ParseError {
    /// Stable `snake_case` code, e.g. `unterminated_template`, `unexpected_token`, `too_deep`.
    pub code: &'static str,
    pub message: String,
    pub span: Range<usize>,
}

impl ParseError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>, span: Range<usize>) -> Self {
        ParseError {
            code,
            message: message.into(),
            span,
        }
    }
}

/// An evaluation error. Messages quote expression source text only, never evaluated values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// Stable `snake_case` code, e.g. `path_not_found`, `type_mismatch`, `function_arity`.
    pub code: &'static str,
    pub message: String,
    /// Location inside the evaluated value, e.g. `spec.items[2]`; empty for the value itself.
    pub path: String,
}

impl EvalError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        EvalError {
            code,
            message: message.into(),
            path: String::new(),
        }
    }
}
