//! Benchmarks of the server's triggers, each against a baseline measured in the same run, over
//! real loopback sockets with a real `Server` (process runtime, SQLite in a temporary folder with
//! `synchronous = FULL`, as shipped). Prints readable lines and one JSON line per benchmark.
//!
//! `cargo bench -p gantry-server --bench triggers` runs all three; `GANTRY_BENCH=events,runs`
//! (any of `events`, `runs`, `schedules`) picks some.
//! - events: webhook → durably accepted event (the `202`), at 1, 8 and 64 concurrent keep-alive
//!   clients, `GANTRY_BENCH_EVENTS` requests each (default 2,000). Baselines: a bare axum handler
//!   answering `200` on loopback to the same clients, and raw SQLite inserts of the same rows
//!   (same pragmas, one writer connection as in Gantry, one transaction each) from as many tasks.
//!   `GANTRY_BENCH_CONCURRENCY=64` picks the levels.
//!   Each accepted event starts a run: the phase measures acknowledgements, then waits for the
//!   runs to end before the next phase starts (reported as `drain_s`).
//!   Targets: at least 5,000 events/s at 64 clients, p99 under 20 ms at 8.
//! - runs: webhook → run ended, one `true` process step, `GANTRY_BENCH_RUNS` runs (default
//!   1,000) from 64 clients, from the first request to the last run's end being stored.
//!   Baseline: spawning `sh -c true` as many times, 64 at a time. Target: at least 1,000 runs/s.
//! - schedules: `GANTRY_BENCH_SCHEDULES` workflows (default 1,000) with a `* * * * *` schedule on
//!   the real clock; lateness of each fire (durable acceptance − scheduled time), duplicates and
//!   missed fires. Baseline: as many `tokio::time::sleep_until` timers to one instant.
//!   Target: p99 lateness under 100 ms, no duplicate, no missed fire. Waits for the next minute.
//!
//! The clients run in the benchmark's process, on the same two-worker runtime as the server and
//! the baselines, so every figure pays for its load generator alike.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use gantry_server::server::{RuntimeChoice, Server, ServerConfig};
use gantry_server::triggers::schedule::Fired;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::mpsc;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------------ measuring

/// Latencies of one load, sorted, and its wall time.
struct Load {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn new(elapsed: Duration, mut latencies: Vec<Duration>) -> Load {
        latencies.sort();
        Load { elapsed, latencies }
    }

    fn per_s(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile in milliseconds.
    fn ms(&self, p: f64) -> f64 {
        quantile_ms(&self.latencies, p)
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what:<28} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            self.per_s(),
            self.ms(0.50),
            self.ms(0.99)
        )
    }
}

fn quantile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

/// POSTs `n` JSON bodies to `url` from `c` concurrent keep-alive clients; every answer must
/// have status `expect`.
async fn post_load(url: &str, n: usize, c: usize, expect: u16) -> Load {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            let (client, next, url) = (client.clone(), next.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return latencies;
                    }
                    let sent = Instant::now();
                    let res = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(format!(
                            r#"{{"n":{i},"ref":"refs/heads/main","action":"push"}}"#
                        ))
                        .send()
                        .await
                        .expect("request");
                    let status = res.status().as_u16();
                    let body = res.bytes().await.expect("response body");
                    assert_eq!(status, expect, "{}", String::from_utf8_lossy(&body));
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await.expect("client task"));
    }
    Load::new(start.elapsed(), latencies)
}

// ------------------------------------------------------------------ the server

