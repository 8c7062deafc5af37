//! Definition files: blueprints, entities, actions, scorecards and initiatives kept as YAML or JSON in a repository and
//! applied by `gantry apply` (GitOps).
//!
//! A definition is a mapping with `kind: Blueprint`, `kind: Entity`, `kind: Action`,
//! `kind: Scorecard`, `kind: Initiative` or `kind: Automation` beside the fields of the model
//! ([`Blueprint`], [`Entity`], [`Action`], [`Scorecard`], [`Initiative`], [`Automation`]). A file holds any number of
//! them: YAML documents separated by `---`, and a document (a whole JSON file, say) may be a
//! list of definitions.
//!
//! A definition is data: YAML tags are refused, with one exception. An action's webhook names
//! its signing secret as `secret: !Secret NAME`, read as `{"secret": "NAME"}` (which may be
//! written instead); only the name is ever in a file.
//!
//! [`parse_file`] reports every problem of a file with `file:line:col`, not only the first:
//! YAML problems, unknown kinds, and each field serde refuses (the refused field is taken out
//! and the definition read again, so five mistakes give five messages). Each [`Document`] keeps
//! the spans of its text, so a problem the server finds later (a property that fails its
//! schema, a relation to nothing) is shown where it was written, through [`Document::locate`].
//!
//! No I/O: callers pass file names and text. Plain functions, safe from any thread.

use std::fmt;
use std::sync::Arc;

use gantry_workflow::diagnostic::suggest;
use gantry_workflow::{
    read_data_documents, Code, DataDoc, Diagnostic, LineIndex, PathSegment, Span,
};
use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::action::Action;
use crate::automation::Automation;
use crate::model::{Blueprint, Entity, Map};
use crate::scorecard::{Initiative, Scorecard};

/// The kinds of definition a file may hold, as written after `kind:`.
pub const KINDS: &[&str] = &[
    "Blueprint",
    "Entity",
    "Action",
    "Scorecard",
    "Initiative",
    "Automation",
];

/// Most fields of one definition taken out to look for further problems.
const MAX_ERRORS_PER_DEFINITION: usize = 50;

/// What one definition declares.
// Unboxed so callers match on the model's own types; a file holds tens of these, not millions.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    Blueprint(Blueprint),
    Entity(Entity),
    Action(Action),
    Scorecard(Scorecard),
    Initiative(Initiative),
    Automation(Automation),
}

impl Definition {
    /// The kind as written in files: `Blueprint`, `Entity`, `Action`, `Scorecard`,
    /// `Initiative` or `Automation`.
    pub fn kind(&self) -> &'static str {
        match self {
            Definition::Blueprint(_) => "Blueprint",
            Definition::Entity(_) => "Entity",
            Definition::Action(_) => "Action",
            Definition::Scorecard(_) => "Scorecard",
            Definition::Initiative(_) => "Initiative",
            Definition::Automation(_) => "Automation",
        }
    }

    /// What the definition declares, unique in a catalog: `blueprint/service`,
    /// `entity/service/payments`, `action/restart-service`, `scorecard/production-readiness`,
    /// `initiative/prod-ready-q4`.
    pub fn key(&self) -> String {
        match self {
            Definition::Blueprint(b) => format!("blueprint/{}", b.identifier),
            Definition::Entity(e) => format!("entity/{}/{}", e.blueprint, e.identifier),
            Definition::Action(a) => format!("action/{}", a.identifier),
            Definition::Scorecard(s) => format!("scorecard/{}", s.identifier),
            Definition::Initiative(i) => format!("initiative/{}", i.identifier),
            Definition::Automation(a) => format!("automation/{}", a.identifier),
        }
    }
}

/// A place in a file: 1-based line and column (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A problem in a file, where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct FileError {
    pub location: Location,
    pub message: String,
}

/// One definition read from a file.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    /// Its position among the file's definitions, from 0 (counting those with problems).
    pub index: usize,
    pub definition: Definition,
    data: Arc<DataDoc>,
    /// Its index in the document's list, when the document is a list of definitions.
    item: Option<usize>,
    text: Arc<str>,
}

