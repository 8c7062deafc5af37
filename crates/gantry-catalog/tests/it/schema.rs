//! Blueprint definitions and entities against their blueprint.

use gantry_catalog::schema::{
    apply_defaults, check_blueprint, check_blueprint_change, check_identifier, validate_entity,
    CompiledBlueprint, Problem,
};
use gantry_catalog::Blueprint;
use serde_json::{json, Value};

use crate::fixture_schema::{blueprint, catalog, entity};

// Test helpers take JSON by value so cases read as `ok(json!(..), json!(..))`.
#[allow(clippy::needless_pass_by_value)]
fn lines(problems: Vec<Problem>) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

/// The problems of an entity (given as JSON) against `bp`.
fn check(bp: &Blueprint, e: Value) -> Vec<String> {
    lines(validate_entity(bp, &entity(e)))
}

/// The problems of one property value against a one-property blueprint.
#[allow(clippy::needless_pass_by_value)]
fn check_prop(spec: Value, value: Value) -> Vec<String> {
    let bp = blueprint(json!({"identifier": "thing", "schema": {"properties": {"p": spec}}}));
    check(
        &bp,
        json!({"identifier": "x", "blueprint": "thing", "properties": {"p": value}}),
    )
}

#[allow(clippy::needless_pass_by_value)]
fn ok(spec: Value, value: Value) {
    assert_eq!(
        check_prop(spec.clone(), value.clone()),
        Vec::<String>::new(),
        "{spec} {value}"
    );
}

fn bad(spec: Value, value: Value, expect: &str) {
    assert_eq!(check_prop(spec, value), vec![expect.to_string()]);
}

#[test]
fn identifiers() {
    for id in [
        "api",
        "API-2",
        "a",
        "svc.payments",
        "ada@example.com",
        "k8s:prod_1",
        &"a".repeat(100),
    ] {
        assert_eq!(check_identifier(id), Ok(()), "{id}");
    }
    assert_eq!(
        check_identifier(""),
        Err("an identifier cannot be empty".into())
    );
    assert_eq!(
        check_identifier(&"a".repeat(101)),
        Err("`aaaaaaaaaaaaaaaaaaaa...` is longer than 100 characters".into())
    );
    assert_eq!(
        check_identifier("my service"),
        Err("`my service` contains a space: use letters, digits and _ . @ : -".into())
    );
    assert_eq!(
        check_identifier("a/b"),
        Err("`a/b` contains `/`: use letters, digits and _ . @ : -".into())
    );
    assert_eq!(
        check_identifier("-a"),
        Err("`-a` must start with a letter or a digit".into())
    );
    assert!(check_identifier("é").is_err());
}

#[test]
fn every_property_type() {
    ok(json!({"type": "string"}), json!("x"));
    bad(
        json!({"type": "string"}),
        json!(1),
        "properties.p: expected a string, found an integer 1",
    );
    ok(json!({"type": "number"}), json!(1.5));
    ok(json!({"type": "number"}), json!(2));
    bad(
        json!({"type": "number"}),
        json!("2"),
        "properties.p: expected a number, found a string \"2\"",
    );
    ok(json!({"type": "integer"}), json!(80));
    ok(json!({"type": "integer"}), json!(80.0));
    bad(
        json!({"type": "integer"}),
        json!(1.5),
        "properties.p: expected an integer, found 1.5 (not a whole number)",
    );
    bad(
        json!({"type": "integer"}),
        json!(true),
        "properties.p: expected an integer, found a boolean true",
    );
    ok(json!({"type": "boolean"}), json!(false));
    bad(
        json!({"type": "boolean"}),
        json!("true"),
        "properties.p: expected a boolean, found a string \"true\"",
    );
    ok(json!({"type": "object"}), json!({"a": [1]}));
    bad(
        json!({"type": "object"}),
        json!([]),
        "properties.p: expected an object, found an array []",
    );
    ok(json!({"type": "array"}), json!([1, "a"]));
    bad(
        json!({"type": "array"}),
        json!({}),
        "properties.p: expected an array, found an object {}",
    );
    // null is no value: only `required` minds it.
    ok(json!({"type": "integer"}), Value::Null);
}

