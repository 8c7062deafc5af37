//! `GET /spec?q=…&lang=…`: the four query languages over an evaluated spec, and what part of
//! the answer is still unresolvable.
//!
//! The backend hands over the spec already evaluated ([`Evaluation`]): parts that could not be
//! evaluated keep their canonical form (a `${…}` string, a `{"$type": …}` tag, a
//! `{"$fn.…": …}` call) and the run-wide list of what was missing. A query answers for its own
//! part only: when a selected value (or a node on the way to it) is still canonical, that node
//! is evaluated once more against *empty* data to learn which references it holds, and the
//! answer lists those of them the run is really missing. The value itself is never
//! re-evaluated for output, so a resolved string that happens to contain `${` stays text.
//! Evaluation errors are matched to the query by their location (`EvalError::path`, relative
//! to the spec's root).
//!
//! The `path` and `path-template` languages are parsed with Gantry's expression parser and
//! accept paths only (`a.b`, `a['b-c']`, `a[0]`, `a.0`, `$`); operators and function calls are
//! refused, since a query reads the spec and must not compute over it.
//! Everything here is pure.

use serde_json::Value;

use gantry_workflow::expr::{
    self, format_path, Data, Evaluation, Expr, ExprKind, PathSegment, Segment as TemplateSegment,
    Unresolved,
};

use super::error::ApiError;
use super::jsonpath::{self, JsonPath, Loc, Segment};

/// A query language of `GET /spec` (`lang=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Path,
    PathTemplate,
    JsonPath,
    JsonPathTemplate,
}

impl Lang {
    /// `None` or an empty `lang` is `path`, as in Relay.
    pub(crate) fn parse(lang: Option<&str>) -> Result<Lang, ApiError> {
        match lang.unwrap_or("") {
            "" | "path" => Ok(Lang::Path),
            "path-template" => Ok(Lang::PathTemplate),
            "jsonpath" => Ok(Lang::JsonPath),
            "jsonpath-template" => Ok(Lang::JsonPathTemplate),
            other => Err(ApiError::unsupported_language(other)),
        }
    }
}

/// What a query found: the value and what it is still waiting for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) value: Value,
    pub(crate) unresolved: Unresolved,
}

/// The whole evaluated value. An evaluation error anywhere is a 422, as in Relay.
pub(crate) fn whole(eval: &Evaluation) -> Result<Answer, ApiError> {
    if let Some(e) = eval.errors.first() {
        return Err(ApiError::from_eval(e));
    }
    Ok(Answer {
        value: eval.value.clone(),
        unresolved: eval.unresolved.clone(),
    })
}

/// The value under the top-level key `name` (`GET /environment/{name}`), or `None` when there
/// is no such key.
pub(crate) fn member(eval: &Evaluation, name: &str) -> Result<Option<Answer>, ApiError> {
    let Value::Object(map) = &eval.value else {
        return Ok(None);
    };
    let Some(value) = map.get(name) else {
        return Ok(None);
    };
    let tree = Tree { eval };
    let unresolved = tree.inside(value, &[Loc::Key(name.to_string())])?;
    Ok(Some(Answer {
        value: value.clone(),
        unresolved,
    }))
}

/// Answers `q` in `lang` over the evaluated spec.
pub(crate) fn run(eval: &Evaluation, lang: Lang, q: &str) -> Result<Answer, ApiError> {
    let tree = Tree { eval };
    match lang {
        Lang::Path => tree.single(&path_query(q)?, q),
        Lang::JsonPath => {
            let path = jsonpath::parse(q)?;
            if path.is_singular() {
                tree.single(&path, q)
            } else {
                tree.many(&path)
            }
        }
        Lang::PathTemplate => path_template(&tree, q),
        Lang::JsonPathTemplate => jsonpath_template(&tree, q),
    }
}

/// The evaluated spec, asked about its parts.
struct Tree<'e> {
    eval: &'e Evaluation,
}

/// Where walking a path stopped.
enum Walk<'v> {
    Found(Vec<Loc>, &'v Value),
    /// A node on the way is not evaluated yet.
    Waiting(Unresolved),
    Missing,
}

