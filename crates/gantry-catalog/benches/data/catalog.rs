//! The catalog the catalog benchmarks load: three blueprints (team, service, deployment) with
//! three relations each, and `n` entities: a tenth teams, two fifths services, the rest
//! deployments. Included by `search.rs` here and by `crates/gantry-server/benches/catalog.rs`.

use serde_json::{json, Value};

pub(crate) fn blueprints() -> Vec<Value> {
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

/// The entities in dependency order.
pub(crate) fn entities(n: usize) -> Vec<Value> {
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
