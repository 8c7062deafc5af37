//! Scorecards on the server: every scorecard's standing of every entity it evaluates, kept in
//! memory in step with the catalog, persisted behind, with the history of level changes.
//!
//! The rules live in `gantry-catalog::scorecard`; this module decides *when* to evaluate:
//!
//! - a catalog change (this server's write, or another server's caught up from the store)
//!   re-evaluates only the entities it can reach: those written or recomputed
//!   ([`Applied::keys`]), plus, for a scorecard whose rules follow relations, the entities
//!   that reach them through as many relations as its longest path (and, for `relatedTo`
//!   rules, through any relation in either direction, up to 10 hops);
//! - a blueprint change, or a scorecard's own change, evaluates that scorecard's blueprint;
//! - at start, every scorecard is evaluated against the rows stored before, so the `since` of
//!   a level or a rule survives a restart.
//!
//! What changed goes to the store through one background writer (rows replaced, history
//! appended, many changes per transaction); a level change of this server's own write is also
//! an event for automations (`scorecard.level_changed`). Changes caught up from other servers
//! update memory only: the server that wrote them records them.
//!
//! Concurrency: one `std::sync::Mutex` around the state, never held across an await; it is
//! taken while the catalog's read lock is held (observer calls), never the other way round.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use chrono::{DateTime, Utc};
use gantry_catalog::index::{Applied, Catalog, Key};
use gantry_catalog::schema::Problem;
use gantry_catalog::scorecard::{
    self, check_scorecard, CompiledScorecard, Evaluation, Initiative, Scorecard,
};
use gantry_catalog::{Indexed, Lookup};
use gantry_store::{
    Audit, DefinitionKind, LevelChangeRow, ScorecardEntityRow, ScorecardStateWrite, Store,
    StoreError, StoredAction,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::catalog::{CatalogObserver, CatalogService, Group};

/// How far `relatedTo` rules look (the query language's largest depth).
const RELATED_TO_DEPTH: usize = 10;

/// Where one entity stands on one scorecard.
#[derive(Debug, Clone)]
pub struct Standing {
    pub eval: Evaluation,
    /// Since when it holds its level.
    pub since: DateTime<Utc>,
    /// Since when each rule has its result, in rule order.
    pub rule_since: Vec<DateTime<Utc>>,
}

struct Card {
    record: StoredAction,
    compiled: CompiledScorecard,
    info: Arc<CardInfo>,
    standings: HashMap<Key, Standing>,
}

/// What the writer needs of a scorecard to store its rows.
struct CardInfo {
    id: String,
    levels: Vec<String>,
    rules: Vec<String>,
}

impl CardInfo {
    fn of(compiled: &CompiledScorecard) -> Arc<CardInfo> {
        Arc::new(CardInfo {
            id: compiled.scorecard().identifier.clone(),
            levels: compiled.levels().iter().map(|l| (*l).to_owned()).collect(),
            rules: compiled
                .scorecard()
                .rules
                .iter()
                .map(|r| r.identifier.clone())
                .collect(),
        })
    }
}

/// An evaluation's changes on their way to the store: removals and history as stored, rows
/// as standings (made into stored rows by the writer, off the evaluating thread).
#[derive(Default)]
struct Changes {
    write: ScorecardStateWrite,
    rows: Vec<(Arc<CardInfo>, Key, Standing)>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.write.is_empty() && self.rows.is_empty()
    }

    /// The store's write: rows after removals, as the evaluation made them.
    fn into_write(self) -> ScorecardStateWrite {
        let mut write = self.write;
        write.put.extend(self.rows.into_iter().map(|(info, key, s)| {
            ScorecardEntityRow {
                scorecard: info.id.clone(),
                level: info.levels.get(s.eval.level).cloned().unwrap_or_default(),
                score: s.eval.score,
                since: s.since,
                rules: Value::Array(
                    info.rules
                        .iter()
                        .zip(&s.eval.rules)
                        .zip(&s.rule_since)
                        .map(|((r, o), since)| json!({"rule": r, "passed": o.passed, "since": since}))
                        .collect(),
                ),
                blueprint: key.0,
                identifier: key.1,
            }
        }));
        write
    }
}

/// A level change, for automations.
#[derive(Debug, Clone)]
pub struct LevelChanged {
    pub scorecard: String,
    pub blueprint: String,
    pub identifier: String,
    pub from: Option<(String, f64)>,
    pub to: Option<(String, f64)>,
    /// `true` when the new level is lower.
    pub drop: bool,
    pub entity: Value,
    pub at: DateTime<Utc>,
}

