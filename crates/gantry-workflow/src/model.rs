//! The typed workflow model: what a Relay `apiVersion: v1` file says, with a span on every node.
//!
//! Values that may hold expressions (`spec`, `env`, `when`, bindings, parameter defaults) are
//! kept as [`Value`]: Gantry's canonical form (relay-reference §1.5) with spans, so YAML tags and
//! `${...}` templates are one shape from here on. [`Value::to_json`] gives the stored JSON.

use serde_json::{Map, Value as Json};

use crate::cron::Schedule;
use crate::diagnostic::Span;

/// A value with the span of the source text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

impl Spanned<String> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workflow {
    pub api_version: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub summary: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub homepage: Option<Spanned<String>>,
    pub source: Option<Spanned<String>>,
    pub tags: Vec<Spanned<String>>,
    /// Free-form; a home for YAML anchors. Ignored by the engine.
    pub locals: Option<Value>,
    /// Gantry extension: the longest a run may take.
    pub timeout: Option<Spanned<std::time::Duration>>,
    /// Gantry extension: the agent pool every container step runs on unless it names its own.
    /// `None` is the server's own runtime.
    pub agent: Option<Spanned<String>>,
    pub parameters: Vec<Parameter>,
    pub triggers: Vec<Trigger>,
    pub steps: Vec<Step>,
}

impl Workflow {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name.value == name)
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name.value == name)
    }

    /// The agent pool `step` runs on: its own `agent`, else the workflow's. `None` means the
    /// server's own runtime, and always for an approval, which runs nowhere.
    pub fn agent_of<'a>(&'a self, step: &'a Step) -> Option<&'a Spanned<String>> {
        match step.kind {
            StepKind::Container(_) => step.agent.as_ref().or(self.agent.as_ref()),
            StepKind::Approval => None,
        }
    }

    /// The canonical JSON form of the whole workflow, as Gantry stores it.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        let mut put_str = |k: &str, v: &Option<Spanned<String>>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), Json::String(v.value.clone()));
            }
        };
        put_str("apiVersion", &self.api_version);
        put_str("kind", &self.kind);
        put_str("name", &self.name);
        put_str("summary", &self.summary);
        put_str("description", &self.description);
        put_str("homepage", &self.homepage);
        put_str("source", &self.source);
        if !self.tags.is_empty() {
            m.insert(
                "tags".into(),
                self.tags
                    .iter()
                    .map(|t| Json::String(t.value.clone()))
                    .collect(),
            );
        }
        if let Some(t) = &self.timeout {
            m.insert("timeout".into(), duration_json(t.value));
        }
        if let Some(a) = &self.agent {
            m.insert("agent".into(), Json::String(a.value.clone()));
        }
        if !self.parameters.is_empty() {
            let params = self
                .parameters
                .iter()
                .map(|p| (p.name.value.clone(), p.to_json()))
                .collect();
            m.insert("parameters".into(), Json::Object(params));
        }
        if !self.triggers.is_empty() {
            m.insert(
                "triggers".into(),
                self.triggers.iter().map(Trigger::to_json).collect(),
            );
        }
        m.insert(
            "steps".into(),
            self.steps.iter().map(Step::to_json).collect(),
        );
        Json::Object(m)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    /// `Some(null)` is an explicit `default: null`, distinct from no default.
    pub default: Option<Value>,
    pub type_: Option<Spanned<String>>,
    pub span: Span,
}

impl Parameter {
    fn to_json(&self) -> Json {
        let mut m = Map::new();
        if let Some(d) = &self.description {
            m.insert("description".into(), Json::String(d.value.clone()));
        }
        if let Some(d) = &self.default {
            m.insert("default".into(), d.to_json());
        }
        if let Some(t) = &self.type_ {
            m.insert("type".into(), Json::String(t.value.clone()));
        }
        Json::Object(m)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    pub kind: StepKind,
    pub depends_on: Vec<Spanned<String>>,
    pub when: Option<When>,
    /// Gantry extension: the longest the step may run, or for an approval, wait for an answer.
    pub timeout: Option<Spanned<std::time::Duration>>,
    /// Gantry extension: the agent pool this step runs on, over the workflow's `agent`.
    /// Always `None` on an approval step. [`Workflow::agent_of`] gives the pool in effect.
    pub agent: Option<Spanned<String>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Container(Box<Container>),
    Approval,
}

impl Step {
    pub fn container(&self) -> Option<&Container> {
        match &self.kind {
            StepKind::Container(c) => Some(c),
            StepKind::Approval => None,
        }
    }

    fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("name".into(), Json::String(self.name.value.clone()));
        if let Some(d) = &self.description {
            m.insert("description".into(), Json::String(d.value.clone()));
        }
        match &self.kind {
            StepKind::Approval => {
                m.insert("type".into(), Json::String("approval".into()));
            }
            StepKind::Container(c) => c.write_json(&mut m),
        }
        if !self.depends_on.is_empty() {
            m.insert(
                "dependsOn".into(),
                self.depends_on
                    .iter()
                    .map(|d| Json::String(d.value.clone()))
                    .collect(),
            );
        }
        if let Some(w) = &self.when {
            m.insert("when".into(), w.to_json());
        }
        if let Some(t) = &self.timeout {
            m.insert("timeout".into(), duration_json(t.value));
        }
        if let Some(a) = &self.agent {
            m.insert("agent".into(), Json::String(a.value.clone()));
        }
        Json::Object(m)
    }
}

