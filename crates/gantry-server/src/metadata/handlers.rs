//! One function per route: parse the request, ask the backend, shape Relay's answer.
//!
//! Request and response bodies are plain serde types or `serde_json::Value`s built here, so
//! the wire format is visible in one file. Each handler authenticates first (the
//! [`Authenticated`] extractor comes before any other), so an unauthenticated request learns
//! nothing about routes or bodies beyond a 401.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use gantry_engine::metadata::CallerKind;
use gantry_workflow::expr::{Unresolved, WhenOutcome};

use super::auth::Authenticated;
use super::error::ApiError;
use super::query::{self, Answer, Lang};
use super::{logs, Shared, BODY_LIMIT};

type Result<T, E = ApiError> = std::result::Result<T, E>;

// ----- extractors whose failures answer in Relay's error shape -----

/// The raw request body, at most [`BODY_LIMIT`] bytes.
pub(crate) struct Body(Bytes);

impl FromRequest<Shared> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Shared) -> Result<Self> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large(BODY_LIMIT)
                } else {
                    ApiError::malformed("The request body could not be read.")
                }
            })
    }
}

/// Path parameters.
pub(crate) struct Segments<T>(T);

impl<T: DeserializeOwned + Send> FromRequestParts<Shared> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Segments(t))
            .map_err(|_| {
                ApiError::malformed("The request path is not valid (bad percent-encoding?).")
            })
    }
}

/// Query parameters.
pub(crate) struct Params<T>(T);

impl<T: DeserializeOwned + Send> FromRequestParts<Shared> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Params(t))
            .map_err(|_| ApiError::malformed("The query string is not valid."))
    }
}

// ----- body helpers -----

/// The media type of the body without parameters, lowercased; `""` when absent.
fn media_type(headers: &HeaderMap) -> Result<String> {
    match headers.get(CONTENT_TYPE) {
        None => Ok(String::new()),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| ApiError::unknown_media_type("(not text)"))?;
            let essence = v.split(';').next().unwrap_or("").trim();
            Ok(essence.to_ascii_lowercase())
        }
    }
}

fn parse_json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| {
        // Only the position: serde's message could quote the body.
        ApiError::malformed(format!(
            "The request body is not valid JSON (line {}, column {}).",
            e.line(),
            e.column()
        ))
    })
}

fn json_object(body: &[u8], what: &str) -> Result<Map<String, Value>> {
    match parse_json(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::malformed(format!(
            "The request body must be a JSON object ({what})."
        ))),
    }
}

/// A JSON body or raw text, by media type, as Relay's `PUT /outputs/{name}` read it.
fn json_or_text(headers: &HeaderMap, body: &[u8]) -> Result<Value> {
    match media_type(headers)?.as_str() {
        "application/json" => parse_json(body),
        "text/plain" | "application/octet-stream" | "" => std::str::from_utf8(body)
            .map(|s| Value::String(s.to_string()))
            .map_err(|_| {
                ApiError::malformed(
                    "The request body is not UTF-8 text; send binary data as JSON \
                     (`{\"$encoding\": \"base64\", \"data\": …}`).",
                )
            }),
        other => Err(ApiError::unknown_media_type(other)),
    }
}

// ----- response shapes -----

/// Relay's result envelope (`GET /spec`, `GET /environment`).
#[derive(Serialize)]
struct ResultEnvelope<'a> {
    value: &'a Value,
    unresolvable: &'a Unresolved,
    complete: bool,
}

fn envelope(answer: &Answer) -> Response {
    Json(ResultEnvelope {
        value: &answer.value,
        unresolvable: &answer.unresolved,
        complete: answer.unresolved.is_empty(),
    })
    .into_response()
}

#[derive(Serialize)]
struct ConditionsEnvelope {
    resolved: bool,
    success: bool,
    message: String,
}

#[derive(Serialize)]
struct OutputEnvelope<'a> {
    task_name: &'a str,
    key: &'a str,
    value: &'a Value,
    metadata: OutputMetadata,
}

#[derive(Serialize, Deserialize)]
struct OutputMetadata {
    #[serde(default)]
    sensitive: bool,
}

#[derive(Serialize)]
struct KeyValue<'a, V: Serialize> {
    key: &'a str,
    value: V,
}

#[derive(Serialize)]
struct WorkflowRunEnvelope<'a> {
    workflow_run: WorkflowRun<'a>,
}

/// Always all three fields: `relay-sdk` builds `Run(**workflow_run)`, which fails on a missing
/// or an extra key (Relay itself omitted an empty `app_url`).
#[derive(Serialize)]
struct WorkflowRun<'a> {
    name: &'a str,
    run_number: u64,
    app_url: &'a str,
}

fn created() -> Response {
    StatusCode::CREATED.into_response()
}

// ----- spec, environment, conditions -----

#[derive(Deserialize)]
pub(crate) struct SpecQuery {
    q: Option<String>,
    lang: Option<String>,
}

