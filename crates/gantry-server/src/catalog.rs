//! The server's side of the software catalog: one in-memory [`Catalog`] kept in step with the
//! store, and the one path every catalog write takes.
//!
//! Reads ask the store for its catalog clock (one cheap query) and apply what other servers
//! sharing the database committed since; then they are answered from memory.
//!
//! Writes commit in groups. Each caller catches the index up and plans its write against it
//! (every rule lives in `gantry-catalog`), then hands the planned records to the commit:
//!
//! ```text
//!  write ─► sync ─► plan (read lock) ─► submit ─┬─► overlaps a record of a write not yet
//!                                                │   applied: wait for it, plan again
//!                                                └─► queue ─► the writer lock's holder takes
//!   every queued write with the same cause (below) ─► one transaction (one seq, each change
//!   audited as its own write's, each record's expected version checked) ─► apply back ─►
//!   observers ─► every writer of the group answered
//! ```
//!
//! Writes in one group touch different records, and a blueprint change goes alone, so a
//! group commits what the same writes one after another would (each planned against the
//! index without the others: they were concurrent, so either order was possible). One fsync
//! serves the group. A conflict (another server wrote the same record first) fails the group:
//! each of its writers catches up and plans again.
//!
//! The cause of a write is the chain of automations whose effect it is ([`CHAIN`], a task
//! local the automations set); the observers of a group see it as theirs.
//!
//! Concurrency: the index sits behind a `std::sync::RwLock`, never held across an await.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use gantry_catalog::index::{Applied, Catalog, Delta, Outcome, PlannedBlueprint, PlannedEntity};
use gantry_catalog::{BlueprintRecord, EntityRecord};
use gantry_store::{Audit, CatalogChange, CatalogWrite, Store, StoreError};
use serde_json::Value;

/// How many times a write is planned again after losing a race to another server.
const ATTEMPTS: usize = 4;

tokio::task_local! {
    /// The automations whose effects led to the work running on this task, first to last.
    pub static CHAIN: Arc<Vec<String>>;
}

/// The chain of automations behind the current task's work (empty: a person or a program).
pub fn current_chain() -> Arc<Vec<String>> {
    CHAIN.try_with(Arc::clone).unwrap_or_default()
}

/// A record a write changes: `(true, blueprint, "")` for a blueprint, `(false, blueprint, id)`
/// for an entity.
type RecordKey = (bool, String, String);

fn record_keys(changes: &[CatalogChange]) -> HashSet<RecordKey> {
    changes
        .iter()
        .map(|c| match c {
            CatalogChange::PutBlueprint { record, .. } => {
                (true, record.blueprint.identifier.clone(), String::new())
            }
            CatalogChange::DeleteBlueprint { identifier, .. } => {
                (true, identifier.clone(), String::new())
            }
            CatalogChange::PutEntity { record, .. } => (
                false,
                record.entity.blueprint.clone(),
                record.entity.identifier.clone(),
            ),
            CatalogChange::DeleteEntity {
                blueprint,
                identifier,
                ..
            } => (false, blueprint.clone(), identifier.clone()),
        })
        .collect()
}

/// A planned write waiting for its group.
struct Submitted {
    write: CatalogWrite,
    delta: Delta,
    chain: Arc<Vec<String>>,
    reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// Gives a group's records back (to writers waiting for them) when dropped: after the group
/// is applied, or when applying it panicked, so no record stays held and no writer waits
/// forever (the group's writers then get an error: their answer is dropped).
struct Release<'a> {
    service: &'a CatalogService,
    keys: Vec<RecordKey>,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        {
            let mut p = self
                .service
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for k in &self.keys {
                p.exclusive &= !k.0;
                p.keys.remove(k);
            }
        }
        self.service.applied.notify_waiters();
    }
}

