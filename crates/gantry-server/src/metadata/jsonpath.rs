//! A small Kubernetes-style JSONPath: what `ni get -p '{.a.b}'` sends (`lang=jsonpath-template`)
//! and what `lang=jsonpath` takes.
//!
//! Supported: an optional `$`, `.name`, `['name']`/`["name"]`, `[0]` (negative counts from the
//! end), `[*]`/`.*`, slices `[start:end:step]`, unions `['a','b']`/`[0,2]`, and recursive
//! descent `..name`/`..*`. Filters (`[?(...)]`) and templates' `range`/`end` are not, and say so.
//! Parsing is pure and bounded by the input length; selection never recurses deeper than the
//! value it walks (whose depth `serde_json` already limits when parsing).

use serde_json::Value;

use super::error::ApiError;

/// One step of a location inside the spec, used to relate a match to evaluation errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Loc {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    /// A map key; on an array, a non-negative integer name indexes it (`a.0`).
    Member(String),
    /// An array index, negative from the end; on a map, the key with that decimal name.
    Index(i64),
    Wildcard,
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: Option<i64>,
    },
    Union(Vec<Segment>),
    /// `..` followed by a member or `*`.
    Descend(Box<Segment>),
}

impl Segment {
    fn is_singular(&self) -> bool {
        matches!(self, Segment::Member(_) | Segment::Index(_))
    }
}

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonPath {
    pub(crate) segments: Vec<Segment>,
}

impl JsonPath {
    pub(crate) fn from_segments(segments: Vec<Segment>) -> Self {
        JsonPath { segments }
    }

    /// True when the path names at most one value, so a miss is an error rather than an empty
    /// list.
    pub(crate) fn is_singular(&self) -> bool {
        self.segments.iter().all(Segment::is_singular)
    }
}

/// Parses a JSONPath, with or without surrounding `{}`.
pub(crate) fn parse(src: &str) -> Result<JsonPath, ApiError> {
    let trimmed = src.trim();
    let inner = match trimmed.strip_prefix('{') {
        Some(rest) => rest
            .strip_suffix('}')
            .ok_or_else(|| bad(src, "a `{` is not closed"))?,
        None => trimmed,
    };
    Parser {
        src,
        chars: inner.trim().chars().collect(),
        pos: 0,
    }
    .path()
}

fn bad(src: &str, why: &str) -> ApiError {
    let shown: String = src.chars().take(200).collect();
    ApiError::evaluation(format!(
        "`{shown}` is not a JSONPath this server supports: {why}"
    ))
}

struct Parser<'s> {
    src: &'s str,
    chars: Vec<char>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn err(&self, why: &str) -> ApiError {
        bad(self.src, why)
    }

    fn path(mut self) -> Result<JsonPath, ApiError> {
        let mut segments = Vec::new();
        self.eat('$');
        // Kubernetes paths start with `.`; a bare first name (`a.b`) is accepted too.
        if self.peek().is_some_and(is_name_char) {
            segments.push(Segment::Member(self.name()));
        }
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.pos += 1;
                    if self.eat('.') {
                        let inner = if self.eat('*') {
                            Segment::Wildcard
                        } else if self.peek() == Some('[') {
                            self.bracket()?
                        } else if self.peek().is_some_and(is_name_char) {
                            Segment::Member(self.name())
                        } else {
                            return Err(self.err("`..` must be followed by a name, `*` or `[`"));
                        };
                        segments.push(Segment::Descend(Box::new(inner)));
                    } else if self.eat('*') {
                        segments.push(Segment::Wildcard);
                    } else if self.peek().is_some_and(is_name_char) {
                        segments.push(Segment::Member(self.name()));
                    } else {
                        return Err(self.err("`.` must be followed by a name or `*`"));
                    }
                }
                '[' => {
                    let seg = self.bracket()?;
                    segments.push(seg);
                }
                _ => return Err(self.err(&format!("unexpected `{c}`"))),
            }
        }
        if segments.is_empty() && self.pos == 0 {
            return Err(self.err("it is empty"));
        }
        Ok(JsonPath { segments })
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// After `[`: `*`, quoted names, integers, a slice, or a union of names or integers.
    fn bracket(&mut self) -> Result<Segment, ApiError> {
        if !self.eat('[') {
            return Err(self.err("expected `[`"));
        }
        self.skip_ws();
        if self.peek() == Some('?') || self.peek() == Some('(') {
            return Err(self.err("filter and script expressions are not supported"));
        }
        let seg = if self.eat('*') {
            Segment::Wildcard
        } else {
            let mut items = vec![self.bracket_item()?];
            self.skip_ws();
            while self.eat(',') {
                self.skip_ws();
                items.push(self.bracket_item()?);
                self.skip_ws();
            }
            if items.len() == 1 {
                items.remove(0)
            } else if items.iter().all(Segment::is_singular) {
                Segment::Union(items)
            } else {
                return Err(self.err("a union may hold only names and indexes"));
            }
        };
        self.skip_ws();
        if !self.eat(']') {
            return Err(self.err("a `[` is not closed"));
        }
        Ok(seg)
    }

    fn bracket_item(&mut self) -> Result<Segment, ApiError> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => return Err(self.err("a quoted name is not closed")),
                        Some('\\') => {
                            self.pos += 1;
                            match self.peek() {
                                Some(c) => out.push(c),
                                None => return Err(self.err("a quoted name is not closed")),
                            }
                            self.pos += 1;
                        }
                        Some(c) if c == q => {
                            self.pos += 1;
                            break;
                        }
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                    }
                }
                Ok(Segment::Member(out))
            }
            _ => {
                let start = self.int()?;
                self.skip_ws();
                if self.peek() != Some(':') {
                    return start
                        .map(Segment::Index)
                        .ok_or_else(|| self.err("expected an index, a quoted name or `*`"));
                }
                self.pos += 1;
                self.skip_ws();
                let end = self.int()?;
                self.skip_ws();
                let step = if self.eat(':') {
                    self.skip_ws();
                    self.int()?
                } else {
                    None
                };
                if step == Some(0) {
                    return Err(self.err("a slice step cannot be 0"));
                }
                Ok(Segment::Slice { start, end, step })
            }
        }
    }

    /// An optional signed integer.
    fn int(&mut self) -> Result<Option<i64>, ApiError> {
        let start = self.pos;
        self.eat('-');
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| self.err("an index is not a valid integer"))
    }
}

