//! YAML tree → workflow model. Reports every structural problem and keeps going.
//!
//! Shape checks live here (keys, types, required fields, tags and their arguments);
//! cross-references (step names, parameters, expressions) are checked in `check.rs`.

use crate::cron;
use crate::diagnostic::{suggest, Code, Diagnostic, Span};
use crate::model::*;
use crate::yaml::{Node, NodeKind};

pub(crate) struct Decoder<'s> {
    src: &'s str,
    pub(crate) diags: Vec<Diagnostic>,
}

const TOP_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "name",
    "summary",
    "description",
    "homepage",
    "source",
    "tags",
    "locals",
    "timeout",
    "agent",
    "parameters",
    "triggers",
    "steps",
];
const PARAMETER_KEYS: &[&str] = &["description", "default", "type"];
const CONTAINER_KEYS: &[&str] = &[
    "image",
    "spec",
    "env",
    "input",
    "inputFile",
    "command",
    "args",
];
const STEP_KEYS: &[&str] = &[
    "name",
    "description",
    "type",
    "dependsOn",
    "when",
    "timeout",
    "agent",
];
const TRIGGER_KEYS: &[&str] = &["name", "source", "binding", "when"];
const BINDING_KEYS: &[&str] = &["parameters", "key"];
/// Help for an `agent` written as an expression.
const AGENT_IS_FIXED: &str =
    "`agent` names a pool such as `edge-eu`; it is fixed when the workflow is read, so it takes no expression";
/// Help for an `agent` with no name.
const AGENT_ABSENT: &str =
    "name an agent pool, or remove `agent` to run on the server's own runtime";
const PARAMETER_TYPES: &[&str] = &["string", "number", "integer", "boolean", "array", "object"];

/// The entries of a mapping node, owned: values are taken out as they are decoded, so strings
/// move into the model instead of being copied.
struct Fields {
    /// Key, key span, value (`None` once taken).
    entries: Vec<(String, Span, Option<Node>)>,
}

impl Fields {
    fn get(&self, key: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .and_then(|(_, _, v)| v.as_ref())
    }

    fn take(&mut self, key: &str) -> Option<Node> {
        self.entries
            .iter_mut()
            .find(|(k, _, _)| k == key)
            .and_then(|(_, _, v)| v.take())
    }

    fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, span, _)| *span)
    }

    fn into_entries(self) -> impl Iterator<Item = (String, Span, Node)> {
        self.entries
            .into_iter()
            .filter_map(|(k, span, v)| v.map(|v| (k, span, v)))
    }
}

