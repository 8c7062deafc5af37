//! What makes an action definition sound.

use std::collections::HashSet;

use indexmap::IndexMap;

use super::template::{ParameterTemplates, Reference, TemplateRoot, TemplateStep};
use super::{Action, InputSpec, Operation, Rule, Target};
use crate::model::{Blueprint, Format, PropertyType};
use crate::query::Query;
use crate::schema::{self, check_identifier, problem, query_problem, suggestion, Problem};

const MAX_TITLE_CHARS: usize = 200;

/// The fields of an entity as templates see it (`entity.<field>`).
const ENTITY_FIELDS: &[&str] = &[
    "identifier",
    "blueprint",
    "title",
    "team",
    "properties",
    "relations",
    "createdAt",
    "updatedAt",
    "createdBy",
    "updatedBy",
    "version",
];
const USER_FIELDS: &[&str] = &["email", "name", "teams", "role"];
const RUN_FIELDS: &[&str] = &["id", "action"];

/// Every problem of an action definition, each with its JSON path
/// (`inputs.properties.replicas.minimum`, `invocation.parameters.reason`); `blueprints` finds
/// the blueprints it names.
///
/// Unknown fields, unknown input types and unknown roles are refused earlier, when the
/// definition is read into an [`Action`].
pub fn check_action<'a>(
    action: &Action,
    blueprints: &dyn Fn(&str) -> Option<&'a Blueprint>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Err(e) = check_identifier(&action.identifier) {
        out.push(problem("identifier", e));
    }
    if action.title.chars().count() > MAX_TITLE_CHARS {
        out.push(problem(
            "title",
            format!("the title is longer than {MAX_TITLE_CHARS} characters"),
        ));
    }
    let op = action.operation;
    let blueprint = match &action.blueprint {
        Some(id) => {
            let found = blueprints(id);
            if found.is_none() {
                out.push(problem(
                    "blueprint",
                    format!("there is no blueprint `{id}`"),
                ));
            }
            found
        }
        None => {
            if op.needs_entity() {
                out.push(problem(
                    "blueprint",
                    format!(
                        "a {} action acts on an entity: name the blueprint of its entities",
                        op.as_str()
                    ),
                ));
            }
            None
        }
    };
    if let Some(condition) = &action.condition {
        if op == Operation::Create {
            out.push(problem(
                "condition",
                "a create action acts on no existing entity, so a condition has nothing to test",
            ));
        } else if let Err(e) = Query::from_value(condition) {
            out.push(query_problem("condition", &e));
        }
    }
    check_inputs(action, blueprints, &mut out);
    check_permissions(action, &mut out);
    check_invocation(action, blueprint, &mut out);
    out
}

fn check_inputs<'a>(
    action: &Action,
    blueprints: &dyn Fn(&str) -> Option<&'a Blueprint>,
    out: &mut Vec<Problem>,
) {
    let inputs = &action.inputs;
    for (name, spec) in &inputs.properties {
        let path = format!("inputs.properties.{name}");
        if let Err(e) = check_identifier(name) {
            out.push(problem(&path, e));
        } else if name.contains('.') {
            out.push(problem(
                &path,
                format!("`{name}` contains `.`, which separates the steps of template paths"),
            ));
        }
        schema::check_spec(&spec.as_property(), &path, out);
        check_input_spec(spec, &path, true, blueprints, out);
    }
    let mut seen = HashSet::new();
    for (i, name) in inputs.required.iter().enumerate() {
        let path = format!("inputs.required[{i}]");
        if !inputs.properties.contains_key(name) {
            out.push(problem(
                path,
                format!(
                    "`{name}` is not an input of this action{}",
                    suggestion(name, inputs.properties.keys().map(String::as_str))
                ),
            ));
        } else if !seen.insert(name) {
            out.push(problem(path, format!("`{name}` is listed twice")));
        }
    }
}

