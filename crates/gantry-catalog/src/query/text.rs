//! The compact text form: a lexer, a recursive-descent parser, and the writer behind
//! `Display for Query`. The grammar is in the module documentation of `query`.

use std::fmt::{self, Write as _};

use serde_json::{Number, Value};

use super::ast::{
    check_field, split_entity_ref, Combinator, Direction, Node, Op, OpName, RelatedTo, Test,
    MAX_DEPTH, MAX_RELATED_DEPTH, MAX_RULES,
};
use super::QueryError;

#[derive(Debug, Clone, PartialEq)]
enum Tok<'s> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `=`, `==`, `!=`, `<`, `<=`, `>`, `>=`.
    Sym(&'s str),
    /// A run of characters that are not spaces, brackets, commas, quotes or comparison signs.
    Word(&'s str),
    /// A double-quoted string, unescaped.
    Str(String),
    /// A JSON object literal, `{"a": 1}`.
    Json(Value),
}

#[derive(Debug, Clone)]
struct Token<'s> {
    tok: Tok<'s>,
    start: usize,
    end: usize,
}

/// Characters that end a bare word.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || "()[],\"'=!<>{}".contains(c)
}

fn lex(src: &str) -> Result<Vec<Token<'_>>, QueryError> {
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while let Some(c) = src[i..].chars().next() {
        let start = i;
        let single = |tok| Token {
            tok,
            start,
            end: start + 1,
        };
        match c {
            c if c.is_whitespace() => {
                i += c.len_utf8();
                continue;
            }
            '(' => out.push(single(Tok::LParen)),
            ')' => out.push(single(Tok::RParen)),
            '[' => out.push(single(Tok::LBracket)),
            ']' => out.push(single(Tok::RBracket)),
            ',' => out.push(single(Tok::Comma)),
            '=' | '!' | '<' | '>' => {
                let two = bytes.get(i + 1) == Some(&b'=');
                let end = i + if two { 2 } else { 1 };
                if c == '!' && !two {
                    return Err(QueryError::text(
                        src,
                        (i, i + 1),
                        "unexpected `!`; did you mean `!=`? (negate a group with `not (...)`)",
                    ));
                }
                out.push(Token {
                    tok: Tok::Sym(&src[i..end]),
                    start,
                    end,
                });
                i = end;
                continue;
            }
            '"' => {
                let (s, end) = lex_string(src, i)?;
                out.push(Token {
                    tok: Tok::Str(s),
                    start,
                    end,
                });
                i = end;
                continue;
            }
            '\'' => {
                return Err(QueryError::text(
                    src,
                    (i, i + 1),
                    "strings are written in double quotes, like \"payments\"",
                ))
            }
            '{' => {
                let mut stream = serde_json::Deserializer::from_str(&src[i..]).into_iter::<Value>();
                match stream.next() {
                    Some(Ok(v @ Value::Object(_))) => {
                        let end = i + stream.byte_offset();
                        out.push(Token {
                            tok: Tok::Json(v),
                            start,
                            end,
                        });
                        i = end;
                        continue;
                    }
                    Some(Err(e)) => {
                        // serde_json counts lines and columns within the object; say where
                        // in the whole query instead.
                        let text = e.to_string();
                        let what = text.split(" at line ").next().unwrap_or("invalid");
                        let mut at = if e.line() == 1 {
                            (i + e.column().saturating_sub(1)).min(src.len())
                        } else {
                            i
                        };
                        while !src.is_char_boundary(at) {
                            at -= 1;
                        }
                        let end = at + src[at..].chars().next().map_or(0, char::len_utf8);
                        return Err(QueryError::text(
                            src,
                            (at, end),
                            format!("invalid JSON object: {what}"),
                        ));
                    }
                    _ => {
                        return Err(QueryError::text(
                            src,
                            (i, i + 1),
                            "a `{` starts a JSON object, which is not valid here",
                        ))
                    }
                }
            }
            '}' => {
                return Err(QueryError::text(src, (i, i + 1), "unexpected `}`"));
            }
            _ => {
                let len = src[i..].find(is_delimiter).unwrap_or(src.len() - i);
                out.push(Token {
                    tok: Tok::Word(&src[i..i + len]),
                    start,
                    end: i + len,
                });
                i += len;
                continue;
            }
        }
        i += 1;
    }
    Ok(out)
}

