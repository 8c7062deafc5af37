//! The benchmark's generated workflow is valid and plans as designed, so the benchmark measures
//! the full path and not an early error.

#[path = "../../benches/support/generate.rs"]
mod generate;

#[test]
fn generated_workflow_is_valid_and_planned() {
    let src = generate::workflow(100);
    let parsed = gantry_workflow::parse(&src);
    assert!(parsed.is_valid(), "{:?}", &parsed.diagnostics[..1]);
    let plan = parsed.plan.unwrap();
    assert_eq!(plan.steps.len(), 100);
    // step-0 fans out to steps 1-9, which fan in to step-10, and so on.
    assert_eq!(plan.levels.len(), 20);
    assert_eq!(plan.levels[1].len(), 9);
}
