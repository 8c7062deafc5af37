//! The driver: runs one [`Run`] on tokio against a step runtime, a clock, a secret resolver and
//! a sink.
//!
//! It owns the I/O of a run: each step's folder (`spec.json`, `outputs/`), the step's job and
//! token, one tokio task per running step, the timers behind the run's deadlines, log masking,
//! and the metadata API's view of the run ([`RunHandle`] implements
//! [`MetadataBackend`]). It must not decide anything a [`Run`] decides: every decision is an input
//! to the state machine and every effect comes from one of its [`Action`]s.
//!
//! Concurrency: the [`Run`] sits behind one `std::sync::Mutex`, held only for plain function
//! calls (never across an `.await`), so the HTTP layer can read and write it from any thread.
//! Events are handed to the [`RunSink`] while that lock is held, which keeps them in the order
//! they happened; a sink must therefore be quick (buffer, don't write to a database inline).
//! One driver task ([`RunDriver::run`]) executes actions and sleeps until the next deadline;
//! step tasks send it log lines and exits through one channel, so a step's last log line always
//! reaches the sink before its state change.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use gantry_workflow::expr::{Evaluation, WhenOutcome};
use gantry_workflow::{Container, Workflow};

use crate::clock::Clock;
use crate::metadata::{Caller, CallerKind, MetadataBackend, MetadataError, Output, StartedRun};
use crate::run::{mask_line, Action, AnswerError, InputError, Run, RunRecord, SecretAccess};
use crate::runtime::{
    BoxFuture, LogLine, LogStream, MetadataEndpoint, Program, StepJob, StepOutcome, StepRuntime,
};
use crate::sink::{RunEvent, RunSink};

/// The largest `outputs/<name>` file read back; a bigger one is ignored with a log line.
pub const MAX_OUTPUT_FILE: u64 = 1024 * 1024;

/// How long log lines may still arrive after a runtime reported a step's end.
const LOG_GRACE: Duration = Duration::from_secs(2);

/// What a driver needs besides the run itself.
pub struct DriverConfig {
    pub run: Run,
    pub runtime: Arc<dyn StepRuntime>,
    pub clock: Arc<dyn Clock>,
    pub sink: Arc<dyn RunSink>,
    /// The run's own folder; each step gets a folder under it.
    pub work_dir: PathBuf,
    /// The workflow file's folder: `inputFile` paths are relative to it.
    pub workflow_dir: PathBuf,
    /// The port the metadata API listens on; `None` when none is served.
    pub metadata_port: Option<u16>,
}

struct Shared {
    run_id: String,
    run: Mutex<Run>,
    /// Token → step name, for steps that are running.
    tokens: Mutex<HashMap<String, String>>,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn RunSink>,
    /// Tells the driver task the run has new actions (an answer, a cancel, an output).
    wake: Notify,
    done: watch::Sender<bool>,
}

impl Shared {
    fn lock_run(&self) -> MutexGuard<'_, Run> {
        // A panic while the lock was held leaves a run that is still consistent enough to report
        // and cancel; refusing every later call would be worse.
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_tokens(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `f` on the run, then hands its events to the sink under the same lock.
    fn with_run<T>(&self, f: impl FnOnce(&mut Run) -> T) -> T {
        let mut run = self.lock_run();
        let out = f(&mut run);
        for event in run.take_events() {
            self.sink.event(event);
        }
        out
    }

    /// Like [`Shared::with_run`], for calls from outside the driver task, which may have queued
    /// actions it must carry out.
    fn with_run_and_wake<T>(&self, f: impl FnOnce(&mut Run) -> T) -> T {
        let out = self.with_run(f);
        self.wake.notify_one();
        out
    }

    /// Masks and reports one log line.
    fn log(&self, step: &str, stream: LogStream, line: &str) {
        let run = self.lock_run();
        let line = mask_line(line, run.masks());
        self.sink.event(RunEvent::Log {
            step: step.to_owned(),
            stream,
            line,
            at: self.clock.now(),
        });
        drop(run);
    }
}

/// Whether a step is started, or waited for again after its run was resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Launch {
    Start,
    Reattach,
}