fn duration_json(d: std::time::Duration) -> Json {
    Json::String(format!("{}ms", d.as_millis()))
}

/// The longest agent pool name, in characters.
pub const MAX_AGENT_POOL_CHARS: usize = 100;

/// An agent pool's name, as a workflow's or a step's `agent` gives it: 1 to
/// [`MAX_AGENT_POOL_CHARS`] lowercase letters, digits, `-`, `_` or `.`. This is the rule agent
/// tokens' pools follow (`POST /agent-tokens`), so every pool a workflow names is one an agent
/// can serve. The error says what is wrong with `name`, without naming the key.
pub fn check_agent_pool(name: &str) -> Result<(), String> {
    const RULE: &str = "a pool name is 1 to 100 lowercase letters, digits, `-`, `_` or `.`";
    if name.is_empty() {
        return Err("a pool name cannot be empty".into());
    }
    let chars = name.chars().count();
    if chars > MAX_AGENT_POOL_CHARS {
        let start: String = name.chars().take(20).collect();
        return Err(format!("`{start}…` is {chars} characters long; {RULE}"));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    match name.chars().find(|c| !allowed(*c)) {
        None => Ok(()),
        Some(c) if c.is_whitespace() => Err(format!("`{name}` contains a space; {RULE}")),
        Some(c) => Err(format!("`{name}` contains `{c}`; {RULE}")),
    }
}

/// The fields shared by container steps and webhook trigger containers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Container {
    pub image: Option<Spanned<String>>,
    pub spec: Option<Value>,
    pub env: Option<Value>,
    /// Shell lines, never expression-evaluated.
    pub input: Vec<Spanned<String>>,
    pub input_file: Option<Spanned<String>>,
    pub command: Option<Spanned<String>>,
    pub args: Vec<Spanned<String>>,
}

impl Container {
    /// The canonical JSON form of these fields alone (no spans): two containers with the same
    /// form run the same thing.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        self.write_json(&mut m);
        Json::Object(m)
    }

    fn write_json(&self, m: &mut Map<String, Json>) {
        let strings = |v: &[Spanned<String>]| -> Json {
            v.iter().map(|s| Json::String(s.value.clone())).collect()
        };
        if let Some(i) = &self.image {
            m.insert("image".into(), Json::String(i.value.clone()));
        }
        if let Some(s) = &self.spec {
            m.insert("spec".into(), s.to_json());
        }
        if let Some(e) = &self.env {
            m.insert("env".into(), e.to_json());
        }
        if !self.input.is_empty() {
            m.insert("input".into(), strings(&self.input));
        }
        if let Some(f) = &self.input_file {
            m.insert("inputFile".into(), Json::String(f.value.clone()));
        }
        if let Some(c) = &self.command {
            m.insert("command".into(), Json::String(c.value.clone()));
        }
        if !self.args.is_empty() {
            m.insert("args".into(), strings(&self.args));
        }
    }
}

/// One condition or a list, all of which must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    pub conditions: Vec<Value>,
    /// Whether the file wrote a list (kept so the stored form round-trips).
    pub is_list: bool,
    pub span: Span,
}

