//! A catalog write before it reaches SQL: the keys it touches, whether the versions it expects
//! are the stored ones, what each key ends as, and the JSON text of each record.
//!
//! Owns the optimistic-concurrency rule of `Store::write_catalog`: a put names the version it
//! replaces (`None`: none), a delete the version it deletes, and the changes of one write apply in
//! order, so a later change of the same key expects what the earlier one left. Pure: the
//! statements that read the stored versions and write the plan are in `sql.rs`, which runs them
//! while it holds the catalog clock.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use gantry_catalog::{BlueprintRecord, EntityRecord};

use crate::{CatalogChange, StoreError};

/// An entity's key: `(blueprint, identifier)`.
pub(crate) type EntityKey<'x> = (&'x str, &'x str);

/// The keys a write touches, each once, in order of first mention.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Touched<'x> {
    pub(crate) blueprints: Vec<&'x str>,
    pub(crate) entities: Vec<EntityKey<'x>>,
}

pub(crate) fn touched(changes: &[CatalogChange]) -> Touched<'_> {
    let mut seen_blueprints = HashSet::new();
    let mut seen_entities = HashSet::new();
    let mut touched = Touched::default();
    for change in changes {
        match key(change) {
            Key::Blueprint(b) => {
                if seen_blueprints.insert(b) {
                    touched.blueprints.push(b);
                }
            }
            Key::Entity(b, i) => {
                if seen_entities.insert((b, i)) {
                    touched.entities.push((b, i));
                }
            }
        }
    }
    touched
}

/// What a change is about.
#[derive(Debug, Clone, Copy)]
enum Key<'x> {
    Blueprint(&'x str),
    Entity(&'x str, &'x str),
}

fn key(change: &CatalogChange) -> Key<'_> {
    match change {
        CatalogChange::PutBlueprint { record, .. } => Key::Blueprint(&record.blueprint.identifier),
        CatalogChange::DeleteBlueprint { identifier, .. } => Key::Blueprint(identifier),
        CatalogChange::PutEntity { record, .. } => {
            Key::Entity(&record.entity.blueprint, &record.entity.identifier)
        }
        CatalogChange::DeleteEntity {
            blueprint,
            identifier,
            ..
        } => Key::Entity(blueprint, identifier),
    }
}

impl Key<'_> {
    /// Its path in the audit log.
    fn resource(self) -> String {
        match self {
            Key::Blueprint(b) => format!("blueprint/{b}"),
            Key::Entity(b, i) => format!("entity/{b}/{i}"),
        }
    }

    /// Its name in a conflict.
    fn name(self) -> String {
        match self {
            Key::Blueprint(b) => format!("blueprint {b:?}"),
            Key::Entity(b, i) => format!("entity {:?}", format!("{b}/{i}")),
        }
    }
}

