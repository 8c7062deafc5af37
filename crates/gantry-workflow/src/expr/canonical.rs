//! Evaluation of Gantry's canonical JSON form: tags (`{"$type": …}`), function objects
//! (`{"$fn.name": …}`), encoded strings (`{"$encoding": "base64", …}`) and `${…}` templates,
//! anywhere inside an otherwise plain JSON value.

use serde_json::{Map, Value};

use super::data::{Data, Unresolved};
use super::error::EvalError;
use super::eval::{eval_template, join_all, Stop};
use super::functions::{self, run_query, CallArgs};
use super::value::type_name;
use super::{has_template, parse_template};

/// Canonical values nest at most this deep; deeper input is an error, not a stack overflow.
const MAX_VALUE_DEPTH: usize = 128;

/// The result of evaluating a canonical value. Parts that could not be evaluated keep their
/// original canonical form in `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub value: Value,
    pub unresolved: Unresolved,
    pub errors: Vec<EvalError>,
}

impl Evaluation {
    /// True when nothing was missing and nothing failed.
    pub fn is_complete(&self) -> bool {
        self.unresolved.is_empty() && self.errors.is_empty()
    }
}

/// The verdict on a `when` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum WhenOutcome {
    Satisfied,
    NotSatisfied,
    /// Not decided yet; retry when this data exists.
    Unresolved(Unresolved),
    /// The condition is broken (for example it is not a boolean); Gantry fails the step.
    Error(Vec<EvalError>),
}

/// Evaluates every expression inside `canonical`. Never fails as a whole: what is missing is in
/// `unresolved`, what is wrong is in `errors`, and both leave the original node in place.
pub fn evaluate(canonical: &Value, data: &Data) -> Evaluation {
    let walker = Walker { data };
    let mut acc = Accumulator::default();
    let mut path = Vec::new();
    let value = walker.lenient(canonical, &mut path, 0, &mut acc);
    Evaluation {
        value,
        unresolved: acc.unresolved,
        errors: acc.errors,
    }
}

/// Evaluates a `when` value: `null` (absent) is satisfied, a list is a logical AND.
/// Gantry's choice where Relay differed: a non-boolean condition (including the strings
/// `"true"`/`"false"`) is an error with code `condition_type`, which fails the step.
/// Errors take precedence over `false`, which takes precedence over missing data.
pub fn evaluate_when(canonical: &Value, data: &Data) -> WhenOutcome {
    let walker = Walker { data };
    let conditions: Vec<(Vec<PathSegment>, &Value)> = match canonical {
        Value::Null => return WhenOutcome::Satisfied,
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (vec![PathSegment::Index(i)], v))
            .collect(),
        other => vec![(Vec::new(), other)],
    };
    let mut errors = Vec::new();
    let mut unresolved = Unresolved::default();
    let mut any_false = false;
    for (mut path, cond) in conditions {
        match walker.strict(cond, &mut path, 1) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => any_false = true,
            Ok(other) => errors.push(EvalError {
                code: "condition_type",
                message: format!(
                    "a condition must evaluate to a boolean, not a {}",
                    type_name(&other)
                ),
                path: format_path(&path),
            }),
            Err(Stop::Unresolved(u)) => unresolved.merge(*u),
            Err(Stop::Error(mut e)) => {
                if e.path.is_empty() {
                    e.path = format_path(&path);
                }
                errors.push(e);
            }
        }
    }
    if !errors.is_empty() {
        WhenOutcome::Error(errors)
    } else if any_false {
        WhenOutcome::NotSatisfied
    } else if !unresolved.is_empty() {
        WhenOutcome::Unresolved(unresolved)
    } else {
        WhenOutcome::Satisfied
    }
}

#[derive(Default)]
struct Accumulator {
    unresolved: Unresolved,
    errors: Vec<EvalError>,
}

impl Accumulator {
    fn record(&mut self, stop: Stop, path: &[PathSegment]) {
        match stop {
            Stop::Unresolved(u) => self.unresolved.merge(*u),
            Stop::Error(mut e) => {
                if e.path.is_empty() {
                    e.path = format_path(path);
                }
                self.errors.push(e);
            }
        }
    }
}

/// One step of a location inside an evaluated value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// A location as [`EvalError::path`](super::EvalError) writes it: keys that are identifiers
/// joined by `.`, other keys as `['k']`, indexes as `[i]`. Callers that match error paths
/// against locations of their own build them with this function too.
pub fn format_path(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
            PathSegment::Key(k) => {
                let plain = k.chars().next().is_some_and(super::lexer::is_ident_start)
                    && k.chars().all(super::lexer::is_ident_continue);
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                } else {
                    let escaped = k.replace('\\', "\\\\").replace('\'', "\\'");
                    out.push_str(&format!("['{escaped}']"));
                }
            }
        }
    }
    out
}

/// What a special object is, decided by its keys.
enum Special<'v> {
    Tag(&'v str),
    Function(&'v str, &'v Value),
    Encoded,
}

