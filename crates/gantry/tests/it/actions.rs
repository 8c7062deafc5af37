//! `gantry action` against a real server and a real agent running Docker steps: an action
//! applied from a definition file, its form and run rule refusing before anything runs, an
//! approval that lets a run go through the agent, what the workflow's outputs report (a link,
//! a new catalog entity), a denial with its reason in the audit log, and the run filters.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{gantry, start_server};

const IMAGE: &str = "gantry-test/busybox:latest";

const CATALOG: &str = "\
kind: Blueprint
identifier: service
schema:
  properties:
    language: {type: string}
---
kind: Entity
blueprint: service
identifier: checkout
properties: {language: rust}
";

const ACTION: &str = "\
kind: Action
identifier: restart-service
title: Restart a service
blueprint: service
operation: day-2
inputs:
  properties:
    reason: {type: string, minLength: 3}
  required: [reason]
permissions:
  run: {roles: [operator]}
  approve: {users: [bob@example.com]}
approval: {required: true}
invocation:
  workflow: restart
  parameters:
    service: '{{ entity.identifier }}'
    reason: '{{ inputs.reason }}'
";

/// The step runs on the `edge` agent; it prints a line and reports through its outputs a link
/// and a new `service` entity (written as in a definition file, `kind` included).
const WORKFLOW: &str = r#"parameters:
  service: {description: the service to restart}
  reason: {description: why}
steps:
- name: restart
  image: IMAGE
  agent: edge
  env:
    SERVICE: ${parameters.service}
    REASON: ${parameters.reason}
  input:
  - echo "restarting $SERVICE because $REASON"
  - printf '{"title":"Pull request","url":"https://example.com/pr/1"}' > "$GANTRY_STEP_DIR/outputs/link"
  - printf '{"kind":"Entity","blueprint":"service","identifier":"%s-canary","properties":{"language":"rust"}}' "$SERVICE" > "$GANTRY_STEP_DIR/outputs/entity"
"#;

