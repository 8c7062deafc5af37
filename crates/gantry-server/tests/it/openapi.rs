//! The OpenAPI document against the router it describes: every documented operation is
//! routed, no other method is, real responses fit their documented status and schema, and the
//! whole document is a reviewed snapshot.

use axum::http::StatusCode;
use gantry_server::api::openapi::document;
use serde_json::{json, Value};

use super::api::{api, finished, Api, HELLO, PIPELINE};

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "PATCH"];

/// A request path for a documented path, with a plausible value for each parameter.
fn concrete(template: &str) -> String {
    template
        .replace("{version}", "1")
        .replace("{type}", "generic")
        .replace(['{', '}'], "")
}

fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method.to_lowercase()) {
                out.push((path.as_str(), method, op));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_served_without_a_key() {
    let api = api().await;
    let (status, body) = api.call("GET", "/api/v1/openapi.json", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, document());
    assert_eq!(body["openapi"], "3.1.0");
    // Only the document is public.
    let (status, _) = api.call("GET", "/api/v1/workflows", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The route table builds both the router and the document; this checks that what the
/// document says is what the router does, method by method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    let api = api().await;
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 15, "{:?}", paths.keys());
    for (template, item) in paths {
        let path = concrete(template);
        for method in METHODS {
            let (status, body) = api.as_admin(method, &path, "").await;
            if item.get(method.to_lowercase()).is_some() {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert_ne!(body["message"], "no such route", "{method} {path}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is routed but not in the document"
                );
            }
        }
    }
    // And a path that is not in the document is not routed.
    let (status, body) = api.as_admin("GET", "/api/v1/runs/x/nowhere", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "no such route");
}

#[test]
fn every_operation_is_named_tagged_and_declares_its_parameters_and_errors() {
    let doc = document();
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_owned()), "{id} twice");
        assert!(op["tags"][0].is_string(), "{method} {path} has no tag");
        assert!(op["summary"].is_string(), "{method} {path} has no summary");

        // Every `{name}` of the path is a declared path parameter, and no other.
        let in_path: std::collections::BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let declared: std::collections::BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(in_path, declared, "{method} {path}");

        // Errors are `{code, message, path}`; every route but the document needs the key.
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let response = resolve(&doc, response);
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
        if path == "/api/v1/openapi.json" {
            assert_eq!(op["security"], json!([{}]));
            assert!(!responses.contains_key("401"));
        } else {
            assert!(op.get("security").is_none(), "{method} {path}");
            assert!(responses.contains_key("401"), "{method} {path}");
        }
    }
    assert_eq!(doc["security"], json!([{"api_key": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], json!(["code", "message", "path"]));
}

#[test]
fn the_document_snapshot() {
    let mut doc = document();
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    // A release changes the version, not the API.
    doc["info"]["version"] = json!("[version]");
    let pretty = serde_json::to_string_pretty(&doc).expect("JSON");
    insta::assert_snapshot!("openapi.json", pretty);
}

/// Calls a documented operation and checks that its answer has a documented status and fits
/// the documented schema.
async fn checked(
    api: &Api,
    doc: &Value,
    method: &str,
    template: &str,
    path: &str,
    body: &str,
) -> (StatusCode, Value) {
    let (status, value) = api.as_admin(method, path, body).await;
    let op = &doc["paths"][template][method.to_lowercase()];
    assert!(op.is_object(), "{method} {template} is not documented");
    let response = resolve(doc, &op["responses"][status.as_str()]);
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which is not documented: {value}"
    );
    match response["content"]["application/json"]["schema"].as_object() {
        Some(_) => {
            let schema = &response["content"]["application/json"]["schema"];
            if let Some(problem) = mismatch(doc, schema, &value, "body") {
                panic!("{method} {path} ({status}): {problem}\n{value}");
            }
        }
        None => assert!(
            value.is_null(),
            "{method} {path} ({status}) has an undocumented body: {value}"
        ),
    }
    (status, value)
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => v,
    }
}

/// The first way `value` does not fit `schema`, for the subset of JSON Schema the document
/// uses: `$ref`, `oneOf`, `type`, `enum`, `properties`/`required` (no other keys allowed) and
/// `items`.
fn mismatch(doc: &Value, schema: &Value, value: &Value, at: &str) -> Option<String> {
    let schema = resolve(doc, schema);
    if let Some(alternatives) = schema["oneOf"].as_array() {
        return if alternatives
            .iter()
            .any(|s| mismatch(doc, s, value, at).is_none())
        {
            None
        } else {
            Some(format!("{at} fits no alternative of {schema}"))
        };
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = |t: &Value| t == kind || (t == "number" && kind == "integer");
    let type_ok = match &schema["type"] {
        Value::Null => true,
        Value::Array(ts) => ts.iter().any(fits),
        t => fits(t),
    };
    if !type_ok {
        return Some(format!("{at} is {kind}, not {}", schema["type"]));
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Some(format!("{at} is {value}, not one of {allowed:?}"));
        }
    }
    if let (Some(properties), Value::Object(fields)) = (schema["properties"].as_object(), value) {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                return Some(format!("{at}.{name} is required but missing"));
            }
        }
        for (name, field) in fields {
            let Some(property) = properties.get(name) else {
                return Some(format!("{at}.{name} is not in the schema"));
            };
            if let Some(problem) = mismatch(doc, property, field, &format!("{at}.{name}")) {
                return Some(problem);
            }
        }
    }
    if let (Some(items), Value::Array(values)) = (schema.get("items"), value) {
        for (i, item) in values.iter().enumerate() {
            if let Some(problem) = mismatch(doc, items, item, &format!("{at}[{i}]")) {
                return Some(problem);
            }
        }
    }
    None
}

