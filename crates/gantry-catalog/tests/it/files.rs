//! Definition files: many definitions per file, every problem with its `file:line:col`.

use gantry_catalog::files::{check_duplicates, parse_file, Definition, Document, FileError};
use gantry_catalog::{PropertyType, RelationValue};
use proptest::prelude::*;

/// The definitions read and the problems found, one line each.
fn render(docs: &[Document], errors: &[FileError]) -> String {
    let mut out = String::new();
    for d in docs {
        out.push_str(&format!("{} {} at {}\n", d.index, d.key(), d.location()));
    }
    for e in errors {
        out.push_str(&format!("{e}\n"));
    }
    out
}

fn check(file: &str, src: &str) -> String {
    let (docs, errors) = parse_file(file, src);
    render(&docs, &errors)
}

fn parse_ok(file: &str, src: &str) -> Vec<Document> {
    let (docs, errors) = parse_file(file, src);
    assert!(errors.is_empty(), "{errors:#?}");
    docs
}

const CATALOG: &str = "\
# The service blueprint and two services.
kind: Blueprint
identifier: service
title: Service
schema:
  properties:
    port:
      type: integer
      minimum: 1
    language:
      type: string
      enum: [rust, go]
  required: [port]
relations:
  owner:
    target: team
  deps:
    target: service
    many: true
---
kind: Entity
identifier: payments
blueprint: service
title: Payments
team: payments-team
properties:
  port: 8080
  language: rust
relations:
  owner: payments-team
  deps: [ledger, fx, auth]
---
kind: Entity
identifier: ledger
blueprint: service
team: [core, payments-team]
relations:
  owner: null
";

#[test]
fn a_yaml_file_holds_blueprints_and_entities() {
    let docs = parse_ok("catalog/services.yaml", CATALOG);
    insta::assert_snapshot!(render(&docs, &[]), @r"
    0 blueprint/service at catalog/services.yaml:2:1
    1 entity/service/payments at catalog/services.yaml:21:1
    2 entity/service/ledger at catalog/services.yaml:33:1
    ");
    let Definition::Blueprint(b) = &docs[0].definition else {
        panic!("not a blueprint: {:?}", docs[0].definition)
    };
    assert_eq!(docs[0].kind(), "Blueprint");
    assert_eq!(b.schema.properties["port"].ty, PropertyType::Integer);
    assert_eq!(b.schema.required, vec!["port".to_string()]);
    assert!(b.relations["deps"].many);
    let Definition::Entity(e) = &docs[1].definition else {
        panic!("not an entity")
    };
    assert_eq!(docs[1].kind(), "Entity");
    assert_eq!(e.team, vec!["payments-team".to_string()]);
    assert_eq!(e.properties["port"], 8080);
    assert_eq!(
        e.relations["deps"],
        RelationValue::Many(vec!["ledger".into(), "fx".into(), "auth".into()])
    );
    let Definition::Entity(ledger) = &docs[2].definition else {
        panic!("not an entity")
    };
    assert_eq!(
        ledger.team,
        vec!["core".to_string(), "payments-team".to_string()]
    );
    assert!(
        ledger.relations.is_empty(),
        "a null relation is no relation"
    );
}

#[test]
fn locate_finds_nested_paths() {
    let docs = parse_ok("services.yaml", CATALOG);
    let at = |i: usize, path: &str| docs[i].locate(path).to_string();
    assert_eq!(at(0, "schema.properties.port.type"), "services.yaml:8:13");
    assert_eq!(
        at(0, "schema.properties.language.enum[1]"),
        "services.yaml:12:20"
    );
    assert_eq!(at(0, "relations.deps.many"), "services.yaml:19:11");
    assert_eq!(at(1, "properties.port"), "services.yaml:27:9");
    assert_eq!(at(1, "relations.deps[2]"), "services.yaml:31:22");
    // A path that is not written: the deepest part of it that is.
    assert_eq!(at(1, "properties.region"), "services.yaml:27:3");
    assert_eq!(at(2, "properties.port"), "services.yaml:33:1");
    assert_eq!(at(2, ""), "services.yaml:33:1");
}

#[test]
fn a_json_file_holds_one_object() {
    let src = r#"{
  "kind": "Entity",
  "identifier": "payments",
  "blueprint": "service",
  "properties": {"port": 8080}
}
"#;
    let docs = parse_ok("payments.json", src);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].key(), "entity/service/payments");
    assert_eq!(
        docs[0].locate("properties.port").to_string(),
        "payments.json:5:26"
    );
}

