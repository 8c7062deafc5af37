//! Every route other than `/spec`: shapes, status codes and the error table.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use serde_json::{json, Value};

use super::backend::{BUILD_TOKEN, DEPLOY_TOKEN, TRIGGER_TOKEN};
use super::client::{Auth, Client};

// ----- environment and conditions -----

#[tokio::test]
async fn environment_is_an_envelope() {
    let c = Client::new();
    let body = c.get("/environment", DEPLOY_TOKEN).await.json();
    assert_eq!(body["value"]["GREETING"], "hello gantry");
    assert_eq!(body["complete"], false);
    assert_eq!(
        body["unresolvable"],
        json!({"outputs": [{"from": "build", "name": "image"}]})
    );
}

#[tokio::test]
async fn one_environment_variable() {
    let c = Client::new();
    let a = c.get("/environment/GREETING", DEPLOY_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"value": "hello gantry", "unresolvable": {}, "complete": true})
    );
    let body = c.get("/environment/IMAGE", DEPLOY_TOKEN).await.json();
    assert_eq!(body["complete"], false);
    c.get("/environment/NOPE", DEPLOY_TOKEN)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found_error");
}

#[tokio::test]
async fn conditions() {
    let c = Client::new();
    // `build`: when [parameters.go, true].
    assert_eq!(
        c.get("/conditions", BUILD_TOKEN).await.json(),
        json!({"resolved": true, "success": true, "message": "all checks passed"})
    );
    // `deploy`: when outputs.build.ok, not set yet.
    let body = c.get("/conditions", DEPLOY_TOKEN).await.json();
    assert_eq!(body["resolved"], false);
    assert_eq!(body["success"], false);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("outputs.build.ok"), "{message}");

    c.put_json("/outputs/ok", BUILD_TOKEN, &json!(false)).await;
    assert_eq!(
        c.get("/conditions", DEPLOY_TOKEN).await.json(),
        json!({"resolved": true, "success": false, "message": "one or more conditions failed"})
    );

    // A condition that is not a boolean is Relay's 422 `condition` `type_error`.
    c.put_json("/outputs/ok", BUILD_TOKEN, &json!("yes")).await;
    let body = c
        .get("/conditions", DEPLOY_TOKEN)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "type_error");
    assert_eq!(body["error"]["section"], "condition");

    // A trigger with no `when` is satisfied.
    assert_eq!(
        c.get("/conditions", TRIGGER_TOKEN).await.json()["success"],
        true
    );
}

// ----- outputs -----

#[tokio::test]
async fn outputs_round_trip() {
    let c = Client::new();
    let value = json!({"tags": ["a", "b"], "n": 1});
    let a = c.put_json("/outputs/result", BUILD_TOKEN, &value).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(a.bytes.is_empty());
    let a = c.get("/outputs/build/result", DEPLOY_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({
            "task_name": "build",
            "key": "result",
            "value": value,
            "metadata": {"sensitive": false},
        })
    );
    // Last write wins.
    c.put_json("/outputs/result", BUILD_TOKEN, &json!(2)).await;
    assert_eq!(
        c.get("/outputs/build/result", DEPLOY_TOKEN).await.json()["value"],
        2
    );
}

#[tokio::test]
async fn outputs_as_text() {
    let c = Client::new();
    for (ct, name) in [
        (Some("text/plain"), "plain"),
        (Some("text/plain; charset=utf-8"), "charset"),
        (Some("application/octet-stream"), "octets"),
        (None, "none"),
    ] {
        let a = c
            .send(
                Method::PUT,
                &format!("/outputs/{name}"),
                Auth::Basic(BUILD_TOKEN),
                ct,
                "{not json}",
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{ct:?}");
        let stored = c.backend.record().outputs[&("build".to_string(), name.to_string())]
            .value
            .clone();
        assert_eq!(stored, json!("{not json}"), "{ct:?}");
    }
    // JSON with parameters in its media type is JSON.
    let a = c
        .send(
            Method::PUT,
            "/outputs/n",
            Auth::Basic(BUILD_TOKEN),
            Some("Application/JSON; charset=utf-8"),
            "[1]",
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        c.get("/outputs/build/n", DEPLOY_TOKEN).await.json()["value"],
        json!([1])
    );
}

#[tokio::test]
async fn bad_output_bodies_are_422() {
    let c = Client::new();
    let send = |ct: &'static str, body: Vec<u8>| {
        let c = &c;
        async move {
            c.send(
                Method::PUT,
                "/outputs/x",
                Auth::Basic(BUILD_TOKEN),
                Some(ct),
                body,
            )
            .await
        }
    };
    send("application/json", b"{oops".to_vec())
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "malformed_request_error");
    send("application/xml", b"<a/>".to_vec())
        .await
        .assert_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_request_media_type_error",
        );
    send("text/plain", vec![0xff, 0xfe])
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "malformed_request_error");
    assert!(c.backend.record().outputs.is_empty());
}

