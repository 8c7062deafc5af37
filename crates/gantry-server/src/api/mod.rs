//! The REST API under `/api/v1`: JSON in and out, API keys, errors as `{code, message, path}`
//! from one table ([`error`]), bodies limited to [`BODY_LIMIT`] bytes (413 beyond).
//!
//! Handlers translate between HTTP and the store and the workflow crate; they hold no business
//! rule of their own beyond validation at the edge. Concurrency: handlers share an `ApiState`
//! (an `Arc<dyn Store>` and configuration) and run on the server's tokio runtime.

pub mod auth;
pub mod diagnostics;
pub mod error;
mod runs;
pub mod secrets;
mod triggers;
mod workflows;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post, put};
use axum::Router;
use gantry_store::Store;

/// A time as every API response writes it: RFC 3339, UTC, milliseconds; `null` when absent.
pub(crate) fn time_json(t: Option<chrono::DateTime<chrono::Utc>>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

/// The largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// What every API handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub runs: Arc<crate::runs::RunService>,
    pub vault: Arc<crate::vault::Vault>,
    pub triggers: Arc<crate::triggers::TriggerService>,
    /// The server's address as callers reach it (`http://host:port`, no trailing slash): the
    /// base of webhook URLs and the push endpoint.
    pub public_url: Arc<str>,
}

/// The `/api/v1` routes, every one behind an API key.
pub fn router(state: ApiState) -> Router {
    let routes = Router::new()
        .route("/workflows", get(workflows::list))
        .route(
            "/workflows/{name}",
            get(workflows::get)
                .put(workflows::put)
                .delete(workflows::delete),
        )
        .route("/workflows/{name}/versions", get(workflows::versions))
        .route(
            "/workflows/{name}/versions/{version}",
            get(workflows::get_version),
        )
        .route("/workflows/{name}/runs", post(runs::start))
        .route("/workflows/{name}/triggers", get(triggers::list))
        .route(
            "/workflows/{name}/triggers/{trigger}/tokens",
            get(triggers::list_tokens).post(triggers::create_token),
        )
        .route(
            "/workflows/{name}/triggers/{trigger}/tokens/{id}",
            delete(triggers::revoke_token),
        )
        .route("/workflows/{name}/secrets", get(secrets::list_secrets))
        .route(
            "/workflows/{name}/secrets/{secret}",
            put(secrets::put_secret).delete(secrets::delete_secret),
        )
        .route("/connections", get(secrets::list_connections))
        .route(
            "/connections/{type}/{name}",
            put(secrets::put_connection).delete(secrets::delete_connection),
        )
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::get))
        .route("/runs/{id}/logs", get(runs::logs))
        .route("/runs/{id}/logs/stream", get(runs::stream_logs))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/steps/{step}/approve", post(runs::approve))
        .route("/runs/{id}/steps/{step}/deny", post(runs::deny))
        .fallback(error::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state.clone());
    // The doors events come through: their own credentials, no API key.
    let doors = Router::new()
        .route("/hooks/{id}", post(triggers::hook))
        .route("/api/events", post(triggers::push_event))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state);
    Router::new().nest("/api/v1", routes).merge(doors)
}