/// Entity keys grouped by blueprint (blueprints in order of first mention), so SQL can find
/// them with `blueprint = ? AND identifier IN (...)`, a search of the primary key on both
/// backends (SQLite scans the table for a row-value `IN`).
pub(crate) fn by_blueprint<'x>(keys: &[EntityKey<'x>]) -> Vec<(&'x str, Vec<&'x str>)> {
    let mut at: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for &(blueprint, identifier) in keys {
        let i = *at.entry(blueprint).or_insert_with(|| {
            groups.push((blueprint, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(identifier);
    }
    groups
}

/// The stored versions of the touched keys that have a row.
#[derive(Debug, Default)]
pub(crate) struct Stored<'s> {
    pub(crate) blueprints: HashMap<&'s str, i64>,
    pub(crate) entities: HashMap<EntityKey<'s>, i64>,
}

impl<'s> Stored<'s> {
    pub(crate) fn new(
        blueprints: &'s [(String, i64)],
        entities: &'s [(String, String, i64)],
    ) -> Self {
        Stored {
            blueprints: blueprints.iter().map(|(b, v)| (b.as_str(), *v)).collect(),
            entities: entities
                .iter()
                .map(|(b, i, v)| ((b.as_str(), i.as_str()), *v))
                .collect(),
        }
    }
}

/// What a write leaves: per key, its final row (the index of the change that put it) or its
/// deletion, each key once, in order of first mention.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan<'x> {
    pub(crate) put_blueprints: Vec<usize>,
    pub(crate) deleted_blueprints: Vec<&'x str>,
    pub(crate) put_entities: Vec<usize>,
    pub(crate) deleted_entities: Vec<EntityKey<'x>>,
}

/// A key's state while the changes of a write apply: its version (`None`: no row) and the
/// change that put it last (`None`: deleted).
struct Fate<K> {
    key: K,
    version: Option<i64>,
    put_by: Option<usize>,
}

struct Ledger<K> {
    at: HashMap<K, usize>,
    fates: Vec<Fate<K>>,
}

impl<K: Hash + Eq + Copy> Ledger<K> {
    fn new() -> Self {
        Ledger {
            at: HashMap::new(),
            fates: Vec::new(),
        }
    }

    /// Applies one change to `key` (a put by change `put_by` to `version`, or a delete) after
    /// checking that the key is at `expected` now.
    fn apply(
        &mut self,
        key: K,
        stored: Option<i64>,
        expected: Option<i64>,
        put: Option<(usize, i64)>,
        name: impl FnOnce() -> String,
    ) -> Result<(), StoreError> {
        let fates = &mut self.fates;
        let i = *self.at.entry(key).or_insert_with(|| {
            fates.push(Fate {
                key,
                version: stored,
                put_by: None,
            });
            fates.len() - 1
        });
        let fate = &mut self.fates[i];
        if fate.version != expected {
            return Err(conflict(&name(), expected, fate.version));
        }
        fate.version = put.map(|(_, version)| version);
        fate.put_by = put.map(|(by, _)| by);
        Ok(())
    }

    /// The changes that put the surviving keys, and the deleted keys.
    fn split(self) -> (Vec<usize>, Vec<K>) {
        let mut put = Vec::new();
        let mut deleted = Vec::new();
        for fate in self.fates {
            match fate.put_by {
                Some(by) => put.push(by),
                None => deleted.push(fate.key),
            }
        }
        (put, deleted)
    }
}

fn conflict(name: &str, expected: Option<i64>, found: Option<i64>) -> StoreError {
    StoreError::Conflict(match (expected, found) {
        (None, Some(v)) => format!("{name} exists (version {v})"),
        (Some(e), None) => format!("{name} does not exist (version {e} expected)"),
        (Some(e), Some(v)) => format!("{name} is at version {v}, not {e}"),
        (None, None) => format!("{name} changed"),
    })
}

/// Checks every change against the stored versions (and the changes before it), in order;
/// the first mismatch is a `Conflict` naming its key.
pub(crate) fn plan<'x>(
    changes: &'x [CatalogChange],
    stored: &Stored<'_>,
) -> Result<Plan<'x>, StoreError> {
    let mut blueprints = Ledger::<&'x str>::new();
    let mut entities = Ledger::<EntityKey<'x>>::new();
    for (i, change) in changes.iter().enumerate() {
        let (expected, put) = match change {
            CatalogChange::PutBlueprint {
                record,
                expected_version,
                ..
            } => (*expected_version, Some((i, record.version))),
            CatalogChange::PutEntity {
                record,
                expected_version,
                ..
            } => (*expected_version, Some((i, record.version))),
            CatalogChange::DeleteBlueprint {
                expected_version, ..
            }
            | CatalogChange::DeleteEntity {
                expected_version, ..
            } => (Some(*expected_version), None),
        };
        let k = key(change);
        match k {
            Key::Blueprint(b) => {
                let now = stored.blueprints.get(b).copied();
                blueprints.apply(b, now, expected, put, || k.name())?;
            }
            Key::Entity(b, id) => {
                let now = stored.entities.get(&(b, id)).copied();
                entities.apply((b, id), now, expected, put, || k.name())?;
            }
        }
    }
    let (put_blueprints, deleted_blueprints) = blueprints.split();
    let (put_entities, deleted_entities) = entities.split();
    Ok(Plan {
        put_blueprints,
        deleted_blueprints,
        put_entities,
        deleted_entities,
    })
}

/// The JSON text columns of a stored entity.
pub(crate) struct EntityText {
    pub(crate) team: String,
    pub(crate) properties: String,
    pub(crate) relations: String,
    pub(crate) sources: String,
}

fn to_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| StoreError::Database(format!("JSON: {err}")))
}

/// Reads a JSON text column; `what` names it in the error.
pub(crate) fn from_text<'t, T: serde::Deserialize<'t>>(
    text: &'t str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|err| StoreError::Database(format!("stored {what}: {err}")))
}

/// A change's row as it will be stored, JSON already text.
pub(crate) enum RowText<'x> {
    Blueprint {
        record: &'x BlueprintRecord,
        definition: String,
    },
    Entity {
        record: &'x EntityRecord,
        text: EntityText,
    },
    Delete,
}

pub(crate) fn row_text(change: &CatalogChange) -> Result<RowText<'_>, StoreError> {
    Ok(match change {
        CatalogChange::PutBlueprint { record, .. } => RowText::Blueprint {
            record,
            definition: to_text(&record.blueprint)?,
        },
        CatalogChange::PutEntity { record, .. } => RowText::Entity {
            record,
            text: EntityText {
                team: to_text(&record.entity.team)?,
                properties: to_text(&record.entity.properties)?,
                relations: to_text(&record.entity.relations)?,
                sources: to_text(&record.sources)?,
            },
        },
        CatalogChange::DeleteBlueprint { .. } | CatalogChange::DeleteEntity { .. } => {
            RowText::Delete
        }
    })
}

/// The blueprint rows a plan puts, in its order.
pub(crate) fn blueprint_rows<'r, 'x>(
    plan: &Plan<'_>,
    rows: &'r [RowText<'x>],
) -> Vec<(&'x BlueprintRecord, &'r str)> {
    plan.put_blueprints
        .iter()
        .filter_map(|&i| match &rows[i] {
            RowText::Blueprint { record, definition } => Some((*record, definition.as_str())),
            _ => None,
        })
        .collect()
}

