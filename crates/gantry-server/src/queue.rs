//! Steps go through the store's job queue: a run's driver enqueues each step as a job, and the
//! server's workers claim jobs from the queue and execute them, so what executes a step is
//! decoupled from what drives the run. Remote agents claim from the same queue, from pools of
//! their own.
//!
//! Owns: the [`QueuedRuntime`] the engine's driver calls (it enqueues and waits), the dispatcher
//! that claims this server's jobs, the lease renewals of the jobs it holds, and the job payload
//! (the step, sealed with the vault: a step's environment and metadata token are secrets).
//!
//! Concurrency model: a step submitted while a slot (of `max_parallel_steps`) is free is
//! enqueued already claimed by this worker and executes at once: the enqueue is the claim.
//! Otherwise its job waits in the queue, and one dispatcher task claims up to twice as many
//! jobs as there are slots (claimed, not finished), in one claim, and executes each on its own
//! task once it has a slot. An enqueue wakes it; it also polls, for jobs it did not see
//! enqueued (a restart's leftovers). The enqueue is written behind: the step does not wait for
//! its commit, and the writer commits it before any later claim or completion of it. A
//! step's log lines and outcome go back to the waiting driver in this process through an
//! in-memory table keyed by job id; the job row records who ran it and how it ended.
//! Enqueues, claims and completions go through the group-commit writer with the run's
//! bookkeeping.
//!
//! Pools: this server's jobs are in the pool `server-<owner>`, named after the data directory,
//! stable across restarts and distinct between servers sharing a PostgreSQL database. A job
//! claimed here with no driver waiting for it (its run was cancelled, or cut off by a crash) is
//! completed as abandoned; [`crate::runs::RunService::recover`] abandons a cut-off run's jobs,
//! except the jobs agents kept running, which [`QueuedRuntime::adopt`] takes over for the run
//! it resumes.
//!
//! An agent's lines do not go through the driver: [`QueuedRuntime::agent_logs`] masks them with
//! the run's masks and commits them to the run's log itself, under numbers of their own
//! ([`agent_line_seq`]), before it acknowledges them, so what an agent was told is stored is.
//!
//! Invariants: a step waiting in the queue holds no slot and can be cancelled; at most
//! `max_parallel_steps` steps execute at once; no secret is stored in plain in a job.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Utc;
use gantry_engine::runtime::{
    BoxFuture, LogLine, MetadataEndpoint, Program, StepJob, StepOutcome, StepRuntime,
};
use gantry_store::{BatchWriter, Claim, Job, JobCompletion, Lease, LogChunk, NewJob, Store, Write};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::vault::{Sealed, Vault};

/// How long a claim holds a job before another claimer may take it.
const LEASE: Duration = Duration::from_secs(60);
/// How often the leases of running jobs are renewed.
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// How often the dispatcher looks for jobs nobody told it about.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// How long an agent's claim holds a job without a heartbeat (agents beat every third of it).
pub const AGENT_LEASE: Duration = Duration::from_secs(15);

/// What the queue needs.
pub struct QueueSetup {
    pub store: Arc<dyn Store>,
    pub writes: BatchWriter,
    pub vault: Arc<Vault>,
    /// What executes a claimed step.
    pub runtime: Arc<dyn StepRuntime>,
    /// The pool this server's steps go to and its workers claim from.
    pub pool: String,
    /// What agents' lines are masked of.
    pub masks: Arc<dyn RunMasks>,
    /// This process's name on its leases.
    pub worker: String,
    pub max_parallel_steps: usize,
}

/// The pool a server with this data directory owner (see `TriggerContainers::owner_of`) uses.
pub fn server_pool(owner: &str) -> String {
    format!("server-{owner}")
}

/// A process-unique worker name: the pool, the process id and random bits.
pub fn worker_name(pool: &str) -> String {
    let mut bytes = [0u8; 4];
    // Uniqueness across processes only; the pid already differs between live processes.
    let _ = getrandom::getrandom(&mut bytes);
    let tag: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{pool}/{}-{tag}", std::process::id())
}

/// A driver waiting for its step, or the step executing here, or on an agent.
enum Waiter {
    Queued {
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
        outcome: oneshot::Sender<StepOutcome>,
    },
    Running,
    /// Claimed by an agent, which sends its lines and its end through the agent API.
    Remote(Remote),
}

/// A step an agent runs: who holds it, and the driver waiting for it.
struct Remote {
    /// The agent holding the lease; empty while a job adopted at a restart waits for a claim.
    worker: String,
    run_id: String,
    step: String,
    step_dir: PathBuf,
    /// The claim's attempt: its lines are stored under numbers of their own ([`agent_line_seq`]).
    attempt: i64,
    /// The next line number expected on stdout and on stderr; locked while a batch is stored,
    /// so an answer never runs ahead of what is committed.
    next: Arc<tokio::sync::Mutex<[u64; 2]>>,
    /// The driver waiting; `None` for a job adopted at a restart until its run's driver
    /// re-attaches ([`StepRuntime::reattach`]).
    driver: Option<Driven>,
    /// An end that came before the driver re-attached.
    ended: Option<StepOutcome>,
    /// The agent's end is being taken (its outputs written): a second end is refused, and a
    /// driver re-attaching meanwhile still finds the step and gets the end.
    ending: bool,
    /// The step's metadata API token in this process: the agent's metadata requests are
    /// answered as the step it names.
    token: Option<String>,
}

/// The waiting driver's ends of a step.
struct Driven {
    cancel: CancellationToken,
    outcome: oneshot::Sender<StepOutcome>,
}

/// Masks an agent's lines as their run masks its own (the server's `Registry` of live runs).
pub trait RunMasks: Send + Sync {
    /// What run `run_id`'s lines are masked of now; `None` when the run is not live here.
    fn masks(&self, run_id: &str) -> Option<Vec<String>>;
}

/// How many line numbers each attempt of an agent's job has: attempt `n`'s line `k` is stored
/// as `n · 2³² + k`, above the numbers the run's recorder gives its own lines (from 1), so a
/// resent line is a duplicate key the store skips and a restarted server finds where an
/// attempt's lines stopped ([`Store::last_log_seqs`]).
const ATTEMPT_LINES: i64 = 1 << 32;

/// The stored `seq` of line `n` of attempt `attempt` of an agent's job.
pub fn agent_line_seq(attempt: i64, n: u64) -> Option<i64> {
    let n = i64::try_from(n).ok().filter(|n| *n < ATTEMPT_LINES)?;
    attempt.checked_mul(ATTEMPT_LINES)?.checked_add(n)
}

struct Queue {
    setup: QueueSetup,
    /// Steps executing.
    slots: Arc<Semaphore>,
    /// Jobs claimed by this server and not finished: twice the slots.
    tickets: Arc<Semaphore>,
    waiters: Mutex<HashMap<String, Waiter>>,
    wake: Notify,
    /// Jobs enqueued here unclaimed and not claimed since (saturating at zero: a claim also
    /// finds jobs a previous process left).
    backlog: AtomicUsize,
    /// Agents waiting for work, woken per pool by an enqueue.
    pools: Arc<PoolWakers>,
}