/// What step tasks tell the driver task.
enum Message {
    Log(LogLine),
    Ended {
        step: String,
        outcome: StepOutcome,
        /// `outputs/<name>` files, read after the step ended.
        outputs: Vec<(String, String)>,
        /// Problems reading them, reported as log lines.
        notes: Vec<String>,
    },
}

/// Executes one run. Create it with [`RunDriver::new`], then await (or spawn) [`RunDriver::run`].
pub struct RunDriver {
    shared: Arc<Shared>,
    workflow: Arc<Workflow>,
    runtime: Arc<dyn StepRuntime>,
    work_dir: PathBuf,
    workflow_dir: PathBuf,
    metadata_port: Option<u16>,
    inbox_tx: mpsc::Sender<Message>,
    inbox_rx: mpsc::Receiver<Message>,
    in_flight: HashMap<String, CancellationToken>,
}

/// A cheap, cloneable handle on a driven run: answers, cancels, records, and the metadata API.
#[derive(Clone)]
pub struct RunHandle {
    shared: Arc<Shared>,
}

impl RunDriver {
    pub fn new(config: DriverConfig) -> (RunDriver, RunHandle) {
        let DriverConfig {
            run,
            runtime,
            clock,
            sink,
            work_dir,
            workflow_dir,
            metadata_port,
        } = config;
        let workflow = Arc::clone(run.workflow());
        let (done, _) = watch::channel(run.is_finished());
        let shared = Arc::new(Shared {
            run_id: run.id().to_owned(),
            run: Mutex::new(run),
            tokens: Mutex::new(HashMap::new()),
            clock,
            sink,
            wake: Notify::new(),
            done,
        });
        let (inbox_tx, inbox_rx) = mpsc::channel(1024);
        let handle = RunHandle {
            shared: Arc::clone(&shared),
        };
        let driver = RunDriver {
            shared,
            workflow,
            runtime,
            work_dir,
            workflow_dir,
            metadata_port,
            inbox_tx,
            inbox_rx,
            in_flight: HashMap::new(),
        };
        (driver, handle)
    }

    /// Starts the run and drives it to its end; returns its final record.
    pub async fn run(mut self) -> RunRecord {
        let now = self.shared.clock.now();
        self.shared.with_run(|run| run.start(now));
        loop {
            let (actions, deadline, finished) = self
                .shared
                .with_run(|run| (run.take_actions(), run.next_deadline(), run.is_finished()));
            if !actions.is_empty() {
                for action in actions {
                    self.act(action);
                }
                // Carrying out an action can fail a step, which may queue more.
                continue;
            }
            if finished && self.in_flight.is_empty() {
                break;
            }
            let wait = deadline.map(|d| {
                (d - self.shared.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            });
            tokio::select! {
                message = self.inbox_rx.recv() => {
                    // The driver holds a sender itself, so the channel never closes.
                    if let Some(message) = message {
                        self.receive(message);
                    }
                }
                () = self.shared.wake.notified() => {}
                () = sleep_for(wait) => {
                    let now = self.shared.clock.now();
                    self.shared.with_run(|run| run.tick(now));
                }
            }
        }
        self.shared.done.send_replace(true);
        self.shared.with_run(|run| run.record())
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::StartStep { step, spec, env } => {
                self.launch(Launch::Start, &step, &spec, &env);
            }
            Action::ReattachStep { step, spec, env } => {
                self.launch(Launch::Reattach, &step, &spec, &env);
            }
            Action::StopStep { step, .. } => {
                if let Some(cancel) = self.in_flight.get(&step) {
                    cancel.cancel();
                }
            }
        }
    }

