//! The `agent` extension: a workflow's default agent pool, a step's own, the pool in effect,
//! the canonical form, and the pool-name rule. Bad values and their `line:col` diagnostics are
//! pinned by the broken corpus (`agent-pools.yaml`).

use gantry_workflow::{check_agent_pool, parse, Code, Severity, Workflow, MAX_AGENT_POOL_CHARS};
use serde_json::json;

use crate::corpus_files;

const POOLS: &str = r#"
apiVersion: v1
agent: dc-west
timeout: 90m
steps:
- name: extract
  image: relaysh/core
- name: train
  image: relaysh/core
  agent: gpu_large.2
  dependsOn: extract
  timeout: 2h
- name: approve
  type: approval
  dependsOn: train
"#;

fn valid(src: &str) -> Workflow {
    let parsed = parse(src);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    parsed.workflow
}

/// Each step's name and the pool in effect for it.
fn pools(wf: &Workflow) -> Vec<(&str, Option<&str>)> {
    wf.steps
        .iter()
        .map(|s| (s.name.as_str(), wf.agent_of(s).map(|p| p.as_str())))
        .collect()
}

#[test]
fn a_step_runs_on_its_own_pool_else_the_workflows() {
    let wf = valid(POOLS);
    let default = wf.agent.as_ref().unwrap();
    assert_eq!(default.as_str(), "dc-west");
    assert_eq!(&POOLS[default.span.range()], "dc-west");
    let own = wf.step("train").unwrap().agent.as_ref().unwrap();
    assert_eq!(own.as_str(), "gpu_large.2");
    assert_eq!(&POOLS[own.span.range()], "gpu_large.2");
    assert_eq!(wf.step("extract").unwrap().agent, None);
    assert_eq!(
        pools(&wf),
        [
            ("extract", Some("dc-west")),
            ("train", Some("gpu_large.2")),
            // An approval runs nowhere, whatever the workflow's default.
            ("approve", None),
        ]
    );
}

#[test]
fn without_agent_every_step_runs_on_the_server() {
    let wf = valid("steps:\n- name: a\n  image: x\n- name: b\n  image: x\n  agent: edge\n");
    assert_eq!(wf.agent, None);
    assert_eq!(pools(&wf), [("a", None), ("b", Some("edge"))]);
    let wf = valid("steps:\n- name: a\n  image: x\n");
    assert_eq!(pools(&wf), [("a", None)]);
    assert_eq!(
        wf.to_json(),
        json!({"steps": [{"name": "a", "image": "x"}]})
    );
}

#[test]
fn an_approval_ignores_agent_with_a_warning() {
    let src = "agent: edge\nsteps:\n- name: ok\n  type: approval\n  agent: edge\n";
    let parsed = parse(src);
    assert!(parsed.is_valid());
    let [d] = parsed.diagnostics.as_slice() else {
        panic!("{:?}", parsed.diagnostics)
    };
    assert_eq!(
        (d.severity, d.code, d.message.as_str()),
        (
            Severity::Warning,
            Code::ApprovalIgnoredField,
            "`agent` is ignored on an approval step"
        )
    );
    assert_eq!(&src[d.span.range()], "agent");
    let step = &parsed.workflow.steps[0];
    assert_eq!(step.agent, None);
    assert_eq!(parsed.workflow.agent_of(step), None);
}

#[test]
fn the_canonical_form_carries_both_pools_and_reads_back_the_same() {
    let wf = valid(POOLS);
    let stored = wf.to_json();
    assert_eq!(
        stored,
        json!({
            "apiVersion": "v1",
            "timeout": "5400000ms",
            "agent": "dc-west",
            "steps": [
                {"name": "extract", "image": "relaysh/core"},
                {
                    "name": "train",
                    "image": "relaysh/core",
                    "dependsOn": ["extract"],
                    "timeout": "7200000ms",
                    "agent": "gpu_large.2",
                },
                {"name": "approve", "type": "approval", "dependsOn": ["train"]},
            ],
        })
    );
    let again = valid(&stored.to_string());
    assert_eq!(again.to_json(), stored);
    assert_eq!(again.agent.as_ref().map(|a| a.as_str()), Some("dc-west"));
    assert_eq!(pools(&again), pools(&wf));
}

/// Every valid workflow's stored form is a fixed point: reading it back and storing it again
/// changes nothing, pools included, and only the file that names pools stores any.
#[test]
fn every_valid_workflow_round_trips_through_its_canonical_form() {
    for path in corpus_files("valid") {
        let src = std::fs::read_to_string(&path).unwrap();
        let wf = parse(&src).workflow;
        let stored = wf.to_json();
        let again = parse(&stored.to_string()).workflow;
        assert_eq!(again.to_json(), stored, "{}", path.display());
        assert_eq!(pools(&again), pools(&wf), "{}", path.display());
        let names_pools = stored.get("agent").is_some()
            || stored["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s.get("agent").is_some());
        let agent_file = path.ends_with("gantry-agent-pools.yaml");
        assert_eq!(names_pools, agent_file, "{}", path.display());
    }
}

#[test]
fn pool_names_follow_the_agent_token_rule() {
    let longest = "a".repeat(MAX_AGENT_POOL_CHARS);
    for ok in ["edge", "dc-west.db", "gpu_large.2", "0", "-", &longest] {
        assert_eq!(check_agent_pool(ok), Ok(()), "{ok}");
    }
    let rule = "a pool name is 1 to 100 lowercase letters, digits, `-`, `_` or `.`";
    for (bad, problem) in [
        ("", "a pool name cannot be empty".to_owned()),
        ("Edge", format!("`Edge` contains `E`; {rule}")),
        ("edge eu", format!("`edge eu` contains a space; {rule}")),
        ("edge/eu", format!("`edge/eu` contains `/`; {rule}")),
        ("pöol", format!("`pöol` contains `ö`; {rule}")),
        (
            &format!("{longest}b"),
            format!("`aaaaaaaaaaaaaaaaaaaa…` is 101 characters long; {rule}"),
        ),
    ] {
        assert_eq!(check_agent_pool(bad), Err(problem), "{bad}");
    }
}
