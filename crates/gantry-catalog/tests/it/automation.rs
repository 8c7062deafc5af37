//! Automations: definitions, triggers, conditions, effect templates and loop detection.

use std::time::{Duration, Instant};

use gantry_catalog::automation::{
    check_automation, check_chain, input, Automation, CompiledAutomation, Effect, EntityMode,
    EventKind, EventMeta, LoopError, RenderedEffect, MAX_CHAIN,
};
use gantry_catalog::jq::Limits;
use gantry_catalog::schema::Problem;
use serde_json::{json, Value};

use crate::fixture::catalog;

/// The automation of the documentation, as JSON.
fn page_on_drop() -> Value {
    json!({
        "identifier": "page-on-drop",
        "title": "Page the owners when a service drops a level",
        "trigger": {
            "event": "scorecard.level_changed",
            "blueprint": "service",
            "scorecard": "production-readiness"
        },
        "condition": ".event.direction == \"drop\"",
        "effect": {
            "workflow": {
                "name": "notify-owner",
                "parameters": {
                    "service": "{{ .event.identifier }}",
                    "message": "dropped to {{ .after.level }}"
                }
            }
        }
    })
}

/// An automation writing an incident entity.
fn open_incident() -> Value {
    json!({
        "identifier": "open-incident",
        "trigger": {"event": "scorecard.level_changed", "blueprint": "service"},
        "effect": {
            "entity": {
                "mode": "upsert",
                "blueprint": "deployment",
                "identifier": "{{ .event.identifier }}-drop",
                "title": "{{ .event.entity.title }} dropped to {{ .after.level }}",
                "team": "{{ .event.entity.team }}",
                "properties": {"env": "{{ .event.scorecard }}"},
                "relations": {"service": "{{ .event.identifier }}"}
            }
        }
    })
}

/// A `scorecard.level_changed` document for `checkout`, going from Gold to Silver.
fn level_drop() -> Value {
    let event = json!({
        "type": "scorecard.level_changed",
        "scorecard": "production-readiness",
        "blueprint": "service",
        "identifier": "checkout",
        "from": "Gold",
        "to": "Silver",
        "direction": "drop",
        "at": "2026-03-01T10:00:00Z",
        "entity": {"identifier": "checkout", "blueprint": "service", "title": "Checkout",
                   "team": ["payments"], "properties": {"tier": 1}, "relations": {}}
    });
    input(
        &event,
        Some(&json!({"level": "Gold", "score": 0.9})),
        Some(&json!({"level": "Silver", "score": 0.7})),
    )
}

#[allow(clippy::needless_pass_by_value)]
fn automation(v: Value) -> Automation {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("not an automation: {e}"))
}

#[allow(clippy::needless_pass_by_value)]
fn compiled(v: Value) -> CompiledAutomation {
    CompiledAutomation::compile(automation(v)).unwrap_or_else(|p| panic!("{}", lines(&p)))
}

/// `v` with the JSON at `pointer` replaced (or added) by `with`; `null` removes it.
#[allow(clippy::needless_pass_by_value)]
fn with(mut v: Value, pointer: &str, with: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let Some(Value::Object(o)) = v.pointer_mut(parent) else {
        panic!("no object at {parent}");
    };
    if with.is_null() {
        o.remove(key);
    } else {
        o.insert(key.to_string(), with);
    }
    v
}

fn lines(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("{p}\n")).collect()
}

#[allow(clippy::needless_pass_by_value)]
fn check(v: Value) -> String {
    lines(&check_automation(&automation(v), &catalog()))
}

fn small() -> Limits {
    Limits {
        time: Duration::from_millis(5),
        max_output_bytes: 1024,
    }
}

// ---------------------------------------------------------------------------------------------
// The model

