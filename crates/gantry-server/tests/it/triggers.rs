//! Triggers end to end over a real socket: the server bound on loopback with the process
//! runtime and SQLite, webhook and push events turned into runs, push tokens revoked, and
//! schedules driven by an injected clock across restarts. Webhook triggers with an image run
//! their container for real: in Docker (the local `gantry-test/busybox` image) and as a local
//! process, each a busybox `httpd` whose CGI script emits events through the metadata API.

use crate::PgDatabase;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gantry_server::server::{RuntimeChoice, Server, ServerConfig};
use gantry_server::triggers::container::{TriggerContainerConfig, TriggerContainers};
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
        Running::start_with(
            data,
            key,
            timer,
            RuntimeChoice::Process,
            TriggerContainerConfig::default(),
        )
        .await
    }

    async fn start_with(
        data: &Path,
        key: Option<String>,
        timer: Option<Arc<dyn Timer>>,
        runtime: RuntimeChoice,
        trigger_containers: TriggerContainerConfig,
    ) -> Running {
        Running::start_on(data, None, key, timer, runtime, trigger_containers).await
    }

    async fn start_on(
        data: &Path,
        database_url: Option<String>,
        key: Option<String>,
        timer: Option<Arc<dyn Timer>>,
        runtime: RuntimeChoice,
        trigger_containers: TriggerContainerConfig,
    ) -> Running {
        let server = Server::bind(ServerConfig {
            data_dir: data.to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url,
            runtime,
            public_url: None,
            timer,
            workers: Default::default(),
            work_dir: None,
            trigger_containers,
            sso: None,
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
            // A fresh connection per request: a refusal sent before the body is read (401, 413)
            // closes the server's side, and a pooled client could reuse it in that instant.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
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
    // Without an image, only `POST` to the hook's root is an event.
    let (status, body) = server
        .send(reqwest::Method::GET, &url, None, None, &[])
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (405, json!("method_not_allowed"))
    );
    let (status, _) = server
        .send(
            reqwest::Method::POST,
            &format!("{url}/below"),
            None,
            Some("{}".into()),
            &[],
        )
        .await;
    assert_eq!(status, 404);
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

    // Deleting the workflow closes its hook at once, although the hook's record and the parsed
    // workflow were just read (and are cached).
    let (status, _) = server
        .api(reqwest::Method::DELETE, "/workflows/build", None)
        .await;
    assert!(status == 200 || status == 204, "{status}");
    let (status, body) = post(
        json!({"action": "push", "id": "d9", "ref": "x", "sender": "y"}),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (404, json!("not_found")),
        "{body}"
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
    // Oversized: 413 before anything is read. The server may answer and close while the body
    // is still being sent, so the answer is read while the body is written.
    let big = format!(
        "{{\"data\": {{\"version\": \"{}\"}}}}",
        "x".repeat(5 * 1024 * 1024)
    );
    assert_eq!(
        oversized_post(&server.base, "/api/events", &token, big).await,
        413
    );

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

// ------------------------------------------------------------------ trigger containers

/// A webhook trigger with an image: busybox `httpd` on `$PORT` whose CGI script (`POST /`)
/// reads the body, reads its spec and emits an event through the metadata API, then answers
/// `201` with a header of its `env` and a body naming its instance (a UUID drawn at start).
/// Written for both runtimes: relative paths, and busybox applets called through `busybox`.
const CONTAINER_HOOK: &str = r##"apiVersion: v1
parameters:
  who: {}
triggers:
- name: hook
  source:
    type: webhook
    image: gantry-test/busybox:latest
    spec:
      greeting: hello
      token: !Secret hook_token
      aws: !Connection {type: aws, name: prod}
    env:
      REPLY_TAG: TAG_VALUE
    input:
    - mkdir -p www/cgi-bin
    - echo 'static page' > www/page.txt
    - export INSTANCE="$(cat /proc/sys/kernel/random/uuid)"
    - |
      cat > www/cgi-bin/index.cgi <<'CGI'
      #!/bin/sh
      body="$(head -c "${CONTENT_LENGTH:-0}")"
      who="$(echo "$body" | sed -n 's/.*"who": *"\([^"]*\)".*/\1/p')"
      spec="$(busybox wget -q -O- "$METADATA_API_URL/spec")"
      env="$(busybox wget -q -O- "$METADATA_API_URL/environment")"
      if ! busybox wget -q -O- --header 'Content-Type: application/json' \
          --post-data "{\"data\":{\"who\":\"$who\"},\"key\":\"delivery-$who\"}" \
          "$METADATA_API_URL/events" >/dev/null; then
        printf 'Status: 500 Internal Server Error\r\n\r\nthe event was refused'
        exit 0
      fi
      printf 'Status: 201 Created\r\nContent-Type: application/json\r\nX-Trigger-Tag: %s\r\n\r\n' "$REPLY_TAG"
      printf '{"instance":"%s","who":"%s","query":"%s","spec":%s,"env":%s}' "$INSTANCE" "$who" "$QUERY_STRING" "$spec" "$env"
      CGI
    - chmod +x www/cgi-bin/index.cgi
    - echo "trigger listening on $PORT"
    - exec busybox httpd -f -p "$PORT" -h www
  binding:
    parameters:
      who: ${event.who}
steps:
- name: greet
  image: gantry-test/busybox:latest
  input: ["echo hello $WHO"]
  env: {WHO: !Parameter who}
"##;

fn container_hook(tag: &str) -> String {
    CONTAINER_HOOK.replace("TAG_VALUE", tag)
}

/// A reply as the caller sees it.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

impl Running {
    async fn raw(&self, method: reqwest::Method, url: &str, body: Option<&str>) -> Reply {
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let res = req.send().await.expect("request");
        Reply {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap_or_default(),
        }
    }

    /// The URL of `workflow`'s first trigger.
    async fn hook_url(&self, workflow: &str) -> String {
        let (status, triggers) = self
            .api(
                reqwest::Method::GET,
                &format!("/workflows/{workflow}/triggers"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{triggers}");
        assert_eq!(
            triggers["items"][0]["image"],
            json!("gantry-test/busybox:latest")
        );
        triggers["items"][0]["url"]
            .as_str()
            .expect("a URL")
            .to_owned()
    }

    /// The secret and the connection the trigger's spec names.
    async fn set_trigger_secrets(&self, workflow: &str) {
        let (status, body) = self
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/workflows/{workflow}/secrets/hook_token"),
                Some(&self.key.clone()),
                Some("s3cret-value".into()),
                &[],
            )
            .await;
        assert_eq!(status, 204, "{body}");
        let (status, body) = self
            .api(
                reqwest::Method::PUT,
                "/connections/aws/prod",
                Some(
                    json!({"accessKeyID": "AKIAEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI"})
                        .to_string(),
                ),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }
}

/// What every reply of the CGI script must be for an event from `who`; returns the instance.
/// POSTs `{"who": who}` to a trigger container's hook, below its root with a query.
async fn post_who(server: &Running, url: &str, who: &str) -> Reply {
    server
        .raw(
            reqwest::Method::POST,
            &format!("{url}/?source=test"),
            Some(&json!({"who": who}).to_string()),
        )
        .await
}

fn assert_reply(reply: &Reply, who: &str, tag: &str) -> String {
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply
            .headers
            .get("x-trigger-tag")
            .and_then(|v| v.to_str().ok()),
        Some(tag)
    );
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body = reply.json();
    assert_eq!(body["who"], json!(who), "{body}");
    assert_eq!(body["query"], json!("source=test"), "{body}");
    // `GET /spec` from the container: the trigger's spec with its secret and connection opened.
    let spec = &body["spec"];
    assert_eq!(spec["value"]["greeting"], json!("hello"), "{spec}");
    assert_eq!(spec["value"]["token"], json!("s3cret-value"), "{spec}");
    assert_eq!(
        spec["value"]["aws"],
        json!({"accessKeyID": "AKIAEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI"}),
        "{spec}"
    );
    assert_eq!(spec["complete"], json!(true), "{spec}");
    assert_eq!(body["env"]["value"], json!({"REPLY_TAG": tag}), "{body}");
    body["instance"].as_str().expect("an instance").to_owned()
}

/// Checks in the store (the server stopped) that each run of `workflow` came from an event of
/// its trigger `hook` with the container's data and key.
async fn assert_events_stored(dir: &Path, workflow: &str, whos: &[&str]) {
    use gantry_store::Store;
    let store = gantry_store::SqliteStore::open(dir.join("gantry.db"))
        .await
        .expect("the store");
    let mut seen = Vec::new();
    let runs = store
        .list_runs(
            &gantry_store::RunFilter {
                workflow: Some(workflow.to_owned()),
                ..Default::default()
            },
            &gantry_store::PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await
        .expect("runs");
    for summary in runs.items {
        let gantry_store::RunOrigin::Event(event) = &summary.origin else {
            panic!("a run not started by an event: {summary:?}");
        };
        let event = store.get_event(event).await.expect("its event");
        assert_eq!(
            (event.workflow.as_str(), event.trigger.as_str()),
            (workflow, "hook")
        );
        let who = event.data["data"]["who"].as_str().expect("who").to_owned();
        assert_eq!(event.key, Some(format!("delivery-{who}")));
        assert_eq!(event.data["parameters"], json!({"who": who}));
        assert_eq!(event.run_id.as_deref(), Some(summary.id.as_str()));
        seen.push(who);
    }
    seen.sort();
    assert_eq!(seen, whos);
}

/// The ids of `workflow`'s trigger containers, from the Docker CLI.
async fn trigger_containers(workflow: &str) -> Vec<String> {
    let out = tokio::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=gantry.workflow={workflow}"),
            "--filter",
            "label=gantry.trigger=hook",
        ])
        .output()
        .await
        .expect("docker ps");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Starts a container labelled as `owner`'s trigger container of `workflow`; returns its id.
async fn leave_container(workflow: &str, owner: &str) -> String {
    let out = tokio::process::Command::new("docker")
        .args(["run", "-d", "--label", "gantry.managed=true", "--label"])
        .arg(format!("gantry.workflow={workflow}"))
        .args(["--label", "gantry.trigger=hook", "--label"])
        .arg(format!("gantry.owner={owner}"))
        .args(["gantry-test/busybox:latest", "sleep", "60"])
        .output()
        .await
        .expect("docker run");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn remove_container(id: &str) {
    let out = tokio::process::Command::new("docker")
        .args(["rm", "-f", id])
        .output()
        .await
        .expect("docker rm");
    assert!(out.status.success(), "{out:?}");
}

/// Waits (up to `limit`) until `check` holds.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {limit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_trigger_container_answers_emits_events_and_idles_out() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = format!("hooked-docker-{}", std::process::id());
    let idle = Duration::from_secs(3);
    let config = TriggerContainerConfig {
        idle_timeout: idle,
        ..Default::default()
    };
    // What a crash of this server left (its owner label), and another server's container.
    let owner = TriggerContainers::owner_of(dir.path());
    let leftover = leave_container(&workflow, &owner).await;
    let foreign = leave_container(&workflow, "another-server").await;
    let server = Running::start_with(dir.path(), None, None, RuntimeChoice::Docker, config).await;
    let left = trigger_containers(&workflow).await;
    assert!(
        !left.contains(&leftover),
        "a crash's leftover survived the start"
    );
    assert_eq!(
        left,
        std::slice::from_ref(&foreign),
        "another server's container was removed"
    );
    remove_container(&foreign).await;
    server.apply(&workflow, &container_hook("first")).await;
    server.set_trigger_secrets(&workflow).await;
    let url = server.hook_url(&workflow).await;
    assert!(
        trigger_containers(&workflow).await.is_empty(),
        "started before a request"
    );

    // Two first requests at once share one start.
    let post = |who: &'static str| post_who(&server, &url, who);
    let (ada, bob) = tokio::join!(post("ada"), post("bob"));
    let first = assert_reply(&ada, "ada", "first");
    assert_eq!(
        assert_reply(&bob, "bob", "first"),
        first,
        "one container for both"
    );
    let containers = trigger_containers(&workflow).await;
    assert_eq!(containers.len(), 1, "{containers:?}");

    // A later request reuses it; the path below the hook's root and other methods reach it.
    let again = post("cy").await;
    assert_eq!(
        assert_reply(&again, "cy", "first"),
        first,
        "no second start"
    );
    assert_eq!(trigger_containers(&workflow).await, containers);
    let page = server
        .raw(reqwest::Method::GET, &format!("{url}/page.txt"), None)
        .await;
    assert_eq!((page.status, page.body.trim()), (200, "static page"));
    let last_request = std::time::Instant::now();

    // Each event started a run of the workflow, which succeeded.
    let runs = server.ended_runs(&workflow, 3).await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    for run in &runs {
        assert_eq!(run["status"], json!("succeeded"), "{run}");
    }
    let ada_run = runs
        .iter()
        .find(|r| r["parameters"] == json!({"who": "ada"}))
        .expect("ada's run");
    let (_, logs) = server
        .api(
            reqwest::Method::GET,
            &format!("/runs/{}/logs", ada_run["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(logs.to_string().contains("hello ada"), "{logs}");

    // Idle for the configured time: stopped and removed; the next request starts it again.
    eventually(idle * 4, "the idle container stopped", || {
        let workflow = workflow.clone();
        async move { trigger_containers(&workflow).await.is_empty() }
    })
    .await;
    assert!(
        last_request.elapsed() >= idle,
        "stopped {:?} after the last request",
        last_request.elapsed()
    );
    let restarted = post("dee").await;
    let second = assert_reply(&restarted, "dee", "first");
    assert_ne!(second, first, "a new container after the idle stop");

    // A changed trigger definition stops the old container; the next request gets the new one.
    server.apply(&workflow, &container_hook("second")).await;
    eventually(
        Duration::from_secs(20),
        "the changed trigger's container stopped",
        || {
            let workflow = workflow.clone();
            async move { trigger_containers(&workflow).await.is_empty() }
        },
    )
    .await;
    let changed = post("eve").await;
    assert_ne!(assert_reply(&changed, "eve", "second"), second);

    // A graceful stop removes the container.
    assert_eq!(trigger_containers(&workflow).await.len(), 1);
    server.ended_runs(&workflow, 5).await;
    server.stop().await;
    assert!(
        trigger_containers(&workflow).await.is_empty(),
        "left after the stop"
    );
    assert_events_stored(dir.path(), &workflow, &["ada", "bob", "cy", "dee", "eve"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_trigger_answers_emits_events_and_idles_out() {
    let dir = tempfile::tempdir().unwrap();
    let idle = Duration::from_secs(2);
    let config = TriggerContainerConfig {
        idle_timeout: idle,
        ..Default::default()
    };
    let server = Running::start_with(dir.path(), None, None, RuntimeChoice::Process, config).await;
    server.apply("hooked", &container_hook("first")).await;
    server.set_trigger_secrets("hooked").await;
    let url = server.hook_url("hooked").await;
    let post = |who: &'static str| post_who(&server, &url, who);
    let (ada, bob) = tokio::join!(post("ada"), post("bob"));
    let first = assert_reply(&ada, "ada", "first");
    assert_eq!(
        assert_reply(&bob, "bob", "first"),
        first,
        "one process for both"
    );
    assert_eq!(assert_reply(&post("cy").await, "cy", "first"), first);

    let runs = server.ended_runs("hooked", 3).await;
    for run in &runs {
        assert_eq!(run["status"], json!("succeeded"), "{run}");
    }

    // Idle: the next request is answered by a new process.
    tokio::time::sleep(idle * 2).await;
    let second = assert_reply(&post("dee").await, "dee", "first");
    assert_ne!(second, first, "a new process after the idle stop");

    // A changed definition: the next request gets the new one.
    server.apply("hooked", &container_hook("second")).await;
    assert_ne!(assert_reply(&post("eve").await, "eve", "second"), second);
    server.ended_runs("hooked", 5).await;
    server.stop().await;
    assert_events_stored(dir.path(), "hooked", &["ada", "bob", "cy", "dee", "eve"]).await;
}

const FAILING_HOOK: &str = r#"apiVersion: v1
triggers:
- name: hook
  source:
    type: webhook
    image: gantry-test/busybox:latest
    env:
      TOKEN: !Secret never_set
    input: ["exec busybox httpd -f -p \"$PORT\""]
- name: quits
  source:
    type: webhook
    image: gantry-test/busybox:latest
    input: ["echo 'not today' >&2", "exit 3"]
steps:
- name: s
  image: gantry-test/busybox:latest
  input: ["true"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_container_that_cannot_serve_gets_a_clear_error_and_no_internals() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(dir.path(), None, None).await;
    server.apply("broken", FAILING_HOOK).await;
    let (_, triggers) = server
        .api(reqwest::Method::GET, "/workflows/broken/triggers", None)
        .await;
    let url = |i: usize| triggers["items"][i]["url"].as_str().unwrap().to_owned();

    // Its env names a secret that does not exist: not started; the name stays in the log.
    let reply = server.raw(reqwest::Method::POST, &url(0), Some("{}")).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["code"], json!("trigger_unavailable"));
    assert!(!reply.body.contains("never_set"), "{}", reply.body);

    // It exits before it listens: 502, and it is tried again at the next request.
    for _ in 0..2 {
        let reply = server.raw(reqwest::Method::POST, &url(1), Some("{}")).await;
        assert_eq!(reply.status, 502, "{}", reply.body);
        assert_eq!(
            reply.json(),
            json!({
                "code": "trigger_failed",
                "message": "the trigger's container exited before it listened on $PORT",
                "path": null
            })
        );
    }
    server.stop().await;
}

// ------------------------------------------------------------------ PostgreSQL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_webhook_starts_a_run_and_it_survives_a_restart() {
    let Ok(base) = std::env::var("GANTRY_TEST_POSTGRES_URL") else {
        eprintln!("skipped: GANTRY_TEST_POSTGRES_URL is not set (.ci/run sets it)");
        return;
    };
    let db = PgDatabase::create(&base).await;
    let dir = tempfile::tempdir().unwrap();
    let start = |key: Option<String>| {
        Running::start_on(
            dir.path(),
            Some(db.url.clone()),
            key,
            None,
            RuntimeChoice::Process,
            TriggerContainerConfig::default(),
        )
    };
    let server = start(None).await;
    server
        .apply(
            "pg",
            "apiVersion: v1\nparameters:\n  who: {}\ntriggers:\n- name: hook\n  source: {type: webhook}\n  \
             binding:\n    parameters:\n      who: !Data who\nsteps:\n- name: hello\n  image: none\n  \
             input: ['echo \"hello $WHO\"']\n  env:\n    WHO: !Parameter who\n",
        )
        .await;
    let (_, triggers) = server
        .api(reqwest::Method::GET, "/workflows/pg/triggers", None)
        .await;
    let url = triggers["items"][0]["url"]
        .as_str()
        .expect("a URL")
        .to_owned();
    // The hook's path; the port changes with the restart.
    let hook = url
        .strip_prefix(&server.base)
        .expect("on this server")
        .to_owned();
    let deliver = |server: &Running| {
        let url = format!("{}{hook}", server.base);
        let http = server.http.clone();
        async move {
            let res = http
                .post(url)
                .header("content-type", "application/json")
                .header("idempotency-key", "delivery-1")
                .body(r#"{"who":"postgres"}"#)
                .send()
                .await
                .expect("deliver");
            let status = res.status().as_u16();
            (
                status,
                serde_json::from_str::<Value>(&res.text().await.expect("answer"))
                    .expect("JSON answer"),
            )
        }
    };
    let (status, first) = deliver(&server).await;
    assert_eq!(
        (status, first["created"].clone()),
        (202, json!(true)),
        "{first}"
    );
    let runs = server.ended_runs("pg", 1).await;
    assert_eq!(runs[0]["status"], json!("succeeded"), "{runs:?}");
    let run_id = runs[0]["id"].as_str().expect("a run id").to_owned();
    let (status, logs) = server
        .api(reqwest::Method::GET, &format!("/runs/{run_id}/logs"), None)
        .await;
    assert_eq!(status, 200, "{logs}");
    assert!(logs.to_string().contains("hello postgres"), "{logs}");
    let key = server.stop().await;

    // Another start on the same database: the run is there, and the same delivery is the same
    // event with the same run.
    let server = start(Some(key)).await;
    let runs = server.runs("pg").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["id"], json!(run_id));
    let (status, again) = deliver(&server).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        (
            again["created"].clone(),
            again["id"].clone(),
            again["runId"].clone()
        ),
        (json!(false), first["id"].clone(), json!(run_id))
    );
    server.stop().await;
    drop(db);
}

/// POSTs `body` over a raw connection and returns the answer's status, reading the answer while
/// the body is written: a server refusing a body by its size may answer before it is all sent
/// and close, which an HTTP client reports as a failed write rather than as the answer.
async fn oversized_post(base: &str, path: &str, token: &str, body: String) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let writing = tokio::spawn(async move {
        // A write refused once the server has answered is expected.
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(body.as_bytes()).await;
    });
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), reader.read(&mut chunk))
            .await
            .expect("an answer within 30 s")
            .expect("read");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&chunk[..n]);
    }
    writing.abort();
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {line:?}"))
}
