//! Services (webhook trigger containers) on both runtimes: started from a script, reached at
//! their address once their port accepts connections, noticed when they exit, stopped, and (in
//! Docker) cleaned up by owner after a crash. Each case runs as `services::process::<case>` and
//! `services::docker::<case>`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::ListContainersOptions;
use gantry_engine::runtime::{LogLine, MetadataEndpoint, Program};
use gantry_runtime::{
    DockerRuntime, ProcessRuntime, Service, ServiceError, ServiceJob, ServiceRuntime,
};
use tokio::sync::mpsc;

use crate::support::{next_line, Backend, TEST_IMAGE};

/// How long a case waits for a service's port.
const READY: Duration = Duration::from_secs(30);

struct Harness {
    backend: Backend,
    runtime: Arc<dyn ServiceRuntime>,
    /// Unique per case: the owner label, so cases do not see each other's containers.
    owner: String,
    dir: tempfile::TempDir,
    docker: Option<bollard::Docker>,
}

impl Harness {
    async fn new(backend: Backend, case: &str) -> Harness {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let owner = format!(
            "it-{case}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("gantry-service-it-")
            .tempdir()
            .expect("temporary folder");
        let (runtime, docker): (Arc<dyn ServiceRuntime>, _) = match backend {
            Backend::Process => (Arc::new(ProcessRuntime::new()), None),
            Backend::Docker => {
                let runtime = DockerRuntime::connect()
                    .await
                    .unwrap_or_else(|err| panic!("{err}: start dockerd; .ci/run does"));
                let docker = bollard::Docker::connect_with_local_defaults()
                    .expect("docker socket")
                    .negotiate_version()
                    .await
                    .expect("docker version");
                (Arc::new(runtime), Some(docker))
            }
        };
        Harness {
            backend,
            runtime,
            owner,
            dir,
            docker,
        }
    }

    fn job(&self, script: &str) -> ServiceJob {
        ServiceJob {
            workflow: "wf".into(),
            trigger: "hook".into(),
            owner: self.owner.clone(),
            image: Some(TEST_IMAGE.into()),
            program: Program::Script(script.into()),
            env: BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]),
            dir: self.dir.path().join("service"),
            metadata: Some(MetadataEndpoint {
                port: 7001,
                token: "tok".into(),
            }),
        }
    }

    async fn start(&self, script: &str) -> (Service, mpsc::Receiver<LogLine>) {
        let (tx, rx) = mpsc::channel(64);
        let service = self
            .runtime
            .start_service(self.job(script), tx)
            .await
            .expect("started");
        (service, rx)
    }

    /// This case's service containers, by owner label (0 for the process backend).
    async fn containers(&self) -> usize {
        let Some(docker) = &self.docker else { return 0 };
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("gantry.owner={}", self.owner)],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        docker
            .list_containers(Some(options))
            .await
            .expect("containers listed")
            .len()
    }
}

/// A one-page web server: `www/index.html` is written by `page`, a shell command.
fn web_server(page: &str) -> String {
    format!(
        "mkdir -p www\n{page} > www/index.html\necho \"listening on $PORT\"\n\
         exec busybox httpd -f -p \"$PORT\" -h www"
    )
}

async fn get(service: &Service, path: &str) -> String {
    let url = format!("http://{}{path}", service.address());
    let response = reqwest::get(url).await.expect("an answer");
    assert_eq!(response.status(), 200);
    response.text().await.expect("a body")
}

async fn serves_on_its_port_with_its_environment(h: Harness) {
    let (service, mut logs) = h
        .start(&web_server("echo \"$GREETING $METADATA_API_URL\""))
        .await;
    service.wait_ready(READY).await.expect("ready");
    let line = next_line(&mut logs, READY).await;
    assert_eq!(line.step, "hook");
    let (port, host) = match h.backend {
        Backend::Process => (service.address().port(), "127.0.0.1"),
        Backend::Docker => (8080, "host.docker.internal"),
    };
    assert_eq!(line.line, format!("listening on {port}"));
    assert_eq!(
        get(&service, "/index.html").await.trim(),
        format!("hello http://:tok@{host}:7001")
    );
    assert!(!service.has_exited());
    service.stop().await;
    assert_eq!(h.containers().await, 0, "the container was left behind");
}

