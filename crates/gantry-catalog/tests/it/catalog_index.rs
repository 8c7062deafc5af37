//! The in-memory catalog: planning writes (validation, relations, locks, sources, versions),
//! applying them, keeping computed values current incrementally, deletes, and searches.

use gantry_catalog::index::{Catalog, Delta, Expect, Outcome, Search, WriteContext};
use gantry_catalog::query::{Query, Sort};
use gantry_catalog::schema::{check_blueprint, check_blueprint_change, validate_entity};
use gantry_catalog::{Blueprint, Entity, Lookup, Source};
use serde_json::{json, Value};

fn bp(v: Value) -> Blueprint {
    serde_json::from_value(v).expect("a blueprint")
}

fn entity(v: Value) -> Entity {
    serde_json::from_value(v).expect("an entity")
}

fn ctx(source: &Source) -> WriteContext<'_> {
    WriteContext {
        source,
        actor: "alice@example.com",
        now: "2026-03-01T00:00:00Z".parse().unwrap(),
        managed_by: None,
    }
}

fn model() -> Vec<Blueprint> {
    vec![
        bp(
            json!({"identifier": "team", "schema": {"properties": {"slack": {"type": "string"}}},
            "aggregationProperties": {
                "services": {"target": "service", "func": "count"},
                "cost": {"target": "service", "func": "sum", "property": "cost"},
                "maxTier": {"target": "service", "func": "max", "property": "tier"},
                "avgCost": {"target": "service", "func": "average", "property": "cost"},
                "goServices": {"target": "service", "func": "count", "filter": "language = go"}}}),
        ),
        bp(json!({"identifier": "service",
            "schema": {"properties": {
                "language": {"type": "string", "enum": ["rust", "go"]},
                "tier": {"type": "integer", "minimum": 1, "maximum": 3, "default": 3},
                "cost": {"type": "number"},
                "oncall": {"type": "string", "format": "email", "locked": true}},
                "required": ["language"]},
            "relations": {"owner": {"target": "team", "required": true},
                          "dependsOn": {"target": "service", "many": true}},
            "mirrorProperties": {"slack": {"path": "owner.slack"},
                                 "depOwners": {"path": "dependsOn.owner.$identifier"}}})),
    ]
}

/// A catalog holding the model, and a write helper that plans, then applies what it planned.
struct World {
    cat: Catalog,
    seq: i64,
}

impl World {
    fn new() -> World {
        let mut w = World {
            cat: Catalog::default(),
            seq: 0,
        };
        let source = Source::Api;
        let planned = w.cat.plan_blueprints(
            model().into_iter().map(|b| (b, Expect::New)).collect(),
            &ctx(&source),
        );
        let records = planned.into_iter().map(|p| p.unwrap().record).collect();
        w.apply(Delta {
            blueprints: records,
            ..Delta::default()
        });
        w
    }

    fn apply(&mut self, mut delta: Delta) {
        self.seq += 1;
        delta.seq = self.seq;
        self.cat.apply(delta);
    }

    fn write(
        &mut self,
        source: &Source,
        entities: Vec<Value>,
    ) -> Vec<Result<Outcome, Vec<String>>> {
        let inputs = entities
            .into_iter()
            .map(|v| (entity(v), Expect::Any))
            .collect();
        let planned = self.cat.plan_entities(inputs, &[], &ctx(source));
        let mut delta = Delta::default();
        let out = planned
            .into_iter()
            .map(|p| match p {
                Ok(p) => {
                    if p.outcome != Outcome::Unchanged {
                        delta.entities.push(p.record);
                    }
                    Ok(p.outcome)
                }
                Err(problems) => Err(problems.iter().map(ToString::to_string).collect()),
            })
            .collect();
        self.apply(delta);
        out
    }

    fn get(&self, bp: &str, id: &str) -> Value {
        self.cat.entity_view(bp, id).expect("entity").to_json()
    }
}

fn svc(id: &str, owner: &str, language: &str, cost: f64) -> Value {
    json!({"identifier": id, "blueprint": "service", "properties": {"language": language, "cost": cost},
           "relations": {"owner": owner}})
}

