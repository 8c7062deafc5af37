//! The software catalog: blueprints and entities round-trip whole, every write checks the
//! versions it expects and commits with its audit events or not at all, and the change feed
//! (`catalog_changes` from a seq) never misses a write, also with concurrent writers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use gantry_catalog::{Blueprint, BlueprintRecord, Entity, EntityRecord, Source};
use gantry_store::{
    Actor, ActorKind, Audit, AuditEvent, AuditFilter, CatalogChange, CatalogChanges, CatalogWrite,
    PageRequest, Store, StoreError,
};
use serde_json::json;

use crate::harness::{t, TestDb};

fn by(email: &str, at: DateTime<Utc>) -> Audit {
    Audit {
        actor: Actor {
            kind: ActorKind::User,
            id: format!("user:{email}"),
            name: email.to_owned(),
        },
        request_id: Some(format!("req-{}", at.timestamp())),
        source: Some("192.0.2.7".to_owned()),
        at,
    }
}

fn blueprint(identifier: &str, version: i64, at: DateTime<Utc>) -> BlueprintRecord {
    let blueprint: Blueprint = serde_json::from_value(json!({
        "identifier": identifier,
        "title": format!("The {identifier}"),
        "icon": "box",
        "schema": {
            "properties": {
                "tier": {"type": "integer", "minimum": 1.5, "maximum": 3},
                "language": {"type": "string", "enum": ["rust", "go"]},
                "url": {"type": "string", "format": "url"},
            },
            "required": ["tier"],
        },
        "relations": {"owner": {"target": "team", "required": true}},
        "mirrorProperties": {"slack": {"path": "owner.slack"}},
    }))
    .expect("blueprint");
    BlueprintRecord {
        blueprint,
        version,
        created_at: t(1),
        updated_at: at,
        created_by: "ann@example.com".to_owned(),
        updated_by: "bob@example.com".to_owned(),
        managed_by: (identifier == "service").then(|| "file:catalog".to_owned()),
    }
}

/// An entity with three properties and three relations, as the benchmark writes them.
fn entity(bp: &str, identifier: &str, version: i64, at: DateTime<Utc>) -> EntityRecord {
    let entity: Entity = serde_json::from_value(json!({
        "identifier": identifier,
        "blueprint": bp,
        "title": format!("Title of {identifier}"),
        "team": ["sre", "payments"],
        // Not in alphabetical order: the order must survive.
        "properties": {"tier": version, "language": "rust", "meta": {"z": 1, "a": [true, null]}},
        "relations": {"owner": "sre", "dependsOn": ["db", "cache"], "system": "billing"},
    }))
    .expect("entity");
    EntityRecord {
        entity,
        sources: BTreeMap::from([
            ("title".to_owned(), Source::Api),
            (
                "properties.tier".to_owned(),
                Source::File("catalog".to_owned()),
            ),
            (
                "relations.owner".to_owned(),
                Source::Integration("github".to_owned()),
            ),
        ]),
        version,
        created_at: t(1),
        updated_at: at,
        created_by: "ann@example.com".to_owned(),
        updated_by: "bob@example.com".to_owned(),
        managed_by: identifier
            .len()
            .is_multiple_of(2)
            .then(|| "file:catalog".to_owned()),
    }
}

/// An entity with nothing but its keys.
fn bare_entity(bp: &str, identifier: &str) -> EntityRecord {
    EntityRecord {
        entity: serde_json::from_value(json!({"identifier": identifier, "blueprint": bp}))
            .expect("entity"),
        sources: BTreeMap::new(),
        version: 1,
        created_at: t(2),
        updated_at: t(2),
        created_by: "system".to_owned(),
        updated_by: "system".to_owned(),
        managed_by: None,
    }
}

fn put_blueprint(record: BlueprintRecord, expected: Option<i64>) -> CatalogChange {
    let after = json!({"version": record.version});
    CatalogChange::PutBlueprint {
        before: expected.map(|v| json!({"version": v})),
        record,
        expected_version: expected,
        action: if expected.is_some() {
            "blueprint.update"
        } else {
            "blueprint.create"
        }
        .to_owned(),
        after,
    }
}

fn put_entity(record: EntityRecord, expected: Option<i64>) -> CatalogChange {
    let after = json!({"version": record.version});
    CatalogChange::PutEntity {
        before: expected.map(|v| json!({"version": v})),
        record,
        expected_version: expected,
        action: if expected.is_some() {
            "entity.update"
        } else {
            "entity.create"
        }
        .to_owned(),
        after,
    }
}