    fn launch(&mut self, how: Launch, step: &str, spec: &Value, env: &Map<String, Value>) {
        let job = self.prepare(how, step, spec, env);
        match job {
            Ok((job, token)) => self.spawn(how, job, token),
            Err(message) => {
                let now = self.shared.clock.now();
                // The step is running in the run's eyes, so this cannot be refused.
                let _ = self.shared.with_run(|run| {
                    run.step_exited(step, StepOutcome::FailedToStart(message), now)
                });
            }
        }
    }

    /// Writes the step's folder and builds its job. The error names what failed, never a value.
    fn prepare(
        &self,
        how: Launch,
        step: &str,
        spec: &Value,
        env: &Map<String, Value>,
    ) -> Result<(StepJob, Option<String>), String> {
        let (index, definition, container) = self
            .workflow
            .steps
            .iter()
            .enumerate()
            .find(|(_, s)| s.name.value == step)
            .and_then(|(i, s)| s.container().map(|c| (i, s, c)))
            .ok_or_else(|| format!("`{step}` is not a container step"))?;
        let step_dir = self.work_dir.join(step_folder(step, index));
        match how {
            Launch::Start => write_step_folder(&step_dir, spec)?,
            // What the step left (its outputs, which may already have come back) stays.
            Launch::Reattach => std::fs::create_dir_all(step_dir.join("outputs"))
                .map_err(|e| format!("could not create {}: {e}", step_dir.display()))?,
        }
        let run_id = self.shared.run_id.clone();
        let mut vars: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.clone(), env_string(v)))
            .collect();
        vars.insert("CI".into(), "true".into());
        vars.insert("RELAY".into(), "true".into());
        vars.insert("GANTRY_RUN_ID".into(), run_id.clone());
        vars.insert("GANTRY_STEP".into(), step.to_owned());
        let (metadata, token) = match self.metadata_port {
            Some(port) => {
                let token = new_token().map_err(|e| format!("could not make a step token: {e}"))?;
                (
                    Some(MetadataEndpoint {
                        port,
                        token: token.clone(),
                    }),
                    Some(token),
                )
            }
            None => (None, None),
        };
        let job = StepJob {
            run_id,
            step: step.to_owned(),
            image: container.image.as_ref().map(|i| i.value.clone()),
            program: program(container, &self.workflow_dir),
            env: vars,
            step_dir,
            metadata,
            pool: self.workflow.agent_of(definition).map(|p| p.value.clone()),
        };
        Ok((job, token))
    }

    fn spawn(&mut self, how: Launch, job: StepJob, token: Option<String>) {
        let step = job.step.clone();
        if let Some(token) = token {
            self.shared.lock_tokens().insert(token, step.clone());
        }
        let cancel = CancellationToken::new();
        self.in_flight.insert(step, cancel.clone());
        let runtime = Arc::clone(&self.runtime);
        let inbox = self.inbox_tx.clone();
        tokio::spawn(run_step(how, runtime, job, cancel, inbox));
    }

    fn receive(&mut self, message: Message) {
        match message {
            Message::Log(line) => self.shared.log(&line.step, line.stream, &line.line),
            Message::Ended {
                step,
                outcome,
                outputs,
                notes,
            } => {
                for note in &notes {
                    self.shared.log(&step, LogStream::Stderr, note);
                }
                let now = self.shared.clock.now();
                self.shared.with_run(|run| {
                    for (name, value) in outputs {
                        // Refused only if the step is no longer running, and then it is moot.
                        let _ = run.set_output(&step, &name, Value::String(value));
                    }
                    // A repeated report is refused by the run and changes nothing.
                    let _ = run.step_exited(&step, outcome, now);
                });
                self.in_flight.remove(&step);
                self.shared.lock_tokens().retain(|_, s| *s != step);
            }
        }
    }
}

