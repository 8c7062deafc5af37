//! `/api/v1/agent/...`: what agents call (with an agent token, which opens nothing else), and
//! `GET /api/v1/agents`: the agents any server sharing the database has seen. The messages are
//! [`gantry_agent::protocol`]'s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use gantry_agent::protocol::{
    AgentRef, ClaimAnswer, ClaimRequest, CompleteRequest, HeartbeatAnswer, LogsAnswer, LogsRequest,
    MetadataAnswer, MetadataRequest, Outcome, Stream,
};
use gantry_engine::runtime::StepOutcome;
use serde_json::{json, Value};

use super::error::ApiError;
use super::openapi as doc;
use super::ApiState;
use crate::agents::{check_agent_id, AgentHub};
use crate::authz::Principal;
use crate::queue::{AgentLine, AgentRefusal, AGENT_LEASE};

/// The agent hub and the calling agent's pool (see [`pool_of`]).
fn open<'s>(
    state: &'s ApiState,
    principal: &Principal,
    agent: &AgentRef,
) -> Result<(&'s AgentHub, String), ApiError> {
    let pool = pool_of(principal, agent)?;
    let hub = state.agents.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_agents",
            "this server hands no jobs to agents",
        )
    })?;
    Ok((hub, pool))
}

/// The pool of the calling agent token, checked against what the agent says of itself.
fn pool_of(principal: &Principal, agent: &AgentRef) -> Result<String, ApiError> {
    let pool = principal
        .id
        .strip_prefix("agent:")
        .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "forbidden", "use an agent token"))?;
    if let Some(said) = &agent.pool {
        if said != pool {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this agent token is for pool `{pool}`, not `{said}`"),
            ));
        }
    }
    if !check_agent_id(&agent.id) {
        return Err(ApiError::invalid(
            "agent.id",
            "1 to 128 letters, digits, `-`, `_`, `.` or `:`",
        ));
    }
    Ok(pool.to_owned())
}

fn refusal(r: AgentRefusal) -> ApiError {
    match r {
        AgentRefusal::Unknown => ApiError::not_found("no such job waits for an agent"),
        AgentRefusal::NotYours => ApiError::new(
            StatusCode::CONFLICT,
            "lease_lost",
            "this agent no longer holds the job's lease",
        ),
        AgentRefusal::Failed(e) => {
            tracing::error!(error = %e, "an agent call failed");
            ApiError::internal()
        }
    }
}

/// Claims jobs of the token's pool, holding the request open until one comes or
/// `waitSeconds` pass (at most 60).
#[utoipa::path(
    post,
    path = "/agent/jobs/claim",
    tag = "agents",
    operation_id = "claimAgentJobs",
    request_body(content = doc::Object),
    responses(
        (status = 200, description = "The jobs claimed (none when the wait ended)", body = doc::Object),
        (status = 403, description = "Not an agent token, or another pool's", body = doc::Error),
        (status = 422, description = "A bad request", body = doc::Error),
    ),
)]
pub(crate) async fn claim(
    State(state): State<ApiState>,
    Extension(principal): Extension<Arc<Principal>>,
    bytes: Bytes,
) -> Result<Json<ClaimAnswer>, ApiError> {
    let req: ClaimRequest = super::json_body(&bytes)?;
    let (hub, pool) = open(&state, &principal, &req.agent)?;
    hub.saw(&pool, &req.agent, Some(req.running.clone()));
    let wait = Duration::from_secs(req.wait_seconds.min(60));
    let jobs = hub
        .claim(&pool, &req.agent, req.max.clamp(1, 64), wait)
        .await?;
    Ok(Json(ClaimAnswer {
        jobs,
        lease_seconds: AGENT_LEASE.as_secs(),
    }))
}

