//! The catalog in memory: every blueprint and entity, the reverse relation index, and the
//! computed values, kept in step with the store by applying [`Delta`]s in the store's order.
//!
//! The server holds one [`Catalog`] behind a lock. Writes are planned here against the current
//! state ([`Catalog::plan_entities`], [`Catalog::plan_blueprints`], the delete plans): every
//! validation, relation, lock and source rule is decided before anything is stored; the store
//! then commits the planned records and the server applies them back as a [`Delta`].
//!
//! Computed values are derived, never stored: a change recomputes the entities it can affect
//! (itself, the targets of its old and new relations for aggregations, and the entities that
//! reach it through relations for mirrors, up to the longest mirror path), never the whole
//! catalog; a blueprint change recomputes everything.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::computed;
use crate::jq::{JqProgram, Limits};
use crate::model::*;
use crate::query::{self, Query, Sort, TextSearch};
use crate::schema::{self, CompiledBlueprint, Problem};
use crate::table::{Slot, Table};

/// An entity's key: (blueprint, identifier).
pub type Key = (String, String);

/// What the store reports changed after a sequence number, applied in order.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    pub seq: i64,
    pub blueprints: Vec<BlueprintRecord>,
    pub entities: Vec<EntityRecord>,
    pub deleted_blueprints: Vec<String>,
    pub deleted_entities: Vec<Key>,
}

/// What applying a delta changed: every entity whose record or computed values may differ
/// (the entities written or deleted, and those recomputed around them), or everything.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// A blueprint changed: every entity may differ.
    pub all: bool,
    /// Without `all`: the entities that may differ, each once (deleted ones included).
    pub keys: Vec<Key>,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing: a create.
    New,
    /// The existing one: a replace or a patch.
    Existing,
    /// Either: an upsert.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Deleted,
}

/// Who writes, as what, when.
#[derive(Debug, Clone)]
pub struct WriteContext<'a> {
    pub source: &'a Source,
    pub actor: &'a str,
    pub now: DateTime<Utc>,
    /// The definition-file source applying this (it becomes the record's `managed_by`).
    pub managed_by: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct PlannedEntity {
    pub record: EntityRecord,
    pub before: Option<EntityRecord>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub struct PlannedBlueprint {
    pub record: BlueprintRecord,
    pub before: Option<BlueprintRecord>,
    pub outcome: Outcome,
}

#[derive(Clone)]
struct BlueprintEntry {
    record: BlueprintRecord,
    compiled: CompiledBlueprint,
    /// Calculation properties with their compiled programs (`None`: did not compile).
    calculations: Vec<(String, CalculationSpec, Option<JqProgram>)>,
    /// Compiled aggregation filters by property name.
    filters: HashMap<String, Query>,
}

impl BlueprintEntry {
    fn new(record: BlueprintRecord) -> Self {
        let bp = &record.blueprint;
        let calculations = bp
            .calculation_properties
            .iter()
            .map(|(k, spec)| {
                (
                    k.clone(),
                    spec.clone(),
                    JqProgram::compile(&spec.calculation).ok(),
                )
            })
            .collect();
        let filters = bp
            .aggregation_properties
            .iter()
            .filter_map(|(k, spec)| {
                let q = Query::from_value(spec.filter.as_ref()?).ok()?;
                Some((k.clone(), q))
            })
            .collect();
        BlueprintEntry {
            compiled: CompiledBlueprint::new(bp),
            record,
            calculations,
            filters,
        }
    }
}

/// A referrer: (its blueprint, its identifier, the relation's name).
type Ref = (String, String, String);

/// The whole catalog in memory. A clone is a full copy (the CI check plans changes on one).
#[derive(Clone)]
pub struct Catalog {
    seq: i64,
    blueprints: BTreeMap<String, BlueprintEntry>,
    /// Blueprint → its entities, with a column per field for searches.
    entities: HashMap<String, Table>,
    /// Target blueprint → target identifier → who points at it.
    referrers: HashMap<String, HashMap<String, HashSet<Ref>>>,
    /// Calculations that failed, by entity: shown beside the entity, never fatal.
    errors: HashMap<Key, Vec<Problem>>,
    limits: Limits,
    /// The longest relation path of any mirror property.
    mirror_depth: usize,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new(Limits::default())
    }
}

impl Lookup for Catalog {
    fn blueprint(&self, identifier: &str) -> Option<&Blueprint> {
        self.blueprints.get(identifier).map(|e| &e.record.blueprint)
    }

    fn entity(&self, blueprint: &str, identifier: &str) -> Option<&Indexed> {
        self.entities.get(blueprint)?.get(identifier)
    }

    fn referrers(&self, blueprint: &str, identifier: &str) -> Vec<(&Indexed, &str)> {
        let Some(refs) = self
            .referrers
            .get(blueprint)
            .and_then(|m| m.get(identifier))
        else {
            return Vec::new();
        };
        refs.iter()
            .filter_map(|(bp, id, rel)| Some((self.entity(bp, id)?, rel.as_str())))
            .collect()
    }
}

