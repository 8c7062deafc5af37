//! Templates of invocation parameters: `{{ path }}` over the run's inputs, entity, user and run.
//!
//! A template is text with `{{ PATH }}` parts (spaces inside the braces are optional).
//! A PATH starts at one of four roots and goes on with `.name`, `[index]` or `["key"]`
//! (`['key']`) steps, the last for keys holding dots or other characters a name cannot:
//!
//! | root | value |
//! |---|---|
//! | `inputs` | the validated inputs, secret ones included (`inputs.reason`, `inputs.tags[0]`) |
//! | `entity` | the entity acted on as the API shows it (`entity.identifier`, `entity.properties["k8s.namespace"]`) |
//! | `user` | `{email, name, teams, role}` of who started the run |
//! | `run` | `{id, action}` |
//!
//! A name is letters, digits and `_ - @ :`. A template that is exactly one `{{ PATH }}`, with
//! nothing around it (not even a space), gives the value at PATH with its JSON type; any other
//! template gives a string, each value written in: a string as it is, anything else as JSON
//! text. A path with no value is an error naming it; it never renders as empty.
//!
//! There are no escapes, filters or expressions: `{{` always opens a path and must be closed
//! by `}}`, so a parameter cannot hold a literal `{{` (a lone `}}` is plain text).
//!
//! A rendered value remembers whether it read a secret input ([`Rendered::secret`]), so the
//! server can mask it. Errors name paths, never values.

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use serde_json::{json, Value};

use super::inputs::ValidatedInputs;
use super::permission::Who;
use crate::model::Map;
use crate::schema::{problem, Problem};

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Path(Reference),
}

/// Where a path of a template starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateRoot {
    Inputs,
    Entity,
    User,
    Run,
}

impl TemplateRoot {
    pub const ALL: [TemplateRoot; 4] = [
        TemplateRoot::Inputs,
        TemplateRoot::Entity,
        TemplateRoot::User,
        TemplateRoot::Run,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateRoot::Inputs => "inputs",
            TemplateRoot::Entity => "entity",
            TemplateRoot::User => "user",
            TemplateRoot::Run => "run",
        }
    }
}

/// One step of a path after its root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplateStep {
    Key(String),
    Index(usize),
}

/// A path a template reads: `inputs.tags[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub root: TemplateRoot,
    pub steps: Vec<TemplateStep>,
}

impl Reference {
    /// The first step when it is a key: the input's name under `inputs`, the field under
    /// `entity`, `user` and `run`.
    pub fn first_key(&self) -> Option<&str> {
        match self.steps.first() {
            Some(TemplateStep::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The path of its first `n` steps, for messages.
    fn prefix(&self, n: usize) -> Reference {
        Reference {
            root: self.root,
            steps: self.steps[..n.min(self.steps.len())].to_vec(),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@' | ':')
}

/// As written in templates; keys that are not names in `["..."]`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.as_str())?;
        for step in &self.steps {
            match step {
                TemplateStep::Index(i) => write!(f, "[{i}]")?,
                TemplateStep::Key(k) if !k.is_empty() && k.chars().all(is_name_char) => {
                    write!(f, ".{k}")?
                }
                TemplateStep::Key(k) if k.contains('"') => write!(f, "['{k}']")?,
                TemplateStep::Key(k) => write!(f, "[\"{k}\"]")?,
            }
        }
        Ok(())
    }
}

/// What a template reads when it is rendered.
#[derive(Debug, Clone, Copy)]
pub struct TemplateContext<'a> {
    pub inputs: &'a ValidatedInputs,
    /// The entity acted on, as [`crate::Indexed::to_json`] gives it; `None` for a create
    /// action.
    pub entity: Option<&'a Value>,
    /// Who started the run (`user.email`, `user.teams`, `user.role`).
    pub user: &'a Who,
    /// Their display name (`user.name`).
    pub user_name: &'a str,
    /// `run.id`.
    pub run_id: &'a str,
    /// `run.action`: the action's identifier.
    pub action: &'a str,
}

/// A rendered template.
#[derive(Clone, PartialEq)]
pub struct Rendered {
    pub value: Value,
    /// Whether the value was made with a secret input: the server masks it.
    pub secret: bool,
}

/// Shows a secret value as `***`.
impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Rendered");
        if self.secret {
            s.field("value", &"***");
        } else {
            s.field("value", &self.value);
        }
        s.field("secret", &self.secret).finish()
    }
}

