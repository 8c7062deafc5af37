//! What makes an automation definition sound.

use indexmap::IndexMap;
use serde_json::Value;

use super::compiled::{CompiledEffect, CompiledEntity};
use super::template::Node;
use super::{Automation, Effect, EventKind};
use crate::action::check_workflow_name;
use crate::jq::JqProgram;
use crate::model::Lookup;
use crate::schema::{check_identifier, problem, Problem};

const MAX_TITLE_CHARS: usize = 200;

/// Every problem of an automation definition, each with its JSON path (`trigger.scorecard`,
/// `condition`, `effect.workflow.parameters.service`); `lookup` finds the blueprints it names.
///
/// A misspelled event and unknown fields are refused earlier, when the definition is read into
/// an [`Automation`].
pub fn check_automation(a: &Automation, lookup: &dyn Lookup) -> Vec<Problem> {
    check(a, Some(lookup)).2
}

/// The compiled condition and effect, and every problem; the checks that need the catalog are
/// left out without `lookup`.
pub(super) fn check(
    a: &Automation,
    lookup: Option<&dyn Lookup>,
) -> (Option<JqProgram>, CompiledEffect, Vec<Problem>) {
    let mut out = Vec::new();
    if let Err(e) = check_identifier(&a.identifier) {
        out.push(problem("identifier", e));
    }
    if a.title.chars().count() > MAX_TITLE_CHARS {
        out.push(problem(
            "title",
            format!("the title is longer than {MAX_TITLE_CHARS} characters"),
        ));
    }
    check_trigger(a, lookup, &mut out);
    let condition = a
        .condition
        .as_deref()
        .and_then(|src| match JqProgram::compile(src) {
            Ok(p) => Some(p),
            Err(e) => {
                out.push(problem("condition", e));
                None
            }
        });
    let effect = check_effect(&a.effect, lookup, &mut out);
    (condition, effect, out)
}

/// The events a filter of the trigger applies to, in words.
fn applies_to(key: &str) -> &'static str {
    match key {
        "blueprint" => {
            "`entity.created`, `entity.updated`, `entity.deleted` and `scorecard.level_changed`"
        }
        "scorecard" => "`scorecard.level_changed`",
        "action" => "`action_run.finished`",
        _ => "`run.finished`",
    }
}

fn check_trigger(a: &Automation, lookup: Option<&dyn Lookup>, out: &mut Vec<Problem>) {
    let t = &a.trigger;
    let event = t.event;
    let filters = [
        ("blueprint", &t.blueprint, event.has_blueprint()),
        (
            "scorecard",
            &t.scorecard,
            event == EventKind::ScorecardLevelChanged,
        ),
        ("action", &t.action, event == EventKind::ActionRunFinished),
        ("workflow", &t.workflow, event == EventKind::RunFinished),
    ];
    for (key, value, applies) in filters {
        let Some(value) = value else { continue };
        let path = format!("trigger.{key}");
        if !applies {
            out.push(problem(
                path,
                format!(
                    "`{key}` applies to {} triggers, and this one waits for `{event}`",
                    applies_to(key)
                ),
            ));
            continue;
        }
        let shape = match key {
            "workflow" => check_workflow_name(value),
            _ => check_identifier(value),
        };
        if let Err(e) = shape {
            out.push(problem(path, e));
        } else if key == "blueprint" && lookup.is_some_and(|l| l.blueprint(value).is_none()) {
            out.push(problem(path, format!("there is no blueprint `{value}`")));
        }
    }
}

fn check_effect(
    effect: &Effect,
    lookup: Option<&dyn Lookup>,
    out: &mut Vec<Problem>,
) -> CompiledEffect {
    match effect {
        Effect::Workflow { name, parameters } => {
            if let Err(e) = check_workflow_name(name) {
                out.push(problem("effect.workflow.name", e));
            }
            CompiledEffect::Workflow {
                name: name.clone(),
                parameters: compile_map(parameters, "effect.workflow.parameters", out),
            }
        }
        Effect::Entity(e) => {
            let string = |key: &str, s: &str, out: &mut Vec<Problem>| {
                Node::compile(
                    &Value::String(s.to_string()),
                    &format!("effect.entity.{key}"),
                    out,
                )
            };
            let blueprint = string("blueprint", &e.blueprint, out);
            if let Node::Literal(Value::String(id)) = &blueprint {
                if let Err(why) = check_identifier(id) {
                    out.push(problem("effect.entity.blueprint", why));
                } else if lookup.is_some_and(|l| l.blueprint(id).is_none()) {
                    out.push(problem(
                        "effect.entity.blueprint",
                        format!("there is no blueprint `{id}`"),
                    ));
                }
            }
            let identifier = string("identifier", &e.identifier, out);
            if let Node::Literal(Value::String(id)) = &identifier {
                if let Err(why) = check_identifier(id) {
                    out.push(problem("effect.entity.identifier", why));
                }
            }
            let title = e.title.as_deref().map(|t| string("title", t, out));
            let team = e
                .team
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    // One team is most often written as a string, and its path is `team`.
                    let path = if e.team.len() == 1 {
                        "effect.entity.team".to_string()
                    } else {
                        format!("effect.entity.team[{i}]")
                    };
                    let node = Node::compile(&Value::String(t.clone()), &path, out);
                    (path, node)
                })
                .collect();
            CompiledEffect::Entity(Box::new(CompiledEntity {
                mode: e.mode,
                blueprint,
                identifier,
                title,
                team,
                properties: compile_map(&e.properties, "effect.entity.properties", out),
                relations: compile_map(&e.relations, "effect.entity.relations", out),
            }))
        }
    }
}

fn compile_map(
    map: &IndexMap<String, Value>,
    path: &str,
    out: &mut Vec<Problem>,
) -> Vec<(String, Node)> {
    map.iter()
        .map(|(k, v)| (k.clone(), Node::compile(v, &format!("{path}.{k}"), out)))
        .collect()
}