#[test]
fn both_effect_kinds_read_and_write_back_the_same() {
    for v in [page_on_drop(), open_incident()] {
        let a = automation(v.clone());
        let back = serde_json::to_value(&a).unwrap();
        // One team is written back as a list of one.
        let expected = match v.pointer("/effect/entity/team") {
            Some(team) => with(v.clone(), "/effect/entity/team", json!([team])),
            None => v.clone(),
        };
        assert_eq!(back, expected);
        assert_eq!(automation(back), a);
    }
    let a = automation(page_on_drop());
    assert!(a.enabled, "enabled when left out");
    assert_eq!(a.trigger.event, EventKind::ScorecardLevelChanged);
    let Effect::Workflow { name, parameters } = &a.effect else {
        panic!("a workflow effect: {:?}", a.effect);
    };
    assert_eq!(name, "notify-owner");
    assert_eq!(
        parameters.keys().collect::<Vec<_>>(),
        ["service", "message"],
        "in the order written"
    );
    let b = automation(open_incident());
    let Effect::Entity(e) = &b.effect else {
        panic!("an entity effect: {:?}", b.effect);
    };
    assert_eq!(e.mode, EntityMode::Upsert);
    assert_eq!(e.team, ["{{ .event.entity.team }}"]);

    let disabled = automation(with(page_on_drop(), "/enabled", json!(false)));
    assert_eq!(
        serde_json::to_value(&disabled).unwrap()["enabled"],
        json!(false)
    );
}

#[test]
fn event_names_are_as_written() {
    let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "entity.created",
            "entity.updated",
            "entity.deleted",
            "scorecard.level_changed",
            "action_run.finished",
            "run.finished"
        ]
    );
    for k in EventKind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
        assert_eq!(k.as_str().parse::<EventKind>(), Ok(k));
    }
}

#[allow(clippy::needless_pass_by_value)]
fn read_error(v: Value) -> String {
    serde_json::from_value::<Automation>(v)
        .expect_err("refused")
        .to_string()
}

#[test]
fn a_misspelled_event_or_effect_is_refused_when_read() {
    let v = with(
        page_on_drop(),
        "/trigger/event",
        json!("scorecard.level_change"),
    );
    insta::assert_snapshot!(read_error(v), @"`scorecard.level_change` is not an event an automation can wait for; did you mean `scorecard.level_changed`? the events are `entity.created`, `entity.updated`, `entity.deleted`, `scorecard.level_changed`, `action_run.finished`, `run.finished`");
    let both = with(
        page_on_drop(),
        "/effect/entity",
        open_incident()["effect"]["entity"].clone(),
    );
    insta::assert_snapshot!(read_error(both), @"an effect is either a `workflow` or an `entity`, not both (write two automations for two effects)");
    let neither = with(page_on_drop(), "/effect", json!({}));
    insta::assert_snapshot!(read_error(neither), @"say what the automation does: start a `workflow` ({name, parameters}) or write an `entity` ({mode, blueprint, identifier, ...})");
    let unknown = with(page_on_drop(), "/trigger/entity", json!("x"));
    assert!(read_error(unknown).contains("unknown field `entity`"));
    let mode = with(open_incident(), "/effect/entity/mode", json!("merge"));
    assert!(read_error(mode).contains("unknown variant `merge`"));
}

// ---------------------------------------------------------------------------------------------
// Definition checks

#[test]
fn a_sound_automation_has_no_problem() {
    assert_eq!(check(page_on_drop()), "");
    assert_eq!(check(open_incident()), "");
}

