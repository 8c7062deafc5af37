//! What the server benchmarks share: the API's state on a store, serving it over loopback as
//! `gantry server` does (with the peer's address, which the guard's limits read), the backends
//! a run measures (`GANTRY_BENCH_BACKENDS`), and the small helpers every bench uses.
//!
//! Each bench includes this module and uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use gantry_server::api::ApiState;
use gantry_server::runs::{Registry, RunService};
use gantry_store::Store;

/// The API's state on `store`, with its vault and runs under `dir`.
pub(crate) async fn state(store: Arc<dyn Store>, dir: &std::path::Path) -> ApiState {
    let vault = Arc::new(gantry_server::vault::Vault::load(dir, None).expect("vault"));
    let writes = gantry_store::BatchWriter::start(store.clone(), Default::default());
    let runs = Arc::new(RunService::new(
        store.clone(),
        writes.clone(),
        vault.clone(),
        Arc::new(gantry_runtime::ProcessRuntime::new()),
        dir.join("runs"),
        None,
        Arc::new(Registry::default()),
        tokio::runtime::Handle::current(),
    ));
    let triggers = Arc::new(gantry_server::triggers::TriggerService::new(
        store.clone(),
        writes,
        runs.clone(),
        gantry_server::triggers::push::PushKeys::from_secret(&[1; 32]),
    ));
    let catalog = gantry_server::catalog::CatalogService::new(store.clone());
    let actions = gantry_server::actions::ActionService::new(
        store.clone(),
        vault.clone(),
        runs.clone(),
        catalog.clone(),
        "http://127.0.0.1".into(),
    );
    let (scorecards, automations) = gantry_server::automations::start_services(
        store.clone(),
        catalog.clone(),
        runs.clone(),
        &actions,
    )
    .await
    .expect("scorecards and automations");
    ApiState {
        scorecards,
        automations,
        store: store.clone(),
        runs,
        vault,
        triggers,
        actions,
        public_url: "http://127.0.0.1".into(),
        sign_in: Arc::new(gantry_server::api::login::SignIn::new(
            "http://127.0.0.1",
            None,
        )),
        catalog,
        agents: None,
    }
}

/// Serves `app` on a free loopback port; answers `http://127.0.0.1:<port>/api/v1`.
pub(crate) async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/v1")
}

/// A number from the environment, or `default`.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Changes the benchmarks make, as Gantry's own.
pub(crate) fn audit() -> gantry_store::Audit {
    gantry_store::Audit::system("benchmark", chrono::Utc::now())
}

/// The `p` quantile of sorted latencies, in milliseconds.
pub(crate) fn pct(sorted: &[std::time::Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// A database a bench runs on.
pub(crate) enum Backend {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, schema: String },
}

/// Opens (creating, migrating) the backend's store.
pub(crate) async fn open(backend: &Backend) -> Arc<dyn Store> {
    match backend {
        Backend::Sqlite(dir) => Arc::new(
            gantry_store::SqliteStore::open(dir.join("gantry.db"))
                .await
                .expect("sqlite"),
        ),
        Backend::Postgres { url, schema } => {
            let mut options = gantry_store::PostgresOptions::new(url.clone());
            options.schema = Some(schema.clone());
            Arc::new(
                gantry_store::PostgresStore::connect_with(&options)
                    .await
                    .expect("postgres"),
            )
        }
    }
}

/// Runs `bench(name, backend, dir)` once per backend of `GANTRY_BENCH_BACKENDS` (default
/// `sqlite,postgres`; PostgreSQL needs `GANTRY_TEST_POSTGRES_URL`, and is skipped without
/// it), each in a fresh temporary folder and, on PostgreSQL, a fresh schema.
pub(crate) fn each_backend<F, Fut>(bench: F)
where
    F: Fn(String, Backend, std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // The server's warnings and errors, on standard error.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .try_init();
    let backends =
        std::env::var("GANTRY_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_string());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for name in backends.split(',') {
        let dir = tempfile::tempdir().expect("dir");
        let backend = match name {
            "sqlite" => Backend::Sqlite(dir.path().to_path_buf()),
            "postgres" => match std::env::var("GANTRY_TEST_POSTGRES_URL") {
                Ok(url) => Backend::Postgres {
                    url,
                    schema: format!("bench_{}", gantry_store::new_id().expect("id")),
                },
                Err(_) => {
                    println!("postgres: skipped (GANTRY_TEST_POSTGRES_URL is not set)");
                    continue;
                }
            },
            other => panic!("unknown backend {other}"),
        };
        rt.block_on(bench(name.to_owned(), backend, dir.path().to_path_buf()));
    }
}
