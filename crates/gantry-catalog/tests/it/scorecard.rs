//! Scorecards and initiatives: definitions and their checks, levels, scores, the values rules
//! saw, what to fix next, summaries, progress, level changes, and definition files.

use std::collections::BTreeMap;

use gantry_catalog::files::{parse_file, Definition};
use gantry_catalog::index::{Catalog, Delta, Expect, WriteContext};
use gantry_catalog::query::{field_value, Query};
use gantry_catalog::schema::Problem;
use gantry_catalog::scorecard::{
    check_initiative, check_scorecard, compare_levels, progress, summarize, CompiledScorecard,
    Evaluation, Initiative, Level, LevelChange, RuleOutcome, Scorecard, TeamProgress,
};
use gantry_catalog::{Blueprint, Entity, Lookup, Source};
use serde_json::{json, Value};

use crate::fixture::{catalog, TestCatalog};

#[allow(clippy::needless_pass_by_value)]
fn scorecard(v: Value) -> Scorecard {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("not a scorecard: {e}"))
}

#[allow(clippy::needless_pass_by_value)]
fn compile(v: Value) -> CompiledScorecard {
    CompiledScorecard::compile(scorecard(v)).unwrap_or_else(|p| panic!("refused: {p:#?}"))
}

fn lines(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("{p}\n")).collect()
}

/// Every entity of `blueprint` in `c`, in the order they were added.
fn all<'c>(c: &'c TestCatalog, blueprint: &str) -> Vec<&'c gantry_catalog::Indexed> {
    c.entities
        .iter()
        .filter(|e| e.record.entity.blueprint == blueprint)
        .collect()
}

/// Entity identifier → its evaluation, for every entity of the catalog in scope.
fn evaluate_all(sc: &CompiledScorecard, c: &TestCatalog) -> BTreeMap<String, Evaluation> {
    let prepared = sc.prepare(c);
    c.entities
        .iter()
        .filter_map(|e| {
            let ev = prepared.evaluate(e, c)?;
            Some((e.record.entity.identifier.clone(), ev))
        })
        .collect()
}

/// The levels reached, as `identifier: Level` lines.
fn levels(sc: &CompiledScorecard, evs: &BTreeMap<String, Evaluation>) -> String {
    evs.iter()
        .map(|(id, ev)| format!("{id}: {}\n", sc.level_name(ev.level).unwrap_or("?")))
        .collect()
}

/// The fixture catalog and a service that passes the Silver and Gold rules of [`ladder`] but
/// not its Bronze one: it has no owner.
fn catalog_with_orphan() -> TestCatalog {
    let mut c = catalog();
    c.add(
        json!({"identifier": "orphan", "blueprint": "service", "team": ["search"],
        "properties": {"language": "rust", "cost": 5}}),
    );
    c
}