#[test]
fn a_json_file_holds_a_list_of_definitions() {
    let src = r##"[
  {"kind": "Blueprint", "identifier": "team"},
  {"kind": "Entity", "identifier": "core", "blueprint": "team",
   "properties": {"slack": "#core"}},
  {"kind": "Entity", "identifier": "web", "blueprint": "team"}
]
"##;
    let docs = parse_ok("teams.json", src);
    insta::assert_snapshot!(render(&docs, &[]), @r"
    0 blueprint/team at teams.json:2:3
    1 entity/team/core at teams.json:3:3
    2 entity/team/web at teams.json:5:3
    ");
    assert_eq!(
        docs[1].locate("properties.slack").to_string(),
        "teams.json:4:28"
    );
    assert_eq!(docs[2].locate("identifier").to_string(), "teams.json:5:36");
}

#[test]
fn a_yaml_document_may_be_a_list_too() {
    let src = "\
- kind: Blueprint
  identifier: team
---
kind: Entity
identifier: core
blueprint: team
";
    let docs = parse_ok("t.yaml", src);
    let found: Vec<(usize, String)> = docs.iter().map(|d| (d.index, d.key())).collect();
    assert_eq!(
        found,
        vec![(0, "blueprint/team".into()), (1, "entity/team/core".into())]
    );
}