async fn sleep_for(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// One step from start to end: runs it, forwards its log lines, then reads its output files.
async fn run_step(
    how: Launch,
    runtime: Arc<dyn StepRuntime>,
    job: StepJob,
    cancel: CancellationToken,
    inbox: mpsc::Sender<Message>,
) {
    let step = job.step.clone();
    let outputs_dir = job.step_dir.join("outputs");
    let (log_tx, mut log_rx) = mpsc::channel(256);
    let mut running = match how {
        Launch::Start => runtime.run(job, log_tx, cancel),
        Launch::Reattach => runtime.reattach(job, log_tx, cancel),
    };
    let outcome = loop {
        tokio::select! {
            outcome = &mut running => break outcome,
            Some(line) = log_rx.recv() => {
                if inbox.send(Message::Log(line)).await.is_err() {
                    return;
                }
            }
        }
    };
    drop(running);
    // Lines still buffered, and any a runtime's reader task sends just after `run` returned.
    while let Ok(Some(line)) = tokio::time::timeout(LOG_GRACE, log_rx.recv()).await {
        if inbox.send(Message::Log(line)).await.is_err() {
            return;
        }
    }
    let (outputs, notes) = read_outputs(&outputs_dir);
    let _ = inbox
        .send(Message::Ended {
            step,
            outcome,
            outputs,
            notes,
        })
        .await;
}

/// The step's folder name: its own name when that is a safe path component.
fn step_folder(name: &str, index: usize) -> String {
    let safe = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if safe {
        name.to_owned()
    } else {
        format!("step-{index}")
    }
}

// The files are small (a spec, a few outputs), so plain blocking calls cost less than a hop to
// a blocking thread.
fn write_step_folder(dir: &Path, spec: &Value) -> Result<(), String> {
    let outputs = dir.join("outputs");
    // A new folder has no outputs; only a folder of an earlier attempt needs clearing, so the
    // first attempt costs two `mkdir`s and nothing else.
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Outputs of an earlier attempt must not become this attempt's.
            match std::fs::remove_dir_all(&outputs) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("could not clear {}: {e}", outputs.display())),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("could not create {}: {e}", dir.display()))?;
        }
        Err(e) => return Err(format!("could not create {}: {e}", dir.display())),
    }
    std::fs::create_dir(&outputs)
        .map_err(|e| format!("could not create {}: {e}", outputs.display()))?;
    let text =
        serde_json::to_vec_pretty(spec).map_err(|e| format!("could not encode the spec: {e}"))?;
    let path = dir.join("spec.json");
    std::fs::write(&path, text).map_err(|e| format!("could not write {}: {e}", path.display()))
}

fn read_outputs(dir: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let mut outputs = Vec::new();
    let mut notes = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (outputs, notes),
        Err(e) => {
            notes.push(format!("gantry: could not read {}: {e}", dir.display()));
            return (outputs, notes);
        }
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            notes.push("gantry: an output file name is not UTF-8; ignored".into());
            continue;
        };
        let path = entry.path();
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            _ => continue,
        };
        if meta.len() > MAX_OUTPUT_FILE {
            notes.push(format!(
                "gantry: output `{name}` is larger than {MAX_OUTPUT_FILE} bytes; ignored"
            ));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(mut text) => {
                if text.ends_with('\n') {
                    text.pop();
                }
                outputs.push((name, text));
            }
            Err(e) => notes.push(format!("gantry: could not read output `{name}`: {e}")),
        }
    }
    outputs.sort();
    (outputs, notes)
}