#[test]
fn every_format() {
    let f = |format: &str| json!({"type": "string", "format": format});
    for url in [
        "https://example.com",
        "http://localhost:8080/x?y#z",
        "https://[::1]/",
        "mailto:ada@example.com",
        "ssh://git@github.com/a/b",
    ] {
        ok(f("url"), json!(url));
    }
    for url in [
        "example.com",
        "https://",
        "https:///path",
        "http:/x",
        "https://exa mple.com",
        "1http://x",
    ] {
        assert_eq!(
            check_prop(f("url"), json!(url)),
            vec![format!(
                "properties.p: \"{url}\" is not an absolute URL, such as https://example.com/docs"
            )]
        );
    }
    ok(f("email"), json!("ada@example.com"));
    for email in [
        "ada",
        "ada@localhost",
        "@example.com",
        "a b@example.com",
        "ada@example..com",
        "a@b@c.com",
    ] {
        assert_eq!(
            check_prop(f("email"), json!(email)),
            vec![format!(
                "properties.p: \"{email}\" is not an email address, such as ada@example.com"
            )]
        );
    }
    ok(f("user"), json!("ada@example.com"));
    bad(
        f("user"),
        json!("ada"),
        "properties.p: \"ada\" is not a user's email address, such as ada@example.com",
    );
    ok(f("date-time"), json!("2024-05-01T12:00:00Z"));
    ok(f("date-time"), json!("2024-05-01T12:00:00.5+02:00"));
    bad(f("date-time"), json!("2024-05-01"), "properties.p: \"2024-05-01\" is not a date and time in RFC 3339, such as 2024-05-01T12:00:00Z");
    ok(f("markdown"), json!("# Title\n\n*anything*"));
    ok(f("yaml"), json!("a: 1\nb: [x, y]\n"));
    let yaml = check_prop(f("yaml"), json!("a: [1, 2\n"));
    assert_eq!(yaml.len(), 1);
    assert!(
        yaml[0].starts_with("properties.p: not valid YAML: "),
        "{yaml:?}"
    );
    ok(f("team"), json!("payments"));
    bad(
        f("team"),
        json!("pay ments"),
        "properties.p: \"pay ments\" is not a team name (letters, digits and _ . @ : -)",
    );
    bad(
        f("team"),
        json!(""),
        "properties.p: \"\" is not a team name (letters, digits and _ . @ : -)",
    );
    // Formats of array items, with their index.
    assert_eq!(
        check_prop(
            json!({"type": "array", "items": f("user")}),
            json!(["ada@example.com", "bob"])
        ),
        vec!["properties.p[1]: \"bob\" is not a user's email address, such as ada@example.com"]
    );
}

#[test]
fn enum_pattern_bounds_lengths_items() {
    let tier = json!({"type": "string", "enum": ["gold", "silver"]});
    ok(tier.clone(), json!("gold"));
    bad(
        tier,
        json!("bronze"),
        "properties.p: \"bronze\" is not one of the allowed values: \"gold\", \"silver\"",
    );
    ok(json!({"type": "number", "enum": [1, 2.5]}), json!(1.0));

    let slug = json!({"type": "string", "pattern": "^[a-z]+$"});
    ok(slug.clone(), json!("abc"));
    bad(
        slug,
        json!("Abc"),
        "properties.p: \"Abc\" does not match the pattern `^[a-z]+$`",
    );

    let port = json!({"type": "integer", "minimum": 1, "maximum": 65535});
    ok(port.clone(), json!(1));
    ok(port.clone(), json!(65535));
    bad(
        port.clone(),
        json!(0),
        "properties.p: 0 is less than the minimum 1",
    );
    bad(
        port,
        json!(70000),
        "properties.p: 70000 is more than the maximum 65535",
    );

    let name = json!({"type": "string", "minLength": 2, "maxLength": 3});
    ok(name.clone(), json!("ééé"));
    bad(
        name.clone(),
        json!("é"),
        "properties.p: 1 characters, fewer than the 2 required",
    );
    bad(
        name,
        json!("abcd"),
        "properties.p: 4 characters, more than the 3 allowed",
    );

    let tags = json!({"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string", "maxLength": 2}});
    ok(tags.clone(), json!(["a", "bb"]));
    bad(
        tags.clone(),
        json!([]),
        "properties.p: 0 items, fewer than the 1 required",
    );
    assert_eq!(
        check_prop(tags, json!(["abc", 1, "a"])),
        vec![
            "properties.p: 3 items, more than the 2 allowed",
            "properties.p[0]: 3 characters, more than the 2 allowed",
            "properties.p[1]: expected a string, found an integer 1",
        ]
    );
    // Arrays of arrays: paths nest.
    let matrix = json!({"type": "array", "items": {"type": "array", "items": {"type": "integer"}}});
    assert_eq!(
        check_prop(matrix, json!([[1], [2, "x"]])),
        vec!["properties.p[1][1]: expected an integer, found a string \"x\""]
    );
}