async fn a_service_that_exits_is_noticed(h: Harness) {
    let (tx, _logs) = mpsc::channel(64);
    // It may be gone before its start is even reported, or just after.
    match h.runtime.start_service(h.job("echo bye\nexit 3"), tx).await {
        Err(error) => assert_eq!(error, ServiceError::Exited),
        Ok(service) => {
            assert_eq!(service.wait_ready(READY).await, Err(ServiceError::Exited));
            assert!(service.has_exited());
            service.stop().await;
        }
    }
    assert_eq!(h.containers().await, 0);
}

async fn a_port_that_never_opens_is_not_ready(h: Harness) {
    let (service, _logs) = h.start("exec sleep 60").await;
    let limit = Duration::from_secs(1);
    assert_eq!(
        service.wait_ready(limit).await,
        Err(ServiceError::NotReady(limit))
    );
    assert!(!service.has_exited());
    service.stop().await;
    assert_eq!(h.containers().await, 0);
}

async fn stop_ends_the_service_and_what_it_started(h: Harness) {
    // The server runs in a child shell, so stopping must reach beyond the main process.
    let script = format!("({}) &\nwait", web_server("echo up"));
    let (service, _logs) = h.start(&script).await;
    service.wait_ready(READY).await.expect("ready");
    let address = service.address();
    service.stop().await;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_err() {
            assert_eq!(h.containers().await, 0);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{address} still accepts connections 10 s after the stop");
}

async fn a_dropped_handle_stops_the_service(h: Harness) {
    let (service, _logs) = h.start(&web_server("echo up")).await;
    service.wait_ready(READY).await.expect("ready");
    let address = service.address();
    drop(service);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_err() && h.containers().await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{address} still serves 10 s after its handle was dropped");
}

macro_rules! services {
    ($($case:ident),* $(,)?) => {
        mod process {
            use crate::support::Backend;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Harness::new(Backend::Process, stringify!($case)).await)
                        .await;
                }
            )*
        }
        mod docker {
            use crate::support::Backend;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Harness::new(Backend::Docker, stringify!($case)).await)
                        .await;
                }
            )*
        }
    };
}

services! {
    serves_on_its_port_with_its_environment,
    a_service_that_exits_is_noticed,
    a_port_that_never_opens_is_not_ready,
    stop_ends_the_service_and_what_it_started,
    a_dropped_handle_stops_the_service,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_clean_up_removes_only_its_owners_leftovers() {
    let mine = Harness::new(Backend::Docker, "clean_up_mine").await;
    let theirs = Harness::new(Backend::Docker, "clean_up_theirs").await;
    let (a, _) = mine.start("exec sleep 60").await;
    let (b, _) = theirs.start("exec sleep 60").await;
    // A crash: the handles are forgotten, so nothing stops the containers.
    std::mem::forget(a);
    std::mem::forget(b);
    assert_eq!((mine.containers().await, theirs.containers().await), (1, 1));
    let docker = mine.docker.as_ref().expect("docker");
    let labels = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_owned(),
                vec![format!("gantry.owner={}", mine.owner)],
            )])),
            ..Default::default()
        }))
        .await
        .expect("listed")
        .into_iter()
        .next()
        .and_then(|c| c.labels)
        .expect("labels");
    assert_eq!(
        labels.get("gantry.managed").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        labels.get("gantry.workflow").map(String::as_str),
        Some("wf")
    );
    assert_eq!(
        labels.get("gantry.trigger").map(String::as_str),
        Some("hook")
    );
    assert!(!labels.contains_key("gantry.run"), "{labels:?}");

    assert_eq!(mine.runtime.clean_up_services(&mine.owner).await, Ok(1));
    assert_eq!(mine.containers().await, 0);
    assert_eq!(theirs.containers().await, 1, "another owner's was removed");
    assert_eq!(theirs.runtime.clean_up_services(&theirs.owner).await, Ok(1));
    assert_eq!(mine.runtime.clean_up_services(&mine.owner).await, Ok(0));
}

#[tokio::test]
async fn docker_needs_an_image() {
    let h = Harness::new(Backend::Docker, "no_image").await;
    let mut job = h.job("exit 0");
    job.image = None;
    let (tx, _rx) = mpsc::channel(1);
    let error = h.runtime.start_service(job, tx).await.expect_err("refused");
    assert_eq!(
        error,
        ServiceError::Start("the docker runtime needs an `image`".into())
    );
}
