//! Triggers end to end over a real socket: the server bound on loopback with the process
//! runtime and SQLite, webhook and push events turned into runs, push tokens revoked, and
//! schedules driven by an injected clock across restarts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gantry_server::server::{RuntimeChoice, Server, ServerConfig};
use gantry_server::triggers::schedule::{ManualTimer, Timer};
use serde_json::{json, Value};

struct Running {
    base: String,
    key: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

impl Running {
    async fn start(data: &Path, key: Option<String>, timer: Option<Arc<dyn Timer>>) -> Running {
        let server = Server::bind(ServerConfig {
            data_dir: data.to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: None,
            runtime: RuntimeChoice::Process,
            public_url: None,
            timer,
            workers: Default::default(),
            work_dir: None,
        })
        .await
        .expect("bind");
        let key = key
            .or_else(|| server.initial_admin_key.clone())
            .expect("an admin key on the first start");
        let base = format!("http://{}", server.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        Running {
            base,
            key,
            stop: Some(tx),
            task,
            http: reqwest::Client::new(),
        }
    }

    async fn stop(mut self) -> String {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        self.key.clone()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        let mut req = self.http.request(method, url);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Option<String>) -> (u16, Value) {
        let key = self.key.clone();
        self.send(method, &format!("/api/v1{path}"), Some(&key), body, &[])
            .await
    }

    async fn apply(&self, name: &str, yaml: &str) {
        let (status, body) = self
            .api(
                reqwest::Method::PUT,
                &format!("/workflows/{name}"),
                Some(yaml.to_owned()),
            )
            .await;
        assert!(status == 201 || status == 200, "{status} {body}");
    }

    async fn runs(&self, workflow: &str) -> Vec<Value> {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/runs?workflow={workflow}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `workflow` has `n` runs that all ended; returns them.
    async fn ended_runs(&self, workflow: &str, n: usize) -> Vec<Value> {
        for _ in 0..300 {
            let runs = self.runs(workflow).await;
            if runs.len() >= n && runs.iter().all(|r| !r["endedAt"].is_null()) {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{workflow}: fewer than {n} ended runs: {:?}",
            self.runs(workflow).await
        );
    }
}

const HOOKED: &str = r#"apiVersion: v1
parameters:
  branch: {default: main}
  who: {}
triggers:
- name: github
  source: {type: webhook}
  when: ${event.action == 'push'}
  binding:
    key: ${event.id}
    parameters:
      branch: ${event.ref}
      who: !Data sender
steps:
- name: echo
  image: gantry-test/busybox:latest
  input:
  - echo "building $BRANCH for $WHO"
  env:
    BRANCH: !Parameter branch
    WHO: !Parameter who
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_start_runs_with_bound_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(dir.path(), None, None).await;
    server.apply("build", HOOKED).await;
    let (status, triggers) = server
        .api(reqwest::Method::GET, "/workflows/build/triggers", None)
        .await;
    assert_eq!(status, 200, "{triggers}");
    let url = triggers["items"][0]["url"]
        .as_str()
        .expect("a webhook URL")
        .to_owned();
    assert!(
        url.starts_with(&server.base) && url.contains("/hooks/"),
        "{url}"
    );
    // Re-applying keeps the URL.
    server.apply("build", HOOKED).await;
    let (_, again) = server
        .api(reqwest::Method::GET, "/workflows/build/triggers", None)
        .await;
    assert_eq!(again["items"][0]["url"], json!(url));

    let post = |body: Value, headers: &'static [(&'static str, &'static str)]| {
        let url = url.clone();
        let server = &server;
        async move {
            server
                .send(
                    reqwest::Method::POST,
                    &url,
                    None,
                    Some(body.to_string()),
                    headers,
                )
                .await
        }
    };
    let (status, accepted) = post(
        json!({"action": "push", "id": "d1", "ref": "feature", "sender": "ada"}),
        &[],
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["created"], json!(true));
    let first_event = accepted["id"].clone();

    // The same delivery key (`binding.key` = event id) is the same event.
    let (status, dup) = post(
        json!({"action": "push", "id": "d1", "ref": "other", "sender": "bob"}),
        &[],
    )
    .await;
    assert_eq!(status, 202, "{dup}");
    assert_eq!(
        (dup["created"].clone(), dup["id"].clone()),
        (json!(false), first_event)
    );

    // `when` false: answered, not stored, no run.
    let (status, filtered) =
        post(json!({"action": "opened", "id": "d2", "sender": "x"}), &[]).await;
    assert_eq!(status, 200, "{filtered}");
    assert_eq!(filtered["accepted"], json!(false));
    let (status, filtered) = post(json!({"id": "d2", "sender": "x"}), &[]).await;
    assert_eq!(
        (status, filtered["accepted"].clone()),
        (200, json!(false)),
        "no `action` at all"
    );

    // The parameter without a default must come from the event.
    let (status, missing) = post(json!({"action": "push", "id": "d3"}), &[]).await;
    assert_eq!(status, 422, "{missing}");
    assert_eq!(missing["path"], json!("parameters.who"), "{missing}");

    // Not JSON; not an object.
    let (status, _) = server
        .send(reqwest::Method::POST, &url, None, Some("{nope".into()), &[])
        .await;
    assert_eq!(status, 422);
    let (status, _) = post(json!([1, 2]), &[]).await;
    assert_eq!(status, 422);
    // An unknown hook is a 404 that says nothing more.
    let (status, body) = server
        .send(
            reqwest::Method::POST,
            "/hooks/0123456789abcdef0123456789abcdef",
            None,
            Some("{}".into()),
            &[],
        )
        .await;
    assert_eq!((status, body["code"].clone()), (404, json!("not_found")));

    // An idempotency key makes a repeated delivery (without a binding key) the same event.
    let (s1, a) = post(
        json!({"action": "push", "ref": "b", "sender": "c"}),
        &[("idempotency-key", "delivery-7")],
    )
    .await;
    let (s2, b) = post(
        json!({"action": "push", "ref": "b", "sender": "c"}),
        &[("idempotency-key", "delivery-7")],
    )
    .await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a["id"], b["id"]);

