//! An automation ready to run: which events it listens to, its condition and its effect,
//! with every jq program compiled once.

use serde_json::{Map, Value};

use super::template::Node;
use super::{check, Automation, EntityMode, EventKind};
use crate::jq::{with_run_stack, JqProgram, Limits};
use crate::schema::{check_identifier, Problem};

/// An automation whose condition and templates are compiled; immutable, shareable between
/// threads.
#[derive(Debug, Clone)]
pub struct CompiledAutomation {
    automation: Automation,
    condition: Option<JqProgram>,
    effect: CompiledEffect,
}

#[derive(Debug, Clone)]
pub(super) enum CompiledEffect {
    Workflow {
        name: String,
        parameters: Vec<(String, Node)>,
    },
    Entity(Box<CompiledEntity>),
}

#[derive(Debug, Clone)]
pub(super) struct CompiledEntity {
    pub(super) mode: EntityMode,
    pub(super) blueprint: Node,
    pub(super) identifier: Node,
    pub(super) title: Option<Node>,
    /// Each with its JSON path.
    pub(super) team: Vec<(String, Node)>,
    pub(super) properties: Vec<(String, Node)>,
    pub(super) relations: Vec<(String, Node)>,
}

/// What an event is about, for [`CompiledAutomation::listens_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta<'a> {
    pub kind: EventKind,
    pub blueprint: Option<&'a str>,
    pub scorecard: Option<&'a str>,
    pub action: Option<&'a str>,
    pub workflow: Option<&'a str>,
}

impl<'a> EventMeta<'a> {
    /// Reads an event document (its `type` and the `blueprint`, `scorecard`, `action` and
    /// `workflow` it names; see the module documentation for the shapes).
    pub fn of(event: &'a Value) -> Result<EventMeta<'a>, String> {
        let text = |key: &str| event.get(key).and_then(Value::as_str);
        let kind = text("type")
            .ok_or("an event document has its kind in `type`")?
            .parse()?;
        Ok(EventMeta {
            kind,
            blueprint: text("blueprint"),
            scorecard: text("scorecard"),
            action: text("action"),
            workflow: text("workflow"),
        })
    }
}

/// The effect of one firing, rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderedEffect {
    /// Start workflow `name` with these parameters.
    Workflow {
        name: String,
        parameters: Map<String, Value>,
    },
    /// Write this entity: `{blueprint, identifier, title?, team?, properties, relations}`, as
    /// the catalog's entity JSON, for the server to validate and write in `mode`.
    Entity { mode: EntityMode, entity: Value },
}

const PARAMETERS: &str = "effect.workflow.parameters";
const ENTITY: &str = "effect.entity";

impl CompiledAutomation {
    /// Compiles the condition and every template; the problems are those of
    /// [`check_automation`](super::check_automation) that need no catalog.
    pub fn compile(automation: Automation) -> Result<Self, Vec<Problem>> {
        let (condition, effect, problems) = check::check(&automation, None);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(CompiledAutomation {
            automation,
            condition,
            effect,
        })
    }

    pub fn automation(&self) -> &Automation {
        &self.automation
    }

    /// Whether the event is one the automation waits for: its kind, and every filter of the
    /// trigger equal to what the event is about. A disabled automation listens to nothing.
    pub fn listens_to(&self, event: &EventMeta<'_>) -> bool {
        let t = &self.automation.trigger;
        let matches = |filter: &Option<String>, value: Option<&str>| {
            filter.as_deref().is_none_or(|f| Some(f) == value)
        };
        self.automation.enabled
            && t.event == event.kind
            && matches(&t.blueprint, event.blueprint)
            && matches(&t.scorecard, event.scorecard)
            && matches(&t.action, event.action)
            && matches(&t.workflow, event.workflow)
    }

