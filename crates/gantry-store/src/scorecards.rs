//! What the store keeps for scorecards and automations: where each entity stands on each
//! scorecard (one row per scorecard and entity, the rule results as JSON beside the level), the
//! history of level changes, and the firings of automations with their audit events.
//!
//! Owns the SQL of its section (`scorecards_sql!`, expanded per backend next to `sql_store!`;
//! `sql.rs` only delegates to it). It decides nothing: what a level is, or when an automation
//! fires, is `gantry-catalog`'s and the server's business. Definitions (scorecards, initiatives,
//! automations, actions) share one set of methods, `Store::put_definition` and its neighbours.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The kinds of definition kept as JSON with a version (see `Store::put_definition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefinitionKind {
    Action,
    Scorecard,
    Initiative,
    Automation,
}

impl DefinitionKind {
    /// As in audit resources and actions: `action`, `scorecard`, `initiative`, `automation`.
    pub fn as_str(self) -> &'static str {
        match self {
            DefinitionKind::Action => "action",
            DefinitionKind::Scorecard => "scorecard",
            DefinitionKind::Initiative => "initiative",
            DefinitionKind::Automation => "automation",
        }
    }

    pub(crate) fn table(self) -> &'static str {
        match self {
            DefinitionKind::Action => "actions",
            DefinitionKind::Scorecard => "scorecards",
            DefinitionKind::Initiative => "initiatives",
            DefinitionKind::Automation => "automations",
        }
    }
}

/// Where one entity stands on one scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorecardEntityRow {
    pub scorecard: String,
    pub blueprint: String,
    pub identifier: String,
    pub level: String,
    pub score: f64,
    /// Since when the entity holds `level`.
    pub since: DateTime<Utc>,
    /// The rule results, as the server writes them (the store never reads them).
    pub rules: Value,
}

/// One change of an entity's level on a scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelChangeRow {
    /// Its place in the history (assigned by the store; ignored when writing).
    pub seq: i64,
    pub scorecard: String,
    pub blueprint: String,
    pub identifier: String,
    /// `None`: the entity was not evaluated before.
    pub from: Option<String>,
    /// `None`: the entity is no longer evaluated (deleted, filtered out, scorecard removed).
    pub to: Option<String>,
    pub score: Option<f64>,
    pub at: DateTime<Utc>,
}

/// One write of scorecard state, in one transaction: rows replaced, rows removed, whole
/// scorecards' rows removed, and history appended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScorecardStateWrite {
    pub put: Vec<ScorecardEntityRow>,
    /// (scorecard, blueprint, identifier)
    pub removed: Vec<(String, String, String)>,
    /// Every row of these scorecards goes (their history stays).
    pub removed_scorecards: Vec<String>,
    pub history: Vec<LevelChangeRow>,
}

impl ScorecardStateWrite {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty()
            && self.removed.is_empty()
            && self.removed_scorecards.is_empty()
            && self.history.is_empty()
    }

    /// Adds `other` after this write, so that storing the merged write leaves what storing
    /// both in turn would (the store removes before it puts): what `other` removes drops this
    /// write's puts of it, and what `other` puts drops this write's removal of it.
    pub fn merge(&mut self, other: ScorecardStateWrite) {
        if !other.removed_scorecards.is_empty() {
            self.put
                .retain(|r| !other.removed_scorecards.contains(&r.scorecard));
            self.removed
                .retain(|(sc, _, _)| !other.removed_scorecards.contains(sc));
        }
        if !other.removed.is_empty() {
            let gone: std::collections::HashSet<(&str, &str, &str)> = other
                .removed
                .iter()
                .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
                .collect();
            self.put.retain(|r| {
                !gone.contains(&(
                    r.scorecard.as_str(),
                    r.blueprint.as_str(),
                    r.identifier.as_str(),
                ))
            });
        }
        if !other.put.is_empty() && !self.removed.is_empty() {
            let back: std::collections::HashSet<(&str, &str, &str)> = other
                .put
                .iter()
                .map(|r| {
                    (
                        r.scorecard.as_str(),
                        r.blueprint.as_str(),
                        r.identifier.as_str(),
                    )
                })
                .collect();
            self.removed
                .retain(|(a, b, c)| !back.contains(&(a.as_str(), b.as_str(), c.as_str())));
        }
        self.put.extend(other.put);
        self.removed.extend(other.removed);
        self.removed_scorecards.extend(other.removed_scorecards);
        self.history.extend(other.history);
    }
}

