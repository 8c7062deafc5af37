//! Computed properties: mirrors (a value read through relations), aggregations (over the
//! entities that point at this one) and calculations (a jq program over the entity).

use serde_json::{Number, Value};

use crate::jq::{JqProgram, Limits};
use crate::model::*;

/// The value at a mirror path from `e`: relation names, then a field of the entity reached
/// (`owner.title`, `service.owner.$team`). Null when a relation is empty or names nothing;
/// through a `many` relation, the list of the values found (nulls left out).
pub fn mirror(path: &str, e: &Indexed, lookup: &dyn Lookup) -> Value {
    let segments: Vec<&str> = path.split('.').collect();
    let Some((field, relations)) = segments.split_last() else {
        return Value::Null;
    };
    let mut here: Vec<&Indexed> = vec![e];
    let mut many = false;
    for rel in relations {
        let mut next = Vec::new();
        for entity in &here {
            let Some(bp) = lookup.blueprint(&entity.record.entity.blueprint) else {
                continue;
            };
            let Some(spec) = bp.relations.get(*rel) else {
                continue;
            };
            many |= spec.many;
            if let Some(value) = entity.record.entity.relations.get(*rel) {
                for t in value.targets() {
                    if let Some(target) = lookup.entity(&spec.target, t) {
                        next.push(target);
                    }
                }
            }
        }
        here = next;
    }
    let values: Vec<Value> = here
        .iter()
        .filter_map(|x| x.field(field).map(|v| v.into_owned()))
        .filter(|v| !v.is_null())
        .collect();
    if many {
        Value::Array(values)
    } else {
        values.into_iter().next().unwrap_or(Value::Null)
    }
}

/// Which relation of `target_bp` an aggregation follows: the one it names, or the only one
/// whose target is `owner_bp`.
pub fn aggregation_relation<'a>(
    spec: &'a AggregationSpec,
    owner_bp: &str,
    target_bp: &'a Blueprint,
) -> Option<&'a str> {
    match &spec.relation {
        Some(r) => target_bp
            .relations
            .get_key_value(r)
            .filter(|(_, s)| s.target == owner_bp)
            .map(|(k, _)| k.as_str()),
        None => {
            let mut found = target_bp
                .relations
                .iter()
                .filter(|(_, s)| s.target == owner_bp);
            let first = found.next()?;
            if found.next().is_some() {
                return None;
            }
            Some(first.0.as_str())
        }
    }
}

fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::Number(Number::from(x as i64))
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// count, sum, min, max or average over `related` (already filtered) of `spec.property`;
/// values that are not numbers are skipped. Empty: count 0, sum 0, the others null.
pub fn aggregate(spec: &AggregationSpec, related: &[&Indexed]) -> Value {
    if spec.func == AggregateFunc::Count {
        return Value::from(related.len());
    }
    let Some(property) = spec.property.as_deref() else {
        return Value::Null;
    };
    let values: Vec<f64> = related
        .iter()
        .filter_map(|e| e.field(property).and_then(|v| v.as_f64()))
        .collect();
    match spec.func {
        AggregateFunc::Count => Value::from(related.len()),
        AggregateFunc::Sum => number(values.iter().sum()),
        _ if values.is_empty() => Value::Null,
        AggregateFunc::Min => number(values.iter().copied().fold(f64::INFINITY, f64::min)),
        AggregateFunc::Max => number(values.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        AggregateFunc::Average => number(values.iter().sum::<f64>() / values.len() as f64),
    }
}

/// Runs a calculation over the entity's JSON and checks that the result has the declared
/// type (null is always allowed).
pub fn calculate(
    spec: &CalculationSpec,
    program: &JqProgram,
    entity_json: &Value,
    limits: &Limits,
) -> Result<Value, String> {
    let v = program
        .run(entity_json, limits)
        .map_err(|e| e.to_string())?;
    let ok = match (&v, spec.ty) {
        (Value::Null, _) => true,
        (Value::String(_), PropertyType::String) => true,
        (Value::Bool(_), PropertyType::Boolean) => true,
        (Value::Number(_), PropertyType::Number) => true,
        (Value::Number(n), PropertyType::Integer) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (Value::Array(_), PropertyType::Array) => true,
        (Value::Object(_), PropertyType::Object) => true,
        _ => false,
    };
    if ok {
        Ok(v)
    } else {
        Err(format!(
            "the calculation gave {v}, which is not of type {}",
            spec.ty.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_stay_integers_and_others_stay_floats() {
        assert_eq!(number(3.0), Value::from(3));
        assert_eq!(number(2.5), serde_json::json!(2.5));
    }
}
