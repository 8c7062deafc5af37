//! `gantry agent` against a real server over real sockets: steps that name a pool run on an
//! agent of that pool (their lines, outputs and exit come back), steps that name none run on
//! the server, an agent killed mid-step hands its job to another once its lease lapses, and a
//! server killed mid-step takes the agent's job back when it starts again. Agent steps reach
//! the metadata API at their agent, which the server answers as the step.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::{gantry, request, start_server, start_server_on};

/// `gantry agent` for `pool` with `token`, on the process runtime.
fn start_agent(addr: &str, token: &str, id: &str) -> Child {
    start_agent_on(addr, token, id, "process")
}

/// `gantry agent` for `pool` with `token`, on `runtime`.
fn start_agent_on(addr: &str, token: &str, id: &str, runtime: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "agent",
            "--server",
            &format!("http://{addr}"),
            "--token",
            token,
            "--runtime",
            runtime,
            "--wait",
            "5",
            "--id",
            id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn agent_token(addr: &str, admin: &str, pool: &str) -> String {
    let (code, out, err) = gantry(&["agent", "token", "create", "--pool", pool], addr, admin);
    assert_eq!(code, Some(0), "{out}{err}");
    out.trim().to_owned()
}

fn run_json(addr: &str, key: &str, id: &str) -> serde_json::Value {
    let (_, out, _) = gantry(&["run", "get", id, "--format", "json"], addr, key);
    serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}"))
}

/// Waits for run `id` to end; its record.
fn wait_run(addr: &str, key: &str, id: &str, limit: Duration) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let run = run_json(addr, key, id);
        let status = run["status"].as_str().unwrap_or_default().to_owned();
        if !matches!(status.as_str(), "queued" | "running" | "") {
            return run;
        }
        assert!(started.elapsed() < limit, "the run did not end: {run}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_run(addr: &str, key: &str, file: &std::path::Path, name: &str) -> String {
    let (code, out, err) = gantry(&["workflow", "apply", file.to_str().unwrap()], addr, key);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = gantry(&["run", "start", name], addr, key);
    assert_eq!(code, Some(0), "{out}{err}");
    // "run ID of NAME started"
    out.split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn steps_of_a_pool_run_on_its_agent_and_the_rest_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("data"), "process", true);
    let (addr, admin) = (server.addr.clone(), server.key.clone().expect("admin key"));
    let token = agent_token(&addr, &admin, "edge");
    let mut agent = start_agent(&addr, &token, "edge-1");

    let file = dir.path().join("mixed.yaml");
    std::fs::write(
        &file,
        "steps:\n\
         - name: here\n  image: alpine\n  input: ['echo on the server $GANTRY_STEP']\n\
         - name: there\n  image: alpine\n  agent: edge\n  dependsOn: [here]\n  input:\n\
         \x20 - 'for i in $(seq 1 300); do echo line $i; done'\n\
         \x20 - 'echo to stderr >&2'\n\
         \x20 - 'printf from-the-agent > \"$GANTRY_STEP_DIR/outputs/greeting\"'\n",
    )
    .unwrap();
    let id = start_run(&addr, &admin, &file, "mixed");
    let run = wait_run(&addr, &admin, &id, Duration::from_secs(60));
    assert_eq!(run["status"], "succeeded", "{run}");
    let outputs = run["outputs"].to_string();
    assert!(
        outputs.contains("greeting") && outputs.contains("from-the-agent"),
        "{outputs}"
    );

    let (_, logs, _) = gantry(&["run", "logs", &id], &addr, &admin);
    assert!(logs.contains("here │ on the server here"), "{logs}");
    // Every line of the agent's step once, in order.
    let lines: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("there │ line "))
        .collect();
    let expected: Vec<String> = (1..=300).map(|i| i.to_string()).collect();
    assert_eq!(lines, expected, "{logs}");
    assert!(logs.contains("there │ to stderr"), "{logs}");

    // The server lists the agent with its pool.
    let (status, body) = request(
        &addr,
        "GET /api/v1/agents",
        &format!("Authorization: Bearer {admin}\r\n"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"pool\":\"edge\"") && body.contains("edge-1"),
        "{body}"
    );
    let (code, out, err) = gantry(&["agent", "list", "--format", "json"], &addr, &admin);
    assert_eq!(code, Some(0), "{out}{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["items"][0]["pool"], "edge", "{out}");
    assert_eq!(listed["items"][0]["id"], "edge-1", "{out}");
    let (code, out, _) = gantry(&["agent", "list"], &addr, &admin);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("POOL") && out.contains("edge-1"), "{out}");
    agent.kill().unwrap();
    let _ = agent.wait();
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

