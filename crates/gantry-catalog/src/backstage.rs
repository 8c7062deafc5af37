//! The Backstage import: `catalog-info.yaml` descriptor files → Gantry blueprints and entities.
//!
//! `gantry import backstage FILE|DIR...` reads the files and calls [`import`], which knows the
//! descriptor format (`apiVersion: backstage.io/v1alpha1` or `v1beta1`, kinds Component, API,
//! Resource, System, Domain, Group, User and Location) and maps it onto seven fixed blueprints,
//! [`default_blueprints`]. It never fetches anything: a Location's targets and `$text`
//! substitutions are reported as warnings naming what to pass or fill in by hand.
//!
//! The mapping, decided once so a re-import gives the same identifiers:
//! - identifier = `metadata.name`; outside the `default` namespace, `namespace:name` with the
//!   namespace in lowercase (Backstage names cannot hold `:`, so no two entities collide, and
//!   `ns.name` could); name and namespace are 1 to 100 letters, digits, `-`, `_`, `.` or `@`,
//!   else the import fails at the name; an entity names its kind's blueprint (`component`,
//!   `api`, ...), so the same name may be a component and a resource;
//! - title = `metadata.title`, else a Group's or User's `profile.displayName`, else the name;
//! - an email that does not look like one is left out with a warning (the blueprint's
//!   `email` property has the `email` format);
//! - `description`, `tags`, `links`, `annotations`, `labels` and the kind's own fields
//!   (`type`, `lifecycle`, an API's `definition` as text, `displayName`/`email`/`picture` from a
//!   `profile`) become properties;
//! - references `[kind:][namespace/]name` (or `{kind, namespace, name}`) resolve
//!   case-insensitively, the namespace defaulting to the referring entity's, as Backstage does;
//! - an owner that is a Group is relation `owner` and also the entity's team (its identifier in
//!   lowercase, `:` written `.`); a User owner is relation `ownerUser`;
//! - `dependsOn` splits by target kind into `dependsOnComponents` and `dependsOnResources`
//!   (a reference without a kind is looked up by name among the imported components and
//!   resources; not found, it is taken for one of the referrer's own kind); a Resource keeps
//!   only `dependsOnResources`, so the blueprints can be created in order, every relation's
//!   target first;
//! - `subcomponentOf` and a Domain's `subdomainOf` keep their names; an API's `definition` is
//!   plain text (OpenAPI, AsyncAPI, GraphQL or protobuf: no one format fits all);
//! - reverse fields are turned around and recorded once, on the side that points up:
//!   a Group's `children` set the child's `parent`, its `members` add to the user's
//!   `memberOf`, `dependencyOf` adds to the other entity's `dependsOn…`;
//! - a reference to an entity that is not in the files stays as a dangling relation (the
//!   blueprints allow them; Backstage catalogs are routinely imported in parts) with a warning.
//!
//! Kinds other than these (Template, custom kinds) are skipped with a warning. Problems that
//! make a descriptor unreadable (YAML errors, a missing name, a reference that is not one, a
//! field of the wrong type, the same entity twice) fail the import, all of them reported.
//!
//! No I/O. Plain functions, safe from any thread.

use std::collections::HashMap;

use gantry_workflow::{read_data_documents, DataDoc, LineIndex, PathSegment, Span};
use indexmap::IndexMap;
use serde_json::Value;

use crate::files::{yaml_message, FileError, Location};
use crate::model::{Blueprint, Entity, Format, Map, PropertySpec, PropertyType, RelationSpec};
use crate::model::{RelationValue, Schema};

/// What an import produced: the blueprints to create first, then the entities, and what the
/// user should know about (skipped documents, dangling references, files to pass too).
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub blueprints: Vec<Blueprint>,
    pub entities: Vec<Entity>,
    pub warnings: Vec<FileError>,
}

/// The API versions of Backstage's descriptor format.
const API_VERSIONS: [&str; 2] = ["backstage.io/v1alpha1", "backstage.io/v1beta1"];

/// The kinds imported, in the order their blueprints are created: every relation's target
/// blueprint comes before (or is) the blueprint of the relation.
const ORDER: [Kind; 7] = [
    Kind::Group,
    Kind::User,
    Kind::Domain,
    Kind::System,
    Kind::Resource,
    Kind::Api,
    Kind::Component,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Component,
    Api,
    Resource,
    System,
    Domain,
    Group,
    User,
}

impl Kind {
    /// A kind as written in a descriptor or a reference (case does not matter).
    fn parse(s: &str) -> Option<Kind> {
        ORDER
            .into_iter()
            .find(|k| k.blueprint().eq_ignore_ascii_case(s))
    }

    /// The kind's blueprint identifier, also its lowercase name in references.
    fn blueprint(self) -> &'static str {
        match self {
            Kind::Component => "component",
            Kind::Api => "api",
            Kind::Resource => "resource",
            Kind::System => "system",
            Kind::Domain => "domain",
            Kind::Group => "group",
            Kind::User => "user",
        }
    }

    /// The kind as Backstage writes it.
    fn name(self) -> &'static str {
        match self {
            Kind::Component => "Component",
            Kind::Api => "API",
            Kind::Resource => "Resource",
            Kind::System => "System",
            Kind::Domain => "Domain",
            Kind::Group => "Group",
            Kind::User => "User",
        }
    }
}

