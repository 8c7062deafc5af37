//! Automations on the server: catalog and run events in, workflow runs and entity writes out.
//!
//! The rules live in `gantry-catalog::automation`; this module hears the events, decides which
//! automations they reach, and carries out the effects:
//!
//! ```text
//!  CatalogService::write ─► CatalogObserver (entity.created/updated/deleted of this server's writes)
//!  ScorecardService      ─► LevelListener   (scorecard.level_changed of this server's writes)
//!  ActionService         ─► on_finish       (action_run.finished)
//!  RunService            ─► on_end          (run.finished)
//!        └──► emit: one queue ──► one task: listens_to · condition (jq, limited) · chain check
//!                                   └──► effect task (at most 64 at once): start a workflow run,
//!                                        or create/patch an entity as source `automation:NAME`
//!                                   └──► firing (started | written | failed | stopped) + audit
//!                                        ──► one writer, many per transaction
//! ```
//!
//! Emitting never blocks and never fails the change that caused it: the queue is unbounded and
//! every failure of an automation is recorded on its firing, not returned to anyone.
//!
//! Loops: an effect's catalog write runs inside `CHAIN.scope(chain + [name])`, so the events
//! that write causes (on this task, through the observers) carry the automations that led to
//! them; a workflow run started by an automation carries its chain to its `run.finished`. An
//! automation reached again by an event of its own chain is stopped (`check_chain`), recorded
//! as `stopped` with the whole chain in the message, and logged.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use chrono::Utc;
use gantry_catalog::automation::{
    self, check_automation, Automation, CompiledAutomation, EntityMode, EventKind, EventMeta,
    RenderedEffect,
};
use gantry_catalog::index::{Applied, Catalog, Expect};
use gantry_catalog::jq::Limits;
use gantry_catalog::schema::Problem;
use gantry_catalog::{Entity, EntityRecord, Indexed, Source};
use gantry_engine::run::RunRecord;
use gantry_store::{
    Audit, CatalogChange, DefinitionKind, FiringRow, NewAuditEvent, RunOrigin, Store, StoreError,
    StoredAction,
};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, Semaphore};

use crate::catalog::{CatalogObserver, CatalogService, Group, Plan, WriteError, CHAIN};
use crate::runs::RunService;
use crate::scorecards::{LevelChanged, LevelListener, PutError};

fn current_chain() -> Vec<String> {
    crate::catalog::current_chain().as_ref().clone()
}

/// Effects carried out at once, beyond which they wait.
const EFFECTS_AT_ONCE: usize = 64;

/// An event on its way to the automations.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub blueprint: Option<String>,
    pub scorecard: Option<String>,
    pub action: Option<String>,
    pub workflow: Option<String>,
    /// The `event` document jq conditions and templates see.
    pub event: Value,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The automations that led to it, first to last.
    pub chain: Vec<String>,
}

impl Event {
    fn meta(&self) -> EventMeta<'_> {
        EventMeta {
            kind: self.kind,
            blueprint: self.blueprint.as_deref(),
            scorecard: self.scorecard.as_deref(),
            action: self.action.as_deref(),
            workflow: self.workflow.as_deref(),
        }
    }
}

struct Def {
    record: StoredAction,
    compiled: Arc<CompiledAutomation>,
}

/// Counters since start, for the API and the benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    pub events: AtomicU64,
    /// Events whose condition held and that reached an effect, a refusal or a stop.
    pub fired: AtomicU64,
    pub failed: AtomicU64,
    pub stopped: AtomicU64,
    /// Firings stored.
    pub recorded: AtomicU64,
}

pub struct AutomationService {
    store: Arc<dyn Store>,
    catalog: Arc<CatalogService>,
    runs: Arc<RunService>,
    defs: RwLock<Arc<BTreeMap<String, Def>>>,
    queue: mpsc::UnboundedSender<Event>,
    firings: mpsc::UnboundedSender<(FiringRow, NewAuditEvent)>,
    limits: Limits,
    effects: Arc<Semaphore>,
    /// The chains of runs started by automations, until they end.
    run_chains: Mutex<HashMap<String, Vec<String>>>,
    me: Weak<AutomationService>,
    pub stats: Stats,
}

