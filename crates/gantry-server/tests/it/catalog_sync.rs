//! The catalog service below the API: a server's own writes reach its observers as its own
//! (what scorecards store and automations fire on), however reads race them; and servers
//! sharing one database see each other's writes with none lost, doubled or taken for their own.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gantry_catalog::index::{Applied, Catalog, Expect, WriteContext};
use gantry_catalog::{Blueprint, Entity, Source};
use gantry_server::catalog::{CatalogObserver, CatalogService, Group, Plan, WriteError};
use gantry_store::{Audit, SqliteStore, Store, StoreError};
use serde_json::json;

type Key = (String, String);

/// Every entity an apply may have changed, split by whose write it was.
#[derive(Default)]
struct Recorder {
    own: Mutex<HashSet<Key>>,
    foreign: Mutex<HashSet<Key>>,
}

impl CatalogObserver for Recorder {
    fn applied(&self, _catalog: &Catalog, applied: &Applied, written: &Group<'_>) {
        let set = if written.is_empty() {
            &self.foreign
        } else {
            &self.own
        };
        set.lock().unwrap().extend(applied.keys.iter().cloned());
    }
}

impl Recorder {
    fn own(&self) -> HashSet<Key> {
        self.own.lock().unwrap().clone()
    }
    fn foreign(&self) -> HashSet<Key> {
        self.foreign.lock().unwrap().clone()
    }
}

fn key(id: &str) -> Key {
    ("box".to_owned(), id.to_owned())
}

fn server(store: &Arc<dyn Store>) -> (Arc<CatalogService>, Arc<Recorder>) {
    let service = CatalogService::new(store.clone());
    let recorder = Arc::new(Recorder::default());
    service.observe(recorder.clone());
    (service, recorder)
}

fn ctx(audit: &Audit) -> WriteContext<'static> {
    WriteContext {
        source: &Source::Api,
        actor: "test",
        now: audit.at,
        managed_by: None,
    }
}

async fn create_blueprint(service: &CatalogService) {
    let bp: Blueprint = serde_json::from_value(json!({
        "identifier": "box",
        "schema": {"properties": {"n": {"type": "integer"}}}
    }))
    .unwrap();
    let audit = crate::audit();
    service
        .write(&audit, |cat| {
            let p = cat
                .plan_blueprints(vec![(bp.clone(), Expect::Any)], &ctx(&audit))
                .remove(0)
                .map_err(|problems| format!("{problems:?}"))?;
            let mut plan = Plan::new(());
            plan.blueprint(&p, false);
            Ok::<_, String>(plan)
        })
        .await
        .map_err(|e| match e {
            WriteError::Refused(m) => m,
            WriteError::Store(e) => e.to_string(),
        })
        .unwrap();
}

/// Adds one to the entity's `n` (0 when new), planned against the index as it stands: a
/// write that lost a race to another server is planned again, and again by the caller when
/// it kept losing, so no increment is lost.
async fn increment(service: &CatalogService, id: &str) {
    let audit = crate::audit();
    for _ in 0..100 {
        let written = service
            .write(&audit, |cat| {
                let n = cat
                    .entity_view("box", id)
                    .and_then(|e| e.record.entity.properties.get("n"))
                    .and_then(|n| n.as_i64())
                    .unwrap_or(0);
                let entity: Entity = serde_json::from_value(json!({
                    "blueprint": "box", "identifier": id, "properties": {"n": n + 1}
                }))
                .unwrap();
                let p = cat
                    .plan_entities(vec![(entity, Expect::Any)], &[], &ctx(&audit))
                    .remove(0)
                    .map_err(|problems| format!("{problems:?}"))?;
                let mut plan = Plan::new(());
                plan.entity(&p, false);
                Ok::<_, String>(plan)
            })
            .await;
        match written {
            Ok(()) => return,
            Err(WriteError::Store(StoreError::Conflict(_))) => continue,
            Err(WriteError::Store(e)) => panic!("{e}"),
            Err(WriteError::Refused(m)) => panic!("{m}"),
        }
    }
    panic!("{id}: lost every race");
}

