//! Webhook triggers with an `image`: a long-running HTTP container per trigger, as in Relay.
//! Requests to the trigger's URL are proxied to the container ([`super::proxy`]), which decides
//! whether to emit events through the metadata API's `POST /events`; its reply goes back to the
//! caller unchanged.
//!
//! [`TriggerContainers`] owns the containers' lifecycle. A container is started on demand at the
//! first request, with the trigger's `spec` and `env` evaluated (secrets and connections opened
//! with the same sealed-secret machinery as runs; parameters do not exist for triggers), `PORT`,
//! `METADATA_API_URL` with a token of its own, `CI` and `RELAY`. It is ready once its port
//! accepts connections (within [`TriggerContainerConfig::ready_timeout`]), kept warm while
//! requests come, and stopped after [`TriggerContainerConfig::idle_timeout`] without one. A
//! container that exited is started again at the next request. Applying a workflow whose trigger
//! definition changed, or deleting it, stops the old container; a request that finds a container
//! of another definition (applied through another server) replaces it too. Graceful shutdown
//! stops them all; a start after a crash removes the leftovers of this server (by label).
//!
//! What it must not do: send a caller anything about why a container failed (the reason, which
//! may name secrets, goes to the server's log), leave a token valid once its container is
//! stopped, or start two containers for one trigger at once.
//!
//! Concurrency: one slot per trigger. A slot's state sits behind a tokio mutex held across the
//! start, so concurrent first requests wait for one start and then share it (and share its
//! failure, rather than each starting again); requests are proxied outside the lock. Each
//! running container has one idle watcher task; a request in flight keeps it from stopping.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use gantry_engine::runtime::MetadataEndpoint;
use gantry_engine::secrets::{evaluate_with, masks, SecretResolver};
use gantry_runtime::{Service, ServiceError, ServiceJob, ServiceRuntime};
use gantry_store::{Store, StoreError};
use gantry_workflow::expr::{Data, Evaluation};
use gantry_workflow::{Container, TriggerSource, Workflow};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::runs::{Registry, TriggerView};
use crate::vault::Vault;

/// How long a trigger's container is kept without a request, unless configured otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How long a starting container has to accept connections on its port.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// When trigger containers start and stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerContainerConfig {
    /// A container without a request for this long is stopped.
    pub idle_timeout: Duration,
    /// A starting container that does not accept connections within this is given up.
    pub ready_timeout: Duration,
}

