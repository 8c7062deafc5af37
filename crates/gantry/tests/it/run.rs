//! `gantry run` end to end: real Docker containers (the local `gantry-test/busybox` image that
//! `.ci/run` builds) and real processes, Relay's semantics, approvals, timeouts, cancel, and a
//! Python step written against PyPI's `relay-sdk`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const IMAGE: &str = "gantry-test/busybox:latest";

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn record(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("no JSON record ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

fn step<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {record}"))
}

fn write_workflow(name: &str, yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml.replace("IMAGE", IMAGE)).unwrap();
    (dir, file)
}

fn gantry_run(file: &PathBuf, extra: &[&str]) -> Ran {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("run")
        .arg(file)
        .args(["--format", "json", "--color", "never"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The ids of the containers labelled with `run_id`, any state.
pub(crate) fn docker_containers(run_id: &str) -> String {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=gantry.run={run_id}"),
        ])
        .output()
        .expect("the docker CLI is needed (.ci/run installs docker.io)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn outputs_flow_across_three_docker_steps() {
    let (_dir, file) = write_workflow(
        "outputs",
        r#"
apiVersion: v1
parameters:
  greeting: {default: hello}
steps:
- name: one
  image: IMAGE
  env:
    G: ${parameters.greeting}
  input: ['printf "%s" "$G" > "$GANTRY_STEP_DIR/outputs/word"']
- name: two
  image: IMAGE
  env:
    W: ${outputs.one.word}
  input: ['printf "%s world" "$W" > "$GANTRY_STEP_DIR/outputs/phrase"']
- name: three
  image: IMAGE
  spec:
    phrase: ${outputs.two.phrase}
  input: ['cat "$GANTRY_STEP_DIR/spec.json"; echo']
"#,
    );
    let ran = gantry_run(&file, &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let r = ran.record();
    assert_eq!(r["status"], "succeeded");
    assert_eq!(step(&r, "two")["outputs"][0]["value"], "hello world");
    assert!(
        ran.stderr.contains(r#"three │   "phrase": "hello world""#),
        "{}",
        ran.stderr
    );
    assert_eq!(docker_containers(r["runId"].as_str().unwrap()), "");
}

#[test]
fn a_container_reads_its_spec_from_the_metadata_api() {
    let (_dir, file) = write_workflow(
        "metadata",
        r#"
steps:
- name: ask
  image: IMAGE
  spec:
    name: gantry
  input:
  - wget -q -O - "$METADATA_API_URL/spec?q=name"; echo
"#,
    );
    let ran = gantry_run(&file, &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains(r#"ask │ {"value":"gantry","unresolvable":{},"complete":true}"#),
        "{}",
        ran.stderr
    );
}

#[test]
fn parallel_branches_overlap() {
    let (_dir, file) = write_workflow(
        "parallel",
        r#"
steps:
- name: root
  image: IMAGE
  command: "true"
- name: left
  image: IMAGE
  dependsOn: root
  input: ["sleep 2"]
- name: right
  image: IMAGE
  dependsOn: root
  input: ["sleep 2"]
- name: join
  image: IMAGE
  dependsOn: [left, right]
  command: "true"
"#,
    );
    let ran = gantry_run(&file, &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let r = ran.record();
    let time = |s: &str, k: &str| {
        chrono::DateTime::parse_from_rfc3339(step(&r, s)[k].as_str().unwrap()).unwrap()
    };
    assert!(time("left", "startedAt") < time("right", "endedAt"));
    assert!(time("right", "startedAt") < time("left", "endedAt"));
    assert!(time("join", "startedAt") >= time("left", "endedAt"));
}

#[test]
fn a_failed_step_fails_the_run_and_cleanup_runs() {
    let (_dir, file) = write_workflow(
        "failure",
        r#"
steps:
- name: independent
  image: IMAGE
  input: ["sleep 1", "echo still here"]
- name: bad
  image: IMAGE
  input: ["echo about to fail >&2", "exit 3"]
- name: after-bad
  image: IMAGE
  dependsOn: bad
  command: "true"
- name: cleanup
  image: IMAGE
  dependsOn: bad
  when: ${steps.bad.failed}
  input: ["echo rolling back"]
"#,
    );
    let ran = gantry_run(&file, &[]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let r = ran.record();
    assert_eq!(r["status"], "failed");
    assert_eq!(step(&r, "bad")["status"], "failed");
    assert_eq!(step(&r, "bad")["exitCode"], 3);
    assert_eq!(step(&r, "independent")["status"], "succeeded");
    assert_eq!(step(&r, "after-bad")["status"], "skipped");
    assert_eq!(step(&r, "cleanup")["status"], "succeeded");
    assert!(ran.stderr.contains("bad │ about to fail"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("cleanup │ rolling back"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_false_when_skips_a_branch_without_failing() {
    let (_dir, file) = write_workflow(
        "when",
        r#"
parameters:
  env: {default: staging}
steps:
- name: prod-only
  image: IMAGE
  when: ${parameters.env == 'production'}
  command: "true"
- name: after-prod
  image: IMAGE
  dependsOn: prod-only
  command: "true"
- name: always
  image: IMAGE
  command: "true"
"#,
    );
    let ran = gantry_run(&file, &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let r = ran.record();
    assert_eq!(r["status"], "succeeded");
    assert_eq!(step(&r, "prod-only")["status"], "skipped");
    assert_eq!(step(&r, "after-prod")["status"], "skipped");
    assert_eq!(step(&r, "always")["status"], "succeeded");
    let ran = gantry_run(&file, &["--param", "env=production"]);
    assert_eq!(ran.record()["steps"][0]["status"], "succeeded");
}

const APPROVAL: &str = r#"
steps:
- name: build
  image: IMAGE
  command: "true"
- name: gate
  type: approval
  description: Ship it?
  dependsOn: build
- name: deploy
  image: IMAGE
  dependsOn: gate
  input: ["echo deploying"]
"#;

#[test]
fn approval_approved_runs_the_rest() {
    let (_dir, file) = write_workflow("approve", APPROVAL);
    let ran = gantry_run(&file, &["--approve"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let r = ran.record();
    assert_eq!(step(&r, "gate")["status"], "succeeded");
    assert_eq!(step(&r, "deploy")["status"], "succeeded");
}

#[test]
fn approval_denied_fails_the_run() {
    let (_dir, file) = write_workflow("deny", APPROVAL);
    let ran = gantry_run(&file, &["--deny"]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let r = ran.record();
    assert_eq!(step(&r, "gate")["status"], "failed");
    assert!(step(&r, "gate")["reason"]
        .as_str()
        .unwrap()
        .contains("denied"));
    assert_eq!(step(&r, "deploy")["status"], "skipped");
}

#[test]
fn approval_without_terminal_or_flag_is_denied_with_a_hint() {
    let (_dir, file) = write_workflow("no-answer", APPROVAL);
    let ran = gantry_run(&file, &[]);
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr.contains("pass --approve or --deny"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_step_timeout_stops_the_container() {
    let (_dir, file) = write_workflow(
        "timeout",
        r#"
steps:
- name: slow
  image: IMAGE
  timeout: 1s
  input: ["sleep 60"]
"#,
    );
    let started = Instant::now();
    let ran = gantry_run(&file, &[]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let r = ran.record();
    let slow = step(&r, "slow");
    assert_eq!(slow["status"], "failed");
    assert!(
        slow["reason"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{slow}"
    );
    assert_eq!(docker_containers(r["runId"].as_str().unwrap()), "");
}

#[test]
fn ctrl_c_cancels_and_leaves_no_container() {
    let (_dir, file) = write_workflow(
        "cancel",
        r#"
steps:
- name: long
  image: IMAGE
  input: ["echo started", "sleep 60"]
- name: next
  image: IMAGE
  dependsOn: long
  command: "true"
"#,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("run")
        .arg(&file)
        .args(["--color", "never"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let run_id = first
        .strip_prefix("run ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first}"))
        .to_owned();
    // Wait until the container is up and printing.
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("long │ started") {
            break;
        }
    }
    assert!(!docker_containers(&run_id).is_empty(), "{seen:?}");
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let text = rest.join("\n");
    assert!(text.contains("run cancelled"), "{text}");
    assert!(
        text.contains("long    cancelled") || text.contains("long  cancelled"),
        "{text}"
    );
    assert_eq!(docker_containers(&run_id), "", "containers left behind");
}

#[test]
fn bad_input_gives_clear_messages_on_the_failing_step() {
    // A tiny HTTP server on loopback that answers 404 to everything.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let (dir, file) = write_workflow(
        "bad-input",
        &format!(
            r#"
steps:
- name: no-such-image
  image: gantry-test/does-not-exist:1
  command: "true"
- name: killed
  image: IMAGE
  input: ["echo out of memory, say >&2", "exit 137"]
- name: missing-script
  image: IMAGE
  inputFile: http://127.0.0.1:{port}/scripts/run.sh
- name: missing-secret
  image: IMAGE
  spec:
    token: ${{secrets.deployToken}}
  command: "true"
"#
        ),
    );
    let secrets = dir.path().join("secrets.yaml");
    std::fs::write(&secrets, "otherSecret: hunter2-value\n").unwrap();
    // No limit, so every step starts before the first failure skips the rest (the missing
    // secret fails its step before it starts, so it comes last).
    let ran = gantry_run(
        &file,
        &[
            "--max-parallel",
            "0",
            "--secrets-file",
            secrets.to_str().unwrap(),
        ],
    );
    assert_eq!(ran.code, Some(1));
    let r = ran.record();
    let reason = |s: &str| {
        step(&r, s)["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        reason("no-such-image").contains("gantry-test/does-not-exist:1"),
        "{r}"
    );
    assert_eq!(step(&r, "killed")["exitCode"], 137);
    assert_eq!(reason("killed"), "exit code 137");
    assert!(
        reason("missing-secret").contains("secret `deployToken` does not exist"),
        "{r}"
    );
    assert!(
        reason("missing-script").contains(&format!("127.0.0.1:{port}/scripts/run.sh")),
        "{r}"
    );
    assert!(reason("missing-script").contains("404"), "{r}");
    assert!(!ran.stdout.contains("hunter2") && !ran.stderr.contains("hunter2"));
}

#[test]
fn secrets_are_masked_in_printed_logs() {
    let (dir, file) = write_workflow(
        "masking",
        r#"
steps:
- name: leaky
  image: none
  env:
    TOKEN: ${secrets.token}
  input: ['echo "the token is $TOKEN"']
"#,
    );
    let secrets = dir.path().join("secrets.json");
    std::fs::write(&secrets, r#"{"token": "s3cr3t-v4lue"}"#).unwrap();
    let ran = gantry_run(
        &file,
        &[
            "--runtime",
            "process",
            "--secrets-file",
            secrets.to_str().unwrap(),
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("leaky │ the token is ***"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stdout.contains("s3cr3t") && !ran.stderr.contains("s3cr3t"));
}

fn python() -> String {
    let default = format!(
        "{}/.cache/gantry-venv/bin/python",
        std::env::var("HOME").unwrap_or_default()
    );
    let python = std::env::var("GANTRY_PYTHON").unwrap_or(default);
    assert!(
        std::path::Path::new(&python).exists(),
        "no Python with relay-sdk at {python}: .ci/run creates it (python3 -m venv ~/.cache/gantry-venv && ~/.cache/gantry-venv/bin/pip install relay-sdk), or set GANTRY_PYTHON"
    );
    python
}

#[test]
fn a_relay_sdk_python_step_runs_unchanged() {
    let python = python();
    let yaml = format!(
        r#"
steps:
- name: produce
  image: python:3.11
  spec:
    name: gantry
  command: {python}
  args:
  - -c
  - |
    from relay_sdk import Interface, Dynamic as D
    relay = Interface()
    relay.outputs.set('greeting', 'hello ' + relay.get(D.name))
- name: consume
  image: python:3.11
  spec:
    greeting: ${{outputs.produce.greeting}}
  command: {python}
  args:
  - -c
  - |
    from relay_sdk import Interface, Dynamic as D
    print('received:', Interface().get(D.greeting))
"#
    );
    let (_dir, file) = write_workflow("relay-sdk", &yaml);
    let ran = gantry_run(&file, &["--runtime", "process"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let r = ran.record();
    assert_eq!(step(&r, "produce")["outputs"][0]["value"], "hello gantry");
    assert!(
        ran.stderr.contains("consume │ received: hello gantry"),
        "{}",
        ran.stderr
    );
}
