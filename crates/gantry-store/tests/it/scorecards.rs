//! Scorecards and automations: definitions of every kind versioned and audited alike, scorecard
//! rows replaced and removed with their history appended in order, and firings stored with their
//! audit events, listed newest first.

use gantry_store::{
    AuditFilter, DefinitionKind, FiringFilter, FiringRow, HistoryFilter, LevelChangeRow,
    NewAuditEvent, PageRequest, ScorecardEntityRow, ScorecardStateWrite, StoreError, StoredAction,
};
use serde_json::json;

use crate::harness::{audit, t, TestDb};

fn def(id: &str, version: i64) -> StoredAction {
    StoredAction {
        identifier: id.to_owned(),
        definition: json!({"identifier": id, "title": format!("v{version}")}),
        version,
        created_at: t(1),
        updated_at: t(version),
        created_by: "admin".into(),
        updated_by: "admin".into(),
        managed_by: Some("file:sc.yaml".into()),
    }
}

pub(crate) async fn definitions_of_each_kind_are_apart_versioned_and_audited(db: &TestDb) {
    let store = db.open().await;
    for kind in [
        DefinitionKind::Scorecard,
        DefinitionKind::Initiative,
        DefinitionKind::Automation,
    ] {
        store
            .put_definition(kind, &def("x", 1), None, &audit())
            .await
            .unwrap();
        let again = store
            .put_definition(kind, &def("x", 1), None, &audit())
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(ref m)) if m.contains(kind.as_str())));
        store
            .put_definition(kind, &def("x", 2), Some(1), &audit())
            .await
            .unwrap();
        assert_eq!(store.get_definition(kind, "x").await.unwrap(), def("x", 2));
    }
    // Same identifier, three kinds, three rows; actions do not see them.
    assert!(store.list_actions().await.unwrap().is_empty());
    store
        .delete_definition(DefinitionKind::Initiative, "x", &audit())
        .await
        .unwrap();
    assert!(matches!(
        store.get_definition(DefinitionKind::Initiative, "x").await,
        Err(StoreError::NotFound(_))
    ));
    let left = store
        .list_definitions(DefinitionKind::Scorecard)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    let events = store
        .list_audit(&AuditFilter::default(), &PageRequest::first(100))
        .await
        .unwrap()
        .items;
    let mut seen: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e.action, e.resource))
        .collect();
    seen.reverse();
    assert_eq!(
        seen,
        [
            "scorecard.create scorecard/x",
            "scorecard.update scorecard/x",
            "initiative.create initiative/x",
            "initiative.update initiative/x",
            "automation.create automation/x",
            "automation.update automation/x",
            "initiative.delete initiative/x",
        ]
    );
}

fn row(sc: &str, id: &str, level: &str, at: i64) -> ScorecardEntityRow {
    ScorecardEntityRow {
        scorecard: sc.into(),
        blueprint: "service".into(),
        identifier: id.into(),
        level: level.into(),
        score: 50.0,
        since: t(at),
        rules: json!([{"rule": "has-owner", "passed": true, "value": "team-a", "since": at}]),
    }
}

fn change(sc: &str, id: &str, from: Option<&str>, to: Option<&str>, at: i64) -> LevelChangeRow {
    LevelChangeRow {
        seq: 0,
        scorecard: sc.into(),
        blueprint: "service".into(),
        identifier: id.into(),
        from: from.map(Into::into),
        to: to.map(Into::into),
        score: to.map(|_| 50.0),
        at: t(at),
    }
}

