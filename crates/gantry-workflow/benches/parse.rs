//! Benchmark: parse + validate + plan a generated 1,000-step workflow (about 1 MB), against a
//! plain YAML parse of the same text into a generic tree, measured in the same run.
//!
//! `cargo bench -p gantry-workflow --bench parse` prints one JSON line with both timings (median
//! and minimum) and their ratios. Rounds alternate the two so machine noise hits both alike.

#[path = "support/generate.rs"]
mod generate;

use std::hint::black_box;

// The allocator the gantry binary ships with, so the figure is what users get; the baseline
// runs under the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

fn time(f: impl Fn()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let src = generate::workflow(1000);
    let parsed = gantry_workflow::parse(&src);
    assert!(
        parsed.is_valid(),
        "generated workflow is invalid: {:?}",
        &parsed.diagnostics[..1]
    );
    let plan = parsed.plan.expect("a plan");
    assert_eq!(plan.steps.len(), 1000);

    let rounds: usize = std::env::var("GANTRY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let (mut plain, mut gantry) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..3 {
        black_box(yaml_rust2::YamlLoader::load_from_str(&src).unwrap());
        black_box(gantry_workflow::parse(&src));
    }
    for _ in 0..rounds {
        plain.push(time(|| {
            black_box(yaml_rust2::YamlLoader::load_from_str(black_box(&src)).unwrap());
        }));
        gantry.push(time(|| {
            black_box(gantry_workflow::parse(black_box(&src)));
        }));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (p_min, g_min) = (
        ms(*plain.iter().min().unwrap()),
        ms(*gantry.iter().min().unwrap()),
    );
    let (p, g) = (ms(median(plain)), ms(median(gantry)));
    println!(
        "{{\"bench\":\"parse_validate_plan_1000_steps\",\"bytes\":{},\"rounds\":{rounds},\"plain_yaml_ms\":{p:.2},\"gantry_ms\":{g:.2},\"ratio\":{:.2},\"plain_yaml_min_ms\":{p_min:.2},\"gantry_min_ms\":{g_min:.2},\"min_ratio\":{:.2},\"target_ms\":50,\"target_ratio\":3.0}}",
        src.len(),
        g / p,
        g_min / p_min
    );
}
