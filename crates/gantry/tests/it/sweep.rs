//! Nothing leaks: a real server, its log at debug level in a file, and every credential Gantry
//! handles (a password, a mistyped password, an admin key, a user's key, an agent token, a
//! session cookie, a secret, a connection's secret field) used through the API. No answer but
//! the one that hands a credential out contains it, no audit event contains any, and the
//! server's log contains none.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::server::exchange;

fn body(answer: &str) -> serde_json::Value {
    let text = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn no_answer_log_line_or_audit_event_holds_a_credential() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["server", "--listen", "127.0.0.1:0", "--runtime", "process"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("GANTRY_MASTER_KEY")
        .env("GANTRY_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    let admin = second.rsplit(' ').next().unwrap().trim().to_owned();
    assert!(admin.starts_with("gantry_"), "{second}");
    let auth = format!("Authorization: Bearer {admin}\r\nContent-Type: application/json\r\n");

    let password = "plum-velvet-harbor-42";
    let mistyped = "plum-velvet-harbour-42";
    let secret = "s3cret-token-value-9f8e";
    let connection_secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY";
    // Answers that must hold none of the credentials.
    let mut answers: Vec<String> = Vec::new();
    let mut call = |line: &str, headers: &str, body: &str| {
        let answer = exchange(&addr, line, headers, body);
        answers.push(answer.clone());
        answer
    };

    let made = call(
        "POST /api/v1/users",
        &auth,
        &format!(r#"{{"email": "carol@example.com", "role": "admin", "password": "{password}"}}"#),
    );
    assert_eq!(status(&made), 201, "{made}");
    let json = "Content-Type: application/json\r\n";
    let refused = call(
        "POST /auth/login",
        json,
        &format!(r#"{{"email": "carol@example.com", "password": "{mistyped}"}}"#),
    );
    assert_eq!(status(&refused), 401, "{refused}");
    // The answer that sets the cookie holds it, of course: kept apart.
    let login = exchange(
        &addr,
        "POST /auth/login",
        json,
        &format!(r#"{{"email": "carol@example.com", "password": "{password}"}}"#),
    );
    assert_eq!(status(&login), 200, "{login}");
    assert!(!login.contains(password));
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: gantry_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let session_secret = cookie.split('.').nth(1).unwrap().to_owned();
    let csrf = body(&login)["csrfToken"].as_str().unwrap().to_owned();
    let with_cookie = format!(
        "Cookie: gantry_session={cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\n"
    );
    let me = call("GET /api/v1/me", &with_cookie, "");
    assert_eq!(status(&me), 200, "{me}");
    let session = call("GET /auth/session", &with_cookie, "");
    assert_eq!(status(&session), 200, "{session}");

    // Keys are shown once, in their own answers, kept apart too.
    let key = exchange(
        &addr,
        "POST /api/v1/api-keys",
        &with_cookie,
        r#"{"user": "carol@example.com"}"#,
    );
    assert_eq!(status(&key), 201, "{key}");
    let user_key = body(&key)["key"].as_str().unwrap().to_owned();
    let agent = exchange(
        &addr,
        "POST /api/v1/agent-tokens",
        &auth,
        r#"{"pool": "edge"}"#,
    );
    assert_eq!(status(&agent), 201, "{agent}");
    let agent_token = body(&agent)["key"].as_str().unwrap().to_owned();
    let user_auth = format!("Authorization: Bearer {user_key}\r\n");
    let wf = "steps:\n- name: greet\n  image: alpine\n  spec:\n    token: !Secret token\n  input: [echo hi]\n";
    let put = call("PUT /api/v1/workflows/deploy", &user_auth, wf);
    assert_eq!(status(&put), 201, "{put}");
    let put = call(
        "PUT /api/v1/workflows/deploy/secrets/token",
        &user_auth,
        secret,
    );
    assert_eq!(status(&put), 204, "{put}");
    let put = call(
        "PUT /api/v1/connections/aws/prod",
        &auth,
        &format!(r#"{{"accessKeyID": "AKIAEXAMPLE", "secretAccessKey": "{connection_secret}"}}"#),
    );
    assert_eq!(status(&put), 204, "{put}");
    for line in [
        "GET /api/v1/workflows/deploy/secrets",
        "GET /api/v1/connections",
        "GET /api/v1/api-keys",
        "GET /api/v1/users",
        "GET /api/v1/audit?limit=1000",
    ] {
        let got = call(line, &auth, "");
        assert_eq!(status(&got), 200, "{line}: {got}");
    }
    let forbidden = call(
        "GET /api/v1/workflows",
        &format!("Authorization: Bearer {agent_token}\r\n"),
        "",
    );
    assert_eq!(status(&forbidden), 403);
    let out = call("POST /auth/logout", &with_cookie, "");
    assert_eq!(status(&out), 204, "{out}");

    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("gantry server ready"),
        "the log was written: {log}"
    );
    let credentials = [
        ("the password", password),
        ("the mistyped password", mistyped),
        ("the admin key", admin.as_str()),
        ("the user's key", user_key.as_str()),
        ("the agent token", agent_token.as_str()),
        ("the session cookie", session_secret.as_str()),
        ("the secret", secret),
        ("the connection's secret", connection_secret),
    ];
    let audit = answers
        .iter()
        .find(|a| a.contains("\"seq\""))
        .expect("the audit log was read");
    assert!(audit.contains("login.failed") && audit.contains("session.create"));
    for (what, value) in credentials {
        for answer in &answers {
            assert!(!answer.contains(value), "{what} in an answer:\n{answer}");
        }
        assert!(!log.contains(value), "{what} in the server's log");
    }
}
