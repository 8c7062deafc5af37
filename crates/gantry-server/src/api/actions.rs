//! `/api/v1/actions` and `/api/v1/action-runs`: self-service actions and their runs, and the
//! door a webhook receiver reports through (`POST /api/action-runs/{id}/report`, with the
//! token its request carried instead of an API key).
//!
//! Who may run or approve is the action's own rule (`permissions`), decided in
//! [`crate::actions::ActionService`]: the routes ask only for `read`, and a caller the action's
//! rule leaves out gets a 403 naming the action.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use gantry_catalog::action::{Action, Role};
use gantry_store::{ActionRunFilter, PageRequest, SealedKind, StoreError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::audit::Caller;
use super::error::ApiError;
use super::openapi as doc;
use super::scorecards::{decode_definition, definition_json};
use super::ApiState;
use crate::actions::{
    action_secret_binding, action_secret_scope, run_json, Report, Requester, RunRequest, STATUSES,
};
use crate::authz::Principal;

/// The caller as an action sees them: their teams are read from the store.
pub(crate) async fn requester(
    state: &ApiState,
    principal: &Principal,
    caller: &Caller,
) -> Result<Requester, ApiError> {
    let teams = if let Some(user) = principal.id.strip_prefix("user:") {
        state
            .store
            .user_teams(user)
            .await?
            .into_iter()
            .map(|m| m.team)
            .collect()
    } else if let Some(account) = principal.id.strip_prefix("service:") {
        match state.store.get_service_account(account).await {
            Ok(a) => a.team.into_iter().collect(),
            Err(StoreError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        }
    } else {
        Vec::new()
    };
    Ok(Requester {
        id: principal.id.clone(),
        kind: caller.0.actor.kind.as_str().to_owned(),
        name: principal.name.clone(),
        role: principal.role,
        teams,
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ActionQuery {
    /// Only actions of this blueprint.
    blueprint: Option<String>,
}

/// Lists the actions, by identifier.
#[utoipa::path(
    get,
    path = "/actions",
    tag = "actions",
    operation_id = "listActions",
    params(ActionQuery),
    responses((status = 200, description = "The actions", body = doc::Object)),
)]
pub(crate) async fn list_actions(
    State(state): State<ApiState>,
    Query(q): Query<ActionQuery>,
) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = state
        .store
        .list_actions()
        .await?
        .iter()
        .filter(|a| {
            q.blueprint
                .as_deref()
                .is_none_or(|b| a.definition["blueprint"].as_str() == Some(b))
        })
        .map(definition_json)
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Shows an action.
#[utoipa::path(
    get,
    path = "/actions/{identifier}",
    tag = "actions",
    operation_id = "getAction",
    params(("identifier" = String, Path, description = "The action's identifier")),
    responses(
        (status = 200, description = "The action", body = doc::Object),
        (status = 404, description = "No such action", body = doc::Error),
    ),
)]
pub(crate) async fn get_action(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let a = state.store.get_action(&identifier).await?;
    Ok(Json(definition_json(&a)))
}

/// Creates or replaces an action.
#[utoipa::path(
    put,
    path = "/actions/{identifier}",
    tag = "actions",
    operation_id = "putAction",
    params(("identifier" = String, Path, description = "The action's identifier")),
    request_body(content = doc::Object, description = "The action"),
    responses(
        (status = 200, description = "Stored", body = doc::Object),
        (status = 422, description = "Every problem with its path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn put_action(
    State(state): State<ApiState>,
    caller: Caller,
    Path(identifier): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let action: Action = decode_definition("invalid_action", "action", &identifier, &bytes)?;
    let (stored, _) = state.actions.put(action, None, caller.audit()).await?;
    Ok(Json(definition_json(&stored)))
}

/// Deletes an action; its runs stay.
#[utoipa::path(
    delete,
    path = "/actions/{identifier}",
    tag = "actions",
    operation_id = "deleteAction",
    params(("identifier" = String, Path, description = "The action's identifier")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such action", body = doc::Error),
    ),
)]
pub(crate) async fn delete_action(
    State(state): State<ApiState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_action(&identifier, caller.audit())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a secret of an action (the key its webhook requests are signed with); the value is
/// sealed and never read back.
#[utoipa::path(
    put,
    path = "/actions/{identifier}/secrets/{name}",
    tag = "actions",
    operation_id = "putActionSecret",
    params(
        ("identifier" = String, Path, description = "The action's identifier"),
        ("name" = String, Path, description = "The secret's name"),
    ),
    request_body(content = String, content_type = "text/plain", description = "The value, as UTF-8 text"),
    responses(
        (status = 204, description = "Stored"),
        (status = 404, description = "No such action", body = doc::Error),
        (status = 422, description = "A bad name, or a value that is not UTF-8", body = doc::Error),
    ),
)]
pub(crate) async fn put_action_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path((identifier, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    super::secrets::check_name("secret name", &name)?;
    state.store.get_action(&identifier).await?;
    if std::str::from_utf8(&body).is_err() {
        return Err(ApiError::invalid(
            "body",
            "a secret is text; base64-encode binary values",
        ));
    }
    let sealed = super::secrets::seal(
        &state,
        SealedKind::Secret,
        &action_secret_scope(&identifier),
        &name,
        &action_secret_binding(&identifier, &name),
        &body,
    )?;
    state.store.put_sealed(&sealed, caller.audit()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a run is asked for with.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunBody {
    /// `BLUEPRINT/IDENTIFIER`, or `{blueprint, identifier}`.
    #[serde(default)]
    entity: Option<Value>,
    #[serde(default)]
    inputs: Map<String, Value>,
}

fn entity_ref(v: &Value) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::invalid(
            "entity",
            "name the entity as `BLUEPRINT/IDENTIFIER` or {\"blueprint\", \"identifier\"}",
        )
    };
    match v {
        Value::String(s) => s
            .split_once('/')
            .filter(|(b, i)| !b.is_empty() && !i.is_empty())
            .map(|(b, i)| (b.to_owned(), i.to_owned()))
            .ok_or_else(bad),
        Value::Object(o) => match (o.get("blueprint"), o.get("identifier")) {
            (Some(Value::String(b)), Some(Value::String(i))) => Ok((b.clone(), i.clone())),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// Asks for a run of an action: its inputs are checked against the action's form, its entity
/// against the action's blueprint and condition, the caller against its `run` rule.
#[utoipa::path(
    post,
    path = "/actions/{identifier}/runs",
    tag = "actions",
    operation_id = "runAction",
    params(("identifier" = String, Path, description = "The action's identifier")),
    request_body(content = doc::Object, description = "`{entity?, inputs}`"),
    responses(
        (status = 201, description = "The run, waiting for approval or queued", body = doc::Object),
        (status = 403, description = "The action's `run` rule leaves the caller out", body = doc::Error),
        (status = 404, description = "No such action", body = doc::Error),
        (status = 422, description = "Every problem with its path (`inputs.reason`) in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn run_action(
    State(state): State<ApiState>,
    caller: Caller,
    Extension(principal): Extension<Arc<Principal>>,
    Path(identifier): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: RunBody = if bytes.is_empty() {
        RunBody::default()
    } else {
        super::json_body(&bytes)?
    };
    let entity = body.entity.as_ref().map(entity_ref).transpose()?;
    let who = requester(&state, &principal, &caller).await?;
    let row = state
        .actions
        .request(
            &identifier,
            who,
            RunRequest {
                entity,
                inputs: body.inputs,
                rerun_of: None,
            },
            caller.audit(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(run_json(&row))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunQuery {
    /// Only runs of this action.
    action: Option<String>,
    /// Only runs on this entity (`BLUEPRINT/IDENTIFIER`).
    entity: Option<String>,
    /// Only runs asked for by this user (their email) or service account (its name).
    user: Option<String>,
    /// Only runs in this status.
    status: Option<String>,
    /// At most this many runs (default 50).
    limit: Option<u32>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

/// Lists action runs, newest first.
#[utoipa::path(
    get,
    path = "/action-runs",
    tag = "actions",
    operation_id = "listActionRuns",
    params(RunQuery),
    responses(
        (status = 200, description = "`{items, next}`", body = doc::Object),
        (status = 422, description = "A bad filter", body = doc::Error),
    ),
)]
pub(crate) async fn list_runs(
    State(state): State<ApiState>,
    Query(q): Query<RunQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(s) = &q.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::invalid(
                "status",
                format!("status is one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let entity = q
        .entity
        .as_ref()
        .map(|e| entity_ref(&json!(e)))
        .transpose()?;
    let page = state
        .store
        .list_action_runs(
            &ActionRunFilter {
                action: q.action.clone(),
                entity,
                requested_by: q.user.clone(),
                status: q.status.clone(),
            },
            &PageRequest {
                after: q.after.clone(),
                limit: q.limit.unwrap_or(50),
            },
        )
        .await?;
    let items: Vec<Value> = page.items.iter().map(run_json).collect();
    Ok(Json(json!({"items": items, "next": page.next})))
}

/// Shows an action run: status, inputs (secret ones as `***`), approvals, links, summary,
/// the entities it created or changed, and the workflow run it started.
#[utoipa::path(
    get,
    path = "/action-runs/{id}",
    tag = "actions",
    operation_id = "getActionRun",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = doc::Object),
        (status = 404, description = "No such run", body = doc::Error),
    ),
)]
pub(crate) async fn get_run(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state.store.get_action_run(&id).await?;
    Ok(Json(run_json(&row)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogQuery {
    /// Lines after this number (the `next` of the previous page).
    after: Option<i64>,
    /// At most this many lines (default 1000).
    limit: Option<u32>,
}

/// Reads the log lines a run's webhook receiver reported (a workflow run's lines are the
/// workflow run's: `GET /runs/{workflowRun}/logs`).
#[utoipa::path(
    get,
    path = "/action-runs/{id}/logs",
    tag = "actions",
    operation_id = "getActionRunLogs",
    params(("id" = String, Path, description = "The run's id"), LogQuery),
    responses(
        (status = 200, description = "`{lines: [{seq, at, line}], next, workflowRun}`", body = doc::Object),
        (status = 404, description = "No such run", body = doc::Error),
    ),
)]
pub(crate) async fn run_logs(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let row = state.store.get_action_run(&id).await?;
    let lines = state
        .store
        .read_action_run_logs(&id, q.after.unwrap_or(0), q.limit.unwrap_or(1000))
        .await?;
    let next = lines.last().map(|l| l.seq).or(q.after);
    let lines: Vec<Value> = lines
        .iter()
        .map(|l| json!({"seq": l.seq, "at": l.at, "line": l.line}))
        .collect();
    Ok(Json(
        json!({"lines": lines, "next": next, "workflowRun": row.workflow_run}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn decide(
    state: ApiState,
    caller: Caller,
    principal: Arc<Principal>,
    id: String,
    bytes: Bytes,
    approve: bool,
) -> Result<Json<Value>, ApiError> {
    let body: DecisionBody = if bytes.is_empty() {
        DecisionBody::default()
    } else {
        super::json_body(&bytes)?
    };
    let reason = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if !approve && reason.is_none() {
        return Err(ApiError::invalid(
            "reason",
            "a denial says why: give a `reason`",
        ));
    }
    if reason.as_ref().is_some_and(|r| r.chars().count() > 2000) {
        return Err(ApiError::invalid(
            "reason",
            "a reason is at most 2000 characters",
        ));
    }
    let who = requester(&state, &principal, &caller).await?;
    let row = state
        .actions
        .decide(&id, &who, approve, reason, caller.audit())
        .await?;
    Ok(Json(run_json(&row)))
}

/// Approves a run waiting for approval (the action's `approve` rule decides who may; nobody
/// approves their own run).
#[utoipa::path(
    post,
    path = "/action-runs/{id}/approve",
    tag = "actions",
    operation_id = "approveActionRun",
    params(("id" = String, Path, description = "The run's id")),
    request_body(content = doc::Object, description = "`{reason?}`"),
    responses(
        (status = 200, description = "The run, queued once approved enough", body = doc::Object),
        (status = 403, description = "The caller may not approve it", body = doc::Error),
        (status = 409, description = "It is not waiting for approval", body = doc::Error),
    ),
)]
pub(crate) async fn approve(
    State(state): State<ApiState>,
    caller: Caller,
    Extension(principal): Extension<Arc<Principal>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(state, caller, principal, id, bytes, true).await
}

/// Denies a run waiting for approval, with a reason; the run is cancelled.
#[utoipa::path(
    post,
    path = "/action-runs/{id}/deny",
    tag = "actions",
    operation_id = "denyActionRun",
    params(("id" = String, Path, description = "The run's id")),
    request_body(content = doc::Object, description = "`{reason}`"),
    responses(
        (status = 200, description = "The run, cancelled", body = doc::Object),
        (status = 403, description = "The caller may not deny it", body = doc::Error),
        (status = 409, description = "It is not waiting for approval", body = doc::Error),
        (status = 422, description = "No reason", body = doc::Error),
    ),
)]
pub(crate) async fn deny(
    State(state): State<ApiState>,
    caller: Caller,
    Extension(principal): Extension<Arc<Principal>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(state, caller, principal, id, bytes, false).await
}

/// Cancels a run that has not ended (its requester, or an operator or higher).
#[utoipa::path(
    post,
    path = "/action-runs/{id}/cancel",
    tag = "actions",
    operation_id = "cancelActionRun",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = doc::Object),
        (status = 403, description = "Neither its requester nor an operator", body = doc::Error),
        (status = 409, description = "It has ended", body = doc::Error),
    ),
)]
pub(crate) async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    Extension(principal): Extension<Arc<Principal>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state.store.get_action_run(&id).await?;
    let mine = row.requested_by == principal.name;
    if !mine && principal.role < Role::Operator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only its requester or an operator may cancel a run",
        ));
    }
    let row = state.actions.cancel(&id, caller.audit()).await?;
    Ok(Json(run_json(&row)))
}