/// An env value as Relay's entrypointer exports it (Go's `%v`): strings as they are, anything
/// else as JSON.
pub fn env_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a container (a step's, or a webhook trigger's) runs: its `input` lines, its
/// `inputFile` (relative to `workflow_dir`), or its `command` and `args`.
pub fn program(c: &Container, workflow_dir: &Path) -> Program {
    if !c.input.is_empty() {
        let script = c
            .input
            .iter()
            .map(|l| l.value.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        // `input` is shell text: it is passed on as written, never evaluated.
        return Program::Script(if script.starts_with("#!") {
            script
        } else {
            format!("#!/bin/sh\n{script}")
        });
    }
    if let Some(f) = &c.input_file {
        return Program::InputFile {
            reference: f.value.clone(),
            base_dir: workflow_dir.to_path_buf(),
        };
    }
    Program::Command {
        command: c.command.as_ref().map(|c| c.value.clone()),
        args: c.args.iter().map(|a| a.value.clone()).collect(),
    }
}

/// 256 random bits from the operating system, as hex: a metadata API token.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl RunHandle {
    pub fn run_id(&self) -> &str {
        &self.shared.run_id
    }

    /// Cancels the run; running steps are stopped and reported as cancelled when they end.
    pub fn cancel(&self) {
        let now = self.shared.clock.now();
        self.shared.with_run_and_wake(|run| run.cancel(now));
    }

    /// Answers a waiting approval step.
    pub fn answer(
        &self,
        step: &str,
        approved: bool,
        by: Option<String>,
    ) -> Result<(), AnswerError> {
        let now = self.shared.clock.now();
        self.shared
            .with_run_and_wake(|run| run.answer(step, approved, by, now))
    }

    /// What the run's log lines are masked of now (see [`Run::masks`]), for lines that reach
    /// the run's record some other way (an agent's, on the server).
    pub fn masks(&self) -> Vec<String> {
        self.shared.lock_run().masks().to_vec()
    }

    /// A snapshot of the run, with sensitive outputs masked.
    pub fn record(&self) -> RunRecord {
        self.shared.lock_run().record()
    }

    /// Waits until the driver has finished the run, then returns its record.
    pub async fn finished(&self) -> RunRecord {
        let mut done = self.shared.done.subscribe();
        // An error means the driver was dropped; the record is then as far as it got.
        let _ = done.wait_for(|d| *d).await;
        self.record()
    }

    fn own_step<'c>(&self, caller: &'c Caller) -> Result<&'c str, MetadataError> {
        if caller.run_id != self.shared.run_id || caller.kind != CallerKind::Step {
            return Err(MetadataError::Forbidden(
                "this token does not belong to a step of this run".into(),
            ));
        }
        Ok(&caller.name)
    }
}

impl From<InputError> for MetadataError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::UnknownStep(_) => MetadataError::NotFound(e.to_string()),
            InputError::NotRunning { .. }
            | InputError::NotWaiting { .. }
            | InputError::NotStarted => MetadataError::Conflict(e.to_string()),
        }
    }
}

impl MetadataBackend for RunHandle {
    fn authenticate(&self, token: &str) -> Option<Caller> {
        let step = self.shared.lock_tokens().get(token).cloned()?;
        Some(Caller {
            run_id: self.shared.run_id.clone(),
            name: step,
            kind: CallerKind::Step,
        })
    }

    fn spec(&self, caller: &Caller) -> Result<Evaluation, MetadataError> {
        let step = self.own_step(caller)?;
        let now = self.shared.clock.now();
        self.shared
            .with_run(|run| run.spec_for(step, now))
            .map_err(MetadataError::from)
    }

    fn environment(&self, caller: &Caller) -> Result<Evaluation, MetadataError> {
        let step = self.own_step(caller)?;
        let now = self.shared.clock.now();
        self.shared
            .with_run(|run| run.env_for(step, now))
            .map_err(MetadataError::from)
    }

    fn conditions(&self, caller: &Caller) -> Result<WhenOutcome, MetadataError> {
        let step = self.own_step(caller)?;
        let now = self.shared.clock.now();
        self.shared
            .with_run(|run| run.conditions_for(step, now))
            .map_err(MetadataError::from)
    }

    fn set_output(&self, caller: &Caller, name: &str, value: Value) -> Result<(), MetadataError> {
        let step = self.own_step(caller)?;
        // A new output may decide a condition that waited for it.
        self.shared
            .with_run_and_wake(|run| run.set_output(step, name, value))
            .map_err(MetadataError::from)
    }

