//! `gantry server`: the long-running control plane. It owns the data directory (the master key
//! and, by default, the SQLite database in it), opens the store (SQLite, or PostgreSQL with a
//! `postgres://` URL), creates an admin API key on first start, serves health, readiness and the
//! REST API ([`crate::api`]), and shuts down gracefully.
//!
//! Concurrency: the caller's tokio runtime accepts and answers (the listener serves every
//! connection on its own task); runs execute on a second, lower-priority runtime
//! ([`crate::workers`]). Shutdown stops accepting, lets requests in flight finish, stops the
//! webhook trigger containers and the worker runtime (runs still in flight are resolved at the
//! next start), then returns.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use gantry_engine::runtime::StepRuntime;
use gantry_runtime::{DockerRuntime, ProcessRuntime, ServiceRuntime};
use gantry_store::{ApiKey, PostgresStore, SqliteStore, Store};

use crate::vault::{Vault, VaultError, MASTER_KEY_ENV};

/// What `gantry server` was asked for.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `postgres://…` to keep data in PostgreSQL; `None` for `gantry.db` in the data directory.
    pub database_url: Option<String>,
    /// Where run steps execute.
    pub runtime: RuntimeChoice,
    /// The base URL callers reach this server at (webhook URLs and the push endpoint are built
    /// on it); `None` for `http://` and the bound address.
    pub public_url: Option<String>,
    /// The clock schedules fire by; `None` for the system clock (tests inject a manual one).
    pub timer: Option<Arc<dyn crate::triggers::schedule::Timer>>,
    /// Where and how many runs execute at once.
    pub workers: crate::workers::WorkerConfig,
    /// Where runs' scratch folders go; `None` for a memory file system when there is one (see
    /// `crate::workers::scratch_root`).
    pub work_dir: Option<PathBuf>,
    /// When webhook trigger containers are stopped for idleness or given up on at start.
    pub trigger_containers: crate::triggers::container::TriggerContainerConfig,
    /// Single sign-on with an OpenID provider; `None` for passwords and API keys only.
    pub sso: Option<crate::api::login::SsoConfig>,
}

/// Where the server's run steps execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// Docker when its engine answers, local processes otherwise.
    Auto,
    Docker,
    Process,
}

/// What a runtime choice gives: steps' runtime, trigger containers' runtime (the same backend),
/// and the Docker bridge address containers reach the host at.
type Runtimes = (
    Arc<dyn StepRuntime>,
    Arc<dyn ServiceRuntime>,
    Option<std::net::IpAddr>,
);

/// The runtimes a choice names.
async fn runtime(choice: RuntimeChoice) -> Result<Runtimes, ServerError> {
    let docker = match choice {
        RuntimeChoice::Process => None,
        RuntimeChoice::Docker => Some(
            DockerRuntime::connect()
                .await
                .map_err(|e| ServerError::Runtime(e.to_string()))?,
        ),
        RuntimeChoice::Auto => match DockerRuntime::connect().await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(reason = %e, "Docker is not reachable: steps run as local processes");
                None
            }
        },
    };
    Ok(match docker {
        Some(d) => {
            let gateway = d
                .bridge_gateway()
                .await
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::new(172, 17, 0, 1)));
            (Arc::new(d.clone()), Arc::new(d), Some(gateway))
        }
        None => (
            Arc::new(ProcessRuntime::new()),
            Arc::new(ProcessRuntime::new()),
            None,
        ),
    })
}

/// The SQLite file in the data directory.
pub const DATABASE_FILE: &str = "gantry.db";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("the server stopped: {0}")]
    Serve(String),
    #[error("cannot open the store: {0}")]
    Store(String),
    #[error("unsupported database URL `{0}`: use postgres://… (or none for SQLite in the data directory)")]
    DatabaseUrl(String),
    #[error("{0}\nstart the Docker engine, or choose --runtime process")]
    Runtime(String),
}