/// The blueprints of an imported Backstage catalog, in the order they can be created.
pub fn default_blueprints() -> Vec<Blueprint> {
    ORDER.into_iter().map(blueprint).collect()
}

fn property(ty: PropertyType, title: &str) -> PropertySpec {
    PropertySpec {
        title: Some(title.to_string()),
        ..PropertySpec::of(ty)
    }
}

fn relation(title: &str, target: Kind, many: bool) -> RelationSpec {
    RelationSpec {
        title: Some(title.to_string()),
        target: target.blueprint().to_string(),
        many,
        required: false,
    }
}

fn blueprint(kind: Kind) -> Blueprint {
    let mut properties: IndexMap<String, PropertySpec> = IndexMap::new();
    let mut add = |name: &str, spec: PropertySpec| {
        properties.insert(name.to_string(), spec);
    };
    add("description", property(PropertyType::String, "Description"));
    add(
        "tags",
        PropertySpec {
            items: Some(Box::new(PropertySpec::of(PropertyType::String))),
            ..property(PropertyType::Array, "Tags")
        },
    );
    add(
        "links",
        PropertySpec {
            items: Some(Box::new(PropertySpec::of(PropertyType::Object))),
            ..property(PropertyType::Array, "Links")
        },
    );
    add("annotations", property(PropertyType::Object, "Annotations"));
    add("labels", property(PropertyType::Object, "Labels"));
    if kind != Kind::User {
        add("type", property(PropertyType::String, "Type"));
    }
    if matches!(kind, Kind::Component | Kind::Api) {
        add("lifecycle", property(PropertyType::String, "Lifecycle"));
    }
    if kind == Kind::Api {
        add(
            "definition",
            PropertySpec {
                description: Some(
                    "The API's definition as written (OpenAPI, AsyncAPI, GraphQL, gRPC ...); `type` says which"
                        .to_string(),
                ),
                ..property(PropertyType::String, "Definition")
            },
        );
    }
    if matches!(kind, Kind::Group | Kind::User) {
        add(
            "displayName",
            property(PropertyType::String, "Display name"),
        );
        add(
            "email",
            PropertySpec {
                format: Some(Format::Email),
                ..property(PropertyType::String, "Email")
            },
        );
        add("picture", property(PropertyType::String, "Picture"));
    }

    let mut relations: IndexMap<String, RelationSpec> = IndexMap::new();
    let mut rel = |name: &str, spec: RelationSpec| {
        relations.insert(name.to_string(), spec);
    };
    if !matches!(kind, Kind::Group | Kind::User) {
        rel("owner", relation("Owner", Kind::Group, false));
        rel("ownerUser", relation("Owner (a user)", Kind::User, false));
    }
    match kind {
        Kind::Component => {
            rel("system", relation("System", Kind::System, false));
            rel(
                "subcomponentOf",
                relation("Part of", Kind::Component, false),
            );
            rel("providesApis", relation("Provides APIs", Kind::Api, true));
            rel("consumesApis", relation("Consumes APIs", Kind::Api, true));
            rel(
                "dependsOnComponents",
                relation("Depends on components", Kind::Component, true),
            );
            rel(
                "dependsOnResources",
                relation("Depends on resources", Kind::Resource, true),
            );
        }
        Kind::Api => rel("system", relation("System", Kind::System, false)),
        Kind::Resource => {
            rel("system", relation("System", Kind::System, false));
            rel(
                "dependsOnResources",
                relation("Depends on resources", Kind::Resource, true),
            );
        }
        Kind::System => rel("domain", relation("Domain", Kind::Domain, false)),
        Kind::Domain => rel("subdomainOf", relation("Part of", Kind::Domain, false)),
        Kind::Group => rel("parent", relation("Parent group", Kind::Group, false)),
        Kind::User => rel("memberOf", relation("Member of", Kind::Group, true)),
    }

    let (title, description) = match kind {
        Kind::Component => (
            "Component",
            "A piece of software: a service, website, library ...",
        ),
        Kind::Api => ("API", "An interface that components provide and consume"),
        Kind::Resource => ("Resource", "Infrastructure a component needs at run time"),
        Kind::System => (
            "System",
            "Components, APIs and resources that work together",
        ),
        Kind::Domain => ("Domain", "Systems that share a business purpose"),
        Kind::Group => ("Group", "A team or another group of people"),
        Kind::User => ("User", "A person"),
    };
    Blueprint {
        identifier: kind.blueprint().to_string(),
        title: title.to_string(),
        icon: None,
        description: Some(format!("{description} (imported from Backstage)")),
        schema: Schema {
            properties,
            required: Vec::new(),
        },
        relations,
        mirror_properties: IndexMap::new(),
        calculation_properties: IndexMap::new(),
        aggregation_properties: IndexMap::new(),
        allow_dangling_relations: true,
    }
}