impl<'e> Tree<'e> {
    /// What `node` (at `loc`) still waits for; an evaluation error inside it is an `Err`.
    fn inside(&self, node: &Value, loc: &[Loc]) -> Result<Unresolved, ApiError> {
        if self.eval.is_complete() {
            return Ok(Unresolved::default());
        }
        let at = location(loc);
        if let Some(e) = self.eval.errors.iter().find(|e| within(&e.path, &at)) {
            return Err(ApiError::from_eval(e));
        }
        if !holds_expression(node) {
            return Ok(Unresolved::default());
        }
        let references = expr::evaluate(node, &Data::default()).unresolved;
        Ok(intersect(references, &self.eval.unresolved))
    }

    /// Walks a path that names at most one value.
    fn walk(&self, path: &JsonPath) -> Result<Walk<'e>, ApiError> {
        let mut waiting = Unresolved::default();
        let mut gate = |node: &Value, loc: &[Loc]| -> Result<bool, ApiError> {
            if !is_expression(node) {
                return Ok(true);
            }
            let u = self.inside(node, loc)?;
            if u.is_empty() {
                // Resolved data that merely looks like an expression: keep walking.
                return Ok(true);
            }
            waiting.merge(u);
            Ok(false)
        };
        let eval: &'e Evaluation = self.eval;
        let mut found = jsonpath::select(path, &eval.value, &mut gate)?;
        if !waiting.is_empty() {
            return Ok(Walk::Waiting(waiting));
        }
        Ok(match found.pop() {
            Some(m) => Walk::Found(m.loc, m.value),
            None => Walk::Missing,
        })
    }

    fn single(&self, path: &JsonPath, q: &str) -> Result<Answer, ApiError> {
        match self.walk(path)? {
            Walk::Found(loc, value) => Ok(Answer {
                value: value.clone(),
                unresolved: self.inside(value, &loc)?,
            }),
            Walk::Waiting(unresolved) => Ok(Answer {
                value: Value::Null,
                unresolved,
            }),
            Walk::Missing => Err(matched_nothing(q)),
        }
    }

    /// A path with wildcards, slices or recursion: a list of every match, possibly empty.
    fn many(&self, path: &JsonPath) -> Result<Answer, ApiError> {
        let mut unresolved = Unresolved::default();
        let mut gate = |node: &Value, loc: &[Loc]| -> Result<bool, ApiError> {
            if !is_expression(node) {
                return Ok(true);
            }
            let u = self.inside(node, loc)?;
            if u.is_empty() {
                return Ok(true);
            }
            unresolved.merge(u);
            Ok(false)
        };
        let found = jsonpath::select(path, &self.eval.value, &mut gate)?;
        let mut values = Vec::with_capacity(found.len());
        for m in found {
            unresolved.merge(self.inside(m.value, &m.loc)?);
            values.push(m.value.clone());
        }
        Ok(Answer {
            value: Value::Array(values),
            unresolved,
        })
    }
}

fn matched_nothing(q: &str) -> ApiError {
    let shown: String = q.chars().take(200).collect();
    ApiError::evaluation(format!("the query `{shown}` matched nothing in the spec"))
}

/// Parses a `path` query (`aws.connection.accessKeyID`, `foo[0]`, `'a-b'.c`,
/// `aws["connection"]` as `relay-sdk`'s `Dynamic` writes it).
fn path_query(q: &str) -> Result<JsonPath, ApiError> {
    let e = expr::parse_expr(q).map_err(|e| {
        ApiError::evaluation(format!(
            "the query is not a valid path ({} at byte {})",
            e.code, e.span.start
        ))
    })?;
    path_of(&e).map(JsonPath::from_segments)
}

fn path_of(e: &Expr) -> Result<Vec<Segment>, ApiError> {
    match &e.kind {
        ExprKind::Root => Ok(Vec::new()),
        // A quoted first name (`'a-b'.c`) is a string literal in the expression grammar.
        ExprKind::Ident(name) | ExprKind::String(name) => Ok(vec![Segment::Member(name.clone())]),
        ExprKind::Index { target, index } => {
            let mut segments = path_of(target)?;
            segments.push(match &index.kind {
                ExprKind::String(s) => Segment::Member(s.clone()),
                ExprKind::Ident(s) => Segment::Member(s.clone()),
                ExprKind::Number(n) => number_segment(*n),
                _ => return Err(not_a_path()),
            });
            Ok(segments)
        }
        _ => Err(not_a_path()),
    }
}