    let runs = server.ended_runs("build", 2).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let mut params: Vec<Value> = runs.iter().map(|r| r["parameters"].clone()).collect();
    params.sort_by_key(|p| p.to_string());
    assert_eq!(
        params,
        [
            json!({"branch": "b", "who": "c"}),
            json!({"branch": "feature", "who": "ada"})
        ]
    );
    for run in &runs {
        assert_eq!(run["status"], json!("succeeded"), "{run}");
    }
    let id = runs
        .iter()
        .find(|r| r["parameters"]["who"] == json!("ada"))
        .and_then(|r| r["id"].as_str())
        .unwrap()
        .to_owned();
    let (_, logs) = server
        .api(reqwest::Method::GET, &format!("/runs/{id}/logs"), None)
        .await;
    assert!(
        logs.to_string().contains("building feature for ada"),
        "{logs}"
    );
    server.stop().await;
}

const PUSHED: &str = r#"apiVersion: v1
parameters:
  version: {}
triggers:
- name: release
  source:
    type: push
    schema:
      version: {type: string}
  binding:
    parameters:
      version: ${event.version}
steps:
- name: echo
  image: gantry-test/busybox:latest
  input: ["echo releasing $V"]
  env: {V: !Parameter version}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_tokens_start_runs_and_revoked_or_forged_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(dir.path(), None, None).await;
    server.apply("release", PUSHED).await;
    let (status, created) = server
        .api(
            reqwest::Method::POST,
            "/workflows/release/triggers/release/tokens",
            None,
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let token_id = created["id"].as_str().unwrap().to_owned();
    // Listing shows ids, never tokens.
    let (_, listed) = server
        .api(
            reqwest::Method::GET,
            "/workflows/release/triggers/release/tokens",
            None,
        )
        .await;
    assert_eq!(listed["items"][0]["id"], json!(token_id));
    assert!(!listed.to_string().contains(&token));
    let (_, triggers) = server
        .api(reqwest::Method::GET, "/workflows/release/triggers", None)
        .await;
    assert_eq!(
        triggers["items"][0]["endpoint"],
        json!(format!("{}/api/events", server.base))
    );
    assert!(!triggers.to_string().contains(&token));
    // Only push triggers have tokens.
    let (status, _) = server
        .api(
            reqwest::Method::POST,
            "/workflows/release/triggers/nope/tokens",
            None,
        )
        .await;
    assert_eq!(status, 404);

    let push = |token: String, body: String| {
        let server = &server;
        async move {
            server
                .send(
                    reqwest::Method::POST,
                    "/api/events",
                    Some(&token),
                    Some(body),
                    &[],
                )
                .await
        }
    };
    let (status, accepted) = push(
        token.clone(),
        json!({"data": {"version": "1.2.3"}}).to_string(),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    // The schema's type is enforced, naming the field.
    let (status, wrong) = push(token.clone(), json!({"data": {"version": 7}}).to_string()).await;
    assert_eq!(
        (status, wrong["path"].clone()),
        (422, json!("data.version"))
    );
    // Wrong, forged, missing tokens: 401.
    let (status, _) = push("not-a-token".into(), "{}".into()).await;
    assert_eq!(status, 401);
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (status, _) = push(forged, json!({"data": {"version": "x"}}).to_string()).await;
    assert_eq!(status, 401);
    let (status, _) = server
        .send(
            reqwest::Method::POST,
            "/api/events",
            None,
            Some("{}".into()),
            &[],
        )
        .await;
    assert_eq!(status, 401);
    // An API key is not a push token.
    let key = server.key.clone();
    let (status, _) = push(key, json!({"data": {"version": "x"}}).to_string()).await;
    assert_eq!(status, 401);
    // Oversized: 413 before anything is read.
    let big = format!(
        "{{\"data\": {{\"version\": \"{}\"}}}}",
        "x".repeat(5 * 1024 * 1024)
    );
    let (status, _) = push(token.clone(), big).await;
    assert_eq!(status, 413);

    let runs = server.ended_runs("release", 1).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], json!("succeeded"));
    assert_eq!(runs[0]["parameters"], json!({"version": "1.2.3"}));

