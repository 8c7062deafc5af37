//! The state machine, driven by hand: one test per transition.

use std::time::Duration;

use serde_json::{json, Value};

use gantry_engine::run::{
    Action, InputError, Resumed, RunError, RunOptions, SecretAccess, StepSnapshot, StopReason,
    CUT_OFF, MASK,
};
use gantry_engine::runtime::StepOutcome;
use gantry_engine::sink::{RunEvent, RunState, StepState};
use gantry_workflow::expr::WhenOutcome;

use crate::support::{Machine, StaticSecrets};

fn options(f: impl FnOnce(&mut RunOptions)) -> RunOptions {
    let mut o = RunOptions::default();
    f(&mut o);
    o
}

fn spec_of(actions: &[Action], step: &str) -> Value {
    actions
        .iter()
        .find_map(|a| match a {
            Action::StartStep { step: s, spec, .. } if s == step => Some(spec.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("`{step}` was not started"))
}

const CHAIN: &str = r#"
apiVersion: v1
steps:
- name: a
  image: alpine
- name: b
  image: alpine
  dependsOn: a
- name: c
  image: alpine
  dependsOn: b
"#;

#[test]
fn sequential_steps_run_one_after_another_and_the_run_succeeds() {
    let mut m = Machine::new(CHAIN);
    assert_eq!(m.start(), ["a"]);
    assert_eq!(m.state("b"), StepState::Pending);
    assert_eq!(m.exit("a", 0), ["b"]);
    assert_eq!(m.exit("b", 0), ["c"]);
    assert_eq!(m.run.state(), RunState::Running);
    assert_eq!(m.exit("c", 0), Vec::<String>::new());
    assert_eq!(m.run.state(), RunState::Succeeded);
    let last = m.events.last().unwrap();
    assert!(
        matches!(
            last,
            RunEvent::RunChanged {
                state: RunState::Succeeded,
                ..
            }
        ),
        "{last:?}"
    );
    let record = m.run.record();
    assert!(record.ended_at.is_some());
    assert!(record.steps.iter().all(|s| s.state == StepState::Succeeded));
    assert_eq!(record.steps[0].exit_code, Some(0));
}

#[test]
fn outputs_flow_across_three_steps() {
    let mut m = Machine::new(
        r#"
apiVersion: v1
steps:
- name: one
  image: alpine
- name: two
  image: alpine
  spec:
    version: ${outputs.one.version}
- name: three
  image: alpine
  spec:
    version: ${outputs.one.version}
    artifact: !Output {from: two, name: artifact}
    both: !Fn.concat [!Output [one, version], "-", "${outputs.two.artifact}"]
"#,
    );
    assert_eq!(m.start(), ["one"]);
    m.run.set_output("one", "version", json!("1.2.3")).unwrap();
    m.run
        .step_exited("one", StepOutcome::Exited(0), m.now)
        .unwrap();
    let actions = m.actions();
    assert_eq!(spec_of(&actions, "two"), json!({"version": "1.2.3"}));
    m.run
        .set_output("two", "artifact", json!("app.tar"))
        .unwrap();
    m.run
        .step_exited("two", StepOutcome::Exited(0), m.now)
        .unwrap();
    let actions = m.actions();
    assert_eq!(
        spec_of(&actions, "three"),
        json!({"version": "1.2.3", "artifact": "app.tar", "both": "1.2.3-app.tar"})
    );
}

#[test]
fn independent_steps_run_in_parallel_up_to_max_parallel() {
    let yaml = r#"
apiVersion: v1
steps:
- {name: a, image: alpine}
- {name: b, image: alpine}
- {name: c, image: alpine}
- {name: d, image: alpine}
- {name: e, image: alpine, dependsOn: [a, b, c, d]}
"#;
    let mut unlimited = Machine::new(yaml);
    assert_eq!(unlimited.start(), ["a", "b", "c", "d"]);

    let mut m = Machine::build(
        yaml,
        Value::Null,
        options(|o| o.max_parallel = 2),
        StaticSecrets::with(&[]),
    )
    .unwrap();
    assert_eq!(m.start(), ["a", "b"]);
    assert_eq!(m.state("c"), StepState::Pending);
    assert_eq!(m.exit("b", 0), ["c"]);
    assert_eq!(m.exit("a", 0), ["d"]);
    assert_eq!(m.exit("c", 0), Vec::<String>::new());
    assert_eq!(m.exit("d", 0), ["e"]);
    m.exit("e", 0);
    assert_eq!(m.run.state(), RunState::Succeeded);
}

#[test]
fn a_failed_step_fails_the_run_running_steps_finish_pending_ones_are_skipped() {
    let mut m = Machine::new(
        r#"
apiVersion: v1
steps:
- {name: slow, image: alpine}
- {name: bad, image: alpine}
- {name: after-bad, image: alpine, dependsOn: bad}
- {name: after-slow, image: alpine, dependsOn: slow}
"#,
    );
    assert_eq!(m.start(), ["slow", "bad"]);
    assert_eq!(m.exit("bad", 1), Vec::<String>::new());
    assert_eq!(m.state("bad"), StepState::Failed);
    assert_eq!(m.reason("bad").as_deref(), Some("exit code 1"));
    assert_eq!(m.state("after-bad"), StepState::Skipped);
    assert_eq!(m.reason("after-bad").as_deref(), Some("the run failed"));
    assert_eq!(m.state("after-slow"), StepState::Skipped);
    // The running step is left to finish; the run is not over until it does.
    assert_eq!(m.state("slow"), StepState::Running);
    assert_eq!(m.run.state(), RunState::Running);
    assert_eq!(m.exit("slow", 0), Vec::<String>::new());
    assert_eq!(m.state("slow"), StepState::Succeeded);
    assert_eq!(m.run.state(), RunState::Failed);
    assert_eq!(m.run.record().reason.as_deref(), Some("step `bad` failed"));
}

const CLEANUP: &str = r#"
apiVersion: v1
steps:
- {name: deploy, image: alpine}
- name: notify
  image: alpine
  dependsOn: deploy
- name: cleanup-on-failure
  image: alpine
  dependsOn: deploy
  when: ${steps.deploy.failed}
"#;

#[test]
fn the_cleanup_step_runs_when_its_dependency_failed() {
    let mut m = Machine::new(CLEANUP);
    assert_eq!(m.start(), ["deploy"]);
    assert_eq!(m.exit("deploy", 2), ["cleanup-on-failure"]);
    assert_eq!(m.state("notify"), StepState::Skipped);
    m.exit("cleanup-on-failure", 0);
    assert_eq!(m.state("cleanup-on-failure"), StepState::Succeeded);
    assert_eq!(m.run.state(), RunState::Failed);
}

#[test]
fn the_cleanup_step_is_skipped_when_its_dependency_succeeded() {
    let mut m = Machine::new(CLEANUP);
    m.start();
    assert_eq!(m.exit("deploy", 0), ["notify"]);
    assert_eq!(m.state("cleanup-on-failure"), StepState::Skipped);
    assert_eq!(
        m.reason("cleanup-on-failure").as_deref(),
        Some("when condition is false")
    );
    m.exit("notify", 0);
    assert_eq!(m.run.state(), RunState::Succeeded);
}

#[test]
fn a_false_when_skips_the_step_and_its_dependents_without_failing_the_run() {
    let mut m = Machine::new(
        r#"
apiVersion: v1
parameters:
  env: {default: staging}
steps:
- name: prod-only
  image: alpine
  when: ${parameters.env == 'production'}
- name: after-prod
  image: alpine
  dependsOn: prod-only
- {name: always, image: alpine}
"#,
    );
    assert_eq!(m.start(), ["always"]);
    assert_eq!(m.state("prod-only"), StepState::Skipped);
    assert_eq!(
        m.reason("prod-only").as_deref(),
        Some("when condition is false")
    );
    assert_eq!(m.state("after-prod"), StepState::Skipped);
    assert_eq!(
        m.reason("after-prod").as_deref(),
        Some("dependency `prod-only` was skipped")
    );
    m.exit("always", 0);
    assert_eq!(m.run.state(), RunState::Succeeded);
}

#[test]
fn a_when_that_is_not_a_boolean_fails_the_step() {
    let mut m = Machine::new(
        r#"
apiVersion: v1
parameters:
  count: {default: 3}
steps:
- name: odd
  image: alpine
  when: ${parameters.count}
"#,
    );
    assert_eq!(m.start(), Vec::<String>::new());
    assert_eq!(m.state("odd"), StepState::Failed);
    let reason = m.reason("odd").unwrap();
    assert!(reason.contains("must evaluate to a boolean"), "{reason}");
    assert_eq!(m.run.state(), RunState::Failed);
}

const APPROVAL: &str = r#"
apiVersion: v1
steps:
- {name: build, image: alpine}
- name: gate
  type: approval
  description: Ship it?
  dependsOn: build
- name: deploy
  image: alpine
  dependsOn: gate
  spec:
    answer: !Answer {askRef: gate, name: approval}
"#;

#[test]
fn an_approved_approval_lets_its_dependents_run() {
    let mut m = Machine::new(APPROVAL);
    m.start();
    // Not answerable before its dependencies are done.
    assert!(matches!(
        m.run.answer("gate", true, None, m.now),
        Err(InputError::NotWaiting { .. })
    ));
    assert_eq!(m.exit("build", 0), Vec::<String>::new());
    assert_eq!(m.state("gate"), StepState::Waiting);
    assert_eq!(m.run.approval_state("gate"), Some("waiting"));
    m.wait(60);
    m.run
        .answer("gate", true, Some("alice".into()), m.now)
        .unwrap();
    let actions = m.actions();
    assert_eq!(spec_of(&actions, "deploy"), json!({"answer": "approved"}));
    assert_eq!(m.state("gate"), StepState::Succeeded);
    assert_eq!(m.reason("gate").as_deref(), Some("approved by alice"));
    assert_eq!(m.run.approval_state("gate"), Some("approved"));
    let approval = m.run.record().steps[1].approval.clone().unwrap();
    assert!(approval.approved);
    assert_eq!(approval.by.as_deref(), Some("alice"));
    // A second answer is refused and changes nothing.
    assert!(m.run.answer("gate", false, None, m.now).is_err());
    assert_eq!(m.state("gate"), StepState::Succeeded);
    m.exit("deploy", 0);
    assert_eq!(m.run.state(), RunState::Succeeded);
}

#[test]
fn a_denied_approval_fails_the_run() {
    let mut m = Machine::new(APPROVAL);
    m.start();
    m.exit("build", 0);
    m.run
        .answer("gate", false, Some("bob".into()), m.now)
        .unwrap();
    assert!(m.started().is_empty());
    assert_eq!(m.state("gate"), StepState::Failed);
    assert_eq!(m.reason("gate").as_deref(), Some("denied by bob"));
    assert_eq!(m.run.approval_state("gate"), Some("rejected"));
    assert_eq!(m.state("deploy"), StepState::Skipped);
    assert_eq!(m.run.state(), RunState::Failed);
}

#[test]
fn an_unanswered_approval_expires_after_an_hour() {
    let mut m = Machine::new(APPROVAL);
    m.start();
    m.exit("build", 0);
    assert_eq!(
        m.run.next_deadline(),
        Some(m.now + chrono::Duration::hours(1))
    );
    m.tick(3599);
    assert_eq!(m.state("gate"), StepState::Waiting);
    m.tick(1);
    assert_eq!(m.state("gate"), StepState::Failed);
    assert_eq!(
        m.reason("gate").as_deref(),
        Some("approval expired after 1h")
    );
    assert_eq!(m.state("deploy"), StepState::Skipped);
    assert_eq!(m.run.state(), RunState::Failed);
}

#[test]
fn a_step_past_its_timeout_is_stopped_and_fails() {
    let mut m = Machine::new(
        r#"
apiVersion: v1
steps:
- name: hang
  image: alpine
  timeout: 30s
- {name: next, image: alpine, dependsOn: hang}
"#,
    );
    m.start();
    assert!(m.tick(29).is_empty());
    assert_eq!(
        m.tick(1),
        [Action::StopStep {
            step: "hang".into(),
            reason: StopReason::Timeout(Duration::from_secs(30)),
        }]
    );
    // Stopping is asked once; the step stays running until the runtime reports its end.
    assert!(m.tick(5).is_empty());
    assert_eq!(m.state("hang"), StepState::Running);
    m.run
        .step_exited("hang", StepOutcome::Cancelled, m.now)
        .unwrap();
    assert_eq!(m.state("hang"), StepState::Failed);
    assert_eq!(m.reason("hang").as_deref(), Some("timed out after 30s"));
    assert_eq!(m.state("next"), StepState::Skipped);
    assert_eq!(m.run.state(), RunState::Failed);
}

#[test]
fn the_default_step_timeout_comes_from_the_options() {
    let mut m = Machine::build(
        CHAIN,
        Value::Null,
        options(|o| o.step_timeout = Some(Duration::from_secs(90))),
        StaticSecrets::with(&[]),
    )
    .unwrap();
    m.start();
    assert_eq!(
        m.tick(90),
        [Action::StopStep {
            step: "a".into(),
            reason: StopReason::Timeout(Duration::from_secs(90)),
        }]
    );
    m.run
        .step_exited("a", StepOutcome::Cancelled, m.now)
        .unwrap();
    assert_eq!(m.reason("a").as_deref(), Some("timed out after 1m30s"));
}

#[test]
fn a_run_past_its_timeout_stops_everything_and_times_out() {
    let mut m = Machine::new(
        r#"
apiVersion: v1
timeout: 10m
steps:
- {name: long, image: alpine}
- {name: next, image: alpine, dependsOn: long}
"#,
    );
    m.start();
    assert_eq!(m.tick(599), []);
    assert_eq!(
        m.tick(1),
        [Action::StopStep {
            step: "long".into(),
            reason: StopReason::RunTimedOut(Duration::from_secs(600)),
        }]
    );
    assert_eq!(m.state("next"), StepState::Skipped);
    assert_eq!(
        m.reason("next").as_deref(),
        Some("the run timed out after 10m")
    );
    assert_eq!(m.run.state(), RunState::Running);
    m.run
        .step_exited("long", StepOutcome::Cancelled, m.now)
        .unwrap();
    assert_eq!(m.state("long"), StepState::Cancelled);
    assert_eq!(m.run.state(), RunState::TimedOut);
    assert_eq!(
        m.run.record().reason.as_deref(),
        Some("timed out after 10m")
    );
}

#[test]
fn cancel_stops_running_steps_and_cancels_the_rest() {
    let mut m = Machine::new(
        r#"
apiVersion: v1
steps:
- {name: a, image: alpine}
- {name: b, image: alpine, dependsOn: a}
- {name: gate, type: approval}
"#,
    );
    assert_eq!(m.start(), ["a"]);
    assert_eq!(m.state("gate"), StepState::Waiting);
    m.run.cancel(m.now);
    assert_eq!(
        m.actions(),
        [Action::StopStep {
            step: "a".into(),
            reason: StopReason::Cancelled,
        }]
    );
    assert_eq!(m.state("b"), StepState::Cancelled);
    assert_eq!(m.state("gate"), StepState::Cancelled);
    // A second cancel asks nothing more.
    m.run.cancel(m.now);
    assert!(m.actions().is_empty());
    assert_eq!(m.run.state(), RunState::Running);
    m.run
        .step_exited("a", StepOutcome::Cancelled, m.now)
        .unwrap();
    assert_eq!(m.state("a"), StepState::Cancelled);
    assert_eq!(m.run.state(), RunState::Cancelled);
}

#[test]
fn a_missing_required_parameter_is_refused_with_its_name() {
    let yaml = r#"
apiVersion: v1
parameters:
  env: {description: where to}
  region: {default: eu}
steps:
- {name: a, image: alpine, spec: {env: !Parameter env}}
"#;
    let err = Machine::build(
        yaml,
        Value::Null,
        RunOptions::default(),
        StaticSecrets::with(&[]),
    )
    .err()
    .unwrap();
    assert_eq!(err, RunError::MissingParameters(vec!["env".into()]));
    assert_eq!(
        err.to_string(),
        "no value for parameter `env`: the workflow gives no default"
    );
    let err = Machine::build(
        yaml,
        json!({"env": "prod", "zone": "b"}),
        RunOptions::default(),
        StaticSecrets::with(&[]),
    )
    .err()
    .unwrap();
    assert_eq!(err.to_string(), "the workflow declares no parameter `zone`");
    let mut m = Machine::build(
        yaml,
        json!({"env": "prod"}),
        RunOptions::default(),
        StaticSecrets::with(&[]),
    )
    .unwrap();
    assert_eq!(m.run.parameters()["region"], json!("eu"));
    m.run.start(m.now);
    assert_eq!(spec_of(&m.actions(), "a"), json!({"env": "prod"}));
}

#[test]
fn a_missing_secret_fails_the_step_naming_it_without_any_value() {
    let mut m = Machine::build(
        r#"
apiVersion: v1
steps:
- name: deploy
  image: alpine
  env:
    TOKEN: ${secrets.deployToken}
  spec:
    password: !Secret dbPassword
    cluster: !Connection {type: kubernetes, name: prod}
"#,
        Value::Null,
        RunOptions::default(),
        StaticSecrets::with(&[("dbPassword", "hunter2-very-secret")]),
    )
    .unwrap();
    assert!(m.start().is_empty());
    assert_eq!(m.state("deploy"), StepState::Failed);
    let reason = m.reason("deploy").unwrap();
    assert!(
        reason.contains("secret `deployToken` does not exist"),
        "{reason}"
    );
    assert!(
        reason.contains("connection `prod` of type `kubernetes` does not exist"),
        "{reason}"
    );
    assert!(!reason.contains("hunter2"), "{reason}");
    for e in &m.events {
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    }
    assert_eq!(m.run.state(), RunState::Failed);
}

#[test]
fn resolved_secrets_and_sensitive_outputs_are_masked() {
    let mut m = Machine::build(
        r#"
apiVersion: v1
steps:
- name: deploy
  image: alpine
  env: {TOKEN: !Secret token}
"#,
        Value::Null,
        RunOptions::default(),
        StaticSecrets::with(&[("token", "s3cr3t"), ("unused", "never-asked")]),
    )
    .unwrap();
    m.start();
    m.run
        .set_output("deploy", "key", json!("k3y-value"))
        .unwrap();
    m.run.set_output_sensitive("deploy", "key", true).unwrap();
    let masks = m.run.masks().to_vec();
    assert_eq!(masks, ["k3y-value", "s3cr3t"]);
    assert_eq!(
        gantry_engine::run::mask_line("s3cr3t and k3y-value", &masks),
        "*** and ***"
    );
}

#[test]
fn the_record_masks_sensitive_outputs() {
    let mut m = Machine::new(CHAIN);
    m.start();
    m.run.set_output_sensitive("a", "password", true).unwrap();
    m.run.set_output("a", "password", json!("p4ss")).unwrap();
    m.run
        .set_output("a", "version", json!({"major": 1}))
        .unwrap();
    m.exit("a", 0);
    let record = m.run.record();
    let outputs = &record.steps[0].outputs;
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0].name, "password");
    assert!(outputs[0].sensitive);
    assert_eq!(outputs[0].value, json!(MASK));
    assert_eq!(outputs[1].value, json!({"major": 1}));
    assert!(!format!("{record:?}").contains("p4ss"));
    // Other steps still read the real value.
    assert_eq!(m.run.output("a", "password").unwrap().value, json!("p4ss"));
}

