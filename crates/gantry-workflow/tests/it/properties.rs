//! Property tests: arbitrary bytes and arbitrary YAML never panic or hang the parser,
//! the checker or the evaluator.

use proptest::prelude::*;

use gantry_workflow::parse;

/// YAML-ish text built from the tokens workflows are made of, so the generator reaches deep
/// into the parser instead of failing on the first byte.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("apiVersion: v1\n".to_owned()),
        Just("steps:\n".to_owned()),
        Just("- name: a\n".to_owned()),
        Just("  image: x\n".to_owned()),
        Just("  dependsOn: [a, b]\n".to_owned()),
        Just("  spec: {k: ${outputs.a.b}}\n".to_owned()),
        Just("  when: ${steps.a.failed}\n".to_owned()),
        Just("  x: !Fn.concat [!Parameter p, !Secret s]\n".to_owned()),
        Just("  y: !Output {from: a, name: b}\n".to_owned()),
        Just("&anchor ".to_owned()),
        Just("*anchor".to_owned()),
        Just("<<: *anchor\n".to_owned()),
        Just("parameters: {p: {default: 1}}\n".to_owned()),
        Just("triggers: [{name: t, source: {type: schedule, schedule: '* * * * *'}}]\n".to_owned()),
        Just("${".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("\n  ".to_owned()),
        Just("!!binary aGVsbG8=".to_owned()),
        "[a-z:# -]{0,12}",
        "\\PC{0,4}",
    ];
    proptest::collection::vec(token, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let src = String::from_utf8_lossy(&bytes);
        let _ = parse(&src);
    }

    #[test]
    fn arbitrary_yaml_never_panics(src in yamlish()) {
        let parsed = parse(&src);
        // Spans always lie inside the source.
        for d in &parsed.diagnostics {
            prop_assert!(d.span.end as usize <= src.len(), "{d:?}");
            prop_assert!(d.span.start <= d.span.end);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for open in ["[", "{", "- "] {
        let src = format!("steps: {}", open.repeat(100_000));
        let parsed = parse(&src);
        assert!(!parsed.is_valid());
    }
}

#[test]
fn alias_bomb_is_bounded() {
    let mut src = String::from("locals:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..15 {
        let p = i - 1;
        src.push_str(&format!(
            "  a{i}: &a{i} [{}]\n",
            vec![format!("*a{p}"); 10].join(", ")
        ));
    }
    src.push_str("steps: [{name: a, image: x, spec: {x: *a14}}]\n");
    let parsed = parse(&src);
    assert!(parsed
        .diagnostics
        .iter()
        .any(|d| d.code == gantry_workflow::Code::YamlAliasLimit));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Whatever the parser accepted, the evaluator handles without panicking, with or without data.
    #[test]
    fn evaluating_parsed_values_never_panics(src in yamlish()) {
        use gantry_workflow::expr::{evaluate, evaluate_when, Data};
        let parsed = parse(&src);
        let mut data = Data::default();
        data.parameters.insert("p".into(), serde_json::json!({"a": [1, "x", null]}));
        data.event = Some(serde_json::json!({"b": true}));
        for step in &parsed.workflow.steps {
            if let Some(spec) = step.container().and_then(|c| c.spec.as_ref()) {
                let _ = evaluate(&spec.to_json(), &data);
                let _ = evaluate(&spec.to_json(), &Data::default());
            }
            if let Some(w) = &step.when {
                let _ = evaluate_when(&w.to_json(), &data);
            }
        }
    }

    #[test]
    fn arbitrary_templates_never_panic(s in "\\$\\{[ -~]{0,40}\\}[ -~]{0,10}") {
        use gantry_workflow::expr::{evaluate, Data};
        let _ = evaluate(&serde_json::Value::String(s), &Data::default());
    }
}
