//! The agent's loop: claim, run, report. One task per job; the claim loop asks for as many jobs
//! as there are free slots.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gantry_engine::runtime::{
    LogLine, LogStream, MetadataEndpoint, Program, StepJob, StepOutcome, StepRuntime,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::metadata::StepTokens;
use crate::protocol::*;

/// An agent's settings.
pub struct Agent {
    /// The server's base URL, such as `https://gantry.example.com`.
    pub server: String,
    /// An agent token (`gantry agent token create --pool NAME`).
    pub token: String,
    pub me: AgentRef,
    /// What executes the steps.
    pub runtime: Arc<dyn StepRuntime>,
    /// Where each job gets its folder (`spec.json`, `outputs/`), removed when it ends.
    pub work_dir: PathBuf,
    /// Steps running at once.
    pub max_jobs: usize,
    /// How long one claim is held open by the server when there is no work.
    pub wait: Duration,
    /// Where containers reach this host (the Docker bridge's gateway), when steps run in
    /// containers: the steps' metadata API listens there as well as on loopback.
    pub metadata_bridge: Option<std::net::IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the server refused the agent token ({0}); create one with `gantry agent token create --pool NAME`")]
    Refused(StatusCode),
    #[error("the agent's work folder {0}: {1}")]
    WorkDir(PathBuf, std::io::Error),
    #[error("the HTTP client could not be built: {0}")]
    Client(reqwest::Error),
    #[error("the steps' metadata API cannot listen: {0}")]
    Metadata(std::io::Error),
}

/// A failed call: worth retrying, or final.
pub(crate) enum CallError {
    /// The network, or the server answered 5xx / 429.
    Retry(String),
    /// The server answered with this status: do not retry.
    Status(StatusCode),
}

pub(crate) struct Shared {
    agent: Agent,
    client: reqwest::Client,
    running: Mutex<HashSet<String>>,
    /// Step folders free for the next job, and how many were made.
    folders: Mutex<(Vec<PathBuf>, usize)>,
    /// The steps' metadata API: its port, and each running step's token.
    metadata_port: u16,
    pub(crate) tokens: StepTokens,
}

