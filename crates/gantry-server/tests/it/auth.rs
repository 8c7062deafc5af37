//! Tokens: Basic with an empty or `token` username, Bearer; everything else is a 401.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};

use super::backend::DEPLOY_TOKEN;
use super::client::{Auth, Client};

async fn spec_with(auth: Auth<'_>) -> super::client::Answer {
    Client::new()
        .send(Method::GET, "/spec?q=count", auth, None, Body::empty())
        .await
}

#[tokio::test]
async fn basic_with_empty_username() {
    let a = spec_with(Auth::Basic(DEPLOY_TOKEN)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["value"], 3);
}

#[tokio::test]
async fn basic_with_token_username() {
    let a = spec_with(Auth::BasicUser("token", DEPLOY_TOKEN)).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn bearer() {
    let a = spec_with(Auth::Bearer(DEPLOY_TOKEN)).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn missing_is_401_with_relays_error_shape() {
    let a = spec_with(Auth::None).await;
    let body = a.assert_error(StatusCode::UNAUTHORIZED, "authentication_error");
    assert_eq!(body["error"]["section"], "api");
    assert!(a.headers.contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn unknown_token_is_401() {
    spec_with(Auth::Bearer("not-a-token"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "authentication_error");
    spec_with(Auth::Basic("not-a-token"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "authentication_error");
}

#[tokio::test]
async fn other_username_is_401() {
    spec_with(Auth::BasicUser("alice", DEPLOY_TOKEN))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "authentication_error");
}

#[tokio::test]
async fn every_route_authenticates_before_reading_the_body() {
    let c = Client::new();
    for (method, uri) in [
        (Method::GET, "/environment"),
        (Method::GET, "/conditions"),
        (Method::PUT, "/outputs/x"),
        (Method::PUT, "/outputs/x/metadata"),
        (Method::GET, "/outputs/build/x"),
        (Method::GET, "/secrets/api-token"),
        (Method::GET, "/state/approval"),
        (Method::POST, "/events"),
        (Method::POST, "/decorators/x"),
        (Method::POST, "/workflows/x/run"),
        (Method::PUT, "/status"),
        (Method::POST, "/validate"),
        (Method::POST, "/logs"),
        (Method::POST, "/logs/x/messages"),
    ] {
        let a = c
            .send(
                method.clone(),
                uri,
                Auth::None,
                Some("application/json"),
                "not json",
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
}
