//! The catalog at size, through the API as served over loopback, on SQLite and on PostgreSQL.
//!
//! 1. 100,000 entities of 3 blueprints (team, service, deployment) with 3 relations each,
//!    bulk-upserted through `POST /api/v1/entities/bulk` in requests of 5,000, until all are
//!    queryable with their relations resolved (a query through two relations counts them all).
//!    Baseline, in the same run and database: a raw loop of one plain `INSERT` per row of the
//!    same rows (JSON text), committed every 5,000 rows. Target: under 20 s.
//! 2. Then, at 16 concurrent clients: get by identifier, and a filtered, sorted page of 50:
//!    p99 under 10 ms; facet counts over all 100,000 entities: under 100 ms.
//!
//! `cargo bench -p gantry-server --bench catalog`; `GANTRY_BENCH_ENTITIES` (default 100,000),
//! `GANTRY_BENCH_BACKENDS` (default `sqlite,postgres`; PostgreSQL needs
//! `GANTRY_TEST_POSTGRES_URL`). Prints readable lines and one JSON line per backend.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{audit, each_backend, env_usize, open, pct, Backend};

use gantry_server::api::router;
use gantry_server::server::issue_api_key;
use serde_json::{json, Value};
use sqlx::Connection;

const BATCH: usize = 5_000;
const CLIENTS: usize = 16;

// The catalog both catalog benchmarks load.
#[path = "../../gantry-catalog/benches/data/catalog.rs"]
mod dataset;
use dataset::{blueprints, entities};

