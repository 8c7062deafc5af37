//! The audit log through the API: every mutating route of the route table, called once,
//! writes exactly one audit event with the right action, resource, before and after, the
//! caller as actor and the request's id; refused calls write none; no event holds a secret.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use gantry_server::api::openapi::document;
use gantry_server::api::permissions::operations;
use serde_json::{json, Value};

use crate::api::{api, Api};

const GATED: &str = "steps:\n- name: gate\n  type: approval\n- name: after\n  image: none\n  dependsOn: gate\n  command: /bin/true\ntriggers:\n- name: release\n  source:\n    type: push\n";
const SECRET_VALUE: &str = "s3cret-value-never-logged";
const CONNECTION_SECRET: &str = "wJalrXUtnFEMI-never-logged";

struct Walk<'a> {
    api: &'a Api,
    seen: i64,
    n: u32,
    done: BTreeSet<String>,
    events: Vec<Value>,
}

impl Walk<'_> {
    /// Calls `operation` once, expecting `status`; returns the answer and the one audit event
    /// it wrote (checked: the admin as actor, this call's request id).
    async fn call(
        &mut self,
        operation: &str,
        method: &str,
        path: &str,
        body: &str,
        status: StatusCode,
    ) -> (Value, Value) {
        self.n += 1;
        let request_id = format!("audit-test-{}", self.n);
        let (got, answer) = self
            .api
            .as_admin_with(
                method,
                path,
                body,
                &[
                    ("x-request-id", &request_id),
                    ("content-type", "application/json"),
                ],
            )
            .await;
        assert_eq!(got, status, "{operation} {method} {path}: {answer}");
        let fresh = self.fresh().await;
        assert_eq!(
            fresh.len(),
            1,
            "{operation} writes exactly one audit event: {fresh:#?}"
        );
        let event = fresh.into_iter().next().unwrap();
        assert_eq!(
            event["actor"],
            json!({"kind": "admin", "id": "admin", "name": "admin"})
        );
        assert_eq!(event["requestId"], request_id, "{operation}");
        self.done.insert(operation.to_owned());
        self.events.push(event.clone());
        (answer, event)
    }

    /// The events after the last one seen, oldest first, read through `GET /audit`.
    async fn fresh(&mut self) -> Vec<Value> {
        let (status, page) = self
            .api
            .as_admin("GET", "/api/v1/audit?limit=1000", "")
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut fresh: Vec<Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["seq"].as_i64().unwrap() > self.seen)
            .cloned()
            .collect();
        fresh.reverse();
        if let Some(last) = fresh.last() {
            self.seen = last["seq"].as_i64().unwrap();
        }
        fresh
    }

    /// Retries a call that waits for a run to reach its approval (409 until then); a refused
    /// try must write nothing.
    async fn when_waiting(&mut self, operation: &str, path: &str, body: &str) -> (Value, Value) {
        for _ in 0..200 {
            let (status, _) = self.api.as_admin("GET", "/api/v1/runs", "").await;
            assert_eq!(status, StatusCode::OK);
            let waiting = self.waiting(path).await;
            if waiting {
                return self
                    .call(operation, "POST", path, body, StatusCode::OK)
                    .await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("{path}: the run never waited for its approval");
    }

    async fn waiting(&mut self, path: &str) -> bool {
        let run = path.split('/').nth(4).unwrap();
        let (_, body) = self
            .api
            .as_admin("GET", &format!("/api/v1/runs/{run}"), "")
            .await;
        body["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == "gate" && s["status"] == "waiting")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutating_route_writes_exactly_one_audit_event() {
    let api = api().await;
    let mut w = Walk {
        api: &api,
        seen: 0,
        n: 0,
        done: BTreeSet::new(),
        events: Vec::new(),
    };
    // Whatever setup wrote (the first admin key) is behind us.
    w.fresh().await;

    let (_, e) = w
        .call(
            "putWorkflow",
            "PUT",
            "/api/v1/workflows/gated",
            GATED,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        (&e["action"], &e["resource"]),
        (&json!("workflow.put"), &json!("workflow/gated"))
    );
    assert_eq!(
        (&e["before"], &e["after"]),
        (&Value::Null, &json!({"version": 1}))
    );

    let (_, e) = w
        .call(
            "putSecret",
            "PUT",
            "/api/v1/workflows/gated/secrets/token",
            SECRET_VALUE,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(
        (&e["action"], &e["resource"]),
        (&json!("secret.put"), &json!("workflow/gated/secret/token"))
    );
    assert_eq!(e["before"], Value::Null);
    assert!(e["after"]["updatedAt"].is_string(), "{e}");
    let (_, e) = w
        .call(
            "deleteSecret",
            "DELETE",
            "/api/v1/workflows/gated/secrets/token",
            "",
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(e["action"], "secret.delete");
    assert!(
        e["before"]["updatedAt"].is_string() && e["after"].is_null(),
        "{e}"
    );

    let (token, e) = w
        .call(
            "createPushToken",
            "POST",
            "/api/v1/workflows/gated/triggers/release/tokens",
            "",
            StatusCode::CREATED,
        )
        .await;
    let token_id = token["id"].as_str().unwrap().to_owned();
    assert_eq!(
        e["resource"],
        format!("workflow/gated/push-token/{token_id}")
    );
    assert_eq!(e["after"], json!({"id": token_id, "trigger": "release"}));
    let (_, e) = w
        .call(
            "revokePushToken",
            "DELETE",
            &format!("/api/v1/workflows/gated/triggers/release/tokens/{token_id}"),
            "",
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(e["before"], json!({"revokedAt": null}));
    assert!(e["after"]["revokedAt"].is_string(), "{e}");

    let connection =
        format!(r#"{{"accessKeyID": "AKIAEXAMPLEKEY", "secretAccessKey": "{CONNECTION_SECRET}"}}"#);
    let (_, e) = w
        .call(
            "putConnection",
            "PUT",
            "/api/v1/connections/aws/prod",
            &connection,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(
        (&e["action"], &e["resource"]),
        (&json!("connection.put"), &json!("connection/aws/prod"))
    );
    let (_, e) = w
        .call(
            "deleteConnection",
            "DELETE",
            "/api/v1/connections/aws/prod",
            "",
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(e["action"], "connection.delete");

    let (_, e) = w
        .call(
            "createTeam",
            "POST",
            "/api/v1/teams",
            r#"{"name": "sre", "title": "Site reliability"}"#,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        (&e["resource"], &e["after"]),
        (
            &json!("team/sre"),
            &json!({"name": "sre", "title": "Site reliability"})
        )
    );
    let (user, e) = w
        .call(
            "createUser",
            "POST",
            "/api/v1/users",
            r#"{"email": "Bob@Example.com", "role": "operator", "name": "Bob"}"#,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(e["resource"], "user/bob@example.com");
    assert_eq!(
        e["after"],
        json!({"id": user["id"], "email": "bob@example.com", "name": "Bob",
               "role": "operator", "password": false})
    );
    let (_, e) = w
        .call(
            "putTeamMember",
            "PUT",
            "/api/v1/teams/sre/members/bob@example.com",
            r#"{"maintainer": true}"#,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(e["resource"], "team/sre/member/bob@example.com");
    assert_eq!(
        (&e["before"], &e["after"]),
        (&Value::Null, &json!({"maintainer": true}))
    );
    let (_, e) = w
        .call(
            "deleteTeamMember",
            "DELETE",
            "/api/v1/teams/sre/members/bob@example.com",
            "",
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(
        (&e["before"], &e["after"]),
        (&json!({"maintainer": true}), &Value::Null)
    );
    let (account, e) = w
        .call(
            "createServiceAccount",
            "POST",
            "/api/v1/service-accounts",
            r#"{"name": "ci", "role": "operator", "team": "sre"}"#,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        (&e["resource"], &e["after"]),
        (
            &json!("service-account/ci"),
            &json!({"id": account["id"], "name": "ci", "role": "operator", "team": "sre"})
        )
    );
    let (key, e) = w
        .call(
            "createApiKey",
            "POST",
            "/api/v1/api-keys",
            r#"{"serviceAccount": "ci"}"#,
            StatusCode::CREATED,
        )
        .await;
    let key_id = key["id"].as_str().unwrap().to_owned();
    let presented = key["key"].as_str().unwrap().to_owned();
    assert_eq!(e["resource"], format!("api-key/{key_id}"));
    assert_eq!(
        format!("gantry_{}", e["after"]["prefix"].as_str().unwrap()),
        key["prefix"].as_str().unwrap()
    );
    assert_eq!(
        e["after"]["principal"],
        format!("service:{}", account["id"].as_str().unwrap())
    );
    let (_, e) = w
        .call(
            "revokeApiKey",
            "DELETE",
            &format!("/api/v1/api-keys/{key_id}"),
            "",
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(e["before"], json!({"revokedAt": null}));
    assert!(e["after"]["revokedAt"].is_string(), "{e}");
    let (agent, e) = w
        .call(
            "createAgentToken",
            "POST",
            "/api/v1/agent-tokens",
            r#"{"pool": "edge", "expiresIn": "30d"}"#,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(e["action"], "api_key.create");
    assert_eq!(e["after"]["principal"], "agent:edge");
    assert!(e["after"]["expiresAt"].is_string(), "{e}");
    let agent_key = agent["key"].as_str().unwrap().to_owned();
    // An agent token opens none of the API.
    let (status, body) = api
        .call("GET", "/api/v1/workflows", Some(&agent_key), "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, e) = w
        .call(
            "putWorkflowOwner",
            "PUT",
            "/api/v1/workflows/gated/owner",
            r#"{"team": "sre"}"#,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (&e["action"], &e["before"], &e["after"]),
        (
            &json!("workflow.owner"),
            &json!({"owner": null}),
            &json!({"owner": "sre"})
        )
    );

    // Runs: started, approved; rerun, denied; started, cancelled.
    let (run, e) = w
        .call(
            "startRun",
            "POST",
            "/api/v1/workflows/gated/runs",
            r#"{"parameters": {}}"#,
            StatusCode::CREATED,
        )
        .await;
    let first = run["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&e["action"], &e["resource"]),
        (&json!("run.start"), &json!(format!("run/{first}")))
    );
    assert_eq!(
        e["after"],
        json!({"workflow": "gated", "version": 1, "parameters": {}, "event": null})
    );
    let (_, e) = w
        .when_waiting(
            "approveStep",
            &format!("/api/v1/runs/{first}/steps/gate/approve"),
            "",
        )
        .await;
    assert_eq!(
        (&e["action"], &e["resource"]),
        (
            &json!("step.approve"),
            &json!(format!("run/{first}/step/gate"))
        )
    );
    assert_eq!(
        (&e["before"], &e["after"]),
        (
            &json!({"approval": "waiting"}),
            &json!({"approval": "approved"})
        )
    );
    let (rerun, e) = w
        .call(
            "rerunRun",
            "POST",
            &format!("/api/v1/runs/{first}/rerun"),
            "",
            StatusCode::CREATED,
        )
        .await;
    let second = rerun["id"].as_str().unwrap().to_owned();
    assert_eq!(e["resource"], format!("run/{second}"));
    let (_, e) = w
        .when_waiting(
            "denyStep",
            &format!("/api/v1/runs/{second}/steps/gate/deny"),
            r#"{"reason": "not today"}"#,
        )
        .await;
    assert_eq!(
        e["after"],
        json!({"approval": "rejected", "reason": "not today"})
    );
    let (run, _) = w
        .call(
            "startRun",
            "POST",
            "/api/v1/workflows/gated/runs",
            "",
            StatusCode::CREATED,
        )
        .await;
    let third = run["id"].as_str().unwrap().to_owned();
    let cancel = format!("/api/v1/runs/{third}/cancel");
    // Wait until it is live (the cancel route answers 409 for a run not running here).
    let _ = w.when_waiting_then(&third, "cancelRun", &cancel).await;

    let (_, e) = w
        .call(
            "deleteWorkflow",
            "DELETE",
            "/api/v1/workflows/gated",
            "",
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(
        (&e["action"], &e["before"], &e["after"]),
        (
            &json!("workflow.delete"),
            &json!({"version": 1, "owner": "sre"}),
            &Value::Null
        )
    );

    // The catalog: every write is one event per record, its before and after the records.
    let cases: &[(&str, &str, &str, &str, StatusCode, &str, &str)] = &[
        (
            "createBlueprint",
            "POST",
            "/api/v1/blueprints",
            r#"{"identifier": "svc"}"#,
            StatusCode::CREATED,
            "blueprint.create",
            "blueprint/svc",
        ),
        (
            "putBlueprint",
            "PUT",
            "/api/v1/blueprints/svc",
            r#"{"title": "Service"}"#,
            StatusCode::OK,
            "blueprint.update",
            "blueprint/svc",
        ),
        (
            "revertBlueprint",
            "POST",
            "/api/v1/blueprints/svc/revert",
            r#"{"version": 1}"#,
            StatusCode::OK,
            "blueprint.revert",
            "blueprint/svc",
        ),
        (
            "createEntity",
            "POST",
            "/api/v1/blueprints/svc/entities",
            r#"{"identifier": "a"}"#,
            StatusCode::CREATED,
            "entity.create",
            "entity/svc/a",
        ),
        (
            "putEntity",
            "PUT",
            "/api/v1/blueprints/svc/entities/a",
            r#"{"title": "A"}"#,
            StatusCode::OK,
            "entity.update",
            "entity/svc/a",
        ),
        (
            "patchEntity",
            "PATCH",
            "/api/v1/blueprints/svc/entities/a",
            r#"{"title": "AA"}"#,
            StatusCode::OK,
            "entity.update",
            "entity/svc/a",
        ),
        (
            "revertEntity",
            "POST",
            "/api/v1/blueprints/svc/entities/a/revert",
            r#"{"version": 1}"#,
            StatusCode::OK,
            "entity.revert",
            "entity/svc/a",
        ),
        (
            "bulkUpsertEntities",
            "POST",
            "/api/v1/entities/bulk",
            r#"{"entities": [{"identifier": "b", "blueprint": "svc"}]}"#,
            StatusCode::OK,
            "entity.create",
            "entity/svc/b",
        ),
        (
            "applyCatalog",
            "POST",
            "/api/v1/catalog/apply",
            r#"{"source": "repo", "documents": [{"kind": "Entity", "blueprint": "svc", "identifier": "c"}]}"#,
            StatusCode::OK,
            "entity.create",
            "entity/svc/c",
        ),
        (
            "deleteEntity",
            "DELETE",
            "/api/v1/blueprints/svc/entities/a",
            "",
            StatusCode::OK,
            "entity.delete",
            "entity/svc/a",
        ),
        (
            "createBlueprint",
            "POST",
            "/api/v1/blueprints",
            r#"{"identifier": "tmp"}"#,
            StatusCode::CREATED,
            "blueprint.create",
            "blueprint/tmp",
        ),
        (
            "deleteBlueprint",
            "DELETE",
            "/api/v1/blueprints/tmp",
            "",
            StatusCode::NO_CONTENT,
            "blueprint.delete",
            "blueprint/tmp",
        ),
    ];
    for (op, method, path, body, status, action, resource) in cases {
        let (_, e) = w.call(op, method, path, body, *status).await;
        assert_eq!(
            (&e["action"], &e["resource"]),
            (&json!(action), &json!(resource)),
            "{op}"
        );
        match *action {
            "entity.delete" | "blueprint.delete" => assert!(e["after"].is_null(), "{e}"),
            _ => assert!(e["after"]["version"].is_number(), "{e}"),
        }
    }
    // Reading with a query posts a body, and changes nothing.
    let (status, _) = api
        .as_admin_with(
            "POST",
            "/api/v1/entities/search",
            "{}",
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    w.done.insert("searchEntities".to_string());

    // Self-service actions: a definition, its secret, runs asked for by someone else and
    // approved, denied, cancelled and asked for again. A run's own progress (here its webhook
    // finding nobody) is bookkeeping, not audited; every decision is.
    let walk_action = r#"{"title": "Walk", "operation": "create",
        "approval": {"required": true}, "permissions": {"approve": {"roles": ["admin"]}},
        "invocation": {"webhook": {"url": "http://127.0.0.1:9/hook"}}}"#;
    let (_, e) = w
        .call(
            "putAction",
            "PUT",
            "/api/v1/actions/walk",
            walk_action,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (&e["action"], &e["resource"]),
        (&json!("action.create"), &json!("action/walk"))
    );
    let (_, e) = w
        .call(
            "putActionSecret",
            "PUT",
            "/api/v1/actions/walk/secrets/key",
            SECRET_VALUE,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(e["resource"], "action/walk/secret/key");
    let store = api.store();
    store
        .create_user(
            &gantry_store::User {
                id: "u-asker".into(),
                email: "asker@example.com".into(),
                name: "Asker".into(),
                role: "operator".into(),
                password_hash: None,
                created_at: chrono::Utc::now(),
                disabled_at: None,
            },
            &crate::audit(),
        )
        .await
        .unwrap();
    let asker =
        gantry_server::server::issue_api_key(store.as_ref(), "user:u-asker", &crate::audit())
            .await
            .unwrap();
    w.fresh().await;
    let mut asked = Vec::new();
    for _ in 0..3 {
        let (status, run) = api
            .call("POST", "/api/v1/actions/walk/runs", Some(&asker), "{}")
            .await;
        assert_eq!(status, StatusCode::CREATED, "{run}");
        let fresh = w.fresh().await;
        assert_eq!(fresh.len(), 1, "{fresh:?}");
        assert_eq!(fresh[0]["action"], "action_run.create");
        asked.push(run["id"].as_str().unwrap().to_owned());
    }
    w.done.insert("runAction".to_string());
    for (op, path, body, action) in [
        (
            "approveActionRun",
            format!("/api/v1/action-runs/{}/approve", asked[0]),
            "{}",
            "action_run.approve",
        ),
        (
            "denyActionRun",
            format!("/api/v1/action-runs/{}/deny", asked[1]),
            r#"{"reason": "no"}"#,
            "action_run.deny",
        ),
        (
            "cancelActionRun",
            format!("/api/v1/action-runs/{}/cancel", asked[2]),
            "",
            "action_run.cancel",
        ),
    ] {
        let (_, e) = w.call(op, "POST", &path, body, StatusCode::OK).await;
        assert_eq!(e["action"], action, "{op}");
        assert!(
            e["resource"]
                .as_str()
                .unwrap()
                .starts_with("action/walk/run/"),
            "{e}"
        );
    }
    let (_, e) = w
        .call(
            "rerunActionRun",
            "POST",
            &format!("/api/v1/action-runs/{}/rerun", asked[1]),
            "",
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(e["action"], "action_run.rerun");
    let (_, e) = w
        .call(
            "deleteAction",
            "DELETE",
            "/api/v1/actions/walk",
            "",
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(e["action"], "action.delete");

    // Scorecards, initiatives and automations: each change of a definition is one event; a
    // scorecard's evaluation is bookkeeping, and a check posts a body and changes nothing.
    for (op, method, path, body, status, action, resource) in [
        (
            "putScorecard",
            "PUT",
            "/api/v1/scorecards/walk",
            r#"{"blueprint": "svc", "levels": ["Basic", "Good"],
                "rules": [{"identifier": "titled", "title": "Titled", "level": "Good", "where": "title isNotEmpty"}]}"#,
            StatusCode::OK,
            "scorecard.create",
            "scorecard/walk",
        ),
        (
            "putInitiative",
            "PUT",
            "/api/v1/initiatives/walk",
            r#"{"title": "All good", "scorecard": "walk", "targetLevel": "Good"}"#,
            StatusCode::OK,
            "initiative.create",
            "initiative/walk",
        ),
        (
            "putAutomation",
            "PUT",
            "/api/v1/automations/walk",
            r#"{"trigger": {"event": "entity.created", "blueprint": "svc"}, "enabled": false,
                "effect": {"workflow": {"name": "nothing"}}}"#,
            StatusCode::OK,
            "automation.create",
            "automation/walk",
        ),
        (
            "deleteAutomation",
            "DELETE",
            "/api/v1/automations/walk",
            "",
            StatusCode::NO_CONTENT,
            "automation.delete",
            "automation/walk",
        ),
        (
            "deleteInitiative",
            "DELETE",
            "/api/v1/initiatives/walk",
            "",
            StatusCode::NO_CONTENT,
            "initiative.delete",
            "initiative/walk",
        ),
        (
            "deleteScorecard",
            "DELETE",
            "/api/v1/scorecards/walk",
            "",
            StatusCode::NO_CONTENT,
            "scorecard.delete",
            "scorecard/walk",
        ),
    ] {
        let (_, e) = w.call(op, method, path, body, status).await;
        assert_eq!(
            (&e["action"], &e["resource"]),
            (&json!(action), &json!(resource)),
            "{op}"
        );
    }
    let (status, _) = api
        .as_admin_with(
            "POST",
            "/api/v1/scorecards/check",
            r#"{"documents": [{"kind": "Entity", "blueprint": "svc", "identifier": "z"}]}"#,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(w.fresh().await.is_empty(), "a check changes nothing");
    w.done.insert("checkScorecards".to_string());

    // The agent API reports work on jobs (kept on the jobs and their runs), not changes: it is
    // not audited. Only agent tokens may call it; a refused call writes nothing.
    for (op, path) in [
        ("claimAgentJobs", "/api/v1/agent/jobs/claim"),
        ("heartbeatAgentJob", "/api/v1/agent/jobs/j/heartbeat"),
        ("appendAgentJobLogs", "/api/v1/agent/jobs/j/logs"),
        ("completeAgentJob", "/api/v1/agent/jobs/j/complete"),
        ("forwardAgentMetadata", "/api/v1/agent/jobs/j/metadata"),
    ] {
        let (status, _) = api.as_admin("POST", path, "{}").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{op}");
        w.done.insert(op.to_string());
    }
    assert!(w.fresh().await.is_empty(), "agent calls are not audited");

    // A refused change writes nothing: a duplicate team, a viewer-less unknown user.
    let (status, _) = api
        .as_admin("POST", "/api/v1/teams", r#"{"name": "sre"}"#)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api
        .as_admin("PUT", "/api/v1/teams/sre/members/nobody@example.com", "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/teams",
            Some(&presented),
            r#"{"name": "x"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked key");
    assert!(
        w.fresh().await.is_empty(),
        "refused calls are not audited as changes"
    );

    // Every mutating operation of the route table was called.
    let doc = document();
    let mutating: BTreeSet<String> = operations(&doc)
        .into_iter()
        .filter(|(method, _, _)| method.as_str() != "GET")
        .map(|(_, _, id)| id)
        .collect();
    assert_eq!(
        w.done, mutating,
        "each mutating route needs a case in this walk"
    );

    // No event carries a secret value, a key or its hash.
    let all = serde_json::to_string(&w.events).unwrap();
    for secret in [
        SECRET_VALUE,
        CONNECTION_SECRET,
        presented.as_str(),
        agent_key.as_str(),
    ] {
        assert!(!all.contains(secret), "{secret} appears in the audit log");
    }
}

impl Walk<'_> {
    /// Cancels `run` once it is waiting at its gate.
    async fn when_waiting_then(&mut self, run: &str, operation: &str, path: &str) -> Value {
        for _ in 0..200 {
            if self.waiting(&format!("/api/v1/runs/{run}")).await {
                let (_, e) = self
                    .call(operation, "POST", path, "", StatusCode::ACCEPTED)
                    .await;
                assert_eq!(e["resource"], format!("run/{run}"));
                assert_eq!(
                    (&e["action"], &e["before"], &e["after"]),
                    (
                        &json!("run.cancel"),
                        &json!({"status": "running"}),
                        &json!({"status": "cancelling"})
                    )
                );
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("run {run} never waited for its approval");
    }
}

#[tokio::test]
async fn the_audit_log_filters_and_is_admin_only() {
    let api = api().await;
    for name in ["a", "ab", "b"] {
        let (status, _) = api
            .as_admin(
                "PUT",
                &format!("/api/v1/workflows/{name}"),
                crate::api::HELLO,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, page) = api
        .as_admin("GET", "/api/v1/audit?resource=workflow/a", "")
        .await;
    let resources: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].as_str().unwrap())
        .collect();
    assert_eq!(resources, ["workflow/a"]);
    let (_, page) = api
        .as_admin("GET", "/api/v1/audit?action=workflow&limit=2", "")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap();
    let (_, rest) = api
        .as_admin(
            "GET",
            &format!("/api/v1/audit?action=workflow&after={next}"),
            "",
        )
        .await;
    assert_eq!(rest["items"][0]["resource"], "workflow/a");
    assert!(rest["next"].is_null());
    let (status, body) = api
        .as_admin("GET", "/api/v1/audit?since=yesterday", "")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["path"], "since");
    let (_, page) = api
        .as_admin("GET", "/api/v1/audit?since=2999-01-01T00:00:00Z", "")
        .await;
    assert_eq!(page["items"], json!([]));
    // No route edits or deletes the log.
    for method in ["PUT", "PATCH", "DELETE", "POST"] {
        let (status, _) = api.as_admin(method, "/api/v1/audit", "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}
