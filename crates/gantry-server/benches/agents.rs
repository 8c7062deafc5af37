//! Agents draining the job queue through the agent API over loopback, on SQLite and on
//! PostgreSQL.
//!
//! 1. 10,000 no-op steps of pool `edge`, submitted at once, drained by 1, 2 and 8 agents
//!    (`gantry_agent::run`, 64 slots each, a runtime that ends every step at once): jobs/s from
//!    the first submit to the last outcome back at its driver. Baseline, in the same run and
//!    database: the same 10,000 steps through the server's own pool (its dispatcher, no HTTP).
//!    Target: at least 2,000 jobs/s.
//! 2. Enqueue → start with one agent waiting: from a step's submit to the agent's runtime
//!    starting it, one step at a time. Target: p50 under 5 ms, p99 under 20 ms.
//! 3. Eight idle agents for `GANTRY_BENCH_IDLE_SECONDS` (default 60): requests per second to the
//!    server. Target: at most one per agent per long-poll wait (30 s).
//!
//! `cargo bench -p gantry-server --bench agents`; `GANTRY_BENCH_JOBS` (default 10,000),
//! `GANTRY_BENCH_BACKENDS` (default `sqlite,postgres`; PostgreSQL needs
//! `GANTRY_TEST_POSTGRES_URL`). Prints readable lines and one JSON line per backend.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{audit, env_usize};

use gantry_engine::runtime::{BoxFuture, LogLine, Program, StepJob, StepOutcome, StepRuntime};
use gantry_server::agents::AgentHub;
use gantry_server::api::router;
use gantry_server::queue::{QueueSetup, QueuedRuntime};
use gantry_server::server::issue_api_key;
use gantry_store::{NewRun, PostgresOptions, PostgresStore, RunOrigin, SqliteStore, Store};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const RUNS: usize = 100;

/// Ends every step at once; tells `started` when each began.
struct NoOp {
    started: Option<mpsc::UnboundedSender<Instant>>,
}

impl StepRuntime for NoOp {
    fn name(&self) -> &'static str {
        "no-op"
    }

    fn run(
        &self,
        _: StepJob,
        _: mpsc::Sender<LogLine>,
        _: CancellationToken,
    ) -> BoxFuture<'_, StepOutcome> {
        if let Some(s) = &self.started {
            let _ = s.send(Instant::now());
        }
        Box::pin(async { StepOutcome::Exited(0) })
    }

    fn clean_up<'a>(&'a self, _: Option<&'a str>) -> BoxFuture<'a, Result<usize, String>> {
        Box::pin(async { Ok(0) })
    }
}

fn step(i: usize, pool: Option<&str>, dir: &std::path::Path) -> StepJob {
    StepJob {
        run_id: format!("r{}", i % RUNS),
        step: format!("s{i}"),
        image: Some("busybox".into()),
        program: Program::Script("true".into()),
        env: Default::default(),
        step_dir: dir.to_path_buf(),
        metadata: None,
        pool: pool.map(str::to_owned),
    }
}

/// Submits `n` steps at once and waits for every outcome; the time it took.
async fn drain(
    queue: &QueuedRuntime,
    n: usize,
    pool: Option<&str>,
    dir: &std::path::Path,
) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (queue, job) = (queue.clone(), step(i, pool, dir));
            tokio::spawn(async move {
                let (tx, _rx) = mpsc::channel(4);
                queue.run(job, tx, CancellationToken::new()).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("step"), StepOutcome::Exited(0));
    }
    started.elapsed()
}

/// Counts the requests the server answers.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