/// Basic (the floor), Bronze: an owner; Silver: rust; Gold: cheap.
fn ladder() -> Value {
    json!({
        "identifier": "production-readiness",
        "title": "Production readiness",
        "blueprint": "service",
        "levels": ["Basic", "Bronze", {"title": "Silver", "color": "silver"}, "Gold"],
        "rules": [
            {"identifier": "has-owner", "title": "Has an owning team", "level": "Bronze",
             "where": "owner isNotEmpty"},
            {"identifier": "rust", "title": "Written in Rust", "level": "Silver",
             "query": {"combinator": "and",
                       "rules": [{"property": "language", "operator": "=", "value": "rust"}]}},
            {"identifier": "cheap", "title": "Costs under 16", "level": "Gold",
             "where": "cost < 16"}
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// The model

#[test]
fn levels_are_read_from_strings_or_objects_and_written_back_the_same_way() {
    let s = scorecard(ladder());
    assert_eq!(
        s.levels,
        vec![
            Level::named("Basic"),
            Level::named("Bronze"),
            Level {
                title: "Silver".into(),
                color: Some("silver".into())
            },
            Level::named("Gold"),
        ]
    );
    let back = serde_json::to_value(&s).unwrap();
    assert_eq!(
        back["levels"],
        json!(["Basic", "Bronze", {"title": "Silver", "color": "silver"}, "Gold"])
    );
    assert_eq!(back["rules"][0]["where"], "owner isNotEmpty");
    assert_eq!(scorecard(back), s);

    // Left out: Bronze, Silver, Gold.
    let s = scorecard(json!({"identifier": "x", "blueprint": "service"}));
    assert_eq!(
        s.levels,
        ["Bronze", "Silver", "Gold"].map(Level::named).to_vec()
    );
    assert!(s.rules.is_empty());

    // A level object is closed, like the rest of the definition.
    let e = serde_json::from_value::<Scorecard>(json!({"identifier": "x", "blueprint": "s",
        "levels": [{"title": "Gold", "colour": "gold"}]}))
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `colour`"), "{e}");
    let e = serde_json::from_value::<Scorecard>(json!({"identifier": "x", "blueprint": "s",
        "levels": [7]}))
    .unwrap_err();
    assert!(
        e.to_string().contains("a level's title, or {title, color}"),
        "{e}"
    );
}

#[test]
fn compiled_scorecards_name_their_levels_and_what_they_depend_on() {
    let sc = compile(ladder());
    assert_eq!(sc.levels(), ["Basic", "Bronze", "Silver", "Gold"]);
    assert_eq!(sc.level_name(2), Some("Silver"));
    assert_eq!(sc.level_name(4), None);
    assert_eq!(sc.level_index("Gold"), Some(3));
    assert_eq!(sc.top_level(), 3);
    assert_eq!(sc.relation_depth(), 0);
    assert!(!sc.uses_related_to());
    assert_eq!(sc.scorecard().identifier, "production-readiness");

    let sc = compile(json!({"identifier": "x", "blueprint": "service",
    "filter": "owner.slack isNotEmpty",
    "rules": [
        {"identifier": "a", "level": "Silver", "where": "dependsOn.owner.slack = x"},
        {"identifier": "b", "level": "Gold", "where": "relatedTo team/payments upstream"},
        {"identifier": "c", "level": "Gold", "where": "$team isEmpty and properties.x = 1"}
    ]}));
    assert_eq!(sc.relation_depth(), 2);
    assert!(sc.uses_related_to());

    let sc = compile(json!({"identifier": "x", "blueprint": "service",
        "filter": {"property": "owner.slack", "operator": "isNotEmpty"}}));
    assert_eq!(sc.relation_depth(), 1, "the filter counts");
}

#[test]
fn queries_say_which_fields_they_read_and_how_far() {
    let q = Query::parse(
        "language = rust and (tier > 1 or language = go) and owner.team.slack isEmpty \
         and relatedTo team/payments",
    )
    .unwrap();
    assert_eq!(q.fields(), ["language", "tier", "owner.team.slack"]);
    assert_eq!(q.relation_depth(), 2);
    assert!(q.uses_related_to());
    let q =
        Query::parse("$team.x = 1 or properties.a.b = 2 or not (k8s.namespace isEmpty)").unwrap();
    assert_eq!(q.fields(), ["$team.x", "properties.a.b", "k8s.namespace"]);
    // `k8s` may be a relation until an entity says otherwise: an upper bound.
    assert_eq!(q.relation_depth(), 1);
    assert!(!q.uses_related_to());
    assert!(Query::all().fields().is_empty());
    assert_eq!(Query::all().relation_depth(), 0);
}

#[test]
fn field_value_is_what_rules_read() {
    let c = catalog();
    let checkout = c.get("service", "checkout");
    assert_eq!(field_value(checkout, "language", &c), json!("rust"));
    assert_eq!(field_value(checkout, "$team", &c), json!(["payments"]));
    assert_eq!(field_value(checkout, "title", &c), json!("Checkout"));
    assert_eq!(field_value(checkout, "score", &c), json!(0.9), "computed");
    assert_eq!(field_value(checkout, "owner", &c), json!("payments"));
    assert_eq!(
        field_value(checkout, "k8s.namespace", &c),
        json!("payments-prod")
    );
    assert_eq!(field_value(checkout, "nothing", &c), Value::Null);
    // Through relations: the values reached, in relation order.
    assert_eq!(field_value(checkout, "owner.slack", &c), json!(["#pay"]));
    assert_eq!(
        field_value(checkout, "dependsOn.language", &c),
        json!(["go", "rust"])
    );
    assert_eq!(
        field_value(checkout, "dependsOn.dependsOn.title", &c),
        json!(["Database"])
    );
    // Nothing reached: a dangling owner, no owner, a target without the field.
    assert_eq!(
        field_value(c.get("service", "gateway"), "owner.slack", &c),
        json!([])
    );
    assert_eq!(
        field_value(c.get("service", "db"), "owner.slack", &c),
        json!([])
    );
    assert_eq!(
        field_value(c.get("service", "auth"), "owner.slack", &c),
        json!([])
    );
}

// ---------------------------------------------------------------------------------------------
// Levels and scores

#[test]
fn an_entity_reaches_a_level_when_every_rule_up_to_it_passes() {
    let c = catalog_with_orphan();
    let sc = compile(ladder());
    let evs = evaluate_all(&sc, &c);
    // checkout: owner, rust, 15. ledger: owner, go. auth: owner, rust, 20.5. db: no owner.
    // gateway: a (dangling) owner, no language. orphan: rust and cheap, but no owner.
    insta::assert_snapshot!(levels(&sc, &evs), @r"
    auth: Silver
    checkout: Gold
    db: Basic
    gateway: Bronze
    ledger: Bronze
    orphan: Basic
    ");
    // Teams and deployments are not services: out of scope.
    assert!(!evs.contains_key("payments"));
    assert!(!evs.contains_key("checkout-prod"));

    // The Silver and Gold rules of the orphan pass; the failing Bronze one keeps it at the floor.
    let orphan = &evs["orphan"];
    let passed: Vec<bool> = orphan.rules.iter().map(|o| o.passed).collect();
    assert_eq!(passed, [false, true, true]);
    assert_eq!(orphan.level, 0);
}

#[test]
fn a_level_without_rules_is_passed_through() {
    let c = catalog_with_orphan();
    let sc = compile(json!({
    "identifier": "x", "blueprint": "service",
    "levels": ["None", "Owned", "Reviewed", "Rusty", "Perfect"],
    "rules": [
        {"identifier": "has-owner", "level": "Owned", "where": "owner isNotEmpty"},
        {"identifier": "rust", "level": "Rusty", "where": "language = rust"}
    ]}));
    let evs = evaluate_all(&sc, &c);
    // Owned without Rust: through Reviewed (no rules) up to the failing Rusty.
    // Owned and Rust: through Perfect too, which has no rules.
    insta::assert_snapshot!(levels(&sc, &evs), @r"
    auth: Perfect
    checkout: Perfect
    db: None
    gateway: Reviewed
    ledger: Reviewed
    orphan: None
    ");

    // No rules at all: everyone at the top with a full score.
    let sc = compile(json!({"identifier": "x", "blueprint": "service", "levels": ["A", "B"]}));
    let ev = sc.prepare(&c).evaluate(c.get("service", "db"), &c).unwrap();
    assert_eq!(ev.level, 1);
    assert_eq!(ev.score, 100.0);
    assert!(ev.rules.is_empty());

    // One level: the floor, where everyone stays.
    let sc = compile(json!({"identifier": "x", "blueprint": "service", "levels": ["Only"]}));
    let ev = sc.prepare(&c).evaluate(c.get("service", "db"), &c).unwrap();
    assert_eq!(ev.level, 0);
}

#[test]
fn the_score_is_the_weighted_share_of_passing_rules() {
    let c = catalog();
    let sc = compile(json!({
    "identifier": "x", "blueprint": "service",
    "rules": [
        {"identifier": "owned", "level": "Silver", "where": "owner isNotEmpty"},
        {"identifier": "rust", "level": "Silver", "weight": 2, "where": "language = rust"},
        {"identifier": "cheap", "level": "Gold", "weight": 0.5, "where": "cost < 16"},
        {"identifier": "pci", "level": "Gold", "weight": 0.5, "where": "tags contains pci"}
    ]}));
    let evs = evaluate_all(&sc, &c);
    let scores: BTreeMap<&str, f64> = evs.iter().map(|(id, e)| (id.as_str(), e.score)).collect();
    // Out of 4: checkout all; ledger 1 + 0.5 + 0.5; auth 1 + 2; db nothing; gateway 1.
    assert_eq!(
        scores,
        BTreeMap::from([
            ("auth", 75.0),
            ("checkout", 100.0),
            ("db", 0.0),
            ("gateway", 25.0),
            ("ledger", 50.0),
        ])
    );
    // With the default levels, Bronze is the floor.
    assert_eq!(sc.level_name(evs["checkout"].level), Some("Gold"));
    assert_eq!(sc.level_name(evs["auth"].level), Some("Silver"));
    assert_eq!(sc.level_name(evs["ledger"].level), Some("Bronze"));
}

#[test]
fn the_filter_and_the_blueprint_decide_which_entities_are_rated() {
    let c = catalog();
    let sc = compile(json!({
        "identifier": "x", "blueprint": "service", "filter": "lifecycle = \"production\"",
        "rules": [{"identifier": "rust", "level": "Silver", "where": "language = rust"}]}));
    let prepared = sc.prepare(&c);
    assert!(prepared
        .evaluate(c.get("service", "checkout"), &c)
        .is_some());
    assert!(prepared.evaluate(c.get("service", "ledger"), &c).is_some());
    // Deprecated: filtered out.
    assert_eq!(prepared.evaluate(c.get("service", "auth"), &c), None);
    // Of another blueprint.
    assert_eq!(
        prepared.evaluate(c.get("deployment", "checkout-prod"), &c),
        None
    );
    assert_eq!(prepared.evaluate(c.get("team", "payments"), &c), None);
    assert_eq!(evaluate_all(&sc, &c).len(), 2);

    // The JSON rule form works the same.
    let sc = compile(json!({
        "identifier": "x", "blueprint": "service",
        "filter": {"property": "lifecycle", "operator": "=", "value": "production"}}));
    let names: Vec<String> = evaluate_all(&sc, &c).into_keys().collect();
    assert_eq!(names, ["checkout", "ledger"]);
}

/// Each rule with the services passing it.
#[allow(clippy::needless_pass_by_value)]
fn passing(rules: Value) -> String {
    let c = catalog();
    let sc = compile(json!({"identifier": "ops", "blueprint": "service", "rules": rules}));
    let prepared = sc.prepare(&c);
    let services = all(&c, "service");
    let evs: Vec<(&str, Evaluation)> = services
        .iter()
        .map(|e| {
            let ev = prepared.evaluate(e, &c).expect("a service in scope");
            (e.record.entity.identifier.as_str(), ev)
        })
        .collect();
    let mut out = String::new();
    for (i, rule) in sc.scorecard().rules.iter().enumerate() {
        let ids: Vec<&str> = evs
            .iter()
            .filter(|(_, ev)| ev.rules[i].passed)
            .map(|(id, _)| *id)
            .collect();
        out.push_str(&format!("{}: {}\n", rule.identifier, ids.join(" ")));
    }
    out
}

#[test]
fn every_operator_works_as_a_rule_in_both_forms() {
    // checkout: rust, tier 1, cost 15, production, tags [pci, critical], "Payment checkout"
    // ledger: go, tier 2, cost 10, production, tags [pci]
    // auth: rust, tier 1.0, cost 20.5, deprecated, tags [], teams search and payments
    // db: "Go", tier 3, lifecycle "", no owner, no team
    // gateway: tier "2", tags [edge, 7], title "Pay Gateway", owner ghost (dangling), no team
    let rules = json!([
        {"identifier": "eq", "level": "Silver", "where": "language = rust"},
        {"identifier": "ne", "level": "Silver",
         "query": {"property": "language", "operator": "!=", "value": "rust"}},
        {"identifier": "lt", "level": "Silver", "where": "cost < 15"},
        {"identifier": "le", "level": "Silver",
         "query": {"property": "cost", "operator": "<=", "value": 15}},
        {"identifier": "gt", "level": "Silver", "where": "tier > 1"},
        {"identifier": "ge", "level": "Silver",
         "query": {"property": "tier", "operator": ">=", "value": 1}},
        {"identifier": "in", "level": "Silver", "where": "lifecycle in [production, deprecated]"},
        {"identifier": "not-in", "level": "Silver",
         "query": {"property": "lifecycle", "operator": "notIn", "value": ["production"]}},
        {"identifier": "contains", "level": "Silver", "where": "tags contains pci"},
        {"identifier": "contains-any", "level": "Silver",
         "query": {"property": "tags", "operator": "containsAny", "value": ["edge", "critical"]}},
        {"identifier": "begins-with", "level": "Silver", "where": "name beginsWith Pay"},
        {"identifier": "ends-with", "level": "Silver",
         "query": {"property": "title", "operator": "endsWith", "value": "way"}},
        {"identifier": "is-empty", "level": "Silver", "where": "lifecycle isEmpty"},
        {"identifier": "is-not-empty", "level": "Silver",
         "query": {"property": "owner", "operator": "isNotEmpty"}},
        {"identifier": "between", "level": "Silver", "where": "cost between 10 and 16"},
        {"identifier": "between-json", "level": "Silver",
         "query": {"property": "tier", "operator": "between", "value": [2, 3]}},
        {"identifier": "related-to", "level": "Gold", "where": "relatedTo team/payments upstream"},
        {"identifier": "related-to-json", "level": "Gold",
         "query": {"operator": "relatedTo", "value": "service/checkout",
                   "direction": "downstream"}},
        {"identifier": "and", "level": "Gold", "where": "language = rust and tier = 1"},
        {"identifier": "or", "level": "Gold",
         "query": {"combinator": "or", "rules": [
             {"property": "language", "operator": "=", "value": "go"},
             {"property": "$team", "operator": "contains", "value": "search"}]}},
        {"identifier": "nested", "level": "Gold",
         "where": "(language = rust or language = go) and not (lifecycle = deprecated)"},
        {"identifier": "identifier", "level": "Gold", "where": "identifier in [db, gateway]"},
        {"identifier": "no-team", "level": "Gold", "where": "$team isEmpty"},
        {"identifier": "title", "level": "Gold", "where": "$title beginsWith Pay"},
        {"identifier": "owner-path", "level": "Gold", "where": "owner.slack = \"#pay\""}
    ]);
    insta::assert_snapshot!(passing(rules), @r"
    eq: checkout auth
    ne: ledger db gateway
    lt: ledger
    le: checkout ledger
    gt: ledger db
    ge: checkout ledger auth db
    in: checkout ledger auth
    not-in: auth db gateway
    contains: checkout ledger
    contains-any: checkout gateway
    begins-with: checkout
    ends-with: gateway
    is-empty: db gateway
    is-not-empty: checkout ledger auth gateway
    between: checkout ledger
    between-json: ledger db
    related-to: checkout ledger
    related-to-json: ledger auth
    and: checkout auth
    or: ledger auth
    nested: checkout ledger
    identifier: db gateway
    no-team: db gateway
    title: gateway
    owner-path: checkout ledger
    ");
}

#[test]
fn each_outcome_shows_the_value_the_rule_looked_at() {
    let c = catalog();
    let sc = compile(json!({
    "identifier": "x", "blueprint": "service",
    "rules": [
        {"identifier": "one", "level": "Silver", "where": "language = rust"},
        {"identifier": "teams", "level": "Silver", "where": "$team contains payments"},
        {"identifier": "two", "level": "Silver",
         "where": "language = rust and (tier = 1 or language = go)"},
        {"identifier": "related", "level": "Gold",
         "where": "relatedTo team/payments upstream"},
        {"identifier": "path", "level": "Gold", "where": "owner.slack isNotEmpty"},
        {"identifier": "computed", "level": "Gold", "where": "score > 0.5"}
    ]}));
    let prepared = sc.prepare(&c);
    let outcomes = |id: &str| -> Vec<RuleOutcome> {
        prepared
            .evaluate(c.get("service", id), &c)
            .expect("in scope")
            .rules
    };
    let ok = |v: Value| RuleOutcome {
        passed: true,
        value: v,
    };
    let no = |v: Value| RuleOutcome {
        passed: false,
        value: v,
    };
    assert_eq!(
        outcomes("checkout"),
        [
            ok(json!("rust")),
            ok(json!(["payments"])),
            ok(json!({"language": "rust", "tier": 1})),
            ok(json!(true)),
            ok(json!(["#pay"])),
            ok(json!(0.9)),
        ]
    );
    assert_eq!(
        outcomes("gateway"),
        [
            no(Value::Null),
            no(json!([])),
            no(json!({"language": null, "tier": "2"})),
            no(json!(false)),
            no(json!([])),
            no(Value::Null),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Computed properties, relation paths, through the real index

fn write_context(source: &Source) -> WriteContext<'_> {
    WriteContext {
        source,
        actor: "alice@example.com",
        now: "2026-03-01T00:00:00Z".parse().unwrap(),
        managed_by: None,
    }
}

/// A catalog built as the server builds it, so mirror, calculation and aggregation values are
/// computed by the index.
fn indexed_catalog() -> Catalog {
    let blueprints: Vec<Blueprint> = serde_json::from_value(json!([
        {"identifier": "team",
         "schema": {"properties": {"tier": {"type": "integer"}, "slack": {"type": "string"}}},
         "aggregationProperties": {
             "services": {"target": "service", "func": "count"},
             "cost": {"target": "service", "func": "sum", "property": "cost"}}},
        {"identifier": "service",
         "schema": {"properties": {"language": {"type": "string"}, "cost": {"type": "number"}}},
         "relations": {"owner": {"target": "team"}},
         "mirrorProperties": {"ownerSlack": {"path": "owner.slack"}},
         "calculationProperties": {
             "loud": {"calculation": ".properties.language | ascii_upcase", "type": "string"}}}
    ]))
    .unwrap();
    let entities: Vec<Entity> = serde_json::from_value(json!([
        {"identifier": "pay", "blueprint": "team", "properties": {"tier": 1, "slack": "#pay"}},
        {"identifier": "web", "blueprint": "team", "properties": {"tier": 3}},
        {"identifier": "a", "blueprint": "service", "team": ["pay"],
         "properties": {"language": "rust", "cost": 10}, "relations": {"owner": "pay"}},
        {"identifier": "b", "blueprint": "service", "team": ["pay"],
         "properties": {"language": "go", "cost": 30}, "relations": {"owner": "pay"}},
        {"identifier": "c", "blueprint": "service", "team": ["web"],
         "properties": {"language": "rust", "cost": 1}, "relations": {"owner": "web"}}
    ]))
    .unwrap();
    let source = Source::Api;
    let mut cat = Catalog::default();
    let planned = cat.plan_blueprints(
        blueprints.into_iter().map(|b| (b, Expect::New)).collect(),
        &write_context(&source),
    );
    cat.apply(Delta {
        seq: 1,
        blueprints: planned.into_iter().map(|p| p.unwrap().record).collect(),
        ..Delta::default()
    });
    let planned = cat.plan_entities(
        entities.into_iter().map(|e| (e, Expect::New)).collect(),
        &[],
        &write_context(&source),
    );
    cat.apply(Delta {
        seq: 2,
        entities: planned.into_iter().map(|p| p.unwrap().record).collect(),
        ..Delta::default()
    });
    cat
}

#[test]
fn rules_read_mirror_calculation_and_aggregation_properties_and_relation_paths() {
    let cat = indexed_catalog();
    let team = compile(json!({
    "identifier": "teams", "blueprint": "team", "levels": ["Low", "High"],
    "rules": [
        {"identifier": "busy", "level": "High", "where": "services >= 2"},
        {"identifier": "spend", "level": "High", "where": "cost between 35 and 45"}
    ]}));
    let svc = compile(json!({
    "identifier": "services", "blueprint": "service", "levels": ["Low", "Mid", "High"],
    "rules": [
        {"identifier": "slack", "level": "Mid", "where": "ownerSlack isNotEmpty"},
        {"identifier": "loud", "level": "Mid",
         "query": {"property": "loud", "operator": "=", "value": "RUST"}},
        {"identifier": "top-tier", "level": "High", "where": "owner.tier = 1"}
    ]}));
    assert_eq!(svc.relation_depth(), 1);
    let team_p = team.prepare(&cat);
    let svc_p = svc.prepare(&cat);
    let get = |bp: &str, id: &str| cat.entity(bp, id).expect("an entity");

    let pay = team_p.evaluate(get("team", "pay"), &cat).unwrap();
    assert_eq!(pay.level, 1);
    assert_eq!(pay.rules[0].value, json!(2));
    assert_eq!(pay.rules[1].value, json!(40));
    let web = team_p.evaluate(get("team", "web"), &cat).unwrap();
    assert_eq!(web.level, 0);
    assert_eq!(web.rules[0].value, json!(1));
    assert_eq!(web.score, 0.0);

    let a = svc_p.evaluate(get("service", "a"), &cat).unwrap();
    let values: Vec<&Value> = a.rules.iter().map(|o| &o.value).collect();
    assert_eq!(values, [&json!("#pay"), &json!("RUST"), &json!([1])]);
    assert_eq!(svc.level_name(a.level), Some("High"));
    // Go: the calculation gives GO.
    let b = svc_p.evaluate(get("service", "b"), &cat).unwrap();
    assert_eq!(b.rules[1].value, json!("GO"));
    assert_eq!(svc.level_name(b.level), Some("Low"));
    assert_eq!(svc.next_to_fix(&b), [1]);
    // The web team has no channel and tier 3.
    let c = svc_p.evaluate(get("service", "c"), &cat).unwrap();
    assert_eq!(
        c.rules[0],
        RuleOutcome {
            passed: false,
            value: Value::Null
        }
    );
    assert_eq!(c.rules[2].value, json!([3]));
    assert_eq!(svc.next_to_fix(&c), [0]);
}

// ---------------------------------------------------------------------------------------------
// Over many evaluations

/// An evaluation of [`ladder`] at `level` with these outcomes.
fn ev(level: usize, passed: [bool; 3]) -> Evaluation {
    Evaluation {
        level,
        score: passed.iter().filter(|p| **p).count() as f64 / 3.0 * 100.0,
        rules: passed
            .iter()
            .map(|p| RuleOutcome {
                passed: *p,
                value: Value::Null,
            })
            .collect(),
    }
}

#[test]
fn next_to_fix_names_the_failing_rules_of_the_next_level() {
    let c = catalog_with_orphan();
    let sc = compile(json!({
    "identifier": "x", "blueprint": "service",
    "levels": ["Basic", "Bronze", "Silver", "Gold"],
    "rules": [
        {"identifier": "owned", "level": "Bronze", "where": "owner isNotEmpty"},
        {"identifier": "rust", "level": "Silver", "where": "language = rust"},
        {"identifier": "pci", "level": "Silver", "where": "tags contains pci"},
        {"identifier": "cheap", "level": "Gold", "where": "cost < 16"}
    ]}));
    let evs = evaluate_all(&sc, &c);
    let fix: BTreeMap<&str, Vec<&str>> = evs
        .iter()
        .map(|(id, ev)| {
            let rules = sc
                .next_to_fix(ev)
                .into_iter()
                .map(|i| sc.scorecard().rules[i].identifier.as_str())
                .collect();
            (id.as_str(), rules)
        })
        .collect();
    assert_eq!(
        fix,
        BTreeMap::from([
            // Silver: owned, rust, no pci.
            ("auth", vec!["pci"]),
            // Gold: nothing left.
            ("checkout", vec![]),
            // At the floor: the Bronze rule only, though Silver fails too.
            ("db", vec!["owned"]),
            ("gateway", vec!["rust", "pci"]),
            ("ledger", vec!["rust"]),
            ("orphan", vec!["owned"]),
        ])
    );
    // Robust to an evaluation that contradicts itself: a failing rule below the level counts.
    let odd = Evaluation {
        level: 2,
        score: 0.0,
        rules: [false, true, true, false]
            .map(|passed| RuleOutcome {
                passed,
                value: Value::Null,
            })
            .to_vec(),
    };
    assert_eq!(sc.next_to_fix(&odd), [0, 3]);
}

#[test]
fn summaries_count_by_level_team_and_rule() {
    let c = catalog_with_orphan();
    let sc = compile(ladder());
    let evs = evaluate_all(&sc, &c);
    let items: Vec<(&Evaluation, &[String])> = evs
        .iter()
        .map(|(id, ev)| {
            let e = c.get("service", id);
            (ev, e.record.entity.team.as_slice())
        })
        .collect();
    let s = summarize(&sc, items.iter().copied());
    assert_eq!(s.total, 6);
    assert_eq!(
        s.by_level,
        [
            ("Basic".to_string(), 2),
            ("Bronze".to_string(), 2),
            ("Silver".to_string(), 1),
            ("Gold".to_string(), 1)
        ]
    );
    // auth counts for both its teams; db and gateway have none.
    assert_eq!(
        s.by_team,
        BTreeMap::from([
            (String::new(), vec![1, 1, 0, 0]),
            ("payments".to_string(), vec![0, 1, 1, 1]),
            ("search".to_string(), vec![1, 0, 1, 0]),
        ])
    );
    let rules: Vec<(&str, usize, usize)> = s
        .rules
        .iter()
        .map(|r| (r.identifier.as_str(), r.passed, r.total))
        .collect();
    assert_eq!(
        rules,
        [("has-owner", 4, 6), ("rust", 3, 6), ("cheap", 3, 6)]
    );
    // 3 + 2 + 2 + 0 + 1 + 2 rules passed of 18.
    assert!(
        (s.average_score - 1000.0 / 18.0).abs() < 1e-9,
        "{}",
        s.average_score
    );

    let empty = summarize(&sc, Vec::<(&Evaluation, &[String])>::new());
    assert_eq!(empty.total, 0);
    assert_eq!(empty.average_score, 0.0);
    assert!(empty.by_team.is_empty());
    assert_eq!(empty.by_level.len(), 4);
}

#[test]
fn initiative_progress_counts_entities_at_the_target_or_above_by_team() {
    let sc = compile(ladder());
    let teams = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let evs = [
        (ev(3, [true, true, true]), teams(&["pay"])),
        (ev(2, [true, true, false]), teams(&["pay", "web"])),
        (ev(1, [true, false, true]), teams(&["web"])),
        (ev(0, [false, true, true]), teams(&[])),
    ];
    let items = evs.iter().map(|(e, t)| (e, t.as_slice()));
    let p = progress(&sc, 2, items.clone());
    assert_eq!((p.total, p.at_target), (4, 2));
    assert_eq!(p.share, 0.5);
    assert_eq!(
        p.by_team,
        BTreeMap::from([
            (
                String::new(),
                TeamProgress {
                    total: 1,
                    at_target: 0,
                    share: 0.0
                }
            ),
            (
                "pay".to_string(),
                TeamProgress {
                    total: 2,
                    at_target: 2,
                    share: 1.0
                }
            ),
            (
                "web".to_string(),
                TeamProgress {
                    total: 2,
                    at_target: 1,
                    share: 0.5
                }
            ),
        ])
    );
    // The floor is reached by everyone; the top by one.
    assert_eq!(progress(&sc, 0, items.clone()).share, 1.0);
    assert_eq!(progress(&sc, 3, items).at_target, 1);
    // Nothing to rate: done.
    let none = progress(&sc, 3, Vec::<(&Evaluation, &[String])>::new());
    assert_eq!((none.total, none.share), (0, 1.0));
}

#[test]
fn level_changes_name_the_rules_that_moved() {
    let sc = compile(ladder());
    let gold = ev(3, [true, true, true]);
    let bronze = ev(1, [true, false, true]);
    let drop = compare_levels(&sc, Some(&gold), Some(&bronze)).expect("a change");
    assert_eq!(
        drop,
        LevelChange {
            from: Some(3),
            to: Some(1),
            rules_newly_failing: vec![1],
            rules_newly_passing: vec![],
        }
    );
    assert!(drop.is_drop());
    let rise = compare_levels(&sc, Some(&bronze), Some(&gold)).unwrap();
    assert_eq!(rise.rules_newly_passing, [1]);
    assert!(rise.rules_newly_failing.is_empty());
    assert!(!rise.is_drop());
    // Same level, different rules: no change.
    assert_eq!(
        compare_levels(
            &sc,
            Some(&ev(0, [false, true, true])),
            Some(&ev(0, [false, false, false]))
        ),
        None
    );
    assert_eq!(compare_levels(&sc, None, None), None);
    // Entering scope: every outcome is new. Leaving it is not a drop.
    let enter = compare_levels(&sc, None, Some(&bronze)).unwrap();
    assert_eq!(
        (
            enter.from,
            enter.to,
            enter.rules_newly_failing,
            enter.rules_newly_passing
        ),
        (None, Some(1), vec![1], vec![0, 2])
    );
    let leave = compare_levels(&sc, Some(&gold), None).unwrap();
    assert_eq!((leave.from, leave.to), (Some(3), None));
    assert!(leave.rules_newly_failing.is_empty() && leave.rules_newly_passing.is_empty());
    assert!(!leave.is_drop());
}

// ---------------------------------------------------------------------------------------------
// Checks

fn check(v: Value) -> String {
    let c = catalog();
    lines(&check_scorecard(&scorecard(v), &c))
}

#[test]
fn a_sound_scorecard_has_no_problems() {
    assert_eq!(check(ladder()), "");
}

#[test]
fn every_problem_of_a_scorecard_is_reported_with_its_path() {
    let v = json!({
        "identifier": "-bad",
        "blueprint": "servce",
        "filter": "lifecycle = ",
        "levels": ["Basic", "Bronze", {"title": "Bronze", "color": "brown"}, "", "Gold"],
        "rules": [
            {"identifier": "a", "level": "Basic", "where": "owner isNotEmpty"},
            {"identifier": "a", "level": "Gld", "where": "owner isNotEmpty"},
            {"identifier": "", "level": "Platinum", "where": "owner isNotEmpty"},
            {"identifier": "d", "level": "Gold"},
            {"identifier": "e", "level": "Gold", "where": "a = 1", "query": "a = 1"},
            {"identifier": "f", "level": "Gold", "where": "language = rust and tier >"},
            {"identifier": "g", "level": "Gold",
             "query": {"combinator": "and", "rules": [{"property": "a", "operator": "eq", "value": 1}]}},
            {"identifier": "h", "level": "Gold", "weight": 0, "where": "a = 1"},
            {"identifier": "i", "level": "Gold", "weight": -2, "query": 7}
        ]
    });
    insta::assert_snapshot!(check(v.clone()), @r#"
    identifier: `-bad` must start with a letter or a digit
    blueprint: there is no blueprint `servce`
    filter: expected a value after `=` (at 1:13 of the query)
    levels[2].title: `Bronze` is the title of levels[1] too; level titles are unique
    levels[3]: a level needs a title
    rules[0].level: `Basic` is the first level, the floor every entity starts at: it holds no rules; put the rule at a level above it, such as `Bronze`
    rules[1].identifier: `a` is the identifier of rules[0] too; rule identifiers are unique
    rules[1].level: `Gld` is not a level of this scorecard; did you mean `Gold`?
    rules[2].identifier: an identifier cannot be empty
    rules[2].level: `Platinum` is not a level of this scorecard; the levels are `Basic`, `Bronze`, `Bronze`, ``, `Gold`
    rules[3]: say what the rule tests: a `query` (the JSON rule form) or `where` (the text form), such as `where: owner isNotEmpty`
    rules[4]: give either `query` (the JSON rule form) or `where` (the text form), not both
    rules[5].where: expected a value after `>` (at 1:27 of the query)
    rules[6].query.rules[0].operator: unknown operator `eq`; did you mean `=`?
    rules[7].weight: `weight` is a number above 0, found 0
    rules[8].weight: `weight` is a number above 0, found -2
    rules[8].query: a query is a string (the text form) or an object (the JSON rule form), not a number
    "#);
    // Compiling finds the same problems, except those that need the catalog.
    let problems = CompiledScorecard::compile(scorecard(v)).unwrap_err();
    assert_eq!(problems.len(), 16);
    assert!(problems.iter().all(|p| p.path != "blueprint"));

    // No levels, a blank blueprint.
    insta::assert_snapshot!(check(json!({"identifier": "x", "blueprint": "", "levels": []})), @r"
    blueprint: name the blueprint of the entities this scorecard rates
    levels: a scorecard has at least one level: the floor every entity starts at, then the levels its rules raise entities to
    ");
    // The default levels start at Bronze, which is the floor.
    insta::assert_snapshot!(check(json!({"identifier": "x", "blueprint": "service",
        "rules": [{"identifier": "a", "level": "Bronze", "where": "a = 1"}]})), @r"
    rules[0].level: `Bronze` is the first level, the floor every entity starts at: it holds no rules; put the rule at a level above it, such as `Silver`
    ");
}

#[test]
fn every_problem_of_an_initiative_is_reported_with_its_path() {
    let sc = scorecard(ladder());
    let initiative = |v: Value| -> Initiative { serde_json::from_value(v).unwrap() };
    let good = initiative(json!({
        "identifier": "prod-ready-q4", "title": "Everything production-ready by Q4",
        "scorecard": "production-readiness", "targetLevel": "Silver",
        "deadline": "2026-12-31", "owners": ["platform", "ada@example.com"]}));
    assert_eq!(check_initiative(&good, Some(&sc)), []);
    assert_eq!(
        good.deadline_time(),
        Some("2027-01-01T00:00:00Z".parse().unwrap()),
        "a date ends at the next midnight, UTC"
    );
    let timed = initiative(
        json!({"identifier": "x", "scorecard": "s", "targetLevel": "Gold",
        "deadline": "2026-12-31T17:00:00+02:00"}),
    );
    assert_eq!(
        timed.deadline_time(),
        Some("2026-12-31T15:00:00Z".parse().unwrap())
    );

    let bad = initiative(json!({
        "identifier": "prod ready", "scorecard": "production-readiness",
        "targetLevel": "Silvr", "deadline": "Q4", "owners": ["plat form", "ada@"]}));
    insta::assert_snapshot!(lines(&check_initiative(&bad, Some(&sc))), @r#"
    identifier: `prod ready` contains a space: use letters, digits and _ . @ : -
    targetLevel: `Silvr` is not a level of scorecard `production-readiness`; did you mean `Silver`?
    deadline: "Q4" is not a date (2026-12-31) or an RFC 3339 time (2026-12-31T17:00:00Z)
    owners[0]: not a team name or an email: `plat form` contains a space: use letters, digits and _ . @ : -
    owners[1]: "ada@" is not an email address, such as ada@example.com
    "#);
    let far = initiative(
        json!({"identifier": "x", "scorecard": "production-readiness",
        "targetLevel": "Diamond"}),
    );
    insta::assert_snapshot!(lines(&check_initiative(&far, Some(&sc))), @"targetLevel: `Diamond` is not a level of scorecard `production-readiness`; its levels are `Basic`, `Bronze`, `Silver`, `Gold`");
    insta::assert_snapshot!(lines(&check_initiative(&far, None)), @"scorecard: there is no scorecard `production-readiness`");
}

// ---------------------------------------------------------------------------------------------
// Definition files

const FILE: &str = "\
kind: Scorecard
identifier: production-readiness
title: Production readiness
blueprint: service
filter: 'lifecycle = \"production\"'
levels: [Basic, Bronze, Silver, {title: Gold, color: gold}]
rules:
- identifier: has-owner
  title: Has an owning team
  level: Bronze
  where: 'owner isNotEmpty'
- identifier: on-call
  title: Has an on-call rotation
  level: Silver
  weight: 2
  query: {combinator: and, rules: [{property: oncall, operator: isNotEmpty}]}
---
kind: Initiative
identifier: prod-ready-q4
title: Everything production-ready by Q4
scorecard: production-readiness
targetLevel: Silver
deadline: 2026-12-31
owners: [platform]
";

#[test]
fn definition_files_hold_scorecards_and_initiatives() {
    let (docs, errors) = parse_file("scorecards.yaml", FILE);
    assert!(errors.is_empty(), "{errors:#?}");
    let keys: Vec<(String, &str)> = docs.iter().map(|d| (d.key(), d.kind())).collect();
    assert_eq!(
        keys,
        [
            ("scorecard/production-readiness".to_string(), "Scorecard"),
            ("initiative/prod-ready-q4".to_string(), "Initiative")
        ]
    );
    let Definition::Scorecard(s) = &docs[0].definition else {
        panic!("not a scorecard: {:?}", docs[0].definition);
    };
    assert_eq!(s.filter, Some(json!("lifecycle = \"production\"")));
    assert_eq!(s.levels[3].color.as_deref(), Some("gold"));
    assert_eq!(s.rules[1].weight, Some(2.0));
    assert_eq!(s.rules[0].where_.as_deref(), Some("owner isNotEmpty"));
    assert_eq!(
        docs[0].locate("rules[1].weight").to_string(),
        "scorecards.yaml:15:11"
    );
    let sc = CompiledScorecard::compile(s.clone()).expect("sound");
    assert_eq!(sc.levels(), ["Basic", "Bronze", "Silver", "Gold"]);

    let Definition::Initiative(i) = &docs[1].definition else {
        panic!("not an initiative: {:?}", docs[1].definition);
    };
    assert_eq!(i.deadline.as_deref(), Some("2026-12-31"));
    assert_eq!(i.owners, ["platform"]);
    assert_eq!(check_initiative(i, Some(s)), []);
}

#[test]
fn refused_fields_of_scorecards_and_initiatives_are_shown_where_they_are_written() {
    let src = "\
kind: Scorecard
identifier: x
blueprint: service
levels: [Basic, {title: Gold, colour: gold}]
rules:
- identifier: a
  level: Gold
  weigth: 2
  where: a = 1
---
kind: Initiative
identifier: y
scorecard: x
target: Gold
";
    let (docs, errors) = parse_file("bad.yaml", src);
    assert!(docs.is_empty());
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(errors.join("\n"), @r"
    bad.yaml:4:31: unknown field `colour`; did you mean `color`?
    bad.yaml:8:3: unknown field `weigth`; did you mean `weight`?
    bad.yaml:11:1: missing field `targetLevel`
    bad.yaml:14:1: unknown field `target`; did you mean `targetLevel`?
    ");
}