#[test]
fn the_shape_check_finds_a_wrong_body() {
    let doc = document();
    let run_started = json!({"$ref": "#/components/schemas/RunStarted"});
    let good = json!({"id": "r1", "workflow": "w", "created": true});
    assert_eq!(mismatch(&doc, &run_started, &good, "body"), None);
    for (bad, problem) in [
        (
            json!({"id": "r1", "workflow": "w"}),
            "body.created is required",
        ),
        (
            json!({"id": "r1", "workflow": "w", "created": true, "extra": 1}),
            "body.extra is not in the schema",
        ),
        (
            json!({"id": 1, "workflow": "w", "created": true}),
            "body.id is integer",
        ),
    ] {
        let found = mismatch(&doc, &run_started, &bad, "body").unwrap_or_default();
        assert!(found.contains(problem), "{bad}: {found}");
    }
}

/// Real answers of every kind of route fit the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_fit_the_document() {
    let api = api().await;
    let doc = document();
    let d = &doc;
    let a = &api;

    let wf = "/api/v1/workflows/{name}";
    checked(a, d, "PUT", wf, "/api/v1/workflows/pipeline", PIPELINE).await;
    let (status, _) = checked(a, d, "PUT", wf, "/api/v1/workflows/hello", HELLO).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = checked(a, d, "PUT", wf, "/api/v1/workflows/hello", HELLO).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = checked(a, d, "PUT", wf, "/api/v1/workflows/bad", "steps: 3\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["details"]["diagnostics"][0]["line"].is_number(),
        "{body}"
    );
    checked(a, d, "GET", wf, "/api/v1/workflows/hello", "").await;
    let (status, _) = checked(a, d, "GET", wf, "/api/v1/workflows/nope", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    checked(a, d, "GET", "/api/v1/workflows", "/api/v1/workflows", "").await;
    let versions = "/api/v1/workflows/{name}/versions";
    checked(
        a,
        d,
        "GET",
        versions,
        "/api/v1/workflows/hello/versions",
        "",
    )
    .await;
    let version = "/api/v1/workflows/{name}/versions/{version}";
    checked(
        a,
        d,
        "GET",
        version,
        "/api/v1/workflows/hello/versions/2",
        "",
    )
    .await;
    let (status, _) = checked(
        a,
        d,
        "GET",
        version,
        "/api/v1/workflows/hello/versions/9",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let start = "/api/v1/workflows/{name}/runs";
    let (status, body) = checked(
        a,
        d,
        "POST",
        start,
        "/api/v1/workflows/pipeline/runs",
        r#"{"parameters": {"who": "shape"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    finished(a, &id).await;
    checked(
        a,
        d,
        "GET",
        "/api/v1/runs/{id}",
        &format!("/api/v1/runs/{id}"),
        "",
    )
    .await;
    checked(a, d, "GET", "/api/v1/runs", "/api/v1/runs", "").await;
    let (status, _) = checked(a, d, "GET", "/api/v1/runs", "/api/v1/runs?status=odd", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let logs = "/api/v1/runs/{id}/logs";
    let (_, body) = checked(a, d, "GET", logs, &format!("/api/v1/runs/{id}/logs"), "").await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
    let rerun = "/api/v1/runs/{id}/rerun";
    let (status, body) =
        checked(a, d, "POST", rerun, &format!("/api/v1/runs/{id}/rerun"), "").await;
    assert_eq!(status, StatusCode::CREATED);
    finished(a, body["id"].as_str().unwrap_or_default()).await;
    let (status, _) = checked(a, d, "POST", rerun, "/api/v1/runs/nope/rerun", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let cancel = "/api/v1/runs/{id}/cancel";
    let (status, _) = checked(
        a,
        d,
        "POST",
        cancel,
        &format!("/api/v1/runs/{id}/cancel"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let approve = "/api/v1/runs/{id}/steps/{step}/approve";
    let path = format!("/api/v1/runs/{id}/steps/greet/approve");
    let (status, _) = checked(a, d, "POST", approve, &path, "").await;
    assert_eq!(status, StatusCode::CONFLICT);

    let secret = "/api/v1/workflows/{name}/secrets/{secret}";
    let path = "/api/v1/workflows/hello/secrets/token";
    let (status, _) = checked(a, d, "PUT", secret, path, "s3cret").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = checked(
        a,
        d,
        "GET",
        "/api/v1/workflows/{name}/secrets",
        "/api/v1/workflows/hello/secrets",
        "",
    )
    .await;
    assert_eq!(body["items"], json!(["token"]));
    checked(a, d, "DELETE", secret, path, "").await;
    let (status, _) = checked(a, d, "DELETE", secret, path, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let connection = "/api/v1/connections/{type}/{name}";
    let path = "/api/v1/connections/token/ci";
    let (status, _) = checked(a, d, "PUT", connection, path, r#"{"token": "t"}"#).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = checked(a, d, "PUT", connection, path, r#"{"token": 1}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, body) = checked(
        a,
        d,
        "GET",
        "/api/v1/connections",
        "/api/v1/connections",
        "",
    )
    .await;
    assert_eq!(body["items"], json!([{"type": "token", "name": "ci"}]));
    checked(a, d, "DELETE", connection, path, "").await;

    let (status, _) = checked(a, d, "DELETE", wf, "/api/v1/workflows/hello", "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
