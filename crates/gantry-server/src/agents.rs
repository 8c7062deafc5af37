//! The server's side of the agents: long-polled claims, the jobs handed out, and the list of
//! agents seen (their version, pool, last contact and current jobs).
//!
//! A claim that finds no job waits on its pool's wake-up (an enqueue to the pool fires it) and
//! looks again every second for jobs another server enqueued, until the agent's `waitSeconds`
//! pass: an idle agent costs one request per wait, and a new job starts at once.
//!
//! The list of agents is the store's: every server sharing the database records the agents
//! that call it, so any of them lists them all. A call only notes the agent in memory (the
//! claim path never waits on a write); a task writes what changed every second, all in one
//! statement, and a listing writes what is pending first, so it shows this server's latest.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_agent::protocol::{AgentJob, AgentProgram, AgentRef};
use gantry_engine::runtime::Program;
use gantry_store::{AgentRecord, StoreError};
use serde::Serialize;

use crate::queue::{AgentClaimed, QueuedRuntime};

/// How often a waiting claim looks at the store for jobs it was not woken for.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// The largest script an `inputFile` may hand an agent.
const MAX_INPUT_FILE: u64 = 1 << 20;
/// How often the agents seen are written to the store (at most one write each time).
const RECORD_EVERY: Duration = Duration::from_secs(1);

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
    seen: Mutex<Sightings>,
    /// One write of the sightings at a time, so they reach the store in order.
    recording: tokio::sync::Mutex<()>,
}

/// The agents this server has seen, and which of them changed since the last write.
#[derive(Default)]
struct Sightings {
    agents: BTreeMap<(String, String), Seen>,
    changed: BTreeSet<(String, String)>,
}

impl From<AgentRecord> for Seen {
    fn from(r: AgentRecord) -> Seen {
        Seen {
            id: r.id,
            pool: r.pool,
            version: r.version,
            hostname: r.hostname,
            last_seen: r.last_seen,
            jobs: r.jobs,
        }
    }
}