pub(crate) async fn get_spec(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Params(params): Params<SpecQuery>,
) -> Result<Response> {
    let lang = Lang::parse(params.lang.as_deref())?;
    let eval = s.backend.spec(&caller)?;
    let answer = match params.q.as_deref() {
        None | Some("") => query::whole(&eval)?,
        Some(q) => query::run(&eval, lang, q)?,
    };
    Ok(envelope(&answer))
}

pub(crate) async fn get_environment(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
) -> Result<Response> {
    let eval = s.backend.environment(&caller)?;
    Ok(envelope(&query::whole(&eval)?))
}

pub(crate) async fn get_environment_variable(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Segments(name): Segments<String>,
) -> Result<Response> {
    let eval = s.backend.environment(&caller)?;
    let answer = query::member(&eval, &name)?.ok_or_else(|| {
        ApiError::not_found("The step's environment has no variable by that name.")
    })?;
    Ok(envelope(&answer))
}

pub(crate) async fn get_conditions(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
) -> Result<Response> {
    let body = match s.backend.conditions(&caller)? {
        WhenOutcome::Satisfied => ConditionsEnvelope {
            resolved: true,
            success: true,
            message: "all checks passed".into(),
        },
        WhenOutcome::NotSatisfied => ConditionsEnvelope {
            resolved: true,
            success: false,
            message: "one or more conditions failed".into(),
        },
        WhenOutcome::Unresolved(u) => ConditionsEnvelope {
            resolved: false,
            success: false,
            message: format!(
                "We could not fully evaluate this resource expression: waiting for {}",
                describe(&u)
            ),
        },
        WhenOutcome::Error(errors) => {
            return Err(errors.first().map_or_else(
                || ApiError::evaluation("The condition could not be evaluated."),
                ApiError::from_eval,
            ))
        }
    };
    Ok(Json(body).into_response())
}