/// Imports the descriptors of `(file name, text)` pairs. Fails with every problem that makes a
/// descriptor unreadable; otherwise returns the blueprints, the entities and the warnings.
pub fn import(files: &[(String, String)]) -> Result<Import, Vec<FileError>> {
    let names: Vec<String> = files.iter().map(|(n, _)| normalize(n)).collect();
    let mut out = Out::default();
    let mut raws: Vec<Raw> = Vec::new();
    for (index, (name, text)) in files.iter().enumerate() {
        let source = Source {
            index,
            name,
            lines: LineIndex::new(text),
        };
        let (docs, diagnostics) = read_data_documents(text);
        for d in &diagnostics {
            let problem = source.problem(d.span, yaml_message(d, &source.lines));
            if d.is_error() {
                out.errors.push(problem);
            } else {
                out.warnings.push(problem);
            }
        }
        for data in &docs {
            let doc = Doc {
                source: &source,
                data,
            };
            if let Some(raw) = doc.read(&names, &mut out) {
                raws.push(raw);
            }
        }
    }
    let index = duplicates(&raws, &mut out);
    if !out.errors.is_empty() {
        return Err(out.finish_errors());
    }
    resolve(&mut raws, &index, &mut out);
    let mut entities = Vec::with_capacity(raws.len());
    for kind in ORDER {
        let spec = blueprint(kind);
        for raw in raws.iter_mut().filter(|r| r.kind == kind) {
            entities.push(raw.entity(&spec));
        }
    }
    Ok(Import {
        blueprints: default_blueprints(),
        entities,
        warnings: out.finish_warnings(),
    })
}

/// A problem and where it sorts: the file's position among those given, then the offset.
struct Found {
    order: (usize, u32),
    error: FileError,
}

#[derive(Default)]
struct Out {
    errors: Vec<Found>,
    warnings: Vec<Found>,
}

impl Out {
    fn finish_errors(mut self) -> Vec<FileError> {
        self.errors.sort_by_key(|f| f.order);
        self.errors.into_iter().map(|f| f.error).collect()
    }

    fn finish_warnings(mut self) -> Vec<FileError> {
        self.warnings.sort_by_key(|f| f.order);
        self.warnings.into_iter().map(|f| f.error).collect()
    }
}

/// One file being read.
struct Source<'a> {
    index: usize,
    name: &'a str,
    lines: LineIndex<'a>,
}

impl Source<'_> {
    fn problem(&self, span: Span, message: String) -> Found {
        let lc = self.lines.line_col(span.start);
        Found {
            order: (self.index, span.start),
            error: FileError {
                location: Location {
                    file: self.name.to_string(),
                    line: lc.line as usize,
                    col: lc.column as usize,
                },
                message,
            },
        }
    }
}

/// A reference to another entity, as written.
#[derive(Debug, Clone)]
struct Ref {
    /// Lowercase.
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
}

impl Ref {
    fn display(&self) -> String {
        let mut s = String::new();
        if let Some(k) = &self.kind {
            s.push_str(k);
            s.push(':');
        }
        if let Some(ns) = &self.namespace {
            s.push_str(ns);
            s.push('/');
        }
        s.push_str(&self.name);
        s
    }
}

/// What a reference field means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// `spec.owner`: a Group (the default) or a User.
    Owner,
    /// A reference to one kind (the default), recorded as the relation named.
    To(Kind, &'static str),
    /// `spec.dependsOn`: a Component or a Resource, named with its kind.
    DependsOn,
    /// `spec.dependencyOf`: recorded on the other entity as its `dependsOn…`.
    DependencyOf,
    /// A Group's `spec.children`: recorded on the child as its `parent`.
    Children,
    /// A Group's `spec.members`: recorded on the user as `memberOf`.
    Members,
}

/// A reference waiting for every descriptor to be read.
struct Pending {
    /// The field it was written in, for messages: `spec.owner`.
    field: String,
    rule: Rule,
    target: Ref,
    at: Found,
}

/// A descriptor read, its references not yet resolved.
struct Raw {
    kind: Kind,
    /// Lowercase, `default` when not written.
    namespace: String,
    name: String,
    identifier: String,
    title: String,
    properties: Map,
    team: Vec<String>,
    refs: Vec<Pending>,
    relations: IndexMap<&'static str, Vec<String>>,
    /// Where `metadata.name` is written.
    at: Found,
}

impl Raw {
    fn entity(&mut self, spec: &Blueprint) -> Entity {
        let mut relations = IndexMap::new();
        for (name, rel) in &spec.relations {
            let Some(targets) = self.relations.get(name.as_str()) else {
                continue;
            };
            let value = match (rel.many, targets.first()) {
                (true, _) => RelationValue::Many(targets.clone()),
                (false, Some(first)) => RelationValue::One(first.clone()),
                (false, None) => continue,
            };
            relations.insert(name.clone(), value);
        }
        Entity {
            identifier: self.identifier.clone(),
            blueprint: self.kind.blueprint().to_string(),
            title: Some(self.title.clone()),
            team: std::mem::take(&mut self.team),
            properties: std::mem::take(&mut self.properties),
            relations,
        }
    }

    /// Adds a relation target; a second, different target of a single relation is refused.
    fn relate(&mut self, relation: &'static str, id: String) -> Result<(), String> {
        let targets = self.relations.entry(relation).or_default();
        if targets.contains(&id) {
            return Ok(());
        }
        match targets.first() {
            Some(first) if !is_many(relation) => Err(first.clone()),
            _ => {
                targets.push(id);
                Ok(())
            }
        }
    }
}

