//! What makes a blueprint definition sound, and an entity valid against its blueprint.
//!
//! Every check reports every problem it finds, each with the JSON path of the mistake in the
//! submitted document (`properties.port`, `relations.deps[2]`, `schema.properties.port.type`),
//! so a user with five mistakes sees five messages.
//! Pure functions over the model: other blueprints are reached through a closure, and nothing
//! here reads or writes anything else.
//!
//! Validating entities is on the bulk-upsert path: a [`CompiledBlueprint`] compiles the
//! blueprint's patterns once, and validating a valid entity allocates nothing but the result.

use std::collections::HashSet;
use std::fmt;

use indexmap::IndexMap;
use serde_json::Value;

use crate::jq::JqProgram;
use crate::model::{
    AggregateFunc, Blueprint, Entity, Format, PropertySpec, PropertyType, RelationValue,
    META_FIELDS,
};
use crate::query::QueryError;

/// One mistake in a submitted document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Where: the JSON path in the submitted document.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for Problem {}

pub(crate) fn problem(path: impl fmt::Display, message: impl Into<String>) -> Problem {
    Problem {
        path: path.to_string(),
        message: message.into(),
    }
}

const MAX_IDENTIFIER_CHARS: usize = 100;
const MAX_TITLE_CHARS: usize = 200;
/// Compiled patterns may take this much memory; a pattern such as `(a{1000}){1000}` is refused.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Blueprint and entity identifiers: 1 to 100 characters of letters, digits and `_ . @ : -`,
/// starting with a letter or a digit.
pub fn check_identifier(id: &str) -> Result<(), String> {
    let Some(first) = id.chars().next() else {
        return Err("an identifier cannot be empty".into());
    };
    if id.chars().count() > MAX_IDENTIFIER_CHARS {
        return Err(format!(
            "`{}...` is longer than {MAX_IDENTIFIER_CHARS} characters",
            id.chars().take(20).collect::<String>()
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.@:-".contains(*c)))
    {
        return Err(format!(
            "`{id}` contains {}: use letters, digits and _ . @ : -",
            describe_char(bad)
        ));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(format!("`{id}` must start with a letter or a digit"));
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    if c.is_whitespace() {
        "a space".into()
    } else {
        format!("`{c}`")
    }
}

/// Names of properties, relations and computed properties: an identifier without `.` (mirror
/// paths and queries split on it), not a meta field and not starting with `$`.
fn check_name(name: &str) -> Result<(), String> {
    if name.starts_with('$') {
        return Err(format!(
            "`{name}` starts with `$`, which marks meta fields such as `$identifier`"
        ));
    }
    if META_FIELDS.contains(&name) {
        return Err(format!(
            "`{name}` is a field every entity has (a meta field); choose another name"
        ));
    }
    check_identifier(name)?;
    if name.contains('.') {
        return Err(format!(
            "`{name}` contains `.`, which separates the steps of mirror paths"
        ));
    }
    Ok(())
}

pub(crate) fn suggestion<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    gantry_workflow::diagnostic::suggest(name, known)
        .map(|s| format!("; {s}"))
        .unwrap_or_default()
}

/// A query error at `path`: a JSON rule form error at its own path below it, a text form
/// error with its line and column.
pub(crate) fn query_problem(path: &str, e: &QueryError) -> Problem {
    match (e.path(), e.line_column()) {
        (Some(p), _) if p.starts_with('[') => problem(format!("{path}{p}"), e.message()),
        (Some(p), _) if !p.is_empty() => problem(format!("{path}.{p}"), e.message()),
        (_, Some((line, col))) => problem(
            path,
            format!("{} (at {line}:{col} of the query)", e.message()),
        ),
        _ => problem(path, e.message()),
    }
}

fn compile_pattern(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => {
                "the pattern is too large once compiled; simplify its repetitions".to_string()
            }
            other => format!("the pattern is not a valid regular expression: {other}"),
        })
}

/// Every problem of a blueprint definition; `blueprints` finds the other blueprints it names.
pub fn check_blueprint(
    bp: &Blueprint,
    blueprints: &dyn Fn(&str) -> Option<Blueprint>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Err(e) = check_identifier(&bp.identifier) {
        out.push(problem("identifier", e));
    }
    if bp.title.chars().count() > MAX_IDENTIFIER_CHARS {
        out.push(problem(
            "title",
            format!("the title is longer than {MAX_IDENTIFIER_CHARS} characters"),
        ));
    }
    // A blueprint named by this one: itself, or another one that exists.
    let find = |id: &str| -> Option<Blueprint> {
        if id == bp.identifier {
            Some(bp.clone())
        } else {
            blueprints(id)
        }
    };

    // Every name, in the order of the document; a name used twice is reported where it repeats.
    let named = bp
        .schema
        .properties
        .keys()
        .map(|n| ("schema.properties", n, "property"))
        .chain(bp.relations.keys().map(|n| ("relations", n, "relation")))
        .chain(
            bp.mirror_properties
                .keys()
                .map(|n| ("mirrorProperties", n, "mirror property")),
        )
        .chain(
            bp.calculation_properties
                .keys()
                .map(|n| ("calculationProperties", n, "calculation property")),
        )
        .chain(
            bp.aggregation_properties
                .keys()
                .map(|n| ("aggregationProperties", n, "aggregation property")),
        );
    let mut names: IndexMap<&str, &str> = IndexMap::new();
    for (section, name, kind) in named {
        let path = format!("{section}.{name}");
        if let Err(e) = check_name(name) {
            out.push(problem(&path, e));
        }
        match names.get(name.as_str()) {
            Some(first) => out.push(problem(
                path,
                format!("the name `{name}` is already used by a {first}"),
            )),
            None => {
                names.insert(name, kind);
            }
        }
    }

    for (name, spec) in &bp.schema.properties {
        check_spec(spec, &format!("schema.properties.{name}"), &mut out);
    }
    let mut required = HashSet::new();
    for (i, name) in bp.schema.required.iter().enumerate() {
        let path = format!("schema.required[{i}]");
        if !bp.schema.properties.contains_key(name) {
            out.push(problem(
                path,
                format!(
                    "`{name}` is not a property of this blueprint{}",
                    suggestion(name, bp.schema.properties.keys().map(String::as_str))
                ),
            ));
        } else if !required.insert(name) {
            out.push(problem(path, format!("`{name}` is listed twice")));
        }
    }

    for (name, rel) in &bp.relations {
        let path = format!("relations.{name}");
        if find(&rel.target).is_none() {
            out.push(problem(
                format!("{path}.target"),
                format!("there is no blueprint `{}`", rel.target),
            ));
        }
        if rel.many && rel.required {
            out.push(problem(
                path,
                "a relation cannot be both `many` and `required`: a required relation names \
                 exactly one entity; drop one of the two",
            ));
        }
    }

    for (name, mirror) in &bp.mirror_properties {
        if let Err(e) = check_mirror_path(bp, &mirror.path, &find) {
            out.push(problem(format!("mirrorProperties.{name}.path"), e));
        }
    }

    for (name, calc) in &bp.calculation_properties {
        let path = format!("calculationProperties.{name}");
        if let Err(e) = JqProgram::compile(&calc.calculation) {
            out.push(problem(format!("{path}.calculation"), e));
        }
        if calc.format.is_some() && calc.ty != PropertyType::String {
            out.push(problem(
                format!("{path}.format"),
                format!(
                    "a format applies to strings, and this calculation gives {}",
                    article(calc.ty)
                ),
            ));
        }
    }

    for (name, agg) in &bp.aggregation_properties {
        let path = format!("aggregationProperties.{name}");
        let Some(target) = find(&agg.target) else {
            out.push(problem(
                format!("{path}.target"),
                format!("there is no blueprint `{}`", agg.target),
            ));
            continue;
        };
        let pointing: Vec<&str> = target
            .relations
            .iter()
            .filter(|(_, r)| r.target == bp.identifier)
            .map(|(n, _)| n.as_str())
            .collect();
        match &agg.relation {
            Some(rel) => match target.relations.get(rel) {
                None => out.push(problem(
                    format!("{path}.relation"),
                    format!(
                        "blueprint `{}` has no relation `{rel}`{}",
                        target.identifier,
                        suggestion(rel, pointing.iter().copied())
                    ),
                )),
                Some(r) if r.target != bp.identifier => out.push(problem(
                    format!("{path}.relation"),
                    format!(
                        "the relation `{rel}` of `{}` points to `{}`, not to `{}`",
                        target.identifier, r.target, bp.identifier
                    ),
                )),
                Some(_) => {}
            },
            None => match pointing.as_slice() {
                [_] => {}
                [] => out.push(problem(
                    format!("{path}.target"),
                    format!(
                        "blueprint `{}` has no relation to `{}`, so there is nothing to aggregate",
                        target.identifier, bp.identifier
                    ),
                )),
                several => out.push(problem(
                    format!("{path}.relation"),
                    format!(
                        "blueprint `{}` has several relations to `{}` ({}): name the one to \
                         follow in `relation`",
                        target.identifier,
                        bp.identifier,
                        several.join(", ")
                    ),
                )),
            },
        }
        match (&agg.property, agg.func) {
            (None, AggregateFunc::Count) => {}
            (None, func) => out.push(problem(
                format!("{path}.property"),
                format!(
                    "`{}` needs the number property to aggregate",
                    func_name(func)
                ),
            )),
            (Some(prop), _) => match target.schema.properties.get(prop) {
                None => out.push(problem(
                    format!("{path}.property"),
                    format!(
                        "blueprint `{}` has no property `{prop}`{}",
                        target.identifier,
                        suggestion(prop, target.schema.properties.keys().map(String::as_str))
                    ),
                )),
                Some(spec) if !matches!(spec.ty, PropertyType::Number | PropertyType::Integer) => {
                    out.push(problem(
                        format!("{path}.property"),
                        format!(
                            "`{prop}` of `{}` is {}; aggregations need a number or an integer",
                            target.identifier,
                            article(spec.ty)
                        ),
                    ))
                }
                Some(_) => {}
            },
        }
    }
    out
}

fn func_name(f: AggregateFunc) -> &'static str {
    match f {
        AggregateFunc::Count => "count",
        AggregateFunc::Sum => "sum",
        AggregateFunc::Min => "min",
        AggregateFunc::Max => "max",
        AggregateFunc::Average => "average",
    }
}