/// Claims and runs jobs until `shutdown` fires, then waits for the running steps to end.
pub async fn run(agent: Agent, shutdown: CancellationToken) -> Result<(), AgentError> {
    tokio::fs::create_dir_all(&agent.work_dir)
        .await
        .map_err(|e| AgentError::WorkDir(agent.work_dir.clone(), e))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(AgentError::Client)?;
    let max_jobs = agent.max_jobs.max(1);
    let listeners = crate::metadata::bind(agent.metadata_bridge)
        .await
        .map_err(AgentError::Metadata)?;
    let shared = Arc::new(Shared {
        agent,
        client,
        running: Mutex::new(HashSet::new()),
        folders: Mutex::new((Vec::new(), 0)),
        metadata_port: listeners.port,
        tokens: StepTokens::default(),
    });
    let serving = crate::metadata::serve(listeners, Arc::clone(&shared));
    let slots = Arc::new(Semaphore::new(max_jobs));
    let mut backoff = Backoff::default();
    let mut refused = None;
    loop {
        let first = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let free = 1 + slots.available_permits();
        let request = ClaimRequest {
            agent: shared.agent.me.clone(),
            max: u32::try_from(free).unwrap_or(64).min(64),
            wait_seconds: shared.agent.wait.as_secs().min(60),
            running: shared.running().iter().cloned().collect(),
        };
        let answer: Result<ClaimAnswer, CallError> = tokio::select! {
            a = shared.call("agent/jobs/claim", &request, shared.agent.wait + Duration::from_secs(15)) => a,
            () = shutdown.cancelled() => break,
        };
        match answer {
            Ok(answer) => {
                backoff.reset();
                let lease = Duration::from_secs(answer.lease_seconds.max(3));
                let mut first = Some(first);
                for job in answer.jobs {
                    let permit = match first.take() {
                        Some(p) => p,
                        None => match Arc::clone(&slots).acquire_owned().await {
                            Ok(p) => p,
                            Err(_) => break,
                        },
                    };
                    shared.running().insert(job.id.clone());
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let id = job.id.clone();
                        shared.run_job(job, lease).await;
                        shared.running().remove(&id);
                        drop(permit);
                    });
                }
            }
            Err(CallError::Status(s))
                if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN =>
            {
                refused = Some(s);
                break;
            }
            Err(e) => {
                let why = match e {
                    CallError::Retry(why) => why,
                    CallError::Status(s) => format!("the server answered {s}"),
                };
                drop(first);
                let pause = backoff.next();
                tracing::warn!(error = %why, retry_in_ms = pause.as_millis() as u64, "could not claim jobs");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
    // Graceful: every slot back means every step has ended and been reported.
    let _ = slots.acquire_many(max_jobs as u32).await;
    for task in serving {
        task.abort();
    }
    match refused {
        Some(s) => Err(AgentError::Refused(s)),
        None => Ok(()),
    }
}

impl Shared {
    pub(crate) fn me(&self) -> &AgentRef {
        &self.agent.me
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A step folder: one a finished job left empty, or a new one. Folders are reused because
    /// creating and removing a folder per job costs the file system more than a no-op step.
    fn folder(&self) -> PathBuf {
        let mut free = self.folders.lock().unwrap_or_else(PoisonError::into_inner);
        free.0.pop().unwrap_or_else(|| {
            free.1 += 1;
            self.agent.work_dir.join(format!("slot-{}", free.1))
        })
    }

    /// Empties a finished job's folder (all but `spec.json` and an empty `outputs/`) for the
    /// next job; a folder that cannot be emptied is removed instead.
    async fn give_back(&self, dir: PathBuf) {
        if empty(&dir).await.is_ok() {
            self.folders
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .0
                .push(dir);
        } else {
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/{path}", self.agent.server.trim_end_matches('/'))
    }

    pub(crate) async fn call<B: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<A, CallError> {
        let res = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.agent.token)
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| CallError::Retry(e.to_string()))?;
        let status = res.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(CallError::Retry(format!("the server answered {status}")));
        }
        if !status.is_success() {
            return Err(CallError::Status(status));
        }
        if status == StatusCode::NO_CONTENT {
            return serde_json::from_value(serde_json::Value::Null)
                .map_err(|e| CallError::Retry(e.to_string()));
        }
        res.json::<A>()
            .await
            .map_err(|e| CallError::Retry(e.to_string()))
    }

    /// Calls until the server answers (or says no): network errors back off and retry.
    async fn call_until<B: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<A, StatusCode> {
        let mut backoff = Backoff::default();
        loop {
            match self.call(path, body, Duration::from_secs(30)).await {
                Ok(a) => return Ok(a),
                Err(CallError::Status(s)) => return Err(s),
                Err(CallError::Retry(why)) => {
                    let pause = backoff.next();
                    tracing::warn!(error = %why, path, retry_in_ms = pause.as_millis() as u64, "retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    async fn run_job(self: &Arc<Self>, job: AgentJob, lease: Duration) {
        let dir = self.folder();
        let outcome = match prepare(&dir, &job).await {
            Ok(()) => None,
            Err(e) => Some(StepOutcome::FailedToStart(format!(
                "the agent could not prepare the step's folder: {e}"
            ))),
        };
        let cancel = CancellationToken::new();
        let lost = CancellationToken::new();
        let beats = tokio::spawn(Arc::clone(self).heartbeat(
            job.id.clone(),
            lease,
            cancel.clone(),
            lost.clone(),
        ));
        let (tx, rx) = mpsc::channel::<LogLine>(1024);
        let shipping = tokio::spawn(Arc::clone(self).ship_logs(job.id.clone(), rx));
        // The step's own token for the metadata API here, valid while the job runs.
        let token = self.tokens.issue(&job.id);
        let metadata = (!token.is_empty()).then(|| MetadataEndpoint {
            port: self.metadata_port,
            token: token.clone(),
        });
        let outcome = match outcome {
            Some(o) => o,
            None => {
                let step = step_job(&job, &dir, metadata);
                self.agent.runtime.run(step, tx, cancel.clone()).await
            }
        };
        self.tokens.revoke(&token);
        // Every line acknowledged before the end is reported.
        let _ = shipping.await;
        if !lost.is_cancelled() {
            let outputs = read_outputs(&dir.join("outputs")).await;
            let done = CompleteRequest {
                agent: self.agent.me.clone(),
                outcome: match outcome {
                    StepOutcome::Exited(code) => Outcome::Exited(code),
                    StepOutcome::FailedToStart(m) => Outcome::FailedToStart(m),
                    StepOutcome::Cancelled => Outcome::Cancelled,
                },
                outputs,
            };
            let path = format!("agent/jobs/{}/complete", job.id);
            if let Err(s) = self.call_until::<_, serde_json::Value>(&path, &done).await {
                tracing::warn!(job = %job.id, status = %s, "the server refused the job's end");
            }
        }
        beats.abort();
        self.give_back(dir).await;
    }

    /// Renews the lease a third of the way through it; a cancelled run cancels the step, a
    /// lost lease stops it without reporting (another agent has the job).
    async fn heartbeat(
        self: Arc<Self>,
        id: String,
        lease: Duration,
        cancel: CancellationToken,
        lost: CancellationToken,
    ) {
        let path = format!("agent/jobs/{id}/heartbeat");
        loop {
            tokio::time::sleep(lease / 3).await;
            match self
                .call::<_, HeartbeatAnswer>(&path, &self.agent.me, lease / 3)
                .await
            {
                Ok(a) if a.cancel => cancel.cancel(),
                Ok(_) => {}
                Err(CallError::Status(s))
                    if s == StatusCode::CONFLICT || s == StatusCode::NOT_FOUND =>
                {
                    tracing::warn!(job = %id, "the job's lease was lost: stopping its step");
                    lost.cancel();
                    cancel.cancel();
                    return;
                }
                Err(_) => {}
            }
        }
    }

    /// Numbers the step's lines per stream and sends them in batches until every one is
    /// acknowledged. A batch is resent until the server answers; the answer says what it has
    /// stored. While the server cannot be reached (it may be restarting) the step's lines keep
    /// being read and held here, so the step never waits on its own output.
    async fn ship_logs(self: Arc<Self>, id: String, mut rx: mpsc::Receiver<LogLine>) {
        let path = format!("agent/jobs/{id}/logs");
        let mut next = [0u64; 2];
        let mut pending: VecDeque<LogLineWire> = VecDeque::new();
        let mut open = true;
        let mut backoff = Backoff::default();
        loop {
            if open && pending.is_empty() {
                // Wait for a line, then take what else is there.
                match rx.recv().await {
                    Some(line) => pending.push_back(number(line, &mut next)),
                    None => open = false,
                }
            }
            while open {
                match rx.try_recv() {
                    Ok(line) => pending.push_back(number(line, &mut next)),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                }
            }
            if pending.is_empty() {
                if open {
                    continue;
                }
                return;
            }
            let batch = LogsRequest {
                agent: self.agent.me.clone(),
                lines: pending.iter().take(LOG_BATCH).cloned().collect(),
            };
            match self
                .call::<_, LogsAnswer>(&path, &batch, Duration::from_secs(30))
                .await
            {
                Ok(acked) => {
                    backoff.reset();
                    pending.retain(|l| match l.stream {
                        Stream::Stdout => l.seq >= acked.stdout,
                        Stream::Stderr => l.seq >= acked.stderr,
                    });
                }
                Err(CallError::Status(s)) => {
                    tracing::warn!(job = %id, status = %s, "the server refused the job's logs");
                    return;
                }
                Err(CallError::Retry(why)) => {
                    let pause = backoff.next();
                    tracing::warn!(error = %why, path, held = pending.len(), retry_in_ms = pause.as_millis() as u64, "retrying");
                    let until = tokio::time::Instant::now() + pause;
                    loop {
                        tokio::select! {
                            () = tokio::time::sleep_until(until) => break,
                            line = rx.recv(), if open => match line {
                                Some(line) => pending.push_back(number(line, &mut next)),
                                None => open = false,
                            },
                        }
                    }
                }
            }
        }
    }
}

/// The most lines one `logs` request carries.
const LOG_BATCH: usize = 500;

fn number(line: LogLine, next: &mut [u64; 2]) -> LogLineWire {
    let (stream, i) = match line.stream {
        LogStream::Stdout => (Stream::Stdout, 0),
        LogStream::Stderr => (Stream::Stderr, 1),
    };
    let seq = next[i];
    next[i] += 1;
    LogLineWire {
        stream,
        seq,
        line: line.line,
    }
}

async fn prepare(dir: &Path, job: &AgentJob) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir.join("outputs")).await?;
    let spec = job.spec.clone().unwrap_or_else(|| serde_json::json!({}));
    tokio::fs::write(dir.join("spec.json"), spec.to_string()).await
}

/// Removes what a step left in its folder: everything but `spec.json` (rewritten by the next
/// job) and `outputs/`, whose content goes too.
async fn empty(dir: &Path) -> std::io::Result<()> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let kind = entry.file_type().await?;
        if name == "spec.json" && kind.is_file() {
            continue;
        }
        if name == "outputs" && kind.is_dir() {
            let mut outputs = tokio::fs::read_dir(entry.path()).await?;
            while let Some(o) = outputs.next_entry().await? {
                remove(&o.path(), o.file_type().await?).await?;
            }
            continue;
        }
        remove(&entry.path(), kind).await?;
    }
    Ok(())
}

