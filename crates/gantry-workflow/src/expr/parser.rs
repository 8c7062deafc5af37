//! Recursive-descent parser with precedence climbing.
//!
//! Every node's height is tracked while parsing, so a tree deeper than the limit is never built:
//! evaluation, analysis and even dropping the tree recurse at most that deep.

use std::ops::Range;

use super::ast::{Args, BinaryOp, Expr, ExprKind, KeywordArg, Segment, Template, UnaryOp};
use super::error::ParseError;
use super::lexer::{lex, Tok, Token};
use super::MAX_NESTING;

/// Trees may be taller than the nesting limit because operator chains (`a + b + c`) and index
/// chains (`a.b.c`) grow the tree without nesting, but not without bound.
const MAX_HEIGHT: usize = 2 * MAX_NESTING;

pub(crate) fn parse_template(src: &str) -> Result<Template, ParseError> {
    let mut segments = Vec::new();
    let mut text_start = 0;
    let mut pos = 0;
    while let Some(rel) = src.get(pos..).and_then(|s| s.find("${")) {
        let open = pos + rel;
        let inner = open + 2;
        let Some(close) = find_close(src, inner) else {
            return Err(ParseError::new(
                "unterminated_template",
                "`${` is not closed by a matching `}`",
                open..src.len(),
            ));
        };
        if open > text_start {
            segments.push(Segment::Text(
                src.get(text_start..open).unwrap_or("").to_string(),
            ));
        }
        if src.get(inner..close).unwrap_or("").trim().is_empty() {
            return Err(ParseError::new(
                "empty_expression",
                "`${}` contains no expression",
                open..close + 1,
            ));
        }
        let expr = parse_range(src, inner..close)?;
        segments.push(Segment::Expr {
            expr,
            span: open..close + 1,
        });
        pos = close + 1;
        text_start = pos;
    }
    if text_start < src.len() {
        segments.push(Segment::Text(
            src.get(text_start..).unwrap_or("").to_string(),
        ));
    }
    Ok(Template { segments })
}

/// Finds the `}` closing a `${` whose body starts at `start`, skipping nested braces and quoted
/// strings.
fn find_close(src: &str, start: usize) -> Option<usize> {
    let body = src.get(start..)?;
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '{' => depth += 1,
            '}' if depth == 0 => return Some(start + i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Parses `src[range]` as one expression; spans stay absolute offsets into `src`.
pub(crate) fn parse_range(src: &str, range: Range<usize>) -> Result<Expr, ParseError> {
    let toks = lex(src, range.clone())?;
    if toks.is_empty() {
        return Err(ParseError::new(
            "empty_expression",
            "expected an expression",
            range,
        ));
    }
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        depth: 0,
        end: range.end,
    };
    let node = p.parse_bp(0)?;
    if let Some(t) = p.peek_token() {
        return Err(ParseError::new(
            "unexpected_token",
            format!("unexpected {} after the expression", describe(&t.tok)),
            t.span.clone(),
        ));
    }
    Ok(node.expr)
}

struct Node {
    expr: Expr,
    height: usize,
}

struct Parser<'t> {
    toks: &'t [Token],
    pos: usize,
    depth: usize,
    end: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier `{s}`"),
        Tok::Str(_) => "string".to_string(),
        Tok::Num(_) => "number".to_string(),
        other => {
            let sym = match other {
                Tok::Dollar => "$",
                Tok::Dot => ".",
                Tok::Comma => ",",
                Tok::Colon => ":",
                Tok::LParen => "(",
                Tok::RParen => ")",
                Tok::LBracket => "[",
                Tok::RBracket => "]",
                Tok::LBrace => "{",
                Tok::RBrace => "}",
                Tok::Bang => "!",
                Tok::Minus => "-",
                Tok::Plus => "+",
                Tok::Star => "*",
                Tok::StarStar => "**",
                Tok::Slash => "/",
                Tok::Percent => "%",
                Tok::Lt => "<",
                Tok::Le => "<=",
                Tok::Gt => ">",
                Tok::Ge => ">=",
                Tok::EqEq => "==",
                Tok::NotEq => "!=",
                Tok::AndAnd => "&&",
                Tok::OrOr => "||",
                Tok::Pipe => "|>",
                Tok::Ident(_) | Tok::Str(_) | Tok::Num(_) => "",
            };
            format!("`{sym}`")
        }
    }
}

