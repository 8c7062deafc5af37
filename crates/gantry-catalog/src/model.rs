//! Blueprints, entities and what the catalog remembers about them.
//!
//! Field names are the wire names (camelCase), shared by the API, definition files and the store.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON object.
pub type Map = serde_json::Map<String, Value>;

/// A kind of thing in the catalog (service, team, deployment, ...), defined by its user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Blueprint {
    pub identifier: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Schema,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub relations: IndexMap<String, RelationSpec>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub mirror_properties: IndexMap<String, MirrorSpec>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub calculation_properties: IndexMap<String, CalculationSpec>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub aggregation_properties: IndexMap<String, AggregationSpec>,
    /// When true, a relation may name an entity that does not exist (yet); it is shown as
    /// dangling instead of refused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_dangling_relations: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The JSON-Schema subset of a blueprint's own properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schema {
    #[serde(default)]
    pub properties: IndexMap<String, PropertySpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl PropertyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyType::String => "string",
            PropertyType::Number => "number",
            PropertyType::Integer => "integer",
            PropertyType::Boolean => "boolean",
            PropertyType::Object => "object",
            PropertyType::Array => "array",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Url,
    Email,
    DateTime,
    Markdown,
    Yaml,
    /// A user's email.
    User,
    /// A team's name.
    Team,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Url => "url",
            Format::Email => "email",
            Format::DateTime => "date-time",
            Format::Markdown => "markdown",
            Format::Yaml => "yaml",
            Format::User => "user",
            Format::Team => "team",
        }
    }
}

/// One property of a blueprint's schema (also the `items` of an array property).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PropertySpec {
    #[serde(rename = "type")]
    pub ty: PropertyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
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
    /// The schema of an array's items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<PropertySpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Only programmatic sources (API, definition files, integrations, automations) may
    /// change a locked property; the web app may not.
    #[serde(default, skip_serializing_if = "is_false")]
    pub locked: bool,
}

impl PropertySpec {
    pub fn of(ty: PropertyType) -> Self {
        PropertySpec {
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
            locked: false,
        }
    }
}

/// A named link from an entity of this blueprint to entities of `target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The blueprint of the related entities.
    pub target: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub many: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
}

/// A value read through relations: `path` is relation names then a field of the entity at
/// the end (`owner.title`, `service.owner.slack`, `owner.$team`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MirrorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub path: String,
}

/// A value computed by a jq program over the entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalculationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The jq program; its input is the entity as the API shows it.
    pub calculation: String,
    #[serde(rename = "type")]
    pub ty: PropertyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregateFunc {
    Count,
    Sum,
    Min,
    Max,
    Average,
}

/// A value aggregated over the entities of `target` whose relation `relation` names this
/// entity (incidents of a service, services of a team).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AggregationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The blueprint of the entities aggregated.
    pub target: String,
    /// The relation of `target` that points at this blueprint; may be left out when there is
    /// exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    pub func: AggregateFunc,
    /// The numeric property aggregated (all but `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Only related entities matching this query count: the JSON rule form or the text form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
}

/// The value of one relation of an entity: nothing, one identifier, or many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RelationValue {
    Many(Vec<String>),
    One(String),
}

impl RelationValue {
    pub fn targets(&self) -> &[String] {
        match self {
            RelationValue::Many(v) => v,
            RelationValue::One(s) => std::slice::from_ref(s),
        }
    }
}

/// An entity as written by its sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entity {
    pub identifier: String,
    pub blueprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Owning teams; a single name is accepted for one.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub team: Vec<String>,
    #[serde(default)]
    pub properties: Map,
    /// Relation name → target identifier(s); `null` or a missing key is no relation.
    #[serde(default, deserialize_with = "relations_map")]
    pub relations: IndexMap<String, RelationValue>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
        None(()),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
        OneOrMany::None(()) => Vec::new(),
    })
}

fn relations_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, RelationValue>, D::Error> {
    let raw: IndexMap<String, Option<RelationValue>> = Deserialize::deserialize(d)?;
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// Who set a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The web app (a signed-in browser session).
    Web,
    /// The REST API with a key.
    Api,
    /// A definition file applied by `gantry apply`; the name is the applying source.
    File(String),
    Integration(String),
    Automation(String),
}

