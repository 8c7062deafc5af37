//! The driver against a scripted runtime, on tokio's paused clock: real tasks, channels and
//! timers, simulated time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use gantry_engine::driver::{DriverConfig, RunDriver, RunHandle};
use gantry_engine::metadata::{MetadataBackend, MetadataError};
use gantry_engine::run::{Run, RunOptions, RunRecord};
use gantry_engine::runtime::Program;
use gantry_engine::secrets::SecretResolver;
use gantry_engine::sink::{RunEvent, RunState, StepState};

use crate::support::{
    run_config, PausedClock, RecordingSink, Script, ScriptedRuntime, StaticSecrets,
};

struct Driven {
    handle: RunHandle,
    runtime: Arc<ScriptedRuntime>,
    sink: Arc<RecordingSink>,
    dir: tempfile::TempDir,
}

impl Driven {
    async fn finished(&self) -> RunRecord {
        self.handle.finished().await
    }

    fn step(&self, record: &RunRecord, name: &str) -> (StepState, Option<String>) {
        let s = record.steps.iter().find(|s| s.name == name).unwrap();
        (s.state, s.reason.clone())
    }
}

fn drive(
    yaml: &str,
    scripts: &[(&str, Script)],
    secrets: Arc<dyn SecretResolver>,
    options: RunOptions,
) -> Driven {
    let dir = tempfile::tempdir().unwrap();
    let runtime = ScriptedRuntime::new(scripts);
    let sink = Arc::new(RecordingSink::default());
    let run = Run::new(run_config(yaml, Value::Null, options, secrets)).unwrap();
    let (driver, handle) = RunDriver::new(DriverConfig {
        run,
        runtime: runtime.clone(),
        clock: PausedClock::new(),
        sink: sink.clone(),
        work_dir: dir.path().join("run-1"),
        workflow_dir: dir.path().join("workflows"),
        metadata_port: Some(7000),
    });
    tokio::spawn(driver.run());
    Driven {
        handle,
        runtime,
        sink,
        dir,
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn the_driver_writes_the_step_folder_and_builds_env_and_program() {
    let d = drive(
        r#"
apiVersion: v1
parameters:
  greeting: {default: hello}
steps:
- name: one
  image: alpine:3
  env:
    GREETING: ${parameters.greeting}
    COUNT: 3
    FLAGS: {a: true}
  input: ["echo one", "echo two"]
- name: two
  image: alpine
  spec: {version: "${outputs.one.version}"}
  inputFile: scripts/two.sh
- name: three
  image: alpine
  dependsOn: two
  command: /bin/echo
  args: [hi]
"#,
        &[(
            "one",
            Script {
                outputs: vec![("version".into(), "1.2.3\n".into())],
                ..Script::default()
            },
        )],
        StaticSecrets::with(&[]),
        RunOptions::default(),
    );
    let record = d.finished().await;
    assert_eq!(record.state, RunState::Succeeded, "{record:#?}");

    let one = d.runtime.job("one");
    assert_eq!(one.image.as_deref(), Some("alpine:3"));
    assert_eq!(
        one.program,
        Program::Script("#!/bin/sh\necho one\necho two".into())
    );
    let env: Vec<(&str, &str)> = one
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("CI", "true"),
            ("COUNT", "3"),
            ("FLAGS", r#"{"a":true}"#),
            ("GANTRY_RUN_ID", "run-1"),
            ("GANTRY_STEP", "one"),
            ("GREETING", "hello"),
            ("RELAY", "true"),
        ]
    );
    assert_eq!(one.step_dir, d.dir.path().join("run-1").join("one"));
    let endpoint = one.metadata.clone().unwrap();
    assert_eq!(endpoint.port, 7000);
    assert_eq!(endpoint.token.len(), 64);
    assert!(endpoint.token.chars().all(|c| c.is_ascii_hexdigit()));

    let two = d.runtime.job("two");
    assert_eq!(
        two.program,
        Program::InputFile {
            reference: "scripts/two.sh".into(),
            base_dir: d.dir.path().join("workflows"),
        }
    );
    assert_ne!(two.metadata.unwrap().token, endpoint.token);
    let spec: Value =
        serde_json::from_slice(&std::fs::read(two.step_dir.join("spec.json")).unwrap()).unwrap();
    assert_eq!(spec, json!({"version": "1.2.3"}));
    assert!(two.step_dir.join("outputs").is_dir());

    assert_eq!(
        d.runtime.job("three").program,
        Program::Command {
            command: Some("/bin/echo".into()),
            args: vec!["hi".into()],
        }
    );
    let outputs = &record.steps[0].outputs;
    assert_eq!(outputs.len(), 1);
    assert_eq!(
        (outputs[0].name.as_str(), &outputs[0].value),
        ("version", &json!("1.2.3"))
    );
}

#[tokio::test(start_paused = true)]
async fn each_job_carries_the_agent_pool_in_effect_for_its_step() {
    let d = drive(
        r#"
apiVersion: v1
agent: dc-west
steps:
- name: extract
  image: alpine
  input: ["true"]
- name: train
  image: alpine
  agent: gpu.large
  dependsOn: extract
  input: ["true"]
"#,
        &[],
        StaticSecrets::with(&[]),
        RunOptions::default(),
    );
    assert_eq!(d.finished().await.state, RunState::Succeeded);
    assert_eq!(d.runtime.job("extract").pool.as_deref(), Some("dc-west"));
    assert_eq!(d.runtime.job("train").pool.as_deref(), Some("gpu.large"));

    // A Relay file names no pool: its steps are for the server's own runtime.
    let d = drive(
        "steps:\n- name: hello\n  image: alpine\n  input: [\"true\"]\n",
        &[],
        StaticSecrets::with(&[]),
        RunOptions::default(),
    );
    assert_eq!(d.finished().await.state, RunState::Succeeded);
    assert_eq!(d.runtime.job("hello").pool, None);
}

#[tokio::test(start_paused = true)]
async fn secret_values_are_masked_in_logs_before_the_sink() {
    let d = drive(
        r#"
apiVersion: v1
steps:
- name: deploy
  image: alpine
  env: {TOKEN: !Secret token}
"#,
        &[(
            "deploy",
            Script {
                logs: vec!["using token s3cr3t-t0ken".into(), "done".into()],
                ..Script::default()
            },
        )],
        StaticSecrets::with(&[("token", "s3cr3t-t0ken")]),
        RunOptions::default(),
    );
    d.finished().await;
    assert_eq!(d.sink.logs(), ["using token ***", "done"]);
    // The step's own log lines reach the sink before its end.
    let events = d.sink.events.lock().unwrap().clone();
    let last_log = events
        .iter()
        .rposition(|e| matches!(e, RunEvent::Log { .. }))
        .unwrap();
    let ended = events
        .iter()
        .position(|e| {
            matches!(
                e,
                RunEvent::StepChanged {
                    state: StepState::Succeeded,
                    ..
                }
            )
        })
        .unwrap();
    assert!(last_log < ended);
    assert!(!format!("{events:?}").contains("s3cr3t"));
}

#[tokio::test(start_paused = true)]
async fn the_driver_stops_a_step_at_its_timeout() {
    let d = drive(
        r#"
apiVersion: v1
steps:
- {name: hang, image: alpine, timeout: 30s}
"#,
        &[("hang", Script::forever())],
        StaticSecrets::with(&[]),
        RunOptions::default(),
    );
    let record = d.finished().await;
    assert_eq!(record.state, RunState::Failed);
    assert_eq!(
        d.step(&record, "hang"),
        (StepState::Failed, Some("timed out after 30s".into()))
    );
    let took = record.ended_at.unwrap() - record.started_at.unwrap();
    assert_eq!(took, chrono::Duration::seconds(30));
}

#[tokio::test(start_paused = true)]
async fn the_driver_times_out_the_run() {
    let d = drive(
        r#"
apiVersion: v1
steps:
- {name: long, image: alpine}
- {name: next, image: alpine, dependsOn: long}
"#,
        &[("long", Script::after(3600))],
        StaticSecrets::with(&[]),
        RunOptions {
            run_timeout: Some(Duration::from_secs(300)),
            ..RunOptions::default()
        },
    );
    let record = d.finished().await;
    assert_eq!(record.state, RunState::TimedOut);
    assert_eq!(d.step(&record, "long").0, StepState::Cancelled);
    assert_eq!(d.step(&record, "next").0, StepState::Skipped);
    let took = record.ended_at.unwrap() - record.started_at.unwrap();
    assert_eq!(took, chrono::Duration::seconds(300));
}

#[tokio::test(start_paused = true)]
async fn cancelling_through_the_handle_stops_the_run() {
    let d = drive(
        r#"
apiVersion: v1
steps:
- {name: a, image: alpine}
- {name: b, image: alpine, dependsOn: a}
"#,
        &[("a", Script::forever())],
        StaticSecrets::with(&[]),
        RunOptions::default(),
    );
    settle().await;
    assert_eq!(d.handle.record().steps[0].state, StepState::Running);
    d.handle.cancel();
    let record = d.finished().await;
    assert_eq!(record.state, RunState::Cancelled);
    assert_eq!(d.step(&record, "a").0, StepState::Cancelled);
    assert_eq!(d.step(&record, "b").0, StepState::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn an_approval_answered_through_the_handle_lets_the_run_go_on() {
    let d = drive(
        r#"
apiVersion: v1
steps:
- {name: gate, type: approval}
- {name: deploy, image: alpine, dependsOn: gate}
"#,
        &[],
        StaticSecrets::with(&[]),
        RunOptions::default(),
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(d.handle.record().steps[0].state, StepState::Waiting);
    d.handle.answer("gate", true, Some("alice".into())).unwrap();
    let record = d.finished().await;
    assert_eq!(record.state, RunState::Succeeded);
    assert_eq!(
        d.step(&record, "gate"),
        (StepState::Succeeded, Some("approved by alice".into()))
    );
    assert_eq!(d.step(&record, "deploy").0, StepState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn the_driver_runs_at_most_max_parallel_steps_at_once() {
    let d = drive(
        r#"
apiVersion: v1
steps:
- {name: a, image: alpine}
- {name: b, image: alpine}
- {name: c, image: alpine}
- {name: d, image: alpine}
"#,
        &[
            ("a", Script::after(10)),
            ("b", Script::after(10)),
            ("c", Script::after(10)),
            ("d", Script::after(10)),
        ],
        StaticSecrets::with(&[]),
        RunOptions {
            max_parallel: 2,
            ..RunOptions::default()
        },
    );
    let record = d.finished().await;
    assert_eq!(record.state, RunState::Succeeded);
    assert_eq!(d.runtime.most_at_once.load(Ordering::SeqCst), 2);
    let took = record.ended_at.unwrap() - record.started_at.unwrap();
    assert_eq!(took, chrono::Duration::seconds(20));
}

#[tokio::test(start_paused = true)]
async fn the_metadata_backend_serves_a_step_only_its_own_data() {
    let d = drive(
        r#"
apiVersion: v1
steps:
- name: worker
  image: alpine
  spec:
    password: !Secret db
  env:
    MODE: fast
- name: reader
  image: alpine
  spec:
    seen: ${outputs.worker.result}
"#,
        &[("worker", Script::forever())],
        StaticSecrets::with(&[("db", "db-pa55word"), ("admin", "admin-pa55word")]),
        RunOptions::default(),
    );
    settle().await;
    let token = d.runtime.job("worker").metadata.unwrap().token;
    assert_eq!(d.handle.authenticate("not-a-token"), None);
    let caller = d.handle.authenticate(&token).unwrap();
    assert_eq!(caller.name, "worker");

    let spec = d.handle.spec(&caller).unwrap();
    assert!(spec.is_complete());
    assert_eq!(spec.value, json!({"password": "db-pa55word"}));
    assert_eq!(
        d.handle.environment(&caller).unwrap().value,
        json!({"MODE": "fast"})
    );
    assert_eq!(d.handle.secret(&caller, "db").unwrap(), "db-pa55word");
    assert!(matches!(
        d.handle.secret(&caller, "admin"),
        Err(MetadataError::Forbidden(_))
    ));

    d.handle
        .set_output(&caller, "result", json!("ok-result"))
        .unwrap();
    d.handle
        .set_output_sensitive(&caller, "result", true)
        .unwrap();
    let out = d.handle.output(&caller, "worker", "result").unwrap();
    assert_eq!((out.value, out.sensitive), (json!("ok-result"), true));
    assert!(matches!(
        d.handle.output(&caller, "worker", "missing"),
        Err(MetadataError::NotFound(_))
    ));
    d.handle
        .set_decorator(
            &caller,
            "logs",
            json!({"type": "link", "description": "Logs", "uri": "https://example.invalid"}),
        )
        .unwrap();
    d.handle.log(&caller, "result is ok-result".into()).unwrap();
    assert_eq!(d.sink.logs(), ["result is ***"]);
    assert!(matches!(
        d.handle.emit_event(&caller, json!({}), None).await,
        Err(MetadataError::Forbidden(_))
    ));
    assert_eq!(
        d.handle
            .run_workflow(&caller, "other", serde_json::Map::new())
            .await,
        Err(MetadataError::Unavailable(
            "starting other workflows needs the Gantry server".into()
        ))
    );
    assert_eq!(
        d.handle.conditions(&caller).unwrap(),
        gantry_workflow::expr::WhenOutcome::Satisfied
    );

    d.handle.cancel();
    let record = d.finished().await;
    let worker = &record.steps[0];
    assert_eq!(worker.outputs[0].value, json!("***"));
    assert_eq!(worker.decorators.len(), 1);
    // A finished step's token is worthless.
    assert_eq!(d.handle.authenticate(&token), None);
}

#[tokio::test(start_paused = true)]
async fn a_failing_exit_and_a_missing_secret_fail_their_steps_through_the_driver() {
    let d = drive(
        r#"
apiVersion: v1
steps:
- {name: build, image: alpine}
- name: publish
  image: alpine
  env: {TOKEN: "${secrets.registryToken}", OTHER: !Secret present}
- name: rollback
  image: alpine
  dependsOn: build
  when: ${steps.build.failed}
"#,
        &[("build", Script::exit(3))],
        StaticSecrets::with(&[("present", "pr3sent-value")]),
        RunOptions::default(),
    );
    let record = d.finished().await;
    assert_eq!(record.state, RunState::Failed);
    assert_eq!(
        d.step(&record, "build"),
        (StepState::Failed, Some("exit code 3".into()))
    );
    assert_eq!(record.steps[0].exit_code, Some(3));
    let (state, reason) = d.step(&record, "publish");
    assert_eq!(state, StepState::Failed);
    assert_eq!(
        reason.as_deref(),
        Some("cannot start: secret `registryToken` does not exist")
    );
    assert_eq!(d.step(&record, "rollback").0, StepState::Succeeded);
    // The step that could not start never reached the runtime.
    let ran: Vec<String> = d
        .runtime
        .jobs
        .lock()
        .unwrap()
        .iter()
        .map(|j| j.step.clone())
        .collect();
    assert_eq!(ran, ["build", "rollback"]);
    let events = format!("{:?}", d.sink.events.lock().unwrap());
    assert!(!events.contains("pr3sent-value"));
}