impl Template {
    /// Reads a template; the error says what is wrong and at which character (from 1).
    pub fn parse(src: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut at = 0;
        while let Some(found) = src[at..].find("{{") {
            let open = at + found;
            if open > at {
                parts.push(Part::Text(src[at..open].to_string()));
            }
            let inner_start = open + 2;
            let column = src[..open].chars().count() + 1;
            let Some(len) = src[inner_start..].find("}}") else {
                return Err(format!(
                    "the `{{{{` at character {column} is not closed by `}}}}`"
                ));
            };
            let inner = &src[inner_start..inner_start + len];
            if inner.contains("{{") {
                return Err(format!(
                    "the `{{{{` at character {column} is not closed by `}}}}` before the next `{{{{`"
                ));
            }
            let reference = parse_path(inner.trim())
                .map_err(|e| format!("`{{{{{inner}}}}}` at character {column}: {e}"))?;
            parts.push(Part::Path(reference));
            at = inner_start + len + 2;
        }
        if at < src.len() || parts.is_empty() {
            parts.push(Part::Text(src[at..].to_string()));
        }
        Ok(Template { parts })
    }

    /// The paths the template reads, in order.
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.parts.iter().filter_map(|p| match p {
            Part::Path(r) => Some(r),
            Part::Text(_) => None,
        })
    }

    /// The value of the template in `ctx`: typed when the template is one path, else text.
    pub fn render(&self, ctx: &TemplateContext<'_>) -> Result<Rendered, String> {
        if let [Part::Path(r)] = self.parts.as_slice() {
            let (value, secret) = resolve(r, ctx)?;
            return Ok(Rendered {
                value: value.into_owned(),
                secret,
            });
        }
        let mut text = String::new();
        let mut secret = false;
        for part in &self.parts {
            match part {
                Part::Text(t) => text.push_str(t),
                Part::Path(r) => {
                    let (value, from_secret) = resolve(r, ctx)?;
                    secret |= from_secret;
                    match value.as_ref() {
                        Value::String(s) => text.push_str(s),
                        other => text.push_str(&other.to_string()),
                    }
                }
            }
        }
        Ok(Rendered {
            value: Value::String(text),
            secret,
        })
    }
}

/// Reads `root(.name | [index] | ["key"])*`.
fn parse_path(s: &str) -> Result<Reference, String> {
    if s.is_empty() {
        return Err("an empty path: write one such as `inputs.name`".into());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let name = |i: &mut usize| -> String {
        let start = *i;
        while *i < chars.len() && is_name_char(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect()
    };
    let first = name(&mut i);
    let Some(root) = TemplateRoot::ALL.into_iter().find(|r| r.as_str() == first) else {
        let roots = "`inputs`, `entity`, `user` or `run`";
        return Err(if first.is_empty() {
            format!("a path starts with {roots}")
        } else {
            format!("`{first}` is not a place to read: a path starts with {roots}")
        });
    };
    let mut steps = Vec::new();
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let key = name(&mut i);
                if key.is_empty() {
                    return Err(format!(
                        "a name must follow the `.` at character {i} of the path"
                    ));
                }
                steps.push(TemplateStep::Key(key));
            }
            '[' => {
                i += 1;
                match chars.get(i) {
                    Some(q @ ('"' | '\'')) => {
                        let quote = *q;
                        let start = i + 1;
                        let Some(len) = chars[start..].iter().position(|c| *c == quote) else {
                            return Err(format!(
                                "the key at character {i} is not closed by {quote}"
                            ));
                        };
                        steps.push(TemplateStep::Key(
                            chars[start..start + len].iter().collect(),
                        ));
                        i = start + len + 1;
                    }
                    _ => {
                        let start = i;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                        let digits: String = chars[start..i].iter().collect();
                        let index = digits.parse().map_err(|_| {
                            format!(
                                "`[` at character {start} takes an index (`[0]`) or a quoted key \
                                 (`[\"a.b\"]`)"
                            )
                        })?;
                        steps.push(TemplateStep::Index(index));
                    }
                }
                if chars.get(i) != Some(&']') {
                    return Err(format!("expected `]` at character {}", i + 1));
                }
                i += 1;
            }
            c => {
                let what = if c.is_whitespace() {
                    "a space".to_string()
                } else {
                    format!("`{c}`")
                };
                return Err(format!(
                    "{what} at character {} of the path: a template holds a path only (no \
                     filters or expressions)",
                    i + 1
                ));
            }
        }
    }
    Ok(Reference { root, steps })
}

