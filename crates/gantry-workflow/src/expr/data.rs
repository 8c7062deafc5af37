//! The run data expressions are evaluated against, and the record of what was missing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Succeeded,
    Failed,
    Skipped,
}

/// Everything an expression can read. Absent entries are "not available yet" (unresolved),
/// not errors.
/// `Debug` prints secret names only, so logging a `Data` cannot leak a secret.
#[derive(Clone, Default)]
pub struct Data {
    pub parameters: Map<String, Value>,
    pub secrets: BTreeMap<String, String>,
    /// type -> name -> connection fields.
    pub connections: BTreeMap<String, BTreeMap<String, Value>>,
    /// step -> key -> value.
    pub outputs: BTreeMap<String, Map<String, Value>>,
    /// Finished steps only.
    pub steps: BTreeMap<String, StepStatus>,
    /// The triggering event's data; `None` when there is no event.
    pub event: Option<Value>,
    /// askRef -> name -> answer.
    pub answers: BTreeMap<String, Map<String, Value>>,
    /// The clock `now()` reads, injected so evaluation stays deterministic.
    pub now: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret_names: Vec<&String> = self.secrets.keys().collect();
        f.debug_struct("Data")
            .field("parameters", &self.parameters)
            .field("secrets", &secret_names)
            .field("connections", &self.connections.keys().collect::<Vec<_>>())
            .field("outputs", &self.outputs)
            .field("steps", &self.steps)
            .field("event", &self.event)
            .field("answers", &self.answers)
            .field("now", &self.now)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnresolvedData {
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnresolvedName {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnresolvedConnection {
    pub r#type: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnresolvedOutput {
    pub from: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnresolvedAnswer {
    #[serde(rename = "askRef")]
    pub ask_ref: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnresolvedStatus {
    pub action: String,
    pub property: String,
}

/// What an evaluation needed but could not find, in the shape of Relay's `UnresolvableEnvelope`.
/// Each list is sorted and free of duplicates.
/// A reference to a whole step's outputs (`outputs.build`), a whole connection type or a whole
/// step status is recorded with an empty `name`/`property`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<UnresolvedData>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<UnresolvedName>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<UnresolvedConnection>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<UnresolvedOutput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<UnresolvedName>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<UnresolvedAnswer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<UnresolvedStatus>,
}

fn sorted_union<T: Ord>(into: &mut Vec<T>, from: Vec<T>) {
    into.extend(from);
    into.sort();
    into.dedup();
}

impl Unresolved {
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.secrets.is_empty()
            && self.connections.is_empty()
            && self.outputs.is_empty()
            && self.parameters.is_empty()
            && self.answers.is_empty()
            && self.statuses.is_empty()
    }

    /// Adds everything from `other`, keeping each list sorted and de-duplicated.
    pub fn merge(&mut self, other: Unresolved) {
        sorted_union(&mut self.data, other.data);
        sorted_union(&mut self.secrets, other.secrets);
        sorted_union(&mut self.connections, other.connections);
        sorted_union(&mut self.outputs, other.outputs);
        sorted_union(&mut self.parameters, other.parameters);
        sorted_union(&mut self.answers, other.answers);
        sorted_union(&mut self.statuses, other.statuses);
    }

    pub(crate) fn data(query: impl Into<String>) -> Self {
        Unresolved {
            data: vec![UnresolvedData {
                query: query.into(),
            }],
            ..Default::default()
        }
    }

    pub(crate) fn secret(name: &str) -> Self {
        Unresolved {
            secrets: vec![UnresolvedName { name: name.into() }],
            ..Default::default()
        }
    }

    pub(crate) fn parameter(name: &str) -> Self {
        Unresolved {
            parameters: vec![UnresolvedName { name: name.into() }],
            ..Default::default()
        }
    }

    pub(crate) fn connection(kind: &str, name: &str) -> Self {
        Unresolved {
            connections: vec![UnresolvedConnection {
                r#type: kind.into(),
                name: name.into(),
            }],
            ..Default::default()
        }
    }

    pub(crate) fn output(from: &str, name: &str) -> Self {
        Unresolved {
            outputs: vec![UnresolvedOutput {
                from: from.into(),
                name: name.into(),
            }],
            ..Default::default()
        }
    }

    pub(crate) fn answer(ask_ref: &str, name: &str) -> Self {
        Unresolved {
            answers: vec![UnresolvedAnswer {
                ask_ref: ask_ref.into(),
                name: name.into(),
            }],
            ..Default::default()
        }
    }

    pub(crate) fn status(action: &str, property: &str) -> Self {
        Unresolved {
            statuses: vec![UnresolvedStatus {
                action: action.into(),
                property: property.into(),
            }],
            ..Default::default()
        }
    }
}
