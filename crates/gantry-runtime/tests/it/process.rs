//! What only the process runtime does: it needs a command, ignores the image, runs in the
//! step's folder, and has nothing to clean up; and the runtime names.

use gantry_engine::runtime::{Program, StepOutcome};

use crate::support::{failure, Backend, Harness};

async fn harness(case: &str) -> Harness {
    Harness::new(Backend::Process, case).await
}

#[tokio::test]
async fn no_command_fails_to_start() {
    let h = harness("no_command").await;
    let program = Program::Command {
        command: None,
        args: vec!["ignored".into()],
    };
    let (outcome, _) = h.run(h.job(program)).await;
    assert_eq!(
        failure(&outcome),
        "the process runtime needs `command` or `input`"
    );
}

#[tokio::test]
async fn the_image_is_ignored() {
    let h = harness("image_ignored").await;
    let mut job = h.script("exit 0");
    job.image = Some("gantry-test/does-not-exist:1".into());
    let (outcome, _) = h.run(job).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
}

#[tokio::test]
async fn the_step_runs_in_its_folder() {
    let h = harness("working_dir").await;
    let (outcome, output) = h.run(h.script("pwd -P")).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
    let expected = h.step_dir().canonicalize().unwrap();
    assert_eq!(output.stdout(), [expected.display().to_string()]);
}

#[tokio::test]
async fn a_killed_step_reports_128_plus_the_signal() {
    let h = harness("killed").await;
    let (outcome, _) = h.run(h.script("kill -9 $$")).await;
    assert_eq!(outcome, StepOutcome::Exited(137));
}

#[tokio::test]
async fn clean_up_has_nothing_to_remove() {
    let h = harness("clean_up").await;
    assert_eq!(h.runtime.clean_up(Some(&h.run_id)).await, Ok(0));
    assert_eq!(h.runtime.clean_up(None).await, Ok(0));
}

#[tokio::test]
async fn runtimes_are_found_by_name() {
    let runtime = gantry_runtime::runtime_by_name("process").await.unwrap();
    assert_eq!(runtime.name(), "process");
    let err = gantry_runtime::runtime_by_name("kubernetes")
        .await
        .err()
        .expect("an unknown name");
    assert_eq!(
        err.to_string(),
        "unknown step runtime `kubernetes`: expected one of docker, process"
    );
}
