//! Runs: creation (manual or from an event), status, steps, outputs, lists.

use gantry_store::{
    NewRun, Output, PageRequest, RunFilter, RunOrigin, RunStatus, RunUpdate, StepChange,
    StepStatus, StoreError,
};
use serde_json::json;

use crate::events::event;
use crate::harness::{manual_run, t, TestDb};

fn step(name: &str, state: StepStatus, at: i64) -> StepChange {
    StepChange {
        step: name.to_owned(),
        state,
        reason: None,
        started_at: None,
        ended_at: None,
        exit_code: None,
        at: t(at),
    }
}

pub(crate) async fn create_get_update(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(1)).await;
    let run = store.get_run("r1").await.expect("get");
    assert_eq!(run.summary.status, RunStatus::Queued);
    assert_eq!(run.summary.origin, RunOrigin::Manual);
    assert_eq!(run.summary.parameters, json!({"p": 1}));
    assert_eq!(
        (run.summary.workflow_version, run.summary.created_at),
        (1, t(1))
    );
    assert!(run.steps.is_empty() && run.outputs.is_empty());

    let started = RunUpdate {
        status: RunStatus::Running,
        reason: None,
        started_at: Some(t(2)),
        ended_at: None,
    };
    store.update_run("r1", &started).await.expect("start");
    let ended = RunUpdate {
        status: RunStatus::Failed,
        reason: Some("step a failed".to_owned()),
        started_at: None,
        ended_at: Some(t(3)),
    };
    store.update_run("r1", &ended).await.expect("end");
    let run = store.get_run("r1").await.expect("get").summary;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!((run.started_at, run.ended_at), (Some(t(2)), Some(t(3))));
    assert_eq!(run.reason.as_deref(), Some("step a failed"));

    assert!(matches!(
        store.update_run("nope", &started).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_run("nope").await,
        Err(StoreError::NotFound(_))
    ));
    let dup = NewRun {
        id: "r1".to_owned(),
        workflow: "wf".to_owned(),
        workflow_version: 1,
        parameters: json!({}),
        origin: RunOrigin::Manual,
        created_at: t(4),
        audit: crate::harness::audit(),
    };
    assert!(matches!(
        store.create_run(&dup).await,
        Err(StoreError::Conflict(_))
    ));
}

