//! Long-running services: a webhook trigger's container (or, with the process runtime, its local
//! process) that listens for HTTP on `$PORT` for as long as Gantry keeps it.
//!
//! Owns starting a service from the same `input`, `inputFile` or `command` rules as a step
//! ([`crate::script`]), telling it where to listen (`PORT`) and where the metadata API is
//! (`METADATA_API_URL`), reporting the address Gantry reaches it at, noticing that it ended
//! ([`Service::has_exited`]), and stopping it. Readiness is the port accepting TCP connections
//! ([`Service::wait_ready`]). [`ServiceRuntime::clean_up_services`] finds what a crash left.
//!
//! It must not decide when a service starts or stops (the server starts one on demand and stops
//! it when idle), and its errors must not quote the service's environment.
//!
//! Concurrency model: [`ServiceRuntime::start_service`] returns once the service is started, not
//! yet ready. A watcher task per service forwards its output lines and marks it exited when it
//! ends. A [`Service`] dropped without [`Service::stop`] is stopped by a task spawned on the
//! current tokio runtime, so nothing outlives its handle for long.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gantry_engine::runtime::{BoxFuture, LogLine, MetadataEndpoint, Program};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The port a service container listens on (`PORT`), as in Relay, whose trigger containers are
/// Knative services with Knative's default port.
pub const CONTAINER_PORT: u16 = 8080;

/// How long one readiness probe waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the port is probed while a service starts.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// One service to start.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceJob {
    /// The workflow and trigger the service belongs to: labels, log lines, messages.
    pub workflow: String,
    pub trigger: String,
    /// The Gantry server that owns it (a label): [`ServiceRuntime::clean_up_services`] removes
    /// only its own owner's services.
    pub owner: String,
    /// The container image. Unused by the process runtime.
    pub image: Option<String>,
    pub program: Program,
    /// The trigger's evaluated `env` plus Relay's variables (`CI`, `RELAY`). The runtime adds
    /// `PORT` and, from `metadata`, `METADATA_API_URL`.
    pub env: BTreeMap<String, String>,
    /// The service's folder on the host; its `input` script is written there.
    pub dir: PathBuf,
    /// Where the service reaches the metadata API, if one is served.
    pub metadata: Option<MetadataEndpoint>,
}

/// Why a service is not serving. Messages name what failed, never an environment value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Start(String),
    #[error("the service exited before it listened on its port")]
    Exited,
    #[error("the service did not listen on its port within {} s", .0.as_secs())]
    NotReady(Duration),
}

/// Starts and cleans up services. Implemented by the Docker and process runtimes.
pub trait ServiceRuntime: Send + Sync {
    /// Starts `job`, sending each output line to `logs` as it comes (tagged with the trigger's
    /// name). Returns once it is started; [`Service::wait_ready`] waits for its port.
    fn start_service(
        &self,
        job: ServiceJob,
        logs: mpsc::Sender<LogLine>,
    ) -> BoxFuture<'_, Result<Service, ServiceError>>;

    /// Removes the services of `owner` that are still around (after a crash). Returns how many.
    fn clean_up_services<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<usize, String>>;
}

/// How a runtime stops what it started.
pub(crate) trait Teardown: Send + Sync {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// A started service. Stop it with [`Service::stop`]; dropping it stops it too.
pub struct Service {
    address: SocketAddr,
    id: String,
    exited: CancellationToken,
    teardown: Option<Box<dyn Teardown>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("address", &self.address)
            .field("id", &self.id)
            .field("exited", &self.has_exited())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// `exited` must fire when the service ends, whatever ends it.
    pub(crate) fn new(
        address: SocketAddr,
        id: String,
        exited: CancellationToken,
        teardown: Box<dyn Teardown>,
    ) -> Self {
        Service {
            address,
            id,
            exited,
            teardown: Some(teardown),
        }
    }

    /// Where Gantry sends the service's requests.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The container's id, or the process id: for log lines.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the service's container or process has ended.
    pub fn has_exited(&self) -> bool {
        self.exited.is_cancelled()
    }

    /// Waits until the service accepts TCP connections on its port, for at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ServiceError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.has_exited() {
                return Err(ServiceError::Exited);
            }
            if let Ok(Ok(_)) =
                tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(self.address)).await
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServiceError::NotReady(timeout));
            }
            tokio::select! {
                () = tokio::time::sleep(PROBE_INTERVAL) => {}
                () = self.exited.cancelled() => {}
            }
        }
    }

    /// Stops the service and removes what it leaves (its container).
    pub async fn stop(mut self) {
        if let Some(teardown) = self.teardown.take() {
            teardown.stop().await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let Some(teardown) = self.teardown.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(teardown.stop());
        }
        // Without a runtime the teardown is dropped; each one's own drop ends what it can
        // (a process group is killed; a container stays for `clean_up_services`).
    }
}