fn is_name_char(c: char) -> bool {
    !matches!(c, '.' | '[' | ']' | '{' | '}' | '*' | '\'' | '"' | ',') && !c.is_whitespace()
}

/// A value the selection reached, and where.
pub(crate) struct Match<'v> {
    pub(crate) loc: Vec<Loc>,
    pub(crate) value: &'v Value,
}

/// Decides, for each node the selection is about to look inside, whether it may: `Ok(false)`
/// stops there (the node is not evaluated yet), an error stops the whole query.
pub(crate) type Gate<'g> = dyn FnMut(&Value, &[Loc]) -> Result<bool, ApiError> + 'g;

/// Every value `path` selects in `root`, in document order.
pub(crate) fn select<'v>(
    path: &JsonPath,
    root: &'v Value,
    gate: &mut Gate<'_>,
) -> Result<Vec<Match<'v>>, ApiError> {
    let mut current = vec![Match {
        loc: Vec::new(),
        value: root,
    }];
    for seg in &path.segments {
        let mut next = Vec::new();
        for m in current {
            apply(seg, m, gate, &mut next)?;
        }
        current = next;
    }
    Ok(current)
}

fn apply<'v>(
    seg: &Segment,
    m: Match<'v>,
    gate: &mut Gate<'_>,
    out: &mut Vec<Match<'v>>,
) -> Result<(), ApiError> {
    if !gate(m.value, &m.loc)? {
        return Ok(());
    }
    match seg {
        Segment::Member(name) => match m.value {
            Value::Object(map) => {
                if let Some(v) = map.get(name) {
                    out.push(child(&m.loc, Loc::Key(name.clone()), v));
                }
            }
            Value::Array(items) => {
                if let Some((i, v)) = name
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i).map(|v| (i, v)))
                {
                    out.push(child(&m.loc, Loc::Index(i), v));
                }
            }
            _ => {}
        },
        Segment::Index(i) => match m.value {
            Value::Array(items) => {
                let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let at = if *i < 0 { len + i } else { *i };
                if let Some((at, v)) = usize::try_from(at)
                    .ok()
                    .and_then(|at| items.get(at).map(|v| (at, v)))
                {
                    out.push(child(&m.loc, Loc::Index(at), v));
                }
            }
            Value::Object(map) => {
                let key = i.to_string();
                if let Some(v) = map.get(&key) {
                    out.push(child(&m.loc, Loc::Key(key), v));
                }
            }
            _ => {}
        },
        Segment::Wildcard => children(&m, out),
        Segment::Slice { start, end, step } => {
            if let Value::Array(items) = m.value {
                for i in slice_indexes(items.len(), *start, *end, *step) {
                    if let Some(v) = items.get(i) {
                        out.push(child(&m.loc, Loc::Index(i), v));
                    }
                }
            }
        }
        Segment::Union(items) => {
            for item in items {
                apply(
                    item,
                    Match {
                        loc: m.loc.clone(),
                        value: m.value,
                    },
                    gate,
                    out,
                )?;
            }
        }
        Segment::Descend(inner) => descend(inner, m, gate, out)?,
    }
    Ok(())
}

