//! The state machine of one workflow run, free of I/O.
//!
//! A [`Run`] owns every decision about a run: which step may start, what a step's end does to
//! the run, when an approval expires, what a timeout or a cancel stops. It is told what happened
//! (`start`, `step_exited`, `answer`, `set_output`, `cancel`, `tick`), each time with an explicit
//! `now`, and queues what to do next as [`Action`]s and what changed as [`RunEvent`]s, which the
//! caller drains with [`Run::take_actions`] and [`Run::take_events`].
//! It must not do I/O, read a clock, sleep or spawn: the same inputs always give the same actions
//! and events, so a test drives it with plain function calls.
//! The one thing it asks the outside world is a [`SecretResolver`], synchronously, for secrets and
//! connections an expression names; the values it learns stay in the run (and are masked in logs).
//! It is a plain `&mut self` value with no interior locking; the driver keeps it behind a mutex.
//!
//! Relay's rules (relay-reference §2.5, §4.3) as implemented here:
//! every `dependsOn` entry adds "that step succeeded" unless the step's own `when` reads that
//! step's status; a false condition skips a step without failing the run; a failed step fails the
//! run, running steps finish and pending ones are skipped, except steps whose `when` asks about a
//! step's failure (clean-up steps), which are still evaluated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use gantry_workflow::expr::{self, Data, Evaluation, StepStatus, Unresolved, WhenOutcome};
use gantry_workflow::{Plan, StepKind, Workflow};

use crate::metadata::Output;
use crate::runtime::StepOutcome;
use crate::secrets::SecretResolver;
use crate::sink::{RunEvent, RunState, StepState};

/// How long an approval waits for an answer unless the step or the options say otherwise
/// (Relay's approvals expire after one hour).
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(3600);

/// What replaces a sensitive value in records and logs.
pub const MASK: &str = "***";

/// Limits that apply to one run; the workflow's own `timeout` fields win over these defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// How many container steps may run at once; 0 means no limit.
    pub max_parallel: usize,
    /// The longest a step may run when it sets no `timeout` of its own.
    pub step_timeout: Option<Duration>,
    /// How long an approval waits when it sets no `timeout` of its own.
    pub approval_timeout: Duration,
    /// The longest the run may take when the workflow sets no `timeout`.
    pub run_timeout: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            max_parallel: 0,
            step_timeout: None,
            approval_timeout: DEFAULT_APPROVAL_TIMEOUT,
            run_timeout: None,
        }
    }
}

/// Everything a run is made from.
pub struct RunConfig {
    pub run_id: String,
    /// The workflow's name as the user knows it (files may not name themselves).
    pub workflow_name: String,
    pub workflow: Arc<Workflow>,
    /// The plan `gantry_workflow::parse` produced for `workflow`.
    pub plan: Plan,
    /// Values the caller supplies; the workflow's defaults fill in the rest.
    pub parameters: Map<String, Value>,
    pub secrets: Arc<dyn SecretResolver>,
    pub options: RunOptions,
}

/// Why a run cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("no value for {}: the workflow gives no default", parameter_list(.0))]
    MissingParameters(Vec<String>),
    #[error("the workflow declares no parameter `{0}`")]
    UnknownParameter(String),
    #[error("the plan was made for a different workflow (step `{0}` does not match)")]
    PlanMismatch(String),
}

/// Why an input was not applied. Inputs that do not apply change nothing, so a repeated or late
/// delivery (the same exit reported twice) is harmless.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("no step named `{0}`")]
    UnknownStep(String),
    #[error("step `{step}` is {state}, not running")]
    NotRunning { step: String, state: &'static str },
    #[error("step `{step}` is {state}, not waiting for an approval")]
    NotWaiting { step: String, state: &'static str },
    #[error("the run has not started")]
    NotStarted,
}

/// The error of [`Run::answer`].
pub type AnswerError = InputError;

/// Why the run asks for a step to be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The step ran longer than this.
    Timeout(Duration),
    /// The run was cancelled.
    Cancelled,
    /// The whole run ran longer than this.
    RunTimedOut(Duration),
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run this container step. `spec` and `env` are already evaluated and complete.
    StartStep {
        step: String,
        spec: Value,
        env: Map<String, Value>,
    },
    /// Stop this running step; report its end with [`Run::step_exited`] as usual.
    StopStep { step: String, reason: StopReason },
    /// Wait again for this step, which was started before the run was resumed and still runs
    /// elsewhere (see [`Run::resume`]); report its end with [`Run::step_exited`] as usual.
    /// `spec` and `env` are evaluated again, as for [`Action::StartStep`].
    ReattachStep {
        step: String,
        spec: Value,
        env: Map<String, Value>,
    },
}

/// A step as the run's record showed it when the process driving the run stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSnapshot {
    pub step: String,
    pub state: StepState,
    pub reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
}

/// What a run that a restart cut off is resumed from (see [`Run::resume`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resumed {
    /// When the run started, so its deadlines keep counting from then.
    pub started_at: Option<DateTime<Utc>>,
    /// The steps recorded; a step not named is pending.
    pub steps: Vec<StepSnapshot>,
    /// The outputs recorded, as `(step, name, value, sensitive)`.
    pub outputs: Vec<(String, String, Value, bool)>,
    /// Running steps that still run elsewhere (an agent's job): the run waits for them again.
    /// Every other running step was cut off by the stop and fails.
    pub still_running: BTreeSet<String>,
}