struct Running {
    base: String,
    key: String,
    http: reqwest::Client,
    /// A read-only connection to the server's database, to watch its progress.
    db: SqlitePool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(
        data: &Path,
        observe: bool,
    ) -> (Running, Option<mpsc::UnboundedReceiver<Fired>>) {
        let mut server = Server::bind(ServerConfig {
            data_dir: data.to_owned(),
            listen: "127.0.0.1:0".parse().expect("address"),
            database_url: None,
            runtime: RuntimeChoice::Process,
            public_url: None,
            timer: None,
            workers: {
                let mut w = gantry_server::workers::WorkerConfig::default();
                w.max_parallel_steps = env_usize("GANTRY_MAX_PARALLEL_STEPS", w.max_parallel_steps);
                w.nice = env_usize("GANTRY_BENCH_NICE", w.nice as usize) as i32;
                w
            },
            work_dir: None,
            trigger_containers: Default::default(),
            sso: None,
        })
        .await
        .expect("bind");
        let fires = observe.then(|| server.observe_schedules());
        let key = server.initial_admin_key.clone().expect("an admin key");
        let base = format!("http://{}", server.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        let db = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(data.join(gantry_server::server::DATABASE_FILE))
                    .read_only(true),
            )
            .await
            .expect("read the server's database");
        let running = Running {
            base,
            key,
            http: reqwest::Client::new(),
            db,
            stop: Some(tx),
            task,
        };
        (running, fires)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        self.db.close().await;
    }

