//! Evaluation of parsed expressions and templates against [`Data`].
//!
//! Recursion here follows the tree, whose height the parser bounds.

use std::ops::Range;

use serde_json::{Map, Value};

use super::ast::{Args, BinaryOp, Expr, ExprKind, Segment, Template, UnaryOp};
use super::data::{Data, StepStatus, Unresolved};
use super::error::EvalError;
use super::functions::{self, CallArgs};
use super::value::{deep_equal, format_f64, number_value, plain_string, type_name};

/// Why an evaluation produced no value.
#[derive(Debug, Clone)]
pub(crate) enum Stop {
    /// Needed data does not exist yet; retry later.
    Unresolved(Box<Unresolved>),
    Error(EvalError),
}

impl Stop {
    /// Errors win over missing data; missing data accumulates.
    pub(crate) fn join(self, other: Stop) -> Stop {
        match (self, other) {
            (Stop::Error(e), _) | (Stop::Unresolved(_), Stop::Error(e)) => Stop::Error(e),
            (Stop::Unresolved(mut a), Stop::Unresolved(b)) => {
                a.merge(*b);
                Stop::Unresolved(a)
            }
        }
    }

    pub(crate) fn unresolved(u: Unresolved) -> Stop {
        Stop::Unresolved(Box::new(u))
    }

    pub(crate) fn error(code: &'static str, message: impl Into<String>) -> Stop {
        Stop::Error(EvalError::new(code, message))
    }

    pub(crate) fn is_path_not_found(&self) -> bool {
        matches!(self, Stop::Error(e) if e.code == PATH_NOT_FOUND)
    }
}

pub(crate) const PATH_NOT_FOUND: &str = "path_not_found";

pub(crate) fn join2<A, B>(a: Result<A, Stop>, b: Result<B, Stop>) -> Result<(A, B), Stop> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(a.join(b)),
    }
}

pub(crate) fn join_all<T>(items: Vec<Result<T, Stop>>) -> Result<Vec<T>, Stop> {
    let mut out = Vec::with_capacity(items.len());
    let mut stop: Option<Stop> = None;
    for item in items {
        match item {
            Ok(v) => out.push(v),
            Err(s) => {
                stop = Some(match stop {
                    Some(prev) => prev.join(s),
                    None => s,
                })
            }
        }
    }
    match stop {
        Some(s) => Err(s),
        None => Ok(out),
    }
}

/// What an expression is evaluated in.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub(crate) data: &'a Data,
    /// The source the expression's spans point into, quoted in error messages.
    /// `None` when the source may itself be sensitive (a `path()` query computed at run time).
    pub(crate) src: Option<&'a str>,
    /// The value of `$` inside a pipeline (or a `path()` query); `None` means the run data.
    pub(crate) dollar: Option<&'a Value>,
}

impl Env<'_> {
    fn quote(&self, span: &Range<usize>) -> String {
        match self.src.and_then(|s| s.get(span.clone())) {
            Some(text) if text.chars().count() <= 80 => format!(" in `{text}`"),
            Some(text) => {
                let short: String = text.chars().take(77).collect();
                format!(" in `{short}...`")
            }
            None => String::new(),
        }
    }

    fn fail(&self, code: &'static str, what: &str, span: &Range<usize>) -> Stop {
        Stop::error(code, format!("{what}{}", self.quote(span)))
    }
}

pub(crate) fn eval_template(t: &Template, src: &str, data: &Data) -> Result<Value, Stop> {
    let env = Env {
        data,
        src: Some(src),
        dollar: None,
    };
    if let [Segment::Expr { expr, .. }] = t.segments.as_slice() {
        return eval(expr, env);
    }
    let mut out = String::new();
    let mut stop: Option<Stop> = None;
    for seg in &t.segments {
        match seg {
            Segment::Text(s) => out.push_str(s),
            Segment::Expr { expr, .. } => match eval(expr, env) {
                Ok(v) => out.push_str(&plain_string(&v)),
                Err(s) => {
                    stop = Some(match stop {
                        Some(prev) => prev.join(s),
                        None => s,
                    })
                }
            },
        }
    }
    match stop {
        Some(s) => Err(s),
        None => Ok(Value::String(out)),
    }
}