fn service() -> Blueprint {
    blueprint(json!({
        "identifier": "service",
        "schema": {
            "properties": {
                "port": {"type": "integer"},
                "language": {"type": "string"},
                "tier": {"type": "string", "default": "bronze"}
            },
            "required": ["language"]
        },
        "relations": {
            "owner": {"target": "team", "required": true},
            "deps": {"target": "service", "many": true}
        },
        "calculationProperties": {"url": {"calculation": "\"x\"", "type": "string"}}
    }))
}

#[test]
fn required_properties_and_unknown_ones() {
    let bp = service();
    assert_eq!(
        check(&bp, json!({"identifier": "api", "blueprint": "service", "properties": {"prot": 80, "language": null, "url": "u"}, "relations": {"owner": "payments"}})),
        vec![
            "properties.prot: blueprint `service` has no property `prot`; did you mean `port`?",
            "properties.url: `url` is a calculation property: the catalog computes it, and it cannot be written",
            "properties.language: `language` is required",
        ]
    );
}

#[test]
fn relation_rules() {
    let bp = service();
    let base = |relations: Value| {
        check(
            &bp,
            json!({"identifier": "api", "blueprint": "service", "properties": {"language": "rust"}, "relations": relations}),
        )
    };
    assert_eq!(
        base(json!({"owner": "payments", "deps": ["db", "cache"]})),
        Vec::<String>::new()
    );
    // A single identifier for a many relation is a list of one.
    assert_eq!(
        base(json!({"owner": "payments", "deps": "db"})),
        Vec::<String>::new()
    );
    assert_eq!(
        base(json!({"owner": ["payments"]})),
        vec!["relations.owner: `owner` names one `team` entity: give its identifier, not a list"]
    );
    assert_eq!(
        base(json!({"owner": "payments", "dep": ["db"]})),
        vec!["relations.dep: blueprint `service` has no relation `dep`; did you mean `deps`?"]
    );
    assert_eq!(
        base(json!({"owner": "pay ments", "deps": ["db", "a/b", "db"]})),
        vec![
            "relations.owner: `pay ments` contains a space: use letters, digits and _ . @ : -",
            "relations.deps[1]: `a/b` contains `/`: use letters, digits and _ . @ : -",
            "relations.deps[2]: `db` is named twice",
        ]
    );
    assert_eq!(
        base(json!({})),
        vec!["relations.owner: the relation `owner` is required"]
    );
    assert_eq!(
        base(json!({"owner": null})),
        vec!["relations.owner: the relation `owner` is required"]
    );
}

#[test]
fn teams_and_titles() {
    let bp = service();
    assert_eq!(
        check(&bp, json!({"identifier": "api", "blueprint": "service", "title": "t".repeat(201), "team": ["ok", "not ok"], "properties": {"language": "go"}, "relations": {"owner": "p"}})),
        vec![
            "title: the title is longer than 200 characters",
            "team[1]: not a team name: `not ok` contains a space: use letters, digits and _ . @ : -",
        ]
    );
}

#[test]
fn five_mistakes_are_five_problems() {
    let bp = service();
    let problems = validate_entity(
        &bp,
        &entity(json!({
            "identifier": "my api",
            "blueprint": "service",
            "properties": {"port": "80", "colour": "red"},
            "relations": {"owner": "payments", "parent": "x"}
        })),
    );
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "identifier",
            "properties.port",
            "properties.colour",
            "properties.language",
            "relations.parent"
        ]
    );
    assert_eq!(
        lines(problems),
        vec![
            "identifier: `my api` contains a space: use letters, digits and _ . @ : -",
            "properties.port: expected an integer, found a string \"80\"",
            "properties.colour: blueprint `service` has no property `colour`",
            "properties.language: `language` is required",
            "relations.parent: blueprint `service` has no relation `parent`",
        ]
    );
}

