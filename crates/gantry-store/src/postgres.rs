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
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
);
