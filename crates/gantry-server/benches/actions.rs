//! Self-service action runs through the API as served over loopback, on SQLite and PostgreSQL,
//! invoking a signed webhook whose receiver (in this process, on loopback) notes each arrival.
//!
//! 1. Latency: one client asks for `GANTRY_BENCH_RUNS` runs (default 500) one after another;
//!    each is timed from the request until its signed webhook request reaches the receiver.
//!    Baseline, in the same run: the same count of requests of the same size, signed the same
//!    way, sent by the client straight to the receiver (the HTTP hop alone).
//! 2. Throughput: 16 clients ask for `4 × GANTRY_BENCH_RUNS` runs; runs/s until every webhook
//!    request has arrived. Baseline, in the same run and database: the same count of entity
//!    creations through the API at 16 clients (an audited catalog write each).
//!
//! `cargo bench -p gantry-server --bench actions`; `GANTRY_BENCH_BACKENDS` (default
//! `sqlite,postgres`; PostgreSQL needs `GANTRY_TEST_POSTGRES_URL`). Prints readable lines and
//! one JSON line per backend.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod support;
use support::{each_backend, env_usize, open, pct, Backend};

use axum::http::HeaderMap;
use gantry_server::api::router;
use gantry_server::server::issue_api_key;
use serde_json::{json, Value};
use tokio::sync::Notify;

const CLIENTS: usize = 16;
const SECRET: &[u8] = b"bench-signing-key";

/// When each request reached the receiver, by the id it carried.
#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<String, Instant>>,
    count: AtomicUsize,
    changed: Notify,
}

impl Arrivals {
    async fn wait_for(&self, id: &str) -> Instant {
        loop {
            let notified = self.changed.notified();
            if let Some(at) = self.at.lock().unwrap().get(id) {
                return *at;
            }
            notified.await;
        }
    }

    async fn wait_count(&self, n: usize) {
        loop {
            let notified = self.changed.notified();
            if self.count.load(Ordering::SeqCst) >= n {
                return;
            }
            notified.await;
        }
    }
}

