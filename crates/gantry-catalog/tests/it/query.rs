//! The query language: every operator, paths through relations, `relatedTo`, both forms,
//! sorting, keyset pagination, full-text search and facets.

use std::cmp::Ordering;

use gantry_catalog::query::{
    compare, compare_keys, compare_to_key, facet_values, is_sort_key, sort_key, Query, Sort,
    TextSearch,
};
use gantry_catalog::Indexed;
use serde_json::{json, Value};

use crate::fixture::{catalog, TestCatalog};

/// The identifiers of the entities `q` matches, in catalog order.
fn run(c: &TestCatalog, q: &Query) -> String {
    let prepared = q.prepare(c);
    c.entities
        .iter()
        .filter(|e| prepared.matches(e, c))
        .map(|e| e.record.entity.identifier.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses `text`, checks that it round-trips through both forms, and checks what it matches.
fn check(c: &TestCatalog, text: &str, expect: &str) {
    let q = Query::parse(text).unwrap_or_else(|e| panic!("`{text}`: {e}"));
    assert_eq!(run(c, &q), expect, "query `{text}`");
    let json = q.to_json();
    assert_eq!(
        Query::from_json(&json).as_ref(),
        Ok(&q),
        "JSON round trip of `{text}`: {json}"
    );
    let shown = q.to_string();
    assert_eq!(
        Query::parse(&shown).as_ref(),
        Ok(&q),
        "text round trip of `{text}`: `{shown}`"
    );
}

const ALL: &str = "payments search checkout ledger auth db gateway checkout-prod";

#[test]
fn equality() {
    let c = catalog();
    for (q, expect) in [
        ("blueprint = service", "checkout ledger auth db gateway"),
        ("$blueprint == team", "payments search"),
        ("identifier = checkout", "checkout"),
        ("title = auth", "auth"),
        ("language = rust", "checkout auth"),
        ("language = Go", "db"),
        ("language = \"rust\"", "checkout auth"),
        ("tier = 1", "checkout auth"),
        ("tier = 1.0", "checkout auth"),
        ("tier = 2", "ledger"),
        ("tier = \"2\"", "gateway"),
        (
            "tier != 1",
            "payments search ledger db gateway checkout-prod",
        ),
        ("team = payments", "checkout ledger auth"),
        (
            "$team != payments",
            "payments search db gateway checkout-prod",
        ),
        ("tags = [pci, critical]", "checkout"),
        ("tags = [critical, pci]", ""),
        ("tags = []", "auth"),
        ("tags = 7", "gateway"),
        ("public = true", "checkout"),
        ("public = false", "ledger"),
        (
            "public != true",
            "payments search ledger auth db gateway checkout-prod",
        ),
        (
            "name = null",
            "payments search ledger db gateway checkout-prod",
        ),
        ("name != null", "checkout auth"),
        ("meta = {\"a\": 1.0}", "checkout"),
        ("meta = {\"a\": 2}", ""),
        ("score = 0.9", "checkout"),
        ("owner = payments", "checkout ledger"),
        ("dependsOn = auth", "checkout"),
        ("properties.language = rust", "checkout auth"),
        ("properties.blueprint = service", ""),
        ("$language = rust", ""),
        ("nothing = 1", ""),
        ("nothing != 1", ALL),
    ] {
        check(&c, q, expect);
    }
}

#[test]
fn ordering() {
    let c = catalog();
    for (q, expect) in [
        ("cost < 15", "ledger"),
        ("cost <= 15", "checkout ledger"),
        ("cost > 15", "auth"),
        ("cost >= 15", "checkout auth"),
        ("cost > 15.5", "auth"),
        ("cost < -1", ""),
        ("tier < \"3\"", "gateway"),
        ("tier >= 2", "ledger db"),
        ("language < \"h\"", "ledger db"),
        (
            "createdAt >= \"2026-01-01\"",
            "payments search auth db gateway checkout-prod",
        ),
        ("createdAt < 2026-01-01", "checkout ledger"),
        ("updatedAt > \"2026-03-01T00:00:00+00:00\"", "gateway"),
        ("nothing < 3", ""),
        ("nothing >= \"\"", ""),
        ("cost between 10 and 20", "checkout ledger"),
        ("cost between [15, 20.5]", "checkout auth"),
        ("cost between 10 and 10", "ledger"),
        (
            "createdAt between \"2025-12-01\" and \"2026-01-31\"",
            "payments search ledger auth checkout-prod",
        ),
        ("language between a and h", "ledger"),
        ("nothing between 1 and 2", ""),
    ] {
        check(&c, q, expect);
    }
}

#[test]
fn lists_and_strings() {
    let c = catalog();
    for (q, expect) in [
        ("tier in [2, 3]", "ledger db"),
        (
            "tier notIn [2, 3]",
            "payments search checkout auth gateway checkout-prod",
        ),
        ("team in [search]", "auth"),
        (
            "team notIn [search]",
            "payments search checkout ledger db gateway checkout-prod",
        ),
        ("lifecycle in [production, \"\"]", "checkout ledger db"),
        (
            "name in [null]",
            "payments search ledger db gateway checkout-prod",
        ),
        ("tier in []", ""),
        ("x notIn [a, \"b c\"]", ALL),
        ("name contains pay", ""),
        ("name contains Pay", "checkout"),
        ("tags contains pci", "checkout ledger"),
        ("tags contains 7", "gateway"),
        ("summary contains Cart", "checkout"),
        ("createdAt contains \"T09:00\"", "checkout"),
        ("tier contains 1", ""),
        ("tags containsAny [critical, edge]", "checkout gateway"),
        ("tags containsAny [7]", "gateway"),
        ("name containsAny [Àuth, zzz]", "auth"),
        ("name containsAny []", ""),
        ("name beginsWith \"Pay\"", "checkout"),
        ("title beginsWith Pay", "payments gateway"),
        ("title endsWith out", "checkout"),
        ("identifier endsWith \"-prod\"", "checkout-prod"),
        ("tags beginsWith cr", "checkout"),
        ("tier beginsWith 2", "gateway"),
        ("nothing beginsWith a", ""),
        (
            "lifecycle isEmpty",
            "payments search db gateway checkout-prod",
        ),
        ("lifecycle isNotEmpty", "checkout ledger auth"),
        ("tags isEmpty", "payments search auth db checkout-prod"),
        (
            "name isEmpty",
            "payments search ledger db gateway checkout-prod",
        ),
        ("meta isNotEmpty", "checkout"),
        ("public isNotEmpty", "checkout ledger"),
        ("owner isNotEmpty", "checkout ledger auth gateway"),
    ] {
        check(&c, q, expect);
    }
}

#[test]
fn paths_through_relations() {
    let c = catalog();
    for (q, expect) in [
        ("owner.slack = \"#pay\"", "checkout ledger"),
        ("owner.title = Search", "auth"),
        ("owner.$identifier = payments", "checkout ledger"),
        // Teams have no `owner`, db has none, gateway's is dangling, a deployment has none.
        (
            "owner.title isEmpty",
            "payments search db gateway checkout-prod",
        ),
        (
            "owner.title != Payments",
            "payments search auth db gateway checkout-prod",
        ),
        // A `many` relation: any target may match a positive operator...
        ("dependsOn.language = go", "checkout"),
        ("dependsOn.language in [Go, go]", "checkout ledger"),
        // ...and no target may match a negative one.
        (
            "dependsOn.language != rust",
            "payments search ledger auth db checkout-prod",
        ),
        (
            "dependsOn.language notIn [rust]",
            "payments search ledger auth db checkout-prod",
        ),
        ("dependsOn.cost > 18", "checkout"),
        ("dependsOn.team = search", "checkout"),
        ("dependsOn.owner.title = Search", "checkout"),
        ("dependsOn.dependsOn.identifier = db", "checkout"),
        ("service.owner.slack = \"#pay\"", "checkout-prod"),
        (
            "service.dependsOn.dependsOn.title = Database",
            "checkout-prod",
        ),
        ("dependsOn.language isNotEmpty", "checkout ledger gateway"),
        (
            "dependsOn.language isEmpty",
            "payments search auth db checkout-prod",
        ),
        // A dotted name that is not a relation is read as a field.
        ("k8s.namespace = payments-prod", "checkout"),
        ("nope.title isEmpty", ALL),
    ] {
        check(&c, q, expect);
    }
}

#[test]
fn combinators_and_precedence() {
    let c = catalog();
    for (q, expect) in [
        (
            "blueprint = service and language = \"rust\" and owner.title = Payments",
            "checkout",
        ),
        // `and` binds tighter than `or`.
        (
            "language = go or language = rust and cost > 16",
            "ledger auth",
        ),
        ("(language = go or language = rust) and cost > 16", "auth"),
        (
            "language = go OR language = rust AND cost > 16",
            "ledger auth",
        ),
        (
            "tier in [1, 2] or (lifecycle != deprecated and not_a_keyword isEmpty)",
            ALL,
        ),
        (
            "tier in [1, 2] or (lifecycle = production and not_a_keyword isEmpty)",
            "checkout ledger auth",
        ),
        (
            "not (language = rust)",
            "payments search ledger db gateway checkout-prod",
        ),
        (
            "NOT (language = rust or blueprint = team)",
            "ledger db gateway checkout-prod",
        ),
        ("not (not (language = rust))", "checkout auth"),
        (
            "blueprint = service and not (owner isEmpty)",
            "checkout ledger auth gateway",
        ),
        ("((((language = go))))", "ledger"),
        ("()", ALL),
        ("not ()", ""),
        ("", ALL),
        ("   ", ALL),
        ("x = 1\nor language\n= go", "ledger"),
    ] {
        check(&c, q, expect);
    }
}

#[test]
fn related_to() {
    let c = catalog();
    for (q, expect) in [
        (
            "relatedTo service/checkout downstream",
            "payments ledger auth",
        ),
        (
            "relatedTo service/checkout downstream depth 2",
            "payments search ledger auth db",
        ),
        (
            "relatedTo service/checkout depth 2 downstream",
            "payments search ledger auth db",
        ),
        (
            "relatedTo service/checkout downstream depth 10",
            "payments search ledger auth db",
        ),
        (
            "relatedTo service/checkout upstream",
            "gateway checkout-prod",
        ),
        (
            "relatedTo service/checkout",
            "payments ledger auth gateway checkout-prod",
        ),
        (
            "relatedTo service/checkout any",
            "payments ledger auth gateway checkout-prod",
        ),
        ("relatedTo team/payments upstream", "checkout ledger"),
        (
            "relatedTo team/payments upstream depth 2",
            "checkout ledger gateway checkout-prod",
        ),
        ("relatedTo team/payments downstream", ""),
        (
            "dependsOn relatedTo service/checkout downstream depth 3",
            "ledger auth db",
        ),
        (
            "owner relatedTo team/payments upstream depth 3",
            "checkout ledger",
        ),
        ("service relatedTo team/payments upstream depth 2", ""),
        (
            "blueprint = deployment and relatedTo team/payments upstream depth 2",
            "checkout-prod",
        ),
        (
            "relatedTo \"service/db\" upstream depth 3",
            "checkout ledger gateway checkout-prod",
        ),
        ("relatedTo service/nope", ""),
        // A dangling target has no entity but may still be pointed at.
        ("relatedTo team/ghost upstream", "gateway"),
        (
            "not (relatedTo team/payments upstream) and blueprint = service",
            "auth db gateway",
        ),
    ] {
        check(&c, q, expect);
    }
}

#[test]
fn related_to_json_form() {
    let c = catalog();
    let q = Query::from_json(&json!({
        "combinator": "and",
        "rules": [{
            "operator": "relatedTo",
            "value": {"blueprint": "service", "identifier": "checkout"},
            "direction": "downstream", "depth": 2, "property": "dependsOn"
        }]
    }))
    .unwrap();
    assert_eq!(run(&c, &q), "ledger auth db");
    assert_eq!(
        q,
        Query::parse("dependsOn relatedTo service/checkout downstream depth 2").unwrap()
    );
    assert_eq!(
        q.to_json(),
        json!({"combinator": "and", "rules": [{
            "property": "dependsOn", "operator": "relatedTo",
            "value": {"blueprint": "service", "identifier": "checkout"},
            "direction": "downstream", "depth": 2
        }]})
    );
    // Defaults: any direction, one hop.
    let q =
        Query::from_json(&json!({"operator": "relatedTo", "value": "service/checkout"})).unwrap();
    assert_eq!(
        q,
        Query::parse("relatedTo service/checkout any depth 1").unwrap()
    );
}

#[test]
fn text_and_json_forms_compile_to_the_same_query() {
    for (text, json) in [
        (
            "blueprint = service and language = \"rust\" and owner.team = payments",
            json!({"combinator": "and", "rules": [
                {"property": "blueprint", "operator": "=", "value": "service"},
                {"property": "language", "operator": "=", "value": "rust"},
                {"property": "owner.team", "operator": "=", "value": "payments"},
            ]}),
        ),
        (
            "tier in [1, 2] or (lifecycle != deprecated and not_a_keyword isEmpty)",
            json!({"combinator": "or", "rules": [
                {"property": "tier", "operator": "in", "value": [1, 2]},
                {"combinator": "and", "rules": [
                    {"property": "lifecycle", "operator": "!=", "value": "deprecated"},
                    {"property": "not_a_keyword", "operator": "isEmpty"},
                ]},
            ]}),
        ),
        (
            "name beginsWith \"pay\"",
            json!({"combinator": "and", "rules": [
                {"property": "name", "operator": "beginsWith", "value": "pay"}]}),
        ),
        (
            "name beginsWith 3",
            json!({"property": "name", "operator": "beginsWith", "value": "3"}),
        ),
        (
            "cost between 10 and 20",
            json!({"combinator": "or", "rules": [
                {"property": "cost", "operator": "between", "value": [10, 20]}]}),
        ),
        (
            "createdAt >= \"2026-01-01\"",
            json!({"property": "createdAt", "operator": ">=", "value": "2026-01-01"}),
        ),
        (
            "service relatedTo team/payments downstream depth 2",
            json!({"property": "service", "operator": "relatedTo", "value": "team/payments",
                   "direction": "downstream", "depth": 2}),
        ),
        (
            "owner isNotEmpty",
            json!({"property": "owner", "operator": "isNotEmpty", "value": null}),
        ),
        (
            "x notIn [a, \"b c\"]",
            json!({"property": "x", "operator": "notIn", "value": ["a", "b c"]}),
        ),
        (
            "x != 3.5",
            json!({"property": "x", "operator": "!=", "value": 3.5}),
        ),
        (
            "flag = true",
            json!({"property": "flag", "operator": "=", "value": true}),
        ),
        (
            "x = null",
            json!({"property": "x", "operator": "=", "value": null}),
        ),
        (
            "x = [1, [2, \"3\"]]",
            json!({"property": "x", "operator": "=", "value": [1, [2, "3"]]}),
        ),
        (
            "x = {\"a\": [1]}",
            json!({"property": "x", "operator": "=", "value": {"a": [1]}}),
        ),
        (
            "a = 1 and (b = 2 and (c = 3))",
            json!({"combinator": "and", "rules": [
                {"combinator": "and", "rules": [
                    {"property": "a", "operator": "=", "value": 1},
                    {"property": "b", "operator": "=", "value": 2}]},
                {"combinator": "or", "rules": [
                    {"property": "c", "operator": "=", "value": 3}]},
            ]}),
        ),
        (
            "not (a = 1)",
            json!({"combinator": "not", "rules": [{"property": "a", "operator": "=", "value": 1}]}),
        ),
        ("", json!({"combinator": "and", "rules": []})),
        ("not ()", json!({"combinator": "or", "rules": []})),
    ] {
        let parsed = Query::parse(text).unwrap_or_else(|e| panic!("`{text}`: {e}"));
        let compiled = Query::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(parsed, compiled, "`{text}` against {json}");
        assert_eq!(
            Query::from_value(&Value::String(text.into())).unwrap(),
            parsed
        );
        assert_eq!(Query::from_value(&json).unwrap(), compiled);
        assert_eq!(Query::from_json(&parsed.to_json()).unwrap(), parsed);
        assert_eq!(
            Query::parse(&parsed.to_string()).unwrap(),
            parsed,
            "`{parsed}`"
        );
    }
}

#[test]
fn canonical_json_and_text() {
    let q =
        Query::parse("a = 1 and (b = x or c isEmpty) and not (d in [1, \"two words\"])").unwrap();
    assert_eq!(
        q.to_json(),
        json!({"combinator": "and", "rules": [
            {"property": "a", "operator": "=", "value": 1},
            {"combinator": "or", "rules": [
                {"property": "b", "operator": "=", "value": "x"},
                {"property": "c", "operator": "isEmpty"}]},
            {"combinator": "not", "rules": [
                {"property": "d", "operator": "in", "value": [1, "two words"]}]},
        ]})
    );
    assert_eq!(
        q.to_string(),
        "a = 1 and (b = x or c isEmpty) and not (d in [1, \"two words\"])"
    );
    // Strings that would read back as something else are quoted.
    let q = Query::from_json(&json!({"combinator": "and", "rules": [
        {"property": "and", "operator": "=", "value": "3"},
        {"property": "relatedTo", "operator": "in", "value": ["true", "or", "", "a\"b", "x y"]},
        {"property": "x", "operator": "=", "value": "upstream"},
    ]}))
    .unwrap();
    let shown = q.to_string();
    assert_eq!(
        shown,
        r#""and" = "3" and "relatedTo" in ["true", "or", "", "a\"b", "x y"] and x = "upstream""#
    );
    assert_eq!(Query::parse(&shown).unwrap(), q);
    assert_eq!(Query::all().to_string(), "");
    assert_eq!(
        Query::all().to_json(),
        json!({"combinator": "and", "rules": []})
    );
    assert!(Query::all().is_all());
    assert!(!Query::parse("a = 1").unwrap().is_all());
}

#[test]
fn and_combines_queries() {
    let c = catalog();
    let q = Query::parse("language = rust or language = go")
        .unwrap()
        .and(Query::parse("cost > 12").unwrap());
    assert_eq!(run(&c, &q), "checkout auth");
    assert_eq!(
        q,
        Query::parse("(language = rust or language = go) and cost > 12").unwrap()
    );
    let q = Query::parse("blueprint = service").unwrap();
    assert_eq!(Query::all().and(q.clone()), q);
    assert_eq!(q.clone().and(Query::all()), q);
    assert_eq!(
        q.and(Query::parse("a = 1 and b = 2").unwrap()),
        Query::parse("blueprint = service and a = 1 and b = 2").unwrap()
    );
}

#[test]
fn blueprint_scope() {
    let bp = |text: &str| Query::parse(text).unwrap().blueprint().map(str::to_string);
    assert_eq!(bp("blueprint = service"), Some("service".into()));
    assert_eq!(bp("$blueprint = service and x = 1"), Some("service".into()));
    assert_eq!(bp("x = 1 and (blueprint = team)"), Some("team".into()));
    assert_eq!(bp("blueprint = service or x = 1"), None);
    assert_eq!(bp("(blueprint = service or x = 1) and y = 2"), None);
    assert_eq!(bp("blueprint != service"), None);
    assert_eq!(bp("blueprint in [service]"), None);
    assert_eq!(bp("blueprint = 3"), None);
    assert_eq!(bp("not (blueprint = service)"), None);
    assert_eq!(bp("x = 1"), None);
    assert_eq!(bp(""), None);
    let scoped = Query::all().and(Query::parse("blueprint = team").unwrap());
    assert_eq!(scoped.blueprint(), Some("team"));
    let json = Query::from_json(&json!({"combinator": "and", "rules": [
        {"combinator": "and", "rules": [
            {"property": "blueprint", "operator": "=", "value": "service"}]}]}))
    .unwrap();
    assert_eq!(json.blueprint(), Some("service"));
}

/// Exact comparison of the date meta fields against their RFC 3339 text, whatever the
/// fraction of a second.
#[test]
fn dates_compare_as_their_rfc3339_text() {
    let c = catalog();
    for e in &c.entities {
        let text = e.record.created_at.to_rfc3339();
        let q = Query::from_json(&json!({"property": "createdAt", "operator": "=", "value": text}))
            .unwrap();
        let prepared = q.prepare(&c);
        let matching: Vec<_> = c
            .entities
            .iter()
            .filter(|x| prepared.matches(x, &c))
            .map(|x| x.record.created_at)
            .collect();
        assert!(
            !matching.is_empty() && matching.iter().all(|t| *t == e.record.created_at),
            "{text}"
        );
    }
}

fn services(c: &TestCatalog) -> Vec<&Indexed> {
    c.entities
        .iter()
        .filter(|e| e.record.entity.blueprint == "service")
        .collect()
}

fn sorted(c: &TestCatalog, list: &str) -> String {
    let sort = Sort::parse_list(list).unwrap();
    let mut es = services(c);
    es.sort_by(|a, b| compare(a, b, &sort, c));
    es.iter()
        .map(|e| e.record.entity.identifier.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn sorting() {
    let c = catalog();
    for (list, expect) in [
        ("", "auth checkout db gateway ledger"),
        ("cost", "ledger checkout auth db gateway"),
        // Missing values stay last when descending.
        ("-cost", "auth checkout ledger db gateway"),
        // 1 and 1.0 tie (broken by identifier); numbers before strings.
        ("tier", "auth checkout ledger db gateway"),
        ("-tier", "gateway db ledger auth checkout"),
        ("+tier", "auth checkout ledger db gateway"),
        ("language,-cost", "db ledger auth checkout gateway"),
        (" language , -cost ", "db ledger auth checkout gateway"),
        ("owner.title", "checkout ledger auth db gateway"),
        ("-owner.title", "auth checkout ledger db gateway"),
        ("-updatedAt", "gateway auth checkout db ledger"),
        ("updatedAt,identifier", "db ledger checkout auth gateway"),
        ("createdAt", "checkout ledger auth db gateway"),
        ("-public", "checkout ledger auth db gateway"),
        ("tags", "auth gateway ledger checkout db"),
        ("dependsOn.cost", "checkout gateway auth db ledger"),
        ("-title", "auth gateway ledger db checkout"),
    ] {
        assert_eq!(sorted(&c, list), expect, "sort `{list}`");
    }
    let all = Sort::parse_list("title,-updatedAt").unwrap();
    assert_eq!(
        all,
        vec![
            Sort {
                field: "title".into(),
                descending: false
            },
            Sort {
                field: "updatedAt".into(),
                descending: true
            },
        ]
    );
}

#[test]
fn sort_keys_agree_with_compare_and_page_without_gaps() {
    let c = catalog();
    for list in [
        "",
        "cost",
        "-cost",
        "tier",
        "-tier",
        "language,-cost",
        "-updatedAt",
        "createdAt",
        "owner.title",
        "tags",
        "-public",
    ] {
        let sort = Sort::parse_list(list).unwrap();
        let mut all: Vec<&Indexed> = c.entities.iter().collect();
        all.sort_by(|a, b| compare(a, b, &sort, &c));
        for a in &all {
            let key = sort_key(a, &sort, &c);
            assert!(is_sort_key(&key, &sort), "{key}");
            assert_eq!(
                compare_to_key(a, &key, &sort, &c),
                Ordering::Equal,
                "`{list}` {key}"
            );
            let through_json: Value = serde_json::from_str(&key.to_string()).unwrap();
            for b in &all {
                assert_eq!(
                    compare_keys(&sort_key(b, &sort, &c), &key, &sort),
                    compare(b, a, &sort, &c),
                    "sort `{list}`: the keys of {} and {}",
                    b.record.entity.identifier,
                    a.record.entity.identifier
                );
                assert_eq!(
                    compare_to_key(b, &through_json, &sort, &c),
                    compare(b, a, &sort, &c),
                    "sort `{list}`: {} against the key of {}",
                    b.record.entity.identifier,
                    a.record.entity.identifier
                );
            }
        }
        // Pages of two, each starting after the previous page's last key.
        let mut paged = Vec::new();
        let mut cursor: Option<Value> = None;
        loop {
            let mut page: Vec<&Indexed> = c
                .entities
                .iter()
                .filter(|e| {
                    cursor
                        .as_ref()
                        .is_none_or(|k| compare_to_key(e, k, &sort, &c) == Ordering::Greater)
                })
                .collect();
            page.sort_by(|a, b| compare(a, b, &sort, &c));
            page.truncate(2);
            let Some(last) = page.last() else { break };
            cursor = Some(sort_key(last, &sort, &c));
            paged.extend(page);
        }
        assert_eq!(paged, all, "paging by `{list}`");
    }
}

#[test]
fn sort_key_values() {
    let c = catalog();
    let sort = Sort::parse_list("-cost,owner.title,nothing,createdAt,tags").unwrap();
    assert_eq!(
        sort_key(c.get("service", "checkout"), &sort, &c),
        json!([
            15,
            "Payments",
            null,
            "2025-11-03T09:00:00.250+00:00",
            ["pci", "critical"],
            "service",
            "checkout"
        ])
    );
    // Whatever the field, the key holds the value `Indexed::field` gives.
    for e in &c.entities {
        for field in [
            "identifier",
            "title",
            "blueprint",
            "$team",
            "createdAt",
            "updatedAt",
            "createdBy",
            "updatedBy",
            "language",
            "tier",
            "tags",
            "meta",
            "score",
            "owner",
            "dependsOn",
            "properties.language",
        ] {
            let sort = [Sort {
                field: field.into(),
                descending: false,
            }];
            let key = sort_key(e, &sort, &c);
            let expect = e.field(field).map_or(Value::Null, |v| v.into_owned());
            assert_eq!(key[0], expect, "{field} of {}", e.record.entity.identifier);
        }
    }
    // A malformed cursor does not panic; its values count as missing.
    let sort = Sort::parse_list("cost").unwrap();
    let e = c.get("service", "checkout");
    assert!(!is_sort_key(&json!("x"), &sort));
    assert!(!is_sort_key(&json!([1, "service"]), &sort));
    assert_eq!(compare_to_key(e, &json!("x"), &sort, &c), Ordering::Less);
    assert_eq!(compare_to_key(e, &json!([]), &sort, &c), Ordering::Less);
    assert_eq!(
        compare_to_key(e, &json!([{"a": 1}]), &sort, &c),
        Ordering::Less
    );
}

#[test]
fn text_search() {
    let c = catalog();
    let found = |q: &str| {
        let s = TextSearch::new(q);
        c.entities
            .iter()
            .filter(|e| s.matches(e))
            .map(|e| e.record.entity.identifier.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(found("pay"), "payments checkout gateway");
    assert_eq!(found("PAY gate"), "gateway");
    assert_eq!(found("  gate   PAY "), "gateway");
    assert_eq!(found("ünïcode àUTH"), "auth");
    assert_eq!(found("ÀUTH"), "auth");
    assert_eq!(found("cart"), "checkout");
    assert_eq!(found("critical"), "checkout");
    assert_eq!(found("#pay"), "payments");
    assert_eq!(found("database"), "db");
    assert_eq!(found("prod"), "checkout ledger checkout-prod");
    assert_eq!(found("7"), "");
    assert_eq!(found("zzz"), "");
    assert_eq!(found("pay zzz"), "");
    assert_eq!(found(""), ALL);
    assert!(TextSearch::new(" ").is_empty());
}

#[test]
fn facets() {
    let c = catalog();
    let f = |bp: &str, id: &str, field: &str| facet_values(c.get(bp, id), field, &c);
    assert_eq!(f("service", "checkout", "tags"), ["pci", "critical"]);
    assert_eq!(f("service", "gateway", "tags"), ["edge", "7"]);
    assert_eq!(f("service", "checkout", "language"), ["rust"]);
    assert_eq!(f("service", "checkout", "tier"), ["1"]);
    assert_eq!(f("service", "auth", "tier"), ["1.0"]);
    assert_eq!(f("service", "checkout", "public"), ["true"]);
    assert_eq!(f("service", "auth", "$team"), ["search", "payments"]);
    assert_eq!(f("service", "checkout", "owner"), ["payments"]);
    assert_eq!(
        f("service", "checkout", "dependsOn.language"),
        ["go", "rust"]
    );
    assert_eq!(
        f("service", "checkout", "dependsOn.team"),
        ["payments", "search"]
    );
    assert_eq!(
        f("service", "checkout", "createdAt"),
        ["2025-11-03T09:00:00.250+00:00"]
    );
    assert_eq!(f("service", "checkout", "meta"), [r#"{"a":1}"#]);
    assert!(f("service", "db", "name").is_empty());
    assert!(f("service", "auth", "tags").is_empty());
    assert!(f("team", "payments", "language").is_empty());
    assert!(f("service", "gateway", "owner.title").is_empty());
}

/// Every error, in both forms, as a user sees it.
#[test]
fn errors() {
    let deep_text = format!("{}x = 1{}", "(".repeat(40), ")".repeat(40));
    let mut deep_json = json!({"property": "x", "operator": "=", "value": 1});
    for _ in 0..40 {
        deep_json = json!({"combinator": "and", "rules": [deep_json]});
    }
    let many = json!({"combinator": "or", "rules": (0..1001)
        .map(|i| json!({"property": "x", "operator": "=", "value": i}))
        .collect::<Vec<_>>()});
    let many_text = vec!["x = 1"; 1001].join(" or ");
    let texts: Vec<&str> = vec![
        "language =",
        "language = \"rust\" and owner =",
        "name equals \"x\"",
        "name startsWith x",
        "x doesNotContains y",
        "x like y",
        "a = 1 and (b = 2 or c = 3",
        "a = 1 and (b = 2 or c = 3 d = 4",
        "name = \"unterminated",
        "name = \"bad \\q escape\"",
        "x = 1 )",
        "x = 1 y = 2",
        "x = 1 and",
        "x = 1 or or y = 2",
        "and x = 1",
        "x",
        "x (",
        "tier in 1",
        "tier in [1, 2",
        "tier in [1 2]",
        "cost between 10",
        "cost between 20 and 10",
        "cost between 10 and true",
        "cost between [1]",
        "x < true",
        "x > [1]",
        "name beginsWith [a]",
        "x isEmpty 3",
        "x = 'rust'",
        "x ! y",
        "x = 1e999",
        "owner..team = x",
        "relatedTo payments",
        "relatedTo",
        "relatedTo team/payments depth 11",
        "relatedTo team/payments depth",
        "relatedTo team/payments upstream downstream",
        "owner.team relatedTo team/payments",
        "x = {nope}",
        "x = }",
        "x = 1\nand y =",
        "x = 1 and\n  (y = 2 or z = 3",
        &deep_text,
        &many_text,
    ];
    let jsons: Vec<Value> = vec![
        json!([1]),
        json!({}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": "equals", "value": 1}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": "="}]}),
        json!({"combinator": "and", "rules": [{"operator": "=", "value": 1}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "value": 1}]}),
        json!({"combinator": "and", "rules": [{"property": 3, "operator": "=", "value": 1}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": 3, "value": 1}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": "in", "value": "a"}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": "between", "value": [1, 2, 3]}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": "between", "value": ["a", 2]}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": "isEmpty", "value": 3}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": "=", "valu": 1}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": "=", "value": 1, "direction": "up"}]}),
        json!({"combinator": "xor", "rules": []}),
        json!({"combinator": "AND", "rules": []}),
        json!({"combinator": "and", "conditions": []}),
        json!({"combinator": "and"}),
        json!({"rules": []}),
        json!({"combinator": "and", "rules": {}}),
        json!({"combinator": "not", "rules": [{"property": "x", "operator": "isEmpty"}, {"property": "y", "operator": "isEmpty"}]}),
        json!({"combinator": "and", "rules": [1]}),
        json!({"combinator": "and", "rules": [
            {"property": "x", "operator": "isEmpty"},
            {"combinator": "or", "rules": [{"property": "y", "operator": "<", "value": null}]}]}),
        json!({"combinator": "and", "rules": [{"property": "x", "operator": "=", "value": 1, "combinator": "and"}]}),
        json!({"combinator": "and", "rules": [], "property": "x"}),
        json!({"operator": "relatedTo", "value": "payments"}),
        json!({"operator": "relatedTo"}),
        json!({"operator": "relatedTo", "value": {"blueprint": "team"}}),
        json!({"operator": "relatedTo", "value": {"blueprint": "team", "identifier": "", "x": 1}}),
        json!({"operator": "relatedTo", "value": "team/payments", "depth": 0}),
        json!({"operator": "relatedTo", "value": "team/payments", "direction": "down"}),
        json!({"operator": "relatedTo", "value": 3}),
        json!({"property": "owner.team", "operator": "relatedTo", "value": "team/payments"}),
        json!({"property": "", "operator": "=", "value": 1}),
        json!({"property": "a.", "operator": "=", "value": 1}),
        json!({"property": vec!["dependsOn"; 17].join("."), "operator": "isEmpty"}),
        deep_json,
        many,
    ];
    let mut out = String::new();
    for t in texts {
        let e = Query::parse(t).expect_err(t);
        let shown: String = if t.len() > 60 {
            format!("{}…", &t[..60])
        } else {
            t.to_string()
        };
        out.push_str(&format!(
            "text {shown:?}\n  {e}\n  span {:?}\n",
            e.span().unwrap()
        ));
    }
    for j in jsons {
        let e = Query::from_json(&j).expect_err("an error");
        let mut shown = j.to_string();
        if shown.len() > 100 {
            shown = format!("{}…", &shown[..100]);
        }
        out.push_str(&format!(
            "json {shown}\n  {e}\n  path {:?}\n",
            e.path().unwrap()
        ));
    }
    for s in ["title,,x", "-", "a b", "owner..x", "x,"] {
        let e = Sort::parse_list(s).expect_err(s);
        out.push_str(&format!(
            "sort {s:?}\n  {e}\n  span {:?}\n",
            e.span().unwrap()
        ));
    }
    let e = Query::from_value(&json!(5)).unwrap_err();
    out.push_str(&format!("value 5\n  {e}\n"));
    insta::assert_snapshot!("query_errors", out);
}

#[test]
fn error_positions() {
    let e = Query::parse("language = \"rust\" and owner =").unwrap_err();
    assert_eq!(e.span(), Some((29, 29)));
    assert_eq!(e.line_column(), Some((1, 30)));
    assert_eq!(e.message(), "expected a value after `=`");
    assert_eq!(e.path(), None);
    // Columns count characters, not bytes.
    let e = Query::parse("näme = \"ü\" foo").unwrap_err();
    assert_eq!(e.span(), Some((13, 16)));
    assert_eq!(e.line_column(), Some((1, 12)));
    let e = Query::from_json(&json!({"combinator": "and", "rules": [
        {"property": "x", "operator": "isEmpty"},
        {"property": "x", "operator": "equals", "value": 1}]}))
    .unwrap_err();
    assert_eq!(e.path(), Some("rules[1].operator"));
    assert_eq!(e.span(), None);
    assert_eq!(e.to_string(), format!("rules[1].operator: {}", e.message()));
}

/// Groups exactly at the limits are accepted.
#[test]
fn limits() {
    let text = format!("{}x = 1{}", "(".repeat(31), ")".repeat(31));
    assert!(Query::parse(&text).is_ok());
    let mut json = json!({"property": "x", "operator": "=", "value": 1});
    for _ in 0..32 {
        json = json!({"combinator": "not", "rules": [json]});
    }
    assert!(Query::from_json(&json).is_ok());
    let many = json!({"combinator": "or", "rules": (0..1000)
        .map(|i| json!({"property": "x", "operator": "=", "value": i}))
        .collect::<Vec<_>>()});
    assert!(Query::from_json(&many).is_ok());
    assert!(Query::parse(&vec!["x = 1"; 1000].join(" or ")).is_ok());
    // A path of 16 names, following a relation back and forth.
    let c = catalog();
    let path = format!("{}.identifier", vec!["dependsOn"; 15].join("."));
    let q = Query::from_json(&json!({"property": path, "operator": "isNotEmpty"})).unwrap();
    assert_eq!(run(&c, &q), "");
    let path = format!("{}.identifier", vec!["service"; 15].join("."));
    let q = Query::from_json(&json!({"property": path, "operator": "isEmpty"})).unwrap();
    assert_eq!(run(&c, &q), ALL);
}
