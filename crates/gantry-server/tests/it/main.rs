//! Integration tests of the metadata API: the router called in-process with
//! `tower::ServiceExt::oneshot` against [`backend::MapBackend`], plus one test that runs PyPI's
//! real `relay-sdk` against the router on a socket, and the OIDC client against a real OpenID
//! provider on loopback.

mod access;
mod actions;
mod api;
mod audit;
mod auth;
mod authz;
mod backend;
mod catalog;
mod catalog_sync;
mod client;
mod endpoints;
mod login;
mod oidc;
mod openapi;
mod relay_sdk;
mod scorecards;
mod spec;
mod triggers;

/// The audit context of a change a test makes straight in the store.
pub(crate) fn audit() -> gantry_store::Audit {
    gantry_store::Audit::system("test", chrono::Utc::now())
}

/// The same, at a chosen time.
pub(crate) fn audit_at(at: chrono::DateTime<chrono::Utc>) -> gantry_store::Audit {
    gantry_store::Audit::system("test", at)
}

/// A database of its own on the test server (`GANTRY_TEST_POSTGRES_URL`), dropped when this
/// goes out of scope, also when the test panicked.
pub(crate) struct PgDatabase {
    base: String,
    name: String,
    pub(crate) url: String,
}

impl PgDatabase {
    pub(crate) async fn create(base: &str) -> PgDatabase {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(base)
            .await
            .expect("connect to the test PostgreSQL");
        let name = format!(
            "gantry_e2e_{}",
            gantry_store::new_id().expect("id").to_lowercase()
        );
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create a database");
        let _ = admin.close().await;
        let (head, _) = base.rsplit_once('/').expect("a database in the URL");
        let url = format!("{head}/{name}");
        PgDatabase {
            base: base.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    /// On a thread and runtime of its own: a destructor cannot await.
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&base).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}
