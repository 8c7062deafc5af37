//! The agents section: a lease given back to its holder after a restart, the last line number
//! stored per step and stream, and the agents every server has seen.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_store::{AgentRecord, Lease, LogChunk, LogMark, NewJob, StoreError};
use serde_json::json;

use crate::harness::{claim_one, manual_run, t, TestDb};

fn lease(worker: &str, secs: u64, now: DateTime<Utc>) -> Lease {
    Lease {
        worker: worker.to_owned(),
        duration: Duration::from_secs(secs),
        now,
    }
}

pub(crate) async fn a_lapsed_lease_is_given_back_to_its_holder_only(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    store
        .enqueue(&NewJob {
            id: "j".into(),
            pool: "edge".into(),
            run_id: "r1".into(),
            step: "s".into(),
            payload: json!({}),
            available_at: t(0),
            claimed: None,
        })
        .await
        .expect("enqueue");
    let mut claim = lease("agent:edge/a", 15, t(10));
    claim.worker = "agent:edge/a".into();
    let claimed = store.claim("edge", &claim, 1).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    // Long after the lease lapsed (the server was down), nobody claimed it: a heartbeat is
    // refused, a restored lease is not.
    assert!(matches!(
        store
            .heartbeat("j", &lease("agent:edge/a", 15, t(100)))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .restore_lease("j", &lease("agent:edge/a", 15, t(100)))
        .await
        .expect("restored");
    let job = store.get_job("j").await.expect("job");
    assert_eq!(
        (job.lease_until, job.attempts),
        (Some(t(115)), 1),
        "not a new claim"
    );
    store
        .heartbeat("j", &lease("agent:edge/a", 15, t(110)))
        .await
        .expect("heartbeat");
    assert_eq!(
        claim_one(store.as_ref(), &lease("agent:edge/b", 15, t(111)))
            .await
            .map(|j| j.is_some()),
        Ok(false)
    );
    // Another worker's, an ended job's and an unknown job's leases are not given.
    assert!(matches!(
        store
            .restore_lease("j", &lease("agent:edge/b", 15, t(112)))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .complete("j", "agent:edge/a", &json!({"exited": 0}), t(113))
        .await
        .expect("complete");
    assert!(matches!(
        store
            .restore_lease("j", &lease("agent:edge/a", 15, t(114)))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .restore_lease("nope", &lease("agent:edge/a", 15, t(114)))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn last_log_seqs_per_step_and_stream_in_a_range(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    manual_run(store.as_ref(), "r2", "wf", t(0)).await;
    let chunk = |run: &str, step: &str, stream: &str, seq: i64| LogChunk {
        run_id: run.into(),
        step: step.into(),
        stream: stream.into(),
        seq,
        bytes: b"x\n".to_vec(),
        at: t(1),
    };
    let span = 1i64 << 32;
    store
        .append_logs(&[
            chunk("r1", "a", "stdout", 1),
            chunk("r1", "a", "stdout", 2),
            chunk("r1", "a", "stdout", span + 7),
            chunk("r1", "a", "stderr", span),
            chunk("r1", "a", "stdout", 2 * span + 1),
            chunk("r1", "b", "stdout", 3),
            chunk("r2", "a", "stdout", span + 99),
        ])
        .await
        .expect("append");
    let mark = |step: &str, stream: &str, seq: i64| LogMark {
        step: step.into(),
        stream: stream.into(),
        seq,
    };
    assert_eq!(
        store.last_log_seqs("r1", 0, span).await.expect("marks"),
        [mark("a", "stdout", 2), mark("b", "stdout", 3)]
    );
    assert_eq!(
        store
            .last_log_seqs("r1", span, 2 * span)
            .await
            .expect("marks"),
        [mark("a", "stderr", span), mark("a", "stdout", span + 7)]
    );
    assert_eq!(store.last_log_seqs("r3", 0, span).await.expect("marks"), []);
}

pub(crate) async fn agents_seen_by_any_server_are_listed_newest_sighting_kept(db: &TestDb) {
    let one = db.open().await;
    let other = db.open().await;
    let seen = |pool: &str, id: &str, version: &str, at: i64, jobs: &[&str]| AgentRecord {
        pool: pool.into(),
        id: id.into(),
        version: version.into(),
        hostname: "host-1".into(),
        last_seen: t(at),
        jobs: jobs.iter().map(|j| (*j).to_owned()).collect(),
    };
    assert_eq!(one.list_agents().await.expect("list"), []);
    one.record_agents(&[
        seen("edge", "a", "1.0", 10, &["j1"]),
        seen("blue", "z", "1.0", 10, &[]),
    ])
    .await
    .expect("record");
    // Another server saw `a` later, and `b` for the first time.
    other
        .record_agents(&[
            seen("edge", "a", "1.1", 20, &[]),
            seen("edge", "b", "1.1", 20, &["j2"]),
        ])
        .await
        .expect("record");
    // A late write of an older sighting does not move `a` back.
    one.record_agents(&[seen("edge", "a", "1.0", 15, &["j1"])])
        .await
        .expect("record");
    one.record_agents(&[]).await.expect("nothing to record");
    assert_eq!(
        other.list_agents().await.expect("list"),
        [
            seen("blue", "z", "1.0", 10, &[]),
            seen("edge", "a", "1.1", 20, &[]),
            seen("edge", "b", "1.1", 20, &["j2"]),
        ]
    );
    // Many at once: more rows than one statement holds.
    let many: Vec<AgentRecord> = (0..300)
        .map(|i| seen("bulk", &format!("agent-{i:03}"), "2.0", 30, &["j"]))
        .collect();
    one.record_agents(&many).await.expect("record many");
    assert_eq!(one.list_agents().await.expect("list").len(), 303);
}