const DYNAMIC_OUTPUT: &str = r#"
apiVersion: v1
parameters:
  source: {default: build}
steps:
- {name: build, image: alpine}
- name: deploy
  image: alpine
  when: ${outputs[parameters.source].ready == 'yes'}
"#;

#[test]
fn a_step_waits_while_the_output_its_condition_needs_is_unset() {
    let mut m = Machine::new(DYNAMIC_OUTPUT);
    assert_eq!(m.start(), ["build"]);
    assert_eq!(m.state("deploy"), StepState::Pending);
    let WhenOutcome::Unresolved(u) = m.run.conditions_for("deploy", m.now).unwrap() else {
        panic!("the condition should wait for the output");
    };
    assert_eq!(u.outputs[0].from, "build");
    m.run.tick(m.now);
    assert_eq!(m.state("deploy"), StepState::Pending);
    m.run.set_output("build", "ready", json!("yes")).unwrap();
    m.run.tick(m.now);
    assert_eq!(m.started(), ["deploy"]);
}

#[test]
fn a_condition_that_can_no_longer_be_decided_skips_the_step() {
    let mut m = Machine::new(DYNAMIC_OUTPUT);
    m.start();
    m.exit("build", 0);
    assert_eq!(m.state("deploy"), StepState::Skipped);
    assert_eq!(
        m.reason("deploy").as_deref(),
        Some("when condition could not be decided: output `ready` of step `build` was not set")
    );
    assert_eq!(m.run.state(), RunState::Succeeded);
}

