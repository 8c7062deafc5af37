//! `gantry user`, `team`, `apikey` and `workflow owner` against a real server: an admin makes a
//! team and a maintainer, the maintainer's key changes the team's workflow and nothing an
//! admin keeps, and a revoked key stops working.

use crate::server::{gantry, start_server};

#[test]
fn an_admin_gives_a_maintainer_a_key_and_takes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("data"), "process", true);
    let (addr, admin) = (server.addr.clone(), server.key.clone().expect("admin key"));
    let ok = |args: &[&str], key: &str| {
        let (code, out, err) = gantry(args, &addr, key);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    };
    let file = dir.path().join("deploy.yaml");
    std::fs::write(
        &file,
        "steps:\n- name: greet\n  image: alpine\n  input: [echo hi]\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();

    ok(&["team", "create", "sre"], &admin);
    let out = ok(
        &[
            "user",
            "create",
            "ann@example.com",
            "--role",
            "operator",
            "--team",
            "sre",
            "--maintainer",
        ],
        &admin,
    );
    assert_eq!(
        out,
        "user ann@example.com created (operator, in team sre)\n"
    );
    ok(&["workflow", "apply", file], &admin);
    ok(&["workflow", "owner", "deploy", "sre"], &admin);
    let key = ok(
        &[
            "apikey",
            "create",
            "--user",
            "ann@example.com",
            "--expires",
            "30d",
        ],
        &admin,
    );
    let key = key.trim().to_owned();
    assert!(key.starts_with("gantry_"), "{key}");

    let users = ok(&["user", "list"], &admin);
    assert!(
        users.contains("ann@example.com") && users.contains("sre*"),
        "{users}"
    );
    // Listings never show a key.
    let keys = ok(&["apikey", "list", "--format", "json"], &admin);
    let secret = key.rsplit('_').next().unwrap();
    assert!(!keys.contains(secret), "{keys}");
    let listed: serde_json::Value = serde_json::from_str(&keys).unwrap();
    let ann = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["principal"].as_str().unwrap().starts_with("user:"))
        .expect("ann's key");
    let id = ann["id"].as_str().unwrap().to_owned();

    // Ann maintains sre: she changes its workflow, and may not make teams.
    ok(&["workflow", "apply", file], &key);
    let (code, _, err) = gantry(&["team", "create", "x"], &addr, &key);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("forbidden") || err.contains("may not"),
        "{err}"
    );

    ok(&["apikey", "revoke", &id], &admin);
    let (code, _, err) = gantry(&["workflow", "list"], &addr, &key);
    assert_eq!(code, Some(1), "{err}");

    // The audit log: what Ann changed, from where, and the workflow's whole story.
    let json = |out: String| -> Vec<serde_json::Value> {
        let page: serde_json::Value = serde_json::from_str(&out).unwrap();
        page["items"].as_array().unwrap().clone()
    };
    let anns = json(ok(
        &["audit", "--actor", "ann@example.com", "--format", "json"],
        &admin,
    ));
    assert_eq!(anns.len(), 1, "{anns:#?}");
    assert_eq!(anns[0]["action"], "workflow.put");
    assert_eq!(anns[0]["before"], serde_json::json!({"version": 1}));
    assert_eq!(anns[0]["after"], serde_json::json!({"version": 2}));
    assert_eq!(anns[0]["source"], "127.0.0.1");
    let story: Vec<String> = json(ok(
        &[
            "audit",
            "--resource",
            "workflow/deploy",
            "--since",
            "1h",
            "--format",
            "json",
        ],
        &admin,
    ))
    .iter()
    .map(|e| {
        format!(
            "{} {}",
            e["action"].as_str().unwrap(),
            e["actor"]["name"].as_str().unwrap()
        )
    })
    .collect();
    assert_eq!(
        story,
        [
            "workflow.put ann@example.com",
            "workflow.owner admin",
            "workflow.put admin"
        ]
    );
    let human = ok(&["audit", "--action", "api_key", "--limit", "5"], &admin);
    assert!(human.starts_with("TIME"), "{human}");
    assert!(
        human.contains("api_key.revoke") && human.contains("api_key.create"),
        "{human}"
    );
    let (code, _, err) = gantry(&["audit", "--since", "last tuesday"], &addr, &admin);
    assert_ne!(code, Some(0));
    assert!(err.contains("--since"), "{err}");
    // A password from standard input: the user can sign in with it.
    let mut create = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "user",
            "create",
            "pat@example.com",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .args(["--server", &format!("http://{addr}"), "--api-key", &admin])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = create.stdin.take().unwrap();
        writeln!(stdin, "a long enough password").unwrap();
    }
    let done = create.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let (status, body) = crate::server::request(
        &addr,
        "POST /auth/login",
        "Content-Type: application/json\r\n",
        r#"{"email": "pat@example.com", "password": "a long enough password"}"#,
    );
    assert_eq!(status, 200, "{body}");

    // An agent token is printed once and opens none of the API.
    let token = ok(&["agent", "token", "create", "--pool", "edge"], &admin);
    let token = token.trim().to_owned();
    assert!(token.starts_with("gantry_"), "{token}");
    let (code, _, err) = gantry(&["workflow", "list"], &addr, &token);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("forbidden") || err.contains("may not"),
        "{err}"
    );
    let keys = ok(&["apikey", "list", "--format", "json"], &admin);
    assert!(keys.contains("agent:edge"), "{keys}");
    let audit = ok(&["audit", "--limit", "1000", "--format", "json"], &admin);
    assert!(
        !audit.contains(token.rsplit('_').next().unwrap()),
        "no token in the audit log"
    );
    assert!(!audit.contains(secret), "no key in the audit log");
    let _ = server.child.kill();
    let _ = server.child.wait();
}