/// What only inputs have: entity pickers and secrets (the rest is checked as a property).
fn check_input_spec<'a>(
    spec: &InputSpec,
    path: &str,
    top_level: bool,
    blueprints: &dyn Fn(&str) -> Option<&'a Blueprint>,
    out: &mut Vec<Problem>,
) {
    if spec.is_entity_picker() {
        if spec.ty != PropertyType::String {
            out.push(problem(
                format!("{path}.format"),
                format!(
                    "`format: entity` applies to strings (an entity's identifier; put it in \
                     `items` for a list of entities), and this input is {}",
                    schema::article(spec.ty)
                ),
            ));
        }
        match &spec.blueprint {
            None => out.push(problem(
                path,
                "an entity picker (`format: entity`) needs the `blueprint` of its entities",
            )),
            Some(id) if blueprints(id).is_none() => out.push(problem(
                format!("{path}.blueprint"),
                format!("there is no blueprint `{id}`"),
            )),
            Some(_) => {}
        }
        if let Some(query) = &spec.query {
            if let Err(e) = Query::from_value(query) {
                out.push(query_problem(&format!("{path}.query"), &e));
            }
        }
    } else {
        for (key, set) in [
            ("blueprint", spec.blueprint.is_some()),
            ("query", spec.query.is_some()),
        ] {
            if set {
                out.push(problem(
                    format!("{path}.{key}"),
                    format!("`{key}` applies to entity pickers (`format: entity`)"),
                ));
            }
        }
    }
    if spec.secret {
        if !top_level {
            out.push(problem(
                format!("{path}.secret"),
                "`secret` applies to a whole input, not to the items of a list",
            ));
        } else if spec.ty != PropertyType::String {
            out.push(problem(
                format!("{path}.secret"),
                format!(
                    "a secret input is a string, and this input is {}",
                    schema::article(spec.ty)
                ),
            ));
        }
        if spec.default.is_some() {
            out.push(problem(
                format!("{path}.default"),
                "a secret input cannot have a default: it would be kept in plain in the definition",
            ));
        }
        if spec.enum_values.is_some() {
            out.push(problem(
                format!("{path}.enum"),
                "a secret input cannot list its values: they would be kept in plain in the \
                 definition",
            ));
        }
        if spec.is_entity_picker() {
            out.push(problem(
                format!("{path}.secret"),
                "an entity picker cannot be secret: entity identifiers are not secrets",
            ));
        }
    }
    if let Some(items) = &spec.items {
        check_input_spec(items, &format!("{path}.items"), false, blueprints, out);
    }
}

fn check_permissions(action: &Action, out: &mut Vec<Problem>) {
    let rules = [
        ("run", &action.permissions.run),
        ("approve", &action.permissions.approve),
    ];
    for (name, rule) in rules {
        let Some(rule) = rule else { continue };
        check_rule(
            rule,
            &format!("permissions.{name}"),
            name,
            action.operation,
            out,
        );
    }
    let approval = &action.approval;
    if let Some(count) = approval.count {
        if count == 0 {
            out.push(problem("approval.count", "`count` is at least 1"));
        } else if !approval.required {
            out.push(problem(
                "approval.count",
                "`count` applies when approval is `required: true`",
            ));
        } else if action.permissions.approve_rule().mode == super::Mode::All {
            out.push(problem(
                "approval.count",
                "`count` applies to `mode: any`; with `mode: all`, every listed principal \
                 approves",
            ));
        }
    }
}

fn check_rule(rule: &Rule, path: &str, verb: &str, op: Operation, out: &mut Vec<Problem>) {
    if rule.names_nobody() {
        out.push(problem(
            path,
            format!(
                "the rule names nobody, so nobody could {verb}: list `users`, `teams`, `roles` \
                 or set `owners: true`"
            ),
        ));
    }
    for (i, user) in rule.users.iter().enumerate() {
        if let Err(e) = schema::check_format(Format::Email, user) {
            out.push(problem(format!("{path}.users[{i}]"), e));
        }
    }
    for (i, team) in rule.teams.iter().enumerate() {
        if let Err(e) = check_identifier(team) {
            out.push(problem(
                format!("{path}.teams[{i}]"),
                format!("not a team name: {e}"),
            ));
        }
    }
    if rule.owners && op == Operation::Create {
        out.push(problem(
            format!("{path}.owners"),
            "a create action acts on no existing entity, so there are no owners",
        ));
    }
}

/// Workflow names as the server takes them (also the workflows automations start).
pub(crate) fn check_workflow_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a workflow name: 1 to 100 letters, digits, `-`, `_` or `.`, not \
             starting with `.`"
        ))
    }
}

/// Secret names as the server takes them.
fn check_secret_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a secret name: 1 to 200 letters, digits, `-`, `_` or `.`"
        ))
    }
}