#[test]
fn every_definition_problem_is_reported_with_its_path() {
    let v = json!({
        "identifier": "-page",
        "trigger": {
            "event": "entity.created",
            "blueprint": "servise",
            "scorecard": "production-readiness",
            "action": "restart",
            "workflow": "deploy"
        },
        "condition": ".event.type ==",
        "effect": {
            "workflow": {
                "name": "notify owner",
                "parameters": {
                    "service": "{{ .event.identifier }}",
                    "message": "dropped to {{ .after.level | }}",
                    "nested": {"list": ["ok", "{{ .a "]},
                    "empty": "{{ }}",
                    "unknown": "{{ nope(1) }}"
                }
            }
        }
    });
    insta::assert_snapshot!(check(v), @r"
    identifier: `-page` must start with a letter or a digit
    trigger.blueprint: there is no blueprint `servise`
    trigger.scorecard: `scorecard` applies to `scorecard.level_changed` triggers, and this one waits for `entity.created`
    trigger.action: `action` applies to `action_run.finished` triggers, and this one waits for `entity.created`
    trigger.workflow: `workflow` applies to `run.finished` triggers, and this one waits for `entity.created`
    condition: line 1, column 15: expected term, found the end of the program
    effect.workflow.name: `notify owner` is not a workflow name: 1 to 100 letters, digits, `-`, `_` or `.`, not starting with `.`
    effect.workflow.parameters.message: `{{ .after.level | }}` at character 12: line 1, column 17: expected term, found the end of the program
    effect.workflow.parameters.nested.list[1]: the `{{` at character 1 is not closed by `}}`
    effect.workflow.parameters.empty: `{{ }}` at character 1: the jq program is empty
    effect.workflow.parameters.unknown: `{{ nope(1) }}` at character 1: line 1, column 2: the filter `nope/1` is not defined
    ");
}

#[test]
fn filters_apply_to_their_events_only() {
    let trigger = |t: Value| check(with(page_on_drop(), "/trigger", t));
    assert_eq!(
        trigger(json!({"event": "entity.updated", "blueprint": "service"})),
        ""
    );
    assert_eq!(
        trigger(json!({"event": "action_run.finished", "action": "restart"})),
        ""
    );
    assert_eq!(
        trigger(json!({"event": "run.finished", "workflow": "deploy.v2"})),
        ""
    );
    insta::assert_snapshot!(
        trigger(json!({"event": "run.finished", "blueprint": "service", "action": "restart"})),
        @r"
    trigger.blueprint: `blueprint` applies to `entity.created`, `entity.updated`, `entity.deleted` and `scorecard.level_changed` triggers, and this one waits for `run.finished`
    trigger.action: `action` applies to `action_run.finished` triggers, and this one waits for `run.finished`
    "
    );
    insta::assert_snapshot!(
        trigger(json!({"event": "scorecard.level_changed", "scorecard": "a b"})),
        @"trigger.scorecard: `a b` contains a space: use letters, digits and _ . @ : -"
    );
}

#[test]
fn entity_effects_are_checked_where_they_can_be() {
    assert_eq!(
        check(with(
            open_incident(),
            "/effect/entity/blueprint",
            json!("{{ .event.blueprint }}")
        )),
        "",
        "a templated blueprint is known only when rendered"
    );
    let v = with(
        open_incident(),
        "/effect/entity/blueprint",
        json!("incident"),
    );
    let v = with(v, "/effect/entity/identifier", json!("has space"));
    let v = with(v, "/effect/entity/title", json!("{{ .event. }}"));
    let v = with(v, "/effect/entity/team", json!(["ops", "{{ [ }}"]));
    let v = with(
        v,
        "/effect/entity/properties",
        json!({"tags": [1, "{{ .a | }}"]}),
    );
    let v = with(v, "/effect/entity/relations", json!({"service": "{{ ) }}"}));
    insta::assert_snapshot!(check(v), @r"
    effect.entity.blueprint: there is no blueprint `incident`
    effect.entity.identifier: `has space` contains a space: use letters, digits and _ . @ : -
    effect.entity.title: `{{ .event. }}` at character 1: line 1, column 10: expected key, found the end of the program
    effect.entity.team[1]: `{{ [ }}` at character 1: line 1, column 2: expected the closing of `[`
    effect.entity.properties.tags[1]: `{{ .a | }}` at character 1: line 1, column 7: expected term, found the end of the program
    effect.entity.relations.service: `{{ ) }}` at character 1: line 1, column 2: expected a token
    ");
}

#[test]
fn compiling_reports_what_needs_no_catalog() {
    // The catalog has no `servise`, but compiling does not look.
    let v = with(page_on_drop(), "/trigger/blueprint", json!("servise"));
    assert!(CompiledAutomation::compile(automation(v.clone())).is_ok());
    assert_eq!(
        check(v),
        "trigger.blueprint: there is no blueprint `servise`\n"
    );
    let bad = with(page_on_drop(), "/condition", json!("("));
    let problems = CompiledAutomation::compile(automation(bad)).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "condition");
}

// ---------------------------------------------------------------------------------------------
// Triggers

fn meta(kind: EventKind) -> EventMeta<'static> {
    EventMeta {
        kind,
        blueprint: None,
        scorecard: None,
        action: None,
        workflow: None,
    }
}

