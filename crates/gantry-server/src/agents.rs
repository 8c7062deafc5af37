//! The server's side of the agents: long-polled claims, the jobs handed out, and the list of
//! agents seen (their version, pool, last contact and current jobs).
//!
//! A claim that finds no job waits on its pool's wake-up (an enqueue to the pool fires it) and
//! looks again every second for jobs another server enqueued, until the agent's `waitSeconds`
//! pass: an idle agent costs one request per wait, and a new job starts at once.
//!
//! The list of agents lives in this server's memory: it shows the agents that called this
//! server since it started.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_agent::protocol::{AgentJob, AgentProgram, AgentRef};
use gantry_engine::runtime::Program;
use gantry_store::StoreError;
use serde::Serialize;

use crate::queue::{AgentClaimed, QueuedRuntime};

/// How often a waiting claim looks at the store for jobs it was not woken for.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// The largest script an `inputFile` may hand an agent.
const MAX_INPUT_FILE: u64 = 1 << 20;

/// An agent as the server last saw it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub id: String,
    pub pool: String,
    pub version: String,
    pub hostname: String,
    pub last_seen: DateTime<Utc>,
    pub jobs: Vec<String>,
}

pub struct AgentHub {
    queue: QueuedRuntime,
    seen: Mutex<BTreeMap<(String, String), Seen>>,
}

impl AgentHub {
    pub fn new(queue: QueuedRuntime) -> AgentHub {
        AgentHub {
            queue,
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn queue(&self) -> &QueuedRuntime {
        &self.queue
    }

    /// The name an agent holds leases under: its pool and its id.
    pub fn worker(pool: &str, agent: &AgentRef) -> String {
        format!("agent:{pool}/{}", agent.id)
    }

    /// Notes a call from `agent` of `pool`, with the jobs it says it runs.
    pub fn saw(&self, pool: &str, agent: &AgentRef, jobs: Option<Vec<String>>) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = seen
            .entry((pool.to_owned(), agent.id.clone()))
            .or_insert_with(|| Seen {
                id: agent.id.clone(),
                pool: pool.to_owned(),
                version: agent.version.clone(),
                hostname: agent.hostname.clone(),
                last_seen: Utc::now(),
                jobs: Vec::new(),
            });
        entry.last_seen = Utc::now();
        entry.version.clone_from(&agent.version);
        entry.hostname.clone_from(&agent.hostname);
        if let Some(jobs) = jobs {
            entry.jobs = jobs;
        }
    }

    /// Every agent seen, by pool then id.
    pub fn list(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Claims up to `max` jobs of `pool` for `agent`, waiting up to `wait` for one to come.
    pub async fn claim(
        &self,
        pool: &str,
        agent: &AgentRef,
        max: u32,
        wait: Duration,
    ) -> Result<Vec<AgentJob>, StoreError> {
        let worker = Self::worker(pool, agent);
        let deadline = tokio::time::Instant::now() + wait;
        let waker = self.queue.pools().of(pool);
        loop {
            // Registered before looking, so an enqueue between the look and the wait wakes it.
            let woken = waker.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let claimed = self.queue.claim_for_agent(pool, &worker, max).await?;
            if !claimed.is_empty() {
                let mut jobs = Vec::new();
                for c in claimed {
                    if let Some(job) = self.to_agent(c).await {
                        jobs.push(job);
                    }
                }
                if !jobs.is_empty() {
                    let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(s) = seen.get_mut(&(pool.to_owned(), agent.id.clone())) {
                        s.jobs.extend(jobs.iter().map(|j| j.id.clone()));
                    }
                    return Ok(jobs);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let pause = (deadline - now).min(LOOK_EVERY);
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// The job as an agent gets it; `None` (and the step failed) when its input file cannot
    /// be read here.
    async fn to_agent(&self, c: AgentClaimed) -> Option<AgentJob> {
        let program = match c.step.program {
            Program::Script(s) => AgentProgram::Script(s),
            Program::Command { command, args } => AgentProgram::Command { command, args },
            Program::InputFile {
                reference,
                base_dir,
            } => {
                if reference.starts_with("http://") || reference.starts_with("https://") {
                    AgentProgram::InputUrl(reference)
                } else {
                    match read_input(&base_dir.join(&reference)).await {
                        Ok(script) => AgentProgram::Script(script),
                        Err(message) => {
                            self.queue
                                .agent_failed(&c.job.id, &c.job.worker.unwrap_or_default(), message)
                                .await;
                            return None;
                        }
                    }
                }
            }
        };
        Some(AgentJob {
            id: c.job.id,
            run_id: c.step.run_id,
            step: c.step.step,
            attempt: c.job.attempts,
            image: c.step.image,
            program,
            env: c.step.env,
            spec: c.spec,
        })
    }
}

async fn read_input(path: &std::path::Path) -> Result<String, String> {
    let name = path.display();
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("the step's inputFile {name}: {e}"))?;
    if meta.len() > MAX_INPUT_FILE {
        return Err(format!("the step's inputFile {name} is over 1 MiB"));
    }
    tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("the step's inputFile {name}: {e}"))
}

/// Agent ids are the agent's own: kept to a safe, short form.
pub fn check_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}
