//! Group commit: `BatchWriter` gathers event inserts, new runs, run updates, step changes,
//! log-chunk appends, schedule marks, and job enqueues, completions and claims from many callers
//! and writes them in one transaction.
//!
//! Owns batching only. What each write means is the store's business (`Store::write_batch`).
//!
//! Concurrency model: one tokio task owns the receiving end of a bounded channel. It waits for
//! a first item, then keeps collecting until `max_items` are in hand or `max_delay` has passed,
//! writes them all in one transaction, and only then answers every caller: an `Ok` means the
//! write is committed (durable, with SQLite's `synchronous = FULL`). If the batch transaction
//! fails, each item is retried alone, so one bad item (a log chunk of an unknown run) fails only
//! its own caller. The task ends when the last `BatchWriter` clone is dropped, after draining.
//! A full channel makes callers wait: that is the back-pressure.
//!
//! Priority: intake writes (accepted events, schedule marks: a caller is waiting to answer an
//! HTTP request or a timer) and run bookkeeping (new runs, their updates, steps, logs) arrive on
//! two channels. Each transaction takes every intake write waiting, and while there are some,
//! at most `bulk_with_intake` bookkeeping writes beside them (at most `max_bulk` without), so a
//! burst of events is not answered behind the writes of the runs it started. Bookkeeping never starves: each
//! transaction carries some. Order holds within each channel, which is what `write_in_order`
//! promises (a run's writes are all bookkeeping).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::{
    Claim, EventInsert, Job, JobCompletion, LogChunk, NewEvent, NewJob, NewRun, RunUpdate,
    StepChange, Store, StoreError, WriteBatch,
};

/// How the writer groups writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most items per transaction.
    pub max_items: usize,
    /// Longest a first item waits for company before its batch is written. Zero (the default)
    /// writes whatever is queued as soon as the writer is free: items that arrive while a batch
    /// commits form the next one, so batches grow with the load and a lone item pays no wait.
    pub max_delay: Duration,
    /// Items waiting to be batched before callers are held back.
    pub queue: usize,
    /// Most bookkeeping writes in a transaction that also carries intake writes.
    pub bulk_with_intake: usize,
    /// Most bookkeeping writes in any transaction: a long one would hold back the intake
    /// writes that arrive while it commits.
    pub max_bulk: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_items: 512,
            max_delay: Duration::ZERO,
            queue: 8192,
            bulk_with_intake: 8,
            max_bulk: 32,
        }
    }
}

/// Counters of what the writer did.
#[derive(Debug, Default)]
pub struct BatchStats {
    transactions: AtomicU64,
    items: AtomicU64,
}

impl BatchStats {
    /// Transactions attempted (batches, plus single-item retries after a failed batch).
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Items answered.
    pub fn items(&self) -> u64 {
        self.items.load(Ordering::Relaxed)
    }
}

enum Item {
    Event(NewEvent, oneshot::Sender<Result<EventInsert, StoreError>>),
    Run(NewRun, Done),
    RunUpdate(String, RunUpdate, Done),
    Step(String, StepChange, Done),
    Log(LogChunk, Done),
    Mark(String, String, chrono::DateTime<chrono::Utc>, Done),
    Job(NewJob, Done),
    Complete(JobCompletion, Done),
    Claim(Claim, oneshot::Sender<Result<Vec<Job>, StoreError>>),
}

type Done = oneshot::Sender<Result<(), StoreError>>;

/// One write of a run, for [`BatchWriter::write_in_order`].
#[derive(Debug, Clone)]
pub enum Write {
    /// `(run id, update)`, as `Store::update_run`.
    RunUpdate(String, RunUpdate),
    /// `(run id, change)`, as `Store::record_step`.
    Step(String, StepChange),
    Log(LogChunk),
}

/// A handle to the group-commit task. Cheap to clone.
#[derive(Clone)]
pub struct BatchWriter {
    /// Intake: events and schedule marks.
    urgent: mpsc::Sender<Item>,
    /// Run bookkeeping.
    sender: mpsc::Sender<Item>,
    stats: Arc<BatchStats>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter")
            .field("stats", &self.stats)
            .finish()
    }
}

