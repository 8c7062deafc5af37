//! Generates a large, valid workflow for the parse benchmark and its tests.

use std::fmt::Write as _;

/// A workflow of `steps` container steps, about 1 KB each: fan-out from a root, fan-in every
/// tenth step, parameters, secrets, outputs, tags, templates and `when` conditions.
pub(crate) fn workflow(steps: usize) -> String {
    let mut s = String::with_capacity(steps * 1100);
    s.push_str("apiVersion: v1\nname: generated\nsummary: A generated workflow for benchmarks\n");
    s.push_str("parameters:\n");
    for p in 0..20 {
        let _ = writeln!(
            s,
            "  param{p}: {{description: Parameter number {p}, default: value-{p}}}"
        );
    }
    s.push_str(
        "triggers:\n- name: nightly\n  source: {type: schedule, schedule: '7-57/10 2 * * 1-5'}\n",
    );
    s.push_str("- name: push\n  source: {type: push}\n  binding:\n    parameters:\n      param0: ${event.ref}\n    key: ${event.id}\n");
    s.push_str("steps:\n");
    for i in 0..steps {
        let _ = writeln!(s, "- name: step-{i}");
        let _ = writeln!(
            s,
            "  description: Step {i} of the generated workflow, doing representative work"
        );
        let _ = writeln!(s, "  image: relaysh/core:{}", i % 7);
        if i > 0 {
            if i % 10 == 0 {
                let deps: Vec<String> = (i.saturating_sub(9)..i)
                    .map(|d| format!("step-{d}"))
                    .collect();
                let _ = writeln!(s, "  dependsOn: [{}]", deps.join(", "));
            } else {
                let _ = writeln!(s, "  dependsOn: step-{}", (i / 10) * 10);
            }
        }
        let p = i % 20;
        s.push_str("  spec:\n");
        let _ = writeln!(s, "    region: ${{parameters.param{p}}}");
        let _ = writeln!(s, "    message: 'Step {i} running in ${{parameters.param{p}}} for ${{parameters.param{}}}'", (p + 1) % 20);
        let _ = writeln!(s, "    token: !Secret token-{}", i % 5);
        let _ = writeln!(
            s,
            "    cluster: !Connection {{type: kubernetes, name: cluster-{}}}",
            i % 3
        );
        if i > 0 {
            let _ = writeln!(
                s,
                "    previous: ${{outputs.step-{}.result}}",
                if i % 10 == 0 { i - 1 } else { (i / 10) * 10 }
            );
        }
        let _ = writeln!(
            s,
            "    combined: !Fn.concat [prefix-, !Parameter param{p}, -suffix]"
        );
        let _ = writeln!(
            s,
            "    config: \"${{merge({{'replicas': {}}}, {{'zone': parameters.param{p}}})}}\"",
            i % 4 + 1
        );
        s.push_str(
            "    labels:\n      team: platform\n      tier: backend\n      cost-center: cc-1234\n",
        );
        s.push_str("    items: [alpha, beta, gamma, delta, epsilon]\n");
        s.push_str("  env:\n");
        let _ = writeln!(s, "    STEP_INDEX: \"{i}\"");
        let _ = writeln!(s, "    TARGET: ${{parameters.param{p}}}");
        if i % 3 == 0 {
            let _ = writeln!(
                s,
                "  when: ${{parameters.param{p} != 'skip' && exists(parameters.param{p})}}"
            );
        }
        s.push_str("  input:\n");
        let _ = writeln!(s, "  - echo \"running step {i} with $TARGET\"");
        s.push_str("  - ni output set --key result --value \"$(date +%s)\"\n");
        s.push_str("  - test -n \"$STEP_INDEX\" && echo done || exit 1\n");
    }
    s
}