#[test]
fn an_automation_listens_to_its_event_and_filters() {
    let a = compiled(page_on_drop());
    let event = EventMeta {
        blueprint: Some("service"),
        scorecard: Some("production-readiness"),
        ..meta(EventKind::ScorecardLevelChanged)
    };
    assert!(a.listens_to(&event));
    assert!(!a.listens_to(&EventMeta {
        kind: EventKind::EntityUpdated,
        ..event
    }));
    assert!(!a.listens_to(&EventMeta {
        blueprint: Some("team"),
        ..event
    }));
    assert!(!a.listens_to(&EventMeta {
        blueprint: None,
        ..event
    }));
    assert!(!a.listens_to(&EventMeta {
        scorecard: Some("security"),
        ..event
    }));

    // No filter: every event of the kind.
    let any = compiled(with(
        page_on_drop(),
        "/trigger",
        json!({"event": "entity.created"}),
    ));
    assert!(any.listens_to(&EventMeta {
        blueprint: Some("team"),
        ..meta(EventKind::EntityCreated)
    }));
    assert!(any.listens_to(&meta(EventKind::EntityCreated)));
    assert!(!any.listens_to(&meta(EventKind::EntityDeleted)));

    let action = compiled(with(
        page_on_drop(),
        "/trigger",
        json!({"event": "action_run.finished", "action": "restart"}),
    ));
    let restart = EventMeta {
        action: Some("restart"),
        ..meta(EventKind::ActionRunFinished)
    };
    assert!(action.listens_to(&restart));
    assert!(!action.listens_to(&EventMeta {
        action: Some("scale"),
        ..restart
    }));

    let workflow = compiled(with(
        page_on_drop(),
        "/trigger",
        json!({"event": "run.finished", "workflow": "deploy"}),
    ));
    let deploy = EventMeta {
        workflow: Some("deploy"),
        ..meta(EventKind::RunFinished)
    };
    assert!(workflow.listens_to(&deploy));
    assert!(!workflow.listens_to(&EventMeta {
        workflow: Some("build"),
        ..deploy
    }));
}

#[test]
fn a_disabled_automation_listens_to_nothing() {
    let a = compiled(with(page_on_drop(), "/enabled", json!(false)));
    let event = EventMeta {
        blueprint: Some("service"),
        scorecard: Some("production-readiness"),
        ..meta(EventKind::ScorecardLevelChanged)
    };
    assert!(!a.listens_to(&event));
}

#[test]
fn event_documents_say_what_they_are_about() {
    let doc = level_drop();
    let m = EventMeta::of(&doc["event"]).unwrap();
    assert_eq!(
        m,
        EventMeta {
            blueprint: Some("service"),
            scorecard: Some("production-readiness"),
            ..meta(EventKind::ScorecardLevelChanged)
        }
    );
    assert!(compiled(page_on_drop()).listens_to(&m));
    let run =
        json!({"type": "run.finished", "workflow": "deploy", "run": "r1", "status": "succeeded"});
    assert_eq!(
        EventMeta::of(&run).unwrap(),
        EventMeta {
            workflow: Some("deploy"),
            ..meta(EventKind::RunFinished)
        }
    );
    assert!(EventMeta::of(&json!({"type": "run.done"}))
        .unwrap_err()
        .contains("did you mean `run.finished`?"));
    assert!(EventMeta::of(&json!({})).is_err());
}

#[test]
fn the_input_document_has_all_three_sides() {
    let event = json!({"type": "entity.created", "blueprint": "service", "identifier": "x"});
    let after = json!({"identifier": "x", "blueprint": "service"});
    assert_eq!(
        input(&event, None, Some(&after)),
        json!({"event": event, "before": null, "after": after})
    );
    assert_eq!(
        input(&event, None, None),
        json!({"event": event, "before": null, "after": null})
    );
}

// ---------------------------------------------------------------------------------------------
// Conditions

fn condition(src: &str, doc: &Value) -> Result<bool, String> {
    compiled(with(page_on_drop(), "/condition", json!(src))).condition(doc, &Limits::default())
}