#[test]
fn kinds_are_checked() {
    let src = "\
kind: blueprint
identifier: a
---
kind: Blueprnt
identifier: b
---
kind: Dashboard
identifier: c
---
identifier: d
---
kind: [Entity]
---
just a string
---
- kind: Entity
  identifier: e
  blueprint: a
- 42
";
    insta::assert_snapshot!(check("kinds.yaml", src), @r"
    6 entity/a/e at kinds.yaml:16:3
    kinds.yaml:1:7: unknown kind `blueprint`; kinds are capitalized: `Blueprint`
    kinds.yaml:4:7: unknown kind `Blueprnt`; the kinds are `kind: Blueprint`, `kind: Entity`, `kind: Action`, `kind: Scorecard`, `kind: Initiative` or `kind: Automation`; did you mean `Blueprint`?
    kinds.yaml:7:7: unknown kind `Dashboard`; the kinds are `kind: Blueprint`, `kind: Entity`, `kind: Action`, `kind: Scorecard`, `kind: Initiative` or `kind: Automation`
    kinds.yaml:10:1: missing field `kind`; say which kind this is: `kind: Blueprint`, `kind: Entity`, `kind: Action`, `kind: Scorecard`, `kind: Initiative` or `kind: Automation`
    kinds.yaml:12:7: `kind` is `kind: Blueprint`, `kind: Entity`, `kind: Action`, `kind: Scorecard`, `kind: Initiative` or `kind: Automation`, not a list
    kinds.yaml:14:1: a definition is a mapping with `kind: Blueprint`, `kind: Entity`, `kind: Action`, `kind: Scorecard`, `kind: Initiative` or `kind: Automation`, not a string
    kinds.yaml:19:3: a definition is a mapping with `kind: Blueprint`, `kind: Entity`, `kind: Action`, `kind: Scorecard`, `kind: Initiative` or `kind: Automation`, not a number
    ");
}

#[test]
fn every_refused_field_of_a_definition_is_reported() {
    let src = "\
kind: Blueprint
identifier: service
titel: Service
schema:
  properties:
    port:
      type: integr
      minimum: one
    name:
      tipe: string
  required: [port, 7, name]
relations:
  owner:
    many: true
  deps:
    target: service
    many: maybe
";
    insta::assert_snapshot!(check("service.yaml", src), @r#"
    service.yaml:3:1: unknown field `titel`; did you mean `title`?
    service.yaml:7:13: unknown value `integr`; did you mean `integer`?
    service.yaml:8:16: invalid type: string "one", expected f64
    service.yaml:9:5: missing field `type`
    service.yaml:10:7: unknown field `tipe`; did you mean `type`?
    service.yaml:11:20: invalid type: integer `7`, expected a string
    service.yaml:13:3: missing field `target`
    service.yaml:17:11: invalid type: string "maybe", expected a boolean
    "#);
}

#[test]
fn entities_report_missing_fields_and_wrong_shapes() {
    let src = "\
kind: Entity
title: Payments
team: 5
properties: [port]
relations:
  owner: {name: core}
  deps: [a, 2]
colour: red
";
    insta::assert_snapshot!(check("payments.yaml", src), @r"
    payments.yaml:1:1: missing field `identifier`
    payments.yaml:1:1: missing field `blueprint`
    payments.yaml:3:7: `team` is a team name or a list of team names
    payments.yaml:4:13: invalid type: sequence, expected a map
    payments.yaml:6:10: a relation is an identifier, a list of identifiers, or null
    payments.yaml:7:9: a relation is an identifier, a list of identifiers, or null
    payments.yaml:8:1: unknown field `colour`; expected one of `identifier`, `blueprint`, `title`, `team`, `properties`, `relations`
    ");
}

#[test]
fn yaml_problems_are_reported_with_the_others() {
    let src = "\
kind: Entity
identifier: a
identifier: b
blueprint: service
---
kind: Entity
identifier: c
blueprint: !Ref service
---
kind: Entity
identifier: d
blueprnt: service
---
kind: Entity
identifier: [unclosed
";
    let (docs, errors) = parse_file("broken.yaml", src);
    insta::assert_snapshot!(render(&docs, &errors), @r"
    broken.yaml:3:1: duplicate key `identifier` (first defined at 2:1)
    broken.yaml:8:12: tags such as `!Ref` are not allowed in a data file
    broken.yaml:10:1: missing field `blueprint`
    broken.yaml:12:1: unknown field `blueprnt`; did you mean `blueprint`?
    broken.yaml:16:1: invalid YAML: while parsing a flow sequence, expected ',' or ']'
    ");
}

#[test]
fn a_broken_file_keeps_the_definitions_before_the_break() {
    let src =
        "kind: Blueprint\nidentifier: a\n---\nkind: Blueprint\nidentifier: b\n---\nkind: [Entity\n";
    let (docs, errors) = parse_file("b.yaml", src);
    assert_eq!(docs.len(), 2);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.starts_with("invalid YAML"), "{errors:?}");
}

#[test]
fn an_empty_file_has_no_definitions() {
    assert_eq!(check("empty.yaml", ""), "");
    assert_eq!(check("empty.yaml", "# nothing yet\n---\n"), "");
}

#[test]
fn duplicates_are_reported_at_every_declaration() {
    let (mut docs, errors) = parse_file(
        "a.yaml",
        "kind: Blueprint\nidentifier: service\n---\nkind: Entity\nidentifier: payments\nblueprint: service\n",
    );
    assert!(errors.is_empty());
    let (more, errors) = parse_file(
        "b.json",
        r#"[{"kind": "Entity", "identifier": "payments", "blueprint": "service"},
            {"kind": "Entity", "identifier": "payments", "blueprint": "team"},
            {"kind": "Blueprint", "identifier": "service"},
            {"kind": "Entity", "identifier": "payments", "blueprint": "service"}]"#,
    );
    assert!(errors.is_empty());
    docs.extend(more);
    insta::assert_snapshot!(render(&[], &check_duplicates(&docs)), @r"
    a.yaml:2:13: `blueprint/service` is declared 2 times; also at b.json:3:49
    b.json:3:49: `blueprint/service` is declared 2 times; also at a.yaml:2:13
    a.yaml:5:13: `entity/service/payments` is declared 3 times; also at b.json:1:35, b.json:4:46
    b.json:1:35: `entity/service/payments` is declared 3 times; also at a.yaml:5:13, b.json:4:46
    b.json:4:46: `entity/service/payments` is declared 3 times; also at a.yaml:5:13, b.json:1:35
    ");
}

#[test]
fn a_file_error_reads_as_file_line_col_message() {
    let (_, errors) = parse_file("x.yaml", "kind: Entity\nidentifier: 1\nblueprint: s\n");
    assert_eq!(
        errors[0].to_string(),
        "x.yaml:2:13: invalid type: integer `1`, expected a string"
    );
    assert_eq!(errors[0].location.to_string(), "x.yaml:2:13");
    assert_eq!((errors[0].location.line, errors[0].location.col), (2, 13));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_text_is_read_without_panicking(src in "\\PC{0,200}") {
        let (docs, errors) = parse_file("any.yaml", &src);
        let _ = check_duplicates(&docs);
        for e in &errors {
            prop_assert!(e.location.line >= 1 && e.location.col >= 1);
        }
    }

    #[test]
    fn any_cut_of_a_real_file_is_read_without_panicking(cut in 0..CATALOG.len()) {
        let src = CATALOG.get(..cut).unwrap_or(CATALOG);
        let (docs, _) = parse_file("cut.yaml", src);
        for d in &docs {
            let _ = d.locate("relations.deps[1]");
        }
    }
}

#[test]
fn refused_list_items_are_shown_where_they_are_written() {
    // After the first refused item is taken out, the next is still shown at its own place.
    let src = "kind: Blueprint\nidentifier: s\nschema:\n  required: [1, port, 2, name, [x]]\n";
    insta::assert_snapshot!(check("s.yaml", src), @r"
    s.yaml:4:14: invalid type: integer `1`, expected a string
    s.yaml:4:23: invalid type: integer `2`, expected a string
    s.yaml:4:32: invalid type: sequence, expected a string
    ");
}