/// Asks for a new run with the same entity and inputs (secret ones too), as the caller.
#[utoipa::path(
    post,
    path = "/action-runs/{id}/rerun",
    tag = "actions",
    operation_id = "rerunActionRun",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 201, description = "The new run", body = doc::Object),
        (status = 403, description = "The action's `run` rule leaves the caller out", body = doc::Error),
        (status = 404, description = "No such run, or its action is gone", body = doc::Error),
        (status = 422, description = "Its inputs no longer fit the action", body = doc::Error),
    ),
)]
pub(crate) async fn rerun(
    State(state): State<ApiState>,
    caller: Caller,
    Extension(principal): Extension<Arc<Principal>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let who = requester(&state, &principal, &caller).await?;
    let row = state.actions.rerun(&id, who, caller.audit()).await?;
    Ok((StatusCode::CREATED, Json(run_json(&row))))
}

/// `POST /api/action-runs/{id}/report` with `Authorization: Bearer <report token>`: what a
/// webhook receiver reports (`{status?, summary?, links?, logs?, entities?, error?}`).
pub(crate) async fn report(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized("the report token is required: Authorization: Bearer <token>")
        })?;
    let report: Report = super::json_body(&bytes)?;
    let row = state.actions.report(&id, token, report).await?;
    Ok(Json(run_json(&row)))
}
