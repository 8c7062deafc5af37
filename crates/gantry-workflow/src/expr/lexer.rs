//! Tokens of the expression language, with byte spans into the original source.

use std::ops::Range;

use super::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Dollar,
    Dot,
    Comma,
    Colon,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Bang,
    Minus,
    Plus,
    Star,
    StarStar,
    Slash,
    Percent,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    NotEq,
    AndAnd,
    OrOr,
    Pipe,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) span: Range<usize>,
}

struct Cursor<'a> {
    src: &'a str,
    pos: usize,
    end: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        self.src.get(self.pos..self.end).unwrap_or("")
    }

    fn peek_nth(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn peek(&self) -> Option<char> {
        self.peek_nth(0)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
}

pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

pub(crate) fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Splits `src[range]` into tokens; spans are absolute offsets into `src`.
pub(crate) fn lex(src: &str, range: Range<usize>) -> Result<Vec<Token>, ParseError> {
    let mut cur = Cursor {
        src,
        pos: range.start,
        end: range.end.min(src.len()),
    };
    let mut out: Vec<Token> = Vec::new();
    loop {
        while cur.peek().is_some_and(char::is_whitespace) {
            cur.bump();
        }
        let start = cur.pos;
        let Some(c) = cur.bump() else { break };
        let after_dot = matches!(out.last(), Some(Token { tok: Tok::Dot, .. }));
        let tok = match c {
            '$' => Tok::Dollar,
            '.' => Tok::Dot,
            ',' => Tok::Comma,
            ':' => Tok::Colon,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '/' => Tok::Slash,
            '%' => Tok::Percent,
            '*' => {
                if cur.eat('*') {
                    Tok::StarStar
                } else {
                    Tok::Star
                }
            }
            '<' => {
                if cur.eat('=') {
                    Tok::Le
                } else {
                    Tok::Lt
                }
            }
            '>' => {
                if cur.eat('=') {
                    Tok::Ge
                } else {
                    Tok::Gt
                }
            }
            '!' => {
                if cur.eat('=') {
                    Tok::NotEq
                } else {
                    Tok::Bang
                }
            }
            '=' if cur.eat('=') => Tok::EqEq,
            '&' if cur.eat('&') => Tok::AndAnd,
            '|' if cur.eat('|') => Tok::OrOr,
            '|' if cur.eat('>') => Tok::Pipe,
            '\'' | '"' => Tok::Str(lex_string(&mut cur, c, start)?),
            d if d.is_ascii_digit() => lex_number(&mut cur, start, after_dot)?,
            c if is_ident_start(c) => {
                while cur.peek().is_some_and(is_ident_continue) {
                    cur.bump();
                }
                Tok::Ident(src.get(start..cur.pos).unwrap_or("").to_string())
            }
            other => {
                let hint = match other {
                    '=' => " (did you mean `==`?)",
                    '&' => " (did you mean `&&`?)",
                    '|' => " (did you mean `||` or `|>`?)",
                    _ => "",
                };
                return Err(ParseError::new(
                    "unexpected_char",
                    format!("unexpected character `{other}`{hint}"),
                    start..cur.pos,
                ));
            }
        };
        out.push(Token {
            tok,
            span: start..cur.pos,
        });
    }
    Ok(out)
}

/// After a `.`, a number is a plain integer index, so `a.0.1` is two indexes and not `0.1`.
fn lex_number(cur: &mut Cursor<'_>, start: usize, integer_only: bool) -> Result<Tok, ParseError> {
    while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
        cur.bump();
    }
    if !integer_only {
        if cur.peek() == Some('.') && cur.peek_nth(1).is_some_and(|c| c.is_ascii_digit()) {
            cur.bump();
            while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
                cur.bump();
            }
        }
        if matches!(cur.peek(), Some('e' | 'E')) {
            let digit_at = if matches!(cur.peek_nth(1), Some('+' | '-')) {
                2
            } else {
                1
            };
            if cur.peek_nth(digit_at).is_some_and(|c| c.is_ascii_digit()) {
                for _ in 0..digit_at {
                    cur.bump();
                }
                while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
                    cur.bump();
                }
            }
        }
    }
    let text = cur.src.get(start..cur.pos).unwrap_or("");
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(Tok::Num(n)),
        _ => Err(ParseError::new(
            "invalid_number",
            format!("number `{text}` is out of range"),
            start..cur.pos,
        )),
    }
}

fn lex_string(cur: &mut Cursor<'_>, quote: char, start: usize) -> Result<String, ParseError> {
    let mut out = String::new();
    loop {
        let at = cur.pos;
        let Some(c) = cur.bump() else {
            return Err(ParseError::new(
                "unterminated_string",
                "string is not closed",
                start..cur.pos,
            ));
        };
        if c == quote {
            return Ok(out);
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = cur.bump() else {
            return Err(ParseError::new(
                "unterminated_string",
                "string is not closed",
                start..cur.pos,
            ));
        };
        let simple = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'v' => Some('\u{b}'),
            'a' => Some('\u{7}'),
            '0' => Some('\0'),
            '\\' | '\'' | '"' | '/' => Some(e),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            continue;
        }
        let invalid = |cur: &Cursor<'_>| {
            ParseError::new(
                "invalid_escape",
                "invalid escape sequence in string",
                at..cur.pos,
            )
        };
        let digits = match e {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => return Err(invalid(cur)),
        };
        let code = hex_digits(cur, digits).ok_or_else(|| invalid(cur))?;
        let ch = if (0xD800..0xDC00).contains(&code) && e == 'u' {
            // A UTF-16 surrogate pair written as two `\u` escapes.
            if !(cur.eat('\\') && cur.eat('u')) {
                return Err(invalid(cur));
            }
            let low = hex_digits(cur, 4).ok_or_else(|| invalid(cur))?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(invalid(cur));
            }
            char::from_u32(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
        } else {
            char::from_u32(code)
        };
        out.push(ch.ok_or_else(|| invalid(cur))?);
    }
}

fn hex_digits(cur: &mut Cursor<'_>, n: usize) -> Option<u32> {
    let mut code: u32 = 0;
    for _ in 0..n {
        let d = cur.peek()?.to_digit(16)?;
        cur.bump();
        code = code.checked_mul(16)?.checked_add(d)?;
    }
    Some(code)
}
