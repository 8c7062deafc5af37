//! Self-service actions through the API: definitions, runs validated against the form, the
//! action's own run and approve rules, approvals and denials, workflow invocations, and
//! signed outgoing webhooks whose receiver (a real HTTP server in the test) verifies the
//! signature and reports back, or never answers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use gantry_server::server::issue_api_key;
use gantry_store::{Team, TeamMember, User};
use serde_json::{json, Value};

use crate::api::{api, Api};

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

async fn call(api: &Api, key: &str, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    api.call_with(method, path, Some(key), &text, JSON).await
}

/// A user with `role` in `teams`, and their API key.
async fn user(api: &Api, id: &str, role: &str, teams: &[&str]) -> String {
    let store = api.store();
    store
        .create_user(
            &User {
                id: id.into(),
                email: format!("{id}@example.com"),
                name: id.into(),
                role: role.into(),
                password_hash: None,
                created_at: Utc::now(),
                disabled_at: None,
            },
            &crate::audit(),
        )
        .await
        .unwrap();
    for team in teams {
        let _ = store
            .create_team(
                &Team {
                    name: (*team).into(),
                    title: (*team).into(),
                    created_at: Utc::now(),
                },
                &crate::audit(),
            )
            .await;
        store
            .set_team_member(
                &TeamMember {
                    team: (*team).into(),
                    user_id: id.into(),
                    maintainer: false,
                },
                &crate::audit(),
            )
            .await
            .unwrap();
    }
    issue_api_key(store.as_ref(), &format!("user:{id}"), &crate::audit())
        .await
        .unwrap()
}