impl Source {
    /// Programmatic sources may change locked properties; the web may not.
    pub fn is_programmatic(&self) -> bool {
        !matches!(self, Source::Web)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Web => f.write_str("web"),
            Source::Api => f.write_str("api"),
            Source::File(n) => write!(f, "file:{n}"),
            Source::Integration(n) => write!(f, "integration:{n}"),
            Source::Automation(n) => write!(f, "automation:{n}"),
        }
    }
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let named = |kind: &str, name: &str, make: fn(String) -> Source| {
            if name.is_empty() {
                Err(format!("`{kind}:` needs a name after the colon"))
            } else {
                Ok(make(name.to_string()))
            }
        };
        match s.split_once(':') {
            None if s == "web" => Ok(Source::Web),
            None if s == "api" => Ok(Source::Api),
            Some(("file", n)) => named("file", n, Source::File),
            Some(("integration", n)) => named("integration", n, Source::Integration),
            Some(("automation", n)) => named("automation", n, Source::Automation),
            _ => Err(format!(
                "`{s}` is not a source: use web, api, file:NAME, integration:NAME or automation:NAME"
            )),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An entity as stored: what its sources wrote plus what the catalog remembers about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityRecord {
    #[serde(flatten)]
    pub entity: Entity,
    /// Who set each value: keys `title`, `team`, `properties.<name>`, `relations.<name>`.
    #[serde(default)]
    pub sources: BTreeMap<String, Source>,
    /// 1 for a new entity, one more for each change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The actor (user email, service account, ...) who created it and who changed it last.
    pub created_by: String,
    pub updated_by: String,
    /// The definition-file source that declared it, which `gantry apply --prune` may delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

/// A blueprint as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueprintRecord {
    #[serde(flatten)]
    pub blueprint: Blueprint,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

/// An entity in the catalog's index: the record and its computed values (mirror,
/// calculation and aggregation properties), which are derived, never stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed {
    pub record: EntityRecord,
    pub computed: Map,
}

/// Fields every entity has, readable by queries and mirror paths under these names (or with a
/// `$` before them, which is never a property).
pub const META_FIELDS: &[&str] = &[
    "identifier",
    "title",
    "blueprint",
    "team",
    "createdAt",
    "updatedAt",
    "createdBy",
    "updatedBy",
];

impl Indexed {
    /// The value of a field of this entity, as queries see it: a meta field (`identifier`,
    /// `$team`, ...), then a property, a computed property, or a relation (its target ids;
    /// one id for a single relation). `properties.x` names a property only. `None` when the
    /// entity has no such field.
    pub fn field(&self, name: &str) -> Option<Cow<'_, Value>> {
        let e = &self.record.entity;
        if let Some(p) = name.strip_prefix("properties.") {
            return e.properties.get(p).map(Cow::Borrowed);
        }
        let meta = name.strip_prefix('$').unwrap_or(name);
        let owned = |v: Value| Some(Cow::Owned(v));
        match meta {
            "identifier" => return owned(Value::String(e.identifier.clone())),
            "title" => {
                return owned(Value::String(
                    e.title.clone().unwrap_or_else(|| e.identifier.clone()),
                ))
            }
            "blueprint" => return owned(Value::String(e.blueprint.clone())),
            "team" => {
                return owned(Value::Array(
                    e.team.iter().cloned().map(Value::String).collect(),
                ))
            }
            "createdAt" => return owned(Value::String(self.record.created_at.to_rfc3339())),
            "updatedAt" => return owned(Value::String(self.record.updated_at.to_rfc3339())),
            "createdBy" => return owned(Value::String(self.record.created_by.clone())),
            "updatedBy" => return owned(Value::String(self.record.updated_by.clone())),
            _ if name.starts_with('$') => return None,
            _ => {}
        }
        if let Some(v) = e.properties.get(name) {
            return Some(Cow::Borrowed(v));
        }
        if let Some(v) = self.computed.get(name) {
            return Some(Cow::Borrowed(v));
        }
        e.relations.get(name).map(|r| match r {
            RelationValue::One(s) => Cow::Owned(Value::String(s.clone())),
            RelationValue::Many(v) => {
                Cow::Owned(Value::Array(v.iter().cloned().map(Value::String).collect()))
            }
        })
    }

    /// The entity as the API and jq calculations see it: the written fields, computed
    /// properties merged into `properties`, and the meta fields.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    /// What [`Indexed::to_json`] gives, written by serde without building a `Value` first.
    pub fn view(&self) -> EntityView<'_> {
        let r = &self.record;
        EntityView {
            identifier: &r.entity.identifier,
            blueprint: &r.entity.blueprint,
            title: r.entity.title.as_deref().unwrap_or(&r.entity.identifier),
            team: &r.entity.team,
            properties: Merged {
                written: &r.entity.properties,
                computed: &self.computed,
            },
            relations: &r.entity.relations,
            created_at: r.created_at.to_rfc3339(),
            updated_at: r.updated_at.to_rfc3339(),
            created_by: &r.created_by,
            updated_by: &r.updated_by,
            version: r.version,
        }
    }
}

/// An entity as the API shows it; see [`Indexed::view`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityView<'a> {
    identifier: &'a str,
    blueprint: &'a str,
    title: &'a str,
    team: &'a [String],
    properties: Merged<'a>,
    relations: &'a IndexMap<String, RelationValue>,
    created_at: String,
    updated_at: String,
    created_by: &'a str,
    updated_by: &'a str,
    version: i64,
}

/// The written properties with the computed ones over them: a computed value takes a written
/// one's place, the others follow.
#[derive(Debug)]
struct Merged<'a> {
    written: &'a Map,
    computed: &'a Map,
}

impl Serialize for Merged<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let extra = self
            .computed
            .keys()
            .filter(|k| !self.written.contains_key(*k))
            .count();
        let mut m = s.serialize_map(Some(self.written.len() + extra))?;
        for (k, v) in self.written {
            m.serialize_entry(k, self.computed.get(k).unwrap_or(v))?;
        }
        for (k, v) in self.computed {
            if !self.written.contains_key(k) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// What queries, mirror paths and aggregations need to see of the rest of the catalog.
pub trait Lookup {
    fn blueprint(&self, identifier: &str) -> Option<&Blueprint>;
    fn entity(&self, blueprint: &str, identifier: &str) -> Option<&Indexed>;
    /// The entities whose relations name this one: (the referrer, the relation's name).
    fn referrers(&self, blueprint: &str, identifier: &str) -> Vec<(&Indexed, &str)>;
}
