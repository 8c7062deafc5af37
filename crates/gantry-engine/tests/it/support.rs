//! Test doubles and harnesses shared by the engine's tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use gantry_engine::clock::Clock;
use gantry_engine::run::{Action, Run, RunConfig, RunError, RunOptions};
use gantry_engine::runtime::{BoxFuture, LogLine, LogStream, StepJob, StepOutcome, StepRuntime};
use gantry_engine::secrets::SecretResolver;
use gantry_engine::sink::{RunEvent, RunSink, StepState};

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

/// Secrets and connections held in memory.
#[derive(Default)]
pub(crate) struct StaticSecrets {
    pub(crate) secrets: BTreeMap<String, String>,
    pub(crate) connections: BTreeMap<(String, String), Value>,
}

impl StaticSecrets {
    pub(crate) fn with(secrets: &[(&str, &str)]) -> Arc<Self> {
        Arc::new(StaticSecrets {
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            connections: BTreeMap::new(),
        })
    }
}

impl SecretResolver for StaticSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned()
    }
    fn connection(&self, type_: &str, name: &str) -> Option<Value> {
        self.connections
            .get(&(type_.to_owned(), name.to_owned()))
            .cloned()
    }
}

pub(crate) fn run_config(
    yaml: &str,
    parameters: Value,
    options: RunOptions,
    secrets: Arc<dyn SecretResolver>,
) -> RunConfig {
    let parsed = gantry_workflow::parse(yaml);
    assert!(parsed.is_valid(), "{:#?}", parsed.diagnostics);
    let plan = parsed.plan.clone().expect("a valid workflow has a plan");
    let parameters = match parameters {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    RunConfig {
        run_id: "run-1".into(),
        workflow_name: "test".into(),
        workflow: Arc::new(parsed.workflow),
        plan,
        parameters,
        secrets,
        options,
    }
}

/// A [`Run`] driven by hand, with its own clock in `now`.
pub(crate) struct Machine {
    pub(crate) run: Run,
    pub(crate) now: DateTime<Utc>,
    /// Every event so far.
    pub(crate) events: Vec<RunEvent>,
}

impl Machine {
    pub(crate) fn new(yaml: &str) -> Machine {
        Machine::build(
            yaml,
            Value::Null,
            RunOptions::default(),
            StaticSecrets::with(&[]),
        )
        .unwrap()
    }

    pub(crate) fn build(
        yaml: &str,
        parameters: Value,
        options: RunOptions,
        secrets: Arc<dyn SecretResolver>,
    ) -> Result<Machine, RunError> {
        let run = Run::new(run_config(yaml, parameters, options, secrets))?;
        Ok(Machine {
            run,
            now: t0(),
            events: Vec::new(),
        })
    }

    /// Actions queued by the last inputs; events are collected into `events`.
    pub(crate) fn actions(&mut self) -> Vec<Action> {
        self.events.extend(self.run.take_events());
        self.run.take_actions()
    }

    /// Names of the steps the last inputs started.
    pub(crate) fn started(&mut self) -> Vec<String> {
        self.actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::StartStep { step, .. } => Some(step),
                Action::StopStep { .. } | Action::ReattachStep { .. } => None,
            })
            .collect()
    }

    pub(crate) fn start(&mut self) -> Vec<String> {
        self.run.start(self.now);
        self.started()
    }

    pub(crate) fn wait(&mut self, secs: i64) {
        self.now += chrono::Duration::seconds(secs);
    }

    pub(crate) fn tick(&mut self, secs: i64) -> Vec<Action> {
        self.wait(secs);
        self.run.tick(self.now);
        self.actions()
    }

    /// Reports that `step` exited with `code`; returns the steps that started because of it.
    pub(crate) fn exit(&mut self, step: &str, code: i32) -> Vec<String> {
        self.run
            .step_exited(step, StepOutcome::Exited(code), self.now)
            .unwrap();
        self.started()
    }

    pub(crate) fn state(&self, step: &str) -> StepState {
        self.run.step_state(step).unwrap()
    }

    pub(crate) fn reason(&self, step: &str) -> Option<String> {
        self.run
            .record()
            .steps
            .into_iter()
            .find(|s| s.name == step)
            .and_then(|s| s.reason)
    }
}

