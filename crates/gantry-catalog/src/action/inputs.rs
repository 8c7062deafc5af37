//! The inputs a user gives to a run of an action, checked against the action's input specs.

use std::fmt;

use serde_json::Value;

use super::{Action, InputSpec};
use crate::model::{Lookup, Map, PropertyType};
use crate::query::{Prepared, Query};
use crate::schema::{self, problem, suggestion, Problem};

/// The inputs of a run, defaults applied and checked: the plain ones, and the secret ones
/// the server encrypts before anything stores them.
#[derive(Clone, Default, PartialEq)]
pub struct ValidatedInputs {
    pub plain: Map,
    pub secret: Map,
}

/// Shows secret values as `***`, so a log line of the inputs holds no secret.
impl fmt::Debug for ValidatedInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked: Vec<(&String, &str)> = self.secret.keys().map(|k| (k, "***")).collect();
        f.debug_struct("ValidatedInputs")
            .field("plain", &self.plain)
            .field("secret", &masked)
            .finish()
    }
}

/// Checks the inputs `given` to a run of `action`: each is a declared input and valid
/// against its spec, each required input is there (a default counts), and each entity picker
/// names an entity of its blueprint that matches its query. A `null` input counts as not given.
///
/// Every problem is reported, with its path (`inputs.reason`, `inputs.tags[1]`). Messages
/// about a secret input never quote its value.
pub fn validate_inputs(
    action: &Action,
    given: &Map,
    lookup: &dyn Lookup,
) -> Result<ValidatedInputs, Vec<Problem>> {
    let specs = &action.inputs.properties;
    let mut out = Vec::new();
    for name in given.keys() {
        if !specs.contains_key(name) {
            out.push(problem(
                format!("inputs.{name}"),
                format!(
                    "the action `{}` has no input `{name}`{}",
                    action.identifier,
                    suggestion(name, specs.keys().map(String::as_str))
                ),
            ));
        }
    }
    let mut inputs = ValidatedInputs::default();
    for (name, spec) in specs {
        let path = format!("inputs.{name}");
        let value = match given
            .get(name)
            .filter(|v| !v.is_null())
            .or(spec.default.as_ref())
        {
            Some(v) => v.clone(),
            None => {
                if action.inputs.required.contains(name) {
                    out.push(problem(path, format!("`{name}` is required")));
                }
                continue;
            }
        };
        if spec.secret {
            check_secret(spec, &value, &path, &mut out);
            inputs.secret.insert(name.clone(), value);
        } else {
            let mut found = Vec::new();
            check_input(spec, &value, &path, lookup, &mut found);
            // The problems of a list's items in the order of the items.
            found.sort_by_key(|p| item_index(&p.path, &path));
            out.append(&mut found);
            inputs.plain.insert(name.clone(), value);
        }
    }
    if out.is_empty() {
        Ok(inputs)
    } else {
        Err(out)
    }
}

/// The index of the item of the input at `input` that `path` is about; `None` (first) for
/// the input itself.
fn item_index(path: &str, input: &str) -> Option<usize> {
    let rest = path.strip_prefix(input)?.strip_prefix('[')?;
    rest.split(']').next()?.parse().ok()
}

fn check_input(
    spec: &InputSpec,
    v: &Value,
    path: &str,
    lookup: &dyn Lookup,
    out: &mut Vec<Problem>,
) {
    schema::check_property_value(&spec.as_property(), v, path, out);
    // Entity pickers: the value, or each item of a list of pickers; a value that is not a
    // string was reported above.
    if spec.is_entity_picker() {
        if let Value::String(id) = v {
            check_picked(spec, &[(path.to_string(), id)], lookup, out);
        }
    } else if let (Some(items), Value::Array(values)) = (&spec.items, v) {
        if items.is_entity_picker() {
            let picked: Vec<(String, &str)> = values
                .iter()
                .enumerate()
                .filter_map(|(i, item)| Some((format!("{path}[{i}]"), item.as_str()?)))
                .collect();
            check_picked(items, &picked, lookup, out);
        }
    }
}

/// Each picked identifier (with its path) names an entity of the picker's blueprint that
/// matches the picker's query; the query is prepared once for them all.
fn check_picked(
    spec: &InputSpec,
    picked: &[(String, &str)],
    lookup: &dyn Lookup,
    out: &mut Vec<Problem>,
) {
    let Some(blueprint) = spec.blueprint.as_deref() else {
        for (path, _) in picked {
            out.push(problem(
                path,
                "the action's entity picker names no blueprint: the action needs fixing",
            ));
        }
        return;
    };
    let query = match spec.query.as_ref().map(Query::from_value) {
        None => None,
        Some(Ok(q)) => Some(q),
        Some(Err(e)) => {
            for (path, _) in picked {
                out.push(problem(
                    path,
                    format!("the action's entity picker has an invalid query ({e}): the action needs fixing"),
                ));
            }
            return;
        }
    };
    let prepared: Option<(&Query, Prepared<'_>)> = query.as_ref().map(|q| (q, q.prepare(lookup)));
    for (path, id) in picked {
        match lookup.entity(blueprint, id) {
            None => out.push(problem(
                path,
                format!("there is no `{blueprint}` entity `{id}`"),
            )),
            Some(e) => {
                if let Some((q, p)) = &prepared {
                    if !p.matches(e, lookup) {
                        out.push(problem(
                            path,
                            format!("`{id}` is not one of the entities this input offers: {q}"),
                        ));
                    }
                }
            }
        }
    }
}

/// A secret input: the checks of a plain one, with messages that name the rule broken but
/// never quote the value.
fn check_secret(spec: &InputSpec, v: &Value, path: &str, out: &mut Vec<Problem>) {
    let Value::String(s) = v else {
        out.push(problem(
            path,
            format!("expected {}, found {}", schema::article(spec.ty), kind(v)),
        ));
        return;
    };
    if spec.ty != PropertyType::String {
        out.push(problem(
            path,
            format!("expected {}, found a string", schema::article(spec.ty)),
        ));
        return;
    }
    // Lengths are reported as counts only, so the shared check may report them.
    let mut lengths = InputSpec::of(PropertyType::String);
    lengths.min_length = spec.min_length;
    lengths.max_length = spec.max_length;
    schema::check_property_value(&lengths.as_property(), v, path, out);
    if let Some(pattern) = &spec.pattern {
        let mut only = InputSpec::of(PropertyType::String);
        only.pattern = Some(pattern.clone());
        let mut found = Vec::new();
        schema::check_property_value(&only.as_property(), v, path, &mut found);
        if !found.is_empty() {
            out.push(problem(
                path,
                format!("the value does not match the pattern `{pattern}`"),
            ));
        }
    }
    if let Some(format) = spec.format.and_then(super::InputFormat::property_format) {
        if schema::check_format(format, s).is_err() {
            out.push(problem(
                path,
                format!("the value is not in the `{}` format", format.as_str()),
            ));
        }
    }
    if let Some(values) = &spec.enum_values {
        if !values.iter().any(|a| a == v) {
            out.push(problem(path, "the value is not one of the allowed values"));
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
