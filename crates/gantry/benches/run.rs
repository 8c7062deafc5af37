//! Benchmarks of `gantry run`, each against a baseline measured in the same run, alternating
//! rounds so that machine noise hits both alike. Prints one JSON line per benchmark.
//!
//! `cargo bench -p gantry --bench run` runs both; `GANTRY_BENCH=docker` or `=process` runs one.
//! - docker: 20 sequential busybox `true` steps with `gantry run`, against 20 plain
//!   `docker run --rm` of the same image (the local `gantry-test/busybox`, built by `.ci/run`).
//!   Target: ratio at most 1.10.
//! - process: a 1,000-step fan-out/fan-in workflow of `/bin/true` process steps, against spawning
//!   `/bin/true` 1,000 times. Target: at most 2 ms of overhead per step.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "gantry-test/busybox:latest";

fn gantry(file: &Path, runtime: &str) -> Duration {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["run", "--runtime", runtime, "--color", "never"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run gantry");
    assert!(status.success(), "gantry run failed on {}", file.display());
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rounds(default: usize) -> usize {
    std::env::var("GANTRY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

fn docker(dir: &Path) {
    let mut wf = String::from("apiVersion: v1\nsteps:\n");
    for i in 0..20 {
        let _ = writeln!(wf, "- name: s{i}\n  image: {IMAGE}\n  command: \"true\"");
        if i > 0 {
            let _ = writeln!(wf, "  dependsOn: s{}", i - 1);
        }
    }
    let file = dir.join("docker-sequential.yaml");
    std::fs::write(&file, wf).unwrap();
    let plain = || {
        let start = Instant::now();
        for _ in 0..20 {
            let status = Command::new("docker")
                .args(["run", "--rm", IMAGE, "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run docker");
            assert!(status.success(), "docker run failed: is dockerd running?");
        }
        start.elapsed()
    };
    plain();
    gantry(&file, "docker");
    let n = rounds(5);
    let (mut p, mut g) = (Vec::new(), Vec::new());
    for _ in 0..n {
        p.push(plain());
        g.push(gantry(&file, "docker"));
    }
    let (p, g) = (median(p), median(g));
    println!(
        "{{\"bench\":\"docker_20_sequential_steps\",\"rounds\":{n},\"docker_run_s\":{:.2},\"gantry_run_s\":{:.2},\"ratio\":{:.3},\"target_ratio\":1.10}}",
        p.as_secs_f64(),
        g.as_secs_f64(),
        g.as_secs_f64() / p.as_secs_f64()
    );
}

fn process(dir: &Path) {
    let steps = 1000;
    let mut wf =
        String::from("apiVersion: v1\nsteps:\n- name: root\n  image: none\n  command: /bin/true\n");
    for i in 1..steps - 1 {
        let _ = writeln!(
            wf,
            "- name: s{i}\n  image: none\n  command: /bin/true\n  dependsOn: root"
        );
    }
    wf.push_str("- name: join\n  image: none\n  command: /bin/true\n  dependsOn:\n");
    for i in 1..steps - 1 {
        let _ = writeln!(wf, "  - s{i}");
    }
    let file = dir.join("process-fan.yaml");
    std::fs::write(&file, wf).unwrap();
    let plain = || {
        let start = Instant::now();
        for _ in 0..steps {
            let status = Command::new("/bin/true").status().expect("spawn /bin/true");
            assert!(status.success());
        }
        start.elapsed()
    };
    plain();
    gantry(&file, "process");
    let n = rounds(5);
    let (mut p, mut g) = (Vec::new(), Vec::new());
    for _ in 0..n {
        p.push(plain());
        g.push(gantry(&file, "process"));
    }
    let (p, g) = (median(p), median(g));
    let overhead_ms = (g.as_secs_f64() - p.as_secs_f64()) * 1e3 / steps as f64;
    println!(
        "{{\"bench\":\"process_1000_step_fan_out_fan_in\",\"rounds\":{n},\"spawn_true_s\":{:.3},\"gantry_run_s\":{:.3},\"ratio\":{:.2},\"overhead_ms_per_step\":{overhead_ms:.3},\"target_overhead_ms_per_step\":2.0}}",
        p.as_secs_f64(),
        g.as_secs_f64(),
        g.as_secs_f64() / p.as_secs_f64()
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let which = std::env::var("GANTRY_BENCH").unwrap_or_default();
    if which.is_empty() || which == "process" {
        process(dir.path());
    }
    if which.is_empty() || which == "docker" {
        docker(dir.path());
    }
}
