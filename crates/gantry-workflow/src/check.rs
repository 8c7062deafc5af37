//! Cross-reference checks over a decoded workflow: names, dependencies, parameters, tags and
//! every `${...}` expression, each problem with the span of its exact source text.
//!
//! Produces the dependency edges (explicit `dependsOn` and implicit output and status
//! references) that the planner orders.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::rc::Rc;

use crate::diagnostic::{suggest, Code, Diagnostic, Span};
use crate::expr;
use crate::model::*;

/// Why one step waits for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// Listed in `dependsOn`.
    Explicit,
    /// The step reads the other's outputs or status.
    Implicit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Index of the waiting step.
    pub from: usize,
    /// Index of the step waited for.
    pub to: usize,
    pub kind: EdgeKind,
    pub span: Span,
}

const ROOTS: &[&str] = &[
    "parameters",
    "secrets",
    "connections",
    "outputs",
    "steps",
    "event",
];
const STATUS_PROPERTIES: &[&str] = &["succeeded", "failed", "skipped"];

/// The span of `inner` (byte offsets into the string `value`) in the source text, when the
/// scalar's text can be found there; otherwise the whole scalar.
pub(crate) fn locate(src: &str, span: Span, value: &str, inner: Range<usize>) -> Span {
    let Some(text) = src.get(span.range()) else {
        return span;
    };
    if text == value {
        return span.slice(inner);
    }
    if text.starts_with(['"', '\'']) && text.get(1..1 + value.len()) == Some(value) {
        return span.slice(inner.start + 1..inner.end + 1);
    }
    if let Some(piece) = value.get(inner.clone()) {
        if !piece.is_empty() {
            if let Some(at) = text.find(piece) {
                return span.slice(at..at + piece.len());
            }
        }
    }
    span
}

#[derive(Clone, Copy)]
enum Place<'a> {
    Step { index: usize, name: &'a str },
    Trigger,
}

/// What the checks need from one template text, computed once per distinct text: workflows
/// repeat the same `${parameters.x}` many times.
struct TemplateFacts {
    calls: Vec<expr::CallSite>,
    references: Vec<expr::PathRef>,
}