/// A query's page.
#[derive(Debug)]
pub struct Page<'a> {
    pub entities: Vec<&'a Indexed>,
    /// How many entities match in all.
    pub total: usize,
    /// Field → value → how many matching entities have it (`null` for none).
    pub facets: BTreeMap<String, BTreeMap<String, usize>>,
    /// The cursor of the next page, when there is one.
    pub next: Option<Value>,
}

/// What to look for.
#[derive(Debug, Default)]
pub struct Search {
    pub query: Option<Query>,
    pub blueprint: Option<String>,
    pub text: Option<String>,
    pub sort: Vec<Sort>,
    pub limit: usize,
    /// The `next` of the previous page.
    pub after: Option<Value>,
    pub facets: Vec<String>,
}

impl Catalog {
    pub fn new(limits: Limits) -> Self {
        Catalog {
            seq: 0,
            blueprints: BTreeMap::new(),
            entities: HashMap::new(),
            referrers: HashMap::new(),
            errors: HashMap::new(),
            limits,
            mirror_depth: 0,
        }
    }

    /// The store's sequence number this state reflects.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// An entity with its computed values.
    pub fn entity_view(&self, blueprint: &str, identifier: &str) -> Option<&Indexed> {
        self.entities.get(blueprint)?.get(identifier)
    }

    pub fn blueprint_record(&self, identifier: &str) -> Option<&BlueprintRecord> {
        self.blueprints.get(identifier).map(|e| &e.record)
    }

    pub fn blueprint_records(&self) -> impl Iterator<Item = &BlueprintRecord> {
        self.blueprints.values().map(|e| &e.record)
    }

    pub fn entity_count(&self) -> usize {
        self.entities.values().map(Table::len).sum()
    }

    /// The calculations that failed for this entity.
    pub fn errors_of(&self, blueprint: &str, identifier: &str) -> &[Problem] {
        self.errors
            .get(&(blueprint.to_string(), identifier.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    /// Relations of this entity naming entities that do not exist: relation → identifiers.
    pub fn dangling(&self, e: &Indexed) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let Some(bp) = self.blueprint(&e.record.entity.blueprint) else {
            return out;
        };
        for (name, value) in &e.record.entity.relations {
            let Some(spec) = bp.relations.get(name) else {
                continue;
            };
            let missing: Vec<String> = value
                .targets()
                .iter()
                .filter(|t| self.entity(&spec.target, t).is_none())
                .cloned()
                .collect();
            if !missing.is_empty() {
                out.insert(name.clone(), missing);
            }
        }
        out
    }

    /// Every entity of a blueprint, in no particular order.
    pub fn entities_of<'a>(&'a self, blueprint: &str) -> impl Iterator<Item = &'a Indexed> + 'a {
        self.entities
            .get(blueprint)
            .into_iter()
            .flat_map(Table::values)
    }

    /// Entities declared by a definition-file source (for `--prune`).
    pub fn managed_by<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a Indexed> + 'a {
        self.entities
            .values()
            .flat_map(Table::values)
            .filter(move |e| e.record.managed_by.as_deref() == Some(source))
    }