const CLOSED: &str = "the batch writer has stopped";

impl BatchWriter {
    /// Starts the task on the current tokio runtime.
    pub fn start(store: Arc<dyn Store>, config: BatchConfig) -> Self {
        let (sender, receiver) = mpsc::channel(config.queue.max(1));
        let (urgent, urgent_receiver) = mpsc::channel(config.queue.max(1));
        let stats = Arc::new(BatchStats::default());
        tokio::spawn(run(
            store,
            config,
            urgent_receiver,
            receiver,
            Arc::clone(&stats),
        ));
        BatchWriter {
            urgent,
            sender,
            stats,
        }
    }

    /// Accepts an event durably (see `Store::insert_event`); returns after the commit.
    pub async fn insert_event(&self, event: NewEvent) -> Result<EventInsert, StoreError> {
        self.ask(|reply| Item::Event(event, reply)).await
    }

    /// Records a schedule's fire (see `Store::mark_fired`); returns after the commit.
    pub async fn mark_fired(
        &self,
        workflow: String,
        trigger: String,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.ask(|reply| Item::Mark(workflow, trigger, at, reply))
            .await
    }

    /// Creates a run (see `Store::create_run`); returns after the commit.
    pub async fn create_run(&self, run: NewRun) -> Result<(), StoreError> {
        self.ask(|reply| Item::Run(run, reply)).await
    }

    /// Appends a log chunk (see `Store::append_logs`); returns after the commit.
    pub async fn append_log(&self, chunk: LogChunk) -> Result<(), StoreError> {
        self.ask(|reply| Item::Log(chunk, reply)).await
    }

    /// Enqueues a job (see `Store::enqueue`); returns after the commit.
    pub async fn enqueue(&self, job: NewJob) -> Result<(), StoreError> {
        self.enqueue_behind(job).await?.await
    }