#[tokio::test]
async fn sensitive_metadata() {
    let c = Client::new();
    // `ni output set --sensitive` marks the output before it sets the value.
    let a = c
        .put_json(
            "/outputs/password/metadata",
            BUILD_TOKEN,
            &json!({"sensitive": true}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    c.put_json("/outputs/password", BUILD_TOKEN, &json!("hunter2"))
        .await;
    let body = c.get("/outputs/build/password", DEPLOY_TOKEN).await.json();
    assert_eq!(body["metadata"], json!({"sensitive": true}));
    assert_eq!(body["value"], "hunter2");

    c.put_json(
        "/outputs/password/metadata",
        BUILD_TOKEN,
        &json!({"sensitive": false}),
    )
    .await;
    let body = c.get("/outputs/build/password", DEPLOY_TOKEN).await.json();
    assert_eq!(body["metadata"], json!({"sensitive": false}));

    c.put_json(
        "/outputs/password/metadata",
        BUILD_TOKEN,
        &json!({"sensitive": "yes"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "malformed_request_error");
    c.put_json("/outputs/password/metadata", BUILD_TOKEN, &json!([true]))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "malformed_request_error");
    // Only `metadata` can be written below an output.
    c.put_json("/outputs/password/other", BUILD_TOKEN, &json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found_error");
}

#[tokio::test]
async fn an_output_named_metadata_can_be_read() {
    let c = Client::new();
    c.put_json("/outputs/metadata", BUILD_TOKEN, &json!("m"))
        .await;
    let a = c.get("/outputs/build/metadata", DEPLOY_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["value"], "m");
}

#[tokio::test]
async fn a_missing_output_is_404() {
    let c = Client::new();
    let body = c
        .get("/outputs/build/nothing", DEPLOY_TOKEN)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found_error");
    assert_eq!(body["error"]["section"], "model");
}

// ----- secrets and state -----

#[tokio::test]
async fn secrets() {
    let c = Client::new();
    assert_eq!(
        c.get("/secrets/api-token", DEPLOY_TOKEN).await.json(),
        json!({"key": "api-token", "value": "s3cr3t"})
    );
    c.get("/secrets/none", DEPLOY_TOKEN)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found_error");
}

#[tokio::test]
async fn state() {
    let c = Client::new();
    assert_eq!(
        c.get("/state/approval", DEPLOY_TOKEN).await.json(),
        json!({"key": "approval", "value": {"approved": true}})
    );
    c.get("/state/none", DEPLOY_TOKEN)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found_error");
}

#[tokio::test]
async fn backend_errors_map_to_status_codes() {
    let c = Client::new();
    c.get("/secrets/other-run", DEPLOY_TOKEN)
        .await
        .assert_error(StatusCode::FORBIDDEN, "authorization_error");
    c.get("/secrets/twice", DEPLOY_TOKEN)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict_error");
    c.get("/secrets/bad%20name", DEPLOY_TOKEN)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    let a = c.get("/secrets/flaky", DEPLOY_TOKEN).await;
    a.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable_error");
    assert_eq!(
        a.headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    // The backend's reason names a file; it stays in the log.
    let text = String::from_utf8_lossy(&a.bytes).to_string();
    assert!(!text.contains("/var/lib"), "{text}");
}

// ----- events, decorators, workflow runs -----

#[tokio::test]
async fn triggers_emit_events() {
    let c = Client::new();
    let a = c
        .post_json(
            "/events",
            TRIGGER_TOKEN,
            &json!({"data": {"ref": "main"}, "key": "delivery-1"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let a = c
        .post_json("/events", TRIGGER_TOKEN, &json!({"data": {"n": 2}}))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let events = c.backend.record().events.clone();
    assert_eq!(
        events,
        [
            (
                "on-push".to_string(),
                json!({"ref": "main"}),
                Some("delivery-1".to_string())
            ),
            ("on-push".to_string(), json!({"n": 2}), None),
        ]
    );
}

#[tokio::test]
async fn steps_cannot_emit_events() {
    let c = Client::new();
    let body = c
        .post_json("/events", DEPLOY_TOKEN, &json!({"data": {}}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "authorization_error");
    assert_eq!(body["error"]["section"], "model");
    assert!(c.backend.record().events.is_empty());
}

#[tokio::test]
async fn bad_events_are_422() {
    let c = Client::new();
    for body in [
        json!({"data": [1]}),
        json!({"data": {}, "key": 7}),
        json!("x"),
    ] {
        c.post_json("/events", TRIGGER_TOKEN, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "malformed_request_error");
    }
}

#[tokio::test]
async fn decorators() {
    let c = Client::new();
    let link = json!({"type": "link", "description": "Dashboard", "uri": "https://x.test"});
    let a = c.post_json("/decorators/dash", DEPLOY_TOKEN, &link).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        c.backend.record().decorators,
        [("deploy".to_string(), "dash".to_string(), link)]
    );
    c.post_json("/decorators/dash", DEPLOY_TOKEN, &json!({"uri": "x"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "malformed_request_error");
}

#[tokio::test]
async fn workflow_runs() {
    let c = Client::new();
    let a = c
        .post_json(
            "/workflows/cleanup/run",
            DEPLOY_TOKEN,
            &json!({"parameters": {"env": {"value": "prod"}, "n": {"value": 2}}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.json(),
        json!({"workflow_run": {
            "name": "cleanup",
            "run_number": 1,
            "app_url": "http://gantry.test/workflows/cleanup/runs/1",
        }})
    );
    let runs = c.backend.record().runs.clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1, "cleanup");
    assert_eq!(
        Value::Object(runs[0].2.clone()),
        json!({"env": "prod", "n": 2})
    );

    c.post_json("/workflows/missing/run", DEPLOY_TOKEN, &json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found_error");
    c.post_json(
        "/workflows/x/run",
        DEPLOY_TOKEN,
        &json!({"parameters": {"a": 1}}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "malformed_request_error");
}

// ----- status, validate, logs -----

#[tokio::test]
async fn status_and_validate() {
    let c = Client::new();
    let status = json!({"when_condition": {
        "timestamp": "2024-01-01T00:00:00Z",
        "when_condition_status": "WhenConditionEvaluating",
    }});
    let a = c.put_json("/status", DEPLOY_TOKEN, &status).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        c.backend.record().statuses,
        [("deploy".to_string(), status)]
    );
    c.put_json("/status", DEPLOY_TOKEN, &json!(1))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "malformed_request_error");

    let a = c
        .send(
            Method::POST,
            "/validate",
            Auth::Basic(DEPLOY_TOKEN),
            None,
            Body::empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), Value::Null);
}

/// Protobuf string/bytes fields, as Relay's entrypointer marshals them.
fn protobuf(fields: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (number, bytes) in fields {
        out.push((number << 3) | 2);
        let mut len = bytes.len();
        while len >= 0x80 {
            out.push(u8::try_from(len & 0x7f).unwrap_or(0) | 0x80);
            len >>= 7;
        }
        out.push(u8::try_from(len).unwrap_or(0));
        out.extend_from_slice(bytes);
    }
    out
}

#[tokio::test]
async fn logs_in_protobuf() {
    let c = Client::new();
    let create = protobuf(&[(1, b"ctx"), (2, b"stdout")]);
    let a = c
        .send(
            Method::POST,
            "/logs",
            Auth::Basic(DEPLOY_TOKEN),
            Some("application/octet-stream"),
            create,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/octet-stream"[..])
    );
    // LogCreateResponse{log_id = 1: "stdout"}.
    assert_eq!(a.bytes, protobuf(&[(1, b"stdout")]));

    // LogMessageAppendRequest{log_id, media_type, payload, timestamp}.
    let timestamp = [0x08, 0x96, 0x01];
    let append = protobuf(&[
        (1, b"stdout"),
        (2, b"application/octet-stream"),
        (3, b"deploying\n"),
        (4, &timestamp),
    ]);
    let a = c
        .send(
            Method::POST,
            "/logs/stdout/messages",
            Auth::Basic(DEPLOY_TOKEN),
            Some("application/octet-stream"),
            append,
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.bytes, protobuf(&[(1, b"stdout"), (2, b"0")]));
    assert_eq!(
        c.backend.record().logs,
        [("deploy".to_string(), "deploying".to_string())]
    );

    let a = c
        .send(
            Method::POST,
            "/logs/stdout/messages",
            Auth::Basic(DEPLOY_TOKEN),
            Some("application/octet-stream"),
            vec![0x0a, 0x09, b'x'],
        )
        .await;
    a.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "malformed_request_error");
}

#[tokio::test]
async fn logs_in_json() {
    let c = Client::new();
    let a = c
        .post_json("/logs", DEPLOY_TOKEN, &json!({"name": "stderr"}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.json(), json!({"log_id": "stderr"}));
    let a = c
        .post_json(
            "/logs/stderr/messages",
            DEPLOY_TOKEN,
            &json!({"payload": "oops"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.json()["log_id"], "stderr");
    assert_eq!(
        c.backend.record().logs,
        [("deploy".to_string(), "oops".to_string())]
    );
    let a = c
        .send(
            Method::POST,
            "/logs",
            Auth::Basic(DEPLOY_TOKEN),
            Some("text/html"),
            "<p>",
        )
        .await;
    a.assert_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_request_media_type_error",
    );
}

// ----- limits and unknown routes -----

#[tokio::test]
async fn bodies_are_size_limited() {
    let c = Client::new();
    let big = vec![b'a'; gantry_server::metadata::BODY_LIMIT + 1];
    let a = c
        .send(
            Method::PUT,
            "/outputs/big",
            Auth::Basic(BUILD_TOKEN),
            Some("text/plain"),
            big,
        )
        .await;
    a.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large_error");
    assert!(c.backend.record().outputs.is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let c = Client::new();
    c.get("/nothing/here", DEPLOY_TOKEN)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found_error");
    c.send(
        Method::DELETE,
        "/spec",
        Auth::Basic(DEPLOY_TOKEN),
        None,
        Body::empty(),
    )
    .await
    .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed_error");
    // Without a token, nothing tells which routes exist.
    c.send(
        Method::GET,
        "/nothing/here",
        Auth::None,
        None,
        Body::empty(),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "authentication_error");
}