pub(crate) fn article(ty: PropertyType) -> &'static str {
    match ty {
        PropertyType::String => "a string",
        PropertyType::Number => "a number",
        PropertyType::Integer => "an integer",
        PropertyType::Boolean => "a boolean",
        PropertyType::Object => "an object",
        PropertyType::Array => "an array",
    }
}

/// A mirror path: relation names, each a relation of the blueprint reached so far, then a
/// field of the blueprint at the end.
fn check_mirror_path(
    bp: &Blueprint,
    path: &str,
    find: &dyn Fn(&str) -> Option<Blueprint>,
) -> Result<(), String> {
    let steps: Vec<&str> = path.split('.').collect();
    let Some((field, relations)) = steps.split_last() else {
        return Err("the path is empty".into());
    };
    if relations.is_empty() {
        return Err(format!(
            "`{path}` names no relation: a mirror path is relation names then a field, such as \
             `owner.title`"
        ));
    }
    let mut at = bp.clone();
    for rel in relations {
        let Some(spec) = at.relations.get(*rel) else {
            return Err(format!(
                "`{rel}` is not a relation of blueprint `{}`{}",
                at.identifier,
                suggestion(rel, at.relations.keys().map(String::as_str))
            ));
        };
        at = find(&spec.target).ok_or_else(|| {
            format!(
                "the relation `{rel}` points to `{}`, which does not exist",
                spec.target
            )
        })?;
    }
    let meta = field.strip_prefix('$').unwrap_or(field);
    let known = META_FIELDS.contains(&meta)
        || (!field.starts_with('$')
            && (at.schema.properties.contains_key(*field)
                || at.relations.contains_key(*field)
                || at.mirror_properties.contains_key(*field)
                || at.calculation_properties.contains_key(*field)
                || at.aggregation_properties.contains_key(*field)));
    if known {
        return Ok(());
    }
    let fields = META_FIELDS
        .iter()
        .copied()
        .chain(at.schema.properties.keys().map(String::as_str))
        .chain(at.calculation_properties.keys().map(String::as_str))
        .chain(at.mirror_properties.keys().map(String::as_str))
        .chain(at.aggregation_properties.keys().map(String::as_str));
    Err(format!(
        "blueprint `{}` has no field `{field}`{}",
        at.identifier,
        suggestion(meta, fields)
    ))
}

