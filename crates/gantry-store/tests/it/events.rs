//! Events: durable acceptance and de-duplication by id, idempotency key and key.

use std::sync::Arc;

use gantry_store::{NewEvent, NewRun, RunOrigin, StoreError};
use serde_json::json;

use crate::harness::{t, TestDb};

pub(crate) fn event(id: &str, key: Option<&str>, idempotency_key: Option<&str>) -> NewEvent {
    NewEvent {
        id: id.to_owned(),
        workflow: "wf".to_owned(),
        trigger: "hook".to_owned(),
        key: key.map(str::to_owned),
        idempotency_key: idempotency_key.map(str::to_owned),
        data: json!({"id": id, "nested": {"b": 1, "a": [1, 2]}}),
        received_at: t(1),
    }
}

pub(crate) async fn insert_and_get(db: &TestDb) {
    let store = db.open().await;
    let new = event("e1", None, None);
    let inserted = store.insert_event(&new).await.expect("insert");
    assert!(inserted.created);
    assert_eq!(inserted.event.data, new.data);
    let got = store.get_event("e1").await.expect("get");
    assert_eq!(got, inserted.event);
    assert_eq!(
        (got.trigger.as_str(), got.received_at, got.run_id),
        ("hook", t(1), None)
    );
    // Events without any key are never de-duplicated.
    assert!(
        store
            .insert_event(&event("e2", None, None))
            .await
            .expect("e2")
            .created
    );
    assert!(matches!(
        store.get_event("nope").await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn idempotency_key_returns_first_event(db: &TestDb) {
    let store = db.open().await;
    let first = store
        .insert_event(&event("e1", None, Some("idem")))
        .await
        .expect("first");
    let mut again = event("e2", None, Some("idem"));
    again.data = json!({"other": true});
    let second = store.insert_event(&again).await.expect("second");
    assert!(!second.created);
    assert_eq!(second.event, first.event);
    assert!(matches!(
        store.get_event("e2").await,
        Err(StoreError::NotFound(_))
    ));

    // The key is per workflow.
    let mut elsewhere = event("e3", None, Some("idem"));
    elsewhere.workflow = "other".to_owned();
    assert!(
        store
            .insert_event(&elsewhere)
            .await
            .expect("other workflow")
            .created
    );

    // The first event's run comes back with the duplicate.
    store
        .create_run(&NewRun {
            id: "r1".to_owned(),
            workflow: "wf".to_owned(),
            workflow_version: 1,
            parameters: json!({}),
            origin: RunOrigin::Event("e1".to_owned()),
            created_at: t(2),
            audit: crate::harness::audit(),
        })
        .await
        .expect("run");
    let third = store
        .insert_event(&event("e4", None, Some("idem")))
        .await
        .expect("third");
    assert_eq!((third.created, third.event.id.as_str()), (false, "e1"));
    assert_eq!(third.event.run_id.as_deref(), Some("r1"));
}

pub(crate) async fn dedup_key_is_per_trigger(db: &TestDb) {
    let store = db.open().await;
    assert!(
        store
            .insert_event(&event("e1", Some("k"), None))
            .await
            .expect("e1")
            .created
    );
    let dup = store
        .insert_event(&event("e2", Some("k"), None))
        .await
        .expect("e2");
    assert_eq!((dup.created, dup.event.id.as_str()), (false, "e1"));
    let mut other_trigger = event("e3", Some("k"), None);
    other_trigger.trigger = "schedule".to_owned();
    assert!(
        store
            .insert_event(&other_trigger)
            .await
            .expect("e3")
            .created
    );
    let mut other_workflow = event("e4", Some("k"), None);
    other_workflow.workflow = "wf2".to_owned();
    assert!(
        store
            .insert_event(&other_workflow)
            .await
            .expect("e4")
            .created
    );
}

pub(crate) async fn same_id_twice_returns_first(db: &TestDb) {
    let store = db.open().await;
    let first = store
        .insert_event(&event("e1", None, None))
        .await
        .expect("first");
    let mut again = event("e1", None, None);
    again.data = json!("changed");
    let second = store.insert_event(&again).await.expect("second");
    assert!(!second.created);
    assert_eq!(second.event, first.event);
}

pub(crate) async fn concurrent_idempotent_inserts_make_one_event(db: &TestDb) {
    let store = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .insert_event(&event(&format!("e{i}"), None, Some("same")))
                .await
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let inserted = task.await.expect("task").expect("insert");
        created += usize::from(inserted.created);
        ids.insert(inserted.event.id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1, "every caller sees the one event: {ids:?}");
    assert_eq!(
        store.events_without_run(100).await.expect("events").len(),
        1
    );
}

pub(crate) async fn events_without_run_and_links(db: &TestDb) {
    let store = db.open().await;
    for (id, at) in [("late", 5), ("early", 1)] {
        let mut e = event(id, None, None);
        e.received_at = t(at);
        store.insert_event(&e).await.expect("insert");
    }
    let pending = store.events_without_run(10).await.expect("pending");
    assert_eq!(
        pending.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["early", "late"]
    );
    store
        .create_run(&NewRun {
            id: "r".to_owned(),
            workflow: "wf".to_owned(),
            workflow_version: 1,
            parameters: json!({}),
            origin: RunOrigin::Event("early".to_owned()),
            created_at: t(6),
            audit: crate::harness::audit(),
        })
        .await
        .expect("run");
    let pending = store.events_without_run(10).await.expect("pending");
    assert_eq!(
        pending.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["late"]
    );
    assert_eq!(
        store
            .get_event("early")
            .await
            .expect("early")
            .run_id
            .as_deref(),
        Some("r")
    );
    assert_eq!(store.events_without_run(1).await.expect("limit").len(), 1);
}