#[test]
fn the_same_exit_reported_twice_changes_state_once() {
    let mut m = Machine::new(CHAIN);
    m.start();
    assert_eq!(m.exit("a", 0), ["b"]);
    let events = m.events.len();
    assert_eq!(
        m.run.step_exited("a", StepOutcome::Exited(1), m.now),
        Err(InputError::NotRunning {
            step: "a".into(),
            state: "succeeded"
        })
    );
    assert!(m.actions().is_empty());
    assert_eq!(m.events.len(), events);
    assert_eq!(m.state("a"), StepState::Succeeded);
    // Late outputs of a finished step are refused too.
    assert!(m.run.set_output("a", "late", json!(1)).is_err());
    // A step never started cannot end either.
    assert!(m
        .run
        .step_exited("c", StepOutcome::Exited(0), m.now)
        .is_err());
    assert_eq!(m.state("c"), StepState::Pending);
}

#[test]
fn conditions_include_the_implicit_dependency_conditions() {
    let mut m = Machine::new(
        r#"
apiVersion: v1
steps:
- {name: build-it, image: alpine}
- {name: ship, image: alpine, dependsOn: build-it}
"#,
    );
    m.start();
    let WhenOutcome::Unresolved(u) = m.run.conditions_for("ship", m.now).unwrap() else {
        panic!("undecided while `build-it` runs");
    };
    assert_eq!(u.statuses[0].action, "build-it");
    m.exit("build-it", 0);
    assert_eq!(
        m.run.conditions_for("ship", m.now).unwrap(),
        WhenOutcome::Satisfied
    );
}