/// The value at `r` and whether it came from a secret input.
fn resolve<'c>(r: &Reference, ctx: &TemplateContext<'c>) -> Result<(Cow<'c, Value>, bool), String> {
    match r.root {
        TemplateRoot::Inputs => {
            let Some(TemplateStep::Key(name)) = r.steps.first() else {
                if r.steps.is_empty() {
                    let mut all = ctx.inputs.plain.clone();
                    all.extend(ctx.inputs.secret.clone());
                    return Ok((
                        Cow::Owned(Value::Object(all)),
                        !ctx.inputs.secret.is_empty(),
                    ));
                }
                return Err(format!(
                    "`{r}` is missing: `inputs` is an object, not a list"
                ));
            };
            let (value, secret) = match (ctx.inputs.plain.get(name), ctx.inputs.secret.get(name)) {
                (Some(v), _) => (v, false),
                (None, Some(v)) => (v, true),
                (None, None) => {
                    return Err(format!("`{r}` is missing: no input `{name}` was given"));
                }
            };
            walk(r, 1, value).map(|v| (Cow::Borrowed(v), secret))
        }
        TemplateRoot::Entity => {
            let Some(entity) = ctx.entity else {
                return Err(format!("`{r}` is missing: this run acts on no entity"));
            };
            walk(r, 0, entity).map(|v| (Cow::Borrowed(v), false))
        }
        TemplateRoot::User => {
            let user = json!({
                "email": ctx.user.email,
                "name": ctx.user_name,
                "teams": ctx.user.teams,
                "role": ctx.user.role.as_str(),
            });
            walk(r, 0, &user).map(|v| (Cow::Owned(v.clone()), false))
        }
        TemplateRoot::Run => {
            let run = json!({"id": ctx.run_id, "action": ctx.action});
            walk(r, 0, &run).map(|v| (Cow::Owned(v.clone()), false))
        }
    }
}

/// Follows the steps of `r` from `from` on, starting at `value`.
fn walk<'v>(r: &Reference, from: usize, value: &'v Value) -> Result<&'v Value, String> {
    let mut at = value;
    for (n, step) in r.steps.iter().enumerate().skip(from) {
        let next = match (step, at) {
            (TemplateStep::Key(k), Value::Object(o)) => o.get(k),
            (TemplateStep::Index(i), Value::Array(a)) => a.get(*i),
            _ => None,
        };
        at = next.ok_or_else(|| {
            let parent = r.prefix(n);
            let why = match (step, at) {
                (TemplateStep::Key(k), Value::Object(_)) => format!("`{parent}` has no `{k}`"),
                (TemplateStep::Index(i), Value::Array(a)) => {
                    format!("`{parent}` has {} items, and no item {i}", a.len())
                }
                (TemplateStep::Key(_), other) => {
                    format!("`{parent}` is {}, not an object", kind(other))
                }
                (TemplateStep::Index(_), other) => {
                    format!("`{parent}` is {}, not a list", kind(other))
                }
            };
            format!("`{r}` is missing: {why}")
        })?;
    }
    Ok(at)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// An invocation's parameters with every template parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterTemplates {
    entries: Vec<(String, Node)>,
}

