//! Self-service actions: definitions with optimistic versions, runs whose updates expect the
//! version they read, lists filtered and paged newest first, and numbered log lines.

use gantry_store::{
    ActionRunFilter, ActionRunRow, NewAuditEvent, PageRequest, StoreError, StoredAction,
};
use serde_json::json;

use crate::harness::{audit, t, TestDb};

fn action(id: &str, version: i64) -> StoredAction {
    StoredAction {
        identifier: id.to_owned(),
        definition: json!({"identifier": id, "title": format!("v{version}"), "operation": "create"}),
        version,
        created_at: t(1),
        updated_at: t(version),
        created_by: "admin".into(),
        updated_by: "admin".into(),
        managed_by: None,
    }
}

fn run(id: &str, action: &str, entity: Option<(&str, &str)>, by: &str, at: i64) -> ActionRunRow {
    ActionRunRow {
        id: id.to_owned(),
        action: action.to_owned(),
        entity: entity.map(|(b, i)| (b.to_owned(), i.to_owned())),
        requested_by: by.to_owned(),
        status: "queued".into(),
        workflow_run: None,
        deadline_at: None,
        created_at: t(at),
        updated_at: t(at),
        version: 1,
        doc: json!({"inputs": {"n": at}}),
    }
}

fn event(resource: &str) -> NewAuditEvent {
    NewAuditEvent {
        audit: audit(),
        action: "action_run.create".into(),
        resource: resource.into(),
        before: None,
        after: None,
    }
}

pub(crate) async fn definitions_are_versioned(db: &TestDb) {
    let store = db.open().await;
    store
        .put_action(&action("b", 1), None, &audit())
        .await
        .unwrap();
    store
        .put_action(&action("a", 1), None, &audit())
        .await
        .unwrap();
    // A second create, and a change expecting a stale version, are conflicts.
    assert!(matches!(
        store.put_action(&action("a", 1), None, &audit()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.put_action(&action("a", 3), Some(2), &audit()).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .put_action(&action("a", 2), Some(1), &audit())
        .await
        .unwrap();
    let a = store.get_action("a").await.unwrap();
    assert_eq!((a.version, a.definition["title"].clone()), (2, json!("v2")));
    assert_eq!(a.created_at, t(1));
    let ids: Vec<String> = store
        .list_actions()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.identifier)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    store.delete_action("a", &audit()).await.unwrap();
    assert!(matches!(
        store.get_action("a").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_action("a", &audit()).await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn runs_update_by_version_list_and_log(db: &TestDb) {
    let store = db.open().await;
    for (i, (action, entity, by)) in [
        ("restart", Some(("service", "a")), "olga"),
        ("restart", Some(("service", "b")), "olga"),
        ("create", None, "sam"),
        ("restart", Some(("service", "a")), "sam"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = run(&format!("r{i}"), action, entity, by, i as i64 + 1);
        store
            .create_action_run(&r, &event("action/x"))
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .create_action_run(&run("r0", "restart", None, "x", 9), &event("action/x"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // An update names the version it makes; a stale one changes nothing.
    let mut r = store.get_action_run("r1").await.unwrap();
    r.version = 2;
    r.status = "running".into();
    r.workflow_run = Some("wf-run-1".into());
    r.deadline_at = Some(t(100));
    store.update_action_run(&r, None).await.unwrap();
    let mut stale = r.clone();
    stale.status = "failed".into();
    assert!(matches!(
        store.update_action_run(&stale, None).await,
        Err(StoreError::Conflict(_))
    ));
    let got = store.get_action_run("r1").await.unwrap();
    assert_eq!(
        (got.status.as_str(), got.version, got.deadline_at),
        ("running", 2, Some(t(100)))
    );
    assert_eq!(got.workflow_run.as_deref(), Some("wf-run-1"));
    let mut missing = run("zz", "x", None, "x", 1);
    missing.version = 2;
    assert!(matches!(
        store.update_action_run(&missing, None).await,
        Err(StoreError::NotFound(_))
    ));

    let ids = |page: &gantry_store::Page<ActionRunRow>| -> Vec<String> {
        page.items.iter().map(|r| r.id.clone()).collect()
    };
    let all = PageRequest::first(10);
    let list = |f: ActionRunFilter| {
        let store = store.clone();
        let all = all.clone();
        async move { store.list_action_runs(&f, &all).await.unwrap() }
    };
    assert_eq!(
        ids(&list(ActionRunFilter::default()).await),
        ["r3", "r2", "r1", "r0"]
    );
    assert_eq!(
        ids(&list(ActionRunFilter {
            action: Some("restart".into()),
            ..Default::default()
        })
        .await),
        ["r3", "r1", "r0"]
    );
    assert_eq!(
        ids(&list(ActionRunFilter {
            entity: Some(("service".into(), "a".into())),
            ..Default::default()
        })
        .await),
        ["r3", "r0"]
    );
    assert_eq!(
        ids(&list(ActionRunFilter {
            requested_by: Some("sam".into()),
            ..Default::default()
        })
        .await),
        ["r3", "r2"]
    );
    assert_eq!(
        ids(&list(ActionRunFilter {
            status: Some("running".into()),
            ..Default::default()
        })
        .await),
        ["r1"]
    );
    let first = store
        .list_action_runs(&ActionRunFilter::default(), &PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(ids(&first), ["r3", "r2", "r1"]);
    let next = store
        .list_action_runs(
            &ActionRunFilter::default(),
            &PageRequest::after(first.next.unwrap(), 3),
        )
        .await
        .unwrap();
    assert_eq!((ids(&next), next.next), (vec!["r0".to_owned()], None));
    let in_flight: Vec<String> = store
        .action_runs_in_status(&["queued", "running"])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(in_flight, ["r0", "r1", "r2", "r3"]);

    let lines = [(t(5), "one".to_owned()), (t(6), "two".to_owned())];
    assert_eq!(store.append_action_run_logs("r1", &lines).await.unwrap(), 2);
    assert_eq!(
        store
            .append_action_run_logs("r1", &lines[..1])
            .await
            .unwrap(),
        3
    );
    assert!(matches!(
        store.append_action_run_logs("nope", &lines).await,
        Err(StoreError::NotFound(_))
    ));
    let read = store.read_action_run_logs("r1", 1, 10).await.unwrap();
    let text: Vec<(i64, &str)> = read.iter().map(|l| (l.seq, l.line.as_str())).collect();
    assert_eq!(text, [(2, "two"), (3, "one")]);
}