/// The writes submitted and not yet applied: those queued, and the group in the store.
#[derive(Default)]
struct Pending {
    queue: Vec<Submitted>,
    /// The records of every write queued or being committed.
    keys: HashSet<RecordKey>,
    /// A write holding a blueprint change is queued or being committed: it goes alone.
    exclusive: bool,
}

/// What a planned write stores, and what the caller answers with.
pub struct Plan<T> {
    pub changes: Vec<CatalogChange>,
    pub delta: Delta,
    pub result: T,
}

impl<T> Plan<T> {
    pub fn new(result: T) -> Self {
        Plan {
            changes: Vec::new(),
            delta: Delta::default(),
            result,
        }
    }

    /// Adds a planned blueprint write (nothing for an unchanged one).
    pub fn blueprint(&mut self, p: &PlannedBlueprint, revert: bool) {
        let action = match (p.outcome, revert) {
            (Outcome::Unchanged | Outcome::Deleted, _) => return,
            (_, true) => "blueprint.revert",
            (Outcome::Created, false) => "blueprint.create",
            (Outcome::Updated, false) => "blueprint.update",
        };
        self.changes.push(CatalogChange::PutBlueprint {
            record: p.record.clone(),
            expected_version: p.before.as_ref().map(|b| b.version),
            action: action.to_string(),
            before: p.before.as_ref().map(json),
            after: json(&p.record),
        });
        self.delta.blueprints.push(p.record.clone());
    }

    /// Adds a planned entity write (nothing for an unchanged one).
    pub fn entity(&mut self, p: &PlannedEntity, revert: bool) {
        let action = match (p.outcome, revert) {
            (Outcome::Unchanged | Outcome::Deleted, _) => return,
            (_, true) => "entity.revert",
            (Outcome::Created, false) => "entity.create",
            (Outcome::Updated, false) => "entity.update",
        };
        self.changes.push(CatalogChange::PutEntity {
            record: p.record.clone(),
            expected_version: p.before.as_ref().map(|b| b.version),
            action: action.to_string(),
            before: p.before.as_ref().map(json),
            after: json(&p.record),
        });
        self.delta.entities.push(p.record.clone());
    }

    pub fn delete_entity(&mut self, r: &EntityRecord) {
        self.changes.push(CatalogChange::DeleteEntity {
            blueprint: r.entity.blueprint.clone(),
            identifier: r.entity.identifier.clone(),
            expected_version: r.version,
            action: "entity.delete".to_string(),
            before: json(r),
        });
        self.delta
            .deleted_entities
            .push((r.entity.blueprint.clone(), r.entity.identifier.clone()));
    }

    pub fn delete_blueprint(&mut self, r: &BlueprintRecord) {
        self.changes.push(CatalogChange::DeleteBlueprint {
            identifier: r.blueprint.identifier.clone(),
            expected_version: r.version,
            action: "blueprint.delete".to_string(),
            before: json(r),
        });
        self.delta
            .deleted_blueprints
            .push(r.blueprint.identifier.clone());
    }
}

/// A record as audit events and history show it.
pub fn json<T: serde::Serialize>(record: &T) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}

/// Something that follows the catalog: scorecards (levels) and automations (entity events).
pub trait CatalogObserver: Send + Sync {
    /// Called after every delta is applied to the index, with the index as it is now (read
    /// locked: keep it short, never block). `written` holds this server's own writes of the
    /// group (each change with its record before and after, and its audit), all with the
    /// same cause ([`current_chain`] gives it); empty for what other servers wrote, caught up
    /// from the store.
    fn applied(&self, catalog: &Catalog, applied: &Applied, written: &Group<'_>);
}

/// A write this server made, as observers see it.
pub struct Written<'a> {
    pub changes: &'a [CatalogChange],
    pub audit: &'a Audit,
}

/// Observers are told of a group of writes at once: `written` is empty for what other servers
/// wrote, caught up from the store.
pub type Group<'a> = [Written<'a>];

