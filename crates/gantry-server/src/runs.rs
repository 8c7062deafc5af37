//! Runs on the server: started from a stored workflow version, executed by the engine's driver
//! in this process, and recorded in the store as they go (run and step states, log lines,
//! outputs). The live runs are kept in a registry that also answers the metadata API for their
//! steps, by token.
//!
//! Concurrency: each run's driver is a tokio task; its events go through an unbounded channel
//! to one recorder task per run, so the engine's sink never waits on the database and the store
//! sees a run's changes in order. Every write of a run (its creation, state changes, log lines,
//! its end) goes through the server's group-commit `BatchWriter`, so runs share transactions
//! (and their fsyncs) with each other and with accepted events instead of paying one each.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use gantry_engine::clock::SystemClock;
use gantry_engine::driver::{DriverConfig, RunDriver, RunHandle};
use gantry_engine::metadata::{
    Caller, CallerKind, MetadataBackend, MetadataError, Output, StartedRun,
};
use gantry_engine::run::{Resumed, Run, RunConfig, RunOptions, RunRecord, StepSnapshot};
use gantry_engine::runtime::{BoxFuture, LogStream, StepRuntime};
use gantry_engine::secrets::SecretResolver;
use gantry_engine::sink::{RunEvent, RunSink, RunState, StepState};
use gantry_store::{
    BatchWriter, LogChunk, NewEvent, NewRun, RunOrigin, RunStatus, RunUpdate, SealedKind,
    SealedValue, StepChange, StepStatus, Store, Write,
};
use gantry_workflow::{ReferenceKind, ValueKind, Workflow};

use crate::vault::Vault;
use gantry_workflow::expr::{Evaluation, WhenOutcome};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

/// The trigger name manual runs with an idempotency key are recorded under.
pub const MANUAL_TRIGGER: &str = "manual";

/// What is called with a run's record once its end is stored.
pub(crate) type RunEnd = Box<dyn FnOnce(Arc<RunRecord>) + Send>;

/// Told of every run's end once it is stored (automations' `run.finished`).
pub(crate) type RunEnded = Arc<dyn Fn(&RunRecord) + Send + Sync>;

/// A run that `start_once` started, or found already started for the same delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub id: String,
    pub created: bool,
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no workflow named `{0}`")]
    NoWorkflow(String),
    #[error("{0}")]
    Invalid(String),
    /// The event already has its run (the store allows one per event).
    #[error("{0}")]
    AlreadyStarted(String),
    #[error("the store failed: {0}")]
    Store(String),
}

/// The sealed secrets and connections a run's workflow (or a trigger's container) names,
/// fetched when the run (or the container) starts and opened only when the engine asks for one
/// (to build a step's spec or env).
pub(crate) struct SealedSecrets {
    vault: Arc<Vault>,
    workflow: String,
    secrets: HashMap<String, SealedValue>,
    connections: HashMap<(String, String), SealedValue>,
}

impl SealedSecrets {
    fn open(&self, binding: &str, sealed: &SealedValue) -> Option<Vec<u8>> {
        let sealed = crate::vault::Sealed {
            key_id: sealed.key_id.clone(),
            nonce: sealed.nonce.clone(),
            ciphertext: sealed.ciphertext.clone(),
        };
        match self.vault.open(binding, &sealed) {
            Ok(plain) => Some(plain),
            Err(e) => {
                // Names only: never the value.
                tracing::error!(error = %e, binding, "a sealed value cannot be opened");
                None
            }
        }
    }
}

impl SecretResolver for SealedSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        let sealed = self.secrets.get(name)?;
        let plain = self.open(&secret_binding(&self.workflow, name), sealed)?;
        String::from_utf8(plain).ok()
    }

    fn connection(&self, type_: &str, name: &str) -> Option<Value> {
        let sealed = self.connections.get(&(type_.to_owned(), name.to_owned()))?;
        let plain = self.open(&connection_binding(type_, name), sealed)?;
        serde_json::from_slice(&plain).ok()
    }
}

/// Where a workflow's secret is sealed for (its associated data).
pub fn secret_binding(workflow: &str, name: &str) -> String {
    format!("secret/{workflow}/{name}")
}

/// Where a connection is sealed for.
pub fn connection_binding(type_: &str, name: &str) -> String {
    format!("connection/{type_}/{name}")
}

/// The values of a workflow's steps that may name secrets and connections: specs, envs, `when`s.
fn step_values(wf: &Workflow) -> Vec<&gantry_workflow::Value> {
    let mut values: Vec<&gantry_workflow::Value> = Vec::new();
    for step in &wf.steps {
        if let Some(c) = step.container() {
            values.extend(c.spec.iter().chain(&c.env));
        }
        if let Some(w) = &step.when {
            values.extend(&w.conditions);
        }
    }
    values
}

