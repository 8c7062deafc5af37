//! Self-service actions: definitions, inputs, templates, permissions, approvals, signatures.

use gantry_catalog::action::{
    approval_state, check_action, sign, validate_inputs, verify, Action, ApprovalState,
    InputFormat, Mode, Operation, ParameterTemplates, Role, Rule, Target, Template,
    TemplateContext, ValidatedInputs, Who,
};
use gantry_catalog::files::{parse_file, Definition, Document};
use gantry_catalog::schema::Problem;
use gantry_catalog::{Lookup, Map, PropertyType};
use serde_json::{json, Value};

use crate::fixture::{catalog, TestCatalog};

/// The action of the documentation, as JSON.
fn restart() -> Value {
    json!({
        "identifier": "restart-service",
        "title": "Restart a service",
        "blueprint": "service",
        "operation": "day-2",
        "condition": "lifecycle = \"production\"",
        "inputs": {
            "properties": {
                "reason": {"type": "string", "minLength": 3},
                "replicas": {"type": "integer", "minimum": 1, "default": 2},
                "target": {"type": "string", "format": "entity", "blueprint": "service",
                           "query": "language = rust"},
                "token": {"type": "string", "secret": true},
                "tags": {"type": "array", "items": {"type": "string"}},
                "mode": {"type": "string", "enum": ["fast", "safe"]}
            },
            "required": ["reason"]
        },
        "permissions": {
            "run": {"roles": ["operator"]},
            "approve": {"teams": ["sre"], "mode": "any"}
        },
        "approval": {"required": true},
        "invocation": {
            "workflow": "restart",
            "parameters": {
                "service": "{{ entity.identifier }}",
                "reason": "{{ inputs.reason }}"
            }
        }
    })
}

#[allow(clippy::needless_pass_by_value)]
fn action(v: Value) -> Action {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("not an action: {e}"))
}

/// `v` with the JSON at `pointer` replaced (or added) by `with`.
#[allow(clippy::needless_pass_by_value)]
fn with(mut v: Value, pointer: &str, with: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let Some(Value::Object(o)) = v.pointer_mut(parent) else {
        panic!("no object at {parent}");
    };
    o.insert(key.to_string(), with);
    v
}

fn lines(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("{p}\n")).collect()
}

/// The problems of an action definition (as JSON) against the test catalog.
#[allow(clippy::needless_pass_by_value)]
fn check(v: Value) -> String {
    let c = catalog();
    lines(&check_action(&action(v), &|id| Lookup::blueprint(&c, id)))
}

// ---------------------------------------------------------------------------------------------
// The model

#[test]
fn an_action_reads_and_writes_back_the_same() {
    let a = action(restart());
    assert_eq!(a.operation, Operation::Day2);
    assert_eq!(
        a.inputs.properties["target"].format,
        Some(InputFormat::Entity)
    );
    assert_eq!(a.inputs.properties["replicas"].ty, PropertyType::Integer);
    assert!(a.inputs.properties["token"].secret);
    assert_eq!(
        a.permissions.run.as_ref().map(|r| r.roles.clone()),
        Some(vec![Role::Operator])
    );
    assert_eq!(a.invocation.target(), Some(Target::Workflow("restart")));
    let written = serde_json::to_value(&a).expect("json");
    assert_eq!(written["operation"], "day-2");
    assert_eq!(written["inputs"]["properties"]["reason"]["minLength"], 3);
    assert_eq!(action(written), a);
}

#[test]
fn a_webhook_names_its_secret_and_never_holds_one() {
    let hook =
        json!({"url": "https://hooks.example.com/restart", "secret": {"secret": "hook-key"}});
    let a = action(with(
        with(restart(), "/invocation/webhook", hook),
        "/invocation/workflow",
        Value::Null,
    ));
    let Some(Target::Webhook(h)) = a.invocation.target() else {
        panic!("not a webhook: {:?}", a.invocation);
    };
    assert_eq!(h.secret.as_ref().map(|s| s.name.as_str()), Some("hook-key"));
    assert_eq!(
        serde_json::to_value(&a).expect("json")["invocation"]["webhook"]["secret"],
        json!({"secret": "hook-key"})
    );
    // A plain string may be the secret's value: refused, without quoting it.
    let plain = json!({"url": "https://hooks.example.com/restart", "secret": "s3cr3t-value"});
    let err = serde_json::from_value::<Action>(with(restart(), "/invocation/webhook", plain))
        .expect_err("a plain secret");
    assert!(err.to_string().contains("`!Secret NAME`"), "{err}");
    assert!(!err.to_string().contains("s3cr3t-value"), "{err}");
}

#[test]
fn unknown_fields_types_and_roles_are_refused_when_read() {
    let err = |v: Value| {
        serde_json::from_value::<Action>(v)
            .expect_err("refused")
            .to_string()
    };
    assert!(err(with(restart(), "/inputz", json!({}))).contains("unknown field `inputz`"));
    assert!(err(with(
        restart(),
        "/inputs/properties/reason/type",
        json!("text")
    ))
    .contains("unknown variant `text`"));
    assert!(
        err(with(restart(), "/permissions/run/roles", json!(["root"])))
            .contains("unknown variant `root`")
    );
    assert!(err(with(restart(), "/operation", json!("day2"))).contains("unknown variant `day2`"));
    assert!(err(with(
        restart(),
        "/inputs/properties/reason/secrt",
        json!(true)
    ))
    .contains("unknown field `secrt`"));
}

// ---------------------------------------------------------------------------------------------
// check_action

#[test]
fn a_sound_action_has_no_problem() {
    assert_eq!(check(restart()), "");
    let create = json!({
        "identifier": "new-service", "operation": "create", "blueprint": "service",
        "inputs": {"properties": {"name": {"type": "string"}}},
        "invocation": {"webhook": {"url": "http://scaffolder.internal:8080/new"},
                       "parameters": {"name": "{{ inputs.name }}", "by": "{{ user.email }}",
                                      "run": "{{ run.id }}", "meta": {"who": ["{{ user.teams }}"]}}}
    });
    assert_eq!(check(create), "");
}

