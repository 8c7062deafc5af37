//! Syntax tree of templates and expressions.
//! Spans are byte offsets into the string given to `parse_template`/`parse_expr`.

use std::ops::Range;

/// A parsed string: literal text interleaved with `${…}` expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Text(String),
    /// `span` covers the whole `${…}`, braces included.
    Expr {
        expr: Expr,
        span: Range<usize>,
    },
}

impl Template {
    /// A template that is exactly one `${…}` evaluates to a native value instead of a string.
    pub fn is_single_expr(&self) -> bool {
        matches!(self.segments.as_slice(), [Segment::Expr { .. }])
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Expr>),
    /// `{'a': 1, b: 2}`; later duplicate keys win.
    Map(Vec<(String, Expr)>),
    /// `$`: the whole input, or the left side of the enclosing pipeline.
    Root,
    /// A bare identifier, which indexes into `$`.
    Ident(String),
    /// `a.b`, `a['b']`, `a.'b'`, `a[0]`, `a.0`, `a[expr]`, `a.(expr)`.
    /// A static index is a `String` or `Number` literal.
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `lhs |> rhs`: `rhs` is evaluated with `$` bound to the value of `lhs`.
    Pipe {
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Call {
        name: String,
        name_span: Range<usize>,
        args: Args,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    Positional(Vec<Expr>),
    Keyword(Vec<KeywordArg>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeywordArg {
    pub name: String,
    pub name_span: Range<usize>,
    pub value: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Pow => "**",
        }
    }
}