pub struct CatalogService {
    store: Arc<dyn Store>,
    observers: RwLock<Vec<Arc<dyn CatalogObserver>>>,
    pending: Mutex<Pending>,
    /// Itself, for the task that commits groups (a caller that goes away never takes a
    /// group with it).
    me: std::sync::Weak<CatalogService>,
    /// Signalled after each group is applied (writers that overlapped one wait for it).
    applied: tokio::sync::Notify,
    /// Held to write while a group is committed and applied, and to read while the index
    /// catches up from the store: a catch-up never reads back a group of this server's
    /// that is committed and not yet applied.
    gate: tokio::sync::RwLock<()>,
    index: RwLock<Catalog>,
    /// One write at a time through this server.
    writer: tokio::sync::Mutex<()>,
    /// One check of the store at a time.
    syncing: tokio::sync::Mutex<()>,
    /// How many checks of the store have started, and the number of the last one finished
    /// (changed only under `syncing`): readers that arrive together share one check.
    checks_started: AtomicU64,
    checks_done: AtomicU64,
}

impl CatalogService {
    /// An empty index; the first read or write loads the catalog.
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new_cyclic(|me| CatalogService {
            me: me.clone(),
            store,
            observers: RwLock::new(Vec::new()),
            pending: Mutex::new(Pending::default()),
            applied: tokio::sync::Notify::new(),
            gate: tokio::sync::RwLock::new(()),
            index: RwLock::new(Catalog::default()),
            writer: tokio::sync::Mutex::new(()),
            syncing: tokio::sync::Mutex::new(()),
            checks_started: AtomicU64::new(0),
            checks_done: AtomicU64::new(0),
        })
    }

    /// The index as it is now (call [`CatalogService::sync`] first to see other servers'
    /// writes). Never hold it across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, Catalog> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an observer of every change applied from now on.
    pub fn observe(&self, observer: Arc<dyn CatalogObserver>) {
        self.observers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(observer);
    }

    fn apply(&self, delta: Delta, written: &Group<'_>) {
        let applied = self
            .index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(delta);
        let observers = self
            .observers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if observers.is_empty() {
            return;
        }
        let index = self.read();
        for o in &observers {
            o.applied(&index, &applied, written);
        }
    }

    /// Applies what the store committed since the index's sequence number, so the index holds
    /// every write committed before this call.
    ///
    /// Any check of the store that starts after this call began will do: concurrent readers
    /// wait for the check in flight and share the next one, instead of each asking the store.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let wanted = self.checks_started.load(AtomicOrdering::SeqCst) + 1;
        let _one = self.syncing.lock().await;
        if self.checks_done.load(AtomicOrdering::SeqCst) >= wanted {
            return Ok(());
        }
        let check = self.checks_started.fetch_add(1, AtomicOrdering::SeqCst) + 1;
        self.catch_up().await?;
        self.checks_done.store(check, AtomicOrdering::SeqCst);
        Ok(())
    }

    /// Brings the index up to the store's clock as read now.
    ///
    /// A group of this server's own, committed and not yet applied, is waited for rather than
    /// read back: read back, it would reach the observers as another server's write (no
    /// level change stored, no automation fired), and its own apply as no change.
    async fn catch_up(&self) -> Result<(), StoreError> {
        let seq = self.store.catalog_seq().await?;
        if self.read().seq() >= seq {
            return Ok(());
        }
        let _gate = self.gate.read().await;
        let since = self.read().seq();
        if since >= seq {
            // It was this server's own group, applied meanwhile.
            return Ok(());
        }
        let delta = self.changes_since(since).await?;
        // A large catch-up (the first load) recomputes much: off the async threads.
        heavy(delta.entities.len() > 1000, || self.apply(delta, &[]));
        Ok(())
    }

    async fn changes_since(&self, since: i64) -> Result<Delta, StoreError> {
        let changes = self.store.catalog_changes(since).await?;
        Ok(Delta {
            seq: changes.seq,
            blueprints: changes.blueprints,
            entities: changes.entities,
            deleted_blueprints: changes.deleted_blueprints,
            deleted_entities: changes.deleted_entities,
        })
    }

    /// Plans a write against the current index and commits it with the writes submitted at the
    /// same time; plans again when a write not yet applied holds one of its records, or when
    /// another server changed one first. `plan` returns the caller's error to refuse.
    pub async fn write<T, E>(
        &self,
        audit: &Audit,
        plan: impl Fn(&Catalog) -> Result<Plan<T>, E>,
    ) -> Result<T, WriteError<E>> {
        self.write_sized(audit, false, plan).await
    }

    /// [`CatalogService::write`] for writes that may plan many records (bulk upserts, applies,
    /// blueprint changes): on a large catalog their planning runs off the async scheduler's
    /// view, so other requests keep being served.
    pub async fn write_heavy<T, E>(
        &self,
        audit: &Audit,
        plan: impl Fn(&Catalog) -> Result<Plan<T>, E>,
    ) -> Result<T, WriteError<E>> {
        self.write_sized(audit, true, plan).await
    }

    async fn write_sized<T, E>(
        &self,
        audit: &Audit,
        big: bool,
        plan: impl Fn(&Catalog) -> Result<Plan<T>, E>,
    ) -> Result<T, WriteError<E>> {
        let chain = current_chain();
        let mut conflicts = 0;
        loop {
            // Registered before looking, so a group applied meanwhile is not missed.
            let applied = self.applied.notified();
            self.sync().await.map_err(WriteError::Store)?;
            let planned = {
                let index = self.read();
                let index: &Catalog = &index;
                heavy(big && index.entity_count() > 20_000, || plan(index))
            }
            .map_err(WriteError::Refused)?;
            if planned.changes.is_empty() {
                return Ok(planned.result);
            }
            let keys = record_keys(&planned.changes);
            let blueprints = keys.iter().any(|k| k.0);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let overlaps = {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let busy = !p.keys.is_empty() || !p.queue.is_empty();
                let overlaps =
                    p.exclusive || (blueprints && busy) || keys.iter().any(|k| p.keys.contains(k));
                if !overlaps {
                    p.exclusive |= blueprints;
                    p.keys.extend(keys);
                    p.queue.push(Submitted {
                        write: CatalogWrite {
                            changes: planned.changes,
                            audit: audit.clone(),
                        },
                        delta: planned.delta,
                        chain: chain.clone(),
                        reply: tx,
                    });
                }
                overlaps
            };
            if overlaps {
                applied.await;
                continue;
            }

            // The group is committed by a task of its own: a caller that goes away (its
            // request cancelled) never leaves a group half done.
            if let Some(me) = self.me.upgrade() {
                tokio::spawn(async move { me.commit_queued().await });
            }
            match rx.await {
                Ok(Ok(())) => return Ok(planned.result),
                Ok(Err(StoreError::Conflict(_))) if conflicts + 1 < ATTEMPTS => conflicts += 1,
                Ok(Err(e)) => return Err(WriteError::Store(e)),
                Err(_) => {
                    return Err(WriteError::Store(StoreError::Database(
                        "the catalog write was dropped".into(),
                    )))
                }
            }
        }
    }

    /// Under the writer lock: commits the queued writes (if another holder has not already),
    /// a group of one cause at a time.
    async fn commit_queued(&self) {
        let _one = self.writer.lock().await;
        loop {
            let group: Vec<Submitted> = {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let Some(first) = p.queue.first() else {
                    return;
                };
                let cause = first.chain.clone();
                let (group, rest) = std::mem::take(&mut p.queue)
                    .into_iter()
                    .partition(|s| s.chain == cause);
                p.queue = rest;
                group
            };
            let mut writes = Vec::with_capacity(group.len());
            let mut deltas = Vec::with_capacity(group.len());
            let mut replies = Vec::with_capacity(group.len());
            let cause = group.first().map(|s| s.chain.clone()).unwrap_or_default();
            let gate = self.gate.write().await;
            let mut release = Release {
                service: self,
                keys: Vec::new(),
            };
            for s in group {
                release.keys.extend(record_keys(&s.write.changes));
                writes.push(s.write);
                deltas.push(s.delta);
                replies.push(s.reply);
            }
            let result = self.store.write_catalogs(&writes).await;
            if let Ok(seq) = &result {
                let mut delta = Delta {
                    seq: *seq,
                    ..Delta::default()
                };
                for d in deltas {
                    delta.blueprints.extend(d.blueprints);
                    delta.entities.extend(d.entities);
                    delta.deleted_blueprints.extend(d.deleted_blueprints);
                    delta.deleted_entities.extend(d.deleted_entities);
                }
                let since = self.read().seq();
                if *seq != since + 1 {
                    // Another server wrote in between: what it wrote first, read back from
                    // the store without this group's own records (which reach the observers
                    // as this server's below).
                    match self.changes_since(since).await {
                        Ok(mut theirs) => {
                            theirs_only(&mut theirs, &mut delta);
                            heavy(theirs.entities.len() > 1000, || self.apply(theirs, &[]));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not catch the catalog up");
                            // The clock stays behind the gap, so the next read fills it.
                            delta.seq = since;
                        }
                    }
                }
                let written: Vec<Written<'_>> = writes
                    .iter()
                    .map(|w| Written {
                        changes: &w.changes,
                        audit: &w.audit,
                    })
                    .collect();
                CHAIN.sync_scope(cause, || {
                    heavy(delta.entities.len() > 1000, || self.apply(delta, &written));
                });
            }
            drop(gate);
            drop(release);
            for reply in replies {
                let _ = reply.send(match &result {
                    Ok(_) => Ok(()),
                    Err(StoreError::Conflict(m)) => Err(StoreError::Conflict(m.clone())),
                    Err(e) => Err(StoreError::Database(e.to_string())),
                });
            }
        }
    }
}

