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
use serde_json::json;

// The API benchmark's catalog, shared with `crates/gantry-server/benches/catalog.rs`.
#[path = "data/catalog.rs"]
mod dataset;
use dataset::{blueprints, entities};

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
