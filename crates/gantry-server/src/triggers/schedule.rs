//! Schedule triggers: one task fires every schedule trigger of every workflow on time.
//!
//! No duplicate fire: a fire is an event whose de-duplication key is its fire time, so the
//! store accepts it once however many times (or servers) try. No missed fire: each trigger's
//! last accepted fire time is kept in the store (`mark_fired`) and the next one is computed from
//! it, so a restart continues where the last run stopped.
//!
//! Catch-up policy (fires missed while the server was down): the schedule fires **once**, for
//! the most recent missed time, as soon as the server is back; older missed times are skipped
//! and logged. A trigger seen for the first time starts from its creation, so applying a
//! workflow never fires for times before it existed.
//!
//! Time comes from a [`Timer`], so tests drive schedules with [`ManualTimer`].
//! Fire times follow the `CRON_TZ=` time zone when there is one (see `gantry_workflow::cron`).
//!
//! Concurrency: one task; the fires that are due together are accepted concurrently, so their
//! events share group-commit transactions.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_store::PageRequest;
use gantry_workflow::cron::Schedule;
use gantry_workflow::TriggerSource;
use tokio::sync::{mpsc, watch};

use super::{Acceptance, Delivery, Door, TriggerService};

/// How long before a fire its workflows are parsed (well inside the parsed-workflow cache's
/// lifetime of 2 s).
const WARM_AHEAD: chrono::Duration = chrono::Duration::milliseconds(800);

/// How often the scheduler re-reads the workflows even when nobody told it of a change (changes
/// made through another server sharing the database).
const RELOAD_EVERY: Duration = Duration::from_secs(30);

/// At most this many fire times are walked to find the latest missed one.
const CATCH_UP_WALK: usize = 1_000_000;

/// The scheduler's source of time.
pub trait Timer: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Completes once `now() >= at`.
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemTimer;

impl Timer for SystemTimer {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            // Re-check after waking: the system clock may have moved under the sleep.
            loop {
                let left = at - Utc::now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left).await;
            }
        })
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualTimer {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualTimer {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualTimer {
            now: watch::Sender::new(start),
        }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        self.now.send_replace(at);
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.now.send_modify(|t| *t += by);
    }
}