impl Document {
    /// The kind as written in files: `Blueprint`, `Entity`, `Action`, `Scorecard`,
    /// `Initiative` or `Automation`.
    pub fn kind(&self) -> &'static str {
        self.definition.kind()
    }

    /// What the definition declares: `blueprint/service`, `entity/service/payments`,
    /// `action/restart-service`, `scorecard/production-readiness`, `initiative/prod-ready-q4`.
    pub fn key(&self) -> String {
        self.definition.key()
    }

    /// Where a JSON path of this definition (`properties.port`, `relations.deps[1]`,
    /// `schema.properties.port.type`) is written; the deepest part of it that is written when
    /// the whole path is not (a property the server defaulted), the definition itself for `""`.
    pub fn locate(&self, path: &str) -> Location {
        let span = match self.item {
            None => self.data.span_of(path),
            Some(i) if path.is_empty() || path.starts_with('[') => {
                self.data.span_of(&format!("[{i}]{path}"))
            }
            Some(i) => self.data.span_of(&format!("[{i}].{path}")),
        };
        location(&self.file, &LineIndex::new(&self.text), span)
    }

    /// Where the definition starts.
    pub fn location(&self) -> Location {
        self.locate("")
    }
}

fn location(file: &str, lines: &LineIndex<'_>, span: Span) -> Location {
    let lc = lines.line_col(span.start);
    Location {
        file: file.to_string(),
        line: lc.line as usize,
        col: lc.column as usize,
    }
}

/// Reads one definition file. Returns the definitions read without problems and every
/// problem of the file, in the order they appear in it. A YAML syntax error ends the file:
/// the definitions before it are still read and checked.
pub fn parse_file(file: &str, src: &str) -> (Vec<Document>, Vec<FileError>) {
    let text: Arc<str> = Arc::from(src);
    let lines = LineIndex::new(src);
    let (datas, diagnostics) = read_data_documents(src);
    // The diagnostics of the tags a definition may hold (see the module documentation).
    let mut allowed = vec![false; diagnostics.len()];
    let mut read_problems = Vec::new();
    let mut docs = Vec::new();
    let mut index = 0;
    for data in datas {
        let data = Arc::new(data);
        let items: Vec<(Option<usize>, &Value)> = match &data.value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Some(i), v))
                .collect(),
            value => vec![(None, value)],
        };
        for (item, value) in items {
            let secret_tag = webhook_secret_tag(&data, item, src, &diagnostics);
            if let Some(i) = secret_tag {
                allowed[i] = true;
            }
            let reader = DefinitionReader {
                data: &data,
                item,
                secret_tag: secret_tag.is_some(),
            };
            let span = reader.span(&[]);
            // A value read past a YAML problem (the first of two equal keys, a tagged
            // scalar) is checked but not applied.
            let sound = !diagnostics.iter().enumerate().any(|(i, d)| {
                d.is_error() && !allowed[i] && span.start <= d.span.start && d.span.start < span.end
            });
            let definition = reader.read(value, &mut read_problems);
            if let Some(definition) = definition.filter(|_| sound) {
                docs.push(Document {
                    file: file.to_string(),
                    index,
                    definition,
                    data: Arc::clone(&data),
                    item,
                    text: Arc::clone(&text),
                });
            }
            index += 1;
        }
    }
    let mut problems: Vec<Problem> = diagnostics
        .iter()
        .zip(&allowed)
        .filter(|(_, allowed)| !**allowed)
        .map(|(d, _)| Problem::new(d.span, yaml_message(d, &lines)))
        .collect();
    problems.append(&mut read_problems);
    let file_reader = FileReader {
        file,
        lines: &lines,
        problems,
    };
    let errors = file_reader.finish();
    (docs, errors)
}

/// The path of an action's webhook secret, the one place a tag is read.
const WEBHOOK_SECRET: [&str; 3] = ["invocation", "webhook", "secret"];