/// The problems of one property spec (or the `items` of an array).
pub(crate) fn check_spec(spec: &PropertySpec, path: &str, out: &mut Vec<Problem>) {
    let ty = spec.ty;
    let is_number = matches!(ty, PropertyType::Number | PropertyType::Integer);
    let only = |out: &mut Vec<Problem>, key: &str, set: bool, ok: bool, applies_to: &str| {
        if set && !ok {
            out.push(problem(
                format!("{path}.{key}"),
                format!(
                    "`{key}` applies to {applies_to}, and this property is {}",
                    article(ty)
                ),
            ));
        }
    };
    only(
        out,
        "format",
        spec.format.is_some(),
        ty == PropertyType::String,
        "strings (put it in `items` for an array of strings)",
    );
    only(
        out,
        "pattern",
        spec.pattern.is_some(),
        ty == PropertyType::String,
        "strings",
    );
    only(
        out,
        "minLength",
        spec.min_length.is_some(),
        ty == PropertyType::String,
        "strings",
    );
    only(
        out,
        "maxLength",
        spec.max_length.is_some(),
        ty == PropertyType::String,
        "strings",
    );
    only(
        out,
        "minimum",
        spec.minimum.is_some(),
        is_number,
        "numbers and integers",
    );
    only(
        out,
        "maximum",
        spec.maximum.is_some(),
        is_number,
        "numbers and integers",
    );
    only(
        out,
        "minItems",
        spec.min_items.is_some(),
        ty == PropertyType::Array,
        "arrays",
    );
    only(
        out,
        "maxItems",
        spec.max_items.is_some(),
        ty == PropertyType::Array,
        "arrays",
    );
    only(
        out,
        "items",
        spec.items.is_some(),
        ty == PropertyType::Array,
        "arrays",
    );

    let order = |out: &mut Vec<Problem>, lo: &str, hi: &str, ok: bool| {
        if !ok {
            out.push(problem(
                format!("{path}.{lo}"),
                format!("`{lo}` is greater than `{hi}`"),
            ));
        }
    };
    if let (Some(lo), Some(hi)) = (spec.minimum, spec.maximum) {
        order(out, "minimum", "maximum", lo <= hi);
    }
    if let (Some(lo), Some(hi)) = (spec.min_length, spec.max_length) {
        order(out, "minLength", "maxLength", lo <= hi);
    }
    if let (Some(lo), Some(hi)) = (spec.min_items, spec.max_items) {
        order(out, "minItems", "maxItems", lo <= hi);
    }

    let pattern = match &spec.pattern {
        Some(p) => match compile_pattern(p) {
            Ok(re) => Some(re),
            Err(e) => {
                out.push(problem(format!("{path}.pattern"), e));
                None
            }
        },
        None => None,
    };
    if let Some(items) = &spec.items {
        check_spec(items, &format!("{path}.items"), out);
    }
    let compiled = CompiledSpec {
        pattern: pattern.map(Ok),
        items: spec.items.as_deref().map(compile_spec).map(Box::new),
    };

    if let Some(values) = &spec.enum_values {
        if values.is_empty() {
            out.push(problem(
                format!("{path}.enum"),
                "`enum` lists no value: list the allowed values, or remove it",
            ));
        }
        // Each allowed value must itself be a valid value (enum aside).
        let no_enum = PropertySpec {
            enum_values: None,
            ..spec.clone()
        };
        let root = Path::root(path);
        let at = root.key("enum");
        for (i, v) in values.iter().enumerate() {
            check_value(&no_enum, &compiled, v, &at.index(i), out);
        }
    }
    if let Some(default) = &spec.default {
        let root = Path::root(path);
        check_value(spec, &compiled, default, &root.key("default"), out);
    }
}