/// One wake-up per agent pool: a claim that found nothing waits on its pool's.
#[derive(Default)]
pub struct PoolWakers {
    pools: Mutex<HashMap<String, Arc<Notify>>>,
}

impl PoolWakers {
    pub fn of(&self, pool: &str) -> Arc<Notify> {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(pools.entry(pool.to_owned()).or_default())
    }

    pub fn wake(&self, pool: &str) {
        let waker = self
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pool)
            .cloned();
        if let Some(w) = waker {
            w.notify_waiters();
        }
    }
}

/// The step runtime the driver calls: each step becomes a job of the server's pool.
#[derive(Clone)]
pub struct QueuedRuntime {
    queue: Arc<Queue>,
}

impl QueuedRuntime {
    /// Starts the dispatcher and the lease renewals on `workers` (where steps execute).
    pub fn start(setup: QueueSetup, workers: &tokio::runtime::Handle) -> QueuedRuntime {
        let slots = Arc::new(Semaphore::new(setup.max_parallel_steps.max(1)));
        let tickets = Arc::new(Semaphore::new(2 * setup.max_parallel_steps.max(1)));
        let queue = Arc::new(Queue {
            setup,
            slots,
            tickets,
            waiters: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            backlog: AtomicUsize::new(0),
            pools: Arc::new(PoolWakers::default()),
        });
        workers.spawn(dispatch(Arc::clone(&queue)));
        workers.spawn(renew(Arc::downgrade(&queue)));
        QueuedRuntime { queue }
    }
}

impl StepRuntime for QueuedRuntime {
    fn name(&self) -> &'static str {
        self.queue.setup.runtime.name()
    }

    fn run(
        &self,
        job: StepJob,
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, StepOutcome> {
        Box::pin(self.queue.clone().submit(job, logs, cancel))
    }

    fn reattach(
        &self,
        job: StepJob,
        _logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, StepOutcome> {
        // An agent's lines reach the run's record through `agent_logs`, not the driver.
        Box::pin(self.queue.clone().reattach(job, cancel))
    }

    fn clean_up<'a>(&'a self, run_id: Option<&'a str>) -> BoxFuture<'a, Result<usize, String>> {
        self.queue.setup.runtime.clean_up(run_id)
    }
}

impl Queue {
    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiter>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn submit(
        self: Arc<Self>,
        step: StepJob,
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
    ) -> StepOutcome {
        let id = match gantry_store::new_id() {
            Ok(id) => id,
            Err(e) => return StepOutcome::FailedToStart(format!("the job queue failed: {e}")),
        };
        // A step of an agent pool waits in its pool's queue for an agent to claim it.
        let remote = step_pool(&step).filter(|p| *p != self.setup.pool.as_str());
        let pool = remote.map_or_else(|| self.setup.pool.clone(), str::to_owned);
        // A free slot now, and no step waiting ahead: the enqueue is also the claim, and the
        // step executes at once. Otherwise the job waits in the queue for the dispatcher.
        let held = if remote.is_none() && self.backlog.load(Ordering::SeqCst) == 0 {
            self.take_free()
        } else {
            None
        };
        // A job claimed at its enqueue executes from memory here and nobody else may claim it
        // (a restart abandons it): it carries no step. A queued one carries the step, sealed.
        let payload = if held.is_some() {
            Ok(json!({"image": step.image, "held_by_enqueuer": true}))
        } else {
            seal_payload(&self.setup.vault, &id, &step)
        };
        let payload = match payload {
            Ok(p) => p,
            Err(message) => return StepOutcome::FailedToStart(message),
        };
        if held.is_none() && remote.is_none() {
            self.backlog.fetch_add(1, Ordering::SeqCst);
        }
        let run_id = step.run_id.clone();
        let (outcome, answer) = oneshot::channel();
        self.waiters().insert(
            id.clone(),
            Waiter::Queued {
                logs,
                cancel: cancel.clone(),
                outcome,
            },
        );
        let lease = held.as_ref().map(|_| self.lease());
        let job = NewJob {
            id: id.clone(),
            pool: pool.clone(),
            run_id: step.run_id.clone(),
            step: step.step.clone(),
            payload,
            available_at: Utc::now(),
            claimed: lease.clone(),
        };
        let claimed = lease.map(|lease| Job {
            id: job.id.clone(),
            pool: job.pool.clone(),
            run_id: job.run_id.clone(),
            step: job.step.clone(),
            payload: job.payload.clone(),
            available_at: job.available_at,
            worker: Some(lease.worker),
            lease_until: None,
            attempts: 1,
            completed_at: None,
            result: None,
        });
        // In line on the writer: the dispatcher's claim and the job's completion are queued
        // after it, so they see it committed; the step need not wait for the commit.
        let committed = match self.setup.writes.enqueue_behind(job).await {
            Ok(committed) => committed,
            Err(e) => {
                self.waiters().remove(&id);
                if claimed.is_none() && remote.is_none() {
                    self.backlog.fetch_sub(1, Ordering::SeqCst);
                }
                return StepOutcome::FailedToStart(format!("the job queue failed: {e}"));
            }
        };
        match (claimed, held) {
            (Some(job), Some((ticket, slot))) => {
                tokio::spawn(Arc::clone(&self).execute(job, ticket, Some((slot, step))));
            }
            // An agent's claim goes through the same writer, after this enqueue.
            _ if remote.is_some() => self.pools.wake(&pool),
            _ => self.wake.notify_one(),
        }
        let mut answer = answer;
        let outcome = tokio::select! {
            outcome = &mut answer => outcome.unwrap_or_else(|_| stopped()),
            () = cancel.cancelled() => {
                // Not executing yet: give up the job (a claim of it finds nobody waiting and
                // abandons it). Executing: the runtime sees the same token.
                let (queued, remote) = {
                    let mut waiters = self.waiters();
                    match waiters.get(&id) {
                        Some(Waiter::Queued { .. }) => (waiters.remove(&id).is_some(), false),
                        Some(Waiter::Remote(_)) => (false, true),
                        _ => (false, false),
                    }
                };
                if queued {
                    StepOutcome::Cancelled
                } else if remote {
                    self.cancelled_remote(&id, answer).await
                } else {
                    answer.await.unwrap_or_else(|_| stopped())
                }
            }
        };
        // Committed long before the step ended; awaited here rather than on a task of its own.
        if let Err(e) = committed.await {
            tracing::warn!(run = %run_id, error = %e, "a step's job could not be recorded");
        }
        outcome
    }

    /// Waits again for a step an agent ran for a run cut off by a restart (adopted by
    /// [`QueuedRuntime::adopt`]).
    async fn reattach(self: Arc<Self>, step: StepJob, cancel: CancellationToken) -> StepOutcome {
        let (outcome, answer) = oneshot::channel();
        let found = {
            let mut waiters = self.waiters();
            let id = waiters.iter().find_map(|(id, w)| match w {
                Waiter::Remote(r) if r.run_id == step.run_id && r.step == step.step => {
                    Some(id.clone())
                }
                _ => None,
            });
            match id {
                Some(id) => match waiters.get_mut(&id) {
                    Some(Waiter::Remote(r)) => match r.ended.take() {
                        Some(ended) => {
                            waiters.remove(&id);
                            return ended;
                        }
                        None => {
                            r.driver = Some(Driven {
                                cancel: cancel.clone(),
                                outcome,
                            });
                            r.token = step.metadata.as_ref().map(|m| m.token.clone());
                            Some(id)
                        }
                    },
                    _ => None,
                },
                None => None,
            }
        };
        let Some(id) = found else {
            return StepOutcome::FailedToStart(
                "the step's job could not be found again after the restart".to_owned(),
            );
        };
        let mut answer = answer;
        tokio::select! {
            outcome = &mut answer => outcome.unwrap_or_else(|_| stopped()),
            () = cancel.cancelled() => self.cancelled_remote(&id, answer).await,
        }
    }

    /// The end of an agent's step whose run asked to cancel it: the agent hears of it at its
    /// next heartbeat; one that vanished never answers, so the wait ends when its lease would
    /// have.
    async fn cancelled_remote(
        &self,
        id: &str,
        answer: oneshot::Receiver<StepOutcome>,
    ) -> StepOutcome {
        match tokio::time::timeout(2 * AGENT_LEASE, answer).await {
            Ok(outcome) => outcome.unwrap_or_else(|_| stopped()),
            Err(_) => {
                self.waiters().remove(id);
                StepOutcome::Cancelled
            }
        }
    }

    /// A ticket and a slot, if both are free now.
    fn take_free(&self) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let ticket = Arc::clone(&self.tickets).try_acquire_owned().ok()?;
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        Some((ticket, slot))
    }

    /// Executes a claimed job: waits for a slot unless given one (with the step, for a job
    /// claimed at its enqueue), and holds `ticket` (this server's bound on jobs claimed and
    /// not finished) until it ends.
    async fn execute(
        self: Arc<Self>,
        job: Job,
        ticket: OwnedSemaphorePermit,
        held: Option<(OwnedSemaphorePermit, StepJob)>,
    ) {
        let (slot, step) = match held {
            Some((slot, step)) => (Some(slot), Some(step)),
            None => (None, None),
        };
        let waiting = {
            let mut waiters = self.waiters();
            match waiters.get(&job.id) {
                // Claimed again after its lease lapsed while it still executes here (or on an
                // agent, which a pool of this server's never is).
                Some(Waiter::Running | Waiter::Remote(_)) => return,
                Some(Waiter::Queued { .. }) => waiters.insert(job.id.clone(), Waiter::Running),
                None => None,
            }
        };
        let Some(Waiter::Queued {
            logs,
            cancel,
            outcome,
        }) = waiting
        else {
            drop((ticket, slot));
            self.complete(
                &job,
                json!({"abandoned": "nobody waits for this step any more"}),
            )
            .await;
            return;
        };
        let slot = match slot {
            Some(slot) => Some(slot),
            None => tokio::select! {
                slot = Arc::clone(&self.slots).acquire_owned() => slot.ok(),
                () = cancel.cancelled() => None,
            },
        };
        let result = match slot {
            None => StepOutcome::Cancelled,
            Some(_) => match step.map_or_else(|| open_payload(&self.setup.vault, &job), Ok) {
                Ok(step) => self.setup.runtime.run(step, logs, cancel).await,
                Err(message) => StepOutcome::FailedToStart(message),
            },
        };
        drop((ticket, slot));
        self.waiters().remove(&job.id);
        let recorded = outcome_json(&result);
        // The driver may have stopped waiting (its run was torn down); the job still ends.
        let _ = outcome.send(result);
        self.complete(&job, recorded).await;
    }

    async fn complete(&self, job: &Job, result: Value) {
        if let Err(e) = self.complete_as(&job.id, &self.setup.worker, result).await {
            tracing::warn!(job = %job.id, run = %job.run_id, error = %e, "could not record a job's end");
        }
    }

    /// Records job `id`'s end, by `worker` (this server's, or an agent's).
    async fn complete_as(
        &self,
        id: &str,
        worker: &str,
        result: Value,
    ) -> Result<(), gantry_store::StoreError> {
        let done = JobCompletion {
            job_id: id.to_owned(),
            worker: worker.to_owned(),
            result,
            at: Utc::now(),
        };
        self.setup.writes.complete_job(done).await
    }

    fn lease(&self) -> Lease {
        Lease {
            worker: self.setup.worker.clone(),
            duration: LEASE,
            now: Utc::now(),
        }
    }
}