/// The index of the diagnostic of a `!Secret NAME` tag on the webhook secret of an action
/// (a whole document, or item `item` of a list), when there is one.
fn webhook_secret_tag(
    data: &DataDoc,
    item: Option<usize>,
    src: &str,
    diagnostics: &[Diagnostic],
) -> Option<usize> {
    let mut value = match item {
        Some(i) => data.value.get(i)?,
        None => &data.value,
    };
    if value.get("kind").and_then(Value::as_str) != Some("Action") {
        return None;
    }
    for key in WEBHOOK_SECRET {
        value = value.get(key)?;
    }
    if !value.is_string() {
        return None;
    }
    let path: Vec<PathSegment<'_>> = item
        .map(PathSegment::Index)
        .into_iter()
        .chain(WEBHOOK_SECRET.iter().map(|k| PathSegment::Key(k)))
        .collect();
    let span = data.span_at(&path);
    // The tag is written just before the scalar: `!Secret NAME`.
    let before = src.get(..span.start as usize)?.trim_end();
    let tagged = before.ends_with(" !Secret")
        || src.get(span.start as usize..).is_some_and(|rest| {
            rest.strip_prefix("!Secret")
                .is_some_and(|name| name.starts_with([' ', '\t']))
        });
    if !tagged {
        return None;
    }
    diagnostics
        .iter()
        .position(|d| d.code == Code::UnknownTag && d.span == span)
}

/// A problem found in a file, before its line and column are known.
struct Problem {
    span: Span,
    message: String,
}

impl Problem {
    fn new(span: Span, message: String) -> Self {
        Problem { span, message }
    }
}

struct FileReader<'a> {
    file: &'a str,
    lines: &'a LineIndex<'a>,
    problems: Vec<Problem>,
}

impl FileReader<'_> {
    fn finish(mut self) -> Vec<FileError> {
        self.problems.sort_by_key(|p| p.span.start);
        self.problems
            .into_iter()
            .map(|p| FileError {
                location: location(self.file, self.lines, p.span),
                message: p.message,
            })
            .collect()
    }
}

/// The message of a YAML problem, its help and the place it refers to folded in:
/// "duplicate key `a` (first defined at 2:1)".
pub(crate) fn yaml_message(d: &Diagnostic, lines: &LineIndex<'_>) -> String {
    let mut message = match &d.help {
        Some(help) => format!("{}; {help}", d.message),
        None => d.message.clone(),
    };
    if let Some((span, label)) = d.related.first() {
        let label = label.strip_suffix(" here").unwrap_or(label);
        let lc = lines.line_col(span.start);
        message = format!("{message} ({label} at {}:{})", lc.line, lc.column);
    }
    message
}

/// A path into a definition, owned, as serde reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn borrowed(path: &[Segment]) -> Vec<PathSegment<'_>> {
    path.iter()
        .map(|s| match s {
            Segment::Key(k) => PathSegment::Key(k),
            Segment::Index(i) => PathSegment::Index(*i),
        })
        .collect()
}

/// Reads one definition (a whole document, or one item of a document's list).
struct DefinitionReader<'a> {
    data: &'a DataDoc,
    item: Option<usize>,
    /// The definition is an action whose webhook secret was written `!Secret NAME`.
    secret_tag: bool,
}

