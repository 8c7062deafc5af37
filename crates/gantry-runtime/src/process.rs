//! [`ProcessRuntime`]: a step as a local child process, for machines without Docker and for
//! agents that run inside a container already.
//!
//! Owns starting the step's script or command with the step's folder as working directory, an
//! environment built from nothing but `PATH` and `HOME` of the parent plus the step's own
//! variables, reading its output, and ending it. The step leads its own process group, so
//! ending a step (cancel, its main process exiting, or the run future being dropped) signals
//! everything it started that stayed in that group.
//!
//! A service (a webhook trigger) is run the same way, in its own folder, with `PORT` set to a
//! free port on 127.0.0.1, where Gantry then reaches it.
//!
//! It must not isolate the step: a process step runs with Gantry's user and sees its files.
//! It ignores the step's `image`.
//!
//! Concurrency model: one future per step. Two tasks read stdout and stderr and live in a
//! `JoinSet` owned by that future, so dropping the future aborts them; a guard kills the
//! process group when the future is dropped before the step ended. A service's readers and the
//! wait for its end live in one watcher task; its handle's teardown kills its process group.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use gantry_engine::runtime::{BoxFuture, LogLine, LogStream, StepJob, StepOutcome, StepRuntime};
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::lines::{LineSplitter, LogSender};
use crate::script::{self, Executable, INPUT_SCRIPT};
use crate::service::{Service, ServiceError, ServiceJob, ServiceRuntime, Teardown};

/// How long a cancelled step has between SIGTERM and SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(3);

/// How long the output of an ended step may keep arriving. A process that left the group and
/// still holds the step's stdout open is not waited for longer than this.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a spawn is retried when the kernel reports the fresh script as busy: a fork in
/// another thread can briefly hold a copy of the descriptor it was written through.
const SPAWN_ATTEMPTS: u32 = 20;

/// Runs steps as local processes.
#[derive(Debug, Clone, Default)]
pub struct ProcessRuntime {
    _private: (),
}

impl ProcessRuntime {
    pub fn new() -> Self {
        Self::default()
    }
}

impl StepRuntime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn run(
        &self,
        job: StepJob,
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, StepOutcome> {
        Box::pin(run_step(job, logs, cancel))
    }

    /// A step's processes end with its future, so a run leaves nothing to find afterwards.
    fn clean_up<'a>(&'a self, _run_id: Option<&'a str>) -> BoxFuture<'a, Result<usize, String>> {
        Box::pin(async { Ok(0) })
    }
}

async fn run_step(
    job: StepJob,
    logs: mpsc::Sender<LogLine>,
    cancel: CancellationToken,
) -> StepOutcome {
    if let Err(message) = crate::check_environment(&job.env) {
        return StepOutcome::FailedToStart(message);
    }
    let prepared = tokio::select! {
        biased;
        () = cancel.cancelled() => return StepOutcome::Cancelled,
        prepared = script::prepare(&job.program, &job.step_dir) => prepared,
    };
    let (program, args) = match prepared
        .map_err(|err| err.to_string())
        .and_then(|executable| invocation(executable, &job.step_dir))
    {
        Ok(invocation) => invocation,
        Err(message) => return StepOutcome::FailedToStart(message),
    };
    let mut command = Command::new(&program);
    command
        .args(&args)
        .current_dir(&job.step_dir)
        .env_clear()
        .envs(step_environment(&job))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match spawn(&mut command).await {
        Ok(child) => child,
        Err(err) => {
            return StepOutcome::FailedToStart(format!(
                "`{}` could not be started: {err}",
                program.display()
            ))
        }
    };
    let Some(group) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        return StepOutcome::FailedToStart("the step's process ended before it was seen".into());
    };
    let mut group = ProcessGroup::new(group);

    let sender = LogSender::new(&job.step, logs);
    let mut readers = JoinSet::new();
    if let Some(stdout) = child.stdout.take() {
        readers.spawn(forward(stdout, LogStream::Stdout, sender.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.spawn(forward(stderr, LogStream::Stderr, sender));
    }

    let outcome = tokio::select! {
        // A step whose cancel fired is reported cancelled, even if it ended at the same time.
        biased;
        () = cancel.cancelled() => {
            terminate(&group, &mut child).await;
            StepOutcome::Cancelled
        }
        status = child.wait() => match status {
            Ok(status) => StepOutcome::Exited(exit_code(status)),
            Err(err) => StepOutcome::FailedToStart(format!("the step's process was lost: {err}")),
        },
    };
    // What the step left running in its group ends with it, as in a container.
    group.kill();
    group.disarm();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while readers.join_next().await.is_some() {}
    })
    .await;
    outcome
}

