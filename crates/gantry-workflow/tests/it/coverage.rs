//! The valid corpus covers the whole language: every tag, every function, every step and
//! trigger field. A file removed or simplified so that something is no longer covered fails here.

use std::collections::BTreeSet;

use gantry_workflow::expr::{self, FUNCTIONS};
use gantry_workflow::{parse, Args, StepKind, TriggerSource, Value, ValueKind, Workflow};

use crate::corpus_files;

fn values(wf: &Workflow) -> Vec<&Value> {
    let mut out: Vec<&Value> = Vec::new();
    for s in &wf.steps {
        if let Some(c) = s.container() {
            out.extend(c.spec.iter().chain(&c.env));
        }
        if let Some(w) = &s.when {
            out.extend(&w.conditions);
        }
    }
    for t in &wf.triggers {
        if let TriggerSource::Webhook(c) = &t.source {
            out.extend(c.spec.iter().chain(&c.env));
        }
        if let Some(b) = &t.binding {
            out.extend(b.parameters.iter().map(|(_, v)| v));
            out.extend(&b.key);
        }
        if let Some(w) = &t.when {
            out.extend(&w.conditions);
        }
    }
    out.extend(wf.parameters.iter().filter_map(|p| p.default.as_ref()));
    out
}

#[test]
fn valid_corpus_covers_the_language() {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for path in corpus_files("valid") {
        let src = std::fs::read_to_string(&path).unwrap();
        let wf = parse(&src).workflow;
        let mut mark = |s: &str| {
            seen.insert(s.to_owned());
        };
        for (key, present) in [
            ("apiVersion", wf.api_version.is_some()),
            ("kind", wf.kind.is_some()),
            ("name", wf.name.is_some()),
            ("summary", wf.summary.is_some()),
            ("description", wf.description.is_some()),
            ("homepage", wf.homepage.is_some()),
            ("source", wf.source.is_some()),
            ("tags", !wf.tags.is_empty()),
            ("locals", wf.locals.is_some()),
            ("timeout", wf.timeout.is_some()),
            ("step.timeout", wf.steps.iter().any(|s| s.timeout.is_some())),
            ("agent", wf.agent.is_some()),
            ("step.agent", wf.steps.iter().any(|s| s.agent.is_some())),
            (
                "parameter.type",
                wf.parameters.iter().any(|p| p.type_.is_some()),
            ),
            (
                "parameter.default",
                wf.parameters.iter().any(|p| p.default.is_some()),
            ),
        ] {
            if present {
                mark(key);
            }
        }
        for s in &wf.steps {
            if s.description.is_some() {
                mark("step.description");
            }
            if s.depends_on.len() > 1 {
                mark("step.dependsOn list");
            } else if s.depends_on.len() == 1 {
                mark("step.dependsOn");
            }
            match &s.when {
                Some(w) if w.is_list => mark("step.when list"),
                Some(_) => mark("step.when"),
                None => {}
            }
            match &s.kind {
                StepKind::Approval => mark("step.approval"),
                StepKind::Container(c) => {
                    for (key, present) in [
                        ("step.spec", c.spec.is_some()),
                        ("step.env", c.env.is_some()),
                        ("step.input", !c.input.is_empty()),
                        ("step.inputFile", c.input_file.is_some()),
                        ("step.command", c.command.is_some()),
                        ("step.args", !c.args.is_empty()),
                    ] {
                        if present {
                            mark(key);
                        }
                    }
                }
            }
        }
        for t in &wf.triggers {
            mark(&format!("trigger.{}", t.source.type_name()));
            if t.when.is_some() {
                mark("trigger.when");
            }
            if let Some(b) = &t.binding {
                if b.key.is_some() {
                    mark("trigger.binding.key");
                }
                if !b.parameters.is_empty() {
                    mark("trigger.binding.parameters");
                }
            }
            if let TriggerSource::Push { schema } = &t.source {
                if !schema.is_empty() {
                    mark("trigger.push.schema");
                }
            }
        }
        for v in values(&wf) {
            v.walk(&mut |v| match &v.kind {
                ValueKind::Reference { kind, .. } => mark(&format!("!{}", kind.type_name())),
                ValueKind::Call { name, args } => {
                    mark(&format!("fn {}", name.value));
                    mark(match args {
                        Args::Positional(_) => "!Fn positional",
                        Args::Keyword(_) => "!Fn keyword",
                    });
                }
                ValueKind::Binary(_) => mark("!!binary"),
                ValueKind::String(s) if s.contains("${") => {
                    let t = expr::parse_template(s).unwrap();
                    mark(if t.is_single_expr() {
                        "${} native"
                    } else {
                        "${} mixed"
                    });
                    for c in expr::calls(&t) {
                        mark(&format!("fn {}", c.name));
                        mark(if c.positional.is_some() {
                            "call positional"
                        } else {
                            "call keyword"
                        });
                    }
                    for r in expr::references(&t) {
                        if let Some(root) = r.segments.first() {
                            mark(&format!("root {root}"));
                        }
                    }
                }
                _ => {}
            });
        }
    }
    let mut expected: Vec<String> = [
        "apiVersion",
        "kind",
        "name",
        "summary",
        "description",
        "homepage",
        "source",
        "tags",
        "locals",
        "timeout",
        "step.timeout",
        "agent",
        "step.agent",
        "parameter.type",
        "parameter.default",
        "step.description",
        "step.dependsOn",
        "step.dependsOn list",
        "step.when",
        "step.when list",
        "step.approval",
        "step.spec",
        "step.env",
        "step.input",
        "step.inputFile",
        "step.command",
        "step.args",
        "trigger.schedule",
        "trigger.push",
        "trigger.webhook",
        "trigger.when",
        "trigger.binding.key",
        "trigger.binding.parameters",
        "trigger.push.schema",
        "!Parameter",
        "!Secret",
        "!Connection",
        "!Output",
        "!Data",
        "!Answer",
        "!!binary",
        "!Fn positional",
        "!Fn keyword",
        "${} native",
        "${} mixed",
        "call positional",
        "call keyword",
        "root parameters",
        "root secrets",
        "root connections",
        "root outputs",
        "root steps",
        "root event",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    expected.extend(FUNCTIONS.iter().map(|f| format!("fn {f}")));
    let missing: Vec<&String> = expected.iter().filter(|e| !seen.contains(*e)).collect();
    assert!(
        missing.is_empty(),
        "the valid corpus never uses: {missing:?}"
    );
}
