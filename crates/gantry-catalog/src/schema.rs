//! Checks of blueprints (their definition, and what may change between versions) and of
//! entities against their blueprint. Every problem is reported, each with the JSON path of the
//! field it is about, so a form or a definition file can point at each one.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::model::*;

/// One thing wrong with a submitted document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path in the submitted document: `properties.port`, `relations.deps[2]`,
    /// `schema.properties.port.type`; empty for the document as a whole.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Most characters of a compiled `pattern` (the regex crate bounds the automaton's size too).
const MAX_PATTERN: usize = 1000;
const MAX_TITLE: usize = 200;

/// Identifiers of blueprints and entities: 1 to 100 of `A-Z a-z 0-9 _ . @ : -`, starting
/// with a letter or digit.
pub fn check_identifier(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{id}` is not an identifier: 1 to 100 letters, digits, `_`, `.`, `@`, `:` or `-`, \
             starting with a letter or digit"
        ))
    }
}

fn compile_pattern(p: &str) -> Result<regex::Regex, String> {
    if p.len() > MAX_PATTERN {
        return Err(format!("a pattern is at most {MAX_PATTERN} characters"));
    }
    regex::RegexBuilder::new(p)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("the pattern does not compile: {e}"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn has_type(v: &Value, ty: PropertyType) -> bool {
    match ty {
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
    }
}

fn article(ty: PropertyType) -> &'static str {
    match ty {
        PropertyType::String => "a string",
        PropertyType::Number => "a number",
        PropertyType::Integer => "an integer",
        PropertyType::Boolean => "a boolean",
        PropertyType::Object => "an object",
        PropertyType::Array => "an array",
    }
}

fn check_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    scheme_ok && !host.is_empty() && !s.chars().any(char::is_whitespace)
}

fn check_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
        && !local.contains('@')
}

fn check_format(format: Format, s: &str) -> Result<(), String> {
    let ok = match format {
        Format::Url => check_url(s),
        Format::Email | Format::User => check_email(s),
        Format::DateTime => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        Format::Markdown => true,
        Format::Yaml => gantry_workflow::parse_data(s).is_ok(),
        Format::Team => check_identifier(s).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(match format {
            Format::Url => "is not a URL (scheme://host...)".to_string(),
            Format::Email => "is not an email address".to_string(),
            Format::User => "is not a user (their email address)".to_string(),
            Format::DateTime => {
                "is not an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z".to_string()
            }
            Format::Yaml => "is not valid YAML".to_string(),
            Format::Team => "is not a team name".to_string(),
            Format::Markdown => String::new(),
        })
    }
}

/// A property spec with its pattern compiled.
struct CompiledProperty {
    spec: PropertySpec,
    pattern: Option<regex::Regex>,
    items: Option<Box<CompiledProperty>>,
}

impl CompiledProperty {
    fn new(spec: &PropertySpec) -> Self {
        CompiledProperty {
            pattern: spec
                .pattern
                .as_deref()
                .and_then(|p| compile_pattern(p).ok()),
            items: spec
                .items
                .as_deref()
                .map(|i| Box::new(CompiledProperty::new(i))),
            spec: spec.clone(),
        }
    }

    fn check(&self, path: &str, v: &Value, out: &mut Vec<Problem>) {
        let spec = &self.spec;
        if v.is_null() {
            return;
        }
        if !has_type(v, spec.ty) {
            out.push(Problem::new(
                path,
                format!("must be {}, not {}", article(spec.ty), type_name(v)),
            ));
            return;
        }
        if let Some(values) = &spec.enum_values {
            if !values.iter().any(|e| same(e, v)) {
                let shown: Vec<String> = values.iter().map(Value::to_string).collect();
                out.push(Problem::new(
                    path,
                    format!("{v} is not one of {}", shown.join(", ")),
                ));
                return;
            }
        }
        match v {
            Value::String(s) => {
                if let Some(f) = spec.format {
                    if let Err(m) = check_format(f, s) {
                        out.push(Problem::new(path, format!("{v} {m}")));
                    }
                }
                let len = s.chars().count() as u64;
                if let Some(min) = spec.min_length.filter(|m| len < *m) {
                    out.push(Problem::new(
                        path,
                        format!("must be at least {min} characters long"),
                    ));
                }
                if let Some(max) = spec.max_length.filter(|m| len > *m) {
                    out.push(Problem::new(
                        path,
                        format!("must be at most {max} characters long"),
                    ));
                }
                if let Some(re) = &self.pattern {
                    if !re.is_match(s) {
                        out.push(Problem::new(
                            path,
                            format!(
                                "{v} does not match the pattern `{}`",
                                spec.pattern.as_deref().unwrap_or_default()
                            ),
                        ));
                    }
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(0.0);
                if let Some(min) = spec.minimum.filter(|m| x < *m) {
                    out.push(Problem::new(path, format!("must be at least {min}")));
                }
                if let Some(max) = spec.maximum.filter(|m| x > *m) {
                    out.push(Problem::new(path, format!("must be at most {max}")));
                }
            }
            Value::Array(items) => {
                let len = items.len() as u64;
                if let Some(min) = spec.min_items.filter(|m| len < *m) {
                    out.push(Problem::new(
                        path,
                        format!("must have at least {min} items"),
                    ));
                }
                if let Some(max) = spec.max_items.filter(|m| len > *m) {
                    out.push(Problem::new(path, format!("must have at most {max} items")));
                }
                if let Some(item) = &self.items {
                    for (i, v) in items.iter().enumerate() {
                        item.check(&format!("{path}[{i}]"), v, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Numbers compare by value (1 equals 1.0); everything else structurally.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A blueprint ready to validate many entities: patterns compiled once.
pub struct CompiledBlueprint {
    identifier: String,
    properties: Vec<(String, CompiledProperty)>,
    required: Vec<String>,
    relations: Vec<(String, RelationSpec)>,
}

impl CompiledBlueprint {
    pub fn new(bp: &Blueprint) -> Self {
        CompiledBlueprint {
            identifier: bp.identifier.clone(),
            properties: bp
                .schema
                .properties
                .iter()
                .map(|(k, s)| (k.clone(), CompiledProperty::new(s)))
                .collect(),
            required: bp.schema.required.clone(),
            relations: bp
                .relations
                .iter()
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect(),
        }
    }

    fn property(&self, name: &str) -> Option<&CompiledProperty> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, p)| p)
    }

    fn relation(&self, name: &str) -> Option<&RelationSpec> {
        self.relations
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, r)| r)
    }

    /// Every problem of the entity, each with its path. Relation targets' existence is the
    /// index's to check.
    pub fn validate(&self, e: &Entity) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Err(m) = check_identifier(&e.identifier) {
            out.push(Problem::new("identifier", m));
        }
        if e.blueprint != self.identifier {
            out.push(Problem::new(
                "blueprint",
                format!(
                    "the entity names blueprint `{}`, not `{}`",
                    e.blueprint, self.identifier
                ),
            ));
        }
        if let Some(t) = &e.title {
            if t.chars().count() > MAX_TITLE {
                out.push(Problem::new(
                    "title",
                    format!("a title is at most {MAX_TITLE} characters"),
                ));
            }
        }
        for (i, team) in e.team.iter().enumerate() {
            if check_identifier(team).is_err() {
                out.push(Problem::new(
                    format!("team[{i}]"),
                    format!("`{team}` is not a team name"),
                ));
            }
        }
        for (name, v) in &e.properties {
            let path = format!("properties.{name}");
            match self.property(name) {
                Some(p) => p.check(&path, v, &mut out),
                None => {
                    let hint = gantry_workflow::diagnostic::suggest(
                        name,
                        self.properties.iter().map(|(k, _)| k.as_str()),
                    )
                    .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                    out.push(Problem::new(
                        path,
                        format!(
                            "blueprint `{}` has no property `{name}`{hint}",
                            self.identifier
                        ),
                    ));
                }
            }
        }
        for name in &self.required {
            if e.properties.get(name).is_none_or(Value::is_null) {
                out.push(Problem::new(
                    format!("properties.{name}"),
                    format!("`{name}` is required"),
                ));
            }
        }
        for (name, value) in &e.relations {
            let path = format!("relations.{name}");
            let Some(spec) = self.relation(name) else {
                let hint = gantry_workflow::diagnostic::suggest(
                    name,
                    self.relations.iter().map(|(k, _)| k.as_str()),
                )
                .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                out.push(Problem::new(
                    path,
                    format!(
                        "blueprint `{}` has no relation `{name}`{hint}",
                        self.identifier
                    ),
                ));
                continue;
            };
            match value {
                RelationValue::Many(_) if !spec.many => out.push(Problem::new(
                    path,
                    format!(
                        "`{name}` relates to one {}: give one identifier, not a list",
                        spec.target
                    ),
                )),
                RelationValue::Many(ids) => {
                    let mut seen = HashSet::new();
                    for (i, id) in ids.iter().enumerate() {
                        if let Err(m) = check_identifier(id) {
                            out.push(Problem::new(format!("{path}[{i}]"), m));
                        } else if !seen.insert(id.as_str()) {
                            out.push(Problem::new(
                                format!("{path}[{i}]"),
                                format!("`{id}` is listed twice"),
                            ));
                        }
                    }
                }
                RelationValue::One(id) => {
                    if let Err(m) = check_identifier(id) {
                        out.push(Problem::new(path, m));
                    }
                }
            }
        }
        for (name, spec) in &self.relations {
            if spec.required && e.relations.get(name).is_none_or(|v| v.targets().is_empty()) {
                out.push(Problem::new(
                    format!("relations.{name}"),
                    format!(
                        "`{name}` is required: name the {} it relates to",
                        spec.target
                    ),
                ));
            }
        }
        out
    }
}

/// Validates one entity (compiling the blueprint's patterns; use [`CompiledBlueprint`] for many).
pub fn validate_entity(bp: &Blueprint, e: &Entity) -> Vec<Problem> {
    CompiledBlueprint::new(bp).validate(e)
}

/// Fills in the `default` of every property the entity leaves out.
pub fn apply_defaults(bp: &Blueprint, e: &mut Entity) {
    for (name, spec) in &bp.schema.properties {
        if let Some(d) = &spec.default {
            if !e.properties.contains_key(name) {
                e.properties.insert(name.clone(), d.clone());
            }
        }
    }
}

fn check_spec(path: &str, spec: &PropertySpec, out: &mut Vec<Problem>) {
    if spec.items.is_some() && spec.ty != PropertyType::Array {
        out.push(Problem::new(
            format!("{path}.items"),
            "only an array property has `items`",
        ));
    }
    if let Some(items) = &spec.items {
        check_spec(&format!("{path}.items"), items, out);
    }
    if spec.format.is_some() && spec.ty != PropertyType::String {
        out.push(Problem::new(
            format!("{path}.format"),
            "only a string property has a format",
        ));
    }
    if spec.pattern.is_some() && spec.ty != PropertyType::String {
        out.push(Problem::new(
            format!("{path}.pattern"),
            "only a string property has a pattern",
        ));
    }
    if let Some(p) = &spec.pattern {
        if let Err(m) = compile_pattern(p) {
            out.push(Problem::new(format!("{path}.pattern"), m));
        }
    }
    if let (Some(min), Some(max)) = (spec.minimum, spec.maximum) {
        if min > max {
            out.push(Problem::new(
                format!("{path}.minimum"),
                "`minimum` is larger than `maximum`",
            ));
        }
    }
    if let (Some(min), Some(max)) = (spec.min_length, spec.max_length) {
        if min > max {
            out.push(Problem::new(
                format!("{path}.minLength"),
                "`minLength` is larger than `maxLength`",
            ));
        }
    }
    if let (Some(min), Some(max)) = (spec.min_items, spec.max_items) {
        if min > max {
            out.push(Problem::new(
                format!("{path}.minItems"),
                "`minItems` is larger than `maxItems`",
            ));
        }
    }
    if let Some(values) = &spec.enum_values {
        if values.is_empty() {
            out.push(Problem::new(
                format!("{path}.enum"),
                "an enum lists at least one value",
            ));
        }
        for (i, v) in values.iter().enumerate() {
            if !has_type(v, spec.ty) {
                out.push(Problem::new(
                    format!("{path}.enum[{i}]"),
                    format!("{v} is not {}", article(spec.ty)),
                ));
            }
        }
    }
    if let Some(d) = &spec.default {
        let mut problems = Vec::new();
        CompiledProperty::new(spec).check(&format!("{path}.default"), d, &mut problems);
        out.extend(problems);
    }
}

fn check_name(path: &str, name: &str, seen: &mut HashSet<String>, out: &mut Vec<Problem>) {
    if name.starts_with('$') || META_FIELDS.contains(&name) || name.contains('.') {
        out.push(Problem::new(
            path,
            format!(
                "`{name}` cannot be a property's name: it starts with `$`, holds a `.`, or is a \
                 field every entity has ({})",
                META_FIELDS.join(", ")
            ),
        ));
    } else if name.is_empty() || name.len() > 100 {
        out.push(Problem::new(path, "a name is 1 to 100 characters"));
    } else if !seen.insert(name.to_string()) {
        out.push(Problem::new(
            path,
            format!(
                "`{name}` is used twice among the properties, relations and computed properties"
            ),
        ));
    }
}

/// Checks a blueprint's definition. `blueprints` finds the others (those of the same batch
/// first); this one is found as itself.
pub fn check_blueprint(
    bp: &Blueprint,
    blueprints: &dyn Fn(&str) -> Option<Blueprint>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Err(m) = check_identifier(&bp.identifier) {
        out.push(Problem::new("identifier", m));
    }
    let find = |id: &str| -> Option<Blueprint> {
        if id == bp.identifier {
            Some(bp.clone())
        } else {
            blueprints(id)
        }
    };
    let mut seen = HashSet::new();
    for (name, spec) in &bp.schema.properties {
        let path = format!("schema.properties.{name}");
        check_name(&path, name, &mut seen, &mut out);
        check_spec(&path, spec, &mut out);
    }
    for (i, name) in bp.schema.required.iter().enumerate() {
        if !bp.schema.properties.contains_key(name) {
            out.push(Problem::new(
                format!("schema.required[{i}]"),
                format!("`{name}` is required but is not a property"),
            ));
        }
    }
    for (name, r) in &bp.relations {
        let path = format!("relations.{name}");
        check_name(&path, name, &mut seen, &mut out);
        if r.many && r.required {
            out.push(Problem::new(
                path.clone(),
                "a relation cannot be both `many` and `required`",
            ));
        }
        if find(&r.target).is_none() {
            out.push(Problem::new(
                format!("{path}.target"),
                format!("there is no blueprint `{}`", r.target),
            ));
        }
    }
    for (name, m) in &bp.mirror_properties {
        let path = format!("mirrorProperties.{name}");
        check_name(&path, name, &mut seen, &mut out);
        if let Err(message) = check_mirror_path(bp, &m.path, &find) {
            out.push(Problem::new(format!("{path}.path"), message));
        }
    }
    for (name, c) in &bp.calculation_properties {
        let path = format!("calculationProperties.{name}");
        check_name(&path, name, &mut seen, &mut out);
        if let Err(m) = crate::jq::JqProgram::compile(&c.calculation) {
            out.push(Problem::new(
                format!("{path}.calculation"),
                format!("the jq program does not compile: {m}"),
            ));
        }
    }
    for (name, a) in &bp.aggregation_properties {
        let path = format!("aggregationProperties.{name}");
        check_name(&path, name, &mut seen, &mut out);
        let Some(target) = find(&a.target) else {
            out.push(Problem::new(
                format!("{path}.target"),
                format!("there is no blueprint `{}`", a.target),
            ));
            continue;
        };
        if crate::computed::aggregation_relation(a, &bp.identifier, &target).is_none() {
            let message = match &a.relation {
                Some(r) => format!(
                    "blueprint `{}` has no relation `{r}` to `{}`",
                    target.identifier, bp.identifier
                ),
                None => format!(
                    "blueprint `{}` has no single relation to `{}`: name one with `relation`",
                    target.identifier, bp.identifier
                ),
            };
            out.push(Problem::new(format!("{path}.relation"), message));
        }
        match (a.func, &a.property) {
            (AggregateFunc::Count, _) => {}
            (_, None) => out.push(Problem::new(
                format!("{path}.property"),
                "sum, min, max and average need the `property` they aggregate",
            )),
            (_, Some(p)) => match target.schema.properties.get(p) {
                Some(s) if matches!(s.ty, PropertyType::Number | PropertyType::Integer) => {}
                Some(_) => out.push(Problem::new(
                    format!("{path}.property"),
                    format!("`{p}` of `{}` is not a number", target.identifier),
                )),
                None => out.push(Problem::new(
                    format!("{path}.property"),
                    format!("blueprint `{}` has no property `{p}`", target.identifier),
                )),
            },
        }
    }
    out
}

fn check_mirror_path(
    bp: &Blueprint,
    path: &str,
    find: &dyn Fn(&str) -> Option<Blueprint>,
) -> Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
        return Err(format!(
            "`{path}` is not a mirror path: relation names, then a field (`owner.title`)"
        ));
    }
    let mut here = bp.clone();
    for rel in &segments[..segments.len() - 1] {
        let Some(r) = here.relations.get(*rel) else {
            return Err(format!(
                "blueprint `{}` has no relation `{rel}`",
                here.identifier
            ));
        };
        here = find(&r.target).ok_or_else(|| format!("there is no blueprint `{}`", r.target))?;
    }
    let field = segments[segments.len() - 1];
    let meta = field.strip_prefix('$').unwrap_or(field);
    let known = META_FIELDS.contains(&meta)
        || here.schema.properties.contains_key(field)
        || here.mirror_properties.contains_key(field)
        || here.calculation_properties.contains_key(field)
        || here.aggregation_properties.contains_key(field)
        || here.relations.contains_key(field);
    if known {
        Ok(())
    } else {
        Err(format!(
            "blueprint `{}` has no field `{field}`",
            here.identifier
        ))
    }
}

/// What may not change between two versions of a blueprint: a property's type (its values
/// would no longer fit), a relation's target, or a relation becoming single (many values would
/// no longer fit). A single relation may become `many`.
pub fn check_blueprint_change(old: &Blueprint, new: &Blueprint) -> Vec<Problem> {
    let mut out = Vec::new();
    for (name, before) in &old.schema.properties {
        let Some(after) = new.schema.properties.get(name) else {
            continue;
        };
        let item = |s: &PropertySpec| s.items.as_ref().map(|i| i.ty);
        if before.ty != after.ty {
            out.push(Problem::new(
                format!("schema.properties.{name}.type"),
                format!(
                    "the type of `{name}` cannot change from {} to {}; add a new property, copy \
                     the values, then remove this one",
                    before.ty.as_str(),
                    after.ty.as_str()
                ),
            ));
        } else if item(before).is_some() && item(after).is_some() && item(before) != item(after) {
            out.push(Problem::new(
                format!("schema.properties.{name}.items.type"),
                format!(
                    "the type of `{name}`'s items cannot change; add a new property, copy the \
                     values, then remove this one"
                ),
            ));
        }
    }
    for (name, before) in &old.relations {
        let Some(after) = new.relations.get(name) else {
            continue;
        };
        if before.target != after.target {
            out.push(Problem::new(
                format!("relations.{name}.target"),
                format!(
                    "the target of `{name}` cannot change from `{}` to `{}`; add a new relation \
                     instead",
                    before.target, after.target
                ),
            ));
        }
        if before.many && !after.many {
            out.push(Problem::new(
                format!("relations.{name}.many"),
                format!("`{name}` cannot go from many to one: entities may hold several"),
            ));
        }
    }
    out
}