#[test]
fn problems_serialize_with_their_path() {
    let p = Problem {
        path: "properties.port".into(),
        message: "expected an integer".into(),
    };
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({"path": "properties.port", "message": "expected an integer"})
    );
    assert_eq!(p.to_string(), "properties.port: expected an integer");
}

#[test]
fn defaults_fill_what_is_left_out() {
    let bp = service();
    let mut e = entity(
        json!({"identifier": "api", "blueprint": "service", "properties": {"language": "go"}}),
    );
    apply_defaults(&bp, &mut e);
    assert_eq!(e.properties.get("tier"), Some(&json!("bronze")));
    let mut e = entity(
        json!({"identifier": "api", "blueprint": "service", "properties": {"tier": "gold"}}),
    );
    apply_defaults(&bp, &mut e);
    assert_eq!(e.properties.get("tier"), Some(&json!("gold")));
    let mut e =
        entity(json!({"identifier": "api", "blueprint": "service", "properties": {"tier": null}}));
    apply_defaults(&bp, &mut e);
    assert_eq!(e.properties.get("tier"), Some(&json!("bronze")));
}

/// The problems of a blueprint definition, with the fixture catalog's blueprints around it.
fn check_bp(bp: Value) -> Vec<String> {
    let c = catalog();
    let find = c.find();
    lines(check_blueprint(&blueprint(bp), &find))
}

#[test]
fn a_sound_blueprint_has_no_problem() {
    assert_eq!(
        check_bp(json!({
            "identifier": "deployment",
            "title": "Deployment",
            "schema": {
                "properties": {
                    "version": {"type": "string", "pattern": "^v[0-9]+", "default": "v1"},
                    "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "enum": [1, 2, 3]},
                    "hosts": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "url"}}
                },
                "required": ["version"]
            },
            "relations": {"service": {"target": "service", "required": true}, "previous": {"target": "deployment"}},
            "mirrorProperties": {
                "owner_slack": {"path": "service.owner.slack"},
                "owner_title": {"path": "service.owner.$title"},
                "lead_slack": {"path": "service.owner.lead.slack"},
                "previous_version": {"path": "previous.version"}
            },
            "calculationProperties": {"major": {"calculation": ".properties.version | ltrimstr(\"v\") | tonumber", "type": "integer"}}
        })),
        Vec::<String>::new()
    );
    // Aggregations from the other side.
    assert_eq!(
        check_bp(json!({
            "identifier": "service",
            "relations": {"owner": {"target": "team"}},
            "aggregationProperties": {
                "incidents": {"target": "incident", "func": "count", "filter": {"rules": []}},
                "minutes": {"target": "incident", "relation": "service", "func": "sum", "property": "minutes"}
            }
        })),
        Vec::<String>::new()
    );
}

#[test]
fn property_definition_errors() {
    assert_eq!(
        check_bp(json!({
            "identifier": "bad id",
            "schema": {
                "properties": {
                    "a": {"type": "string", "enum": ["x", 1]},
                    "b": {"type": "string", "pattern": "("},
                    "c": {"type": "integer", "minimum": 5, "maximum": 1},
                    "d": {"type": "string", "items": {"type": "string"}, "minItems": 1},
                    "e": {"type": "integer", "format": "url", "maxLength": 3},
                    "f": {"type": "integer", "default": "eighty"},
                    "g": {"type": "string", "pattern": "(a{1000}){1000}"},
                    "h": {"type": "array", "items": {"type": "integer", "minimum": 3, "default": 1}},
                    "i": {"type": "string", "enum": []},
                    "j": {"type": "string", "minLength": 3, "maxLength": 2}
                },
                "required": ["a", "nope", "a"]
            }
        })),
        vec![
            "identifier: `bad id` contains a space: use letters, digits and _ . @ : -",
            "schema.properties.a.enum[1]: expected a string, found an integer 1",
            "schema.properties.b.pattern: the pattern is not a valid regular expression: regex parse error:\n    (\n    ^\nerror: unclosed group",
            "schema.properties.c.minimum: `minimum` is greater than `maximum`",
            "schema.properties.d.minItems: `minItems` applies to arrays, and this property is a string",
            "schema.properties.d.items: `items` applies to arrays, and this property is a string",
            "schema.properties.e.format: `format` applies to strings (put it in `items` for an array of strings), and this property is an integer",
            "schema.properties.e.maxLength: `maxLength` applies to strings, and this property is an integer",
            "schema.properties.f.default: expected an integer, found a string \"eighty\"",
            "schema.properties.g.pattern: the pattern is too large once compiled; simplify its repetitions",
            "schema.properties.h.items.default: 1 is less than the minimum 3",
            "schema.properties.i.enum: `enum` lists no value: list the allowed values, or remove it",
            "schema.properties.j.minLength: `minLength` is greater than `maxLength`",
            "schema.required[1]: `nope` is not a property of this blueprint",
            "schema.required[2]: `a` is listed twice",
        ]
    );
}

