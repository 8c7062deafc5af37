//! JSON value helpers shared by operators and functions.

use serde_json::{Number, Value};

/// Largest integer every f64 below it represents exactly (2^53).
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Arithmetic happens in f64; integral results become JSON integers so `2 + 2` renders as `4`.
/// `None` for infinities and NaN, which JSON cannot hold.
pub(crate) fn number_value(f: f64) -> Option<Value> {
    if !f.is_finite() {
        return None;
    }
    if f.fract() == 0.0 && f.abs() <= EXACT_INT {
        // Exact: f is integral and within i64 range.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Value::from(f as i64));
    }
    Number::from_f64(f).map(Value::Number)
}

/// Shortest decimal form; Rust's float `Display` prints `3` for `3.0` and never uses exponents.
pub(crate) fn format_f64(f: f64) -> String {
    if f == 0.0 {
        return "0".to_string();
    }
    format!("{f}")
}

pub(crate) fn format_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    n.as_f64().map_or_else(|| n.to_string(), format_f64)
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "map",
    }
}

/// The text a value contributes when spliced into a string: `null` is empty, strings are
/// unquoted, maps and arrays are JSON.
pub(crate) fn plain_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(n),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// `toString` of a scalar; `None` for maps and arrays.
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::Array(_) | Value::Object(_) => None,
        other => Some(plain_string(other)),
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x == y,
        _ => match (a.as_u64(), b.as_u64()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64() == b.as_f64(),
        },
    }
}

/// Deep, type-strict equality; numbers compare by value (`1 == 1.0`).
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        _ => false,
    }
}
