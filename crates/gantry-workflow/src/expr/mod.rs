//! Relay's expression language: `${…}` templates, the 13-function library and the evaluation of
//! Gantry's canonical JSON form (tags such as `{"$type":"Output",…}`, `{"$fn.name": …}` and
//! `{"$encoding":"base64",…}`) against the data of one run.
//!
//! This module owns parsing (with byte-offset spans into the original string), static analysis
//! (which data paths and functions a template uses) and pure evaluation.
//! It must not do I/O, read the system clock (`now()` reads [`Data::now`]), block, or wait for
//! data: a reference to data that does not exist yet is reported in [`Unresolved`] and the caller
//! decides whether to retry.
//! It must never panic or recurse without bound on user input: nesting is capped at
//! [`MAX_NESTING`] levels and reported as a [`ParseError`].
//! Error messages quote only the expression's source text, never an evaluated value, so a secret
//! cannot leak through an error.
//! Everything here is synchronous and free of shared state; callers may evaluate concurrently.

mod analysis;
mod ast;
mod canonical;
mod data;
mod error;
mod eval;
mod functions;
mod lexer;
mod markdown;
mod parser;
mod value;

#[cfg(test)]
mod tests;

pub use analysis::{
    calls, expr_function_calls, expr_references, function_calls, references, CallSite, PathRef,
};
pub use ast::{Args, BinaryOp, Expr, ExprKind, KeywordArg, Segment, Template, UnaryOp};
pub use canonical::{evaluate, evaluate_when, format_path, Evaluation, PathSegment, WhenOutcome};
pub use data::{
    Data, StepStatus, Unresolved, UnresolvedAnswer, UnresolvedConnection, UnresolvedData,
    UnresolvedName, UnresolvedOutput, UnresolvedStatus,
};
pub use error::{EvalError, ParseError};

/// How deeply expressions may nest (parentheses, brackets, unary operators, operator chains).
/// Deeper input is a [`ParseError`] with code `too_deep`, which keeps evaluation's recursion bounded.
pub const MAX_NESTING: usize = 128;

/// The function library, exactly Relay's 13 functions, sorted by name.
pub const FUNCTIONS: [&str; 13] = [
    "append",
    "coalesce",
    "concat",
    "convertMarkdown",
    "equals",
    "exists",
    "jsonMarshal",
    "jsonUnmarshal",
    "merge",
    "notEquals",
    "now",
    "path",
    "toString",
];

/// Whether `src` contains a `${` and therefore must be parsed as a template.
pub fn has_template(src: &str) -> bool {
    src.contains("${")
}

/// Parses a string that may mix text with `${…}` expressions.
pub fn parse_template(src: &str) -> Result<Template, ParseError> {
    parser::parse_template(src)
}

/// Parses a bare expression (no surrounding `${ }`).
pub fn parse_expr(src: &str) -> Result<Expr, ParseError> {
    parser::parse_range(src, 0..src.len())
}
