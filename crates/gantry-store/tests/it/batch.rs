//! Group commit through `BatchWriter`.

use std::sync::Arc;
use std::time::Duration;

use gantry_store::{
    BatchConfig, BatchWriter, NewRun, RunOrigin, RunStatus, RunUpdate, StepChange, StepStatus,
    StoreError, Write,
};

use crate::events::event;
use crate::harness::{manual_run, TestDb};
use crate::logs::chunk;

pub(crate) async fn thousand_concurrent_events_few_transactions(db: &TestDb) {
    let store = db.open().await;
    let writer = BatchWriter::start(Arc::clone(&store), BatchConfig::default());
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let writer = writer.clone();
        // Every tenth event repeats an idempotency key, also inside one batch.
        let idem = (i % 10 == 0).then(|| format!("idem-{}", i % 20));
        tasks.push(tokio::spawn(async move {
            writer
                .insert_event(event(&format!("e{i}"), None, idem.as_deref()))
                .await
        }));
    }
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.expect("task").expect("accepted").created);
    }
    // 900 events without a key, plus keys idem-0 and idem-10.
    assert_eq!(created, 902);
    assert_eq!(
        store
            .events_without_run(10_000)
            .await
            .expect("events")
            .len(),
        902
    );
    let transactions = writer.stats().transactions();
    eprintln!("group commit: {transactions} transactions for 1000 events");
    assert_eq!(writer.stats().items(), 1000);
    assert!(
        transactions <= 100,
        "{transactions} transactions for 1000 events"
    );
}