    pub fn blueprints_managed_by<'a>(
        &'a self,
        source: &'a str,
    ) -> impl Iterator<Item = &'a BlueprintRecord> + 'a {
        self.blueprints
            .values()
            .map(|e| &e.record)
            .filter(move |r| r.managed_by.as_deref() == Some(source))
    }

    // ------------------------------------------------------------------ applying changes

    /// Applies what the store committed, in its order, then recomputes what it affects;
    /// returns what may have changed.
    pub fn apply(&mut self, delta: Delta) -> Applied {
        let mut all = false;
        let mut touched: Vec<Key> = Vec::new();
        for record in delta.blueprints {
            let id = record.blueprint.identifier.clone();
            self.blueprints.insert(id, BlueprintEntry::new(record));
            all = true;
        }
        for (bp, id) in delta.deleted_entities {
            if let Some(old) = self.remove_entity(&bp, &id) {
                touched.extend(self.targets_of(&old.record.entity));
            }
            touched.push((bp, id));
        }
        for record in delta.entities {
            let key = (
                record.entity.blueprint.clone(),
                record.entity.identifier.clone(),
            );
            if let Some(old) = self.remove_entity(&key.0, &key.1) {
                touched.extend(self.targets_of(&old.record.entity));
            }
            touched.extend(self.targets_of(&record.entity));
            self.insert_entity(record);
            touched.push(key);
        }
        for bp in delta.deleted_blueprints {
            self.blueprints.remove(&bp);
            if let Some(left) = self.entities.remove(&bp) {
                for e in left.values() {
                    self.unregister(&e.record.entity);
                }
            }
            all = true;
        }
        self.seq = self.seq.max(delta.seq);
        self.mirror_depth = self
            .blueprints
            .values()
            .flat_map(|b| b.record.blueprint.mirror_properties.values())
            .map(|m| m.path.split('.').count().saturating_sub(1))
            .max()
            .unwrap_or(0);
        // Calculations run on a stack of known size, set up once for the whole batch.
        crate::jq::with_run_stack(|| {
            if all {
                self.recompute_all();
                Applied {
                    all: true,
                    keys: Vec::new(),
                }
            } else {
                Applied {
                    all: false,
                    keys: self.recompute_around(touched),
                }
            }
        })
    }

    fn targets_of(&self, e: &Entity) -> Vec<Key> {
        self.relation_targets(e)
            .into_iter()
            .map(|(bp, id, _)| (bp, id))
            .collect()
    }

    fn insert_entity(&mut self, record: EntityRecord) {
        self.register(&record.entity);
        let bp = record.entity.blueprint.clone();
        let table = match self.entities.entry(bp) {
            std::collections::hash_map::Entry::Occupied(t) => t.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let bp = self.blueprints.get(v.key()).map(|b| &b.record.blueprint);
                v.insert(Table::new(bp))
            }
        };
        table.insert(Indexed {
            record,
            computed: Map::new(),
        });
    }

    fn remove_entity(&mut self, bp: &str, id: &str) -> Option<Indexed> {
        let old = self.entities.get_mut(bp)?.remove(id)?;
        self.unregister(&old.record.entity);
        self.errors.remove(&(bp.to_string(), id.to_string()));
        Some(old)
    }

    fn relation_targets(&self, e: &Entity) -> Vec<(String, String, String)> {
        let Some(bp) = self.blueprint(&e.blueprint) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in &e.relations {
            if let Some(spec) = bp.relations.get(name) {
                for t in value.targets() {
                    out.push((spec.target.clone(), t.clone(), name.clone()));
                }
            }
        }
        out
    }

    fn register(&mut self, e: &Entity) {
        for (tbp, tid, rel) in self.relation_targets(e) {
            self.referrers
                .entry(tbp)
                .or_default()
                .entry(tid)
                .or_default()
                .insert((e.blueprint.clone(), e.identifier.clone(), rel));
        }
    }

    fn unregister(&mut self, e: &Entity) {
        for (tbp, tid, rel) in self.relation_targets(e) {
            if let Some(by_id) = self.referrers.get_mut(&tbp) {
                if let Some(set) = by_id.get_mut(&tid) {
                    set.remove(&(e.blueprint.clone(), e.identifier.clone(), rel));
                    if set.is_empty() {
                        by_id.remove(&tid);
                    }
                }
            }
        }
    }

    fn recompute_all(&mut self) {
        // The reverse index depends on the blueprints' relations: rebuild it.
        self.referrers.clear();
        // A table's columns follow its blueprint's fields.
        for (bp, table) in self.entities.iter_mut() {
            table.reshape(self.blueprints.get(bp).map(|b| &b.record.blueprint));
        }
        let keys: Vec<Key> = self
            .entities
            .iter()
            .flat_map(|(bp, m)| m.identifiers().map(move |id| (bp.clone(), id.clone())))
            .collect();
        for (bp, id) in &keys {
            let Some(entity) = self.entity(bp, id).map(|e| e.record.entity.clone()) else {
                continue;
            };
            self.register(&entity);
        }
        // Mirrors may read other computed values: as many passes as the longest path, plus one.
        for _ in 0..=self.mirror_depth.min(4) {
            for key in &keys {
                self.recompute(key);
            }
        }
    }

    /// Recomputes the touched entities and who reaches them; returns them all, each once.
    fn recompute_around(&mut self, touched: Vec<Key>) -> Vec<Key> {
        let mut seen: HashSet<Key> = HashSet::new();
        let mut order: Vec<Key> = Vec::new();
        let mut frontier: Vec<Key> = Vec::new();
        for k in touched {
            if seen.insert(k.clone()) {
                order.push(k.clone());
                frontier.push(k);
            }
        }
        let has_computed = self.blueprints.values().any(|b| {
            let bp = &b.record.blueprint;
            !bp.mirror_properties.is_empty()
                || !bp.calculation_properties.is_empty()
                || !bp.aggregation_properties.is_empty()
        });
        if !has_computed {
            return order;
        }
        for _ in 0..self.mirror_depth {
            let mut next = Vec::new();
            for (bp, id) in &frontier {
                if let Some(refs) = self.referrers.get(bp).and_then(|m| m.get(id)) {
                    for (rbp, rid, _) in refs {
                        let k = (rbp.clone(), rid.clone());
                        if seen.insert(k.clone()) {
                            order.push(k.clone());
                            next.push(k);
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        for key in &order {
            self.recompute(key);
        }
        order
    }

    /// Recomputes one entity's computed values: mirrors and aggregations first, then the
    /// calculations, which see them.
    fn recompute(&mut self, key: &Key) {
        let Some(entry) = self.blueprints.get(&key.0) else {
            return;
        };
        let Some(e) = self.entity(&key.0, &key.1) else {
            return;
        };
        let bp = &entry.record.blueprint;
        if bp.mirror_properties.is_empty()
            && bp.calculation_properties.is_empty()
            && bp.aggregation_properties.is_empty()
        {
            // Values computed under an earlier version of the blueprint go with it.
            if !e.computed.is_empty() {
                if let Some(table) = self.entities.get_mut(&key.0) {
                    table.set_computed(&key.1, Map::new());
                }
            }
            return;
        }
        let mut computed = Map::new();
        for (name, spec) in &bp.mirror_properties {
            computed.insert(name.clone(), computed::mirror(&spec.path, e, self));
        }
        for (name, spec) in &bp.aggregation_properties {
            let value = match self.blueprint(&spec.target) {
                Some(target) => {
                    match computed::aggregation_relation(spec, &bp.identifier, target) {
                        Some(relation) => {
                            let prepared = entry.filters.get(name).map(|q| q.prepare(self));
                            let related: Vec<&Indexed> = self
                                .referrers(&key.0, &key.1)
                                .into_iter()
                                .filter(|(r, rel)| {
                                    *rel == relation
                                        && r.record.entity.blueprint == spec.target
                                        && prepared.as_ref().is_none_or(|p| p.matches(r, self))
                                })
                                .map(|(r, _)| r)
                                .collect();
                            computed::aggregate(spec, &related)
                        }
                        None => Value::Null,
                    }
                }
                None => Value::Null,
            };
            computed.insert(name.clone(), value);
        }
        let mut errors = Vec::new();
        if !entry.calculations.is_empty() {
            let view = Indexed {
                record: e.record.clone(),
                computed: computed.clone(),
            }
            .to_json();
            for (name, spec, program) in &entry.calculations {
                let value = match program {
                    Some(p) => match computed::calculate(spec, p, &view, &self.limits) {
                        Ok(v) => v,
                        Err(message) => {
                            errors.push(Problem {
                                path: format!("calculationProperties.{name}"),
                                message,
                            });
                            Value::Null
                        }
                    },
                    None => Value::Null,
                };
                computed.insert(name.clone(), value);
            }
        }
        if errors.is_empty() {
            self.errors.remove(key);
        } else {
            self.errors.insert(key.clone(), errors);
        }
        if let Some(table) = self.entities.get_mut(&key.0) {
            table.set_computed(&key.1, computed);
        }
    }

    // ------------------------------------------------------------------ planning writes

    /// Plans blueprint writes: each is checked against the others of the batch and the
    /// catalog; a property's type may not change.
    pub fn plan_blueprints(
        &self,
        inputs: Vec<(Blueprint, Expect)>,
        ctx: &WriteContext<'_>,
    ) -> Vec<Result<PlannedBlueprint, Vec<Problem>>> {
        let batch: HashMap<String, Blueprint> = inputs
            .iter()
            .map(|(b, _)| (b.identifier.clone(), b.clone()))
            .collect();
        let known = |id: &str| -> Option<Blueprint> {
            batch
                .get(id)
                .cloned()
                .or_else(|| self.blueprint(id).cloned())
        };
        inputs
            .into_iter()
            .map(|(mut bp, expect)| {
                if bp.title.is_empty() {
                    bp.title = bp.identifier.clone();
                }
                let before = self.blueprint_record(&bp.identifier).cloned();
                let mut problems = schema::check_blueprint(&bp, &known);
                match (&before, expect) {
                    (Some(_), Expect::New) => problems.push(Problem {
                        path: "identifier".into(),
                        message: format!("blueprint `{}` already exists", bp.identifier),
                    }),
                    (None, Expect::Existing) => problems.push(Problem {
                        path: "identifier".into(),
                        message: format!("there is no blueprint `{}`", bp.identifier),
                    }),
                    _ => {}
                }
                if let Some(old) = &before {
                    problems.extend(schema::check_blueprint_change(&old.blueprint, &bp));
                }
                if !problems.is_empty() {
                    return Err(problems);
                }
                Ok(match before {
                    Some(old) if old.blueprint == bp => PlannedBlueprint {
                        record: old.clone(),
                        before: Some(old),
                        outcome: Outcome::Unchanged,
                    },
                    Some(old) => PlannedBlueprint {
                        record: BlueprintRecord {
                            blueprint: bp,
                            version: old.version + 1,
                            created_at: old.created_at,
                            updated_at: ctx.now,
                            created_by: old.created_by.clone(),
                            updated_by: ctx.actor.to_string(),
                            managed_by: ctx
                                .managed_by
                                .map(str::to_string)
                                .or(old.managed_by.clone()),
                        },
                        before: Some(old),
                        outcome: Outcome::Updated,
                    },
                    None => PlannedBlueprint {
                        record: BlueprintRecord {
                            blueprint: bp,
                            version: 1,
                            created_at: ctx.now,
                            updated_at: ctx.now,
                            created_by: ctx.actor.to_string(),
                            updated_by: ctx.actor.to_string(),
                            managed_by: ctx.managed_by.map(str::to_string),
                        },
                        before: None,
                        outcome: Outcome::Created,
                    },
                })
            })
            .collect()
    }

    /// Plans entity writes. `pending` are blueprints written in the same batch (a definition
    /// file may declare a blueprint and its entities together). Relation targets may be other
    /// entities of the batch; an entity whose own checks fail does not count as one.
    pub fn plan_entities(
        &self,
        inputs: Vec<(Entity, Expect)>,
        pending: &[Blueprint],
        ctx: &WriteContext<'_>,
    ) -> Vec<Result<PlannedEntity, Vec<Problem>>> {
        let pending_compiled: HashMap<&str, (&Blueprint, CompiledBlueprint)> = pending
            .iter()
            .map(|b| (b.identifier.as_str(), (b, CompiledBlueprint::new(b))))
            .collect();
        let blueprint_of = |id: &str| -> Option<(&Blueprint, &CompiledBlueprint)> {
            if let Some((b, c)) = pending_compiled.get(id) {
                return Some((*b, c));
            }
            self.blueprints
                .get(id)
                .map(|e| (&e.record.blueprint, &e.compiled))
        };
        // First each entity on its own: defaults, then its blueprint's checks.
        let mut staged: Vec<(Entity, Vec<Problem>)> = inputs
            .into_iter()
            .map(|(mut e, expect)| {
                let Some((bp, compiled)) = blueprint_of(&e.blueprint) else {
                    let problem = Problem {
                        path: "blueprint".into(),
                        message: format!("there is no blueprint `{}`", e.blueprint),
                    };
                    return (e, vec![problem]);
                };
                schema::apply_defaults(bp, &mut e);
                let mut problems = compiled.validate(&e);
                let exists = self.entity(&e.blueprint, &e.identifier).is_some();
                match (exists, expect) {
                    (true, Expect::New) => problems.push(Problem {
                        path: "identifier".into(),
                        message: format!(
                            "entity `{}` of blueprint `{}` already exists",
                            e.identifier, e.blueprint
                        ),
                    }),
                    (false, Expect::Existing) => problems.push(Problem {
                        path: "identifier".into(),
                        message: format!(
                            "there is no entity `{}` of blueprint `{}`",
                            e.identifier, e.blueprint
                        ),
                    }),
                    _ => {}
                }
                (e, problems)
            })
            .collect();
        // Then relations, against the catalog and the batch's entities that pass, until no
        // more drop out (an entity pointing at one that failed fails too). Every entity gets
        // its relation problems, also one that has others already.
        let mut relation_problems: Vec<Vec<Problem>> = vec![Vec::new(); staged.len()];
        loop {
            let batch: HashSet<(&str, &str)> = staged
                .iter()
                .zip(&relation_problems)
                .filter(|((_, own), rel)| own.is_empty() && rel.is_empty())
                .map(|((e, _), _)| (e.blueprint.as_str(), e.identifier.as_str()))
                .collect();
            let mut next: Vec<Vec<Problem>> = Vec::with_capacity(staged.len());
            for (e, _) in &staged {
                let mut problems = Vec::new();
                if let Some((bp, _)) = blueprint_of(&e.blueprint) {
                    if !bp.allow_dangling_relations {
                        for (name, value) in &e.relations {
                            let Some(spec) = bp.relations.get(name) else {
                                continue;
                            };
                            for (j, t) in value.targets().iter().enumerate() {
                                if self.entity(&spec.target, t).is_none()
                                    && !batch.contains(&(spec.target.as_str(), t.as_str()))
                                {
                                    let path = match value {
                                        RelationValue::Many(_) => format!("relations.{name}[{j}]"),
                                        RelationValue::One(_) => format!("relations.{name}"),
                                    };
                                    problems.push(Problem {
                                        path,
                                        message: format!(
                                            "there is no {} `{t}` (blueprint `{}` does not allow \
                                             dangling relations)",
                                            spec.target, bp.identifier
                                        ),
                                    });
                                }
                            }
                        }
                    }
                }
                next.push(problems);
            }
            let settled = next
                .iter()
                .zip(&relation_problems)
                .all(|(a, b)| a.is_empty() == b.is_empty());
            relation_problems = next;
            if settled {
                break;
            }
        }
        staged
            .drain(..)
            .zip(relation_problems)
            .map(|((e, mut problems), rel)| {
                problems.extend(rel);
                if !problems.is_empty() {
                    return Err(problems);
                }
                let bp = blueprint_of(&e.blueprint).map(|(b, _)| b);
                self.finish_entity(e, bp, ctx)
            })
            .collect()
    }

    /// Locks, sources, version and outcome of a checked entity.
    fn finish_entity(
        &self,
        e: Entity,
        bp: Option<&Blueprint>,
        ctx: &WriteContext<'_>,
    ) -> Result<PlannedEntity, Vec<Problem>> {
        let before = self
            .entity(&e.blueprint, &e.identifier)
            .map(|i| i.record.clone());
        let empty = Entity {
            identifier: e.identifier.clone(),
            blueprint: e.blueprint.clone(),
            title: None,
            team: Vec::new(),
            properties: Map::new(),
            relations: Default::default(),
        };
        let old = before.as_ref().map_or(&empty, |b| &b.entity);
        let changed = changed_fields(old, &e);
        if !ctx.source.is_programmatic() {
            let locked: Vec<Problem> = changed
                .iter()
                .filter_map(|f| f.strip_prefix("properties."))
                .filter(|p| {
                    bp.and_then(|b| b.schema.properties.get(*p))
                        .is_some_and(|s| s.locked)
                })
                .map(|p| Problem {
                    path: format!("properties.{p}"),
                    message: format!(
                        "`{p}` is locked: only the API, definition files, integrations and \
                         automations may change it, not the web app"
                    ),
                })
                .collect();
            if !locked.is_empty() {
                return Err(locked);
            }
        }
        let Some(old_record) = before else {
            let sources = changed
                .iter()
                .map(|f| (f.clone(), ctx.source.clone()))
                .collect();
            return Ok(PlannedEntity {
                record: EntityRecord {
                    entity: e,
                    sources,
                    version: 1,
                    created_at: ctx.now,
                    updated_at: ctx.now,
                    created_by: ctx.actor.to_string(),
                    updated_by: ctx.actor.to_string(),
                    managed_by: ctx.managed_by.map(str::to_string),
                },
                before: None,
                outcome: Outcome::Created,
            });
        };
        let managed_by = ctx
            .managed_by
            .map(str::to_string)
            .or(old_record.managed_by.clone());
        if changed.is_empty() && managed_by == old_record.managed_by {
            return Ok(PlannedEntity {
                record: old_record.clone(),
                before: Some(old_record),
                outcome: Outcome::Unchanged,
            });
        }
        let mut sources = old_record.sources.clone();
        for f in &changed {
            if field_present(&e, f) {
                sources.insert(f.clone(), ctx.source.clone());
            } else {
                sources.remove(f);
            }
        }
        Ok(PlannedEntity {
            record: EntityRecord {
                entity: e,
                sources,
                version: old_record.version + 1,
                created_at: old_record.created_at,
                updated_at: ctx.now,
                created_by: old_record.created_by.clone(),
                updated_by: ctx.actor.to_string(),
                managed_by,
            },
            before: Some(old_record),
            outcome: Outcome::Updated,
        })
    }

    /// What deleting an entity deletes: itself, and with `cascade` every entity that points at
    /// it (recursively). Without `cascade`, an entity others point at is refused, unless all of
    /// them allow dangling relations.
    pub fn plan_entity_delete(
        &self,
        blueprint: &str,
        identifier: &str,
        cascade: bool,
    ) -> Result<Vec<EntityRecord>, Problem> {
        let Some(e) = self.entity(blueprint, identifier) else {
            return Err(Problem {
                path: "identifier".into(),
                message: format!("there is no entity `{identifier}` of blueprint `{blueprint}`"),
            });
        };
        let mut out = vec![e.record.clone()];
        let mut seen: HashSet<(String, String)> =
            HashSet::from([(blueprint.to_string(), identifier.to_string())]);
        let mut i = 0;
        while i < out.len() {
            let (bp, id) = (
                out[i].entity.blueprint.clone(),
                out[i].entity.identifier.clone(),
            );
            i += 1;
            let blocking: Vec<(&Indexed, &str)> = self
                .referrers(&bp, &id)
                .into_iter()
                .filter(|(r, _)| {
                    !seen.contains(&(
                        r.record.entity.blueprint.clone(),
                        r.record.entity.identifier.clone(),
                    ))
                })
                .filter(|(r, _)| {
                    cascade
                        || !self
                            .blueprint(&r.record.entity.blueprint)
                            .is_some_and(|b| b.allow_dangling_relations)
                })
                .collect();
            if blocking.is_empty() {
                continue;
            }
            if !cascade {
                let names: Vec<String> = blocking
                    .iter()
                    .take(10)
                    .map(|(r, rel)| {
                        format!(
                            "{}/{} ({rel})",
                            r.record.entity.blueprint, r.record.entity.identifier
                        )
                    })
                    .collect();
                return Err(Problem {
                    path: "identifier".into(),
                    message: format!(
                        "{blueprint}/{identifier} is the target of {} relation{}: {}{}; remove \
                         them first, or delete with deleteDependents=true to delete those \
                         entities too",
                        blocking.len(),
                        if blocking.len() == 1 { "" } else { "s" },
                        names.join(", "),
                        if blocking.len() > 10 { ", …" } else { "" }
                    ),
                });
            }
            for (r, _) in blocking {
                let k = (
                    r.record.entity.blueprint.clone(),
                    r.record.entity.identifier.clone(),
                );
                if seen.insert(k) {
                    out.push(r.record.clone());
                }
            }
        }
        Ok(out)
    }

    /// What deleting a blueprint deletes: the blueprint and, only with `with_entities`, its
    /// entities. Refused while other blueprints refer to it.
    pub fn plan_blueprint_delete(
        &self,
        identifier: &str,
        with_entities: bool,
    ) -> Result<(BlueprintRecord, Vec<EntityRecord>), Problem> {
        let Some(entry) = self.blueprints.get(identifier) else {
            return Err(Problem {
                path: "identifier".into(),
                message: format!("there is no blueprint `{identifier}`"),
            });
        };
        let users: Vec<String> = self
            .blueprints
            .values()
            .filter(|b| b.record.blueprint.identifier != identifier)
            .filter(|b| {
                let bp = &b.record.blueprint;
                bp.relations.values().any(|r| r.target == identifier)
                    || bp
                        .aggregation_properties
                        .values()
                        .any(|a| a.target == identifier)
            })
            .map(|b| b.record.blueprint.identifier.clone())
            .collect();
        if !users.is_empty() {
            return Err(Problem {
                path: "identifier".into(),
                message: format!(
                    "blueprint `{identifier}` is used by the relations or aggregations of {}; \
                     change those first",
                    users.join(", ")
                ),
            });
        }
        let entities: Vec<EntityRecord> = self
            .entities
            .get(identifier)
            .map(|m| m.values().map(|e| e.record.clone()).collect())
            .unwrap_or_default();
        if !entities.is_empty() && !with_entities {
            return Err(Problem {
                path: "identifier".into(),
                message: format!(
                    "blueprint `{identifier}` has {} entit{}; delete with deleteEntities=true \
                     to delete them too",
                    entities.len(),
                    if entities.len() == 1 { "y" } else { "ies" }
                ),
            });
        }
        Ok((entry.record.clone(), entities))
    }

    // ------------------------------------------------------------------ queries

    /// Runs a search: filter, full text, facets over every match, then one sorted page after
    /// the cursor.
    ///
    /// Rules, sort fields and facets on a blueprint's plain fields read its columns; the
    /// result is the one [`Catalog::search_rows`] gives.
    pub fn search(&self, s: &Search) -> Page<'_> {
        let (blueprint, prepared, text) = self.scope(s);
        let tables: Vec<(&str, &Table)> = match blueprint {
            Some(bp) => self
                .entities
                .get_key_value(bp)
                .map(|(k, t)| (k.as_str(), t))
                .into_iter()
                .collect(),
            None => self.entities.iter().map(|(k, t)| (k.as_str(), t)).collect(),
        };
        let mut facets: Vec<(&str, HashMap<String, usize>, usize)> = s
            .facets
            .iter()
            .map(|f| (f.as_str(), HashMap::new(), 0))
            .collect();
        let keys: Vec<query::RowKeys<'_>> = tables
            .iter()
            .map(|(bp, t)| query::RowKeys::new(t, bp, &s.sort, self))
            .collect();
        let mut total = 0;
        let limit = s.limit.max(1);
        // Each match with its first sort key, read once (as an exact f64 too, when it is one):
        // the page keeps the smallest.
        type Item<'v> = (Option<f64>, Option<query::V<'v>>, usize, Slot);
        let cmp = |a: &Item<'_>, b: &Item<'_>| {
            let first = match (s.sort.first(), a.0, b.0) {
                (None, ..) => Ordering::Equal,
                (Some(f), Some(x), Some(y)) => {
                    let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                    if f.descending {
                        o.reverse()
                    } else {
                        o
                    }
                }
                // A number against anything else: read both values in full.
                (Some(f), ..) => {
                    let va = match a.0 {
                        Some(_) => keys[a.2].key(0, a.3),
                        None => a.1,
                    };
                    let vb = match b.0 {
                        Some(_) => keys[b.2].key(0, b.3),
                        None => b.1,
                    };
                    query::by_field(va, vb, f.descending)
                }
            };
            first.then_with(|| keys[a.2].compare(a.3, &keys[b.2], b.3, 1.min(s.sort.len())))
        };
        let mut page = Smallest::new(limit, cmp);
        for (i, (_, table)) in tables.iter().enumerate() {
            let mut cands = table.live();
            if let Some(p) = &prepared {
                cands = p.filter(table, cands, self);
            }
            if let Some(t) = &text {
                cands.retain(|&slot| table.row(slot).is_some_and(|e| t.matches(e)));
            }
            total += cands.len();
            for (field, counts, none) in facets.iter_mut() {
                *none += query::count_facets(table, field, &cands, self, counts);
            }
            if let Some(after) = &s.after {
                cands.retain(|&slot| keys[i].compare_to_key(slot, after) == Ordering::Greater);
            }
            for slot in cands {
                let item = match s.sort.is_empty() {
                    true => (None, None, i, slot),
                    false => match keys[i].number(0, slot) {
                        Some(x) => (Some(x), None, i, slot),
                        None => (None, keys[i].key(0, slot), i, slot),
                    },
                };
                page.offer(item);
            }
        }
        let more = page.offered > limit;
        let entities: Vec<&Indexed> = page
            .kept
            .iter()
            .filter_map(|&(_, _, i, slot)| tables[i].1.row(slot))
            .collect();
        let next = if more {
            entities.last().map(|e| query::sort_key(e, &s.sort, self))
        } else {
            None
        };
        Page {
            entities,
            total,
            facets: finish_facets(facets),
            next,
        }
    }

    /// What a search is limited to: its blueprint (named, or from the query), the query
    /// prepared against this catalog, and the full-text terms.
    fn scope<'s>(
        &self,
        s: &'s Search,
    ) -> (
        Option<&'s str>,
        Option<query::Prepared<'s>>,
        Option<TextSearch>,
    ) {
        let blueprint = s
            .blueprint
            .as_deref()
            .or_else(|| s.query.as_ref().and_then(Query::blueprint));
        let prepared = s.query.as_ref().map(|q| q.prepare(self));
        (blueprint, prepared, s.text.as_deref().map(TextSearch::new))
    }

    /// [`Catalog::search`] testing every entity on its own, without the columns: the reference
    /// the columns must agree with, for tests and benchmarks.
    pub fn search_rows(&self, s: &Search) -> Page<'_> {
        let (blueprint, prepared, text) = self.scope(s);
        let candidates: Box<dyn Iterator<Item = &Indexed>> = match blueprint {
            Some(bp) => Box::new(self.entities.get(bp).into_iter().flat_map(|m| m.values())),
            None => Box::new(self.entities.values().flat_map(Table::values)),
        };
        let mut facets: Vec<(&str, HashMap<String, usize>, usize)> = s
            .facets
            .iter()
            .map(|f| (f.as_str(), HashMap::new(), 0))
            .collect();
        let mut total = 0;
        let mut page: Vec<&Indexed> = Vec::new();
        for e in candidates {
            if blueprint.is_some_and(|b| b != e.record.entity.blueprint) {
                continue;
            }
            if let Some(p) = &prepared {
                if !p.matches(e, self) {
                    continue;
                }
            }
            if let Some(t) = &text {
                if !t.matches(e) {
                    continue;
                }
            }
            total += 1;
            for (field, counts, none) in facets.iter_mut() {
                if !query::count_facet(e, field, self, counts) {
                    *none += 1;
                }
            }
            if let Some(after) = &s.after {
                if query::compare_to_key(e, after, &s.sort, self) != Ordering::Greater {
                    continue;
                }
            }
            page.push(e);
        }
        let limit = s.limit.max(1);
        let cmp = |a: &&Indexed, b: &&Indexed| query::compare(a, b, &s.sort, self);
        let more = page.len() > limit;
        if more {
            page.select_nth_unstable_by(limit, cmp);
            page.truncate(limit);
        }
        page.sort_unstable_by(cmp);
        let next = if more {
            page.last().map(|e| query::sort_key(e, &s.sort, self))
        } else {
            None
        };
        Page {
            entities: page,
            total,
            facets: finish_facets(facets),
            next,
        }
    }
}