/// A change to a blueprint that existing entities could not follow: a property's type, a
/// relation's target, a relation from many to one. One to many is allowed: each existing value
/// becomes a one-item list.
pub fn check_blueprint_change(old: &Blueprint, new: &Blueprint) -> Vec<Problem> {
    let mut out = Vec::new();
    if old.identifier != new.identifier {
        out.push(problem(
            "identifier",
            format!(
                "a blueprint's identifier cannot change (from `{}` to `{}`)",
                old.identifier, new.identifier
            ),
        ));
    }
    for (name, before) in &old.schema.properties {
        let Some(after) = new.schema.properties.get(name) else {
            continue;
        };
        let path = format!("schema.properties.{name}");
        if before.ty != after.ty {
            out.push(problem(
                format!("{path}.type"),
                format!(
                    "the type of `{name}` cannot change from {} to {}; add a new property, copy \
                     the values, then remove this one",
                    before.ty.as_str(),
                    after.ty.as_str()
                ),
            ));
            continue;
        }
        let mut path = path;
        let (mut b, mut a) = (before, after);
        while let (Some(bi), Some(ai)) = (&b.items, &a.items) {
            path.push_str(".items");
            if bi.ty != ai.ty {
                out.push(problem(
                    format!("{path}.type"),
                    format!(
                        "the type of the items of `{name}` cannot change from {} to {}; add a \
                         new property, copy the values, then remove this one",
                        bi.ty.as_str(),
                        ai.ty.as_str()
                    ),
                ));
                break;
            }
            (b, a) = (bi, ai);
        }
    }
    for (name, before) in &old.relations {
        let Some(after) = new.relations.get(name) else {
            continue;
        };
        if before.target != after.target {
            out.push(problem(
                format!("relations.{name}.target"),
                format!(
                    "the target of `{name}` cannot change from `{}` to `{}`; add a new relation, \
                     copy the values, then remove this one",
                    before.target, after.target
                ),
            ));
        }
        if before.many && !after.many {
            out.push(problem(
                format!("relations.{name}.many"),
                format!(
                    "`{name}` cannot change from many to one: entities may already name several \
                     targets; add a new relation, copy the values, then remove this one"
                ),
            ));
        }
    }
    out
}

