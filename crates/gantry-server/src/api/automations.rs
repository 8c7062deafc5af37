//! `/api/v1/automations` and `/api/v1/automation-firings`: the definitions, and what each
//! automation did with the events that reached it (started a run, wrote an entity, failed, or
//! was stopped as a loop).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use gantry_catalog::automation::Automation;
use gantry_store::FiringFilter;
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit::Caller;
use super::error::ApiError;
use super::openapi as doc;
use super::scorecards::{decode_definition, definition_json, put_error};
use super::ApiState;
use crate::automations::firing_json;

/// Lists the automations, by identifier.
#[utoipa::path(
    get,
    path = "/automations",
    tag = "automations",
    operation_id = "listAutomations",
    responses((status = 200, description = "The automations", body = doc::Object)),
)]
pub(crate) async fn list_automations(
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    state.automations.reload().await?;
    let items: Vec<Value> = state
        .automations
        .records()
        .iter()
        .map(definition_json)
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Shows an automation.
#[utoipa::path(
    get,
    path = "/automations/{identifier}",
    tag = "automations",
    operation_id = "getAutomation",
    params(("identifier" = String, Path, description = "The automation's identifier")),
    responses(
        (status = 200, description = "The automation", body = doc::Object),
        (status = 404, description = "No such automation", body = doc::Error),
    ),
)]
pub(crate) async fn get_automation(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.automations.reload().await?;
    state
        .automations
        .record(&identifier)
        .map(|r| Json(definition_json(&r)))
        .ok_or_else(|| ApiError::not_found(format!("no automation `{identifier}`")))
}

/// Creates or replaces an automation.
#[utoipa::path(
    put,
    path = "/automations/{identifier}",
    tag = "automations",
    operation_id = "putAutomation",
    params(("identifier" = String, Path, description = "The automation's identifier")),
    request_body(content = doc::Object, description = "The automation"),
    responses(
        (status = 200, description = "Stored", body = doc::Object),
        (status = 422, description = "Every problem with its path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn put_automation(
    State(state): State<ApiState>,
    caller: Caller,
    Path(identifier): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let a: Automation = decode_definition("invalid_definition", "automation", &identifier, &bytes)?;
    state
        .automations
        .put(a, None, caller.audit())
        .await
        .map_err(|e| put_error("automation", e))?;
    state
        .automations
        .record(&identifier)
        .map(|r| Json(definition_json(&r)))
        .ok_or_else(ApiError::internal)
}

/// Deletes an automation; its firings stay.
#[utoipa::path(
    delete,
    path = "/automations/{identifier}",
    tag = "automations",
    operation_id = "deleteAutomation",
    params(("identifier" = String, Path, description = "The automation's identifier")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such automation", body = doc::Error),
    ),
)]
pub(crate) async fn delete_automation(
    State(state): State<ApiState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .automations
        .delete(&identifier, caller.audit())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FiringQuery {
    /// Only firings of this automation.
    automation: Option<String>,
    /// Only firings that ended so: `started`, `written`, `failed` or `stopped`.
    status: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
    /// The `next` of the previous page.
    before: Option<String>,
}

/// What automations did with the events that reached them, newest first.
#[utoipa::path(
    get,
    path = "/automation-firings",
    tag = "automations",
    operation_id = "listAutomationFirings",
    params(FiringQuery),
    responses(
        (status = 200, description = "A page of firings", body = doc::Object),
        (status = 422, description = "A bad cursor", body = doc::Error),
    ),
)]
pub(crate) async fn list_firings(
    State(state): State<ApiState>,
    Query(q): Query<FiringQuery>,
) -> Result<Json<Value>, ApiError> {
    let before = match q.before.as_deref() {
        None => None,
        Some(c) => {
            let (at, id) = c
                .split_once('~')
                .ok_or_else(|| ApiError::invalid("before", "not a cursor this server gave"))?;
            let at = chrono::DateTime::parse_from_rfc3339(at)
                .map_err(|_| ApiError::invalid("before", "not a cursor this server gave"))?
                .with_timezone(&chrono::Utc);
            Some((at, id.to_owned()))
        }
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .store
        .list_firings(
            &FiringFilter {
                automation: q.automation,
                status: q.status,
                before,
            },
            limit,
        )
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| {
            rows.last()
                .map(|r| format!("{}~{}", r.at.to_rfc3339(), r.id))
        })
        .flatten();
    let items: Vec<Value> = rows.iter().map(firing_json).collect();
    Ok(Json(json!({ "items": items, "next": next })))
}
