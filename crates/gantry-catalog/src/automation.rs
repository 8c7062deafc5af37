//! Automations: when something happens in the catalog or to a run, test a condition and, if it
//! holds, start a workflow or write an entity.
//!
//! An automation is a definition like an action ([`Automation`], `kind: Automation` in
//! definition files): a [`Trigger`] (an [`EventKind`] and optional filters on the blueprint,
//! scorecard, action or workflow the event is about), an optional `condition` (a jq program
//! giving `true` or `false`) and an [`Effect`] whose strings are `{{ jq }}` templates.
//! The server drives it through the pure steps of this module:
//!
//! 1. [`check_automation`]: every problem of the definition, with its JSON path;
//! 2. [`CompiledAutomation::compile`]: the condition and every template compiled once;
//! 3. [`CompiledAutomation::listens_to`]: whether an event ([`EventMeta`]) is one it waits for;
//! 4. [`input`]: the document `{event, before, after}` the condition and templates read;
//! 5. [`CompiledAutomation::condition`] and [`CompiledAutomation::render`]: whether it fires,
//!    and the workflow run or entity write it asks for ([`RenderedEffect`]);
//! 6. [`check_chain`]: whether firing would loop, from the chain of automations that led to
//!    the event.
//!
//! # Event documents
//!
//! What the server sends as `event`, `before` and `after` ([`input`] builds the whole):
//!
//! - `entity.created`, `entity.updated`, `entity.deleted`: `event` is
//!   `{type, blueprint, identifier, actor, source, at}`; `before` and `after` are the entity as
//!   the API shows it, `null` on the side where it does not exist (`before` of a creation,
//!   `after` of a deletion).
//! - `scorecard.level_changed`: `event` is
//!   `{type, scorecard, blueprint, identifier, from, to, direction, at, entity}`, where
//!   `direction` is `"rise"` or `"drop"` and `entity` is the entity as the API shows it;
//!   `before` and `after` are `{level, score}`.
//! - `action_run.finished`: `event` is `{type, action, run, status, entity?}`; `after` is the
//!   run document.
//! - `run.finished`: `event` is `{type, workflow, run, status}`; `after` is
//!   `{id, workflow, status}`.
//!
//! ```text
//! condition: '.event.direction == "drop"'
//! effect:
//!   workflow:
//!     name: notify-owner
//!     parameters:
//!       service: '{{ .event.identifier }}'       # one template: the jq value, typed
//!       message: 'dropped to {{ .after.level }}' # text around: each value as text
//! ```
//!
//! # Loops
//!
//! An entity an automation writes is an event other automations (or itself) may listen to.
//! Events caused by an effect carry the chain of automations that led to them; the server
//! asks [`check_chain`] before firing the next one, which refuses a repeat and a chain longer
//! than [`MAX_CHAIN`].
//!
//! No I/O and no clock: the catalog is reached through [`Lookup`](crate::Lookup), jq runs under the
//! [`Limits`](crate::jq::Limits) given (a program that never ends is stopped, see
//! [`crate::jq`]). A [`CompiledAutomation`] is immutable and may be shared between threads;
//! each condition or render runs on the calling thread.

mod check;
mod compiled;
mod template;

use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub use check::check_automation;
pub use compiled::{CompiledAutomation, EventMeta, RenderedEffect};

/// How many automations may follow one another from one original event.
pub const MAX_CHAIN: usize = 8;

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// An automation: when its trigger's event happens and its condition holds, its effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Automation {
    pub identifier: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A disabled automation listens to nothing.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    pub trigger: Trigger,
    /// A jq program over `{event, before, after}` giving `true` or `false`; left out, the
    /// automation fires on every event its trigger lets through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub effect: Effect,
}

/// The events an automation waits for: one kind, narrowed by the filters that apply to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trigger {
    pub event: EventKind,
    /// Only events about entities of this blueprint (`entity.*`, `scorecard.level_changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<String>,
    /// Only changes of this scorecard (`scorecard.level_changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorecard: Option<String>,
    /// Only runs of this action (`action_run.finished`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Only runs of this workflow (`run.finished`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