/// Opens the store a configuration names.
pub async fn open_store(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
) -> Result<Arc<dyn Store>, ServerError> {
    match database_url {
        None => {
            std::fs::create_dir_all(data_dir).map_err(|e| ServerError::DataDir {
                path: data_dir.display().to_string(),
                reason: e.to_string(),
            })?;
            let store = SqliteStore::open(data_dir.join(DATABASE_FILE))
                .await
                .map_err(|e| ServerError::Store(e.to_string()))?;
            Ok(Arc::new(store))
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PostgresStore::connect(url)
                .await
                // The URL may hold a password: say which database failed, not the URL.
                .map_err(|e| ServerError::Store(format!("PostgreSQL: {e}")))?;
            Ok(Arc::new(store))
        }
        Some(other) => {
            let scheme = other.split("://").next().unwrap_or_default().to_owned();
            Err(ServerError::DatabaseUrl(format!("{scheme}://…")))
        }
    }
}

/// Makes a new API key for `principal` (`admin`, `user:<id>`, `service:<id>`) and stores its
/// hash, audited as `audit`; returns the key to show once.
pub async fn issue_api_key(
    store: &dyn Store,
    principal: &str,
    audit: &gantry_store::Audit,
) -> Result<String, ServerError> {
    let key = crate::apikey::generate()
        .ok_or_else(|| ServerError::Store("no randomness available for an API key".into()))?;
    let id = gantry_store::new_id().map_err(|e| ServerError::Store(e.to_string()))?;
    store
        .create_api_key(
            &ApiKey {
                id,
                prefix: key.prefix.clone(),
                hash: key.hash.clone().into_bytes(),
                principal: principal.to_owned(),
                created_at: chrono::Utc::now(),
                last_used_at: None,
                expires_at: None,
                revoked_at: None,
            },
            audit,
        )
        .await
        .map_err(|e| ServerError::Store(e.to_string()))?;
    Ok(key.presented)
}

#[derive(Clone)]
struct AppState {
    ready: Arc<AtomicBool>,
    store: Arc<dyn Store>,
}

/// The server, bound and ready to serve.
pub struct Server {
    /// Set on the first start only: the admin key, to print once.
    pub initial_admin_key: Option<String>,
    /// The step runtime chosen (`docker` or `process`).
    pub runtime_name: &'static str,
    metadata: Option<crate::metadata::listen::Listener>,
    registry: Arc<crate::runs::Registry>,
    triggers: Arc<crate::triggers::TriggerService>,
    containers: Arc<crate::triggers::container::TriggerContainers>,
    timer: Arc<dyn crate::triggers::schedule::Timer>,
    schedule_observer: Option<tokio::sync::mpsc::UnboundedSender<crate::triggers::schedule::Fired>>,
    listener: TcpListener,
    app: Router,
    ready: Arc<AtomicBool>,
    local_addr: SocketAddr,
    /// Where runs execute; stopped when the server is dropped.
    workers: crate::workers::Workers,
    /// The runs' scratch root when Gantry chose it (not `--work-dir`), removed at a graceful
    /// stop when no run left anything in it.
    scratch: Option<PathBuf>,
}