/// What an agent call about a job it holds can come to.
#[derive(Debug, PartialEq, Eq)]
pub enum AgentRefusal {
    /// No such job waits for an agent here.
    Unknown,
    /// Another agent holds it now (this one's lease lapsed), or it has ended.
    NotYours,
    /// A gap in the line numbers: resend from what the answer says.
    Failed(String),
}

/// One line from an agent: its stream (0 stdout, 1 stderr), number and text.
pub struct AgentLine {
    pub stream: usize,
    pub seq: u64,
    pub line: String,
}

/// A job handed to an agent, opened: the step and its spec.
pub struct AgentClaimed {
    pub job: Job,
    pub step: StepJob,
    pub spec: Option<Value>,
}

impl QueuedRuntime {
    /// The wake-ups of agents waiting for work.
    pub fn pools(&self) -> Arc<PoolWakers> {
        Arc::clone(&self.queue.pools)
    }

    /// Claims up to `limit` jobs of `pool` for the agent `worker`. A job nobody waits for any
    /// more is completed as abandoned and not handed out; a job claimed again after another
    /// agent's lease lapsed is handed to this one (its lines start over, numbered from 0).
    pub async fn claim_for_agent(
        &self,
        pool: &str,
        worker: &str,
        limit: u32,
    ) -> Result<Vec<AgentClaimed>, gantry_store::StoreError> {
        let queue = &self.queue;
        let jobs = queue
            .setup
            .writes
            .claim(Claim {
                pool: pool.to_owned(),
                lease: Lease {
                    worker: worker.to_owned(),
                    duration: AGENT_LEASE,
                    now: Utc::now(),
                },
                limit,
            })
            .await?;
        let mut out = Vec::new();
        for job in jobs {
            let step = match open_payload(&queue.setup.vault, &job) {
                Ok(step) => step,
                Err(message) => {
                    self.fail_waiter(&job.id, StepOutcome::FailedToStart(message));
                    let result = json!({"failed_to_start": "unreadable payload"});
                    let _ = queue.complete_as(&job.id, worker, result).await;
                    continue;
                }
            };
            let bound = {
                let mut waiters = queue.waiters();
                match waiters.remove(&job.id) {
                    // The agent's lines go to the run's record through `agent_logs`.
                    Some(Waiter::Queued {
                        logs: _,
                        cancel,
                        outcome,
                    }) => {
                        waiters.insert(
                            job.id.clone(),
                            Waiter::Remote(Remote {
                                worker: worker.to_owned(),
                                run_id: step.run_id.clone(),
                                step: step.step.clone(),
                                step_dir: step.step_dir.clone(),
                                attempt: job.attempts,
                                next: Arc::default(),
                                driver: Some(Driven { cancel, outcome }),
                                ended: None,
                                ending: false,
                                token: step.metadata.as_ref().map(|m| m.token.clone()),
                            }),
                        );
                        true
                    }
                    Some(Waiter::Remote(mut r)) if r.ended.is_none() => {
                        if !r.worker.is_empty() {
                            tracing::warn!(job = %job.id, from = %r.worker, to = %worker, attempt = job.attempts, "an agent's lease lapsed: its step runs again on another");
                        }
                        r.worker = worker.to_owned();
                        r.attempt = job.attempts;
                        r.next = Arc::default();
                        waiters.insert(job.id.clone(), Waiter::Remote(r));
                        true
                    }
                    Some(other) => {
                        waiters.insert(job.id.clone(), other);
                        false
                    }
                    None => false,
                }
            };
            if !bound {
                let result = json!({"abandoned": "nobody waits for this step any more"});
                let _ = queue.complete_as(&job.id, worker, result).await;
                continue;
            }
            let spec = tokio::fs::read(step.step_dir.join("spec.json"))
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            out.push(AgentClaimed { job, step, spec });
        }
        Ok(out)
    }