fn n_of(service: &CatalogService, id: &str) -> Option<i64> {
    service
        .read()
        .entity_view("box", id)
        .and_then(|e| e.record.entity.properties.get("n"))
        .and_then(|n| n.as_i64())
}

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("gantry.db"))
        .await
        .unwrap();
    (Arc::new(store), dir)
}

/// Readers catch the index up all the time while writes commit. A write committed and not
/// yet applied must not be read back from the store as another server's: its observers would
/// then see it as foreign (no level change stored, no automation fired) and its own apply as
/// no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_writes_never_take_a_servers_own_write_for_another_servers() {
    let (store, _dir) = sqlite().await;
    let (service, recorder) = server(&store);
    create_blueprint(&service).await;

    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (service, done) = (service.clone(), done.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !done.load(Ordering::SeqCst) {
                    service.sync().await.unwrap();
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let service = service.clone();
            tokio::spawn(async move {
                for i in 0..30 {
                    increment(&service, &format!("w{w}-{}", i % 3)).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(reads > 100, "the readers raced the writes ({reads} reads)");

    let written: HashSet<Key> = (0..8)
        .flat_map(|w| (0..3).map(move |k| key(&format!("w{w}-{k}"))))
        .collect();
    for (w, k) in (0..8).flat_map(|w| (0..3).map(move |k| (w, k))) {
        assert_eq!(n_of(&service, &format!("w{w}-{k}")), Some(10));
    }
    assert_eq!(recorder.own(), written);
    assert_eq!(
        recorder.foreign(),
        HashSet::new(),
        "one server: nothing is another server's"
    );
}

/// Two servers on one database, writing the same counters and records of their own at the
/// same time: every increment counts once on both, each sees the other's records as
/// foreign, and its own only as its own, also when the other committed between its plan
/// and its commit.
async fn two_servers_share_one_database(store: Arc<dyn Store>) {
    let (a, seen_by_a) = server(&store);
    let (b, seen_by_b) = server(&store);
    create_blueprint(&a).await;

    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (service, name) = if t % 2 == 0 {
                (a.clone(), format!("a{t}"))
            } else {
                (b.clone(), format!("b{t}"))
            };
            tokio::spawn(async move {
                for i in 0..20 {
                    increment(&service, &format!("shared-{}", i % 4)).await;
                    increment(&service, &name).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    a.sync().await.unwrap();
    b.sync().await.unwrap();

    for service in [&a, &b] {
        for k in 0..4 {
            // 8 tasks × 5 increments of each shared counter.
            assert_eq!(n_of(service, &format!("shared-{k}")), Some(40));
        }
        for t in 0..8 {
            let name = if t % 2 == 0 {
                format!("a{t}")
            } else {
                format!("b{t}")
            };
            assert_eq!(n_of(service, &name), Some(20), "{name}");
        }
    }
    let mine = |prefix: &str| -> HashSet<Key> {
        (0..8)
            .map(|t| format!("{}{t}", if t % 2 == 0 { "a" } else { "b" }))
            .filter(|n| n.starts_with(prefix))
            .map(|n| key(&n))
            .collect()
    };
    for (seen, own, other) in [(&seen_by_a, "a", "b"), (&seen_by_b, "b", "a")] {
        let own_keys = seen.own();
        let foreign = seen.foreign();
        for k in mine(own) {
            assert!(own_keys.contains(&k), "{k:?} seen as its writer's own");
            assert!(!foreign.contains(&k), "{k:?} never as another server's");
        }
        for k in mine(other) {
            assert!(foreign.contains(&k), "{k:?} written by the other server");
            assert!(!own_keys.contains(&k), "{k:?} is not this server's");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_sqlite_database_see_each_others_writes() {
    let (store, _dir) = sqlite().await;
    two_servers_share_one_database(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgresql_database_see_each_others_writes() {
    let Ok(base) = std::env::var("GANTRY_TEST_POSTGRES_URL") else {
        eprintln!("skipped: GANTRY_TEST_POSTGRES_URL is not set (.ci/run sets it)");
        return;
    };
    let db = crate::PgDatabase::create(&base).await;
    let store = gantry_store::PostgresStore::connect(&db.url).await.unwrap();
    two_servers_share_one_database(Arc::new(store)).await;
}