/// Relations of the imported blueprints that hold many targets.
fn is_many(relation: &str) -> bool {
    matches!(
        relation,
        "providesApis" | "consumesApis" | "dependsOnComponents" | "dependsOnResources" | "memberOf"
    )
}

/// The identifier of `namespace`/`name` in Gantry.
fn identifier(namespace: &str, name: &str) -> String {
    if namespace.eq_ignore_ascii_case("default") {
        name.to_string()
    } else {
        format!("{namespace}:{name}")
    }
}

/// A Gantry team name for a group identifier: lowercase, `:` written `.`.
fn team_name(group: &str) -> Option<String> {
    let team = group.to_lowercase().replace(':', ".");
    let valid = !team.is_empty()
        && team.len() <= 100
        && team.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    valid.then_some(team)
}

/// A namespace or name that can be part of a Gantry identifier.
fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// `a/./b/../c` → `a/c`, for comparing a Location's targets with the files given.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." if !parts.is_empty() => {}
            "." => {}
            ".." if parts.last().is_some_and(|p| *p != ".." && !p.is_empty()) => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// One descriptor (a YAML document) being read.
struct Doc<'a> {
    source: &'a Source<'a>,
    data: &'a DataDoc,
}

type Path<'p> = Vec<PathSegment<'p>>;

fn keys<'p>(keys: &[&'p str]) -> Path<'p> {
    keys.iter().map(|k| PathSegment::Key(k)).collect()
}

