//! The REST API through its router (`oneshot`), on a real SQLite store in a temporary folder.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use gantry_server::api::{router, ApiState, BODY_LIMIT};
use gantry_server::runs::{Registry, RunService};
use gantry_server::server::issue_api_key;
use gantry_store::{SqliteStore, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub(crate) struct Api {
    app: Router,
    pub(crate) key: String,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

pub(crate) async fn api() -> Api {
    api_with("http://gantry.test", None).await
}

/// The same, reached at `public_url`, with single sign-on when `sso` is given.
pub(crate) async fn api_with(public_url: &str, sso: Option<gantry_server::api::login::Sso>) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("gantry.db"))
            .await
            .unwrap(),
    );
    let key = issue_api_key(store.as_ref(), "admin", &crate::audit())
        .await
        .unwrap();
    let vault = Arc::new(gantry_server::vault::Vault::load(dir.path(), None).unwrap());
    let writes = gantry_store::BatchWriter::start(store.clone(), Default::default());
    let runs = Arc::new(RunService::new(
        store.clone(),
        writes.clone(),
        vault.clone(),
        Arc::new(gantry_runtime::ProcessRuntime::new()),
        dir.path().join("runs"),
        None,
        Arc::new(Registry::default()),
        tokio::runtime::Handle::current(),
    ));
    let triggers = Arc::new(gantry_server::triggers::TriggerService::new(
        store.clone(),
        writes,
        runs.clone(),
        gantry_server::triggers::push::PushKeys::from_secret(&[1; 32]),
    ));
    let catalog = gantry_server::catalog::CatalogService::new(store.clone());
    let actions = gantry_server::actions::ActionService::new(
        store.clone(),
        vault.clone(),
        runs.clone(),
        catalog.clone(),
        public_url.into(),
    );
    let (scorecards, automations) = gantry_server::automations::start_services(
        store.clone(),
        catalog.clone(),
        runs.clone(),
        &actions,
    )
    .await
    .unwrap();
    Api {
        app: router(ApiState {
            scorecards,
            automations,
            store: store.clone(),
            runs,
            vault,
            triggers,
            public_url: public_url.into(),
            sign_in: Arc::new(gantry_server::api::login::SignIn::new(public_url, sso)),
            catalog,
            agents: None,
            actions,
        }),
        key,
        store,
        _dir: dir,
    }
}

impl Api {
    pub(crate) fn app(&self) -> Router {
        self.app.clone()
    }

    pub(crate) fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        self.call_with(method, path, key, body, &[]).await
    }

    /// A call with extra headers.
    pub(crate) async fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let response = self
            .send(req.body(Body::from(body.to_owned())).unwrap())
            .await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// Sends a request as built, returning the whole response.
    pub(crate) async fn send(&self, request: Request<Body>) -> axum::response::Response {
        self.app.clone().oneshot(request).await.unwrap()
    }

    /// A call as the admin with extra headers.
    pub(crate) async fn as_admin_with(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        self.call_with(method, path, Some(&self.key), body, headers)
            .await
    }

    pub(crate) async fn as_admin(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let key = self.key.clone();
        self.call(method, path, Some(&key), body).await
    }
}

pub(crate) const HELLO: &str = "steps:\n- name: greet\n  image: alpine\n  input: [echo hi]\n";