pub(crate) async fn batched_logs_and_a_bad_item_fails_alone(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", crate::harness::t(0)).await;
    let config = BatchConfig {
        max_items: 64,
        max_delay: Duration::from_millis(20),
        queue: 128,
        ..BatchConfig::default()
    };
    let writer = BatchWriter::start(Arc::clone(&store), config);
    let mut tasks = Vec::new();
    for seq in 0..20 {
        let writer = writer.clone();
        let run = if seq == 7 { "no-such-run" } else { "r1" };
        tasks.push(tokio::spawn(async move {
            writer
                .append_log(chunk(run, "a", "stdout", seq, &format!("line {seq}")))
                .await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    for (seq, result) in results.iter().enumerate() {
        if seq == 7 {
            assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
        } else {
            assert_eq!(result, &Ok(()));
        }
    }
    let stored = store
        .read_step_logs("r1", "a", None, 100)
        .await
        .expect("read");
    assert_eq!(stored.len(), 19);
}

pub(crate) async fn batched_run_updates_and_step_changes(db: &TestDb) {
    let store = db.open().await;
    for id in ["r1", "r2"] {
        manual_run(store.as_ref(), id, "wf", crate::harness::t(0)).await;
    }
    let config = BatchConfig {
        max_items: 64,
        max_delay: Duration::from_millis(20),
        queue: 128,
        ..BatchConfig::default()
    };
    let writer = BatchWriter::start(Arc::clone(&store), config);
    let running = RunUpdate {
        status: RunStatus::Running,
        reason: None,
        started_at: Some(crate::harness::t(1)),
        ended_at: None,
    };
    let step = |name: &str, state| StepChange {
        step: name.to_owned(),
        state,
        reason: None,
        started_at: None,
        ended_at: None,
        exit_code: None,
        at: crate::harness::t(2),
    };
    let (a, b, c, d, e) = tokio::join!(
        writer.update_run("r1".to_owned(), running.clone()),
        writer.record_step("r1".to_owned(), step("x", StepStatus::Running)),
        writer.record_step("r2".to_owned(), step("y", StepStatus::Waiting)),
        writer.record_step("missing".to_owned(), step("z", StepStatus::Running)),
        writer.update_run("missing".to_owned(), running.clone()),
    );
    assert_eq!((a, b, c), (Ok(()), Ok(()), Ok(())));
    assert!(matches!(d, Err(StoreError::NotFound(_))), "{d:?}");
    assert!(matches!(e, Err(StoreError::NotFound(_))), "{e:?}");
    let r1 = store.get_run("r1").await.expect("r1");
    assert_eq!(r1.summary.status, RunStatus::Running);
    assert_eq!(r1.steps[0].state, StepStatus::Running);
    assert_eq!(
        store.get_run("r2").await.expect("r2").steps[0].state,
        StepStatus::Waiting
    );
}

/// Runs created from events, a run's changes and end queued in order, and schedule marks, through
/// the writer: a second run for the same event fails alone, and the end lands with its steps.
pub(crate) async fn batched_runs_ordered_writes_and_marks(db: &TestDb) {
    use crate::harness::t;
    let store = db.open().await;
    store
        .insert_event(&event("e1", None, None))
        .await
        .expect("event");
    store
        .ensure_trigger("tr-1", "wf", "nightly", t(0))
        .await
        .expect("trigger");
    let writer = BatchWriter::start(Arc::clone(&store), BatchConfig::default());
    let run = |id: &str| NewRun {
        id: id.to_owned(),
        workflow: "wf".to_owned(),
        workflow_version: 1,
        parameters: serde_json::json!({}),
        origin: RunOrigin::Event("e1".to_owned()),
        created_at: t(1),
        audit: crate::harness::audit(),
    };
    let (first, second, mark) = tokio::join!(
        writer.create_run(run("r1")),
        writer.create_run(run("r2")),
        writer.mark_fired("wf".to_owned(), "nightly".to_owned(), t(60)),
    );
    assert_eq!((&first, &mark), (&Ok(()), &Ok(())));
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    assert_eq!(
        store.get_event("e1").await.expect("e1").run_id.as_deref(),
        Some("r1")
    );
    let step = |state, ended| StepChange {
        step: "x".to_owned(),
        state,
        reason: None,
        started_at: None,
        ended_at: ended,
        exit_code: None,
        at: t(2),
    };
    let update = |status, ended| RunUpdate {
        status,
        reason: None,
        started_at: Some(t(1)),
        ended_at: ended,
    };
    writer
        .write_in_order(vec![
            Write::RunUpdate("r1".to_owned(), update(RunStatus::Running, None)),
            Write::Step("r1".to_owned(), step(StepStatus::Running, None)),
            Write::Step("r1".to_owned(), step(StepStatus::Succeeded, Some(t(3)))),
            Write::RunUpdate("r1".to_owned(), update(RunStatus::Succeeded, Some(t(3)))),
        ])
        .await
        .expect("ordered writes");
    let r1 = store.get_run("r1").await.expect("r1");
    assert_eq!(r1.summary.status, RunStatus::Succeeded);
    assert_eq!(r1.steps[0].state, StepStatus::Succeeded);
    let nightly = store.list_triggers("wf").await.expect("triggers");
    assert_eq!(nightly[0].last_fire_at, Some(t(60)));
}

pub(crate) async fn many_events_in_one_batch_first_wins(db: &TestDb) {
    let store = db.open().await;
    // A stored event whose de-duplication key a later batch repeats.
    store
        .insert_event(&event("old", Some("k-old"), None))
        .await
        .expect("insert");
    let batch = gantry_store::WriteBatch {
        events: vec![
            event("a", None, Some("idem-1")),
            event("b", None, Some("idem-1")),
            event("c", Some("k-old"), None),
            event("d", Some("k-new"), None),
            event("e", Some("k-new"), None),
            event("f", None, None),
        ],
        ..Default::default()
    };
    let inserted = store.write_batch(&batch).await.expect("batch");
    let answers: Vec<(&str, bool)> = inserted
        .events
        .iter()
        .map(|i| (i.event.id.as_str(), i.created))
        .collect();
    assert_eq!(
        answers,
        [
            ("a", true),
            ("a", false),
            ("old", false),
            ("d", true),
            ("d", false),
            ("f", true)
        ]
    );
    assert_eq!(
        store.get_event("d").await.expect("d").data,
        batch.events[3].data
    );
    assert!(matches!(
        store.get_event("b").await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn batched_job_enqueues_claims_and_completions(db: &TestDb) {
    use crate::harness::{manual_run, t};
    use gantry_store::{JobCompletion, Lease, NewJob};
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    let writer = BatchWriter::start(Arc::clone(&store), BatchConfig::default());
    let job = |id: &str, run: &str| NewJob {
        id: id.to_owned(),
        pool: "local".to_owned(),
        run_id: run.to_owned(),
        step: "s".to_owned(),
        payload: serde_json::json!({"n": id}),
        available_at: t(0),
        claimed: None,
    };
    let (a, b, bad) = tokio::join!(
        writer.enqueue(job("a", "r1")),
        writer.enqueue(job("b", "r1")),
        writer.enqueue(job("c", "no-such-run")),
    );
    assert_eq!((&a, &b), (&Ok(()), &Ok(())));
    assert!(matches!(bad, Err(StoreError::NotFound(_))), "{bad:?}");
    let lease = Lease {
        worker: "w".to_owned(),
        duration: std::time::Duration::from_secs(10),
        now: t(1),
    };
    // Two claims in one transaction never take the same job.
    let claim = |limit| gantry_store::Claim {
        pool: "local".to_owned(),
        lease: lease.clone(),
        limit,
    };
    let (first, second, none) = tokio::join!(
        writer.claim(claim(1)),
        writer.claim(claim(5)),
        writer.claim(claim(5)),
    );
    let (first, second) = (first.expect("claim"), second.expect("claim"));
    assert_eq!(none, Ok(Vec::new()));
    let mut ids: Vec<&str> = first.iter().chain(&second).map(|j| j.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!((first.len(), ids), (1, vec!["a", "b"]));
    let done = |id: &str, worker: &str, at| JobCompletion {
        job_id: id.to_owned(),
        worker: worker.to_owned(),
        result: serde_json::json!({"by": worker}),
        at,
    };
    // A completion by a worker that does not hold the lease is dropped, not an error, and does
    // not sink the batch it shares.
    let (a, b) = tokio::join!(
        writer.complete_job(done("a", "w", t(2))),
        writer.complete_job(done("b", "intruder", t(2))),
    );
    assert_eq!((a, b), (Ok(()), Ok(())));
    let a = store.get_job("a").await.expect("a");
    assert_eq!(
        (a.completed_at, a.result),
        (Some(t(2)), Some(serde_json::json!({"by": "w"})))
    );
    let b = store.get_job("b").await.expect("b");
    assert_eq!((b.completed_at, b.worker.as_deref()), (None, Some("w")));
}

/// One batch of everything a run writes (runs from events and by hand, a run updated twice, a
/// step changed three times, logs, jobs enqueued, completed, one of them twice) leaves the store
/// exactly as the same writes applied one by one, in the batch's order, do.
pub(crate) async fn a_batch_equals_its_writes_applied_one_by_one(db: &TestDb) {
    use crate::harness::t;
    use gantry_store::{JobCompletion, Lease, LogChunk, NewJob, WriteBatch};
    let store = db.open().await;
    let lease = |now| Lease {
        worker: "w".to_owned(),
        duration: Duration::from_secs(60),
        now,
    };
    let writes = |p: &str| {
        let id = |s: &str| format!("{p}{s}");
        let run = |r: &str, origin| NewRun {
            id: id(r),
            workflow: "wf".to_owned(),
            workflow_version: 1,
            parameters: serde_json::json!({"run": r}),
            origin,
            created_at: t(0),
            audit: crate::harness::audit(),
        };
        let update = |r: &str, status, reason: Option<&str>, started, ended| {
            (
                id(r),
                RunUpdate {
                    status,
                    reason: reason.map(str::to_owned),
                    started_at: started,
                    ended_at: ended,
                },
            )
        };
        let step = |r: &str, s: &str, state, reason: Option<&str>, times: [Option<i64>; 2]| {
            (
                id(r),
                StepChange {
                    step: s.to_owned(),
                    state,
                    reason: reason.map(str::to_owned),
                    started_at: times[0].map(t),
                    ended_at: times[1].map(t),
                    exit_code: times[1].map(|_| 3),
                    at: t(times[1].or(times[0]).unwrap_or(1)),
                },
            )
        };
        let log = |r: &str, seq, text: &str| LogChunk {
            run_id: id(r),
            step: "build".to_owned(),
            stream: "stdout".to_owned(),
            seq,
            bytes: text.as_bytes().to_vec(),
            at: t(seq),
        };
        let job = |j: &str, r: &str, claimed| NewJob {
            id: id(j),
            pool: format!("{p}pool"),
            run_id: id(r),
            step: "build".to_owned(),
            payload: serde_json::json!({"job": j}),
            available_at: t(1),
            claimed,
        };
        let done = |j: &str, result: &str, at| JobCompletion {
            job_id: id(j),
            worker: "w".to_owned(),
            result: serde_json::json!({ "r": result }),
            at: t(at),
        };
        WriteBatch {
            events: Vec::new(),
            runs: vec![
                run("r1", RunOrigin::Event(id("e1"))),
                run("r2", RunOrigin::Manual),
                run("r3", RunOrigin::Event(id("e3"))),
            ],
            run_updates: vec![
                update("r1", RunStatus::Running, None, Some(t(1)), None),
                update("r2", RunStatus::Running, Some("went"), Some(t(2)), None),
                update("r1", RunStatus::Succeeded, None, None, Some(t(5))),
                update("r2", RunStatus::Failed, None, None, Some(t(6))),
            ],
            steps: vec![
                step(
                    "r1",
                    "build",
                    StepStatus::Waiting,
                    Some("queued"),
                    [None, None],
                ),
                step("r2", "build", StepStatus::Running, None, [Some(2), None]),
                step("r1", "build", StepStatus::Running, None, [Some(2), None]),
                step("r1", "test", StepStatus::Waiting, None, [None, None]),
                step("r1", "build", StepStatus::Succeeded, None, [None, Some(4)]),
            ],
            logs: vec![
                log("r1", 1, "one"),
                log("r2", 1, "two"),
                log("r1", 2, "three"),
            ],
            marks: Vec::new(),
            jobs: vec![
                job("j1", "r1", Some(lease(t(1)))),
                job("j2", "r2", Some(lease(t(1)))),
                job("j3", "r3", None),
            ],
            completions: vec![
                done("j1", "first", 3),
                done("j2", "b", 3),
                done("j1", "again", 4),
            ],
            claims: Vec::new(),
        }
    };
    for p in ["x-", "y-"] {
        for e in ["e1", "e3"] {
            let mut e = crate::events::event(&format!("{p}{e}"), None, None);
            e.key = None;
            store.insert_event(&e).await.expect("event");
        }
    }
    // All at once.
    store.write_batch(&writes("x-")).await.expect("batch");
    // One by one, in the batch's order.
    let one = writes("y-");
    for run in &one.runs {
        store.create_run(run).await.expect("run");
    }
    for (id, update) in &one.run_updates {
        store.update_run(id, update).await.expect("update");
    }
    for (id, change) in &one.steps {
        store.record_step(id, change).await.expect("step");
    }
    store.append_logs(&one.logs).await.expect("logs");
    for job in &one.jobs {
        store.enqueue(job).await.expect("job");
    }
    for d in &one.completions {
        // The second completion of a job is refused alone; in a batch it changes nothing.
        let _ = store.complete(&d.job_id, &d.worker, &d.result, d.at).await;
    }
    let strip = |p: &str, text: String| text.replace(&format!("\"{p}"), "\"");
    for r in ["r1", "r2", "r3"] {
        let seen = |p: &'static str| {
            let store = Arc::clone(&store);
            async move {
                let id = format!("{p}{r}");
                let run = store.get_run(&id).await.expect("get run");
                let jobs = store.run_jobs(&id).await.expect("jobs");
                let logs: Vec<(String, i64, Vec<u8>)> = store
                    .read_run_logs(&id, None, 100)
                    .await
                    .expect("logs")
                    .into_iter()
                    .map(|c| (c.chunk.step, c.chunk.seq, c.chunk.bytes))
                    .collect();
                let event = match &run.summary.origin {
                    RunOrigin::Event(e) => store.get_event(e).await.expect("event").run_id,
                    RunOrigin::Manual => None,
                };
                strip(
                    p,
                    format!("{:?}", (&run.summary, &run.steps, &jobs, &logs, &event)),
                )
            }
        };
        let (batched, single) = (seen("x-").await, seen("y-").await);
        assert_eq!(batched, single, "run {r}");
    }
    // What the writes say, not only that both paths agree.
    let r1 = store.get_run("x-r1").await.expect("r1");
    assert_eq!(
        (
            r1.summary.status,
            r1.summary.started_at,
            r1.summary.ended_at
        ),
        (RunStatus::Succeeded, Some(t(1)), Some(t(5)))
    );
    let build = &r1.steps.iter().find(|s| s.step == "build").expect("build");
    assert_eq!(
        (
            build.state,
            build.started_at,
            build.ended_at,
            build.exit_code
        ),
        (StepStatus::Succeeded, Some(t(2)), Some(t(4)), Some(3))
    );
    let r2 = store.get_run("x-r2").await.expect("r2");
    assert_eq!(
        (r2.summary.status, r2.summary.reason.as_deref()),
        (RunStatus::Failed, Some("went"))
    );
    let j1 = store.get_job("x-j1").await.expect("j1");
    assert_eq!(j1.result, Some(serde_json::json!({"r": "first"})));
    assert_eq!(
        store.get_event("x-e3").await.expect("e3").run_id.as_deref(),
        Some("x-r3")
    );
}