/// Splits what another server's catch-up read back from this server's own group: a record
/// both hold at the group's version (or deleted by both) stays only in `ours`; one that
/// another server changed again after the group stays only in `theirs`, being newer.
fn theirs_only(theirs: &mut Delta, ours: &mut Delta) {
    use std::collections::HashMap;
    let own_entities: HashMap<(&str, &str), i64> = ours
        .entities
        .iter()
        .map(|r| {
            (
                (r.entity.blueprint.as_str(), r.entity.identifier.as_str()),
                r.version,
            )
        })
        .collect();
    let own_deleted: HashSet<(&str, &str)> = ours
        .deleted_entities
        .iter()
        .map(|(b, i)| (b.as_str(), i.as_str()))
        .collect();
    let own_blueprints: HashMap<&str, i64> = ours
        .blueprints
        .iter()
        .map(|r| (r.blueprint.identifier.as_str(), r.version))
        .collect();
    let own_deleted_blueprints: HashSet<&str> =
        ours.deleted_blueprints.iter().map(String::as_str).collect();

    // Keys of ours that another server has changed since: theirs wins.
    let mut newer: HashSet<(String, String)> = HashSet::new();
    let mut newer_blueprints: HashSet<String> = HashSet::new();
    theirs.entities.retain(|r| {
        let key = (r.entity.blueprint.as_str(), r.entity.identifier.as_str());
        match own_entities.get(&key) {
            Some(v) if *v == r.version => false,
            Some(_) => {
                newer.insert((key.0.to_owned(), key.1.to_owned()));
                true
            }
            None if own_deleted.contains(&key) => {
                newer.insert((key.0.to_owned(), key.1.to_owned()));
                true
            }
            None => true,
        }
    });
    theirs.deleted_entities.retain(|(b, i)| {
        let key = (b.as_str(), i.as_str());
        if own_deleted.contains(&key) {
            return false;
        }
        if own_entities.contains_key(&key) {
            newer.insert((b.clone(), i.clone()));
        }
        true
    });
    theirs.blueprints.retain(|r| {
        let id = r.blueprint.identifier.as_str();
        match own_blueprints.get(id) {
            Some(v) if *v == r.version => false,
            Some(_) => {
                newer_blueprints.insert(id.to_owned());
                true
            }
            None if own_deleted_blueprints.contains(id) => {
                newer_blueprints.insert(id.to_owned());
                true
            }
            None => true,
        }
    });
    theirs.deleted_blueprints.retain(|b| {
        if own_deleted_blueprints.contains(b.as_str()) {
            return false;
        }
        if own_blueprints.contains_key(b.as_str()) {
            newer_blueprints.insert(b.clone());
        }
        true
    });
    ours.entities
        .retain(|r| !newer.contains(&(r.entity.blueprint.clone(), r.entity.identifier.clone())));
    ours.deleted_entities.retain(|k| !newer.contains(k));
    ours.blueprints
        .retain(|r| !newer_blueprints.contains(&r.blueprint.identifier));
    ours.deleted_blueprints
        .retain(|b| !newer_blueprints.contains(b));
}