/// The `k` smallest of the items offered, in order. A page is small next to the matches, so
/// most items are compared once, with the largest kept so far, and dropped; nothing holds all
/// the matches at once.
struct Smallest<T, F> {
    kept: Vec<T>,
    k: usize,
    cmp: F,
    offered: usize,
}

impl<T, F: Fn(&T, &T) -> Ordering> Smallest<T, F> {
    fn new(k: usize, cmp: F) -> Self {
        Smallest {
            kept: Vec::with_capacity(k.min(1024) + 1),
            k,
            cmp,
            offered: 0,
        }
    }

    fn offer(&mut self, item: T) {
        self.offered += 1;
        if self.kept.len() == self.k {
            match self.kept.last() {
                Some(last) if (self.cmp)(&item, last) == Ordering::Less => {
                    self.kept.pop();
                }
                _ => return,
            }
        }
        let at = self
            .kept
            .partition_point(|x| (self.cmp)(x, &item) == Ordering::Less);
        self.kept.insert(at, item);
    }
}

/// Facet counts by field, with the entities without a value under `null`.
fn finish_facets(
    facets: Vec<(&str, HashMap<String, usize>, usize)>,
) -> BTreeMap<String, BTreeMap<String, usize>> {
    facets
        .into_iter()
        .map(|(field, counts, none)| {
            let mut counts: BTreeMap<String, usize> = counts.into_iter().collect();
            if none > 0 {
                *counts.entry("null".to_string()).or_default() += none;
            }
            (field.to_string(), counts)
        })
        .collect()
}