    /// Queues a job's enqueue and returns once it is in line, with the commit still to come
    /// (the returned future answers it). Writes queued later on this writer's bookkeeping
    /// side (a claim, the job's completion) are committed with it or after it, so a caller
    /// may act on the job at once and leave the commit behind.
    pub async fn enqueue_behind(
        &self,
        job: NewJob,
    ) -> Result<impl std::future::Future<Output = Result<(), StoreError>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Item::Job(job, reply))
            .await
            .map_err(|_| StoreError::Database(CLOSED.to_owned()))?;
        Ok(async move {
            answer
                .await
                .map_err(|_| StoreError::Database(CLOSED.to_owned()))?
        })
    }

    /// Completes a job (see `WriteBatch::completions`); returns after the commit.
    pub async fn complete_job(&self, done: JobCompletion) -> Result<(), StoreError> {
        self.ask(|reply| Item::Complete(done, reply)).await
    }

    /// Claims jobs (see `Store::claim`) in the next transaction; returns them after the commit.
    pub async fn claim(&self, claim: Claim) -> Result<Vec<Job>, StoreError> {
        self.ask(|reply| Item::Claim(claim, reply)).await
    }

    /// Queues `writes` one after the other and waits until every one is committed; returns the
    /// first error. The channel keeps their order and batches are written in that order, so a
    /// write is never committed before one queued ahead of it (they may share a transaction,
    /// which commits them together): a run's changes, its log lines and then its end can go in
    /// one call without paying one commit each.
    pub async fn write_in_order(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut answers = Vec::with_capacity(writes.len());
        for write in writes {
            let (reply, answer) = oneshot::channel();
            let item = match write {
                Write::RunUpdate(id, update) => Item::RunUpdate(id, update, reply),
                Write::Step(id, change) => Item::Step(id, change, reply),
                Write::Log(chunk) => Item::Log(chunk, reply),
            };
            self.sender
                .send(item)
                .await
                .map_err(|_| StoreError::Database(CLOSED.to_owned()))?;
            answers.push(answer);
        }
        let mut result = Ok(());
        for answer in answers {
            let answer = answer
                .await
                .map_err(|_| StoreError::Database(CLOSED.to_owned()))
                .and_then(|a| a);
            if result.is_ok() {
                result = answer;
            }
        }
        result
    }

    /// Updates a run (see `Store::update_run`); returns after the commit.
    pub async fn update_run(&self, run_id: String, update: RunUpdate) -> Result<(), StoreError> {
        self.ask(|reply| Item::RunUpdate(run_id, update, reply))
            .await
    }

    /// Records a step change (see `Store::record_step`); returns after the commit.
    pub async fn record_step(&self, run_id: String, change: StepChange) -> Result<(), StoreError> {
        self.ask(|reply| Item::Step(run_id, change, reply)).await
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    /// Queues an item and waits for its answer, which comes after the commit.
    async fn ask<T>(
        &self,
        item: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Item,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let item = item(reply);
        let channel = match item {
            Item::Event(..) | Item::Mark(..) => &self.urgent,
            _ => &self.sender,
        };
        channel
            .send(item)
            .await
            .map_err(|_| StoreError::Database(CLOSED.to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Database(CLOSED.to_owned()))?
    }
}

async fn run(
    store: Arc<dyn Store>,
    config: BatchConfig,
    mut urgent: mpsc::Receiver<Item>,
    mut bulk: mpsc::Receiver<Item>,
    stats: Arc<BatchStats>,
) {
    let max_items = config.max_items.max(1);
    let max_bulk = config.max_bulk.clamp(1, max_items);
    let bulk_with_intake = config.bulk_with_intake.clamp(1, max_bulk);
    let mut items = Vec::with_capacity(max_items);
    let (mut urgent_open, mut bulk_open) = (true, true);
    while urgent_open || bulk_open {
        // Wait for a first item from either side, intake first when both have one.
        let first = tokio::select! {
            biased;
            item = urgent.recv(), if urgent_open => match item {
                Some(item) => item,
                None => {
                    urgent_open = false;
                    continue;
                }
            },
            item = bulk.recv(), if bulk_open => match item {
                Some(item) => item,
                None => {
                    bulk_open = false;
                    continue;
                }
            },
        };
        items.push(first);
        let deadline = tokio::time::Instant::now() + config.max_delay;
        loop {
            // Every intake write waiting, then bookkeeping up to its share.
            while items.len() < max_items {
                match urgent.try_recv() {
                    Ok(item) => items.push(item),
                    Err(_) => break,
                }
            }
            let intake = items
                .iter()
                .filter(|i| matches!(i, Item::Event(..) | Item::Mark(..)))
                .count();
            let bulk_room = if intake > 0 {
                bulk_with_intake
            } else {
                max_bulk
            };
            let mut bulk_taken = items.len() - intake;
            while items.len() < max_items && bulk_taken < bulk_room {
                match bulk.try_recv() {
                    Ok(item) => {
                        items.push(item);
                        bulk_taken += 1;
                    }
                    Err(_) => break,
                }
            }
            if items.len() >= max_items || config.max_delay.is_zero() {
                break;
            }
            // Wait for company until the deadline.
            let more = tokio::select! {
                biased;
                item = urgent.recv(), if urgent_open => item,
                item = bulk.recv(), if bulk_open && bulk_taken < bulk_room => item,
                () = tokio::time::sleep_until(deadline) => None,
            };
            match more {
                Some(item) => items.push(item),
                None => break,
            }
        }
        write(store.as_ref(), std::mem::take(&mut items), &stats).await;
    }
}

/// Writes `items` in one transaction and answers each; on failure, retries each alone.
async fn write(store: &dyn Store, items: Vec<Item>, stats: &BatchStats) {
    let count = items.len() as u64;
    let mut batch = WriteBatch::default();
    for item in &items {
        match item {
            Item::Event(event, _) => batch.events.push(event.clone()),
            Item::Run(run, _) => batch.runs.push(run.clone()),
            Item::RunUpdate(id, update, _) => batch.run_updates.push((id.clone(), update.clone())),
            Item::Step(id, change, _) => batch.steps.push((id.clone(), change.clone())),
            Item::Log(chunk, _) => batch.logs.push(chunk.clone()),
            Item::Mark(workflow, trigger, at, _) => {
                batch.marks.push((workflow.clone(), trigger.clone(), *at))
            }
            Item::Job(job, _) => batch.jobs.push(job.clone()),
            Item::Complete(done, _) => batch.completions.push(done.clone()),
            Item::Claim(claim, _) => batch.claims.push(claim.clone()),
        }
    }
    stats.transactions.fetch_add(1, Ordering::Relaxed);
    match store.write_batch(&batch).await {
        Ok(written) => {
            let mut inserted = written.events.into_iter();
            let mut claimed = written.claimed.into_iter();
            for item in items {
                match item {
                    Item::Event(_, reply) => {
                        let answer = inserted.next().ok_or_else(|| {
                            StoreError::Database("batch answered too few events".to_owned())
                        });
                        // A caller that gave up waiting is not an error.
                        let _ = reply.send(answer);
                    }
                    Item::Claim(_, reply) => {
                        let answer = claimed.next().ok_or_else(|| {
                            StoreError::Database("batch answered too few claims".to_owned())
                        });
                        let _ = reply.send(answer);
                    }
                    Item::Run(_, reply)
                    | Item::RunUpdate(_, _, reply)
                    | Item::Step(_, _, reply)
                    | Item::Log(_, reply)
                    | Item::Mark(_, _, _, reply)
                    | Item::Job(_, reply)
                    | Item::Complete(_, reply) => {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
        }
        Err(_) if count > 1 => {
            for item in items {
                stats.transactions.fetch_add(1, Ordering::Relaxed);
                match item {
                    Item::Event(event, reply) => {
                        let _ = reply.send(store.insert_event(&event).await);
                    }
                    Item::Run(run, reply) => {
                        let _ = reply.send(store.create_run(&run).await);
                    }
                    Item::RunUpdate(id, update, reply) => {
                        let _ = reply.send(store.update_run(&id, &update).await);
                    }
                    Item::Step(id, change, reply) => {
                        let _ = reply.send(store.record_step(&id, &change).await);
                    }
                    Item::Log(chunk, reply) => {
                        let _ = reply.send(store.append_logs(std::slice::from_ref(&chunk)).await);
                    }
                    Item::Mark(workflow, trigger, at, reply) => {
                        let _ = reply.send(store.mark_fired(&workflow, &trigger, at).await);
                    }
                    Item::Job(job, reply) => {
                        let _ = reply.send(store.enqueue(&job).await);
                    }
                    Item::Complete(done, reply) => {
                        let answer = store
                            .complete(&done.job_id, &done.worker, &done.result, done.at)
                            .await;
                        // As in a batch: a lease no longer held is not the caller's error.
                        let answer = match answer {
                            Err(StoreError::Conflict(_)) => Ok(()),
                            other => other,
                        };
                        let _ = reply.send(answer);
                    }
                    Item::Claim(claim, reply) => {
                        let answer = store.claim(&claim.pool, &claim.lease, claim.limit).await;
                        let _ = reply.send(answer);
                    }
                }
            }
        }
        Err(err) => {
            for item in items {
                match item {
                    Item::Event(_, reply) => {
                        let _ = reply.send(Err(err.clone()));
                    }
                    Item::Claim(_, reply) => {
                        let _ = reply.send(Err(err.clone()));
                    }
                    Item::Run(_, reply)
                    | Item::RunUpdate(_, _, reply)
                    | Item::Step(_, _, reply)
                    | Item::Log(_, reply)
                    | Item::Mark(_, _, _, reply)
                    | Item::Job(_, reply)
                    | Item::Complete(_, reply) => {
                        let _ = reply.send(Err(err.clone()));
                    }
                }
            }
        }
    }
    stats.items.fetch_add(count, Ordering::Relaxed);
}
