//! Trigger records (stable webhook ids, schedule marks) and push tokens.

use gantry_store::{PushToken, StoreError};

use crate::harness::{t, TestDb};

pub(crate) async fn ensure_is_stable_and_marks_move_forward(db: &TestDb) {
    let store = db.open().await;
    let first = store
        .ensure_trigger("id-1", "deploy", "hook", t(1))
        .await
        .expect("ensure");
    assert_eq!(
        (first.id.as_str(), first.workflow.as_str()),
        ("id-1", "deploy")
    );
    assert_eq!(first.last_fire_at, None);
    // A second apply of the workflow proposes a new id; the first one stays.
    let again = store
        .ensure_trigger("id-2", "deploy", "hook", t(2))
        .await
        .expect("ensure again");
    assert_eq!(again, first);
    store
        .ensure_trigger("id-3", "deploy", "nightly", t(3))
        .await
        .expect("second trigger");
    store
        .ensure_trigger("id-4", "other", "hook", t(3))
        .await
        .expect("same name, other workflow");

    assert_eq!(store.find_trigger("id-1").await.expect("find"), first);
    assert!(matches!(
        store.find_trigger("id-2").await,
        Err(StoreError::NotFound(_))
    ));
    let names: Vec<String> = store
        .list_triggers("deploy")
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["hook", "nightly"]);

    store
        .mark_fired("deploy", "nightly", t(60))
        .await
        .expect("mark");
    store
        .mark_fired("deploy", "nightly", t(30))
        .await
        .expect("an older mark is accepted and ignored");
    let nightly = store.find_trigger("id-3").await.expect("find");
    assert_eq!(
        nightly.last_fire_at,
        Some(t(60)),
        "the mark only moves forward"
    );
    assert!(matches!(
        store.mark_fired("deploy", "missing", t(60)).await,
        Err(StoreError::NotFound(_))
    ));
}

fn token(id: &str, trigger: &str, at: i64) -> PushToken {
    PushToken {
        id: id.to_owned(),
        workflow: "deploy".to_owned(),
        trigger: trigger.to_owned(),
        created_at: t(at),
        revoked_at: None,
    }
}

pub(crate) async fn push_tokens_list_and_revoke(db: &TestDb) {
    let store = db.open().await;
    store
        .create_push_token(&token("b", "push", 2), &crate::harness::audit())
        .await
        .expect("create");
    store
        .create_push_token(&token("a", "push", 1), &crate::harness::audit())
        .await
        .expect("create");
    store
        .create_push_token(&token("c", "other", 1), &crate::harness::audit())
        .await
        .expect("create");
    assert!(matches!(
        store
            .create_push_token(&token("a", "push", 3), &crate::harness::audit())
            .await,
        Err(StoreError::Conflict(_))
    ));
    let ids: Vec<String> = store
        .list_push_tokens("deploy", "push")
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["a", "b"], "oldest first, one trigger only");

    store
        .revoke_push_token("a", &crate::harness::audit_at(t(5)))
        .await
        .expect("revoke");
    store
        .revoke_push_token("a", &crate::harness::audit_at(t(9)))
        .await
        .expect("revoke again");
    assert_eq!(
        store.get_push_token("a").await.expect("get").revoked_at,
        Some(t(5))
    );
    assert_eq!(
        store.get_push_token("b").await.expect("get").revoked_at,
        None
    );
    assert!(matches!(
        store
            .revoke_push_token("zz", &crate::harness::audit_at(t(5)))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_push_token("zz").await,
        Err(StoreError::NotFound(_))
    ));
}