/// The fields (`title`, `team`, `properties.<name>`, `relations.<name>`) that differ.
fn changed_fields(old: &Entity, new: &Entity) -> Vec<String> {
    let mut out = Vec::new();
    if old.title != new.title {
        out.push("title".to_string());
    }
    if old.team != new.team {
        out.push("team".to_string());
    }
    for (k, v) in &new.properties {
        if old.properties.get(k) != Some(v) {
            out.push(format!("properties.{k}"));
        }
    }
    for k in old.properties.keys() {
        if !new.properties.contains_key(k) {
            out.push(format!("properties.{k}"));
        }
    }
    for (k, v) in &new.relations {
        if old.relations.get(k) != Some(v) {
            out.push(format!("relations.{k}"));
        }
    }
    for k in old.relations.keys() {
        if !new.relations.contains_key(k) {
            out.push(format!("relations.{k}"));
        }
    }
    out
}

fn field_present(e: &Entity, field: &str) -> bool {
    match field {
        "title" => e.title.is_some(),
        "team" => !e.team.is_empty(),
        f => {
            if let Some(p) = f.strip_prefix("properties.") {
                e.properties.contains_key(p)
            } else if let Some(r) = f.strip_prefix("relations.") {
                e.relations.contains_key(r)
            } else {
                false
            }
        }
    }
}