fn start_agent(addr: &str, token: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "agent",
            "--server",
            &format!("http://{addr}"),
            "--token",
            token,
            "--runtime",
            "docker",
            "--wait",
            "5",
            "--id",
            "edge-actions",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `gantry ARGS` in the background (to follow a run while another user decides it).
fn spawn_gantry(args: &[&str], addr: &str, key: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .env("GANTRY_SERVER", format!("http://{addr}"))
        .env("GANTRY_API_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a background `gantry` to end, killing it after `limit`.
fn wait_output(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "gantry did not end within {limit:?}:\n{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The id in `action run ID of ACTION: STATUS`.
fn run_id(out: &str) -> String {
    out.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no run id in {out}"))
        .to_owned()
}

#[test]
fn an_approved_action_runs_on_an_agent_and_reports_a_link_and_an_entity() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("data"), "docker", true);
    let (addr, admin) = (server.addr.clone(), server.key.clone().expect("admin key"));
    let ok = |args: &[&str], key: &str| {
        let (code, out, err) = gantry(args, &addr, key);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    };
    let json = |args: &[&str], key: &str| -> Value {
        let out = ok(args, key);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    };

    let token = ok(&["agent", "token", "create", "--pool", "edge"], &admin);
    let mut agent = start_agent(&addr, token.trim());
    let mut keys = Vec::new();
    for (email, role) in [
        ("ann@example.com", "operator"),
        ("bob@example.com", "approver"),
        ("vic@example.com", "viewer"),
    ] {
        ok(&["user", "create", email, "--role", role], &admin);
        keys.push(
            ok(&["apikey", "create", "--user", email], &admin)
                .trim()
                .to_owned(),
        );
    }
    let (ann, bob, vic) = (&keys[0], &keys[1], &keys[2]);

    let defs = dir.path().join("defs");
    std::fs::create_dir_all(&defs).unwrap();
    std::fs::write(defs.join("catalog.yaml"), CATALOG).unwrap();
    std::fs::write(defs.join("actions.yaml"), ACTION).unwrap();
    let wf = dir.path().join("restart.yaml");
    std::fs::write(&wf, WORKFLOW.replace("IMAGE", IMAGE)).unwrap();
    ok(&["workflow", "apply", wf.to_str().unwrap()], &admin);
    let out = ok(&["apply", "-f", defs.to_str().unwrap()], &admin);
    assert!(
        out.contains("+ action restart-service created"),
        "the apply names the action: {out}"
    );
    let out = ok(&["apply", "-f", defs.to_str().unwrap()], &admin);
    assert!(out.contains("0 created, 0 updated, 3 unchanged"), "{out}");
    let out = ok(&["action", "list", "--blueprint", "service"], ann);
    assert!(out.starts_with("IDENTIFIER"), "{out}");
    assert!(
        out.contains(
            "restart-service  Restart a service  service    day-2      required  workflow restart"
        ),
        "{out}"
    );
    let listed = json(&["action", "list", "--format", "json"], ann);
    assert_eq!(listed["items"][0]["identifier"], "restart-service");

    let run = |key: &str, reason: &str| {
        let input = format!("reason={reason}");
        let args = [
            "action",
            "run",
            "restart-service",
            "--entity",
            "service/checkout",
            "--input",
            &input,
        ];
        gantry(&args, &addr, key)
    };

    // The form and the run rule refuse before anything is stored.
    let (code, out, err) = run(ann, "no");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("[invalid_action]"), "{err}");
    assert!(err.contains("  inputs.reason: "), "the field's path: {err}");
    let (code, out, err) = run(vic, "rotate the keys");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("vic@example.com may not run `restart-service` [forbidden]"),
        "{err}"
    );
    let none = json(&["action", "runs", "--format", "json"], &admin);
    assert_eq!(none["items"], serde_json::json!([]), "{none}");

    // A valid run waits for Bob; Ann follows it while he approves.
    let (code, out, err) = run(ann, "rotate the keys");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.ends_with(": waiting_for_approval (1 more approval from bob@example.com)\n"),
        "{out}"
    );
    let first = run_id(&out);
    let follower = spawn_gantry(
        &["action", "rerun", &first, "--follow", "--color", "never"],
        &addr,
        ann,
    );
    // Ann may not approve her own run, nor may anyone but Bob.
    let (code, _, err) = gantry(&["action", "approve", &first], &addr, ann);
    assert_eq!(code, Some(1));
    assert!(err.contains("their own run [forbidden]"), "{err}");
    let (code, _, err) = gantry(&["action", "approve", &first], &addr, vic);
    assert_eq!(code, Some(1));
    assert!(err.contains("[forbidden]"), "{err}");

    let out = ok(&["action", "approve", &first, "--reason", "go ahead"], bob);
    assert_eq!(out, format!("action run {first} approved; it is queued\n"));
    let ended = wait_until_ended(&addr, ann, &first, Duration::from_secs(120));
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert_eq!(
        ended["links"],
        serde_json::json!([{"title": "Pull request", "url": "https://example.com/pr/1"}])
    );
    assert_eq!(
        ended["entities"],
        serde_json::json!([{"blueprint": "service", "identifier": "checkout-canary", "change": "created"}])
    );
    assert_eq!(ended["decisions"][0]["by"], "bob@example.com");
    assert_eq!(ended["decisions"][0]["reason"], "go ahead");
    assert_eq!(ended["inputs"]["reason"], "rotate the keys");
    let workflow_run = ended["workflowRun"].as_str().expect("a workflow run");
    let logs = ok(&["run", "logs", workflow_run], ann);
    assert_eq!(
        logs.matches("restarting checkout because rotate the keys")
            .count(),
        1,
        "{logs}"
    );
    let canary = ok(&["catalog", "get", "service", "checkout-canary"], ann);
    assert!(canary.contains("checkout-canary"), "{canary}");
    let shown = ok(&["action", "get", &first], ann);
    assert!(
        shown.contains("link: Pull request  https://example.com/pr/1")
            && shown.contains("entity service/checkout-canary: created")
            && shown.contains("approved by bob@example.com"),
        "{shown}"
    );

    // The rerun Ann followed waits for Bob too; he approves it and it runs to its end: each
    // change, the step's line once, then what it reported.
    let rerun = wait_for_run(&addr, ann, |r| r["rerunOf"] == first.as_str());
    ok(&["action", "approve", &rerun], bob);
    let followed = wait_output(follower, Duration::from_secs(120));
    let (out, err) = (text(&followed.stdout), text(&followed.stderr));
    assert_eq!(followed.status.code(), Some(0), "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "action run {rerun} of restart-service\nstatus: waiting_for_approval (1 more approval from bob@example.com)\n"
        )),
        "{out}"
    );
    assert_eq!(
        out.matches("restart │ restarting checkout because rotate the keys\n")
            .count(),
        1,
        "{out}"
    );
    assert!(out.contains("\nworkflow run "), "{out}");
    assert!(
        out.ends_with(&format!(
            "link: Pull request  https://example.com/pr/1\nentity service/checkout-canary: unchanged\naction run {rerun} succeeded\n"
        )),
        "{out}"
    );

    // A third run is denied while Ann follows it: it ends cancelled (exit 3), and the audit log
    // keeps the denial with its reason.
    let (code, out, err) = run(ann, "rotate again");
    assert_eq!(code, Some(0), "{out}{err}");
    let denied = run_id(&out);
    let follower = spawn_gantry(
        &[
            "action",
            "run",
            "restart-service",
            "--entity",
            "service/checkout",
            "--input",
            "reason=one more",
            "--follow",
            "--format",
            "json",
        ],
        &addr,
        ann,
    );
    let out = ok(&["action", "deny", &denied, "--reason", "not now"], bob);
    assert_eq!(
        out,
        format!("action run {denied} denied; it is cancelled\n")
    );
    let got = json(&["action", "get", &denied, "--format", "json"], ann);
    assert_eq!(got["status"], "cancelled", "{got}");
    assert!(got["error"].as_str().unwrap().contains("not now"), "{got}");
    let (code, _, err) = gantry(&["action", "deny", &denied], &addr, bob);
    assert_eq!(code, Some(2), "--reason is required: {err}");
    let audit = json(
        &["audit", "--action", "action_run.deny", "--format", "json"],
        &admin,
    );
    let events = audit["items"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{audit}");
    assert_eq!(events[0]["actor"]["name"], "bob@example.com", "{audit}");
    assert!(events[0].to_string().contains("not now"), "{audit}");

    let last = wait_for_run(&addr, ann, |r| r["inputs"]["reason"] == "one more");
    ok(&["action", "deny", &last, "--reason", "enough"], bob);
    let followed = wait_output(follower, Duration::from_secs(60));
    assert_eq!(
        followed.status.code(),
        Some(3),
        "a denied run exits 3: {}",
        text(&followed.stderr)
    );
    let end: Value = serde_json::from_str(&text(&followed.stdout)).unwrap();
    assert_eq!(end["status"], "cancelled");
    assert!(
        text(&followed.stderr).contains(&format!("action run {last} cancelled")),
        "{}",
        text(&followed.stderr)
    );

    // The filters.
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["action", "runs", "--format", "json"];
        all.extend_from_slice(args);
        json(&all, ann)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&["--action", "restart-service"]).len(), 4);
    assert_eq!(ids(&["--action", "no-such-action"]), Vec::<String>::new());
    assert_eq!(
        ids(&["--status", "succeeded"]),
        [rerun.clone(), first.clone()]
    );
    assert_eq!(
        ids(&["--status", "cancelled"]),
        [last.clone(), denied.clone()]
    );
    assert_eq!(ids(&["--user", "ann@example.com", "--limit", "1"]), [last]);
    assert_eq!(ids(&["--entity", "service/checkout"]).len(), 4);
    assert_eq!(ids(&["--entity", "service/checkout-canary"]).len(), 0);
    let (code, _, err) = gantry(&["action", "runs", "--status", "done"], &addr, ann);
    assert_eq!(code, Some(2), "{err}");
    let table = ok(&["action", "runs", "--status", "succeeded"], ann);
    assert!(
        table.starts_with("ID")
            && table.contains(&format!(
                "{first}  restart-service  service/checkout  succeeded  ann@example.com"
            )),
        "{table}"
    );

    // A waiting run is cancelled by its requester.
    let (_, out, _) = run(ann, "and cancel");
    let cancelled = run_id(&out);
    let out = ok(&["action", "cancel", &cancelled], ann);
    assert_eq!(out, format!("action run {cancelled} cancelled\n"));

    agent.kill().unwrap();
    let _ = agent.wait();
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// The newest of the runs `ann` sees that `matches`, waiting for it to appear.
fn wait_for_run(addr: &str, key: &str, matches: impl Fn(&Value) -> bool) -> String {
    let started = Instant::now();
    loop {
        let (_, out, _) = gantry(&["action", "runs", "--format", "json"], addr, key);
        let page: Value = serde_json::from_str(&out).unwrap_or_default();
        if let Some(r) = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| matches(r))
        {
            return r["id"].as_str().unwrap().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no such run: {out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until_ended(addr: &str, key: &str, id: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (_, out, _) = gantry(&["action", "get", id, "--format", "json"], addr, key);
        let run: Value = serde_json::from_str(&out).unwrap_or_default();
        if matches!(
            run["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return run;
        }
        assert!(started.elapsed() < limit, "the run did not end: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