#[test]
fn a_condition_is_true_or_false() {
    let drop = level_drop();
    assert_eq!(
        compiled(page_on_drop()).condition(&drop, &Limits::default()),
        Ok(true)
    );
    let rise = with(level_drop(), "/event/direction", json!("rise"));
    assert_eq!(
        compiled(page_on_drop()).condition(&rise, &Limits::default()),
        Ok(false)
    );
    assert_eq!(
        condition(".before.score - .after.score > 0.1", &drop),
        Ok(true)
    );
    let none = compiled(with(page_on_drop(), "/condition", Value::Null));
    assert_eq!(
        none.condition(&Value::Null, &Limits::default()),
        Ok(true),
        "no condition: always"
    );
}

#[test]
fn a_condition_giving_anything_else_is_an_error() {
    let drop = level_drop();
    assert_eq!(
        condition(".event.direction", &drop),
        Err("the condition gave a string (\"drop\"), not true or false".into())
    );
    assert_eq!(
        condition(".after", &drop),
        Err(
            "the condition gave an object ({\"level\":\"Silver\",\"score\":0.7}), not true or false"
                .into()
        )
    );
    assert_eq!(
        condition(".nothing", &drop),
        Err("the condition gave null, not true or false".into())
    );
    assert_eq!(
        condition(".event.from + 1", &drop),
        Err("the condition failed: the jq program failed: cannot calculate \"Gold\" + 1".into())
    );
    assert_eq!(
        condition("true, false", &drop),
        Err("the condition failed: the jq program gave more than one value (true, false, ...): collect them with [ ... ] or keep one with first( ... )".into())
    );
}

#[test]
fn a_never_ending_condition_is_stopped_by_the_limits() {
    let drop = level_drop();
    let limits = small();
    for src in ["def f: f; f", "[repeat(1)]", "until(false; .)", "repeat(1)"] {
        let a = compiled(with(page_on_drop(), "/condition", json!(src)));
        let start = Instant::now();
        let err = a.condition(&drop, &limits).expect_err(src);
        let took = start.elapsed();
        assert!(took < Duration::from_secs(2), "{src} took {took:?}");
        assert!(
            err.starts_with("the condition failed: ")
                && (err.contains("ran longer than 5 ms and was stopped")
                    || err.contains("larger than")
                    || err.contains("more than one value")),
            "{src}: {err}"
        );
    }
    let forever = compiled(with(page_on_drop(), "/condition", json!("def f: f; f")));
    assert_eq!(
        forever.condition(&drop, &limits),
        Err("the condition failed: the jq program ran longer than 5 ms and was stopped".into())
    );
    // A stream is refused at its second value, before any limit.
    assert!(condition("repeat(1)", &drop)
        .unwrap_err()
        .contains("more than one value"));
    // Given time, a growing list is refused for its size.
    let patient = Limits {
        time: Duration::from_secs(30),
        max_output_bytes: 1024,
    };
    let big = compiled(with(page_on_drop(), "/condition", json!("[range(10000)]")));
    assert_eq!(
        big.condition(&drop, &patient),
        Err("the condition failed: the jq program's result is larger than 1024 bytes".into())
    );
}

// ---------------------------------------------------------------------------------------------
// Effects

#[allow(clippy::needless_pass_by_value)]
fn parameters(params: Value, doc: &Value) -> Result<Value, String> {
    let a = compiled(with(page_on_drop(), "/effect/workflow/parameters", params));
    match a.render(doc, &Limits::default())? {
        RenderedEffect::Workflow { parameters, .. } => Ok(Value::Object(parameters)),
        other => panic!("a workflow: {other:?}"),
    }
}

#[test]
fn a_workflow_effect_renders_its_parameters() {
    let a = compiled(page_on_drop());
    assert_eq!(
        a.render(&level_drop(), &Limits::default()),
        Ok(RenderedEffect::Workflow {
            name: "notify-owner".into(),
            parameters: json!({"service": "checkout", "message": "dropped to Silver"})
                .as_object()
                .unwrap()
                .clone(),
        })
    );
}