// Each arm lives in its own function so the recursive frame of `eval` stays small in
// unoptimised builds (see the stack test).
pub(crate) fn eval(e: &Expr, env: Env<'_>) -> Result<Value, Stop> {
    match &e.kind {
        ExprKind::Null => Ok(Value::Null),
        ExprKind::Bool(b) => Ok(Value::Bool(*b)),
        ExprKind::Number(n) => number_value(*n)
            .ok_or_else(|| env.fail("number_overflow", "number is out of range", &e.span)),
        ExprKind::String(s) => Ok(Value::String(s.clone())),
        ExprKind::Array(items) => eval_array(items, env),
        ExprKind::Map(entries) => eval_map(entries, env),
        ExprKind::Root | ExprKind::Ident(_) | ExprKind::Index { .. } => eval_path(e, env),
        ExprKind::Unary { op, operand } => eval_unary(*op, operand, env, &e.span),
        ExprKind::Binary { op, lhs, rhs } => eval_binary(*op, lhs, rhs, env, &e.span),
        ExprKind::Pipe { lhs, rhs } => eval_pipe(lhs, rhs, env),
        ExprKind::Call { name, args, .. } => eval_call(name, args, env),
    }
}

fn eval_array(items: &[Expr], env: Env<'_>) -> Result<Value, Stop> {
    join_all(items.iter().map(|i| eval(i, env)).collect()).map(Value::Array)
}

fn eval_map(entries: &[(String, Expr)], env: Env<'_>) -> Result<Value, Stop> {
    let values = join_all(entries.iter().map(|(_, v)| eval(v, env)).collect())?;
    let mut map = Map::new();
    for ((k, _), v) in entries.iter().zip(values) {
        map.insert(k.clone(), v);
    }
    Ok(Value::Object(map))
}

fn eval_path(e: &Expr, env: Env<'_>) -> Result<Value, Stop> {
    let place = place(e, env)?;
    materialize(place, env.data)
}

fn eval_unary(
    op: UnaryOp,
    operand: &Expr,
    env: Env<'_>,
    span: &Range<usize>,
) -> Result<Value, Stop> {
    let v = eval(operand, env)?;
    match op {
        UnaryOp::Not => Ok(Value::Bool(!truthy(&v, env, &operand.span)?)),
        UnaryOp::Neg => match v.as_f64() {
            Some(f) => arith_result(-f, env, span),
            None => Err(env.fail(
                "type_mismatch",
                &format!("cannot negate a {}", type_name(&v)),
                span,
            )),
        },
    }
}

fn eval_binary(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    env: Env<'_>,
    span: &Range<usize>,
) -> Result<Value, Stop> {
    match op {
        BinaryOp::And | BinaryOp::Or => logical(op, lhs, rhs, env),
        _ => {
            let (a, b) = join2(eval(lhs, env), eval(rhs, env))?;
            binary(op, &a, &b, env, span)
        }
    }
}

fn eval_pipe(lhs: &Expr, rhs: &Expr, env: Env<'_>) -> Result<Value, Stop> {
    let v = eval(lhs, env)?;
    let inner = Env {
        dollar: Some(&v),
        ..env
    };
    eval(rhs, inner)
}

fn eval_call(name: &str, args: &Args, env: Env<'_>) -> Result<Value, Stop> {
    let args = match args {
        Args::Positional(items) => {
            CallArgs::Positional(items.iter().map(|i| eval(i, env)).collect())
        }
        Args::Keyword(items) => CallArgs::Keyword(
            items
                .iter()
                .map(|k| (k.name.clone(), eval(&k.value, env)))
                .collect(),
        ),
    };
    functions::call(name, args, env.data)
}

/// `&&`/`||` short-circuit; an unresolved left side still lets a definite right side decide
/// (`unresolved && false` is `false`), so `when` conditions settle as early as possible.
fn logical(op: BinaryOp, lhs: &Expr, rhs: &Expr, env: Env<'_>) -> Result<Value, Stop> {
    let decisive = op == BinaryOp::Or;
    let left = match eval(lhs, env) {
        Ok(v) => Ok(truthy(&v, env, &lhs.span)?),
        Err(s) => Err(s),
    };
    match left {
        Ok(b) if b == decisive => Ok(Value::Bool(decisive)),
        Ok(_) => {
            let v = eval(rhs, env)?;
            Ok(Value::Bool(truthy(&v, env, &rhs.span)?))
        }
        Err(Stop::Error(e)) => Err(Stop::Error(e)),
        Err(pending) => match eval(rhs, env) {
            Ok(v) => {
                if truthy(&v, env, &rhs.span)? == decisive {
                    Ok(Value::Bool(decisive))
                } else {
                    Err(pending)
                }
            }
            Err(s) => Err(pending.join(s)),
        },
    }
}