#[test]
fn a_step_reads_only_the_secrets_its_spec_or_env_names() {
    let mut m = Machine::build(
        r#"
apiVersion: v1
parameters:
  which: {default: dynamic}
steps:
- name: a
  image: alpine
  spec:
    fixed: !Secret fixed
    computed: ${secrets[parameters.which]}
- {name: b, image: alpine}
"#,
        Value::Null,
        RunOptions::default(),
        StaticSecrets::with(&[("fixed", "f1"), ("dynamic", "d1"), ("other", "o1")]),
    )
    .unwrap();
    m.start();
    let now = m.now;
    assert_eq!(
        m.run.secret_for("a", "fixed", now).unwrap(),
        SecretAccess::Value("f1".into())
    );
    assert_eq!(
        m.run.secret_for("a", "dynamic", now).unwrap(),
        SecretAccess::Value("d1".into())
    );
    assert_eq!(
        m.run.secret_for("a", "other", now).unwrap(),
        SecretAccess::NotReferenced
    );
    assert_eq!(
        m.run.secret_for("b", "fixed", now).unwrap(),
        SecretAccess::NotReferenced
    );
}

fn snapshot(step: &str, state: StepState) -> StepSnapshot {
    StepSnapshot {
        step: step.into(),
        state,
        reason: None,
        started_at: Some(crate::support::t0()),
        ended_at: state.is_final().then(crate::support::t0),
        exit_code: (state == StepState::Succeeded).then_some(0),
    }
}

