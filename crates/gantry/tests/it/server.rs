//! `gantry server` over a real socket: it starts on an empty data directory, answers health and
//! readiness, creates a private master key and an admin API key, serves the workflows API to the
//! CLI, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, &format!("GET {path}"), "", "")
}

/// One HTTP/1.1 exchange: `line` is the method and path, `headers` whole header lines (each
/// ending in CRLF); returns the status and the body.
pub(crate) fn request(addr: &str, line: &str, headers: &str, body: &str) -> (u16, String) {
    let response = exchange(addr, line, headers, body);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The same exchange; the whole answer, headers and body.
pub(crate) fn exchange(addr: &str, line: &str, headers: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "{line} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn server_starts_on_an_empty_data_dir_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Running {
        mut child,
        addr,
        key,
    } = start_server(&data, "process", true);
    let key = key.expect("a first start prints an admin key");
    assert_eq!(get(&addr, "/healthz"), (200, r#"{"status":"ok"}"#.into()));
    assert_eq!(get(&addr, "/readyz").0, 200);
    let (status, body) = get(&addr, "/no/such/route");
    assert_eq!(status, 404);
    assert!(body.contains(r#""code":"not_found""#), "{body}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    cli_round_trip(&addr, &key, dir.path());
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("shutting down"), "{logs}");
}

#[test]
fn a_world_readable_master_key_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, format!("k1 {}\n", "ab".repeat(32))).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove(gantry_master_key_env())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains("abab"), "the key leaked: {err}");
}

fn gantry_master_key_env() -> &'static str {
    "GANTRY_MASTER_KEY"
}

pub(crate) fn gantry(args: &[&str], server: &str, key: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .env("GANTRY_SERVER", format!("http://{server}"))
        .env("GANTRY_API_KEY", key)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The CLI against the running server: apply twice, list, get, a broken file, a wrong key.
fn cli_round_trip(server: &str, key: &str, dir: &std::path::Path) {
    let file = dir.join("hello.yaml");
    std::fs::write(
        &file,
        "steps:\n- name: greet\n  image: alpine\n  input: [echo hi]\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (code, out, err) = gantry(&["workflow", "apply", file], server, key);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "workflow hello is at version 1\n");
    let (_, out, _) = gantry(&["workflow", "apply", file, "--name", "hello"], server, key);
    assert_eq!(out, "workflow hello is at version 2\n");
    let (code, out, _) = gantry(&["workflow", "list", "--format", "json"], server, key);
    assert_eq!(code, Some(0));
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["name"], "hello");
    assert_eq!(list[0]["version"], 2);
    let (_, out, _) = gantry(&["workflow", "get", "hello"], server, key);
    assert!(out.contains("name: greet"), "{out}");
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "steps:\n- name: a\n  image: x\n  dependsOn: b\n").unwrap();
    let (code, _, err) = gantry(
        &["workflow", "apply", broken.to_str().unwrap()],
        server,
        key,
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("broken.yaml:4:14: no step named `b` [unknown_step]"),
        "{err}"
    );
    assert!(err.contains("[invalid_workflow]"), "{err}");
    let (code, _, err) = gantry(&["workflow", "list"], server, "gantry_00000000_0000");
    assert_eq!(code, Some(1));
    assert!(err.contains("[unauthorized]"), "{err}");

    // A run on the server, with a secret, followed to its end.
    let greet = dir.join("greet.yaml");
    std::fs::write(
        &greet,
        "parameters:\n  who: {default: world}\nsteps:\n- name: greet\n  image: none\n  env:\n    WHO: ${parameters.who}\n    TOKEN: ${secrets.token}\n  input: ['echo \"hello $WHO, token $TOKEN\"']\n",
    )
    .unwrap();
    let (code, _, err) = gantry(&["workflow", "apply", greet.to_str().unwrap()], server, key);
    assert_eq!(code, Some(0), "{err}");
    let mut set = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["secret", "set", "token", "--workflow", "greet"])
        .env("GANTRY_SERVER", format!("http://{server}"))
        .env("GANTRY_API_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    set.stdin
        .take()
        .unwrap()
        .write_all(b"tok-sekret-42\n")
        .unwrap();
    assert!(set.wait().unwrap().success());
    let (_, out, _) = gantry(&["secret", "list", "--workflow", "greet"], server, key);
    assert_eq!(out, "token\n");
    let (code, out, err) = gantry(
        &["run", "start", "greet", "--param", "who=Gantry", "--follow"],
        server,
        key,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("greet │ hello Gantry, token ***"), "{out}");
    assert!(out.contains("run succeeded"), "{out}");
    assert!(!out.contains("tok-sekret"), "{out}");
    let (_, out, _) = gantry(&["run", "list", "--format", "json"], server, key);
    let runs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(runs["items"][0]["status"], "succeeded");
    let id = runs["items"][0]["id"].as_str().unwrap();
    let (_, out, _) = gantry(&["run", "logs", id], server, key);
    assert_eq!(out, "greet │ hello Gantry, token ***\n");
}

