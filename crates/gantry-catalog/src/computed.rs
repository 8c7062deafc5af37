//! Computed properties: mirror (a value read through relations), aggregation (over the entities
//! that relate to this one) and calculation (a jq program over the entity).
//!
//! Pure functions: the rest of the catalog is seen through [`Lookup`]; which related entities an
//! aggregation's `filter` keeps is decided by the caller (the query language is not used here).

use serde_json::{Number, Value};

use crate::jq::{JqProgram, Limits};
use crate::model::{
    AggregateFunc, AggregationSpec, Blueprint, CalculationSpec, Indexed, Lookup, PropertyType,
};
use crate::schema::check_format;

/// The value at a mirror path from `e`: relation names then a field (`Indexed::field` names,
/// e.g. `title`, `$team`, a property).
///
/// Through single relations the result is the field's value, or null when a relation is empty
/// or names an entity that does not exist. Once the path goes through a `many` relation the
/// result is an array (possibly empty) of the values found, in relation order, nulls dropped.
pub fn mirror(path: &str, e: &Indexed, lookup: &dyn Lookup) -> Value {
    let steps: Vec<&str> = path.split('.').collect();
    let Some((field, relations)) = steps.split_last() else {
        return Value::Null;
    };
    let mut at: Vec<&Indexed> = vec![e];
    let mut many = false;
    for rel in relations {
        let mut next = Vec::new();
        for x in &at {
            let entity = &x.record.entity;
            let Some(spec) = lookup
                .blueprint(&entity.blueprint)
                .and_then(|bp| bp.relations.get(*rel))
            else {
                continue;
            };
            many |= spec.many;
            let Some(value) = entity.relations.get(*rel) else {
                continue;
            };
            next.extend(
                value
                    .targets()
                    .iter()
                    .filter_map(|id| lookup.entity(&spec.target, id)),
            );
        }
        at = next;
    }
    let mut values = at
        .iter()
        .filter_map(|x| x.field(field))
        .map(|v| v.into_owned())
        .filter(|v| !v.is_null());
    if many {
        Value::Array(values.collect())
    } else {
        values.next().unwrap_or(Value::Null)
    }
}

/// Count, sum, min, max or average over `related` (already filtered by the caller) of
/// `spec.property`; values that are not numbers are skipped.
/// `count` is an integer; over nothing, `count` and `sum` are 0 and the others null. Sums of
/// integers stay integers while they fit; min and max keep the number as it was written.
pub fn aggregate(spec: &AggregationSpec, related: &[&Indexed]) -> Value {
    if spec.func == AggregateFunc::Count {
        return Value::from(related.len() as u64);
    }
    let Some(property) = &spec.property else {
        return Value::Null;
    };
    let numbers: Vec<Number> = related
        .iter()
        .filter_map(|x| match x.field(property)?.into_owned() {
            Value::Number(n) => Some(n),
            _ => None,
        })
        .collect();
    let f = |n: &Number| n.as_f64().unwrap_or(0.0);
    match spec.func {
        AggregateFunc::Count => Value::from(numbers.len() as u64),
        AggregateFunc::Sum => {
            let ints: Option<i64> = numbers
                .iter()
                .try_fold(0i64, |acc, n| acc.checked_add(n.as_i64()?));
            match ints {
                Some(total) => Value::from(total),
                None => float(numbers.iter().map(f).sum()),
            }
        }
        AggregateFunc::Min => extreme(&numbers, |a, b| f(a) < f(b)),
        AggregateFunc::Max => extreme(&numbers, |a, b| f(a) > f(b)),
        AggregateFunc::Average => {
            if numbers.is_empty() {
                Value::Null
            } else {
                float(numbers.iter().map(f).sum::<f64>() / numbers.len() as f64)
            }
        }
    }
}

fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn extreme(numbers: &[Number], better: impl Fn(&Number, &Number) -> bool) -> Value {
    let mut best: Option<&Number> = None;
    for n in numbers {
        if best.is_none_or(|b| better(n, b)) {
            best = Some(n);
        }
    }
    best.map_or(Value::Null, |n| Value::Number(n.clone()))
}

/// Runs a calculation over the entity (`Indexed::to_json`) and checks its value has the declared
/// type (null is always allowed; a whole number is an integer, and becomes one) and format.
pub fn calculate(
    spec: &CalculationSpec,
    program: &JqProgram,
    entity_json: &Value,
    limits: &Limits,
) -> Result<Value, String> {
    let value = program
        .run(entity_json, limits)
        .map_err(|e| e.to_string())?;
    let fits = match (&value, spec.ty) {
        (Value::Null, _) => true,
        (Value::String(s), PropertyType::String) => {
            if let Some(format) = spec.format {
                check_format(format, s)
                    .map_err(|why| format!("the calculation gives a value that is {why}"))?;
            }
            true
        }
        (Value::Number(_), PropertyType::Number) => true,
        (Value::Number(n), PropertyType::Integer) => {
            if n.is_i64() || n.is_u64() {
                true
            } else {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if x.fract() == 0.0 && x.abs() < 9.0e15 {
                    return Ok(Value::from(x as i64));
                }
                false
            }
        }
        (Value::Bool(_), PropertyType::Boolean)
        | (Value::Object(_), PropertyType::Object)
        | (Value::Array(_), PropertyType::Array) => true,
        _ => false,
    };
    if fits {
        return Ok(value);
    }
    let mut quoted = value.to_string();
    if let Some((at, _)) = quoted.char_indices().nth(40) {
        quoted.truncate(at);
        quoted.push_str("...");
    }
    Err(format!(
        "the calculation gives {} ({quoted}), but its type is {}",
        kind(&value),
        spec.ty.as_str()
    ))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The relation of `target_bp` an aggregation of `owner_bp` follows: `spec.relation` when it
/// points to `owner_bp`, else the one relation of `target_bp` that does (none when several do).
pub fn aggregation_relation<'a>(
    spec: &'a AggregationSpec,
    owner_bp: &str,
    target_bp: &'a Blueprint,
) -> Option<&'a str> {
    if let Some(rel) = &spec.relation {
        return target_bp
            .relations
            .get(rel)
            .filter(|r| r.target == owner_bp)
            .map(|_| rel.as_str());
    }
    let mut pointing = target_bp
        .relations
        .iter()
        .filter(|(_, r)| r.target == owner_bp)
        .map(|(name, _)| name.as_str());
    match (pointing.next(), pointing.next()) {
        (Some(name), None) => Some(name),
        _ => None,
    }
}
