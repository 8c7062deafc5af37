//! The SQLite backend: one file in the data directory.
//!
//! Owns connection setup for SQLite. The queries are shared with PostgreSQL (`sql.rs`).
//!
//! Concurrency model: one writer connection and a small pool of read-only connections. SQLite
//! admits one writer at a time anyway; giving it a single connection makes every write
//! transaction queue in this process instead of failing with `SQLITE_BUSY`, and makes the queue
//! claim (`UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING`) atomic without row locks.
//! Readers run beside the writer thanks to WAL.
//!
//! Durability: WAL with `synchronous = FULL`, so every commit is fsynced before it returns and an
//! accepted event survives a power loss, not only a process crash (`NORMAL` may lose the last
//! commits on power loss). The cost is one fsync per transaction, which `BatchWriter` amortises
//! over many events.
//!
//! Checkpoints (copying the WAL back into the database file) run on a connection of their own,
//! every [`CHECKPOINT_EVERY`], beside the writer: left to the writer, each one lands inside
//! some commit, which then takes tens of milliseconds longer (and with it every write waiting
//! behind it). The writer still checkpoints by itself should the WAL reach
//! [`WRITER_CHECKPOINTS_AT`] pages, so it stays bounded if the background falls behind.
//!
//! What it must not do: be opened by two processes at once for writing (one server per data dir).

use std::path::Path;
use std::str::FromStr as _;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    checkpointer: SqlitePool,
    /// The background checkpoints stop once every clone of the store is gone.
    _alive: Arc<()>,
}

const READERS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the WAL is checkpointed in the background.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL pages (4 KiB each) at which the writer checkpoints in its own commit.
const WRITER_CHECKPOINTS_AT: u32 = 16_384;

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, crate::StoreError> {
        let base = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path.as_ref())
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .pragma("wal_autocheckpoint", WRITER_CHECKPOINTS_AT.to_string()),
            )
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&writer).await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_lazy_with(base.clone());
        let alive = Arc::new(());
        tokio::spawn(checkpoints(checkpointer.clone(), Arc::downgrade(&alive)));
        // Readers connect lazily: opening stays fast, and they only ever see committed data.
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(0)
            .connect_lazy_with(base.pragma("query_only", "ON"));
        Ok(SqliteStore {
            writer,
            reader,
            checkpointer,
            _alive: alive,
        })
    }

    /// Closes every connection, waiting for running statements to finish.
    pub async fn close(&self) {
        self.checkpointer.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Checkpoints the WAL every [`CHECKPOINT_EVERY`] without blocking the writer or readers
/// (`PASSIVE`: what readers still need stays in the WAL for the next round), until the store
/// is closed or dropped. A failed round is left to the next one.
async fn checkpoints(pool: SqlitePool, alive: Weak<()>) {
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if pool.is_closed() || alive.strong_count() == 0 {
            break;
        }
        let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await;
    }
    pool.close().await;
}

crate::sql::sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    sqlx::sqlite::SqliteRow,
    "UPDATE jobs SET worker = $1, lease_until = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM jobs WHERE pool = $4 AND completed_at IS NULL \
                  AND available_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                  ORDER BY available_at, id LIMIT $5) \
     RETURNING id, pool, run_id, step, payload, available_at, worker, lease_until, attempts, \
               completed_at, result",
    // One writer connection: log appends commit in position order already.
    "",
    // A read transaction keeps its snapshot in WAL mode.
    "",
    bulk
);

crate::agents::agents_sql!(SqliteStore);
crate::scorecards::scorecards_sql!(SqliteStore, sqlx::Sqlite);

/// Bulk writes as multi-row `VALUES` with `?` placeholders (see `sql::Dialect`).
mod bulk {
    use crate::catalog::EntityText;
    use crate::sql::{
        bulk_rows, reused, tuples, us, AuditRow, AUDIT_INSERT, ENTITY_COLS, ENTITY_UPDATE,
    };
    use crate::StoreError;
    use gantry_catalog::EntityRecord;

    type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