/// Renews the agent's lease on a job; says whether its run was cancelled.
#[utoipa::path(
    post,
    path = "/agent/jobs/{id}/heartbeat",
    tag = "agents",
    operation_id = "heartbeatAgentJob",
    params(("id" = String, Path, description = "The job's id")),
    request_body(content = doc::Object),
    responses(
        (status = 200, description = "Renewed", body = doc::Object),
        (status = 404, description = "No such job waits for an agent", body = doc::Error),
        (status = 409, description = "The lease was lost", body = doc::Error),
    ),
)]
pub(crate) async fn heartbeat(
    State(state): State<ApiState>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<HeartbeatAnswer>, ApiError> {
    let agent: AgentRef = super::json_body(&bytes)?;
    let (hub, pool) = open(&state, &principal, &agent)?;
    hub.saw(&pool, &agent, None);
    let cancel = hub
        .queue()
        .agent_heartbeat(&id, &AgentHub::worker(&pool, &agent))
        .await
        .map_err(refusal)?;
    Ok(Json(HeartbeatAnswer { cancel }))
}

/// A job's log lines, numbered per stream: each is kept once, in order.
#[utoipa::path(
    post,
    path = "/agent/jobs/{id}/logs",
    tag = "agents",
    operation_id = "appendAgentJobLogs",
    params(("id" = String, Path, description = "The job's id")),
    request_body(content = doc::Object),
    responses(
        (status = 200, description = "The next line number expected per stream", body = doc::Object),
        (status = 404, description = "No such job waits for an agent", body = doc::Error),
        (status = 409, description = "The lease was lost", body = doc::Error),
    ),
)]
pub(crate) async fn logs(
    State(state): State<ApiState>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<LogsAnswer>, ApiError> {
    let req: LogsRequest = super::json_body(&bytes)?;
    let (hub, pool) = open(&state, &principal, &req.agent)?;
    hub.saw(&pool, &req.agent, None);
    let lines = req
        .lines
        .into_iter()
        .map(|l| AgentLine {
            stream: match l.stream {
                Stream::Stdout => 0,
                Stream::Stderr => 1,
            },
            seq: l.seq,
            line: l.line,
        })
        .collect();
    let next = hub
        .queue()
        .agent_logs(&id, &AgentHub::worker(&pool, &req.agent), lines)
        .await
        .map_err(refusal)?;
    Ok(Json(LogsAnswer {
        stdout: next[0],
        stderr: next[1],
    }))
}

/// How a job ended, with the files its step left in `outputs/`.
#[utoipa::path(
    post,
    path = "/agent/jobs/{id}/complete",
    tag = "agents",
    operation_id = "completeAgentJob",
    params(("id" = String, Path, description = "The job's id")),
    request_body(content = doc::Object),
    responses(
        (status = 204, description = "Recorded"),
        (status = 404, description = "No such job waits for an agent", body = doc::Error),
        (status = 409, description = "The lease was lost", body = doc::Error),
    ),
)]
pub(crate) async fn complete(
    State(state): State<ApiState>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let req: CompleteRequest = super::json_body(&bytes)?;
    let (hub, pool) = open(&state, &principal, &req.agent)?;
    hub.saw(&pool, &req.agent, None);
    let outcome = match req.outcome {
        Outcome::Exited(code) => StepOutcome::Exited(code),
        Outcome::FailedToStart(m) => StepOutcome::FailedToStart(m),
        Outcome::Cancelled => StepOutcome::Cancelled,
    };
    let outputs: BTreeMap<String, String> = req.outputs;
    hub.queue()
        .agent_complete(&id, &AgentHub::worker(&pool, &req.agent), outcome, outputs)
        .await
        .map_err(refusal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A step's request to the metadata API, passed on by the agent running it: answered by the
/// metadata API as that step (with the step's token, which stays here), from its run.
#[utoipa::path(
    post,
    path = "/agent/jobs/{id}/metadata",
    tag = "agents",
    operation_id = "forwardAgentMetadata",
    params(("id" = String, Path, description = "The job's id")),
    request_body(content = doc::Object),
    responses(
        (status = 200, description = "The metadata API's answer (status, content type, body), for the step", body = doc::Object),
        (status = 404, description = "No such job waits for an agent", body = doc::Error),
        (status = 409, description = "The lease was lost", body = doc::Error),
        (status = 422, description = "A bad request", body = doc::Error),
    ),
)]
pub(crate) async fn metadata(
    State(state): State<ApiState>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<MetadataAnswer>, ApiError> {
    use axum::http::{header, Method, Request};
    use tower::ServiceExt as _;

    let req: MetadataRequest = super::json_body(&bytes)?;
    let (hub, pool) = open(&state, &principal, &req.agent)?;
    hub.saw(&pool, &req.agent, None);
    let method = match req.method.as_str() {
        "GET" => Method::GET,
        "PUT" => Method::PUT,
        "POST" => Method::POST,
        _ => return Err(ApiError::invalid("method", "GET, PUT or POST")),
    };
    if !req.path.starts_with('/') || req.path.starts_with("//") {
        return Err(ApiError::invalid(
            "path",
            "a path below the metadata API, from `/`",
        ));
    }
    let token = hub
        .queue()
        .agent_step_token(&id, &AgentHub::worker(&pool, &req.agent))
        .map_err(refusal)?;
    let mut request = Request::builder()
        .method(method)
        .uri(&req.path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(ct) = &req.content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let request = request
        .body(axum::body::Body::from(req.body))
        .map_err(|_| ApiError::invalid("path", "not a valid path"))?;
    let backend: Arc<dyn gantry_engine::metadata::MetadataBackend> = state.runs.registry().clone();
    let Ok(response) = crate::metadata::router(backend).oneshot(request).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), crate::metadata::BODY_LIMIT)
        .await
        .map_err(|e| {
            tracing::error!(job = %id, error = %e, "a metadata answer for an agent's step could not be read");
            ApiError::internal()
        })?;
    Ok(Json(MetadataAnswer {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    }))
}

/// The agents any server sharing this database has seen: pool, version, host, last contact
/// (within a second) and current jobs.
#[utoipa::path(
    get,
    path = "/agents",
    tag = "agents",
    operation_id = "listAgents",
    responses(
        (status = 200, description = "Every agent any server sharing this database has seen", body = doc::Object),
    ),
)]
pub(crate) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let items = match state.agents.as_deref() {
        Some(hub) => hub.list().await?,
        None => Vec::new(),
    };
    Ok(Json(json!({ "items": items })))
}
