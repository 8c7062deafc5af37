//! The catalog's columns agree with its entities: for random catalogs, random changes and random
//! searches, `Catalog::search` (rules, sorts and facets on columns) gives exactly what
//! `Catalog::search_rows` (every entity tested on its own) gives, page by page.

use chrono::{DateTime, Duration, Utc};
use gantry_catalog::index::{Catalog, Delta, Page, Search};
use gantry_catalog::query::{Query, Sort};
use gantry_catalog::{Blueprint, BlueprintRecord, Entity, EntityRecord};
use proptest::prelude::*;
use serde_json::{json, Value};

fn blueprints() -> Vec<Blueprint> {
    serde_json::from_value(json!([
        {"identifier": "team",
         "schema": {"properties": {"slack": {"type": "string"}, "size": {"type": "number"}}},
         "aggregationProperties": {
             "services": {"target": "service", "func": "count"},
             "spend": {"target": "service", "func": "sum", "property": "cost"}}},
        {"identifier": "service",
         "schema": {"properties": {
             "language": {"type": "string"}, "tier": {"type": "number"},
             "cost": {"type": "number"}, "tags": {"type": "array"},
             "meta": {"type": "object"}, "public": {"type": "boolean"},
             "since": {"type": "string", "format": "date-time"}}},
         "relations": {
             "owner": {"target": "team"},
             "dependsOn": {"target": "service", "many": true}},
         "mirrorProperties": {"ownerSlack": {"path": "owner.slack"}},
         "calculationProperties": {"label": {"calculation": ".properties.language // \"none\"",
                                             "type": "string"}},
         "allowDanglingRelations": true},
    ]))
    .expect("test blueprints")
}

fn at(minutes: i64) -> DateTime<Utc> {
    "2026-01-01T00:00:00Z"
        .parse::<DateTime<Utc>>()
        .expect("a time")
        + Duration::minutes(minutes)
}

fn record(entity: Entity, minutes: i64) -> EntityRecord {
    EntityRecord {
        entity,
        sources: Default::default(),
        version: 1,
        created_at: at(minutes),
        updated_at: at(minutes * 7 % 50),
        created_by: format!("user{}@example.com", minutes % 3),
        updated_by: "bob@example.com".into(),
        managed_by: None,
    }
}

/// A property value of any shape, from small pools so that values repeat.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..6).prop_map(Value::from),
        (0i64..6).prop_map(|i| json!(i as f64)),
        Just(json!(2.5)),
        // Integers a float cannot hold exactly.
        Just(json!(9_007_199_254_740_993u64)),
        Just(json!(9_007_199_254_740_992u64)),
        Just(json!(-9_007_199_254_740_993i64)),
        Just(json!(9_007_199_254_740_992.0)),
        prop_oneof![
            Just("rust"),
            Just("go"),
            Just("Go"),
            Just(""),
            Just("2"),
            Just("py thon"),
            Just("2026-01-01T00:30:00+00:00"),
        ]
        .prop_map(Value::from),
        proptest::collection::vec(
            prop_oneof![Just(json!("pci")), Just(json!("edge")), Just(json!(7))],
            0..3
        )
        .prop_map(Value::Array),
        Just(json!({"a": 1})),
    ]
}

fn team(i: usize) -> String {
    format!("t{i}")
}

fn service(i: usize) -> String {
    format!("s{i}")
}

/// One entity of either blueprint; `i` picks its identifier from a small range so that later
/// entities replace earlier ones.
fn entity() -> impl Strategy<Value = Entity> {
    let props = proptest::collection::btree_map(
        prop_oneof![
            Just("language"),
            Just("tier"),
            Just("cost"),
            Just("tags"),
            Just("meta"),
            Just("public"),
            Just("since"),
        ],
        value(),
        0..6,
    );
    prop_oneof![
        (0usize..4, proptest::option::of(value()), proptest::option::of(value())).prop_map(
            |(i, slack, size)| {
                let mut properties = serde_json::Map::new();
                if let Some(v) = slack {
                    properties.insert("slack".into(), v);
                }
                if let Some(v) = size {
                    properties.insert("size".into(), v);
                }
                serde_json::from_value(json!({"identifier": team(i), "blueprint": "team",
                    "properties": properties}))
                .expect("a team")
            }
        ),
        (
            0usize..12,
            props,
            proptest::option::of(0usize..5),
            proptest::collection::vec(0usize..14, 0..3),
            proptest::option::of("[A-Z][a-z]{0,3}"),
            proptest::collection::vec(0usize..4, 0..3),
        )
            .prop_map(|(i, props, owner, deps, title, teams)| {
                let mut relations = serde_json::Map::new();
                if let Some(o) = owner {
                    relations.insert("owner".into(), json!(team(o)));
                }
                if !deps.is_empty() {
                    relations.insert(
                        "dependsOn".into(),
                        json!(deps.into_iter().map(service).collect::<Vec<_>>()),
                    );
                }
                let mut teams: Vec<String> = teams.into_iter().map(team).collect();
                teams.dedup();
                serde_json::from_value(json!({"identifier": service(i), "blueprint": "service",
                    "title": title, "team": teams,
                    "properties": props.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<serde_json::Map<_, _>>(),
                    "relations": relations}))
                .expect("a service")
            }),
    ]
}