/// A blueprint ready to validate many entities: its patterns compiled once.
#[derive(Debug, Clone)]
pub struct CompiledBlueprint {
    blueprint: Blueprint,
    /// In the order of `blueprint.schema.properties`.
    specs: Vec<CompiledSpec>,
}

#[derive(Debug, Clone)]
struct CompiledSpec {
    pattern: Option<Result<regex::Regex, String>>,
    items: Option<Box<CompiledSpec>>,
}

fn compile_spec(spec: &PropertySpec) -> CompiledSpec {
    CompiledSpec {
        pattern: spec.pattern.as_deref().map(compile_pattern),
        items: spec.items.as_deref().map(compile_spec).map(Box::new),
    }
}

impl CompiledBlueprint {
    pub fn new(bp: &Blueprint) -> CompiledBlueprint {
        CompiledBlueprint {
            specs: bp.schema.properties.values().map(compile_spec).collect(),
            blueprint: bp.clone(),
        }
    }

    pub fn blueprint(&self) -> &Blueprint {
        &self.blueprint
    }

    /// Every problem of `e` against the blueprint (whether `e.blueprint` names it is the
    /// caller's concern).
    pub fn validate(&self, e: &Entity) -> Vec<Problem> {
        let bp = &self.blueprint;
        let mut out = Vec::new();
        if let Err(msg) = check_identifier(&e.identifier) {
            out.push(problem("identifier", msg));
        }
        if let Some(title) = &e.title {
            if title.chars().count() > MAX_TITLE_CHARS {
                out.push(problem(
                    "title",
                    format!("the title is longer than {MAX_TITLE_CHARS} characters"),
                ));
            }
        }
        let teams = Path::root("team");
        for (i, team) in e.team.iter().enumerate() {
            if let Err(msg) = check_identifier(team) {
                out.push(problem(teams.index(i), format!("not a team name: {msg}")));
            }
        }

        let properties = Path::root("properties");
        for (name, value) in &e.properties {
            let Some((i, _, spec)) = bp.schema.properties.get_full(name) else {
                out.push(unknown_property(bp, name));
                continue;
            };
            if value.is_null() {
                continue;
            }
            if let Some(compiled) = self.specs.get(i) {
                check_value(spec, compiled, value, &properties.key(name), &mut out);
            }
        }
        for name in &bp.schema.required {
            if e.properties.get(name).is_none_or(Value::is_null) {
                out.push(problem(
                    properties.key(name),
                    format!("`{name}` is required"),
                ));
            }
        }

        let relations = Path::root("relations");
        for (name, value) in &e.relations {
            let path = relations.key(name);
            let Some(spec) = bp.relations.get(name) else {
                out.push(problem(
                    path,
                    format!(
                        "blueprint `{}` has no relation `{name}`{}",
                        bp.identifier,
                        suggestion(name, bp.relations.keys().map(String::as_str))
                    ),
                ));
                continue;
            };
            match value {
                // A single identifier for a many relation is a list of one.
                RelationValue::One(target) => {
                    if let Err(msg) = check_identifier(target) {
                        out.push(problem(path, msg));
                    }
                }
                RelationValue::Many(_) if !spec.many => out.push(problem(
                    path,
                    format!(
                        "`{name}` names one `{}` entity: give its identifier, not a list",
                        spec.target
                    ),
                )),
                RelationValue::Many(targets) => {
                    for (i, target) in targets.iter().enumerate() {
                        let at = path.index(i);
                        if let Err(msg) = check_identifier(target) {
                            out.push(problem(at, msg));
                        } else if targets[..i].contains(target) {
                            out.push(problem(at, format!("`{target}` is named twice")));
                        }
                    }
                }
            }
        }
        for (name, spec) in &bp.relations {
            let empty = e.relations.get(name).is_none_or(|r| r.targets().is_empty());
            if spec.required && empty {
                out.push(problem(
                    relations.key(name),
                    format!("the relation `{name}` is required"),
                ));
            }
        }
        out
    }
}

