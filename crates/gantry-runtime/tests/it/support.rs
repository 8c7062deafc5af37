//! What the cases share: a harness per case (a runtime, a unique run id, a temporary folder),
//! helpers to run a step and collect its output, and a tiny HTTP server on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::ListContainersOptions;
use gantry_engine::runtime::{LogLine, LogStream, Program, StepJob, StepOutcome, StepRuntime};
use gantry_runtime::{DockerRuntime, ProcessRuntime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) const TEST_IMAGE: &str = "gantry-test/busybox:latest";

/// No case should take longer than this to end on its own.
const STEP_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Process,
    Docker,
}

impl Backend {
    /// How the step names the host in `METADATA_API_URL`.
    pub(crate) fn metadata_host(self) -> &'static str {
        match self {
            Backend::Process => "127.0.0.1",
            Backend::Docker => "host.docker.internal",
        }
    }
}

pub(crate) struct Harness {
    pub(crate) backend: Backend,
    pub(crate) runtime: Arc<dyn StepRuntime>,
    pub(crate) run_id: String,
    /// Holds the step's folder (`step/`) and a workflow folder (`workflow/`).
    pub(crate) dir: tempfile::TempDir,
    docker: Option<bollard::Docker>,
}

/// A run still going: its outcome and the lines it has sent so far.
pub(crate) struct Running {
    pub(crate) outcome: JoinHandle<StepOutcome>,
    pub(crate) logs: mpsc::Receiver<LogLine>,
    pub(crate) cancel: CancellationToken,
}

impl Harness {
    pub(crate) async fn new(backend: Backend, case: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let run_id = format!(
            "it-{case}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("gantry-runtime-it-")
            .tempdir()
            .expect("temporary folder");
        let (runtime, docker): (Arc<dyn StepRuntime>, _) =
            match backend {
                Backend::Process => (Arc::new(ProcessRuntime::new()), None),
                Backend::Docker => {
                    let runtime = DockerRuntime::connect()
                        .await
                        .unwrap_or_else(|err| panic!("{err}: start dockerd; .ci/run does"));
                    let docker = bollard::Docker::connect_with_local_defaults()
                        .expect("docker socket")
                        .negotiate_version()
                        .await
                        .unwrap_or_else(|err| panic!("{err}: start dockerd; .ci/run does"));
                    docker.inspect_image(TEST_IMAGE).await.unwrap_or_else(|err| {
                    panic!("the local image {TEST_IMAGE} is missing ({err}); .ci/run builds it")
                });
                    (Arc::new(runtime), Some(docker))
                }
            };
        Self {
            backend,
            runtime,
            run_id,
            dir,
            docker,
        }
    }

    pub(crate) fn step_dir(&self) -> PathBuf {
        self.dir.path().join("step")
    }

    pub(crate) fn workflow_dir(&self) -> PathBuf {
        self.dir.path().join("workflow")
    }

    /// `GANTRY_STEP_DIR` as the step sees it.
    pub(crate) fn step_dir_inside(&self) -> String {
        match self.backend {
            Backend::Process => self.step_dir().display().to_string(),
            Backend::Docker => "/var/run/gantry/step".to_owned(),
        }
    }

    pub(crate) fn job(&self, program: Program) -> StepJob {
        StepJob {
            run_id: self.run_id.clone(),
            step: "the-step".to_owned(),
            image: Some(TEST_IMAGE.to_owned()),
            program,
            env: Default::default(),
            step_dir: self.step_dir(),
            metadata: None,
            pool: None,
        }
    }

    pub(crate) fn script(&self, text: &str) -> StepJob {
        self.job(Program::Script(text.to_owned()))
    }

    pub(crate) fn start(&self, job: StepJob) -> Running {
        self.start_with(job, CancellationToken::new())
    }

    pub(crate) fn start_with(&self, job: StepJob, cancel: CancellationToken) -> Running {
        let (tx, logs) = mpsc::channel(64);
        let runtime = Arc::clone(&self.runtime);
        let token = cancel.clone();
        let outcome = tokio::spawn(async move { runtime.run(job, tx, token).await });
        Running {
            outcome,
            logs,
            cancel,
        }
    }

    /// Runs a step to its end and returns its outcome and every line, checking that the
    /// runtime left no container behind.
    pub(crate) async fn run(&self, job: StepJob) -> (StepOutcome, Output) {
        let step = job.step.clone();
        let mut running = self.start(job);
        let mut lines = Vec::new();
        let collect = async {
            while let Some(line) = running.logs.recv().await {
                lines.push(line);
            }
        };
        tokio::time::timeout(STEP_DEADLINE, collect)
            .await
            .expect("the step ended in time");
        let outcome = running.outcome.await.expect("the run did not panic");
        assert!(lines.iter().all(|line| line.step == step), "{lines:?}");
        assert_eq!(self.containers().await, 0, "a container was left behind");
        (outcome, Output(lines))
    }

    /// The containers labelled with this case's run id (always 0 for the process backend).
    pub(crate) async fn containers(&self) -> usize {
        let Some(docker) = &self.docker else { return 0 };
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("gantry.run={}", self.run_id)],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        docker
            .list_containers(Some(options))
            .await
            .expect("containers listed")
            .len()
    }

    pub(crate) fn docker(&self) -> &bollard::Docker {
        self.docker.as_ref().expect("a docker harness")
    }

    /// Waits until nothing of the step is running: no container of the run (Docker), no
    /// process whose id the step wrote to `sleep.pid` (process).
    pub(crate) async fn assert_nothing_left(&self) {
        for _ in 0..100 {
            let left = match self.backend {
                Backend::Docker => self.containers().await > 0,
                Backend::Process => {
                    let pid = std::fs::read_to_string(self.step_dir().join("sleep.pid"))
                        .expect("the step wrote sleep.pid");
                    process_is_alive(pid.trim())
                }
            };
            if !left {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the step is still running 10 s after it ended");
    }
}

/// A zombie counts as ended: it runs no more, and reaping it is its parent's (or init's) job.
fn process_is_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.trim().chars().next());
            state != Some('Z')
        }
    }
}

/// The lines of one step.
#[derive(Debug)]
pub(crate) struct Output(pub(crate) Vec<LogLine>);

impl Output {
    pub(crate) fn stream(&self, stream: LogStream) -> Vec<&str> {
        self.0
            .iter()
            .filter(|line| line.stream == stream)
            .map(|line| line.line.as_str())
            .collect()
    }

    pub(crate) fn stdout(&self) -> Vec<&str> {
        self.stream(LogStream::Stdout)
    }

    pub(crate) fn stderr(&self) -> Vec<&str> {
        self.stream(LogStream::Stderr)
    }
}

/// Receives the next line within `limit`.
pub(crate) async fn next_line(logs: &mut mpsc::Receiver<LogLine>, limit: Duration) -> LogLine {
    tokio::time::timeout(limit, logs.recv())
        .await
        .expect("a line in time")
        .expect("the step is still sending")
}

pub(crate) fn failure(outcome: &StepOutcome) -> &str {
    match outcome {
        StepOutcome::FailedToStart(message) => message,
        other => panic!("expected FailedToStart, got {other:?}"),
    }
}

/// Serves each path of `routes` with 200 and its body, anything else with 404, on 127.0.0.1
/// until the test's runtime ends. One request per connection.
pub(crate) async fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let routes = Arc::clone(&routes);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0_u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buffer[..read]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) = match routes.iter().find(|(route, _)| *route == path) {
                    Some((_, body)) => ("200 OK", body.clone()),
                    None => ("404 Not Found", b"not found\n".to_vec()),
                };
                let header = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(header.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}