/// Why a step that was running when its run was cut off fails on resumption.
pub const CUT_OFF: &str = "the server stopped while this step was running";

/// An approval's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub approved: bool,
    pub by: Option<String>,
    pub at: DateTime<Utc>,
}

/// An output as a record shows it: sensitive values are replaced by [`MASK`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    pub name: String,
    pub sensitive: bool,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub name: String,
    pub state: StepState,
    pub reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub outputs: Vec<OutputRecord>,
    pub decorators: Vec<(String, Value)>,
    pub approval: Option<ApprovalRecord>,
}

/// A snapshot of a run, safe to show: it holds no secret value and no sensitive output.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub workflow: String,
    pub state: RunState,
    pub reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub steps: Vec<StepRecord>,
}

/// What a step's spec or env says about secret `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretAccess {
    Value(String),
    /// The step refers to it, but it does not exist.
    Missing,
    /// The step's spec and env do not refer to it.
    NotReferenced,
}

/// What never changes about a step during a run, worked out once.
struct StepInfo {
    name: String,
    approval: bool,
    /// Every step it waits for (explicit and implicit edges).
    deps: Vec<usize>,
    /// `dependsOn` entries that must have succeeded (those the `when` does not read the status of).
    must_succeed: Vec<usize>,
    /// The user's `when` in canonical form (`null` when absent).
    when: Value,
    /// `when` plus the implicit conditions, as the metadata API's `/conditions` evaluates it.
    conditions: Value,
    /// The `when` asks whether a step failed, so the step is still considered after a failure.
    asks_for_failure: bool,
    spec: Value,
    env: Value,
    timeout: Option<Duration>,
}

struct StepRun {
    state: StepState,
    reason: Option<String>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    exit_code: Option<i32>,
    /// In the order they were first set.
    outputs: Vec<(String, Output)>,
    decorators: Vec<(String, Value)>,
    /// When a running step times out or a waiting approval expires.
    deadline: Option<DateTime<Utc>>,
    /// The limit behind `deadline`, for the message.
    limit: Option<Duration>,
    stop: Option<StopReason>,
    approval: Option<ApprovalRecord>,
}

