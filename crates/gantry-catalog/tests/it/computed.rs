//! Mirror, aggregation and calculation properties.

use gantry_catalog::computed::{aggregate, aggregation_relation, calculate, mirror};
use gantry_catalog::jq::{JqProgram, Limits};
use gantry_catalog::{AggregationSpec, CalculationSpec, Indexed, Lookup, Map};
use serde_json::{json, Value};

use crate::fixture_schema::{blueprint, catalog, indexed, indexed_with};

#[test]
fn mirror_through_one_relation() {
    let c = catalog();
    let api = c.get("service", "api");
    assert_eq!(mirror("owner.slack", api, &c), json!("#payments"));
    assert_eq!(mirror("owner.title", api, &c), json!("Payments"));
    assert_eq!(mirror("owner.$title", api, &c), json!("Payments"));
    assert_eq!(mirror("owner.$team", api, &c), json!(["payments"]));
    assert_eq!(mirror("owner.identifier", api, &c), json!("payments"));
    assert_eq!(
        mirror("owner.$createdBy", api, &c),
        json!("ada@example.com")
    );
    // No such field, an empty relation, a dangling one: null.
    assert_eq!(mirror("owner.size2", api, &c), Value::Null);
    assert_eq!(
        mirror("owner.slack", c.get("service", "lonely"), &c),
        Value::Null
    );
    let dangling =
        indexed(json!({"identifier": "x", "blueprint": "service", "relations": {"owner": "gone"}}));
    assert_eq!(mirror("owner.slack", &dangling, &c), Value::Null);
    // A title left out is the identifier.
    assert_eq!(
        mirror("owner.title", c.get("service", "db"), &c),
        json!("search")
    );
}

#[test]
fn mirror_through_two_relations() {
    let c = catalog();
    let api = c.get("service", "api");
    assert_eq!(mirror("owner.lead.slack", api, &c), json!("@ada"));
    assert_eq!(
        mirror("owner.lead.slack", c.get("service", "db"), &c),
        Value::Null
    );
    let i1 = c.get("incident", "i1");
    assert_eq!(mirror("service.owner.slack", i1, &c), json!("#payments"));
}

#[test]
fn mirror_through_many_relations() {
    let c = catalog();
    let api = c.get("service", "api");
    // deps: db, cache, gone (dangling); cache has no port: nulls are dropped.
    assert_eq!(mirror("deps.port", api, &c), json!([5432]));
    assert_eq!(mirror("deps.identifier", api, &c), json!(["db", "cache"]));
    assert_eq!(
        mirror("deps.owner.slack", api, &c),
        json!(["#search", "#payments"])
    );
    // Through a many relation the result is an array, empty when nothing is related.
    assert_eq!(mirror("deps.port", c.get("service", "db"), &c), json!([]));
}

#[test]
fn mirror_of_a_computed_property() {
    let mut c = catalog();
    let mut computed = Map::new();
    computed.insert("open_incidents".into(), json!(3));
    let team = indexed_with(
        json!({"identifier": "payments", "blueprint": "team"}),
        computed,
    );
    c.entities.insert(("team".into(), "payments".into()), team);
    assert_eq!(
        mirror("owner.open_incidents", c.get("service", "api"), &c),
        json!(3)
    );
}

fn agg(v: Value) -> AggregationSpec {
    serde_json::from_value(v).unwrap()
}

fn related<'c>(c: &'c dyn Lookup, ids: &[&str]) -> Vec<&'c Indexed> {
    ids.iter()
        .map(|id| c.entity("incident", id).unwrap())
        .collect()
}

#[test]
fn every_aggregate_func() {
    let c = catalog();
    let all = related(&c, &["i1", "i2", "i3"]);
    let none: Vec<&Indexed> = Vec::new();
    let spec = |func: &str| agg(json!({"target": "incident", "func": func, "property": "minutes"}));

    assert_eq!(
        aggregate(&agg(json!({"target": "incident", "func": "count"})), &all),
        json!(3)
    );
    assert_eq!(aggregate(&spec("count"), &none), json!(0));
    // "n/a" is not a number: skipped.
    assert_eq!(aggregate(&spec("sum"), &all), json!(35.5));
    assert_eq!(
        aggregate(&spec("sum"), &related(&c, &["i1", "i1"])),
        json!(20)
    );
    assert_eq!(aggregate(&spec("sum"), &none), json!(0));
    assert_eq!(aggregate(&spec("min"), &all), json!(10));
    assert_eq!(aggregate(&spec("max"), &all), json!(25.5));
    assert_eq!(aggregate(&spec("average"), &all), json!(17.75));
    assert_eq!(aggregate(&spec("min"), &none), Value::Null);
    assert_eq!(aggregate(&spec("max"), &none), Value::Null);
    assert_eq!(aggregate(&spec("average"), &none), Value::Null);
    assert_eq!(
        aggregate(&spec("average"), &related(&c, &["i3"])),
        Value::Null
    );
}