fn delete_blueprint(identifier: &str, version: i64) -> CatalogChange {
    CatalogChange::DeleteBlueprint {
        identifier: identifier.to_owned(),
        expected_version: version,
        action: "blueprint.delete".to_owned(),
        before: json!({"version": version}),
    }
}

fn delete_entity(bp: &str, identifier: &str, version: i64) -> CatalogChange {
    CatalogChange::DeleteEntity {
        blueprint: bp.to_owned(),
        identifier: identifier.to_owned(),
        expected_version: version,
        action: "entity.delete".to_owned(),
        before: json!({"version": version}),
    }
}

fn write(changes: Vec<CatalogChange>) -> CatalogWrite {
    CatalogWrite {
        changes,
        audit: by("ann@example.com", t(100)),
    }
}

async fn apply(store: &dyn Store, changes: Vec<CatalogChange>) -> i64 {
    store.write_catalog(&write(changes)).await.expect("write")
}

/// Every audit event matching `filter`, oldest first.
async fn audit_events(store: &dyn Store, filter: &AuditFilter) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let got = store.list_audit(filter, &page).await.expect("audit");
        events.extend(got.items);
        match got.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => break,
        }
    }
    events.reverse();
    events
}

fn entity_keys(changes: &CatalogChanges) -> Vec<(String, String)> {
    changes
        .entities
        .iter()
        .map(|e| (e.entity.blueprint.clone(), e.entity.identifier.clone()))
        .collect()
}

fn key(bp: &str, identifier: &str) -> (String, String) {
    (bp.to_owned(), identifier.to_owned())
}

fn is_conflict_naming(result: &Result<i64, StoreError>, name: &str) -> bool {
    matches!(result, Err(StoreError::Conflict(m)) if m.contains(name))
}

pub(crate) async fn records_round_trip_whole(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    assert_eq!(s.catalog_seq().await, Ok(0));
    assert_eq!(s.catalog_changes(0).await, Ok(CatalogChanges::default()));

    let service = blueprint("service", 1, t(3));
    let team = blueprint("team", 1, t(3));
    let payments = entity("service", "payments", 1, t(4));
    let billing = entity("service", "billing-api", 1, t(4));
    let sre = bare_entity("team", "sre");
    let seq = apply(
        s,
        vec![
            put_blueprint(team.clone(), None),
            put_blueprint(service.clone(), None),
            put_entity(payments.clone(), None),
            put_entity(sre.clone(), None),
            put_entity(billing.clone(), None),
        ],
    )
    .await;
    assert_eq!(seq, 1);
    assert_eq!(s.catalog_seq().await, Ok(1));

    let all = s.catalog_changes(0).await.expect("changes");
    assert_eq!(
        all,
        CatalogChanges {
            seq: 1,
            // By identifier, and entities by blueprint then identifier.
            blueprints: vec![service.clone(), team],
            entities: vec![billing, payments.clone(), sre],
            deleted_blueprints: vec![],
            deleted_entities: vec![],
        }
    );
    // Key order inside JSON is kept, not sorted.
    let stored = &all.entities[1].entity;
    assert_eq!(
        stored.properties.keys().collect::<Vec<_>>(),
        ["tier", "language", "meta"]
    );
    assert_eq!(
        stored.relations.keys().collect::<Vec<_>>(),
        ["owner", "dependsOn", "system"]
    );
    assert_eq!(
        all.blueprints[0]
            .blueprint
            .schema
            .properties
            .keys()
            .collect::<Vec<_>>(),
        ["tier", "language", "url"]
    );

    // The same after a restart.
    let store = db.reopen(store).await;
    assert_eq!(store.catalog_changes(0).await, Ok(all));

    // An update replaces every field.
    let mut changed = entity("service", "payments", 2, t(9));
    changed.entity.title = None;
    changed.entity.team = vec![];
    changed.entity.properties = serde_json::Map::new();
    changed.entity.relations.clear();
    changed.sources.clear();
    changed.managed_by = Some("file:other".to_owned());
    changed.updated_by = "cy@example.com".to_owned();
    let seq = apply(store.as_ref(), vec![put_entity(changed.clone(), Some(1))]).await;
    assert_eq!(seq, 2);
    let since = store.catalog_changes(1).await.expect("changes");
    assert_eq!(since.seq, 2);
    assert_eq!(since.blueprints, vec![]);
    assert_eq!(since.entities, vec![changed]);
}