/// What a scripted step does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    pub(crate) exit: i32,
    /// How long it runs, in tokio's (paused) time.
    pub(crate) delay: Duration,
    /// Runs until cancelled.
    pub(crate) never_ends: bool,
    /// Written to `outputs/<name>` in the step folder.
    pub(crate) outputs: Vec<(String, String)>,
    /// Printed on stdout before it sleeps.
    pub(crate) logs: Vec<String>,
}

impl Script {
    pub(crate) fn exit(code: i32) -> Script {
        Script {
            exit: code,
            ..Script::default()
        }
    }

    pub(crate) fn after(secs: u64) -> Script {
        Script {
            delay: Duration::from_secs(secs),
            ..Script::default()
        }
    }

    pub(crate) fn forever() -> Script {
        Script {
            never_ends: true,
            ..Script::default()
        }
    }
}

/// A [`StepRuntime`] that follows a per-step script instead of running anything.
#[derive(Default)]
pub(crate) struct ScriptedRuntime {
    pub(crate) scripts: HashMap<String, Script>,
    pub(crate) jobs: Mutex<Vec<StepJob>>,
    running: AtomicUsize,
    pub(crate) most_at_once: AtomicUsize,
}

impl ScriptedRuntime {
    pub(crate) fn new(scripts: &[(&str, Script)]) -> Arc<ScriptedRuntime> {
        Arc::new(ScriptedRuntime {
            scripts: scripts
                .iter()
                .map(|(k, s)| (k.to_string(), s.clone()))
                .collect(),
            ..ScriptedRuntime::default()
        })
    }

    pub(crate) fn job(&self, step: &str) -> StepJob {
        self.jobs
            .lock()
            .unwrap()
            .iter()
            .find(|j| j.step == step)
            .cloned()
            .unwrap_or_else(|| panic!("step `{step}` was never run"))
    }
}

impl StepRuntime for ScriptedRuntime {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn run(
        &self,
        job: StepJob,
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, StepOutcome> {
        Box::pin(async move {
            let script = self.scripts.get(&job.step).cloned().unwrap_or_default();
            self.jobs.lock().unwrap().push(job.clone());
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            for line in &script.logs {
                let _ = logs
                    .send(LogLine {
                        step: job.step.clone(),
                        stream: LogStream::Stdout,
                        line: line.clone(),
                    })
                    .await;
            }
            for (name, value) in &script.outputs {
                std::fs::write(job.step_dir.join("outputs").join(name), value).unwrap();
            }
            let outcome = if script.never_ends {
                cancel.cancelled().await;
                StepOutcome::Cancelled
            } else {
                tokio::select! {
                    () = tokio::time::sleep(script.delay) => StepOutcome::Exited(script.exit),
                    () = cancel.cancelled() => StepOutcome::Cancelled,
                }
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            outcome
        })
    }

    fn clean_up<'a>(&'a self, _run_id: Option<&'a str>) -> BoxFuture<'a, Result<usize, String>> {
        Box::pin(async { Ok(0) })
    }
}

/// The manual clock of driver tests: tokio's paused test clock, read as wall time from [`t0`].
/// It moves only when every task is idle (tokio then jumps to the next timer), so a run takes
/// the same simulated time on every machine.
pub(crate) struct PausedClock {
    start: tokio::time::Instant,
}

impl PausedClock {
    pub(crate) fn new() -> Arc<PausedClock> {
        Arc::new(PausedClock {
            start: tokio::time::Instant::now(),
        })
    }
}

impl Clock for PausedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now() - self.start;
        t0() + chrono::Duration::from_std(elapsed).unwrap()
    }
}

/// A sink that keeps every event.
#[derive(Default)]
pub(crate) struct RecordingSink {
    pub(crate) events: Mutex<Vec<RunEvent>>,
}

impl RecordingSink {
    pub(crate) fn logs(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                RunEvent::Log { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect()
    }
}

impl RunSink for RecordingSink {
    fn event(&self, event: RunEvent) {
        self.events.lock().unwrap().push(event);
    }
}
