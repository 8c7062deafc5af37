//! Scorecards and automations at size, through the API as served over loopback, on SQLite and
//! on PostgreSQL.
//!
//! The catalog: 10,000 teams (nine in ten with an on-call rotation) and 100,000 services, each
//! owned by a team. A scorecard of 10 rules over three levels reads plain properties, `$team`,
//! and the owner's rotation through the relation.
//!
//! 1. Full evaluation: `PUT /scorecards/{id}` answers once all 100,000 services are evaluated.
//!    Baseline, in the same run: the same 10 rules asked as 10 catalog searches through
//!    `POST /entities/search` (what counting the passes without scorecards costs).
//!    Target: under 2 s. Then the time until every row is stored, which the next part waits
//!    for.
//! 2. Freshness: 1,000 updates from 8 clients, each `PATCH` flipping a Gold rule and then
//!    reading the entity's level through `GET …/scorecards`; the latency is from the `PATCH`
//!    sent to the new level read. Baseline, in the same run before the scorecard exists: the
//!    same `PATCH` then `GET` of the entity. Target: p99 under 50 ms.
//! 3. Automations: 5 automations subscribed to every service update, each condition holding
//!    for a different 1 in 50 updates (jq over the event), each firing upserting an entity.
//!    10,000 updates offered at 1,000/s (each sent at its time, at most 64 unanswered); the
//!    rate is the updates over the time until the last was answered. Then every expected
//!    firing must be stored and every upserted entity present (no event lost). Baseline: the
//!    same updates offered with no automation.
//!
//! `cargo bench -p gantry-server --bench scorecards`; `GANTRY_BENCH_ENTITIES` (services,
//! default 100,000), `GANTRY_BENCH_UPDATES` (default 10,000), `GANTRY_BENCH_BACKENDS`
//! (default `sqlite,postgres`; PostgreSQL needs `GANTRY_TEST_POSTGRES_URL`). Prints readable
//! lines and one JSON line per backend.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{audit, each_backend, env_usize, open, pct, Backend};

use gantry_server::api::router;
use gantry_server::server::issue_api_key;
use gantry_store::FiringFilter;
use serde_json::{json, Value};

const BATCH: usize = 5_000;
const CLIENTS: usize = 8;
const RATE: f64 = 1_000.0;
/// Updates sent and not yet answered, at most, while offering `RATE`.
const IN_FLIGHT: usize = 64;

fn blueprints() -> Vec<Value> {
    vec![
        json!({"identifier": "team", "schema": {"properties": {"oncall": {"type": "string"}}}}),
        json!({"identifier": "service", "schema": {"properties": {
            "language": {"type": "string"}, "tier": {"type": "integer"},
            "cost": {"type": "number"}, "url": {"type": "string"},
            "docs": {"type": "string"}, "rev": {"type": "integer"}}},
            "relations": {"owner": {"target": "team"}}}),
        json!({"identifier": "alert", "schema": {"properties": {
            "service": {"type": "string"}, "rev": {"type": "integer"}}}}),
    ]
}

fn teams(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut t =
                json!({"blueprint": "team", "identifier": format!("team-{i}"), "properties": {}});
            if i % 10 != 0 {
                t["properties"]["oncall"] = json!(format!("pd-{i}"));
            }
            t
        })
        .collect()
}

fn services(n: usize, teams: usize) -> Vec<Value> {
    let languages = ["rust", "go", "python", "java"];
    (0..n)
        .map(|i| {
            let team = format!("team-{}", i % teams);
            let mut s = json!({"blueprint": "service", "identifier": format!("svc-{i}"),
                "team": [team.clone()],
                "properties": {"language": languages[i % 4], "tier": i % 4 + 1,
                    "cost": (i % 1000) as f64 * 1.5, "url": format!("https://svc-{i}.example.com"),
                    "rev": 0},
                "relations": {"owner": team}});
            if i % 3 != 0 {
                s["properties"]["docs"] = json!(format!("https://docs/svc-{i}"));
            }
            s
        })
        .collect()
}

/// Ten rules: three at Bronze, four at Silver (one through the owner relation), three at Gold.
fn scorecard() -> Value {
    let rule = |id: &str, level: &str, q: &str| json!({"identifier": id, "title": id, "level": level, "where": q});
    json!({
        "title": "Production readiness",
        "blueprint": "service",
        "levels": ["Basic", "Bronze", "Silver", "Gold"],
        "rules": [
            rule("has-owner", "Bronze", "owner isNotEmpty"),
            rule("has-team", "Bronze", "$team isNotEmpty"),
            rule("known-language", "Bronze", "language in [rust, go, python, java]"),
            rule("tiered", "Silver", "tier between 1 and 3"),
            rule("https", "Silver", "url beginsWith \"https://\""),
            rule("on-call", "Silver", "owner.oncall isNotEmpty"),
            rule("affordable", "Silver", "cost < 1400"),
            rule("documented", "Gold", "docs isNotEmpty"),
            rule("not-java", "Gold", "language != java"),
            rule("released", "Gold", "rev >= 0"),
        ]
    })
}