pub(crate) async fn versions_are_checked_and_a_conflict_stores_nothing(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    apply(
        s,
        vec![
            put_blueprint(blueprint("service", 1, t(3)), None),
            put_entity(entity("service", "payments", 1, t(4)), None),
            put_entity(entity("service", "billing", 1, t(4)), None),
        ],
    )
    .await;
    let before = s.catalog_changes(0).await.expect("changes");
    let audited = audit_events(s, &AuditFilter::default()).await.len();
    assert_eq!(audited, 3);

    // Each write below fails on one change; what comes before it in the write is not stored.
    let refused = [
        // Created twice.
        (
            vec![
                put_entity(entity("service", "new", 1, t(5)), None),
                put_entity(entity("service", "payments", 1, t(5)), None),
            ],
            "service/payments",
        ),
        (
            vec![put_blueprint(blueprint("service", 1, t(5)), None)],
            "\"service\"",
        ),
        // A stale version, and a version from the future.
        (
            vec![
                put_entity(entity("service", "billing", 2, t(5)), Some(1)),
                put_entity(entity("service", "payments", 3, t(5)), Some(2)),
            ],
            "service/payments",
        ),
        (
            vec![put_blueprint(blueprint("service", 3, t(5)), Some(2))],
            "\"service\"",
        ),
        // Updates and deletes of what does not exist.
        (
            vec![put_entity(entity("service", "ghost", 2, t(5)), Some(1))],
            "service/ghost",
        ),
        (vec![delete_entity("service", "ghost", 1)], "service/ghost"),
        (vec![delete_blueprint("ghost", 1)], "\"ghost\""),
        (
            vec![delete_entity("service", "billing", 2)],
            "service/billing",
        ),
        // Within one write, a change expects what the one before it left.
        (
            vec![
                put_entity(entity("service", "new", 1, t(5)), None),
                put_entity(entity("service", "new", 2, t(5)), Some(1)),
                put_entity(entity("service", "new", 3, t(5)), Some(1)),
            ],
            "service/new",
        ),
        (
            vec![
                delete_entity("service", "billing", 1),
                delete_entity("service", "billing", 1),
            ],
            "service/billing",
        ),
    ];
    for (changes, name) in refused {
        let result = s.write_catalog(&write(changes.clone())).await;
        assert!(
            is_conflict_naming(&result, name),
            "{changes:#?} must conflict on {name}: {result:?}"
        );
    }
    assert_eq!(s.catalog_seq().await, Ok(1), "no clock bump is visible");
    assert_eq!(s.catalog_changes(0).await, Ok(before));
    assert_eq!(
        audit_events(s, &AuditFilter::default()).await.len(),
        audited,
        "no audit event of a refused write"
    );
    // The first conflicting change is named, not a later one.
    let result = s
        .write_catalog(&write(vec![
            put_entity(entity("service", "billing", 3, t(5)), Some(2)),
            put_entity(entity("service", "payments", 3, t(5)), Some(2)),
        ]))
        .await;
    assert!(is_conflict_naming(&result, "service/billing"), "{result:?}");
    assert!(!is_conflict_naming(&result, "service/payments"));

    // The right versions go through, including several changes of one key in one write.
    let seq = apply(
        s,
        vec![
            put_entity(entity("service", "billing", 2, t(6)), Some(1)),
            put_entity(entity("service", "billing", 7, t(6)), Some(2)),
            put_entity(entity("service", "new", 1, t(6)), None),
            delete_entity("service", "new", 1),
            put_entity(entity("service", "new", 1, t(6)), None),
            put_blueprint(blueprint("service", 2, t(6)), Some(1)),
        ],
    )
    .await;
    assert_eq!(seq, 2);
    let after = s.catalog_changes(1).await.expect("changes");
    assert_eq!(after.blueprints, vec![blueprint("service", 2, t(6))]);
    assert_eq!(
        after.entities,
        vec![
            entity("service", "billing", 7, t(6)),
            entity("service", "new", 1, t(6)),
        ]
    );
    assert_eq!(after.deleted_entities, vec![]);
}

