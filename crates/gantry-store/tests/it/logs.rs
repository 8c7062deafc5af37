//! Log chunks: append, resend, read after a cursor, live following.

use std::sync::Arc;

use gantry_store::{LogChunk, StoreError};

use crate::harness::{manual_run, t, TestDb};

pub(crate) fn chunk(run: &str, step: &str, stream: &str, seq: i64, text: &str) -> LogChunk {
    LogChunk {
        run_id: run.to_owned(),
        step: step.to_owned(),
        stream: stream.to_owned(),
        seq,
        bytes: text.as_bytes().to_vec(),
        at: t(seq),
    }
}

fn texts(chunks: &[gantry_store::StoredLogChunk]) -> Vec<String> {
    chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.chunk.bytes).into_owned())
        .collect()
}

pub(crate) async fn append_and_read_after_cursor(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    manual_run(store.as_ref(), "r2", "wf", t(0)).await;
    assert!(store
        .read_run_logs("r1", None, 100)
        .await
        .expect("empty")
        .is_empty());
    store
        .append_logs(&[
            chunk("r1", "a", "stdout", 1, "a1"),
            chunk("r1", "b", "stderr", 1, "b1"),
        ])
        .await
        .expect("append");
    store
        .append_logs(&[chunk("r2", "a", "stdout", 1, "other run")])
        .await
        .expect("append");
    store
        .append_logs(&[chunk("r1", "a", "stdout", 2, "a2\n\0binary")])
        .await
        .expect("append");

    let all = store
        .read_run_logs("r1", None, 100)
        .await
        .expect("run logs");
    assert_eq!(texts(&all), ["a1", "b1", "a2\n\0binary"]);
    assert_eq!(all[1].chunk, chunk("r1", "b", "stderr", 1, "b1"));
    let rest = store
        .read_run_logs("r1", Some(all[0].position), 100)
        .await
        .expect("after");
    assert_eq!(texts(&rest), ["b1", "a2\n\0binary"]);
    let limited = store.read_run_logs("r1", None, 2).await.expect("limit");
    assert_eq!(limited.len(), 2);
    assert!(store
        .read_run_logs("r1", Some(all[2].position), 100)
        .await
        .expect("end")
        .is_empty());

    let a = store
        .read_step_logs("r1", "a", None, 100)
        .await
        .expect("step a");
    assert_eq!(texts(&a), ["a1", "a2\n\0binary"]);
    let a_rest = store
        .read_step_logs("r1", "a", Some(a[0].position), 100)
        .await
        .expect("after");
    assert_eq!(texts(&a_rest), ["a2\n\0binary"]);
    assert!(store
        .read_step_logs("r1", "zzz", None, 100)
        .await
        .expect("none")
        .is_empty());

    assert!(matches!(
        store
            .append_logs(&[chunk("nope", "a", "stdout", 1, "x")])
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn resent_chunk_is_skipped(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    store
        .append_logs(&[chunk("r1", "a", "stdout", 1, "once")])
        .await
        .expect("first");
    store
        .append_logs(&[
            chunk("r1", "a", "stdout", 1, "once"),
            chunk("r1", "a", "stdout", 2, "two"),
        ])
        .await
        .expect("resend");
    let got = store
        .read_step_logs("r1", "a", None, 100)
        .await
        .expect("read");
    assert_eq!(texts(&got), ["once", "two"]);
}

pub(crate) async fn live_follower_sees_every_chunk_once(db: &TestDb) {
    let store = db.open().await;
    manual_run(store.as_ref(), "r1", "wf", t(0)).await;
    const WRITERS: i64 = 6;
    const CHUNKS: i64 = 40;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            for seq in 0..CHUNKS {
                let c = chunk("r1", &format!("s{w}"), "stdout", seq, &format!("{w}:{seq}"));
                store.append_logs(&[c]).await.expect("append");
            }
        }));
    }
    let follower = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = None;
            while seen.len() < (WRITERS * CHUNKS) as usize {
                let got = store.read_run_logs("r1", after, 7).await.expect("read");
                if let Some(last) = got.last() {
                    after = Some(last.position);
                } else {
                    tokio::task::yield_now().await;
                }
                seen.extend(got.into_iter().map(|c| (c.chunk.step, c.chunk.seq)));
            }
            seen
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(20), follower)
        .await
        .expect("the follower saw every chunk (none skipped)")
        .expect("follower");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no chunk twice");
    // Each step's chunks arrive in their own order.
    for w in 0..WRITERS {
        let step = format!("s{w}");
        let seqs: Vec<i64> = seen
            .iter()
            .filter(|(s, _)| *s == step)
            .map(|(_, q)| *q)
            .collect();
        assert_eq!(seqs, (0..CHUNKS).collect::<Vec<_>>());
    }
}