/// What is missing, as the expressions that would name it.
fn describe(u: &Unresolved) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(
        u.parameters
            .iter()
            .map(|p| format!("parameters.{}", p.name)),
    );
    parts.extend(u.secrets.iter().map(|p| format!("secrets.{}", p.name)));
    parts.extend(
        u.connections
            .iter()
            .map(|c| format!("connections.{}.{}", c.r#type, c.name)),
    );
    parts.extend(
        u.outputs
            .iter()
            .map(|o| format!("outputs.{}.{}", o.from, o.name)),
    );
    parts.extend(
        u.statuses
            .iter()
            .map(|s| format!("steps.{}.{}", s.action, s.property)),
    );
    parts.extend(
        u.answers
            .iter()
            .map(|a| format!("answer {} of {}", a.name, a.ask_ref)),
    );
    parts.extend(u.data.iter().map(|d| format!("event.{}", d.query)));
    let parts: Vec<String> = parts
        .into_iter()
        .map(|p| p.trim_end_matches('.').to_string())
        .collect();
    if parts.is_empty() {
        "data that does not exist yet".into()
    } else {
        parts.join(", ")
    }
}

// ----- outputs -----

pub(crate) async fn put_output(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Segments(name): Segments<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response> {
    let value = json_or_text(&headers, &body)?;
    s.backend.set_output(&caller, &name, value)?;
    Ok(created())
}

pub(crate) async fn put_output_metadata(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Segments((name, what)): Segments<(String, String)>,
    Body(body): Body,
) -> Result<Response> {
    if what != "metadata" {
        return Err(ApiError::no_route());
    }
    let metadata: OutputMetadata = serde_json::from_value(Value::Object(json_object(
        &body,
        "`{\"sensitive\": true}`",
    )?))
    .map_err(|_| ApiError::malformed("`sensitive` must be a boolean."))?;
    s.backend
        .set_output_sensitive(&caller, &name, metadata.sensitive)?;
    Ok(created())
}

pub(crate) async fn get_output(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Segments((step, name)): Segments<(String, String)>,
) -> Result<Response> {
    let output = s.backend.output(&caller, &step, &name)?;
    Ok(Json(OutputEnvelope {
        task_name: &step,
        key: &name,
        value: &output.value,
        metadata: OutputMetadata {
            sensitive: output.sensitive,
        },
    })
    .into_response())
}

// ----- secrets, state -----

pub(crate) async fn get_secret(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Segments(name): Segments<String>,
) -> Result<Response> {
    let value = s.backend.secret(&caller, &name)?;
    Ok(Json(KeyValue { key: &name, value }).into_response())
}

pub(crate) async fn get_state(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Segments(name): Segments<String>,
) -> Result<Response> {
    let value = s.backend.state(&caller, &name)?;
    Ok(Json(KeyValue { key: &name, value }).into_response())
}

// ----- events, decorators, workflow runs, status, validate -----

pub(crate) async fn post_event(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Body(body): Body,
) -> Result<Response> {
    if caller.kind == CallerKind::Step {
        return Err(ApiError::forbidden(
            "Only trigger containers may emit events; a step cannot.",
        ));
    }
    let envelope = json_object(&body, "`{\"data\": {…}, \"key\": \"…\"}`")?;
    let delivery = crate::triggers::event_envelope(envelope)
        .map_err(|(_, message)| ApiError::malformed(format!("{message}.")))?;
    let (data, key) = (Value::Object(delivery.data), delivery.key);
    s.backend.emit_event(&caller, data, key).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub(crate) async fn post_decorator(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Segments(name): Segments<String>,
    Body(body): Body,
) -> Result<Response> {
    let values = json_object(&body, "`{\"type\": \"link\", …}`")?;
    if !matches!(values.get("type"), Some(Value::String(_))) {
        return Err(ApiError::malformed("A decorator needs a string `type`."));
    }
    s.backend
        .set_decorator(&caller, &name, Value::Object(values))?;
    Ok(created())
}

pub(crate) async fn post_workflow_run(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Segments(workflow): Segments<String>,
    Body(body): Body,
) -> Result<Response> {
    let mut envelope = json_object(&body, "`{\"parameters\": {\"name\": {\"value\": …}}}`")?;
    let parameters = match envelope.remove("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ApiError::malformed("`parameters` must be a JSON object.")),
    };
    let mut values = Map::new();
    for (name, parameter) in parameters {
        match parameter {
            Value::Object(mut p) => {
                values.insert(name, p.remove("value").unwrap_or(Value::Null));
            }
            _ => {
                return Err(ApiError::malformed(
                    "Each parameter must be an object `{\"value\": …}`.",
                ))
            }
        }
    }
    let run = s.backend.run_workflow(&caller, &workflow, values).await?;
    let body = WorkflowRunEnvelope {
        workflow_run: WorkflowRun {
            name: &run.workflow,
            run_number: run.run_number,
            app_url: &run.app_url,
        },
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(crate) async fn put_status(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Body(body): Body,
) -> Result<Response> {
    let status = json_object(&body, "`{\"process_state\": …, \"when_condition\": …}`")?;
    s.backend.report_status(&caller, Value::Object(status))?;
    Ok(created())
}

/// Relay validated the evaluated spec against the step image's schema here; Gantry has no
/// schemas for images, so every spec passes.
pub(crate) async fn post_validate(Authenticated(_caller): Authenticated) -> Response {
    Json(Value::Null).into_response()
}

// ----- logs -----

pub(crate) async fn post_log(
    Authenticated(_caller): Authenticated,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response> {
    match media_type(&headers)?.as_str() {
        "application/octet-stream" => {
            let fields = logs::fields(&body)
                .ok_or_else(|| ApiError::malformed("The body is not a LogCreateRequest."))?;
            let name = logs::field(&fields, 2).map(String::from_utf8_lossy);
            let id = logs::log_id(name.as_deref().unwrap_or(""));
            Ok(protobuf(StatusCode::CREATED, &logs::encode(&[(1, &id)])))
        }
        "application/json" => {
            let request = json_object(&body, "`{\"name\": \"stdout\"}`")?;
            let name = request.get("name").and_then(Value::as_str).unwrap_or("");
            let id = logs::log_id(name);
            Ok((StatusCode::CREATED, Json(json!({ "log_id": id }))).into_response())
        }
        other => Err(ApiError::unknown_media_type(other)),
    }
}

pub(crate) async fn post_log_message(
    State(s): State<Shared>,
    Authenticated(caller): Authenticated,
    Segments(id): Segments<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response> {
    let as_protobuf = match media_type(&headers)?.as_str() {
        "application/octet-stream" => true,
        "application/json" => false,
        other => return Err(ApiError::unknown_media_type(other)),
    };
    let line = if as_protobuf {
        let fields = logs::fields(&body)
            .ok_or_else(|| ApiError::malformed("The body is not a LogMessageAppendRequest."))?;
        logs::line(logs::field(&fields, 3).unwrap_or_default())
    } else {
        let request = json_object(&body, "`{\"payload\": \"text\"}`")?;
        match request.get("payload") {
            Some(Value::String(p)) => logs::line(p.as_bytes()),
            _ => return Err(ApiError::malformed("`payload` must be a string.")),
        }
    };
    s.backend.log(&caller, line)?;
    let id = logs::log_id(&id);
    let message_id = s.log_messages.fetch_add(1, Ordering::Relaxed).to_string();
    Ok(if as_protobuf {
        protobuf(
            StatusCode::ACCEPTED,
            &logs::encode(&[(1, &id), (2, &message_id)]),
        )
    } else {
        (
            StatusCode::ACCEPTED,
            Json(json!({ "log_id": id, "log_message_id": message_id })),
        )
            .into_response()
    })
}

fn protobuf(status: StatusCode, bytes: &[u8]) -> Response {
    let mut response = (status, bytes.to_vec()).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

// ----- fallbacks -----

/// Unknown paths are 404, after authentication as in Relay (whose router authenticated every
/// request first), so an unauthenticated caller cannot probe which routes exist.
pub(crate) async fn no_route(Authenticated(_caller): Authenticated) -> ApiError {
    ApiError::no_route()
}

pub(crate) async fn method_not_allowed(Authenticated(_caller): Authenticated) -> ApiError {
    ApiError::method_not_allowed()
}
