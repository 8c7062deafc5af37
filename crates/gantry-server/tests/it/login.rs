//! Signing in with a password: sessions in cookies, CSRF tokens, the abuse limits, and the
//! audit of every failed login; through the router with the same store the API uses.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::api::{api, Api};

const PASSWORD: &str = "correct horse battery staple";

async fn user(api: &Api, email: &str, role: &str) {
    let (status, body) = api
        .as_admin(
            "POST",
            "/api/v1/users",
            &json!({"email": email, "role": role, "password": PASSWORD}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["ssoOnly"], false);
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn send(api: &Api, request: Request<Body>) -> Answer {
    let response = api.send(request).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn login_request(email: &str, password: &str) -> Request<Body> {
    Request::post("/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"email": email, "password": password}).to_string(),
        ))
        .unwrap()
}

/// The `name=value` of the session cookie a response sets, and the whole header.
fn set_cookie(answer: &Answer) -> (String, String) {
    let header = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gantry_session="))
        .expect("a session cookie");
    let pair = header.split(';').next().unwrap().to_owned();
    (pair, header)
}

async fn audit(api: &Api, action: &str) -> Vec<Value> {
    let (_, page) = api
        .as_admin("GET", &format!("/api/v1/audit?action={action}"), "")
        .await;
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_password_login_gives_a_session_that_needs_its_csrf_token_to_change_things() {
    let api = api().await;
    user(&api, "root@example.com", "admin").await;

    let ok = send(&api, login_request("Root@Example.com", PASSWORD)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["user"]["email"], "root@example.com");
    let csrf = ok.body["csrfToken"].as_str().unwrap().to_owned();
    let (cookie, header) = set_cookie(&ok);
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(header.contains(attribute), "{header}");
    }
    // The server's public URL is http here: no `Secure`, or no browser would send it back.
    assert!(!header.contains("Secure"), "{header}");

    let with_cookie = |method: &str, path: &str, csrf: Option<&str>, body: &str| {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", &cookie)
            .header("content-type", "application/json");
        if let Some(t) = csrf {
            b = b.header("x-csrf-token", t);
        }
        b.body(Body::from(body.to_owned())).unwrap()
    };
    let me = send(&api, with_cookie("GET", "/api/v1/me", None, "")).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["name"], "root@example.com");
    let session = send(&api, with_cookie("GET", "/auth/session", None, "")).await;
    assert_eq!(session.body["csrfToken"], csrf);
    assert_eq!(session.body["via"], "password");

    // A change without the token, or with another, is refused; with it, it is made as the user.
    for token in [None, Some("0".repeat(64).as_str())] {
        let refused = send(
            &api,
            with_cookie("POST", "/api/v1/teams", token, r#"{"name": "sre"}"#),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert_eq!(refused.body["code"], "csrf_failed");
    }
    let made = send(
        &api,
        with_cookie("POST", "/api/v1/teams", Some(&csrf), r#"{"name": "sre"}"#),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let teams = audit(&api, "team.create").await;
    assert_eq!(teams[0]["actor"]["name"], "root@example.com");
    assert_eq!(teams[0]["actor"]["kind"], "user");
    let sessions = audit(&api, "session.create").await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["after"]["via"], "password");

    // Logging out needs the token too; then the cookie opens nothing.
    let refused = send(&api, with_cookie("POST", "/auth/logout", None, "")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = send(&api, with_cookie("POST", "/auth/logout", Some(&csrf), "")).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let (cleared, _) = set_cookie(&out);
    assert_eq!(cleared, "gantry_session=");
    let me = send(&api, with_cookie("GET", "/api/v1/me", None, "")).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(audit(&api, "session.revoke").await.len(), 1);
}

#[tokio::test]
async fn failed_logins_are_refused_alike_audited_and_limited_per_account() {
    let api = api().await;
    user(&api, "bob@example.com", "operator").await;
    let (status, _) = api
        .as_admin(
            "POST",
            "/api/v1/users",
            r#"{"email": "sso@example.com", "role": "viewer"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A wrong password, an unknown email and a user without a password get the same answer.
    let typed = "hunter2-typed-by-mistake";
    for (email, password) in [
        ("bob@example.com", typed),
        ("nobody@example.com", typed),
        ("sso@example.com", typed),
    ] {
        let refused = send(&api, login_request(email, password)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{email}");
        assert_eq!(
            refused.body,
            json!({"code": "invalid_credentials", "message": "the email or the password is wrong", "path": null})
        );
        assert!(refused.headers.get("set-cookie").is_none());
    }
    let failures = audit(&api, "login.failed").await;
    let seen: Vec<(&str, &str)> = failures
        .iter()
        .map(|e| {
            (
                e["resource"].as_str().unwrap(),
                e["after"]["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("user/sso@example.com", "no password (single sign-on only)"),
            ("user/unknown", "unknown user"),
            ("user/bob@example.com", "wrong password"),
        ]
    );
    let text = serde_json::to_string(&failures).unwrap();
    assert!(!text.contains(typed), "no typed password in the audit log");
    assert!(
        !text.contains("nobody@example.com"),
        "no unknown account names"
    );

    // Five failures for an account, then even the right password waits.
    for _ in 0..4 {
        let refused = send(&api, login_request("bob@example.com", typed)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
    let limited = send(&api, login_request("bob@example.com", PASSWORD)).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(limited.body["code"], "rate_limited");
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert_eq!(
        audit(&api, "login.failed").await[0]["after"]["reason"],
        "too many failures"
    );
    // Another account is not held back by Bob's.
    user(&api, "ann@example.com", "viewer").await;
    let ok = send(&api, login_request("ann@example.com", PASSWORD)).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn logins_are_limited_per_source_and_other_sites_are_refused() {
    let api = api().await;
    user(&api, "ann@example.com", "viewer").await;
    let from = |ip: &str, password: &str| {
        let mut request = login_request("ann@example.com", password);
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
        request
    };
    let evil = Request::post("/auth/login")
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"email": "ann@example.com", "password": PASSWORD}).to_string(),
        ))
        .unwrap();
    let refused = send(&api, evil).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["code"], "csrf_failed");
    // 30 attempts a minute from one address (right or wrong), then 429; another address is
    // still served.
    for i in 0..30 {
        let password = if i % 2 == 0 {
            PASSWORD
        } else {
            "not the password!"
        };
        let answer = send(&api, from("192.0.2.1", password)).await;
        assert_ne!(answer.status, StatusCode::TOO_MANY_REQUESTS, "attempt {i}");
    }
    let limited = send(&api, from("192.0.2.1", PASSWORD)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let other = send(&api, from("192.0.2.2", PASSWORD)).await;
    assert_eq!(other.status, StatusCode::OK);
}

#[tokio::test]
async fn a_source_that_keeps_presenting_bad_keys_is_turned_away() {
    let api = api().await;
    let call = |ip: &str, key: &str| {
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        let mut request = Request::get("/api/v1/workflows")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
        request
    };
    let bad = "gantry_00000000_0000000000000000000000000000000000000000000000000000000000000000";
    for _ in 0..60 {
        assert_eq!(
            send(&api, call("198.51.100.7", bad)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = send(&api, call("198.51.100.7", &api.key)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.get("retry-after").is_some());
    let other = send(&api, call("198.51.100.8", &api.key)).await;
    assert_eq!(other.status, StatusCode::OK);
}

#[tokio::test]
async fn a_short_password_is_refused_and_no_answer_shows_a_hash() {
    let api = api().await;
    let (status, body) = api
        .as_admin(
            "POST",
            "/api/v1/users",
            r#"{"email": "c@example.com", "role": "viewer", "password": "short"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["path"], "password");
    assert!(!body.to_string().contains("short\""), "{body}");
    user(&api, "d@example.com", "viewer").await;
    let (_, users) = api.as_admin("GET", "/api/v1/users", "").await;
    let text = users.to_string();
    assert!(
        !text.contains("argon2") && !text.contains(PASSWORD),
        "{text}"
    );
}
