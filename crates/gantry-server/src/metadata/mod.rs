//! The metadata API: the HTTP service step and trigger containers reach through
//! `METADATA_API_URL`, with Relay's paths, envelopes and status codes (relay-core
//! `pkg/metadataapi/server/api`), so `relay-sdk`, `ni` and existing step images work unchanged.
//!
//! Every route authenticates its caller by token ([`auth`]), then asks the
//! [`MetadataBackend`]; this module only translates between HTTP and that trait. It owns the
//! query languages of `GET /spec` ([`query`], [`jsonpath`]), the error table ([`error`]) and
//! the log wire format ([`logs`]); it must not decide anything about a run.
//! Request bodies are limited to [`BODY_LIMIT`] bytes. No `unwrap` touches request data.
//!
//! Concurrency: the router is `Clone` and shares one `Arc<dyn MetadataBackend>`; handlers call
//! the backend's synchronous methods inline on the runtime's worker threads.

mod auth;
mod error;
mod handlers;
mod jsonpath;
pub mod listen;
mod logs;
mod query;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

use gantry_engine::metadata::MetadataBackend;

/// The largest request body accepted, in bytes (outputs, events, log messages).
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn MetadataBackend>,
    /// Numbers log messages, so each `POST /logs/{id}/messages` answer has its own id.
    pub(crate) log_messages: Arc<AtomicU64>,
}

/// The metadata API's routes, served at the root of `METADATA_API_URL`.
///
/// Relay's clients resolve paths against that URL's root (`relay-sdk` with `urljoin`, `ni`
/// with `ResolveReference`), so nest this router only under a host or port of its own.
pub fn router(backend: Arc<dyn MetadataBackend>) -> Router {
    let shared = Shared {
        backend,
        log_messages: Arc::new(AtomicU64::new(0)),
    };
    Router::new()
        .route("/spec", get(handlers::get_spec))
        .route("/environment", get(handlers::get_environment))
        .route(
            "/environment/{name}",
            get(handlers::get_environment_variable),
        )
        .route("/conditions", get(handlers::get_conditions))
        .route("/outputs/{name}", put(handlers::put_output))
        // One route for both: `/outputs/{step}/metadata` is a step's output named `metadata`
        // when read, and the output's metadata when written (Relay's router did the same).
        .route(
            "/outputs/{first}/{second}",
            get(handlers::get_output).put(handlers::put_output_metadata),
        )
        .route("/secrets/{name}", get(handlers::get_secret))
        .route("/state/{name}", get(handlers::get_state))
        .route("/events", post(handlers::post_event))
        .route("/decorators/{name}", post(handlers::post_decorator))
        .route("/workflows/{name}/run", post(handlers::post_workflow_run))
        .route("/status", put(handlers::put_status))
        .route("/validate", post(handlers::post_validate))
        .route("/logs", post(handlers::post_log))
        .route("/logs/{id}/messages", post(handlers::post_log_message))
        .fallback(handlers::no_route)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}