#[test]
fn aggregations_and_mirrors_follow_every_change_around_them() {
    let mut w = World::new();
    w.write(
        &Source::Api,
        vec![
            json!({"identifier": "pay", "blueprint": "team", "properties": {"slack": "#pay"}}),
            json!({"identifier": "web", "blueprint": "team", "properties": {"slack": "#web"}}),
        ],
    );
    let r = w.write(
        &Source::Api,
        vec![
            svc("a", "pay", "rust", 10.0),
            svc("b", "pay", "go", 5.0),
            json!({"identifier": "c", "blueprint": "service", "properties": {"language": "go", "tier": 1},
                   "relations": {"owner": "web", "dependsOn": ["a", "b"]}}),
        ],
    );
    assert!(r.iter().all(|r| r == &Ok(Outcome::Created)), "{r:?}");
    let pay = w.get("team", "pay");
    assert_eq!(pay["properties"]["services"], 2);
    assert_eq!(pay["properties"]["cost"], 15.0);
    assert_eq!(pay["properties"]["avgCost"], 7.5);
    assert_eq!(pay["properties"]["maxTier"], 3, "the default tier counts");
    assert_eq!(pay["properties"]["goServices"], 1);
    assert_eq!(w.get("service", "a")["properties"]["slack"], "#pay");
    assert_eq!(
        w.get("service", "c")["properties"]["depOwners"],
        json!(["pay", "pay"])
    );

    // The team's channel changes: its services' mirrors follow.
    w.write(
        &Source::Api,
        vec![
            json!({"identifier": "pay", "blueprint": "team", "properties": {"slack": "#payments"}}),
        ],
    );
    assert_eq!(w.get("service", "b")["properties"]["slack"], "#payments");
    // A service moves: both teams and the two-hop mirror through it follow.
    w.write(&Source::Api, vec![svc("b", "web", "go", 5.0)]);
    assert_eq!(w.get("team", "pay")["properties"]["services"], 1);
    assert_eq!(w.get("team", "web")["properties"]["services"], 2);
    assert_eq!(w.get("team", "web")["properties"]["goServices"], 2);
    assert_eq!(
        w.get("service", "c")["properties"]["depOwners"],
        json!(["pay", "web"])
    );
    // A deletion too.
    w.apply(Delta {
        deleted_entities: vec![("service".into(), "a".into())],
        ..Delta::default()
    });
    let pay = w.get("team", "pay");
    assert_eq!(pay["properties"]["services"], 0);
    assert_eq!(pay["properties"]["cost"], 0);
    assert_eq!(pay["properties"]["avgCost"], Value::Null);
}

#[test]
fn relations_must_name_entities_of_the_catalog_or_of_the_same_batch() {
    let mut w = World::new();
    let r = w.write(&Source::Api, vec![svc("a", "ghost", "rust", 1.0)]);
    let problems = r[0].as_ref().unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("relations.owner: there is no team `ghost`"),
        "{problems:?}"
    );
    // The team comes in the same batch: fine. A service pointing at a bad one fails with it.
    let r = w.write(
        &Source::Api,
        vec![
            svc("a", "pay", "rust", 1.0),
            json!({"identifier": "pay", "blueprint": "team"}),
            svc("bad", "pay", "cobol", 1.0),
            json!({"identifier": "c", "blueprint": "service", "properties": {"language": "go"},
                   "relations": {"owner": "pay", "dependsOn": ["bad"]}}),
        ],
    );
    assert_eq!(r[0], Ok(Outcome::Created));
    assert_eq!(r[1], Ok(Outcome::Created));
    assert!(r[2].is_err());
    let c = r[3].as_ref().unwrap_err();
    assert!(c[0].starts_with("relations.dependsOn[0]"), "{c:?}");
}

#[test]
fn sources_are_kept_per_value_and_locks_hold_against_the_web() {
    let mut w = World::new();
    w.write(
        &Source::Api,
        vec![json!({"identifier": "pay", "blueprint": "team"})],
    );
    let mut s = svc("a", "pay", "rust", 1.0);
    s["properties"]["oncall"] = json!("pager@example.com");
    w.write(&Source::Integration("pagerduty".into()), vec![s.clone()]);
    let record = &w.cat.entity_view("service", "a").unwrap().record;
    assert_eq!(
        record.sources.get("properties.oncall"),
        Some(&Source::Integration("pagerduty".into()))
    );
    // The web changes the cost: its source changes, the others stay.
    s["properties"]["cost"] = json!(2.0);
    assert_eq!(
        w.write(&Source::Web, vec![s.clone()])[0],
        Ok(Outcome::Updated)
    );
    let record = &w.cat.entity_view("service", "a").unwrap().record;
    assert_eq!(record.sources.get("properties.cost"), Some(&Source::Web));
    assert_eq!(
        record.sources.get("properties.language"),
        Some(&Source::Integration("pagerduty".into()))
    );
    assert_eq!(record.version, 2);
    // The web may not change the locked on-call address; the API may.
    s["properties"]["oncall"] = json!("me@example.com");
    let r = w.write(&Source::Web, vec![s.clone()]);
    assert!(r[0].as_ref().unwrap_err()[0].contains("locked"), "{r:?}");
    assert_eq!(
        w.write(&Source::Api, vec![s.clone()])[0],
        Ok(Outcome::Updated)
    );
    // Writing the same again is no change at all.
    assert_eq!(w.write(&Source::Api, vec![s])[0], Ok(Outcome::Unchanged));
}

