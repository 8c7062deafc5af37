//! What the store keeps for agents and for re-attaching their jobs after a restart: the agents
//! every server sharing the database has seen, a lease given back to its holder, and the last
//! line number stored per step and stream.
//!
//! Owns the SQL of the `Store` methods of its section (`agents_sql!`, expanded per backend next
//! to `sql_store!`; `sql.rs` only delegates to it). It decides nothing: what a number range of
//! log lines means, or when an agent counts as gone, is the server's business.

use chrono::{DateTime, Utc};

/// The highest `seq` stored for one step and stream of a run (see `Store::last_log_seqs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMark {
    pub step: String,
    pub stream: String,
    pub seq: i64,
}

/// An agent as a server last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub pool: String,
    pub id: String,
    pub version: String,
    pub hostname: String,
    /// Its last call (claim, heartbeat, lines, end) that was recorded.
    pub last_seen: DateTime<Utc>,
    /// The jobs it said it runs at that time.
    pub jobs: Vec<String>,
}

/// Columns of one `agents` row in a bulk upsert.
pub(crate) const AGENT_COLS: usize = 6;

/// `INSERT … VALUES ($1, …), ($7, …) …` for `rows` agents: a row already stored is replaced only
/// by a newer sighting, so two servers writing out of order never move one back in time.
pub(crate) fn upsert_agents_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=AGENT_COLS)
                .map(|c| format!("${}", r * AGENT_COLS + c))
                .collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO agents (pool, id, version, hostname, last_seen, jobs) VALUES {} \
         ON CONFLICT (pool, id) DO UPDATE SET version = excluded.version, \
         hostname = excluded.hostname, last_seen = excluded.last_seen, jobs = excluded.jobs \
         WHERE agents.last_seen <= excluded.last_seen",
        values.join(", ")
    )
}

/// Expands the SQL of the agents section for a backend type with `writer` and `reader` pools.
macro_rules! agents_sql {
    ($store:ty) => {
        impl $store {
            pub(crate) async fn restore_lease_sql(
                &self,
                job_id: &str,
                lease: &$crate::Lease,
            ) -> Result<(), $crate::StoreError> {
                let now = $crate::sql::us(lease.now);
                let until = now.saturating_add($crate::sql::duration_us(lease.duration)?);
                let done = sqlx::query(
                    "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND worker = $3 \
                     AND completed_at IS NULL",
                )
                .bind(until)
                .bind(job_id)
                .bind(&lease.worker)
                .execute(&self.writer)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok(());
                }
                let found: Option<String> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
                    .bind(job_id)
                    .fetch_optional(&self.reader)
                    .await?;
                Err(match found {
                    Some(_) => $crate::StoreError::Conflict(format!(
                        "job {job_id:?}: ended, or held by another worker"
                    )),
                    None => $crate::StoreError::NotFound(format!("job {job_id:?}")),
                })
            }

            pub(crate) async fn last_log_seqs_sql(
                &self,
                run_id: &str,
                from: i64,
                to: i64,
            ) -> Result<Vec<$crate::LogMark>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT step, stream, MAX(seq) AS seq FROM log_chunks \
                     WHERE run_id = $1 AND seq >= $2 AND seq < $3 \
                     GROUP BY step, stream ORDER BY step, stream",
                )
                .bind(run_id)
                .bind(from)
                .bind(to)
                .fetch_all(&self.reader)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::LogMark {
                            step: row.try_get("step")?,
                            stream: row.try_get("stream")?,
                            seq: row.try_get("seq")?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn record_agents_sql(
                &self,
                agents: &[$crate::AgentRecord],
            ) -> Result<(), $crate::StoreError> {
                if agents.is_empty() {
                    return Ok(());
                }
                let mut tx = self.writer.begin().await?;
                for chunk in agents.chunks($crate::sql::bulk_rows($crate::agents::AGENT_COLS)) {
                    let sql = $crate::agents::upsert_agents_sql(chunk.len());
                    let mut q = sqlx::query(&sql);
                    for a in chunk {
                        let jobs = serde_json::to_string(&a.jobs)
                            .map_err(|e| $crate::StoreError::Database(format!("JSON: {e}")))?;
                        q = q
                            .bind(&a.pool)
                            .bind(&a.id)
                            .bind(&a.version)
                            .bind(&a.hostname)
                            .bind($crate::sql::us(a.last_seen))
                            .bind(jobs);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn list_agents_sql(
                &self,
            ) -> Result<Vec<$crate::AgentRecord>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT pool, id, version, hostname, last_seen, jobs FROM agents \
                     ORDER BY pool, id",
                )
                .fetch_all(&self.reader)
                .await?;
                rows.iter()
                    .map(|row| {
                        let jobs: String = row.try_get("jobs")?;
                        Ok($crate::AgentRecord {
                            pool: row.try_get("pool")?,
                            id: row.try_get("id")?,
                            version: row.try_get("version")?,
                            hostname: row.try_get("hostname")?,
                            last_seen: $crate::sql::time(row.try_get("last_seen")?)?,
                            jobs: serde_json::from_str(&jobs).map_err(|e| {
                                $crate::StoreError::Database(format!("stored JSON: {e}"))
                            })?,
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use agents_sql;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upsert_numbers_its_placeholders_row_after_row() {
        let sql = upsert_agents_sql(2);
        assert!(
            sql.contains("($1, $2, $3, $4, $5, $6), ($7, $8, $9, $10, $11, $12)"),
            "{sql}"
        );
        assert!(
            sql.ends_with("WHERE agents.last_seen <= excluded.last_seen"),
            "{sql}"
        );
    }
}
