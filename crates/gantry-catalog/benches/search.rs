//! Catalog searches in memory, without HTTP: the columns against the reference that tests every
//! entity on its own (`Catalog::search_rows`), on the same catalog in the same run.
//!
//! The catalog is the API benchmark's: 100,000 entities (a tenth teams, two fifths services, the
//! rest deployments), three relations each. Measured on one thread:
//!
//! 1. a filtered, sorted page of 50 (`language = rust and cost > N`, sorted by `-cost`);
//! 2. facet counts of `blueprint`, `language` and `environment` over every entity;
//! 3. facet counts of `environment` and `replicas` over the deployments.
//!
//! `GANTRY_BENCH_ENTITIES` changes the size. Run: `cargo bench -p gantry-catalog --bench search`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gantry_catalog::index::{Catalog, Delta, Page, Search};
use gantry_catalog::query::{Query, Sort};
use gantry_catalog::{Blueprint, BlueprintRecord, Entity, EntityRecord};
use serde_json::{json, Value};

fn blueprints() -> Vec<Value> {
    vec![
        json!({"identifier": "team", "schema": {"properties": {
            "slack": {"type": "string"}, "size": {"type": "integer"}}},
            "relations": {
                "parent": {"target": "team"}, "peer": {"target": "team"},
                "escalation": {"target": "team"}}}),
        json!({"identifier": "service", "schema": {"properties": {
            "language": {"type": "string", "enum": ["rust", "go", "python", "java"]},
            "tier": {"type": "integer", "minimum": 1, "maximum": 4},
            "cost": {"type": "number"},
            "url": {"type": "string", "format": "url"}}, "required": ["language"]},
            "relations": {
                "owner": {"target": "team", "required": true},
                "dependsOn": {"target": "service", "many": true},
                "escalation": {"target": "team"}}}),
        json!({"identifier": "deployment", "schema": {"properties": {
            "environment": {"type": "string", "enum": ["dev", "staging", "production"]},
            "version": {"type": "string"}, "replicas": {"type": "integer"}}},
            "relations": {
                "service": {"target": "service", "required": true},
                "owningTeam": {"target": "team"},
                "previous": {"target": "deployment"}}}),
    ]
}

fn entities(n: usize) -> Vec<Value> {
    let teams = (n / 10).max(1);
    let services = (n * 2 / 5).max(1);
    let deployments = n - teams - services;
    let mut out = Vec::with_capacity(n);
    let t = |i: usize| format!("team-{i}");
    let s = |i: usize| format!("svc-{i}");
    for i in 0..teams {
        out.push(json!({"blueprint": "team", "identifier": t(i), "title": format!("Team {i}"),
            "properties": {"slack": format!("#team-{i}"), "size": i % 12 + 1},
            "relations": {"parent": t(i / 2), "peer": t(i.saturating_sub(1)), "escalation": t(i / 3)}}));
    }
    let languages = ["rust", "go", "python", "java"];
    for i in 0..services {
        let mut depends = vec![s(i / 2), s(i / 3)];
        depends.dedup();
        out.push(json!({"blueprint": "service", "identifier": s(i), "title": format!("Service {i}"),
            "team": [t(i % teams)],
            "properties": {"language": languages[i % 4], "tier": i % 4 + 1, "cost": (i % 1000) as f64 * 1.5,
                "url": format!("https://svc-{i}.example.com")},
            "relations": {"owner": t(i % teams), "dependsOn": depends, "escalation": t(i % 7)}}));
    }
    let environments = ["dev", "staging", "production"];
    for i in 0..deployments {
        out.push(json!({"blueprint": "deployment", "identifier": format!("dep-{i}"),
            "properties": {"environment": environments[i % 3], "version": format!("1.{}.{}", i % 50, i % 7),
                "replicas": i % 5 + 1},
            "relations": {"service": s(i % services), "owningTeam": t(i % teams),
                "previous": format!("dep-{}", i.saturating_sub(1))}}));
    }
    out
}