    /// Whether the automation fires on `input` (`{event, before, after}`, see
    /// [`input`](super::input)): true without a condition. A value other than a boolean, a
    /// failure, and a run stopped by `limits` are errors that say which.
    pub fn condition(&self, input: &Value, limits: &Limits) -> Result<bool, String> {
        let Some(program) = &self.condition else {
            return Ok(true);
        };
        match program.run(input, limits) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "the condition gave {}, not true or false",
                describe(&other)
            )),
            Err(e) => Err(format!("the condition failed: {e}")),
        }
    }

    /// The effect on `input`. Each jq program runs under `limits`; the error names the path
    /// of every template that failed or gave a value of the wrong type
    /// (`effect.workflow.parameters.service: ...`), joined by `; `.
    pub fn render(&self, input: &Value, limits: &Limits) -> Result<RenderedEffect, String> {
        with_run_stack(|| {
            let mut errors = Vec::new();
            let rendered = match &self.effect {
                CompiledEffect::Workflow { name, parameters } => RenderedEffect::Workflow {
                    name: name.clone(),
                    parameters: render_map(parameters, input, limits, PARAMETERS, &mut errors),
                },
                CompiledEffect::Entity(e) => RenderedEffect::Entity {
                    mode: e.mode,
                    entity: render_entity(e, input, limits, &mut errors),
                },
            };
            if errors.is_empty() {
                Ok(rendered)
            } else {
                Err(errors.join("; "))
            }
        })
    }
}

fn render_map(
    entries: &[(String, Node)],
    input: &Value,
    limits: &Limits,
    path: &str,
    errors: &mut Vec<String>,
) -> Map<String, Value> {
    entries
        .iter()
        .map(|(k, node)| {
            let v = node.render(input, limits, &format!("{path}.{k}"), errors);
            (k.clone(), v)
        })
        .collect()
}

fn render_entity(
    e: &CompiledEntity,
    input: &Value,
    limits: &Limits,
    errors: &mut Vec<String>,
) -> Value {
    let mut out = Map::new();
    for (key, node) in [("blueprint", &e.blueprint), ("identifier", &e.identifier)] {
        let path = format!("{ENTITY}.{key}");
        let failed = errors.len();
        let v = node.render(input, limits, &path, errors);
        match &v {
            // The template failed, which is already an error.
            _ if errors.len() > failed => {}
            Value::String(s) => {
                if let Err(why) = check_identifier(s) {
                    errors.push(format!("{path}: {why}"));
                }
            }
            other => errors.push(format!(
                "{path}: gave {}, and {} is a string",
                describe(other),
                if key == "blueprint" {
                    "a blueprint's identifier"
                } else {
                    "an identifier"
                }
            )),
        }
        out.insert(key.to_string(), v);
    }
    if let Some(title) = &e.title {
        let path = format!("{ENTITY}.title");
        match title.render(input, limits, &path, errors) {
            Value::Null => {}
            v @ Value::String(_) => {
                out.insert("title".into(), v);
            }
            other => errors.push(format!(
                "{path}: gave {}, and a title is a string",
                describe(&other)
            )),
        }
    }
    if !e.team.is_empty() {
        let mut teams = Vec::new();
        for (path, node) in &e.team {
            match node.render(input, limits, path, errors) {
                Value::Null => {}
                v @ Value::String(_) => teams.push(v),
                Value::Array(items) if items.iter().all(Value::is_string) => teams.extend(items),
                other => errors.push(format!(
                    "{path}: gave {}, and a team is a team's name or a list of them",
                    describe(&other)
                )),
            }
        }
        out.insert("team".into(), Value::Array(teams));
    }
    let properties = render_map(
        &e.properties,
        input,
        limits,
        &format!("{ENTITY}.properties"),
        errors,
    );
    out.insert("properties".into(), Value::Object(properties));
    let mut relations = Map::new();
    for (name, node) in &e.relations {
        let path = format!("{ENTITY}.relations.{name}");
        let v = node.render(input, limits, &path, errors);
        let target = match &v {
            Value::Null | Value::String(_) => true,
            Value::Array(items) => items.iter().all(Value::is_string),
            _ => false,
        };
        if !target {
            errors.push(format!(
                "{path}: gave {}, and a relation is an identifier, a list of them, or null",
                describe(&v)
            ));
        }
        relations.insert(name.clone(), v);
    }
    out.insert("relations".into(), Value::Object(relations));
    Value::Object(out)
}

/// A value in a message: its kind, and itself when short.
pub(super) fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".into(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let mut text = v.to_string();
    if let Some((at, _)) = text.char_indices().nth(60) {
        text.truncate(at);
        text.push('…');
    }
    format!("{kind} ({text})")
}