    /// Ends a claimed job that cannot be handed to its agent.
    pub async fn agent_failed(&self, id: &str, worker: &str, message: String) {
        self.fail_waiter(id, StepOutcome::FailedToStart(message.clone()));
        let result = json!({ "failed_to_start": message });
        if let Err(e) = self.queue.complete_as(id, worker, result).await {
            tracing::warn!(job = %id, error = %e, "could not record a job's end");
        }
    }

    fn fail_waiter(&self, id: &str, outcome: StepOutcome) {
        let waiter = self.queue.waiters().remove(id);
        if let Some(
            Waiter::Queued { outcome: tx, .. }
            | Waiter::Remote(Remote {
                driver: Some(Driven { outcome: tx, .. }),
                ..
            }),
        ) = waiter
        {
            let _ = tx.send(outcome);
        }
    }

    /// Renews `worker`'s lease on job `id`; says whether the run wants the step cancelled.
    pub async fn agent_heartbeat(&self, id: &str, worker: &str) -> Result<bool, AgentRefusal> {
        let cancelled = match self.queue.waiters().get(id) {
            Some(Waiter::Remote(r)) if r.worker == worker && r.ended.is_none() => {
                r.driver.as_ref().is_some_and(|d| d.cancel.is_cancelled())
            }
            Some(Waiter::Remote(_)) => return Err(AgentRefusal::NotYours),
            _ => return Err(AgentRefusal::Unknown),
        };
        let lease = Lease {
            worker: worker.to_owned(),
            duration: AGENT_LEASE,
            now: Utc::now(),
        };
        match self.queue.setup.store.heartbeat(id, &lease).await {
            Ok(()) => Ok(cancelled),
            Err(gantry_store::StoreError::Conflict(_)) => Err(AgentRefusal::NotYours),
            Err(gantry_store::StoreError::NotFound(_)) => Err(AgentRefusal::Unknown),
            Err(e) => Err(AgentRefusal::Failed(e.to_string())),
        }
    }

    /// Keeps an agent's lines in its run's record: each line once and in order, masked as the
    /// run masks its own, committed before the answer. Returns the next number expected on
    /// each stream, so everything below it is stored: an agent may forget it, and a server
    /// that restarts finds the same numbers in the store ([`QueuedRuntime::adopt`]).
    pub async fn agent_logs(
        &self,
        id: &str,
        worker: &str,
        lines: Vec<AgentLine>,
    ) -> Result<[u64; 2], AgentRefusal> {
        let (next, run_id, step, attempt) = {
            match self.queue.waiters().get(id) {
                Some(Waiter::Remote(r)) if r.worker == worker && r.ended.is_none() => (
                    Arc::clone(&r.next),
                    r.run_id.clone(),
                    r.step.clone(),
                    r.attempt,
                ),
                Some(Waiter::Remote(_)) => return Err(AgentRefusal::NotYours),
                _ => return Err(AgentRefusal::Unknown),
            }
        };
        // One batch of a job at a time: a resent batch waits for the first one's commit.
        let mut next = next.lock().await;
        let mut want = *next;
        let mut chunks = Vec::new();
        let masks = if lines.iter().any(|l| l.seq == want[l.stream.min(1)]) {
            self.queue
                .setup
                .masks
                .masks(&run_id)
                .ok_or(AgentRefusal::Unknown)?
        } else {
            Vec::new()
        };
        let at = Utc::now();
        for l in lines {
            let i = l.stream.min(1);
            if l.seq != want[i] {
                continue;
            }
            let Some(seq) = agent_line_seq(attempt, l.seq) else {
                break;
            };
            want[i] += 1;
            let line = gantry_engine::run::mask_line(&l.line, &masks);
            chunks.push(Write::Log(LogChunk {
                run_id: run_id.clone(),
                step: step.clone(),
                stream: if i == 0 { "stdout" } else { "stderr" }.to_owned(),
                seq,
                bytes: format!("{line}\n").into_bytes(),
                at,
            }));
        }
        if !chunks.is_empty() {
            self.queue
                .setup
                .writes
                .write_in_order(chunks)
                .await
                .map_err(|e| AgentRefusal::Failed(e.to_string()))?;
        }
        *next = want;
        Ok(want)
    }

    /// The metadata API token of the step `worker` runs as job `id`: the server answers the
    /// agent's metadata requests for that step with it. The token never leaves the server.
    pub fn agent_step_token(&self, id: &str, worker: &str) -> Result<String, AgentRefusal> {
        match self.queue.waiters().get(id) {
            Some(Waiter::Remote(r)) if r.worker == worker && r.ended.is_none() => {
                r.token.clone().ok_or_else(|| {
                    AgentRefusal::Failed("the step has no metadata API token".to_owned())
                })
            }
            Some(Waiter::Remote(_)) => Err(AgentRefusal::NotYours),
            _ => Err(AgentRefusal::Unknown),
        }
    }

    /// Ends an agent's job: writes its outputs into the step's folder, answers the driver, and
    /// records the end.
    pub async fn agent_complete(
        &self,
        id: &str,
        worker: &str,
        outcome: StepOutcome,
        outputs: BTreeMap<String, String>,
    ) -> Result<(), AgentRefusal> {
        // The waiter stays in place while the outputs are written, so a driver re-attaching
        // after a restart meanwhile finds it (and gets the end below).
        let step_dir = {
            let mut waiters = self.queue.waiters();
            match waiters.get_mut(id) {
                Some(Waiter::Remote(r)) if r.worker == worker && r.ended.is_none() && !r.ending => {
                    r.ending = true;
                    r.step_dir.clone()
                }
                Some(Waiter::Remote(_)) => return Err(AgentRefusal::NotYours),
                _ => return Err(AgentRefusal::Unknown),
            }
        };
        let dir = step_dir.join("outputs");
        for (name, value) in &outputs {
            // A name is one path segment: nothing outside `outputs/`.
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                continue;
            }
            let _ = tokio::fs::create_dir_all(&dir).await;
            if let Err(e) = tokio::fs::write(dir.join(name), value).await {
                tracing::warn!(job = %id, output = %name, error = %e, "could not keep an agent step's output");
            }
        }
        let recorded = outcome_json(&outcome);
        {
            let mut waiters = self.queue.waiters();
            if let Some(Waiter::Remote(mut remote)) = waiters.remove(id) {
                match remote.driver.take() {
                    Some(driver) => {
                        let _ = driver.outcome.send(outcome);
                    }
                    // Adopted at a restart, and its run's driver has not re-attached yet: it
                    // finds the end waiting.
                    None => {
                        remote.ended = Some(outcome);
                        waiters.insert(id.to_owned(), Waiter::Remote(remote));
                    }
                }
            }
        }
        self.queue
            .complete_as(id, worker, recorded)
            .await
            .map_err(|e| AgentRefusal::Failed(e.to_string()))
    }
}

