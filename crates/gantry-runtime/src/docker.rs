//! [`DockerRuntime`]: a step as a container on the local Docker Engine. The only module that
//! uses `bollard`, so an upgrade of that pre-1.0 client touches this file alone.
//!
//! Owns, per step: pulling the image when it is not present, creating a container labelled
//! `gantry.managed=true`, `gantry.run=<run id>` and `gantry.step=<step>`, bind-mounting the
//! step's folder at [`CONTAINER_STEP_DIR`], streaming its output, collecting its exit code and
//! removing the container whatever happened. [`StepRuntime::clean_up`] finds containers by those
//! labels, for what a crash left behind.
//!
//! A trigger's service container is labelled `gantry.managed=true`, `gantry.workflow`,
//! `gantry.trigger` and `gantry.owner` (the server), has its folder mounted read-only at
//! [`CONTAINER_SERVICE_DIR`], listens on [`CONTAINER_PORT`], and is reached at its address on
//! the Docker bridge; [`ServiceRuntime::clean_up_services`] finds an owner's leftovers by label.
//!
//! It must not keep containers once a step's outcome is known, pass Gantry's own environment
//! into a container, or put the step's environment into an error message.
//!
//! Concurrency model: one future per step, sharing one [`Docker`] client (a pooled connection
//! to the socket, cheap to clone). The step's log stream is read by a task in a `JoinSet` owned
//! by that future. If the future is dropped before the step ended, a guard spawns the removal
//! of its container on the current tokio runtime. A service's log stream and the wait for its
//! end live in one watcher task per service.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptions, CreateImageOptions, ListContainersOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use gantry_engine::runtime::{BoxFuture, LogLine, LogStream, StepJob, StepOutcome, StepRuntime};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::lines::{LineSplitter, LogSender};
use crate::script::{self, Executable, INPUT_SCRIPT};
use crate::service::{Service, ServiceError, ServiceJob, ServiceRuntime, Teardown, CONTAINER_PORT};
use crate::RuntimeError;

/// Where the step's folder appears inside its container.
pub const CONTAINER_STEP_DIR: &str = "/var/run/gantry/step";

/// The host as a container reaches it; mapped to the host's gateway on the Docker network.
pub const HOST_FROM_CONTAINER: &str = "host.docker.internal";

/// Every container Gantry creates carries `gantry.managed=true`.
pub const LABEL_MANAGED: &str = "gantry.managed";
/// The id of the run a container belongs to.
pub const LABEL_RUN: &str = "gantry.run";
/// The name of the step a container runs.
pub const LABEL_STEP: &str = "gantry.step";
/// The workflow of a trigger's service container.
pub const LABEL_WORKFLOW: &str = "gantry.workflow";
/// The trigger a service container serves; step containers do not carry it.
pub const LABEL_TRIGGER: &str = "gantry.trigger";
/// The server that owns a service container (see [`ServiceJob::owner`]).
pub const LABEL_OWNER: &str = "gantry.owner";

/// Where a service's folder (its `input` script) appears inside its container, read-only.
pub const CONTAINER_SERVICE_DIR: &str = "/var/run/gantry/trigger";

/// How long the output of a stopped container may keep arriving.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs steps as containers on the local Docker Engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
}