/// Applies `inner` at `m` and at every node below it, parents before children.
fn descend<'v>(
    inner: &Segment,
    m: Match<'v>,
    gate: &mut Gate<'_>,
    out: &mut Vec<Match<'v>>,
) -> Result<(), ApiError> {
    // An explicit stack keeps this iterative; reversed pushes keep document order.
    let mut stack = vec![m];
    while let Some(m) = stack.pop() {
        if !gate(m.value, &m.loc)? {
            continue;
        }
        apply(
            inner,
            Match {
                loc: m.loc.clone(),
                value: m.value,
            },
            gate,
            out,
        )?;
        let mut kids = Vec::new();
        children(&m, &mut kids);
        stack.extend(kids.into_iter().rev());
    }
    Ok(())
}

fn children<'v>(m: &Match<'v>, out: &mut Vec<Match<'v>>) {
    match m.value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(child(&m.loc, Loc::Key(k.clone()), v));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                out.push(child(&m.loc, Loc::Index(i), v));
            }
        }
        _ => {}
    }
}

fn child<'v>(parent: &[Loc], step: Loc, value: &'v Value) -> Match<'v> {
    let mut loc = parent.to_vec();
    loc.push(step);
    Match { loc, value }
}

/// Python-style slice indexes over an array of `len` items.
fn slice_indexes(
    len: usize,
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
) -> Vec<usize> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let step = step.unwrap_or(1);
    let norm = |i: i64| if i < 0 { len + i } else { i };
    let mut out = Vec::new();
    if step > 0 {
        let mut i = start.map_or(0, norm).clamp(0, len);
        let stop = end.map_or(len, norm).clamp(0, len);
        while i < stop {
            out.extend(usize::try_from(i).ok());
            i += step;
        }
    } else {
        let mut i = start.map_or(len - 1, norm).clamp(-1, len - 1);
        let stop = end.map_or(-1, norm).clamp(-1, len - 1);
        while i > stop {
            out.extend(usize::try_from(i).ok());
            i += step;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(path: &str, doc: &Value) -> Vec<Value> {
        let p = parse(path).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        let mut open = |_: &Value, _: &[Loc]| Ok(true);
        select(&p, doc, &mut open)
            .unwrap_or_else(|e| panic!("{path}: {e:?}"))
            .into_iter()
            .map(|m| m.value.clone())
            .collect()
    }

    #[test]
    fn selects() {
        let doc = json!({
            "a": {"b": 1, "c-d": [10, 20, 30]},
            "list": [{"n": "x"}, {"n": "y"}],
        });
        assert_eq!(run(".a.b", &doc), [json!(1)]);
        assert_eq!(run("{.a.b}", &doc), [json!(1)]);
        assert_eq!(run("$.a.b", &doc), [json!(1)]);
        assert_eq!(run("a.b", &doc), [json!(1)]);
        assert_eq!(run(".a['c-d'][1]", &doc), [json!(20)]);
        assert_eq!(run(".a[\"c-d\"][-1]", &doc), [json!(30)]);
        assert_eq!(run(".a.c-d[0:2]", &doc), [json!(10), json!(20)]);
        assert_eq!(run(".a.c-d[::-1]", &doc), [json!(30), json!(20), json!(10)]);
        assert_eq!(run(".list[*].n", &doc), [json!("x"), json!("y")]);
        assert_eq!(run(".list.*.n", &doc), [json!("x"), json!("y")]);
        assert_eq!(run("..n", &doc), [json!("x"), json!("y")]);
        assert_eq!(run(".a['b','c-d'][0]", &doc), [json!(10)]);
        assert_eq!(run(".a.missing", &doc), Vec::<Value>::new());
        assert_eq!(run("$", &doc), std::slice::from_ref(&doc));
    }

    #[test]
    fn singular() {
        let singular = |p: &str| parse(p).map(|p| p.is_singular()).unwrap_or(false);
        assert!(singular(".a.b[0]"));
        assert!(!singular(".a[*]"));
        assert!(!singular("..a"));
        assert!(!singular(".a[0:1]"));
    }

    #[test]
    fn rejects() {
        for p in [
            ".a[?(@.x)]",
            ".a[",
            "{.a",
            ".a..",
            ".a['x",
            "",
            ".a[1:2:0]",
            ".a]",
        ] {
            assert!(parse(p).is_err(), "{p} should not parse");
        }
    }
}
