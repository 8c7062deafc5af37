//! What the metadata API (served to step and trigger containers) needs from a run.
//!
//! The HTTP layer (`gantry-server`) authenticates a request by its token, then asks this trait;
//! the engine's driver implements it over its live runs. Relay's paths, envelopes and status
//! codes live in the HTTP layer; the meaning lives here.

use serde_json::{Map, Value};

use gantry_workflow::expr::{Evaluation, WhenOutcome};

use crate::runtime::BoxFuture;

/// Who is calling: the step (or trigger) a token was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    pub run_id: String,
    /// The step's name, or the trigger's for a trigger container.
    pub name: String,
    pub kind: CallerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerKind {
    Step,
    Trigger,
}

/// An output as stored: its value and whether it is sensitive (masked in run records and logs).
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub value: Value,
    pub sensitive: bool,
}

/// A run started from a step (`POST /workflows/{name}/run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedRun {
    pub workflow: String,
    pub run_number: u64,
    pub app_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
}

pub trait MetadataBackend: Send + Sync {
    /// The caller a token belongs to, or `None` for an unknown or expired token.
    fn authenticate(&self, token: &str) -> Option<Caller>;

    /// The caller's own `spec`, evaluated against the run's data now.
    fn spec(&self, caller: &Caller) -> Result<Evaluation, MetadataError>;

    /// The caller's own `env`, evaluated now.
    fn environment(&self, caller: &Caller) -> Result<Evaluation, MetadataError>;

    /// The caller's `when`, with the implicit `dependsOn` conditions, evaluated now.
    fn conditions(&self, caller: &Caller) -> Result<WhenOutcome, MetadataError>;

    /// Sets (last write wins) an output of the caller's step.
    fn set_output(&self, caller: &Caller, name: &str, value: Value) -> Result<(), MetadataError>;

    /// Marks an output of the caller's step as sensitive (or not).
    fn set_output_sensitive(
        &self,
        caller: &Caller,
        name: &str,
        sensitive: bool,
    ) -> Result<(), MetadataError>;

    /// An output of a step of the caller's run.
    fn output(&self, caller: &Caller, step: &str, name: &str) -> Result<Output, MetadataError>;

    /// A secret the caller's spec or env refers to.
    fn secret(&self, caller: &Caller, name: &str) -> Result<String, MetadataError>;

    /// Run state kept for the caller (`approval` for an approval step).
    fn state(&self, caller: &Caller, name: &str) -> Result<Value, MetadataError>;

    /// A decorator on the caller's step: `{"type": "link", "description", "uri"}`.
    fn set_decorator(&self, caller: &Caller, name: &str, value: Value)
        -> Result<(), MetadataError>;

    /// What the caller's entrypoint reports (`PUT /status`); informational.
    fn report_status(&self, caller: &Caller, status: Value) -> Result<(), MetadataError>;

    /// A log line the caller sends through the API rather than its output streams.
    fn log(&self, caller: &Caller, line: String) -> Result<(), MetadataError>;

    /// An event from a trigger container (`POST /events`). Steps may not emit events.
    /// Asynchronous because the server answers only once the event is stored durably.
    fn emit_event<'a>(
        &'a self,
        caller: &'a Caller,
        data: Value,
        key: Option<String>,
    ) -> BoxFuture<'a, Result<(), MetadataError>>;

    /// Starts a run of another workflow (`POST /workflows/{name}/run`).
    fn run_workflow<'a>(
        &'a self,
        caller: &'a Caller,
        workflow: &'a str,
        parameters: Map<String, Value>,
    ) -> BoxFuture<'a, Result<StartedRun, MetadataError>>;
}