fn catalog(n: usize) -> Catalog {
    let now: DateTime<Utc> = Utc::now();
    let mut cat = Catalog::default();
    let blueprints = blueprints()
        .into_iter()
        .map(|b| BlueprintRecord {
            blueprint: serde_json::from_value::<Blueprint>(b).expect("a blueprint"),
            version: 1,
            created_at: now,
            updated_at: now,
            created_by: "bench".into(),
            updated_by: "bench".into(),
            managed_by: None,
        })
        .collect();
    cat.apply(Delta {
        seq: 1,
        blueprints,
        ..Delta::default()
    });
    let records: Vec<EntityRecord> = entities(n)
        .into_iter()
        .map(|e| EntityRecord {
            entity: serde_json::from_value::<Entity>(e).expect("an entity"),
            sources: Default::default(),
            version: 1,
            created_at: now,
            updated_at: now,
            created_by: "bench".into(),
            updated_by: "bench".into(),
            managed_by: None,
        })
        .collect();
    for (i, chunk) in records.chunks(10_000).enumerate() {
        cat.apply(Delta {
            seq: 2 + i as i64,
            entities: chunk.to_vec(),
            ..Delta::default()
        });
    }
    cat
}

fn pages(i: usize) -> Search {
    let q = ["language = rust", "language = go", "tier <= 2"][i % 3];
    Search {
        query: Some(Query::parse(&format!("{q} and cost > {}", i % 100)).expect("a query")),
        blueprint: Some("service".into()),
        sort: Sort::parse_list("-cost").expect("a sort"),
        limit: 50,
        ..Search::default()
    }
}

fn all_facets(_: usize) -> Search {
    Search {
        limit: 1,
        facets: vec!["blueprint".into(), "language".into(), "environment".into()],
        ..Search::default()
    }
}

fn deployment_facets(_: usize) -> Search {
    Search {
        blueprint: Some("deployment".into()),
        limit: 1,
        facets: vec!["environment".into(), "replicas".into()],
        ..Search::default()
    }
}

/// Runs `runs` searches one after another; latencies sorted.
fn time<'a>(
    runs: usize,
    search: &dyn Fn(usize) -> Search,
    run: &dyn Fn(&Search) -> Page<'a>,
) -> Vec<Duration> {
    let mut out: Vec<Duration> = (0..runs)
        .map(|i| {
            let s = search(i);
            let started = Instant::now();
            let page = run(&s);
            let took = started.elapsed();
            assert!(page.total > 0, "the bench search matched nothing");
            took
        })
        .collect();
    out.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let n = std::env::var("GANTRY_BENCH_ENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let started = Instant::now();
    let cat = catalog(n);
    println!(
        "{n} entities indexed in memory in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    // Same answers first, so the figures compare like with like.
    for s in [
        pages(0),
        pages(1),
        pages(2),
        all_facets(0),
        deployment_facets(0),
    ] {
        let (a, b) = (cat.search(&s), cat.search_rows(&s));
        let ids = |p: &Page<'_>| -> Vec<String> {
            p.entities
                .iter()
                .map(|e| e.record.entity.identifier.clone())
                .collect()
        };
        assert!(
            a.total == b.total && a.facets == b.facets && ids(&a) == ids(&b),
            "columns and rows disagree"
        );
    }
    let mut report = serde_json::Map::new();
    for (name, runs, search) in [
        ("page", 300, &pages as &dyn Fn(usize) -> Search),
        ("facets_all", 30, &all_facets),
        ("facets_deployment", 60, &deployment_facets),
    ] {
        let columns = time(runs, search, &|s| cat.search(s));
        let rows = time(runs.min(60), search, &|s| cat.search_rows(s));
        let ratio = pct(&rows, 0.5) / pct(&columns, 0.5);
        println!(
            "{name}: columns p50 {:.3} ms p99 {:.3} ms; entity by entity (baseline) p50 {:.3} ms \
             p99 {:.3} ms; {ratio:.1}x faster",
            pct(&columns, 0.5),
            pct(&columns, 0.99),
            pct(&rows, 0.5),
            pct(&rows, 0.99),
        );
        report.insert(
            name.into(),
            json!({"columns_p50_ms": pct(&columns, 0.5), "columns_p99_ms": pct(&columns, 0.99),
                   "rows_p50_ms": pct(&rows, 0.5), "rows_p99_ms": pct(&rows, 0.99),
                   "speedup_p50": ratio}),
        );
    }
    println!(
        "{}",
        json!({"bench": "catalog_search", "entities": n, "results": report})
    );
}