/// A parameter value: JSON with a template in place of each string.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Template(Template),
    List(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// Rendered parameters.
#[derive(Clone, PartialEq)]
pub struct RenderedParameters {
    pub values: Map,
    /// The parameters whose value used a secret input, in order: the server masks them.
    pub secret: Vec<String>,
}

/// Shows secret parameters as `***`.
impl fmt::Debug for RenderedParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Map = self
            .values
            .iter()
            .map(|(k, v)| {
                let v = if self.secret.contains(k) {
                    Value::String("***".into())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        f.debug_struct("RenderedParameters")
            .field("values", &shown)
            .field("secret", &self.secret)
            .finish()
    }
}

const PARAMETERS: &str = "invocation.parameters";

impl ParameterTemplates {
    /// Parses every string of every parameter; each problem has the path of its string
    /// (`invocation.parameters.service`, `invocation.parameters.tags[1]`).
    pub fn parse(parameters: &IndexMap<String, Value>) -> Result<Self, Vec<Problem>> {
        let (templates, problems) = ParameterTemplates::read(parameters);
        if problems.is_empty() {
            Ok(templates)
        } else {
            Err(problems)
        }
    }

    /// The templates that parse (a string that does not stands as `null`) and the problems
    /// of those that do not, so a definition check goes on past them.
    pub(crate) fn read(parameters: &IndexMap<String, Value>) -> (Self, Vec<Problem>) {
        let mut problems = Vec::new();
        let entries = parameters
            .iter()
            .map(|(name, v)| {
                let node = node(v, &format!("{PARAMETERS}.{name}"), &mut problems);
                (name.clone(), node)
            })
            .collect();
        (ParameterTemplates { entries }, problems)
    }

    /// Every path read, with the JSON path of the string that reads it.
    pub fn references(&self) -> Vec<(String, &Reference)> {
        let mut out = Vec::new();
        for (name, node) in &self.entries {
            references(node, &format!("{PARAMETERS}.{name}"), &mut out);
        }
        out
    }

    /// Renders every parameter; every path with no value is a problem at its string.
    pub fn render(&self, ctx: &TemplateContext<'_>) -> Result<RenderedParameters, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut values = Map::new();
        let mut secret = Vec::new();
        for (name, node) in &self.entries {
            let mut used_secret = false;
            let path = format!("{PARAMETERS}.{name}");
            let value = render(node, ctx, &path, &mut used_secret, &mut problems);
            if used_secret {
                secret.push(name.clone());
            }
            values.insert(name.clone(), value);
        }
        if problems.is_empty() {
            Ok(RenderedParameters { values, secret })
        } else {
            Err(problems)
        }
    }
}

fn node(v: &Value, path: &str, problems: &mut Vec<Problem>) -> Node {
    match v {
        Value::String(s) => match Template::parse(s) {
            Ok(t) if t.references().next().is_none() => Node::Literal(v.clone()),
            Ok(t) => Node::Template(t),
            Err(e) => {
                problems.push(problem(path, e));
                Node::Literal(Value::Null)
            }
        },
        Value::Array(items) => Node::List(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| node(item, &format!("{path}[{i}]"), problems))
                .collect(),
        ),
        Value::Object(o) => Node::Object(
            o.iter()
                .map(|(k, item)| (k.clone(), node(item, &format!("{path}.{k}"), problems)))
                .collect(),
        ),
        other => Node::Literal(other.clone()),
    }
}

fn references<'a>(n: &'a Node, path: &str, out: &mut Vec<(String, &'a Reference)>) {
    match n {
        Node::Literal(_) => {}
        Node::Template(t) => out.extend(t.references().map(|r| (path.to_string(), r))),
        Node::List(items) => {
            for (i, item) in items.iter().enumerate() {
                references(item, &format!("{path}[{i}]"), out);
            }
        }
        Node::Object(entries) => {
            for (k, item) in entries {
                references(item, &format!("{path}.{k}"), out);
            }
        }
    }
}

fn render(
    n: &Node,
    ctx: &TemplateContext<'_>,
    path: &str,
    secret: &mut bool,
    problems: &mut Vec<Problem>,
) -> Value {
    match n {
        Node::Literal(v) => v.clone(),
        Node::Template(t) => match t.render(ctx) {
            Ok(r) => {
                *secret |= r.secret;
                r.value
            }
            Err(e) => {
                problems.push(problem(path, e));
                Value::Null
            }
        },
        Node::List(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| render(item, ctx, &format!("{path}[{i}]"), secret, problems))
                .collect(),
        ),
        Node::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, item)| {
                    let v = render(item, ctx, &format!("{path}.{k}"), secret, problems);
                    (k.clone(), v)
                })
                .collect(),
        ),
    }
}