/// A change: an entity written, or one deleted.
fn change() -> impl Strategy<Value = Result<Entity, (bool, usize)>> {
    prop_oneof![
        4 => entity().prop_map(Ok),
        1 => (any::<bool>(), 0usize..12).prop_map(Err),
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("language"),
        Just("tier"),
        Just("cost"),
        Just("tags"),
        Just("meta"),
        Just("public"),
        Just("since"),
        Just("slack"),
        Just("size"),
        Just("owner"),
        Just("dependsOn"),
        Just("ownerSlack"),
        Just("label"),
        Just("services"),
        Just("spend"),
        Just("identifier"),
        Just("$identifier"),
        Just("title"),
        Just("team"),
        Just("$team"),
        Just("blueprint"),
        Just("createdAt"),
        Just("updatedAt"),
        Just("createdBy"),
        Just("properties.language"),
        Just("owner.slack"),
        Just("dependsOn.language"),
        Just("$nothing"),
        Just("unknown"),
    ]
    .prop_map(str::to_string)
}

fn operand() -> impl Strategy<Value = Value> {
    prop_oneof![
        value(),
        Just(json!("s3")),
        Just(json!("t1")),
        Just(json!("2026-01-01T00:30:00+00:00")),
        Just(json!("user1@example.com")),
    ]
}

fn rule() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        Just("="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">="),
        Just("contains"),
        Just("beginsWith"),
        Just("endsWith"),
    ];
    prop_oneof![
        (field(), op, operand())
            .prop_map(|(f, op, v)| json!({"property": f, "operator": op, "value": v})),
        (
            field(),
            prop_oneof![Just("in"), Just("notIn"), Just("containsAny")],
            proptest::collection::vec(operand(), 0..3)
        )
            .prop_map(|(f, op, v)| json!({"property": f, "operator": op, "value": v})),
        (field(), prop_oneof![Just("isEmpty"), Just("isNotEmpty")])
            .prop_map(|(f, op)| json!({"property": f, "operator": op})),
        (field(), 0i64..4, 0i64..6).prop_map(|(f, lo, hi)| {
            json!({"property": f, "operator": "between", "value": [lo, lo.max(hi)]})
        }),
        (
            prop_oneof![Just("team/t1"), Just("service/s2")],
            prop_oneof![Just("upstream"), Just("downstream"), Just("any")],
            1u32..3
        )
            .prop_map(|(target, dir, depth)| {
                json!({"operator": "relatedTo", "value": target, "direction": dir, "depth": depth})
            }),
    ]
}

fn query() -> impl Strategy<Value = Value> {
    rule().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            (
                prop_oneof![Just("and"), Just("or")],
                proptest::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(c, rules)| json!({"combinator": c, "rules": rules})),
            inner.prop_map(|r| json!({"combinator": "not", "rules": [r]})),
        ]
    })
}

fn sorts() -> impl Strategy<Value = Vec<Sort>> {
    proptest::collection::vec(
        (field(), any::<bool>()).prop_map(|(field, descending)| Sort { field, descending }),
        0..3,
    )
}

/// The identifiers of a page and everything else it says, for comparing.
fn summary(p: &Page<'_>) -> (Vec<String>, usize, Value, Option<Value>) {
    (
        p.entities
            .iter()
            .map(|e| {
                format!(
                    "{}/{}",
                    e.record.entity.blueprint, e.record.entity.identifier
                )
            })
            .collect(),
        p.total,
        json!(p.facets),
        p.next.clone(),
    )
}

/// An equality with a string, the rule a posting answers, in `and`s with another rule.
fn string_equalities() -> impl Strategy<Value = Value> {
    let eq = (
        prop_oneof![
            Just("language"),
            Just("tags"),
            Just("since"),
            Just("owner"),
            Just("team"),
            Just("title"),
        ],
        prop_oneof![
            Just("rust"),
            Just("go"),
            Just("pci"),
            Just("t1"),
            Just("2026-01-01T00:30:00+00:00"),
            Just("Ab"),
        ],
    )
        .prop_map(|(f, v)| json!({"property": f, "operator": "=", "value": v}));
    (eq, proptest::option::of(rule())).prop_map(|(eq, other)| {
        let mut rules = vec![eq];
        rules.extend(other);
        json!({"combinator": "and", "rules": rules})
    })
}

