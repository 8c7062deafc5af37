//! What storing the catalog costs: 100,000 entities written as 20 catalog writes of 5,000
//! (each entity with three properties, three relations, two teams and sources, each change with
//! its audit event carrying the entity as `after`), then the same 100,000 updated with their
//! expected versions, then the whole catalog read back, on SQLite and PostgreSQL.
//!
//! Baseline, in the same run and on the same database: the same rows (entity and audit event)
//! written the plain way, one single-row `INSERT` per row, in one transaction per 5,000, into
//! scratch tables of the same shape (SQLite: a second file with the same settings).
//!
//! `cargo bench -p gantry-store --bench catalog`; `GANTRY_BENCH_ENTITIES` (default 100,000),
//! `GANTRY_BENCH_WRITE` (entities per write, default 5,000); PostgreSQL from
//! `GANTRY_TEST_POSTGRES_URL` (skipped without it), in a schema of its own, dropped at the end.
//! Prints readable lines and one JSON line per backend.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gantry_catalog::{BlueprintRecord, EntityRecord, Source};
use gantry_store::{
    Audit, CatalogChange, CatalogWrite, PostgresOptions, PostgresStore, SqliteStore, Store,
};
use serde_json::json;
use sqlx::Connection as _;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + secs, 0).expect("time")
}

fn entity(i: usize, version: i64) -> EntityRecord {
    EntityRecord {
        entity: serde_json::from_value(json!({
            "identifier": format!("svc-{i:06}"),
            "blueprint": "service",
            "title": format!("Service {i}"),
            "team": ["sre", "payments"],
            "properties": {
                "tier": (i % 3) + 1,
                "language": if i.is_multiple_of(2) { "rust" } else { "go" },
                "url": format!("https://svc-{i}.example.com"),
            },
            "relations": {
                "owner": "sre",
                "system": format!("system-{}", i % 50),
                "dependsOn": [format!("svc-{:06}", (i + 1) % 1000), "db"],
            },
        }))
        .expect("entity"),
        sources: BTreeMap::from([
            ("properties.tier".to_owned(), Source::Api),
            (
                "relations.owner".to_owned(),
                Source::Integration("github".to_owned()),
            ),
        ]),
        version,
        created_at: at(1),
        updated_at: at(version),
        created_by: "ann@example.com".to_owned(),
        updated_by: "ann@example.com".to_owned(),
        managed_by: None,
    }
}

fn audit() -> Audit {
    Audit::system("catalog benchmark", at(2))
}

/// The writes of one round: `entities` in writes of `per_write`, as creations (`version` 1) or
/// updates of version `version - 1`.
fn writes(entities: usize, per_write: usize, version: i64) -> Vec<CatalogWrite> {
    let all: Vec<usize> = (0..entities).collect();
    all.chunks(per_write)
        .map(|chunk| CatalogWrite {
            changes: chunk
                .iter()
                .map(|&i| {
                    let record = entity(i, version);
                    let after = serde_json::to_value(&record.entity).expect("json");
                    CatalogChange::PutEntity {
                        before: (version > 1).then(|| json!({"version": version - 1})),
                        expected_version: (version > 1).then_some(version - 1),
                        action: if version > 1 {
                            "entity.update"
                        } else {
                            "entity.create"
                        }
                        .to_owned(),
                        after,
                        record,
                    }
                })
                .collect(),
            audit: audit(),
        })
        .collect()
}

const SCRATCH_SQLITE: &str = "
CREATE TABLE bench_entities (
    blueprint TEXT NOT NULL, identifier TEXT NOT NULL, title TEXT, team TEXT NOT NULL,
    properties TEXT NOT NULL, relations TEXT NOT NULL, sources TEXT NOT NULL,
    version INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL, updated_by TEXT NOT NULL, managed_by TEXT, seq INTEGER NOT NULL,
    PRIMARY KEY (blueprint, identifier));