/// Runs CPU-heavy work: when `big`, outside the async scheduler's view (on a multi-threaded
/// runtime), so other requests keep being served.
pub(crate) fn heavy<R>(big: bool, f: impl FnOnce() -> R) -> R {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if big && multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Why a write did not happen.
#[derive(Debug)]
pub enum WriteError<E> {
    /// The plan refused it.
    Refused(E),
    Store(StoreError),
}

#[cfg(test)]
mod tests {
    use super::theirs_only;
    use gantry_catalog::index::Delta;
    use gantry_catalog::EntityRecord;
    use serde_json::json;

    fn record(id: &str, version: i64) -> EntityRecord {
        serde_json::from_value(json!({
            "blueprint": "box", "identifier": id, "version": version,
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
            "createdBy": "a", "updatedBy": "a"
        }))
        .expect("record")
    }

    fn ids(records: &[EntityRecord]) -> Vec<(String, i64)> {
        records
            .iter()
            .map(|r| (r.entity.identifier.clone(), r.version))
            .collect()
    }

    fn key(id: &str) -> (String, String) {
        ("box".to_owned(), id.to_owned())
    }

    /// What another server's catch-up read back: this group's own records stay its own;
    /// what another server changed after the group wins; the rest is theirs.
    #[test]
    fn a_catch_up_keeps_theirs_and_leaves_ours_to_the_group() {
        let mut ours = Delta {
            seq: 7,
            entities: vec![
                record("same", 3),
                record("overwritten", 2),
                record("deleted-after", 5),
            ],
            deleted_entities: vec![key("gone"), key("recreated")],
            ..Delta::default()
        };
        let mut theirs = Delta {
            seq: 9,
            entities: vec![
                record("same", 3),
                record("overwritten", 3),
                record("recreated", 1),
                record("other", 4),
            ],
            deleted_entities: vec![key("gone"), key("deleted-after"), key("elsewhere")],
            ..Delta::default()
        };
        theirs_only(&mut theirs, &mut ours);
        assert_eq!(
            ids(&theirs.entities),
            [
                ("overwritten".into(), 3),
                ("recreated".into(), 1),
                ("other".into(), 4)
            ]
        );
        assert_eq!(
            theirs.deleted_entities,
            [key("deleted-after"), key("elsewhere")]
        );
        assert_eq!(ids(&ours.entities), [("same".into(), 3)]);
        assert_eq!(ours.deleted_entities, [key("gone")]);
        assert_eq!((ours.seq, theirs.seq), (7, 9));
    }
}