fn unknown_property(bp: &Blueprint, name: &str) -> Problem {
    let path = format!("properties.{name}");
    let computed = if bp.calculation_properties.contains_key(name) {
        Some("a calculation property")
    } else if bp.mirror_properties.contains_key(name) {
        Some("a mirror property")
    } else if bp.aggregation_properties.contains_key(name) {
        Some("an aggregation property")
    } else {
        None
    };
    match computed {
        Some(kind) => problem(
            path,
            format!("`{name}` is {kind}: the catalog computes it, and it cannot be written"),
        ),
        None => problem(
            path,
            format!(
                "blueprint `{}` has no property `{name}`{}",
                bp.identifier,
                suggestion(name, bp.schema.properties.keys().map(String::as_str))
            ),
        ),
    }
}

/// Validates `e` against `bp`; to validate many entities, build a [`CompiledBlueprint`] once.
pub fn validate_entity(bp: &Blueprint, e: &Entity) -> Vec<Problem> {
    CompiledBlueprint::new(bp).validate(e)
}

/// Fills the `default` of each property `e` leaves out (or sets to null).
pub fn apply_defaults(bp: &Blueprint, e: &mut Entity) {
    for (name, spec) in &bp.schema.properties {
        if let Some(default) = &spec.default {
            if e.properties.get(name).is_none_or(Value::is_null) {
                e.properties.insert(name.clone(), default.clone());
            }
        }
    }
}