    async fn apply(&self, name: &str, yaml: &str) {
        let res = self
            .http
            .put(format!("{}/api/v1/workflows/{name}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(yaml.to_owned())
            .send()
            .await
            .expect("apply");
        let status = res.status().as_u16();
        assert!(status == 200 || status == 201, "apply {name}: {status}");
    }

    /// The webhook URL of `workflow`'s first trigger.
    async fn hook_url(&self, workflow: &str) -> String {
        let text = self
            .http
            .get(format!(
                "{}/api/v1/workflows/{workflow}/triggers",
                self.base
            ))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("triggers")
            .text()
            .await
            .expect("triggers body");
        let body: Value = serde_json::from_str(&text).expect("triggers JSON");
        body["items"][0]["url"]
            .as_str()
            .expect("a webhook URL")
            .to_owned()
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, Option<i64>>(sql)
            .fetch_one(&self.db)
            .await
            .expect(sql)
            .unwrap_or(0)
    }

    /// Waits until `n` runs have ended (their end is stored); returns when that was seen.
    /// Polls lightly (the run status index, every 50 ms): a figure comes from the stored ends,
    /// and a poll scanning the runs table every few milliseconds took CPU from the server.
    async fn runs_ended(&self, n: i64, limit: Duration) -> Instant {
        let start = Instant::now();
        loop {
            let ended = self
                .scalar(
                    "SELECT COUNT(*) FROM runs \
                     WHERE status IN ('succeeded', 'failed', 'cancelled')",
                )
                .await;
            if ended >= n {
                return Instant::now();
            }
            assert!(
                start.elapsed() < limit,
                "only {ended} of {n} runs ended after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const HOOKED: &str = "apiVersion: v1
triggers:
- name: hook
  source: {type: webhook}
steps:
- name: ok
  image: none
  input: ['true']
";

// ------------------------------------------------------------------ baselines

/// A bare axum handler answering `200` on loopback; returns its URL.
async fn bare_axum() -> String {
    let app = axum::Router::new().route(
        "/hooks/{id}",
        axum::routing::post(|_body: axum::body::Bytes| async { axum::http::StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hooks/bare")
}

/// Inserts `n` event rows like Gantry's into a fresh SQLite file with Gantry's pragmas and
/// table, one transaction each, from `c` tasks sharing one writer connection.
async fn sqlite_inserts(dir: &Path, n: usize, c: usize) -> Load {
    let path = dir.join(format!("raw-{c}.db"));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full),
        )
        .await
        .expect("open SQLite");
    for ddl in [
        "CREATE TABLE events (id TEXT PRIMARY KEY, workflow TEXT NOT NULL, \
         trigger_name TEXT NOT NULL, dedup_key TEXT, idempotency_key TEXT, data TEXT NOT NULL, \
         received_at INTEGER NOT NULL, run_id TEXT)",
        "CREATE UNIQUE INDEX events_idempotency ON events (workflow, idempotency_key)",
        "CREATE UNIQUE INDEX events_dedup ON events (workflow, trigger_name, dedup_key)",
        "CREATE INDEX events_without_run ON events (received_at) WHERE run_id IS NULL",
    ] {
        sqlx::query(ddl).execute(&pool).await.expect(ddl);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            let (pool, next) = (pool.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return latencies;
                    }
                    let sent = Instant::now();
                    let mut tx = pool.begin().await.expect("begin");
                    sqlx::query(
                        "INSERT INTO events (id, workflow, trigger_name, dedup_key, \
                         idempotency_key, data, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(gantry_store::new_id().expect("id"))
                    .bind("hooked")
                    .bind("hook")
                    .bind(None::<String>)
                    .bind(None::<String>)
                    .bind(format!(
                        r#"{{"data":{{"n":{i},"ref":"refs/heads/main","action":"push"}},"parameters":{{}}}}"#
                    ))
                    .bind(Utc::now().timestamp_micros())
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
                    tx.commit().await.expect("commit");
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await.expect("insert task"));
    }
    let load = Load::new(start.elapsed(), latencies);
    pool.close().await;
    load
}

/// Spawns `sh -c true` `n` times, `c` at a time.
async fn spawn_true(n: usize, c: usize) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            let next = next.clone();
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let status = tokio::process::Command::new("sh")
                        .args(["-c", "true"])
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .status()
                        .await
                        .expect("spawn sh");
                    assert!(status.success());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("spawn task");
    }
    start.elapsed()
}

// ------------------------------------------------------------------ the benchmarks

async fn events(dir: &Path) {
    let n = env_usize("GANTRY_BENCH_EVENTS", 2000);
    let data = dir.join("events");
    let (server, _) = Running::start(&data, false).await;
    server.apply("hooked", HOOKED).await;
    let hook = server.hook_url("hooked").await;
    let bare = bare_axum().await;
    // Warm both servers' code paths and the workflow cache.
    post_load(&bare, 50, 4, 200).await;
    post_load(&hook, 50, 4, 202).await;
    let mut total = 50i64;
    server.runs_ended(total, Duration::from_secs(120)).await;
    let levels = std::env::var("GANTRY_BENCH_CONCURRENCY").unwrap_or_else(|_| "1,8,64".into());
    for c in levels
        .split(',')
        .filter_map(|c| c.trim().parse::<usize>().ok())
    {
        let axum = post_load(&bare, n, c, 200).await;
        let sqlite = sqlite_inserts(dir, n, c).await;
        let gantry = post_load(&hook, n, c, 202).await;
        total += n as i64;
        let drain_start = Instant::now();
        server.runs_ended(total, Duration::from_secs(600)).await;
        let drain = drain_start.elapsed();
        println!("webhook -> accepted event, {n} requests from {c} clients");
        println!("  {}", axum.line("bare axum handler"));
        println!("  {}", sqlite.line("raw SQLite insert"));
        println!("  {}", gantry.line("gantry webhook"));
        println!(
            "  then the {n} runs the events started ended {:.2} s after the last acknowledgement",
            drain.as_secs_f64()
        );
        println!(
            "{{\"bench\":\"webhook_event_accepted\",\"concurrency\":{c},\"events\":{n},\
             \"axum_per_s\":{:.0},\"axum_p50_ms\":{:.3},\"axum_p99_ms\":{:.3},\
             \"sqlite_per_s\":{:.0},\"sqlite_p50_ms\":{:.3},\"sqlite_p99_ms\":{:.3},\
             \"gantry_per_s\":{:.0},\"gantry_p50_ms\":{:.3},\"gantry_p99_ms\":{:.3},\
             \"ratio_to_axum\":{:.3},\"ratio_to_sqlite\":{:.3},\"runs_drain_s\":{:.3},\
             \"target_per_s_at_64\":5000,\"target_p99_ms_at_8\":20}}",
            axum.per_s(),
            axum.ms(0.5),
            axum.ms(0.99),
            sqlite.per_s(),
            sqlite.ms(0.5),
            sqlite.ms(0.99),
            gantry.per_s(),
            gantry.ms(0.5),
            gantry.ms(0.99),
            gantry.per_s() / axum.per_s(),
            gantry.per_s() / sqlite.per_s(),
            drain.as_secs_f64(),
        );
    }
    server.stop().await;
}

async fn runs(dir: &Path) {
    let n = env_usize("GANTRY_BENCH_RUNS", 1000);
    let c = 64;
    // Warm the process spawning path once.
    spawn_true(c, c).await;
    let baseline = spawn_true(n, c).await;
    let (server, _) = Running::start(&dir.join("runs"), false).await;
    server.apply("hooked", HOOKED).await;
    let hook = server.hook_url("hooked").await;
    let started = Utc::now();
    let start = Instant::now();
    let accepted = post_load(&hook, n, c, 202).await;
    let seen = server.runs_ended(n as i64, Duration::from_secs(600)).await;
    let last_end = server
        .scalar("SELECT MAX(ended_at) FROM runs WHERE ended_at IS NOT NULL")
        .await;
    let succeeded = server
        .scalar("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'")
        .await;
    assert_eq!(succeeded, n as i64, "every run succeeds");
    // The last end as stored, against the first request; the poll only confirms it.
    let stored = (last_end - started.timestamp_micros()) as f64 / 1e6;
    let polled = (seen - start).as_secs_f64();
    let gantry_per_s = n as f64 / stored;
    let baseline_per_s = n as f64 / baseline.as_secs_f64();
    println!("webhook -> run ended, {n} runs of one `true` process step from {c} clients");
    println!(
        "  spawning `sh -c true` {:>9.0}/s ({:.2} s)",
        baseline_per_s,
        baseline.as_secs_f64()
    );
    println!(
        "  gantry                {gantry_per_s:>9.0}/s ({stored:.2} s to the last stored end, \
         seen at {polled:.2} s; the {n} events were acknowledged in {:.2} s)",
        accepted.elapsed.as_secs_f64()
    );
    println!(
        "{{\"bench\":\"webhook_run_ended\",\"concurrency\":{c},\"runs\":{n},\
         \"spawn_per_s\":{baseline_per_s:.0},\"gantry_per_s\":{gantry_per_s:.0},\
         \"ratio\":{:.3},\"gantry_s\":{stored:.3},\"spawn_s\":{:.3},\"target_per_s\":1000}}",
        gantry_per_s / baseline_per_s,
        baseline.as_secs_f64()
    );
    server.stop().await;
}

/// The first whole minute at least `margin` from now.
fn next_minute(margin: chrono::Duration) -> DateTime<Utc> {
    let t = Utc::now() + margin;
    let floor = t
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("a whole minute");
    floor + chrono::Duration::minutes(1)
}

async fn schedules(dir: &Path) {
    let k = env_usize("GANTRY_BENCH_SCHEDULES", 1000);
    // Baseline: k timers to one instant, their wake-up lateness.
    let at = tokio::time::Instant::now() + Duration::from_secs(2);
    let timers: Vec<_> = (0..k)
        .map(|_| {
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                at.elapsed()
            })
        })
        .collect();
    let mut woke = Vec::with_capacity(k);
    for t in timers {
        woke.push(t.await.expect("timer"));
    }
    woke.sort();

    let (server, fires) = Running::start(&dir.join("schedules"), true).await;
    let mut fires = fires.expect("an observer");
    let setup = Instant::now();
    let server = Arc::new(server);
    let next = Arc::new(AtomicUsize::new(0));
    let appliers: Vec<_> = (0..8)
        .map(|_| {
            let (server, next) = (server.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= k {
                        return;
                    }
                    let yaml =
                        "apiVersion: v1\ntriggers:\n- name: tick\n  source: {type: schedule, \
                                schedule: '* * * * *'}\nsteps:\n- name: ok\n  image: none\n  \
                                input: ['true']\n";
                    server.apply(&format!("tick-{i:04}"), yaml).await;
                }
            })
        })
        .collect();
    for a in appliers {
        a.await.expect("apply task");
    }
    // The scheduler has loaded every schedule once each has its record.
    while server.scalar("SELECT COUNT(*) FROM triggers").await < k as i64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let target = next_minute(chrono::Duration::seconds(5));
    println!(
        "schedules: {k} workflows applied and loaded in {:.1} s; waiting for {target}",
        setup.elapsed().as_secs_f64()
    );
    let deadline = tokio::time::Instant::now()
        + (target - Utc::now()).to_std().unwrap_or_default()
        + Duration::from_secs(60);
    let mut lateness = Vec::with_capacity(k);
    let mut created: HashMap<String, usize> = HashMap::new();
    let (mut repeats, mut earlier) = (0usize, 0usize);
    while lateness.len() < k {
        let Ok(Some(fire)) = tokio::time::timeout_at(deadline, fires.recv()).await else {
            break;
        };
        if fire.at != target {
            earlier += 1;
            continue;
        }
        if !fire.created {
            repeats += 1;
            continue;
        }
        *created.entry(fire.workflow.clone()).or_default() += 1;
        lateness.push((fire.accepted_at - fire.at).to_std().unwrap_or_default());
    }
    lateness.sort();
    let duplicates: usize = created.values().map(|n| n - 1).sum::<usize>()
        + server
            .scalar(&format!(
                "SELECT COUNT(*) - COUNT(DISTINCT workflow) FROM events WHERE dedup_key = 'schedule:{}'",
                target.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))
            .await as usize;
    let missed = k - created.len();
    let max_ms = |v: &[Duration]| v.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    println!("schedules: {k} on `* * * * *`, fired at {target}");
    println!(
        "  sleep_until timers      p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        quantile_ms(&woke, 0.5),
        quantile_ms(&woke, 0.99),
        max_ms(&woke)
    );
    println!(
        "  gantry (accepted)       p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  \
         duplicates {duplicates}, missed {missed}, refused repeats {repeats}, earlier fires {earlier}",
        quantile_ms(&lateness, 0.5),
        quantile_ms(&lateness, 0.99),
        max_ms(&lateness)
    );
    println!(
        "{{\"bench\":\"schedule_lateness\",\"schedules\":{k},\
         \"timer_p50_ms\":{:.3},\"timer_p99_ms\":{:.3},\"timer_max_ms\":{:.3},\
         \"gantry_p50_ms\":{:.3},\"gantry_p99_ms\":{:.3},\"gantry_max_ms\":{:.3},\
         \"duplicates\":{duplicates},\"missed\":{missed},\"target_p99_ms\":100}}",
        quantile_ms(&woke, 0.5),
        quantile_ms(&woke, 0.99),
        max_ms(&woke),
        quantile_ms(&lateness, 0.5),
        quantile_ms(&lateness, 0.99),
        max_ms(&lateness)
    );
    // Let the fires' runs end before the server stops.
    server
        .runs_ended(created.len() as i64, Duration::from_secs(120))
        .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}

fn main() {
    let which = std::env::var("GANTRY_BENCH").unwrap_or_default();
    let picked = |name: &str| which.is_empty() || which.split(',').any(|w| w.trim() == name);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir: PathBuf = tmp.path().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if picked("events") {
            events(&dir).await;
        }
        if picked("runs") {
            runs(&dir).await;
        }
        if picked("schedules") {
            schedules(&dir).await;
        }
    });
    drop(runtime);
    drop(tmp);
}