async fn model(api: &Api) {
    let key = api.key.clone();
    let (s, b) = call(
        api,
        &key,
        "POST",
        "/api/v1/blueprints",
        json!({"identifier": "service", "title": "Service",
               "schema": {"properties": {"tier": {"type": "integer"}}}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    for (id, tier) in [("checkout", 1), ("search", 3)] {
        let (s, b) = call(
            api,
            &key,
            "POST",
            "/api/v1/blueprints/service/entities",
            json!({"identifier": id, "properties": {"tier": tier}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
}

/// Polls a run until it is in `status` (or has ended in another), and returns it.
async fn until(api: &Api, id: &str, status: &str) -> Value {
    let key = api.key.clone();
    let mut last = Value::Null;
    for _ in 0..1500 {
        let (s, run) = call(
            api,
            &key,
            "GET",
            &format!("/api/v1/action-runs/{id}"),
            Value::Null,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{run}");
        if run["status"] == status {
            return run;
        }
        last = run;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("run {id} never reached {status}: {last}");
}

const RESTART: &str = "parameters:\n  service: {}\n  reason: {}\nsteps:\n- name: restart\n  image: alpine\n  input:\n  - echo restarting\n";

fn restart_action() -> Value {
    json!({
        "title": "Restart a service",
        "blueprint": "service",
        "operation": "day-2",
        "condition": {"combinator": "and", "rules": [{"property": "tier", "operator": "<=", "value": 2}]},
        "inputs": {
            "properties": {"reason": {"type": "string", "minLength": 3}},
            "required": ["reason"]
        },
        "permissions": {
            "run": {"roles": ["operator"]},
            "approve": {"teams": ["sre"], "mode": "any"}
        },
        "approval": {"required": true},
        "invocation": {
            "workflow": "restart",
            "parameters": {"service": "{{ entity.identifier }}", "reason": "{{ inputs.reason }}"}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_validated_permitted_approved_and_carried_out_by_its_workflow() {
    let api = api().await;
    model(&api).await;
    let admin = api.key.clone();
    let operator = user(&api, "olga", "operator", &["payments"]).await;
    let viewer = user(&api, "victor", "viewer", &[]).await;
    let sre = user(&api, "sam", "viewer", &["sre"]).await;
    let outsider = user(&api, "oscar", "approver", &["payments"]).await;
    let (s, b) = api
        .as_admin("PUT", "/api/v1/workflows/restart", RESTART)
        .await;
    assert!(s.is_success(), "{b}");

    // A definition with a mistake names its field.
    let mut bad = restart_action();
    bad["invocation"]["parameters"]["reason"] = json!("{{ inputs.reasn }}");
    let (s, b) = call(&api, &admin, "PUT", "/api/v1/actions/restart", bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["path"], "invocation.parameters.reason", "{b}");
    let (s, b) = call(
        &api,
        &admin,
        "PUT",
        "/api/v1/actions/restart",
        restart_action(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], 1);
    let (_, list) = call(
        &api,
        &viewer,
        "GET",
        "/api/v1/actions?blueprint=service",
        Value::Null,
    )
    .await;
    assert_eq!(list["items"][0]["identifier"], "restart", "{list}");

    let runs = "/api/v1/actions/restart/runs";
    // The form: a reason too short is a 422 with the input's path.
    let (s, b) = call(
        &api,
        &operator,
        "POST",
        runs,
        json!({"entity": "service/checkout", "inputs": {"reason": "no"}}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["path"], "inputs.reason", "{b}");
    // An input the form does not have, and the entity left out.
    let (s, b) = call(
        &api,
        &operator,
        "POST",
        runs,
        json!({"entity": "service/checkout", "inputs": {"reason": "disk full", "force": true}}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["path"], "inputs.force", "{b}");
    let (s, b) = call(
        &api,
        &operator,
        "POST",
        runs,
        json!({"inputs": {"reason": "disk full"}}),
    )
    .await;
    assert_eq!(
        (s, b["path"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("entity")),
        "{b}"
    );
    // An entity outside the action's condition.
    let (s, b) = call(
        &api,
        &operator,
        "POST",
        runs,
        json!({"entity": "service/search", "inputs": {"reason": "disk full"}}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["message"].as_str().unwrap().contains("condition"), "{b}");
    // The action's run rule leaves viewers out.
    let (s, b) = call(
        &api,
        &viewer,
        "POST",
        runs,
        json!({"entity": "service/checkout", "inputs": {"reason": "disk full"}}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["message"].as_str().unwrap().contains("restart"), "{b}");

    let (s, run) = call(
        &api,
        &operator,
        "POST",
        runs,
        json!({"entity": "service/checkout", "inputs": {"reason": "disk full"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    assert_eq!(run["status"], "waiting_for_approval", "{run}");
    assert_eq!(
        run["waitingFor"][0], "1 more approval from a member of team sre",
        "{run}"
    );
    let id = run["id"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/action-runs/{id}/approve");
    // Nobody approves their own run; an approver outside team sre may not either.
    let (s, _) = call(&api, &operator, "POST", &approve, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = call(&api, &outsider, "POST", &approve, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(
        until(&api, &id, "waiting_for_approval").await["decisions"],
        json!([])
    );
    // A member of sre approves: the workflow runs with the entity and the inputs bound.
    let (s, b) = call(&api, &sre, "POST", &approve, json!({"reason": "go"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let done = until(&api, &id, "succeeded").await;
    assert_eq!(done["decisions"][0]["by"], "sam@example.com", "{done}");
    let workflow_run = done["workflowRun"]
        .as_str()
        .expect("a workflow run")
        .to_owned();
    let (_, wr) = api
        .as_admin("GET", &format!("/api/v1/runs/{workflow_run}"), "")
        .await;
    assert_eq!(
        wr["parameters"],
        json!({"service": "checkout", "reason": "disk full"}),
        "{wr}"
    );
    assert_eq!(wr["status"], "succeeded", "{wr}");
    // Approving an ended run is a conflict.
    let (s, _) = call(&api, &sre, "POST", &approve, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // A denial needs a reason, cancels the run, and is audited with it.
    let (_, second) = call(
        &api,
        &operator,
        "POST",
        runs,
        json!({"entity": "service/checkout", "inputs": {"reason": "again"}}),
    )
    .await;
    let second = second["id"].as_str().unwrap().to_owned();
    let deny = format!("/api/v1/action-runs/{second}/deny");
    let (s, b) = call(&api, &sre, "POST", &deny, json!({})).await;
    assert_eq!(
        (s, b["path"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("reason")),
        "{b}"
    );
    let (s, b) = call(
        &api,
        &sre,
        "POST",
        &deny,
        json!({"reason": "not during the freeze"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "cancelled");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("not during the freeze"),
        "{b}"
    );
    let (_, audit) = api
        .as_admin(
            "GET",
            &format!("/api/v1/audit?resource=action/restart/run/{second}"),
            "",
        )
        .await;
    let denial = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "action_run.deny")
        .unwrap_or_else(|| panic!("no denial in {audit}"));
    assert_eq!(denial["after"]["reason"], "not during the freeze");
    assert_eq!(denial["actor"]["name"], "sam@example.com", "{denial}");

    // Rerun: the same entity and inputs, asked for anew.
    let (s, again) = call(
        &api,
        &operator,
        "POST",
        &format!("/api/v1/action-runs/{id}/rerun"),
        Value::Null,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(
        (&again["rerunOf"], &again["inputs"]),
        (&json!(id), &json!({"reason": "disk full"}))
    );

    // Lists filter by action, entity, user and status.
    for (query, n) in [
        ("action=restart", 3),
        ("entity=service/checkout", 3),
        ("entity=service/search", 0),
        ("user=olga@example.com", 3),
        ("user=sam@example.com", 0),
        ("status=succeeded", 1),
        ("status=cancelled", 1),
        ("status=waiting_for_approval", 1),
    ] {
        let (s, page) = call(
            &api,
            &viewer,
            "GET",
            &format!("/api/v1/action-runs?{query}"),
            Value::Null,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            n,
            "{query}: {page}"
        );
    }
    let (s, b) = call(
        &api,
        &viewer,
        "GET",
        "/api/v1/action-runs?status=done",
        Value::Null,
    )
    .await;
    assert_eq!(
        (s, b["path"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("status"))
    );
}

/// What the test's webhook receiver saw, and how it answers.
#[derive(Default)]
struct Receiver {
    bodies: Vec<(HeaderMap, Bytes)>,
}

/// A webhook receiver on loopback; `hang` never answers.
async fn receiver(hang: bool) -> (String, Arc<Mutex<Receiver>>) {
    let seen = Arc::new(Mutex::new(Receiver::default()));
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                state.lock().unwrap().bodies.push((headers, body));
                if hang {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn webhook_action(url: &str, extra: &Value) -> Value {
    let mut webhook = json!({"url": url, "secret": {"secret": "signing"}});
    if let (Some(w), Some(e)) = (webhook.as_object_mut(), extra.as_object()) {
        w.extend(e.clone());
    }
    json!({
        "title": "Create a repository",
        "operation": "create",
        "inputs": {
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z-]+$"},
                "token": {"type": "string", "secret": true}
            },
            "required": ["name"]
        },
        "invocation": {"webhook": webhook, "parameters": {"repo": "{{ inputs.name }}"}}
    })
}

async fn webhook_run(api: &Api, action: &str, url: &str, extra: &Value) -> String {
    let admin = api.key.clone();
    let (s, b) = call(
        api,
        &admin,
        "PUT",
        &format!("/api/v1/actions/{action}"),
        webhook_action(url, extra),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = api
        .as_admin(
            "PUT",
            &format!("/api/v1/actions/{action}/secrets/signing"),
            "whsec-test-key",
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, run) = call(
        api,
        &admin,
        "POST",
        &format!("/api/v1/actions/{action}/runs"),
        json!({"inputs": {"name": "billing-api", "token": "ghp-very-secret"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    assert_eq!(run["inputs"]["token"], "***", "{run}");
    run["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_verified_by_its_receiver_which_reports_back() {
    let api = api().await;
    model(&api).await;
    let (url, seen) = receiver(false).await;
    let id = webhook_run(&api, "create-repo", &url, &json!({})).await;
    let run = until(&api, &id, "running").await;
    assert!(run["deadlineAt"].is_string(), "{run}");
    let (headers, body) = seen.lock().unwrap().bodies[0].clone();
    let signature = headers["x-gantry-signature"].to_str().unwrap();
    gantry_catalog::action::verify(
        b"whsec-test-key",
        signature,
        &body,
        Utc::now().timestamp(),
        300,
    )
    .expect("the receiver verifies the signature");
    assert!(gantry_catalog::action::verify(
        b"another-key",
        signature,
        &body,
        Utc::now().timestamp(),
        300
    )
    .is_err());
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["parameters"], json!({"repo": "billing-api"}));
    assert_eq!(
        body["inputs"]["token"], "ghp-very-secret",
        "the receiver gets the secret input"
    );
    let report_url = body["report"]["url"].as_str().unwrap();
    assert_eq!(
        report_url,
        format!("http://gantry.test/api/action-runs/{id}/report")
    );
    let token = body["report"]["token"].as_str().unwrap().to_owned();

    // Secret inputs are sealed: nothing stored or listed holds them.
    let row = api.store().get_action_run(&id).await.unwrap();
    assert!(
        !row.doc.to_string().contains("ghp-very-secret"),
        "{}",
        row.doc
    );
    let (_, audit) = api.as_admin("GET", "/api/v1/audit?limit=1000", "").await;
    assert!(!audit.to_string().contains("ghp-very-secret"));
    assert!(!audit.to_string().contains("whsec-test-key"));

    let path = format!("/api/action-runs/{id}/report");
    let (s, _) = call(
        &api,
        "gar_wrong",
        "POST",
        &path,
        json!({"status": "succeeded"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = call(&api, &token, "POST", &path, json!({"status": "done"})).await;
    assert_eq!(
        (s, b["path"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("status")),
        "{b}"
    );
    let (s, b) = call(&api, &token, "POST", &path, json!({
        "logs": ["creating billing-api", "pushing the template"],
        "links": [{"title": "Repository", "url": "https://git.example.com/billing-api"}],
        "entities": [{"blueprint": "service", "identifier": "billing-api", "properties": {"tier": 2}}]
    })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "running");
    let (s, b) = call(
        &api,
        &token,
        "POST",
        &path,
        json!({"status": "succeeded", "summary": "billing-api is ready", "logs": ["done"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let done = until(&api, &id, "succeeded").await;
    assert_eq!(
        done["links"][0]["url"],
        "https://git.example.com/billing-api"
    );
    assert_eq!(done["summary"], "billing-api is ready");
    assert_eq!(
        done["entities"],
        json!([{"blueprint": "service", "identifier": "billing-api", "change": "created"}])
    );
    assert!(done["deadlineAt"].is_null(), "{done}");
    let (_, entity) = api
        .as_admin("GET", "/api/v1/blueprints/service/entities/billing-api", "")
        .await;
    assert_eq!(entity["properties"]["tier"], 2, "{entity}");
    let (_, logs) = api
        .as_admin("GET", &format!("/api/v1/action-runs/{id}/logs"), "")
        .await;
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        ["creating billing-api", "pushing the template", "done"]
    );
    // An ended run takes no more reports.
    let (s, _) = call(&api, &token, "POST", &path, json!({"status": "failed"})).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // A rerun sends the secret input again, under a new report token.
    let (s, again) = api
        .as_admin("POST", &format!("/api/v1/action-runs/{id}/rerun"), "")
        .await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    until(&api, again["id"].as_str().unwrap(), "running").await;
    let (_, body) = seen.lock().unwrap().bodies[1].clone();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["inputs"]["token"], "ghp-very-secret");
    assert_ne!(body["report"]["token"], json!(token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_or_never_reports_fails_the_run_after_its_timeout() {
    let api = api().await;
    model(&api).await;
    let (url, seen) = receiver(true).await;
    let started = std::time::Instant::now();
    let id = webhook_run(&api, "hangs", &url, &json!({"timeoutSeconds": 1})).await;
    let failed = until(&api, &id, "failed").await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(seen.lock().unwrap().bodies.len(), 1);
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("did not answer within 1 s"), "{error}");
    assert!(error.contains("127.0.0.1"), "{error}");

    // Answers, then never reports.
    let (url, _) = receiver(false).await;
    let id = webhook_run(
        &api,
        "silent",
        &url,
        &json!({"timeoutSeconds": 1, "reportTimeoutSeconds": 1}),
    )
    .await;
    let failed = until(&api, &id, "failed").await;
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("did not report the run's end within 1 s"),
        "{error}"
    );

    // A receiver that is not there.
    let id = webhook_run(&api, "nobody", "http://127.0.0.1:9/hook", &json!({})).await;
    let failed = until(&api, &id, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{failed}"
    );
}
