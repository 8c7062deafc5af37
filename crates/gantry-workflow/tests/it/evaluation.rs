//! Parsing and evaluation together: a workflow's `spec`, `env`, `when` and trigger bindings
//! turn into JSON given run data, with unresolved references kept apart from errors.

use gantry_workflow::expr::{evaluate, evaluate_when, Data, StepStatus, WhenOutcome};
use gantry_workflow::{parse, Workflow};
use serde_json::{json, Value};

const DEPLOY: &str = r#"
apiVersion: v1
parameters:
  env: {default: staging}
steps:
- name: build
  image: relaysh/core
  input: ["ni output set --key version --value 1"]
- name: gate
  type: approval
  dependsOn: build
  when: ${parameters.env == 'production'}
- name: deploy
  image: example/deployer:1.2
  dependsOn: gate
  env:
    TOKEN: ${secrets.deployToken}
    TARGET: 'to ${parameters.env}'
  spec:
    version: ${outputs.build.version}
    legacy: !Output [build, version]
    cluster: !Connection {type: kubernetes, name: prod-cluster}
    env: !Parameter env
    banner: !Fn.concat ['deploying ', !Parameter env]
    approved: !Fn.equals [!Answer [gate, approval], approved]
- name: cleanup-on-failure
  image: relaysh/core
  dependsOn: deploy
  when: ${steps.deploy.failed}
  input: ["echo rollback"]
triggers:
- name: pushed
  source: {type: push}
  binding:
    parameters:
      env: ${event.environment}
    key: !Data id
  when: ${event.environment != 'dev'}
"#;

fn workflow() -> Workflow {
    let parsed = parse(DEPLOY);
    assert!(parsed.is_valid(), "{:?}", parsed.diagnostics);
    parsed.workflow
}

fn spec_of(wf: &Workflow, step: &str) -> Value {
    wf.step(step)
        .unwrap()
        .container()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .to_json()
}

#[test]
fn tags_become_canonical_json() {
    let spec = spec_of(&workflow(), "deploy");
    assert_eq!(
        spec["legacy"],
        json!({"$type": "Output", "from": "build", "name": "version"})
    );
    assert_eq!(
        spec["cluster"],
        json!({"$type": "Connection", "type": "kubernetes", "name": "prod-cluster"})
    );
    assert_eq!(spec["env"], json!({"$type": "Parameter", "name": "env"}));
    assert_eq!(
        spec["banner"],
        json!({"$fn.concat": ["deploying ", {"$type": "Parameter", "name": "env"}]})
    );
    assert_eq!(spec["version"], json!("${outputs.build.version}"));
}

#[test]
fn spec_resolves_with_run_data() {
    let wf = workflow();
    let mut data = Data::default();
    data.parameters.insert("env".into(), json!("production"));
    data.outputs
        .entry("build".into())
        .or_default()
        .insert("version".into(), json!(7));
    data.connections
        .entry("kubernetes".into())
        .or_default()
        .insert(
            "prod-cluster".into(),
            json!({"server": "https://k8s", "token": "t"}),
        );
    data.answers
        .entry("gate".into())
        .or_default()
        .insert("approval".into(), json!("approved"));
    let ev = evaluate(&spec_of(&wf, "deploy"), &data);
    assert!(ev.errors.is_empty(), "{:?}", ev.errors);
    assert!(ev.unresolved.is_empty(), "{:?}", ev.unresolved);
    assert_eq!(
        ev.value,
        json!({
            "version": 7,
            "legacy": 7,
            "cluster": {"server": "https://k8s", "token": "t"},
            "env": "production",
            "banner": "deploying production",
            "approved": true,
        })
    );
}