impl DockerRuntime {
    /// Connects to the local socket (`DOCKER_HOST` when it names a `unix://` socket) and agrees
    /// on an API version with the engine, so an older engine (20.10 speaks 1.41) is understood.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let unreachable = |err: DockerError| RuntimeError::DockerUnreachable {
            reason: reason(&err),
        };
        let docker = Docker::connect_with_local_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Self { docker })
    }

    /// The address containers reach the host at (`host.docker.internal`): the gateway of
    /// Docker's default bridge network. A server for containers listens there.
    pub async fn bridge_gateway(&self) -> Option<std::net::IpAddr> {
        let network = self.docker.inspect_network("bridge", None).await.ok()?;
        network
            .ipam?
            .config?
            .into_iter()
            .filter_map(|c| c.gateway)
            .find_map(|g| g.parse().ok())
    }

    /// The containers with the given labels, whatever their state.
    async fn containers(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<String>, DockerError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let containers = self.docker.list_containers(Some(options)).await?;
        Ok(containers.into_iter().filter_map(|c| c.id).collect())
    }

    /// Removes the given containers; a container already gone is not counted.
    async fn remove_all(&self, ids: Vec<String>) -> Result<usize, String> {
        let mut removed = 0;
        let mut failures = Vec::new();
        for id in ids {
            match remove_container(&self.docker, &id).await {
                Ok(()) => removed += 1,
                // Gone already: its own step removed it in the meantime.
                Err(DockerError::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(err) => failures.push(format!("{id}: {}", reason(&err))),
            }
        }
        if failures.is_empty() {
            Ok(removed)
        } else {
            Err(format!(
                "{removed} container(s) removed, {} could not be: {}",
                failures.len(),
                failures.join("; ")
            ))
        }
    }

    async fn run_step(
        &self,
        job: StepJob,
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
    ) -> StepOutcome {
        let mut container = ContainerGuard {
            docker: self.docker.clone(),
            id: None,
        };
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => StepOutcome::Cancelled,
            outcome = self.run_container(&job, logs, &mut container) => outcome,
        };
        // Force removal also kills a container that is still running (the cancelled case).
        container.remove().await;
        outcome
    }

    async fn run_container(
        &self,
        job: &StepJob,
        logs: mpsc::Sender<LogLine>,
        container: &mut ContainerGuard,
    ) -> StepOutcome {
        let Some(image) = job.image.as_deref() else {
            return StepOutcome::FailedToStart("the docker runtime needs an `image`".to_owned());
        };
        let image = with_tag(image);
        if let Err(message) = crate::check_environment(&job.env) {
            return StepOutcome::FailedToStart(message);
        }
        let executable = match script::prepare(&job.program, &job.step_dir).await {
            Ok(executable) => executable,
            Err(err) => return StepOutcome::FailedToStart(err.to_string()),
        };
        if let Err(message) = self.ensure_image(&image).await {
            return StepOutcome::FailedToStart(message);
        }
        let body = match container_body(job, &image, executable) {
            Ok(body) => body,
            Err(message) => return StepOutcome::FailedToStart(message),
        };
        let id = match self.docker.create_container(None, body).await {
            Ok(created) => created.id,
            Err(err) => {
                return StepOutcome::FailedToStart(format!(
                    "the container for image `{image}` could not be created: {}",
                    reason(&err)
                ))
            }
        };
        container.id = Some(id.clone());
        // Attached before the start, as `docker run` does: the stream carries every byte the
        // process writes and ends only after the last one, where following the log file could
        // end before a final unterminated line was written to it.
        let attach = AttachContainerOptions {
            stdout: true,
            stderr: true,
            stream: true,
            // Attached before the start, there is nothing earlier to replay; replaying the log
            // as well would deliver early lines twice.
            logs: false,
            ..Default::default()
        };
        let output = match self.docker.attach_container(&id, Some(attach)).await {
            Ok(attached) => attached.output,
            Err(err) => {
                return StepOutcome::FailedToStart(format!(
                    "the container for image `{image}` could not be attached to: {}",
                    reason(&err)
                ))
            }
        };
        if let Err(err) = self.docker.start_container(&id, None).await {
            return StepOutcome::FailedToStart(format!(
                "the container for image `{image}` could not be started: {}",
                reason(&err)
            ));
        }

        let mut readers = JoinSet::new();
        readers.spawn(forward_logs(output, LogSender::new(&job.step, logs)));
        let outcome = self.wait(&id).await;
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while readers.join_next().await.is_some() {}
        })
        .await;
        outcome
    }

    /// Pulls `image` unless it is present already.
    async fn ensure_image(&self, image: &str) -> Result<(), String> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(err) => {
                return Err(format!(
                    "image `{image}` could not be inspected: {}",
                    reason(&err)
                ))
            }
        }
        let options = CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        };
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            if let Err(err) = step {
                return Err(format!(
                    "image `{image}` could not be pulled: {}",
                    reason(&err)
                ));
            }
        }
        Ok(())
    }

    /// The container's exit code, once it stopped.
    async fn wait(&self, id: &str) -> StepOutcome {
        let options = WaitContainerOptions {
            condition: "not-running".to_owned(),
        };
        let mut waiting = self.docker.wait_container(id, Some(options));
        let failure = match waiting.next().await {
            Some(Ok(exit)) => return StepOutcome::Exited(clamp(exit.status_code)),
            // bollard reports a non-zero exit as an error that carries the code.
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
                return StepOutcome::Exited(clamp(code))
            }
            Some(Err(err)) => reason(&err),
            None => "the engine ended the wait without an answer".to_owned(),
        };
        // The wait request failed (say, the engine restarted); the container may still know.
        let lost = |detail: String| {
            StepOutcome::FailedToStart(format!(
                "the step's container was lost while running: {detail}"
            ))
        };
        match self.docker.inspect_container(id, None).await {
            Ok(inspected) => match inspected.state {
                Some(state) if state.running != Some(true) => match state.exit_code {
                    Some(code) => StepOutcome::Exited(clamp(code)),
                    None => lost(failure),
                },
                _ => lost(failure),
            },
            Err(err) => lost(format!("{failure}; {}", reason(&err))),
        }
    }
}