/// A double-quoted string starting at `start`: its text and the offset after its closing quote.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), QueryError> {
    let mut s = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        let at = start + 1 + off;
        match c {
            '"' => return Ok((s, at + 1)),
            '\\' => match chars.next() {
                Some((_, '"')) => s.push('"'),
                Some((_, '\\')) => s.push('\\'),
                Some((_, 'n')) => s.push('\n'),
                Some((_, 't')) => s.push('\t'),
                Some((_, other)) => {
                    return Err(QueryError::text(
                        src,
                        (at, at + 1 + other.len_utf8()),
                        format!(
                            "unknown escape `\\{other}` in a string; write \\\" for a quote and \\\\ for a backslash"
                        ),
                    ))
                }
                None => break,
            },
            c => s.push(c),
        }
    }
    Err(QueryError::text(
        src,
        (start, src.len()),
        "unterminated string: a `\"` is never closed",
    ))
}

fn is_keyword(w: &str, k: &str) -> bool {
    w.eq_ignore_ascii_case(k)
}

fn is_and_or(w: &str) -> bool {
    is_keyword(w, "and") || is_keyword(w, "or")
}

/// Whether `w` is a JSON number (`-1`, `3.5`, `1e3`; not `01` or `+1`).
fn is_json_number(w: &str) -> bool {
    let b = w.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let from = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - from
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

pub(crate) fn parse(src: &str) -> Result<Node, QueryError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        rules: 0,
    };
    if p.toks.is_empty() {
        return Ok(Node::Group(Combinator::And, Vec::new()));
    }
    let node = p.or(1)?;
    if let Some(t) = p.peek() {
        let message = match &t.tok {
            Tok::RParen => "unexpected `)`: there is no `(` to close".to_string(),
            _ => format!("expected `and` or `or` before `{}`", &src[t.start..t.end]),
        };
        return Err(p.err_at(t.start, t.end, message));
    }
    Ok(node)
}

/// Where `offset` is, in words: "column 12", or "line 2, column 5" in a multi-line query.
fn place(src: &str, offset: usize) -> String {
    let (line, column) = QueryError::text(src, (offset, offset), "")
        .line_column()
        .unwrap_or((1, 1));
    if src.contains('\n') {
        format!("line {line}, column {column}")
    } else {
        format!("column {column}")
    }
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token<'s>>,
    pos: usize,
    rules: usize,
}

