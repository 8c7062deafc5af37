//! Runs through the API: start one of a workflow (`POST /workflows/{name}/runs`), get it with
//! its steps and outputs (sensitive values masked), list with filters and cursors, read its
//! logs, cancel it, answer its approval steps.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use gantry_store::{PageRequest, RunFilter, RunStatus, RunSummary, StoreError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::Principal;
use super::error::ApiError;
use super::ApiState;
use crate::runs::StartError;

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
fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("the body is not valid JSON: {e}")))
}

pub(crate) async fn start(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body = json_body(&body)?;
    let parameters = parameters(&body)?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "Idempotency-Key",
                        "an idempotency key is 1 to 200 characters",
                    )
                })?
                .to_owned(),
        ),
    };
    let started = state
        .runs
        .start_once(&name, parameters, key)
        .await
        .map_err(|e| match e {
            StartError::NoWorkflow(_) => ApiError::not_found(e.to_string()),
            StartError::Invalid(m) => ApiError::invalid("parameters", m),
            StartError::Store(reason) => {
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

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    workflow: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
}

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

#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

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

pub(crate) async fn cancel(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    live(&state, &id)?.cancel();
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
    principal: &Principal,
    reason: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let by = match reason {
        Some(r) if !approved => format!("{} ({r})", principal.0),
        _ => principal.0.clone(),
    };
    live(state, id)?
        .answer(step, approved, Some(by))
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "not_waiting", e.to_string()))?;
    Ok(Json(json!({
        "id": id,
        "step": step,
        "approval": if approved { "approved" } else { "rejected" },
    })))
}

pub(crate) async fn approve(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((id, step)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    answer(&state, &id, &step, true, &principal, None).await
}

pub(crate) async fn deny(
    State(state): State<ApiState>,
    Extension(principal): Extension<Principal>,
    Path((id, step)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let reason = json_body(&body)?["reason"].as_str().map(str::to_owned);
    answer(&state, &id, &step, false, &principal, reason).await
}

/// `GET /runs/{id}/logs/stream`: the run's log lines as server-sent events, live, from
/// `?after=` or the `Last-Event-ID` header; `event: log` with the chunk as JSON (its position as
/// the event id, so a client resumes where it stopped), then one `event: end` with the run's
/// status when it ends.
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