#[test]
fn one_template_is_typed_and_text_around_makes_a_string() {
    let doc = level_drop();
    let got = parameters(
        json!({
            "score": "{{ .after.score }}",
            "entity": "{{ .event.entity.team }}",
            "nothing": "{{ .nope }}",
            "text": "score {{ .after.score }} of {{ .event.entity.team }}, {{ .nope }}",
            "spaced": " {{ .after.score }}",
            "two": "{{ .event.from }}{{ .event.to }}",
            "object": "{{ {level: .after.level, was: .before.level} }}",
            "quoted": "{{ \"}}\" }}",
            "braces": "{{ {a: {b: .after.level}} }}",
            "escaped": "<{{ \"\\\"}}\" }}>",
            "literal": "no template",
            "number": 3,
            "nested": {"list": ["{{ .after.score }}", "at {{ .event.at }}", true],
                       "deeper": {"level": "{{ .after.level }}"}}
        }),
        &doc,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({
            "score": 0.7,
            "entity": ["payments"],
            "nothing": null,
            "text": "score 0.7 of [\"payments\"], null",
            "spaced": " 0.7",
            "two": "GoldSilver",
            "object": {"level": "Silver", "was": "Gold"},
            "quoted": "}}",
            "braces": {"a": {"b": "Silver"}},
            "escaped": "<\"}}>",
            "literal": "no template",
            "number": 3,
            "nested": {"list": [0.7, "at 2026-03-01T10:00:00Z", true],
                       "deeper": {"level": "Silver"}}
        })
    );
}

#[test]
fn a_render_error_names_the_parameter_path() {
    let doc = level_drop();
    assert_eq!(
        parameters(json!({"service": "{{ error(\"no owner\") }}"}), &doc),
        Err(
            "effect.workflow.parameters.service: `{{ error(\"no owner\") }}`: the jq program \
             failed: no owner"
                .into()
        )
    );
    assert_eq!(
        parameters(
            json!({"a": {"b": ["ok", "x {{ .event.from + 1 }}"]}, "c": "{{ .after.level }}"}),
            &doc
        ),
        Err(
            "effect.workflow.parameters.a.b[1]: `{{ .event.from + 1 }}`: the jq program failed: \
             cannot calculate \"Gold\" + 1"
                .into()
        )
    );
    let a = compiled(with(
        page_on_drop(),
        "/effect/workflow/parameters",
        json!({"one": "{{ def f: f; f }}", "two": "{{ [repeat(1)] }}"}),
    ));
    let start = Instant::now();
    let err = a.render(&doc, &small()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        err.starts_with(
            "effect.workflow.parameters.one: `{{ def f: f; f }}`: the jq program ran longer \
             than 5 ms and was stopped; effect.workflow.parameters.two: "
        ),
        "{err}"
    );
}

#[allow(clippy::needless_pass_by_value)]
fn entity(v: Value, doc: &Value) -> Result<(EntityMode, Value), String> {
    match compiled(v).render(doc, &Limits::default())? {
        RenderedEffect::Entity { mode, entity } => Ok((mode, entity)),
        other => panic!("an entity: {other:?}"),
    }
}

#[test]
fn an_entity_effect_renders_the_catalogs_entity_json() {
    let (mode, e) = entity(open_incident(), &level_drop()).unwrap();
    assert_eq!(mode, EntityMode::Upsert);
    assert_eq!(
        e,
        json!({
            "blueprint": "deployment",
            "identifier": "checkout-drop",
            "title": "Checkout dropped to Silver",
            "team": ["payments"],
            "properties": {"env": "production-readiness"},
            "relations": {"service": "checkout"}
        })
    );
    // The catalog reads it as an entity.
    let read: gantry_catalog::Entity = serde_json::from_value(e).unwrap();
    assert_eq!(read.identifier, "checkout-drop");

    // A patch with only what it changes: no title, no team.
    let patch = json!({
        "identifier": "mark",
        "trigger": {"event": "entity.updated"},
        "effect": {"entity": {
            "mode": "patch",
            "blueprint": "{{ .event.blueprint }}",
            "identifier": "{{ .event.identifier }}",
            "team": ["ops", "{{ .after.team }}", "{{ null }}"],
            "properties": {"touched": true}
        }}
    });
    let doc = input(
        &json!({"type": "entity.updated", "blueprint": "service", "identifier": "auth"}),
        Some(&json!({"team": []})),
        Some(&json!({"team": ["search", "sre"]})),
    );
    let (mode, e) = entity(patch, &doc).unwrap();
    assert_eq!(mode, EntityMode::Patch);
    assert_eq!(
        e,
        json!({
            "blueprint": "service",
            "identifier": "auth",
            "team": ["ops", "search", "sre"],
            "properties": {"touched": true},
            "relations": {}
        })
    );
}