/// A JSON path built only when a problem is reported.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root(&'a str),
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    fn root(s: &'a str) -> Path<'a> {
        Path {
            parent: None,
            step: Step::Root(s),
        }
    }

    fn key(&'a self, k: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            step: Step::Key(k),
        }
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            step: Step::Index(i),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.parent {
            p.fmt(f)?;
        }
        match self.step {
            Step::Root(s) => f.write_str(s),
            Step::Key(k) => write!(f, ".{k}"),
            Step::Index(i) => write!(f, "[{i}]"),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
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

/// A short quote of a value for a message.
fn quote(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The problems of `v` against `spec`, reported under `path` (`inputs.tags` gives
/// `inputs.tags[1]` for an item): entity validation's checks, for the inputs of actions.
pub(crate) fn check_property_value(
    spec: &PropertySpec,
    v: &Value,
    path: &str,
    out: &mut Vec<Problem>,
) {
    check_value(spec, &compile_spec(spec), v, &Path::root(path), out);
}

fn check_value(
    spec: &PropertySpec,
    compiled: &CompiledSpec,
    v: &Value,
    path: &Path<'_>,
    out: &mut Vec<Problem>,
) {
    let type_ok = match spec.ty {
        PropertyType::String => v.is_string(),
        PropertyType::Number => v.is_number(),
        PropertyType::Integer => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        PropertyType::Boolean => v.is_boolean(),
        PropertyType::Object => v.is_object(),
        PropertyType::Array => v.is_array(),
    };
    if !type_ok {
        let found = match (spec.ty, v) {
            (PropertyType::Integer, Value::Number(_)) => {
                format!("{} (not a whole number)", quote(v))
            }
            _ => format!("{} {}", kind_of(v), quote(v)),
        };
        out.push(problem(
            path,
            format!("expected {}, found {found}", article(spec.ty)),
        ));
        return;
    }
    if let Some(values) = &spec.enum_values {
        if !values.iter().any(|a| same_value(a, v)) {
            let allowed: Vec<String> = values.iter().map(quote).collect();
            out.push(problem(
                path,
                format!(
                    "{} is not one of the allowed values: {}",
                    quote(v),
                    allowed.join(", ")
                ),
            ));
        }
    }
    match v {
        Value::String(s) => check_string(spec, compiled, s, path, out),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = spec.minimum.filter(|min| x < *min) {
                out.push(problem(path, format!("{n} is less than the minimum {min}")));
            }
            if let Some(max) = spec.maximum.filter(|max| x > *max) {
                out.push(problem(path, format!("{n} is more than the maximum {max}")));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = spec.min_items.filter(|min| n < *min) {
                out.push(problem(
                    path,
                    format!("{n} items, fewer than the {min} required"),
                ));
            }
            if let Some(max) = spec.max_items.filter(|max| n > *max) {
                out.push(problem(
                    path,
                    format!("{n} items, more than the {max} allowed"),
                ));
            }
            if let (Some(item_spec), Some(item_compiled)) = (&spec.items, &compiled.items) {
                for (i, item) in items.iter().enumerate() {
                    check_value(item_spec, item_compiled, item, &path.index(i), out);
                }
            }
        }
        _ => {}
    }
}

fn check_string(
    spec: &PropertySpec,
    compiled: &CompiledSpec,
    s: &str,
    path: &Path<'_>,
    out: &mut Vec<Problem>,
) {
    if spec.min_length.is_some() || spec.max_length.is_some() {
        let n = s.chars().count() as u64;
        if let Some(min) = spec.min_length.filter(|min| n < *min) {
            out.push(problem(
                path,
                format!("{n} characters, fewer than the {min} required"),
            ));
        }
        if let Some(max) = spec.max_length.filter(|max| n > *max) {
            out.push(problem(
                path,
                format!("{n} characters, more than the {max} allowed"),
            ));
        }
    }
    match &compiled.pattern {
        Some(Ok(re)) if !re.is_match(s) => out.push(problem(
            path,
            format!(
                "\"{}\" does not match the pattern `{}`",
                clip(s),
                re.as_str()
            ),
        )),
        Some(Err(e)) => out.push(problem(path, format!("the blueprint's {e}"))),
        _ => {}
    }
    if let Some(format) = spec.format {
        if let Err(why) = check_format(format, s) {
            out.push(problem(path, why));
        }
    }
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_string(),
    }
}

/// Checks a string against a format; the error says what was expected.
pub(crate) fn check_format(format: Format, s: &str) -> Result<(), String> {
    let ok = match format {
        Format::Url => is_url(s),
        Format::Email | Format::User => is_email(s),
        Format::DateTime => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        Format::Markdown => true,
        Format::Yaml => {
            return gantry_workflow::parse_data(s).map(drop).map_err(|diags| {
                let first = diags
                    .first()
                    .map(|d| format!(": {}", d.message))
                    .unwrap_or_default();
                format!("not valid YAML{first}")
            })
        }
        Format::Team => check_identifier(s).is_ok(),
    };
    if ok {
        return Ok(());
    }
    let expected = match format {
        Format::Url => "an absolute URL, such as https://example.com/docs",
        Format::Email => "an email address, such as ada@example.com",
        Format::User => "a user's email address, such as ada@example.com",
        Format::DateTime => "a date and time in RFC 3339, such as 2024-05-01T12:00:00Z",
        Format::Team => "a team name (letters, digits and _ . @ : -)",
        Format::Markdown | Format::Yaml => "",
    };
    Err(format!("\"{}\" is not {expected}", clip(s)))
}

/// An absolute URL: a scheme (`https:`, `mailto:`, ...) then a non-empty rest without spaces;
/// web URLs (`http`, `https`) need `//` and a host.
fn is_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        let Some(after) = rest.strip_prefix("//") else {
            return false;
        };
        let authority = after.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let host = if host_port.starts_with('[') {
            host_port.split(']').next().unwrap_or("")
        } else {
            host_port.split(':').next().unwrap_or("")
        };
        return !host.is_empty();
    }
    true
}

/// `local@domain.tld`: one `@`, no spaces, a domain of at least two dot-separated labels.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let labels_ok = domain.split('.').count() >= 2
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
    !local.is_empty()
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c == '@' || c.is_control())
        && labels_ok
}
