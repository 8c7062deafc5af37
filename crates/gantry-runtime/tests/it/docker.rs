//! What only the Docker runtime does: pulling images, an image's own entrypoint, labels and
//! `clean_up`, and connecting by name.

use std::collections::HashMap;

use bollard::models::ContainerCreateBody;
use gantry_engine::runtime::{Program, StepOutcome};

use crate::support::{failure, Backend, Harness, TEST_IMAGE};

async fn harness(case: &str) -> Harness {
    Harness::new(Backend::Docker, case).await
}

#[tokio::test]
async fn a_missing_image_fails_to_start_naming_it() {
    let h = harness("missing_image").await;
    let mut job = h.script("exit 0");
    job.image = Some("gantry-test/does-not-exist:1".into());
    let (outcome, _) = h.run(job).await;
    let message = failure(&outcome);
    assert!(
        message.starts_with("image `gantry-test/does-not-exist:1` could not be pulled: "),
        "{message}"
    );
}

#[tokio::test]
async fn a_step_without_an_image_fails_to_start() {
    let h = harness("no_image").await;
    let mut job = h.script("exit 0");
    job.image = None;
    let (outcome, _) = h.run(job).await;
    assert_eq!(failure(&outcome), "the docker runtime needs an `image`");
}

#[tokio::test]
async fn no_command_runs_the_image_entrypoint() {
    // The test image's default command is `/bin/sh`, which ends at once without input.
    let h = harness("image_entrypoint").await;
    let program = Program::Command {
        command: None,
        args: vec![],
    };
    let (outcome, _) = h.run(h.job(program)).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
}

#[tokio::test]
async fn clean_up_removes_what_a_run_left_behind() {
    let left = harness("clean_up_left").await;
    let other = harness("clean_up_other").await;
    for h in [&left, &other] {
        let body = ContainerCreateBody {
            image: Some(TEST_IMAGE.into()),
            cmd: Some(vec!["sleep".into(), "30".into()]),
            labels: Some(HashMap::from([
                ("gantry.managed".to_owned(), "true".to_owned()),
                ("gantry.run".to_owned(), h.run_id.clone()),
                ("gantry.step".to_owned(), "left-behind".to_owned()),
            ])),
            ..Default::default()
        };
        let created = h.docker().create_container(None, body).await.unwrap();
        h.docker().start_container(&created.id, None).await.unwrap();
        assert_eq!(h.containers().await, 1);
    }

    let removed = left.runtime.clean_up(Some(&left.run_id)).await.unwrap();
    assert_eq!(removed, 1);
    assert_eq!(left.containers().await, 0);
    assert_eq!(
        other.containers().await,
        1,
        "another run's container was removed"
    );

    let removed = other.runtime.clean_up(Some(&other.run_id)).await.unwrap();
    assert_eq!(removed, 1);
    assert_eq!(other.containers().await, 0);
    assert_eq!(left.runtime.clean_up(Some(&left.run_id)).await, Ok(0));
}

#[tokio::test]
async fn the_container_carries_gantry_labels() {
    let h = harness("labels").await;
    let mut running = h.start(h.script("echo started\nsleep 30"));
    let line =
        crate::support::next_line(&mut running.logs, std::time::Duration::from_secs(30)).await;
    assert_eq!(line.line, "started");
    let filters = HashMap::from([("label".to_owned(), vec![format!("gantry.run={}", h.run_id)])]);
    let options = bollard::query_parameters::ListContainersOptions {
        filters: Some(filters),
        ..Default::default()
    };
    let containers = h.docker().list_containers(Some(options)).await.unwrap();
    assert_eq!(containers.len(), 1);
    let labels = containers[0].labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("gantry.managed").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        labels.get("gantry.step").map(String::as_str),
        Some("the-step")
    );
    running.cancel.cancel();
    assert_eq!(running.outcome.await.unwrap(), StepOutcome::Cancelled);
    assert_eq!(h.containers().await, 0);
}

#[tokio::test]
async fn runtime_by_name_connects_to_docker() {
    let runtime = gantry_runtime::runtime_by_name("docker")
        .await
        .unwrap_or_else(|err| panic!("{err}: start dockerd; .ci/run does"));
    assert_eq!(runtime.name(), "docker");
}
