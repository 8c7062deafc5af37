//! Runs through the API: start one of a workflow (`POST /workflows/{name}/runs`), get it with
//! its steps and outputs (sensitive values masked), list with filters and cursors, read its
//! logs, cancel it, answer its approval steps.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use gantry_store::{NewAuditEvent, PageRequest, RunFilter, RunStatus, RunSummary, StoreError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::audit::Caller;
use super::error::ApiError;
use super::openapi as doc;
use super::ApiState;
use crate::runs::{run_status, StartError};

use super::time_json as time;

fn summary_json(r: &RunSummary) -> Value {
    json!({
        "id": r.id,
        "workflow": r.workflow,
        "version": r.workflow_version,
        "status": r.status.as_str(),
        "reason": r.reason,
        "parameters": r.parameters,
        "createdAt": time(Some(r.created_at)),
        "startedAt": time(r.started_at),
        "endedAt": time(r.ended_at),
    })
}

/// `{"parameters": {"k": v}}`, or Relay's `{"parameters": {"k": {"value": v}}}`.
fn parameters(body: &Value) -> Result<Map<String, Value>, ApiError> {
    match &body["parameters"] {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::Object(o) if o.len() == 1 && o.contains_key("value") => {
                        o["value"].clone()
                    }
                    v => v.clone(),
                };
                (k.clone(), v)
            })
            .collect()),
        _ => Err(ApiError::invalid(
            "parameters",
            "parameters must be an object of name to value",
        )),
    }
}

/// A JSON body, whatever its content type says; an empty body is `null`.
/// The `Idempotency-Key` header, when there is one: 1 to 200 characters.
pub(crate) fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= 200)
            .map(|k| Some(k.to_owned()))
            .ok_or_else(|| {
                ApiError::invalid(
                    "Idempotency-Key",
                    "an idempotency key is 1 to 200 characters",
                )
            }),
    }
}

pub(crate) fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("the body is not valid JSON: {e}")))
}

/// Starts a run of a workflow's current version.
#[utoipa::path(
    post,
    path = "/workflows/{name}/runs",
    tag = "runs",
    operation_id = "startRun",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        doc::IdempotencyKey,
    ),
    request_body(content = Option<doc::StartRun>, description = "The run's parameters; an empty body is none"),
    responses(
        (status = 201, description = "A run was started", body = doc::RunStarted),
        (status = 200, description = "This Idempotency-Key started a run before: that run", body = doc::RunStarted),
        (status = 404, description = "No such workflow", body = doc::Error),
        (status = 422, description = "Bad parameters, body or Idempotency-Key", body = doc::Error),
    ),
)]
pub(crate) async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body = json_body(&body)?;
    let parameters = parameters(&body)?;
    start_run(&state, name, parameters, &headers, caller).await
}

/// Starts a new run of run `{id}`'s workflow with the same parameters.
///
/// Like Relay's re-run, it runs the workflow's *current* version, which may differ from the
/// version `{id}` ran. It answers like `POST /workflows/{name}/runs`, `Idempotency-Key`
/// included (keys share that workflow's starts).
#[utoipa::path(
    post,
    path = "/runs/{id}/rerun",
    tag = "runs",
    operation_id = "rerunRun",
    params(
        ("id" = String, Path, description = "The run to repeat"),
        doc::IdempotencyKey,
    ),
    responses(
        (status = 201, description = "A run was started", body = doc::RunStarted),
        (status = 200, description = "This Idempotency-Key started a run before: that run", body = doc::RunStarted),
        (status = 404, description = "No such run, or its workflow was deleted", body = doc::Error),
        (status = 422, description = "The parameters no longer fit the current version, or a bad Idempotency-Key", body = doc::Error),
    ),
)]
pub(crate) async fn rerun(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let run = state.store.get_run(&id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::not_found(format!("no run `{id}`")),
        e => e.into(),
    })?;
    let parameters = match run.summary.parameters {
        Value::Object(m) => m,
        // A run stores an object; anything else is from before parameters were recorded.
        _ => Map::new(),
    };
    start_run(&state, run.summary.workflow, parameters, &headers, caller).await
}

/// The shared tail of a start and a rerun: the idempotency key, the start, the answer.
async fn start_run(
    state: &ApiState,
    name: String,
    parameters: Map<String, Value>,
    headers: &axum::http::HeaderMap,
    caller: Caller,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = idempotency_key(headers)?;
    let started = state
        .runs
        .start_once(&name, parameters, key, caller.0)
        .await
        .map_err(|e| match e {
            StartError::NoWorkflow(_) => ApiError::not_found(e.to_string()),
            StartError::Invalid(m) => ApiError::invalid("parameters", m),
            StartError::AlreadyStarted(reason) | StartError::Store(reason) => {
                tracing::error!(%reason, "could not start a run");
                ApiError::internal()
            }
        })?;
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"id": started.id, "workflow": name, "created": started.created})),
    ))
}