fn number_segment(n: f64) -> Segment {
    // Exact: `n` is integral and well inside i64's range.
    #[allow(clippy::cast_possible_truncation)]
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Segment::Index(n as i64)
    } else {
        Segment::Member(format!("{n}"))
    }
}

fn not_a_path() -> ApiError {
    ApiError::evaluation(
        "a spec query must be a path such as `a.b[0]` or `a['b-c']`; \
         operators and function calls are not evaluated here",
    )
}

fn path_template(tree: &Tree<'_>, q: &str) -> Result<Answer, ApiError> {
    let t = expr::parse_template(q).map_err(|e| {
        ApiError::evaluation(format!(
            "the query is not a valid template ({} at byte {})",
            e.code, e.span.start
        ))
    })?;
    if let [TemplateSegment::Expr { expr, .. }] = t.segments.as_slice() {
        return tree.single(&JsonPath::from_segments(path_of(expr)?), q);
    }
    let mut pieces = Vec::with_capacity(t.segments.len());
    for seg in &t.segments {
        pieces.push(match seg {
            TemplateSegment::Text(s) => Piece::Text(s.clone()),
            TemplateSegment::Expr { expr, .. } => {
                Piece::Path(JsonPath::from_segments(path_of(expr)?))
            }
        });
    }
    render(tree, &pieces, q)
}

fn jsonpath_template(tree: &Tree<'_>, q: &str) -> Result<Answer, ApiError> {
    let pieces = template_pieces(q)?;
    render(tree, &pieces, q)
}

enum Piece {
    Text(String),
    Path(JsonPath),
}

/// Joins text and the text of each path's values. Several values of one path are separated by
/// a space, as in Kubernetes; a template always renders to a string.
fn render(tree: &Tree<'_>, pieces: &[Piece], q: &str) -> Result<Answer, ApiError> {
    let mut out = String::new();
    let mut unresolved = Unresolved::default();
    for piece in pieces {
        match piece {
            Piece::Text(s) => out.push_str(s),
            Piece::Path(path) if path.is_singular() => {
                let a = tree.single(path, q)?;
                out.push_str(&text_of(&a.value));
                unresolved.merge(a.unresolved);
            }
            Piece::Path(path) => {
                let a = tree.many(path)?;
                if let Value::Array(values) = &a.value {
                    let texts: Vec<String> = values.iter().map(text_of).collect();
                    out.push_str(&texts.join(" "));
                }
                unresolved.merge(a.unresolved);
            }
        }
    }
    Ok(Answer {
        value: if unresolved.is_empty() {
            Value::String(out)
        } else {
            Value::Null
        },
        unresolved,
    })
}

/// Splits a Kubernetes-style template: text with `{jsonpath}` and `{"literal"}` pieces.
fn template_pieces(q: &str) -> Result<Vec<Piece>, ApiError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = q;
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = closing_brace(after).ok_or_else(|| {
            ApiError::evaluation("the template has a `{` that is not closed".to_string())
        })?;
        let inner = after[..close].trim();
        if let Some(lit) = quoted_literal(inner) {
            text.push_str(&lit);
        } else {
            if matches!(inner.split_whitespace().next(), Some("range" | "end")) {
                return Err(ApiError::evaluation(
                    "`range` and `end` are not supported in templates",
                ));
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Path(jsonpath::parse(inner)?));
        }
        rest = &after[close + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The index of the `}` that closes a piece, skipping quoted names.
fn closing_brace(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '}' => return Some(i),
            None => {}
        }
    }
    None
}

