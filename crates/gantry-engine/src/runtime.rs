//! The contract between the engine and a step runtime (Docker, a local process, later an agent or
//! Kubernetes). Implementations live in `gantry-runtime`; one conformance suite runs against each.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One step to execute.
#[derive(Debug, Clone, PartialEq)]
pub struct StepJob {
    pub run_id: String,
    pub step: String,
    /// The container image. Recorded but unused by the process runtime.
    pub image: Option<String>,
    pub program: Program,
    /// The step's evaluated `env` plus Relay's and Gantry's variables (`CI`, `RELAY`,
    /// `GANTRY_RUN_ID`, `GANTRY_STEP`). The runtime adds `METADATA_API_URL` from `metadata`.
    pub env: BTreeMap<String, String>,
    /// The step's folder on the host: `spec.json` and `outputs/` are there. The runtime makes it
    /// visible to the step (a bind mount in Docker) and sets `GANTRY_STEP_DIR` to where it is.
    pub step_dir: PathBuf,
    /// Where the step reaches the metadata API, if one is served.
    pub metadata: Option<MetadataEndpoint>,
    /// The agent pool the step runs on: its `agent`, else the workflow's; `None` is the
    /// server's own runtime. The driver sets it from the workflow; the server's queue enqueues
    /// the step to that pool, for its agents.
    pub pool: Option<String>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    /// `input` lines joined by newlines, with `#!/bin/sh` prepended unless they start with `#!`.
    Script(String),
    /// `inputFile`: a path relative to `base_dir` (the workflow file's folder) or an http(s)
    /// URL, fetched with a size limit; its content becomes the script, so its shebang decides.
    InputFile {
        reference: String,
        base_dir: PathBuf,
    },
    /// `command` and `args`; with no command, the image's own entrypoint (Docker only).
    Command {
        command: Option<String>,
        args: Vec<String>,
    },
}

/// The metadata API as a step reaches it: the server's port and the step's own token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataEndpoint {
    pub port: u16,
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One line of a step's output, sent as soon as it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub step: String,
    pub stream: LogStream,
    pub line: String,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The program ran and exited with this code.
    Exited(i32),
    /// It could not be run: the image cannot be pulled, the input file cannot be fetched, ...
    /// The message names what failed and never contains secret values.
    FailedToStart(String),
    /// Stopped because `cancel` fired; nothing of it is left running.
    Cancelled,
}

pub trait StepRuntime: Send + Sync {
    /// `docker` or `process`.
    fn name(&self) -> &'static str;

    /// Runs a step to its end, streaming each output line to `logs` as it comes. When `cancel`
    /// fires, stops the step (and removes its container) and returns `Cancelled`.
    fn run(
        &self,
        job: StepJob,
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, StepOutcome>;

    /// Waits again for a step that was already handed to this runtime before a restart of the
    /// process driving its run (`job` is the step as it was prepared then), streaming its
    /// remaining lines and returning how it ends. A runtime that cannot find a step it started
    /// in an earlier process says so with `FailedToStart`: the default.
    fn reattach(
        &self,
        job: StepJob,
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, StepOutcome> {
        let _ = (job, logs, cancel);
        Box::pin(async {
            StepOutcome::FailedToStart(format!(
                "the {} runtime cannot re-attach to a step started before a restart",
                self.name()
            ))
        })
    }

    /// Removes whatever the given run (or every run, with `None`) left behind, such as containers
    /// found by label after a crash. Returns how many things were removed.
    fn clean_up<'a>(&'a self, run_id: Option<&'a str>) -> BoxFuture<'a, Result<usize, String>>;
}