impl AgentHub {
    /// The hub, with its task that writes the agents seen to the store every second (it ends
    /// with the hub).
    pub fn start(queue: QueuedRuntime) -> Arc<AgentHub> {
        let hub = Arc::new(AgentHub {
            queue,
            seen: Mutex::new(Sightings::default()),
            recording: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(keep_recording(Arc::downgrade(&hub)));
        hub
    }

    fn sightings(&self) -> std::sync::MutexGuard<'_, Sightings> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn queue(&self) -> &QueuedRuntime {
        &self.queue
    }

    /// The name an agent holds leases under: its pool and its id.
    pub fn worker(pool: &str, agent: &AgentRef) -> String {
        format!("agent:{pool}/{}", agent.id)
    }

    /// Notes a call from `agent` of `pool`, with the jobs it says it runs (in memory; the
    /// store hears of it within a second).
    pub fn saw(&self, pool: &str, agent: &AgentRef, jobs: Option<Vec<String>>) {
        let mut seen = self.sightings();
        let key = (pool.to_owned(), agent.id.clone());
        seen.changed.insert(key.clone());
        let entry = seen.agents.entry(key).or_insert_with(|| Seen {
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

    /// Every agent any server sharing the store has seen, by pool then id, with what this
    /// server saw last written first.
    pub async fn list(&self) -> Result<Vec<Seen>, StoreError> {
        self.record().await?;
        let stored = self.queue.store().list_agents().await?;
        Ok(stored.into_iter().map(Seen::from).collect())
    }

    /// Writes the sightings that changed since the last write, in one statement. What fails
    /// to be written is tried again next time.
    pub async fn record(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.recording.lock().await;
        let batch: Vec<AgentRecord> = {
            let mut seen = self.sightings();
            let changed = std::mem::take(&mut seen.changed);
            changed
                .iter()
                .filter_map(|k| seen.agents.get(k))
                .map(|s| AgentRecord {
                    pool: s.pool.clone(),
                    id: s.id.clone(),
                    version: s.version.clone(),
                    hostname: s.hostname.clone(),
                    last_seen: s.last_seen,
                    jobs: s.jobs.clone(),
                })
                .collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        let written = self.queue.store().record_agents(&batch).await;
        if written.is_err() {
            let mut seen = self.sightings();
            seen.changed
                .extend(batch.into_iter().map(|a| (a.pool, a.id)));
        }
        written
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
                    let mut seen = self.sightings();
                    let key = (pool.to_owned(), agent.id.clone());
                    if let Some(s) = seen.agents.get_mut(&key) {
                        s.jobs.extend(jobs.iter().map(|j| j.id.clone()));
                        seen.changed.insert(key);
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

/// Writes the hub's sightings every [`RECORD_EVERY`] until the hub is gone.
async fn keep_recording(hub: Weak<AgentHub>) {
    loop {
        tokio::time::sleep(RECORD_EVERY).await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        if let Err(e) = hub.record().await {
            tracing::warn!(error = %e, "could not record the agents seen; trying again");
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{worker_name, QueueSetup};
    use gantry_store::{BatchWriter, Store};

    /// A hub as a server on `store` makes it.
    fn hub_on(store: &Arc<dyn Store>, dir: &std::path::Path, server: &str) -> Arc<AgentHub> {
        let vault = Arc::new(crate::vault::Vault::load(dir, None).expect("vault"));
        let writes = BatchWriter::start(store.clone(), Default::default());
        let pool = crate::queue::server_pool(server);
        let queue = QueuedRuntime::start(
            QueueSetup {
                store: store.clone(),
                writes,
                vault,
                runtime: Arc::new(gantry_runtime::ProcessRuntime::new()),
                masks: Arc::new(crate::runs::Registry::default()),
                worker: worker_name(&pool),
                pool,
                max_parallel_steps: 1,
            },
            &tokio::runtime::Handle::current(),
        );
        AgentHub::start(queue)
    }

    fn agent(id: &str, version: &str) -> AgentRef {
        AgentRef {
            id: id.into(),
            version: version.into(),
            hostname: format!("{id}.example.test"),
            pool: None,
        }
    }

    /// Two servers on one database: each lists the agents the other saw.
    async fn agents_seen_by_either_server_are_listed_by_both(store: Arc<dyn Store>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let one = hub_on(&store, dir.path(), "one");
        let two = hub_on(&store, dir.path(), "two");
        one.saw("edge", &agent("a", "1.0"), Some(vec!["j1".into()]));
        two.saw("edge", &agent("b", "1.0"), Some(Vec::new()));
        two.saw("blue", &agent("c", "1.0"), None);
        // A listing writes its own server's sightings first; the other's come within a second.
        let listed = one.list().await.expect("list");
        assert!(
            listed.iter().any(|s| s.id == "a" && s.jobs == ["j1"]),
            "{listed:?}"
        );
        let started = tokio::time::Instant::now();
        let listed = loop {
            let listed = one.list().await.expect("list");
            if listed.len() == 3 {
                break listed;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the other server's agents never came: {listed:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let keys: Vec<(&str, &str, &str)> = listed
            .iter()
            .map(|s| (s.pool.as_str(), s.id.as_str(), s.hostname.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("blue", "c", "c.example.test"),
                ("edge", "a", "a.example.test"),
                ("edge", "b", "b.example.test"),
            ]
        );
        // `a` calls the second server later, upgraded and idle: that is what both show.
        let before = listed[1].last_seen;
        tokio::time::sleep(Duration::from_millis(5)).await;
        two.saw("edge", &agent("a", "1.1"), Some(Vec::new()));
        let listed = two.list().await.expect("list");
        let a = listed.iter().find(|s| s.id == "a").expect("a");
        assert_eq!((a.version.as_str(), a.jobs.len()), ("1.1", 0));
        assert!(a.last_seen > before);
        let again = one.list().await.expect("list");
        assert_eq!(
            again.iter().find(|s| s.id == "a").map(|s| &s.version),
            Some(&"1.1".to_owned())
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite_agents_seen_by_either_server_are_listed_by_both() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(
            gantry_store::SqliteStore::open(dir.path().join("gantry.db"))
                .await
                .expect("store"),
        );
        agents_seen_by_either_server_are_listed_by_both(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgresql_agents_seen_by_either_server_are_listed_by_both() {
        use sqlx::Connection as _;
        let Ok(url) = std::env::var("GANTRY_TEST_POSTGRES_URL") else {
            eprintln!("skipped: GANTRY_TEST_POSTGRES_URL is not set (.ci/run sets it)");
            return;
        };
        let schema = format!("t_{}", gantry_store::new_id().expect("id"));
        let mut options = gantry_store::PostgresOptions::new(url.clone());
        options.schema = Some(schema.clone());
        options.max_connections = 4;
        let store = gantry_store::PostgresStore::connect_with(&options)
            .await
            .expect("connect");
        agents_seen_by_either_server_are_listed_by_both(Arc::new(store.clone())).await;
        store.close().await;
        let mut admin = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&mut admin)
            .await
            .expect("drop the test schema");
    }
}