impl StepRuntime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn run(
        &self,
        job: StepJob,
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, StepOutcome> {
        Box::pin(self.run_step(job, logs, cancel))
    }

    fn clean_up<'a>(&'a self, run_id: Option<&'a str>) -> BoxFuture<'a, Result<usize, String>> {
        Box::pin(async move {
            let ids = self
                .containers(label_filters(run_id))
                .await
                .map_err(|err| {
                    format!("Gantry's containers could not be listed: {}", reason(&err))
                })?;
            self.remove_all(ids).await
        })
    }
}

// ------------------------------------------------------------------ services

impl ServiceRuntime for DockerRuntime {
    fn start_service(
        &self,
        job: ServiceJob,
        logs: mpsc::Sender<LogLine>,
    ) -> BoxFuture<'_, Result<Service, ServiceError>> {
        Box::pin(async move {
            let mut container = ContainerGuard {
                docker: self.docker.clone(),
                id: None,
            };
            let started = self
                .start_service_container(&job, logs, &mut container)
                .await;
            if started.is_err() {
                container.remove().await;
            }
            started
        })
    }

    fn clean_up_services<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<usize, String>> {
        Box::pin(async move {
            let ids = self
                .containers(service_filters(owner))
                .await
                .map_err(|err| {
                    format!(
                        "Gantry's trigger containers could not be listed: {}",
                        reason(&err)
                    )
                })?;
            self.remove_all(ids).await
        })
    }
}

impl DockerRuntime {
    /// Creates, attaches to and starts a service's container; `container` holds its id until
    /// the [`Service`] takes it over, so a failure on the way removes it.
    async fn start_service_container(
        &self,
        job: &ServiceJob,
        logs: mpsc::Sender<LogLine>,
        container: &mut ContainerGuard,
    ) -> Result<Service, ServiceError> {
        let Some(image) = job.image.as_deref() else {
            return Err(ServiceError::Start(
                "the docker runtime needs an `image`".to_owned(),
            ));
        };
        let image = with_tag(image);
        crate::check_environment(&job.env).map_err(ServiceError::Start)?;
        let executable = script::prepare(&job.program, &job.dir)
            .await
            .map_err(|err| ServiceError::Start(err.to_string()))?;
        self.ensure_image(&image)
            .await
            .map_err(ServiceError::Start)?;
        let body = service_body(job, &image, executable).map_err(ServiceError::Start)?;
        let failed = |what: &str, err: &DockerError| {
            ServiceError::Start(format!(
                "the container for image `{image}` could not be {what}: {}",
                reason(err)
            ))
        };
        let id = self
            .docker
            .create_container(None, body)
            .await
            .map_err(|err| failed("created", &err))?
            .id;
        container.id = Some(id.clone());
        let attach = AttachContainerOptions {
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            ..Default::default()
        };
        let output = self
            .docker
            .attach_container(&id, Some(attach))
            .await
            .map_err(|err| failed("attached to", &err))?
            .output;
        self.docker
            .start_container(&id, None)
            .await
            .map_err(|err| failed("started", &err))?;
        let inspected = self
            .docker
            .inspect_container(&id, None)
            .await
            .map_err(|err| failed("inspected", &err))?;
        if inspected.state.as_ref().and_then(|state| state.running) == Some(false) {
            return Err(ServiceError::Exited);
        }
        // Gantry reaches the service at the container's own address on its Docker network (the
        // default bridge) rather than through a published port: the server shares the engine's
        // host, as the metadata API on the bridge gateway already assumes, so the address is
        // routable from here; no host port is taken, no proxy process runs per container, and
        // nothing beyond this host can reach the service.
        let ip = inspected
            .network_settings
            .and_then(|settings| settings.networks)
            .and_then(|networks| {
                networks
                    .into_values()
                    .filter_map(|endpoint| endpoint.ip_address)
                    .find_map(|ip| ip.parse::<IpAddr>().ok())
            })
            .ok_or_else(|| {
                ServiceError::Start(format!(
                    "the container for image `{image}` has no address on a Docker network"
                ))
            })?;
        let exited = CancellationToken::new();
        let watched = exited.clone();
        let docker = self.docker.clone();
        let watched_id = id.clone();
        let sender = LogSender::new(&job.trigger, logs);
        tokio::spawn(async move {
            let mut readers = JoinSet::new();
            readers.spawn(forward_logs(output, sender));
            let options = WaitContainerOptions {
                condition: "not-running".to_owned(),
            };
            // Whatever the answer (an exit code, or the engine lost the container), the
            // service is no longer there to serve.
            let _ = docker
                .wait_container(&watched_id, Some(options))
                .next()
                .await;
            watched.cancel();
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                while readers.join_next().await.is_some() {}
            })
            .await;
        });
        container.id = None;
        let teardown = ServiceContainer {
            docker: self.docker.clone(),
            id: id.clone(),
        };
        Ok(Service::new(
            SocketAddr::new(ip, CONTAINER_PORT),
            id,
            exited,
            Box::new(teardown),
        ))
    }
}