impl StepRun {
    fn new() -> Self {
        StepRun {
            state: StepState::Pending,
            reason: None,
            started_at: None,
            ended_at: None,
            exit_code: None,
            outputs: Vec::new(),
            decorators: Vec::new(),
            deadline: None,
            limit: None,
            stop: None,
            approval: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Nothing stops the run early.
    No,
    Cancelled,
    TimedOut(Duration),
}

pub struct Run {
    id: String,
    workflow_name: String,
    workflow: Arc<Workflow>,
    info: Arc<[StepInfo]>,
    steps: Vec<StepRun>,
    index: BTreeMap<String, usize>,
    data: Data,
    resolver: Arc<dyn SecretResolver>,
    options: RunOptions,
    state: RunState,
    reason: Option<String>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    run_deadline: Option<DateTime<Utc>>,
    run_limit: Option<Duration>,
    /// A step failed: pending steps that do not ask about failures are skipped.
    failed: bool,
    ending: Ending,
    masks: Vec<String>,
    actions: Vec<Action>,
    events: Vec<RunEvent>,
}

impl std::fmt::Debug for Run {
    // By hand: the run's data holds secret values, which must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("id", &self.id)
            .field("workflow", &self.workflow_name)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Run {
    pub fn new(config: RunConfig) -> Result<Run, RunError> {
        let RunConfig {
            run_id,
            workflow_name,
            workflow,
            plan,
            parameters,
            secrets,
            options,
        } = config;
        let parameters = bind_parameters(&workflow, parameters)?;
        if plan.steps.len() != workflow.steps.len() {
            let name = workflow
                .steps
                .get(plan.steps.len())
                .map(|s| s.name.value.clone())
                .or_else(|| plan.steps.get(workflow.steps.len()).map(|s| s.name.clone()))
                .unwrap_or_default();
            return Err(RunError::PlanMismatch(name));
        }
        let mut info = Vec::with_capacity(workflow.steps.len());
        let mut index = BTreeMap::new();
        for (i, (step, planned)) in workflow.steps.iter().zip(&plan.steps).enumerate() {
            if step.name.value != planned.name {
                return Err(RunError::PlanMismatch(planned.name.clone()));
            }
            index.insert(step.name.value.clone(), i);
            let when = step.when.as_ref().map_or(Value::Null, |w| w.to_json());
            let status_refs = status_references(&when);
            let must_succeed: Vec<usize> = planned
                .explicit
                .iter()
                .copied()
                .filter(|&d| {
                    let dep = &plan.steps[d].name;
                    !status_refs.iter().any(|(s, _)| s == dep)
                })
                .collect();
            let asks_for_failure = status_refs
                .iter()
                .any(|(_, prop)| matches!(prop.as_deref(), None | Some("failed")));
            let mut conditions: Vec<Value> = match &when {
                Value::Null => Vec::new(),
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            for &d in &must_succeed {
                conditions.push(Value::String(format!(
                    "${{steps['{}'].succeeded}}",
                    escape_quoted(&plan.steps[d].name)
                )));
            }
            let (spec, env) = match step.container() {
                Some(c) => (
                    c.spec
                        .as_ref()
                        .map_or(Value::Object(Map::new()), |v| v.to_json()),
                    c.env
                        .as_ref()
                        .map_or(Value::Object(Map::new()), |v| v.to_json()),
                ),
                None => (Value::Object(Map::new()), Value::Object(Map::new())),
            };
            info.push(StepInfo {
                name: step.name.value.clone(),
                approval: matches!(step.kind, StepKind::Approval),
                deps: planned.dependencies().collect(),
                must_succeed,
                when,
                conditions: Value::Array(conditions),
                asks_for_failure,
                spec,
                env,
                timeout: step.timeout.as_ref().map(|t| t.value),
            });
        }
        let data = Data {
            parameters,
            ..Data::default()
        };
        let steps = info.iter().map(|_| StepRun::new()).collect();
        Ok(Run {
            id: run_id,
            workflow_name,
            workflow,
            info: info.into(),
            steps,
            index,
            data,
            resolver: secrets,
            options,
            state: RunState::Running,
            reason: None,
            started_at: None,
            ended_at: None,
            run_deadline: None,
            run_limit: None,
            failed: false,
            ending: Ending::No,
            masks: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn workflow(&self) -> &Arc<Workflow> {
        &self.workflow
    }

    pub fn workflow_name(&self) -> &str {
        &self.workflow_name
    }

    pub fn state(&self) -> RunState {
        self.state
    }

    pub fn is_started(&self) -> bool {
        self.started_at.is_some()
    }

    /// True once the run has ended and nothing of it is running.
    pub fn is_finished(&self) -> bool {
        self.state.is_final()
    }

    pub fn parameters(&self) -> &Map<String, Value> {
        &self.data.parameters
    }

    pub fn step_state(&self, step: &str) -> Option<StepState> {
        self.index.get(step).map(|&i| self.steps[i].state)
    }

    /// Step names in file order.
    pub fn step_names(&self) -> impl Iterator<Item = &str> {
        self.info.iter().map(|s| s.name.as_str())
    }

    /// The actions queued since the last call, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// The events queued since the last call, in order.
    pub fn take_events(&mut self) -> Vec<RunEvent> {
        std::mem::take(&mut self.events)
    }

    /// Every value to replace by [`MASK`] in logs: secrets and connection fields the run has
    /// resolved, and sensitive outputs. Longest first, so a value containing another is masked
    /// whole.
    pub fn masks(&self) -> &[String] {
        &self.masks
    }

    /// The earliest moment at which [`Run::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        if self.state.is_final() || !self.is_started() {
            return None;
        }
        let steps = self.steps.iter().filter_map(|s| match s.state {
            StepState::Running if s.stop.is_none() => s.deadline,
            StepState::Waiting => s.deadline,
            _ => None,
        });
        let run = match self.ending {
            Ending::No => self.run_deadline,
            _ => None,
        };
        steps.chain(run).min()
    }

    /// Starts the run: steps with nothing to wait for are evaluated now. A second call does nothing.
    pub fn start(&mut self, now: DateTime<Utc>) {
        if self.started_at.is_some() {
            return;
        }
        self.started_at = Some(now);
        let limit = self
            .workflow
            .timeout
            .as_ref()
            .map(|t| t.value)
            .or(self.options.run_timeout);
        self.run_limit = limit;
        self.run_deadline = limit.map(|l| add(now, l));
        self.events.push(RunEvent::RunChanged {
            state: RunState::Running,
            reason: Some("started".into()),
            at: now,
        });
        self.advance(now);
    }

    /// Resumes a run that a restart cut off, instead of [`Run::start`]: finished steps keep how
    /// they ended and their outputs, waiting approvals keep waiting (their deadlines count
    /// from when they began), steps in `still_running` are running again and queue an
    /// [`Action::ReattachStep`] each, every other running step fails ([`CUT_OFF`]), and
    /// then whatever can be decided is (so pending steps may start). No event repeats what
    /// was recorded; only what changes now is reported. A second call, or a call after
    /// `start`, does nothing.
    pub fn resume(&mut self, from: Resumed, now: DateTime<Utc>) {
        if self.started_at.is_some() {
            return;
        }
        let started = from.started_at.unwrap_or(now);
        self.started_at = Some(started);
        let limit = self
            .workflow
            .timeout
            .as_ref()
            .map(|t| t.value)
            .or(self.options.run_timeout);
        self.run_limit = limit;
        self.run_deadline = limit.map(|l| add(started, l));
        for (step, name, value, sensitive) in from.outputs {
            let Some(&i) = self.index.get(&step) else {
                continue;
            };
            self.steps[i].outputs.push((
                name.clone(),
                Output {
                    value: value.clone(),
                    sensitive,
                },
            ));
            self.data
                .outputs
                .entry(step)
                .or_default()
                .insert(name, value);
        }
        let info = Arc::clone(&self.info);
        let mut reattach = Vec::new();
        let mut cut_off = Vec::new();
        for snap in from.steps {
            let Some(&i) = self.index.get(&snap.step) else {
                continue;
            };
            let s = &mut self.steps[i];
            s.reason = snap.reason;
            s.started_at = snap.started_at;
            s.ended_at = snap.ended_at;
            s.exit_code = snap.exit_code;
            match snap.state {
                state if state.is_final() => {
                    s.state = state;
                    let status = match state {
                        StepState::Succeeded => Some(StepStatus::Succeeded),
                        StepState::Failed => Some(StepStatus::Failed),
                        StepState::Skipped => Some(StepStatus::Skipped),
                        _ => None,
                    };
                    if let Some(status) = status {
                        self.data.steps.insert(snap.step, status);
                    }
                    if state == StepState::Failed {
                        self.failed = true;
                    }
                }
                StepState::Running if from.still_running.contains(&snap.step) => {
                    reattach.push(i);
                }
                StepState::Running => cut_off.push(i),
                StepState::Waiting => {
                    let limit = info[i].timeout.unwrap_or(self.options.approval_timeout);
                    s.state = StepState::Waiting;
                    s.limit = Some(limit);
                    s.deadline = Some(add(s.started_at.unwrap_or(now), limit));
                }
                _ => {}
            }
        }
        self.refresh_masks();
        for i in reattach {
            // Evaluated again so the run learns the secrets the step's lines must be masked of.
            let spec = self.evaluate(&info[i].spec, now);
            let env = self.evaluate(&info[i].env, now);
            let limit = info[i].timeout.or(self.options.step_timeout);
            let s = &mut self.steps[i];
            s.state = StepState::Running;
            s.ended_at = None;
            let since = *s.started_at.get_or_insert(now);
            s.limit = limit;
            s.deadline = limit.map(|l| add(since, l));
            self.actions.push(Action::ReattachStep {
                step: info[i].name.clone(),
                spec: spec.value,
                env: match env.value {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
            });
        }
        for i in cut_off {
            self.finish_step(i, StepState::Failed, Some(CUT_OFF.into()), now);
        }
        self.advance(now);
    }

    /// A step's program ended. Only a running step can end; anything else is a repeated or
    /// stale report and changes nothing.
    pub fn step_exited(
        &mut self,
        step: &str,
        outcome: StepOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), InputError> {
        let i = self.running(step)?;
        let stop = self.steps[i].stop;
        if let StepOutcome::Exited(code) = outcome {
            self.steps[i].exit_code = Some(code);
        }
        let (state, reason) = match (outcome, stop) {
            (StepOutcome::Exited(0), _) => (StepState::Succeeded, None),
            (_, Some(StopReason::Timeout(d))) => (
                StepState::Failed,
                Some(format!("timed out after {}", format_duration(d))),
            ),
            (_, Some(StopReason::Cancelled)) => {
                (StepState::Cancelled, Some("the run was cancelled".into()))
            }
            (_, Some(StopReason::RunTimedOut(d))) => (
                StepState::Cancelled,
                Some(format!("the run timed out after {}", format_duration(d))),
            ),
            (StepOutcome::Exited(code), None) => {
                (StepState::Failed, Some(format!("exit code {code}")))
            }
            (StepOutcome::FailedToStart(msg), None) => {
                (StepState::Failed, Some(format!("could not start: {msg}")))
            }
            (StepOutcome::Cancelled, None) => (
                StepState::Failed,
                Some("stopped by the step runtime".into()),
            ),
        };
        self.finish_step(i, state, reason, now);
        self.advance(now);
        Ok(())
    }

    /// Sets (last write wins) an output of a running step.
    pub fn set_output(&mut self, step: &str, name: &str, value: Value) -> Result<(), InputError> {
        let i = self.running(step)?;
        let outputs = &mut self.steps[i].outputs;
        match outputs.iter_mut().find(|(n, _)| n == name) {
            Some((_, o)) => o.value = value.clone(),
            None => outputs.push((
                name.to_owned(),
                Output {
                    value: value.clone(),
                    sensitive: false,
                },
            )),
        }
        self.data
            .outputs
            .entry(step.to_owned())
            .or_default()
            .insert(name.to_owned(), value);
        self.refresh_masks();
        Ok(())
    }

    /// Marks an output of a running step as sensitive (or not). The output need not exist yet.
    pub fn set_output_sensitive(
        &mut self,
        step: &str,
        name: &str,
        sensitive: bool,
    ) -> Result<(), InputError> {
        let i = self.running(step)?;
        let outputs = &mut self.steps[i].outputs;
        match outputs.iter_mut().find(|(n, _)| n == name) {
            Some((_, o)) => o.sensitive = sensitive,
            None => {
                // Remembered with no value, so the mark holds when the value comes.
                outputs.push((
                    name.to_owned(),
                    Output {
                        value: Value::Null,
                        sensitive,
                    },
                ));
            }
        }
        self.refresh_masks();
        Ok(())
    }

    /// An output of any step of the run.
    pub fn output(&self, step: &str, name: &str) -> Option<&Output> {
        let i = *self.index.get(step)?;
        let value = self.data.outputs.get(step)?.get(name)?;
        let (_, o) = self.steps[i].outputs.iter().find(|(n, _)| n == name)?;
        debug_assert_eq!(&o.value, value);
        Some(o)
    }

    /// Sets a decorator (a link shown on the step) of a running step.
    pub fn set_decorator(
        &mut self,
        step: &str,
        name: &str,
        value: Value,
    ) -> Result<(), InputError> {
        let i = self.running(step)?;
        let decorators = &mut self.steps[i].decorators;
        match decorators.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => decorators.push((name.to_owned(), value)),
        }
        Ok(())
    }

    /// Answers a waiting approval step.
    pub fn answer(
        &mut self,
        step: &str,
        approved: bool,
        by: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), AnswerError> {
        let i = self.index_of(step)?;
        if self.steps[i].state != StepState::Waiting {
            return Err(InputError::NotWaiting {
                step: step.to_owned(),
                state: self.steps[i].state.as_str(),
            });
        }
        let word = if approved { "approved" } else { "rejected" };
        self.data
            .answers
            .entry(step.to_owned())
            .or_default()
            .insert("approval".into(), Value::String(word.into()));
        let who = by
            .as_deref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default();
        self.steps[i].approval = Some(ApprovalRecord {
            approved,
            by,
            at: now,
        });
        let (state, reason) = if approved {
            (StepState::Succeeded, format!("approved{who}"))
        } else {
            (StepState::Failed, format!("denied{who}"))
        };
        self.finish_step(i, state, Some(reason), now);
        self.advance(now);
        Ok(())
    }

    /// The answer of an approval step as run state: `approved`, `rejected`, or `waiting`.
    pub fn approval_state(&self, step: &str) -> Option<&'static str> {
        let i = *self.index.get(step)?;
        if !self.info[i].approval {
            return None;
        }
        Some(match &self.steps[i].approval {
            Some(a) if a.approved => "approved",
            Some(_) => "rejected",
            None => "waiting",
        })
    }

    /// Cancels the run: running steps are stopped, the rest are cancelled. Does nothing once the
    /// run has ended or is already being stopped.
    pub fn cancel(&mut self, now: DateTime<Utc>) {
        if self.state.is_final() || self.ending != Ending::No {
            return;
        }
        self.ending = Ending::Cancelled;
        if self.started_at.is_none() {
            self.started_at = Some(now);
        }
        for i in 0..self.steps.len() {
            match self.steps[i].state {
                StepState::Running => self.stop(i, StopReason::Cancelled),
                StepState::Pending | StepState::Waiting => self.finish_step(
                    i,
                    StepState::Cancelled,
                    Some("the run was cancelled".into()),
                    now,
                ),
                _ => {}
            }
        }
        self.advance(now);
    }

    /// Time has passed: stops steps past their timeout, expires approvals, times the run out.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        if self.state.is_final() || !self.is_started() {
            return;
        }
        if self.ending == Ending::No {
            if let (Some(deadline), Some(limit)) = (self.run_deadline, self.run_limit) {
                if deadline <= now {
                    self.time_out(limit, now);
                }
            }
        }
        for i in 0..self.steps.len() {
            let s = &self.steps[i];
            let due = s.deadline.is_some_and(|d| d <= now);
            match s.state {
                StepState::Running if due && s.stop.is_none() => {
                    let limit = s.limit.unwrap_or_default();
                    self.stop(i, StopReason::Timeout(limit));
                }
                StepState::Waiting if due => {
                    let limit = s.limit.unwrap_or_default();
                    self.finish_step(
                        i,
                        StepState::Failed,
                        Some(format!("approval expired after {}", format_duration(limit))),
                        now,
                    );
                }
                _ => {}
            }
        }
        self.advance(now);
    }

    /// The step's `spec`, evaluated against the run's data now.
    pub fn spec_for(&mut self, step: &str, now: DateTime<Utc>) -> Result<Evaluation, InputError> {
        let i = self.index_of(step)?;
        let info = Arc::clone(&self.info);
        Ok(self.evaluate(&info[i].spec, now))
    }

    /// The step's `env`, evaluated against the run's data now.
    pub fn env_for(&mut self, step: &str, now: DateTime<Utc>) -> Result<Evaluation, InputError> {
        let i = self.index_of(step)?;
        let info = Arc::clone(&self.info);
        Ok(self.evaluate(&info[i].env, now))
    }

    /// The step's `when` with the implicit `dependsOn` conditions, evaluated now.
    pub fn conditions_for(
        &mut self,
        step: &str,
        now: DateTime<Utc>,
    ) -> Result<WhenOutcome, InputError> {
        let i = self.index_of(step)?;
        let info = Arc::clone(&self.info);
        Ok(self.evaluate_when(&info[i].conditions, now))
    }

    /// Whether the step's own spec or env refers to secret `name`, and its value if so.
    /// A name computed by an expression counts: the check evaluates the step with that one secret
    /// withheld and looks for it among what is missing.
    pub fn secret_for(
        &mut self,
        step: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<SecretAccess, InputError> {
        let i = self.index_of(step)?;
        let info = Arc::clone(&self.info);
        // Resolve everything else first so a name computed from another secret can be found.
        self.evaluate(&info[i].spec, now);
        self.evaluate(&info[i].env, now);
        let mut withheld = self.data.clone();
        withheld.secrets.remove(name);
        let referenced = [&info[i].spec, &info[i].env].into_iter().any(|v| {
            expr::evaluate(v, &withheld)
                .unresolved
                .secrets
                .iter()
                .any(|s| s.name == name)
        });
        if !referenced {
            return Ok(SecretAccess::NotReferenced);
        }
        Ok(match self.data.secrets.get(name) {
            Some(v) => SecretAccess::Value(v.clone()),
            None => SecretAccess::Missing,
        })
    }

    /// A snapshot of the run with sensitive outputs masked.
    pub fn record(&self) -> RunRecord {
        let steps = self
            .info
            .iter()
            .zip(&self.steps)
            .map(|(info, s)| StepRecord {
                name: info.name.clone(),
                state: s.state,
                reason: s.reason.clone(),
                started_at: s.started_at,
                ended_at: s.ended_at,
                exit_code: s.exit_code,
                outputs: s
                    .outputs
                    .iter()
                    .filter(|(name, _)| {
                        self.data
                            .outputs
                            .get(&info.name)
                            .is_some_and(|o| o.contains_key(name))
                    })
                    .map(|(name, o)| OutputRecord {
                        name: name.clone(),
                        sensitive: o.sensitive,
                        value: if o.sensitive {
                            Value::String(MASK.into())
                        } else {
                            o.value.clone()
                        },
                    })
                    .collect(),
                decorators: s.decorators.clone(),
                approval: s.approval.clone(),
            })
            .collect();
        RunRecord {
            run_id: self.id.clone(),
            workflow: self.workflow_name.clone(),
            state: self.state,
            reason: self.reason.clone(),
            started_at: self.started_at,
            ended_at: self.ended_at,
            steps,
        }
    }

    // ---- scheduling ----

    /// Decides everything that can be decided now, then ends the run if every step is final.
    fn advance(&mut self, now: DateTime<Utc>) {
        if self.state.is_final() || !self.is_started() {
            return;
        }
        loop {
            let mut progressed = false;
            for i in 0..self.steps.len() {
                if self.steps[i].state != StepState::Pending {
                    continue;
                }
                let ready = self.info[i]
                    .deps
                    .iter()
                    .all(|&d| self.steps[d].state.is_final());
                if ready && self.consider(i, now) {
                    progressed = true;
                }
            }
            if !progressed && !self.resolve_stuck(now) {
                break;
            }
        }
        self.finish_run_if_done(now);
    }

    /// Evaluates one pending step whose dependencies are final. True when its state changed.
    fn consider(&mut self, i: usize, now: DateTime<Utc>) -> bool {
        let info = Arc::clone(&self.info);
        let info = &info[i];
        if self.failed && !info.asks_for_failure {
            self.finish_step(i, StepState::Skipped, Some("the run failed".into()), now);
            return true;
        }
        if let Some(&d) = info
            .must_succeed
            .iter()
            .find(|&&d| self.steps[d].state != StepState::Succeeded)
        {
            let reason = format!(
                "dependency `{}` {}",
                self.info[d].name,
                match self.steps[d].state {
                    StepState::Failed => "failed",
                    StepState::Skipped => "was skipped",
                    StepState::Cancelled => "was cancelled",
                    _ => "did not succeed",
                }
            );
            self.finish_step(i, StepState::Skipped, Some(reason), now);
            return true;
        }
        match self.evaluate_when(&info.when, now) {
            WhenOutcome::NotSatisfied => {
                self.finish_step(
                    i,
                    StepState::Skipped,
                    Some("when condition is false".into()),
                    now,
                );
                true
            }
            WhenOutcome::Error(errors) => {
                let reason = format!("invalid when condition: {}", describe_errors(&errors));
                self.finish_step(i, StepState::Failed, Some(reason), now);
                true
            }
            WhenOutcome::Unresolved(_) => false,
            WhenOutcome::Satisfied if info.approval => {
                let limit = info.timeout.unwrap_or(self.options.approval_timeout);
                let s = &mut self.steps[i];
                s.state = StepState::Waiting;
                s.started_at = Some(now);
                s.deadline = Some(add(now, limit));
                s.limit = Some(limit);
                self.events.push(RunEvent::StepChanged {
                    step: info.name.clone(),
                    state: StepState::Waiting,
                    reason: Some("waiting for approval".into()),
                    at: now,
                });
                true
            }
            WhenOutcome::Satisfied => {
                let running = self
                    .steps
                    .iter()
                    .filter(|s| s.state == StepState::Running)
                    .count();
                if self.options.max_parallel != 0 && running >= self.options.max_parallel {
                    return false;
                }
                self.launch(i, now);
                true
            }
        }
    }

    /// Evaluates the step's spec and env and hands it to the runtime, or fails it when they are
    /// incomplete: a step never starts with a secret or connection missing.
    fn launch(&mut self, i: usize, now: DateTime<Utc>) {
        let info = Arc::clone(&self.info);
        let info = &info[i];
        let spec = self.evaluate(&info.spec, now);
        let env = self.evaluate(&info.env, now);
        let mut problems = Vec::new();
        for (what, ev) in [("spec", &spec), ("env", &env)] {
            if !ev.unresolved.is_empty() {
                problems.push(describe_unresolved(&ev.unresolved));
            }
            if !ev.errors.is_empty() {
                problems.push(format!("{what}: {}", describe_errors(&ev.errors)));
            }
        }
        let env = match env.value {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => {
                problems.push("env: must evaluate to a mapping of names to values".into());
                Map::new()
            }
        };
        if !problems.is_empty() {
            problems.dedup();
            let reason = format!("cannot start: {}", problems.join("; "));
            self.finish_step(i, StepState::Failed, Some(reason), now);
            return;
        }
        let limit = info.timeout.or(self.options.step_timeout);
        let s = &mut self.steps[i];
        s.state = StepState::Running;
        s.started_at = Some(now);
        s.limit = limit;
        s.deadline = limit.map(|l| add(now, l));
        self.events.push(RunEvent::StepChanged {
            step: info.name.clone(),
            state: StepState::Running,
            reason: None,
            at: now,
        });
        self.actions.push(Action::StartStep {
            step: info.name.clone(),
            spec: spec.value,
            env,
        });
    }

    /// When nothing runs and nothing waits for an answer, no output, status or answer can still
    /// appear, so a step whose condition is unresolved never will be: it is skipped with what it
    /// lacked. True when some step changed.
    fn resolve_stuck(&mut self, now: DateTime<Utc>) -> bool {
        let active = self
            .steps
            .iter()
            .any(|s| matches!(s.state, StepState::Running | StepState::Waiting));
        if active {
            return false;
        }
        let mut changed = false;
        for i in 0..self.steps.len() {
            if self.steps[i].state != StepState::Pending {
                continue;
            }
            let ready = self.info[i]
                .deps
                .iter()
                .all(|&d| self.steps[d].state.is_final());
            if !ready {
                continue;
            }
            let info = Arc::clone(&self.info);
            let reason = match self.evaluate_when(&info[i].when, now) {
                WhenOutcome::Unresolved(u) => format!(
                    "when condition could not be decided: {}",
                    describe_unresolved(&u)
                ),
                // Cannot happen: a decided condition was acted on in `consider`.
                _ => "when condition could not be decided".into(),
            };
            self.finish_step(i, StepState::Skipped, Some(reason), now);
            changed = true;
        }
        changed
    }

    fn finish_run_if_done(&mut self, now: DateTime<Utc>) {
        if self.state.is_final() || !self.steps.iter().all(|s| s.state.is_final()) {
            return;
        }
        let failed: Vec<&str> = self
            .info
            .iter()
            .zip(&self.steps)
            .filter(|(_, s)| s.state == StepState::Failed)
            .map(|(i, _)| i.name.as_str())
            .collect();
        let (state, reason) = match self.ending {
            Ending::Cancelled => (RunState::Cancelled, "cancelled".to_owned()),
            Ending::TimedOut(d) => (
                RunState::TimedOut,
                format!("timed out after {}", format_duration(d)),
            ),
            Ending::No if failed.is_empty() => (
                RunState::Succeeded,
                "every step succeeded or was skipped".into(),
            ),
            Ending::No => (
                RunState::Failed,
                format!(
                    "{} failed",
                    if failed.len() == 1 { "step" } else { "steps" }.to_owned()
                        + " "
                        + &quote_list(&failed)
                ),
            ),
        };
        self.state = state;
        self.reason = Some(reason.clone());
        self.ended_at = Some(now);
        self.events.push(RunEvent::RunChanged {
            state,
            reason: Some(reason),
            at: now,
        });
    }

    fn time_out(&mut self, limit: Duration, now: DateTime<Utc>) {
        self.ending = Ending::TimedOut(limit);
        let reason = format!("the run timed out after {}", format_duration(limit));
        for i in 0..self.steps.len() {
            match self.steps[i].state {
                StepState::Running if self.steps[i].stop.is_none() => {
                    self.stop(i, StopReason::RunTimedOut(limit));
                }
                StepState::Pending | StepState::Waiting => {
                    self.finish_step(i, StepState::Skipped, Some(reason.clone()), now);
                }
                _ => {}
            }
        }
    }

    fn stop(&mut self, i: usize, reason: StopReason) {
        if self.steps[i].stop.is_some() {
            return;
        }
        self.steps[i].stop = Some(reason);
        self.actions.push(Action::StopStep {
            step: self.info[i].name.clone(),
            reason,
        });
    }

    fn finish_step(
        &mut self,
        i: usize,
        state: StepState,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) {
        let name = self.info[i].name.clone();
        let s = &mut self.steps[i];
        s.state = state;
        s.reason = reason.clone();
        s.ended_at = Some(now);
        s.deadline = None;
        let status = match state {
            StepState::Succeeded => Some(StepStatus::Succeeded),
            StepState::Failed => Some(StepStatus::Failed),
            StepState::Skipped => Some(StepStatus::Skipped),
            // A cancelled step has no Relay status; conditions reading it stay undecided, and
            // a cancelled run decides nothing more anyway.
            _ => None,
        };
        if let Some(status) = status {
            self.data.steps.insert(name.clone(), status);
        }
        self.events.push(RunEvent::StepChanged {
            step: name,
            state,
            reason,
            at: now,
        });
        if state == StepState::Failed && !self.failed {
            self.failed = true;
            self.skip_after_failure(now);
        }
    }

    /// Relay's rule: once a step fails, what has not started is skipped, except steps whose
    /// `when` asks about a failure.
    fn skip_after_failure(&mut self, now: DateTime<Utc>) {
        if self.ending != Ending::No {
            return;
        }
        for i in 0..self.steps.len() {
            let skip = match self.steps[i].state {
                StepState::Pending => !self.info[i].asks_for_failure,
                StepState::Waiting => true,
                _ => false,
            };
            if skip {
                self.finish_step(i, StepState::Skipped, Some("the run failed".into()), now);
            }
        }
    }

    // ---- helpers ----

    fn index_of(&self, step: &str) -> Result<usize, InputError> {
        self.index
            .get(step)
            .copied()
            .ok_or_else(|| InputError::UnknownStep(step.to_owned()))
    }

    fn running(&self, step: &str) -> Result<usize, InputError> {
        let i = self.index_of(step)?;
        if !self.is_started() {
            return Err(InputError::NotStarted);
        }
        match self.steps[i].state {
            StepState::Running => Ok(i),
            other => Err(InputError::NotRunning {
                step: step.to_owned(),
                state: other.as_str(),
            }),
        }
    }

    fn evaluate(&mut self, v: &Value, now: DateTime<Utc>) -> Evaluation {
        self.data.now = now;
        let mut asked = BTreeSet::new();
        loop {
            let ev = expr::evaluate(v, &self.data);
            if !self.fetch(&ev.unresolved, &mut asked) {
                return ev;
            }
        }
    }

    fn evaluate_when(&mut self, v: &Value, now: DateTime<Utc>) -> WhenOutcome {
        self.data.now = now;
        let mut asked = BTreeSet::new();
        loop {
            let outcome = expr::evaluate_when(v, &self.data);
            match &outcome {
                WhenOutcome::Unresolved(u) if self.fetch(u, &mut asked) => {}
                _ => return outcome,
            }
        }
    }

    /// Asks the resolver for the secrets and connections `u` lacks (see
    /// [`crate::secrets::fetch`]) and refreshes the masks when something was learned.
    fn fetch(&mut self, u: &Unresolved, asked: &mut crate::secrets::Asked) -> bool {
        let learned = crate::secrets::fetch(self.resolver.as_ref(), u, &mut self.data, asked);
        if learned {
            self.refresh_masks();
        }
        learned
    }

    fn refresh_masks(&mut self) {
        let mut outputs = Vec::new();
        for (name, s) in self.info.iter().zip(&self.steps) {
            for (key, o) in &s.outputs {
                if !o.sensitive {
                    continue;
                }
                match self.data.outputs.get(&name.name).and_then(|m| m.get(key)) {
                    Some(Value::String(text)) => outputs.push(text.clone()),
                    Some(Value::Null) | None => {}
                    Some(other) => outputs.push(other.to_string()),
                }
            }
        }
        self.masks = crate::secrets::masks(&self.data, outputs);
    }
}

/// Replaces every mask value in `line` by [`MASK`].
pub fn mask_line(line: &str, masks: &[String]) -> String {
    let mut out = line.to_owned();
    for m in masks {
        if out.contains(m.as_str()) {
            out = out.replace(m.as_str(), MASK);
        }
    }
    out
}

/// Workflow defaults overlaid with the supplied values.
fn bind_parameters(
    wf: &Workflow,
    supplied: Map<String, Value>,
) -> Result<Map<String, Value>, RunError> {
    let mut given = BTreeMap::new();
    for (name, value) in supplied {
        if wf.parameter(&name).is_none() {
            return Err(RunError::UnknownParameter(name));
        }
        given.insert(name, value);
    }
    // In declaration order, so what a run shows reads like the file.
    let mut out = Map::new();
    let mut missing = Vec::new();
    for p in &wf.parameters {
        let name = &p.name.value;
        match (given.remove(name), &p.default) {
            (Some(v), _) => {
                out.insert(name.clone(), v);
            }
            (None, Some(d)) => {
                out.insert(name.clone(), d.to_json());
            }
            (None, None) => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(RunError::MissingParameters(missing));
    }
    Ok(out)
}

/// Every `steps.<name>[.<property>]` path in the `${...}` templates of a canonical value.
fn status_references(v: &Value) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if expr::has_template(s) => {
                // A broken template was reported by the parser; it references nothing here.
                let Ok(t) = expr::parse_template(s) else {
                    continue;
                };
                for r in expr::references(&t) {
                    if let [root, step, rest @ ..] = r.segments.as_slice() {
                        if root == "steps" {
                            out.push((step.clone(), rest.first().cloned()));
                        }
                    }
                }
            }
            Value::Array(items) => stack.extend(items),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    out
}

fn escape_quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn parameter_list(names: &[String]) -> String {
    let noun = if names.len() == 1 {
        "parameter"
    } else {
        "parameters"
    };
    format!("{noun} {}", quote_list(names))
}

fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration as workflow files write it: `30s`, `1m30s`, `1h`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let total = d.as_secs();
    if total == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// What an evaluation lacked, in the user's words. Names only, never values.
pub fn describe_unresolved(u: &Unresolved) -> String {
    let mut parts = Vec::new();
    for s in &u.secrets {
        parts.push(format!("secret `{}` does not exist", s.name));
    }
    for c in &u.connections {
        if c.name.is_empty() {
            parts.push(format!("no connection of type `{}` exists", c.r#type));
        } else {
            parts.push(format!(
                "connection `{}` of type `{}` does not exist",
                c.name, c.r#type
            ));
        }
    }
    for p in &u.parameters {
        parts.push(format!("parameter `{}` has no value", p.name));
    }
    for o in &u.outputs {
        if o.name.is_empty() {
            parts.push(format!("step `{}` has set no outputs", o.from));
        } else {
            parts.push(format!(
                "output `{}` of step `{}` was not set",
                o.name, o.from
            ));
        }
    }
    for a in &u.answers {
        parts.push(format!(
            "answer `{}` of approval `{}` was not given",
            a.name, a.ask_ref
        ));
    }
    for s in &u.statuses {
        parts.push(format!(
            "the status of step `{}` is not known yet",
            s.action
        ));
    }
    for d in &u.data {
        parts.push(format!("event data `{}` is not available", d.query));
    }
    parts.join("; ")
}

fn describe_errors(errors: &[expr::EvalError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.path.is_empty() {
                e.message.clone()
            } else {
                format!("{}: {}", e.path, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_workflow_files() {
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn masking_replaces_longest_first() {
        let masks = vec!["hunter22".to_owned(), "hunter".to_owned()];
        assert_eq!(mask_line("pw=hunter22 x=hunter", &masks), "pw=*** x=***");
    }
}