impl Server {
    /// Prepares the data directory and the master key, and binds the listener.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| ServerError::DataDir {
            path: config.data_dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let env_key = std::env::var(MASTER_KEY_ENV).ok();
        // Loaded now so a broken key stops the start, not the first secret write.
        let vault = Arc::new(Vault::load(&config.data_dir, env_key.as_deref())?);
        let store = open_store(&config.data_dir, config.database_url.as_deref()).await?;
        let no_keys = store
            .list_api_keys()
            .await
            .map_err(|e| ServerError::Store(e.to_string()))?
            .is_empty();
        let initial_admin_key = if no_keys {
            Some(
                issue_api_key(
                    store.as_ref(),
                    "admin",
                    &gantry_store::Audit::system("first start", chrono::Utc::now()),
                )
                .await?,
            )
        } else {
            None
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServerError::Listen {
                addr: config.listen,
                reason: e.to_string(),
            })?;
        let local_addr = listener.local_addr().map_err(|e| ServerError::Listen {
            addr: config.listen,
            reason: e.to_string(),
        })?;
        let ready = Arc::new(AtomicBool::new(false));
        let (runtime, services, bridge) = runtime(config.runtime).await?;
        let metadata = crate::metadata::listen::Listener::bind(bridge)
            .await
            .map_err(|e| ServerError::Listen {
                addr: config.listen,
                reason: format!("the metadata API for steps: {e}"),
            })?;
        let registry = Arc::new(crate::runs::Registry::default());
        let scratch = crate::workers::scratch_root(&config.data_dir, config.work_dir.as_deref());
        let workers = crate::workers::Workers::start(config.workers)
            .map_err(|e| ServerError::Serve(format!("cannot start the worker threads: {e}")))?;
        // One group-commit writer for accepted events and every write of a run, so they share
        // transactions.
        let writes = gantry_store::BatchWriter::start(store.clone(), Default::default());
        let owner = crate::triggers::container::TriggerContainers::owner_of(&config.data_dir);
        // Steps go through the job queue; this server's workers claim them.
        let pool = crate::queue::server_pool(&owner);
        let queue = crate::queue::QueuedRuntime::start(
            crate::queue::QueueSetup {
                store: store.clone(),
                writes: writes.clone(),
                vault: vault.clone(),
                runtime,
                masks: registry.clone(),
                worker: crate::queue::worker_name(&pool),
                pool,
                max_parallel_steps: config.workers.max_parallel_steps,
            },
            workers.handle(),
        );
        let agents = crate::agents::AgentHub::start(queue.clone());
        let runtime: Arc<dyn StepRuntime> = Arc::new(queue.clone());
        let runs = Arc::new(crate::runs::RunService::new(
            store.clone(),
            writes.clone(),
            vault.clone(),
            runtime.clone(),
            scratch.clone(),
            Some(metadata.port()),
            registry.clone(),
            workers.handle().clone(),
        ));
        let store_error = |e: gantry_store::StoreError| ServerError::Store(e.to_string());
        let push = crate::triggers::push::PushKeys::load(store.as_ref(), &vault)
            .await
            .map_err(store_error)?;
        let triggers = Arc::new(crate::triggers::TriggerService::new(
            store.clone(),
            writes,
            runs.clone(),
            push,
        ));
        registry.set_intake(triggers.clone());
        let containers = crate::triggers::container::TriggerContainers::new(
            crate::triggers::container::TriggerContainerSetup {
                runtime: services,
                registry: registry.clone(),
                store: store.clone(),
                vault: vault.clone(),
                metadata_port: Some(metadata.port()),
                root: config.data_dir.join("triggers"),
                owner,
                config: config.trigger_containers,
            },
        );
        // Trigger containers a crash of this server left behind; they start again on demand.
        match containers.clean_up().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed trigger containers left by a stop"),
            Err(e) => tracing::warn!(error = %e, "could not remove old trigger containers"),
        }
        triggers.set_containers(containers.clone());
        let recovered = runs.recover(&queue).await.map_err(store_error)?;
        if recovered.resumed > 0 {
            tracing::info!(
                runs = recovered.resumed,
                "resumed the runs whose steps agents kept running through the stop"
            );
        }
        // Events accepted just before a stop get their runs now.
        let dispatched = triggers.dispatch_pending().await.map_err(store_error)?;
        if dispatched > 0 {
            tracing::info!(
                runs = dispatched,
                "started the runs of events accepted before the stop"
            );
        }
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"))
            .trim_end_matches('/')
            .to_owned();
        // The catalog is loaded before the first request, so none waits for it.
        let catalog = crate::catalog::CatalogService::new(store.clone());
        catalog.sync().await.map_err(store_error)?;
        let public_url: Arc<str> = public_url.into();
        let actions = crate::actions::ActionService::new(
            store.clone(),
            vault.clone(),
            runs.clone(),
            catalog.clone(),
            public_url.clone(),
        );
        // Action runs in flight at the stop: queued ones start, running ones are followed.
        actions.recover().await.map_err(store_error)?;
        let (scorecards, automations) = crate::automations::start_services(
            store.clone(),
            catalog.clone(),
            runs.clone(),
            &actions,
        )
        .await
        .map_err(store_error)?;
        let app = router(AppState {
            ready: ready.clone(),
            store: store.clone(),
        })
        .merge(crate::api::router(crate::api::ApiState {
            store,
            runs,
            vault,
            triggers: triggers.clone(),
            sign_in: Arc::new(crate::api::login::SignIn::new(
                &public_url,
                config.sso.clone().map(|c| c.into_sso(&public_url)),
            )),
            public_url,
            catalog,
            agents: Some(agents),
            actions,
            scorecards,
            automations,
        }));
        let timer = config
            .timer
            .clone()
            .unwrap_or_else(|| Arc::new(crate::triggers::schedule::SystemTimer));
        Ok(Server {
            initial_admin_key,
            runtime_name: runtime.name(),
            metadata: Some(metadata),
            registry,
            triggers,
            containers,
            timer,
            schedule_observer: None,
            listener,
            app,
            ready,
            local_addr,
            workers,
            scratch: config.work_dir.is_none().then_some(scratch),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Reports every schedule fire on the returned channel, with its durable acceptance time
    /// (benchmarks and tests watch the scheduler through it). Call before `serve`.
    pub fn observe_schedules(
        &mut self,
    ) -> tokio::sync::mpsc::UnboundedReceiver<crate::triggers::schedule::Fired> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.schedule_observer = Some(tx);
        rx
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn serve(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let metadata = self.metadata.take().map(|m| m.serve(self.registry.clone()));
        let scheduler = tokio::spawn(crate::triggers::schedule::run(
            self.triggers.clone(),
            self.timer.clone(),
            self.schedule_observer.take(),
        ));
        self.ready.store(true, Ordering::SeqCst);
        tracing::info!(addr = %self.local_addr, "gantry server ready");
        let ready = self.ready.clone();
        let app = self
            .app
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                ready.store(false, Ordering::SeqCst);
                tracing::info!("shutting down");
            })
            .await
            .map_err(|e| ServerError::Serve(e.to_string()));
        scheduler.abort();
        // The requests in flight have ended; trigger containers go before the metadata API.
        self.containers.stop_all().await;
        if let Some(m) = metadata {
            m.abort();
        }
        // Runs still in flight stop here; the next start resolves them (`RunService::recover`).
        drop(self.workers);
        // Only when empty: a folder left by a run cut off here is resolved at the next start.
        if let Some(scratch) = &self.scratch {
            let _ = std::fs::remove_dir(scratch);
        }
        result
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(state)
}

/// Alive: the process answers.
async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready: started, not shutting down, and the store answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.ready.load(Ordering::SeqCst) && state.store.ping().await.is_ok() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready"})),
        )
    }
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"code": "not_found", "message": "no such route", "path": null})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn readiness_follows_the_flag() {
        let ready = Arc::new(AtomicBool::new(false));
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join(DATABASE_FILE))
                .await
                .unwrap(),
        );
        let app = router(AppState {
            ready: ready.clone(),
            store,
        });
        let status = |app: Router, path: &'static str| async move {
            app.oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        };
        assert_eq!(status(app.clone(), "/healthz").await, StatusCode::OK);
        assert_eq!(
            status(app.clone(), "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        ready.store(true, Ordering::SeqCst);
        assert_eq!(status(app.clone(), "/readyz").await, StatusCode::OK);
        assert_eq!(status(app, "/nope").await, StatusCode::NOT_FOUND);
    }
}
