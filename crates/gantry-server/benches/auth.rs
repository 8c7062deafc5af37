//! What authentication and authorisation cost a request: `GET /api/v1/workflows/{name}` from 8
//! concurrent keep-alive clients over loopback, through the API as served (the guard resolves
//! the key, checks its hash and the route's permission) against the same routes built with no
//! guard at all, in alternating rounds in one process. Prints readable lines and one JSON line.
//!
//! `cargo bench -p gantry-server --bench auth`; `GANTRY_BENCH_REQUESTS` (default 20,000 per
//! round), `GANTRY_BENCH_ROUNDS` (default 5), `GANTRY_BENCH_CONCURRENCY` (default 8).
//! The key belongs to a user (not the first-start admin key), so the principal is resolved with
//! its role and teams. Target: under 5% overhead at 8 clients.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{audit, env_usize};

use gantry_server::api::{router, unguarded_router_for_benchmarks, ApiState};
use gantry_server::server::issue_api_key;
use gantry_store::{SqliteStore, Store, User};

const HELLO: &str = "steps:\n- name: greet\n  image: alpine\n  input: [echo hi]\n";

async fn state(dir: &std::path::Path) -> (ApiState, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.join("gantry.db"))
            .await
            .expect("store"),
    );
    (support::state(store.clone(), dir).await, store)
}

/// The workflow every request reads, on the served app.
async fn serve(app: axum::Router) -> String {
    format!("{}/workflows/hello", support::serve(app).await)
}

/// `n` GETs from `c` clients; the wall time and every latency.
async fn load(url: &str, key: &str, n: usize, c: usize) -> (Duration, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            let (client, next, url, key) =
                (client.clone(), next.clone(), url.to_owned(), key.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let sent = Instant::now();
                    let res = client
                        .get(&url)
                        .bearer_auth(&key)
                        .send()
                        .await
                        .expect("request");
                    let status = res.status();
                    let _ = res.bytes().await.expect("body");
                    assert_eq!(status, 200);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    let elapsed = start.elapsed();
    all.sort();
    (elapsed, all)
}

fn ms(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env_usize("GANTRY_BENCH_REQUESTS", 20_000);
    let rounds = env_usize("GANTRY_BENCH_ROUNDS", 5);
    let c = env_usize("GANTRY_BENCH_CONCURRENCY", 8);
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, store) = state(dir.path()).await;
    store
        .create_user(
            &User {
                id: "bench".into(),
                email: "bench@example.com".into(),
                name: "Bench".into(),
                role: "viewer".into(),
                password_hash: None,
                created_at: chrono::Utc::now(),
                disabled_at: None,
            },
            &audit(),
        )
        .await
        .expect("user");
    let key = issue_api_key(store.as_ref(), "user:bench", &audit())
        .await
        .expect("key");
    let guarded = serve(router(state.clone())).await;
    let open = serve(unguarded_router_for_benchmarks(state)).await;
    let admin = issue_api_key(store.as_ref(), "admin", &audit())
        .await
        .expect("key");
    let put = reqwest::Client::new()
        .put(&guarded)
        .bearer_auth(&admin)
        .body(HELLO)
        .send()
        .await
        .expect("apply");
    assert!(put.status().is_success());
    // Warm both paths.
    load(&guarded, &key, 500, c).await;
    load(&open, &key, 500, c).await;
    let (mut with, mut without, mut p99_with, mut p99_without) = (vec![], vec![], vec![], vec![]);
    println!("GET /api/v1/workflows/hello, {n} requests from {c} clients, {rounds} rounds");
    for round in 0..rounds {
        // Alternate which goes first.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for auth in order {
            let (elapsed, lat) = load(if auth { &guarded } else { &open }, &key, n, c).await;
            let per_s = n as f64 / elapsed.as_secs_f64();
            println!(
                "  round {round} {:<14} {per_s:>8.0}/s  p50 {:>5.2} ms  p99 {:>5.2} ms",
                if auth { "with auth" } else { "without auth" },
                ms(&lat, 0.5),
                ms(&lat, 0.99)
            );
            if auth {
                with.push(per_s);
                p99_with.push(ms(&lat, 0.99));
            } else {
                without.push(per_s);
                p99_without.push(ms(&lat, 0.99));
            }
        }
    }
    let (w, o) = (median(with), median(without));
    let overhead = 1.0 - w / o;
    println!(
        "  medians: with auth {w:.0}/s, without {o:.0}/s: overhead {:.1}% (target under 5%)",
        overhead * 100.0
    );
    println!(
        "{{\"bench\":\"auth_overhead\",\"concurrency\":{c},\"requests\":{n},\"rounds\":{rounds},\
         \"with_auth_per_s\":{w:.0},\"without_auth_per_s\":{o:.0},\"overhead\":{overhead:.4},\
         \"p99_with_ms\":{:.3},\"p99_without_ms\":{:.3},\"target_overhead\":0.05}}",
        median(p99_with),
        median(p99_without)
    );
}