/// The program and arguments an executable comes down to in a local process.
fn invocation(executable: Executable, dir: &Path) -> Result<(PathBuf, Vec<String>), String> {
    match executable {
        Executable::Script => Ok((dir.join(INPUT_SCRIPT), Vec::new())),
        Executable::Command {
            command: Some(command),
            args,
        } => Ok((command.into(), args)),
        Executable::Command { command: None, .. } => {
            Err("the process runtime needs `command` or `input`".to_owned())
        }
    }
}

/// `PATH` and `HOME` from Gantry's own environment, then the step's variables (which may
/// replace them), then the variables this runtime owns.
fn step_environment(job: &StepJob) -> Vec<(String, String)> {
    let mut env = inherited_environment();
    env.extend(job.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.push((
        "GANTRY_STEP_DIR".to_owned(),
        job.step_dir.to_string_lossy().into_owned(),
    ));
    if let Some(endpoint) = &job.metadata {
        env.push((
            "METADATA_API_URL".to_owned(),
            crate::metadata_api_url("127.0.0.1", endpoint),
        ));
    }
    env
}

/// What a step or service takes from Gantry's own environment: `PATH` and `HOME`.
fn inherited_environment() -> Vec<(String, String)> {
    ["PATH", "HOME"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)))
        .collect()
}

async fn spawn(command: &mut Command) -> std::io::Result<Child> {
    let mut attempt = 1;
    loop {
        match command.spawn() {
            Err(err)
                if err.raw_os_error() == Some(Errno::ETXTBSY as i32)
                    && attempt < SPAWN_ATTEMPTS =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            result => return result,
        }
    }
}

/// SIGTERM to the whole group, SIGKILL after [`TERMINATE_GRACE`].
async fn terminate(group: &ProcessGroup, child: &mut Child) {
    group.signal(Signal::SIGTERM);
    if tokio::time::timeout(TERMINATE_GRACE, child.wait())
        .await
        .is_err()
    {
        group.kill();
        let _ = child.wait().await;
    }
}

/// A process killed by signal N reports 128 + N, as shells and Docker do.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

async fn forward(mut output: impl AsyncRead + Unpin, stream: LogStream, sender: LogSender) {
    let mut splitter = LineSplitter::default();
    let mut buffer = vec![0_u8; 8 * 1024];
    loop {
        match output.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let chunk = buffer.get(..read).unwrap_or_default();
                sender.send_all(stream, splitter.push(chunk)).await;
            }
        }
    }
    if let Some(rest) = splitter.finish() {
        sender.send(stream, rest).await;
    }
}

/// The step's process group; killed on drop unless disarmed, so a dropped run future does
/// not leave the step running.
struct ProcessGroup {
    leader: Pid,
    armed: bool,
}

impl ProcessGroup {
    fn new(leader: i32) -> Self {
        Self {
            leader: Pid::from_raw(leader),
            armed: true,
        }
    }

    fn signal(&self, signal: Signal) {
        // ESRCH: the group is already empty, which is what the caller wants.
        let _ = killpg(self.leader, signal);
    }

    fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
        }
    }
}

// ------------------------------------------------------------------ services

impl ServiceRuntime for ProcessRuntime {
    fn start_service(
        &self,
        job: ServiceJob,
        logs: mpsc::Sender<LogLine>,
    ) -> BoxFuture<'_, Result<Service, ServiceError>> {
        Box::pin(start_service(job, logs))
    }

    /// A service's process group is killed when its handle goes; after a crash there is no
    /// record of it to find (as for steps).
    fn clean_up_services<'a>(&'a self, _owner: &'a str) -> BoxFuture<'a, Result<usize, String>> {
        Box::pin(async { Ok(0) })
    }
}