/// The secrets and connections `values` name statically (tags with literal names,
/// `${secrets.x}`, `${connections.t.n}`). A name computed at run time is not found.
fn referenced<'v>(
    values: impl IntoIterator<Item = &'v gantry_workflow::Value>,
) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let mut secrets = BTreeSet::new();
    let mut connections = BTreeSet::new();
    for v in values {
        v.walk(&mut |v| match &v.kind {
            ValueKind::Reference {
                kind: ReferenceKind::Secret,
                ..
            } => {
                if let Some(name) = v.field("name").and_then(|n| n.as_str()) {
                    secrets.insert(name.to_owned());
                }
            }
            ValueKind::Reference {
                kind: ReferenceKind::Connection,
                ..
            } => {
                let field = |f: &str| v.field(f).and_then(|n| n.as_str()).map(str::to_owned);
                if let (Some(t), Some(n)) = (field("type"), field("name")) {
                    connections.insert((t, n));
                }
            }
            ValueKind::String(s) if s.contains("${") => {
                if let Ok(t) = gantry_workflow::expr::parse_template(s) {
                    for r in gantry_workflow::expr::references(&t) {
                        match r.segments.as_slice() {
                            [root, name, ..] if root == "secrets" => {
                                secrets.insert(name.clone());
                            }
                            [root, t, n, ..] if root == "connections" => {
                                connections.insert((t.clone(), n.clone()));
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        });
    }
    (secrets, connections)
}

/// What a webhook trigger's container reads through the metadata API: its `spec` and `env`,
/// evaluated (secrets and connections resolved) when the container started. Parameters do not
/// exist for a trigger (as in Relay), so a reference to one stays unresolved.
pub struct TriggerView {
    pub workflow: String,
    pub trigger: String,
    pub spec: Evaluation,
    pub env: Evaluation,
    /// The secrets its spec or env names that exist, by name: all `GET /secrets/{name}` returns.
    pub secrets: std::collections::BTreeMap<String, String>,
    /// What log lines it sends through the API are masked with.
    pub masks: Vec<String>,
}

impl TriggerView {
    /// Whether its spec or env names secret `name` (whether or not the secret exists).
    fn refers_to_secret(&self, name: &str) -> bool {
        self.secrets.contains_key(name)
            || [&self.spec, &self.env]
                .iter()
                .any(|e| e.unresolved.secrets.iter().any(|s| s.name == name))
    }
}

/// The live runs, by id, and the tokens of running trigger containers; answers the metadata
/// API for both.
#[derive(Default)]
pub struct Registry {
    runs: Mutex<HashMap<String, RunHandle>>,
    /// Token → what a running webhook trigger container may read.
    trigger_tokens: Mutex<HashMap<String, Arc<TriggerView>>>,
    /// Where trigger containers' events go (set once the trigger service exists).
    intake: std::sync::OnceLock<Arc<crate::triggers::TriggerService>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunHandle>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, run_id: &str) -> Option<RunHandle> {
        self.lock().get(run_id).cloned()
    }

    /// Sets where trigger containers' events go; later calls change nothing.
    pub fn set_intake(&self, intake: Arc<crate::triggers::TriggerService>) {
        let _ = self.intake.set(intake);
    }

    fn trigger_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TriggerView>>> {
        self.trigger_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a trigger container with `token` call the metadata API as `view`'s trigger.
    pub fn add_trigger_token(&self, token: String, view: Arc<TriggerView>) {
        self.trigger_tokens().insert(token, view);
    }

    pub fn remove_trigger_token(&self, token: &str) {
        self.trigger_tokens().remove(token);
    }

    /// The run of a step caller. A trigger container has no run.
    fn of(&self, caller: &Caller) -> Result<RunHandle, MetadataError> {
        if caller.kind == CallerKind::Trigger {
            return Err(MetadataError::Forbidden(
                "a trigger container has no run: it may read its spec, environment and \
                 secrets, and emit events"
                    .into(),
            ));
        }
        self.get(&caller.run_id)
            .ok_or_else(|| MetadataError::NotFound("this run has ended".into()))
    }

    /// What a trigger caller may read; `None` for a step caller.
    fn trigger_view(&self, caller: &Caller) -> Result<Option<Arc<TriggerView>>, MetadataError> {
        if caller.kind != CallerKind::Trigger {
            return Ok(None);
        }
        self.trigger_tokens()
            .values()
            .find(|v| v.workflow == caller.run_id && v.trigger == caller.name)
            .cloned()
            .map(Some)
            .ok_or_else(|| MetadataError::NotFound("this trigger's container has stopped".into()))
    }
}

impl MetadataBackend for Registry {
    fn authenticate(&self, token: &str) -> Option<Caller> {
        if let Some(view) = self.trigger_tokens().get(token).cloned() {
            // For a trigger container, `run_id` carries its workflow's name.
            return Some(Caller {
                run_id: view.workflow.clone(),
                name: view.trigger.clone(),
                kind: CallerKind::Trigger,
            });
        }
        let handles: Vec<RunHandle> = self.lock().values().cloned().collect();
        handles.iter().find_map(|h| h.authenticate(token))
    }

    fn spec(&self, caller: &Caller) -> Result<Evaluation, MetadataError> {
        match self.trigger_view(caller)? {
            Some(view) => Ok(view.spec.clone()),
            None => self.of(caller)?.spec(caller),
        }
    }

    fn environment(&self, caller: &Caller) -> Result<Evaluation, MetadataError> {
        match self.trigger_view(caller)? {
            Some(view) => Ok(view.env.clone()),
            None => self.of(caller)?.environment(caller),
        }
    }

    fn conditions(&self, caller: &Caller) -> Result<WhenOutcome, MetadataError> {
        // A trigger's container has no conditions of its own: it always runs.
        match self.trigger_view(caller)? {
            Some(_) => Ok(WhenOutcome::Satisfied),
            None => self.of(caller)?.conditions(caller),
        }
    }

    fn set_output(&self, caller: &Caller, name: &str, value: Value) -> Result<(), MetadataError> {
        self.of(caller)?.set_output(caller, name, value)
    }

    fn set_output_sensitive(
        &self,
        caller: &Caller,
        name: &str,
        sensitive: bool,
    ) -> Result<(), MetadataError> {
        self.of(caller)?
            .set_output_sensitive(caller, name, sensitive)
    }

    fn output(&self, caller: &Caller, step: &str, name: &str) -> Result<Output, MetadataError> {
        self.of(caller)?.output(caller, step, name)
    }

    fn secret(&self, caller: &Caller, name: &str) -> Result<String, MetadataError> {
        let Some(view) = self.trigger_view(caller)? else {
            return self.of(caller)?.secret(caller, name);
        };
        if let Some(value) = view.secrets.get(name) {
            return Ok(value.clone());
        }
        if view.refers_to_secret(name) {
            return Err(MetadataError::NotFound(format!(
                "secret `{name}` does not exist"
            )));
        }
        Err(MetadataError::Forbidden(format!(
            "trigger `{}` does not refer to secret `{name}` in its spec or env",
            view.trigger
        )))
    }

    fn state(&self, caller: &Caller, name: &str) -> Result<Value, MetadataError> {
        self.of(caller)?.state(caller, name)
    }

    fn set_decorator(
        &self,
        caller: &Caller,
        name: &str,
        value: Value,
    ) -> Result<(), MetadataError> {
        self.of(caller)?.set_decorator(caller, name, value)
    }

    fn report_status(&self, caller: &Caller, status: Value) -> Result<(), MetadataError> {
        match self.trigger_view(caller)? {
            // Informational for steps too; a trigger's container has no step to report on.
            Some(_) => Ok(()),
            None => self.of(caller)?.report_status(caller, status),
        }
    }

    fn log(&self, caller: &Caller, line: String) -> Result<(), MetadataError> {
        let Some(view) = self.trigger_view(caller)? else {
            return self.of(caller)?.log(caller, line);
        };
        let line = gantry_engine::run::mask_line(&line, &view.masks);
        tracing::info!(workflow = %view.workflow, trigger = %view.trigger, "{line}");
        Ok(())
    }

    fn emit_event<'a>(
        &'a self,
        caller: &'a Caller,
        data: Value,
        key: Option<String>,
    ) -> BoxFuture<'a, Result<(), MetadataError>> {
        Box::pin(async move {
            if caller.kind != CallerKind::Trigger {
                return Err(MetadataError::Forbidden(
                    "steps may not emit events; only trigger containers may".into(),
                ));
            }
            let Some(intake) = self.intake.get() else {
                return Err(MetadataError::Unavailable(
                    "events are not accepted yet".into(),
                ));
            };
            let Value::Object(data) = data else {
                return Err(MetadataError::Invalid(
                    "`data` must be a JSON object".into(),
                ));
            };
            let delivery = crate::triggers::Delivery {
                data,
                key,
                idempotency_key: None,
            };
            // For a trigger container, the caller's `run_id` is its workflow's name.
            intake
                .accept(
                    &caller.run_id,
                    &caller.name,
                    crate::triggers::Door::Container,
                    delivery,
                    Utc::now(),
                )
                .await
                .map(|_| ())
                .map_err(|e| match e {
                    crate::triggers::TriggerError::Invalid { message, .. } => {
                        MetadataError::Invalid(message)
                    }
                    crate::triggers::TriggerError::Store(reason) => {
                        tracing::error!(%reason, "an event from a trigger container was not stored");
                        MetadataError::Unavailable("the event could not be stored".into())
                    }
                    other => MetadataError::NotFound(other.to_string()),
                })
        })
    }

    fn run_workflow<'a>(
        &'a self,
        _caller: &'a Caller,
        _workflow: &'a str,
        _parameters: Map<String, Value>,
    ) -> BoxFuture<'a, Result<StartedRun, MetadataError>> {
        Box::pin(async {
            Err(MetadataError::Unavailable(
                "starting a workflow from a step is not supported yet".into(),
            ))
        })
    }
}