impl When {
    pub fn to_json(&self) -> Json {
        match (self.is_list, self.conditions.as_slice()) {
            (false, [one]) => one.to_json(),
            _ => self.conditions.iter().map(Value::to_json).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub name: Spanned<String>,
    pub source: TriggerSource,
    pub binding: Option<Binding>,
    pub when: Option<When>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TriggerSource {
    Schedule {
        schedule: Spanned<String>,
        /// `None` when the expression did not parse (a diagnostic says why).
        parsed: Option<Schedule>,
    },
    Push {
        /// Field name → expected JSON type of the event data.
        schema: Vec<(Spanned<String>, Spanned<String>)>,
    },
    Webhook(Box<Container>),
}

impl TriggerSource {
    pub fn type_name(&self) -> &'static str {
        match self {
            TriggerSource::Schedule { .. } => "schedule",
            TriggerSource::Push { .. } => "push",
            TriggerSource::Webhook(_) => "webhook",
        }
    }
}

impl Trigger {
    fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("name".into(), Json::String(self.name.value.clone()));
        let mut source = Map::new();
        source.insert("type".into(), Json::String(self.source.type_name().into()));
        match &self.source {
            TriggerSource::Schedule { schedule, .. } => {
                source.insert("schedule".into(), Json::String(schedule.value.clone()));
            }
            TriggerSource::Push { schema } => {
                if !schema.is_empty() {
                    let fields = schema
                        .iter()
                        .map(|(k, t)| {
                            let mut f = Map::new();
                            f.insert("type".into(), Json::String(t.value.clone()));
                            (k.value.clone(), Json::Object(f))
                        })
                        .collect();
                    source.insert("schema".into(), Json::Object(fields));
                }
            }
            TriggerSource::Webhook(c) => c.write_json(&mut source),
        }
        m.insert("source".into(), Json::Object(source));
        if let Some(b) = &self.binding {
            let mut bm = Map::new();
            if !b.parameters.is_empty() {
                let params = b
                    .parameters
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.to_json()))
                    .collect();
                bm.insert("parameters".into(), Json::Object(params));
            }
            if let Some(k) = &b.key {
                bm.insert("key".into(), k.to_json());
            }
            m.insert("binding".into(), Json::Object(bm));
        }
        if let Some(w) = &self.when {
            m.insert("when".into(), w.to_json());
        }
        Json::Object(m)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Binding {
    pub parameters: Vec<(Spanned<String>, Value)>,
    pub key: Option<Value>,
}

/// A value in canonical form, with spans. Strings may hold `${...}` templates.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(Spanned<String>, Value)>),
    /// `!Parameter`, `!Secret`, `!Connection`, `!Output`, `!Data`, `!Answer`.
    Reference {
        kind: ReferenceKind,
        /// Canonical field name → value, in canonical order.
        fields: Vec<(&'static str, Value)>,
    },
    /// `!Fn.<name>`.
    Call {
        name: Spanned<String>,
        args: Args,
    },
    /// `!!binary`: base64 text, decoded to a string when evaluated.
    Binary(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceKind {
    Parameter,
    Secret,
    Connection,
    Output,
    Data,
    Answer,
}

impl ReferenceKind {
    pub fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag {
            "!Parameter" => ReferenceKind::Parameter,
            "!Secret" => ReferenceKind::Secret,
            "!Connection" => ReferenceKind::Connection,
            "!Output" => ReferenceKind::Output,
            "!Data" => ReferenceKind::Data,
            "!Answer" => ReferenceKind::Answer,
            _ => return None,
        })
    }

    pub fn type_name(self) -> &'static str {
        match self {
            ReferenceKind::Parameter => "Parameter",
            ReferenceKind::Secret => "Secret",
            ReferenceKind::Connection => "Connection",
            ReferenceKind::Output => "Output",
            ReferenceKind::Data => "Data",
            ReferenceKind::Answer => "Answer",
        }
    }

    /// The canonical fields, in the order a list argument gives them.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            ReferenceKind::Parameter | ReferenceKind::Secret => &["name"],
            ReferenceKind::Connection => &["type", "name"],
            ReferenceKind::Output => &["from", "name"],
            ReferenceKind::Data => &["query"],
            ReferenceKind::Answer => &["askRef", "name"],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    Positional(Vec<Value>),
    Keyword(Vec<(Spanned<String>, Value)>),
}

impl Value {
    pub fn new(kind: ValueKind, span: Span) -> Self {
        Value { kind, span }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The field of a reference tag, if this is one.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match &self.kind {
            ValueKind::Reference { fields, .. } => {
                fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The canonical JSON form (relay-reference §1.5).
    pub fn to_json(&self) -> Json {
        match &self.kind {
            ValueKind::Null => Json::Null,
            ValueKind::Bool(b) => Json::Bool(*b),
            ValueKind::Number(n) => Json::Number(n.clone()),
            ValueKind::String(s) => Json::String(s.clone()),
            ValueKind::Array(items) => items.iter().map(Value::to_json).collect(),
            ValueKind::Object(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.to_json()))
                    .collect(),
            ),
            ValueKind::Reference { kind, fields } => {
                let mut m = Map::new();
                m.insert("$type".into(), Json::String(kind.type_name().into()));
                for (k, v) in fields {
                    m.insert((*k).into(), v.to_json());
                }
                Json::Object(m)
            }
            ValueKind::Call { name, args } => {
                let args = match args {
                    Args::Positional(items) => items.iter().map(Value::to_json).collect(),
                    Args::Keyword(entries) => Json::Object(
                        entries
                            .iter()
                            .map(|(k, v)| (k.value.clone(), v.to_json()))
                            .collect(),
                    ),
                };
                let mut m = Map::new();
                m.insert(format!("$fn.{}", name.value), args);
                Json::Object(m)
            }
            ValueKind::Binary(data) => {
                let mut m = Map::new();
                m.insert("$encoding".into(), Json::String("base64".into()));
                m.insert("data".into(), Json::String(data.clone()));
                Json::Object(m)
            }
        }
    }

    /// Calls `f` on this value and every value inside it.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Value)) {
        let mut stack = vec![self];
        while let Some(v) = stack.pop() {
            f(v);
            match &v.kind {
                ValueKind::Array(items) => stack.extend(items.iter().rev()),
                ValueKind::Object(entries) => stack.extend(entries.iter().rev().map(|(_, v)| v)),
                ValueKind::Reference { fields, .. } => {
                    stack.extend(fields.iter().rev().map(|(_, v)| v));
                }
                ValueKind::Call { args, .. } => match args {
                    Args::Positional(items) => stack.extend(items.iter().rev()),
                    Args::Keyword(entries) => stack.extend(entries.iter().rev().map(|(_, v)| v)),
                },
                _ => {}
            }
        }
    }
}
