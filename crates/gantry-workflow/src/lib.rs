//! Gantry's workflow language: reads Relay's `apiVersion: v1` workflow YAML unchanged.
//!
//! [`parse`] runs the whole pipeline on one file's text: YAML events → a tree with byte spans
//! (`yaml`), the typed model with tags rewritten to Gantry's canonical form (`decode`, `model`),
//! cross-reference and expression checks (`check`), and the step DAG (`plan`). It never panics
//! and never stops at the first problem: every diagnostic is collected, each with a stable code
//! and a span. [`expr`] holds the `${...}` template language, Relay's 13 functions and the
//! evaluator that turns a `spec`, `env`, `when` or `binding` into JSON. [`data`] reads data files
//! (YAML or JSON, many documents) into JSON values that keep their spans, for definition files.
//!
//! This crate does no I/O and knows nothing of HTTP, SQL or Docker. Everything here is plain
//! synchronous functions over data, safe to call from any thread.

mod check;
pub mod cron;
pub mod data;
mod decode;
pub mod diagnostic;
pub mod duration;
pub mod expr;
pub mod model;
pub mod plan;
mod yaml;

pub use check::{Edge, EdgeKind};
pub use data::{parse_data_documents, read_data_documents, DataDoc, PathSegment};
pub use diagnostic::{Code, Diagnostic, LineCol, LineIndex, Severity, Span};
pub use model::*;
pub use plan::{Plan, PlannedStep};

/// The result of reading one workflow file.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// As much of the workflow as could be read (possibly empty when the YAML is broken).
    pub workflow: Workflow,
    /// Every problem found, sorted by position; warnings included.
    pub diagnostics: Vec<Diagnostic>,
    /// The execution order; `None` when the dependencies could not be ordered or the file has errors.
    pub plan: Option<Plan>,
    /// Dependency edges between steps (explicit and implicit).
    pub edges: Vec<Edge>,
}

impl Parsed {
    /// True when no diagnostic is an error (warnings allowed).
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads, checks and plans one workflow file's text.
pub fn parse(src: &str) -> Parsed {
    let mut diagnostics = Vec::new();
    let root = yaml::load(src, &mut diagnostics);
    if root.is_none() && diagnostics.is_empty() {
        diagnostics.push(Diagnostic::error(
            Code::NoSteps,
            "the file is empty; a workflow needs at least `steps`",
            Span::new(0, 0),
        ));
    }
    let mut decoder = decode::Decoder::new(src);
    let workflow = decoder.workflow(root, src.len());
    diagnostics.append(&mut decoder.diags);
    let mut checker = check::Checker::new(src, &workflow);
    checker.run();
    diagnostics.append(&mut checker.diags);
    let edges = std::mem::take(&mut checker.edges);
    let plan = match plan::plan(&workflow, &edges) {
        Ok(p) => Some(p),
        Err(mut cycles) => {
            diagnostics.append(&mut cycles);
            None
        }
    };
    diagnostics.sort_by_key(|d| (d.span.start, d.severity, d.span.end));
    let plan = plan.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    Parsed {
        workflow,
        diagnostics,
        plan,
        edges,
    }
}

/// Reads a YAML or JSON data file (parameters, secrets, connections for local runs) into JSON.
/// Tags are not allowed here; problems come back as diagnostics with spans.
/// Only the first document is read; [`parse_data_documents`] reads them all, with spans.
pub fn parse_data(src: &str) -> Result<serde_json::Value, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let root = yaml::load(src, &mut diagnostics);
    let value = root.map(|n| yaml::to_json(n, &mut diagnostics));
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    Ok(value.unwrap_or(serde_json::Value::Null))
}