impl QueuedRuntime {
    /// The store the queue is kept in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.queue.setup.store
    }

    /// Whether `pool` is an agents' pool rather than this server's own.
    pub fn is_agent_pool(&self, pool: &str) -> bool {
        pool != self.queue.setup.pool
    }

    /// Takes over, after a restart, an open job of an agents' pool whose run is being resumed:
    /// it waits for its agent (or for a claim) again, and its run's driver re-attaches to it
    /// ([`StepRuntime::reattach`]). A claimed job gets its lease back for [`AGENT_LEASE`] from
    /// now, so the time the server was down does not count against the agent, and the numbers
    /// its lines continue from are read from the store. `false` (and the job is left alone)
    /// when it cannot be taken over: its payload does not open with this server's keys, or it
    /// ended or went to another worker meanwhile.
    pub async fn adopt(&self, job: &Job) -> bool {
        let queue = &self.queue;
        let step = match open_payload(&queue.setup.vault, job) {
            Ok(step) => step,
            Err(message) => {
                tracing::warn!(job = %job.id, %message, "a job of a resumed run cannot be re-attached");
                return false;
            }
        };
        let mut next = [0u64; 2];
        if let Some(worker) = &job.worker {
            let lease = Lease {
                worker: worker.clone(),
                duration: AGENT_LEASE,
                now: Utc::now(),
            };
            if let Err(e) = queue.setup.store.restore_lease(&job.id, &lease).await {
                tracing::warn!(job = %job.id, error = %e, "a job of a resumed run cannot be re-attached");
                return false;
            }
            let (Some(from), Some(to)) = (
                agent_line_seq(job.attempts, 0),
                agent_line_seq(job.attempts + 1, 0),
            ) else {
                return false;
            };
            let marks = match queue.setup.store.last_log_seqs(&job.run_id, from, to).await {
                Ok(marks) => marks,
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "a job of a resumed run cannot be re-attached");
                    return false;
                }
            };
            for m in marks.iter().filter(|m| m.step == job.step) {
                let i = usize::from(m.stream == "stderr");
                next[i] = u64::try_from(m.seq - from + 1).unwrap_or(0);
            }
        }
        queue.waiters().insert(
            job.id.clone(),
            Waiter::Remote(Remote {
                worker: job.worker.clone().unwrap_or_default(),
                run_id: job.run_id.clone(),
                step: job.step.clone(),
                step_dir: step.step_dir,
                attempt: job.attempts,
                next: Arc::new(tokio::sync::Mutex::new(next)),
                driver: None,
                ended: None,
                ending: false,
                // The token of the process that stopped; the driver brings this one's.
                token: None,
            }),
        );
        true
    }
}

/// The agent pool a step names, if any.
fn step_pool(step: &StepJob) -> Option<&str> {
    step.pool.as_deref()
}

fn stopped() -> StepOutcome {
    StepOutcome::FailedToStart("the worker executing this step stopped".to_owned())
}

/// Claims jobs while there are free tickets, and executes each on its own task, which waits
/// for a slot. Claiming ahead of free slots (up to two tickets per slot) keeps slots busy
/// while a claim is in flight.
async fn dispatch(queue: Arc<Queue>) {
    loop {
        let Ok(first) = Arc::clone(&queue.tickets).acquire_owned().await else {
            return;
        };
        let want = 1 + queue.tickets.available_permits();
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        // Through the group-commit writer: a claim shares its transaction (and fsync) with
        // the enqueues, completions and run bookkeeping waiting beside it.
        let claimed = queue
            .setup
            .writes
            .claim(Claim {
                pool: queue.setup.pool.clone(),
                lease: queue.lease(),
                limit: want,
            })
            .await;
        let jobs = match claimed {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim jobs; trying again");
                drop(first);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if jobs.is_empty() {
            drop(first);
            tokio::select! {
                () = queue.wake.notified() => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
            continue;
        }
        let n = jobs.len();
        let _ = queue
            .backlog
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                Some(b.saturating_sub(n))
            });
        let mut first = Some(first);
        for job in jobs {
            // Submitters take tickets too (while the backlog is empty): wait if need be.
            let ticket = match first.take() {
                Some(ticket) => ticket,
                None => match Arc::clone(&queue.tickets).acquire_owned().await {
                    Ok(ticket) => ticket,
                    Err(_) => return,
                },
            };
            tokio::spawn(Arc::clone(&queue).execute(job, ticket, None));
        }
    }
}

/// Renews the leases of the jobs executing here, until the queue is gone.
async fn renew(queue: std::sync::Weak<Queue>) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let Some(queue) = queue.upgrade() else {
            return;
        };
        // Claimed jobs waiting for a slot hold leases too.
        let holding = !queue.waiters().is_empty();
        if holding {
            if let Err(e) = queue.setup.store.renew_leases(&queue.lease()).await {
                tracing::warn!(error = %e, "could not renew the leases of running steps");
            }
        }
    }
}

/// How a job ended, as stored in its row.
fn outcome_json(outcome: &StepOutcome) -> Value {
    match outcome {
        StepOutcome::Exited(code) => json!({"exited": code}),
        StepOutcome::FailedToStart(message) => json!({"failed_to_start": message}),
        StepOutcome::Cancelled => json!({"cancelled": true}),
    }
}

/// A step as a job carries it; sealed whole (its environment and token are secrets).
#[derive(Debug, Serialize, Deserialize)]
struct StepPayload {
    run_id: String,
    step: String,
    image: Option<String>,
    program: ProgramPayload,
    env: BTreeMap<String, String>,
    step_dir: PathBuf,
    metadata: Option<(u16, String)>,
    /// Absent when the step names no pool, so such a payload is what it was before pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pool: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ProgramPayload {
    Script(String),
    InputFile {
        reference: String,
        base_dir: PathBuf,
    },
    Command {
        command: Option<String>,
        args: Vec<String>,
    },
}

fn job_binding(id: &str) -> String {
    format!("job/{id}")
}