CREATE INDEX bench_entities_seq ON bench_entities (seq);
CREATE TABLE bench_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL, actor_name TEXT NOT NULL, action TEXT NOT NULL,
    resource TEXT NOT NULL, before TEXT, after TEXT, request_id TEXT, source TEXT);
CREATE INDEX bench_audit_resource ON bench_audit (resource, seq);
CREATE INDEX bench_audit_actor_id ON bench_audit (actor_id, seq);
CREATE INDEX bench_audit_actor_name ON bench_audit (actor_name, seq);
CREATE INDEX bench_audit_at ON bench_audit (at);
";

fn scratch_postgres() -> String {
    SCRATCH_SQLITE
        .replace(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        )
        .replace("INTEGER", "BIGINT")
        .replace("TEXT", "TEXT COLLATE \"C\"")
}

/// The plain way: one single-row INSERT per entity and per audit event, one transaction per
/// write, JSON made in the loop as the store makes it.
async fn baseline<DB>(pool: &sqlx::Pool<DB>, writes: &[CatalogWrite]) -> Duration
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let started = Instant::now();
    for (n, write) in writes.iter().enumerate() {
        let mut tx = pool.begin().await.expect("begin");
        for change in &write.changes {
            let CatalogChange::PutEntity { record, after, .. } = change else {
                continue;
            };
            let e = &record.entity;
            sqlx::query(
                "INSERT INTO bench_entities (blueprint, identifier, title, team, properties, \
                 relations, sources, version, created_at, updated_at, created_by, updated_by, \
                 managed_by, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 $13, $14)",
            )
            .bind(e.blueprint.clone())
            .bind(e.identifier.clone())
            .bind(e.title.clone())
            .bind(text(&e.team))
            .bind(text(&e.properties))
            .bind(text(&e.relations))
            .bind(text(&record.sources))
            .bind(record.version)
            .bind(record.created_at.timestamp_micros())
            .bind(record.updated_at.timestamp_micros())
            .bind(record.created_by.clone())
            .bind(record.updated_by.clone())
            .bind(record.managed_by.clone())
            .bind(n as i64 + 1)
            .execute(&mut *tx)
            .await
            .expect("insert entity");
            let a = &write.audit;
            sqlx::query(
                "INSERT INTO bench_audit (at, actor_kind, actor_id, actor_name, action, \
                 resource, before, after, request_id, source) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(a.at.timestamp_micros())
            .bind(a.actor.kind.as_str())
            .bind(a.actor.id.clone())
            .bind(a.actor.name.clone())
            .bind("entity.create")
            .bind(format!("entity/{}/{}", e.blueprint, e.identifier))
            .bind(None::<String>)
            .bind(Some(after.to_string()))
            .bind(a.request_id.clone())
            .bind(a.source.clone())
            .execute(&mut *tx)
            .await
            .expect("insert audit");
        }
        tx.commit().await.expect("commit");
    }
    started.elapsed()
}

fn text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("json")
}

struct Figures {
    backend: &'static str,
    baseline: Duration,
    create: Duration,
    update: Duration,
    read: Duration,
}

async fn store_rounds(
    store: &dyn Store,
    entities: usize,
    per_write: usize,
) -> (Duration, Duration, Duration) {
    let blueprint: BlueprintRecord = BlueprintRecord {
        blueprint: serde_json::from_value(json!({"identifier": "service"})).expect("blueprint"),
        version: 1,
        created_at: at(1),
        updated_at: at(1),
        created_by: "ann@example.com".to_owned(),
        updated_by: "ann@example.com".to_owned(),
        managed_by: None,
    };
    store
        .write_catalog(&CatalogWrite {
            changes: vec![CatalogChange::PutBlueprint {
                record: blueprint,
                expected_version: None,
                action: "blueprint.create".to_owned(),
                before: None,
                after: json!({}),
            }],
            audit: audit(),
        })
        .await
        .expect("blueprint");

    let creations = writes(entities, per_write, 1);
    let started = Instant::now();
    for w in &creations {
        store.write_catalog(w).await.expect("create");
    }
    let create = started.elapsed();
    drop(creations);

    let updates = writes(entities, per_write, 2);
    let started = Instant::now();
    for w in &updates {
        store.write_catalog(w).await.expect("update");
    }
    let update = started.elapsed();
    drop(updates);

    let started = Instant::now();
    let all = store.catalog_changes(0).await.expect("read");
    let read = started.elapsed();
    assert_eq!(all.entities.len(), entities);
    (create, update, read)
}

