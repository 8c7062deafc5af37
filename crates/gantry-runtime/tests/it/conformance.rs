//! The behaviour every step runtime shares. Each case is an `async fn(Harness)`; the macro at
//! the bottom runs it as `conformance::process::<case>` and `conformance::docker::<case>`.

use std::time::{Duration, Instant};

use gantry_engine::runtime::{MetadataEndpoint, Program, StepOutcome};

use crate::support::{failure, next_line, serve, Harness};

async fn exit_zero(h: Harness) {
    let (outcome, _) = h.run(h.script("exit 0")).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
}

async fn exit_one(h: Harness) {
    let (outcome, _) = h.run(h.script("exit 1")).await;
    assert_eq!(outcome, StepOutcome::Exited(1));
}

async fn exit_137(h: Harness) {
    let (outcome, _) = h.run(h.script("exit 137")).await;
    assert_eq!(outcome, StepOutcome::Exited(137));
}

async fn lines_keep_their_order_per_stream(h: Harness) {
    let script =
        "echo out1\necho err1 >&2\necho out2\necho err2 >&2\necho out3\nprintf 'no newline'";
    let (outcome, output) = h.run(h.script(script)).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
    assert_eq!(output.stdout(), ["out1", "out2", "out3", "no newline"]);
    assert_eq!(output.stderr(), ["err1", "err2"]);
}

async fn many_lines_arrive_whole(h: Harness) {
    let script = "i=0\nwhile [ $i -lt 3000 ]; do echo \"line $i of the step\"; i=$((i+1)); done";
    let (outcome, output) = h.run(h.script(script)).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
    let expected: Vec<String> = (0..3000).map(|i| format!("line {i} of the step")).collect();
    assert_eq!(output.stdout(), expected);
}

async fn output_arrives_while_the_step_runs(h: Harness) {
    let mut running = h.start(h.script("echo first\nsleep 2\necho second"));
    let first = next_line(&mut running.logs, Duration::from_secs(30)).await;
    let first_seen = Instant::now();
    assert_eq!(first.line, "first");
    assert!(
        !running.outcome.is_finished(),
        "the first line came only after the step ended"
    );
    let second = next_line(&mut running.logs, Duration::from_secs(30)).await;
    assert_eq!(second.line, "second");
    assert_eq!(
        running.outcome.await.expect("no panic"),
        StepOutcome::Exited(0)
    );
    // The step slept 2 s after printing, so its first line came well before its end.
    assert!(
        first_seen.elapsed() >= Duration::from_secs(1),
        "the first line came only {:?} before the step ended",
        first_seen.elapsed()
    );
}

async fn env_reaches_the_step(h: Harness) {
    let mut job = h.script(
        "echo \"FOO=$FOO\"\necho \"run=$GANTRY_RUN_ID\"\necho \"dir=$GANTRY_STEP_DIR\"\n\
         echo \"leak=${CARGO_PKG_NAME:-none}\"\necho \"metadata=${METADATA_API_URL:-none}\"",
    );
    job.env.insert("FOO".into(), "bar baz".into());
    job.env.insert("GANTRY_RUN_ID".into(), h.run_id.clone());
    let (outcome, output) = h.run(job).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
    assert_eq!(
        output.stdout(),
        [
            "FOO=bar baz".to_owned(),
            format!("run={}", h.run_id),
            format!("dir={}", h.step_dir_inside()),
            // Gantry's own environment stays out of the step.
            "leak=none".to_owned(),
            "metadata=none".to_owned(),
        ]
    );
}

async fn metadata_api_url_carries_the_step_token(h: Harness) {
    let mut job = h.script(
        "echo \"$METADATA_API_URL\"\nhost=${METADATA_API_URL#*@}\nhost=${host%:*}\n\
         if [ \"$host\" = 127.0.0.1 ] || grep -q \"$host\" /etc/hosts; then echo resolvable; fi",
    );
    job.metadata = Some(MetadataEndpoint {
        port: 4321,
        token: "tok-123".into(),
    });
    let (outcome, output) = h.run(job).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
    let host = h.backend.metadata_host();
    assert_eq!(
        output.stdout(),
        [
            format!("http://:tok-123@{host}:4321"),
            "resolvable".to_owned()
        ]
    );
}