/// Boolean coercion for `!`, `&&`, `||`: booleans, null (false) and the strings
/// `true`/`TRUE`/`false`/`FALSE`.
fn truthy(v: &Value, env: Env<'_>, span: &Range<usize>) -> Result<bool, Stop> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        Value::String(s) if s == "true" || s == "TRUE" => Ok(true),
        Value::String(s) if s == "false" || s == "FALSE" => Ok(false),
        other => Err(env.fail(
            "type_mismatch",
            &format!("expected a boolean, found a {}", type_name(other)),
            span,
        )),
    }
}

fn arith_result(f: f64, env: Env<'_>, span: &Range<usize>) -> Result<Value, Stop> {
    number_value(f).ok_or_else(|| {
        env.fail(
            "number_overflow",
            "arithmetic result is not a finite number",
            span,
        )
    })
}

fn binary(
    op: BinaryOp,
    a: &Value,
    b: &Value,
    env: Env<'_>,
    span: &Range<usize>,
) -> Result<Value, Stop> {
    let mismatch = || {
        env.fail(
            "type_mismatch",
            &format!(
                "operator `{}` cannot combine a {} and a {}",
                op.symbol(),
                type_name(a),
                type_name(b)
            ),
            span,
        )
    };
    match op {
        BinaryOp::Eq => Ok(Value::Bool(deep_equal(a, b))),
        BinaryOp::Ne => Ok(Value::Bool(!deep_equal(a, b))),
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let ord = match (a, b) {
                (Value::Number(x), Value::Number(y)) => x
                    .as_f64()
                    .zip(y.as_f64())
                    .and_then(|(x, y)| x.partial_cmp(&y)),
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                _ => None,
            };
            let ord = ord.ok_or_else(mismatch)?;
            Ok(Value::Bool(match op {
                BinaryOp::Lt => ord.is_lt(),
                BinaryOp::Le => ord.is_le(),
                BinaryOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            }))
        }
        BinaryOp::Add if a.is_string() || b.is_string() => {
            Ok(Value::String(plain_string(a) + &plain_string(b)))
        }
        _ => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return Err(mismatch());
            };
            let r = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div | BinaryOp::Rem if y == 0.0 => {
                    return Err(env.fail("division_by_zero", "division by zero", span));
                }
                BinaryOp::Div => x / y,
                BinaryOp::Rem => x % y,
                _ => x.powf(y),
            };
            arith_result(r, env, span)
        }
    }
}

/// Where a data path points, kept lazy so `parameters.x` does not copy every parameter.
enum Place {
    Value(Value),
    Root,
    Parameters,
    Secrets,
    Connections,
    ConnectionType(String),
    Outputs,
    OutputStep(String),
    Steps,
    StepStatus(String),
    /// `event…` while there is no event; the segments form the unresolved query.
    NoEvent(Vec<String>),
}

fn place(e: &Expr, env: Env<'_>) -> Result<Place, Stop> {
    match &e.kind {
        ExprKind::Root => Ok(root(env)),
        ExprKind::Ident(name) => index(root(env), &Value::String(name.clone()), env, &e.span),
        ExprKind::Index { target, index: key } => {
            let (p, k) = join2(place(target, env), eval(key, env))?;
            index(p, &k, env, &e.span)
        }
        _ => eval(e, env).map(Place::Value),
    }
}

fn root(env: Env<'_>) -> Place {
    match env.dollar {
        Some(v) => Place::Value(v.clone()),
        None => Place::Root,
    }
}

fn key_string(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(super::value::format_number(n)),
        _ => None,
    }
}

fn status_value(s: StepStatus) -> Value {
    let mut m = Map::new();
    m.insert("succeeded".into(), Value::Bool(s == StepStatus::Succeeded));
    m.insert("failed".into(), Value::Bool(s == StepStatus::Failed));
    m.insert("skipped".into(), Value::Bool(s == StepStatus::Skipped));
    Value::Object(m)
}

