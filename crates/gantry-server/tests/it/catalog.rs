//! The catalog's REST API through the router on a real SQLite store: blueprints, entities,
//! validation with paths, relations, computed values kept current, bulk upserts, sources and
//! locks, queries, apply with dry-run and prune, history, diff and revert.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::api::{api, Api};

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

async fn call(api: &Api, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    api.as_admin_with(method, path, &text, JSON).await
}

async fn ok(api: &Api, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = call(api, method, path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

fn team_bp() -> Value {
    json!({
        "identifier": "team",
        "title": "Team",
        "schema": {"properties": {"slack": {"type": "string"}}},
        "aggregationProperties": {
            "services": {"target": "service", "func": "count"},
            "rustServices": {"target": "service", "func": "count", "filter": "language = rust"},
            "totalCost": {"target": "service", "func": "sum", "property": "cost"}
        }
    })
}

fn service_bp() -> Value {
    json!({
        "identifier": "service",
        "title": "Service",
        "schema": {
            "properties": {
                "language": {"type": "string", "enum": ["rust", "go", "python"]},
                "tier": {"type": "integer", "minimum": 1, "maximum": 3},
                "cost": {"type": "number"},
                "url": {"type": "string", "format": "url"},
                "oncall": {"type": "string", "format": "email", "locked": true},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["language"]
        },
        "relations": {
            "owner": {"target": "team", "required": true},
            "dependsOn": {"target": "service", "many": true}
        },
        "mirrorProperties": {"ownerSlack": {"path": "owner.slack"}},
        "calculationProperties": {
            "label": {"calculation": ".identifier + \"@\" + (.properties.tier | tostring)", "type": "string"}
        }
    })
}

async fn model(api: &Api) {
    // Each needs the other: the team first without its aggregations over services.
    let mut team = team_bp();
    let aggregations = team
        .as_object_mut()
        .unwrap()
        .remove("aggregationProperties");
    ok(api, "POST", "/api/v1/blueprints", team.clone()).await;
    ok(api, "POST", "/api/v1/blueprints", service_bp()).await;
    team["aggregationProperties"] = aggregations.unwrap();
    ok(api, "PUT", "/api/v1/blueprints/team", team).await;
    for (id, slack) in [("payments", "#pay"), ("search", "#search")] {
        ok(
            api,
            "POST",
            "/api/v1/blueprints/team/entities",
            json!({"identifier": id, "properties": {"slack": slack}}),
        )
        .await;
    }
}

fn service(id: &str, owner: &str, language: &str, tier: i64, cost: f64) -> Value {
    json!({
        "identifier": id, "blueprint": "service", "title": format!("The {id} service"),
        "team": [owner],
        "properties": {"language": language, "tier": tier, "cost": cost},
        "relations": {"owner": owner},
    })
}

#[tokio::test]
async fn an_entity_with_five_mistakes_gets_five_problems_with_their_paths() {
    let api = api().await;
    model(&api).await;
    let (status, body) = call(
        &api,
        "POST",
        "/api/v1/blueprints/service/entities",
        json!({
            "identifier": "checkout",
            "properties": {"language": "cobol", "tier": 7, "url": "not a url", "colour": "red"},
            "relations": {"owner": "nobody"}
        }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let problems = body["details"]["problems"].as_array().unwrap();
    let mut paths: Vec<&str> = problems
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "properties.colour",
            "properties.language",
            "properties.tier",
            "properties.url",
            "relations.owner"
        ],
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("5 problems"));
    // Nothing was stored.
    let (status, _) = call(
        &api,
        "GET",
        "/api/v1/blueprints/service/entities/checkout",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn computed_values_follow_their_inputs() {
    let api = api().await;
    model(&api).await;
    ok(
        &api,
        "POST",
        "/api/v1/entities/bulk",
        json!({"entities": [
            service("checkout", "payments", "rust", 1, 10.0),
            service("ledger", "payments", "go", 2, 5.5),
        ]}),
    )
    .await;
    let checkout = ok(
        &api,
        "GET",
        "/api/v1/blueprints/service/entities/checkout",
        Value::Null,
    )
    .await;
    assert_eq!(checkout["properties"]["ownerSlack"], "#pay");
    assert_eq!(checkout["properties"]["label"], "checkout@1");
    let team = ok(
        &api,
        "GET",
        "/api/v1/blueprints/team/entities/payments",
        Value::Null,
    )
    .await;
    assert_eq!(team["properties"]["services"], 2);
    assert_eq!(team["properties"]["rustServices"], 1);
    assert_eq!(team["properties"]["totalCost"], 15.5);

    // The team's channel changes: the services' mirror follows.
    ok(
        &api,
        "PATCH",
        "/api/v1/blueprints/team/entities/payments",
        json!({"properties": {"slack": "#payments"}}),
    )
    .await;
    let checkout = ok(
        &api,
        "GET",
        "/api/v1/blueprints/service/entities/checkout",
        Value::Null,
    )
    .await;
    assert_eq!(checkout["properties"]["ownerSlack"], "#payments");

    // A service moves to another team: both teams' aggregations follow.
    ok(
        &api,
        "PATCH",
        "/api/v1/blueprints/service/entities/checkout",
        json!({"team": ["search"], "relations": {"owner": "search"}}),
    )
    .await;
    let payments = ok(
        &api,
        "GET",
        "/api/v1/blueprints/team/entities/payments",
        Value::Null,
    )
    .await;
    let search = ok(
        &api,
        "GET",
        "/api/v1/blueprints/team/entities/search",
        Value::Null,
    )
    .await;
    assert_eq!(payments["properties"]["services"], 1);
    assert_eq!(payments["properties"]["totalCost"], 5.5);
    assert_eq!(search["properties"]["rustServices"], 1);
}

#[tokio::test]
async fn a_calculation_that_never_ends_is_stopped_and_reported() {
    let api = api().await;
    ok(
        &api,
        "POST",
        "/api/v1/blueprints",
        json!({
            "identifier": "thing",
            "calculationProperties": {"forever": {"calculation": "def f: f; f", "type": "string"}}
        }),
    )
    .await;
    let (status, body) = call(
        &api,
        "POST",
        "/api/v1/blueprints/thing/entities",
        json!({"identifier": "a"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["properties"]["forever"], Value::Null);
    let errors = body["computedErrors"].as_array().unwrap();
    assert_eq!(errors[0]["path"], "calculationProperties.forever");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("stopped"),
        "{body}"
    );
}

#[tokio::test]
async fn relations_must_exist_unless_the_blueprint_allows_dangling_ones() {
    let api = api().await;
    model(&api).await;
    let mut s = service("checkout", "payments", "rust", 1, 1.0);
    s["relations"]["dependsOn"] = json!(["ledger"]);
    let (status, body) = call(&api, "POST", "/api/v1/blueprints/service/entities", s).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["details"]["problems"][0]["path"],
        "relations.dependsOn[0]"
    );

    // In one bulk request, an entity may point at another of the same request.
    let mut a = service("checkout", "payments", "rust", 1, 1.0);
    a["relations"]["dependsOn"] = json!(["ledger"]);
    let b = service("ledger", "payments", "go", 1, 1.0);
    let body = ok(
        &api,
        "POST",
        "/api/v1/entities/bulk",
        json!({"entities": [a, b]}),
    )
    .await;
    assert_eq!(body["failed"], 0, "{body}");

    // Deleting an entity others point at is refused, then allowed with its dependents.
    let (status, body) = call(
        &api,
        "DELETE",
        "/api/v1/blueprints/service/entities/ledger",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("service/checkout"));
    let body = ok(
        &api,
        "DELETE",
        "/api/v1/blueprints/service/entities/ledger?deleteDependents=true",
        Value::Null,
    )
    .await;
    assert_eq!(
        body["deleted"],
        json!(["service/ledger", "service/checkout"])
    );

    // A blueprint that allows dangling relations keeps them and shows them.
    ok(
        &api,
        "POST",
        "/api/v1/blueprints",
        json!({"identifier": "doc", "relations": {"about": {"target": "service"}}, "allowDanglingRelations": true}),
    )
    .await;
    let body = ok(
        &api,
        "POST",
        "/api/v1/blueprints/doc/entities",
        json!({"identifier": "runbook", "relations": {"about": "ghost"}}),
    )
    .await;
    assert_eq!(body["dangling"], json!({"about": ["ghost"]}));
}

#[tokio::test]
async fn a_property_type_cannot_change_and_a_blueprint_with_entities_needs_a_flag_to_go() {
    let api = api().await;
    model(&api).await;
    let mut changed = service_bp();
    changed["schema"]["properties"]["tier"]["type"] = json!("string");
    let (status, body) = call(&api, "PUT", "/api/v1/blueprints/service", changed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let change = body["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "schema.properties.tier.type")
        .unwrap_or_else(|| panic!("{body}"));
    assert!(change["message"]
        .as_str()
        .unwrap()
        .contains("cannot change"));

    // Another blueprint aggregates over services: refused while it does.
    let (status, body) = call(&api, "DELETE", "/api/v1/blueprints/service", Value::Null).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("team"), "{body}");

    ok(
        &api,
        "POST",
        "/api/v1/blueprints",
        json!({"identifier": "note"}),
    )
    .await;
    ok(
        &api,
        "POST",
        "/api/v1/blueprints/note/entities",
        json!({"identifier": "n1"}),
    )
    .await;
    let (status, body) = call(&api, "DELETE", "/api/v1/blueprints/note", Value::Null).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("deleteEntities"));
    let (status, _) = call(
        &api,
        "DELETE",
        "/api/v1/blueprints/note?deleteEntities=true",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&api, "GET", "/api/v1/blueprints/note", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &api,
        "GET",
        "/api/v1/blueprints/note/entities/n1",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn one_bad_entity_does_not_sink_a_bulk_request_and_a_huge_one_is_refused() {
    let api = api().await;
    model(&api).await;
    let entities: Vec<Value> = (0..500)
        .map(|i| {
            let language = if i == 250 { "cobol" } else { "rust" };
            service(&format!("svc-{i}"), "payments", language, 1, 1.0)
        })
        .collect();
    let body = ok(
        &api,
        "POST",
        "/api/v1/entities/bulk",
        json!({"entities": entities}),
    )
    .await;
    assert_eq!(body["failed"], 1);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 500);
    assert_eq!(results[250]["status"], "error");
    assert_eq!(results[250]["problems"][0]["path"], "properties.language");
    assert_eq!(results[0]["status"], "created");
    // The same again changes nothing.
    let entities: Vec<Value> = (0..3)
        .map(|i| service(&format!("svc-{i}"), "payments", "rust", 1, 1.0))
        .collect();
    let body = ok(
        &api,
        "POST",
        "/api/v1/entities/bulk",
        json!({"entities": entities}),
    )
    .await;
    assert_eq!(body["results"][0]["status"], "unchanged");

    let huge = format!(
        "{{\"entities\": [{{\"identifier\": \"x\", \"blueprint\": \"service\", \"title\": \"{}\"}}]}}",
        "x".repeat(50 * 1024 * 1024)
    );
    let (status, body) = api
        .as_admin_with("POST", "/api/v1/entities/bulk", &huge, JSON)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[tokio::test]
async fn queries_filter_sort_page_search_and_count_facets() {
    let api = api().await;
    model(&api).await;
    let entities: Vec<Value> = (0..30i32)
        .map(|i| {
            let (owner, language) = match i % 3 {
                0 => ("payments", "rust"),
                1 => ("search", "go"),
                _ => ("payments", "python"),
            };
            service(
                &format!("svc-{i:02}"),
                owner,
                language,
                i64::from(i % 3 + 1),
                f64::from(i),
            )
        })
        .collect();
    ok(
        &api,
        "POST",
        "/api/v1/entities/bulk",
        json!({"entities": entities}),
    )
    .await;

    let q = "language = rust and owner.slack = \"#pay\"";
    let path = format!(
        "/api/v1/blueprints/service/entities?q={}&sort=-cost&limit=4&facets=tier",
        urlencode(q)
    );
    let page = ok(&api, "GET", &path, Value::Null).await;
    assert_eq!(page["total"], 10, "{page}");
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["svc-27", "svc-24", "svc-21", "svc-18"]);
    assert_eq!(page["facets"]["tier"]["1"], 10);
    // The next page starts after the last.
    let next = page["next"].as_str().unwrap();
    let page2 = ok(&api, "GET", &format!("{path}&after={next}"), Value::Null).await;
    assert_eq!(page2["items"][0]["identifier"], "svc-15");

    // The JSON rule form across the catalog, and full text.
    let body = ok(
        &api,
        "POST",
        "/api/v1/entities/search",
        json!({"query": {"combinator": "and", "rules": [
            {"property": "blueprint", "operator": "=", "value": "service"},
            {"property": "cost", "operator": "between", "value": [10, 12]}
        ]}, "facets": ["language"]}),
    )
    .await;
    assert_eq!(body["total"], 3);
    assert_eq!(
        body["facets"]["language"],
        json!({"go": 1, "python": 1, "rust": 1})
    );
    let body = ok(
        &api,
        "POST",
        "/api/v1/entities/search",
        json!({"search": "SVC-07 service"}),
    )
    .await;
    assert_eq!(body["total"], 1);

    let (status, body) = call(
        &api,
        "GET",
        &format!(
            "/api/v1/blueprints/service/entities?q={}",
            urlencode("tier ==")
        ),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["path"], "q");
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn history_keeps_every_version_and_a_revert_is_a_new_audited_one() {
    let api = api().await;
    model(&api).await;
    let path = "/api/v1/blueprints/service/entities/checkout";
    ok(
        &api,
        "PUT",
        path,
        service("checkout", "payments", "rust", 1, 1.0),
    )
    .await;
    ok(&api, "PATCH", path, json!({"properties": {"tier": 2}})).await;
    ok(
        &api,
        "PATCH",
        path,
        json!({"properties": {"tier": 3, "cost": null}}),
    )
    .await;

    let history = ok(&api, "GET", &format!("{path}/history"), Value::Null).await;
    let versions: Vec<i64> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(history["items"][2]["record"]["properties"]["tier"], 1);

    let diff = ok(
        &api,
        "GET",
        &format!("{path}/diff?from=1&to=3"),
        Value::Null,
    )
    .await;
    let changes = diff["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{diff}");
    assert_eq!(changes[0]["path"], "properties.tier");
    assert_eq!(changes[0]["before"], 1);
    assert_eq!(changes[0]["after"], 3);
    assert_eq!(changes[1]["path"], "properties.cost");
    assert!(changes[1].get("after").is_none());

    let now = ok(
        &api,
        "POST",
        &format!("{path}/revert"),
        json!({"version": 1}),
    )
    .await;
    assert_eq!(now["version"], 4);
    assert_eq!(now["properties"]["tier"], 1);
    assert_eq!(now["properties"]["cost"], 1.0);
    let (_, audit) = call(
        &api,
        "GET",
        "/api/v1/audit?resource=entity/service/checkout&action=entity.revert",
        Value::Null,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit["items"][0]["after"]["version"], 4);
}

#[tokio::test]
async fn a_locked_property_is_changed_by_programs_but_not_from_the_web() {
    let api = api().await;
    model(&api).await;
    let path = "/api/v1/blueprints/service/entities/checkout";
    let mut s = service("checkout", "payments", "rust", 1, 1.0);
    s["properties"]["oncall"] = json!("pager@example.com");
    ok(&api, "PUT", path, s).await;

    // An integration sets it: allowed, and the source is remembered per value.
    let (status, body) = api
        .as_admin_with(
            "PATCH",
            path,
            &json!({"properties": {"oncall": "sre@example.com"}}).to_string(),
            &[
                ("content-type", "application/json"),
                ("x-gantry-source", "integration:pagerduty"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["sources"]["properties.oncall"],
        "integration:pagerduty"
    );
    assert_eq!(body["sources"]["properties.language"], "api");

    // A signed-in browser may change other properties, not the locked one.
    let (cookie, csrf) = sign_in(&api).await;
    let web = |body: Value| {
        Request::patch(path)
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, body) = send(&api, web(json!({"properties": {"tier": 2}}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sources"]["properties.tier"], "web");
    let (status, body) = send(
        &api,
        web(json!({"properties": {"oncall": "me@example.com"}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["path"], "properties.oncall");
    assert!(body["message"].as_str().unwrap().contains("locked"));
}

async fn send(api: &Api, request: Request<Body>) -> (StatusCode, Value) {
    let response = api.send(request).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Signs in an operator with a password: (the cookie pair, the CSRF token).
async fn sign_in(api: &Api) -> (String, String) {
    let password = "correct horse battery staple";
    ok(
        api,
        "POST",
        "/api/v1/users",
        json!({"email": "dev@example.com", "role": "operator", "password": password}),
    )
    .await;
    let response = api
        .send(
            Request::post("/auth/login")
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"email": "dev@example.com", "password": password}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gantry_session="))
        .expect("a session cookie");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    (
        cookie.split(';').next().unwrap().to_owned(),
        body["csrfToken"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn apply_plans_all_or_nothing_prunes_its_own_and_is_idempotent() {
    let api = api().await;
    let docs = json!([
        {"kind": "Blueprint", "identifier": "team"},
        {"kind": "Blueprint", "identifier": "service", "schema": {"properties": {"tier": {"type": "integer"}}},
         "relations": {"owner": {"target": "team"}}},
        {"kind": "Entity", "blueprint": "team", "identifier": "payments"},
        {"kind": "Entity", "blueprint": "service", "identifier": "checkout", "properties": {"tier": 1},
         "relations": {"owner": "payments"}},
        {"kind": "Entity", "blueprint": "service", "identifier": "ledger", "properties": {"tier": 2}},
    ]);
    let apply = |docs: Value, dry: bool, prune: bool| json!({"source": "platform-repo", "documents": docs, "dryRun": dry, "prune": prune});
    let body = ok(
        &api,
        "POST",
        "/api/v1/catalog/apply",
        apply(docs.clone(), true, false),
    )
    .await;
    assert_eq!(body["created"], 5, "{body}");
    let (status, _) = call(&api, "GET", "/api/v1/blueprints/team", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a dry run writes nothing");

    let body = ok(
        &api,
        "POST",
        "/api/v1/catalog/apply",
        apply(docs.clone(), false, false),
    )
    .await;
    assert_eq!(body["created"], 5);
    let body = ok(
        &api,
        "POST",
        "/api/v1/catalog/apply",
        apply(docs.clone(), false, false),
    )
    .await;
    assert_eq!(
        (body["created"].as_i64(), body["unchanged"].as_i64()),
        (Some(0), Some(5))
    );

    // Problems in two documents: both reported, nothing written.
    let mut bad = docs.clone();
    bad[3]["properties"]["tier"] = json!("high");
    bad[4]["relations"] = json!({"owner": "nobody"});
    bad[2]["title"] = json!("Payments team");
    let (status, body) = call(
        &api,
        "POST",
        "/api/v1/catalog/apply",
        apply(bad, false, false),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let problems = body["details"]["problems"].as_array().unwrap();
    let at: Vec<(i64, &str)> = problems
        .iter()
        .map(|p| (p["document"].as_i64().unwrap(), p["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        at,
        [(3, "properties.tier"), (4, "relations.owner")],
        "{body}"
    );
    let team = ok(
        &api,
        "GET",
        "/api/v1/blueprints/team/entities/payments",
        Value::Null,
    )
    .await;
    assert_eq!(
        team["title"], "payments",
        "nothing of the bad apply was written"
    );

    // An entity made through the API is not this source's to prune.
    ok(
        &api,
        "POST",
        "/api/v1/blueprints/team/entities",
        json!({"identifier": "adhoc"}),
    )
    .await;
    let fewer = json!([docs[0], docs[1], docs[2], docs[3]]);
    let body = ok(
        &api,
        "POST",
        "/api/v1/catalog/apply",
        apply(fewer.clone(), true, true),
    )
    .await;
    assert_eq!(body["deleted"], 1, "{body}");
    let body = ok(
        &api,
        "POST",
        "/api/v1/catalog/apply",
        apply(fewer, false, true),
    )
    .await;
    let deleted: Vec<&str> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "deleted")
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["service/ledger"]);
    let (status, _) = call(
        &api,
        "GET",
        "/api/v1/blueprints/team/entities/adhoc",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Writes made at the same time commit in groups: each one answered, none lost or doubled,
/// each record's versions counted one by one, each change audited as its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_commit_together_and_each_counts() {
    let api = api().await;
    ok(
        &api,
        "POST",
        "/api/v1/blueprints",
        json!({"identifier": "box", "schema": {"properties": {"n": {"type": "integer"}}}}),
    )
    .await;
    for b in 0..8 {
        ok(
            &api,
            "POST",
            "/api/v1/blueprints/box/entities",
            json!({"identifier": format!("b{b}"), "properties": {"n": -1}}),
        )
        .await;
    }
    // 8 writers per box, 64 at once: same-record writes wait for each other, the others
    // share transactions.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let app = api.app();
            let key = api.key.clone();
            tokio::spawn(async move {
                let req = axum::http::Request::builder()
                    .method("PATCH")
                    .uri(format!("/api/v1/blueprints/box/entities/b{}", i % 8))
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json")
                    .body(Body::from(json!({"properties": {"n": i}}).to_string()))
                    .unwrap();
                let res = tower::ServiceExt::oneshot(app, req).await.unwrap();
                res.status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    for b in 0..8 {
        let e = ok(
            &api,
            "GET",
            &format!("/api/v1/blueprints/box/entities/b{b}"),
            Value::Null,
        )
        .await;
        assert_eq!(e["version"], 9, "created, then 8 updates: {e}");
        let n = e["properties"]["n"].as_i64().unwrap();
        assert_eq!(n % 8, b, "the last write to b{b} stands: {e}");
    }
    let (_, audit) = api
        .as_admin("GET", "/api/v1/audit?action=entity.update&limit=100", "")
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 64, "{audit}");
}