#[test]
fn every_definition_problem_is_reported_with_its_path() {
    let a = json!({
        "identifier": "restart service",
        "blueprint": "servise",
        "operation": "day-2",
        "condition": "lifecycle = ",
        "inputs": {
            "properties": {
                "replicas": {"type": "integer", "minimum": 5, "maximum": 1, "default": 0.5},
                "mode": {"type": "string", "enum": ["fast", 3], "pattern": "(["},
                "target": {"type": "string", "format": "entity", "query": {"rules": [{"property": "x"}]}},
                "other": {"type": "string", "format": "entity", "blueprint": "nope"},
                "name": {"type": "string", "blueprint": "service", "query": "a = 1"},
                "count": {"type": "integer", "format": "entity", "blueprint": "service"},
                "token": {"type": "number", "secret": true, "default": 1, "enum": [1]},
                "keys": {"type": "array", "items": {"type": "string", "secret": true}},
                "a.b": {"type": "string"}
            },
            "required": ["replicas", "reason", "replicas"]
        },
        "invocation": {}
    });
    insta::assert_snapshot!(check(a), @r#"
        identifier: `restart service` contains a space: use letters, digits and _ . @ : -
        blueprint: there is no blueprint `servise`
        condition: expected a value after `=` (at 1:13 of the query)
        inputs.properties.replicas.minimum: `minimum` is greater than `maximum`
        inputs.properties.replicas.default: expected an integer, found 0.5 (not a whole number)
        inputs.properties.mode.pattern: the pattern is not a valid regular expression: regex parse error:
            ([
             ^
        error: unclosed character class
        inputs.properties.mode.enum[1]: expected a string, found an integer 3
        inputs.properties.target: an entity picker (`format: entity`) needs the `blueprint` of its entities
        inputs.properties.target.query: a group needs a `combinator`: "and", "or" or "not"
        inputs.properties.other.blueprint: there is no blueprint `nope`
        inputs.properties.name.blueprint: `blueprint` applies to entity pickers (`format: entity`)
        inputs.properties.name.query: `query` applies to entity pickers (`format: entity`)
        inputs.properties.count.format: `format: entity` applies to strings (an entity's identifier; put it in `items` for a list of entities), and this input is an integer
        inputs.properties.token.secret: a secret input is a string, and this input is a number
        inputs.properties.token.default: a secret input cannot have a default: it would be kept in plain in the definition
        inputs.properties.token.enum: a secret input cannot list its values: they would be kept in plain in the definition
        inputs.properties.keys.items.secret: `secret` applies to a whole input, not to the items of a list
        inputs.properties.a.b: `a.b` contains `.`, which separates the steps of template paths
        inputs.required[1]: `reason` is not an input of this action
        inputs.required[2]: `replicas` is listed twice
        invocation: say what a run starts: a `workflow` (its name) or a `webhook` ({url, secret})
        "#);
}

#[test]
fn what_an_operation_needs() {
    // Day-2 and delete act on an entity of a blueprint.
    let no_blueprint = with(restart(), "/blueprint", Value::Null);
    let mut v = no_blueprint.clone();
    v.as_object_mut().expect("object").remove("blueprint");
    insta::assert_snapshot!(check(v.clone()), @"blueprint: a day-2 action acts on an entity: name the blueprint of its entities");
    insta::assert_snapshot!(check(with(v, "/operation", json!("delete"))), @"blueprint: a delete action acts on an entity: name the blueprint of its entities");
    // A create action has no entity: no condition, no owners, no `entity.*` in templates.
    let create = with(
        with(restart(), "/operation", json!("create")),
        "/permissions/run",
        json!({"owners": true}),
    );
    insta::assert_snapshot!(check(create), @r"
        condition: a create action acts on no existing entity, so a condition has nothing to test
        permissions.run.owners: a create action acts on no existing entity, so there are no owners
        invocation.parameters.service: `entity.identifier` has no value: a create action acts on no existing entity
        ");
}

#[test]
fn permission_and_approval_problems() {
    let v = with(
        with(
            restart(),
            "/permissions",
            json!({"run": {}, "approve": {"users": ["not-an-email", "ok@example.com"],
                                          "teams": ["s r e"], "mode": "all"}}),
        ),
        "/approval",
        json!({"required": true, "count": 2}),
    );
    insta::assert_snapshot!(check(v), @r#"
        permissions.run: the rule names nobody, so nobody could run: list `users`, `teams`, `roles` or set `owners: true`
        permissions.approve.users[0]: "not-an-email" is not an email address, such as ada@example.com
        permissions.approve.teams[0]: not a team name: `s r e` contains a space: use letters, digits and _ . @ : -
        approval.count: `count` applies to `mode: any`; with `mode: all`, every listed principal approves
        "#);
    insta::assert_snapshot!(check(with(restart(), "/approval", json!({"count": 0}))), @"approval.count: `count` is at least 1");
    insta::assert_snapshot!(check(with(restart(), "/approval", json!({"count": 2}))), @"approval.count: `count` applies when approval is `required: true`");
}

#[test]
fn invocation_problems() {
    let both = with(
        restart(),
        "/invocation/webhook",
        json!({"url": "https://example.com/h"}),
    );
    insta::assert_snapshot!(check(both), @"invocation: give either `workflow` or `webhook`, not both");
    let neither = with(restart(), "/invocation", json!({}));
    insta::assert_snapshot!(check(neither), @"invocation: say what a run starts: a `workflow` (its name) or a `webhook` ({url, secret})");
    let bad = json!({
        "webhook": {"url": "ftp://example.com/h", "secret": {"secret": "has space"}},
        "parameters": {
            "a": "{{ inputs.reasn }}",
            "b": "{{ inputs }}",
            "c": "{{ entity.propertes }}",
            "d": "{{ entity.properties.langauge }}",
            "e": "{{ entity.relations.ownr }}",
            "f": "{{ user.mail }}",
            "g": "{{ run.number }}",
            "h": ["ok {{ inputs.reason }}", {"deep": "{{ secrets.token }}"}],
            "i": "{{ inputs.reason",
            "j": "{{ entity.properties[\"k8s.namespace\"] }} {{ entity.relations.owner }}"
        }
    });
    insta::assert_snapshot!(check(with(restart(), "/invocation", bad)), @r#"
        invocation.webhook.url: "ftp://example.com/h" is not an http(s) URL, such as https://example.com/hooks/restart
        invocation.webhook.secret: `has space` is not a secret name: 1 to 200 letters, digits, `-`, `_` or `.`
        invocation.parameters.a: `inputs.reasn` names no input of this action; did you mean `reason`?
        invocation.parameters.b: `inputs` reads the inputs at once: name one, such as `inputs.reason`
        invocation.parameters.c: `entity.propertes`: an entity has no `propertes`; did you mean `properties`?
        invocation.parameters.d: `entity.properties.langauge`: blueprint `service` has no property `langauge`; did you mean `language`?
        invocation.parameters.e: `entity.relations.ownr`: blueprint `service` has no relation `ownr`; did you mean `owner`?
        invocation.parameters.f: `user.mail`: the user has no `mail`; did you mean `email`?
        invocation.parameters.g: `run.number`: the run has no `number`
        invocation.parameters.h[1].deep: `{{ secrets.token }}` at character 1: `secrets` is not a place to read: a path starts with `inputs`, `entity`, `user` or `run`
        invocation.parameters.i: the `{{` at character 1 is not closed by `}}`
        "#);
    let workflow = with(restart(), "/invocation/workflow", json!(".hidden"));
    insta::assert_snapshot!(check(workflow), @"invocation.workflow: `.hidden` is not a workflow name: 1 to 100 letters, digits, `-`, `_` or `.`, not starting with `.`");
}

#[test]
fn applies_to_checks_the_blueprint_and_the_condition() {
    let c = catalog();
    let a = action(restart());
    assert_eq!(a.applies_to(c.get("service", "checkout"), &c), Ok(()));
    insta::assert_snapshot!(
        a.applies_to(c.get("service", "auth"), &c).expect_err("deprecated"),
        @"`auth` does not match the condition of `restart-service`: lifecycle = production"
    );
    insta::assert_snapshot!(
        a.applies_to(c.get("team", "payments"), &c).expect_err("a team"),
        @"`restart-service` acts on `service` entities, and `payments` is a `team`"
    );
    let create = action(with(
        with(restart(), "/operation", json!("create")),
        "/condition",
        Value::Null,
    ));
    assert!(create.applies_to(c.get("service", "checkout"), &c).is_err());
}

// ---------------------------------------------------------------------------------------------
// validate_inputs

/// An action with an input of every kind.
fn form() -> Action {
    action(with(
        restart(),
        "/inputs",
        json!({
            "properties": {
                "reason": {"type": "string", "minLength": 3, "maxLength": 20},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
                "ratio": {"type": "number", "minimum": 0, "maximum": 1},
                "dryRun": {"type": "boolean"},
                "tags": {"type": "array", "maxItems": 3,
                         "items": {"type": "string", "pattern": "^[a-z]+$"}},
                "settings": {"type": "object"},
                "mode": {"type": "string", "enum": ["fast", "safe"]},
                "contact": {"type": "string", "format": "email"},
                "target": {"type": "string", "format": "entity", "blueprint": "service",
                           "query": "language = rust"},
                "targets": {"type": "array",
                            "items": {"type": "string", "format": "entity", "blueprint": "service"}},
                "token": {"type": "string", "secret": true, "minLength": 8, "pattern": "^tok_"}
            },
            "required": ["reason"]
        }),
    ))
}

#[allow(clippy::needless_pass_by_value)]
fn given(v: Value) -> Map {
    match v {
        Value::Object(o) => o,
        other => panic!("not an object: {other}"),
    }
}

#[allow(clippy::needless_pass_by_value)]
fn inputs(v: Value) -> Result<ValidatedInputs, String> {
    let c = catalog();
    validate_inputs(&form(), &given(v), &c).map_err(|ps| lines(&ps))
}

#[test]
fn valid_inputs_get_their_defaults_and_secrets_are_split_out() {
    let ok = inputs(json!({
        "reason": "stuck pods", "ratio": 0.5, "dryRun": false, "tags": ["a", "b"],
        "settings": {"x": 1}, "mode": "safe", "contact": "ada@example.com",
        "target": "checkout", "targets": ["ledger", "db"], "token": "tok_12345678"
    }))
    .expect("valid");
    assert_eq!(ok.plain["replicas"], json!(2), "the default is applied");
    assert_eq!(ok.plain["target"], json!("checkout"));
    assert_eq!(ok.secret, given(json!({"token": "tok_12345678"})));
    assert!(
        !ok.plain.contains_key("token"),
        "a secret is never among the plain inputs"
    );
    assert!(
        !format!("{ok:?}").contains("tok_12345678"),
        "Debug masks secrets: {ok:?}"
    );
    // Inputs keep the order of the definition, whatever the order given.
    let keys: Vec<&str> = ok.plain.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "reason", "replicas", "ratio", "dryRun", "tags", "settings", "mode", "contact",
            "target", "targets"
        ]
    );
    // Only what is required must be given; `null` is not given.
    let minimal = inputs(json!({"reason": "why", "replicas": null})).expect("valid");
    assert_eq!(
        minimal.plain,
        given(json!({"reason": "why", "replicas": 2}))
    );
    assert!(minimal.secret.is_empty());
}

#[test]
fn each_type_is_checked() {
    insta::assert_snapshot!(inputs(json!({
        "reason": 12, "replicas": 2.5, "ratio": "half", "dryRun": "no", "tags": "a",
        "settings": [1], "mode": 1, "contact": false, "target": 7, "targets": {}
    })).expect_err("wrong types"), @r#"
        inputs.reason: expected a string, found an integer 12
        inputs.replicas: expected an integer, found 2.5 (not a whole number)
        inputs.ratio: expected a number, found a string "half"
        inputs.dryRun: expected a boolean, found a string "no"
        inputs.tags: expected an array, found a string "a"
        inputs.settings: expected an object, found an array [1]
        inputs.mode: expected a string, found an integer 1
        inputs.contact: expected a string, found a boolean false
        inputs.target: expected a string, found an integer 7
        inputs.targets: expected an array, found an object {}
        "#);
}

#[test]
fn bounds_enums_patterns_and_formats_are_checked() {
    insta::assert_snapshot!(inputs(json!({
        "reason": "no", "replicas": 11, "ratio": -0.1, "tags": ["ok", "Not", "x", "y"],
        "mode": "slow", "contact": "ada@"
    })).expect_err("out of bounds"), @r#"
        inputs.reason: 2 characters, fewer than the 3 required
        inputs.replicas: 11 is more than the maximum 10
        inputs.ratio: -0.1 is less than the minimum 0
        inputs.tags: 4 items, more than the 3 allowed
        inputs.tags[1]: "Not" does not match the pattern `^[a-z]+$`
        inputs.mode: "slow" is not one of the allowed values: "fast", "safe"
        inputs.contact: "ada@" is not an email address, such as ada@example.com
        "#);
    insta::assert_snapshot!(inputs(json!({
        "reason": "this reason is far too long to pass", "replicas": 0, "ratio": 1.5
    })).expect_err("out of bounds"), @r"
        inputs.reason: 35 characters, more than the 20 allowed
        inputs.replicas: 0 is less than the minimum 1
        inputs.ratio: 1.5 is more than the maximum 1
        ");
}

#[test]
fn five_mistakes_give_five_problems() {
    let problems = validate_inputs(
        &form(),
        &given(json!({"replicas": 0, "mode": "slow", "tags": ["a", "B"], "colour": "red"})),
        &catalog(),
    )
    .expect_err("five mistakes");
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "inputs.colour",
            "inputs.reason",
            "inputs.replicas",
            "inputs.tags[1]",
            "inputs.mode"
        ]
    );
}

#[test]
fn unknown_and_missing_inputs() {
    insta::assert_snapshot!(inputs(json!({"reasn": "typo", "extra": 1})).expect_err("unknown"), @r"
        inputs.reasn: the action `restart-service` has no input `reasn`; did you mean `reason`?
        inputs.extra: the action `restart-service` has no input `extra`
        inputs.reason: `reason` is required
        ");
    // A default counts as given for `required`.
    let a = action(with(
        restart(),
        "/inputs",
        json!({"properties": {"n": {"type": "integer", "default": 1}}, "required": ["n"]}),
    ));
    let ok = validate_inputs(&a, &Map::new(), &catalog()).expect("the default");
    assert_eq!(ok.plain, given(json!({"n": 1})));
}

#[test]
fn entity_pickers_name_an_entity_of_their_blueprint_matching_their_query() {
    let c = catalog();
    let check = |v: Value| {
        validate_inputs(&form(), &given(v), &c)
            .map(drop)
            .map_err(|p| lines(&p))
    };
    assert_eq!(
        check(json!({"reason": "why", "target": "checkout"})),
        Ok(())
    );
    assert_eq!(
        check(json!({"reason": "why", "target": "auth"})),
        Ok(()),
        "rust, deprecated"
    );
    insta::assert_snapshot!(check(json!({"reason": "why", "target": "nope"})).expect_err("missing"), @"inputs.target: there is no `service` entity `nope`");
    insta::assert_snapshot!(
        check(json!({"reason": "why", "target": "payments"})).expect_err("a team, not a service"),
        @"inputs.target: there is no `service` entity `payments`"
    );
    insta::assert_snapshot!(
        check(json!({"reason": "why", "target": "ledger"})).expect_err("go, not rust"),
        @"inputs.target: `ledger` is not one of the entities this input offers: language = rust"
    );
    insta::assert_snapshot!(
        check(json!({"reason": "why", "targets": ["ledger", "nope", 3, "payments"]})).expect_err("items"),
        @r"
        inputs.targets[1]: there is no `service` entity `nope`
        inputs.targets[2]: expected a string, found an integer 3
        inputs.targets[3]: there is no `service` entity `payments`
        "
    );
}

#[test]
fn problems_of_a_secret_input_never_quote_it() {
    let err = inputs(json!({"reason": "why", "token": "hunter2"})).expect_err("short, no prefix");
    insta::assert_snapshot!(err, @r"
        inputs.token: 7 characters, fewer than the 8 required
        inputs.token: the value does not match the pattern `^tok_`
        ");
    assert!(!err.contains("hunter2"));
    let err = inputs(json!({"reason": "why", "token": 12345678})).expect_err("a number");
    assert!(!err.contains("12345678"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Templates

fn who(email: &str, teams: &[&str], role: Role) -> Who {
    Who {
        email: email.into(),
        teams: teams.iter().map(|t| t.to_string()).collect(),
        role,
    }
}

struct Run {
    inputs: ValidatedInputs,
    entity: Value,
    user: Who,
}

fn run() -> Run {
    let c: TestCatalog = catalog();
    Run {
        inputs: ValidatedInputs {
            plain: given(
                json!({"reason": "stuck", "replicas": 3, "tags": ["a", "b"], "none": null}),
            ),
            secret: given(json!({"token": "tok_secret"})),
        },
        entity: c.get("service", "checkout").to_json(),
        user: who("ada@example.com", &["sre", "payments"], Role::Operator),
    }
}

impl Run {
    fn ctx(&self) -> TemplateContext<'_> {
        TemplateContext {
            inputs: &self.inputs,
            entity: Some(&self.entity),
            user: &self.user,
            user_name: "Ada Lovelace",
            run_id: "run-42",
            action: "restart-service",
        }
    }
}

/// The value of a template and whether it used a secret.
fn render(src: &str) -> Result<(Value, bool), String> {
    let r = run();
    let t = Template::parse(src)?;
    let out = t.render(&r.ctx())?;
    Ok((out.value, out.secret))
}

#[test]
fn one_path_keeps_its_json_type() {
    assert_eq!(render("{{ inputs.replicas }}"), Ok((json!(3), false)));
    assert_eq!(render("{{inputs.tags}}"), Ok((json!(["a", "b"]), false)));
    assert_eq!(render("{{   inputs.none   }}"), Ok((Value::Null, false)));
    assert_eq!(
        render("{{ entity.properties.tier }}"),
        Ok((json!(1), false))
    );
    assert_eq!(
        render("{{ entity.properties.public }}"),
        Ok((json!(true), false))
    );
    assert_eq!(
        render("{{ user.teams[1] }}"),
        Ok((json!("payments"), false))
    );
    assert_eq!(render("{{ user.role }}"), Ok((json!("operator"), false)));
    assert_eq!(
        render("{{ run }}"),
        Ok((json!({"id": "run-42", "action": "restart-service"}), false))
    );
    assert_eq!(
        render("{{ entity.properties[\"k8s.namespace\"] }}"),
        Ok((json!("payments-prod"), false))
    );
    assert_eq!(
        render("{{ entity.relations['owner'] }}"),
        Ok((json!("payments"), false))
    );
    assert_eq!(
        render("{{ entity.properties.meta.a }}"),
        Ok((json!(1), false))
    );
}

#[test]
fn anything_else_is_text() {
    assert_eq!(
        render("restart {{ entity.identifier }} x{{ inputs.replicas }} {{inputs.tags}} {{ inputs.none }}"),
        Ok((json!("restart checkout x3 [\"a\",\"b\"] null"), false))
    );
    // Even a space around one path makes text.
    assert_eq!(render(" {{ inputs.replicas }}"), Ok((json!(" 3"), false)));
    assert_eq!(
        render("no template }} here"),
        Ok((json!("no template }} here"), false))
    );
    assert_eq!(render(""), Ok((json!(""), false)));
    assert_eq!(
        render("{{ user.name }} <{{ user.email }}> ran {{ run.action }}#{{ run.id }}"),
        Ok((
            json!("Ada Lovelace <ada@example.com> ran restart-service#run-42"),
            false
        ))
    );
}

#[test]
fn a_path_with_no_value_is_an_error_naming_it() {
    insta::assert_snapshot!(render("{{ entity.properties.region }}").expect_err("missing"), @"`entity.properties.region` is missing: `entity.properties` has no `region`");
    insta::assert_snapshot!(render("a {{ inputs.reason.x }}").expect_err("missing"), @"`inputs.reason.x` is missing: `inputs.reason` is a string, not an object");
    insta::assert_snapshot!(render("{{ inputs.tags[5] }}").expect_err("missing"), @"`inputs.tags[5]` is missing: `inputs.tags` has 2 items, and no item 5");
    insta::assert_snapshot!(render("{{ inputs.replicas[0] }}").expect_err("missing"), @"`inputs.replicas[0]` is missing: `inputs.replicas` is a number, not a list");
    insta::assert_snapshot!(render("{{ inputs.mode }}").expect_err("missing"), @"`inputs.mode` is missing: no input `mode` was given");
    insta::assert_snapshot!(render("{{ user.teams.first }}").expect_err("missing"), @"`user.teams.first` is missing: `user.teams` is a list, not an object");
    let r = run();
    let no_entity = TemplateContext {
        entity: None,
        ..r.ctx()
    };
    let t = Template::parse("{{ entity.identifier }}").expect("a template");
    insta::assert_snapshot!(t.render(&no_entity).expect_err("no entity"), @"`entity.identifier` is missing: this run acts on no entity");
}

#[test]
fn what_a_secret_input_renders_is_marked_secret() {
    assert_eq!(
        render("{{ inputs.token }}"),
        Ok((json!("tok_secret"), true))
    );
    assert_eq!(
        render("Bearer {{ inputs.token }}"),
        Ok((json!("Bearer tok_secret"), true))
    );
    assert_eq!(
        render("{{ inputs.reason }} {{ inputs.token }}").map(|r| r.1),
        Ok(true)
    );
    assert_eq!(render("{{ inputs.reason }}").map(|r| r.1), Ok(false));
    let r = run();
    let rendered = Template::parse("{{ inputs.token }}")
        .and_then(|t| t.render(&r.ctx()))
        .expect("rendered");
    assert!(
        !format!("{rendered:?}").contains("tok_secret"),
        "{rendered:?}"
    );
    // An error about a secret input names its path, not its value.
    let err = render("{{ inputs.token.x }}").expect_err("missing");
    assert!(!err.contains("tok_secret"), "{err}");
}

#[test]
fn template_syntax_errors() {
    let errors: String = [
        "{{ inputs.reason",
        "a {{ inputs.reason {{ user.email }}",
        "{{ }}",
        "{{ secrets.token }}",
        "{{ inputs.reason | upper }}",
        "{{ inputs..reason }}",
        "{{ inputs.tags[x] }}",
        "{{ inputs.tags[0 }}",
        "{{ entity.properties[\"k8s.namespace] }}",
        "{{ inputs.reason.}}",
    ]
    .iter()
    .map(|src| format!("{src} → {}\n", Template::parse(src).expect_err(src)))
    .collect();
    insta::assert_snapshot!(errors, @r#"
        {{ inputs.reason → the `{{` at character 1 is not closed by `}}`
        a {{ inputs.reason {{ user.email }} → the `{{` at character 3 is not closed by `}}` before the next `{{`
        {{ }} → `{{ }}` at character 1: an empty path: write one such as `inputs.name`
        {{ secrets.token }} → `{{ secrets.token }}` at character 1: `secrets` is not a place to read: a path starts with `inputs`, `entity`, `user` or `run`
        {{ inputs.reason | upper }} → `{{ inputs.reason | upper }}` at character 1: a space at character 14 of the path: a template holds a path only (no filters or expressions)
        {{ inputs..reason }} → `{{ inputs..reason }}` at character 1: a name must follow the `.` at character 7 of the path
        {{ inputs.tags[x] }} → `{{ inputs.tags[x] }}` at character 1: `[` at character 12 takes an index (`[0]`) or a quoted key (`["a.b"]`)
        {{ inputs.tags[0 }} → `{{ inputs.tags[0 }}` at character 1: expected `]` at character 14
        {{ entity.properties["k8s.namespace] }} → `{{ entity.properties["k8s.namespace] }}` at character 1: the key at character 18 is not closed by "
        {{ inputs.reason.}} → `{{ inputs.reason.}}` at character 1: a name must follow the `.` at character 14 of the path
        "#);
}

#[test]
fn parameters_render_at_any_depth_and_say_which_used_secrets() {
    let a = action(with(
        restart(),
        "/invocation/parameters",
        json!({
            "service": "{{ entity.identifier }}",
            "replicas": "{{ inputs.replicas }}",
            "auth": {"header": "Bearer {{ inputs.token }}", "literal": 7},
            "list": ["{{ inputs.reason }}", true, null, "plain"],
            "who": "{{ user.email }}"
        }),
    ));
    let templates = ParameterTemplates::parse(&a.invocation.parameters).expect("templates");
    let r = run();
    let out = templates.render(&r.ctx()).expect("rendered");
    assert_eq!(
        Value::Object(out.values.clone()),
        json!({
            "service": "checkout",
            "replicas": 3,
            "auth": {"header": "Bearer tok_secret", "literal": 7},
            "list": ["stuck", true, null, "plain"],
            "who": "ada@example.com"
        })
    );
    assert_eq!(out.secret, ["auth"]);
    assert!(!format!("{out:?}").contains("tok_secret"), "{out:?}");

    let broken = action(with(
        restart(),
        "/invocation/parameters",
        json!({"a": "{{ inputs.missing }}", "b": ["x", {"c": "{{ entity.properties.nope }}"}]}),
    ));
    let templates = ParameterTemplates::parse(&broken.invocation.parameters).expect("templates");
    insta::assert_snapshot!(lines(&templates.render(&r.ctx()).expect_err("missing")), @r"
        invocation.parameters.a: `inputs.missing` is missing: no input `missing` was given
        invocation.parameters.b[1].c: `entity.properties.nope` is missing: `entity.properties` has no `nope`
        ");
}

// ---------------------------------------------------------------------------------------------
// Permissions

#[test]
fn roles_are_ordered_and_read_from_their_names() {
    assert!(Role::Viewer < Role::Operator);
    assert!(Role::Operator < Role::Approver);
    assert!(Role::Approver < Role::Admin);
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        assert_eq!(role.to_string(), role.as_str());
    }
    assert_eq!(
        "Admin".parse::<Role>(),
        Err("`Admin` is not a role: viewer, operator, approver or admin".to_string())
    );
}

#[allow(clippy::needless_pass_by_value)]
fn rule(v: Value) -> Rule {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("not a rule: {e}"))
}

fn owned_by(teams: &[&str]) -> Vec<String> {
    teams.iter().map(|t| t.to_string()).collect()
}

#[test]
fn a_role_rule_is_met_by_that_role_or_a_higher_one() {
    let r = rule(json!({"roles": ["approver"]}));
    let allowed: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|role| r.allows(&who("a@example.com", &[], *role), &[]))
        .collect();
    assert_eq!(allowed, [Role::Approver, Role::Admin]);
    // Several roles: the lowest decides.
    let r = rule(json!({"roles": ["admin", "operator"]}));
    assert!(r.allows(&who("a@example.com", &[], Role::Operator), &[]));
    assert!(!r.allows(&who("a@example.com", &[], Role::Viewer), &[]));
}

#[test]
fn mode_any_needs_one_matching_principal() {
    let r = rule(
        json!({"users": ["Lead@Example.com"], "teams": ["sre"], "roles": ["admin"], "owners": true}),
    );
    assert_eq!(r.mode, Mode::Any);
    let entity_teams = owned_by(&["payments"]);
    let allows = |w: Who| r.allows(&w, &entity_teams);
    assert!(
        allows(who("lead@example.com", &[], Role::Viewer)),
        "a listed user, any case"
    );
    assert!(
        allows(who("b@example.com", &["sre"], Role::Viewer)),
        "a listed team"
    );
    assert!(
        allows(who("c@example.com", &[], Role::Admin)),
        "a listed role"
    );
    assert!(
        allows(who("d@example.com", &["payments"], Role::Viewer)),
        "an owner"
    );
    assert!(
        !allows(who("e@example.com", &["search"], Role::Approver)),
        "none of them"
    );
    assert!(
        !r.allows(&who("d@example.com", &["payments"], Role::Viewer), &[]),
        "no owning team"
    );
}

#[test]
fn mode_all_needs_every_listed_kind() {
    let r = rule(json!({"teams": ["sre", "platform"], "roles": ["operator"], "mode": "all"}));
    assert!(
        r.allows(&who("a@example.com", &["platform"], Role::Operator), &[]),
        "one of the teams and the role"
    );
    assert!(
        !r.allows(&who("a@example.com", &["platform"], Role::Viewer), &[]),
        "the role is missing"
    );
    assert!(
        !r.allows(&who("a@example.com", &["search"], Role::Admin), &[]),
        "no listed team"
    );
    let owners = rule(json!({"owners": true, "users": ["a@example.com"], "mode": "all"}));
    let teams = owned_by(&["payments"]);
    assert!(owners.allows(&who("a@example.com", &["payments"], Role::Viewer), &teams));
    assert!(!owners.allows(&who("a@example.com", &["search"], Role::Viewer), &teams));
    assert!(!owners.allows(&who("b@example.com", &["payments"], Role::Viewer), &teams));
}

#[test]
fn a_rule_naming_nobody_allows_nobody_and_defaults_follow_the_roles() {
    let nobody = rule(json!({"mode": "all"}));
    assert!(nobody.names_nobody());
    assert!(!nobody.allows(&who("a@example.com", &["sre"], Role::Admin), &[]));
    assert!(!rule(json!({})).allows(&who("a@example.com", &["sre"], Role::Admin), &[]));
    // No `permissions`: operators run, approvers approve.
    let mut v = restart();
    v.as_object_mut().expect("object").remove("permissions");
    let a = action(v);
    let (run, approve) = (a.permissions.run_rule(), a.permissions.approve_rule());
    assert!(!run.allows(&who("a@example.com", &[], Role::Viewer), &[]));
    assert!(run.allows(&who("a@example.com", &[], Role::Operator), &[]));
    assert!(!approve.allows(&who("a@example.com", &[], Role::Operator), &[]));
    assert!(approve.allows(&who("a@example.com", &[], Role::Approver), &[]));
    assert!(approve.allows(&who("a@example.com", &[], Role::Admin), &[]));
}

// ---------------------------------------------------------------------------------------------
// Approvals

#[allow(clippy::needless_pass_by_value)]
fn approvals(approve: Value, approval: Value) -> Action {
    action(with(
        with(restart(), "/permissions/approve", approve),
        "/approval",
        approval,
    ))
}

fn waiting(missing: &[&str]) -> ApprovalState {
    ApprovalState::Waiting {
        missing: missing.iter().map(|m| m.to_string()).collect(),
    }
}

#[test]
fn no_approval_needed_is_approved_at_once() {
    let a = approvals(json!({"teams": ["sre"]}), json!({"required": false}));
    assert_eq!(
        approval_state(&a, "ada@example.com", &[], &[]),
        ApprovalState::Approved
    );
}

#[test]
fn mode_any_counts_distinct_allowed_approvers() {
    let a = approvals(
        json!({"teams": ["sre"], "roles": ["admin"]}),
        json!({"required": true, "count": 2}),
    );
    let requester = "ada@example.com";
    let bob = who("bob@example.com", &["sre"], Role::Viewer);
    let cy = who("cy@example.com", &[], Role::Admin);
    let outsider = who("dan@example.com", &["search"], Role::Approver);
    assert_eq!(
        approval_state(&a, requester, &[], &[]),
        waiting(&["2 more approvals from a member of team sre or an admin"])
    );
    assert_eq!(
        approval_state(&a, requester, &[bob.clone(), outsider.clone()], &[]),
        waiting(&["1 more approval from a member of team sre or an admin"]),
        "an approver the rule does not allow does not count"
    );
    let bob_again = who("BOB@example.com", &["sre"], Role::Viewer);
    assert_eq!(
        approval_state(&a, requester, &[bob.clone(), bob_again], &[]),
        waiting(&["1 more approval from a member of team sre or an admin"]),
        "one approver counts once"
    );
    assert_eq!(
        approval_state(&a, requester, &[bob, cy], &[]),
        ApprovalState::Approved
    );
}

#[test]
fn nobody_approves_their_own_run() {
    let a = approvals(json!({"teams": ["sre"]}), json!({"required": true}));
    let ada = who("ada@example.com", &["sre"], Role::Admin);
    assert_eq!(
        approval_state(&a, "Ada@Example.com", std::slice::from_ref(&ada), &[]),
        waiting(&["1 more approval from a member of team sre"])
    );
    assert_eq!(
        approval_state(&a, "someone@example.com", &[ada], &[]),
        ApprovalState::Approved
    );
}

#[test]
fn mode_all_needs_each_listed_principal() {
    let a = approvals(
        json!({"users": ["lead@example.com"], "teams": ["sre", "security"], "roles": ["admin"],
               "owners": true, "mode": "all"}),
        json!({"required": true}),
    );
    let teams = owned_by(&["payments"]);
    let requester = "ada@example.com";
    assert_eq!(
        approval_state(&a, requester, &[], &teams),
        waiting(&[
            "an approval from lead@example.com",
            "an approval from a member of team sre",
            "an approval from a member of team security",
            "an approval from an admin",
            "an approval from a member of a team owning the entity",
        ])
    );
    let lead = who("lead@example.com", &["sre"], Role::Operator);
    let sec = who("sec@example.com", &["security", "payments"], Role::Admin);
    assert_eq!(
        approval_state(&a, requester, std::slice::from_ref(&lead), &teams),
        waiting(&[
            "an approval from a member of team security",
            "an approval from an admin",
            "an approval from a member of a team owning the entity",
        ]),
        "one approval counts for every requirement its approver meets"
    );
    assert_eq!(
        approval_state(&a, requester, &[lead.clone(), sec.clone()], &teams),
        ApprovalState::Approved
    );
    // The requester's own approval fills nothing.
    assert_eq!(
        approval_state(&a, "sec@example.com", &[lead, sec], &teams),
        waiting(&[
            "an approval from a member of team security",
            "an approval from an admin",
            "an approval from a member of a team owning the entity",
        ])
    );
}

#[test]
fn the_default_approve_rule_takes_approvers_and_above() {
    let mut v = with(restart(), "/approval", json!({"required": true}));
    v["permissions"]
        .as_object_mut()
        .expect("object")
        .remove("approve");
    let a = action(v);
    let op = who("op@example.com", &[], Role::Operator);
    let ap = who("ap@example.com", &[], Role::Approver);
    assert_eq!(
        approval_state(&a, "ada@example.com", std::slice::from_ref(&op), &[]),
        waiting(&["1 more approval from an approver or higher"])
    );
    assert_eq!(
        approval_state(&a, "ada@example.com", &[op, ap], &[]),
        ApprovalState::Approved
    );
}

// ---------------------------------------------------------------------------------------------
// Webhook signatures

const BODY: &[u8] = br#"{"action":"restart-service"}"#;
/// Computed independently: `hmac.new(b"whsec_test", b'1700000000.{"action":"restart-service"}',
/// hashlib.sha256).hexdigest()` in Python.
const KNOWN: &str =
    "t=1700000000,v1=aa2240e5f8f127934d3472e932adc507e4ecc25694e5becd5cd485f088d078db";

#[test]
fn a_signature_matches_an_independent_hmac() {
    assert_eq!(sign(b"whsec_test", 1_700_000_000, BODY), KNOWN);
    // Python: hmac.new(b"", b"0.", hashlib.sha256).hexdigest()
    assert_eq!(
        sign(b"", 0, b""),
        "t=0,v1=b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3"
    );
}

#[test]
fn a_signature_verifies_and_a_tampered_one_does_not() {
    let t = 1_700_000_000;
    assert_eq!(verify(b"whsec_test", KNOWN, BODY, t + 10, 300), Ok(()));
    assert_eq!(
        verify(b"whsec_test", &sign(b"whsec_test", t, b"x"), b"x", t, 0),
        Ok(())
    );
    let tampered = br#"{"action":"delete-service"}"#;
    assert_eq!(
        verify(b"whsec_test", KNOWN, tampered, t, 300),
        Err("the signature does not match the body".to_string())
    );
    assert!(verify(b"other-secret", KNOWN, BODY, t, 300).is_err());
    // The timestamp is part of what is signed.
    let moved = KNOWN.replace("t=1700000000", "t=1700000001");
    assert!(verify(b"whsec_test", &moved, BODY, t, 300).is_err());
    let flipped = KNOWN.replace("v1=aa", "v1=ab");
    assert!(verify(b"whsec_test", &flipped, BODY, t, 300).is_err());
    // During a rotation, one of several signatures is enough.
    let rotated = format!("{KNOWN},v1={}", "00".repeat(32));
    assert_eq!(verify(b"whsec_test", &rotated, BODY, t, 300), Ok(()));
    let rotated = format!("t={t},v1=zz,v1={}", &KNOWN[KNOWN.len() - 64..]);
    assert_eq!(verify(b"whsec_test", &rotated, BODY, t, 300), Ok(()));
}

#[test]
fn a_stale_or_malformed_signature_is_refused() {
    let t = 1_700_000_000;
    assert_eq!(verify(b"whsec_test", KNOWN, BODY, t + 300, 300), Ok(()));
    insta::assert_snapshot!(verify(b"whsec_test", KNOWN, BODY, t + 301, 300).expect_err("stale"), @"the signature is 301 seconds old, more than the 300 allowed");
    insta::assert_snapshot!(verify(b"whsec_test", KNOWN, BODY, t - 301, 300).expect_err("ahead"), @"the signature is dated 301 seconds ahead, more than the 300 allowed");
    let malformed: String = ["", "v1=ab", "t=12", "t=x,v1=ab", "t=1;v1=ab"]
        .iter()
        .map(|h| format!("{h:?} → {}\n", verify(b"k", h, BODY, 12, 300).expect_err(h)))
        .collect();
    insta::assert_snapshot!(malformed, @r#"
        "" → the signature header is empty: it is `t=<unix seconds>,v1=<hex>`
        "v1=ab" → the header has no timestamp (`t=`)
        "t=12" → the header has no signature (`v1=`)
        "t=x,v1=ab" → the timestamp `x` is not unix seconds
        "t=1;v1=ab" → the timestamp `1;v1=ab` is not unix seconds
        "#);
}

// ---------------------------------------------------------------------------------------------
// Definition files

const RESTART_YAML: &str = r#"kind: Action
identifier: restart-service
title: Restart a service
description: Rolls the pods of a service.
icon: refresh
blueprint: service
operation: day-2
condition: 'lifecycle = "production"'
inputs:
  properties:
    reason: {type: string, minLength: 3}
    replicas: {type: integer, minimum: 1, default: 2}
    target: {type: string, format: entity, blueprint: service, query: 'language = rust'}
    token: {type: string, secret: true}
    tags: {type: array, items: {type: string}}
    mode: {type: string, enum: [fast, safe]}
  required: [reason]
permissions:
  run: {roles: [operator]}
  approve: {teams: [sre], mode: any}
approval: {required: true}
invocation:
  webhook:
    url: https://hooks.example.com/restart
    secret: !Secret restart-hook
  parameters:
    service: '{{ entity.identifier }}'
    reason: '{{ inputs.reason }}'
"#;

fn read_one(file: &str, src: &str) -> (Document, Action) {
    let (docs, errors) = parse_file(file, src);
    assert!(errors.is_empty(), "{errors:#?}");
    let [doc] = <[Document; 1]>::try_from(docs).expect("one document");
    let Definition::Action(a) = doc.definition.clone() else {
        panic!("not an action: {:?}", doc.definition);
    };
    (doc, a)
}

#[test]
fn an_action_file_is_read_with_its_secret_tag() {
    let (doc, a) = read_one("actions/restart.yaml", RESTART_YAML);
    assert_eq!(doc.key(), "action/restart-service");
    assert_eq!(doc.kind(), "Action");
    assert_eq!(doc.location().to_string(), "actions/restart.yaml:1:1");
    let Some(Target::Webhook(hook)) = a.invocation.target() else {
        panic!("not a webhook: {:?}", a.invocation);
    };
    assert_eq!(
        hook.secret.as_ref().map(|s| s.name.as_str()),
        Some("restart-hook")
    );
    assert_eq!(
        a.description.as_deref(),
        Some("Rolls the pods of a service.")
    );
    let c = catalog();
    assert!(check_action(&a, &|id| Lookup::blueprint(&c, id)).is_empty());
    // The JSON form reads the same action.
    let json_form = RESTART_YAML.replace("!Secret restart-hook", "{secret: restart-hook}");
    assert_eq!(read_one("actions/restart.yaml", &json_form).1, a);
    // Only that tag, only there.
    for other in ["!Secretive restart-hook", "!Connection restart-hook"] {
        let (docs, errors) = parse_file(
            "x.yaml",
            &RESTART_YAML.replace("!Secret restart-hook", other),
        );
        assert!(docs.is_empty(), "{other}");
        assert!(
            errors.iter().any(|e| e.message.contains("are not allowed")),
            "{other}: {errors:?}"
        );
    }
    // A problem found later is shown where it was written.
    assert_eq!(
        doc.locate("inputs.properties.replicas.minimum").to_string(),
        "actions/restart.yaml:12:40"
    );
    assert_eq!(
        doc.locate("invocation.webhook.secret").to_string(),
        "actions/restart.yaml:25:13"
    );
}

#[test]
fn a_bad_action_file_gives_every_error_at_its_place() {
    let src = r#"kind: Action
identifier: restart
operation: day2
inputs:
  properties:
    reason: {type: text}
    count: {type: integer, minimun: 1}
  requird: [reason]
permissions:
  run: {roles: [root], mode: some}
invocation:
  webhook:
    url: https://example.com/h
    secret: plain-value-here
  parameters:
    a: !Secret other
---
kind: Blueprint
identifier: service
schema:
  properties:
    key: {type: string, default: !Secret nope}
---
kind: Action
identifier: fine
operation: create
invocation: {workflow: make}
"#;
    let (docs, errors) = parse_file("actions.yaml", src);
    assert_eq!(
        docs.iter().map(Document::key).collect::<Vec<_>>(),
        ["action/fine"]
    );
    let shown: String = errors.iter().map(|e| format!("{e}\n")).collect();
    assert!(!shown.contains("plain-value-here"), "{shown}");
    insta::assert_snapshot!(shown, @r#"
        actions.yaml:3:12: unknown value `day2`; did you mean `day-2`?
        actions.yaml:6:20: unknown value `text`; expected one of `string`, `number`, `integer`, `boolean`, `object`, `array`
        actions.yaml:7:28: unknown field `minimun`; did you mean `minimum`?
        actions.yaml:8:3: unknown field `requird`; did you mean `required`?
        actions.yaml:10:17: unknown value `root`; expected one of `viewer`, `operator`, `approver`, `admin`
        actions.yaml:10:30: unknown value `some`; expected one of `any`, `all`
        actions.yaml:14:13: a webhook secret is named, never written in a definition: write `!Secret NAME` in YAML or {"secret": "NAME"}
        actions.yaml:16:8: tags such as `!Secret` are not allowed in a data file
        actions.yaml:22:34: tags such as `!Secret` are not allowed in a data file
        "#);
}

#[test]
fn definition_problems_are_located_in_the_file() {
    let src = RESTART_YAML
        .replace("minimum: 1,", "minimum: 5, maximum: 1,")
        .replace("inputs.reason", "inputs.raeson");
    let (doc, a) = read_one("restart.yaml", &src);
    let c = catalog();
    let located: String = check_action(&a, &|id| Lookup::blueprint(&c, id))
        .iter()
        .map(|p| format!("{}: {}\n", doc.locate(&p.path), p.message))
        .collect();
    insta::assert_snapshot!(located, @r"
        restart.yaml:12:40: `minimum` is greater than `maximum`
        restart.yaml:12:64: 2 is less than the minimum 5
        restart.yaml:12:64: 2 is more than the maximum 1
        restart.yaml:28:13: `inputs.raeson` names no input of this action; did you mean `reason`?
        ");
}