async fn sqlite(entities: usize, per_write: usize) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite:")
        .expect("options")
        .filename(dir.path().join("scratch.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("scratch");
    sqlx::raw_sql(SCRATCH_SQLITE)
        .execute(&pool)
        .await
        .expect("scratch tables");
    let baseline = baseline(&pool, &writes(entities, per_write, 1)).await;
    pool.close().await;

    let store = SqliteStore::open(dir.path().join("gantry.db"))
        .await
        .expect("store");
    let (create, update, read) = store_rounds(&store, entities, per_write).await;
    store.close().await;
    Figures {
        backend: "sqlite",
        baseline,
        create,
        update,
        read,
    }
}

async fn postgres(url: &str, entities: usize, per_write: usize) -> Figures {
    let schema = format!("bench_{}", gantry_store::new_id().expect("id"));
    let mut options = PostgresOptions::new(url);
    options.schema = Some(schema.clone());
    let store = Arc::new(PostgresStore::connect_with(&options).await.expect("store"));
    let connect = sqlx::postgres::PgConnectOptions::from_str(url)
        .expect("url")
        .options([("search_path", schema.as_str())]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(connect)
        .await
        .expect("scratch");
    sqlx::raw_sql(&scratch_postgres())
        .execute(&pool)
        .await
        .expect("scratch tables");
    let baseline = baseline(&pool, &writes(entities, per_write, 1)).await;
    pool.close().await;

    let (create, update, read) = store_rounds(store.as_ref(), entities, per_write).await;
    store.close().await;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .expect("drop schema");
    Figures {
        backend: "postgres",
        baseline,
        create,
        update,
        read,
    }
}

fn report(f: &Figures, entities: usize, per_write: usize) {
    let s = |d: Duration| d.as_secs_f64();
    println!(
        "{}: {entities} entities in writes of {per_write}: plain INSERT loop {:.2} s, \
         write_catalog create {:.2} s (ratio {:.2}), update {:.2} s (ratio {:.2}), \
         catalog_changes(0) {:.2} s",
        f.backend,
        s(f.baseline),
        s(f.create),
        s(f.create) / s(f.baseline),
        s(f.update),
        s(f.update) / s(f.baseline),
        s(f.read),
    );
    println!(
        "{}",
        json!({
            "bench": "catalog",
            "backend": f.backend,
            "entities": entities,
            "per_write": per_write,
            "baseline_s": s(f.baseline),
            "create_s": s(f.create),
            "update_s": s(f.update),
            "read_all_s": s(f.read),
            "create_ratio": s(f.create) / s(f.baseline),
            "update_ratio": s(f.update) / s(f.baseline),
        })
    );
}

fn main() {
    let entities = env_usize("GANTRY_BENCH_ENTITIES", 100_000);
    let per_write = env_usize("GANTRY_BENCH_WRITE", 5_000).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        report(&sqlite(entities, per_write).await, entities, per_write);
        match std::env::var("GANTRY_TEST_POSTGRES_URL") {
            Ok(url) => report(
                &postgres(&url, entities, per_write).await,
                entities,
                per_write,
            ),
            Err(_) => println!("postgres: skipped (GANTRY_TEST_POSTGRES_URL is not set)"),
        }
    });
}