/// Gets a run with its steps and outputs; sensitive outputs are masked.
#[utoipa::path(
    get,
    path = "/runs/{id}",
    tag = "runs",
    operation_id = "getRun",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = doc::Run),
        (status = 404, description = "No such run", body = doc::Error),
    ),
)]
pub(crate) async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run = state.store.get_run(&id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::not_found(format!("no run `{id}`")),
        e => e.into(),
    })?;
    let mut out = summary_json(&run.summary);
    out["steps"] = run
        .steps
        .iter()
        .map(|s| {
            json!({
                "name": s.step,
                "status": s.state.as_str(),
                "reason": s.reason,
                "startedAt": time(s.started_at),
                "endedAt": time(s.ended_at),
                "exitCode": s.exit_code,
            })
        })
        .collect();
    out["outputs"] = run
        .outputs
        .iter()
        .map(|o| {
            json!({
                "step": o.step,
                "name": o.name,
                "sensitive": o.sensitive,
                "value": if o.sensitive { json!(gantry_engine::run::MASK) } else { o.value.clone() },
            })
        })
        .collect();
    Ok(Json(out))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only runs of this workflow.
    workflow: Option<String>,
    /// Only runs in this status.
    #[param(value_type = Option<doc::RunStatus>)]
    status: Option<String>,
    /// At most this many runs (default 50).
    limit: Option<u32>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

/// Lists runs, newest first.
#[utoipa::path(
    get,
    path = "/runs",
    tag = "runs",
    operation_id = "listRuns",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of runs", body = doc::RunPage),
        (status = 422, description = "An unknown status or a bad cursor", body = doc::Error),
    ),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(RunStatus::parse(s).map_err(|_| {
            ApiError::invalid(
                "status",
                "status is one of queued, running, succeeded, failed, cancelled, timed_out",
            )
        })?),
    };
    let page = state
        .store
        .list_runs(
            &RunFilter {
                workflow: q.workflow,
                status,
            },
            &PageRequest {
                after: q.after,
                limit: q.limit.unwrap_or(50),
            },
        )
        .await?;
    let items: Vec<Value> = page.items.iter().map(summary_json).collect();
    Ok(Json(json!({"items": items, "next": page.next})))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogQuery {
    /// Lines after this position (the `next` of the previous page, or an event id).
    after: Option<i64>,
    /// At most this many lines (default 1000, at most 10000); the stream ignores it.
    limit: Option<u32>,
}

/// Reads a run's log lines, oldest first.
#[utoipa::path(
    get,
    path = "/runs/{id}/logs",
    tag = "runs",
    operation_id = "getRunLogs",
    params(("id" = String, Path, description = "The run's id"), LogQuery),
    responses((status = 200, description = "One page of log lines; empty for an unknown run", body = doc::LogPage)),
)]
pub(crate) async fn logs(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let chunks = state
        .store
        .read_run_logs(&id, q.after, q.limit.unwrap_or(1000).clamp(1, 10_000))
        .await?;
    let next = chunks.last().map(|c| c.position);
    let items: Vec<Value> = chunks
        .iter()
        .map(|c| {
            json!({
                "position": c.position,
                "step": c.chunk.step,
                "stream": c.chunk.stream,
                "text": String::from_utf8_lossy(&c.chunk.bytes),
                "at": time(Some(c.chunk.at)),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next": next})))
}

fn live(state: &ApiState, id: &str) -> Result<gantry_engine::driver::RunHandle, ApiError> {
    state.runs.registry().get(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "run_not_active",
            format!("run `{id}` is not running on this server"),
        )
    })
}

/// Cancels a running run.
#[utoipa::path(
    post,
    path = "/runs/{id}/cancel",
    tag = "runs",
    operation_id = "cancelRun",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 202, description = "The run is being cancelled", body = doc::Cancelling),
        (status = 409, description = "`run_not_active`: the run is not running on this server", body = doc::Error),
    ),
)]
pub(crate) async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let run = live(&state, &id)?;
    let before = run_status(run.record().state).as_str();
    run.cancel();
    // A decision, not a stored change: recorded once it applies (the run's end follows).
    state
        .store
        .append_audit(&NewAuditEvent {
            audit: caller.0,
            action: "run.cancel".to_owned(),
            resource: format!("run/{id}"),
            before: Some(json!({"status": before})),
            after: Some(json!({"status": "cancelling"})),
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "cancelling": true})),
    ))
}