#[test]
fn deletes_are_refused_while_others_point_at_an_entity_or_cascade_when_asked() {
    let mut w = World::new();
    w.write(
        &Source::Api,
        vec![json!({"identifier": "pay", "blueprint": "team"})],
    );
    w.write(
        &Source::Api,
        vec![
            svc("a", "pay", "rust", 1.0),
            json!({"identifier": "c", "blueprint": "service", "properties": {"language": "go"},
                   "relations": {"owner": "pay", "dependsOn": ["a"]}}),
        ],
    );
    let refused = w.cat.plan_entity_delete("service", "a", false).unwrap_err();
    assert!(
        refused.message.contains("service/c (dependsOn)"),
        "{refused}"
    );
    let all = w.cat.plan_entity_delete("team", "pay", true).unwrap();
    let keys: Vec<String> = all.iter().map(|r| r.entity.identifier.clone()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let bp = w.cat.plan_blueprint_delete("service", false).unwrap_err();
    assert!(bp.message.contains("used by"), "{bp}");
}

#[test]
fn searches_filter_sort_page_and_count() {
    let mut w = World::new();
    w.write(
        &Source::Api,
        vec![json!({"identifier": "pay", "blueprint": "team"})],
    );
    let services: Vec<Value> = (0..25)
        .map(|i| {
            svc(
                &format!("s{i:02}"),
                "pay",
                if i % 5 == 0 { "go" } else { "rust" },
                f64::from(i),
            )
        })
        .collect();
    w.write(&Source::Api, services);
    let search = |after: Option<Value>| Search {
        query: Some(Query::parse("blueprint = service and language = rust").unwrap()),
        sort: Sort::parse_list("-cost").unwrap(),
        limit: 7,
        after,
        facets: vec!["language".into()],
        ..Search::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = w.cat.search(&search(after.clone()));
        assert_eq!(page.total, 20);
        assert_eq!(page.facets["language"]["rust"], 20);
        seen.extend(
            page.entities
                .iter()
                .map(|e| e.record.entity.identifier.clone()),
        );
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 20);
    assert_eq!(seen[0], "s24");
    assert_eq!(seen[19], "s01");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        seen, sorted,
        "pages follow each other with nothing lost or repeated"
    );
}

#[test]
fn blueprint_checks_name_the_field_at_fault() {
    let known = |id: &str| model().into_iter().find(|b| b.identifier == id);
    let bad = bp(json!({"identifier": "deploy",
        "schema": {"properties": {
            "n": {"type": "integer", "enum": ["x"]},
            "p": {"type": "string", "pattern": "("},
            "title": {"type": "string"}},
            "required": ["missing"]},
        "relations": {"svc": {"target": "service", "many": true, "required": true},
                      "nowhere": {"target": "ghost"}},
        "mirrorProperties": {"m": {"path": "svc.nope"}},
        "aggregationProperties": {"a": {"target": "service", "func": "sum"}}}));
    let problems = check_blueprint(&bad, &known);
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "schema.properties.n.enum[0]",
        "schema.properties.p.pattern",
        "schema.properties.title",
        "schema.required[0]",
        "relations.svc",
        "relations.nowhere.target",
        "mirrorProperties.m.path",
        "aggregationProperties.a.target",
        "aggregationProperties.a.property",
    ] {
        assert!(paths.contains(&want), "{want} missing from {problems:#?}");
    }
    let old = &model()[1];
    let mut new = old.clone();
    new.schema.properties["tier"].ty = gantry_catalog::PropertyType::String;
    let change = check_blueprint_change(old, &new);
    assert_eq!(change[0].path, "schema.properties.tier.type");
    assert!(change[0].message.contains("from integer to string"));
}

#[test]
fn every_property_type_and_format_is_checked() {
    let b = bp(json!({"identifier": "x", "schema": {"properties": {
        "s": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
        "n": {"type": "number", "minimum": 0.5},
        "i": {"type": "integer", "maximum": 10},
        "b": {"type": "boolean"},
        "o": {"type": "object"},
        "a": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string", "format": "email"}},
        "url": {"type": "string", "format": "url"},
        "when": {"type": "string", "format": "date-time"},
        "doc": {"type": "string", "format": "markdown"},
        "conf": {"type": "string", "format": "yaml"},
        "who": {"type": "string", "format": "user"},
        "team": {"type": "string", "format": "team"}}}}));
    let good = entity(json!({"identifier": "e", "blueprint": "x", "properties": {
        "s": "abc", "n": 1, "i": 10, "b": true, "o": {"k": 1}, "a": ["a@b.io"],
        "url": "https://example.com/x", "when": "2026-01-31T12:00:00Z", "doc": "# hi",
        "conf": "a: [1, 2]", "who": "dev@example.com", "team": "payments"}}));
    assert_eq!(validate_entity(&b, &good), vec![]);
    let bad = entity(json!({"identifier": "e", "blueprint": "x", "properties": {
        "s": "ABCDEF", "n": 0.1, "i": 1.5, "b": "yes", "o": [], "a": ["nope", "x@y.z", "q@r.s"],
        "url": "example.com", "when": "yesterday", "conf": "a: [", "who": "bob", "team": "no team"}}));
    let problems = validate_entity(&b, &bad);
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "properties.s",
        "properties.n",
        "properties.i",
        "properties.b",
        "properties.o",
        "properties.a",
        "properties.a[0]",
        "properties.url",
        "properties.when",
        "properties.conf",
        "properties.who",
        "properties.team",
    ] {
        assert!(paths.contains(&want), "{want} missing from {problems:#?}");
    }
    // `s` is too long and does not match: two problems at one path.
    assert_eq!(paths.iter().filter(|p| **p == "properties.s").count(), 2);
    assert!(Lookup::blueprint(&Catalog::default(), "x").is_none());
}