    // Revoked: 401, and the list shows when.
    let (status, _) = server
        .api(
            reqwest::Method::DELETE,
            &format!("/workflows/release/triggers/release/tokens/{token_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = push(token.clone(), json!({"data": {"version": "2"}}).to_string()).await;
    assert_eq!(status, 401);
    let (_, listed) = server
        .api(
            reqwest::Method::GET,
            "/workflows/release/triggers/release/tokens",
            None,
        )
        .await;
    assert!(listed["items"][0]["revokedAt"].is_string(), "{listed}");

    // Tokens survive a restart (the signing key is kept sealed in the store).
    let (_, kept) = server
        .api(
            reqwest::Method::POST,
            "/workflows/release/triggers/release/tokens",
            None,
        )
        .await;
    let kept = kept["token"].as_str().unwrap().to_owned();
    let key = server.stop().await;
    let server = Running::start(dir.path(), Some(key), None).await;
    let push = |token: String, body: String| {
        let server = &server;
        async move {
            server
                .send(
                    reqwest::Method::POST,
                    "/api/events",
                    Some(&token),
                    Some(body),
                    &[],
                )
                .await
        }
    };
    let (status, _) = push(kept, json!({"data": {"version": "3"}}).to_string()).await;
    assert_eq!(status, 202);
    let (status, _) = push(token, json!({"data": {"version": "4"}}).to_string()).await;
    assert_eq!(status, 401, "still revoked after a restart");
    server.ended_runs("release", 2).await;
    server.stop().await;
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0)
        .single()
        .unwrap()
}

const SCHEDULED: &str = r#"apiVersion: v1
parameters:
  mode: {default: none}
triggers:
- name: every-ten
  source: {type: schedule, schedule: '*/10 * * * *'}
  binding:
    parameters:
      mode: nightly
steps:
- name: echo
  image: gantry-test/busybox:latest
  input: ["echo mode $M"]
  env: {M: !Parameter mode}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_fire_on_the_injected_clock_once_across_restarts_and_catch_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let timer = Arc::new(ManualTimer::new(at(1, 3)));
    let server = Running::start(dir.path(), None, Some(timer.clone())).await;
    server.apply("tick", SCHEDULED).await;
    let (_, triggers) = server
        .api(reqwest::Method::GET, "/workflows/tick/triggers", None)
        .await;
    assert_eq!(triggers["items"][0]["schedule"], json!("*/10 * * * *"));
    // Give the scheduler a moment to load the new workflow, then cross 01:10.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.runs("tick").await.is_empty(),
        "nothing before the first fire time"
    );
    timer.set(at(1, 10));
    let runs = server.ended_runs("tick", 1).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["parameters"], json!({"mode": "nightly"}));
    assert_eq!(runs[0]["status"], json!("succeeded"));

    // A restart at the same time does not fire 01:10 again.
    let key = server.stop().await;
    let server = Running::start(dir.path(), Some(key), Some(timer.clone())).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.runs("tick").await.len(),
        1,
        "no duplicate after a restart"
    );

    // Down across 01:20, 01:30 and 01:40: one catch-up fire when back, for 01:40.
    let key = server.stop().await;
    timer.set(at(1, 45));
    let server = Running::start(dir.path(), Some(key), Some(timer.clone())).await;
    let runs = server.ended_runs("tick", 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.runs("tick").await.len(),
        2,
        "exactly one catch-up fire: {runs:?}"
    );
    let (_, triggers) = server
        .api(reqwest::Method::GET, "/workflows/tick/triggers", None)
        .await;
    assert_eq!(
        triggers["items"][0]["lastFireAt"],
        json!("2026-11-23T01:40:00.000Z")
    );
    // And the schedule goes on.
    timer.set(at(1, 50));
    server.ended_runs("tick", 3).await;
    server.stop().await;
}
