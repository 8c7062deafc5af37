//! Triggers end to end with the real binary and real Docker steps: a webhook URL and a push token
//! from the CLI, events sent over a socket, runs followed to success; revoked and wrong tokens
//! refused; a rerun through the CLI.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{gantry, request, start_server};

/// `POST path` with a JSON body and an optional bearer token; returns status and body.
fn post(addr: &str, path: &str, bearer: Option<&str>, body: &str) -> (u16, String) {
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let headers = format!("{auth}Content-Type: application/json\r\n");
    request(addr, &format!("POST {path}"), &headers, body)
}

const WORKFLOW: &str = r#"apiVersion: v1
parameters:
  who: {default: nobody}
triggers:
- name: hook
  source: {type: webhook}
  binding:
    parameters:
      who: ${event.who}
- name: release
  source: {type: push}
  binding:
    parameters:
      who: !Data who
steps:
- name: greet
  image: gantry-test/busybox:latest
  input:
  - echo "hello $WHO from a container"
  env:
    WHO: !Parameter who
"#;

#[test]
fn webhook_and_push_events_run_docker_steps_and_revoked_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("data"), "docker", true);
    let key = server.key.clone().expect("an admin key");
    let addr = server.addr.clone();
    let file = dir.path().join("greet.yaml");
    std::fs::write(&file, WORKFLOW).unwrap();
    let (code, _, err) = gantry(&["workflow", "apply", file.to_str().unwrap()], &addr, &key);
    assert_eq!(code, Some(0), "{err}");

    let (code, out, err) = gantry(
        &["trigger", "list", "greet", "--format", "json"],
        &addr,
        &key,
    );
    assert_eq!(code, Some(0), "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let items = listed["items"]
        .as_array()
        .or(listed.as_array())
        .cloned()
        .unwrap_or_default();
    let hook = items
        .iter()
        .find(|t| t["type"] == "webhook")
        .expect("the webhook");
    let url = hook["url"].as_str().unwrap();
    let path = url
        .split_once(&addr)
        .map(|(_, p)| p.to_owned())
        .expect("a URL on this server");
    let (status, body) = post(&addr, &path, None, r#"{"who": "webhook"}"#);
    assert_eq!(status, 202, "{body}");

    let (code, token, err) = gantry(&["trigger", "token", "greet"], &addr, &key);
    assert_eq!(code, Some(0), "{err}");
    let token = token.trim().to_owned();
    assert_eq!(
        token.split('.').count(),
        3,
        "a JWT alone on stdout: {token}"
    );
    let (status, body) = post(
        &addr,
        "/api/events",
        Some(&token),
        r#"{"data": {"who": "push"}}"#,
    );
    assert_eq!(status, 202, "{body}");
    let (status, _) = post(&addr, "/api/events", Some("wrong"), r#"{"data": {}}"#);
    assert_eq!(status, 401);

    // Both runs end, succeeded, with the event's data in their step's output.
    let deadline = Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let (_, out, _) = gantry(
            &["run", "list", "--workflow", "greet", "--format", "json"],
            &addr,
            &key,
        );
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        let runs = v["items"]
            .as_array()
            .or(v.as_array())
            .cloned()
            .unwrap_or_default();
        if runs.len() == 2 && runs.iter().all(|r| !r["endedAt"].is_null()) {
            break runs;
        }
        assert!(Instant::now() < deadline, "runs did not end: {out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut greetings = Vec::new();
    for run in &runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        let id = run["id"].as_str().unwrap();
        let (_, logs, _) = gantry(&["run", "logs", id], &addr, &key);
        greetings.push(logs);
    }
    greetings.sort();
    assert!(
        greetings[0].contains("hello push from a container"),
        "{greetings:?}"
    );
    assert!(
        greetings[1].contains("hello webhook from a container"),
        "{greetings:?}"
    );

    // Token listings never show the token; a revoked token is refused.
    let (code, out, err) = gantry(
        &["trigger", "tokens", "greet", "--format", "json"],
        &addr,
        &key,
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains(&token));
    let tokens: Value = serde_json::from_str(&out).unwrap();
    let id = tokens
        .as_array()
        .or(tokens["items"].as_array())
        .and_then(|t| t.first())
        .and_then(|t| t["id"].as_str())
        .expect("one token")
        .to_owned();
    let (code, _, err) = gantry(&["trigger", "revoke", "greet", &id], &addr, &key);
    assert_eq!(code, Some(0), "{err}");
    let (status, _) = post(
        &addr,
        "/api/events",
        Some(&token),
        r#"{"data": {"who": "late"}}"#,
    );
    assert_eq!(status, 401);

    // A rerun through the CLI, followed to its end.
    let first = runs[0]["id"].as_str().unwrap();
    let (code, out, err) = gantry(&["run", "rerun", first, "--follow"], &addr, &key);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("from a container"), "{out}");

    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