#[test]
fn a_resumed_run_waits_again_for_its_step_on_an_agent_and_goes_on() {
    let mut m = Machine::build(
        r#"
apiVersion: v1
steps:
- name: build
  image: alpine
- name: deploy
  image: alpine
  dependsOn: build
  spec:
    version: ${outputs.build.version}
    token: !Secret token
- name: notify
  image: alpine
  dependsOn: deploy
  spec:
    url: ${outputs.deploy.url}
"#,
        Value::Null,
        RunOptions::default(),
        StaticSecrets::with(&[("token", "s3cret-token")]),
    )
    .unwrap();
    m.wait(30);
    m.run.resume(
        Resumed {
            started_at: Some(crate::support::t0()),
            steps: vec![
                snapshot("build", StepState::Succeeded),
                snapshot("deploy", StepState::Running),
            ],
            outputs: vec![("build".into(), "version".into(), json!("1.2.3"), false)],
            still_running: ["deploy".to_owned()].into(),
        },
        m.now,
    );
    let actions = m.actions();
    // Waited for again with its spec as it was evaluated; nothing starts anew.
    assert_eq!(
        actions,
        [Action::ReattachStep {
            step: "deploy".into(),
            spec: json!({"version": "1.2.3", "token": "s3cret-token"}),
            env: serde_json::Map::new(),
        }]
    );
    // Nothing recorded before is reported again; the run learnt what to mask.
    assert!(m.events.is_empty(), "{:?}", m.events);
    assert!(m.run.masks().contains(&"s3cret-token".to_owned()));
    assert_eq!(m.run.state(), RunState::Running);
    // Its end comes as any step's.
    m.run
        .set_output("deploy", "url", json!("https://example.test"))
        .unwrap();
    m.run
        .step_exited("deploy", StepOutcome::Exited(0), m.now)
        .unwrap();
    let actions = m.actions();
    assert_eq!(
        spec_of(&actions, "notify"),
        json!({"url": "https://example.test"})
    );
    m.run
        .step_exited("notify", StepOutcome::Exited(0), m.now)
        .unwrap();
    assert_eq!(m.run.state(), RunState::Succeeded);
    let record = m.run.record();
    assert_eq!(record.started_at, Some(crate::support::t0()));
    assert_eq!(record.steps[0].outputs[0].value, json!("1.2.3"));
}

