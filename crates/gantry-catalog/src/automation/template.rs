//! `{{ jq }}` templates of effects: every string of a value, at any depth, compiled once.
//!
//! Unlike an action's templates (paths into known roots), an automation's hold jq programs,
//! since events differ in shape and a condition already needs jq.

use serde_json::Value;

use crate::jq::{JqProgram, Limits};
use crate::schema::{problem, Problem};

/// One string of an effect, parsed and compiled.
#[derive(Debug, Clone)]
pub(super) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Jq(JqProgram),
}

impl Template {
    /// Parses and compiles the `{{ jq }}` of `src`; `None` when it holds none.
    pub(super) fn parse(src: &str) -> Result<Option<Template>, String> {
        if !src.contains("{{") {
            return Ok(None);
        }
        let mut parts = Vec::new();
        let mut at = 0;
        while let Some(open) = src[at..].find("{{") {
            let open = at + open;
            if open > at {
                parts.push(Part::Text(src[at..open].to_string()));
            }
            let column = src[..open].chars().count() + 1;
            let inner_start = open + 2;
            let Some(len) = closing(&src[inner_start..]) else {
                return Err(format!(
                    "the `{{{{` at character {column} is not closed by `}}}}`"
                ));
            };
            let inner = &src[inner_start..inner_start + len];
            let program = JqProgram::compile(inner)
                .map_err(|e| format!("`{{{{{inner}}}}}` at character {column}: {e}"))?;
            parts.push(Part::Jq(program));
            at = inner_start + len + 2;
        }
        if at < src.len() {
            parts.push(Part::Text(src[at..].to_string()));
        }
        Ok(Some(Template { parts }))
    }

    /// The value of the template on `input`: the program's value when the string is one
    /// `{{ jq }}`, else the text with each value written in.
    fn render(&self, input: &Value, limits: &Limits) -> Result<Value, String> {
        let run = |p: &JqProgram| {
            p.run(input, limits)
                .map_err(|e| format!("`{{{{{}}}}}`: {e}", p.source()))
        };
        if let [Part::Jq(p)] = self.parts.as_slice() {
            return run(p);
        }
        let mut text = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => text.push_str(t),
                Part::Jq(p) => match run(p)? {
                    Value::String(s) => text.push_str(&s),
                    other => text.push_str(&other.to_string()),
                },
            }
        }
        Ok(Value::String(text))
    }
}

/// The length of a template's jq program: up to the first `}}` outside braces and strings, so
/// `{{ {a: {b: 1}} }}` and `{{ "}}" }}` hold the whole program.
fn closing(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'{' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A value of an effect: JSON with a compiled template in place of each templated string.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Literal(Value),
    Template(Template),
    List(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    /// Compiles every string of `v`; each problem has the JSON path of its string (`path`,
    /// `path.key`, `path[1]`), and a string that does not compile stands as `null`.
    pub(super) fn compile(v: &Value, path: &str, problems: &mut Vec<Problem>) -> Node {
        match v {
            Value::String(s) => match Template::parse(s) {
                Ok(Some(t)) => Node::Template(t),
                Ok(None) => Node::Literal(v.clone()),
                Err(e) => {
                    problems.push(problem(path, e));
                    Node::Literal(Value::Null)
                }
            },
            Value::Array(items) => Node::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Node::compile(item, &format!("{path}[{i}]"), problems))
                    .collect(),
            ),
            Value::Object(o) => Node::Object(
                o.iter()
                    .map(|(k, item)| {
                        (
                            k.clone(),
                            Node::compile(item, &format!("{path}.{k}"), problems),
                        )
                    })
                    .collect(),
            ),
            other => Node::Literal(other.clone()),
        }
    }

    /// The value on `input`; every template that fails is an error naming its path, and
    /// stands as `null`.
    pub(super) fn render(
        &self,
        input: &Value,
        limits: &Limits,
        path: &str,
        errors: &mut Vec<String>,
    ) -> Value {
        match self {
            Node::Literal(v) => v.clone(),
            Node::Template(t) => t.render(input, limits).unwrap_or_else(|e| {
                errors.push(format!("{path}: {e}"));
                Value::Null
            }),
            Node::List(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| item.render(input, limits, &format!("{path}[{i}]"), errors))
                    .collect(),
            ),
            Node::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, item)| {
                        let v = item.render(input, limits, &format!("{path}.{k}"), errors);
                        (k.clone(), v)
                    })
                    .collect(),
            ),
        }
    }
}
