//! The server's side of the software catalog: one in-memory [`Catalog`] kept in step with the
//! store, and the one path every catalog write takes.
//!
//! Reads ask the store for its catalog clock (one cheap query) and apply what other servers
//! sharing the database committed since; then they are answered from memory. Writes are
//! serialised per server: under the writer lock the index catches up, the caller plans the
//! write against it (every rule lives in `gantry-catalog`), the store commits the planned
//! records with their audit events in one transaction that checks each record's expected
//! version, and the committed records are applied back. A conflict (another server wrote the
//! same entity first) catches up and plans again.
//!
//! Concurrency: the index sits behind a `std::sync::RwLock`, never held across an await.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use gantry_catalog::index::{Applied, Catalog, Delta, Outcome, PlannedBlueprint, PlannedEntity};
use gantry_catalog::{BlueprintRecord, EntityRecord};
use gantry_store::{Audit, CatalogChange, CatalogWrite, Store, StoreError};
use serde_json::Value;

/// How many times a write is planned again after losing a race to another server.
const ATTEMPTS: usize = 4;

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
    /// locked: keep it short, never block). `written` holds this server's own write (each
    /// change with its record before and after) and its audit; `None` for what other servers
    /// wrote, caught up from the store.
    fn applied(&self, catalog: &Catalog, applied: &Applied, written: Option<&Written<'_>>);
}

/// A write this server made, as observers see it.
pub struct Written<'a> {
    pub changes: &'a [CatalogChange],
    pub audit: &'a Audit,
}

pub struct CatalogService {
    store: Arc<dyn Store>,
    observers: RwLock<Vec<Arc<dyn CatalogObserver>>>,
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
    pub fn new(store: Arc<dyn Store>) -> Self {
        CatalogService {
            store,
            observers: RwLock::new(Vec::new()),
            index: RwLock::new(Catalog::default()),
            writer: tokio::sync::Mutex::new(()),
            syncing: tokio::sync::Mutex::new(()),
            checks_started: AtomicU64::new(0),
            checks_done: AtomicU64::new(0),
        }
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

    fn apply(&self, delta: Delta, written: Option<&Written<'_>>) {
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

    async fn catch_up(&self) -> Result<(), StoreError> {
        let seq = self.store.catalog_seq().await?;
        let since = self.read().seq();
        if seq <= since {
            return Ok(());
        }
        let changes = self.store.catalog_changes(since).await?;
        let delta = Delta {
            seq: changes.seq,
            blueprints: changes.blueprints,
            entities: changes.entities,
            deleted_blueprints: changes.deleted_blueprints,
            deleted_entities: changes.deleted_entities,
        };
        // A large catch-up (the first load) recomputes much: off the async threads.
        heavy(delta.entities.len() > 1000, || self.apply(delta, None));
        Ok(())
    }

    /// Plans a write against the current index and commits it; plans again when another
    /// server changed the same records first. `plan` returns the caller's error to refuse.
    pub async fn write<T, E>(
        &self,
        audit: &Audit,
        plan: impl Fn(&Catalog) -> Result<Plan<T>, E>,
    ) -> Result<T, WriteError<E>> {
        let _one = self.writer.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.sync().await.map_err(WriteError::Store)?;
            let planned = {
                let index = self.read();
                let index: &Catalog = &index;
                heavy(index.entity_count() > 20_000, || plan(index))
            }
            .map_err(WriteError::Refused)?;
            if planned.changes.is_empty() {
                return Ok(planned.result);
            }
            let write = CatalogWrite {
                changes: planned.changes,
                audit: audit.clone(),
            };
            match self.store.write_catalog(&write).await {
                Ok(seq) => {
                    let known = self.read().seq();
                    let written = Written {
                        changes: &write.changes,
                        audit,
                    };
                    if seq == known + 1 {
                        let mut delta = planned.delta;
                        delta.seq = seq;
                        heavy(delta.entities.len() > 1000, || {
                            self.apply(delta, Some(&written));
                        });
                    } else {
                        // Another server wrote in between: catch up through the store, then
                        // tell the observers of this write with the index past it.
                        self.sync().await.map_err(WriteError::Store)?;
                        let delta = Delta {
                            seq,
                            ..planned.delta
                        };
                        self.apply(delta, Some(&written));
                    }
                    return Ok(planned.result);
                }
                Err(StoreError::Conflict(_)) if attempt < ATTEMPTS => continue,
                Err(e) => return Err(WriteError::Store(e)),
            }
        }
    }
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