const TAGS: [&str; 6] = [
    "Parameter",
    "Secret",
    "Connection",
    "Output",
    "Data",
    "Answer",
];

fn special(m: &Map<String, Value>) -> Option<Special<'_>> {
    if let Some(Value::String(t)) = m.get("$type") {
        if TAGS.contains(&t.as_str()) {
            return Some(Special::Tag(t));
        }
    }
    if m.len() == 1 {
        if let Some((k, v)) = m.iter().next() {
            if let Some(name) = k.strip_prefix("$fn.") {
                return Some(Special::Function(name, v));
            }
        }
    }
    if m.contains_key("$encoding") {
        return Some(Special::Encoded);
    }
    None
}

struct Walker<'a> {
    data: &'a Data,
}

impl Walker<'_> {
    fn too_deep(path: &[PathSegment]) -> Stop {
        Stop::Error(EvalError {
            code: "too_deep",
            message: format!("value nests more than {MAX_VALUE_DEPTH} levels deep"),
            path: format_path(path),
        })
    }

    /// Evaluates what it can; failures are recorded and leave the original node in place.
    fn lenient(
        &self,
        v: &Value,
        path: &mut Vec<PathSegment>,
        depth: usize,
        acc: &mut Accumulator,
    ) -> Value {
        if depth > MAX_VALUE_DEPTH {
            acc.record(Self::too_deep(path), path);
            return v.clone();
        }
        let evaluates = match v {
            Value::String(s) => has_template(s),
            Value::Object(m) => special(m).is_some(),
            _ => false,
        };
        if evaluates {
            return match self.strict(v, path, depth) {
                Ok(out) => out,
                Err(stop) => {
                    acc.record(stop, path);
                    v.clone()
                }
            };
        }
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, child) in m {
                    path.push(PathSegment::Key(k.clone()));
                    let c = self.lenient(child, path, depth + 1, acc);
                    path.pop();
                    out.insert(k.clone(), c);
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, child) in items.iter().enumerate() {
                    path.push(PathSegment::Index(i));
                    out.push(self.lenient(child, path, depth + 1, acc));
                    path.pop();
                }
                Value::Array(out)
            }
            other => other.clone(),
        }
    }

    /// Evaluates completely or not at all; used for function arguments and tag fields, which
    /// need whole values.
    fn strict(&self, v: &Value, path: &mut Vec<PathSegment>, depth: usize) -> Result<Value, Stop> {
        if depth > MAX_VALUE_DEPTH {
            return Err(Self::too_deep(path));
        }
        let located = |stop: Stop, path: &[PathSegment]| match stop {
            Stop::Error(mut e) if e.path.is_empty() => {
                e.path = format_path(path);
                Stop::Error(e)
            }
            other => other,
        };
        match v {
            Value::String(s) if has_template(s) => {
                let t = parse_template(s).map_err(|e| {
                    Stop::Error(EvalError {
                        code: e.code,
                        message: format!(
                            "{} (bytes {}..{} of the expression)",
                            e.message, e.span.start, e.span.end
                        ),
                        path: format_path(path),
                    })
                })?;
                eval_template(&t, s, self.data).map_err(|s| located(s, path))
            }
            Value::Object(m) => match special(m) {
                Some(Special::Tag(tag)) => {
                    self.tag(tag, m, path, depth).map_err(|s| located(s, path))
                }
                Some(Special::Function(name, args)) => {
                    let args = self.function_args(args, path, depth)?;
                    functions::call(name, args, self.data).map_err(|s| located(s, path))
                }
                Some(Special::Encoded) => decode(m).map_err(|s| located(s, path)),
                None => {
                    let mut results = Vec::with_capacity(m.len());
                    for (k, child) in m {
                        path.push(PathSegment::Key(k.clone()));
                        let r = self
                            .strict(child, path, depth + 1)
                            .map_err(|s| located(s, path));
                        path.pop();
                        results.push(r);
                    }
                    let values = join_all(results)?;
                    Ok(Value::Object(m.keys().cloned().zip(values).collect()))
                }
            },
            Value::Array(items) => {
                let mut results = Vec::with_capacity(items.len());
                for (i, child) in items.iter().enumerate() {
                    path.push(PathSegment::Index(i));
                    let r = self
                        .strict(child, path, depth + 1)
                        .map_err(|s| located(s, path));
                    path.pop();
                    results.push(r);
                }
                join_all(results).map(Value::Array)
            }
            other => Ok(other.clone()),
        }
    }

    fn function_args(
        &self,
        args: &Value,
        path: &mut Vec<PathSegment>,
        depth: usize,
    ) -> Result<CallArgs, Stop> {
        let child = |seg: PathSegment, v: &Value, path: &mut Vec<PathSegment>| {
            path.push(seg);
            let r = self.strict(v, path, depth + 2);
            path.pop();
            r
        };
        Ok(match args {
            Value::Array(items) => CallArgs::Positional(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| child(PathSegment::Index(i), v, path))
                    .collect(),
            ),
            Value::Object(m) if special(m).is_none() => CallArgs::Keyword(
                m.iter()
                    .map(|(k, v)| (k.clone(), child(PathSegment::Key(k.clone()), v, path)))
                    .collect(),
            ),
            // `!Fn.name x` is one positional argument.
            other => CallArgs::Positional(vec![self.strict(other, path, depth + 1)]),
        })
    }

    /// A tag's field, itself possibly an expression, which must end up a string.
    fn field(
        &self,
        m: &Map<String, Value>,
        names: &[&str],
        tag: &str,
        path: &mut Vec<PathSegment>,
        depth: usize,
    ) -> Result<String, Stop> {
        let Some((name, v)) = names.iter().find_map(|n| m.get(*n).map(|v| (*n, v))) else {
            return Err(Stop::error(
                "tag_invalid",
                format!(
                    "!{tag} needs the field `{}`",
                    names.first().copied().unwrap_or("")
                ),
            ));
        };
        path.push(PathSegment::Key(name.to_string()));
        let r = self.strict(v, path, depth + 1);
        path.pop();
        match r? {
            Value::String(s) => Ok(s),
            other => Err(Stop::error(
                "tag_invalid",
                format!(
                    "!{tag} field `{name}` must be a string, not a {}",
                    type_name(&other)
                ),
            )),
        }
    }

    fn tag(
        &self,
        tag: &str,
        m: &Map<String, Value>,
        path: &mut Vec<PathSegment>,
        depth: usize,
    ) -> Result<Value, Stop> {
        let data = self.data;
        let field =
            |names: &[&str], path: &mut Vec<PathSegment>| self.field(m, names, tag, path, depth);
        match tag {
            "Parameter" => {
                let name = field(&["name"], path)?;
                data.parameters
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| Stop::unresolved(Unresolved::parameter(&name)))
            }
            "Secret" => {
                let name = field(&["name"], path)?;
                data.secrets
                    .get(&name)
                    .map(|s| Value::String(s.clone()))
                    .ok_or_else(|| Stop::unresolved(Unresolved::secret(&name)))
            }
            "Connection" => {
                let kind = field(&["type"], path);
                let name = field(&["name"], path);
                let (kind, name) = super::eval::join2(kind, name)?;
                data.connections
                    .get(&kind)
                    .and_then(|c| c.get(&name))
                    .cloned()
                    .ok_or_else(|| Stop::unresolved(Unresolved::connection(&kind, &name)))
            }
            "Output" => {
                let from = field(&["from", "taskName"], path);
                let name = field(&["name"], path);
                let (from, name) = super::eval::join2(from, name)?;
                data.outputs
                    .get(&from)
                    .and_then(|o| o.get(&name))
                    .cloned()
                    .ok_or_else(|| Stop::unresolved(Unresolved::output(&from, &name)))
            }
            "Answer" => {
                let ask = field(&["askRef"], path);
                let name = field(&["name"], path);
                let (ask, name) = super::eval::join2(ask, name)?;
                data.answers
                    .get(&ask)
                    .and_then(|a| a.get(&name))
                    .cloned()
                    .ok_or_else(|| Stop::unresolved(Unresolved::answer(&ask, &name)))
            }
            _ => {
                // Data: a path query into the event.
                let query = field(&["query"], path)?;
                match &data.event {
                    None => Err(Stop::unresolved(Unresolved::data(query))),
                    Some(event) => run_query(event, &query, data),
                }
            }
        }
    }
}