struct Agents {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn start_agents(
    n: usize,
    server: &str,
    token: &str,
    dir: &std::path::Path,
    started: Option<&mpsc::UnboundedSender<Instant>>,
    wait: Duration,
) -> Agents {
    let stop = CancellationToken::new();
    let tasks = (0..n)
        .map(|i| {
            let agent = gantry_agent::Agent {
                server: server.to_owned(),
                token: token.to_owned(),
                me: gantry_agent::protocol::AgentRef {
                    id: format!("bench-{i}"),
                    version: "bench".into(),
                    hostname: "localhost".into(),
                    pool: Some("edge".into()),
                },
                runtime: Arc::new(NoOp {
                    started: started.cloned(),
                }),
                work_dir: dir.join(format!("agent-{i}")),
                max_jobs: 64,
                wait,
                metadata_bridge: None,
            };
            let stop = stop.clone();
            tokio::spawn(async move {
                gantry_agent::run(agent, stop).await.expect("agent");
            })
        })
        .collect();
    Agents { stop, tasks }
}

impl Agents {
    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn bench(name: &str, store: Arc<dyn Store>, dir: &std::path::Path, jobs: usize, idle: u64) {
    for i in 0..RUNS {
        store
            .create_run(&NewRun {
                id: format!("r{i}"),
                workflow: "wf".into(),
                workflow_version: 1,
                parameters: json!({}),
                origin: RunOrigin::Manual,
                created_at: chrono::Utc::now(),
                audit: audit(),
            })
            .await
            .expect("run");
    }
    let vault = Arc::new(gantry_server::vault::Vault::load(dir, None).expect("vault"));
    let writes = gantry_store::BatchWriter::start(store.clone(), Default::default());
    let queue = QueuedRuntime::start(
        QueueSetup {
            store: store.clone(),
            writes,
            vault,
            runtime: Arc::new(NoOp { started: None }),
            // No step here prints, so no line needs masking.
            masks: Arc::new(gantry_server::runs::Registry::default()),
            pool: "server-bench".into(),
            worker: gantry_server::queue::worker_name("server-bench"),
            max_parallel_steps: 64,
        },
        &tokio::runtime::Handle::current(),
    );
    let mut state = support::state(store.clone(), dir).await;
    state.agents = Some(AgentHub::start(queue.clone()));
    let counter = Counter::default();
    let counted = counter.clone();
    let app = router(state).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let counted = counted.clone();
            async move {
                counted.0.fetch_add(1, Ordering::Relaxed);
                next.run(req).await
            }
        },
    ));
    let base = support::serve(app).await;
    let server = base.trim_end_matches("/api/v1").to_owned();
    let token = issue_api_key(store.as_ref(), "agent:edge", &audit())
        .await
        .expect("agent token");
    let steps = dir.join("steps");
    std::fs::create_dir_all(&steps).expect("steps dir");

    // 1. Draining.
    let baseline = drain(&queue, jobs, None, &steps).await;
    let mut rates = Vec::new();
    for n in [1, 2, 8] {
        let agents = start_agents(n, &server, &token, dir, None, Duration::from_secs(5));
        let took = drain(&queue, jobs, Some("edge"), &steps).await;
        agents.stop().await;
        rates.push((n, jobs as f64 / took.as_secs_f64()));
    }
    let base_rate = jobs as f64 / baseline.as_secs_f64();

    // 2. Enqueue → start, one agent waiting.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let agents = start_agents(1, &server, &token, dir, Some(&tx), Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    for i in 0..300 {
        let submitted = Instant::now();
        let outcome = queue
            .run(
                step(i, Some("edge"), &steps),
                mpsc::channel(4).0,
                CancellationToken::new(),
            )
            .await;
        assert_eq!(outcome, StepOutcome::Exited(0));
        let began = rx.recv().await.expect("a start");
        latencies.push(began - submitted);
    }
    agents.stop().await;
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };

    // 3. Idle agents.
    let agents = start_agents(8, &server, &token, dir, None, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = counter.0.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let requests = counter.0.load(Ordering::Relaxed) - before;
    agents.stop().await;
    let idle_rps = requests as f64 / idle as f64;

    println!(
        "{name}: {jobs} no-op jobs through the server's own pool (baseline): {base_rate:.0} jobs/s"
    );
    for (n, rate) in &rates {
        println!(
            "{name}: {jobs} no-op jobs drained by {n} agent(s): {rate:.0} jobs/s ({:.2}x the \
             baseline); target >= 2000",
            rate / base_rate
        );
    }
    println!(
        "{name}: enqueue -> start with one agent waiting: p50 {:.2} ms p99 {:.2} ms (targets 5, 20)",
        pct(0.5),
        pct(0.99)
    );
    println!(
        "{name}: 8 idle agents for {idle} s: {requests} requests, {idle_rps:.2}/s (target at most \
         {:.2}/s: one per agent per 30 s wait)",
        8.0 / 30.0
    );
    println!(
        "{}",
        json!({
            "bench": "agents", "backend": name, "jobs": jobs,
            "baseline_jobs_per_s": base_rate,
            "agents_jobs_per_s": rates.iter().map(|(n, r)| json!({"agents": n, "jobs_per_s": r})).collect::<Vec<_>>(),
            "start_p50_ms": pct(0.5), "start_p99_ms": pct(0.99),
            "idle_requests_per_s": idle_rps,
        })
    );
}

fn main() {
    let jobs = env_usize("GANTRY_BENCH_JOBS", 10_000);
    let idle = env_usize("GANTRY_BENCH_IDLE_SECONDS", 60) as u64;
    let backends =
        std::env::var("GANTRY_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for name in backends.split(',').map(str::trim) {
            let dir = tempfile::tempdir().expect("temp dir");
            let store: Arc<dyn Store> = match name {
                "sqlite" => Arc::new(
                    SqliteStore::open(dir.path().join("gantry.db"))
                        .await
                        .expect("sqlite"),
                ),
                "postgres" => {
                    let Ok(url) = std::env::var("GANTRY_TEST_POSTGRES_URL") else {
                        println!("postgres: skipped (set GANTRY_TEST_POSTGRES_URL)");
                        continue;
                    };
                    let mut options = PostgresOptions::new(url);
                    options.schema = Some(format!("bench_{}", gantry_store::new_id().expect("id")));
                    Arc::new(
                        PostgresStore::connect_with(&options)
                            .await
                            .expect("postgres"),
                    )
                }
                other => panic!("unknown backend {other}"),
            };
            bench(name, store, dir.path(), jobs, idle).await;
        }
    });
}
