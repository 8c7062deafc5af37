//! `GET /spec`: the whole spec, the four query languages, and the unresolvable envelope.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::backend::{BUILD_TOKEN, DEPLOY_TOKEN};
use super::client::Client;

/// Percent-encodes a query parameter value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn query(c: &Client, lang: Option<&str>, q: &str) -> super::client::Answer {
    let uri = match lang {
        Some(l) => format!("/spec?q={}&lang={l}", enc(q)),
        None => format!("/spec?q={}", enc(q)),
    };
    c.get(&uri, DEPLOY_TOKEN).await
}

/// The envelope of a 200 answer: (value, unresolvable, complete).
async fn ok(c: &Client, lang: Option<&str>, q: &str) -> (Value, Value, bool) {
    let a = query(c, lang, q).await;
    let body = a.json();
    assert_eq!(a.status, StatusCode::OK, "{q}: {body}");
    let complete = body["complete"]
        .as_bool()
        .unwrap_or_else(|| panic!("{q}: no `complete` in {body}"));
    (
        body["value"].clone(),
        body["unresolvable"].clone(),
        complete,
    )
}

async fn value(c: &Client, lang: Option<&str>, q: &str) -> Value {
    let (v, u, complete) = ok(c, lang, q).await;
    assert!(complete, "{q}: incomplete, waiting for {u}");
    assert_eq!(u, json!({}), "{q}");
    v
}

#[tokio::test]
async fn whole_spec_lists_everything_missing() {
    let c = Client::new();
    let a = c.get("/spec", DEPLOY_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK);
    let body = a.json();
    assert_eq!(body["complete"], false);
    assert_eq!(body["value"]["name"], "gantry");
    assert_eq!(body["value"]["aws"]["connection"]["accessKeyID"], "AKIA");
    assert_eq!(body["value"]["token"], "s3cr3t");
    // Unresolved parts keep their canonical form.
    assert_eq!(body["value"]["image"], "${outputs.build.image}");
    assert_eq!(
        body["unresolvable"],
        json!({
            "connections": [{"type": "gcp", "name": "nope"}],
            "outputs": [
                {"from": "build", "name": "image"},
                {"from": "build", "name": "port"},
            ],
        })
    );
    // An empty `q` is the whole spec too, as in Relay.
    let again = c.get("/spec?q=", DEPLOY_TOKEN).await.json();
    assert_eq!(again, body);
}

