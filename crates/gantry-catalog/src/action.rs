//! Self-service actions: what a user may ask Gantry to do (create a service, restart one,
//! delete one), with which inputs, who may run and approve it, and what it starts.
//!
//! An action is a definition like a blueprint ([`Action`], `kind: Action` in definition files).
//! A run of it goes through the pure steps of this module, in order:
//!
//! 1. [`check_action`]: every problem of the definition, with its JSON path;
//! 2. [`Action::applies_to`]: a day-2 or delete action acts on an entity of its blueprint that
//!    matches its `condition`;
//! 3. [`Rule::allows`] (with [`Permissions::run_rule`]): who may run it;
//! 4. [`validate_inputs`]: the inputs given, with defaults, entity pickers checked against the
//!    catalog, and secret inputs split out for the server to encrypt ([`ValidatedInputs`]);
//! 5. [`approval_state`]: whether the approvals given so far are enough;
//! 6. [`ParameterTemplates::render`]: the invocation's parameters, from templates over the
//!    inputs, the entity, the user and the run, each marked when it used a secret input;
//! 7. [`sign`]: the signature header of a webhook invocation ([`verify`] for its receiver).
//!
//! No I/O and no clock: the catalog is reached through [`Lookup`] or a closure, times are
//! arguments, and secret values are only ever in [`ValidatedInputs::secret`] and in rendered
//! values marked secret. Messages never quote a secret input's value. Plain functions over
//! data, safe from any thread.

mod check;
mod inputs;
mod permission;
mod signature;
mod template;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::model::{Format, Indexed, Lookup, PropertyType};
use crate::query::Query;

pub use check::check_action;
pub(crate) use check::check_workflow_name;
pub use inputs::{validate_inputs, ValidatedInputs};
pub use permission::{approval_state, ApprovalState, Role, Who};
pub use signature::{sign, verify};
pub use template::{
    ParameterTemplates, Reference, Rendered, RenderedParameters, Template, TemplateContext,
    TemplateRoot, TemplateStep,
};

fn is_false(b: &bool) -> bool {
    !*b
}

/// A self-service action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Action {
    pub identifier: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// The blueprint of the entities the action creates or acts on; required for day-2 and
    /// delete actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<String>,
    pub operation: Operation,
    /// A catalog query (the text form or the JSON rule form) the entity a day-2 or delete
    /// action acts on must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(default)]
    pub inputs: Inputs,
    #[serde(default, skip_serializing_if = "Permissions::is_default")]
    pub permissions: Permissions,
    #[serde(default, skip_serializing_if = "Approval::is_default")]
    pub approval: Approval,
    pub invocation: Invocation,
}

/// What an action does to the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// Makes something new; it acts on no existing entity.
    #[serde(rename = "create")]
    Create,
    /// Acts on an existing entity (restart, scale, rotate a key, ...).
    #[serde(rename = "day-2")]
    Day2,
    /// Removes an existing entity (or what it stands for).
    #[serde(rename = "delete")]
    Delete,
}

impl Operation {
    /// As written in definitions: `create`, `day-2`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Day2 => "day-2",
            Operation::Delete => "delete",
        }
    }

    /// Whether a run acts on one existing entity (day-2 and delete).
    pub fn needs_entity(self) -> bool {
        !matches!(self, Operation::Create)
    }
}

/// The inputs of an action: a JSON Schema object of named inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inputs {
    /// In the order a form shows them.
    #[serde(default)]
    pub properties: IndexMap<String, InputSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
}

/// The format of a string input: the formats of blueprint properties, plus `entity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    Url,
    Email,
    DateTime,
    Markdown,
    Yaml,
    /// A user's email.
    User,
    /// A team's name.
    Team,
    /// The identifier of an entity of the input's `blueprint` (an entity picker).
    Entity,
}

impl InputFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            InputFormat::Entity => "entity",
            other => other.property_format().map_or("", Format::as_str),
        }
    }

    /// The same format of blueprint properties; `None` for `entity`.
    pub fn property_format(self) -> Option<Format> {
        Some(match self {
            InputFormat::Url => Format::Url,
            InputFormat::Email => Format::Email,
            InputFormat::DateTime => Format::DateTime,
            InputFormat::Markdown => Format::Markdown,
            InputFormat::Yaml => Format::Yaml,
            InputFormat::User => Format::User,
            InputFormat::Team => Format::Team,
            InputFormat::Entity => return None,
        })
    }
}

/// One input of an action (also the `items` of an array input): the JSON-Schema subset of
/// blueprint properties, plus entity pickers and secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputSpec {
    #[serde(rename = "type")]
    pub ty: PropertyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<InputFormat>,
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// The spec of an array's items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<InputSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The blueprint of an entity picker (`format: entity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<String>,
    /// A catalog query (text or JSON rule form) the picked entity must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
    /// A secret input: the server encrypts its value and never stores it in plain; templates
    /// mark what they render from it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secret: bool,
}

impl InputSpec {
    /// An input of this type with nothing else set.
    pub fn of(ty: PropertyType) -> Self {
        InputSpec {
            ty,
            title: None,
            description: None,
            format: None,
            enum_values: None,
            pattern: None,
            minimum: None,
            maximum: None,
            min_length: None,
            max_length: None,
            min_items: None,
            max_items: None,
            items: None,
            default: None,
            blueprint: None,
            query: None,
            secret: false,
        }
    }

    /// Whether the value (or each item) is an entity's identifier.
    pub fn is_entity_picker(&self) -> bool {
        self.format == Some(InputFormat::Entity)
    }