/// What an evaluation does beyond memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effects {
    /// Nothing (another server's change: it stores and tells).
    None,
    /// Stores what changed (at start).
    Store,
    /// Stores what changed and tells automations of level changes (this server's change).
    StoreAndTell,
}

/// A stored scorecard, compiled; `None` (logged) when it no longer reads.
fn compile_stored(record: &StoredAction) -> Option<CompiledScorecard> {
    let compiled = serde_json::from_value::<Scorecard>(record.definition.clone())
        .ok()
        .and_then(|sc| CompiledScorecard::compile(sc).ok());
    if compiled.is_none() {
        tracing::warn!(scorecard = %record.identifier, "stored scorecard no longer compiles; skipped");
    }
    compiled
}

/// Who hears of level changes (the automations).
pub trait LevelListener: Send + Sync {
    fn level_changed(&self, changes: Vec<LevelChanged>);
}

#[derive(Default)]
struct State {
    cards: BTreeMap<String, Card>,
    initiatives: BTreeMap<String, (StoredAction, Initiative)>,
}

pub struct ScorecardService {
    store: Arc<dyn Store>,
    catalog: Arc<CatalogService>,
    state: Mutex<State>,
    persist: mpsc::UnboundedSender<Changes>,
    listener: OnceLock<Arc<dyn LevelListener>>,
}

/// Why a definition was not stored.
#[derive(Debug)]
pub enum PutError {
    Invalid(Vec<Problem>),
    Store(StoreError),
}

impl From<StoreError> for PutError {
    fn from(e: StoreError) -> Self {
        PutError::Store(e)
    }
}