pub(crate) async fn run_from_event_is_unique(db: &TestDb) {
    let store = db.open().await;
    store
        .insert_event(&event("e1", None, None))
        .await
        .expect("event");
    let run = |id: &str, event: &str| NewRun {
        id: id.to_owned(),
        workflow: "wf".to_owned(),
        workflow_version: 1,
        parameters: json!({}),
        origin: RunOrigin::Event(event.to_owned()),
        created_at: t(2),
        audit: crate::harness::audit(),
    };
    store.create_run(&run("r1", "e1")).await.expect("first run");
    assert!(matches!(
        store.create_run(&run("r2", "e1")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_run(&run("r3", "missing")).await,
        Err(StoreError::NotFound(_))
    ));
    // The refused creations left nothing behind.
    assert!(matches!(
        store.get_run("r2").await,
        Err(StoreError::NotFound(_))
    ));
    let got = store.get_run("r1").await.expect("r1").summary;
    assert_eq!(got.origin, RunOrigin::Event("e1".to_owned()));
}

pub(crate) async fn steps_and_outputs(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(1)).await;
    store
        .record_step("r1", &step("b", StepStatus::Pending, 1))
        .await
        .expect("b pending");
    let mut running = step("a", StepStatus::Running, 2);
    running.started_at = Some(t(2));
    store.record_step("r1", &running).await.expect("a running");
    let mut done = step("a", StepStatus::Failed, 3);
    done.ended_at = Some(t(3));
    done.exit_code = Some(-2);
    done.reason = Some("exit code -2".to_owned());
    store.record_step("r1", &done).await.expect("a failed");
    store
        .record_step("r1", &step("b", StepStatus::Skipped, 3))
        .await
        .expect("b skipped");

    let out = |step: &str, name: &str, value, sensitive| Output {
        step: step.to_owned(),
        name: name.to_owned(),
        value,
        sensitive,
    };
    store
        .set_output("r1", &out("a", "url", json!("http://x"), false))
        .await
        .expect("out");
    store
        .set_output("r1", &out("a", "token", json!({"t": 1}), true))
        .await
        .expect("out");
    store
        .set_output("r1", &out("a", "url", json!("http://y"), false))
        .await
        .expect("replace");

    let run = store.get_run("r1").await.expect("get");
    let a = &run.steps[0];
    assert_eq!((a.step.as_str(), a.state), ("a", StepStatus::Failed));
    // A change without times keeps the stored ones.
    assert_eq!(
        (a.started_at, a.ended_at, a.exit_code),
        (Some(t(2)), Some(t(3)), Some(-2))
    );
    assert_eq!(
        (a.reason.as_deref(), a.updated_at),
        (Some("exit code -2"), t(3))
    );
    assert_eq!(
        (run.steps[1].step.as_str(), run.steps[1].state),
        ("b", StepStatus::Skipped)
    );
    assert_eq!(
        run.outputs,
        vec![
            out("a", "token", json!({"t": 1}), true),
            out("a", "url", json!("http://y"), false)
        ]
    );

    assert!(matches!(
        store
            .record_step("nope", &step("a", StepStatus::Running, 1))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_output("nope", &out("a", "x", json!(1), false))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn list_filters_and_pagination(db: &TestDb) {
    let store = db.open().await;
    let empty = store
        .list_runs(&RunFilter::default(), &PageRequest::first(2))
        .await
        .expect("empty");
    assert!(empty.items.is_empty() && empty.next.is_none());
    // Two runs share a creation time, so the id breaks the tie.
    for (id, workflow, at) in [
        ("r1", "a", 1),
        ("r2", "b", 2),
        ("r3", "a", 3),
        ("r4", "a", 3),
        ("r5", "b", 5),
    ] {
        manual_run(store.as_ref(), id, workflow, t(at)).await;
    }
    let running = RunUpdate {
        status: RunStatus::Running,
        reason: None,
        started_at: None,
        ended_at: None,
    };
    store.update_run("r3", &running).await.expect("r3 running");

    let mut ids = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = store
            .list_runs(&RunFilter::default(), &page)
            .await
            .expect("page");
        assert!(got.items.len() <= 2);
        ids.extend(got.items.iter().map(|r| r.id.clone()));
        match got.next {
            Some(next) => page = PageRequest::after(next, 2),
            None => break,
        }
    }
    assert_eq!(ids, ["r5", "r4", "r3", "r2", "r1"]);

    let only_a = RunFilter {
        workflow: Some("a".to_owned()),
        status: None,
    };
    let got = store
        .list_runs(&only_a, &PageRequest::first(10))
        .await
        .expect("a");
    assert_eq!(
        got.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r4", "r3", "r1"]
    );
    let a_running = RunFilter {
        workflow: Some("a".to_owned()),
        status: Some(RunStatus::Running),
    };
    let got = store
        .list_runs(&a_running, &PageRequest::first(10))
        .await
        .expect("a running");
    assert_eq!(
        got.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r3"]
    );
    let b_running = RunFilter {
        workflow: Some("b".to_owned()),
        status: Some(RunStatus::Running),
    };
    assert!(store
        .list_runs(&b_running, &PageRequest::first(10))
        .await
        .expect("none")
        .items
        .is_empty());

    let bad = PageRequest::after("not a cursor", 2);
    assert_eq!(
        store.list_runs(&RunFilter::default(), &bad).await,
        Err(StoreError::InvalidCursor)
    );
}

pub(crate) async fn runs_in_status_for_recovery(db: &TestDb) {
    let store = db.open().await;
    for (id, at) in [("r2", 2), ("r1", 1), ("r3", 3)] {
        manual_run(store.as_ref(), id, "wf", t(at)).await;
    }
    let running = RunUpdate {
        status: RunStatus::Running,
        reason: None,
        started_at: Some(t(4)),
        ended_at: None,
    };
    store.update_run("r2", &running).await.expect("r2");
    store.update_run("r1", &running).await.expect("r1");
    let stuck = store
        .runs_in_status(RunStatus::Running)
        .await
        .expect("running");
    assert_eq!(
        stuck.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    let queued = store
        .runs_in_status(RunStatus::Queued)
        .await
        .expect("queued");
    assert_eq!(
        queued.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r3"]
    );
    assert!(store
        .runs_in_status(RunStatus::TimedOut)
        .await
        .expect("none")
        .is_empty());
}