    /// The same spec as a blueprint property, for the checks both share: entity pickers
    /// become plain strings, and what only inputs have is left out.
    pub(crate) fn as_property(&self) -> crate::model::PropertySpec {
        crate::model::PropertySpec {
            ty: self.ty,
            title: None,
            description: None,
            format: self.format.and_then(InputFormat::property_format),
            enum_values: self.enum_values.clone(),
            pattern: self.pattern.clone(),
            minimum: self.minimum,
            maximum: self.maximum,
            min_length: self.min_length,
            max_length: self.max_length,
            min_items: self.min_items,
            max_items: self.max_items,
            items: self.items.as_deref().map(|i| Box::new(i.as_property())),
            default: self.default.clone(),
            locked: false,
        }
    }
}

/// Who may run an action and who may approve its runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Permissions {
    /// Left out: operators and above may run ([`Rule::default_run`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Rule>,
    /// Left out: approvers and above may approve ([`Rule::default_approve`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<Rule>,
}

impl Permissions {
    fn is_default(&self) -> bool {
        self == &Permissions::default()
    }

    /// The rule of who may run: the one written, else [`Rule::default_run`].
    pub fn run_rule(&self) -> Rule {
        self.run.clone().unwrap_or_else(Rule::default_run)
    }

    /// The rule of who may approve: the one written, else [`Rule::default_approve`].
    pub fn approve_rule(&self) -> Rule {
        self.approve.clone().unwrap_or_else(Rule::default_approve)
    }
}

/// How the principals of a [`Rule`] combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One listed principal is enough.
    #[default]
    Any,
    /// Every kind of principal listed must be matched.
    All,
}

/// A set of principals: listed users (emails), members of listed teams, holders of listed
/// roles (or a higher role), and the owning teams of the entity acted on. See
/// [`Rule::allows`] for how `mode` combines them, and [`approval_state`] for approvals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    /// The members of the teams that own the entity acted on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub owners: bool,
    #[serde(default)]
    pub mode: Mode,
}

/// Whether runs wait for approvals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approval {
    #[serde(default)]
    pub required: bool,
    /// How many approvers are needed when the approve rule's mode is `any`; 1 when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

impl Approval {
    fn is_default(&self) -> bool {
        self == &Approval::default()
    }
}

/// What a run of the action starts: a Gantry workflow or a webhook (exactly one), with
/// parameters rendered from templates (see [`Template`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Invocation {
    /// The name of the workflow a run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// Parameter name → value; every string in a value, at any depth, is a template.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub parameters: IndexMap<String, Value>,
}

/// Where an invocation goes, once [`check_action`] found exactly one target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target<'a> {
    Workflow(&'a str),
    Webhook(&'a Webhook),
}

impl Invocation {
    /// The workflow or the webhook; `None` when neither or both are given.
    pub fn target(&self) -> Option<Target<'_>> {
        match (&self.workflow, &self.webhook) {
            (Some(w), None) => Some(Target::Workflow(w)),
            (None, Some(h)) => Some(Target::Webhook(h)),
            _ => None,
        }
    }
}

/// An HTTP(S) endpoint a run posts its parameters to, signed with a named secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// The secret the body is signed with ([`sign`]); unsigned when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretRef>,
    /// How long the receiver has to answer the request (10 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// How long the receiver has, after its answer timeout, to report the run's end through
    /// the report URL it was given (600 when left out): the run fails unless its end is
    /// reported within `timeoutSeconds + reportTimeoutSeconds` of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_timeout_seconds: Option<u32>,
}

impl Webhook {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.timeout_seconds.unwrap_or(10).max(1)))
    }

    pub fn report_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.report_timeout_seconds.unwrap_or(600).max(1)))
    }
}

/// A secret named by a definition: `!Secret NAME` in YAML, `{"secret": NAME}` in JSON.
/// Only the name is kept; the value lives in the server's secret store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    pub name: String,
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("secret", &self.name)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(o) if o.len() == 1 => match o.get("secret") {
                Some(Value::String(name)) => Ok(SecretRef { name: name.clone() }),
                _ => Err(serde::de::Error::custom(SECRET_FORM)),
            },
            // A plain string may be the secret's value pasted in: refused, and not quoted.
            _ => Err(serde::de::Error::custom(SECRET_FORM)),
        }
    }
}

const SECRET_FORM: &str = "a webhook secret is named, never written in a definition: write \
                           `!Secret NAME` in YAML or {\"secret\": \"NAME\"}";

/// An action as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    #[serde(flatten)]
    pub action: Action,
    /// 1 for a new action, one more for each change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The actor who created it and who changed it last.
    pub created_by: String,
    pub updated_by: String,
    /// The definition-file source that declared it, which `gantry apply --prune` may delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

impl Action {
    /// Whether a run may act on `e`: for day-2 and delete actions, `e` is of the action's
    /// blueprint and matches its `condition`; a create action acts on no entity. The error
    /// says why not, in the user's words.
    pub fn applies_to(&self, e: &Indexed, lookup: &dyn Lookup) -> Result<(), String> {
        if !self.operation.needs_entity() {
            return Err(format!(
                "`{}` is a create action: it acts on no existing entity",
                self.identifier
            ));
        }
        let blueprint = &e.record.entity.blueprint;
        if self.blueprint.as_deref() != Some(blueprint.as_str()) {
            return Err(format!(
                "`{}` acts on `{}` entities, and `{}` is a `{blueprint}`",
                self.identifier,
                self.blueprint.as_deref().unwrap_or(""),
                e.record.entity.identifier
            ));
        }
        let Some(condition) = &self.condition else {
            return Ok(());
        };
        let query = Query::from_value(condition)
            .map_err(|err| format!("the action's condition is not a valid query: {err}"))?;
        if query.prepare(lookup).matches(e, lookup) {
            Ok(())
        } else {
            Err(format!(
                "`{}` does not match the condition of `{}`: {query}",
                e.record.entity.identifier, self.identifier
            ))
        }
    }
}