fn show(path: &[PathSegment<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            PathSegment::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathSegment::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
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

impl Doc<'_> {
    fn at(&self, path: &[PathSegment<'_>], message: String) -> Found {
        self.source.problem(self.data.span_at(path), message)
    }

    fn get(&self, path: &[PathSegment<'_>]) -> Option<&Value> {
        let mut at = &self.data.value;
        for seg in path {
            at = match (seg, at) {
                (PathSegment::Key(k), Value::Object(o)) => o.get(*k)?,
                (PathSegment::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(at)
    }

    /// A string field, if written; any other value is an error.
    fn string(&self, path: &[PathSegment<'_>], out: &mut Out) -> Option<String> {
        match self.get(path)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => {
                out.errors.push(self.at(
                    path,
                    format!(
                        "`{}` must be a string, not {}",
                        show(path),
                        type_name(other)
                    ),
                ));
                None
            }
        }
    }

    /// A mapping field, if written; any other value is an error.
    fn mapping(&self, path: &[PathSegment<'_>], out: &mut Out) -> Option<&Map> {
        match self.get(path)? {
            Value::Null => None,
            Value::Object(o) => Some(o),
            other => {
                out.errors.push(self.at(
                    path,
                    format!(
                        "`{}` must be a mapping, not {}",
                        show(path),
                        type_name(other)
                    ),
                ));
                None
            }
        }
    }

    /// A list field, if written; any other value is an error.
    fn list(&self, path: &[PathSegment<'_>], out: &mut Out) -> Option<&Vec<Value>> {
        match self.get(path)? {
            Value::Null => None,
            Value::Array(a) => Some(a),
            other => {
                out.errors.push(self.at(
                    path,
                    format!("`{}` must be a list, not {}", show(path), type_name(other)),
                ));
                None
            }
        }
    }

    fn read(&self, names: &[String], out: &mut Out) -> Option<Raw> {
        let Value::Object(_) = &self.data.value else {
            out.errors.push(self.at(
                &[],
                format!(
                    "a Backstage descriptor is a mapping with `apiVersion`, `kind`, `metadata` and `spec`, not {}",
                    type_name(&self.data.value)
                ),
            ));
            return None;
        };
        let kind_path = keys(&["kind"]);
        let Some(kind_text) = self.string(&kind_path, out) else {
            if self.get(&kind_path).is_none_or(Value::is_null) {
                out.errors
                    .push(self.at(&[], "missing field `kind`".to_string()));
            }
            return None;
        };
        let version_path = keys(&["apiVersion"]);
        let version = self.string(&version_path, out);
        let known_version = version
            .as_deref()
            .is_some_and(|v| API_VERSIONS.contains(&v));
        if kind_text.eq_ignore_ascii_case("location") {
            self.location(names, out);
            return None;
        }
        let Some(kind) = Kind::parse(&kind_text) else {
            let known: Vec<&str> = ORDER.iter().map(|k| k.name()).collect();
            out.warnings.push(self.at(
                &kind_path,
                format!(
                    "kind `{kind_text}` is not imported (only {} and Location are); skipped",
                    known.join(", ")
                ),
            ));
            return None;
        };
        match version {
            None if self.get(&version_path).is_none_or(Value::is_null) => {
                out.errors
                    .push(self.at(&[], "missing field `apiVersion`".to_string()));
                return None;
            }
            None => return None,
            Some(v) if !known_version => out.warnings.push(self.at(
                &version_path,
                format!(
                    "`apiVersion: {v}` is not one Gantry reads ({}); read as {}",
                    API_VERSIONS.join(", "),
                    API_VERSIONS[0]
                ),
            )),
            Some(_) => {}
        }
        self.entity(kind, out)
    }

    /// A Location: its targets are files to pass to the import too (or to fetch first).
    fn location(&self, names: &[String], out: &mut Out) {
        let mut targets: Vec<(Path<'_>, String)> = Vec::new();
        let target = keys(&["spec", "target"]);
        if let Some(t) = self.string(&target, out) {
            targets.push((target, t));
        }
        let list = keys(&["spec", "targets"]);
        if let Some(items) = self.list(&list, out) {
            for (i, item) in items.iter().enumerate() {
                let mut path = list.clone();
                path.push(PathSegment::Index(i));
                match item {
                    Value::String(s) => targets.push((path, s.clone())),
                    other => out.errors.push(self.at(
                        &path,
                        format!(
                            "a Location target must be a string, not {}",
                            type_name(other)
                        ),
                    )),
                }
            }
        }
        let dir = self.source.name.rsplit_once('/').map_or("", |(dir, _)| dir);
        let name = self
            .get(&keys(&["metadata", "name"]))
            .and_then(Value::as_str)
            .map(|n| format!(" `{n}`"))
            .unwrap_or_default();
        for (path, target) in targets {
            let message = if target.contains("://") {
                format!(
                    "Location{name} names {target}; the import fetches nothing: download it and pass it too"
                )
            } else {
                let file = match target.strip_prefix("file:") {
                    Some(file) => file,
                    None => target.as_str(),
                };
                let file = if file.starts_with('/') || dir.is_empty() {
                    normalize(file)
                } else {
                    normalize(&format!("{dir}/{file}"))
                };
                if names.contains(&file) {
                    continue;
                }
                format!(
                    "Location{name} names {file}, which was not given; the import reads only the files it is given: pass it too"
                )
            };
            out.warnings.push(self.at(&path, message));
        }
    }

    /// A reference: a string `[kind:][namespace/]name` or a mapping `{kind, namespace, name}`.
    fn reference(&self, path: &[PathSegment<'_>], out: &mut Out) -> Option<Ref> {
        let value = self.get(path)?;
        let bad = |why: &str| format!("`{}` is not an entity reference: {why}", show(path));
        let parsed = match value {
            Value::Null => return None,
            Value::String(s) => {
                let (kind, rest) = match s.split_once(':') {
                    Some((k, rest)) => (Some(k), rest),
                    None => (None, s.as_str()),
                };
                let (namespace, name) = match rest.split_once('/') {
                    Some((ns, name)) => (Some(ns), name),
                    None => (None, rest),
                };
                if name.contains([':', '/']) {
                    Err(bad(&format!(
                        "`{s}` has too many parts; write `[kind:][namespace/]name`"
                    )))
                } else if kind.is_some_and(str::is_empty)
                    || namespace.is_some_and(str::is_empty)
                    || name.is_empty()
                {
                    Err(bad(&format!(
                        "`{s}` has an empty part; write `[kind:][namespace/]name`"
                    )))
                } else {
                    Ok(Ref {
                        kind: kind.map(str::to_lowercase),
                        namespace: namespace.map(str::to_string),
                        name: name.to_string(),
                    })
                }
            }
            Value::Object(o) => {
                let field = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
                match field("name") {
                    Some(name) => Ok(Ref {
                        kind: field("kind").map(str::to_lowercase),
                        namespace: field("namespace").map(str::to_string),
                        name: name.to_string(),
                    }),
                    None => Err(bad("a mapping reference needs a `name` string")),
                }
            }
            other => Err(bad(&format!(
                "it is {}, not a string like `group:team-a`",
                type_name(other)
            ))),
        };
        match parsed {
            Ok(r) => Some(r),
            Err(message) => {
                out.errors.push(self.at(path, message));
                None
            }
        }
    }

    fn pending(&self, path: &[PathSegment<'_>], rule: Rule, out: &mut Out) -> Option<Pending> {
        let target = self.reference(path, out)?;
        Some(Pending {
            field: show(path),
            rule,
            target,
            at: self.at(path, String::new()),
        })
    }

    fn pending_list(&self, path: &[PathSegment<'_>], rule: Rule, out: &mut Out) -> Vec<Pending> {
        let Some(items) = self.list(path, out) else {
            return Vec::new();
        };
        (0..items.len())
            .filter_map(|i| {
                let mut item = path.to_vec();
                item.push(PathSegment::Index(i));
                self.pending(&item, rule, out)
            })
            .collect()
    }

    fn entity(&self, kind: Kind, out: &mut Out) -> Option<Raw> {
        let errors_before = out.errors.len();
        let name_path = keys(&["metadata", "name"]);
        let ns_path = keys(&["metadata", "namespace"]);
        if self.mapping(&keys(&["metadata"]), out).is_none() {
            if self.get(&keys(&["metadata"])).is_none_or(Value::is_null) {
                out.errors
                    .push(self.at(&[], "missing field `metadata`".to_string()));
            }
            return None;
        }
        let Some(name) = self.string(&name_path, out) else {
            if self.get(&name_path).is_none_or(Value::is_null) {
                out.errors.push(self.at(
                    &keys(&["metadata"]),
                    "missing field `metadata.name`".to_string(),
                ));
            }
            return None;
        };
        let namespace = self
            .string(&ns_path, out)
            .unwrap_or_else(|| "default".to_string());
        let rule = "1 to 100 letters, digits, `-`, `_`, `.` or `@`";
        if !valid_part(&name) {
            out.errors.push(self.at(
                &name_path,
                format!("`metadata.name` `{name}` cannot be a Gantry identifier: use {rule}"),
            ));
        }
        if !valid_part(&namespace) {
            out.errors.push(self.at(
                &ns_path,
                format!(
                    "`metadata.namespace` `{namespace}` cannot be part of a Gantry identifier: use {rule}"
                ),
            ));
        }
        let identifier = identifier(&namespace.to_lowercase(), &name);
        if identifier.len() > 100 && valid_part(&name) && valid_part(&namespace) {
            out.errors.push(self.at(
                &name_path,
                format!(
                    "the identifier `{identifier}` (namespace:name) is longer than 100 characters"
                ),
            ));
        }

        let mut properties = Map::new();
        let meta = |k: &'static str| keys(&["metadata", k]);
        if let Some(d) = self.string(&meta("description"), out) {
            properties.insert("description".into(), Value::String(d));
        }
        if let Some(tags) = self.list(&meta("tags"), out) {
            for (i, tag) in tags.iter().enumerate() {
                if !tag.is_string() {
                    let mut path = meta("tags");
                    path.push(PathSegment::Index(i));
                    out.errors.push(self.at(
                        &path,
                        format!("a tag must be a string, not {}", type_name(tag)),
                    ));
                }
            }
            properties.insert("tags".into(), Value::Array(tags.clone()));
        }
        if let Some(links) = self.list(&meta("links"), out) {
            for (i, link) in links.iter().enumerate() {
                let mut path = meta("links");
                path.push(PathSegment::Index(i));
                let ok = link
                    .as_object()
                    .is_some_and(|l| l.get("url").is_some_and(Value::is_string));
                if !ok {
                    out.errors.push(
                        self.at(
                            &path,
                            "a link is a mapping with a `url` string (and `title`, `icon`, `type`)"
                                .to_string(),
                        ),
                    );
                }
            }
            properties.insert("links".into(), Value::Array(links.clone()));
        }
        for field in ["annotations", "labels"] {
            if let Some(m) = self.mapping(&meta(field), out) {
                properties.insert(field.into(), Value::Object(m.clone()));
            }
        }
        let title_path = meta("title");
        let mut title = self.string(&title_path, out);

        let spec = |k: &'static str| keys(&["spec", k]);
        self.mapping(&keys(&["spec"]), out);
        if kind != Kind::User {
            if let Some(t) = self.string(&spec("type"), out) {
                properties.insert("type".into(), Value::String(t));
            }
        }
        if matches!(kind, Kind::Component | Kind::Api) {
            if let Some(l) = self.string(&spec("lifecycle"), out) {
                properties.insert("lifecycle".into(), Value::String(l));
            }
        }
        if kind == Kind::Api {
            let path = spec("definition");
            match self.get(&path) {
                None | Some(Value::Null) => {}
                Some(Value::String(d)) => {
                    properties.insert("definition".into(), Value::String(d.clone()));
                }
                Some(Value::Object(o))
                    if o.keys()
                        .any(|k| matches!(k.as_str(), "$text" | "$json" | "$yaml")) =>
                {
                    out.warnings.push(
                        self.at(
                            &path,
                            "the definition is read from elsewhere (`$text`, `$json` or `$yaml`), \
                         which the import does not follow; it is left out, set `definition` later"
                                .to_string(),
                        ),
                    );
                }
                Some(other) => out.errors.push(self.at(
                    &path,
                    format!(
                        "`spec.definition` must be a string, not {}",
                        type_name(other)
                    ),
                )),
            }
        }
        if matches!(kind, Kind::Group | Kind::User) {
            let profile = keys(&["spec", "profile"]);
            if self.mapping(&profile, out).is_some() {
                let field = |k: &'static str| keys(&["spec", "profile", k]);
                let display = self.string(&field("displayName"), out);
                if let Some(d) = &display {
                    properties.insert("displayName".into(), Value::String(d.clone()));
                }
                title = title.or(display);
                if let Some(email) = self.string(&field("email"), out) {
                    let looks_right = email
                        .split_once('@')
                        .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.contains('@'));
                    if looks_right {
                        properties.insert("email".into(), Value::String(email));
                    } else {
                        out.warnings.push(self.at(
                            &field("email"),
                            format!("`{email}` is not an email address; left out"),
                        ));
                    }
                }
                if let Some(p) = self.string(&field("picture"), out) {
                    properties.insert("picture".into(), Value::String(p));
                }
            }
        }

        let mut refs = Vec::new();
        let mut one = |k: &'static str, rule: Rule, out: &mut Out| {
            refs.extend(self.pending(&spec(k), rule, out));
        };
        match kind {
            Kind::Component => {
                one("owner", Rule::Owner, out);
                one("system", Rule::To(Kind::System, "system"), out);
                one(
                    "subcomponentOf",
                    Rule::To(Kind::Component, "subcomponentOf"),
                    out,
                );
            }
            Kind::Api => {
                one("owner", Rule::Owner, out);
                one("system", Rule::To(Kind::System, "system"), out);
            }
            Kind::Resource => {
                one("owner", Rule::Owner, out);
                one("system", Rule::To(Kind::System, "system"), out);
            }
            Kind::System => {
                one("owner", Rule::Owner, out);
                one("domain", Rule::To(Kind::Domain, "domain"), out);
            }
            Kind::Domain => {
                one("owner", Rule::Owner, out);
                one("subdomainOf", Rule::To(Kind::Domain, "subdomainOf"), out);
            }
            Kind::Group => one("parent", Rule::To(Kind::Group, "parent"), out),
            Kind::User => {}
        }
        let lists: &[(&'static str, Rule)] = match kind {
            Kind::Component => &[
                ("providesApis", Rule::To(Kind::Api, "providesApis")),
                ("consumesApis", Rule::To(Kind::Api, "consumesApis")),
                ("dependsOn", Rule::DependsOn),
                ("dependencyOf", Rule::DependencyOf),
            ],
            Kind::Resource => &[
                ("dependsOn", Rule::DependsOn),
                ("dependencyOf", Rule::DependencyOf),
            ],
            Kind::Group => &[("children", Rule::Children), ("members", Rule::Members)],
            Kind::User => &[("memberOf", Rule::To(Kind::Group, "memberOf"))],
            Kind::Api | Kind::System | Kind::Domain => &[],
        };
        for (field, rule) in lists {
            refs.extend(self.pending_list(&spec(field), *rule, out));
        }

        if out.errors.len() > errors_before {
            return None;
        }
        Some(Raw {
            kind,
            namespace: namespace.to_lowercase(),
            title: title.unwrap_or_else(|| name.clone()),
            name,
            identifier,
            properties,
            team: Vec::new(),
            refs,
            relations: IndexMap::new(),
            at: self.at(&name_path, String::new()),
        })
    }
}

/// Where each entity is, by (kind, lowercase namespace, lowercase name); the same entity
/// twice is an error at each place.
fn duplicates(raws: &[Raw], out: &mut Out) -> HashMap<(Kind, String, String), usize> {
    let mut index: HashMap<(Kind, String, String), usize> = HashMap::new();
    let mut seen: IndexMap<(Kind, String, String), Vec<usize>> = IndexMap::new();
    for (i, raw) in raws.iter().enumerate() {
        let key = (raw.kind, raw.namespace.clone(), raw.name.to_lowercase());
        seen.entry(key.clone()).or_default().push(i);
        index.entry(key).or_insert(i);
    }
    for ((kind, namespace, _), places) in seen {
        if places.len() < 2 {
            continue;
        }
        for &i in &places {
            let raw = &raws[i];
            let others: Vec<String> = places
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| raws[j].at.error.location.to_string())
                .collect();
            out.errors.push(Found {
                order: raw.at.order,
                error: FileError {
                    location: raw.at.error.location.clone(),
                    message: format!(
                        "{} `{}` in namespace `{namespace}` is declared {} times (names are compared ignoring case); also at {}",
                        kind.name(),
                        raw.name,
                        places.len(),
                        others.join(", ")
                    ),
                },
            });
        }
    }
    index
}

/// What a reference resolved to.
struct Target {
    kind: Kind,
    /// The entity among those imported, if it is there.
    index: Option<usize>,
    identifier: String,
}

/// Resolves every reference into relations (and teams), warning about dangling ones.
/// Reverse fields come last, so what an entity says of itself wins over what others say of it.
fn resolve(raws: &mut [Raw], index: &HashMap<(Kind, String, String), usize>, out: &mut Out) {
    let mut pending: Vec<(usize, Pending)> = Vec::new();
    for (i, raw) in raws.iter_mut().enumerate() {
        pending.extend(std::mem::take(&mut raw.refs).into_iter().map(|p| (i, p)));
    }
    let (reverse, forward): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|(_, p)| matches!(p.rule, Rule::DependencyOf | Rule::Children | Rule::Members));
    for (i, p) in forward.into_iter().chain(reverse) {
        resolve_one(raws, i, p, index, out);
    }
}

fn warn(out: &mut Out, at: &Found, message: String) {
    out.warnings.push(Found {
        order: at.order,
        error: FileError {
            location: at.error.location.clone(),
            message,
        },
    });
}

fn resolve_one(
    raws: &mut [Raw],
    source: usize,
    pending: Pending,
    index: &HashMap<(Kind, String, String), usize>,
    out: &mut Out,
) {
    let Pending {
        field,
        rule,
        target,
        at,
    } = pending;
    let source_kind = raws[source].kind;
    let namespace = target
        .namespace
        .as_deref()
        .map_or_else(|| raws[source].namespace.clone(), str::to_lowercase);
    let find = |kind: Kind| -> Option<usize> {
        index
            .get(&(kind, namespace.clone(), target.name.to_lowercase()))
            .copied()
    };
    let written = target.display();
    let kind_given = target.kind.as_deref().map(|k| (k, Kind::parse(k)));

    // The kinds the field allows, and the one meant when none is written.
    let (allowed, default): (Vec<Kind>, Option<Kind>) = match rule {
        Rule::Owner => (vec![Kind::Group, Kind::User], Some(Kind::Group)),
        Rule::To(kind, _) => (vec![kind], Some(kind)),
        Rule::DependsOn | Rule::DependencyOf => (vec![Kind::Component, Kind::Resource], None),
        Rule::Children => (vec![Kind::Group], Some(Kind::Group)),
        Rule::Members => (vec![Kind::User], Some(Kind::User)),
    };
    let kind = match (kind_given, default) {
        (Some((_, Some(k))), _) if allowed.contains(&k) => k,
        (Some(_), _) => {
            let names: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
            warn(
                out,
                &at,
                format!(
                    "`{field}` names `{written}`, but only a {} can be there; left out",
                    names.join(" or ")
                ),
            );
            return;
        }
        (None, Some(k)) => k,
        // `dependsOn` and `dependencyOf` name the kind; without it, look for the name.
        (None, None) => match (find(Kind::Component), find(Kind::Resource)) {
            (Some(_), None) => Kind::Component,
            (None, Some(_)) => Kind::Resource,
            (Some(_), Some(_)) => {
                warn(
                    out,
                    &at,
                    format!(
                        "`{field}` names `{written}`, which is both a component and a resource; \
                         write `component:{written}` or `resource:{written}`; left out"
                    ),
                );
                return;
            }
            (None, None) if rule == Rule::DependencyOf => {
                warn(
                    out,
                    &at,
                    format!(
                        "`{field}` names `{written}`, which is not in the files given; \
                         the relation is recorded on that entity, so it is left out"
                    ),
                );
                return;
            }
            (None, None) => {
                let assumed = if source_kind == Kind::Resource {
                    Kind::Resource
                } else {
                    Kind::Component
                };
                warn(
                    out,
                    &at,
                    format!(
                        "`{field}` names `{written}` without a kind and no component or resource of that name was given; \
                         kept as a dangling {} (write `component:` or `resource:` before it)",
                        assumed.blueprint()
                    ),
                );
                let t = Target {
                    kind: assumed,
                    index: None,
                    identifier: identifier(&namespace, &target.name),
                };
                record(raws, source, &field, rule, t, &at, out);
                return;
            }
        },
    };
    let found = find(kind);
    let t = Target {
        kind,
        index: found,
        identifier: found.map_or_else(
            || identifier(&namespace, &target.name),
            |i| raws[i].identifier.clone(),
        ),
    };
    if found.is_none() {
        let message = match rule {
            Rule::DependencyOf | Rule::Children | Rule::Members => format!(
                "`{field}` names {} `{}`, which is not in the files given; \
                 the relation is recorded on that entity, so it is left out",
                kind.name(),
                t.identifier
            ),
            _ => format!(
                "`{field}` names {} `{}`, which is not in the files given; kept as a dangling relation",
                kind.name(),
                t.identifier
            ),
        };
        warn(out, &at, message);
    }
    record(raws, source, &field, rule, t, &at, out);
}

/// Records a resolved reference as a relation of the source or, for reverse fields, of the
/// target.
fn record(
    raws: &mut [Raw],
    source: usize,
    field: &str,
    rule: Rule,
    target: Target,
    at: &Found,
    out: &mut Out,
) {
    let source_kind = raws[source].kind;
    let source_id = raws[source].identifier.clone();
    let dependency = |kind: Kind| match kind {
        Kind::Resource => "dependsOnResources",
        _ => "dependsOnComponents",
    };
    // (the entity that gets the relation, the relation, the identifier recorded)
    let (entity, relation, id) = match rule {
        Rule::Owner if target.kind == Kind::User => (Some(source), "ownerUser", target.identifier),
        Rule::Owner => {
            match team_name(&target.identifier) {
                Some(team) => {
                    if !raws[source].team.contains(&team) {
                        raws[source].team.push(team);
                    }
                }
                None => warn(
                    out,
                    at,
                    format!(
                        "the owner `{}` cannot be a Gantry team name (lowercase letters, digits, `-`, `_`, `.`); no team is set",
                        target.identifier
                    ),
                ),
            }
            (Some(source), "owner", target.identifier)
        }
        Rule::To(_, relation) => (Some(source), relation, target.identifier),
        Rule::DependsOn => {
            if source_kind == Kind::Resource && target.kind == Kind::Component {
                warn(
                    out,
                    at,
                    format!(
                        "`{field}`: a resource that depends on component `{}` is not imported \
                         (resources depend on resources only, so blueprints can be created in order); left out",
                        target.identifier
                    ),
                );
                return;
            }
            (Some(source), dependency(target.kind), target.identifier)
        }
        // Not there to record it on (already said).
        Rule::DependencyOf | Rule::Children | Rule::Members if target.index.is_none() => return,
        Rule::DependencyOf => {
            if target.kind == Kind::Resource && source_kind == Kind::Component {
                warn(
                    out,
                    at,
                    format!(
                        "`{field}`: resource `{}` depending on a component is not imported \
                         (resources depend on resources only); left out",
                        target.identifier
                    ),
                );
                return;
            }
            (target.index, dependency(source_kind), source_id)
        }
        Rule::Children => (target.index, "parent", source_id),
        Rule::Members => (target.index, "memberOf", source_id),
    };
    let Some(entity) = entity else {
        return;
    };
    if let Err(first) = raws[entity].relate(relation, id.clone()) {
        warn(
            out,
            at,
            format!(
                "`{field}` makes `{id}` the {relation} of {} `{}`, which already has `{first}`; left out",
                raws[entity].kind.blueprint(),
                raws[entity].identifier
            ),
        );
    }
}