pub(crate) async fn scorecard_rows_and_history(db: &TestDb) {
    let store = db.open().await;
    let n = 2500; // more rows than one statement holds
    let mut first = ScorecardStateWrite::default();
    for i in 0..n {
        let id = format!("s{i:04}");
        first.put.push(row("prod", &id, "Bronze", 1));
        first
            .history
            .push(change("prod", &id, None, Some("Bronze"), 1));
    }
    first.put.push(row("other", "s0000", "Gold", 1));
    store.write_scorecard_state(&first).await.unwrap();
    assert_eq!(store.load_scorecard_state("prod").await.unwrap().len(), n);

    // The same row twice in one write: the last one stands.
    let mut second = ScorecardStateWrite::default();
    second.put.push(row("prod", "s0001", "Silver", 2));
    second.put.push(row("prod", "s0001", "Gold", 3));
    second
        .history
        .push(change("prod", "s0001", Some("Bronze"), Some("Gold"), 3));
    second
        .removed
        .push(("prod".into(), "service".into(), "s0002".into()));
    second
        .history
        .push(change("prod", "s0002", Some("Bronze"), None, 3));
    store.write_scorecard_state(&second).await.unwrap();
    let rows = store.load_scorecard_state("prod").await.unwrap();
    assert_eq!(rows.len(), n - 1);
    let s1 = rows.iter().find(|r| r.identifier == "s0001").unwrap();
    assert_eq!((s1.level.as_str(), s1.since), ("Gold", t(3)));
    assert_eq!(s1.rules[0]["value"], "team-a");

    let history = store
        .scorecard_history(
            &HistoryFilter {
                scorecard: Some("prod".into()),
                entity: Some(("service".into(), "s0001".into())),
                before: None,
            },
            10,
        )
        .await
        .unwrap();
    let moves: Vec<_> = history
        .iter()
        .map(|h| (h.from.clone(), h.to.clone(), h.at))
        .collect();
    assert_eq!(
        moves,
        [
            (Some("Bronze".into()), Some("Gold".into()), t(3)),
            (None, Some("Bronze".into()), t(1)),
        ]
    );
    // Paging by seq.
    let older = store
        .scorecard_history(
            &HistoryFilter {
                scorecard: Some("prod".into()),
                entity: None,
                before: Some(history[0].seq),
            },
            3,
        )
        .await
        .unwrap();
    assert_eq!(older.len(), 3);
    assert!(older.iter().all(|h| h.seq < history[0].seq));

    // Removing a scorecard's rows keeps other scorecards' rows and all history.
    store
        .write_scorecard_state(&ScorecardStateWrite {
            removed_scorecards: vec!["prod".into()],
            ..ScorecardStateWrite::default()
        })
        .await
        .unwrap();
    assert!(store.load_scorecard_state("prod").await.unwrap().is_empty());
    assert_eq!(store.load_scorecard_state("other").await.unwrap().len(), 1);
    let kept = store
        .scorecard_history(&HistoryFilter::default(), 10_000)
        .await
        .unwrap();
    assert_eq!(kept.len(), n + 2);
}

pub(crate) async fn firings_are_stored_with_their_audit_events(db: &TestDb) {
    let store = db.open().await;
    let firing = |id: &str, automation: &str, status: &str, at: i64| FiringRow {
        id: id.into(),
        automation: automation.into(),
        event_type: "entity.updated".into(),
        status: status.into(),
        at: t(at),
        doc: json!({"event": {"identifier": id}}),
    };
    let firings = vec![
        firing("f1", "a", "started", 1),
        firing("f2", "b", "failed", 2),
        firing("f3", "a", "stopped", 3),
    ];
    let audit_events: Vec<NewAuditEvent> = firings
        .iter()
        .map(|f| NewAuditEvent {
            audit: audit(),
            action: "automation.fire".into(),
            resource: format!("automation/{}", f.automation),
            before: None,
            after: Some(json!({"firing": f.id})),
        })
        .collect();
    store.record_firings(&firings, &audit_events).await.unwrap();
    let all = store
        .list_firings(&FiringFilter::default(), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["f3", "f2", "f1"]);
    assert_eq!(all[2], firings[0]);
    let of_a = store
        .list_firings(
            &FiringFilter {
                automation: Some("a".into()),
                status: None,
                before: Some((t(3), "f3".into())),
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(of_a.len(), 1);
    assert_eq!(of_a[0].id, "f1");
    let failed = store
        .list_firings(
            &FiringFilter {
                status: Some("failed".into()),
                ..FiringFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    let audited = store
        .list_audit(
            &AuditFilter {
                action: Some("automation.fire".into()),
                ..AuditFilter::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(audited.len(), 3);
}