#[test]
fn missing_data_is_unresolved_not_an_error() {
    let wf = workflow();
    let ev = evaluate(&spec_of(&wf, "deploy"), &Data::default());
    assert!(ev.errors.is_empty(), "{:?}", ev.errors);
    let unresolved = serde_json::to_value(&ev.unresolved).unwrap();
    assert_eq!(
        unresolved["outputs"],
        json!([{"from": "build", "name": "version"}])
    );
    assert_eq!(
        unresolved["connections"],
        json!([{"type": "kubernetes", "name": "prod-cluster"}])
    );
    assert_eq!(unresolved["parameters"], json!([{"name": "env"}]));
    assert_eq!(
        unresolved["answers"],
        json!([{"askRef": "gate", "name": "approval"}])
    );
}

#[test]
fn env_mixes_text_and_secrets() {
    let wf = workflow();
    let env = wf
        .step("deploy")
        .unwrap()
        .container()
        .unwrap()
        .env
        .as_ref()
        .unwrap()
        .to_json();
    let mut data = Data::default();
    data.parameters.insert("env".into(), json!("staging"));
    data.secrets.insert("deployToken".into(), "s3cr3t".into());
    let ev = evaluate(&env, &data);
    assert_eq!(ev.value, json!({"TOKEN": "s3cr3t", "TARGET": "to staging"}));
}

#[test]
fn cleanup_runs_only_when_deploy_failed() {
    let wf = workflow();
    let when = wf
        .step("cleanup-on-failure")
        .unwrap()
        .when
        .as_ref()
        .unwrap()
        .to_json();
    let mut data = Data::default();
    assert!(matches!(
        evaluate_when(&when, &data),
        WhenOutcome::Unresolved(_)
    ));
    data.steps.insert("deploy".into(), StepStatus::Failed);
    assert!(matches!(
        evaluate_when(&when, &data),
        WhenOutcome::Satisfied
    ));
    data.steps.insert("deploy".into(), StepStatus::Succeeded);
    assert!(matches!(
        evaluate_when(&when, &data),
        WhenOutcome::NotSatisfied
    ));
}

#[test]
fn trigger_binding_reads_the_event() {
    let wf = workflow();
    let t = &wf.triggers[0];
    let b = t.binding.as_ref().unwrap();
    let data = Data {
        event: Some(json!({"environment": "production", "id": "evt-1"})),
        ..Data::default()
    };
    assert_eq!(
        evaluate(&b.parameters[0].1.to_json(), &data).value,
        json!("production")
    );
    assert_eq!(
        evaluate(&b.key.as_ref().unwrap().to_json(), &data).value,
        json!("evt-1")
    );
    let when = t.when.as_ref().unwrap().to_json();
    assert!(matches!(
        evaluate_when(&when, &data),
        WhenOutcome::Satisfied
    ));
}

#[test]
fn approval_condition_and_plan() {
    let parsed = parse(DEPLOY);
    let plan = parsed.plan.unwrap();
    let names: Vec<Vec<&str>> = plan
        .levels
        .iter()
        .map(|l| l.iter().map(|&i| plan.steps[i].name.as_str()).collect())
        .collect();
    assert_eq!(
        names,
        vec![
            vec!["build"],
            vec!["gate"],
            vec!["deploy"],
            vec!["cleanup-on-failure"]
        ]
    );
    // `deploy` reads build's outputs, but also lists gate, which depends on build: both kept.
    let (_, deploy) = plan.step("deploy").unwrap();
    assert_eq!(deploy.implicit.len(), 1);
}

#[test]
fn both_syntaxes_evaluate_alike() {
    let src = "steps:\n- name: a\n  image: x\n  spec:\n    tag: !Parameter p\n    template: ${parameters.p}\n    list: !Parameter [p]\n    map: !Parameter {name: p}\nparameters: {p: {default: 1}}\n";
    let parsed = parse(src);
    assert!(parsed.is_valid(), "{:?}", parsed.diagnostics);
    let mut data = Data::default();
    data.parameters.insert("p".into(), json!({"deep": [1, 2]}));
    let ev = evaluate(&spec_of(&parsed.workflow, "a"), &data);
    for key in ["tag", "template", "list", "map"] {
        assert_eq!(ev.value[key], json!({"deep": [1, 2]}), "{key}");
    }
}