/// Which level changes to read, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    pub scorecard: Option<String>,
    /// (blueprint, identifier)
    pub entity: Option<(String, String)>,
    /// Only changes before this `seq` (the next page).
    pub before: Option<i64>,
}

/// What an automation did with one event.
#[derive(Debug, Clone, PartialEq)]
pub struct FiringRow {
    pub id: String,
    pub automation: String,
    pub event_type: String,
    /// `started`, `written`, `failed` or `stopped` (the server's words; stored as given).
    pub status: String,
    pub at: DateTime<Utc>,
    /// The server's document of the firing (the event, the effect, the error).
    pub doc: Value,
}

/// Which firings to read, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FiringFilter {
    pub automation: Option<String>,
    pub status: Option<String>,
    /// Only firings before this (at, id) (the next page).
    pub before: Option<(DateTime<Utc>, String)>,
}

pub(crate) const ENTITY_ROW_COLS: usize = 7;
pub(crate) const HISTORY_COLS: usize = 7;
pub(crate) const FIRING_COLS: usize = 6;

/// `INSERT … VALUES (…), (…) ON CONFLICT … DO UPDATE` for `rows` scorecard rows, with the
/// backend's placeholders (`?` on SQLite: binding `$n` there costs n² steps).
pub(crate) fn upsert_entities_sql<D: crate::sql::Dialect>(rows: usize) -> String {
    format!(
        "INSERT INTO scorecard_entities (scorecard, blueprint, identifier, level, score, since, \
         rules) VALUES {} ON CONFLICT (scorecard, blueprint, identifier) DO UPDATE SET \
         level = excluded.level, score = excluded.score, since = excluded.since, \
         rules = excluded.rules",
        crate::sql::tuples::<D>(1, rows, ENTITY_ROW_COLS)
    )
}

pub(crate) fn insert_history_sql<D: crate::sql::Dialect>(rows: usize) -> String {
    format!(
        "INSERT INTO scorecard_history (scorecard, blueprint, identifier, from_level, to_level, \
         score, at) VALUES {}",
        crate::sql::tuples::<D>(1, rows, HISTORY_COLS)
    )
}

pub(crate) fn insert_firings_sql<D: crate::sql::Dialect>(rows: usize) -> String {
    format!(
        "INSERT INTO automation_firings (id, automation, event_type, status, at, doc) VALUES {}",
        crate::sql::tuples::<D>(1, rows, FIRING_COLS)
    )
}