/// `"text"` inside braces is literal text, with `\n`, `\t` and `\\` escapes.
fn quoted_literal(inner: &str) -> Option<String> {
    let body = inner.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

/// A value as text: strings unquoted, `null` empty, numbers in shortest form, maps and arrays
/// as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => format!("{f}"),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// Whether `v` itself is something the evaluator would evaluate (and so, left in place, did
/// not finish evaluating).
fn is_expression(v: &Value) -> bool {
    match v {
        Value::String(s) => expr::has_template(s),
        Value::Object(m) => {
            matches!(m.get("$type"), Some(Value::String(_)))
                || m.contains_key("$encoding")
                || (m.len() == 1 && m.keys().all(|k| k.starts_with("$fn.")))
        }
        _ => false,
    }
}

/// Whether `v` or anything inside it is an expression.
fn holds_expression(v: &Value) -> bool {
    // An explicit stack: spec values may nest deeply.
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        if is_expression(v) {
            return true;
        }
        match v {
            Value::Object(m) => stack.extend(m.values()),
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    false
}

/// The entries of `found` that `missing` also lists.
fn intersect(found: Unresolved, missing: &Unresolved) -> Unresolved {
    fn keep<T: PartialEq>(items: Vec<T>, within: &[T]) -> Vec<T> {
        items.into_iter().filter(|x| within.contains(x)).collect()
    }
    Unresolved {
        data: keep(found.data, &missing.data),
        secrets: keep(found.secrets, &missing.secrets),
        connections: keep(found.connections, &missing.connections),
        outputs: keep(found.outputs, &missing.outputs),
        parameters: keep(found.parameters, &missing.parameters),
        answers: keep(found.answers, &missing.answers),
        statuses: keep(found.statuses, &missing.statuses),
    }
}

/// A location in the form the evaluator writes `EvalError::path`, by the evaluator's own rule.
fn location(loc: &[Loc]) -> String {
    let segments: Vec<PathSegment> = loc
        .iter()
        .map(|l| match l {
            Loc::Index(i) => PathSegment::Index(*i),
            Loc::Key(k) => PathSegment::Key(k.clone()),
        })
        .collect();
    format_path(&segments)
}

/// Whether the error location `path` is at or below `at`.
fn within(path: &str, at: &str) -> bool {
    match path.strip_prefix(at) {
        Some(rest) => at.is_empty() || rest.is_empty() || rest.starts_with(['.', '[']),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn locations_match_the_evaluator() {
        let loc = [
            Loc::Key("aws".into()),
            Loc::Key("a b".into()),
            Loc::Index(2),
            Loc::Key("x-y".into()),
        ];
        assert_eq!(location(&loc), "aws['a b'][2].x-y");
        assert!(within("aws.x", "aws"));
        assert!(within("aws[0]", "aws"));
        assert!(within("aws", "aws"));
        assert!(within("anything", ""));
        assert!(!within("awsx", "aws"));
    }

    #[test]
    fn path_queries() {
        let ok = |q: &str| path_query(q).map(|p| p.segments).unwrap_or_default();
        assert_eq!(
            ok("aws[\"connection\"][\"accessKeyID\"]"),
            [
                Segment::Member("aws".into()),
                Segment::Member("connection".into()),
                Segment::Member("accessKeyID".into())
            ]
        );
        assert_eq!(
            ok("'a-b'.c[0]"),
            [
                Segment::Member("a-b".into()),
                Segment::Member("c".into()),
                Segment::Index(0)
            ]
        );
        assert_eq!(ok("$"), []);
        assert!(path_query("a + 1").is_err());
        assert!(path_query("concat('a')").is_err());
        assert!(path_query("a[").is_err());
    }

    #[test]
    fn templates_split() {
        let pieces = template_pieces("x={.a['}']}{\"\\n\"}").unwrap_or_default();
        assert_eq!(pieces.len(), 3);
        assert!(matches!(&pieces[0], Piece::Text(t) if t == "x="));
        assert!(matches!(&pieces[2], Piece::Text(t) if t == "\n"));
        assert!(template_pieces("{.a").is_err());
        assert!(template_pieces("{range .a}{end}").is_err());
    }

    #[test]
    fn text_forms() {
        assert_eq!(text_of(&json!(null)), "");
        assert_eq!(text_of(&json!(1.5)), "1.5");
        assert_eq!(text_of(&json!(3)), "3");
        assert_eq!(text_of(&json!({"a": [1]})), r#"{"a":[1]}"#);
    }
}