impl Default for TriggerContainerConfig {
    fn default() -> Self {
        TriggerContainerConfig {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

/// Why a request found no container to answer it. The `Display` text is safe for callers;
/// `Start` carries a reason for the log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    #[error("the server is stopping")]
    Stopping,
    /// The reason is for the server's log: it may name secrets or paths.
    #[error("the trigger's container could not be started; the server's log says why")]
    Start(String),
    #[error("the trigger's container exited before it listened on $PORT")]
    Exited,
    #[error("the trigger's container did not listen on $PORT within {0} s")]
    NotReady(u64),
}

/// A running container of one trigger definition.
struct Live {
    service: Service,
    token: String,
    /// The trigger's `source` in canonical form: a different one means a different container.
    definition: Value,
    /// Tells the idle watcher whether the container it watches is still this slot's.
    generation: u64,
}

#[derive(Default)]
struct SlotState {
    live: Option<Live>,
    /// The last failed start: (its attempt number, why). Requests that waited for that attempt
    /// get the same answer instead of starting again.
    failure: Option<(u64, ContainerError)>,
}

/// One trigger's container, or none.
struct Slot {
    workflow: String,
    trigger: String,
    state: tokio::sync::Mutex<SlotState>,
    /// Start attempts finished so far.
    attempts: AtomicU64,
    /// Requests being answered right now: the idle watcher leaves the container alone.
    busy: AtomicUsize,
    last_used: Mutex<Instant>,
}

impl Slot {
    fn touch(&self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn last_used(&self) -> Instant {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request's hold on a running container: while it lives, the container is not idle.
pub struct Lease {
    slot: Arc<Slot>,
    address: SocketAddr,
}

impl Lease {
    fn new(slot: Arc<Slot>) -> Lease {
        slot.busy.fetch_add(1, Ordering::SeqCst);
        slot.touch();
        Lease {
            slot,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// Where the container listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Idle time counts from the end of the last request.
        self.slot.touch();
        self.slot.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What starting a container needs.
pub struct TriggerContainerSetup {
    pub runtime: Arc<dyn ServiceRuntime>,
    pub registry: Arc<Registry>,
    pub store: Arc<dyn Store>,
    pub vault: Arc<Vault>,
    /// Where the metadata API listens; `None` when none is served.
    pub metadata_port: Option<u16>,
    /// The triggers' folders (their `input` scripts) go under it.
    pub root: PathBuf,
    /// This server, as the containers' owner label.
    pub owner: String,
    pub config: TriggerContainerConfig,
}

/// The webhook triggers' containers of this server.
pub struct TriggerContainers {
    setup: TriggerContainerSetup,
    slots: Mutex<HashMap<(String, String), Arc<Slot>>>,
    generations: AtomicU64,
    stopping: AtomicBool,
    pub(crate) proxy: super::proxy::Proxy,
}

impl TriggerContainers {
    pub fn new(setup: TriggerContainerSetup) -> Arc<TriggerContainers> {
        Arc::new(TriggerContainers {
            setup,
            slots: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            proxy: super::proxy::Proxy::new(),
        })
    }

    /// The owner label of the server whose data directory is `data_dir`: stable across
    /// restarts, different for two servers on one machine.
    pub fn owner_of(data_dir: &Path) -> String {
        let path = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        hex(&Sha256::digest(path.to_string_lossy().as_bytes()))
            .chars()
            .take(16)
            .collect()
    }

    /// Removes what a crash of this server left running. Returns how many containers.
    pub async fn clean_up(&self) -> Result<usize, String> {
        self.setup
            .runtime
            .clean_up_services(&self.setup.owner)
            .await
    }

    fn slot(&self, workflow: &str, trigger: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .entry((workflow.to_owned(), trigger.to_owned()))
            .or_insert_with(|| {
                Arc::new(Slot {
                    workflow: workflow.to_owned(),
                    trigger: trigger.to_owned(),
                    state: tokio::sync::Mutex::new(SlotState::default()),
                    attempts: AtomicU64::new(0),
                    busy: AtomicUsize::new(0),
                    last_used: Mutex::new(Instant::now()),
                })
            })
            .clone()
    }

    fn all_slots(&self) -> Vec<Arc<Slot>> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.values().cloned().collect()
    }

    /// The running container of `trigger` (of `workflow`, whose webhook source is `container`),
    /// started first if there is none, it exited, or it runs another definition.
    pub async fn lease(
        self: &Arc<Self>,
        workflow: &str,
        trigger: &str,
        container: &Container,
    ) -> Result<Lease, ContainerError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(ContainerError::Stopping);
        }
        let definition = container.to_json();
        let slot = self.slot(workflow, trigger);
        let mut lease = Lease::new(slot.clone());
        let queued_after = slot.attempts.load(Ordering::SeqCst);
        let mut state = slot.state.lock().await;
        if let Some(live) = &state.live {
            if live.definition == definition && !live.service.has_exited() {
                lease.address = live.service.address();
                return Ok(lease);
            }
        }
        if state.live.is_none() {
            if let Some((attempt, error)) = &state.failure {
                // This request waited while a start failed: that is its answer too.
                if *attempt > queued_after {
                    return Err(error.clone());
                }
            }
        }
        if let Some(old) = state.live.take() {
            let why = if old.service.has_exited() {
                "it exited"
            } else {
                "the trigger changed"
            };
            tracing::info!(
                workflow,
                trigger,
                container = old.service.id(),
                "replacing a trigger's container: {why}"
            );
            retire(&self.setup.registry, old).await;
        }
        // Checked again under the lock: `stop_all` takes every slot's lock after setting it.
        if self.stopping.load(Ordering::SeqCst) {
            return Err(ContainerError::Stopping);
        }
        let attempt = slot.attempts.load(Ordering::SeqCst) + 1;
        let started = self.start(workflow, trigger, container, definition).await;
        slot.attempts.store(attempt, Ordering::SeqCst);
        match started {
            Ok(live) => {
                lease.address = live.service.address();
                let generation = live.generation;
                state.live = Some(live);
                state.failure = None;
                tokio::spawn(watch_idle(Arc::downgrade(self), slot.clone(), generation));
                Ok(lease)
            }
            Err(error) => {
                state.failure = Some((attempt, error.clone()));
                Err(error)
            }
        }
    }

    /// Starts a container for `container` and waits until it listens.
    async fn start(
        &self,
        workflow: &str,
        trigger: &str,
        container: &Container,
        definition: Value,
    ) -> Result<Live, ContainerError> {
        let setup = &self.setup;
        let sealed = crate::runs::sealed_secrets(
            setup.store.as_ref(),
            &setup.vault,
            workflow,
            container.spec.iter().chain(&container.env),
        )
        .await
        .map_err(|e: StoreError| ContainerError::Start(format!("the store failed: {e}")))?;
        let view = evaluate(workflow, trigger, container, &sealed);
        if !view.env.is_complete() {
            return Err(ContainerError::Start(format!(
                "its env cannot be evaluated: {}",
                incomplete(&view.env)
            )));
        }
        let mut env: BTreeMap<String, String> = match &view.env.value {
            Value::Object(vars) => vars
                .iter()
                .map(|(k, v)| (k.clone(), gantry_engine::driver::env_string(v)))
                .collect(),
            _ => BTreeMap::new(),
        };
        env.insert("CI".into(), "true".into());
        env.insert("RELAY".into(), "true".into());
        env.insert("GANTRY_WORKFLOW".into(), workflow.to_owned());
        env.insert("GANTRY_TRIGGER".into(), trigger.to_owned());
        let dir = setup.root.join(folder(workflow, trigger));
        std::fs::create_dir_all(&dir)
            .map_err(|e| ContainerError::Start(format!("cannot create {}: {e}", dir.display())))?;
        restrict(&setup.root);
        let token = gantry_engine::driver::new_token()
            .map_err(|e| ContainerError::Start(format!("no token: {e}")))?;
        let view = Arc::new(view);
        let job = ServiceJob {
            workflow: workflow.to_owned(),
            trigger: trigger.to_owned(),
            owner: setup.owner.clone(),
            image: container.image.as_ref().map(|i| i.value.clone()),
            program: gantry_engine::driver::program(container, &dir),
            env,
            dir,
            metadata: setup.metadata_port.map(|port| MetadataEndpoint {
                port,
                token: token.clone(),
            }),
        };
        let (logs_tx, logs_rx) = mpsc::channel(256);
        tokio::spawn(log_lines(view.clone(), logs_rx));
        // Valid before the container starts: it may call the API as soon as it runs.
        setup
            .registry
            .add_trigger_token(token.clone(), view.clone());
        let service = match setup.runtime.start_service(job, logs_tx).await {
            Ok(service) => service,
            Err(e) => {
                setup.registry.remove_trigger_token(&token);
                return Err(service_error(e));
            }
        };
        if let Err(e) = service.wait_ready(setup.config.ready_timeout).await {
            setup.registry.remove_trigger_token(&token);
            service.stop().await;
            return Err(service_error(e));
        }
        tracing::info!(workflow, trigger, container = service.id(), address = %service.address(),
            "started a trigger's container");
        Ok(Live {
            service,
            token,
            definition,
            generation: self.generations.fetch_add(1, Ordering::SeqCst),
        })
    }

    /// `workflow` was applied or deleted: stops its containers whose trigger is gone or
    /// defined differently now. Runs on its own task.
    pub fn workflow_changed(self: &Arc<Self>, workflow: &str) {
        let slots: Vec<Arc<Slot>> = self
            .all_slots()
            .into_iter()
            .filter(|s| s.workflow == workflow)
            .collect();
        if slots.is_empty() {
            return;
        }
        let this = self.clone();
        let workflow = workflow.to_owned();
        tokio::spawn(async move {
            let current = match this.setup.store.get_workflow(&workflow).await {
                Ok(stored) => Some(gantry_workflow::parse(&stored.yaml).workflow),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => {
                    // The next request compares definitions and replaces a stale container.
                    tracing::warn!(%workflow, error = %e, "could not read a changed workflow");
                    return;
                }
            };
            for slot in slots {
                let wanted = current
                    .as_ref()
                    .and_then(|wf| webhook_source(wf, &slot.trigger));
                let mut state = slot.state.lock().await;
                let stale = state
                    .live
                    .as_ref()
                    .is_some_and(|live| Some(&live.definition) != wanted.as_ref());
                if stale {
                    if let Some(old) = state.live.take() {
                        tracing::info!(workflow = %slot.workflow, trigger = %slot.trigger,
                            container = old.service.id(),
                            "stopping a trigger's container: its workflow changed");
                        retire(&this.setup.registry, old).await;
                    }
                }
                state.failure = None;
            }
        });
    }

    /// Stops every container and refuses new requests (graceful shutdown).
    pub async fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for slot in self.all_slots() {
            let mut state = slot.state.lock().await;
            if let Some(old) = state.live.take() {
                retire(&self.setup.registry, old).await;
            }
        }
    }
}

/// The canonical `source` of webhook trigger `name` with an image, if `wf` has one.
fn webhook_source(wf: &Workflow, name: &str) -> Option<Value> {
    wf.triggers
        .iter()
        .find(|t| t.name.value == name)
        .and_then(|t| match &t.source {
            TriggerSource::Webhook(c) if c.image.is_some() => Some(c.to_json()),
            _ => None,
        })
}

/// Revokes a container's token, then stops it.
async fn retire(registry: &Registry, live: Live) {
    registry.remove_trigger_token(&live.token);
    live.service.stop().await;
}

/// Stops the container of `generation` once its slot has had no request for the idle timeout.
async fn watch_idle(
    containers: std::sync::Weak<TriggerContainers>,
    slot: Arc<Slot>,
    generation: u64,
) {
    let Some(idle) = containers.upgrade().map(|c| c.setup.config.idle_timeout) else {
        return;
    };
    let mut wake = slot.last_used() + idle;
    loop {
        tokio::time::sleep_until(wake).await;
        let Some(this) = containers.upgrade() else {
            return;
        };
        let mut state = slot.state.lock().await;
        match &state.live {
            Some(live) if live.generation == generation => {}
            // Replaced or stopped by someone else.
            _ => return,
        }
        if slot.busy.load(Ordering::SeqCst) > 0 {
            // A long request: its end counts as the last use.
            wake = Instant::now() + idle;
            continue;
        }
        let due = slot.last_used() + idle;
        if due > Instant::now() {
            wake = due;
            continue;
        }
        if let Some(old) = state.live.take() {
            tracing::info!(workflow = %slot.workflow, trigger = %slot.trigger,
                container = old.service.id(), idle_s = idle.as_secs(),
                "stopping an idle trigger's container");
            retire(&this.setup.registry, old).await;
        }
        return;
    }
}

/// The trigger's spec and env, evaluated with its secrets and connections opened.
fn evaluate(
    workflow: &str,
    trigger: &str,
    container: &Container,
    resolver: &dyn SecretResolver,
) -> TriggerView {
    let mut data = Data {
        now: Utc::now(),
        ..Data::default()
    };
    let mut evaluate_or_empty = |v: Option<&gantry_workflow::Value>| match v {
        Some(v) => evaluate_with(&v.to_json(), &mut data, resolver),
        None => Evaluation {
            value: Value::Object(Map::new()),
            unresolved: Default::default(),
            errors: Vec::new(),
        },
    };
    let spec = evaluate_or_empty(container.spec.as_ref());
    let env = evaluate_or_empty(container.env.as_ref());
    TriggerView {
        workflow: workflow.to_owned(),
        trigger: trigger.to_owned(),
        spec,
        env,
        masks: masks(&data, []),
        secrets: data.secrets,
    }
}

/// What is missing or wrong in an evaluation, by name (never a value).
fn incomplete(e: &Evaluation) -> String {
    let mut parts = Vec::new();
    if !e.unresolved.is_empty() {
        parts.push(gantry_engine::run::describe_unresolved(&e.unresolved));
    }
    parts.extend(e.errors.iter().map(ToString::to_string));
    parts.join("; ")
}

fn service_error(e: ServiceError) -> ContainerError {
    match e {
        ServiceError::Start(reason) => ContainerError::Start(reason),
        ServiceError::Exited => ContainerError::Exited,
        ServiceError::NotReady(limit) => ContainerError::NotReady(limit.as_secs()),
    }
}

/// A container's output, masked, in the server's log.
async fn log_lines(
    view: Arc<TriggerView>,
    mut lines: mpsc::Receiver<gantry_engine::runtime::LogLine>,
) {
    while let Some(line) = lines.recv().await {
        let text = gantry_engine::run::mask_line(&line.line, &view.masks);
        tracing::info!(workflow = %view.workflow, trigger = %view.trigger,
            stream = line.stream.as_str(), "{text}");
    }
}

/// A trigger's folder name: safe whatever the names hold, and stable.
fn folder(workflow: &str, trigger: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(workflow.as_bytes());
    hasher.update([0]);
    hasher.update(trigger.as_bytes());
    hex(&hasher.finalize()).chars().take(24).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(unix)]
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_stable_safe_and_distinct() {
        let a = folder("wf", "../../etc");
        assert_eq!(a, folder("wf", "../../etc"));
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(folder("a", "bc"), folder("ab", "c"));
    }

    #[test]
    fn caller_messages_say_nothing_of_the_reason() {
        let e = ContainerError::Start("secret `db` does not exist".into());
        assert!(!e.to_string().contains("db"), "{e}");
    }
}