#[test]
fn which_relation_an_aggregation_follows() {
    let c = catalog();
    let incident = c.blueprint("incident").unwrap();
    let spec = agg(json!({"target": "incident", "func": "count"}));
    assert_eq!(
        aggregation_relation(&spec, "service", incident),
        Some("service")
    );
    assert_eq!(aggregation_relation(&spec, "team", incident), None);
    let named = agg(json!({"target": "incident", "relation": "service", "func": "count"}));
    assert_eq!(
        aggregation_relation(&named, "service", incident),
        Some("service")
    );
    let wrong = agg(json!({"target": "incident", "relation": "nope", "func": "count"}));
    assert_eq!(aggregation_relation(&wrong, "service", incident), None);
    let two = blueprint(json!({"identifier": "incident2", "relations": {
        "service": {"target": "service"}, "caused_by": {"target": "service"}}}));
    let spec = agg(json!({"target": "incident2", "func": "count"}));
    assert_eq!(aggregation_relation(&spec, "service", &two), None);
    let named = agg(json!({"target": "incident2", "relation": "caused_by", "func": "count"}));
    assert_eq!(
        aggregation_relation(&named, "service", &two),
        Some("caused_by")
    );
}

fn calc(program: &str, ty: &str, input: &Value) -> Result<Value, String> {
    let spec: CalculationSpec =
        serde_json::from_value(json!({"calculation": program, "type": ty})).unwrap();
    let p = JqProgram::compile(program).unwrap();
    calculate(&spec, &p, input, &Limits::default())
}

#[test]
fn calculation_types() {
    let c = catalog();
    let api = c.get("service", "api").to_json();
    assert_eq!(calc(".properties.port + 1", "integer", &api), Ok(json!(81)));
    assert_eq!(calc(".properties.port / 2", "integer", &api), Ok(json!(40)));
    assert_eq!(
        calc(".properties.port / 3", "number", &api),
        Ok(json!(80.0 / 3.0))
    );
    assert_eq!(
        calc("\"https://x.io/\" + .identifier", "string", &api),
        Ok(json!("https://x.io/api"))
    );
    assert_eq!(
        calc(".properties.port > 1024", "boolean", &api),
        Ok(json!(false))
    );
    assert_eq!(
        calc("{port: .properties.port}", "object", &api),
        Ok(json!({"port": 80}))
    );
    assert_eq!(
        calc(".relations.deps", "array", &api),
        Ok(json!(["db", "cache", "gone"]))
    );
    assert_eq!(
        calc(".properties.nothing", "integer", &api),
        Ok(Value::Null)
    );
    assert_eq!(
        calc(".createdBy", "string", &api),
        Ok(json!("ada@example.com"))
    );
}

#[test]
fn calculation_errors() {
    let c = catalog();
    let api = c.get("service", "api").to_json();
    assert_eq!(
        calc(".properties.port / 3", "integer", &api),
        Err("the calculation gives a number (26.666666666666668), but its type is integer".into())
    );
    assert_eq!(
        calc(".identifier", "integer", &api),
        Err("the calculation gives a string (\"api\"), but its type is integer".into())
    );
    assert_eq!(
        calc("[1]", "object", &api),
        Err("the calculation gives an array ([1]), but its type is object".into())
    );
    assert_eq!(
        calc("error(\"no port\")", "integer", &api),
        Err("the jq program failed: no port".into())
    );
    assert_eq!(
        calc("def f: f; f", "integer", &api),
        Err("the jq program ran longer than 50 ms and was stopped".into())
    );
    let spec: CalculationSpec = serde_json::from_value(
        json!({"calculation": ".identifier", "type": "string", "format": "url"}),
    )
    .unwrap();
    let p = JqProgram::compile(".identifier").unwrap();
    assert_eq!(
        calculate(&spec, &p, &api, &Limits::default()),
        Err("the calculation gives a value that is \"api\" is not an absolute URL, such as https://example.com/docs".into())
    );
}