#[test]
fn an_entity_effect_of_the_wrong_types_is_an_error_at_its_path() {
    let v = with(
        open_incident(),
        "/effect/entity/identifier",
        json!("{{ .after.score }}"),
    );
    let v = with(v, "/effect/entity/blueprint", json!("{{ .event.nope }}"));
    let v = with(v, "/effect/entity/title", json!("{{ .after }}"));
    let v = with(v, "/effect/entity/team", json!("{{ 3 }}"));
    let v = with(
        v,
        "/effect/entity/relations",
        json!({"service": "{{ {} }}"}),
    );
    insta::assert_snapshot!(entity(v, &level_drop()).unwrap_err().replace("; ", "\n"), @r#"
    effect.entity.blueprint: gave null, and a blueprint's identifier is a string
    effect.entity.identifier: gave a number (0.7), and an identifier is a string
    effect.entity.title: gave an object ({"level":"Silver","score":0.7}), and a title is a string
    effect.entity.team: gave a number (3), and a team is a team's name or a list of them
    effect.entity.relations.service: gave an object ({}), and a relation is an identifier, a list of them, or null
    "#);
    let v = with(
        open_incident(),
        "/effect/entity/identifier",
        json!("{{ .event.to }} {{ .event.from }}"),
    );
    assert_eq!(
        entity(v, &level_drop()).unwrap_err(),
        "effect.entity.identifier: `Silver Gold` contains a space: use letters, digits and _ . @ : -"
    );
    let v = with(
        open_incident(),
        "/effect/entity/identifier",
        json!("{{ error(\"boom\") }}"),
    );
    assert_eq!(
        entity(v, &level_drop()).unwrap_err(),
        "effect.entity.identifier: `{{ error(\"boom\") }}`: the jq program failed: boom",
        "a failed template is one error, not also a type error"
    );
}

// ---------------------------------------------------------------------------------------------
// Loops

fn chain(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_automation_fired_again_by_its_own_effect_is_stopped() {
    assert_eq!(check_chain(&[], "a"), Ok(()));
    assert_eq!(check_chain(&chain(&["a"]), "b"), Ok(()));
    let err = check_chain(&chain(&["a", "b"]), "a").unwrap_err();
    assert_eq!(
        err,
        LoopError::Repeat {
            chain: chain(&["a", "b", "a"])
        }
    );
    assert_eq!(
        err.to_string(),
        "automation `a` fired again by its own effect: a → b → a; stopped"
    );
    assert_eq!(
        check_chain(&chain(&["a"]), "a").unwrap_err().to_string(),
        "automation `a` fired again by its own effect: a → a; stopped"
    );
}

#[test]
fn a_chain_longer_than_the_limit_is_stopped() {
    let names: Vec<String> = (1..=MAX_CHAIN + 1).map(|i| format!("a{i}")).collect();
    assert_eq!(MAX_CHAIN, 8);
    // Eight automations in a row may fire; a ninth may not.
    assert_eq!(check_chain(&names[..MAX_CHAIN - 1], "a8"), Ok(()));
    let err = check_chain(&names[..MAX_CHAIN], "a9").unwrap_err();
    assert_eq!(
        err,
        LoopError::TooLong {
            chain: names.clone()
        }
    );
    assert_eq!(
        err.to_string(),
        "automation chain longer than 8: a1 → a2 → a3 → a4 → a5 → a6 → a7 → a8 → a9; stopped"
    );
    // A repeat is named as such even in a long chain.
    assert!(matches!(
        check_chain(&names[..MAX_CHAIN], "a3"),
        Err(LoopError::Repeat { .. })
    ));
}