/// What happened, as written in triggers and in the `type` of event documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    EntityCreated,
    EntityUpdated,
    EntityDeleted,
    ScorecardLevelChanged,
    ActionRunFinished,
    RunFinished,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::EntityCreated,
        EventKind::EntityUpdated,
        EventKind::EntityDeleted,
        EventKind::ScorecardLevelChanged,
        EventKind::ActionRunFinished,
        EventKind::RunFinished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::EntityCreated => "entity.created",
            EventKind::EntityUpdated => "entity.updated",
            EventKind::EntityDeleted => "entity.deleted",
            EventKind::ScorecardLevelChanged => "scorecard.level_changed",
            EventKind::ActionRunFinished => "action_run.finished",
            EventKind::RunFinished => "run.finished",
        }
    }

    /// Whether the event is about one entity of a blueprint (`trigger.blueprint` applies).
    pub fn has_blueprint(self) -> bool {
        matches!(
            self,
            EventKind::EntityCreated
                | EventKind::EntityUpdated
                | EventKind::EntityDeleted
                | EventKind::ScorecardLevelChanged
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;

    /// The error lists the events, with a "did you mean" for a misspelled one.
    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names = EventKind::ALL.map(EventKind::as_str);
                let hint = gantry_workflow::diagnostic::suggest(s, names)
                    .map(|h| format!(" {h}"))
                    .unwrap_or_default();
                format!(
                    "`{s}` is not an event an automation can wait for;{hint} the events are {}",
                    names.map(|n| format!("`{n}`")).join(", ")
                )
            })
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What an automation does when it fires: start a workflow or write an entity. Every string
/// in it, at any depth, is a `{{ jq }}` template over `{event, before, after}`: a string that is
/// exactly one `{{ jq }}` gives the program's value as it is (a number stays a number); in
/// any other string each `{{ jq }}` is replaced by its value as text (a string as it is,
/// anything else as JSON).
///
/// Written as a mapping holding exactly one of `workflow` and `entity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EffectDoc", into = "EffectDoc")]
pub enum Effect {
    /// Starts the named workflow with these parameters.
    Workflow {
        name: String,
        parameters: IndexMap<String, Value>,
    },
    /// Creates, patches or upserts an entity.
    Entity(EntityEffect),
}

/// The entity an effect writes. `blueprint`, `identifier`, `title` and each `team` are
/// templates too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityEffect {
    pub mode: EntityMode,
    pub blueprint: String,
    pub identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Owning teams; one string is accepted for one. Each may give a team's name, a list of
    /// them, or null (none).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub team: Vec<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub properties: IndexMap<String, Value>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub relations: IndexMap<String, Value>,
}

/// How an entity effect writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityMode {
    /// A new entity; writing one that exists is an error.
    Create,
    /// Changes the given fields of an existing entity; one that does not exist is an error.
    Patch,
    /// Creates the entity or replaces it.
    Upsert,
}

impl EntityMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityMode::Create => "create",
            EntityMode::Patch => "patch",
            EntityMode::Upsert => "upsert",
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// `effect` as written: exactly one of the two.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EffectDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workflow: Option<WorkflowDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entity: Option<EntityEffect>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WorkflowDoc {
    name: String,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    parameters: IndexMap<String, Value>,
}

impl TryFrom<EffectDoc> for Effect {
    type Error = String;

    fn try_from(doc: EffectDoc) -> Result<Self, String> {
        match (doc.workflow, doc.entity) {
            (Some(w), None) => Ok(Effect::Workflow {
                name: w.name,
                parameters: w.parameters,
            }),
            (None, Some(e)) => Ok(Effect::Entity(e)),
            (Some(_), Some(_)) => Err("an effect is either a `workflow` or an `entity`, not both \
                                       (write two automations for two effects)"
                .into()),
            (None, None) => Err("say what the automation does: start a `workflow` \
                                 ({name, parameters}) or write an `entity` \
                                 ({mode, blueprint, identifier, ...})"
                .into()),
        }
    }
}

impl From<Effect> for EffectDoc {
    fn from(e: Effect) -> Self {
        match e {
            Effect::Workflow { name, parameters } => EffectDoc {
                workflow: Some(WorkflowDoc { name, parameters }),
                entity: None,
            },
            Effect::Entity(entity) => EffectDoc {
                workflow: None,
                entity: Some(entity),
            },
        }
    }
}

/// The document conditions and templates read: `{event, before, after}`, with `null` for a
/// side that is absent.
pub fn input(event: &Value, before: Option<&Value>, after: Option<&Value>) -> Value {
    let mut doc = serde_json::Map::with_capacity(3);
    doc.insert("event".into(), event.clone());
    doc.insert("before".into(), before.cloned().unwrap_or(Value::Null));
    doc.insert("after".into(), after.cloned().unwrap_or(Value::Null));
    Value::Object(doc)
}

/// Why an automation was not fired: it would loop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoopError {
    /// The automation is already in the chain that led to the event; `chain` ends with it.
    #[error(
        "automation `{}` fired again by its own effect: {}; stopped",
        chain.last().map_or("", String::as_str),
        arrows(chain)
    )]
    Repeat { chain: Vec<String> },
    /// Firing would make the chain longer than [`MAX_CHAIN`]; `chain` ends with the automation
    /// refused.
    #[error("automation chain longer than {MAX_CHAIN}: {}; stopped", arrows(chain))]
    TooLong { chain: Vec<String> },
}

fn arrows(chain: &[String]) -> String {
    chain.join(" → ")
}

/// Whether automation `next` may fire on an event caused by the automations of `chain` (in the
/// order they fired; empty for an event a person or an integration caused).
pub fn check_chain(chain: &[String], next: &str) -> Result<(), LoopError> {
    let with_next = || {
        let mut c = chain.to_vec();
        c.push(next.to_string());
        c
    };
    if chain.iter().any(|a| a == next) {
        return Err(LoopError::Repeat { chain: with_next() });
    }
    if chain.len() >= MAX_CHAIN {
        return Err(LoopError::TooLong { chain: with_next() });
    }
    Ok(())
}