/// What `RunService::recover` did with the runs a stop cut off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Driven again: they wait for their agents' steps.
    pub resumed: usize,
    pub failed: usize,
}

impl crate::queue::RunMasks for Registry {
    fn masks(&self, run_id: &str) -> Option<Vec<String>> {
        self.get(run_id).map(|h| h.masks())
    }
}

/// What the recorder of a run receives.
enum Note {
    Event(RunEvent),
    /// Answered once every note before it is in the store.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Forwards the engine's events to the run's recorder without blocking.
struct ChannelSink(mpsc::UnboundedSender<Note>);

impl RunSink for ChannelSink {
    fn event(&self, event: RunEvent) {
        // A closed channel means the recorder is gone; the run record is then written at the end.
        let _ = self.0.send(Note::Event(event));
    }
}

pub fn run_status(state: RunState) -> RunStatus {
    match state {
        RunState::Running => RunStatus::Running,
        RunState::Succeeded => RunStatus::Succeeded,
        RunState::Failed => RunStatus::Failed,
        RunState::Cancelled => RunStatus::Cancelled,
        RunState::TimedOut => RunStatus::TimedOut,
    }
}

fn step_state(status: StepStatus) -> StepState {
    match status {
        StepStatus::Pending => StepState::Pending,
        StepStatus::Waiting => StepState::Waiting,
        StepStatus::Running => StepState::Running,
        StepStatus::Succeeded => StepState::Succeeded,
        StepStatus::Failed => StepState::Failed,
        StepStatus::Skipped => StepState::Skipped,
        StepStatus::Cancelled => StepState::Cancelled,
    }
}

fn step_status(state: StepState) -> StepStatus {
    match state {
        StepState::Pending => StepStatus::Pending,
        StepState::Waiting => StepStatus::Waiting,
        StepState::Running => StepStatus::Running,
        StepState::Succeeded => StepStatus::Succeeded,
        StepState::Failed => StepStatus::Failed,
        StepState::Skipped => StepStatus::Skipped,
        StepState::Cancelled => StepStatus::Cancelled,
    }
}

/// A workflow's current version, parsed once for every run and event that uses it.
pub(crate) struct Loaded {
    pub version: i64,
    pub workflow: Arc<Workflow>,
    /// `None` when this version no longer validates.
    pub plan: Option<gantry_workflow::Plan>,
}

/// Starts and tracks the server's runs.
pub struct RunService {
    store: Arc<dyn Store>,
    /// Group commit for every write of a run.
    writes: BatchWriter,
    vault: Arc<Vault>,
    runtime: Arc<dyn StepRuntime>,
    work_root: PathBuf,
    metadata_port: Option<u16>,
    registry: Arc<Registry>,
    /// Where runs execute (see `crate::workers`).
    workers: tokio::runtime::Handle,
    /// Parsed workflows by name.
    parsed: crate::cache::BriefCache<Arc<Loaded>>,
    ended: Arc<std::sync::OnceLock<RunEnded>>,
}

impl RunService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        writes: BatchWriter,
        vault: Arc<Vault>,
        runtime: Arc<dyn StepRuntime>,
        work_root: PathBuf,
        metadata_port: Option<u16>,
        registry: Arc<Registry>,
        workers: tokio::runtime::Handle,
    ) -> Self {
        RunService {
            store,
            writes,
            vault,
            runtime,
            work_root,
            metadata_port,
            registry,
            workers,
            parsed: crate::cache::BriefCache::new(),
            ended: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Tells `ended` of every run's end from now on (once stored; set once).
    pub(crate) fn on_end(&self, ended: RunEnded) {
        let _ = self.ended.set(ended);
    }

    /// Forgets the parsed copy of `workflow` (it was applied or deleted).
    pub(crate) fn forget(&self, workflow: &str) {
        self.parsed.remove(workflow);
    }

    /// The current version of `name`, parsed (cached briefly; a store miss is not cached).
    pub(crate) async fn loaded(&self, name: &str) -> Result<Arc<Loaded>, StartError> {
        if let Some(hit) = self.parsed.get(name) {
            return Ok(hit);
        }
        let stored = match self.store.get_workflow(name).await {
            Ok(w) => w,
            Err(gantry_store::StoreError::NotFound(_)) => {
                self.forget(name);
                return Err(StartError::NoWorkflow(name.to_owned()));
            }
            Err(e) => return Err(StartError::Store(e.to_string())),
        };
        let parsed = gantry_workflow::parse(&stored.yaml);
        let loaded = Arc::new(Loaded {
            version: stored.version,
            workflow: Arc::new(parsed.workflow),
            plan: parsed.plan,
        });
        self.parsed.insert(name, loaded.clone());
        Ok(loaded)
    }

    /// Runs `task` where runs execute.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.workers.spawn(task);
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Starts a run of the current version of `workflow`; returns its id once it is stored.
    ///
    /// With an idempotency key, the request is first accepted durably as an event; a repeated
    /// delivery with the same key returns the first run (`created: false`) instead of starting
    /// a second, also when the two race.
    pub async fn start_once(
        &self,
        workflow: &str,
        parameters: Map<String, Value>,
        idempotency_key: Option<String>,
        audit: gantry_store::Audit,
    ) -> Result<Started, StartError> {
        let Some(key) = idempotency_key else {
            let id = self
                .start(workflow, parameters, RunOrigin::Manual, audit)
                .await?;
            return Ok(Started { id, created: true });
        };
        let store_error = |e: gantry_store::StoreError| StartError::Store(e.to_string());
        // No event is accepted for a workflow that does not exist (the parsed copy the run
        // then starts from is read here once).
        self.loaded(workflow).await?;
        let event_id = gantry_store::new_id().map_err(store_error)?;
        let inserted = self
            .store
            .insert_event(&NewEvent {
                id: event_id,
                workflow: workflow.to_owned(),
                trigger: MANUAL_TRIGGER.to_owned(),
                key: None,
                idempotency_key: Some(key),
                data: serde_json::json!({"parameters": parameters}),
                received_at: Utc::now(),
            })
            .await
            .map_err(store_error)?;
        if let Some(run) = inserted.event.run_id {
            return Ok(Started {
                id: run,
                created: false,
            });
        }
        let event = inserted.event.id.clone();
        match self
            .start(workflow, parameters, RunOrigin::Event(event.clone()), audit)
            .await
        {
            Ok(id) => Ok(Started { id, created: true }),
            // Another delivery of the same event may have created its run first (the store
            // allows one run per event); then that run is the answer.
            Err(StartError::AlreadyStarted(reason)) => {
                let again = self.store.get_event(&event).await.map_err(store_error)?;
                again
                    .run_id
                    .map(|id| Started { id, created: false })
                    .ok_or(StartError::Store(reason))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn start(
        &self,
        workflow: &str,
        parameters: Map<String, Value>,
        origin: RunOrigin,
        audit: gantry_store::Audit,
    ) -> Result<String, StartError> {
        self.start_then(workflow, parameters, origin, audit, None)
            .await
    }

    /// Starts a run like `start`; `then` is called with the run's record once its end is
    /// stored (an action run waits for its workflow run this way).
    pub(crate) async fn start_then(
        &self,
        workflow: &str,
        parameters: Map<String, Value>,
        origin: RunOrigin,
        audit: gantry_store::Audit,
        then: Option<RunEnd>,
    ) -> Result<String, StartError> {
        let loaded = self.loaded(workflow).await?;
        let plan = loaded.plan.clone().ok_or_else(|| {
            StartError::Invalid(format!(
                "version {} of `{workflow}` no longer validates",
                loaded.version
            ))
        })?;
        let run_id = gantry_store::new_id().map_err(|e| StartError::Store(e.to_string()))?;
        let secrets = self.sealed_for(workflow, &loaded.workflow).await?;
        let run = Run::new(RunConfig {
            run_id: run_id.clone(),
            workflow_name: workflow.to_owned(),
            workflow: loaded.workflow.clone(),
            plan,
            parameters: parameters.clone(),
            secrets: Arc::new(secrets),
            options: RunOptions::default(),
        })
        .map_err(|e| StartError::Invalid(e.to_string()))?;
        let now = Utc::now();
        self.writes
            .create_run(NewRun {
                id: run_id.clone(),
                workflow: workflow.to_owned(),
                workflow_version: loaded.version,
                parameters: Value::Object(parameters),
                origin,
                created_at: now,
                audit,
            })
            .await
            .map_err(|e| match e {
                gantry_store::StoreError::Conflict(m) => StartError::AlreadyStarted(m),
                e => StartError::Store(e.to_string()),
            })?;
        self.drive(run, HashMap::new(), then)
            .map_err(|e| StartError::Store(format!("cannot create the run's folder: {e}")))?;
        Ok(run_id)
    }

    /// Drives `run` to its end on the workers, recording it as it goes: registered for the
    /// metadata API before this returns. `seq` is where the recorder's line numbers per step
    /// and stream start (empty for a new run). `then` is called with its record once its end
    /// is stored.
    fn drive(
        &self,
        run: Run,
        seq: HashMap<(String, &'static str), i64>,
        then: Option<RunEnd>,
    ) -> std::io::Result<()> {
        let run_id = run.id().to_owned();
        let work_dir = self.work_root.join(&run_id);
        let scratch = work_dir.clone();
        create_private_dir(&work_dir)?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (driver, handle) = RunDriver::new(DriverConfig {
            run,
            runtime: self.runtime.clone(),
            clock: Arc::new(SystemClock),
            sink: Arc::new(ChannelSink(events_tx.clone())),
            work_dir: work_dir.clone(),
            workflow_dir: work_dir,
            metadata_port: self.metadata_port,
        });
        self.registry.lock().insert(run_id.clone(), handle);
        let store = self.store.clone();
        let writes = self.writes.clone();
        let registry = self.registry.clone();
        let id = run_id.clone();
        let ended = self.ended.clone();
        self.workers.spawn(async move {
            tokio::spawn(record(writes.clone(), id.clone(), events_rx, seq));
            let record_of_run = driver.run().await;
            // Everything the run reported is stored before its end is.
            let (flushed_tx, flushed) = tokio::sync::oneshot::channel();
            if events_tx.send(Note::Flush(flushed_tx)).is_ok() {
                let _ = flushed.await;
            }
            finish(store.as_ref(), &writes, &record_of_run).await;
            // Dropping the last handle closes the channel and ends the recorder.
            registry.lock().remove(&id);
            if let Some(ended) = ended.get() {
                ended(&record_of_run);
            }
            if let Some(then) = then {
                then(Arc::new(record_of_run));
            }
            // Outputs are stored; the scratch folder (spec files with secret values) goes.
            remove_scratch(scratch).await;
        });
        Ok(())
    }
}

impl RunService {
    /// After a restart: every run the store still shows queued or running was cut off by the
    /// stop (runs live in this process). A run with a step still open on an agent (its job of
    /// an agents' pool neither ended nor taken by another worker) is resumed: its driver
    /// starts again from what was recorded, waits for that job again (the agent kept running
    /// it), and goes on (see `resume`). Any other such run fails with Gantry's rule: its
    /// unfinished steps fail with the reason, its jobs still in the queue are abandoned, and
    /// whatever its steps left behind (containers, by label) is removed. Returns how many runs
    /// were resumed and how many failed.
    pub async fn recover(
        &self,
        queue: &crate::queue::QueuedRuntime,
    ) -> Result<Recovered, gantry_store::StoreError> {
        let mut cut_off = self.store.runs_in_status(RunStatus::Running).await?;
        cut_off.extend(self.store.runs_in_status(RunStatus::Queued).await?);
        let mut recovered = Recovered::default();
        for summary in &cut_off {
            let run = self.store.get_run(&summary.id).await?;
            let jobs = self.store.run_jobs(&summary.id).await?;
            let remote: Vec<&gantry_store::Job> = jobs
                .iter()
                .filter(|j| j.completed_at.is_none() && queue.is_agent_pool(&j.pool))
                .collect();
            if !remote.is_empty() {
                match self.resume(&run, &remote, queue).await {
                    Ok(true) => {
                        recovered.resumed += 1;
                        tracing::info!(run = %summary.id, "run resumed after a restart: it waits for its agents' steps again");
                        continue;
                    }
                    Ok(false) => {}
                    Err(reason) => {
                        tracing::warn!(run = %summary.id, %reason, "a run cut off by a stop cannot be resumed");
                    }
                }
            }
            self.fail_cut_off(&run).await?;
            recovered.failed += 1;
        }
        Ok(recovered)
    }

    /// Resumes a run cut off by a stop whose `jobs` (open, of agents' pools) may still be
    /// running on agents. `Ok(false)` when none of them can be taken over (the run then
    /// fails); an error names why the run cannot be rebuilt.
    async fn resume(
        &self,
        stored: &gantry_store::Run,
        jobs: &[&gantry_store::Job],
        queue: &crate::queue::QueuedRuntime,
    ) -> Result<bool, String> {
        let summary = &stored.summary;
        let version = self
            .store
            .get_workflow_version(&summary.workflow, summary.workflow_version)
            .await
            .map_err(|e| e.to_string())?;
        let parsed = gantry_workflow::parse(&version.yaml);
        let plan = parsed
            .plan
            .ok_or_else(|| format!("version {} no longer validates", summary.workflow_version))?;
        let workflow = parsed.workflow;
        let secrets = sealed_secrets(
            self.store.as_ref(),
            &self.vault,
            &summary.workflow,
            step_values(&workflow),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut run = Run::new(RunConfig {
            run_id: summary.id.clone(),
            workflow_name: summary.workflow.clone(),
            workflow: Arc::new(workflow),
            plan,
            parameters: summary.parameters.as_object().cloned().unwrap_or_default(),
            secrets: Arc::new(secrets),
            options: RunOptions::default(),
        })
        .map_err(|e| e.to_string())?;
        // The recorder's own numbers go on from the last stored; agents' lines have theirs.
        let local = self
            .store
            .last_log_seqs(
                &summary.id,
                0,
                crate::queue::agent_line_seq(1, 0).unwrap_or(i64::MAX),
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut still_running = BTreeSet::new();
        let mut since = HashMap::new();
        for job in jobs {
            if queue.adopt(job).await {
                since.insert(job.step.clone(), job.available_at);
                still_running.insert(job.step.clone());
            }
        }
        if still_running.is_empty() {
            return Ok(false);
        }
        let mut steps: Vec<StepSnapshot> = stored
            .steps
            .iter()
            .map(|s| StepSnapshot {
                step: s.step.clone(),
                state: step_state(s.state),
                reason: s.reason.clone(),
                started_at: s.started_at,
                ended_at: s.ended_at,
                exit_code: s.exit_code,
            })
            .collect();
        // A job is enqueued behind the step's `running` record: it may have committed alone.
        for (step, at) in since {
            match steps.iter_mut().find(|s| s.step == step) {
                Some(s) => {
                    s.state = StepState::Running;
                    s.started_at.get_or_insert(at);
                }
                None => steps.push(StepSnapshot {
                    step,
                    state: StepState::Running,
                    reason: None,
                    started_at: Some(at),
                    ended_at: None,
                    exit_code: None,
                }),
            }
        }
        run.resume(
            Resumed {
                started_at: summary.started_at,
                steps,
                outputs: stored
                    .outputs
                    .iter()
                    .map(|o| (o.step.clone(), o.name.clone(), o.value.clone(), o.sensitive))
                    .collect(),
                still_running,
            },
            Utc::now(),
        );
        let seq = local
            .into_iter()
            .filter_map(|m| {
                let stream = match m.stream.as_str() {
                    "stdout" => LogStream::Stdout.as_str(),
                    "stderr" => LogStream::Stderr.as_str(),
                    _ => return None,
                };
                Some(((m.step, stream), m.seq))
            })
            .collect();
        self.drive(run, seq, None).map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// Fails a run a stop cut off (see `recover`).
    async fn fail_cut_off(&self, run: &gantry_store::Run) -> Result<(), gantry_store::StoreError> {
        let summary = &run.summary;
        let reason = "the server stopped while this run was in progress";
        let now = Utc::now();
        for step in run.steps.iter().filter(|s| {
            matches!(
                s.state,
                StepStatus::Running | StepStatus::Pending | StepStatus::Waiting
            )
        }) {
            self.store
                .record_step(
                    &summary.id,
                    &StepChange {
                        step: step.step.clone(),
                        state: StepStatus::Failed,
                        reason: Some(reason.into()),
                        started_at: None,
                        ended_at: Some(now),
                        exit_code: None,
                        at: now,
                    },
                )
                .await?;
        }
        self.store
            .update_run(
                &summary.id,
                &RunUpdate {
                    status: RunStatus::Failed,
                    reason: Some(reason.into()),
                    started_at: None,
                    ended_at: Some(now),
                },
            )
            .await?;
        // Its steps still in the job queue are no one's any more.
        let abandoned = serde_json::json!({ "abandoned": reason });
        self.store
            .abandon_jobs(&summary.id, &abandoned, now)
            .await?;
        remove_scratch(self.work_root.join(&summary.id)).await;
        match self.runtime.clean_up(Some(&summary.id)).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(run = %summary.id, removed = n, "removed what a cut-off run left")
            }
            Err(e) => {
                tracing::warn!(run = %summary.id, error = %e, "could not clean up a cut-off run")
            }
        }
        tracing::warn!(run = %summary.id, "run cut off by a stop marked failed");
        Ok(())
    }

    /// Fetches (still sealed) the secrets and connections the workflow's steps name.
    async fn sealed_for(&self, name: &str, wf: &Workflow) -> Result<SealedSecrets, StartError> {
        sealed_secrets(self.store.as_ref(), &self.vault, name, step_values(wf))
            .await
            .map_err(|e| StartError::Store(e.to_string()))
    }
}

/// Fetches (still sealed) the secrets of `workflow` and the connections that `values` name.
pub(crate) async fn sealed_secrets<'v>(
    store: &dyn Store,
    vault: &Arc<Vault>,
    workflow: &str,
    values: impl IntoIterator<Item = &'v gantry_workflow::Value>,
) -> Result<SealedSecrets, gantry_store::StoreError> {
    let (secret_names, connection_names) = referenced(values);
    let mut secrets = HashMap::new();
    for s in secret_names {
        match store.get_sealed(SealedKind::Secret, workflow, &s).await {
            Ok(v) => {
                secrets.insert(s, v);
            }
            Err(gantry_store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut connections = HashMap::new();
    for (t, n) in connection_names {
        match store.get_sealed(SealedKind::Connection, &t, &n).await {
            Ok(v) => {
                connections.insert((t, n), v);
            }
            Err(gantry_store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(SealedSecrets {
        vault: vault.clone(),
        workflow: workflow.to_owned(),
        secrets,
        connections,
    })
}

/// Creates a run's folder readable by its owner only (spec.json files hold secret values), in
/// one call: the mode is given at creation.
#[cfg(unix)]
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

/// Removes a run's scratch folder, off the async threads; a folder already gone is fine. Two
/// removals at a time: a thousand runs ending together would otherwise each start a blocking
/// thread (perf showed thread creation beside the removals themselves).
async fn remove_scratch(dir: PathBuf) {
    static REMOVING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let Ok(_slot) = REMOVING.acquire().await else {
        return;
    };
    let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err((dir, e)),
        _ => Ok(()),
    })
    .await;
    if let Ok(Err((dir, e))) = removed {
        tracing::warn!(folder = %dir.display(), error = %e, "could not remove a run's scratch folder");
    }
}

/// Writes a run's events to the store in order: everything that arrived together is queued on
/// the group-commit writer in one go (it keeps the order), and a flush is answered once
/// everything before it is committed.
async fn record(
    writes: BatchWriter,
    run_id: String,
    mut events: mpsc::UnboundedReceiver<Note>,
    mut seq: HashMap<(String, &'static str), i64>,
) {
    while let Some(first) = events.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = events.try_recv() {
            batch.push(more);
        }
        let mut queued = Vec::new();
        let mut flushes = Vec::new();
        for note in batch {
            let event = match note {
                Note::Event(e) => e,
                Note::Flush(done) => {
                    flushes.push(done);
                    continue;
                }
            };
            if let RunEvent::Log {
                step,
                stream,
                line,
                at,
            } = event
            {
                let n = seq.entry((step.clone(), stream.as_str())).or_insert(0);
                *n += 1;
                queued.push(Write::Log(LogChunk {
                    run_id: run_id.clone(),
                    step,
                    stream: stream.as_str().to_owned(),
                    seq: *n,
                    bytes: format!("{line}\n").into_bytes(),
                    at,
                }));
            } else if let Some(write) = state_change(&run_id, event) {
                queued.push(write);
            }
        }
        if !queued.is_empty() {
            if let Err(e) = writes.write_in_order(queued).await {
                tracing::error!(error = %e, run = run_id, "could not record a run's changes");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// The write a state change makes, if any.
fn state_change(run_id: &str, event: RunEvent) -> Option<Write> {
    match event {
        // The end of a run is written by `finish`, after its steps and outputs, so a reader
        // that sees a final status also sees everything the run recorded.
        RunEvent::RunChanged { state, .. } if state.is_final() => None,
        RunEvent::RunChanged { state, reason, at } => Some(Write::RunUpdate(
            run_id.to_owned(),
            RunUpdate {
                status: run_status(state),
                reason,
                started_at: (state == RunState::Running).then_some(at),
                ended_at: state.is_final().then_some(at),
            },
        )),
        RunEvent::StepChanged {
            step,
            state,
            reason,
            at,
        } => Some(Write::Step(
            run_id.to_owned(),
            StepChange {
                step,
                state: step_status(state),
                reason,
                started_at: (state == StepState::Running).then_some(at),
                ended_at: state.is_final().then_some(at),
                exit_code: None,
                at,
            },
        )),
        RunEvent::Log { .. } => None,
    }
}

/// The final word on a run: every step's times, exit code and outputs (sensitive ones masked),
/// and the run's own status, from the engine's record. Outputs are committed first; the steps
/// and then the run's end are queued in that order on the group-commit writer, which never
/// commits the end before them (at most together with them).
async fn finish(store: &dyn Store, writes: &BatchWriter, record: &RunRecord) {
    for s in &record.steps {
        for o in &s.outputs {
            let output = gantry_store::Output {
                step: s.name.clone(),
                name: o.name.clone(),
                value: o.value.clone(),
                sensitive: o.sensitive,
            };
            if let Err(e) = store.set_output(&record.run_id, &output).await {
                tracing::error!(error = %e, "could not record an output");
            }
        }
    }
    let mut queued: Vec<Write> = record
        .steps
        .iter()
        .map(|s| {
            Write::Step(
                record.run_id.clone(),
                StepChange {
                    step: s.name.clone(),
                    state: step_status(s.state),
                    reason: s.reason.clone(),
                    started_at: s.started_at,
                    ended_at: s.ended_at,
                    exit_code: s.exit_code,
                    at: s.ended_at.unwrap_or_else(Utc::now),
                },
            )
        })
        .collect();
    queued.push(Write::RunUpdate(
        record.run_id.clone(),
        RunUpdate {
            status: run_status(record.state),
            reason: record.reason.clone(),
            started_at: record.started_at,
            ended_at: record.ended_at,
        },
    ));
    if let Err(e) = writes.write_in_order(queued).await {
        tracing::error!(error = %e, run = record.run_id, "could not record the end of a run");
    }
}
