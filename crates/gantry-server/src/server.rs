//! `gantry server`: the long-running control plane. Today it owns the data directory (and the
//! master key in it), serves health and readiness, and shuts down gracefully; the REST API,
//! triggers and the store join it as they are built.
//!
//! Concurrency: one tokio runtime; the listener serves every connection on its own task.
//! Shutdown stops accepting, lets requests in flight finish, then returns.

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

use crate::vault::{Vault, VaultError, MASTER_KEY_ENV};

/// What `gantry server` was asked for.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
}

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
}

#[derive(Clone)]
struct AppState {
    ready: Arc<AtomicBool>,
}

/// The server, bound and ready to serve.
pub struct Server {
    listener: TcpListener,
    app: Router,
    ready: Arc<AtomicBool>,
    local_addr: SocketAddr,
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
        let _vault = Vault::load(&config.data_dir, env_key.as_deref())?;
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
        let app = router(AppState {
            ready: ready.clone(),
        });
        Ok(Server {
            listener,
            app,
            ready,
            local_addr,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        self.ready.store(true, Ordering::SeqCst);
        tracing::info!(addr = %self.local_addr, "gantry server ready");
        let ready = self.ready.clone();
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                ready.store(false, Ordering::SeqCst);
                tracing::info!("shutting down");
            })
            .await
            .map_err(|e| ServerError::Serve(e.to_string()))
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

/// Ready: started and not shutting down.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.ready.load(Ordering::SeqCst) {
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
        let app = router(AppState {
            ready: ready.clone(),
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