/// The job's payload: the image in plain (what a claimer may select on), the step sealed.
fn seal_payload(vault: &Vault, id: &str, step: &StepJob) -> Result<Value, String> {
    let payload = StepPayload {
        run_id: step.run_id.clone(),
        step: step.step.clone(),
        image: step.image.clone(),
        program: match &step.program {
            Program::Script(s) => ProgramPayload::Script(s.clone()),
            Program::InputFile {
                reference,
                base_dir,
            } => ProgramPayload::InputFile {
                reference: reference.clone(),
                base_dir: base_dir.clone(),
            },
            Program::Command { command, args } => ProgramPayload::Command {
                command: command.clone(),
                args: args.clone(),
            },
        },
        env: step.env.clone(),
        step_dir: step.step_dir.clone(),
        metadata: step.metadata.as_ref().map(|m| (m.port, m.token.clone())),
        pool: step.pool.clone(),
    };
    let plain = serde_json::to_vec(&payload).map_err(|e| format!("the job queue failed: {e}"))?;
    let sealed = vault
        .seal(&job_binding(id), &plain)
        .map_err(|e| format!("the job queue failed: {e}"))?;
    Ok(json!({
        "image": step.image,
        "sealed": {
            "key_id": sealed.key_id,
            "nonce": STANDARD.encode(&sealed.nonce),
            "ciphertext": STANDARD.encode(&sealed.ciphertext),
        },
    }))
}