pub(crate) async fn every_change_is_audited_with_its_write(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    let a = by("ann@example.com", t(50));
    let changes = vec![
        put_blueprint(blueprint("service", 1, t(3)), None),
        put_entity(entity("service", "payments", 1, t(4)), None),
        put_entity(entity("service", "payments-api", 1, t(4)), None),
    ];
    s.write_catalog(&CatalogWrite {
        changes,
        audit: a.clone(),
    })
    .await
    .expect("write");
    let changes = vec![
        put_entity(entity("service", "payments", 2, t(5)), Some(1)),
        delete_entity("service", "payments-api", 1),
    ];
    s.write_catalog(&CatalogWrite {
        changes,
        audit: a.clone(),
    })
    .await
    .expect("write");

    let events = audit_events(s, &AuditFilter::default()).await;
    let seen: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.resource.as_str(),
                e.before.clone(),
                e.after.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "blueprint.create",
                "blueprint/service",
                None,
                Some(json!({"version": 1}))
            ),
            (
                "entity.create",
                "entity/service/payments",
                None,
                Some(json!({"version": 1}))
            ),
            (
                "entity.create",
                "entity/service/payments-api",
                None,
                Some(json!({"version": 1}))
            ),
            (
                "entity.update",
                "entity/service/payments",
                Some(json!({"version": 1})),
                Some(json!({"version": 2}))
            ),
            (
                "entity.delete",
                "entity/service/payments-api",
                Some(json!({"version": 1})),
                None
            ),
        ]
    );
    for e in &events {
        assert_eq!(e.actor, a.actor);
        assert_eq!(e.at, t(50));
        assert_eq!(e.request_id.as_deref(), Some("req-1790000050"));
        assert_eq!(e.source.as_deref(), Some("192.0.2.7"));
    }

    // A resource filter finds that entity's events, not those of one whose name extends it.
    let filter = |resource: &str| AuditFilter {
        resource: Some(resource.to_owned()),
        ..AuditFilter::default()
    };
    let of = |events: Vec<AuditEvent>| {
        events
            .into_iter()
            .map(|e| (e.action, e.resource))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(audit_events(s, &filter("entity/service/payments")).await),
        vec![
            (
                "entity.create".to_owned(),
                "entity/service/payments".to_owned()
            ),
            (
                "entity.update".to_owned(),
                "entity/service/payments".to_owned()
            ),
        ]
    );
    assert_eq!(
        audit_events(s, &filter("entity/service/payments-api"))
            .await
            .len(),
        2
    );
    assert_eq!(audit_events(s, &filter("entity/service")).await.len(), 4);
    assert_eq!(
        audit_events(s, &filter("entity/service/pay")).await.len(),
        0
    );
    assert_eq!(audit_events(s, &filter("blueprint/service")).await.len(), 1);
}