impl<'s> Decoder<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Decoder {
            src,
            diags: Vec::new(),
        }
    }

    fn error(&mut self, code: Code, message: impl Into<String>, span: Span) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, message, span));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn type_error(&mut self, what: &str, expected: &str, node: &Node) {
        self.error(
            Code::InvalidType,
            format!("{what} must be {expected}, found {}", node.type_name()),
            node.span,
        );
    }

    /// Reads a mapping, warning about keys outside `known` (`None` accepts any key).
    fn fields(&mut self, node: Node, what: &str, known: Option<&[&[&str]]>) -> Option<Fields> {
        if !matches!(node.kind, NodeKind::Map(_)) {
            self.type_error(what, "a mapping", &node);
            return None;
        }
        let NodeKind::Map(entries) = node.kind else {
            return None;
        };
        let out = entries
            .into_iter()
            .filter_map(|(k, v)| match k.kind {
                NodeKind::Str(key) => Some((key, k.span, Some(v))),
                _ => {
                    self.error(
                        Code::InvalidType,
                        format!("keys of {what} must be strings"),
                        k.span,
                    );
                    None
                }
            })
            .collect();
        let mut f = Fields { entries: out };
        if let Some(known) = known {
            self.keep_known(&mut f, what, known);
        }
        Some(f)
    }

    /// Warns about and drops the keys of `f` outside `known`.
    /// `known` is a list of key lists (a step's own keys and the container keys, say).
    fn keep_known(&mut self, f: &mut Fields, what: &str, known: &[&[&str]]) {
        f.entries.retain(|(key, span, _)| {
            if known.iter().any(|keys| keys.contains(&key.as_str())) {
                return true;
            }
            let mut d = Diagnostic::warning(
                Code::UnknownKey,
                format!("unknown key `{key}` in {what}; it is ignored"),
                *span,
            );
            if let Some(h) = suggest(key, known.iter().flat_map(|keys| keys.iter().copied())) {
                d = d.with_help(h);
            }
            self.diags.push(d);
            false
        });
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        if node.tag.is_some() {
            self.error(
                Code::InvalidType,
                format!("{what} must be a plain string, not an expression tag"),
                node.span,
            );
            return None;
        }
        match &node.kind {
            NodeKind::Str(s) => Some(Spanned::new(s.clone(), node.span)),
            // Relay's Go parser reads `name: 1` into a string field as "1"; do the same.
            NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => {
                node.scalar_text().map(|s| Spanned::new(s, node.span))
            }
            _ => {
                self.type_error(what, "a string", node);
                None
            }
        }
    }

    /// A Gantry duration: `90s`, `15m`, `1h30m`, or a number of seconds.
    fn duration(&mut self, node: &Node, what: &str) -> Option<Spanned<std::time::Duration>> {
        let text = match &node.kind {
            NodeKind::Str(s) if node.tag.is_none() => s.clone(),
            NodeKind::Int(i) if *i > 0 => i.to_string(),
            _ => String::new(),
        };
        match crate::duration::parse(&text).filter(|d| !d.is_zero()) {
            Some(d) => Some(Spanned::new(d, node.span)),
            None => {
                self.error(
                    Code::InvalidValue,
                    format!("{what} must be a duration such as `90s`, `15m` or `1h30m`"),
                    node.span,
                );
                None
            }
        }
    }

    /// An agent pool's name (`agent: edge-eu`, a Gantry extension): a plain string that
    /// [`check_agent_pool`] accepts. No expression: where a step runs is known when the
    /// workflow is read, not decided by a run's data.
    fn agent(&mut self, node: &Node) -> Option<Spanned<String>> {
        if node.tag.is_some() {
            self.diags.push(
                Diagnostic::error(
                    Code::InvalidType,
                    "`agent` must be a plain pool name, not an expression tag",
                    node.span,
                )
                .with_help(AGENT_IS_FIXED),
            );
            return None;
        }
        let NodeKind::Str(name) = &node.kind else {
            let mut d = Diagnostic::error(
                Code::InvalidType,
                format!("`agent` must be a pool name, found {}", node.type_name()),
                node.span,
            );
            d = match node.kind {
                NodeKind::Null => d.with_help(AGENT_ABSENT),
                NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => {
                    d.with_help("quote it to use it as a pool name")
                }
                _ => d,
            };
            self.diags.push(d);
            return None;
        };
        if name.is_empty() {
            self.diags.push(
                Diagnostic::error(Code::InvalidValue, "`agent` must not be empty", node.span)
                    .with_help(AGENT_ABSENT),
            );
            return None;
        }
        if let Err(problem) = check_agent_pool(name) {
            let mut d = Diagnostic::error(
                Code::InvalidValue,
                format!("`agent` is not a valid pool name: {problem}"),
                node.span,
            );
            let lower = name.to_ascii_lowercase();
            if name.contains("${") {
                d = d.with_help(AGENT_IS_FIXED);
            } else if check_agent_pool(&lower).is_ok() {
                d = d.with_help(format!("did you mean `{lower}`?"));
            }
            self.diags.push(d);
            return None;
        }
        Some(Spanned::new(name.clone(), node.span))
    }

    fn opt_string(&mut self, f: &Fields, key: &str, what: &str) -> Option<Spanned<String>> {
        let node = f.get(key)?;
        if matches!(node.kind, NodeKind::Null) && node.tag.is_none() {
            return None;
        }
        self.string(node, what)
    }

    /// A string or a list of strings.
    fn strings(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        match &node.kind {
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|i| self.string(i, &format!("each entry of {what}")))
                .collect(),
            NodeKind::Null => Vec::new(),
            _ => self.string(node, what).into_iter().collect(),
        }
    }

    fn string_list(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        match &node.kind {
            NodeKind::Seq(_) | NodeKind::Null => self.strings(node, what),
            _ => {
                self.type_error(what, "a list of strings", node);
                Vec::new()
            }
        }
    }

    pub(crate) fn workflow(&mut self, root: Option<Node>, len: usize) -> Workflow {
        let mut wf = Workflow::default();
        let Some(root) = root else {
            return wf;
        };
        if matches!(root.kind, NodeKind::Null) {
            self.error(
                Code::NoSteps,
                "the workflow is empty; it needs at least `steps`",
                Span::new(0, len as u32),
            );
            return wf;
        }
        let root_span = root.span;
        let Some(mut f) = self.fields(root, "the workflow", Some(&[TOP_KEYS])) else {
            return wf;
        };
        wf.api_version = self.opt_string(&f, "apiVersion", "`apiVersion`");
        if let Some(v) = &wf.api_version {
            if v.value != "v1" {
                self.error(
                    Code::UnsupportedApiVersion,
                    format!("unsupported apiVersion `{}`; Gantry reads `v1`", v.value),
                    v.span,
                );
            }
        }
        wf.kind = self.opt_string(&f, "kind", "`kind`");
        if let Some(k) = &wf.kind {
            if k.value != "Workflow" {
                self.error(
                    Code::InvalidValue,
                    format!("`kind` must be `Workflow`, found `{}`", k.value),
                    k.span,
                );
            }
        }
        wf.name = self.opt_string(&f, "name", "`name`");
        if let Some(n) = &wf.name {
            if n.value.is_empty() {
                self.error(Code::InvalidValue, "`name` must not be empty", n.span);
            }
        }
        wf.summary = self.opt_string(&f, "summary", "`summary`");
        wf.description = self.opt_string(&f, "description", "`description`");
        wf.homepage = self.opt_string(&f, "homepage", "`homepage`");
        wf.source = self.opt_string(&f, "source", "`source`");
        if let Some(t) = f.get("tags") {
            wf.tags = self.string_list(t, "`tags`");
        }
        wf.locals = f.take("locals").map(|n| self.value(n));
        wf.timeout = f.get("timeout").and_then(|t| self.duration(t, "`timeout`"));
        wf.agent = f.get("agent").and_then(|a| self.agent(a));
        if let Some(p) = f.take("parameters") {
            wf.parameters = self.parameters(p);
        }
        if let Some(t) = f.take("triggers") {
            wf.triggers = self.list(t, "`triggers`", Self::trigger);
        }
        match f.take("steps") {
            Some(s) => wf.steps = self.list(s, "`steps`", Self::step),
            None => {
                self.error(
                    Code::MissingField,
                    "the workflow has no `steps`",
                    Span::new(root_span.start, root_span.start),
                );
            }
        }
        wf
    }

    fn list<T>(
        &mut self,
        node: Node,
        what: &str,
        item: fn(&mut Self, Node, usize) -> Option<T>,
    ) -> Vec<T> {
        match node.kind {
            NodeKind::Seq(items) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, n)| item(self, n, i))
                .collect(),
            NodeKind::Null => Vec::new(),
            _ => {
                self.type_error(what, "a list", &node);
                Vec::new()
            }
        }
    }

    fn parameters(&mut self, node: Node) -> Vec<Parameter> {
        let Some(f) = self.fields(node, "`parameters`", None) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(f.entries.len());
        for (name, key_span, value) in f.into_entries() {
            let what = format!("parameter `{name}`");
            let mut p = Parameter {
                name: Spanned::new(name, key_span),
                description: None,
                default: None,
                type_: None,
                span: Span::new(key_span.start, value.span.end.max(key_span.end)),
            };
            if !matches!(value.kind, NodeKind::Null) {
                if let Some(mut pf) = self.fields(value, &what, Some(&[PARAMETER_KEYS])) {
                    p.description = self.opt_string(&pf, "description", "`description`");
                    p.default = pf.take("default").map(|n| self.value(n));
                    p.type_ = self.opt_string(&pf, "type", "`type`");
                }
            }
            self.check_default_type(&p);
            out.push(p);
        }
        out
    }

    fn check_default_type(&mut self, p: &Parameter) {
        let Some(t) = &p.type_ else { return };
        if !PARAMETER_TYPES.contains(&t.value.as_str()) {
            let mut d = Diagnostic::warning(
                Code::InvalidValue,
                format!(
                    "unknown parameter type `{}`; known types: {}",
                    t.value,
                    PARAMETER_TYPES.join(", ")
                ),
                t.span,
            );
            if let Some(h) = suggest(&t.value, PARAMETER_TYPES.iter().copied()) {
                d = d.with_help(h);
            }
            self.diags.push(d);
            return;
        }
        let Some(default) = &p.default else { return };
        let ok = match (&default.kind, t.value.as_str()) {
            (ValueKind::Null, _) => true,
            (ValueKind::String(_), "string") => true,
            (ValueKind::Number(_), "number") => true,
            (ValueKind::Number(n), "integer") => n.is_i64() || n.is_u64(),
            (ValueKind::Bool(_), "boolean") => true,
            (ValueKind::Array(_), "array") => true,
            (ValueKind::Object(_), "object") => true,
            (ValueKind::String(s), _) if s.contains("${") => true,
            _ => false,
        };
        if !ok {
            self.error(
                Code::ParameterDefaultType,
                format!(
                    "the default of parameter `{}` is not of its declared type `{}`",
                    p.name.value, t.value
                ),
                default.span,
            );
        }
    }

    fn name_of(&mut self, f: &Fields, span: Span, what: &str) -> Option<Spanned<String>> {
        match f.get("name") {
            None => {
                self.error(
                    Code::MissingField,
                    format!("{what} has no `name`"),
                    Span::new(span.start, span.start),
                );
                None
            }
            Some(n) => {
                let s = self.string(n, "`name`")?;
                if s.value.is_empty() {
                    self.error(Code::InvalidValue, "`name` must not be empty", s.span);
                    return None;
                }
                Some(s)
            }
        }
    }

    fn step(&mut self, node: Node, index: usize) -> Option<Step> {
        let what = format!("step {}", index + 1);
        let span = node.span;
        let mut f = self.fields(node, &what, Some(&[STEP_KEYS, CONTAINER_KEYS]))?;
        let name = self.name_of(&f, span, &what);
        let description = self.opt_string(&f, "description", "`description`");
        let step_type = self.opt_string(&f, "type", "`type`");
        let depends_on = f
            .get("dependsOn")
            .map(|d| self.strings(d, "`dependsOn`"))
            .unwrap_or_default();
        let when = f.take("when").map(|w| self.when(w));
        let timeout = f.get("timeout").and_then(|t| self.duration(t, "`timeout`"));
        let kind = match step_type.as_ref().map(|t| t.value.as_str()) {
            None | Some("container") => {
                let c = self.container(&mut f);
                if c.image.is_none() {
                    let mut d = Diagnostic::error(
                        Code::MissingField,
                        format!(
                            "{} has no `image`",
                            name.as_ref()
                                .map_or(what.clone(), |n| format!("step `{}`", n.value))
                        ),
                        name.as_ref().map_or(span, |n| n.span),
                    );
                    if step_type.is_none() && c.spec.is_none() && c.input.is_empty() {
                        d = d.with_help("add `image:`, or `type: approval` for an approval step");
                    }
                    self.diags.push(d);
                }
                StepKind::Container(Box::new(c))
            }
            Some("approval") => {
                // An approval runs nowhere, so it has no agent pool either.
                for key in CONTAINER_KEYS.iter().chain(&["agent"]) {
                    if let Some(span) = f.key_span(key) {
                        self.diags.push(Diagnostic::warning(
                            Code::ApprovalIgnoredField,
                            format!("`{key}` is ignored on an approval step"),
                            span,
                        ));
                    }
                }
                StepKind::Approval
            }
            Some(other) => {
                let at = step_type.as_ref().map_or(span, |t| t.span);
                let mut d = Diagnostic::error(
                    Code::UnknownStepType,
                    format!("unknown step type `{other}`; expected `container` or `approval`"),
                    at,
                );
                if let Some(h) = suggest(other, ["container", "approval"]) {
                    d = d.with_help(h);
                }
                self.diags.push(d);
                StepKind::Container(Box::new(self.container(&mut f)))
            }
        };
        let agent = match kind {
            StepKind::Container(_) => f.get("agent").and_then(|a| self.agent(a)),
            StepKind::Approval => None,
        };
        Some(Step {
            name: name?,
            description,
            kind,
            depends_on,
            when,
            timeout,
            agent,
            span,
        })
    }

    fn container(&mut self, f: &mut Fields) -> Container {
        let mut c = Container {
            image: self.opt_string(f, "image", "`image`"),
            ..Container::default()
        };
        if let Some(s) = f.take("spec") {
            let (found, at) = (s.type_name(), s.span);
            let v = self.value(s);
            if !is_mapping_or_expression(&v) {
                self.error(
                    Code::InvalidType,
                    format!("`spec` must be a mapping or an expression, found {found}"),
                    at,
                );
            }
            c.spec = Some(v);
        }
        if let Some(e) = f.take("env") {
            let (found, at) = (e.type_name(), e.span);
            let v = self.value(e);
            match &v.kind {
                ValueKind::Object(entries) => {
                    for (k, _) in entries {
                        if !valid_env_name(&k.value) {
                            self.error(
                                Code::InvalidValue,
                                format!("`{}` is not a valid environment variable name", k.value),
                                k.span,
                            );
                        }
                    }
                }
                _ if is_mapping_or_expression(&v) => {}
                _ => {
                    self.error(
                        Code::InvalidType,
                        format!("`env` must be a mapping or an expression, found {found}"),
                        at,
                    );
                }
            }
            c.env = Some(v);
        }
        if let Some(i) = f.get("input") {
            c.input = self.strings(i, "`input`");
        }
        c.input_file = self.opt_string(f, "inputFile", "`inputFile`");
        c.command = self.opt_string(f, "command", "`command`");
        if let Some(a) = f.get("args") {
            c.args = self.strings(a, "`args`");
        }
        if let (Some(_), Some(file)) = (f.get("input"), &c.input_file) {
            self.error(
                Code::InputConflict,
                "a step has either `input` or `inputFile`, not both",
                file.span,
            );
        }
        if !c.input.is_empty() || c.input_file.is_some() {
            for key in ["command", "args"] {
                if let Some(span) = f.key_span(key) {
                    self.diags.push(Diagnostic::warning(
                        Code::InputOverridesCommand,
                        format!("`{key}` is ignored: the `input` script replaces it"),
                        span,
                    ));
                }
            }
        }
        c
    }

    fn when(&mut self, node: Node) -> When {
        match node {
            Node {
                kind: NodeKind::Seq(items),
                tag: None,
                span,
            } => When {
                conditions: items.into_iter().map(|i| self.value(i)).collect(),
                is_list: true,
                span,
            },
            node => {
                let span = node.span;
                When {
                    conditions: vec![self.value(node)],
                    is_list: false,
                    span,
                }
            }
        }
    }

    fn trigger(&mut self, node: Node, index: usize) -> Option<Trigger> {
        let what = format!("trigger {}", index + 1);
        let span = node.span;
        let mut f = self.fields(node, &what, Some(&[TRIGGER_KEYS]))?;
        let name = self.name_of(&f, span, &what);
        let source = match f.take("source") {
            None => {
                self.error(
                    Code::MissingField,
                    format!("{what} has no `source`"),
                    Span::new(span.start, span.start),
                );
                None
            }
            Some(s) => self.trigger_source(s),
        };
        let binding = f.take("binding").and_then(|b| self.binding(b));
        let when = f.take("when").map(|w| self.when(w));
        Some(Trigger {
            name: name?,
            source: source?,
            binding,
            when,
            span,
        })
    }

    fn trigger_source(&mut self, node: Node) -> Option<TriggerSource> {
        let span = node.span;
        let mut f = self.fields(node, "`source`", None)?;
        let Some(type_node) = f.get("type") else {
            self.error(
                Code::MissingField,
                "`source` has no `type` (schedule, push or webhook)",
                span,
            );
            return None;
        };
        let ty = self.string(type_node, "`source.type`")?;
        match ty.value.as_str() {
            "schedule" => {
                self.keep_known(&mut f, "a schedule source", &[&["type", "schedule"]]);
                let Some(s) = f.get("schedule") else {
                    self.error(
                        Code::MissingField,
                        "a schedule source needs `schedule` (a 5-field cron expression)",
                        span,
                    );
                    return None;
                };
                let schedule = self.string(s, "`schedule`")?;
                let parsed = match cron::Schedule::parse(&schedule.value) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        let at = crate::check::locate(
                            self.src,
                            schedule.span,
                            &schedule.value,
                            e.range.clone(),
                        );
                        let mut d = Diagnostic::error(Code::InvalidCron, e.message, at);
                        if let Some(h) = e.help {
                            d = d.with_help(h);
                        }
                        self.diags.push(d);
                        None
                    }
                };
                Some(TriggerSource::Schedule { schedule, parsed })
            }
            "push" => {
                self.keep_known(&mut f, "a push source", &[&["type", "schema"]]);
                let mut schema = Vec::new();
                if let Some(s) = f.take("schema") {
                    if let Some(sf) = self.fields(s, "`schema`", None) {
                        for (field, key_span, spec) in sf.into_entries() {
                            let what = format!("schema field `{field}`");
                            let spec_span = spec.span;
                            let Some(spec_f) = self.fields(spec, &what, Some(&[&["type"]])) else {
                                continue;
                            };
                            let Some(t) = spec_f.get("type").and_then(|t| self.string(t, "`type`"))
                            else {
                                self.error(
                                    Code::MissingField,
                                    format!("{what} has no `type`"),
                                    spec_span,
                                );
                                continue;
                            };
                            const TYPES: &[&str] = &[
                                "string", "number", "integer", "boolean", "array", "object", "null",
                            ];
                            if !TYPES.contains(&t.value.as_str()) {
                                self.error(
                                    Code::InvalidValue,
                                    format!(
                                        "unknown type `{}`; expected one of {}",
                                        t.value,
                                        TYPES.join(", ")
                                    ),
                                    t.span,
                                );
                            }
                            schema.push((Spanned::new(field, key_span), t));
                        }
                    }
                }
                Some(TriggerSource::Push { schema })
            }
            "webhook" => {
                self.keep_known(&mut f, "a webhook source", &[&["type"], CONTAINER_KEYS]);
                let c = self.container(&mut f);
                // Without an image, Gantry takes the request's JSON body as the event (a
                // Gantry extension); container settings then have nothing to apply to.
                let configures_container = c.spec.is_some()
                    || c.env.is_some()
                    || !c.input.is_empty()
                    || c.input_file.is_some()
                    || c.command.is_some()
                    || !c.args.is_empty();
                if c.image.is_none() && configures_container {
                    self.diags.push(
                        Diagnostic::error(
                            Code::MissingField,
                            "this webhook source configures a container but names no `image`",
                            span,
                        )
                        .with_help(
                            "add the `image` that handles the request, or remove the container \
                             settings to take the request's JSON body as the event",
                        ),
                    );
                }
                Some(TriggerSource::Webhook(Box::new(c)))
            }
            other => {
                let mut d = Diagnostic::error(
                    Code::UnknownTriggerSource,
                    format!(
                        "unknown trigger source type `{other}`; expected schedule, push or webhook"
                    ),
                    ty.span,
                );
                if let Some(h) = suggest(other, ["schedule", "push", "webhook"]) {
                    d = d.with_help(h);
                }
                self.diags.push(d);
                None
            }
        }
    }

    fn binding(&mut self, node: Node) -> Option<Binding> {
        if matches!(node.kind, NodeKind::Null) {
            return None;
        }
        let mut f = self.fields(node, "`binding`", Some(&[BINDING_KEYS]))?;
        let mut b = Binding::default();
        if let Some(p) = f.take("parameters") {
            if let Some(pf) = self.fields(p, "`binding.parameters`", None) {
                for (name, key_span, value) in pf.into_entries() {
                    let value = self.value(value);
                    b.parameters.push((Spanned::new(name, key_span), value));
                }
            }
        }
        b.key = f.take("key").map(|k| self.value(k));
        Some(b)
    }

    /// Any YAML node → canonical value, rewriting tags (relay-reference §1.5). Consumes the node
    /// so strings move instead of being copied.
    pub(crate) fn value(&mut self, mut node: Node) -> Value {
        if let Some(tag) = node.tag.take() {
            return self.tagged(node, &tag.name);
        }
        let span = node.span;
        let kind = match node.kind {
            NodeKind::Null => ValueKind::Null,
            NodeKind::Bool(b) => ValueKind::Bool(b),
            NodeKind::Int(i) => ValueKind::Number(i.into()),
            NodeKind::Float(f) => match serde_json::Number::from_f64(f) {
                Some(n) => ValueKind::Number(n),
                None => {
                    self.error(
                        Code::InvalidValue,
                        "infinity and NaN cannot be represented in JSON",
                        span,
                    );
                    ValueKind::Null
                }
            },
            NodeKind::Str(s) => ValueKind::String(s),
            NodeKind::Seq(items) => {
                ValueKind::Array(items.into_iter().map(|i| self.value(i)).collect())
            }
            NodeKind::Map(entries) => ValueKind::Object(self.keyword_entries(entries)),
        };
        Value::new(kind, span)
    }

    fn keyword_entries(&mut self, entries: Vec<(Node, Node)>) -> Vec<(Spanned<String>, Value)> {
        entries
            .into_iter()
            .map(|(k, v)| {
                let key_span = k.span;
                (Spanned::new(k.into_key_text(), key_span), self.value(v))
            })
            .collect()
    }

    /// A node whose tag was taken off: `tag` says what to make of it.
    fn tagged(&mut self, node: Node, tag: &str) -> Value {
        let span = node.span;
        if tag == "!!binary" {
            let data = match node.kind {
                NodeKind::Str(s) => s,
                _ => String::new(),
            };
            return Value::new(ValueKind::Binary(data), span);
        }
        if let Some(name) = tag.strip_prefix("!Fn.") {
            let name = Spanned::new(
                name.to_owned(),
                Span::new(span.start, span.start + tag.len() as u32),
            );
            let args = match node.kind {
                NodeKind::Seq(items) => {
                    Args::Positional(items.into_iter().map(|i| self.value(i)).collect())
                }
                NodeKind::Map(entries) => Args::Keyword(self.keyword_entries(entries)),
                NodeKind::Str(s) if s.is_empty() => Args::Positional(Vec::new()),
                kind => Args::Positional(vec![self.value(Node {
                    span,
                    tag: None,
                    kind,
                })]),
            };
            return Value::new(ValueKind::Call { name, args }, span);
        }
        let Some(kind) = ReferenceKind::from_tag(tag) else {
            let known = [
                "!Parameter",
                "!Secret",
                "!Connection",
                "!Output",
                "!Data",
                "!Answer",
                "!Fn.<name>",
                "!!binary",
            ];
            let mut d = Diagnostic::error(
                Code::UnknownTag,
                format!("unknown tag `{tag}`; known tags: {}", known.join(", ")),
                span,
            );
            if let Some(h) = suggest(tag, known) {
                d = d.with_help(h);
            }
            self.diags.push(d);
            return self.value(node);
        };
        let names = kind.fields();
        let usage = match kind {
            ReferenceKind::Parameter | ReferenceKind::Secret => {
                format!("`{tag} name`, `{tag} [name]` or `{tag} {{name: n}}`")
            }
            ReferenceKind::Data => {
                format!("`{tag} query`, `{tag} [query]` or `{tag} {{query: q}}`")
            }
            _ => format!(
                "`{tag} [{}]` or `{tag} {{{}}}`",
                names.join(", "),
                names
                    .iter()
                    .map(|n| format!("{n}: …"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut fields: Vec<(&'static str, Value)> = Vec::with_capacity(names.len());
        match node.kind {
            NodeKind::Seq(items) => {
                if items.len() != names.len() {
                    self.error(
                        Code::TagArgument,
                        format!(
                            "`{tag}` takes {} list item{}, found {}; use {usage}",
                            names.len(),
                            if names.len() == 1 { "" } else { "s" },
                            items.len()
                        ),
                        span,
                    );
                }
                for (name, item) in names.iter().zip(items) {
                    fields.push((name, self.value(item)));
                }
            }
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    let key_span = k.span;
                    let key = k.into_key_text();
                    let key = if kind == ReferenceKind::Output && key == "taskName" {
                        "from".to_owned()
                    } else {
                        key
                    };
                    match names.iter().find(|n| **n == key) {
                        Some(name) => fields.push((name, self.value(v))),
                        None => {
                            let mut d = Diagnostic::error(
                                Code::TagArgument,
                                format!("`{tag}` has no field `{key}`; use {usage}"),
                                key_span,
                            );
                            if let Some(h) = suggest(&key, names.iter().copied()) {
                                d = d.with_help(h);
                            }
                            self.diags.push(d);
                        }
                    }
                }
                for name in names {
                    if !fields.iter().any(|(n, _)| n == name) {
                        self.error(
                            Code::TagArgument,
                            format!("`{tag}` needs `{name}`; use {usage}"),
                            span,
                        );
                    }
                }
                fields.sort_by_key(|(n, _)| names.iter().position(|x| x == n));
            }
            kind if names.len() == 1 => {
                let v = self.value(Node {
                    span,
                    tag: None,
                    kind,
                });
                if matches!(v.kind, ValueKind::Null) || v.as_str() == Some("") {
                    self.error(
                        Code::TagArgument,
                        format!("`{tag}` needs a {}; use {usage}", names[0]),
                        span,
                    );
                }
                fields.push((names[0], v));
            }
            _ => {
                self.error(
                    Code::TagArgument,
                    format!("`{tag}` does not take a single scalar; use {usage}"),
                    span,
                );
            }
        }
        Value::new(ValueKind::Reference { kind, fields }, span)
    }
}

/// A mapping, or an expression that evaluates to one when the step runs (`env: !Fn.merge [...]`).
fn is_mapping_or_expression(v: &Value) -> bool {
    match &v.kind {
        ValueKind::Object(_) | ValueKind::Null => true,
        ValueKind::Call { .. } | ValueKind::Reference { .. } => true,
        ValueKind::String(s) => s.contains("${"),
        _ => false,
    }
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