pub(crate) struct Checker<'a> {
    src: &'a str,
    templates: HashMap<&'a str, Rc<Result<TemplateFacts, expr::ParseError>>>,
    wf: &'a Workflow,
    steps: HashMap<&'a str, usize>,
    parameters: HashSet<&'a str>,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) edges: Vec<Edge>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(src: &'a str, wf: &'a Workflow) -> Self {
        Checker {
            src,
            templates: HashMap::new(),
            wf,
            steps: HashMap::with_capacity(wf.steps.len()),
            parameters: wf.parameters.iter().map(|p| p.name.as_str()).collect(),
            diags: Vec::new(),
            edges: Vec::new(),
        }
    }

    pub(crate) fn run(&mut self) {
        let wf = self.wf;
        if wf.steps.is_empty() && self.diags.is_empty() {
            // A missing `steps` key was already reported by the decoder.
        }
        for (i, step) in wf.steps.iter().enumerate() {
            if let Some(&first) = self.steps.get(step.name.as_str()) {
                self.diags.push(
                    Diagnostic::error(
                        Code::DuplicateStep,
                        format!("a step named `{}` already exists", step.name.value),
                        step.name.span,
                    )
                    .with_related(wf.steps[first].name.span, "first defined here"),
                );
            } else {
                self.steps.insert(step.name.as_str(), i);
            }
        }
        let mut triggers: HashMap<&str, Span> = HashMap::new();
        for t in &wf.triggers {
            if let Some(first) = triggers.insert(t.name.as_str(), t.name.span) {
                self.diags.push(
                    Diagnostic::error(
                        Code::DuplicateTrigger,
                        format!("a trigger named `{}` already exists", t.name.value),
                        t.name.span,
                    )
                    .with_related(first, "first defined here"),
                );
            }
        }
        for (i, step) in wf.steps.iter().enumerate() {
            if self.steps.get(step.name.as_str()) != Some(&i) {
                continue;
            }
            self.step(i, step);
        }
        for t in &wf.triggers {
            self.trigger(t);
        }
    }

    fn step(&mut self, index: usize, step: &'a Step) {
        let place = Place::Step {
            index,
            name: step.name.as_str(),
        };
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for dep in &step.depends_on {
            if let Some(first) = seen.insert(dep.as_str(), dep.span) {
                self.diags.push(
                    Diagnostic::warning(
                        Code::DuplicateDependency,
                        format!("`{}` is listed twice in `dependsOn`", dep.value),
                        dep.span,
                    )
                    .with_related(first, "first listed here"),
                );
                continue;
            }
            if dep.value == step.name.value {
                self.diags.push(Diagnostic::error(
                    Code::SelfDependency,
                    format!("step `{}` depends on itself", dep.value),
                    dep.span,
                ));
                continue;
            }
            if let Some(to) = self.step_index(&dep.value, dep.span) {
                self.edges.push(Edge {
                    from: index,
                    to,
                    kind: EdgeKind::Explicit,
                    span: dep.span,
                });
            }
        }
        if let Some(c) = step.container() {
            if let Some(spec) = &c.spec {
                self.value(spec, place);
            }
            if let Some(env) = &c.env {
                self.value(env, place);
            }
        }
        if let Some(when) = &step.when {
            self.when(when, place);
        }
    }

    fn trigger(&mut self, t: &'a Trigger) {
        if let TriggerSource::Webhook(c) = &t.source {
            if let Some(spec) = &c.spec {
                self.value(spec, Place::Trigger);
            }
            if let Some(env) = &c.env {
                self.value(env, Place::Trigger);
            }
        }
        if let Some(b) = &t.binding {
            for (name, value) in &b.parameters {
                if !self.parameters.contains(name.as_str()) {
                    self.undeclared_parameter(&name.value, name.span);
                }
                self.value(value, Place::Trigger);
            }
            if let Some(k) = &b.key {
                self.value(k, Place::Trigger);
            }
        }
        if let Some(w) = &t.when {
            self.when(w, Place::Trigger);
        }
    }

    fn when(&mut self, when: &'a When, place: Place<'a>) {
        for c in &when.conditions {
            let literal_ok = match &c.kind {
                ValueKind::Bool(_) | ValueKind::Reference { .. } | ValueKind::Call { .. } => true,
                ValueKind::String(s) => s.contains("${"),
                _ => false,
            };
            if !literal_ok {
                self.diags.push(
                    Diagnostic::error(
                        Code::InvalidType,
                        "a `when` condition must be a boolean or an expression",
                        c.span,
                    )
                    .with_help("write an expression such as `${parameters.env == 'production'}`"),
                );
            }
            self.value(c, place);
        }
    }

    fn step_index(&mut self, name: &str, span: Span) -> Option<usize> {
        if let Some(&i) = self.steps.get(name) {
            return Some(i);
        }
        let mut d = Diagnostic::error(Code::UnknownStep, format!("no step named `{name}`"), span);
        if let Some(h) = suggest(name, self.steps.keys().copied()) {
            d = d.with_help(h);
        }
        self.diags.push(d);
        None
    }

    fn undeclared_parameter(&mut self, name: &str, span: Span) {
        let mut d = Diagnostic::error(
            Code::UndeclaredParameter,
            format!("parameter `{name}` is not declared under `parameters`"),
            span,
        );
        d = match suggest(name, self.parameters.iter().copied()) {
            Some(h) => d.with_help(h),
            None => d.with_help(format!(
                "declare it: `parameters: {{{name}: {{description: ...}}}}`"
            )),
        };
        self.diags.push(d);
    }

    fn not_available(&mut self, what: &str, place: Place<'_>, span: Span) {
        let (here, hint) = match place {
            Place::Step { .. } => (
                "in a step",
                "event data reaches a run through a trigger's `binding.parameters`",
            ),
            Place::Trigger => (
                "in a trigger",
                "a trigger sees `event`, `secrets` and `connections`; a run's data exists only once it starts",
            ),
        };
        self.diags.push(
            Diagnostic::error(
                Code::RootNotAvailable,
                format!("{what} cannot be used {here}"),
                span,
            )
            .with_help(hint),
        );
    }

    /// A reference to another step's outputs or status, written with `root` (`outputs`,
    /// `steps` or `!Output`) and reading `what` of it.
    fn step_reference(
        &mut self,
        target: &str,
        place: Place<'_>,
        span: Span,
        root: &str,
        what: &str,
    ) {
        match place {
            Place::Trigger => self.not_available(&format!("`{root}`"), place, span),
            Place::Step { index, name } => {
                if target == name {
                    self.diags.push(Diagnostic::error(
                        Code::SelfDependency,
                        format!("step `{name}` reads its own {what}"),
                        span,
                    ));
                    return;
                }
                if let Some(to) = self.step_index(target, span) {
                    self.edges.push(Edge {
                        from: index,
                        to,
                        kind: EdgeKind::Implicit,
                        span,
                    });
                }
            }
        }
    }

    fn value(&mut self, value: &'a Value, place: Place<'a>) {
        value.walk(&mut |v| match &v.kind {
            ValueKind::String(s) if s.contains("${") => self.template(s, v.span, place),
            ValueKind::Reference { kind, .. } => self.reference(*kind, v, place),
            ValueKind::Call { name, args } => self.call(name, args),
            _ => {}
        });
    }

    fn reference(&mut self, kind: ReferenceKind, v: &Value, place: Place<'_>) {
        let static_field = |n: &str| v.field(n).and_then(|f| f.as_str().map(|s| (s, f.span)));
        match kind {
            ReferenceKind::Parameter => match place {
                Place::Trigger => self.not_available("`!Parameter`", place, v.span),
                Place::Step { .. } => {
                    if let Some((name, span)) = static_field("name") {
                        if !self.parameters.contains(name) {
                            self.undeclared_parameter(name, span);
                        }
                    }
                }
            },
            ReferenceKind::Output => {
                if let Some((from, span)) = static_field("from") {
                    self.step_reference(from, place, span, "!Output", "outputs");
                } else if let Place::Trigger = place {
                    self.not_available("`!Output`", place, v.span);
                }
            }
            ReferenceKind::Data => {
                if let Place::Step { .. } = place {
                    self.not_available("`!Data`", place, v.span);
                }
            }
            ReferenceKind::Answer => {
                if let Place::Trigger = place {
                    self.not_available("`!Answer`", place, v.span);
                }
            }
            ReferenceKind::Secret | ReferenceKind::Connection => {}
        }
    }

    fn call(&mut self, name: &Spanned<String>, args: &Args) {
        let span = name.span;
        if !expr::FUNCTIONS.contains(&name.as_str()) {
            self.unknown_function(&name.value, span);
            return;
        }
        if let Args::Positional(items) = args {
            self.arity(&name.value, items.len(), span);
        }
    }

    fn unknown_function(&mut self, name: &str, span: Span) {
        let mut d = Diagnostic::error(
            Code::UnknownFunction,
            format!(
                "unknown function `{name}`; known functions: {}",
                expr::FUNCTIONS.join(", ")
            ),
            span,
        );
        if let Some(h) = suggest(name, expr::FUNCTIONS.iter().copied()) {
            d = d.with_help(h);
        }
        self.diags.push(d);
    }

    fn arity(&mut self, name: &str, n: usize, span: Span) {
        let (min, max) = arity(name);
        if n < min || n > max {
            let expected = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            self.diags.push(Diagnostic::error(
                Code::FunctionArity,
                format!(
                    "`{name}` takes {expected} argument{}, found {n}",
                    if expected == "1" { "" } else { "s" }
                ),
                span,
            ));
        }
    }

    fn template(&mut self, s: &'a str, span: Span, place: Place<'_>) {
        let facts = match self.templates.get(s) {
            Some(f) => Rc::clone(f),
            None => {
                let facts = Rc::new(expr::parse_template(s).map(|t| TemplateFacts {
                    calls: expr::calls(&t),
                    references: expr::references(&t),
                }));
                self.templates.insert(s, Rc::clone(&facts));
                facts
            }
        };
        let facts = match &*facts {
            Ok(f) => f,
            Err(e) => {
                let at = locate(self.src, span, s, e.span.clone());
                self.diags.push(Diagnostic::error(
                    Code::ExpressionSyntax,
                    format!("invalid expression: {}", e.message),
                    at,
                ));
                return;
            }
        };
        for call in &facts.calls {
            let at = || locate(self.src, span, s, call.span.clone());
            if !expr::FUNCTIONS.contains(&call.name.as_str()) {
                self.unknown_function(&call.name, at());
            } else if let Some(n) = call.positional {
                self.arity(&call.name, n, at());
            }
        }
        for r in &facts.references {
            // Located only when needed: most references are fine and need no span.
            let src = self.src;
            let at = || locate(src, span, s, r.span.clone());
            let seg = |i: usize| r.segments.get(i).map(String::as_str);
            match seg(0) {
                Some("parameters") => match place {
                    Place::Trigger => self.not_available("`parameters`", place, at()),
                    Place::Step { .. } => {
                        if let Some(p) = seg(1) {
                            if !self.parameters.contains(p) {
                                self.undeclared_parameter(p, at());
                            }
                        }
                    }
                },
                Some("outputs") => match seg(1) {
                    Some(step) => self.step_reference(step, place, at(), "outputs", "outputs"),
                    None if matches!(place, Place::Trigger) => {
                        self.not_available("`outputs`", place, at())
                    }
                    None => {}
                },
                Some("steps") => match seg(1) {
                    Some(step) => {
                        self.step_reference(step, place, at(), "steps", "status");
                        if let Some(prop) = seg(2) {
                            if !STATUS_PROPERTIES.contains(&prop) {
                                let mut d = Diagnostic::error(
                                    Code::InvalidStatusProperty,
                                    format!(
                                        "`{prop}` is not a step status; use succeeded, failed or skipped"
                                    ),
                                    at(),
                                );
                                if let Some(h) = suggest(prop, STATUS_PROPERTIES.iter().copied()) {
                                    d = d.with_help(h);
                                }
                                self.diags.push(d);
                            }
                        }
                    }
                    None if matches!(place, Place::Trigger) => {
                        self.not_available("`steps`", place, at())
                    }
                    None => {}
                },
                Some("event") => {
                    if let Place::Step { .. } = place {
                        self.not_available("`event`", place, at());
                    }
                }
                Some("secrets" | "connections" | "$") | None => {}
                Some(other) => {
                    let mut d = Diagnostic::error(
                        Code::UnknownRoot,
                        format!(
                            "`{other}` is not defined; expressions start from {}",
                            ROOTS.join(", ")
                        ),
                        at(),
                    );
                    if let Some(h) = suggest(other, ROOTS.iter().copied()) {
                        d = d.with_help(h);
                    }
                    self.diags.push(d);
                }
            }
        }
    }
}

/// Positional arity of each function (Relay's fnlib rules).
fn arity(name: &str) -> (usize, usize) {
    match name {
        "append" => (2, usize::MAX),
        "convertMarkdown" | "equals" | "notEquals" => (2, 2),
        "exists" | "jsonMarshal" | "jsonUnmarshal" | "toString" => (1, 1),
        "now" => (0, 0),
        "path" => (2, 3),
        _ => (0, usize::MAX),
    }
}