#[tokio::test]
async fn every_route_needs_a_valid_key() {
    let api = api().await;
    for key in [
        None,
        Some("nope"),
        Some("gantry_00000000_0000000000000000000000000000000000000000000000000000000000000000"),
    ] {
        let (status, body) = api.call("GET", "/api/v1/workflows", key, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(body["code"], "unauthorized");
    }
    let (status, _) = api.call("GET", "/api/v1/nowhere", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = api.as_admin("GET", "/api/v1/nowhere", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn a_revoked_key_is_refused() {
    let api = api().await;
    let keys = api.store.list_api_keys().await.unwrap();
    api.store
        .revoke_api_key(&keys[0].id, &crate::audit_at(chrono::Utc::now()))
        .await
        .unwrap();
    let (status, _) = api.as_admin("GET", "/api/v1/workflows", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn workflows_are_versioned() {
    let api = api().await;
    let (status, body) = api.as_admin("PUT", "/api/v1/workflows/hello", HELLO).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 1);
    let changed = HELLO.replace("echo hi", "echo hello");
    let (status, body) = api
        .as_admin("PUT", "/api/v1/workflows/hello", &changed)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 2);
    let (_, body) = api.as_admin("GET", "/api/v1/workflows/hello", "").await;
    assert_eq!(body["version"], 2);
    assert_eq!(body["yaml"], changed);
    let (_, body) = api
        .as_admin("GET", "/api/v1/workflows/hello/versions", "")
        .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    let (_, body) = api
        .as_admin("GET", "/api/v1/workflows/hello/versions/1", "")
        .await;
    assert_eq!(body["yaml"], HELLO);
    let (_, body) = api.as_admin("GET", "/api/v1/workflows", "").await;
    assert_eq!(body["items"][0]["name"], "hello");
    assert_eq!(body["items"][0]["version"], 2);
    let (status, _) = api.as_admin("DELETE", "/api/v1/workflows/hello", "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.as_admin("GET", "/api/v1/workflows/hello", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "no workflow named `hello`");
}

#[tokio::test]
async fn pagination_walks_every_workflow() {
    let api = api().await;
    for i in 0..5 {
        let (status, _) = api
            .as_admin("PUT", &format!("/api/v1/workflows/w{i}"), HELLO)
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut names = Vec::new();
    let mut path = "/api/v1/workflows?limit=2".to_owned();
    loop {
        let (_, body) = api.as_admin("GET", &path, "").await;
        for i in body["items"].as_array().unwrap() {
            names.push(i["name"].as_str().unwrap().to_owned());
        }
        match body["next"].as_str() {
            Some(n) => path = format!("/api/v1/workflows?limit=2&after={n}"),
            None => break,
        }
    }
    assert_eq!(names, ["w0", "w1", "w2", "w3", "w4"]);
}

#[tokio::test]
async fn a_malformed_workflow_is_a_422_with_lines_and_columns() {
    let api = api().await;
    let broken = "steps:\n- name: a\n  image: x\n  dependsOn: b\n";
    let (status, body) = api
        .as_admin("PUT", "/api/v1/workflows/broken", broken)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_workflow");
    let d = &body["details"]["diagnostics"][0];
    assert_eq!(d["code"], "unknown_step");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(4), Some(14))
    );
    let (status, _) = api.as_admin("GET", "/api/v1/workflows/broken", "").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an invalid workflow is not stored"
    );
}

#[tokio::test]
async fn bad_names_and_oversized_bodies_are_refused() {
    let api = api().await;
    let (status, body) = api
        .as_admin("PUT", "/api/v1/workflows/.hidden", HELLO)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["path"], "name");
    let big = format!("{HELLO}# {}\n", "x".repeat(BODY_LIMIT));
    let (status, body) = api.as_admin("PUT", "/api/v1/workflows/big", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
}

/// Polls a run until it ends.
pub(crate) async fn finished(api: &Api, id: &str) -> Value {
    for _ in 0..200 {
        let (_, run) = api.as_admin("GET", &format!("/api/v1/runs/{id}"), "").await;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            return run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("run {id} did not end");
}

pub(crate) const PIPELINE: &str = r#"
parameters:
  who: {default: world}
steps:
- name: greet
  image: none
  env:
    WHO: ${parameters.who}
  input: ['echo "hello $WHO" | tee "$GANTRY_STEP_DIR/outputs/greeting"']
- name: report
  image: none
  env:
    G: ${outputs.greet.greeting}
  input: ['echo "got: $G"']
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_executes_and_is_recorded() {
    let api = api().await;
    api.as_admin("PUT", "/api/v1/workflows/pipeline", PIPELINE)
        .await;
    let (status, body) = api
        .as_admin(
            "POST",
            "/api/v1/workflows/pipeline/runs",
            r#"{"parameters": {"who": {"value": "Gantry"}}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let run = finished(&api, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["parameters"]["who"], "Gantry");
    assert_eq!(run["steps"][0]["name"], "greet");
    assert_eq!(run["steps"][0]["exitCode"], 0);
    assert_eq!(run["outputs"][0]["value"], "hello Gantry");
    let (_, logs) = api
        .as_admin("GET", &format!("/api/v1/runs/{id}/logs"), "")
        .await;
    let text: Vec<&str> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, ["hello Gantry\n", "got: hello Gantry\n"]);
    let (_, list) = api
        .as_admin("GET", "/api/v1/runs?workflow=pipeline&status=succeeded", "")
        .await;
    assert_eq!(list["items"][0]["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_needs_its_parameters_and_an_existing_workflow() {
    let api = api().await;
    let (status, _) = api
        .as_admin("POST", "/api/v1/workflows/nope/runs", "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    api.as_admin(
        "PUT",
        "/api/v1/workflows/needs",
        "parameters:\n  target: {}\nsteps:\n- name: a\n  image: none\n  command: /bin/true\n",
    )
    .await;
    let (status, body) = api
        .as_admin("POST", "/api/v1/workflows/needs/runs", "")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"].as_str().unwrap().contains("target"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_and_cancel_through_the_api() {
    let api = api().await;
    let gated = "steps:\n- name: gate\n  type: approval\n- name: after\n  image: none\n  dependsOn: gate\n  command: /bin/true\n";
    api.as_admin("PUT", "/api/v1/workflows/gated", gated).await;
    let start = |api: &Api| {
        let api_app = api.app.clone();
        let key = api.key.clone();
        async move {
            let response = api_app
                .oneshot(
                    Request::post("/api/v1/workflows/gated/runs")
                        .header("authorization", format!("Bearer {key}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            v["id"].as_str().unwrap().to_owned()
        }
    };
    // Approve.
    let id = start(&api).await;
    let path = format!("/api/v1/runs/{id}/steps/gate/approve");
    let mut answered = false;
    for _ in 0..100 {
        let (status, _) = api.as_admin("POST", &path, "").await;
        if status == StatusCode::OK {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(answered);
    let run = finished(&api, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // Deny, with a reason.
    let id = start(&api).await;
    let path = format!("/api/v1/runs/{id}/steps/gate/deny");
    for _ in 0..100 {
        let (status, _) = api
            .as_admin("POST", &path, r#"{"reason": "not today"}"#)
            .await;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let run = finished(&api, &id).await;
    assert_eq!(run["status"], "failed");
    let gate = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "gate")
        .unwrap();
    assert!(
        gate["reason"].as_str().unwrap().contains("not today"),
        "{run}"
    );
    // Cancel while waiting.
    let id = start(&api).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, _) = api
        .as_admin("POST", &format!("/api/v1/runs/{id}/cancel"), "")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = finished(&api, &id).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    // A finished run cannot be cancelled.
    let (status, body) = api
        .as_admin("POST", &format!("/api/v1/runs/{id}/cancel"), "")
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "run_not_active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_connections_reach_steps_and_nothing_else() {
    let api = api().await;
    let wf = r#"
steps:
- name: use
  image: none
  env:
    TOKEN: ${secrets.token}
    KEY: ${connections.aws.prod.accessKeyID}
  input:
  - 'test "$TOKEN" = "s3cr3t-t0ken-value" && echo token ok'
  - 'test "$KEY" = "AKIAEXAMPLEKEY" && echo key ok'
  - 'echo "leaking $TOKEN and $KEY"'
"#;
    api.as_admin("PUT", "/api/v1/workflows/uses-secrets", wf)
        .await;
    let (status, _) = api
        .as_admin(
            "PUT",
            "/api/v1/workflows/uses-secrets/secrets/token",
            "s3cr3t-t0ken-value",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api
        .as_admin(
            "PUT",
            "/api/v1/connections/aws/prod",
            r#"{"accessKeyID": "AKIAEXAMPLEKEY", "secretAccessKey": "wJalrXUtnFEMIexample"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, names) = api
        .as_admin("GET", "/api/v1/workflows/uses-secrets/secrets", "")
        .await;
    assert_eq!(names["items"], serde_json::json!(["token"]));
    let (_, conns) = api.as_admin("GET", "/api/v1/connections", "").await;
    assert_eq!(
        conns["items"],
        serde_json::json!([{"type": "aws", "name": "prod"}])
    );
    let (_, started) = api
        .as_admin("POST", "/api/v1/workflows/uses-secrets/runs", "")
        .await;
    let id = started["id"].as_str().unwrap().to_owned();
    let run = finished(&api, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let (_, logs) = api
        .as_admin("GET", &format!("/api/v1/runs/{id}/logs"), "")
        .await;
    let text: String = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert!(
        text.contains("token ok") && text.contains("key ok"),
        "{text}"
    );
    assert!(text.contains("leaking *** and ***"), "{text}");
    // Not in any response, nor in the database file.
    for response in [
        run.to_string(),
        logs.to_string(),
        names.to_string(),
        conns.to_string(),
    ] {
        assert!(
            !response.contains("s3cr3t") && !response.contains("AKIAEXAMPLE"),
            "{response}"
        );
    }
    let db = std::fs::read(api._dir.path().join("gantry.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    assert!(!db.contains("s3cr3t-t0ken") && !db.contains("wJalrXUtnFEMI"));
    // Bad input names the field, never the value.
    let (status, body) = api
        .as_admin(
            "PUT",
            "/api/v1/connections/aws/bad",
            r#"{"accessKeyID": 42}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["path"], "body.accessKeyID");
    let (status, _) = api.as_admin("PUT", "/api/v1/connections/ftp/x", "{}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = api
        .as_admin("PUT", "/api/v1/workflows/missing/secrets/x", "v")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .as_admin("DELETE", "/api/v1/workflows/uses-secrets/secrets/token", "")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, started) = api
        .as_admin("POST", "/api/v1/workflows/uses-secrets/runs", "")
        .await;
    let run = finished(&api, started["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed");
    assert!(run["steps"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("secret `token` does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_stream_live_as_server_sent_events_until_the_run_ends() {
    let api = api().await;
    let slow =
        "steps:\n- name: tick\n  image: none\n  input: ['echo one', 'sleep 1', 'echo two']\n";
    api.as_admin("PUT", "/api/v1/workflows/slow", slow).await;
    let (_, started) = api
        .as_admin("POST", "/api/v1/workflows/slow/runs", "")
        .await;
    let id = started["id"].as_str().unwrap().to_owned();
    // Subscribed while the run is still going: the stream must carry both lines and the end.
    let response = api
        .app
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/runs/{id}/logs/stream"))
                .header("authorization", format!("Bearer {}", api.key))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        response.into_body().collect(),
    )
    .await
    .expect("the stream ends with the run")
    .unwrap()
    .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let one = text.find(r#""text":"one\n""#).expect(&text);
    let two = text.find(r#""text":"two\n""#).expect(&text);
    let end = text.find("event: end").expect(&text);
    assert!(one < two && two < end, "{text}");
    assert!(text.contains(r#"data: {"status":"succeeded"}"#), "{text}");
    // Resuming after the first line gives only what follows.
    let first_id = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .to_owned();
    let response = api
        .app
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/runs/{id}/logs/stream"))
                .header("authorization", format!("Bearer {}", api.key))
                .header("last-event-id", first_id)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains(r#""text":"one\n""#) && text.contains(r#""text":"two\n""#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_starts_one_run_however_often_it_is_sent() {
    let api = api().await;
    api.as_admin("PUT", "/api/v1/workflows/once", HELLO).await;
    let post = |key: &'static str| {
        let app = api.app.clone();
        let auth = format!("Bearer {}", api.key);
        async move {
            let response = app
                .oneshot(
                    Request::post("/api/v1/workflows/once/runs")
                        .header("authorization", auth)
                        .header("idempotency-key", key)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            (status, v["id"].as_str().unwrap().to_owned())
        }
    };
    let (status, first) = post("delivery-1").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = post("delivery-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    // Racing deliveries of another key: one run between them.
    let racing: Vec<_> = (0..8).map(|_| tokio::spawn(post("delivery-2"))).collect();
    let mut ids = std::collections::BTreeSet::new();
    for r in racing {
        ids.insert(r.await.unwrap().1);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(!ids.contains(&first));
    finished(&api, &first).await;
    finished(&api, ids.iter().next().unwrap()).await;
    let (_, list) = api.as_admin("GET", "/api/v1/runs?workflow=once", "").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_starts_the_current_version_with_the_same_parameters() {
    let api = api().await;
    api.as_admin("PUT", "/api/v1/workflows/pipeline", PIPELINE)
        .await;
    let (_, body) = api
        .as_admin(
            "POST",
            "/api/v1/workflows/pipeline/runs",
            r#"{"parameters": {"who": "again"}}"#,
        )
        .await;
    let first = body["id"].as_str().unwrap().to_owned();
    let old = finished(&api, &first).await;
    assert_eq!(old["status"], "succeeded", "{old}");
    // A second version: the rerun runs it, not the version of the first run.
    let (status, _) = api
        .as_admin(
            "PUT",
            "/api/v1/workflows/pipeline",
            &format!("{PIPELINE}# v2\n"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let rerun = format!("/api/v1/runs/{first}/rerun");
    let (status, body) = api.as_admin("POST", &rerun, "").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["workflow"], "pipeline");
    assert_eq!(body["created"], true);
    let second = body["id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let new = finished(&api, &second).await;
    assert_eq!(new["status"], "succeeded", "{new}");
    assert_eq!(new["parameters"], old["parameters"]);
    assert_eq!(new["parameters"]["who"], "again");
    assert_eq!(old["version"], 1);
    assert_eq!(new["version"], 2);
    assert_eq!(new["outputs"][0]["value"], "hello again");

    let (status, body) = api
        .as_admin("POST", "/api/v1/runs/no-such-run/rerun", "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    assert!(body["message"].as_str().unwrap().contains("no-such-run"));
    assert_eq!(body["path"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_with_an_idempotency_key_starts_one_run() {
    let api = api().await;
    api.as_admin("PUT", "/api/v1/workflows/once", HELLO).await;
    let (_, body) = api
        .as_admin("POST", "/api/v1/workflows/once/runs", "")
        .await;
    let first = body["id"].as_str().unwrap().to_owned();
    let rerun = |key: &'static str| {
        let app = api.app.clone();
        let auth = format!("Bearer {}", api.key);
        let path = format!("/api/v1/runs/{first}/rerun");
        async move {
            let response = app
                .oneshot(
                    Request::post(path)
                        .header("authorization", auth)
                        .header("idempotency-key", key)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            (status, v)
        }
    };
    let (status, once) = rerun("rerun-1").await;
    assert_eq!(status, StatusCode::CREATED, "{once}");
    let (status, again) = rerun("rerun-1").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], once["id"]);
    assert_eq!(again["created"], false);
    let (status, bad) = rerun("").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["path"], "Idempotency-Key");
    finished(&api, &first).await;
    finished(&api, once["id"].as_str().unwrap()).await;
    let (_, list) = api.as_admin("GET", "/api/v1/runs?workflow=once", "").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}
