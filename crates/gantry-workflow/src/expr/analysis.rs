//! Static analysis: which data paths and functions a template uses, without evaluating it.

use std::ops::Range;

use super::ast::{Args, Expr, ExprKind, Segment, Template};
use super::value::format_f64;

/// The static prefix of a data path that starts at the root: an identifier such as
/// `parameters`, or `$`. `outputs.build['ver-sion'][0]` gives
/// `["outputs", "build", "ver-sion", "0"]`; the prefix stops at the first computed index.
/// A bare `$` (the whole input) gives no segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRef {
    pub segments: Vec<String>,
    /// From the root identifier to the end of the last static index.
    pub span: Range<usize>,
}

/// Every root data path in the template, in source order. Paths on the right of `|>` are
/// relative to the piped value and are not reported.
pub fn references(t: &Template) -> Vec<PathRef> {
    let mut out = Vec::new();
    for seg in &t.segments {
        if let Segment::Expr { expr, .. } = seg {
            collect_refs(expr, &mut out);
        }
    }
    out
}

pub fn expr_references(e: &Expr) -> Vec<PathRef> {
    let mut out = Vec::new();
    collect_refs(e, &mut out);
    out
}

/// A function call found by static analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSite {
    pub name: String,
    /// Span of the function's name.
    pub span: Range<usize>,
    /// The number of arguments of a positional call; `None` for a keyword call.
    pub positional: Option<usize>,
}

/// Every function call in the template, in source order.
pub fn calls(t: &Template) -> Vec<CallSite> {
    let mut out = Vec::new();
    for seg in &t.segments {
        if let Segment::Expr { expr, .. } = seg {
            collect_calls(expr, &mut out);
        }
    }
    out
}

/// Every function call in the template as (name, span of the name), in source order.
pub fn function_calls(t: &Template) -> Vec<(String, Range<usize>)> {
    calls(t).into_iter().map(|c| (c.name, c.span)).collect()
}

pub fn expr_function_calls(e: &Expr) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    collect_calls(e, &mut out);
    out.into_iter().map(|c| (c.name, c.span)).collect()
}

fn children(e: &Expr) -> Vec<&Expr> {
    match &e.kind {
        ExprKind::Null
        | ExprKind::Bool(_)
        | ExprKind::Number(_)
        | ExprKind::String(_)
        | ExprKind::Root
        | ExprKind::Ident(_) => Vec::new(),
        ExprKind::Array(items) => items.iter().collect(),
        ExprKind::Map(entries) => entries.iter().map(|(_, v)| v).collect(),
        ExprKind::Index { target, index } => vec![target, index],
        ExprKind::Unary { operand, .. } => vec![operand],
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Pipe { lhs, rhs } => vec![lhs, rhs],
        ExprKind::Call { args, .. } => match args {
            Args::Positional(items) => items.iter().collect(),
            Args::Keyword(items) => items.iter().map(|k| &k.value).collect(),
        },
    }
}

fn collect_calls(e: &Expr, out: &mut Vec<CallSite>) {
    if let ExprKind::Call {
        name,
        name_span,
        args,
    } = &e.kind
    {
        out.push(CallSite {
            name: name.clone(),
            span: name_span.clone(),
            positional: match args {
                Args::Positional(items) => Some(items.len()),
                Args::Keyword(_) => None,
            },
        });
    }
    for c in children(e) {
        collect_calls(c, out);
    }
}

fn static_key(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::String(s) => Some(s.clone()),
        ExprKind::Number(n) => Some(format_f64(*n)),
        _ => None,
    }
}

fn collect_refs(e: &Expr, out: &mut Vec<PathRef>) {
    match &e.kind {
        ExprKind::Root | ExprKind::Ident(_) | ExprKind::Index { .. } => {
            // Unwind the index chain down to its base.
            // Each index with the end of its `Index` node, which includes a closing `]`.
            let mut indexes: Vec<(&Expr, usize)> = Vec::new();
            let mut base = e;
            while let ExprKind::Index { target, index } = &base.kind {
                indexes.push((index, base.span.end));
                base = target;
            }
            indexes.reverse();
            let mut segments = match &base.kind {
                ExprKind::Root => Vec::new(),
                ExprKind::Ident(name) => vec![name.clone()],
                _ => {
                    collect_refs(base, out);
                    for (i, _) in indexes {
                        collect_refs(i, out);
                    }
                    return;
                }
            };
            let mut end = base.span.end;
            let mut rest = indexes.into_iter();
            for (index, node_end) in rest.by_ref() {
                match static_key(index) {
                    Some(k) => {
                        segments.push(k);
                        end = node_end;
                    }
                    None => {
                        collect_refs(index, out);
                        break;
                    }
                }
            }
            out.push(PathRef {
                segments,
                span: base.span.start..end,
            });
            for (index, _) in rest {
                collect_refs(index, out);
            }
        }
        ExprKind::Pipe { lhs, .. } => collect_refs(lhs, out),
        _ => {
            for c in children(e) {
                collect_refs(c, out);
            }
        }
    }
}