    pub(super) async fn audit_rows(tx: &mut Tx, rows: &[AuditRow<'_>]) -> Result<(), StoreError> {
        let full = bulk_rows(10);
        for chunk in rows.chunks(full) {
            let sql = format!(
                "{AUDIT_INSERT} {}",
                tuples::<sqlx::Sqlite>(1, chunk.len(), 10)
            );
            let mut query = sqlx::query(&sql).persistent(reused(chunk.len(), full));
            for row in chunk {
                let a = row.audit;
                query = query
                    .bind(us(a.at))
                    .bind(a.actor.kind.as_str())
                    .bind(&a.actor.id)
                    .bind(&a.actor.name)
                    .bind(row.action)
                    .bind(&row.resource)
                    .bind(&row.before)
                    .bind(&row.after)
                    .bind(&a.request_id)
                    .bind(&a.source);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub(super) async fn upsert_entities(
        tx: &mut Tx,
        seq: i64,
        rows: &[(&EntityRecord, &EntityText)],
    ) -> Result<(), StoreError> {
        let full = bulk_rows(14);
        for chunk in rows.chunks(full) {
            let sql = format!(
                "INSERT INTO entities ({ENTITY_COLS}, seq) VALUES {} {ENTITY_UPDATE}",
                tuples::<sqlx::Sqlite>(1, chunk.len(), 14)
            );
            let mut query = sqlx::query(&sql).persistent(reused(chunk.len(), full));
            for (r, text) in chunk {
                query = query
                    .bind(&r.entity.blueprint)
                    .bind(&r.entity.identifier)
                    .bind(&r.entity.title)
                    .bind(&text.team)
                    .bind(&text.properties)
                    .bind(&text.relations)
                    .bind(&text.sources)
                    .bind(r.version)
                    .bind(us(r.created_at))
                    .bind(us(r.updated_at))
                    .bind(&r.created_by)
                    .bind(&r.updated_by)
                    .bind(&r.managed_by)
                    .bind(seq);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;

    /// The durability and safety settings the module documentation promises.
    #[tokio::test]
    async fn connections_have_the_promised_settings() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("gantry.db"))
            .await
            .expect("open");
        let pragma = |name: &'static str| {
            let pool = store.writer.clone();
            async move {
                sqlx::query_scalar::<_, String>(&format!("SELECT CAST(({name}) AS TEXT)"))
                    .fetch_one(&pool)
                    .await
                    .expect(name)
            }
        };
        assert_eq!(
            pragma("SELECT journal_mode FROM pragma_journal_mode").await,
            "wal"
        );
        // 2 is FULL: every commit is fsynced.
        assert_eq!(
            pragma("SELECT synchronous FROM pragma_synchronous").await,
            "2"
        );
        assert_eq!(
            pragma("SELECT foreign_keys FROM pragma_foreign_keys").await,
            "1"
        );
        assert_eq!(
            pragma("SELECT timeout FROM pragma_busy_timeout").await,
            "10000"
        );
        let autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.writer)
            .await
            .expect("wal_autocheckpoint");
        assert_eq!(autocheckpoint, i64::from(super::WRITER_CHECKPOINTS_AT));

        let write = sqlx::query("DELETE FROM api_keys")
            .execute(&store.reader)
            .await;
        assert!(write.is_err(), "readers are read-only");
        store.close().await;
    }

    /// Commits land in the WAL; the background checkpoints copy them into the database file
    /// long before the writer would (at 64 MiB of WAL).
    #[tokio::test]
    async fn the_wal_is_checkpointed_in_the_background() {
        use crate::Store as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("gantry.db");
        let store = SqliteStore::open(&file).await.expect("open");
        let size = || std::fs::metadata(&file).expect("db file").len();
        let before = size();
        // About 2 MiB of audit events: the database file cannot hold them until checkpointed.
        let big = serde_json::Value::String("x".repeat(100_000));
        for i in 0..20 {
            store
                .append_audit(&crate::NewAuditEvent {
                    audit: crate::Audit::system("test", chrono::Utc::now()),
                    action: "test.write".into(),
                    resource: format!("test/{i}"),
                    before: None,
                    after: Some(big.clone()),
                })
                .await
                .expect("append");
        }
        let committed = size();
        let deadline = std::time::Instant::now() + 20 * super::CHECKPOINT_EVERY;
        while size() < before + 2_000_000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(super::CHECKPOINT_EVERY / 5).await;
        }
        assert!(
            committed < before + 2_000_000,
            "the writer did not checkpoint by itself ({before} → {committed} bytes)"
        );
        assert!(
            size() >= before + 2_000_000,
            "checkpointed in the background ({before} → {} bytes)",
            size()
        );
        store.close().await;
    }
}