pub(crate) async fn changes_since_a_seq_and_tombstones(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    let s1 = apply(
        s,
        vec![
            put_blueprint(blueprint("service", 1, t(1)), None),
            put_blueprint(blueprint("team", 1, t(1)), None),
            put_entity(entity("service", "a", 1, t(1)), None),
            put_entity(entity("service", "b", 1, t(1)), None),
            put_entity(entity("team", "sre", 1, t(1)), None),
        ],
    )
    .await;
    let s2 = apply(
        s,
        vec![
            put_entity(entity("service", "c", 1, t(2)), None),
            put_entity(entity("service", "a", 2, t(2)), Some(1)),
        ],
    )
    .await;
    let s3 = apply(
        s,
        vec![
            delete_entity("service", "b", 1),
            delete_entity("team", "sre", 1),
            delete_blueprint("team", 1),
        ],
    )
    .await;
    assert_eq!((s1, s2, s3), (1, 2, 3));

    // From the start: what exists now, and every deletion.
    let all = s.catalog_changes(0).await.expect("changes");
    assert_eq!(all.seq, 3);
    assert_eq!(
        all.blueprints,
        vec![blueprint("service", 1, t(1))],
        "the deleted blueprint is gone"
    );
    assert_eq!(
        entity_keys(&all),
        vec![key("service", "a"), key("service", "c")]
    );
    assert_eq!(all.entities[0].version, 2);
    assert_eq!(all.deleted_blueprints, vec!["team".to_owned()]);
    assert_eq!(
        all.deleted_entities,
        vec![key("service", "b"), key("team", "sre")]
    );

    // From the middle: what was written after it.
    let mid = s.catalog_changes(s1).await.expect("changes");
    assert_eq!(mid.blueprints, vec![]);
    assert_eq!(
        entity_keys(&mid),
        vec![key("service", "a"), key("service", "c")]
    );
    assert_eq!(mid.deleted_blueprints, vec!["team".to_owned()]);
    assert_eq!(mid.deleted_entities.len(), 2);
    let late = s.catalog_changes(s2).await.expect("changes");
    assert_eq!(late.entities, vec![]);
    assert_eq!(late.deleted_entities.len(), 2);
    let none = s.catalog_changes(s3).await.expect("changes");
    assert_eq!(
        none,
        CatalogChanges {
            seq: 3,
            ..CatalogChanges::default()
        }
    );

    // A deleted key created again is a row, not a deletion, from any seq before it.
    let s4 = apply(
        s,
        vec![
            put_blueprint(blueprint("team", 1, t(4)), None),
            put_entity(entity("service", "b", 1, t(4)), None),
        ],
    )
    .await;
    for since in [0, s1, s2, s3] {
        let c = s.catalog_changes(since).await.expect("changes");
        assert!(c.deleted_blueprints.is_empty(), "from {since}: {c:#?}");
        let sre_deleted = if since < s3 {
            vec![key("team", "sre")]
        } else {
            vec![]
        };
        assert_eq!(c.deleted_entities, sre_deleted, "from {since}");
        assert!(entity_keys(&c).contains(&key("service", "b")));
        assert!(c
            .blueprints
            .iter()
            .any(|b| b.blueprint.identifier == "team"));
    }
    // Deleted again: one deletion, however many tombstones the key has.
    let s5 = apply(s, vec![delete_entity("service", "b", 1)]).await;
    let c = s.catalog_changes(0).await.expect("changes");
    assert_eq!(
        c.deleted_entities,
        vec![key("service", "b"), key("team", "sre")]
    );
    let c = s.catalog_changes(s4).await.expect("changes");
    assert_eq!(c.deleted_entities, vec![key("service", "b")]);
    assert_eq!(c.seq, s5);
    // Created and deleted in one write: a deletion (of nothing the reader had).
    apply(
        s,
        vec![
            put_entity(entity("service", "brief", 1, t(6)), None),
            delete_entity("service", "brief", 1),
        ],
    )
    .await;
    let c = s.catalog_changes(s5).await.expect("changes");
    assert_eq!(c.entities, vec![]);
    assert_eq!(c.deleted_entities, vec![key("service", "brief")]);
}

pub(crate) async fn the_clock_only_moves_forward(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    // An empty write takes no transaction and returns the clock.
    assert_eq!(s.write_catalog(&write(vec![])).await, Ok(0));
    let mut last = 0;
    for i in 0..5 {
        let seq = apply(
            s,
            vec![put_entity(
                entity("service", &format!("e{i}"), 1, t(i)),
                None,
            )],
        )
        .await;
        assert_eq!(seq, last + 1);
        assert_eq!(s.catalog_seq().await, Ok(seq));
        assert_eq!(s.catalog_changes(last).await.expect("changes").seq, seq);
        last = seq;
    }
    assert_eq!(s.write_catalog(&write(vec![])).await, Ok(last));
    // A refused write leaves it, and the next write takes the next number.
    let refused = s
        .write_catalog(&write(vec![put_entity(
            entity("service", "e0", 1, t(9)),
            None,
        )]))
        .await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))));
    assert_eq!(s.catalog_seq().await, Ok(last));
    let store = db.reopen(store).await;
    assert_eq!(store.catalog_seq().await, Ok(last));
    let seq = apply(
        store.as_ref(),
        vec![put_entity(entity("service", "e9", 1, t(9)), None)],
    )
    .await;
    assert_eq!(seq, last + 1);
}