#[test]
fn name_errors() {
    assert_eq!(
        check_bp(json!({
            "identifier": "thing",
            "schema": {"properties": {"title": {"type": "string"}, "$x": {"type": "string"}, "a.b": {"type": "string"}, "owner": {"type": "string"}}},
            "relations": {"owner": {"target": "team"}},
            "calculationProperties": {"owner": {"calculation": "1", "type": "integer"}}
        })),
        vec![
            "schema.properties.title: `title` is a field every entity has (a meta field); choose another name",
            "schema.properties.$x: `$x` starts with `$`, which marks meta fields such as `$identifier`",
            "schema.properties.a.b: `a.b` contains `.`, which separates the steps of mirror paths",
            "relations.owner: the name `owner` is already used by a property",
            "calculationProperties.owner: the name `owner` is already used by a property",
        ]
    );
}

#[test]
fn relation_definition_errors() {
    assert_eq!(
        check_bp(json!({
            "identifier": "thing",
            "relations": {
                "owner": {"target": "teem"},
                "lead": {"target": "user", "many": true, "required": true},
                "parent": {"target": "thing"}
            }
        })),
        vec![
            "relations.owner.target: there is no blueprint `teem`",
            "relations.lead: a relation cannot be both `many` and `required`: a required relation names exactly one entity; drop one of the two",
        ]
    );
}

#[test]
fn mirror_definition_errors() {
    let mirror = |path: &str| {
        check_bp(json!({
            "identifier": "deployment",
            "relations": {"service": {"target": "service"}},
            "mirrorProperties": {"m": {"path": path}}
        }))
    };
    assert_eq!(mirror("service.port"), Vec::<String>::new());
    assert_eq!(mirror("service.owner.$team"), Vec::<String>::new());
    assert_eq!(mirror("service.deps.owner"), Vec::<String>::new());
    assert_eq!(
        mirror("port"),
        vec!["mirrorProperties.m.path: `port` names no relation: a mirror path is relation names then a field, such as `owner.title`"]
    );
    assert_eq!(
        mirror("servise.port"),
        vec!["mirrorProperties.m.path: `servise` is not a relation of blueprint `deployment`; did you mean `service`?"]
    );
    assert_eq!(
        mirror("service.owner.slak"),
        vec![
            "mirrorProperties.m.path: blueprint `team` has no field `slak`; did you mean `slack`?"
        ]
    );
    assert_eq!(
        mirror("service.owner.$slack"),
        vec!["mirrorProperties.m.path: blueprint `team` has no field `$slack`; did you mean `slack`?"]
    );
}

#[test]
fn calculation_definition_errors() {
    assert_eq!(
        check_bp(json!({
            "identifier": "thing",
            "calculationProperties": {
                "a": {"calculation": ".properties.x |", "type": "string"},
                "b": {"calculation": "nosuch", "type": "string"},
                "c": {"calculation": "1", "type": "integer", "format": "url"}
            }
        })),
        vec![
            "calculationProperties.a.calculation: line 1, column 16: expected term, found the end of the program",
            "calculationProperties.b.calculation: line 1, column 1: the filter `nosuch/0` is not defined",
            "calculationProperties.c.format: a format applies to strings, and this calculation gives an integer",
        ]
    );
}

