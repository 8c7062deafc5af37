//! What the server benchmarks share: the API's state on a store, and serving it over loopback
//! as `gantry server` does (with the peer's address, which the guard's limits read).

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
    let catalog = Arc::new(gantry_server::catalog::CatalogService::new(store.clone()));
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