/// A service's container, removed (and so stopped) by its teardown.
struct ServiceContainer {
    docker: Docker,
    id: String,
}

impl Teardown for ServiceContainer {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // A failure leaves a labelled container that `clean_up_services` finds later.
            let _ = remove_container(&self.docker, &self.id).await;
        })
    }
}

fn service_body(
    job: &ServiceJob,
    image: &str,
    executable: Executable,
) -> Result<ContainerCreateBody, String> {
    let dir = absolute(&job.dir)?;
    let mut env: Vec<String> = job.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("PORT={CONTAINER_PORT}"));
    let labels = HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_WORKFLOW.to_owned(), job.workflow.clone()),
        (LABEL_TRIGGER.to_owned(), job.trigger.clone()),
        (LABEL_OWNER.to_owned(), job.owner.clone()),
    ]);
    Ok(body(Shape {
        image,
        executable,
        mounted_at: CONTAINER_SERVICE_DIR,
        bind: format!("{dir}:{CONTAINER_SERVICE_DIR}:ro"),
        env,
        metadata: job.metadata.as_ref(),
        labels,
    }))
}

/// What step and service containers have in common: the program run from one mounted folder,
/// the environment plus `METADATA_API_URL` (and the host name it uses), labels.
struct Shape<'a> {
    image: &'a str,
    executable: Executable,
    /// Where the folder with the script is mounted inside the container.
    mounted_at: &'a str,
    bind: String,
    env: Vec<String>,
    metadata: Option<&'a gantry_engine::runtime::MetadataEndpoint>,
    labels: HashMap<String, String>,
}

fn body(shape: Shape<'_>) -> ContainerCreateBody {
    let Shape {
        image,
        executable,
        mounted_at,
        bind,
        mut env,
        metadata,
        labels,
    } = shape;
    let (entrypoint, cmd) = entrypoint(executable, mounted_at);
    let mut extra_hosts = None;
    if let Some(endpoint) = metadata {
        env.push(format!(
            "METADATA_API_URL={}",
            crate::metadata_api_url(HOST_FROM_CONTAINER, endpoint)
        ));
        extra_hosts = Some(vec![format!("{HOST_FROM_CONTAINER}:host-gateway")]);
    }
    ContainerCreateBody {
        image: Some(image.to_owned()),
        entrypoint,
        cmd,
        env: Some(env),
        labels: Some(labels),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        tty: Some(false),
        host_config: Some(HostConfig {
            binds: Some(vec![bind]),
            extra_hosts,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The label filter of [`DockerRuntime::clean_up`]: every Gantry step container, or one run's.
/// Service containers carry no run label, so a step clean-up never removes them.
fn label_filters(run_id: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut labels = vec![format!("{LABEL_MANAGED}=true")];
    match run_id {
        Some(run_id) => labels.push(format!("{LABEL_RUN}={run_id}")),
        None => labels.push(LABEL_RUN.to_owned()),
    }
    HashMap::from([("label".to_owned(), labels)])
}

/// The label filter of [`DockerRuntime::clean_up_services`]: one owner's service containers.
fn service_filters(owner: &str) -> HashMap<String, Vec<String>> {
    let labels = vec![
        format!("{LABEL_MANAGED}=true"),
        LABEL_TRIGGER.to_owned(),
        format!("{LABEL_OWNER}={owner}"),
    ];
    HashMap::from([("label".to_owned(), labels)])
}

/// An image reference with no tag and no digest means `:latest`; without it, a pull would
/// fetch every tag of the repository.
fn with_tag(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    if name.contains(':') || image.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

fn container_body(
    job: &StepJob,
    image: &str,
    executable: Executable,
) -> Result<ContainerCreateBody, String> {
    let step_dir = absolute(&job.step_dir)?;
    let mut env: Vec<String> = job.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("GANTRY_STEP_DIR={CONTAINER_STEP_DIR}"));
    let labels = HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_RUN.to_owned(), job.run_id.clone()),
        (LABEL_STEP.to_owned(), job.step.clone()),
    ]);
    Ok(body(Shape {
        image,
        executable,
        mounted_at: CONTAINER_STEP_DIR,
        bind: format!("{step_dir}:{CONTAINER_STEP_DIR}"),
        env,
        metadata: job.metadata.as_ref(),
        labels,
    }))
}

/// The container's entrypoint and command: the script in `dir` (the folder as mounted), or
/// the workflow's `command` and `args`.
fn entrypoint(executable: Executable, dir: &str) -> (Option<Vec<String>>, Option<Vec<String>>) {
    match executable {
        Executable::Script => (
            Some(vec![format!("{dir}/{INPUT_SCRIPT}")]),
            Some(Vec::new()),
        ),
        Executable::Command {
            command: Some(command),
            args,
        } => (Some(vec![command]), Some(args)),
        // The image's own entrypoint; `args` replace its default command when given.
        Executable::Command {
            command: None,
            args,
        } => (None, (!args.is_empty()).then_some(args)),
    }
}

/// A bind mount needs an absolute host path.
fn absolute(step_dir: &Path) -> Result<String, String> {
    let path = std::path::absolute(step_dir).map_err(|err| {
        format!(
            "the step's folder {} has no absolute path: {err}",
            step_dir.display()
        )
    })?;
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("the step's folder {} is not valid UTF-8", path.display()))
}

type OutputStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<LogOutput, DockerError>> + Send>>;

async fn forward_logs(mut stream: OutputStream, sender: LogSender) {
    let mut stdout = LineSplitter::default();
    let mut stderr = LineSplitter::default();
    while let Some(Ok(frame)) = stream.next().await {
        match frame {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                sender
                    .send_all(LogStream::Stdout, stdout.push(&message))
                    .await;
            }
            LogOutput::StdErr { message } => {
                sender
                    .send_all(LogStream::Stderr, stderr.push(&message))
                    .await;
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    if let Some(rest) = stdout.finish() {
        sender.send(LogStream::Stdout, rest).await;
    }
    if let Some(rest) = stderr.finish() {
        sender.send(LogStream::Stderr, rest).await;
    }
}

async fn remove_container(docker: &Docker, id: &str) -> Result<(), DockerError> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    docker.remove_container(id, Some(options)).await
}

/// The step's container, removed by [`ContainerGuard::remove`] or, if the step's future is
/// dropped first, by a task spawned on drop.
struct ContainerGuard {
    docker: Docker,
    id: Option<String>,
}

impl ContainerGuard {
    async fn remove(&mut self) {
        if let Some(id) = self.id.take() {
            // A failure leaves a labelled container that `clean_up` finds later.
            let _ = remove_container(&self.docker, &id).await;
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let docker = self.docker.clone();
            runtime.spawn(async move {
                let _ = remove_container(&docker, &id).await;
            });
        }
    }
}

/// Exit codes are 0..=255 in practice; anything else is reported as it fits.
fn clamp(code: i64) -> i32 {
    i32::try_from(code).unwrap_or(i32::MAX)
}

/// What the engine said, without bollard's wrapping of status codes.
fn reason(err: &DockerError) -> String {
    match err {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        DockerError::DockerStreamError { error } => error.trim().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untagged_image_means_latest() {
        assert_eq!(with_tag("busybox"), "busybox:latest");
        assert_eq!(with_tag("gantry-test/busybox:1"), "gantry-test/busybox:1");
        assert_eq!(
            with_tag("localhost:5000/team/step"),
            "localhost:5000/team/step:latest"
        );
        assert_eq!(with_tag("step@sha256:abc"), "step@sha256:abc");
    }

    #[test]
    fn clean_up_of_one_run_narrows_the_label_filter() {
        let one = label_filters(Some("r-1"));
        assert_eq!(one["label"], vec!["gantry.managed=true", "gantry.run=r-1"]);
    }

    #[test]
    fn step_clean_up_leaves_service_containers_alone() {
        let all = label_filters(None);
        assert_eq!(all["label"], vec!["gantry.managed=true", "gantry.run"]);
        let services = service_filters("s1");
        assert_eq!(
            services["label"],
            vec!["gantry.managed=true", "gantry.trigger", "gantry.owner=s1"]
        );
    }
}