/// Expands the SQL of the scorecards section for a backend type with `writer` and `reader`
/// pools, in the module where `sql_store!` was expanded (it uses its `Tx` and `audit_rows_tx`).
macro_rules! scorecards_sql {
    ($store:ty, $db:ty) => {
        impl $store {
            pub(crate) async fn write_scorecard_state_sql(
                &self,
                w: &$crate::ScorecardStateWrite,
            ) -> Result<(), $crate::StoreError> {
                use $crate::scorecards::*;
                use $crate::sql::{bulk_rows, json_text, us};
                if w.is_empty() {
                    return Ok(());
                }
                let mut tx = self.writer.begin().await?;
                for sc in &w.removed_scorecards {
                    sqlx::query("DELETE FROM scorecard_entities WHERE scorecard = $1")
                        .bind(sc)
                        .execute(&mut *tx)
                        .await?;
                }
                for (sc, bp, id) in &w.removed {
                    sqlx::query(
                        "DELETE FROM scorecard_entities WHERE scorecard = $1 AND blueprint = $2 \
                         AND identifier = $3",
                    )
                    .bind(sc)
                    .bind(bp)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                // A row written twice in one statement is refused by PostgreSQL: the last wins.
                let mut last = std::collections::HashMap::new();
                for (i, r) in w.put.iter().enumerate() {
                    last.insert((&r.scorecard, &r.blueprint, &r.identifier), i);
                }
                let put: Vec<&ScorecardEntityRow> = w
                    .put
                    .iter()
                    .enumerate()
                    .filter(|(i, r)| last.get(&(&r.scorecard, &r.blueprint, &r.identifier)) == Some(i))
                    .map(|(_, r)| r)
                    .collect();
                for chunk in put.chunks(bulk_rows(ENTITY_ROW_COLS)) {
                    let sql = upsert_entities_sql::<$db>(chunk.len());
                    let mut q = sqlx::query(&sql);
                    for r in chunk {
                        q = q
                            .bind(&r.scorecard)
                            .bind(&r.blueprint)
                            .bind(&r.identifier)
                            .bind(&r.level)
                            .bind(r.score)
                            .bind(us(r.since))
                            .bind(json_text(&r.rules)?);
                    }
                    q.execute(&mut *tx).await?;
                }
                for chunk in w.history.chunks(bulk_rows(HISTORY_COLS)) {
                    let sql = insert_history_sql::<$db>(chunk.len());
                    let mut q = sqlx::query(&sql);
                    for h in chunk {
                        q = q
                            .bind(&h.scorecard)
                            .bind(&h.blueprint)
                            .bind(&h.identifier)
                            .bind(&h.from)
                            .bind(&h.to)
                            .bind(h.score)
                            .bind(us(h.at));
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn load_scorecard_state_sql(
                &self,
                scorecard: &str,
            ) -> Result<Vec<$crate::ScorecardEntityRow>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT scorecard, blueprint, identifier, level, score, since, rules \
                     FROM scorecard_entities WHERE scorecard = $1 ORDER BY blueprint, identifier",
                )
                .bind(scorecard)
                .fetch_all(&self.reader)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::ScorecardEntityRow {
                            scorecard: row.try_get("scorecard")?,
                            blueprint: row.try_get("blueprint")?,
                            identifier: row.try_get("identifier")?,
                            level: row.try_get("level")?,
                            score: row.try_get("score")?,
                            since: $crate::sql::time(row.try_get("since")?)?,
                            rules: $crate::sql::json_value(&row.try_get::<String, _>("rules")?)?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn scorecard_history_sql(
                &self,
                filter: &$crate::HistoryFilter,
                limit: u32,
            ) -> Result<Vec<$crate::LevelChangeRow>, $crate::StoreError> {
                use sqlx::Row as _;
                let (bp, id) = filter.entity.clone().unzip();
                let rows = sqlx::query(
                    "SELECT seq, scorecard, blueprint, identifier, from_level, to_level, score, at \
                     FROM scorecard_history \
                     WHERE ($1 IS NULL OR scorecard = $1) AND ($2 IS NULL OR blueprint = $2) \
                     AND ($3 IS NULL OR identifier = $3) AND ($4 IS NULL OR seq < $4) \
                     ORDER BY seq DESC LIMIT $5",
                )
                .bind(&filter.scorecard)
                .bind(bp)
                .bind(id)
                .bind(filter.before)
                .bind($crate::sql::scan_limit(limit))
                .fetch_all(&self.reader)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::LevelChangeRow {
                            seq: row.try_get("seq")?,
                            scorecard: row.try_get("scorecard")?,
                            blueprint: row.try_get("blueprint")?,
                            identifier: row.try_get("identifier")?,
                            from: row.try_get("from_level")?,
                            to: row.try_get("to_level")?,
                            score: row.try_get("score")?,
                            at: $crate::sql::time(row.try_get("at")?)?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn record_firings_sql(
                &self,
                firings: &[$crate::FiringRow],
                audit: &[$crate::NewAuditEvent],
            ) -> Result<(), $crate::StoreError> {
                use $crate::scorecards::*;
                use $crate::sql::{audit_row, bulk_rows, json_text, us};
                if firings.is_empty() && audit.is_empty() {
                    return Ok(());
                }
                let mut tx = self.writer.begin().await?;
                for chunk in firings.chunks(bulk_rows(FIRING_COLS)) {
                    let sql = insert_firings_sql::<$db>(chunk.len());
                    let mut q = sqlx::query(&sql);
                    for f in chunk {
                        q = q
                            .bind(&f.id)
                            .bind(&f.automation)
                            .bind(&f.event_type)
                            .bind(&f.status)
                            .bind(us(f.at))
                            .bind(json_text(&f.doc)?);
                    }
                    q.execute(&mut *tx).await?;
                }
                let rows = audit
                    .iter()
                    .map(|e| {
                        audit_row(
                            &e.audit,
                            &e.action,
                            e.resource.clone(),
                            e.before.as_ref(),
                            e.after.as_ref(),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                audit_rows_tx(&mut tx, &rows).await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn list_firings_sql(
                &self,
                filter: &$crate::FiringFilter,
                limit: u32,
            ) -> Result<Vec<$crate::FiringRow>, $crate::StoreError> {
                use sqlx::Row as _;
                let (at, id) = filter.before.clone().unzip();
                let rows = sqlx::query(
                    "SELECT id, automation, event_type, status, at, doc FROM automation_firings \
                     WHERE ($1 IS NULL OR automation = $1) AND ($2 IS NULL OR status = $2) \
                     AND ($3 IS NULL OR at < $3 OR (at = $3 AND id < $4)) \
                     ORDER BY at DESC, id DESC LIMIT $5",
                )
                .bind(&filter.automation)
                .bind(&filter.status)
                .bind(at.map($crate::sql::us))
                .bind(id)
                .bind($crate::sql::scan_limit(limit))
                .fetch_all(&self.reader)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::FiringRow {
                            id: row.try_get("id")?,
                            automation: row.try_get("automation")?,
                            event_type: row.try_get("event_type")?,
                            status: row.try_get("status")?,
                            at: $crate::sql::time(row.try_get("at")?)?,
                            doc: $crate::sql::json_value(&row.try_get::<String, _>("doc")?)?,
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use scorecards_sql;

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: &str) -> ScorecardEntityRow {
        ScorecardEntityRow {
            scorecard: "sc".into(),
            blueprint: "service".into(),
            identifier: id.into(),
            level: "Gold".into(),
            score: 1.0,
            since: DateTime::<Utc>::UNIX_EPOCH,
            rules: Value::Null,
        }
    }

    fn key(id: &str) -> (String, String, String) {
        ("sc".into(), "service".into(), id.into())
    }

    #[test]
    fn a_merged_write_leaves_what_both_writes_in_turn_would() {
        // put a, then remove a: a goes.
        let mut w = ScorecardStateWrite {
            put: vec![put("a"), put("b")],
            ..Default::default()
        };
        w.merge(ScorecardStateWrite {
            removed: vec![key("a")],
            ..Default::default()
        });
        assert_eq!(w.put, vec![put("b")]);
        assert_eq!(w.removed, vec![key("a")]);
        // remove a, then put a: a stays.
        w.merge(ScorecardStateWrite {
            put: vec![put("a")],
            ..Default::default()
        });
        assert!(w.removed.is_empty());
        assert_eq!(w.put, vec![put("b"), put("a")]);
        // the whole scorecard goes: earlier puts go with it.
        w.merge(ScorecardStateWrite {
            removed_scorecards: vec!["sc".into()],
            ..Default::default()
        });
        assert!(w.put.is_empty());
    }

    #[test]
    fn each_backend_gets_its_placeholders() {
        assert!(upsert_entities_sql::<sqlx::Postgres>(2)
            .contains("VALUES ($1, $2, $3, $4, $5, $6, $7), ($8, $9, $10, $11, $12, $13, $14) ON"));
        assert!(insert_history_sql::<sqlx::Sqlite>(1).ends_with("VALUES (?, ?, ?, ?, ?, ?, ?)"));
    }
}