async fn a_bad_environment_fails_to_start_without_its_values(h: Harness) {
    let mut job = h.script("exit 0");
    job.env.insert(String::new(), "s3cret-value".into());
    let (outcome, _) = h.run(job).await;
    let message = failure(&outcome);
    assert!(message.contains("invalid variable name"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

async fn script_with_a_shebang(h: Harness) {
    let (outcome, output) = h.run(h.script("#!/bin/sh\necho with-shebang")).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
    assert_eq!(output.stdout(), ["with-shebang"]);
}

async fn script_without_a_shebang_runs_with_sh(h: Harness) {
    let (outcome, output) = h.run(h.script("echo without-shebang\nexit 4")).await;
    assert_eq!(outcome, StepOutcome::Exited(4));
    assert_eq!(output.stdout(), ["without-shebang"]);
    let written = std::fs::read_to_string(h.step_dir().join("input-script")).unwrap();
    assert!(written.starts_with("#!/bin/sh\n"), "{written}");
}

fn input_file(h: &Harness, reference: &str) -> Program {
    Program::InputFile {
        reference: reference.to_owned(),
        base_dir: h.workflow_dir(),
    }
}

fn write_workflow_file(h: &Harness, relative: &str, content: &str) {
    let path = h.workflow_dir().join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

async fn input_file_relative_to_the_workflow(h: Harness) {
    write_workflow_file(
        &h,
        "scripts/hello.sh",
        "#!/bin/sh\necho from-file\nexit 2\n",
    );
    let (outcome, output) = h.run(h.job(input_file(&h, "scripts/hello.sh"))).await;
    assert_eq!(outcome, StepOutcome::Exited(2));
    assert_eq!(output.stdout(), ["from-file"]);
}

async fn input_file_shebang_picks_the_interpreter(h: Harness) {
    write_workflow_file(&h, "show.txt", "#!/bin/cat\nprinted, not run\n");
    let (outcome, output) = h.run(h.job(input_file(&h, "show.txt"))).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
    assert_eq!(output.stdout(), ["#!/bin/cat", "printed, not run"]);
}

async fn input_file_missing_is_named(h: Harness) {
    let (outcome, _) = h.run(h.job(input_file(&h, "scripts/nope.sh"))).await;
    let message = failure(&outcome);
    assert!(message.contains("inputFile scripts/nope.sh"), "{message}");
    assert!(message.contains("No such file"), "{message}");
}

async fn input_file_url_is_fetched(h: Harness) {
    let addr = serve(vec![("/ok.sh", b"#!/bin/sh\necho from-url\n".to_vec())]).await;
    let url = format!("http://{addr}/ok.sh");
    let (outcome, output) = h.run(h.job(input_file(&h, &url))).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
    assert_eq!(output.stdout(), ["from-url"]);
}

async fn input_file_url_404_fails_to_start(h: Harness) {
    let addr = serve(vec![]).await;
    let url = format!("http://{addr}/x.sh");
    let (outcome, output) = h.run(h.job(input_file(&h, &url))).await;
    assert_eq!(
        failure(&outcome),
        format!("inputFile {url} could not be fetched: HTTP 404")
    );
    assert!(output.0.is_empty());
}

async fn input_file_url_over_1_mib_fails_to_start(h: Harness) {
    let big = format!("#!/bin/sh\n{}", "#".repeat(1024 * 1024));
    let addr = serve(vec![("/big.sh", big.into_bytes())]).await;
    let url = format!("http://{addr}/big.sh");
    let (outcome, _) = h.run(h.job(input_file(&h, &url))).await;
    assert_eq!(
        failure(&outcome),
        format!("inputFile {url} could not be fetched: it is larger than 1 MiB")
    );
}

async fn step_reads_its_spec_and_writes_outputs(h: Harness) {
    std::fs::create_dir_all(h.step_dir().join("outputs")).unwrap();
    std::fs::write(h.step_dir().join("spec.json"), "{\"name\":\"gantry\"}\n").unwrap();
    let script = "cat \"$GANTRY_STEP_DIR/spec.json\"\n\
                  echo written-by-step > \"$GANTRY_STEP_DIR/outputs/x\"";
    let (outcome, output) = h.run(h.script(script)).await;
    assert_eq!(outcome, StepOutcome::Exited(0));
    assert_eq!(output.stdout(), ["{\"name\":\"gantry\"}"]);
    let written = std::fs::read_to_string(h.step_dir().join("outputs/x")).unwrap();
    assert_eq!(written, "written-by-step\n");
}

async fn command_with_args(h: Harness) {
    let program = Program::Command {
        command: Some("sh".into()),
        args: vec!["-c".into(), "echo \"from-command $0\"; exit 3".into()],
    };
    let (outcome, output) = h.run(h.job(program)).await;
    assert_eq!(outcome, StepOutcome::Exited(3));
    assert_eq!(output.stdout(), ["from-command sh"]);
}

async fn unknown_command_fails_to_start(h: Harness) {
    let program = Program::Command {
        command: Some("gantry-no-such-command".into()),
        args: vec![],
    };
    let (outcome, _) = h.run(h.job(program)).await;
    let message = failure(&outcome);
    assert!(message.contains("gantry-no-such-command"), "{message}");
}

/// Starts `sleep 30` in the background (so the step has a child of its own) and waits for it.
const SLEEPER: &str = "sleep 30 &\necho $! > \"$GANTRY_STEP_DIR/sleep.pid\"\necho started\nwait";

async fn cancel_stops_the_step(h: Harness) {
    let mut running = h.start(h.script(SLEEPER));
    let line = next_line(&mut running.logs, Duration::from_secs(30)).await;
    assert_eq!(line.line, "started");
    let cancelled_at = Instant::now();
    running.cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(10), running.outcome)
        .await
        .expect("cancelled within 10 s")
        .expect("no panic");
    assert_eq!(outcome, StepOutcome::Cancelled);
    assert!(cancelled_at.elapsed() < Duration::from_secs(10));
    assert_eq!(h.containers().await, 0, "the container outlived the cancel");
    h.assert_nothing_left().await;
}

async fn cancel_before_the_start_runs_nothing(h: Harness) {
    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel();
    let job = h.script("echo should-not-run > \"$GANTRY_STEP_DIR/ran\"");
    let running = h.start_with(job, cancel);
    let outcome = tokio::time::timeout(Duration::from_secs(10), running.outcome)
        .await
        .expect("cancelled within 10 s")
        .expect("no panic");
    assert_eq!(outcome, StepOutcome::Cancelled);
    assert!(!h.step_dir().join("ran").exists());
    assert_eq!(h.containers().await, 0);
}

async fn dropping_the_run_leaves_nothing_running(h: Harness) {
    let mut running = h.start(h.script(SLEEPER));
    let line = next_line(&mut running.logs, Duration::from_secs(30)).await;
    assert_eq!(line.line, "started");
    running.outcome.abort();
    let _ = running.outcome.await;
    h.assert_nothing_left().await;
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod process {
            use crate::support::{Backend, Harness};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(Harness::new(Backend::Process, stringify!($case)).await).await;
                }
            )*
        }
        mod docker {
            use crate::support::{Backend, Harness};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(Harness::new(Backend::Docker, stringify!($case)).await).await;
                }
            )*
        }
    };
}

conformance! {
    exit_zero,
    exit_one,
    exit_137,
    lines_keep_their_order_per_stream,
    many_lines_arrive_whole,
    output_arrives_while_the_step_runs,
    env_reaches_the_step,
    metadata_api_url_carries_the_step_token,
    a_bad_environment_fails_to_start_without_its_values,
    script_with_a_shebang,
    script_without_a_shebang_runs_with_sh,
    input_file_relative_to_the_workflow,
    input_file_shebang_picks_the_interpreter,
    input_file_missing_is_named,
    input_file_url_is_fetched,
    input_file_url_404_fails_to_start,
    input_file_url_over_1_mib_fails_to_start,
    step_reads_its_spec_and_writes_outputs,
    command_with_args,
    unknown_command_fails_to_start,
    cancel_stops_the_step,
    cancel_before_the_start_runs_nothing,
    dropping_the_run_leaves_nothing_running,
}