impl DefinitionReader<'_> {
    fn full_path(&self, path: &[Segment]) -> Vec<Segment> {
        self.item
            .map(Segment::Index)
            .into_iter()
            .chain(path.iter().cloned())
            .collect()
    }

    fn span(&self, path: &[Segment]) -> Span {
        self.data.span_at(&borrowed(&self.full_path(path)))
    }

    fn key_span(&self, path: &[Segment]) -> Span {
        self.data.key_span_at(&borrowed(&self.full_path(path)))
    }

    fn read(&self, value: &Value, problems: &mut Vec<Problem>) -> Option<Definition> {
        let Value::Object(object) = value else {
            problems.push(Problem::new(
                self.span(&[]),
                format!(
                    "a definition is a mapping with {}, not {}",
                    kinds(),
                    type_name(value)
                ),
            ));
            return None;
        };
        let kind_path = [Segment::Key("kind".into())];
        let kind = match object.get("kind") {
            None => {
                problems.push(Problem::new(
                    self.span(&[]),
                    format!("missing field `kind`; say which kind this is: {}", kinds()),
                ));
                return None;
            }
            Some(Value::String(kind)) => kind.as_str(),
            Some(other) => {
                problems.push(Problem::new(
                    self.span(&kind_path),
                    format!("`kind` is {}, not {}", kinds(), type_name(other)),
                ));
                return None;
            }
        };
        let mut fields = object.clone();
        fields.shift_remove("kind");
        match kind {
            "Blueprint" => self
                .deserialize::<Blueprint>(fields, problems)
                .map(Definition::Blueprint),
            "Entity" => self
                .deserialize::<Entity>(fields, problems)
                .map(Definition::Entity),
            "Action" => {
                if self.secret_tag {
                    name_secret(&mut fields);
                }
                self.deserialize::<Action>(fields, problems)
                    .map(Definition::Action)
            }
            "Scorecard" => self
                .deserialize::<Scorecard>(fields, problems)
                .map(Definition::Scorecard),
            "Initiative" => self
                .deserialize::<Initiative>(fields, problems)
                .map(Definition::Initiative),
            "Automation" => self
                .deserialize::<Automation>(fields, problems)
                .map(Definition::Automation),
            _ => {
                let message = match KINDS.iter().find(|k| k.eq_ignore_ascii_case(kind)) {
                    Some(known) => {
                        format!("unknown kind `{kind}`; kinds are capitalized: `{known}`")
                    }
                    None => {
                        let mut m = format!("unknown kind `{kind}`; the kinds are {}", kinds());
                        if let Some(hint) = suggest(kind, KINDS.iter().copied()) {
                            m = format!("{m}; {hint}");
                        }
                        m
                    }
                };
                problems.push(Problem::new(self.span(&kind_path), message));
                None
            }
        }
    }

    /// Deserializes the fields; on a problem, reports it, takes the refused field out and
    /// tries again, so every refused field is reported.
    fn deserialize<T: DeserializeOwned>(
        &self,
        mut fields: Map,
        problems: &mut Vec<Problem>,
    ) -> Option<T> {
        // Paths taken out or filled in, in the definition's own (original) coordinates.
        let mut removed: Vec<Vec<Segment>> = Vec::new();
        let mut filled: Vec<Vec<Segment>> = Vec::new();
        let mut failed = false;
        for _ in 0..MAX_ERRORS_PER_DEFINITION {
            let value = Value::Object(fields);
            let error = match serde_path_to_error::deserialize::<_, T>(&value) {
                Ok(t) => return (!failed).then_some(t),
                Err(e) => e,
            };
            let Value::Object(object) = value else {
                return None;
            };
            fields = object;
            failed = true;
            let mut path: Vec<Segment> = Vec::new();
            for s in error.path().iter() {
                match s {
                    serde_path_to_error::Segment::Seq { index } => {
                        path.push(Segment::Index(*index))
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        path.push(Segment::Key(key.clone()))
                    }
                    serde_path_to_error::Segment::Enum { variant } => {
                        path.push(Segment::Key(variant.clone()))
                    }
                    serde_path_to_error::Segment::Unknown => break,
                }
            }
            let original = to_original(&path, &removed);
            let message = error.inner().to_string();
            if filled.iter().any(|f| original.starts_with(f)) {
                // A field filled in to go on was refused: nothing more to learn.
                return None;
            }
            if let Some(field) = missing_field(&message) {
                let mut full = original.clone();
                full.push(Segment::Key(field.to_string()));
                if removed.contains(&full) {
                    // The field was taken out after its own problem; its parent goes too.
                    if path.is_empty() || !remove(&mut fields, &path) {
                        return None;
                    }
                    removed.push(original);
                    continue;
                }
                let span = if path.is_empty() {
                    self.span(&original)
                } else {
                    self.key_span(&original)
                };
                problems.push(Problem::new(span, format!("missing field `{field}`")));
                if path.is_empty() {
                    // Filled in with a string (what every required top-level field is) so the
                    // other fields are still checked.
                    fields.insert(field.to_string(), Value::String(String::new()));
                    filled.push(full);
                    continue;
                }
                if !remove(&mut fields, &path) {
                    return None;
                }
                removed.push(original);
                continue;
            }
            let (span, message) = match unknown(&message, "unknown field `") {
                Some((field, expected)) => (
                    self.key_span(&original),
                    with_hint(format!("unknown field `{field}`"), field, &expected),
                ),
                None => match unknown(&message, "unknown variant `") {
                    Some((variant, expected)) => (
                        self.span(&original),
                        with_hint(format!("unknown value `{variant}`"), variant, &expected),
                    ),
                    None => (self.span(&original), plain_message(&message)),
                },
            };
            problems.push(Problem::new(span, message));
            if path.is_empty() || !remove(&mut fields, &path) {
                return None;
            }
            removed.push(original);
        }
        None
    }
}