#[test]
fn a_job_whose_agent_dies_runs_again_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("data"), "process", true);
    let (addr, admin) = (server.addr.clone(), server.key.clone().expect("admin key"));
    let token = agent_token(&addr, &admin, "edge");
    let mut first = start_agent(&addr, &token, "edge-1");

    let file = dir.path().join("slow.yaml");
    let marker = dir.path().join("started");
    std::fs::write(
        &file,
        format!(
            "steps:\n- name: slow\n  image: alpine\n  agent: edge\n  input:\n\
             \x20 - 'echo attempt >> {marker}'\n\
             \x20 - 'sleep 4'\n\
             \x20 - 'echo done'\n",
            marker = marker.display()
        ),
    )
    .unwrap();
    let id = start_run(&addr, &admin, &file, "slow");
    // The first agent starts the step, then dies.
    let started = Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    first.kill().unwrap();
    let _ = first.wait();
    let mut second = start_agent(&addr, &token, "edge-2");
    let run = wait_run(&addr, &admin, &id, Duration::from_secs(90));
    assert_eq!(run["status"], "succeeded", "{run}");
    let attempts = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(attempts.lines().count(), 2, "{attempts}");
    second.kill().unwrap();
    let _ = second.wait();
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// The server is killed with SIGKILL (not SIGTERM) while an agent runs a step: nothing gets
/// written at exit, so the run's record is what was committed before the kill, and the agent's
/// lines acknowledged before it must already be stored. Ten seconds later a server starts on
/// the same data directory and address; the agent, which kept the step running and its
/// unacknowledged lines in hand, carries on with it, and the run succeeds with every line once.
#[test]
fn a_server_killed_mid_step_takes_the_agents_job_back_when_it_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start_server(&data, "process", true);
    let (addr, admin) = (server.addr.clone(), server.key.clone().expect("admin key"));
    let token = agent_token(&addr, &admin, "edge");
    let mut agent = start_agent(&addr, &token, "edge-1");

    let file = dir.path().join("count.yaml");
    let marker = dir.path().join("attempts");
    std::fs::write(
        &file,
        format!(
            "steps:\n- name: count\n  image: alpine\n  agent: edge\n  input:\n\
             \x20 - 'echo attempt >> {marker}'\n\
             \x20 - 'i=1; while [ $i -le 300 ]; do echo line $i; i=$((i+1)); sleep 0.05; done'\n\
             \x20 - 'printf counted > \"$GANTRY_STEP_DIR/outputs/result\"'\n",
            marker = marker.display()
        ),
    )
    .unwrap();
    let id = start_run(&addr, &admin, &file, "count");
    // Some lines are in before the kill.
    let started = Instant::now();
    loop {
        let (_, logs, _) = gantry(&["run", "logs", &id], &addr, &admin);
        if logs.contains("count │ line 40\n") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the step did not get going: {logs}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(10));
    let mut server = start_server_on(&data, "process", false, &addr);
    assert_eq!(server.addr, addr);

    let run = wait_run(&addr, &admin, &id, Duration::from_secs(90));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["outputs"].to_string().contains("counted"), "{run}");
    let (_, logs, _) = gantry(&["run", "logs", &id], &addr, &admin);
    let lines: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("count │ line "))
        .collect();
    let expected: Vec<String> = (1..=300).map(|i| i.to_string()).collect();
    assert_eq!(lines, expected, "{logs}");
    // The step ran once: its job was never handed out again.
    let attempts = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(attempts.lines().count(), 1, "{attempts}");
    agent.kill().unwrap();
    let _ = agent.wait();
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// A step on an agent reads its spec and a secret through `METADATA_API_URL` (served by the
/// agent, answered by the server as that step) and sets an output there; the next step, on
/// the server, gets that output in its spec. The secret stays out of the logs.
#[test]
fn an_agent_step_uses_the_metadata_api_through_its_agent() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("data"), "process", true);
    let (addr, admin) = (server.addr.clone(), server.key.clone().expect("admin key"));
    let token = agent_token(&addr, &admin, "edge");
    let mut agent = start_agent(&addr, &token, "edge-1");

    let file = dir.path().join("meta.yaml");
    std::fs::write(
        &file,
        "steps:\n\
         - name: ask\n  image: alpine\n  agent: edge\n\
         \x20 spec:\n    greeting: hello\n    token: !Secret api_token\n\
         \x20 input:\n\
         \x20 - 'case \"$METADATA_API_URL\" in http://:*@127.0.0.1:*) echo served here;; esac'\n\
         \x20 - 'busybox wget -q -O- \"$METADATA_API_URL/spec\"; echo'\n\
         \x20 - 'busybox wget -q -O- \"$METADATA_API_URL/secrets/api_token\" > secret.txt'\n\
         \x20 - 'grep -q s3cret-agent-value secret.txt && echo the secret came'\n\
         \x20 - 'curl -fsS -X PUT -H \"Content-Type: application/json\" --data \"\\\"from-the-metadata-api\\\"\" \"$METADATA_API_URL/outputs/answer\"'\n\
         \x20 - 'busybox wget -q -O- \"http://:wrong@${METADATA_API_URL#*@}/spec\" || echo refused a wrong token'\n\
         - name: use\n  image: alpine\n  dependsOn: ask\n\
         \x20 spec:\n    answer: !Output {from: ask, name: answer}\n\
         \x20 input: ['cat \"$GANTRY_STEP_DIR/spec.json\"; echo']\n",
    )
    .unwrap();
    let (code, out, err) = gantry(
        &["workflow", "apply", file.to_str().unwrap()],
        &addr,
        &admin,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let mut set = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["secret", "set", "api_token", "--workflow", "meta"])
        .env("GANTRY_SERVER", format!("http://{addr}"))
        .env("GANTRY_API_KEY", &admin)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    set.stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-agent-value\n")
        .unwrap();
    assert!(set.wait().unwrap().success());
    let (code, out, err) = gantry(&["run", "start", "meta"], &addr, &admin);
    assert_eq!(code, Some(0), "{out}{err}");
    let id = out.split_whitespace().nth(1).unwrap().to_owned();

    let run = wait_run(&addr, &admin, &id, Duration::from_secs(60));
    let (_, logs, _) = gantry(&["run", "logs", &id], &addr, &admin);
    assert_eq!(run["status"], "succeeded", "{run}\n{logs}");
    assert!(logs.contains("ask │ served here"), "{logs}");
    assert!(
        logs.contains(r#"ask │ {"value":{"greeting":"hello","token":"***"},"#),
        "{logs}"
    );
    assert!(logs.contains("ask │ the secret came"), "{logs}");
    assert!(logs.contains("ask │ refused a wrong token"), "{logs}");
    assert!(logs.contains("from-the-metadata-api"), "{logs}");
    assert!(
        logs.contains("use │ ") && logs.contains(r#""answer": "from-the-metadata-api""#),
        "{logs}"
    );
    assert!(!logs.contains("s3cret-agent-value"), "{logs}");
    agent.kill().unwrap();
    let _ = agent.wait();
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// A container step on an agent reaches the agent's metadata API on the Docker bridge.
#[test]
fn an_agent_container_step_reads_its_spec_through_the_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("data"), "process", true);
    let (addr, admin) = (server.addr.clone(), server.key.clone().expect("admin key"));
    let token = agent_token(&addr, &admin, "edge");
    let mut agent = start_agent_on(&addr, &token, "edge-docker", "docker");
    let file = dir.path().join("boxed.yaml");
    std::fs::write(
        &file,
        "steps:\n- name: boxed\n  image: gantry-test/busybox:latest\n  agent: edge\n\
         \x20 spec: {where: in-a-container}\n\
         \x20 input: ['wget -q -O- \"$METADATA_API_URL/spec?path=where\"; echo']\n",
    )
    .unwrap();
    let id = start_run(&addr, &admin, &file, "boxed");
    let run = wait_run(&addr, &admin, &id, Duration::from_secs(90));
    let (_, logs, _) = gantry(&["run", "logs", &id], &addr, &admin);
    assert_eq!(run["status"], "succeeded", "{run}\n{logs}");
    assert!(logs.contains("in-a-container"), "{logs}");
    agent.kill().unwrap();
    let _ = agent.wait();
    server.child.kill().unwrap();
    let _ = server.child.wait();
}