    fn set_output_sensitive(
        &self,
        caller: &Caller,
        name: &str,
        sensitive: bool,
    ) -> Result<(), MetadataError> {
        let step = self.own_step(caller)?;
        self.shared
            .with_run(|run| run.set_output_sensitive(step, name, sensitive))
            .map_err(MetadataError::from)
    }

    fn output(&self, caller: &Caller, step: &str, name: &str) -> Result<Output, MetadataError> {
        self.own_step(caller)?;
        let run = self.shared.lock_run();
        if run.step_state(step).is_none() {
            return Err(MetadataError::NotFound(format!("no step named `{step}`")));
        }
        run.output(step, name).cloned().ok_or_else(|| {
            MetadataError::NotFound(format!("output `{name}` of step `{step}` is not set"))
        })
    }

    fn secret(&self, caller: &Caller, name: &str) -> Result<String, MetadataError> {
        let step = self.own_step(caller)?;
        let now = self.shared.clock.now();
        let access = self
            .shared
            .with_run(|run| run.secret_for(step, name, now))
            .map_err(MetadataError::from)?;
        match access {
            SecretAccess::Value(v) => Ok(v),
            SecretAccess::Missing => Err(MetadataError::NotFound(format!(
                "secret `{name}` does not exist"
            ))),
            SecretAccess::NotReferenced => Err(MetadataError::Forbidden(format!(
                "step `{step}` does not refer to secret `{name}` in its spec or env"
            ))),
        }
    }

    fn state(&self, caller: &Caller, name: &str) -> Result<Value, MetadataError> {
        let step = self.own_step(caller)?;
        let run = self.shared.lock_run();
        match (name, run.approval_state(step)) {
            ("approval", Some(state)) => Ok(Value::String(state.into())),
            _ => Err(MetadataError::NotFound(format!(
                "no state `{name}` for step `{step}`"
            ))),
        }
    }

    fn set_decorator(
        &self,
        caller: &Caller,
        name: &str,
        value: Value,
    ) -> Result<(), MetadataError> {
        let step = self.own_step(caller)?;
        if !value.is_object() {
            return Err(MetadataError::Invalid(
                "a decorator is an object such as {\"type\": \"link\", \"description\", \"uri\"}"
                    .into(),
            ));
        }
        self.shared
            .with_run(|run| run.set_decorator(step, name, value))
            .map_err(MetadataError::from)
    }

    fn report_status(&self, caller: &Caller, _status: Value) -> Result<(), MetadataError> {
        // Relay's entrypointer reports its own progress; Gantry's runtime already knows it.
        self.own_step(caller).map(|_| ())
    }

    fn log(&self, caller: &Caller, line: String) -> Result<(), MetadataError> {
        let step = self.own_step(caller)?;
        self.shared.log(step, LogStream::Stdout, &line);
        Ok(())
    }

    fn emit_event<'a>(
        &'a self,
        caller: &'a Caller,
        _data: Value,
        _key: Option<String>,
    ) -> BoxFuture<'a, Result<(), MetadataError>> {
        let result = match caller.kind {
            CallerKind::Step => Err(MetadataError::Forbidden(
                "steps may not emit events; only trigger containers may".into(),
            )),
            CallerKind::Trigger => Err(MetadataError::Unavailable(
                "events from trigger containers need the Gantry server".into(),
            )),
        };
        Box::pin(async move { result })
    }

    fn run_workflow<'a>(
        &'a self,
        _caller: &'a Caller,
        _workflow: &'a str,
        _parameters: Map<String, Value>,
    ) -> BoxFuture<'a, Result<StartedRun, MetadataError>> {
        Box::pin(async {
            Err(MetadataError::Unavailable(
                "starting other workflows needs the Gantry server".into(),
            ))
        })
    }
}