#[test]
fn a_step_the_stop_cut_off_fails_on_resumption_and_the_agents_step_still_ends() {
    let mut m = Machine::new(
        r#"
apiVersion: v1
steps:
- {name: here, image: alpine}
- {name: there, image: alpine}
- {name: after, image: alpine, dependsOn: here}
"#,
    );
    m.run.resume(
        Resumed {
            started_at: Some(crate::support::t0()),
            steps: vec![
                snapshot("here", StepState::Running),
                snapshot("there", StepState::Running),
            ],
            outputs: Vec::new(),
            still_running: ["there".to_owned()].into(),
        },
        m.now,
    );
    let actions = m.actions();
    assert!(matches!(&actions[..], [Action::ReattachStep { step, .. }] if step == "there"));
    assert_eq!(m.state("here"), StepState::Failed);
    assert_eq!(m.run.record().steps[0].reason.as_deref(), Some(CUT_OFF));
    assert_eq!(m.state("after"), StepState::Skipped);
    // Running steps finish (Relay's rule), then the run fails.
    assert_eq!(m.run.state(), RunState::Running);
    m.run
        .step_exited("there", StepOutcome::Exited(0), m.now)
        .unwrap();
    assert_eq!(m.run.state(), RunState::Failed);
    // A second resumption, or a start, changes nothing.
    m.run.resume(Resumed::default(), m.now);
    m.run.start(m.now);
    assert!(m.actions().is_empty());
}