/// Starts a service as a local process group listening on a free loopback port.
async fn start_service(
    job: ServiceJob,
    logs: mpsc::Sender<LogLine>,
) -> Result<Service, ServiceError> {
    crate::check_environment(&job.env).map_err(ServiceError::Start)?;
    let (program, args) = script::prepare(&job.program, &job.dir)
        .await
        .map_err(|err| err.to_string())
        .and_then(|executable| invocation(executable, &job.dir))
        .map_err(ServiceError::Start)?;
    let port = free_loopback_port()
        .map_err(|err| ServiceError::Start(format!("no free port on 127.0.0.1: {err}")))?;
    let mut env = inherited_environment();
    env.extend(job.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.push(("PORT".to_owned(), port.to_string()));
    if let Some(endpoint) = &job.metadata {
        env.push((
            "METADATA_API_URL".to_owned(),
            crate::metadata_api_url("127.0.0.1", endpoint),
        ));
    }
    let mut command = Command::new(&program);
    command
        .args(&args)
        .current_dir(&job.dir)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = spawn(&mut command).await.map_err(|err| {
        ServiceError::Start(format!(
            "`{}` could not be started: {err}",
            program.display()
        ))
    })?;
    let Some(leader) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        return Err(ServiceError::Exited);
    };
    let group = ProcessGroup::new(leader);
    let exited = CancellationToken::new();
    let sender = LogSender::new(&job.trigger, logs);
    let mut readers = JoinSet::new();
    if let Some(stdout) = child.stdout.take() {
        readers.spawn(forward(stdout, LogStream::Stdout, sender.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.spawn(forward(stderr, LogStream::Stderr, sender));
    }
    let watched = exited.clone();
    tokio::spawn(async move {
        let _ = child.wait().await;
        // What the service left running in its group ends with it, as in a container.
        let _ = killpg(Pid::from_raw(leader), Signal::SIGKILL);
        watched.cancel();
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while readers.join_next().await.is_some() {}
        })
        .await;
    });
    let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let teardown = ProcessService {
        group,
        exited: exited.clone(),
    };
    Ok(Service::new(
        address,
        leader.to_string(),
        exited,
        Box::new(teardown),
    ))
}

/// A port nothing listens on right now. Another program could take it before the service
/// binds it; the service then fails to start and is started again at the next request.
fn free_loopback_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A running service's process group: SIGTERM, then SIGKILL after [`TERMINATE_GRACE`].
struct ProcessService {
    group: ProcessGroup,
    exited: CancellationToken,
}

impl Teardown for ProcessService {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let ProcessService { mut group, exited } = *self;
            // Once the leader is gone its group was killed; its id may be reused since.
            if exited.is_cancelled() {
                group.disarm();
                return;
            }
            group.signal(Signal::SIGTERM);
            if tokio::time::timeout(TERMINATE_GRACE, exited.cancelled())
                .await
                .is_err()
            {
                group.kill();
                exited.cancelled().await;
            }
            group.disarm();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_becomes_128_plus_its_number() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
    }

    #[test]
    fn the_step_overrides_the_parent_and_the_runtime_overrides_the_step() {
        let job = StepJob {
            run_id: "r".into(),
            step: "s".into(),
            image: None,
            program: gantry_engine::runtime::Program::Script("true".into()),
            env: [("HOME".to_owned(), "/step-home".to_owned())].into(),
            step_dir: "/tmp/step".into(),
            metadata: Some(gantry_engine::runtime::MetadataEndpoint {
                port: 7000,
                token: "tok".into(),
            }),
            pool: None,
        };
        let env = step_environment(&job);
        let last = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(last("HOME"), Some("/step-home"));
        assert_eq!(last("GANTRY_STEP_DIR"), Some("/tmp/step"));
        assert_eq!(last("METADATA_API_URL"), Some("http://:tok@127.0.0.1:7000"));
    }
}