/// The baseline: one plain INSERT per row of the same JSON, committed every `BATCH` rows.
async fn raw_inserts(backend: &Backend, rows: &[Value]) -> Duration {
    let texts: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["blueprint"].as_str().unwrap_or_default().to_owned(),
                r["identifier"].as_str().unwrap_or_default().to_owned(),
                r.to_string(),
            )
        })
        .collect();
    match backend {
        Backend::Sqlite(dir) => {
            let url = format!("sqlite://{}?mode=rwc", dir.join("raw.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("raw");
            for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"] {
                sqlx::query(pragma)
                    .execute(&mut conn)
                    .await
                    .expect("pragma");
            }
            sqlx::query("CREATE TABLE raw (blueprint TEXT, identifier TEXT, body TEXT, PRIMARY KEY (blueprint, identifier))")
                .execute(&mut conn)
                .await
                .expect("table");
            let start = Instant::now();
            for chunk in texts.chunks(BATCH) {
                let mut tx = conn.begin().await.expect("begin");
                for (b, i, body) in chunk {
                    sqlx::query("INSERT INTO raw VALUES (?, ?, ?)")
                        .bind(b)
                        .bind(i)
                        .bind(body)
                        .execute(&mut *tx)
                        .await
                        .expect("insert");
                }
                tx.commit().await.expect("commit");
            }
            start.elapsed()
        }
        Backend::Postgres { url, schema } => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("raw");
            sqlx::query(&format!("SET search_path TO \"{schema}\""))
                .execute(&mut conn)
                .await
                .expect("schema");
            sqlx::query("CREATE TABLE raw (blueprint TEXT, identifier TEXT, body TEXT, PRIMARY KEY (blueprint, identifier))")
                .execute(&mut conn)
                .await
                .expect("table");
            let start = Instant::now();
            for chunk in texts.chunks(BATCH) {
                let mut tx = conn.begin().await.expect("begin");
                for (b, i, body) in chunk {
                    sqlx::query("INSERT INTO raw VALUES ($1, $2, $3)")
                        .bind(b)
                        .bind(i)
                        .bind(body)
                        .execute(&mut *tx)
                        .await
                        .expect("insert");
                }
                tx.commit().await.expect("commit");
            }
            start.elapsed()
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: &Value) -> Value {
    let res = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = res.status();
    let body: Value = serde_json::from_slice(&res.bytes().await.expect("body")).expect("json");
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

/// `n` GETs from `CLIENTS` clients; `path(i)` names the i-th. Latencies sorted.
async fn load(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    n: usize,
    path: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Vec<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, next, base, key, path) = (
                client.clone(),
                next.clone(),
                base.to_owned(),
                key.to_owned(),
                path.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let sent = Instant::now();
                    let res = client
                        .get(format!("{base}{}", path(i)))
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
        all.extend(t.await.expect("client"));
    }
    all.sort();
    all
}

async fn bench(name: &str, backend: Backend, dir: &std::path::Path, n: usize) {
    let store = open(&backend).await;
    let key = issue_api_key(store.as_ref(), "admin", &audit())
        .await
        .expect("key");
    let base = support::serve(router(support::state(store.clone(), dir).await)).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("client");
    for bp in blueprints() {
        post(&client, &format!("{base}/blueprints"), &key, &bp).await;
    }
    let rows = entities(n);
    let deployments = rows
        .iter()
        .filter(|r| r["blueprint"] == "deployment")
        .count();

    let baseline = raw_inserts(&backend, &rows).await;

    let start = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let answer = post(
            &client,
            &format!("{base}/entities/bulk"),
            &key,
            &json!({ "entities": chunk }),
        )
        .await;
        let failed: Vec<&Value> = answer["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["status"] == "error")
            .take(3)
            .collect();
        assert!(
            failed.is_empty(),
            "{} failed, e.g. {failed:?}",
            answer["failed"]
        );
    }
    // Queryable with relations resolved: every deployment reaches a team through two hops.
    let found = post(
        &client,
        &format!("{base}/entities/search"),
        &key,
        &json!({"query": "blueprint = deployment and service.owner isNotEmpty", "limit": 1}),
    )
    .await;
    let upsert = start.elapsed();
    assert_eq!(found["total"], deployments, "{found}");

    let gets = load(
        &client,
        &base,
        &key,
        4_000,
        Arc::new(move |i| {
            format!(
                "/blueprints/service/entities/svc-{}",
                (i * 7919) % (n * 2 / 5)
            )
        }),
    )
    .await;
    let pages = load(
        &client,
        &base,
        &key,
        2_000,
        Arc::new(|i| {
            let q = [
                "language%20%3D%20rust",
                "language%20%3D%20go",
                "tier%20%3C%3D%202",
            ][i % 3];
            format!(
                "/blueprints/service/entities?q={q}%20and%20cost%20%3E%20{}&sort=-cost&limit=50",
                i % 100
            )
        }),
    )
    .await;
    let facets = load(
        &client,
        &base,
        &key,
        64,
        Arc::new(|_| {
            "/blueprints/deployment/entities?limit=1&facets=environment,replicas".to_string()
        }),
    )
    .await;
    let mut all_facets = Vec::new();
    for _ in 0..8 {
        let sent = Instant::now();
        let body = post(
            &client,
            &format!("{base}/entities/search"),
            &key,
            &json!({"limit": 1, "facets": ["blueprint", "language", "environment"]}),
        )
        .await;
        all_facets.push(sent.elapsed());
        assert_eq!(body["total"], n);
    }
    all_facets.sort();

    let ratio = upsert.as_secs_f64() / baseline.as_secs_f64();
    println!(
        "{name}: {n} entities upserted through the API and queryable in {:.2} s \
         (raw insert loop of the same rows: {:.2} s, ratio {ratio:.2}); target < 20 s",
        upsert.as_secs_f64(),
        baseline.as_secs_f64()
    );
    println!(
        "{name}: c={CLIENTS} get by identifier p50 {:.2} ms p99 {:.2} ms; filtered sorted page \
         of 50 p50 {:.2} ms p99 {:.2} ms (target p99 < 10 ms)",
        pct(&gets, 0.5),
        pct(&gets, 0.99),
        pct(&pages, 0.5),
        pct(&pages, 0.99)
    );
    println!(
        "{name}: facets over all {n} entities p50 {:.1} ms max {:.1} ms; over one blueprint at \
         c={CLIENTS} p99 {:.1} ms (target < 100 ms)",
        pct(&all_facets, 0.5),
        pct(&all_facets, 1.0),
        pct(&facets, 0.99)
    );
    println!(
        "{}",
        json!({
            "bench": "catalog", "backend": name, "entities": n,
            "upsert_s": upsert.as_secs_f64(), "raw_insert_s": baseline.as_secs_f64(),
            "upsert_vs_raw": ratio,
            "get_p50_ms": pct(&gets, 0.5), "get_p99_ms": pct(&gets, 0.99),
            "page_p50_ms": pct(&pages, 0.5), "page_p99_ms": pct(&pages, 0.99),
            "facets_all_p50_ms": pct(&all_facets, 0.5), "facets_all_max_ms": pct(&all_facets, 1.0),
        })
    );
}

fn main() {
    let n = env_usize("GANTRY_BENCH_ENTITIES", 100_000);
    each_backend(|name, backend, dir| async move { bench(&name, backend, &dir, n).await });
}
