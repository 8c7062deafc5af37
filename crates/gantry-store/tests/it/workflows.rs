//! Workflows: create or replace by name, versions, pagination, soft delete.

use gantry_store::{NewWorkflowVersion, PageRequest, StoreError};

use crate::harness::{t, TestDb};

pub(crate) fn version(name: &str, yaml: &str, at: i64) -> NewWorkflowVersion {
    NewWorkflowVersion {
        name: name.to_owned(),
        yaml: yaml.to_owned(),
        // Key order that JSONB would change: it must come back as given.
        canonical: format!(r#"{{"zeta":1,"alpha":{yaml:?}}}"#),
        at: t(at),
    }
}

pub(crate) async fn create_replace_and_versions(db: &TestDb) {
    let store = db.open().await;
    assert!(matches!(
        store.get_workflow("hello").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .put_workflow(&version("hello", "steps: []", 1), &crate::harness::audit())
            .await,
        Ok(1)
    );
    assert_eq!(
        store
            .put_workflow(&version("hello", "steps: [a]", 2), &crate::harness::audit())
            .await,
        Ok(2)
    );
    assert_eq!(
        store
            .put_workflow(&version("other", "x", 3), &crate::harness::audit())
            .await,
        Ok(1)
    );

    let current = store.get_workflow("hello").await.expect("current");
    assert_eq!((current.version, current.yaml.as_str()), (2, "steps: [a]"));
    assert_eq!(current.canonical, r#"{"zeta":1,"alpha":"steps: [a]"}"#);
    assert_eq!(current.created_at, t(2));

    let first = store.get_workflow_version("hello", 1).await.expect("v1");
    assert_eq!(first.yaml, "steps: []");
    assert!(matches!(
        store.get_workflow_version("hello", 3).await,
        Err(StoreError::NotFound(_))
    ));

    let versions = store
        .list_workflow_versions("hello")
        .await
        .expect("versions");
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(matches!(
        store.list_workflow_versions("nope").await,
        Err(StoreError::NotFound(_))
    ));

    let page = store
        .list_workflows(&PageRequest::first(10))
        .await
        .expect("list");
    let hello = &page.items[0];
    assert_eq!((hello.name.as_str(), hello.current_version), ("hello", 2));
    assert_eq!((hello.created_at, hello.updated_at), (t(1), t(2)));
}

pub(crate) async fn list_pagination_edges(db: &TestDb) {
    let store = db.open().await;
    let empty = store
        .list_workflows(&PageRequest::first(3))
        .await
        .expect("empty");
    assert!(empty.items.is_empty() && empty.next.is_none());

    for name in ["w1", "w2", "w3", "w4", "w5", "w6"] {
        store
            .put_workflow(&version(name, "y", 0), &crate::harness::audit())
            .await
            .expect("put");
    }
    let mut seen = Vec::new();
    let mut page = store
        .list_workflows(&PageRequest::first(3))
        .await
        .expect("page 1");
    seen.extend(page.items.iter().map(|w| w.name.clone()));
    assert_eq!(page.items.len(), 3);
    let cursor = page.next.clone().expect("a second page");
    page = store
        .list_workflows(&PageRequest::after(cursor, 3))
        .await
        .expect("page 2");
    seen.extend(page.items.iter().map(|w| w.name.clone()));
    // Exactly a full last page: no further cursor.
    assert_eq!(page.next, None);
    assert_eq!(seen, ["w1", "w2", "w3", "w4", "w5", "w6"]);

    let all = store
        .list_workflows(&PageRequest::first(6))
        .await
        .expect("all");
    assert_eq!((all.items.len(), all.next), (6, None));
    let five = store
        .list_workflows(&PageRequest::first(5))
        .await
        .expect("five");
    assert_eq!(five.next.as_deref(), Some("w5"));
    let past = store
        .list_workflows(&PageRequest::after("w6", 3))
        .await
        .expect("past the end");
    assert!(past.items.is_empty() && past.next.is_none());
    // A zero limit is clamped to one item.
    let one = store
        .list_workflows(&PageRequest::first(0))
        .await
        .expect("one");
    assert_eq!(one.items.len(), 1);
}

pub(crate) async fn delete_keeps_history_and_numbering(db: &TestDb) {
    let store = db.open().await;
    store
        .put_workflow(&version("gone", "a", 1), &crate::harness::audit())
        .await
        .expect("v1");
    store
        .put_workflow(&version("gone", "b", 2), &crate::harness::audit())
        .await
        .expect("v2");
    store
        .delete_workflow("gone", &crate::harness::audit_at(t(3)))
        .await
        .expect("delete");
    assert!(matches!(
        store.get_workflow("gone").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .delete_workflow("gone", &crate::harness::audit_at(t(4)))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store
        .list_workflows(&PageRequest::first(10))
        .await
        .expect("list")
        .items
        .is_empty());
    // Run history can still read the source of a deleted workflow.
    assert_eq!(
        store
            .get_workflow_version("gone", 2)
            .await
            .expect("v2")
            .yaml,
        "b"
    );

    assert_eq!(
        store
            .put_workflow(&version("gone", "c", 5), &crate::harness::audit())
            .await,
        Ok(3)
    );
    let back = store
        .list_workflows(&PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(back.items[0].created_at, t(5));
    assert!(matches!(
        store
            .delete_workflow("never", &crate::harness::audit_at(t(6)))
            .await,
        Err(StoreError::NotFound(_))
    ));
}