pub(crate) async fn five_thousand_entities_in_one_write(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    let created: Vec<EntityRecord> = (0..5_000)
        .map(|i| entity("service", &format!("svc-{i:05}"), 1, t(1)))
        .collect();
    let seq = apply(
        s,
        created
            .iter()
            .map(|e| put_entity(e.clone(), None))
            .collect(),
    )
    .await;
    assert_eq!(seq, 1);
    let all = s.catalog_changes(0).await.expect("changes");
    assert_eq!(all.entities, created);

    // All of them again, updated, plus 100 deleted in the same write.
    let updated: Vec<EntityRecord> = (0..5_000)
        .map(|i| entity("service", &format!("svc-{i:05}"), 2, t(2)))
        .collect();
    let mut changes: Vec<CatalogChange> = updated
        .iter()
        .skip(100)
        .map(|e| put_entity(e.clone(), Some(1)))
        .collect();
    changes.extend((0..100).map(|i| delete_entity("service", &format!("svc-{i:05}"), 1)));
    assert_eq!(apply(s, changes).await, 2);
    let all = s.catalog_changes(0).await.expect("changes");
    assert_eq!(all.entities, updated[100..]);
    assert_eq!(all.deleted_entities.len(), 100);
    let since = s.catalog_changes(1).await.expect("changes");
    assert_eq!(since.entities.len(), 4_900);
    assert_eq!(
        audit_events(
            s,
            &AuditFilter {
                resource: Some("entity/service".to_owned()),
                ..AuditFilter::default()
            }
        )
        .await
        .len(),
        10_000
    );

    // One stale version among 5,000 refuses the whole write.
    let mut changes: Vec<CatalogChange> = (100..5_000)
        .map(|i| put_entity(entity("service", &format!("svc-{i:05}"), 3, t(3)), Some(2)))
        .collect();
    changes[4_000] = put_entity(entity("service", "svc-04100", 3, t(3)), Some(1));
    let result = s.write_catalog(&write(changes)).await;
    assert!(is_conflict_naming(&result, "svc-04100"), "{result:?}");
    assert_eq!(s.catalog_seq().await, Ok(2));
    assert_eq!(
        s.catalog_changes(0).await.expect("changes").entities,
        updated[100..]
    );
}

/// Many writers at once (on PostgreSQL over several connections): every write gets its own seq,
/// and a reader on a store of its own that follows the feed from the seq it last saw, while
/// they write, ends with every entity; reading again from any seq it saw returns exactly the
/// writes after it. That holds only if writes become visible in seq order (a clock bumped in a
/// transaction of its own, before the rows, fails it on both backends).
pub(crate) async fn concurrent_writers_commit_in_seq_order(db: &TestDb) {
    const TASKS: usize = 8;
    const WRITES: usize = 20;
    let stores = [db.open().await, db.open().await];
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let follower = {
        let store = stores[1].clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut since = 0;
            let mut seen = BTreeSet::new();
            let mut observed = vec![0];
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let changes = store.catalog_changes(since).await.expect("changes");
                assert!(changes.seq >= since, "the clock went back");
                seen.extend(entity_keys(&changes));
                since = changes.seq;
                observed.push(since);
                if finished {
                    return (seen, observed);
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let mut writers = Vec::new();
    for task in 0..TASKS {
        let store: Arc<dyn Store> = stores[0].clone();
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..WRITES {
                let identifier = format!("t{task}-w{i:02}");
                let seq = store
                    .write_catalog(&write(vec![put_entity(
                        bare_entity("service", &identifier),
                        None,
                    )]))
                    .await
                    .expect("write");
                written.push((seq, key("service", &identifier)));
            }
            written
        }));
    }
    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.expect("writer"));
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (seen, observed) = follower.await.expect("follower");

    let seqs: BTreeSet<i64> = written.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs.len(), TASKS * WRITES, "every write has its own seq");
    assert_eq!(seqs, (1..=(TASKS * WRITES) as i64).collect());
    let missed: Vec<_> = written.iter().filter(|(_, k)| !seen.contains(k)).collect();
    assert!(missed.is_empty(), "following the feed missed {missed:?}");
    assert!(observed.len() > 2, "the follower read while writers wrote");
    for since in observed {
        let expected: BTreeSet<(String, String)> = written
            .iter()
            .filter(|(seq, _)| *seq > since)
            .map(|(_, k)| k.clone())
            .collect();
        let changes = stores[0].catalog_changes(since).await.expect("changes");
        let got: BTreeSet<(String, String)> = entity_keys(&changes).into_iter().collect();
        let missed: Vec<_> = expected.difference(&got).collect();
        let extra: Vec<_> = got.difference(&expected).collect();
        assert!(
            missed.is_empty() && extra.is_empty(),
            "from seq {since}: missed {missed:?}, extra {extra:?}"
        );
    }
}