pub(crate) struct Running {
    pub(crate) child: std::process::Child,
    pub(crate) addr: String,
    pub(crate) key: Option<String>,
}

/// Starts `gantry server` on `data` and reads its address (and, on a first start, the admin key
/// it prints then).
pub(crate) fn start_server(data: &std::path::Path, runtime: &str, first_start: bool) -> Running {
    start_server_on(data, runtime, first_start, "127.0.0.1:0")
}

/// [`start_server`] listening on `listen` (a restart on the address of an earlier start).
pub(crate) fn start_server_on(
    data: &std::path::Path,
    runtime: &str,
    first_start: bool,
    listen: &str,
) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "server",
            "--listen",
            listen,
            "--runtime",
            runtime,
            "--data-dir",
        ])
        .arg(data)
        .env_remove(gantry_master_key_env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first}"))
        .to_owned();
    // Only a first start prints a key; later starts print nothing more, so do not block.
    let key = if first_start {
        let mut second = String::new();
        let _ = out.read_line(&mut second);
        second
            .rsplit(' ')
            .next()
            .map(str::trim)
            .filter(|k| k.starts_with("gantry_"))
            .map(str::to_owned)
    } else {
        None
    };
    std::mem::forget(out);
    Running { child, addr, key }
}

#[test]
fn kill_9_while_a_container_runs_then_restart_resolves_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = start_server(&data, "docker", true);
    let key = first
        .key
        .clone()
        .expect("a first start prints an admin key");
    let wf = dir.path().join("long.yaml");
    std::fs::write(
        &wf,
        "steps:\n- name: long\n  image: gantry-test/busybox:latest\n  input: [\"sleep 60\"]\n",
    )
    .unwrap();
    let (code, _, err) = gantry(
        &["workflow", "apply", wf.to_str().unwrap()],
        &first.addr,
        &key,
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = gantry(&["run", "start", "long"], &first.addr, &key);
    assert_eq!(code, Some(0), "{err}");
    let id = out
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while crate::run::docker_containers(&id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the step's container never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    assert!(
        !crate::run::docker_containers(&id).is_empty(),
        "the container outlives the server"
    );

    let mut second = start_server(&data, "docker", false);
    let (code, out, err) = gantry(&["run", "get", &id, "--format", "json"], &second.addr, &key);
    assert_eq!(code, Some(0), "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["reason"]
        .as_str()
        .unwrap()
        .contains("server stopped while this run was in progress"));
    assert_eq!(run["steps"][0]["status"], "failed", "{run}");
    assert_eq!(
        crate::run::docker_containers(&id),
        "",
        "the restart removes what the run left"
    );
    second.child.kill().unwrap();
    second.child.wait().unwrap();

    // The step's job was claimed by the first server's worker, which died holding it: the
    // restart completed it as abandoned, so no worker picks it up when the lease runs out.
    let jobs = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use gantry_store::Store as _;
            let store =
                gantry_store::SqliteStore::open(data.join(gantry_server::server::DATABASE_FILE))
                    .await
                    .expect("the data dir's database");
            store.run_jobs(&id).await.expect("the run's jobs")
        });
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].step, "long");
    assert!(
        jobs[0].attempts >= 1 && jobs[0].completed_at.is_some(),
        "{jobs:?}"
    );
    let result = jobs[0].result.as_ref().expect("a result");
    assert!(
        result["abandoned"]
            .as_str()
            .is_some_and(|r| r.contains("server stopped")),
        "{result}"
    );
}