impl AutomationService {
    /// Loads the automations and starts the queue and the firing writer.
    pub async fn start(
        store: Arc<dyn Store>,
        catalog: Arc<CatalogService>,
        runs: Arc<RunService>,
        limits: Limits,
    ) -> Result<Arc<AutomationService>, StoreError> {
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let (firings, firings_rx) = mpsc::unbounded_channel();
        let service = Arc::new_cyclic(|me| AutomationService {
            store: store.clone(),
            catalog,
            runs,
            defs: RwLock::new(Arc::new(BTreeMap::new())),
            queue,
            firings,
            limits,
            effects: Arc::new(Semaphore::new(EFFECTS_AT_ONCE)),
            run_chains: Mutex::new(HashMap::new()),
            me: me.clone(),
            stats: Stats::default(),
        });
        service.reload().await?;
        tokio::spawn(record_loop(store, firings_rx, service.me.clone()));
        tokio::spawn(service.clone().process(queue_rx));
        Ok(service)
    }

    /// Reads the automations from the store again (after a change, and periodically, so
    /// changes made through other servers reach this one).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut defs = BTreeMap::new();
        for record in self
            .store
            .list_definitions(DefinitionKind::Automation)
            .await?
        {
            let compiled = serde_json::from_value::<Automation>(record.definition.clone())
                .ok()
                .and_then(|a| CompiledAutomation::compile(a).ok());
            match compiled {
                Some(c) => {
                    defs.insert(
                        record.identifier.clone(),
                        Def {
                            record,
                            compiled: Arc::new(c),
                        },
                    );
                }
                None => {
                    tracing::warn!(automation = %record.identifier, "stored automation no longer compiles; skipped");
                }
            }
        }
        *self.defs.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(defs);
        Ok(())
    }

    fn defs(&self) -> Arc<BTreeMap<String, Def>> {
        self.defs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether any automation listens to events of this kind (and blueprint): the emitters
    /// build no event document otherwise.
    fn wanted(&self, kind: EventKind, blueprint: Option<&str>) -> bool {
        self.defs().values().any(|d| {
            let a = d.compiled.automation();
            a.enabled
                && a.trigger.event == kind
                && (a.trigger.blueprint.is_none() || a.trigger.blueprint.as_deref() == blueprint)
        })
    }

    /// Queues an event. Never blocks, never fails.
    pub fn emit(&self, event: Event) {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        let _ = self.queue.send(event);
    }

    // ------------------------------------------------------------ definitions

    pub fn check(&self, a: &Automation) -> Result<(), Vec<Problem>> {
        let problems = {
            let index = self.catalog.read();
            check_automation(a, &*index)
        };
        if problems.is_empty() {
            CompiledAutomation::compile(a.clone()).map(|_| ())
        } else {
            Err(problems)
        }
    }

    /// Stores an automation; `Ok(false)` when it was already so.
    pub async fn put(
        &self,
        a: Automation,
        managed_by: Option<String>,
        audit: &Audit,
    ) -> Result<bool, PutError> {
        self.catalog.sync().await?;
        self.check(&a).map_err(PutError::Invalid)?;
        let definition = serde_json::to_value(&a).unwrap_or(Value::Null);
        let stored = crate::scorecards::store_definition(
            self.store.as_ref(),
            DefinitionKind::Automation,
            &a.identifier,
            definition,
            managed_by,
            audit,
        )
        .await?;
        if stored.is_none() {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    pub async fn delete(&self, id: &str, audit: &Audit) -> Result<(), StoreError> {
        self.store
            .delete_definition(DefinitionKind::Automation, id, audit)
            .await?;
        self.reload().await
    }

    pub fn records(&self) -> Vec<StoredAction> {
        self.defs().values().map(|d| d.record.clone()).collect()
    }

    pub fn record(&self, id: &str) -> Option<StoredAction> {
        self.defs().get(id).map(|d| d.record.clone())
    }

    // ------------------------------------------------------------ hooks

    /// `run.finished` of every run; a run started by an automation passes its chain on.
    pub fn run_ended(&self, record: &RunRecord) {
        let chain = self
            .run_chains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&record.run_id)
            .unwrap_or_default();
        if !self.wanted(EventKind::RunFinished, None) {
            return;
        }
        let status = crate::runs::run_status(record.state).as_str();
        self.emit(Event {
            kind: EventKind::RunFinished,
            blueprint: None,
            scorecard: None,
            action: None,
            workflow: Some(record.workflow.clone()),
            event: json!({
                "type": EventKind::RunFinished.as_str(),
                "workflow": record.workflow,
                "run": record.run_id,
                "status": status,
                "at": record.ended_at,
            }),
            before: None,
            after: Some(json!({
                "id": record.run_id,
                "workflow": record.workflow,
                "status": status,
                "reason": record.reason,
            })),
            chain,
        });
    }

    /// `action_run.finished`.
    pub fn action_run_finished(&self, row: &gantry_store::ActionRunRow) {
        if !self.wanted(EventKind::ActionRunFinished, None) {
            return;
        }
        self.emit(Event {
            kind: EventKind::ActionRunFinished,
            blueprint: row.entity.as_ref().map(|(b, _)| b.clone()),
            scorecard: None,
            action: Some(row.action.clone()),
            workflow: None,
            event: json!({
                "type": EventKind::ActionRunFinished.as_str(),
                "action": row.action,
                "run": row.id,
                "status": row.status,
                "entity": row.entity.as_ref().map(|(b, i)| format!("{b}/{i}")),
                "at": row.updated_at,
            }),
            before: None,
            after: Some(json!({
                "id": row.id,
                "action": row.action,
                "status": row.status,
                "requestedBy": row.requested_by,
                "workflowRun": row.workflow_run,
                "doc": redact_run_doc(&row.doc),
            })),
            chain: current_chain(),
        });
    }

    // ------------------------------------------------------------ the queue

    async fn process(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Event>) {
        while let Some(event) = rx.recv().await {
            let defs = self.defs();
            let listening: Vec<&Def> = defs
                .values()
                .filter(|d| d.compiled.listens_to(&event.meta()))
                .collect();
            if listening.is_empty() {
                continue;
            }
            let input =
                automation::input(&event.event, event.before.as_ref(), event.after.as_ref());
            for def in listening {
                self.fire(def, &event, &input).await;
            }
        }
    }

    /// One automation and one event: condition, chain, effect.
    async fn fire(&self, def: &Def, event: &Event, input: &Value) {
        let id = def.record.identifier.clone();
        let held =
            gantry_catalog::jq::with_run_stack(|| def.compiled.condition(input, &self.limits));
        let firing = |status: &str, detail: Value| Firing {
            automation: id.clone(),
            event: event.clone(),
            status: status.to_owned(),
            detail,
        };
        match held {
            Ok(false) => return,
            Ok(true) => {}
            Err(message) => {
                let message = format!("the condition failed: {message}");
                tracing::warn!(automation = %id, error = %message, "automation condition failed");
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.record_firing(firing("failed", json!({"error": message})));
                return;
            }
        }
        self.stats.fired.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = automation::check_chain(&event.chain, &id) {
            let message = e.to_string();
            tracing::warn!(automation = %id, error = %message, "automation loop stopped");
            self.stats.stopped.fetch_add(1, Ordering::Relaxed);
            self.record_firing(firing("stopped", json!({"error": message})));
            return;
        }
        let rendered =
            gantry_catalog::jq::with_run_stack(|| def.compiled.render(input, &self.limits));
        let rendered = match rendered {
            Ok(r) => r,
            Err(message) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.record_firing(firing(
                    "failed",
                    json!({"error": format!("the effect did not render: {message}")}),
                ));
                return;
            }
        };
        let Ok(permit) = self.effects.clone().acquire_owned().await else {
            return;
        };
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let mut chain = event.chain.clone();
        chain.push(id.clone());
        let event = event.clone();
        tokio::spawn(async move {
            let f = me.effect(&id, rendered, chain).await;
            drop(permit);
            let (status, detail) = match f {
                Ok(d) => d,
                Err(message) => {
                    me.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(automation = %id, error = %message, "automation effect failed");
                    ("failed", json!({"error": message}))
                }
            };
            me.record_firing(Firing {
                automation: id,
                event,
                status: status.to_owned(),
                detail,
            });
        });
    }

    async fn effect(
        &self,
        id: &str,
        rendered: RenderedEffect,
        chain: Vec<String>,
    ) -> Result<(&'static str, Value), String> {
        let audit = Audit::system(&format!("automation {id}"), Utc::now());
        match rendered {
            RenderedEffect::Workflow { name, parameters } => {
                let me = self.me.clone();
                let started = self
                    .runs
                    .start_then(&name, parameters, RunOrigin::Manual, audit, None)
                    .await
                    .map_err(|e| format!("workflow `{name}` did not start: {e}"))?;
                if let Some(me) = me.upgrade() {
                    me.run_chains
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(started.clone(), chain);
                }
                Ok(("started", json!({"workflow": name, "run": started})))
            }
            RenderedEffect::Entity { mode, entity } => {
                let source = Source::Automation(id.to_owned());
                let outcome = CHAIN
                    .scope(
                        Arc::new(chain),
                        self.write_entity(&source, mode, entity, &audit),
                    )
                    .await?;
                Ok(("written", outcome))
            }
        }
    }

    async fn write_entity(
        &self,
        source: &Source,
        mode: EntityMode,
        entity: Value,
        audit: &Audit,
    ) -> Result<Value, String> {
        let bp = entity
            .get("blueprint")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let eid = entity
            .get("identifier")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let ctx = gantry_catalog::index::WriteContext {
            source,
            actor: &audit.actor.name,
            now: audit.at,
            managed_by: None,
        };
        let written = self
            .catalog
            .write(audit, |cat| {
                let (value, expect) = match mode {
                    EntityMode::Create => (entity.clone(), Expect::New),
                    EntityMode::Upsert => (entity.clone(), Expect::Any),
                    EntityMode::Patch => {
                        let Some(current) = cat.entity_view(&bp, &eid) else {
                            return Err(format!("no entity `{eid}` of blueprint `{bp}` to patch"));
                        };
                        (patched(&current.record, &entity), Expect::Existing)
                    }
                };
                if expect == Expect::New && cat.entity_view(&bp, &eid).is_some() {
                    return Err(format!("entity `{eid}` of blueprint `{bp}` already exists"));
                }
                let e: Entity = serde_json::from_value(value)
                    .map_err(|err| format!("the entity does not read: {err}"))?;
                let p = cat
                    .plan_entities(vec![(e, expect)], &[], &ctx)
                    .remove(0)
                    .map_err(|problems| {
                        problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })?;
                let mut plan = Plan::new(p.outcome);
                plan.entity(&p, false);
                Ok(plan)
            })
            .await;
        match written {
            Ok(outcome) => Ok(json!({"entity": format!("{bp}/{eid}"), "outcome": outcome})),
            Err(WriteError::Refused(m)) => Err(m),
            Err(WriteError::Store(e)) => Err(format!("the catalog write failed: {e}")),
        }
    }

    fn record_firing(&self, f: Firing) {
        let at = Utc::now();
        let Ok(id) = gantry_store::new_id() else {
            return;
        };
        let doc = json!({
            "event": f.event.event,
            "chain": f.event.chain,
            "result": f.detail,
        });
        let audit = NewAuditEvent {
            audit: Audit::system(&format!("automation {}", f.automation), at),
            action: "automation.fire".into(),
            resource: format!("automation/{}", f.automation),
            before: None,
            after: Some(
                json!({"firing": id, "status": f.status, "event": f.event.kind.as_str(), "result": f.detail}),
            ),
        };
        let row = FiringRow {
            id,
            automation: f.automation,
            event_type: f.event.kind.as_str().to_owned(),
            status: f.status,
            at,
            doc,
        };
        let _ = self.firings.send((row, audit));
    }
}