async fn remove(path: &Path, kind: std::fs::FileType) -> std::io::Result<()> {
    if kind.is_dir() {
        tokio::fs::remove_dir_all(path).await
    } else {
        tokio::fs::remove_file(path).await
    }
}

fn step_job(job: &AgentJob, dir: &Path, metadata: Option<MetadataEndpoint>) -> StepJob {
    StepJob {
        run_id: job.run_id.clone(),
        step: job.step.clone(),
        image: job.image.clone(),
        program: match &job.program {
            AgentProgram::Script(s) => Program::Script(s.clone()),
            AgentProgram::InputUrl(url) => Program::InputFile {
                reference: url.clone(),
                base_dir: dir.to_path_buf(),
            },
            AgentProgram::Command { command, args } => Program::Command {
                command: command.clone(),
                args: args.clone(),
            },
        },
        env: job.env.clone(),
        step_dir: dir.to_path_buf(),
        metadata,
        // Runs here, on this agent's runtime.
        pool: None,
    }
}

/// The regular files of `outputs/`, as text (at most 1 MiB each).
async fn read_outputs(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return out;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let Ok(meta) = entry.metadata().await else {
            continue;
        };
        if !meta.is_file() || meta.len() > 1 << 20 {
            continue;
        }
        if let (Some(name), Ok(text)) = (
            entry.file_name().to_str().map(str::to_owned),
            tokio::fs::read_to_string(entry.path()).await,
        ) {
            out.insert(name, text);
        }
    }
    out
}

