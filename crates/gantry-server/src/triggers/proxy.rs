//! The HTTP hop from a webhook trigger's URL to its container and back: the request's method,
//! the path below the hook's root, the query, the end-to-end headers and the body go to the
//! container; its status, end-to-end headers and body come back as they are, streamed.
//!
//! It must not follow redirects, decompress, or rewrite anything but the hop-by-hop headers
//! (RFC 9110 §7.6.1): the caller talks to the container as if directly. Its errors name no
//! address or reason a caller could learn the server's inside from (those are logged).
//!
//! Concurrency: one pooled HTTP/1 client shared by every request; each request's reply body is
//! streamed on the caller's connection and holds its container's [`Lease`] until it ends.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::CONNECTION;
use axum::http::{HeaderMap, Method, Request, Response};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::container::Lease;

/// How long a container has to start answering a request (its headers).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long connecting to a container may take (it is ready, so this is generous).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers that belong to one connection, never forwarded; `Expect` too, since the body has
/// been read already.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// A request to a webhook trigger, as it goes to the container.
#[derive(Debug)]
pub struct Inbound {
    pub method: Method,
    /// The path below the hook's root (`/` at least) and the query, if any.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The reason is for the log.
    #[error("the trigger's container did not answer")]
    Unreachable(String),
    #[error("the trigger's container did not answer within {} s", REPLY_TIMEOUT.as_secs())]
    Timeout,
}

pub(crate) struct Proxy {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Proxy {
    pub(crate) fn new() -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Proxy { client }
    }

    /// Sends `inbound` to the leased container and returns its reply.
    pub(crate) async fn forward(
        &self,
        lease: Lease,
        inbound: Inbound,
    ) -> Result<Response<Body>, ProxyError> {
        let uri = format!("http://{}{}", lease.address(), inbound.path_and_query);
        let mut request = Request::builder()
            .method(inbound.method)
            .uri(uri)
            .body(Full::new(inbound.body))
            .map_err(|e| ProxyError::Unreachable(format!("the request cannot be built: {e}")))?;
        *request.headers_mut() = end_to_end(&inbound.headers);
        let response = tokio::time::timeout(REPLY_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| ProxyError::Timeout)?
            .map_err(|e| ProxyError::Unreachable(describe(&e)))?;
        let (mut parts, body) = response.into_parts();
        parts.headers = end_to_end(&parts.headers);
        // The container stays leased (not idle) until the last byte of its reply is sent.
        let stream = body.into_data_stream().map(move |chunk| {
            let _held = &lease;
            chunk
        });
        Ok(Response::from_parts(parts, Body::from_stream(stream)))
    }
}

/// `headers` without the hop-by-hop ones and those the `Connection` header names.
pub(crate) fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name_text = name.as_str();
        if HOP_BY_HOP.contains(&name_text) || named.iter().any(|n| n == name_text) {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

/// A client error with its causes, for the log.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_stay_behind() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-hop", "1"),
            ("x-github-event", "push"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("content-type", "application/json"),
            ("host", "example.test"),
        ] {
            headers.append(
                axum::http::HeaderName::from_static(name),
                value.parse().unwrap(),
            );
        }
        let kept = end_to_end(&headers);
        let names: Vec<&str> = kept.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-github-event", "x-multi", "content-type", "host"]);
        let multi: Vec<_> = kept.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"]);
    }
}
