//! What every case gets: a fresh database on one backend, opened (and reopened) as a `Store`.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use gantry_store::{NewRun, PostgresOptions, PostgresStore, RunOrigin, SqliteStore, Store};
use sqlx::Connection as _;

pub(crate) const POSTGRES_URL_VAR: &str = "GANTRY_TEST_POSTGRES_URL";

enum Backend {
    Sqlite { dir: tempfile::TempDir },
    Postgres { url: String, schema: String },
}

#[derive(Clone)]
enum Opened {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

pub(crate) struct TestDb {
    backend: Backend,
    opened: Mutex<Vec<Opened>>,
}

impl TestDb {
    pub(crate) async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb {
            backend: Backend::Sqlite { dir },
            opened: Mutex::new(Vec::new()),
        }
    }

    pub(crate) async fn postgres() -> TestDb {
        let url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_URL_VAR} is not set: the PostgreSQL half of the store conformance suite \
                 needs a server (CI: postgres://gantry:gantry@127.0.0.1:5432/gantry_test)"
            )
        });
        let schema = format!("t_{}", gantry_store::new_id().expect("id"));
        TestDb {
            backend: Backend::Postgres { url, schema },
            opened: Mutex::new(Vec::new()),
        }
    }

    /// Opens the store on this test's database (applying migrations).
    pub(crate) async fn open(&self) -> Arc<dyn Store> {
        let opened = match &self.backend {
            Backend::Sqlite { dir } => Opened::Sqlite(
                SqliteStore::open(dir.path().join("gantry.db"))
                    .await
                    .expect("open"),
            ),
            Backend::Postgres { url, schema } => {
                let mut options = PostgresOptions::new(url.clone());
                options.schema = Some(schema.clone());
                options.max_connections = 5;
                Opened::Postgres(
                    PostgresStore::connect_with(&options)
                        .await
                        .expect("connect"),
                )
            }
        };
        self.opened.lock().expect("lock").push(opened.clone());
        match opened {
            Opened::Sqlite(s) => Arc::new(s),
            Opened::Postgres(s) => Arc::new(s),
        }
    }

    /// Closes every store opened so far: what a process exit does to its connections.
    pub(crate) async fn close_all(&self) {
        let opened: Vec<Opened> = std::mem::take(&mut *self.opened.lock().expect("lock"));
        for o in opened {
            match o {
                Opened::Sqlite(s) => s.close().await,
                Opened::Postgres(s) => s.close().await,
            }
        }
    }

    /// "Restart on the same database": closes everything, then opens again.
    pub(crate) async fn reopen(&self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        drop(store);
        self.close_all().await;
        self.open().await
    }

    /// Runs one statement on a connection of its own, around the store: what a person with
    /// database access could try. Returns the database's error text on failure.
    pub(crate) async fn raw_execute(&self, sql: &str) -> Result<u64, String> {
        let err = |e: sqlx::Error| e.to_string();
        match &self.backend {
            Backend::Sqlite { dir } => {
                let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.map_err(err)?;
                let done = sqlx::query(sql).execute(&mut conn).await.map_err(err);
                conn.close().await.map_err(err)?;
                done.map(|d| d.rows_affected())
            }
            Backend::Postgres { url, schema } => {
                let mut conn = sqlx::PgConnection::connect(url).await.map_err(err)?;
                sqlx::query(&format!("SET search_path TO \"{schema}\""))
                    .execute(&mut conn)
                    .await
                    .map_err(err)?;
                let done = sqlx::query(sql).execute(&mut conn).await.map_err(err);
                conn.close().await.map_err(err)?;
                done.map(|d| d.rows_affected())
            }
        }
    }

    pub(crate) async fn finish(self) {
        self.close_all().await;
        // Drop removes the schema.
    }
}

impl Drop for TestDb {
    /// Drops a PostgreSQL test schema, also when the test panicked. Runs on its own thread
    /// and runtime, since a destructor cannot await.
    fn drop(&mut self) {
        let Backend::Postgres { url, schema } = &self.backend else {
            return;
        };
        let (url, schema) = (url.clone(), schema.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("could not drop test schema: {err}"),
            Err(_) => eprintln!("could not drop test schema: the thread panicked"),
        }
    }
}

/// A fixed point in time plus `secs` seconds (microsecond precision survives the store).
pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + secs, 0).expect("time")
}

pub(crate) async fn manual_run(store: &dyn Store, id: &str, workflow: &str, at: DateTime<Utc>) {
    store
        .create_run(&NewRun {
            id: id.to_owned(),
            workflow: workflow.to_owned(),
            workflow_version: 1,
            parameters: serde_json::json!({"p": 1}),
            origin: RunOrigin::Manual,
            created_at: at,
            audit: crate::harness::audit(),
        })
        .await
        .expect("create run");
}

/// Claims at most one job of the `default` pool.
pub(crate) async fn claim_one(
    store: &dyn Store,
    lease: &gantry_store::Lease,
) -> Result<Option<gantry_store::Job>, gantry_store::StoreError> {
    let mut jobs = store.claim("default", lease, 1).await?;
    assert!(jobs.len() <= 1, "claim returned more than its limit");
    Ok(jobs.pop())
}

/// The audit context of a change a test makes.
pub(crate) fn audit() -> gantry_store::Audit {
    gantry_store::Audit::system("test", chrono::Utc::now())
}

/// The same, at a chosen time (the time a revocation or a deletion records).
pub(crate) fn audit_at(at: chrono::DateTime<chrono::Utc>) -> gantry_store::Audit {
    gantry_store::Audit::system("test", at)
}