/// The step a claimed job carries. The message names no value.
fn open_payload(vault: &Vault, job: &Job) -> Result<StepJob, String> {
    let bad = || format!("job {} has an unreadable payload", job.id);
    let sealed = job.payload.get("sealed").ok_or_else(bad)?;
    let field = |name: &str| {
        sealed
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(bad)
            .map(str::to_owned)
    };
    let decode = |name: &str| STANDARD.decode(field(name)?).map_err(|_| bad());
    let sealed = Sealed {
        key_id: field("key_id")?,
        nonce: decode("nonce")?,
        ciphertext: decode("ciphertext")?,
    };
    let plain = vault
        .open(&job_binding(&job.id), &sealed)
        .map_err(|_| format!("job {} cannot be opened with this server's keys", job.id))?;
    let payload: StepPayload = serde_json::from_slice(&plain).map_err(|_| bad())?;
    Ok(StepJob {
        run_id: payload.run_id,
        step: payload.step,
        image: payload.image,
        program: match payload.program {
            ProgramPayload::Script(s) => Program::Script(s),
            ProgramPayload::InputFile {
                reference,
                base_dir,
            } => Program::InputFile {
                reference,
                base_dir,
            },
            ProgramPayload::Command { command, args } => Program::Command { command, args },
        },
        env: payload.env,
        step_dir: payload.step_dir,
        metadata: payload
            .metadata
            .map(|(port, token)| MetadataEndpoint { port, token }),
        pool: payload.pool,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_store::{NewRun, RunOrigin, SqliteStore};

    /// Counts how many of its steps run at once; each runs until released or cancelled.
    struct Gate {
        now: AtomicUsize,
        most: AtomicUsize,
        started: AtomicUsize,
        open: tokio::sync::Semaphore,
    }

    impl Gate {
        fn new() -> Arc<Gate> {
            Arc::new(Gate {
                now: AtomicUsize::new(0),
                most: AtomicUsize::new(0),
                started: AtomicUsize::new(0),
                open: tokio::sync::Semaphore::new(0),
            })
        }
    }

    impl StepRuntime for Gate {
        fn name(&self) -> &'static str {
            "gate"
        }

        fn run(
            &self,
            job: StepJob,
            logs: mpsc::Sender<LogLine>,
            cancel: CancellationToken,
        ) -> BoxFuture<'_, StepOutcome> {
            Box::pin(async move {
                let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(n, Ordering::SeqCst);
                self.started.fetch_add(1, Ordering::SeqCst);
                let _ = logs
                    .send(LogLine {
                        step: job.step.clone(),
                        stream: gantry_engine::runtime::LogStream::Stdout,
                        line: format!("env has {} values", job.env.len()),
                    })
                    .await;
                let outcome = tokio::select! {
                    permit = self.open.acquire() => {
                        permit.expect("gate").forget();
                        StepOutcome::Exited(0)
                    }
                    () = cancel.cancelled() => StepOutcome::Cancelled,
                };
                self.now.fetch_sub(1, Ordering::SeqCst);
                outcome
            })
        }

        fn clean_up<'a>(&'a self, _: Option<&'a str>) -> BoxFuture<'a, Result<usize, String>> {
            Box::pin(async { Ok(0) })
        }
    }

    struct Fixture {
        dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        queue: QueuedRuntime,
    }

    /// Masks one value, as a run that resolved that secret would.
    struct Masks;

    impl RunMasks for Masks {
        fn masks(&self, _: &str) -> Option<Vec<String>> {
            Some(vec!["s3cret-value".to_owned()])
        }
    }

    async fn fixture(inner: Arc<dyn StepRuntime>, slots: usize, runs: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join("gantry.db"))
                .await
                .expect("store"),
        );
        for i in 0..runs {
            store
                .create_run(&NewRun {
                    id: format!("r{i}"),
                    workflow: "wf".into(),
                    workflow_version: 1,
                    parameters: json!({}),
                    origin: RunOrigin::Manual,
                    created_at: Utc::now(),
                    audit: gantry_store::Audit::system("queue test", Utc::now()),
                })
                .await
                .expect("run");
        }
        let queue = queue_on(dir.path(), store.clone(), inner, slots);
        Fixture { dir, store, queue }
    }

    /// A queue (as a server starting on `dir` makes it) over `store`.
    fn queue_on(
        dir: &std::path::Path,
        store: Arc<dyn Store>,
        inner: Arc<dyn StepRuntime>,
        slots: usize,
    ) -> QueuedRuntime {
        let vault = Arc::new(Vault::load(dir, None).expect("vault"));
        let writes = BatchWriter::start(store.clone(), Default::default());
        QueuedRuntime::start(
            QueueSetup {
                store,
                writes,
                vault,
                runtime: inner,
                masks: Arc::new(Masks),
                pool: "server-test".into(),
                worker: worker_name("server-test"),
                max_parallel_steps: slots,
            },
            &tokio::runtime::Handle::current(),
        )
    }

    /// The lines stored for step `s` of run `r{run}`.
    async fn stored_lines(store: &dyn Store, run: usize) -> Vec<String> {
        store
            .read_step_logs(&format!("r{run}"), "s", None, 1000)
            .await
            .expect("logs")
            .into_iter()
            .map(|c| {
                String::from_utf8_lossy(&c.chunk.bytes)
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }

    fn step(run: usize, program: Program, env: &[(&str, &str)]) -> StepJob {
        StepJob {
            run_id: format!("r{run}"),
            step: "s".into(),
            image: Some("busybox".into()),
            program,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            step_dir: std::env::temp_dir(),
            metadata: Some(MetadataEndpoint {
                port: 1,
                token: "step-token-value".into(),
            }),
            pool: None,
        }
    }

    /// Waits until run `r{run}` has `n` completed jobs; returns all its jobs.
    async fn completed_jobs(store: &dyn Store, run: usize, n: usize) -> Vec<Job> {
        for _ in 0..250 {
            let jobs = store.run_jobs(&format!("r{run}")).await.expect("jobs");
            if jobs.iter().filter(|j| j.completed_at.is_some()).count() >= n {
                return jobs;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("run r{run} has fewer than {n} completed jobs");
    }

    /// A step of pool `edge`, submitted on its own task; its lines come to `rx`.
    fn submit_remote(
        f: &Fixture,
        run: usize,
    ) -> (
        tokio::task::JoinHandle<StepOutcome>,
        mpsc::Receiver<LogLine>,
    ) {
        let (tx, rx) = mpsc::channel(64);
        let mut job = step(run, Program::Script("echo hi".into()), &[("K", "v")]);
        job.pool = Some("edge".into());
        let queue = f.queue.clone();
        let task = tokio::spawn(async move { queue.run(job, tx, CancellationToken::new()).await });
        (task, rx)
    }

    /// Claims for `worker` until something comes (the enqueue is written behind).
    async fn claim_some(f: &Fixture, worker: &str, limit: u32) -> Vec<AgentClaimed> {
        for _ in 0..250 {
            let got = f
                .queue
                .claim_for_agent("edge", worker, limit)
                .await
                .expect("claim");
            if !got.is_empty() {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("nothing to claim");
    }

    fn line(stream: usize, seq: u64, text: &str) -> AgentLine {
        AgentLine {
            stream,
            seq,
            line: text.into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_step_passes_each_line_once_and_in_order() {
        let f = fixture(Arc::new(gantry_runtime::ProcessRuntime::new()), 1, 1).await;
        let (task, mut rx) = submit_remote(&f, 0);
        let claimed = claim_some(&f, "agent:edge/a", 4).await;
        assert_eq!(claimed.len(), 1);
        let c = &claimed[0];
        // The step opened for the agent, secrets and all; the job row holds none in plain.
        assert_eq!(c.step.env.get("K").map(String::as_str), Some("v"));
        assert_eq!(c.job.pool, "edge");
        let id = c.job.id.clone();

        let next = f
            .queue
            .agent_logs(
                &id,
                "agent:edge/a",
                vec![line(0, 0, "a s3cret-value"), line(0, 1, "b")],
            )
            .await
            .expect("lines");
        assert_eq!(next, [2, 0]);
        // A batch sent again after a lost answer doubles nothing; a gap passes nothing on.
        let next = f
            .queue
            .agent_logs(
                &id,
                "agent:edge/a",
                vec![line(0, 1, "b"), line(0, 2, "c"), line(1, 3, "gap")],
            )
            .await
            .expect("lines");
        assert_eq!(next, [3, 0]);
        // Another agent is refused.
        assert_eq!(
            f.queue
                .agent_logs(&id, "agent:edge/b", vec![line(0, 3, "x")])
                .await,
            Err(AgentRefusal::NotYours)
        );
        assert_eq!(
            f.queue.agent_heartbeat(&id, "agent:edge/a").await,
            Ok(false)
        );
        f.queue
            .agent_complete(&id, "agent:edge/a", StepOutcome::Exited(0), BTreeMap::new())
            .await
            .expect("complete");
        assert_eq!(task.await.expect("driver"), StepOutcome::Exited(0));
        // Stored before they were acknowledged, masked as the run masks its lines; none came
        // through the driver.
        assert_eq!(stored_lines(f.store.as_ref(), 0).await, ["a ***", "b", "c"]);
        assert!(rx.try_recv().is_err());
        // Ended: a second end is refused.
        assert_eq!(
            f.queue
                .agent_complete(&id, "agent:edge/a", StepOutcome::Exited(1), BTreeMap::new())
                .await,
            Err(AgentRefusal::Unknown)
        );
        let jobs = completed_jobs(f.store.as_ref(), 0, 1).await;
        assert_eq!(jobs[0].result, Some(json!({"exited": 0})));
        assert_eq!(jobs[0].worker.as_deref(), Some("agent:edge/a"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_restart_an_agent_job_is_adopted_and_its_lines_go_on_once() {
        let f = fixture(Arc::new(gantry_runtime::ProcessRuntime::new()), 1, 1).await;
        let (task, _rx) = submit_remote(&f, 0);
        let claimed = claim_some(&f, "agent:edge/a", 1).await;
        let id = claimed[0].job.id.clone();
        let next = f
            .queue
            .agent_logs(
                &id,
                "agent:edge/a",
                vec![line(0, 0, "one"), line(0, 1, "two"), line(1, 0, "err")],
            )
            .await
            .expect("lines");
        assert_eq!(next, [2, 1]);
        // The server stops: nothing of it waits for the job any more.
        task.abort();

        // The next start, on the same data directory and database.
        let queue = queue_on(
            f.dir.path(),
            f.store.clone(),
            Arc::new(gantry_runtime::ProcessRuntime::new()),
            1,
        );
        let job = f.store.get_job(&id).await.expect("job");
        assert!(queue.adopt(&job).await);
        // The agent heard nothing for its last batch: it sends "two" again, then "three".
        let next = queue
            .agent_logs(
                &id,
                "agent:edge/a",
                vec![line(0, 1, "two"), line(0, 2, "three")],
            )
            .await
            .expect("lines");
        assert_eq!(next, [3, 1]);
        assert_eq!(queue.agent_heartbeat(&id, "agent:edge/a").await, Ok(false));
        assert_eq!(
            queue.agent_heartbeat(&id, "agent:edge/b").await,
            Err(AgentRefusal::NotYours)
        );
        // The run's driver waits for the step again; the agent ends it (in either order).
        let mut again = step(0, Program::Script("true".into()), &[]);
        again.pool = Some("edge".into());
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move {
                let (tx, _rx) = mpsc::channel(1);
                queue.reattach(again, tx, CancellationToken::new()).await
            }
        });
        queue
            .agent_complete(&id, "agent:edge/a", StepOutcome::Exited(0), BTreeMap::new())
            .await
            .expect("complete");
        assert_eq!(waiting.await.expect("driver"), StepOutcome::Exited(0));
        assert_eq!(
            stored_lines(f.store.as_ref(), 0).await,
            ["one", "two", "err", "three"]
        );
        let jobs = completed_jobs(f.store.as_ref(), 0, 1).await;
        assert_eq!(jobs[0].result, Some(json!({"exited": 0})));
        assert_eq!(jobs[0].attempts, 1, "never claimed again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_another_worker_took_while_the_server_was_down_is_not_adopted() {
        let f = fixture(Arc::new(gantry_runtime::ProcessRuntime::new()), 1, 1).await;
        let (task, _rx) = submit_remote(&f, 0);
        let claimed = claim_some(&f, "agent:edge/a", 1).await;
        let id = claimed[0].job.id.clone();
        task.abort();
        // Its lease lapsed and another server's claim took it for agent b meanwhile.
        let later = Lease {
            worker: "agent:edge/b".into(),
            duration: AGENT_LEASE,
            now: Utc::now() + chrono::Duration::seconds(60),
        };
        let taken = f.store.claim("edge", &later, 1).await.expect("claim");
        assert_eq!(taken.len(), 1);
        let queue = queue_on(
            f.dir.path(),
            f.store.clone(),
            Arc::new(gantry_runtime::ProcessRuntime::new()),
            1,
        );
        let mut job = f.store.get_job(&id).await.expect("job");
        // As the restart read it, before that claim.
        job.worker = Some("agent:edge/a".into());
        assert!(!queue.adopt(&job).await);
        assert_eq!(
            queue.agent_heartbeat(&id, "agent:edge/a").await,
            Err(AgentRefusal::Unknown)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_agents_claiming_at_once_never_get_the_same_job() {
        let f = fixture(Arc::new(gantry_runtime::ProcessRuntime::new()), 1, 8).await;
        let mut tasks = Vec::new();
        for run in 0..8 {
            tasks.push(submit_remote(&f, run));
        }
        // Wait for the enqueues to be written, then claim from two agents at once.
        for _ in 0..250 {
            let mut queued = 0;
            for run in 0..8 {
                queued += f
                    .store
                    .run_jobs(&format!("r{run}"))
                    .await
                    .expect("jobs")
                    .len();
            }
            if queued == 8 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4 {
            let (a, b) = tokio::join!(
                f.queue.claim_for_agent("edge", "agent:edge/a", 2),
                f.queue.claim_for_agent("edge", "agent:edge/b", 2)
            );
            for c in a.expect("a").into_iter().chain(b.expect("b")) {
                assert!(seen.insert(c.job.id.clone()), "{} twice", c.job.id);
            }
        }
        assert_eq!(seen.len(), 8);
        for (task, _) in tasks {
            task.abort();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_step_runs_through_the_queue_and_its_job_records_how_it_ended() {
        let f = fixture(Arc::new(gantry_runtime::ProcessRuntime::new()), 4, 1).await;
        let (tx, mut rx) = mpsc::channel(16);
        let outcome = f
            .queue
            .run(
                step(
                    0,
                    Program::Script("echo \"hello $WHO\"\nexit 3".into()),
                    &[("WHO", "queue"), ("API_TOKEN", "s3cret-value")],
                ),
                tx,
                CancellationToken::new(),
            )
            .await;
        assert_eq!(outcome, StepOutcome::Exited(3));
        let line = rx.recv().await.expect("a log line");
        assert_eq!(line.line, "hello queue");

        // The job row: this server's pool and worker, the outcome, no secret in plain.
        let jobs = completed_jobs(f.store.as_ref(), 0, 1).await;
        let job = &jobs[0];
        assert_eq!(job.pool, "server-test");
        assert!(job.worker.as_deref().unwrap().starts_with("server-test/"));
        assert_eq!(job.result, Some(json!({"exited": 3})));
        assert_eq!((job.run_id.as_str(), job.step.as_str()), ("r0", "s"));
        let stored = job.payload.to_string();
        for secret in ["s3cret-value", "step-token-value", "hello"] {
            assert!(!stored.contains(secret), "{secret} in {stored}");
        }
        assert_eq!(job.payload["image"], "busybox");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_limit_of_steps_execute_at_once() {
        let gate = Gate::new();
        let f = fixture(gate.clone(), 3, 12).await;
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let queue = f.queue.clone();
                tokio::spawn(async move {
                    let (tx, _rx) = mpsc::channel(4);
                    let job = step(i, Program::Script("true".into()), &[]);
                    queue.run(job, tx, CancellationToken::new()).await
                })
            })
            .collect();
        // Let steps through one at a time; three are always in hand, never more.
        for released in 0..12 {
            while gate.started.load(Ordering::SeqCst) < (released + 3).min(12) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(gate.now.load(Ordering::SeqCst) <= 3);
            gate.open.add_permits(1);
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), StepOutcome::Exited(0));
        }
        assert_eq!(gate.most.load(Ordering::SeqCst), 3);
        let (mut held, mut sealed) = (0, 0);
        for run in 0..12 {
            let jobs = completed_jobs(f.store.as_ref(), run, 1).await;
            assert_eq!(jobs[0].result, Some(json!({"exited": 0})));
            // Executed at its enqueue, from memory, or queued with its step sealed.
            match (
                jobs[0].payload.get("held_by_enqueuer"),
                jobs[0].payload.get("sealed"),
            ) {
                (Some(_), None) => held += 1,
                (None, Some(_)) => sealed += 1,
                other => panic!("payload {other:?}"),
            }
        }
        // Twelve steps for three slots: some waited in the queue and were claimed from it.
        assert!(held >= 3 && sealed >= 1, "{held} held, {sealed} sealed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_or_running_step_can_be_cancelled_and_its_job_ends() {
        let gate = Gate::new();
        let f = fixture(gate.clone(), 1, 2).await;
        // r0 holds the only slot; r1 waits in the queue.
        let running = CancellationToken::new();
        let first = tokio::spawn({
            let (queue, cancel) = (f.queue.clone(), running.clone());
            async move {
                let (tx, _rx) = mpsc::channel(4);
                let job = step(0, Program::Script("true".into()), &[]);
                queue.run(job, tx, cancel).await
            }
        });
        while gate.started.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let queued = CancellationToken::new();
        let second = tokio::spawn({
            let (queue, cancel) = (f.queue.clone(), queued.clone());
            async move {
                let (tx, _rx) = mpsc::channel(4);
                let job = step(1, Program::Script("true".into()), &[]);
                queue.run(job, tx, cancel).await
            }
        });
        // Enqueued (durably) before it is cancelled.
        while f.store.run_jobs("r1").await.expect("jobs").is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        queued.cancel();
        assert_eq!(second.await.unwrap(), StepOutcome::Cancelled);
        running.cancel();
        assert_eq!(first.await.unwrap(), StepOutcome::Cancelled);
        assert_eq!(gate.started.load(Ordering::SeqCst), 1, "r1 never executed");

        let r0 = completed_jobs(f.store.as_ref(), 0, 1).await;
        assert_eq!(r0[0].result, Some(json!({"cancelled": true})));
        // r1's job ends too: cancelled while it waited for a slot after its claim, or, if the
        // cancellation came first, abandoned by the claim that found nobody waiting.
        let r1 = completed_jobs(f.store.as_ref(), 1, 1).await;
        let result = r1[0].result.clone().unwrap();
        assert!(
            result == json!({"cancelled": true}) || result.get("abandoned").is_some(),
            "{result}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_sealed_for_another_binding_is_refused_without_its_content() {
        let dir = tempfile::tempdir().expect("temp dir");
        let vault = Vault::load(dir.path(), None).expect("vault");
        // With a pool, so the round trip shows it survives too.
        let step = StepJob {
            pool: Some("edge".into()),
            ..step(0, Program::Script("true".into()), &[("K", "s3cret-value")])
        };
        let payload = seal_payload(&vault, "job-a", &step).expect("seal");
        let job = |id: &str, payload: Value| Job {
            id: id.into(),
            pool: "p".into(),
            run_id: "r0".into(),
            step: "s".into(),
            payload,
            available_at: Utc::now(),
            worker: None,
            lease_until: None,
            attempts: 1,
            completed_at: None,
            result: None,
        };
        let opened = open_payload(&vault, &job("job-a", payload.clone())).expect("open");
        assert_eq!(opened, step);
        // Moved to another job id: refused, the message names no value.
        let moved = open_payload(&vault, &job("job-b", payload)).unwrap_err();
        assert!(
            moved.contains("cannot be opened") && !moved.contains("s3cret"),
            "{moved}"
        );
        let garbled = open_payload(&vault, &job("job-a", json!({"sealed": 1}))).unwrap_err();
        assert!(garbled.contains("unreadable payload"), "{garbled}");
    }
}