impl Timer for ManualTimer {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // An error means the timer is gone: then nothing will ever be due.
            if rx.wait_for(|now| *now >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// One fire, as reported to an observer (benchmarks, tests).
#[derive(Debug, Clone)]
pub struct Fired {
    pub workflow: String,
    pub trigger: String,
    /// The time the schedule named.
    pub at: DateTime<Utc>,
    /// When the event was durably accepted (by the timer's clock).
    pub accepted_at: DateTime<Utc>,
    /// `false` when the store already had this fire (another server, or a restart).
    pub created: bool,
}

struct Entry {
    workflow: String,
    trigger: String,
    schedule: Schedule,
    next: DateTime<Utc>,
}

/// Runs the schedules until the task is aborted.
pub async fn run(
    service: Arc<TriggerService>,
    timer: Arc<dyn Timer>,
    observer: Option<mpsc::UnboundedSender<Fired>>,
) {
    let changed = service.changed.clone();
    let mut entries = load(&service, timer.now()).await;
    loop {
        let next = entries.iter().map(|e| e.next).min();
        let due = async {
            match next {
                Some(at) => {
                    // Shortly before, parse the workflows about to fire, so that the fires
                    // themselves read nothing from the store.
                    timer.sleep_until(at - WARM_AHEAD).await;
                    let warm = entries.iter().filter(|e| e.next <= at).map(|e| {
                        let service = service.clone();
                        let workflow = e.workflow.clone();
                        async move {
                            let _ = service.workflow(&workflow).await;
                        }
                    });
                    futures_util::future::join_all(warm).await;
                    timer.sleep_until(at).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = due => {}
            () = changed.notified() => {
                entries = load(&service, timer.now()).await;
                continue;
            }
            () = tokio::time::sleep(RELOAD_EVERY) => {
                entries = load(&service, timer.now()).await;
                continue;
            }
        }
        let now = timer.now();
        let fires = entries.iter().filter(|e| e.next <= now).map(|e| {
            let service = service.clone();
            let timer = timer.clone();
            let observer = observer.clone();
            let (workflow, trigger, at) = (e.workflow.clone(), e.trigger.clone(), e.next);
            // A task each: a thousand fires due together use every request thread.
            tokio::spawn(async move {
                fire(&service, timer.as_ref(), observer, workflow, trigger, at).await
            })
        });
        let _ = futures_util::future::join_all(fires.collect::<Vec<_>>()).await;
        for e in entries.iter_mut().filter(|e| e.next <= now) {
            e.next = e
                .schedule
                .next_after(e.next.max(now))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
        }
    }
}

async fn fire(
    service: &TriggerService,
    timer: &dyn Timer,
    observer: Option<mpsc::UnboundedSender<Fired>>,
    workflow: String,
    trigger: String,
    at: DateTime<Utc>,
) {
    let delivery = Delivery {
        key: Some(format!(
            "schedule:{}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        ..Delivery::default()
    };
    let accepted = service
        .accept(&workflow, &trigger, Door::Schedule, delivery, timer.now())
        .await;
    let accepted_at = timer.now();
    let created = match accepted {
        Ok(Acceptance::Accepted { created, .. }) => created,
        Ok(Acceptance::Filtered) => false,
        Err(e) => {
            tracing::warn!(%workflow, %trigger, error = %e, "a schedule could not fire");
            return;
        }
    };
    // Through the group-commit writer: a thousand fires due together share a few transactions
    // instead of queueing a thousand commits before the next fires' events.
    if let Err(e) = service
        .events
        .mark_fired(workflow.clone(), trigger.clone(), at)
        .await
    {
        tracing::warn!(%workflow, %trigger, error = %e, "could not record a schedule's fire");
    }
    if let Some(observer) = observer {
        let _ = observer.send(Fired {
            workflow,
            trigger,
            at,
            accepted_at,
            created,
        });
    }
}

/// Every schedule trigger of every workflow, with its next fire time.
async fn load(service: &TriggerService, now: DateTime<Utc>) -> Vec<Entry> {
    match try_load(service, now).await {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(error = %e, "could not load the schedules; retrying later");
            Vec::new()
        }
    }
}

async fn try_load(
    service: &TriggerService,
    now: DateTime<Utc>,
) -> Result<Vec<Entry>, super::TriggerError> {
    let store = service.store().clone();
    let mut entries = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let workflows = store.list_workflows(&page).await?;
        for summary in &workflows.items {
            let Ok((_, wf)) = service.workflow(&summary.name).await else {
                continue;
            };
            let schedules: Vec<(&str, &Schedule)> = wf
                .triggers
                .iter()
                .filter_map(|t| match &t.source {
                    TriggerSource::Schedule {
                        parsed: Some(s), ..
                    } => Some((t.name.value.as_str(), s)),
                    _ => None,
                })
                .collect();
            if schedules.is_empty() {
                continue;
            }
            let records: HashMap<String, gantry_store::TriggerRecord> = store
                .list_triggers(&summary.name)
                .await?
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect();
            for (name, schedule) in schedules {
                let record = match records.get(name) {
                    Some(r) => r.clone(),
                    None => {
                        store
                            .ensure_trigger(&gantry_store::new_id()?, &summary.name, name, now)
                            .await?
                    }
                };
                let from = record.last_fire_at.unwrap_or(record.created_at);
                let Some(next) = next_due(schedule, from, now, &summary.name, name) else {
                    continue;
                };
                entries.push(Entry {
                    workflow: summary.name.clone(),
                    trigger: name.to_owned(),
                    schedule: schedule.clone(),
                    next,
                });
            }
        }
        match workflows.next {
            Some(cursor) => page = PageRequest::after(cursor, 500),
            None => return Ok(entries),
        }
    }
}

/// The next fire after `from`; when that is already past, the latest past one (the catch-up).
fn next_due(
    schedule: &Schedule,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    workflow: &str,
    trigger: &str,
) -> Option<DateTime<Utc>> {
    let mut next = schedule.next_after(from)?;
    if next > now {
        return Some(next);
    }
    let mut skipped = 0usize;
    while let Some(after) = schedule.next_after(next) {
        if after > now || skipped >= CATCH_UP_WALK {
            break;
        }
        next = after;
        skipped += 1;
    }
    if skipped > 0 {
        tracing::warn!(%workflow, %trigger, skipped, catch_up = %next,
            "fires were missed while the server was down; firing once for the latest");
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, h, m, 0).single().unwrap()
    }

    #[test]
    fn next_due_is_the_next_fire_or_the_latest_missed_one() {
        let every_10 = Schedule::parse("*/10 * * * *").unwrap();
        assert_eq!(
            next_due(&every_10, t(1, 0), t(1, 5), "w", "s"),
            Some(t(1, 10))
        );
        assert_eq!(
            next_due(&every_10, t(1, 0), t(1, 10), "w", "s"),
            Some(t(1, 10)),
            "due exactly now"
        );
        assert_eq!(
            next_due(&every_10, t(1, 0), t(2, 35), "w", "s"),
            Some(t(2, 30)),
            "nine missed fires: only the latest is caught up"
        );
    }
}