fn decode(m: &Map<String, Value>) -> Result<Value, Stop> {
    match m.get("$encoding") {
        Some(Value::String(e)) if e == "base64" => {}
        _ => {
            return Err(Stop::error(
                "encoding_unknown",
                "unknown `$encoding`; only 'base64' is supported",
            ))
        }
    }
    let Some(Value::String(encoded)) = m.get("data") else {
        return Err(Stop::error(
            "encoding_invalid",
            "an encoded value needs a string field `data`",
        ));
    };
    let bytes = decode_base64(encoded)
        .ok_or_else(|| Stop::error("encoding_invalid", "`data` is not valid base64"))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| Stop::error("encoding_invalid", "decoded `data` is not UTF-8 text"))
}

/// Standard-alphabet base64 with optional padding; whitespace (line breaks of `!!binary`) is
/// ignored.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    }
    let clean: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let body_len = clean.iter().rposition(|b| *b != b'=').map_or(0, |p| p + 1);
    let padding = clean.len() - body_len;
    if padding > 2 || (padding > 0 && !clean.len().is_multiple_of(4)) {
        return None;
    }
    let body = clean.get(..body_len)?;
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc: u32 = 0;
        for &c in chunk {
            acc = (acc << 6) | sextet(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => {
                if acc & 0b11 != 0 {
                    return None;
                }
                out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]);
            }
            2 => {
                if acc & 0b1111 != 0 {
                    return None;
                }
                out.push((acc >> 4) as u8);
            }
            _ => return None,
        }
    }
    Some(out)
}