#[test]
fn aggregation_definition_errors() {
    let c = catalog();
    let find = |id: &str| {
        if id == "incident2" {
            Some(blueprint(json!({
                "identifier": "incident2",
                "schema": {"properties": {"minutes": {"type": "number"}}},
                "relations": {"service": {"target": "service"}, "caused_by": {"target": "service"}}
            })))
        } else {
            c.find()(id)
        }
    };
    let bp = blueprint(json!({
        "identifier": "service",
        "aggregationProperties": {
            "a": {"target": "nope", "func": "count"},
            "b": {"target": "user", "func": "count"},
            "c": {"target": "incident2", "func": "count"},
            "d": {"target": "incident", "relation": "servise", "func": "count"},
            "e": {"target": "incident", "func": "sum"},
            "f": {"target": "incident", "func": "max", "property": "severity"},
            "g": {"target": "incident", "func": "average", "property": "minuts"},
            "h": {"target": "team", "relation": "lead", "func": "count"}
        }
    }));
    assert_eq!(
        lines(check_blueprint(&bp, &find)),
        vec![
            "aggregationProperties.a.target: there is no blueprint `nope`",
            "aggregationProperties.b.target: blueprint `user` has no relation to `service`, so there is nothing to aggregate",
            "aggregationProperties.c.relation: blueprint `incident2` has several relations to `service` (service, caused_by): name the one to follow in `relation`",
            "aggregationProperties.d.relation: blueprint `incident` has no relation `servise`; did you mean `service`?",
            "aggregationProperties.e.property: `sum` needs the number property to aggregate",
            "aggregationProperties.f.property: `severity` of `incident` is a string; aggregations need a number or an integer",
            "aggregationProperties.g.property: blueprint `incident` has no property `minuts`; did you mean `minutes`?",
            "aggregationProperties.h.relation: the relation `lead` of `team` points to `user`, not to `service`",
        ]
    );
}

#[test]
fn changes_existing_entities_cannot_follow() {
    let old = blueprint(json!({
        "identifier": "service",
        "schema": {"properties": {
            "port": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "name": {"type": "string"}
        }},
        "relations": {"owner": {"target": "team"}, "deps": {"target": "service", "many": true}, "lead": {"target": "user"}}
    }));
    let new = blueprint(json!({
        "identifier": "service",
        "schema": {"properties": {
            "port": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "number"}},
            "name": {"type": "string", "maxLength": 10},
            "added": {"type": "boolean"}
        }},
        "relations": {"owner": {"target": "group"}, "deps": {"target": "service"}, "lead": {"target": "user", "many": true}}
    }));
    assert_eq!(
        lines(check_blueprint_change(&old, &new)),
        vec![
            "schema.properties.port.type: the type of `port` cannot change from string to integer; add a new property, copy the values, then remove this one",
            "schema.properties.tags.items.type: the type of the items of `tags` cannot change from string to number; add a new property, copy the values, then remove this one",
            "relations.owner.target: the target of `owner` cannot change from `team` to `group`; add a new relation, copy the values, then remove this one",
            "relations.deps.many: `deps` cannot change from many to one: entities may already name several targets; add a new relation, copy the values, then remove this one",
        ]
    );
    assert_eq!(check_blueprint_change(&old, &old), vec![]);
}

/// Validation is on the bulk-upsert path: a loose bound, and the figure printed.
#[test]
fn compiled_validation_is_fast() {
    let bp = blueprint(json!({
        "identifier": "service",
        "schema": {"properties": {
            "port": {"type": "integer", "minimum": 1},
            "slug": {"type": "string", "pattern": "^[a-z-]+$"},
            "url": {"type": "string", "format": "url"},
            "tags": {"type": "array", "items": {"type": "string"}}
        }, "required": ["slug"]},
        "relations": {"owner": {"target": "team"}}
    }));
    let compiled = CompiledBlueprint::new(&bp);
    let e = entity(json!({"identifier": "api", "blueprint": "service",
        "properties": {"port": 80, "slug": "api-gw", "url": "https://example.com", "tags": ["a", "b"]},
        "relations": {"owner": "payments"}}));
    let n = 100_000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        assert!(compiled.validate(&e).is_empty());
    }
    let per = start.elapsed() / n;
    println!("validate a valid entity: {per:?}");
    assert!(per < std::time::Duration::from_micros(100), "{per:?}");
}