/// A value as written: the value, its span, and the bare word it came from.
struct Written<'s> {
    value: Value,
    start: usize,
    end: usize,
    word: Option<&'s str>,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<&Token<'s>> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token<'s>> {
        self.toks.get(self.pos + ahead)
    }

    fn next(&mut self) -> Option<Token<'s>> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn err_at(&self, start: usize, end: usize, message: impl Into<String>) -> QueryError {
        QueryError::text(self.src, (start, end), message)
    }

    fn err_at_end(&self, message: impl Into<String>) -> QueryError {
        let n = self.src.len();
        QueryError::text(self.src, (n, n), message)
    }

    fn text(&self, t: &Token<'_>) -> &'s str {
        &self.src[t.start..t.end]
    }

    /// The text of the token before the current one, for "after `x`" messages.
    fn previous(&self) -> &'s str {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map_or("", |t| &self.src[t.start..t.end])
    }

    /// An error at the current token, or at the end of the input.
    fn err_here(&self, expected: &str) -> QueryError {
        match self.peek() {
            Some(t) => self.err_at(
                t.start,
                t.end,
                format!("{expected}, found `{}`", self.text(t)),
            ),
            None => self.err_at_end(expected),
        }
    }

    fn count_rule(&mut self, start: usize, end: usize) -> Result<(), QueryError> {
        self.rules += 1;
        if self.rules > MAX_RULES {
            return Err(self.err_at(
                start,
                end,
                format!("a query may hold at most {MAX_RULES} rules"),
            ));
        }
        Ok(())
    }

    fn eat_keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if is_keyword(w, k)) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn or(&mut self, depth: usize) -> Result<Node, QueryError> {
        let mut rules = vec![self.and(depth)?];
        while self.eat_keyword("or") {
            rules.push(self.and(depth)?);
        }
        Ok(if rules.len() == 1 {
            rules
                .pop()
                .unwrap_or(Node::Group(Combinator::Or, Vec::new()))
        } else {
            Node::Group(Combinator::Or, rules)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Node, QueryError> {
        let mut rules = vec![self.unary(depth)?];
        while self.eat_keyword("and") {
            rules.push(self.unary(depth)?);
        }
        Ok(if rules.len() == 1 {
            rules
                .pop()
                .unwrap_or(Node::Group(Combinator::And, Vec::new()))
        } else {
            Node::Group(Combinator::And, rules)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Node, QueryError> {
        let Some(t) = self.peek().cloned() else {
            let prev = self.previous();
            return Err(self.err_at_end(if prev.is_empty() {
                "expected a rule".to_string()
            } else {
                format!("expected a rule after `{prev}`")
            }));
        };
        match &t.tok {
            Tok::Word(w)
                if is_keyword(w, "not")
                    && matches!(
                        self.peek_at(1),
                        Some(Token {
                            tok: Tok::LParen,
                            ..
                        })
                    ) =>
            {
                self.pos += 1;
                Ok(Node::Not(Box::new(self.paren(depth)?)))
            }
            Tok::LParen => self.paren(depth),
            _ => self.rule(),
        }
    }

    /// `( query )`, the current token being the `(`.
    fn paren(&mut self, depth: usize) -> Result<Node, QueryError> {
        let Some(open) = self.next() else {
            return Err(self.err_at_end("expected `(`"));
        };
        if depth >= MAX_DEPTH {
            return Err(self.err_at(
                open.start,
                open.end,
                format!("parentheses are nested more than {MAX_DEPTH} deep"),
            ));
        }
        self.count_rule(open.start, open.end)?;
        if matches!(
            self.peek(),
            Some(Token {
                tok: Tok::RParen,
                ..
            })
        ) {
            self.pos += 1;
            return Ok(Node::Group(Combinator::And, Vec::new()));
        }
        let inner = self.or(depth + 1)?;
        match self.peek() {
            Some(Token {
                tok: Tok::RParen, ..
            }) => {
                self.pos += 1;
                Ok(inner)
            }
            _ => {
                let message = format!("unclosed `(` opened at {}", place(self.src, open.start));
                Err(match self.peek() {
                    Some(t) => self.err_at(
                        t.start,
                        t.end,
                        format!(
                            "{message}: expected `)`, `and` or `or`, found `{}`",
                            self.text(t)
                        ),
                    ),
                    None => self.err_at_end(message),
                })
            }
        }
    }

    fn rule(&mut self) -> Result<Node, QueryError> {
        let Some(first) = self.next() else {
            return Err(self.err_at_end("expected a rule"));
        };
        self.count_rule(first.start, first.end)?;
        // `relatedTo TARGET ...`: no relation named, so every relation is followed.
        if first.tok == Tok::Word("relatedTo") && !self.operator_next() {
            return self.related_to(None).map(Node::RelatedTo);
        }
        let field = match &first.tok {
            Tok::Word(w) if is_and_or(w) => {
                let message = match self.pos.checked_sub(2).and_then(|i| self.toks.get(i)) {
                    Some(prev) => format!(
                        "expected a rule after `{}`, found `{w}`",
                        &self.src[prev.start..prev.end]
                    ),
                    None => format!("expected a rule before `{w}`"),
                };
                return Err(self.err_at(first.start, first.end, message));
            }
            Tok::Word(w) => (*w).to_string(),
            Tok::Str(s) => s.clone(),
            _ => {
                return Err(self.err_at(
                    first.start,
                    first.end,
                    format!("expected a rule, found `{}`", self.text(&first)),
                ))
            }
        };
        if let Err(m) = check_field(&field) {
            return Err(self.err_at(first.start, first.end, m));
        }
        let shown = self.text(&first);
        let op = match self.peek() {
            None => return Err(self.err_at_end(format!("expected an operator after `{shown}`"))),
            Some(t) => match &t.tok {
                Tok::Sym(s) | Tok::Word(s) => match OpName::parse(s) {
                    Some(op) => op,
                    None => {
                        let message = if is_and_or(s) {
                            format!("expected an operator after `{shown}`, found `{s}`")
                        } else {
                            OpName::unknown(s)
                        };
                        return Err(self.err_at(t.start, t.end, message));
                    }
                },
                _ => return Err(self.err_here(&format!("expected an operator after `{shown}`"))),
            },
        };
        let op_token = self.next();
        let op_end = op_token.map_or(self.src.len(), |t| t.end);
        let op_text = op.as_str();
        let built = match op {
            OpName::RelatedTo => {
                if field.contains('.') {
                    return Err(self.err_at(
                        first.start,
                        first.end,
                        format!(
                            "`relatedTo` follows one relation, so `{field}` before it must be a relation name, not a path"
                        ),
                    ));
                }
                return self.related_to(Some(field)).map(Node::RelatedTo);
            }
            OpName::IsEmpty | OpName::IsNotEmpty => {
                Op::build(op, None).map_err(|m| (m, first.start, op_end))
            }
            OpName::Between => {
                let lo = self.value(op_text, 1)?;
                if lo.value.is_array() {
                    Op::build(op, Some(lo.value)).map_err(|m| (m, lo.start, lo.end))
                } else {
                    if !self.eat_keyword("and") {
                        return Err(self.err_here(&format!(
                            "expected `and` after `between {}`",
                            &self.src[lo.start..lo.end]
                        )));
                    }
                    let hi = self.value("and", 1)?;
                    Op::build(op, Some(Value::Array(vec![lo.value, hi.value])))
                        .map_err(|m| (m, lo.start, hi.end))
                }
            }
            _ => {
                let w = self.value(op_text, 1)?;
                let value = match (op, w.word) {
                    // Only strings make sense here, so a bare `3` is the text "3".
                    (OpName::BeginsWith | OpName::EndsWith, Some(word)) => {
                        Value::String(word.to_string())
                    }
                    _ => w.value,
                };
                Op::build(op, Some(value)).map_err(|m| (m, w.start, w.end))
            }
        };
        match built {
            Ok(op) => Ok(Node::Test(Test { field, op })),
            Err((m, start, end)) => Err(self.err_at(start, end, m)),
        }
    }

    /// Whether the current token is an operator (so a `relatedTo` before it is a field name).
    fn operator_next(&self) -> bool {
        matches!(
            self.peek(),
            Some(Token {
                tok: Tok::Sym(_),
                ..
            })
        ) || matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if OpName::parse(w).is_some())
    }

    /// `TARGET [DIRECTION] [depth N]`, after `relatedTo`.
    fn related_to(&mut self, relation: Option<String>) -> Result<RelatedTo, QueryError> {
        let expected = "expected the entity after `relatedTo`, written BLUEPRINT/IDENTIFIER like team/payments";
        let Some(t) = self.peek().cloned() else {
            return Err(self.err_at_end(expected));
        };
        let target = match &t.tok {
            Tok::Word(w) if !is_and_or(w) => (*w).to_string(),
            Tok::Str(s) => s.clone(),
            _ => return Err(self.err_here(expected)),
        };
        let Some((blueprint, identifier)) = split_entity_ref(&target) else {
            return Err(self.err_at(
                t.start,
                t.end,
                format!("`{target}` does not name an entity: write BLUEPRINT/IDENTIFIER, like team/payments"),
            ));
        };
        let (blueprint, identifier) = (blueprint.to_string(), identifier.to_string());
        self.pos += 1;
        let mut direction = None;
        let mut depth = None;
        while let Some(t) = self.peek().cloned() {
            let Tok::Word(w) = t.tok else { break };
            if let Some(d) = Direction::parse(w) {
                if direction.is_some() {
                    return Err(self.err_at(t.start, t.end, "the direction is given twice"));
                }
                direction = Some(d);
                self.pos += 1;
            } else if w == "depth" {
                if depth.is_some() {
                    return Err(self.err_at(t.start, t.end, "`depth` is given twice"));
                }
                self.pos += 1;
                let message =
                    format!("expected a whole number from 1 to {MAX_RELATED_DEPTH} after `depth`");
                let Some(n) = self.peek().cloned() else {
                    return Err(self.err_at_end(message));
                };
                match n.tok {
                    Tok::Word(w) => match w.parse::<u64>() {
                        Ok(d @ 1..=MAX_RELATED_DEPTH) => depth = Some(d as u32),
                        _ => {
                            return Err(self.err_at(
                                n.start,
                                n.end,
                                format!("{message}, found `{w}`"),
                            ))
                        }
                    },
                    _ => return Err(self.err_here(&message)),
                }
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(RelatedTo {
            blueprint,
            identifier,
            direction: direction.unwrap_or(Direction::Any),
            depth: depth.unwrap_or(1),
            relation,
        })
    }

    /// A value after `after`: a string, a bare word, a list or a JSON object.
    fn value(&mut self, after: &str, depth: usize) -> Result<Written<'s>, QueryError> {
        let expected = format!("expected a value after `{after}`");
        let Some(t) = self.peek().cloned() else {
            return Err(self.err_at_end(expected));
        };
        let (value, word) = match t.tok {
            Tok::Str(s) => (Value::String(s), None),
            Tok::Word(w) if is_and_or(w) => return Err(self.err_here(&expected)),
            Tok::Word(w) => (self.word_value(w, t.start, t.end)?, Some(w)),
            Tok::Json(v) => (v, None),
            Tok::LBracket => return self.list(depth),
            _ => return Err(self.err_here(&expected)),
        };
        self.pos += 1;
        Ok(Written {
            value,
            start: t.start,
            end: t.end,
            word,
        })
    }

    fn word_value(&self, w: &str, start: usize, end: usize) -> Result<Value, QueryError> {
        Ok(match w {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            _ if is_json_number(w) => match serde_json::from_str::<Number>(w) {
                Ok(n) => Value::Number(n),
                Err(_) => {
                    return Err(self.err_at(
                        start,
                        end,
                        format!("the number `{w}` is out of range"),
                    ))
                }
            },
            _ => Value::String(w.to_string()),
        })
    }

    /// `[ value, ... ]`, the current token being the `[`.
    fn list(&mut self, depth: usize) -> Result<Written<'s>, QueryError> {
        let Some(open) = self.next() else {
            return Err(self.err_at_end("expected `[`"));
        };
        if depth >= MAX_DEPTH {
            return Err(self.err_at(
                open.start,
                open.end,
                format!("lists are nested more than {MAX_DEPTH} deep"),
            ));
        }
        let src = self.src;
        let unclosed = || format!("unclosed `[` opened at {}", place(src, open.start));
        let mut items = Vec::new();
        loop {
            match self.peek() {
                Some(Token {
                    tok: Tok::RBracket,
                    end,
                    ..
                }) => {
                    let end = *end;
                    self.pos += 1;
                    return Ok(Written {
                        value: Value::Array(items),
                        start: open.start,
                        end,
                        word: None,
                    });
                }
                None => return Err(self.err_at_end(unclosed())),
                Some(_) => {}
            }
            let after = if items.is_empty() { "[" } else { "," };
            items.push(self.value(after, depth + 1)?.value);
            match self.peek() {
                Some(Token {
                    tok: Tok::Comma, ..
                }) => self.pos += 1,
                Some(Token {
                    tok: Tok::RBracket, ..
                }) => {}
                Some(_) => {
                    return Err(self.err_here(&format!("{}: expected `,` or `]`", unclosed())))
                }
                None => return Err(self.err_at_end(unclosed())),
            }
        }
    }
}

/// Writes the text form of a (normalized) tree.
pub(crate) fn write_root(node: &Node, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match node {
        Node::Group(Combinator::And, rules) if rules.is_empty() => Ok(()),
        _ => write_node(node, f),
    }
}

fn write_node(node: &Node, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match node {
        Node::Group(_, rules) if rules.is_empty() => f.write_str("()"),
        Node::Group(c, rules) => {
            for (i, r) in rules.iter().enumerate() {
                if i > 0 {
                    write!(f, " {} ", c.as_str())?;
                }
                let parens = *c == Combinator::And
                    && matches!(r, Node::Group(Combinator::Or, rules) if !rules.is_empty());
                if parens {
                    f.write_char('(')?;
                    write_node(r, f)?;
                    f.write_char(')')?;
                } else {
                    write_node(r, f)?;
                }
            }
            Ok(())
        }
        Node::Not(inner) => {
            f.write_str("not ")?;
            match &**inner {
                Node::Group(_, rules) if rules.is_empty() => f.write_str("()"),
                inner => {
                    f.write_char('(')?;
                    write_node(inner, f)?;
                    f.write_char(')')
                }
            }
        }
        Node::Test(t) => {
            write_field(&t.field, f)?;
            write!(f, " {}", t.op.name().as_str())?;
            match &t.op {
                Op::IsEmpty | Op::IsNotEmpty => Ok(()),
                Op::Between(lo, hi) => {
                    f.write_char(' ')?;
                    write_value(lo, f)?;
                    f.write_str(" and ")?;
                    write_value(hi, f)
                }
                op => match op.value() {
                    Some(v) => {
                        f.write_char(' ')?;
                        write_value(&v, f)
                    }
                    None => Ok(()),
                },
            }
        }
        Node::RelatedTo(r) => {
            if let Some(rel) = &r.relation {
                write_field(rel, f)?;
                f.write_char(' ')?;
            }
            f.write_str("relatedTo ")?;
            write_string(&format!("{}/{}", r.blueprint, r.identifier), f)?;
            write!(f, " {}", r.direction.as_str())?;
            if r.depth != 1 {
                write!(f, " depth {}", r.depth)?;
            }
            Ok(())
        }
    }
}

/// Whether `s` reads back as itself when written bare.
fn is_plain_word(s: &str) -> bool {
    !s.is_empty() && !s.contains(is_delimiter) && !is_and_or(s) && !is_keyword(s, "not")
}

fn write_field(field: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if is_plain_word(field) && field != "relatedTo" {
        f.write_str(field)
    } else {
        write_quoted(field, f)
    }
}

fn write_string(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let reads_as_other = matches!(s, "true" | "false" | "null")
        || is_json_number(s)
        || Direction::parse(s).is_some()
        || s == "depth";
    if is_plain_word(s) && !reads_as_other {
        f.write_str(s)
    } else {
        write_quoted(s, f)
    }
}

fn write_quoted(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

fn write_value(v: &Value, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match v {
        Value::String(s) => write_string(s, f),
        Value::Array(items) => {
            f.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_value(item, f)?;
            }
            f.write_char(']')
        }
        other => write!(f, "{other}"),
    }
}