impl ScorecardService {
    /// Loads the scorecards and initiatives, evaluates every scorecard against the catalog and
    /// the rows stored before, and starts following the catalog.
    pub async fn start(
        store: Arc<dyn Store>,
        catalog: Arc<CatalogService>,
    ) -> Result<Arc<ScorecardService>, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let service = Arc::new(ScorecardService {
            store: store.clone(),
            catalog: catalog.clone(),
            state: Mutex::new(State::default()),
            persist: tx,
            listener: OnceLock::new(),
        });
        tokio::spawn(persist_loop(store.clone(), rx));
        // Following the catalog before evaluating: no change falls in between.
        catalog.observe(service.clone());
        catalog.sync().await?;
        for record in store.list_definitions(DefinitionKind::Scorecard).await? {
            let Some(compiled) = compile_stored(&record) else {
                continue;
            };
            let rows = store.load_scorecard_state(&record.identifier).await?;
            let stored = standings_from_rows(&compiled, rows);
            // What changed while no server watched is stored, not fired.
            service.install(record, compiled, Some(stored), Utc::now(), Effects::Store);
        }
        service.refresh().await?;
        Ok(service)
    }

    /// Sends level changes of this server's writes to `listener` from now on.
    pub fn listen(&self, listener: Arc<dyn LevelListener>) {
        let _ = self.listener.set(listener);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, changes: Changes) {
        if !changes.is_empty() {
            // The loop ends only with the runtime.
            let _ = self.persist.send(changes);
        }
    }

    // ------------------------------------------------------------ definitions

    /// Checks a scorecard against the catalog (and blueprints declared beside it).
    pub fn check(&self, sc: &Scorecard) -> Result<CompiledScorecard, Vec<Problem>> {
        let problems = {
            let index = self.catalog.read();
            check_scorecard(sc, &*index)
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        CompiledScorecard::compile(sc.clone())
    }

    /// Stores a scorecard and evaluates its blueprint with it.
    pub async fn put(
        &self,
        sc: Scorecard,
        managed_by: Option<String>,
        audit: &Audit,
    ) -> Result<bool, PutError> {
        self.catalog.sync().await?;
        let compiled = self.check(&sc).map_err(PutError::Invalid)?;
        let id = sc.identifier.clone();
        let definition = serde_json::to_value(&sc).unwrap_or(Value::Null);
        let Some(record) = store_definition(
            self.store.as_ref(),
            DefinitionKind::Scorecard,
            &id,
            definition,
            managed_by,
            audit,
        )
        .await?
        else {
            return Ok(false);
        };
        self.install(record, compiled, None, audit.at, Effects::StoreAndTell);
        Ok(true)
    }

    /// Puts a new or changed scorecard in place and evaluates its blueprint with it.
    /// `stored`: the standings stored before (at start); otherwise the scorecard's current
    /// ones carry over to the rules it keeps.
    fn install(
        &self,
        record: StoredAction,
        compiled: CompiledScorecard,
        stored: Option<HashMap<Key, Standing>>,
        at: DateTime<Utc>,
        effects: Effects,
    ) {
        let id = record.identifier.clone();
        let (write, changes) = crate::catalog::heavy(true, || {
            // The catalog first, then the scorecards: the order every path takes them in.
            let index = self.catalog.read();
            let mut state = self.lock();
            let standings = match stored {
                Some(s) => s,
                None => state
                    .cards
                    .remove(&id)
                    .map(|old| carry_standings(&old, &compiled))
                    .unwrap_or_default(),
            };
            let mut card = Card {
                standings,
                record,
                info: CardInfo::of(&compiled),
                compiled,
            };
            let blueprint = card.compiled.scorecard().blueprint.clone();
            let mut keys = all_keys(&index, card.compiled.scorecard());
            // Entities of another blueprint (the scorecard moved) leave it.
            keys.extend(card.standings.keys().filter(|k| k.0 != blueprint).cloned());
            let out = evaluate(
                &index,
                &mut card,
                &keys,
                &id,
                at,
                effects == Effects::StoreAndTell,
            );
            state.cards.insert(id, card);
            out
        });
        if effects != Effects::None {
            self.send(write);
        }
        self.notify(changes);
    }

    /// Takes in what other servers changed: scorecards and initiatives added, changed or
    /// deleted through them. (Their evaluations are theirs to store.)
    pub async fn refresh(&self) -> Result<(), StoreError> {
        self.catalog.sync().await?;
        let records = self
            .store
            .list_definitions(DefinitionKind::Scorecard)
            .await?;
        let known: HashMap<String, i64> = self
            .lock()
            .cards
            .iter()
            .map(|(id, c)| (id.clone(), c.record.version))
            .collect();
        for record in &records {
            if known.get(&record.identifier) == Some(&record.version) {
                continue;
            }
            if let Some(compiled) = compile_stored(record) {
                self.install(record.clone(), compiled, None, Utc::now(), Effects::None);
            }
        }
        self.lock()
            .cards
            .retain(|id, _| records.iter().any(|r| &r.identifier == id));
        let initiatives = self
            .store
            .list_definitions(DefinitionKind::Initiative)
            .await?;
        self.lock().initiatives = initiatives
            .into_iter()
            .filter_map(|r| {
                let i = serde_json::from_value::<Initiative>(r.definition.clone()).ok()?;
                Some((r.identifier.clone(), (r, i)))
            })
            .collect();
        Ok(())
    }

    pub async fn delete(&self, id: &str, audit: &Audit) -> Result<(), StoreError> {
        self.store
            .delete_definition(DefinitionKind::Scorecard, id, audit)
            .await?;
        let card = self.lock().cards.remove(id);
        if let Some(card) = card {
            let mut write = ScorecardStateWrite {
                removed_scorecards: vec![id.to_owned()],
                ..ScorecardStateWrite::default()
            };
            for ((bp, eid), s) in card.standings {
                write.history.push(LevelChangeRow {
                    seq: 0,
                    scorecard: id.to_owned(),
                    blueprint: bp,
                    identifier: eid,
                    from: Some(level_of(&card.compiled, s.eval.level)),
                    to: None,
                    score: None,
                    at: audit.at,
                });
            }
            self.send(Changes {
                write,
                rows: Vec::new(),
            });
        }
        Ok(())
    }

    /// Checks an initiative against its scorecard: `declared` (one the same apply declares),
    /// else the stored one.
    pub fn check_initiative(&self, i: &Initiative, declared: Option<&Scorecard>) -> Vec<Problem> {
        let state = self.lock();
        let sc = declared.or_else(|| {
            state
                .cards
                .get(&i.scorecard)
                .map(|c| c.compiled.scorecard())
        });
        scorecard::check_initiative(i, sc)
    }

    /// Stores an initiative after checking it against its scorecard.
    pub async fn put_initiative(
        &self,
        i: Initiative,
        managed_by: Option<String>,
        audit: &Audit,
    ) -> Result<bool, PutError> {
        let problems = self.check_initiative(&i, None);
        if !problems.is_empty() {
            return Err(PutError::Invalid(problems));
        }
        let id = i.identifier.clone();
        let definition = serde_json::to_value(&i).unwrap_or(Value::Null);
        let Some(record) = store_definition(
            self.store.as_ref(),
            DefinitionKind::Initiative,
            &id,
            definition,
            managed_by,
            audit,
        )
        .await?
        else {
            return Ok(false);
        };
        self.lock().initiatives.insert(id, (record, i));
        Ok(true)
    }

    pub async fn delete_initiative(&self, id: &str, audit: &Audit) -> Result<(), StoreError> {
        self.store
            .delete_definition(DefinitionKind::Initiative, id, audit)
            .await?;
        self.lock().initiatives.remove(id);
        Ok(())
    }

    // ------------------------------------------------------------ reads

    /// Every scorecard's record, by identifier.
    pub fn records(&self) -> Vec<StoredAction> {
        self.lock()
            .cards
            .values()
            .map(|c| c.record.clone())
            .collect()
    }

    pub fn initiative_records(&self) -> Vec<StoredAction> {
        self.lock()
            .initiatives
            .values()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// A scorecard's definition with its summary (per level, per team, per rule).
    pub fn scorecard_json(&self, id: &str) -> Option<Value> {
        let index = self.catalog.read();
        let state = self.lock();
        let card = state.cards.get(id)?;
        let summary = scorecard::summarize(&card.compiled, with_teams(&index, card));
        Some(json!({
            "scorecard": card.record.definition,
            "version": card.record.version,
            "managedBy": card.record.managed_by,
            "updatedAt": card.record.updated_at,
            "updatedBy": card.record.updated_by,
            "summary": summary_json(&card.compiled, &summary),
        }))
    }

    /// The standings of a scorecard's entities, filtered by level and team, by identifier.
    pub fn standings_json(
        &self,
        id: &str,
        level: Option<&str>,
        team: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Option<Value> {
        let index = self.catalog.read();
        let state = self.lock();
        let card = state.cards.get(id)?;
        let mut keys: Vec<&Key> = card
            .standings
            .iter()
            .filter(|(_, s)| {
                level.is_none_or(|l| card.compiled.level_name(s.eval.level) == Some(l))
            })
            .filter(|(k, _)| {
                team.is_none_or(|t| {
                    index
                        .entity_view(&k.0, &k.1)
                        .is_some_and(|e| e.record.entity.team.iter().any(|x| x == t))
                })
            })
            .map(|(k, _)| k)
            .filter(|k| after.is_none_or(|a| k.1.as_str() > a))
            .collect();
        keys.sort();
        let total = keys.len();
        let page: Vec<Value> = keys
            .iter()
            .take(limit)
            .map(|k| standing_json(card, k, &card.standings[*k], &index))
            .collect();
        let next = (total > limit).then(|| keys[limit - 1].1.clone());
        Some(json!({"items": page, "total": total, "next": next}))
    }

    /// Where one entity stands on every scorecard that evaluates it.
    pub fn entity_json(&self, blueprint: &str, identifier: &str) -> Vec<Value> {
        let index = self.catalog.read();
        let state = self.lock();
        let key = (blueprint.to_owned(), identifier.to_owned());
        state
            .cards
            .values()
            .filter_map(|c| Some(standing_json(c, &key, c.standings.get(&key)?, &index)))
            .collect()
    }

    /// An initiative with its progress, per team.
    pub fn initiative_json(&self, id: &str) -> Option<Value> {
        let index = self.catalog.read();
        let state = self.lock();
        let (record, i) = state.initiatives.get(id)?;
        let progress = state.cards.get(&i.scorecard).and_then(|card| {
            let target = card
                .compiled
                .levels()
                .iter()
                .position(|l| *l == i.target_level)?;
            let p = scorecard::progress(&card.compiled, target, with_teams(&index, card));
            Some(progress_json(&p))
        });
        Some(json!({
            "initiative": record.definition,
            "version": record.version,
            "managedBy": record.managed_by,
            "progress": progress,
        }))
    }

    /// Compares every scorecard's standings in `before` with those in `after` (a copy of the
    /// catalog with a change planned on it) for the entities in `keys`: the CI check.
    pub fn compare(
        &self,
        before: &Catalog,
        after: &Catalog,
        keys: &[Key],
        replaced: &[Scorecard],
    ) -> Vec<Value> {
        let state = self.lock();
        let mut cards: Vec<CompiledScorecard> = state
            .cards
            .values()
            .filter(|c| {
                !replaced
                    .iter()
                    .any(|r| r.identifier == c.compiled.scorecard().identifier)
            })
            .map(|c| c.compiled.clone())
            .collect();
        drop(state);
        cards.extend(
            replaced
                .iter()
                .filter_map(|s| CompiledScorecard::compile(s.clone()).ok()),
        );
        let mut out = Vec::new();
        for card in &cards {
            let p_before = card.prepare(before);
            let p_after = card.prepare(after);
            // Whatever reaches a changed entity, before or after the change.
            let mut mine: Vec<Key> = reach(before, card, keys);
            mine.extend(reach(after, card, keys));
            mine.sort();
            mine.dedup();
            for key in &mine {
                let b = before
                    .entity_view(&key.0, &key.1)
                    .and_then(|e| p_before.evaluate(e, before));
                let a = after
                    .entity_view(&key.0, &key.1)
                    .and_then(|e| p_after.evaluate(e, after));
                let Some(change) = scorecard::compare_levels(card, b.as_ref(), a.as_ref()) else {
                    continue;
                };
                let name = |l: Option<usize>| l.map(|l| level_of(card, l));
                let rules = |idx: &[usize]| -> Vec<Value> {
                    idx.iter()
                        .map(|&i| {
                            let r = &card.scorecard().rules[i];
                            json!({"identifier": r.identifier, "title": r.title, "level": r.level})
                        })
                        .collect()
                };
                out.push(json!({
                    "scorecard": card.scorecard().identifier,
                    "entity": format!("{}/{}", key.0, key.1),
                    "from": name(change.from),
                    "to": name(change.to),
                    "direction": match (change.from, change.to) {
                        (None, _) => "enter",
                        (_, None) => "leave",
                        _ if change.is_drop() => "drop",
                        _ => "rise",
                    },
                    "newlyFailing": rules(&change.rules_newly_failing),
                    "newlyPassing": rules(&change.rules_newly_passing),
                }));
            }
        }
        out
    }

    /// Level history, newest first.
    pub async fn history(
        &self,
        filter: &gantry_store::HistoryFilter,
        limit: u32,
    ) -> Result<Vec<LevelChangeRow>, StoreError> {
        self.store.scorecard_history(filter, limit).await
    }

    fn notify(&self, changes: Vec<LevelChanged>) {
        if changes.is_empty() {
            return;
        }
        if let Some(l) = self.listener.get() {
            l.level_changed(changes);
        }
    }
}

impl CatalogObserver for ScorecardService {
    fn applied(&self, catalog: &Catalog, applied: &Applied, written: &Group<'_>) {
        let own = !written.is_empty();
        let at = written.first().map_or_else(Utc::now, |w| w.audit.at);
        let mut writes = Vec::new();
        let mut changes = Vec::new();
        {
            let mut state = self.lock();
            for (id, card) in state.cards.iter_mut() {
                let keys = if applied.all {
                    let mut keys = all_keys(catalog, card.compiled.scorecard());
                    keys.extend(card.standings.keys().cloned());
                    keys
                } else {
                    reach(catalog, &card.compiled, &applied.keys)
                };
                if keys.is_empty() {
                    continue;
                }
                let (w, c) = evaluate(catalog, card, &keys, id, at, own);
                if own {
                    writes.push(w);
                    changes.extend(c);
                }
            }
        }
        for w in writes {
            self.send(w);
        }
        self.notify(changes);
    }
}

/// The entities of a scorecard's blueprint.
fn all_keys(catalog: &Catalog, sc: &Scorecard) -> Vec<Key> {
    catalog
        .entities_of(&sc.blueprint)
        .map(|e| {
            (
                e.record.entity.blueprint.clone(),
                e.record.entity.identifier.clone(),
            )
        })
        .collect()
}

/// The entities of the scorecard's blueprint whose result a change of `changed` can move.
fn reach(catalog: &Catalog, card: &CompiledScorecard, changed: &[Key]) -> Vec<Key> {
    let bp = &card.scorecard().blueprint;
    let (depth, both) = if card.uses_related_to() {
        (RELATED_TO_DEPTH, true)
    } else {
        (card.relation_depth(), false)
    };
    let mut seen: HashSet<Key> = changed.iter().cloned().collect();
    let mut frontier: Vec<Key> = changed.to_vec();
    for _ in 0..depth {
        let mut next = Vec::new();
        for (kbp, kid) in &frontier {
            for (r, _) in catalog.referrers(kbp, kid) {
                let k = (
                    r.record.entity.blueprint.clone(),
                    r.record.entity.identifier.clone(),
                );
                if seen.insert(k.clone()) {
                    next.push(k);
                }
            }
            if both {
                if let Some(e) = catalog.entity_view(kbp, kid) {
                    for k in targets(catalog, e) {
                        if seen.insert(k.clone()) {
                            next.push(k);
                        }
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    seen.into_iter().filter(|(b, _)| b == bp).collect()
}

fn targets(catalog: &Catalog, e: &Indexed) -> Vec<Key> {
    let Some(bp) = catalog.blueprint(&e.record.entity.blueprint) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in &e.record.entity.relations {
        if let Some(spec) = bp.relations.get(name) {
            for t in value.targets() {
                out.push((spec.target.clone(), t.clone()));
            }
        }
    }
    out
}

/// Evaluates `keys` on one scorecard: updates the standings and returns what to store and
/// the level changes (to tell automations when `own`).
fn evaluate(
    catalog: &Catalog,
    card: &mut Card,
    keys: &[Key],
    id: &str,
    at: DateTime<Utc>,
    own: bool,
) -> (Changes, Vec<LevelChanged>) {
    let mut out = Changes::default();
    let write = &mut out.write;
    let mut changes = Vec::new();
    let prepared = card.compiled.prepare(catalog);
    let mut done: HashSet<&Key> = HashSet::new();
    for key in keys {
        if !done.insert(key) {
            continue;
        }
        let entity = catalog.entity_view(&key.0, &key.1);
        let new = entity.and_then(|e| prepared.passes(e, catalog));
        let old = card.standings.get(key);
        let name = |l: usize| level_of(&card.compiled, l);
        match (old, new) {
            (None, None) => {}
            (Some(old), None) => {
                write
                    .removed
                    .push((id.to_owned(), key.0.clone(), key.1.clone()));
                write.history.push(LevelChangeRow {
                    seq: 0,
                    scorecard: id.to_owned(),
                    blueprint: key.0.clone(),
                    identifier: key.1.clone(),
                    from: Some(name(old.eval.level)),
                    to: None,
                    score: None,
                    at,
                });
                card.standings.remove(key);
            }
            (old, Some(eval)) => {
                if old.is_some_and(|o| same(&o.eval, &eval)) {
                    continue;
                }
                let since = match old {
                    Some(o) if o.eval.level == eval.level => o.since,
                    _ => at,
                };
                let rule_since = eval
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match old {
                        Some(o) if o.eval.rules.get(i).map(|x| x.passed) == Some(r.passed) => {
                            o.rule_since[i]
                        }
                        _ => at,
                    })
                    .collect();
                let moved = old.is_none_or(|o| o.eval.level != eval.level);
                if moved {
                    write.history.push(LevelChangeRow {
                        seq: 0,
                        scorecard: id.to_owned(),
                        blueprint: key.0.clone(),
                        identifier: key.1.clone(),
                        from: old.map(|o| name(o.eval.level)),
                        to: Some(name(eval.level)),
                        score: Some(eval.score),
                        at,
                    });
                    if own {
                        if let (Some(o), Some(e)) = (old, entity) {
                            changes.push(LevelChanged {
                                scorecard: id.to_owned(),
                                blueprint: key.0.clone(),
                                identifier: key.1.clone(),
                                from: Some((name(o.eval.level), o.eval.score)),
                                to: Some((name(eval.level), eval.score)),
                                drop: eval.level < o.eval.level,
                                entity: e.to_json(),
                                at,
                            });
                        }
                    }
                }
                let standing = Standing {
                    eval,
                    since,
                    rule_since,
                };
                out.rows
                    .push((card.info.clone(), key.clone(), standing.clone()));
                card.standings.insert(key.clone(), standing);
            }
        }
    }
    (out, changes)
}

/// Whether two evaluations have the same outcomes. Values seen are not kept: they are the
/// entity's as it is, read when shown.
fn same(a: &Evaluation, b: &Evaluation) -> bool {
    a.level == b.level
        && a.score == b.score
        && a.rules.len() == b.rules.len()
        && a.rules
            .iter()
            .zip(&b.rules)
            .all(|(x, y)| x.passed == y.passed)
}

/// Standings as stored, for the `since` of each level and rule to survive a restart (the
/// evaluation that follows replaces what changed meanwhile).
fn standings_from_rows(
    compiled: &CompiledScorecard,
    rows: Vec<ScorecardEntityRow>,
) -> HashMap<Key, Standing> {
    let levels = compiled.levels();
    let rules = &compiled.scorecard().rules;
    let mut out = HashMap::new();
    for r in rows {
        let Some(level) = levels.iter().position(|l| *l == r.level) else {
            continue;
        };
        let stored: HashMap<&str, &Value> = r
            .rules
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| Some((x.get("rule")?.as_str()?, x)))
                    .collect()
            })
            .unwrap_or_default();
        let mut outcomes = Vec::new();
        let mut since = Vec::new();
        for rule in rules {
            let s = stored.get(rule.identifier.as_str());
            outcomes.push(scorecard::RuleOutcome {
                passed: s
                    .and_then(|s| s.get("passed"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                value: Value::Null,
            });
            since.push(
                s.and_then(|s| s.get("since"))
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or(r.since),
            );
        }
        out.insert(
            (r.blueprint, r.identifier),
            Standing {
                eval: Evaluation {
                    level,
                    score: r.score,
                    rules: outcomes,
                },
                since: r.since,
                rule_since: since,
            },
        );
    }
    out
}

/// A changed scorecard keeps what its entities had under the rules it still holds.
fn carry_standings(old: &Card, new: &CompiledScorecard) -> HashMap<Key, Standing> {
    let old_rules = &old.compiled.scorecard().rules;
    let new_levels = new.levels();
    let mut out = HashMap::new();
    for (k, s) in &old.standings {
        let Some(level) = new_levels
            .iter()
            .position(|l| Some(*l) == old.compiled.level_name(s.eval.level))
        else {
            continue;
        };
        let mut outcomes = Vec::new();
        let mut since = Vec::new();
        for rule in &new.scorecard().rules {
            match old_rules
                .iter()
                .position(|r| r.identifier == rule.identifier)
            {
                Some(i) => {
                    outcomes.push(s.eval.rules[i].clone());
                    since.push(s.rule_since[i]);
                }
                None => {
                    outcomes.push(scorecard::RuleOutcome {
                        passed: false,
                        value: Value::Null,
                    });
                    since.push(s.since);
                }
            }
        }
        out.insert(
            k.clone(),
            Standing {
                eval: Evaluation {
                    level,
                    score: s.eval.score,
                    rules: outcomes,
                },
                since: s.since,
                rule_since: since,
            },
        );
    }
    out
}

/// Each standing with its entity's teams, borrowed from the catalog.
fn with_teams<'a>(
    catalog: &'a Catalog,
    card: &'a Card,
) -> impl Iterator<Item = (&'a Evaluation, &'a [String])> + 'a {
    card.standings.iter().map(|(k, s)| {
        let teams = catalog
            .entity_view(&k.0, &k.1)
            .map_or(&[][..], |e| e.record.entity.team.as_slice());
        (&s.eval, teams)
    })
}

fn standing_json(card: &Card, key: &Key, s: &Standing, catalog: &Catalog) -> Value {
    let sc = card.compiled.scorecard();
    let entity = catalog.entity_view(&key.0, &key.1);
    let values = entity.map_or_else(
        || vec![Value::Null; sc.rules.len()],
        |e| card.compiled.values(&s.eval, e, catalog),
    );
    let rules: Vec<Value> = sc
        .rules
        .iter()
        .zip(&s.eval.rules)
        .zip(&s.rule_since)
        .zip(values)
        .map(|(((r, o), since), value)| {
            json!({
                "identifier": r.identifier,
                "title": r.title,
                "level": r.level,
                "weight": r.weight.unwrap_or(1.0),
                "passed": o.passed,
                "value": value,
                "since": since,
            })
        })
        .collect();
    let next: Vec<Value> = card
        .compiled
        .next_to_fix(&s.eval)
        .into_iter()
        .map(|i| {
            let r = &sc.rules[i];
            json!({"identifier": r.identifier, "title": r.title, "level": r.level, "description": r.description})
        })
        .collect();
    let next_level = (s.eval.level + 1 < card.compiled.levels().len())
        .then(|| level_of(&card.compiled, s.eval.level + 1));
    json!({
        "scorecard": sc.identifier,
        "title": sc.title,
        "entity": format!("{}/{}", key.0, key.1),
        "team": entity.map(|e| e.record.entity.team.clone()),
        "level": level_of(&card.compiled, s.eval.level),
        "levelIndex": s.eval.level,
        "score": s.eval.score,
        "since": s.since,
        "rules": rules,
        "nextLevel": next_level,
        "toFixNext": next,
    })
}

fn summary_json(card: &CompiledScorecard, s: &scorecard::Summary) -> Value {
    let levels = card.levels();
    let by_team: serde_json::Map<String, Value> = s
        .by_team
        .iter()
        .map(|(team, counts)| {
            let per: serde_json::Map<String, Value> = levels
                .iter()
                .zip(counts)
                .map(|(l, n)| ((*l).to_owned(), json!(n)))
                .collect();
            (team.clone(), Value::Object(per))
        })
        .collect();
    json!({
        "total": s.total,
        "byLevel": s.by_level.iter().map(|(l, n)| json!({"level": l, "count": n})).collect::<Vec<_>>(),
        "byTeam": by_team,
        "rules": s.rules.iter().map(|r| json!({"identifier": r.identifier, "passed": r.passed, "total": r.total})).collect::<Vec<_>>(),
        "averageScore": s.average_score,
    })
}

/// A level's name (levels are never empty in a compiled scorecard).
fn level_of(card: &CompiledScorecard, i: usize) -> String {
    card.level_name(i).unwrap_or_default().to_owned()
}

fn progress_json(p: &scorecard::Progress) -> Value {
    let by_team: serde_json::Map<String, Value> = p
        .by_team
        .iter()
        .map(|(team, t)| {
            (
                team.clone(),
                json!({"total": t.total, "atTarget": t.at_target, "share": t.share}),
            )
        })
        .collect();
    json!({"total": p.total, "atTarget": p.at_target, "share": p.share, "byTeam": by_team})
}

/// Stores a definition of `kind` unless it is stored so already (`None`); returns its record.
pub(crate) async fn store_definition(
    store: &dyn Store,
    kind: DefinitionKind,
    id: &str,
    definition: Value,
    managed_by: Option<String>,
    audit: &Audit,
) -> Result<Option<StoredAction>, StoreError> {
    let before = match store.get_definition(kind, id).await {
        Ok(b) => Some(b),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    if before
        .as_ref()
        .is_some_and(|b| b.definition == definition && b.managed_by == managed_by)
    {
        return Ok(None);
    }
    let record = definition_record(id, definition, before.as_ref(), managed_by, audit);
    store
        .put_definition(kind, &record, before.as_ref().map(|b| b.version), audit)
        .await?;
    Ok(Some(record))
}

/// A definition's stored record after a change by `audit`'s actor.
fn definition_record(
    id: &str,
    definition: Value,
    before: Option<&StoredAction>,
    managed_by: Option<String>,
    audit: &Audit,
) -> StoredAction {
    StoredAction {
        identifier: id.to_owned(),
        definition,
        version: before.map_or(1, |b| b.version + 1),
        created_at: before.map_or(audit.at, |b| b.created_at),
        updated_at: audit.at,
        created_by: before.map_or_else(|| audit.actor.name.clone(), |b| b.created_by.clone()),
        updated_by: audit.actor.name.clone(),
        managed_by,
    }
}

/// Rows written per transaction at most, so a whole scorecard's first evaluation never holds
/// the database's writer long enough to delay the catalog's writes much.
const ROWS_PER_TRANSACTION: usize = 1_024;

/// How long the writer waits for more changes before it writes.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// Writes scorecard state in the background, many changes per transaction (at most
/// [`ROWS_PER_TRANSACTION`] rows each); a failed write is tried again (the state in memory is
/// the truth until it lands).
async fn persist_loop(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Changes>) {
    while let Some(first) = rx.recv().await {
        // What follows shortly joins it: one transaction (one fsync) for many changes, so the
        // catalog's own commits rarely wait behind these.
        tokio::time::sleep(LINGER).await;
        let mut batch = vec![first];
        let mut rows = batch[0].rows.len();
        while rows < ROWS_PER_TRANSACTION {
            match rx.try_recv() {
                Ok(more) => {
                    rows += more.rows.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        // Making rows into JSON is CPU work (a whole scorecard's is seconds): off the async
        // threads, so requests keep being answered meanwhile.
        let parts = tokio::task::spawn_blocking(move || {
            let mut write = ScorecardStateWrite::default();
            for changes in batch {
                write.merge(changes.into_write());
            }
            // Removals and history go first, with the first rows; the rest follow in order.
            let rest = if write.put.len() > ROWS_PER_TRANSACTION {
                write.put.split_off(ROWS_PER_TRANSACTION)
            } else {
                Vec::new()
            };
            let mut parts = vec![write];
            for chunk in rest.chunks(ROWS_PER_TRANSACTION) {
                parts.push(ScorecardStateWrite {
                    put: chunk.to_vec(),
                    ..ScorecardStateWrite::default()
                });
            }
            parts
        })
        .await;
        let Ok(parts) = parts else {
            tracing::error!(
                "preparing scorecard rows failed; they are stored when their entities next change"
            );
            continue;
        };
        for part in parts {
            let mut delay = std::time::Duration::from_millis(50);
            while let Err(e) = store.write_scorecard_state(&part).await {
                tracing::warn!(error = %e, "storing scorecard results failed; trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}