/// Services that reach Gold once documented: every other rule passes.
fn gold_candidates(n: usize, teams: usize) -> Vec<usize> {
    (0..n)
        .filter(|i| i % 4 != 3 && i % 1000 < 900 && !(i % teams).is_multiple_of(10))
        .collect()
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: Option<&Value>,
) -> Value {
    let mut req = client.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let bytes = res.bytes().await.expect("body");
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

/// 1,000 updates at c=8: each flips `docs` of a Gold candidate, then reads back until it sees
/// the change (`level`: through the entity's scorecards; otherwise the entity itself).
async fn freshness(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    candidates: &[usize],
    round: usize,
    level: bool,
) -> Vec<Duration> {
    let per = 1_000 / CLIENTS;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
            // Each client its own entities, each touched once per round.
            let mine: Vec<usize> = candidates
                .iter()
                .skip(c * per + round * 1_000)
                .take(per)
                .copied()
                .collect();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per);
                for i in mine {
                    let url = format!("{base}/blueprints/service/entities/svc-{i}");
                    // Documented services lose their docs; the others get some.
                    let documented = i % 3 != 0;
                    let docs = if documented {
                        Value::Null
                    } else {
                        json!("https://docs/new")
                    };
                    let want = if documented { "Silver" } else { "Gold" };
                    let sent = Instant::now();
                    send(
                        &client,
                        reqwest::Method::PATCH,
                        &url,
                        &key,
                        Some(&json!({"properties": {"docs": docs}})),
                    )
                    .await;
                    loop {
                        if level {
                            let b = send(
                                &client,
                                reqwest::Method::GET,
                                &format!("{url}/scorecards"),
                                &key,
                                None,
                            )
                            .await;
                            if b["items"][0]["level"] == want {
                                break;
                            }
                        } else {
                            let b = send(&client, reqwest::Method::GET, &url, &key, None).await;
                            if b["properties"]["docs"] == docs {
                                break;
                            }
                        }
                    }
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    all.sort();
    all
}

/// `n` updates of `rev` offered at `RATE` per second whatever the answers' pace (each sent at
/// its time; at most `IN_FLIGHT` unanswered); returns the time until the last was answered.
async fn paced(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    n: usize,
    services: usize,
    first_rev: usize,
) -> Duration {
    let start = tokio::time::Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::with_capacity(n);
    for k in 0..n {
        tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / RATE)).await;
        let permit = slots.clone().acquire_owned().await.expect("slots");
        let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let i = (k * 7919) % services;
            send(
                &client,
                reqwest::Method::PATCH,
                &format!("{base}/blueprints/service/entities/svc-{i}"),
                &key,
                Some(&json!({"properties": {"rev": first_rev + k}})),
            )
            .await;
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.expect("update");
    }
    start.elapsed()
}