/// The entity rows a plan puts, in its order.
pub(crate) fn entity_rows<'r, 'x>(
    plan: &Plan<'_>,
    rows: &'r [RowText<'x>],
) -> Vec<(&'x EntityRecord, &'r EntityText)> {
    plan.put_entities
        .iter()
        .filter_map(|&i| match &rows[i] {
            RowText::Entity { record, text } => Some((*record, text)),
            _ => None,
        })
        .collect()
}

/// A change's audit event: `(action, resource, before, after)` with the JSON as text.
pub(crate) struct AuditText<'x> {
    pub(crate) action: &'x str,
    pub(crate) resource: String,
    pub(crate) before: Option<String>,
    pub(crate) after: Option<String>,
}

pub(crate) fn audit_text(change: &CatalogChange) -> Result<AuditText<'_>, StoreError> {
    let (action, before, after) = match change {
        CatalogChange::PutBlueprint {
            action,
            before,
            after,
            ..
        }
        | CatalogChange::PutEntity {
            action,
            before,
            after,
            ..
        } => (action, before.as_ref(), Some(after)),
        CatalogChange::DeleteBlueprint { action, before, .. }
        | CatalogChange::DeleteEntity { action, before, .. } => (action, Some(before), None),
    };
    let resource = key(change).resource();
    Ok(AuditText {
        action,
        resource,
        before: before.map(to_text).transpose()?,
        after: after.map(to_text).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CatalogChange as C;
    use serde_json::json;

    fn entity(identifier: &str, version: i64) -> EntityRecord {
        let at = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
        EntityRecord {
            entity: serde_json::from_value(
                json!({"identifier": identifier, "blueprint": "service"}),
            )
            .expect("entity"),
            sources: Default::default(),
            version,
            created_at: at,
            updated_at: at,
            created_by: "ann".to_owned(),
            updated_by: "ann".to_owned(),
            managed_by: None,
        }
    }

    fn put(identifier: &str, version: i64, expected: Option<i64>) -> C {
        C::PutEntity {
            record: entity(identifier, version),
            expected_version: expected,
            action: "entity.put".to_owned(),
            before: None,
            after: json!({}),
        }
    }

    fn delete(identifier: &str, version: i64) -> C {
        C::DeleteEntity {
            blueprint: "service".to_owned(),
            identifier: identifier.to_owned(),
            expected_version: version,
            action: "entity.delete".to_owned(),
            before: json!({}),
        }
    }

    /// The puts (change indexes) and deleted identifiers of a plan over `stored` versions.
    fn planned(
        changes: &[C],
        stored: &[(&str, i64)],
    ) -> Result<(Vec<usize>, Vec<String>), StoreError> {
        let entities: Vec<(String, String, i64)> = stored
            .iter()
            .map(|(i, v)| ("service".to_owned(), (*i).to_owned(), *v))
            .collect();
        let p = plan(changes, &Stored::new(&[], &entities))?;
        let deleted = p.deleted_entities.iter().map(|(_, i)| i.to_string());
        Ok((p.put_entities, deleted.collect()))
    }

    #[test]
    fn each_key_ends_as_its_last_change() {
        let changes = [
            put("a", 1, None),
            put("b", 3, Some(2)),
            put("a", 2, Some(1)),
            delete("c", 5),
            put("c", 1, None),
            delete("d", 1),
        ];
        assert_eq!(
            planned(&changes, &[("b", 2), ("c", 5), ("d", 1)]),
            Ok((vec![2, 1, 4], vec!["d".to_owned()]))
        );
    }

    #[test]
    fn the_first_mismatch_is_named() {
        let cases: [(&[C], &str); 5] = [
            (
                &[put("a", 1, None)],
                "entity \"service/a\" exists (version 4)",
            ),
            (
                &[put("b", 2, Some(1))],
                "entity \"service/b\" does not exist (version 1 expected)",
            ),
            (
                &[put("z", 1, None), put("a", 6, Some(5))],
                "entity \"service/a\" is at version 4, not 5",
            ),
            (
                &[delete("a", 4), delete("a", 4)],
                "entity \"service/a\" does not exist (version 4 expected)",
            ),
            (
                &[put("a", 5, Some(4)), put("a", 6, Some(4))],
                "entity \"service/a\" is at version 5, not 4",
            ),
        ];
        for (changes, message) in cases {
            assert_eq!(
                planned(changes, &[("a", 4)]),
                Err(StoreError::Conflict(message.to_owned()))
            );
        }
    }

    #[test]
    fn keys_are_grouped_by_blueprint_in_order() {
        let keys = [("s", "a"), ("t", "x"), ("s", "b")];
        assert_eq!(
            by_blueprint(&keys),
            vec![("s", vec!["a", "b"]), ("t", vec!["x"])]
        );
    }
}