struct Firing {
    automation: String,
    event: Event,
    status: String,
    detail: Value,
}

/// An entity with a patch's fields laid over it: title and team replaced when given,
/// properties and relations merged key by key (`null` removes a key).
fn patched(current: &EntityRecord, patch: &Value) -> Value {
    let mut out = serde_json::to_value(&current.entity).unwrap_or(Value::Null);
    let Some(o) = out.as_object_mut() else {
        return out;
    };
    for field in ["title", "team"] {
        if let Some(v) = patch.get(field).filter(|v| !v.is_null()) {
            o.insert(field.to_owned(), v.clone());
        }
    }
    for field in ["properties", "relations"] {
        let Some(Value::Object(changes)) = patch.get(field) else {
            continue;
        };
        let target = o
            .entry(field.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(target) = target {
            for (k, v) in changes {
                if v.is_null() {
                    target.remove(k);
                } else {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
    }
    out
}

/// An action run's document without what must not leave the server (sealed secret inputs).
fn redact_run_doc(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(o) = doc.as_object_mut() {
        o.remove("secretInputs");
        o.remove("sealed");
        o.remove("reportToken");
    }
    doc
}

impl CatalogObserver for AutomationService {
    fn applied(&self, catalog: &Catalog, _: &Applied, group: &Group<'_>) {
        let chain = current_chain();
        for (written, change) in group
            .iter()
            .flat_map(|w| w.changes.iter().map(move |c| (w, c)))
        {
            let (kind, bp, id, before, record) = match change {
                CatalogChange::PutEntity {
                    record,
                    expected_version,
                    before,
                    ..
                } => {
                    let kind = if expected_version.is_some() {
                        EventKind::EntityUpdated
                    } else {
                        EventKind::EntityCreated
                    };
                    (
                        kind,
                        &record.entity.blueprint,
                        &record.entity.identifier,
                        before.as_ref(),
                        Some(record),
                    )
                }
                CatalogChange::DeleteEntity {
                    blueprint,
                    identifier,
                    before,
                    ..
                } => (
                    EventKind::EntityDeleted,
                    blueprint,
                    identifier,
                    Some(before),
                    None,
                ),
                _ => continue,
            };
            if !self.wanted(kind, Some(bp)) {
                continue;
            }
            let after = record.map(|r| {
                catalog
                    .entity_view(bp, id)
                    .map(Indexed::to_json)
                    .unwrap_or_else(|| view_of_record(r))
            });
            let before = before
                .and_then(|b| serde_json::from_value::<EntityRecord>(b.clone()).ok())
                .map(|r| view_of_record(&r));
            self.emit(Event {
                kind,
                blueprint: Some(bp.clone()),
                scorecard: None,
                action: None,
                workflow: None,
                event: json!({
                    "type": kind.as_str(),
                    "blueprint": bp,
                    "identifier": id,
                    "actor": written.audit.actor.name,
                    "source": record.and_then(|r| r.sources.values().next().map(ToString::to_string)),
                    "at": written.audit.at,
                }),
                before,
                after,
                chain: chain.clone(),
            });
        }
    }
}

fn view_of_record(r: &EntityRecord) -> Value {
    Indexed {
        record: r.clone(),
        computed: gantry_catalog::Map::new(),
    }
    .to_json()
}

impl LevelListener for AutomationService {
    fn level_changed(&self, changes: Vec<LevelChanged>) {
        let chain = current_chain();
        for c in changes {
            if !self.wanted(EventKind::ScorecardLevelChanged, Some(&c.blueprint)) {
                continue;
            }
            let level = |x: &Option<(String, f64)>| {
                x.as_ref()
                    .map_or(Value::Null, |(l, s)| json!({"level": l, "score": s}))
            };
            self.emit(Event {
                kind: EventKind::ScorecardLevelChanged,
                blueprint: Some(c.blueprint.clone()),
                scorecard: Some(c.scorecard.clone()),
                action: None,
                workflow: None,
                event: json!({
                    "type": EventKind::ScorecardLevelChanged.as_str(),
                    "scorecard": c.scorecard,
                    "blueprint": c.blueprint,
                    "identifier": c.identifier,
                    "from": c.from.as_ref().map(|f| &f.0),
                    "to": c.to.as_ref().map(|t| &t.0),
                    "direction": if c.drop { "drop" } else { "rise" },
                    "entity": c.entity,
                    "at": c.at,
                }),
                before: Some(level(&c.from)),
                after: Some(level(&c.to)),
                chain: chain.clone(),
            });
        }
    }
}

/// Stores firings with their audit events, many per transaction; a failed write is tried
/// again until it lands.
async fn record_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<(FiringRow, NewAuditEvent)>,
    service: Weak<AutomationService>,
) {
    let mut rows = Vec::new();
    let mut audit = Vec::new();
    while let Some((row, event)) = rx.recv().await {
        rows.push(row);
        audit.push(event);
        while rows.len() < 2000 {
            match rx.try_recv() {
                Ok((row, event)) => {
                    rows.push(row);
                    audit.push(event);
                }
                Err(_) => break,
            }
        }
        let mut delay = std::time::Duration::from_millis(50);
        while let Err(e) = store.record_firings(&rows, &audit).await {
            tracing::warn!(error = %e, "storing automation firings failed; trying again");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
        }
        if let Some(s) = service.upgrade() {
            s.stats
                .recorded
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
        rows.clear();
        audit.clear();
    }
}

/// A firing as the API shows it.
pub fn firing_json(f: &FiringRow) -> Value {
    json!({
        "id": f.id,
        "automation": f.automation,
        "event": f.event_type,
        "status": f.status,
        "at": f.at,
        "detail": f.doc,
    })
}

/// Starts scorecards and automations on a catalog and hooks them up: level changes, entity
/// changes, action-run ends and run ends all reach the automations.
pub async fn start_services(
    store: Arc<dyn Store>,
    catalog: Arc<CatalogService>,
    runs: Arc<RunService>,
    actions: &crate::actions::ActionService,
) -> Result<
    (
        Arc<crate::scorecards::ScorecardService>,
        Arc<AutomationService>,
    ),
    StoreError,
> {
    let scorecards =
        crate::scorecards::ScorecardService::start(store.clone(), catalog.clone()).await?;
    let automations =
        AutomationService::start(store, catalog.clone(), runs.clone(), Limits::default()).await?;
    catalog.observe(automations.clone());
    scorecards.listen(automations.clone());
    let a = Arc::downgrade(&automations);
    runs.on_end(Arc::new(move |record: &RunRecord| {
        if let Some(a) = a.upgrade() {
            a.run_ended(record);
        }
    }));
    let a = Arc::downgrade(&automations);
    actions.on_finish(Arc::new(move |row: &gantry_store::ActionRunRow| {
        if let Some(a) = a.upgrade() {
            a.action_run_finished(row);
        }
    }));
    // Definitions changed through other servers sharing the database.
    let (s, a) = (Arc::downgrade(&scorecards), Arc::downgrade(&automations));
    tokio::spawn(async move {
        let mut every = tokio::time::interval(REFRESH);
        every.tick().await;
        loop {
            every.tick().await;
            let (Some(s), Some(a)) = (s.upgrade(), a.upgrade()) else {
                return;
            };
            if let Err(e) = s.refresh().await {
                tracing::warn!(error = %e, "could not read the scorecards");
            }
            if let Err(e) = a.reload().await {
                tracing::warn!(error = %e, "could not read the automations");
            }
        }
    });
    Ok((scorecards, automations))
}

/// How often definitions changed through other servers are read.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(5);
