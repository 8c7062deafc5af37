//! PyPI's real `relay-sdk` against the router on a socket.
//!
//! The interpreter comes from `GANTRY_PYTHON` (default `/root/.cache/gantry-venv/bin/python`),
//! a virtualenv with `relay-sdk` installed:
//! `python3 -m venv /root/.cache/gantry-venv && /root/.cache/gantry-venv/bin/pip install relay-sdk`.
//! A missing interpreter fails the test rather than skipping it: CI creates the venv.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use serde_json::json;

use gantry_server::metadata::router;

use super::backend::{MapBackend, DEPLOY_TOKEN};

fn python() -> PathBuf {
    let path = std::env::var_os("GANTRY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/gantry-venv/bin/python"));
    assert!(
        path.exists(),
        "no Python with relay-sdk at {} (set GANTRY_PYTHON, or run \
         `python3 -m venv /root/.cache/gantry-venv && \
         /root/.cache/gantry-venv/bin/pip install relay-sdk`)",
        path.display()
    );
    path
}

const SCRIPT: &str = r#"
from relay_sdk import Interface, Dynamic as D, UnresolvableException
r = Interface()
print(r.get(D.name))
print(r.get(D.aws.connection.accessKeyID))
try:
    r.get(D.image)
    print("resolved?")
except UnresolvableException:
    print("unresolvable")
r.outputs.set('greeting', 'hello')
r.outputs.set('numbers', [1, 2])
run = r.workflows.run('cleanup', {'env': 'prod'})
print(run.name, run.run_number)
r.decorators.set_link('dash', 'Dashboard', 'https://x.test')
"#;

#[tokio::test(flavor = "multi_thread")]
async fn relay_sdk_talks_to_the_router() {
    let python = python();
    let backend = Arc::new(MapBackend::sample());
    let app = router(backend.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"))
        .port();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg("-c")
            .arg(SCRIPT)
            .env(
                "METADATA_API_URL",
                format!("http://:{DEPLOY_TOKEN}@127.0.0.1:{port}"),
            )
            .env_remove("RELAY")
            .output()
    })
    .await
    .unwrap_or_else(|e| panic!("join: {e}"))
    .unwrap_or_else(|e| panic!("running python: {e}"));
    server.abort();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["gantry", "AKIA", "unresolvable", "cleanup 1"],
        "stderr: {stderr}"
    );

    let record = backend.record();
    let output_of = |name: &str| {
        record
            .outputs
            .get(&("deploy".to_string(), name.to_string()))
            .map(|o| o.value.clone())
    };
    assert_eq!(output_of("greeting"), Some(json!("hello")));
    assert_eq!(output_of("numbers"), Some(json!([1, 2])));
    assert_eq!(record.runs.len(), 1);
    assert_eq!(record.runs[0].2.get("env"), Some(&json!("prod")));
    assert_eq!(
        record.decorators[0].2,
        json!({"description": "Dashboard", "uri": "https://x.test", "type": "link"})
    );
}
