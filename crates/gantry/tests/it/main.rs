//! End-to-end tests of the `gantry` binary: exit codes, human and JSON output, real runs.

mod access;
mod actions;
mod agent;
mod catalog;
mod cli;
mod run;
mod scorecards;
mod server;
mod sweep;
mod triggers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus(kind: &str, name: &str) -> String {
    repo()
        .join("crates/gantry-workflow/tests/corpus")
        .join(kind)
        .join(name)
        .display()
        .to_string()
}

fn gantry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run gantry")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn validate_valid_file_exits_zero() {
    let o = gantry(&[
        "workflow",
        "validate",
        &corpus("valid", "deploy-with-approval.yaml"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("deploy-with-approval.yaml: valid (0 errors, 0 warnings)"));
}

#[test]
fn validate_reports_every_mistake_with_source_line() {
    let file = corpus("invalid", "many-mistakes.yaml");
    let o = gantry(&["workflow", "validate", "--color", "never", &file]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "{file}:12:14: no step named `biuld` [unknown_step]"
        )),
        "{out}"
    );
    assert!(out.contains("12 │   dependsOn: biuld"), "{out}");
    assert!(out.contains("help: did you mean `build`?"), "{out}");
    assert!(out.contains("invalid (5 errors, 0 warnings)"), "{out}");
    assert!(!out.contains("\u{1b}["), "colour with --color never");
}

#[test]
fn validate_json_lists_each_file() {
    let good = corpus("valid", "minimal-hello-world.yaml");
    let bad = corpus("invalid", "many-mistakes.yaml");
    let o = gantry(&["workflow", "validate", "--format", "json", &good, &bad]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["file"], good);
    assert_eq!(v[0]["valid"], true);
    assert_eq!(v[0]["diagnostics"], Value::Array(vec![]));
    assert_eq!(v[1]["valid"], false);
    let codes: Vec<(String, u64, u64)> = v[1]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["severity"], "error");
            assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()));
            (
                d["code"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("undeclared_parameter", 9, 16),
        ("unknown_step", 12, 14),
        ("unknown_tag", 14, 14),
        ("expression_syntax", 15, 12),
        ("invalid_status_property", 18, 11),
    ];
    let expected: Vec<(String, u64, u64)> = expected
        .iter()
        .map(|(c, l, col)| ((*c).to_owned(), *l, *col))
        .collect();
    assert_eq!(codes, expected);
}

#[test]
fn validate_missing_file_is_a_clear_error() {
    let o = gantry(&["workflow", "validate", "/nonexistent/flow.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot read /nonexistent/flow.yaml"), "{err}");
}

#[test]
fn plan_json_orders_steps_in_levels() {
    let file = repo().join("examples/hello.yaml").display().to_string();
    let o = gantry(&["workflow", "plan", "--format", "json", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["name"], "hello");
    assert_eq!(v["parameters"][0]["name"], "name");
    assert_eq!(v["parameters"][0]["default"], "world");
    assert_eq!(v["parameters"][0]["required"], false);
    let levels = v["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    assert_eq!(levels[0][0]["name"], "greet");
    assert_eq!(levels[1][0]["name"], "report");
    assert_eq!(levels[1][0]["dependsOn"], serde_json::json!([]));
    assert_eq!(
        levels[1][0]["implicitDependsOn"],
        serde_json::json!(["greet"])
    );
}

#[test]
fn plan_shows_triggers_and_approvals() {
    let file = corpus("valid", "cost-azure-vm-reaper.yaml");
    let o = gantry(&["workflow", "plan", "--color", "never", &file]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("[approval]"), "{out}");
    assert!(out.contains("steps: "), "{out}");
    let json = gantry(&["workflow", "plan", "--format", "json", &file]);
    let v: Value = serde_json::from_str(&stdout(&json)).unwrap();
    let schedules: Vec<&Value> = v["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "schedule")
        .collect();
    assert!(!schedules.is_empty());
    for s in schedules {
        let next = s["next"].as_str().unwrap();
        assert!(next.ends_with('Z') && next.len() == 20, "{next}");
    }
}

#[test]
fn plan_of_invalid_file_fails() {
    let o = gantry(&[
        "workflow",
        "plan",
        &corpus("invalid", "dependency-cycle.yaml"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("a → c → b → a"));
}

#[test]
fn help_and_completions() {
    let o = gantry(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains("workflow") && out.contains("completions"),
        "{out}"
    );
    let o = gantry(&["workflow", "validate", "--help"]);
    assert!(stdout(&o).contains("Exits 0 when every file is valid"));
    let o = gantry(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("_gantry()"));
}
