//! A small in-memory catalog for the schema and computed-property tests.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use gantry_catalog::{Blueprint, Entity, EntityRecord, Indexed, Lookup, Map};
use serde_json::{json, Value};

pub(crate) fn blueprint(v: Value) -> Blueprint {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("blueprint fixture: {e}"))
}

pub(crate) fn entity(v: Value) -> Entity {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("entity fixture: {e}"))
}

pub(crate) fn indexed(v: Value) -> Indexed {
    indexed_with(v, Map::new())
}

pub(crate) fn indexed_with(v: Value, computed: Map) -> Indexed {
    let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    Indexed {
        record: EntityRecord {
            entity: entity(v),
            sources: Default::default(),
            version: 1,
            created_at: at,
            updated_at: at,
            created_by: "ada@example.com".into(),
            updated_by: "ada@example.com".into(),
            managed_by: None,
        },
        computed,
    }
}

#[derive(Default)]
pub(crate) struct Catalog {
    pub(crate) blueprints: HashMap<String, Blueprint>,
    pub(crate) entities: HashMap<(String, String), Indexed>,
}

impl Catalog {
    pub(crate) fn with(mut self, bp: Value) -> Self {
        let bp = blueprint(bp);
        self.blueprints.insert(bp.identifier.clone(), bp);
        self
    }

    pub(crate) fn add(mut self, e: Value) -> Self {
        let e = indexed(e);
        let key = (
            e.record.entity.blueprint.clone(),
            e.record.entity.identifier.clone(),
        );
        self.entities.insert(key, e);
        self
    }

    pub(crate) fn get(&self, bp: &str, id: &str) -> &Indexed {
        &self.entities[&(bp.to_string(), id.to_string())]
    }

    pub(crate) fn find(&self) -> impl Fn(&str) -> Option<Blueprint> + '_ {
        |id| self.blueprints.get(id).cloned()
    }
}

impl Lookup for Catalog {
    fn blueprint(&self, identifier: &str) -> Option<&Blueprint> {
        self.blueprints.get(identifier)
    }

    fn entity(&self, blueprint: &str, identifier: &str) -> Option<&Indexed> {
        self.entities
            .get(&(blueprint.to_string(), identifier.to_string()))
    }

    fn referrers(&self, blueprint: &str, identifier: &str) -> Vec<(&Indexed, &str)> {
        let mut out = Vec::new();
        for e in self.entities.values() {
            let Some(bp) = self.blueprints.get(&e.record.entity.blueprint) else {
                continue;
            };
            for (name, value) in &e.record.entity.relations {
                let points_here = bp
                    .relations
                    .get(name)
                    .is_some_and(|r| r.target == blueprint);
                if points_here && value.targets().iter().any(|t| t == identifier) {
                    out.push((e, name.as_str()));
                }
            }
        }
        out
    }
}

/// team ← service → (deps: many service); incident → service; user is a team's lead.
pub(crate) fn catalog() -> Catalog {
    Catalog::default()
        .with(json!({
            "identifier": "user",
            "schema": {"properties": {"slack": {"type": "string"}}}
        }))
        .with(json!({
            "identifier": "team",
            "schema": {"properties": {"slack": {"type": "string"}, "size": {"type": "integer"}}},
            "relations": {"lead": {"target": "user"}}
        }))
        .with(json!({
            "identifier": "service",
            "schema": {"properties": {"port": {"type": "integer"}, "tier": {"type": "string"}}},
            "relations": {
                "owner": {"target": "team"},
                "deps": {"target": "service", "many": true}
            }
        }))
        .with(json!({
            "identifier": "incident",
            "schema": {"properties": {"minutes": {"type": "number"}, "severity": {"type": "string"}}},
            "relations": {"service": {"target": "service", "required": true}}
        }))
        .add(json!({"identifier": "ada", "blueprint": "user", "title": "Ada", "properties": {"slack": "@ada"}}))
        .add(json!({"identifier": "payments", "blueprint": "team", "title": "Payments",
            "team": ["payments"], "properties": {"slack": "#payments", "size": 4}, "relations": {"lead": "ada"}}))
        .add(json!({"identifier": "search", "blueprint": "team", "properties": {"slack": "#search"}}))
        .add(json!({"identifier": "api", "blueprint": "service", "properties": {"port": 80},
            "relations": {"owner": "payments", "deps": ["db", "cache", "gone"]}}))
        .add(json!({"identifier": "db", "blueprint": "service", "properties": {"port": 5432},
            "relations": {"owner": "search"}}))
        .add(json!({"identifier": "cache", "blueprint": "service", "relations": {"owner": "payments"}}))
        .add(json!({"identifier": "lonely", "blueprint": "service"}))
        .add(json!({"identifier": "i1", "blueprint": "incident", "properties": {"minutes": 10, "severity": "high"}, "relations": {"service": "api"}}))
        .add(json!({"identifier": "i2", "blueprint": "incident", "properties": {"minutes": 25.5, "severity": "low"}, "relations": {"service": "api"}}))
        .add(json!({"identifier": "i3", "blueprint": "incident", "properties": {"minutes": "n/a"}, "relations": {"service": "api"}}))
}