/// A receiver that checks each signature and notes the arrival.
async fn receiver(arrivals: Arc<Arrivals>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let arrivals = arrivals.clone();
            async move {
                let now = Instant::now();
                let signature = headers
                    .get("x-gantry-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                gantry_catalog::action::verify(
                    SECRET,
                    signature,
                    &body,
                    chrono::Utc::now().timestamp(),
                    300,
                )
                .expect("a good signature");
                let id = headers
                    .get("x-gantry-action-run")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                arrivals.at.lock().unwrap().insert(id, now);
                arrivals.count.fetch_add(1, Ordering::SeqCst);
                arrivals.changed.notify_waiters();
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: &str) -> Value {
    let res = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = res.status();
    let body: Value = serde_json::from_slice(&res.bytes().await.expect("body")).unwrap_or_default();
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

/// `n` POSTs of `body(i)` to `url(i)` from `CLIENTS` clients.
async fn posts(
    client: &reqwest::Client,
    key: &str,
    n: usize,
    request: Arc<dyn Fn(usize) -> (String, String) + Send + Sync>,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, next, key, request) = (
                client.clone(),
                next.clone(),
                key.to_owned(),
                request.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (url, body) = request(i);
                    post(&client, &url, &key, &body).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client");
    }
}

async fn bench(name: &str, backend: Backend, dir: &std::path::Path, n: usize) {
    let store = open(&backend).await;
    let key = issue_api_key(
        store.as_ref(),
        "admin",
        &gantry_store::Audit::system("benchmark", chrono::Utc::now()),
    )
    .await
    .expect("key");
    let state = support::state(store.clone(), dir).await;
    let base = support::serve(router(state)).await;
    let arrivals = Arc::new(Arrivals::default());
    let hook = receiver(arrivals.clone()).await;
    let client = reqwest::Client::new();
    let action = json!({
        "title": "Create a repository", "operation": "create",
        "inputs": {"properties": {"name": {"type": "string", "pattern": "^[a-z0-9-]+$"}}, "required": ["name"]},
        "invocation": {"webhook": {"url": hook, "secret": {"secret": "signing"}},
                       "parameters": {"repo": "{{ inputs.name }}"}}
    });
    let res = client
        .put(format!("{base}/actions/create-repo"))
        .bearer_auth(&key)
        .body(action.to_string())
        .send()
        .await
        .expect("put action");
    assert!(
        res.status().is_success(),
        "{}",
        res.text().await.unwrap_or_default()
    );
    let res = client
        .put(format!("{base}/actions/create-repo/secrets/signing"))
        .bearer_auth(&key)
        .body(SECRET.to_vec())
        .send()
        .await
        .expect("put secret");
    assert!(res.status().is_success());
    post(
        &client,
        &format!("{base}/blueprints"),
        &key,
        r#"{"identifier": "repo"}"#,
    )
    .await;

    // 1. Latency, one run at a time, and the HTTP hop alone.
    let runs_url = format!("{base}/actions/create-repo/runs");
    let mut latencies = Vec::with_capacity(n);
    let mut sample = String::new();
    for i in 0..n {
        let body = json!({"inputs": {"name": format!("repo-{i}")}}).to_string();
        let sent = Instant::now();
        let run = post(&client, &runs_url, &key, &body).await;
        let id = run["id"].as_str().expect("id").to_owned();
        let arrived = arrivals.wait_for(&id).await;
        latencies.push(arrived.duration_since(sent));
        if sample.is_empty() {
            sample = json!({"id": id, "action": "create-repo", "entity": null,
                            "inputs": {"name": "repo-0"}, "parameters": {"repo": "repo-0"},
                            "user": {"name": "admin", "teams": [], "role": "admin"},
                            "report": {"url": format!("{base}/x"), "token": "gar_0000000000000000000000000000000000000000000000000000000000000000"}})
            .to_string();
        }
    }
    latencies.sort();
    let mut hop = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("baseline-{i}");
        let sent = Instant::now();
        let signature =
            gantry_catalog::action::sign(SECRET, chrono::Utc::now().timestamp(), sample.as_bytes());
        let res = client
            .post(&hook)
            .header("content-type", "application/json")
            .header("x-gantry-signature", signature)
            .header("x-gantry-action-run", &id)
            .body(sample.clone())
            .send()
            .await
            .expect("hop");
        assert!(res.status().is_success());
        let arrived = arrivals.wait_for(&id).await;
        hop.push(arrived.duration_since(sent));
    }
    hop.sort();
    println!(
        "{name}: run requested → signed webhook received, {n} one at a time: p50 {:.2} ms, p99 {:.2} ms \
         (baseline, the HTTP hop alone: p50 {:.2} ms, p99 {:.2} ms)",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        pct(&hop, 0.5),
        pct(&hop, 0.99)
    );

    // 2. Throughput at 16 clients, and entity creations as the baseline.
    let many = 4 * n;
    let before = arrivals.count.load(Ordering::SeqCst);
    let started = Instant::now();
    let url = runs_url.clone();
    posts(
        &client,
        &key,
        many,
        Arc::new(move |i| {
            (
                url.clone(),
                json!({"inputs": {"name": format!("many-{i}")}}).to_string(),
            )
        }),
    )
    .await;
    arrivals.wait_count(before + many).await;
    let runs_per_s = many as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let url = format!("{base}/blueprints/repo/entities");
    posts(
        &client,
        &key,
        many,
        Arc::new(move |i| {
            (
                url.clone(),
                json!({"identifier": format!("e-{i}")}).to_string(),
            )
        }),
    )
    .await;
    let entities_per_s = many as f64 / started.elapsed().as_secs_f64();
    println!(
        "{name}: {many} runs at {CLIENTS} clients, asked for until every webhook arrived: \
         {runs_per_s:.0} runs/s (baseline, entity creations: {entities_per_s:.0}/s, ratio {:.2})",
        runs_per_s / entities_per_s
    );
    println!(
        "{}",
        json!({
            "bench": "actions", "backend": name, "runs": n,
            "latency_p50_ms": pct(&latencies, 0.5), "latency_p99_ms": pct(&latencies, 0.99),
            "hop_p50_ms": pct(&hop, 0.5), "hop_p99_ms": pct(&hop, 0.99),
            "runs_per_s": runs_per_s, "entities_per_s": entities_per_s,
        })
    );
}

fn main() {
    let n = env_usize("GANTRY_BENCH_RUNS", 500);
    each_backend(|name, backend, dir| async move { bench(&name, backend, &dir, n).await });
}
