//! The PostgreSQL backend, for several servers sharing one database.
//!
//! Owns connection setup for PostgreSQL: the pool, the schema (`search_path`) the store lives in,
//! and creating that schema. The queries are shared with SQLite (`sql.rs`), except the queue claim,
//! which locks the chosen row with `FOR UPDATE SKIP LOCKED` so concurrent claimers never wait on
//! each other and never take the same job.
//!
//! Concurrency model: one pool for reads and writes, `READ COMMITTED` transactions; unique indexes
//! settle duplicate inserts (a second inserter waits for the first to commit, then sees its row).
//! Log appends to one run take a transaction-scoped advisory lock on the run id, so log positions
//! of a run become visible in order and a live follower never skips a chunk.
//! No TLS: the database is expected on loopback or a private network.
//!
//! What it must not do: assume it is the only process using the database.

use std::str::FromStr as _;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Connection as _;

/// How to reach the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// The schema to keep the tables in, created if missing (letters, digits, `_`).
    /// `None` uses the role's default `search_path`.
    pub schema: Option<String>,
    pub max_connections: u32,
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            schema: None,
            max_connections: 10,
        }
    }
}

/// A store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    writer: PgPool,
    reader: PgPool,
}

impl PostgresStore {
    /// Connects with default options and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(&PostgresOptions::new(url)).await
    }

    /// Connects, creates the schema if one is named, and applies pending migrations.
    pub async fn connect_with(options: &PostgresOptions) -> Result<Self, StoreError> {
        let mut connect = PgConnectOptions::from_str(&options.url)?;
        if let Some(schema) = &options.schema {
            if schema.is_empty()
                || !schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(StoreError::Database(format!(
                    "invalid schema name {schema:?}"
                )));
            }
            let mut conn = sqlx::PgConnection::connect_with(&connect).await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PostgresStore {
            writer: pool.clone(),
            reader: pool,
        })
    }

    /// Closes every connection, waiting for running statements to finish.
    pub async fn close(&self) {
        self.writer.close().await;
    }
}

crate::sql::sql_store!(
    PostgresStore,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    "UPDATE jobs SET worker = $1, lease_until = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM jobs WHERE pool = $4 AND completed_at IS NULL \
                  AND available_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                  ORDER BY available_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) \
     RETURNING id, pool, run_id, step, payload, available_at, worker, lease_until, attempts, \
               completed_at, result",
    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    bulk
);

crate::agents::agents_sql!(PostgresStore);
crate::scorecards::scorecards_sql!(PostgresStore, sqlx::Postgres);

/// Bulk writes as one `INSERT … SELECT FROM UNNEST` of a few arrays: one statement however many
/// rows, about twice as fast as multi-row `VALUES`, whose thousands of parameters PostgreSQL
/// parses and plans on every execution.
mod bulk {
    use crate::catalog::EntityText;
    use crate::sql::{us, AuditRow, ENTITY_COLS, ENTITY_UPDATE};
    use crate::StoreError;
    use gantry_catalog::EntityRecord;

    type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

    /// Rows per statement: bounds one message, not a parameter count.
    const ROWS: usize = 10_000;

    pub(super) async fn audit_rows(tx: &mut Tx, rows: &[AuditRow<'_>]) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS) {
            let n = chunk.len();
            let (mut at, mut kind, mut actor_id, mut actor_name, mut action, mut resource) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut before, mut after, mut request_id, mut source) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for r in chunk {
                let a = r.audit;
                at.push(us(a.at));
                kind.push(a.actor.kind.as_str());
                actor_id.push(a.actor.id.as_str());
                actor_name.push(a.actor.name.as_str());
                action.push(r.action);
                resource.push(r.resource.as_str());
                before.push(r.before.as_deref());
                after.push(r.after.as_deref());
                request_id.push(a.request_id.as_deref());
                source.push(a.source.as_deref());
            }
            sqlx::query(
                "INSERT INTO audit_events (at, actor_kind, actor_id, actor_name, action, \
                 resource, before, after, request_id, source) \
                 SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], \
                   $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])",
            )
            .bind(at)
            .bind(kind)
            .bind(actor_id)
            .bind(actor_name)
            .bind(action)
            .bind(resource)
            .bind(before)
            .bind(after)
            .bind(request_id)
            .bind(source)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    pub(super) async fn upsert_entities(
        tx: &mut Tx,
        seq: i64,
        rows: &[(&EntityRecord, &EntityText)],
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO entities ({ENTITY_COLS}, seq) \
             SELECT *, $14 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
               $5::text[], $6::text[], $7::text[], $8::int8[], $9::int8[], $10::int8[], \
               $11::text[], $12::text[], $13::text[]) \
             {ENTITY_UPDATE}"
        );
        for chunk in rows.chunks(ROWS) {
            let n = chunk.len();
            let (mut blueprint, mut identifier, mut title, mut team) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut properties, mut relations, mut sources, mut version) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut created_at, mut updated_at, mut created_by, mut updated_by, mut managed_by) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for (r, t) in chunk {
                blueprint.push(r.entity.blueprint.as_str());
                identifier.push(r.entity.identifier.as_str());
                title.push(r.entity.title.as_deref());
                team.push(t.team.as_str());
                properties.push(t.properties.as_str());
                relations.push(t.relations.as_str());
                sources.push(t.sources.as_str());
                version.push(r.version);
                created_at.push(us(r.created_at));
                updated_at.push(us(r.updated_at));
                created_by.push(r.created_by.as_str());
                updated_by.push(r.updated_by.as_str());
                managed_by.push(r.managed_by.as_deref());
            }
            sqlx::query(&sql)
                .bind(blueprint)
                .bind(identifier)
                .bind(title)
                .bind(team)
                .bind(properties)
                .bind(relations)
                .bind(sources)
                .bind(version)
                .bind(created_at)
                .bind(updated_at)
                .bind(created_by)
                .bind(updated_by)
                .bind(managed_by)
                .bind(seq)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
