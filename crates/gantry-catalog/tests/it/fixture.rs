//! A small catalog in memory for tests: blueprints and indexed entities behind `Lookup`.
//!
//! It stands in for the server's index, which these tests do not need; `referrers` scans every
//! entity, which is fine at this size.

use chrono::{DateTime, Utc};
use gantry_catalog::{Blueprint, Entity, EntityRecord, Indexed, Lookup};
use serde_json::{json, Value};

pub(crate) struct TestCatalog {
    pub(crate) blueprints: Vec<Blueprint>,
    pub(crate) entities: Vec<Indexed>,
}

impl TestCatalog {
    pub(crate) fn new(blueprints: Value) -> TestCatalog {
        TestCatalog {
            blueprints: serde_json::from_value(blueprints).expect("test blueprints"),
            entities: Vec::new(),
        }
    }

    /// Adds an entity written as the API takes it, plus test-only keys: `createdAt`,
    /// `updatedAt` (RFC 3339) and `computed` (computed property values).
    pub(crate) fn add(&mut self, mut v: Value) -> &mut Self {
        let obj = v.as_object_mut().expect("an entity object");
        let time = |obj: &mut serde_json::Map<String, Value>, key: &str| -> DateTime<Utc> {
            obj.remove(key)
                .and_then(|t| t.as_str().map(str::to_string))
                .map_or_else(
                    || "2026-01-01T00:00:00Z".parse().expect("a time"),
                    |t| t.parse().expect("an RFC 3339 time"),
                )
        };
        let created_at = time(obj, "createdAt");
        let updated_at = time(obj, "updatedAt");
        let computed = match obj.remove("computed") {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let entity: Entity = serde_json::from_value(v).expect("a test entity");
        self.entities.push(Indexed {
            record: EntityRecord {
                entity,
                sources: Default::default(),
                version: 1,
                created_at,
                updated_at,
                created_by: "alice@example.com".into(),
                updated_by: "bob@example.com".into(),
                managed_by: None,
            },
            computed,
        });
        self
    }

    pub(crate) fn get(&self, blueprint: &str, identifier: &str) -> &Indexed {
        Lookup::entity(self, blueprint, identifier).expect("a test entity")
    }
}

impl Lookup for TestCatalog {
    fn blueprint(&self, identifier: &str) -> Option<&Blueprint> {
        self.blueprints.iter().find(|b| b.identifier == identifier)
    }

    fn entity(&self, blueprint: &str, identifier: &str) -> Option<&Indexed> {
        self.entities.iter().find(|e| {
            e.record.entity.blueprint == blueprint && e.record.entity.identifier == identifier
        })
    }

    fn referrers(&self, blueprint: &str, identifier: &str) -> Vec<(&Indexed, &str)> {
        let mut out = Vec::new();
        for e in &self.entities {
            let Some(bp) = self.blueprint(&e.record.entity.blueprint) else {
                continue;
            };
            for (name, value) in &e.record.entity.relations {
                let points_here = bp.relations.get(name).is_some_and(|spec| {
                    spec.target == blueprint && value.targets().iter().any(|t| t == identifier)
                });
                if points_here {
                    out.push((e, name.as_str()));
                }
            }
        }
        out
    }
}

/// The catalog most query tests run against:
///
/// ```text
/// team/payments  team/search
/// service/checkout --owner--> team/payments, --dependsOn--> ledger, auth
/// service/ledger   --owner--> team/payments, --dependsOn--> db
/// service/auth     --owner--> team/search
/// service/db       (no owner)
/// service/gateway  --owner--> team/ghost (dangling), --dependsOn--> checkout
/// deployment/checkout-prod --service--> checkout
/// ```
pub(crate) fn catalog() -> TestCatalog {
    let mut c = TestCatalog::new(json!([
        {"identifier": "team", "title": "Team",
         "schema": {"properties": {"slack": {"type": "string"}}}},
        {"identifier": "service", "title": "Service",
         "schema": {"properties": {
             "language": {"type": "string"}, "tier": {"type": "number"},
             "cost": {"type": "number"}, "lifecycle": {"type": "string"},
             "tags": {"type": "array"}, "name": {"type": "string"},
             "k8s.namespace": {"type": "string"}, "meta": {"type": "object"},
             "public": {"type": "boolean"}}},
         "relations": {
             "owner": {"target": "team"},
             "dependsOn": {"target": "service", "many": true}},
         "allowDanglingRelations": true},
        {"identifier": "deployment", "title": "Deployment",
         "schema": {"properties": {"env": {"type": "string"}}},
         "relations": {"service": {"target": "service"}}},
    ]));
    c.add(
        json!({"identifier": "payments", "blueprint": "team", "title": "Payments",
        "properties": {"slack": "#pay"}}),
    )
    .add(json!({"identifier": "search", "blueprint": "team", "title": "Search"}))
    .add(
        json!({"identifier": "checkout", "blueprint": "service", "title": "Checkout",
            "team": ["payments"],
            "properties": {"language": "rust", "tier": 1, "cost": 15, "lifecycle": "production",
                "tags": ["pci", "critical"], "name": "Payment checkout",
                "k8s.namespace": "payments-prod", "meta": {"a": 1}, "public": true},
            "relations": {"owner": "payments", "dependsOn": ["ledger", "auth"]},
            "createdAt": "2025-11-03T09:00:00.250Z", "updatedAt": "2026-02-01T10:00:00Z",
            "computed": {"score": 0.9, "summary": "Handles the Cart"}}),
    )
    .add(
        json!({"identifier": "ledger", "blueprint": "service", "title": "Ledger",
            "team": ["payments"],
            "properties": {"language": "go", "tier": 2, "cost": 10, "lifecycle": "production",
                "tags": ["pci"], "public": false},
            "relations": {"owner": "payments", "dependsOn": ["db"]},
            "createdAt": "2025-12-24T08:30:00.000123Z", "updatedAt": "2026-01-15T00:00:00Z"}),
    )
    .add(json!({"identifier": "auth", "blueprint": "service",
            "team": ["search", "payments"],
            "properties": {"language": "rust", "tier": 1.0, "cost": 20.5,
                "lifecycle": "deprecated", "tags": [], "name": "Ünïcode Àuth"},
            "relations": {"owner": "search", "dependsOn": []},
            "createdAt": "2026-01-10T00:00:00.123456789Z", "updatedAt": "2026-03-01T00:00:00Z"}))
    .add(
        json!({"identifier": "db", "blueprint": "service", "title": "Database",
            "properties": {"language": "Go", "tier": 3, "lifecycle": "", "name": null},
            "createdAt": "2026-02-01T00:00:00Z", "updatedAt": "2026-01-15T00:00:00Z"}),
    )
    .add(
        json!({"identifier": "gateway", "blueprint": "service", "title": "Pay Gateway",
            "properties": {"tier": "2", "tags": ["edge", 7]},
            "relations": {"owner": "ghost", "dependsOn": ["checkout"]},
            "createdAt": "2026-03-01T00:00:00Z", "updatedAt": "2026-03-02T00:00:00Z"}),
    )
    .add(
        json!({"identifier": "checkout-prod", "blueprint": "deployment",
            "properties": {"env": "prod"},
            "relations": {"service": "checkout"}}),
    );
    c
}