/// Binding power of binary operators: higher binds tighter. `|>` is the loosest.
fn binary_op(t: &Tok) -> Option<(Option<BinaryOp>, u8)> {
    let r = match t {
        Tok::Pipe => (None, 1),
        Tok::OrOr => (Some(BinaryOp::Or), 2),
        Tok::AndAnd => (Some(BinaryOp::And), 3),
        Tok::EqEq => (Some(BinaryOp::Eq), 4),
        Tok::NotEq => (Some(BinaryOp::Ne), 4),
        Tok::Lt => (Some(BinaryOp::Lt), 5),
        Tok::Le => (Some(BinaryOp::Le), 5),
        Tok::Gt => (Some(BinaryOp::Gt), 5),
        Tok::Ge => (Some(BinaryOp::Ge), 5),
        Tok::Plus => (Some(BinaryOp::Add), 6),
        Tok::Minus => (Some(BinaryOp::Sub), 6),
        Tok::Star => (Some(BinaryOp::Mul), 7),
        Tok::Slash => (Some(BinaryOp::Div), 7),
        Tok::Percent => (Some(BinaryOp::Rem), 7),
        Tok::StarStar => (Some(BinaryOp::Pow), 8),
        _ => return None,
    };
    Some(r)
}

const POW_BP: u8 = 8;

