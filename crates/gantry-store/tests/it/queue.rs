//! The job queue: order, availability, leases, heartbeats, completion, exclusivity.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_store::{Lease, NewJob, StoreError};
use serde_json::json;

use crate::harness::{claim_one, manual_run, t, TestDb};

fn job(id: &str, available: i64) -> NewJob {
    NewJob {
        id: id.to_owned(),
        pool: "default".to_owned(),
        run_id: "r1".to_owned(),
        step: format!("step-{id}"),
        payload: json!({"image": "busybox", "id": id}),
        available_at: t(available),
        claimed: None,
    }
}

fn lease(worker: &str, secs: u64, now: DateTime<Utc>) -> Lease {
    Lease {
        worker: worker.to_owned(),
        duration: Duration::from_secs(secs),
        now,
    }
}

pub(crate) async fn claim_order_and_availability(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    assert_eq!(
        claim_one(store.as_ref(), &lease("w", 30, t(100))).await,
        Ok(None)
    );
    store.enqueue(&job("later", 50)).await.expect("later");
    store.enqueue(&job("b", 10)).await.expect("b");
    store.enqueue(&job("a", 10)).await.expect("a");
    assert!(matches!(
        store.enqueue(&job("a", 10)).await,
        Err(StoreError::Conflict(_))
    ));

    let first = claim_one(store.as_ref(), &lease("w", 100, t(20)))
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(first.id, "a");
    assert_eq!(
        (first.worker.as_deref(), first.lease_until, first.attempts),
        (Some("w"), Some(t(120)), 1)
    );
    assert_eq!(first.payload, json!({"image": "busybox", "id": "a"}));
    assert_eq!(first.step, "step-a");
    assert_eq!(
        claim_one(store.as_ref(), &lease("w", 100, t(20)))
            .await
            .expect("claim")
            .map(|j| j.id)
            .as_deref(),
        Some("b")
    );
    // `later` is not available yet at t(20).
    assert_eq!(
        claim_one(store.as_ref(), &lease("w", 30, t(20))).await,
        Ok(None)
    );
    assert_eq!(
        claim_one(store.as_ref(), &lease("w", 30, t(50)))
            .await
            .expect("claim")
            .map(|j| j.id)
            .as_deref(),
        Some("later")
    );

    let unknown_run = NewJob {
        run_id: "nope".to_owned(),
        ..job("x", 0)
    };
    assert!(matches!(
        store.enqueue(&unknown_run).await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn heartbeat_and_complete(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    store.enqueue(&job("j", 0)).await.expect("enqueue");
    claim_one(store.as_ref(), &lease("w1", 10, t(1)))
        .await
        .expect("claim")
        .expect("job");
    store
        .heartbeat("j", &lease("w1", 10, t(5)))
        .await
        .expect("heartbeat");
    assert_eq!(
        store.get_job("j").await.expect("job").lease_until,
        Some(t(15))
    );
    // Held until t(15): nobody else gets it at t(12).
    assert_eq!(
        claim_one(store.as_ref(), &lease("w2", 10, t(12))).await,
        Ok(None)
    );
    assert!(matches!(
        store.heartbeat("j", &lease("w2", 10, t(12))).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.heartbeat("nope", &lease("w1", 10, t(12))).await,
        Err(StoreError::NotFound(_))
    ));

    store
        .complete("j", "w1", &json!({"exit": 0}), t(13))
        .await
        .expect("complete");
    let done = store.get_job("j").await.expect("job");
    assert_eq!(
        (done.completed_at, done.result),
        (Some(t(13)), Some(json!({"exit": 0})))
    );
    // The same completion twice changes nothing; a completed job is never claimed again.
    assert!(matches!(
        store.complete("j", "w1", &json!({"exit": 1}), t(14)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get_job("j").await.expect("job").result,
        Some(json!({"exit": 0}))
    );
    assert_eq!(
        claim_one(store.as_ref(), &lease("w2", 10, t(100))).await,
        Ok(None)
    );
    assert!(matches!(
        store.complete("nope", "w1", &json!(null), t(14)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_job("nope").await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn expired_lease_puts_job_back_and_refuses_stale_worker(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    store.enqueue(&job("j", 0)).await.expect("enqueue");
    claim_one(store.as_ref(), &lease("stale", 10, t(1)))
        .await
        .expect("claim")
        .expect("job");
    // The lease ends at t(11): from then on the job is claimable again.
    let again = claim_one(store.as_ref(), &lease("fresh", 10, t(11)))
        .await
        .expect("claim")
        .expect("job back");
    assert_eq!(
        (again.id.as_str(), again.worker.as_deref(), again.attempts),
        ("j", Some("fresh"), 2)
    );

    assert!(matches!(
        store.heartbeat("j", &lease("stale", 10, t(12))).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.complete("j", "stale", &json!("late"), t(12)).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .complete("j", "fresh", &json!("ok"), t(12))
        .await
        .expect("fresh completes");
    assert_eq!(
        store.get_job("j").await.expect("job").result,
        Some(json!("ok"))
    );

    // A lease that lapsed with nobody else claiming is lost too: complete is refused.
    store.enqueue(&job("k", 0)).await.expect("enqueue");
    claim_one(store.as_ref(), &lease("slow", 10, t(20)))
        .await
        .expect("claim")
        .expect("k");
    assert!(matches!(
        store.complete("k", "slow", &json!("late"), t(30)).await,
        Err(StoreError::Conflict(_))
    ));
}

pub(crate) async fn concurrent_claims_are_exclusive(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    for i in 0..50 {
        store
            .enqueue(&job(&format!("j{i:02}"), 0))
            .await
            .expect("enqueue");
    }
    let mut workers = Vec::new();
    for w in 0..10 {
        let store = Arc::clone(&store);
        workers.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            let mut empty = 0;
            // A claim may come back empty while others hold row locks: stop after a few in a row.
            while empty < 5 {
                match claim_one(store.as_ref(), &lease(&format!("w{w}"), 60, t(1)))
                    .await
                    .expect("claim")
                {
                    Some(job) => {
                        empty = 0;
                        claimed.push(job.id);
                    }
                    None => {
                        empty += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            claimed
        }));
    }
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for worker in workers {
        for id in worker.await.expect("worker") {
            *count.entry(id).or_default() += 1;
        }
    }
    assert_eq!(count.len(), 50, "every job claimed");
    assert!(
        count.values().all(|&n| n == 1),
        "no job claimed twice: {count:?}"
    );
}

pub(crate) async fn claims_take_many_from_one_pool_only(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    for (id, pool, at) in [
        ("a3", "agents", 3),
        ("a1", "agents", 1),
        ("a2", "agents", 2),
        ("d1", "default", 0),
        ("a4", "agents", 4),
    ] {
        let new = NewJob {
            pool: pool.to_owned(),
            ..job(id, at)
        };
        store.enqueue(&new).await.expect("enqueue");
    }
    let ids = |jobs: Vec<gantry_store::Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    // At most `limit`, oldest first, of the named pool only.
    let first = store
        .claim("agents", &lease("w", 30, t(10)), 3)
        .await
        .expect("claim");
    assert!(first.iter().all(|j| j.pool == "agents" && j.attempts == 1));
    assert_eq!(ids(first), ["a1", "a2", "a3"]);
    assert_eq!(
        ids(store
            .claim("agents", &lease("w", 30, t(10)), 3)
            .await
            .expect("claim")),
        ["a4"]
    );
    assert_eq!(
        store.claim("agents", &lease("w", 30, t(10)), 3).await,
        Ok(Vec::new())
    );
    assert_eq!(
        store.claim("nobody", &lease("w", 30, t(10)), 3).await,
        Ok(Vec::new())
    );
    assert_eq!(
        store.claim("default", &lease("w", 30, t(10)), 0).await,
        Ok(Vec::new())
    );
    assert_eq!(
        ids(store
            .claim("default", &lease("v", 30, t(10)), 10)
            .await
            .expect("claim")),
        ["d1"]
    );
}

pub(crate) async fn renewing_extends_every_live_lease_of_a_worker(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    for id in ["a", "b", "c", "d"] {
        store.enqueue(&job(id, 0)).await.expect("enqueue");
    }
    // w holds a and b until t(11); c until t(21) then completes it; v holds d.
    store
        .claim("default", &lease("w", 10, t(1)), 2)
        .await
        .expect("claim");
    store
        .claim("default", &lease("w", 20, t(1)), 1)
        .await
        .expect("claim");
    store
        .complete("c", "w", &json!("done"), t(2))
        .await
        .expect("complete");
    store
        .claim("default", &lease("v", 10, t(1)), 1)
        .await
        .expect("claim");

    assert_eq!(store.renew_leases(&lease("w", 30, t(5))).await, Ok(2));
    for id in ["a", "b"] {
        assert_eq!(
            store.get_job(id).await.expect("job").lease_until,
            Some(t(35))
        );
    }
    let done = store.get_job("c").await.expect("c");
    assert_eq!((done.lease_until, done.result), (None, Some(json!("done"))));
    assert_eq!(
        store.get_job("d").await.expect("d").lease_until,
        Some(t(11))
    );
    // A lease that already ran out is not revived: the job may be someone else's by now.
    assert_eq!(store.renew_leases(&lease("v", 30, t(12))).await, Ok(0));
    assert_eq!(
        store.get_job("d").await.expect("d").lease_until,
        Some(t(11))
    );
}

pub(crate) async fn abandoning_a_runs_jobs_ends_them_for_every_claimer(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    manual_run(store.as_ref(), "r2", "wf", t(0)).await;
    for id in ["queued", "leased", "done"] {
        store.enqueue(&job(id, 0)).await.expect("enqueue");
    }
    let other = NewJob {
        run_id: "r2".to_owned(),
        ..job("other", 0)
    };
    store.enqueue(&other).await.expect("enqueue");
    store
        .claim("default", &lease("w", 10, t(1)), 2)
        .await
        .expect("claim");
    store
        .complete("done", "w", &json!("ok"), t(2))
        .await
        .expect("complete");

    let abandoned = json!({"abandoned": "the run ended"});
    assert_eq!(store.abandon_jobs("r1", &abandoned, t(3)).await, Ok(2));
    for id in ["queued", "leased"] {
        let job = store.get_job(id).await.expect("job");
        assert_eq!(
            (job.completed_at, job.result.as_ref()),
            (Some(t(3)), Some(&abandoned)),
            "{id}"
        );
    }
    assert_eq!(
        store.get_job("done").await.expect("done").result,
        Some(json!("ok"))
    );
    // The worker that held `leased` can no longer complete it; only r2's job is claimable.
    assert!(matches!(
        store.complete("leased", "w", &json!("late"), t(4)).await,
        Err(StoreError::Conflict(_))
    ));
    let left = store
        .claim("default", &lease("v", 10, t(100)), 10)
        .await
        .expect("claim");
    assert_eq!(
        left.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["other"]
    );
    assert_eq!(store.abandon_jobs("r1", &abandoned, t(5)).await, Ok(0));
    let of_r1 = store.run_jobs("r1").await.expect("r1's jobs");
    assert_eq!(
        of_r1.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["done", "leased", "queued"]
    );
    assert_eq!(store.run_jobs("nope").await, Ok(Vec::new()));
}

pub(crate) async fn an_enqueue_can_be_its_own_claim(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    let held = NewJob {
        claimed: Some(lease("w", 10, t(1))),
        ..job("held", 0)
    };
    store.enqueue(&held).await.expect("enqueue");
    let stored = store.get_job("held").await.expect("job");
    assert_eq!(
        (
            stored.worker.as_deref(),
            stored.lease_until,
            stored.attempts
        ),
        (Some("w"), Some(t(11)), 1)
    );
    // Nobody else gets it while the lease holds; its holder renews and completes it.
    assert_eq!(
        claim_one(store.as_ref(), &lease("v", 10, t(5))).await,
        Ok(None)
    );
    assert_eq!(store.renew_leases(&lease("w", 10, t(6))).await, Ok(1));
    assert_eq!(
        claim_one(store.as_ref(), &lease("v", 10, t(12))).await,
        Ok(None)
    );
    store
        .complete("held", "w", &json!({"exited": 0}), t(13))
        .await
        .expect("complete");
    assert_eq!(
        claim_one(store.as_ref(), &lease("v", 10, t(100))).await,
        Ok(None)
    );

    // A holder that dies loses it when the lease runs out, like any claim.
    let orphan = NewJob {
        claimed: Some(lease("dead", 10, t(1))),
        ..job("orphan", 0)
    };
    store.enqueue(&orphan).await.expect("enqueue");
    let back = claim_one(store.as_ref(), &lease("v", 10, t(11)))
        .await
        .expect("claim")
        .expect("the orphan comes back");
    assert_eq!((back.id.as_str(), back.attempts), ("orphan", 2));
}