async fn bench(name: &str, backend: Backend, dir: &std::path::Path, n: usize, updates: usize) {
    let store = open(&backend).await;
    let key = issue_api_key(store.as_ref(), "admin", &audit())
        .await
        .expect("key");
    let base = support::serve(router(support::state(store.clone(), dir).await)).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS * 2)
        .build()
        .expect("client");
    for bp in blueprints() {
        send(
            &client,
            reqwest::Method::POST,
            &format!("{base}/blueprints"),
            &key,
            Some(&bp),
        )
        .await;
    }
    let team_count = (n / 10).max(1);
    let loaded = Instant::now();
    for chunk in teams(team_count)
        .chunks(BATCH)
        .chain(services(n, team_count).chunks(BATCH))
    {
        send(
            &client,
            reqwest::Method::POST,
            &format!("{base}/entities/bulk"),
            &key,
            Some(&json!({ "entities": chunk })),
        )
        .await;
    }
    let loaded = loaded.elapsed();
    let candidates = gold_candidates(n, team_count);

    // Baselines first, with no scorecard: the rules as searches, and update-then-read.
    let sc = scorecard();
    let searched = Instant::now();
    let mut passes = Vec::new();
    for r in sc["rules"].as_array().expect("rules") {
        let b = send(
            &client,
            reqwest::Method::POST,
            &format!("{base}/entities/search"),
            &key,
            Some(&json!({"blueprint": "service", "query": r["where"], "limit": 1})),
        )
        .await;
        passes.push(b["total"].as_u64().unwrap_or(0));
    }
    let searched = searched.elapsed();
    let plain = freshness(&client, &base, &key, &candidates, 0, false).await;

    // 1. Full evaluation.
    let since_put = Instant::now();
    let b = send(
        &client,
        reqwest::Method::PUT,
        &format!("{base}/scorecards/readiness"),
        &key,
        Some(&sc),
    )
    .await;
    let evaluated = since_put.elapsed();
    assert_eq!(b["summary"]["total"], n, "{}", b["summary"]);
    let passed: Vec<u64> = b["summary"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["passed"].as_u64().unwrap_or(0))
        .collect();
    // The round before flipped docs: rule `documented` counts differ by what it changed.
    assert_eq!(
        passed[..7],
        passes[..7],
        "the scorecard agrees with the searches"
    );

    // Stored behind: every row in the database (measured, and waited for, so the next part
    // measures a settled server).
    let mut stored = evaluated;
    loop {
        let rows = store
            .load_scorecard_state("readiness")
            .await
            .expect("rows")
            .len();
        stored = stored.max(since_put.elapsed());
        if rows == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 2. Freshness of levels.
    let fresh = freshness(&client, &base, &key, &candidates, 1, true).await;

    // 3. Automations: 5 subscribed to every update, one in 50 updates fires each.
    let quiet = paced(&client, &base, &key, updates, n, 1).await;
    for k in 0..5 {
        send(
            &client,
            reqwest::Method::PUT,
            &format!("{base}/automations/alert-{k}"),
            &key,
            Some(&json!({
                "trigger": {"event": "entity.updated", "blueprint": "service"},
                "condition": format!(".after.properties.rev % 50 == {k}"),
                "effect": {"entity": {"mode": "upsert", "blueprint": "alert",
                    "identifier": "{{ .event.identifier }}-{{ .after.properties.rev }}",
                    "properties": {"service": "{{ .event.identifier }}", "rev": "{{ .after.properties.rev }}"}}}
            })),
        )
        .await;
    }
    let first_rev = 1_000_000;
    let busy = paced(&client, &base, &key, updates, n, first_rev).await;
    let expected = (0..updates).filter(|k| (first_rev + k) % 50 < 5).count();
    let waited = Instant::now();
    let (mut fired, mut alerts) = (0, 0);
    while waited.elapsed() < Duration::from_secs(120) {
        fired = store
            .list_firings(&FiringFilter::default(), 1_000_000)
            .await
            .expect("firings")
            .len();
        let b = send(
            &client,
            reqwest::Method::POST,
            &format!("{base}/entities/search"),
            &key,
            Some(&json!({"blueprint": "alert", "limit": 1})),
        )
        .await;
        alerts = b["total"].as_u64().unwrap_or(0) as usize;
        if fired >= expected && alerts >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = waited.elapsed();
    let failed = store
        .list_firings(
            &FiringFilter {
                status: Some("failed".into()),
                ..FiringFilter::default()
            },
            10,
        )
        .await
        .expect("firings");
    assert!(failed.is_empty(), "failed firings: {failed:?}");
    assert_eq!(
        (fired, alerts),
        (expected, expected),
        "every expected firing stored and written"
    );

    let ratio = evaluated.as_secs_f64() / searched.as_secs_f64();
    println!(
        "{name}: {n} services and {team_count} teams loaded in {:.1} s",
        loaded.as_secs_f64()
    );
    println!(
        "{name}: full evaluation of {n} services × 10 rules through PUT {:.2} s (the 10 rules \
         as 10 searches: {:.2} s, ratio {ratio:.2}); target < 2 s; every row stored {:.1} s \
         after the PUT",
        evaluated.as_secs_f64(),
        searched.as_secs_f64(),
        stored.as_secs_f64()
    );
    println!(
        "{name}: update → new level read, c={CLIENTS}, 1000 updates: p50 {:.2} ms p99 {:.2} ms \
         (update → entity read, no scorecard: p50 {:.2} ms p99 {:.2} ms); target p99 < 50 ms",
        pct(&fresh, 0.5),
        pct(&fresh, 0.99),
        pct(&plain, 0.5),
        pct(&plain, 0.99)
    );
    let rate = |d: Duration| updates as f64 / d.as_secs_f64();
    println!(
        "{name}: {updates} updates offered at {RATE}/s with 5 automations: {:.0}/s (without: \
         {:.0}/s); {fired} firings and {alerts} entities written of {expected} expected, all \
         stored {:.2} s after the last update",
        rate(busy),
        rate(quiet),
        drained.as_secs_f64()
    );
    println!(
        "{}",
        json!({
            "bench": "scorecards", "backend": name, "services": n,
            "full_eval_s": evaluated.as_secs_f64(), "searches_s": searched.as_secs_f64(),
            "eval_vs_searches": ratio, "stored_s": stored.as_secs_f64(),
            "fresh_p50_ms": pct(&fresh, 0.5), "fresh_p99_ms": pct(&fresh, 0.99),
            "plain_p50_ms": pct(&plain, 0.5), "plain_p99_ms": pct(&plain, 0.99),
            "updates": updates, "with_automations_per_s": rate(busy),
            "without_per_s": rate(quiet), "fired": fired, "expected": expected,
            "drained_s": drained.as_secs_f64(),
        })
    );
}

fn main() {
    let n = env_usize("GANTRY_BENCH_ENTITIES", 100_000);
    let updates = env_usize("GANTRY_BENCH_UPDATES", 10_000);
    each_backend(|name, backend, dir| async move { bench(&name, backend, &dir, n, updates).await });
}