/// `secret: NAME` (read from `!Secret NAME`) → `secret: {secret: NAME}`, the JSON form.
fn name_secret(fields: &mut Map) {
    let secret = fields
        .get_mut("invocation")
        .and_then(|v| v.get_mut("webhook"))
        .and_then(|v| v.get_mut("secret"));
    if let Some(secret) = secret {
        let name = std::mem::take(secret);
        *secret = serde_json::json!({ "secret": name });
    }
}

/// A path in the definition as serde saw it (after list items were taken out) → the same path
/// in the definition as written.
fn to_original(path: &[Segment], removed: &[Vec<Segment>]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::with_capacity(path.len());
    for segment in path {
        match segment {
            Segment::Key(_) => out.push(segment.clone()),
            Segment::Index(i) => {
                let mut gone: Vec<usize> = removed
                    .iter()
                    .filter(|r| r.len() == out.len() + 1 && r.starts_with(&out))
                    .filter_map(|r| match r.last() {
                        Some(Segment::Index(g)) => Some(*g),
                        _ => None,
                    })
                    .collect();
                gone.sort_unstable();
                let mut original = *i;
                for g in gone {
                    if g <= original {
                        original += 1;
                    }
                }
                out.push(Segment::Index(original));
            }
        }
    }
    out
}

/// Takes the value at `path` out of `fields`; false when there is none.
fn remove(fields: &mut Map, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at: Option<&mut Value> = None;
    for segment in parents {
        let next = match (at, segment) {
            (None, Segment::Key(k)) => fields.get_mut(k),
            (Some(Value::Object(o)), Segment::Key(k)) => o.get_mut(k),
            (Some(Value::Array(a)), Segment::Index(i)) => a.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return false };
        at = Some(next);
    }
    match (at, last) {
        (None, Segment::Key(k)) => fields.shift_remove(k).is_some(),
        (Some(Value::Object(o)), Segment::Key(k)) => o.shift_remove(k).is_some(),
        (Some(Value::Array(a)), Segment::Index(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// `missing field `x`` → `x`.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`") → (`x`, [a, b]).
fn unknown<'m>(message: &'m str, prefix: &str) -> Option<(&'m str, Vec<&'m str>)> {
    let rest = message.strip_prefix(prefix)?;
    let (name, expected) = rest.split_once('`')?;
    let expected = expected.split('`').skip(1).step_by(2).collect::<Vec<_>>();
    Some((name, expected))
}

fn with_hint(message: String, name: &str, expected: &[&str]) -> String {
    if let Some(hint) = suggest(name, expected.iter().copied()) {
        return format!("{message}; {hint}");
    }
    if expected.is_empty() {
        return message;
    }
    let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    format!("{message}; expected one of {}", list.join(", "))
}

/// serde's messages for the model's own shapes, in the user's words.
fn plain_message(message: &str) -> String {
    if message.contains("untagged enum OneOrMany") {
        return "`team` is a team name or a list of team names".into();
    }
    if message.contains("untagged enum RelationValue") {
        return "a relation is an identifier, a list of identifiers, or null".into();
    }
    message.to_string()
}

/// "`kind: Blueprint`, `kind: Entity`, ... or `kind: Automation`".
fn kinds() -> String {
    let list: Vec<String> = KINDS.iter().map(|k| format!("`kind: {k}`")).collect();
    match list.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => list.join(""),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Definitions declared more than once across files: an error at each declaration, naming
/// the others.
pub fn check_duplicates(docs: &[Document]) -> Vec<FileError> {
    let mut by_key: IndexMap<String, Vec<&Document>> = IndexMap::new();
    for doc in docs {
        by_key.entry(doc.key()).or_default().push(doc);
    }
    let mut errors = Vec::new();
    for (key, same) in by_key {
        if same.len() < 2 {
            continue;
        }
        let places: Vec<Location> = same.iter().map(|d| d.locate("identifier")).collect();
        for (i, place) in places.iter().enumerate() {
            let others: Vec<String> = places
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p.to_string())
                .collect();
            errors.push(FileError {
                location: place.clone(),
                message: format!(
                    "`{key}` is declared {} times; also at {}",
                    same.len(),
                    others.join(", ")
                ),
            });
        }
    }
    errors
}
