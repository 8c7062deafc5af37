//! "Restart on the same database": what a crashed process left is there after reopening.

use std::time::Duration;

use gantry_store::{Lease, NewJob, NewWorkflowVersion, RunStatus, RunUpdate, StoreError};

use crate::events::event;
use crate::harness::{claim_one, manual_run, t, TestDb};

pub(crate) async fn data_survives_reopen_and_migrations_are_idempotent(db: &TestDb) {
    let store = db.open().await;
    let wf = NewWorkflowVersion {
        name: "wf".to_owned(),
        yaml: "y".to_owned(),
        canonical: "{}".to_owned(),
        at: t(0),
    };
    store
        .put_workflow(&wf, &crate::harness::audit())
        .await
        .expect("workflow");
    store
        .insert_event(&event("e1", None, Some("idem")))
        .await
        .expect("event");
    manual_run(store.as_ref(), "r1", "wf", t(1)).await;
    let running = RunUpdate {
        status: RunStatus::Running,
        reason: None,
        started_at: Some(t(2)),
        ended_at: None,
    };
    store.update_run("r1", &running).await.expect("running");
    let job = NewJob {
        id: "j".to_owned(),
        pool: "default".to_owned(),
        run_id: "r1".to_owned(),
        step: "s".to_owned(),
        payload: serde_json::json!({}),
        available_at: t(0),
        claimed: None,
    };
    store.enqueue(&job).await.expect("job");
    let lease = |worker: &str, now| Lease {
        worker: worker.to_owned(),
        duration: Duration::from_secs(10),
        now,
    };
    claim_one(store.as_ref(), &lease("before-crash", t(3)))
        .await
        .expect("claim")
        .expect("job");
    store.ping().await.expect("ping");

    // Reopen twice: migrations already applied must be a no-op.
    let store = db.reopen(store).await;
    let store = db.reopen(store).await;
    assert_eq!(store.get_workflow("wf").await.expect("workflow").version, 1);
    let again = store
        .insert_event(&event("e2", None, Some("idem")))
        .await
        .expect("event");
    assert_eq!((again.created, again.event.id.as_str()), (false, "e1"));
    let stuck = store
        .runs_in_status(RunStatus::Running)
        .await
        .expect("running");
    assert_eq!(
        stuck.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r1"]
    );
    assert_eq!(
        store.put_workflow(&wf, &crate::harness::audit()).await,
        Ok(2)
    );
    store.ping().await.expect("ping after reopen");

    // The lease of the worker that died with the process still holds until it runs out...
    assert_eq!(
        claim_one(store.as_ref(), &lease("after-restart", t(4))).await,
        Ok(None)
    );
    // ...then the job comes back, and the dead worker's late completion is refused.
    let back = claim_one(store.as_ref(), &lease("after-restart", t(13)))
        .await
        .expect("claim")
        .expect("job back");
    assert_eq!((back.id.as_str(), back.attempts), ("j", 2));
    assert!(matches!(
        store
            .complete("j", "before-crash", &serde_json::json!(null), t(14))
            .await,
        Err(StoreError::Conflict(_))
    ));
}