/// Exponential backoff from 200 ms to 10 s, each pause drawn between half and all of it.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn reset(&mut self) {
        self.failures = 0;
    }

    fn next(&mut self) -> Duration {
        let ceiling = 200u64.saturating_mul(1 << self.failures.min(6)).min(10_000);
        self.failures += 1;
        let mut bytes = [0u8; 2];
        let _ = getrandom::getrandom(&mut bytes);
        let jitter = u64::from(u16::from_le_bytes(bytes)) * (ceiling / 2) / u64::from(u16::MAX);
        Duration::from_millis(ceiling / 2 + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_ceiling_with_jitter() {
        let mut b = Backoff::default();
        let first = b.next();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        for _ in 0..20 {
            b.next();
        }
        let late = b.next();
        assert!(late >= Duration::from_millis(5_000) && late <= Duration::from_millis(10_000));
        b.reset();
        assert!(b.next() <= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_folder_is_emptied_for_the_next_job() {
        let dir = std::env::temp_dir().join(format!("gantry-agent-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("outputs/nested")).unwrap();
        std::fs::create_dir_all(dir.join("cache/deep")).unwrap();
        std::fs::write(dir.join("spec.json"), "{}").unwrap();
        std::fs::write(dir.join("outputs/secret"), "value").unwrap();
        std::fs::write(dir.join("outputs/nested/x"), "y").unwrap();
        std::fs::write(dir.join("stray.txt"), "left behind").unwrap();
        std::fs::write(dir.join("cache/deep/f"), "z").unwrap();
        empty(&dir).await.unwrap();
        let mut left: Vec<String> = walk(&dir);
        left.sort();
        assert_eq!(left, ["outputs", "spec.json"]);
        assert!(std::fs::read_dir(dir.join("outputs"))
            .unwrap()
            .next()
            .is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn walk(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn lines_are_numbered_per_stream() {
        let mut next = [0; 2];
        let line = |stream, text: &str| LogLine {
            step: "s".into(),
            stream,
            line: text.into(),
        };
        let a = number(line(LogStream::Stdout, "a"), &mut next);
        let b = number(line(LogStream::Stderr, "b"), &mut next);
        let c = number(line(LogStream::Stdout, "c"), &mut next);
        assert_eq!((a.seq, b.seq, c.seq), (0, 0, 1));
        assert_eq!(c.stream, Stream::Stdout);
    }
}