impl Parser<'_> {
    fn peek_token(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn peek(&self) -> Option<&Tok> {
        self.peek_token().map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.tok)
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        match self.peek_token() {
            Some(t) => ParseError::new(
                "unexpected_token",
                format!("expected {expected}, found {}", describe(&t.tok)),
                t.span.clone(),
            ),
            None => ParseError::new(
                "unexpected_end",
                format!("expected {expected}, found the end of the expression"),
                self.end..self.end,
            ),
        }
    }

    fn expect(&mut self, tok: &Tok, expected: &str) -> Result<Range<usize>, ParseError> {
        match self.peek_token() {
            Some(t) if &t.tok == tok => {
                let span = t.span.clone();
                self.pos += 1;
                Ok(span)
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let span = self
                .peek_token()
                .map_or(self.end..self.end, |t| t.span.clone());
            return Err(ParseError::new(
                "too_deep",
                format!("expression nests more than {MAX_NESTING} levels deep"),
                span,
            ));
        }
        Ok(())
    }

    fn node(
        &self,
        kind: ExprKind,
        span: Range<usize>,
        child_height: usize,
    ) -> Result<Node, ParseError> {
        let height = child_height + 1;
        if height > MAX_HEIGHT {
            return Err(ParseError::new(
                "too_deep",
                format!("expression is too deeply nested (more than {MAX_HEIGHT} levels)"),
                span,
            ));
        }
        Ok(Node {
            expr: Expr { kind, span },
            height,
        })
    }

    // The recursive descent keeps each recursive function small and moves bulky work into
    // non-recursive helpers: unoptimised builds give every temporary its own stack slot, and the
    // deepest accepted input must fit a small thread stack.

    fn parse_bp(&mut self, min_bp: u8) -> Result<Node, ParseError> {
        self.enter()?;
        let mut lhs = self.parse_unary()?;
        while let Some((op, bp)) = self.peek().and_then(binary_op) {
            if bp < min_bp {
                break;
            }
            self.pos += 1;
            // `**` is right-associative; everything else is left-associative.
            let next_min = if op == Some(BinaryOp::Pow) {
                bp
            } else {
                bp + 1
            };
            let rhs = self.parse_bp(next_min)?;
            lhs = self.binary(op, lhs, rhs)?;
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn binary(&self, op: Option<BinaryOp>, lhs: Node, rhs: Node) -> Result<Node, ParseError> {
        let span = lhs.expr.span.start..rhs.expr.span.end;
        let h = lhs.height.max(rhs.height);
        let (lhs, rhs) = (Box::new(lhs.expr), Box::new(rhs.expr));
        let kind = match op {
            Some(op) => ExprKind::Binary { op, lhs, rhs },
            None => ExprKind::Pipe { lhs, rhs },
        };
        self.node(kind, span, h)
    }

    /// Unary operators bind looser than `**`, so `-2 ** 2` is `-(2 ** 2)`.
    fn parse_unary(&mut self) -> Result<Node, ParseError> {
        let op = match self.peek() {
            Some(Tok::Bang) => UnaryOp::Not,
            Some(Tok::Minus) => UnaryOp::Neg,
            _ => return self.parse_postfix(),
        };
        let start = self.peek_token().map_or(self.end, |t| t.span.start);
        self.pos += 1;
        let operand = self.parse_bp(POW_BP)?;
        self.unary(op, start, operand)
    }

    fn unary(&self, op: UnaryOp, start: usize, operand: Node) -> Result<Node, ParseError> {
        let span = start..operand.expr.span.end;
        let h = operand.height;
        let operand = Box::new(operand.expr);
        self.node(ExprKind::Unary { op, operand }, span, h)
    }

    fn parse_postfix(&mut self) -> Result<Node, ParseError> {
        let mut node = self.parse_primary()?;
        while let Some((index, end)) = self.parse_suffix()? {
            node = self.index(node, index, end)?;
        }
        Ok(node)
    }

    fn index(&self, target: Node, index: Node, end: usize) -> Result<Node, ParseError> {
        let span = target.expr.span.start..end;
        let h = target.height.max(index.height);
        let kind = ExprKind::Index {
            target: Box::new(target.expr),
            index: Box::new(index.expr),
        };
        self.node(kind, span, h)
    }

    /// One `.key`, `.(expr)` or `[expr]` after a primary, with the end of its span.
    fn parse_suffix(&mut self) -> Result<Option<(Node, usize)>, ParseError> {
        let close = match self.peek() {
            Some(Tok::Dot) => {
                self.pos += 1;
                if let Some(key) = self.static_key()? {
                    return Ok(Some(key));
                }
                Tok::RParen
            }
            Some(Tok::LBracket) => {
                self.pos += 1;
                Tok::RBracket
            }
            _ => return Ok(None),
        };
        let inner = self.parse_bp(0)?;
        let end = self.close(&close)?;
        Ok(Some((inner, end)))
    }

    /// The key after a `.`: a name, quoted string or integer; `None` after consuming `(`.
    fn static_key(&mut self) -> Result<Option<(Node, usize)>, ParseError> {
        let Some(t) = self.peek_token().cloned() else {
            return Err(self.unexpected("a key after `.`"));
        };
        let kind = match t.tok {
            Tok::Ident(s) | Tok::Str(s) => ExprKind::String(s),
            Tok::Num(n) => ExprKind::Number(n),
            Tok::LParen => {
                self.pos += 1;
                return Ok(None);
            }
            _ => return Err(self.unexpected("a key after `.`")),
        };
        self.pos += 1;
        let end = t.span.end;
        Ok(Some((leaf(kind, t.span), end)))
    }

    fn close(&mut self, tok: &Tok) -> Result<usize, ParseError> {
        let expected = match tok {
            Tok::RParen => "`)`",
            Tok::RBracket => "`]`",
            _ => "`}`",
        };
        self.expect(tok, expected).map(|span| span.end)
    }

    fn parse_primary(&mut self) -> Result<Node, ParseError> {
        let Some(tok) = self.peek_token().cloned() else {
            return Err(self.unexpected("an expression"));
        };
        self.pos += 1;
        let start = tok.span.start;
        match tok.tok {
            Tok::LParen => {
                let mut inner = self.parse_bp(0)?;
                inner.expr.span = start..self.close(&Tok::RParen)?;
                Ok(inner)
            }
            Tok::LBracket => self.parse_array(start),
            Tok::LBrace => self.parse_map(start),
            Tok::Ident(name) if self.peek() == Some(&Tok::LParen) => {
                self.parse_call(name, tok.span)
            }
            other => {
                self.pos -= 1;
                self.atom(other, tok.span)
            }
        }
    }

    /// A primary that does not recurse.
    fn atom(&mut self, tok: Tok, span: Range<usize>) -> Result<Node, ParseError> {
        let kind = match tok {
            Tok::Num(n) => ExprKind::Number(n),
            Tok::Str(s) => ExprKind::String(s),
            Tok::Dollar => ExprKind::Root,
            Tok::Ident(name) => match name.as_str() {
                "true" => ExprKind::Bool(true),
                "false" => ExprKind::Bool(false),
                "null" => ExprKind::Null,
                _ => ExprKind::Ident(name),
            },
            _ => return Err(self.unexpected("an expression")),
        };
        self.pos += 1;
        Ok(leaf(kind, span))
    }

    fn parse_array(&mut self, start: usize) -> Result<Node, ParseError> {
        let mut items = Vec::new();
        let mut h = 0;
        loop {
            if let Some(Tok::RBracket) = self.peek() {
                break;
            }
            let item = self.parse_bp(0)?;
            h = h.max(item.height);
            items.push(item.expr);
            if !self.list_separator(&Tok::RBracket)? {
                break;
            }
        }
        let end = self.close(&Tok::RBracket)?;
        self.node(ExprKind::Array(items), start..end, h)
    }

    /// After a list element: eats a `,` (true) or sees the closing token (false).
    fn list_separator(&mut self, close: &Tok) -> Result<bool, ParseError> {
        match self.peek() {
            Some(Tok::Comma) => {
                self.pos += 1;
                Ok(true)
            }
            Some(t) if t == close => Ok(false),
            _ => Err(self.unexpected(match close {
                Tok::RBracket => "`,` or `]`",
                Tok::RParen => "`,` or `)`",
                _ => "`,` or `}`",
            })),
        }
    }

    fn parse_map(&mut self, start: usize) -> Result<Node, ParseError> {
        let mut entries = Vec::new();
        let mut h = 0;
        loop {
            if let Some(Tok::RBrace) = self.peek() {
                break;
            }
            let key = self.map_key()?;
            let value = self.parse_bp(0)?;
            h = h.max(value.height);
            entries.push((key, value.expr));
            if !self.list_separator(&Tok::RBrace)? {
                break;
            }
        }
        let end = self.close(&Tok::RBrace)?;
        self.node(ExprKind::Map(entries), start..end, h)
    }

    /// A map key and its `:`.
    fn map_key(&mut self) -> Result<String, ParseError> {
        let key = match self.peek() {
            Some(Tok::Ident(s) | Tok::Str(s)) => s.clone(),
            Some(Tok::Num(n)) => super::value::format_f64(*n),
            _ => return Err(self.unexpected("a map key")),
        };
        self.pos += 1;
        self.expect(&Tok::Colon, "`:` after the map key")?;
        Ok(key)
    }

    fn parse_call(&mut self, name: String, name_span: Range<usize>) -> Result<Node, ParseError> {
        self.expect(&Tok::LParen, "`(`")?;
        let mut positional = Vec::new();
        let mut keyword: Vec<KeywordArg> = Vec::new();
        let mut h = 0;
        loop {
            if let Some(Tok::RParen) = self.peek() {
                break;
            }
            let arg_start = self.peek_token().map_or(self.end, |t| t.span.start);
            let kw = self.keyword_name();
            let value = self.parse_bp(0)?;
            h = h.max(value.height);
            let value = value.expr;
            match kw {
                Some((name, name_span)) if positional.is_empty() => keyword.push(KeywordArg {
                    name,
                    name_span,
                    value,
                }),
                None if keyword.is_empty() => positional.push(value),
                Some(_) => return Err(mixed(arg_start..value.span.end)),
                None => return Err(mixed(value.span)),
            }
            if !self.list_separator(&Tok::RParen)? {
                break;
            }
        }
        let end = self.close(&Tok::RParen)?;
        let args = if keyword.is_empty() {
            Args::Positional(positional)
        } else {
            Args::Keyword(keyword)
        };
        let span = name_span.start..end;
        let kind = ExprKind::Call {
            name,
            name_span,
            args,
        };
        self.node(kind, span, h)
    }

    /// `name:` starting a keyword argument, consumed if present.
    fn keyword_name(&mut self) -> Option<(String, Range<usize>)> {
        let Some(Token {
            tok: Tok::Ident(name) | Tok::Str(name),
            span,
        }) = self.peek_token()
        else {
            return None;
        };
        if self.peek_at(1) != Some(&Tok::Colon) {
            return None;
        }
        let found = (name.clone(), span.clone());
        self.pos += 2;
        Some(found)
    }
}

fn mixed(span: Range<usize>) -> ParseError {
    ParseError::new(
        "mixed_arguments",
        "a call takes either positional or keyword arguments, not both",
        span,
    )
}

fn leaf(kind: ExprKind, span: Range<usize>) -> Node {
    Node {
        expr: Expr { kind, span },
        height: 1,
    }
}