fn index(p: Place, key: &Value, env: Env<'_>, span: &Range<usize>) -> Result<Place, Stop> {
    let not_found = || env.fail(PATH_NOT_FOUND, "no value found", span);
    let Some(k) = key_string(key) else {
        return Err(env.fail(
            "index_type",
            &format!("cannot index with a {}", type_name(key)),
            span,
        ));
    };
    let data = env.data;
    match p {
        Place::Root => match k.as_str() {
            "parameters" => Ok(Place::Parameters),
            "secrets" => Ok(Place::Secrets),
            "connections" => Ok(Place::Connections),
            "outputs" => Ok(Place::Outputs),
            "steps" => Ok(Place::Steps),
            "event" => Ok(match &data.event {
                Some(ev) => Place::Value(ev.clone()),
                None => Place::NoEvent(Vec::new()),
            }),
            _ => Err(not_found()),
        },
        Place::Parameters => data
            .parameters
            .get(&k)
            .map(|v| Place::Value(v.clone()))
            .ok_or_else(|| Stop::unresolved(Unresolved::parameter(&k))),
        Place::Secrets => data
            .secrets
            .get(&k)
            .map(|v| Place::Value(Value::String(v.clone())))
            .ok_or_else(|| Stop::unresolved(Unresolved::secret(&k))),
        Place::Connections => Ok(Place::ConnectionType(k)),
        Place::ConnectionType(t) => data
            .connections
            .get(&t)
            .and_then(|m| m.get(&k))
            .map(|v| Place::Value(v.clone()))
            .ok_or_else(|| Stop::unresolved(Unresolved::connection(&t, &k))),
        Place::Outputs => Ok(Place::OutputStep(k)),
        Place::OutputStep(step) => data
            .outputs
            .get(&step)
            .and_then(|m| m.get(&k))
            .map(|v| Place::Value(v.clone()))
            .ok_or_else(|| Stop::unresolved(Unresolved::output(&step, &k))),
        Place::Steps => Ok(Place::StepStatus(k)),
        Place::StepStatus(step) => match data.steps.get(&step) {
            None => Err(Stop::unresolved(Unresolved::status(&step, &k))),
            Some(s) => match status_value(*s) {
                Value::Object(mut m) => m.remove(&k).map(Place::Value).ok_or_else(not_found),
                _ => Err(not_found()),
            },
        },
        Place::NoEvent(mut path) => {
            path.push(k);
            Ok(Place::NoEvent(path))
        }
        Place::Value(v) => index_value(v, key, &k)
            .map(Place::Value)
            .ok_or_else(not_found),
    }
}

/// Indexes a concrete value: maps by key, arrays by non-negative integer (also as a string).
pub(crate) fn index_value(v: Value, key: &Value, key_str: &str) -> Option<Value> {
    match v {
        Value::Object(mut m) => m.remove(key_str),
        Value::Array(mut a) => {
            let i = match key {
                Value::Number(n) => n.as_u64().or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .and_then(|f| format_f64(f).parse().ok())
                }),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }?;
            let i = usize::try_from(i).ok()?;
            if i < a.len() {
                Some(a.swap_remove(i))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn materialize(p: Place, data: &Data) -> Result<Value, Stop> {
    let strings = |m: &std::collections::BTreeMap<String, String>| {
        Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    let connections = || {
        Value::Object(
            data.connections
                .iter()
                .map(|(t, m)| {
                    let inner = m.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
                    (t.clone(), Value::Object(inner))
                })
                .collect(),
        )
    };
    let outputs = || {
        Value::Object(
            data.outputs
                .iter()
                .map(|(s, m)| (s.clone(), Value::Object(m.clone())))
                .collect(),
        )
    };
    let steps = || {
        Value::Object(
            data.steps
                .iter()
                .map(|(s, st)| (s.clone(), status_value(*st)))
                .collect(),
        )
    };
    match p {
        Place::Value(v) => Ok(v),
        Place::Root => {
            let mut m = Map::new();
            m.insert("parameters".into(), Value::Object(data.parameters.clone()));
            m.insert("secrets".into(), strings(&data.secrets));
            m.insert("connections".into(), connections());
            m.insert("outputs".into(), outputs());
            m.insert("steps".into(), steps());
            if let Some(ev) = &data.event {
                m.insert("event".into(), ev.clone());
            }
            Ok(Value::Object(m))
        }
        Place::Parameters => Ok(Value::Object(data.parameters.clone())),
        Place::Secrets => Ok(strings(&data.secrets)),
        Place::Connections => Ok(connections()),
        Place::Outputs => Ok(outputs()),
        Place::Steps => Ok(steps()),
        Place::ConnectionType(t) => match data.connections.get(&t) {
            Some(m) => Ok(Value::Object(
                m.iter().map(|(n, v)| (n.clone(), v.clone())).collect(),
            )),
            None => Err(Stop::unresolved(Unresolved::connection(&t, ""))),
        },
        Place::OutputStep(s) => match data.outputs.get(&s) {
            Some(m) => Ok(Value::Object(m.clone())),
            None => Err(Stop::unresolved(Unresolved::output(&s, ""))),
        },
        Place::StepStatus(s) => match data.steps.get(&s) {
            Some(st) => Ok(status_value(*st)),
            None => Err(Stop::unresolved(Unresolved::status(&s, ""))),
        },
        Place::NoEvent(path) => Err(Stop::unresolved(Unresolved::data(path.join(".")))),
    }
}
