//! Sends one request through the router in-process and collects the answer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use gantry_server::metadata::router;

use super::backend::MapBackend;

/// How a request authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    None,
    /// `Basic base64(":token")`, what `http://:TOKEN@host` makes clients send.
    Basic(&'a str),
    /// `Basic base64("user:token")`.
    BasicUser(&'a str, &'a str),
    Bearer(&'a str),
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) bytes: Vec<u8>,
}

impl Answer {
    /// The body as JSON; `Value::Null` for an empty body. Panics (failing the test) on
    /// anything else.
    pub(crate) fn json(&self) -> Value {
        if self.bytes.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    /// Asserts Relay's error envelope with this status and code, and returns its body.
    pub(crate) fn assert_error(&self, status: StatusCode, code: &str) -> Value {
        let body = self.json();
        assert_eq!(self.status, status, "body: {body}");
        assert_eq!(body["error"]["domain"], "rma", "body: {body}");
        assert_eq!(body["error"]["code"], code, "body: {body}");
        assert!(body["error"]["title"].is_string(), "body: {body}");
        assert!(
            body["error"]["description"]["friendly"].is_string(),
            "body: {body}"
        );
        assert_eq!(
            body["error"]["message"], body["error"]["description"]["friendly"],
            "body: {body}"
        );
        body
    }
}

pub(crate) struct Client {
    pub(crate) backend: Arc<MapBackend>,
    app: Router,
}

impl Client {
    pub(crate) fn new() -> Self {
        let backend = Arc::new(MapBackend::sample());
        let app = router(backend.clone());
        Client { backend, app }
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        uri: &str,
        auth: Auth<'_>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        let authorization = match auth {
            Auth::None => None,
            Auth::Basic(token) => Some(format!("Basic {}", STANDARD.encode(format!(":{token}")))),
            Auth::BasicUser(user, token) => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{user}:{token}"))
            )),
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
        };
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req
            .body(body.into())
            .unwrap_or_else(|e| panic!("bad test request: {e}"));
        let response = self
            .app
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_else(|e| panic!("reading the body failed: {e}"));
        Answer {
            status,
            headers,
            bytes,
        }
    }

    pub(crate) async fn get(&self, uri: &str, token: &str) -> Answer {
        self.send(Method::GET, uri, Auth::Basic(token), None, Body::empty())
            .await
    }

    pub(crate) async fn put_json(&self, uri: &str, token: &str, body: &Value) -> Answer {
        self.send(
            Method::PUT,
            uri,
            Auth::Basic(token),
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    pub(crate) async fn post_json(&self, uri: &str, token: &str, body: &Value) -> Answer {
        self.send(
            Method::POST,
            uri,
            Auth::Basic(token),
            Some("application/json"),
            body.to_string(),
        )
        .await
    }
}
