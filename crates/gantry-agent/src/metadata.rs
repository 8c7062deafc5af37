//! Relay's metadata API as an agent's steps reach it: `METADATA_API_URL` points at a listener
//! of the agent (loopback for process steps, and the Docker bridge's gateway on the same port
//! for containers), with a token the agent made for that step. Each request is passed on to
//! the server ([`crate::protocol::MetadataRequest`]), which answers it as the step, and the
//! answer goes back to the step unchanged. So the server needs no inbound access to the
//! agent's network and a step's server-side token never leaves the server.
//!
//! Owns the listener and the per-step tokens (made when a job starts, dropped when it ends).
//! Never logs a request's body or token: a step's spec and secrets travel through here.
//!
//! Concurrency: one axum server per listener, sharing the agent's state; each request is one
//! call to the server, on the agent's HTTP client.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tokio::net::TcpListener;

use crate::protocol::{MetadataAnswer, MetadataRequest};
use crate::runner::{CallError, Shared};

/// The largest request body passed on (the server's metadata API takes no more).
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The steps' tokens: token → the job it was made for.
#[derive(Default)]
pub(crate) struct StepTokens(Mutex<HashMap<String, String>>);

impl StepTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new token for job `job`'s step.
    pub(crate) fn issue(&self, job: &str) -> String {
        let mut bytes = [0u8; 32];
        // Without randomness the token is unguessable no more: refuse to make one.
        if getrandom::getrandom(&mut bytes).is_err() {
            return String::new();
        }
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.lock().insert(token.clone(), job.to_owned());
        token
    }

    pub(crate) fn revoke(&self, token: &str) {
        self.lock().remove(token);
    }

    fn job(&self, token: &str) -> Option<String> {
        self.lock().get(token).cloned()
    }
}

/// The listeners, bound: loopback, and with a bridge address, the same port there too.
pub(crate) struct Listeners {
    listeners: Vec<TcpListener>,
    pub(crate) port: u16,
}

/// Binds 127.0.0.1 on a free port, and with `bridge`, the same port on `bridge` (steps are
/// told one port), trying a few ports if another program holds one on the bridge.
pub(crate) async fn bind(bridge: Option<IpAddr>) -> std::io::Result<Listeners> {
    for _ in 0..20 {
        let loopback =
            TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?;
        let port = loopback.local_addr()?.port();
        let Some(ip) = bridge else {
            return Ok(Listeners {
                listeners: vec![loopback],
                port,
            });
        };
        if let Ok(on_bridge) = TcpListener::bind(SocketAddr::new(ip, port)).await {
            return Ok(Listeners {
                listeners: vec![loopback, on_bridge],
                port,
            });
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "cannot listen on the Docker bridge for the steps' metadata API",
    ))
}

/// Serves the steps' metadata API until the returned tasks are aborted.
pub(crate) fn serve(listeners: Listeners, shared: Arc<Shared>) -> Vec<tokio::task::JoinHandle<()>> {
    let app = axum::Router::new().fallback(forward).with_state(shared);
    listeners
        .listeners
        .into_iter()
        .map(|listener| {
            let app = app.clone();
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::warn!(error = %e, "the steps' metadata API stopped");
                }
            })
        })
        .collect()
}

/// Passes one request of a step on to the server and its answer back.
async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(token_from_header);
    let Some(job) = token.and_then(|t| shared.tokens.job(&t)) else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "The step's token is missing or unknown.",
        );
    };
    let method = request.method().as_str().to_owned();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(body) = axum::body::to_bytes(request.into_body(), BODY_LIMIT).await else {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "The request body is too large.",
        );
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "The request body must be UTF-8 text.",
        );
    };
    let request = MetadataRequest {
        agent: shared.me().clone(),
        method,
        path,
        content_type,
        body,
    };
    let answer = shared
        .call::<_, MetadataAnswer>(
            &format!("agent/jobs/{job}/metadata"),
            &request,
            Duration::from_secs(30),
        )
        .await;
    match answer {
        Ok(a) => {
            let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, Body::from(a.body)).into_response();
            if let Some(ct) = a.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response
        }
        Err(CallError::Retry(why)) => {
            tracing::warn!(%job, error = %why, "a step's metadata request could not reach the server");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The Gantry server cannot be reached now; try again.",
            )
        }
        Err(CallError::Status(s)) => {
            tracing::warn!(%job, status = %s, "the server refused a step's metadata request");
            refused(
                StatusCode::FORBIDDEN,
                "authorization_error",
                "This step no longer runs here.",
            )
        }
    }
}

/// An error in the envelope of Relay's metadata API (what its clients read).
fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "error": {
            "domain": "rma",
            "section": "api",
            "code": code,
            "title": message,
            "description": {"friendly": message, "technical": message},
            "arguments": {},
        }
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The token in an `Authorization` header, in the forms Relay accepts: HTTP Basic with an empty
/// user or the user `token` and the token as password (what `http://:TOKEN@host` in
/// `METADATA_API_URL` makes clients send), or `Bearer`. (The server's metadata API reads the
/// same forms.)
fn token_from_header(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(STANDARD.decode(rest).ok()?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        if !(user.is_empty() || user == "token") || password.is_empty() {
            return None;
        }
        Some(password.to_owned())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        (!rest.is_empty()).then(|| rest.to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_in_relays_forms() {
        let basic = |c: &str| format!("Basic {}", STANDARD.encode(c));
        assert_eq!(token_from_header(&basic(":t0k")), Some("t0k".into()));
        assert_eq!(token_from_header(&basic("token:t0k")), Some("t0k".into()));
        assert_eq!(token_from_header("bearer t0k"), Some("t0k".into()));
        assert_eq!(token_from_header(&basic("alice:t0k")), None);
        assert_eq!(token_from_header(&basic(":")), None);
        assert_eq!(token_from_header("Digest t0k"), None);
    }

    #[test]
    fn a_token_opens_its_job_until_revoked() {
        let tokens = StepTokens::default();
        let a = tokens.issue("job-a");
        let b = tokens.issue("job-b");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(tokens.job(&a).as_deref(), Some("job-a"));
        tokens.revoke(&a);
        assert_eq!(tokens.job(&a), None);
        assert_eq!(tokens.job(&b).as_deref(), Some("job-b"));
    }
}