#[tokio::test]
async fn path_language() {
    let c = Client::new();
    assert_eq!(value(&c, None, "aws.connection.accessKeyID").await, "AKIA");
    assert_eq!(
        value(&c, Some("path"), "aws.connection.accessKeyID").await,
        "AKIA"
    );
    assert_eq!(value(&c, None, "foo[0]").await, "a");
    assert_eq!(value(&c, None, "foo.2").await, "c");
    assert_eq!(value(&c, None, "'a-b'.c").await, "dashed");
    assert_eq!(value(&c, None, "$.count").await, 3);
    assert_eq!(value(&c, None, "ratio").await, 0.5);
    assert_eq!(
        value(&c, None, "servers[0]").await,
        json!({"host": "a.example", "port": 22})
    );
    // What relay-sdk's `Dynamic` sends for `D.aws.connection.accessKeyID`.
    assert_eq!(
        value(&c, None, r#"aws["connection"]["accessKeyID"]"#).await,
        "AKIA"
    );
    // json.dumps escapes non-ASCII; the expression lexer reads `\u` escapes.
    assert_eq!(value(&c, None, r#"aws["regio\u006e"]"#).await, "eu-west-1");
}

#[tokio::test]
async fn a_resolved_part_of_an_incomplete_spec_is_complete() {
    let c = Client::new();
    let (v, u, complete) = ok(&c, None, "aws").await;
    assert!(complete);
    assert_eq!(u, json!({}));
    assert_eq!(v["region"], "eu-west-1");
    // Resolved text that looks like an expression stays text and complete.
    assert_eq!(value(&c, None, "literal").await, "${not an expression}");
}

#[tokio::test]
async fn unresolvable_envelope_names_only_what_the_query_needs() {
    let c = Client::new();
    let (v, u, complete) = ok(&c, None, "image").await;
    assert!(!complete);
    assert_eq!(v, "${outputs.build.image}");
    assert_eq!(u, json!({"outputs": [{"from": "build", "name": "image"}]}));

    // Walking into a value that is not evaluated yet: unresolvable, not "missing key".
    let (v, u, complete) = ok(&c, None, "gcp.connection.serviceAccountKey").await;
    assert!(!complete);
    assert_eq!(v, Value::Null);
    assert_eq!(u, json!({"connections": [{"type": "gcp", "name": "nope"}]}));

    // A list holding one unresolved element.
    let (_, u, complete) = ok(&c, None, "servers").await;
    assert!(!complete);
    assert_eq!(u, json!({"outputs": [{"from": "build", "name": "port"}]}));
}

#[tokio::test]
async fn outputs_set_by_another_step_resolve_the_spec() {
    let c = Client::new();
    let a = c
        .put_json("/outputs/image", BUILD_TOKEN, &json!("registry/app:1"))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(value(&c, None, "image").await, "registry/app:1");
    assert_eq!(
        value(&c, None, "tagged").await,
        "image registry/app:1 in gantry"
    );
}

#[tokio::test]
async fn a_missing_key_is_422() {
    let c = Client::new();
    for (lang, q) in [
        (None, "nope"),
        (None, "aws.nope"),
        (None, "foo[7]"),
        (Some("jsonpath"), ".aws.nope"),
        (Some("jsonpath-template"), "{.nope}"),
        (Some("path-template"), "${nope}"),
    ] {
        let body = query(&c, lang, q)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "evaluation_error");
        assert_eq!(body["error"]["section"], "expression", "{q}");
    }
}

#[tokio::test]
async fn path_template_language() {
    let c = Client::new();
    let lang = Some("path-template");
    assert_eq!(
        value(&c, lang, "${name}-${count}x${ratio}").await,
        "gantry-3x0.5"
    );
    // A template that is one expression keeps the value's type.
    assert_eq!(value(&c, lang, "${foo}").await, json!(["a", "b", "c"]));
    assert_eq!(value(&c, lang, "plain text").await, "plain text");
    let (v, u, complete) = ok(&c, lang, "at ${image}").await;
    assert!(!complete);
    assert_eq!(v, Value::Null);
    assert_eq!(u, json!({"outputs": [{"from": "build", "name": "image"}]}));
}

#[tokio::test]
async fn jsonpath_language() {
    let c = Client::new();
    let lang = Some("jsonpath");
    assert_eq!(value(&c, lang, ".aws.region").await, "eu-west-1");
    assert_eq!(value(&c, lang, "{.aws.region}").await, "eu-west-1");
    assert_eq!(value(&c, lang, "$.foo[-1]").await, "c");
    assert_eq!(value(&c, lang, "['a-b']['c']").await, "dashed");
    assert_eq!(value(&c, lang, "{.foo[*]}").await, json!(["a", "b", "c"]));
    assert_eq!(value(&c, lang, ".foo[0:2]").await, json!(["a", "b"]));
    // A wildcard over a partly unresolved list: every match, and what the rest waits for.
    let (v, u, complete) = ok(&c, lang, ".servers[*].port").await;
    assert!(!complete);
    assert_eq!(v, json!([22, "${outputs.build.port}"]));
    assert_eq!(u, json!({"outputs": [{"from": "build", "name": "port"}]}));
    query(&c, lang, ".foo[?(@ == 'a')]")
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "evaluation_error");
}

#[tokio::test]
async fn jsonpath_template_language() {
    let c = Client::new();
    let lang = Some("jsonpath-template");
    // What `ni get -p '{.aws.region}'` sends.
    assert_eq!(value(&c, lang, "{.aws.region}").await, "eu-west-1");
    assert_eq!(value(&c, lang, "{.count}").await, "3");
    assert_eq!(
        value(&c, lang, "{.name} has {.count} in {.aws.region}").await,
        "gantry has 3 in eu-west-1"
    );
    assert_eq!(value(&c, lang, "{.foo[*]}").await, "a b c");
    assert_eq!(value(&c, lang, r#"{.foo[0]}{"\n"}"#).await, "a\n");
    assert_eq!(
        value(&c, lang, "{.servers[0]}").await,
        r#"{"host":"a.example","port":22}"#
    );
    let (v, u, complete) = ok(&c, lang, "{.image}").await;
    assert!(!complete);
    assert_eq!(v, Value::Null);
    assert_eq!(u, json!({"outputs": [{"from": "build", "name": "image"}]}));
}

#[tokio::test]
async fn unknown_language_is_422() {
    let c = Client::new();
    let body = query(&c, Some("jq"), ".a").await.assert_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unsupported_language_error",
    );
    assert_eq!(body["error"]["section"], "expression");
}

#[tokio::test]
async fn a_query_computes_nothing() {
    let c = Client::new();
    for q in [
        "count + 1",
        "concat(name, 'x')",
        "name |> x",
        "foo[count]",
        "aws[",
    ] {
        query(&c, None, q)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "evaluation_error");
    }
}

#[tokio::test]
async fn evaluation_errors_are_422_where_the_query_reaches_them() {
    let c = Client::new();
    // `build`'s spec has one broken field and one fine one.
    let a = c.get("/spec?q=fine", BUILD_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["value"], 1);
    let body = c
        .get("/spec?q=broken", BUILD_TOKEN)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "evaluation_error");
    assert_eq!(body["error"]["path"], "broken");
    c.get("/spec", BUILD_TOKEN)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "evaluation_error");
}
