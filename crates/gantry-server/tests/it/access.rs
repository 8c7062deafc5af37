//! Users, teams, service accounts and API keys through the API, and what they may then do.

use axum::http::StatusCode;
use serde_json::json;

use crate::api::{api, HELLO};

#[tokio::test]
async fn an_admin_makes_a_team_a_maintainer_and_their_key() {
    let api = api().await;
    let (status, body) = api
        .as_admin(
            "POST",
            "/api/v1/teams",
            r#"{"name": "sre", "title": "SRE"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    api.as_admin("POST", "/api/v1/teams", r#"{"name": "payments"}"#)
        .await;
    let (status, body) = api
        .as_admin("POST", "/api/v1/teams", r#"{"name": "sre"}"#)
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::CONFLICT, &json!("conflict"))
    );
    let (status, body) = api
        .as_admin("POST", "/api/v1/teams", r#"{"name": "Bad Name"}"#)
        .await;
    assert_eq!(
        (status, &body["path"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("name"))
    );

    let (status, body) = api
        .as_admin(
            "POST",
            "/api/v1/users",
            r#"{"email": "Ann@Example.com", "role": "operator"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (&body["email"], &body["role"]),
        (&json!("ann@example.com"), &json!("operator"))
    );
    let (status, body) = api
        .as_admin(
            "POST",
            "/api/v1/users",
            r#"{"email": "bob@example.com", "role": "owner"}"#,
        )
        .await;
    assert_eq!(
        (status, &body["path"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("role"))
    );
    let (status, _) = api
        .as_admin(
            "PUT",
            "/api/v1/teams/sre/members/ann@example.com",
            r#"{"maintainer": true}"#,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .as_admin("PUT", "/api/v1/teams/sre/members/nobody@example.com", "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for name in ["deploy", "billing"] {
        api.as_admin("PUT", &format!("/api/v1/workflows/{name}"), HELLO)
            .await;
    }
    let (status, body) = api
        .as_admin(
            "PUT",
            "/api/v1/workflows/deploy/owner",
            r#"{"team": "sre"}"#,
        )
        .await;
    assert_eq!((status, &body["team"]), (StatusCode::OK, &json!("sre")));
    api.as_admin(
        "PUT",
        "/api/v1/workflows/billing/owner",
        r#"{"team": "payments"}"#,
    )
    .await;

    let (status, body) = api
        .as_admin(
            "POST",
            "/api/v1/api-keys",
            r#"{"user": "ann@example.com", "expiresIn": "30d"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"].as_str().expect("the key, once").to_owned();
    let key_id = body["id"].as_str().unwrap().to_owned();
    assert!(body["expiresAt"].is_string());
    // Neither the key nor its hash is listed.
    let (_, listed) = api.as_admin("GET", "/api/v1/api-keys", "").await;
    let text = listed.to_string();
    let secret = key.rsplit('_').next().unwrap();
    assert!(!text.contains(secret) && !text.contains("hash"), "{text}");

    // Ann, an operator who maintains sre: changes sre's workflow, not payments', runs both,
    // administers nothing.
    let (status, body) = api.call("GET", "/api/v1/me", Some(&key), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["name"], &body["role"], &body["maintains"]),
        (
            &json!("ann@example.com"),
            &json!("operator"),
            &json!(["sre"])
        )
    );
    let changed = HELLO.replace("echo hi", "echo changed");
    let (status, body) = api
        .call("PUT", "/api/v1/workflows/deploy", Some(&key), &changed)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .call("PUT", "/api/v1/workflows/billing", Some(&key), &changed)
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("forbidden"))
    );
    let (status, _) = api
        .call(
            "PUT",
            "/api/v1/workflows/deploy/secrets/token",
            Some(&key),
            "value",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .call("POST", "/api/v1/teams", Some(&key), r#"{"name": "x"}"#)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.call("GET", "/api/v1/teams", Some(&key), "").await;
    assert_eq!(status, StatusCode::OK);

    // No longer a maintainer: the change applies at once on this server.
    api.as_admin("PUT", "/api/v1/teams/sre/members/ann@example.com", "")
        .await;
    let (status, _) = api
        .call("DELETE", "/api/v1/workflows/deploy", Some(&key), "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Revoked: refused from the next request on.
    let (status, _) = api
        .as_admin("DELETE", &format!("/api/v1/api-keys/{key_id}"), "")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call("GET", "/api/v1/me", Some(&key), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_service_account_acts_for_its_team_and_keys_expire() {
    let api = api().await;
    api.as_admin("POST", "/api/v1/teams", r#"{"name": "sre"}"#)
        .await;
    let (status, body) = api
        .as_admin(
            "POST",
            "/api/v1/service-accounts",
            r#"{"name": "ci", "role": "viewer", "team": "sre"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = api
        .as_admin(
            "POST",
            "/api/v1/service-accounts",
            r#"{"name": "x", "role": "viewer", "team": "nope"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for bad in [
        r#"{}"#,
        r#"{"user": "a@b.c", "serviceAccount": "ci"}"#,
        r#"{"serviceAccount": "ci", "expiresIn": "1y"}"#,
    ] {
        let (status, _) = api.as_admin("POST", "/api/v1/api-keys", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let (_, body) = api
        .as_admin("POST", "/api/v1/api-keys", r#"{"serviceAccount": "ci"}"#)
        .await;
    let key = body["key"].as_str().unwrap().to_owned();
    api.as_admin("PUT", "/api/v1/workflows/deploy", HELLO).await;
    api.as_admin(
        "PUT",
        "/api/v1/workflows/deploy/owner",
        r#"{"team": "sre"}"#,
    )
    .await;
    // A viewer acting for sre edits sre's workflow, and may not run it.
    let (status, body) = api
        .call("PUT", "/api/v1/workflows/deploy", Some(&key), HELLO)
        .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, _) = api
        .call("POST", "/api/v1/workflows/deploy/runs", Some(&key), "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A key whose expiry has passed is refused.
    let store = api.store();
    let mut keys = store.list_api_keys().await.unwrap();
    let mut expired = keys.pop().unwrap();
    let made = gantry_server::apikey::generate().unwrap();
    expired.id = "expired".into();
    expired.prefix = made.prefix.clone();
    expired.hash = made.hash.into_bytes();
    expired.expires_at = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
    store
        .create_api_key(&expired, &crate::audit())
        .await
        .unwrap();
    let (status, _) = api
        .call("GET", "/api/v1/me", Some(&made.presented), "")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