async fn answer(
    state: &ApiState,
    id: &str,
    step: &str,
    approved: bool,
    caller: Caller,
    reason: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let by = match &reason {
        Some(r) if !approved => format!("{} ({r})", caller.0.actor.name),
        _ => caller.0.actor.name.clone(),
    };
    live(state, id)?
        .answer(step, approved, Some(by))
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "not_waiting", e.to_string()))?;
    // A decision, not a stored change: recorded once it applies (the step's end follows).
    let mut after = json!({"approval": if approved { "approved" } else { "rejected" }});
    if let Some(r) = reason.filter(|_| !approved) {
        after["reason"] = json!(r);
    }
    state
        .store
        .append_audit(&NewAuditEvent {
            audit: caller.0,
            action: if approved {
                "step.approve"
            } else {
                "step.deny"
            }
            .to_owned(),
            resource: format!("run/{id}/step/{step}"),
            before: Some(json!({"approval": "waiting"})),
            after: Some(after),
        })
        .await?;
    Ok(Json(json!({
        "id": id,
        "step": step,
        "approval": if approved { "approved" } else { "rejected" },
    })))
}

/// Approves a run's waiting approval step.
#[utoipa::path(
    post,
    path = "/runs/{id}/steps/{step}/approve",
    tag = "runs",
    operation_id = "approveStep",
    params(("id" = String, Path, description = "The run's id"), ("step" = String, Path, description = "The approval step's name")),
    responses(
        (status = 200, description = "Approved", body = doc::Approval),
        (status = 409, description = "`run_not_active`, or `not_waiting`: the step awaits no answer", body = doc::Error),
    ),
)]
pub(crate) async fn approve(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, step)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    answer(&state, &id, &step, true, caller, None).await
}

/// Denies a run's waiting approval step.
#[utoipa::path(
    post,
    path = "/runs/{id}/steps/{step}/deny",
    tag = "runs",
    operation_id = "denyStep",
    params(("id" = String, Path, description = "The run's id"), ("step" = String, Path, description = "The approval step's name")),
    request_body(content = Option<doc::Deny>, description = "An optional reason"),
    responses(
        (status = 200, description = "Denied", body = doc::Approval),
        (status = 409, description = "`run_not_active`, or `not_waiting`: the step awaits no answer", body = doc::Error),
        (status = 422, description = "The body is not JSON", body = doc::Error),
    ),
)]
pub(crate) async fn deny(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, step)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let reason = json_body(&body)?["reason"].as_str().map(str::to_owned);
    answer(&state, &id, &step, false, caller, reason).await
}

/// `GET /runs/{id}/logs/stream`: the run's log lines as server-sent events, live, from
/// `?after=` or the `Last-Event-ID` header; `event: log` with the chunk as JSON (its position as
/// the event id, so a client resumes where it stopped), then one `event: end` with the run's
/// status when it ends.
#[utoipa::path(
    get,
    path = "/runs/{id}/logs/stream",
    tag = "runs",
    operation_id = "streamRunLogs",
    params(
        ("id" = String, Path, description = "The run's id"),
        LogQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this position; wins over `after`"),
    ),
    responses(
        (status = 200, description = "Server-sent events: `log` (a log line as JSON, its position as the event id), then one `end` with the run's status", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such run", body = doc::Error),
    ),
)]
pub(crate) async fn stream_logs(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
    headers: axum::http::HeaderMap,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt;

    state.store.get_run(&id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::not_found(format!("no run `{id}`")),
        e => e.into(),
    })?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(q.after);
    let events = futures_util::stream::unfold(
        (state, id, after, false),
        |(state, id, mut after, done)| async move {
            if done {
                return None;
            }
            loop {
                // A store failure ends the stream; the client reconnects with Last-Event-ID.
                let chunks = state.store.read_run_logs(&id, after, 1000).await.ok()?;
                if !chunks.is_empty() {
                    let events: Vec<Event> = chunks
                        .iter()
                        .map(|c| {
                            Event::default()
                                .event("log")
                                .id(c.position.to_string())
                                .data(
                                    json!({
                                        "position": c.position,
                                        "step": c.chunk.step,
                                        "stream": c.chunk.stream,
                                        "text": String::from_utf8_lossy(&c.chunk.bytes),
                                    })
                                    .to_string(),
                                )
                        })
                        .collect();
                    after = chunks.last().map(|c| c.position);
                    return Some((events, (state, id, after, false)));
                }
                let run = state.store.get_run(&id).await.ok()?;
                if !matches!(run.summary.status, RunStatus::Queued | RunStatus::Running) {
                    // Its end is written after its last lines, so nothing is missed.
                    let end = Event::default()
                        .event("end")
                        .data(json!({"status": run.summary.status.as_str()}).to_string());
                    return Some((vec![end], (state, id, after, true)));
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        },
    )
    .flat_map(|events| futures_util::stream::iter(events.into_iter().map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