fn check_invocation(action: &Action, blueprint: Option<&Blueprint>, out: &mut Vec<Problem>) {
    let inv = &action.invocation;
    match inv.target() {
        None if inv.workflow.is_some() => out.push(problem(
            "invocation",
            "give either `workflow` or `webhook`, not both",
        )),
        None => out.push(problem(
            "invocation",
            "say what a run starts: a `workflow` (its name) or a `webhook` ({url, secret})",
        )),
        Some(Target::Workflow(name)) => {
            if let Err(e) = check_workflow_name(name) {
                out.push(problem("invocation.workflow", e));
            }
        }
        Some(Target::Webhook(hook)) => {
            let lower = hook.url.to_ascii_lowercase();
            let web = lower.starts_with("http://") || lower.starts_with("https://");
            if !web || schema::check_format(Format::Url, &hook.url).is_err() {
                out.push(problem(
                    "invocation.webhook.url",
                    format!(
                        "\"{}\" is not an http(s) URL, such as https://example.com/hooks/restart",
                        hook.url
                    ),
                ));
            }
            if let Some(secret) = &hook.secret {
                if let Err(e) = check_secret_name(&secret.name) {
                    out.push(problem("invocation.webhook.secret", e));
                }
            }
        }
    }
    // One parameter at a time, so its problems come in the order of the document.
    for (name, value) in &inv.parameters {
        let one = IndexMap::from([(name.clone(), value.clone())]);
        let (templates, mut problems) = ParameterTemplates::read(&one);
        out.append(&mut problems);
        for (path, reference) in templates.references() {
            if let Err(e) = check_reference(action, blueprint, reference) {
                out.push(problem(path, e));
            }
        }
    }
}

/// A path a parameter reads exists in every run of the action: a declared input, a field
/// of the entity (of its blueprint's properties and relations, when it has one), of the user
/// or of the run.
fn check_reference(
    action: &Action,
    blueprint: Option<&Blueprint>,
    r: &Reference,
) -> Result<(), String> {
    let first = r.first_key();
    let unknown = |what: &str, name: &str, known: &mut dyn Iterator<Item = &str>| {
        Err(format!(
            "`{r}`: {what} has no `{name}`{}",
            suggestion(name, known)
        ))
    };
    match r.root {
        TemplateRoot::Inputs => {
            let inputs = &action.inputs.properties;
            match first {
                None => Err(format!(
                    "`{r}` reads the inputs at once: name one, such as `inputs.{}`",
                    inputs.keys().next().map_or("name", String::as_str)
                )),
                Some(name) if !inputs.contains_key(name) => Err(format!(
                    "`{r}` names no input of this action{}",
                    suggestion(name, inputs.keys().map(String::as_str))
                )),
                Some(_) => Ok(()),
            }
        }
        TemplateRoot::Entity => {
            if !action.operation.needs_entity() {
                return Err(format!(
                    "`{r}` has no value: a create action acts on no existing entity"
                ));
            }
            let Some(field) = first else { return Ok(()) };
            if !ENTITY_FIELDS.contains(&field) {
                return unknown("an entity", field, &mut ENTITY_FIELDS.iter().copied());
            }
            let (Some(bp), Some(TemplateStep::Key(name))) = (blueprint, r.steps.get(1)) else {
                return Ok(());
            };
            match field {
                "properties" => {
                    let known = bp.schema.properties.contains_key(name)
                        || bp.mirror_properties.contains_key(name)
                        || bp.calculation_properties.contains_key(name)
                        || bp.aggregation_properties.contains_key(name);
                    if known {
                        return Ok(());
                    }
                    let names = bp
                        .schema
                        .properties
                        .keys()
                        .chain(bp.mirror_properties.keys())
                        .chain(bp.calculation_properties.keys())
                        .chain(bp.aggregation_properties.keys())
                        .map(String::as_str);
                    Err(format!(
                        "`{r}`: blueprint `{}` has no property `{name}`{}",
                        bp.identifier,
                        suggestion(name, names)
                    ))
                }
                "relations" if !bp.relations.contains_key(name) => Err(format!(
                    "`{r}`: blueprint `{}` has no relation `{name}`{}",
                    bp.identifier,
                    suggestion(name, bp.relations.keys().map(String::as_str))
                )),
                _ => Ok(()),
            }
        }
        TemplateRoot::User => match first {
            Some(f) if !USER_FIELDS.contains(&f) => {
                unknown("the user", f, &mut USER_FIELDS.iter().copied())
            }
            _ => Ok(()),
        },
        TemplateRoot::Run => match first {
            Some(f) if !RUN_FIELDS.contains(&f) => {
                unknown("the run", f, &mut RUN_FIELDS.iter().copied())
            }
            _ => Ok(()),
        },
    }
}