fn blueprint_records() -> Vec<BlueprintRecord> {
    let now = at(0);
    blueprints()
        .into_iter()
        .map(|blueprint| BlueprintRecord {
            blueprint,
            version: 1,
            created_at: now,
            updated_at: now,
            created_by: "admin".into(),
            updated_by: "admin".into(),
            managed_by: None,
        })
        .collect()
}

type Rounds = Vec<Vec<Result<Entity, (bool, usize)>>>;

/// Applies each round of changes, then checks every page of the search both ways.
fn agree(
    rounds: Rounds,
    q: &Value,
    sort: &[Sort],
    facets: &[String],
    blueprint: Option<&str>,
    text: Option<&str>,
    limit: usize,
) -> Result<(), TestCaseError> {
    let mut cat = Catalog::default();
    cat.apply(Delta {
        seq: 1,
        blueprints: blueprint_records(),
        ..Delta::default()
    });
    let query = Query::from_json(q).ok();
    let mut seq = 1;
    for (r, round) in rounds.into_iter().enumerate() {
        let mut delta = Delta::default();
        for (i, c) in round.into_iter().enumerate() {
            match c {
                Ok(e) => delta.entities.push(record(e, (r * 20 + i) as i64)),
                Err((is_team, i)) => delta.deleted_entities.push(if is_team {
                    ("team".to_string(), team(i % 4))
                } else {
                    ("service".to_string(), service(i))
                }),
            }
        }
        seq += 1;
        delta.seq = seq;
        cat.apply(delta);

        let mut search = Search {
            query: query.clone(),
            blueprint: blueprint.map(str::to_string),
            text: text.map(str::to_string),
            sort: sort.to_vec(),
            limit,
            after: None,
            facets: facets.to_vec(),
        };
        // Every page, following the cursor to the end.
        for _ in 0..40 {
            let by_columns = summary(&cat.search(&search));
            let by_rows = summary(&cat.search_rows(&search));
            prop_assert_eq!(&by_columns, &by_rows, "query {}", q);
            match by_rows.3 {
                Some(next) => search.after = Some(next),
                None => break,
            }
        }
    }
    Ok(())
}

fn rounds() -> impl Strategy<Value = Rounds> {
    proptest::collection::vec(proptest::collection::vec(change(), 1..14), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn column_searches_agree_with_entity_searches(
        rounds in rounds(),
        q in query(),
        sort in sorts(),
        facets in proptest::collection::vec(field(), 0..3),
        blueprint in proptest::option::of(prop_oneof![Just("service"), Just("team")]),
        text in proptest::option::of(prop_oneof![Just("go"), Just("t1"), Just("S")]),
        limit in 1usize..5,
    ) {
        agree(rounds, &q, &sort, &facets, blueprint, text, limit)?;
    }

    #[test]
    fn string_postings_agree_with_entity_searches(
        rounds in rounds(),
        q in string_equalities(),
        sort in sorts(),
        blueprint in proptest::option::of(prop_oneof![Just("service"), Just("team")]),
        limit in 1usize..5,
    ) {
        agree(rounds, &q, &sort, &[], blueprint, None, limit)?;
    }
}

/// Integers past 2^53 compare exactly, as the entity-by-entity path compares them, although
/// a column keeps most numbers as floats.
#[test]
fn large_integers_compare_exactly() {
    let mut cat = Catalog::default();
    cat.apply(Delta {
        seq: 1,
        blueprints: blueprint_records(),
        ..Delta::default()
    });
    let costs = [
        json!(9_007_199_254_740_993u64),
        json!(9_007_199_254_740_992u64),
        json!(9_007_199_254_740_992.0),
        json!(1.5),
    ];
    let entities = costs
        .iter()
        .enumerate()
        .map(|(i, cost)| {
            let e: Entity = serde_json::from_value(json!({"identifier": service(i),
                "blueprint": "service", "properties": {"cost": cost}}))
            .expect("a service");
            record(e, i as i64)
        })
        .collect();
    cat.apply(Delta {
        seq: 2,
        entities,
        ..Delta::default()
    });
    let run = |q: &str, sort: &str| {
        let s = Search {
            query: Some(Query::parse(q).expect("a query")),
            blueprint: Some("service".into()),
            sort: Sort::parse_list(sort).expect("a sort"),
            limit: 10,
            ..Search::default()
        };
        let columns = summary(&cat.search(&s));
        assert_eq!(
            columns,
            summary(&cat.search_rows(&s)),
            "{q} sorted by {sort}"
        );
        columns.0
    };
    // 2^53 as a float compares as a float: equal to 2^53 + 1, which a float cannot hold.
    assert_eq!(
        run("cost < 9007199254740993", "cost"),
        ["service/s3", "service/s1"]
    );
    assert_eq!(
        run("cost >= 9007199254740992", "-cost"),
        ["service/s0", "service/s1", "service/s2"]
    );
    assert_eq!(
        run("cost = 9007199254740993", ""),
        ["service/s0", "service/s2"]
    );
}
