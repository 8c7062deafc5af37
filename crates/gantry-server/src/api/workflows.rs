//! `/api/v1/workflows`: create or replace from YAML (validated: a 422 lists every diagnostic
//! with its line and column), list, get with the YAML, version history, delete.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use gantry_store::{NewWorkflowVersion, PageRequest, StoreError, WorkflowVersion};
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit::Caller;
use super::diagnostics::diagnostics_json;
use super::error::ApiError;
use super::openapi as doc;
use super::ApiState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// At most this many workflows (default 100).
    limit: Option<u32>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

fn time(t: DateTime<Utc>) -> Value {
    super::time_json(Some(t))
}

/// Names are path segments and CLI arguments: keep them plain.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name",
            "a workflow name is 1 to 100 letters, digits, `-`, `_` or `.`, not starting with `.`",
        ))
    }
}

fn version_json(v: &WorkflowVersion, with_yaml: bool) -> Value {
    let mut out = json!({
        "name": v.name,
        "version": v.version,
        "createdAt": time(v.created_at),
    });
    if with_yaml {
        out["yaml"] = json!(v.yaml);
    }
    out
}

/// Creates or replaces a workflow from its YAML; every version is kept.
#[utoipa::path(
    put,
    path = "/workflows/{name}",
    tag = "workflows",
    operation_id = "putWorkflow",
    params(("name" = String, Path, description = "The workflow's name")),
    request_body(content = String, content_type = "application/yaml", description = "The workflow's YAML"),
    responses(
        (status = 201, description = "The first version was stored", body = doc::WorkflowSaved),
        (status = 200, description = "A new version was stored", body = doc::WorkflowSaved),
        (status = 413, description = "The body is larger than 4 MiB", body = doc::Error),
        (status = 422, description = "A bad name, or `invalid_workflow` with every diagnostic in `details`", body = doc::Error),
    ),
)]
pub(crate) async fn put(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    check_name(&name)?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {} bytes", super::BODY_LIMIT),
            )
        } else {
            ApiError::invalid("body", r.body_text())
        }
    })?;
    let yaml = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::invalid("body", "the workflow must be UTF-8 YAML text"))?;
    let parsed = gantry_workflow::parse(&yaml);
    if !parsed.is_valid() {
        let errors = parsed.diagnostics.iter().filter(|d| d.is_error()).count();
        return Err(ApiError {
            details: Some(Box::new(
                json!({"diagnostics": diagnostics_json(&yaml, &parsed.diagnostics)}),
            )),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_workflow",
                format!(
                    "the workflow has {errors} error{}",
                    if errors == 1 { "" } else { "s" }
                ),
            )
        });
    }
    let canonical = serde_json::to_string(&parsed.workflow.to_json()).map_err(|e| {
        tracing::error!(error = %e, "could not encode a workflow");
        ApiError::internal()
    })?;
    let version = state
        .store
        .put_workflow(
            &NewWorkflowVersion {
                name: name.clone(),
                yaml: yaml.clone(),
                canonical,
                at: caller.audit().at,
            },
            caller.audit(),
        )
        .await?;
    state.triggers.workflow_changed(&name);
    let status = if version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "name": name,
            "version": version,
            "warnings": diagnostics_json(&yaml, &parsed.diagnostics),
        })),
    ))
}

/// Lists workflows with their current version.
#[utoipa::path(
    get,
    path = "/workflows",
    tag = "workflows",
    operation_id = "listWorkflows",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of workflows, by name", body = doc::WorkflowPage),
        (status = 422, description = "The `after` cursor is not valid", body = doc::Error),
    ),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = state
        .store
        .list_workflows(&PageRequest {
            after: q.after,
            limit: q.limit.unwrap_or(100),
        })
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|w| {
            json!({
                "name": w.name,
                "version": w.current_version,
                "createdAt": time(w.created_at),
                "updatedAt": time(w.updated_at),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next": page.next})))
}

/// Gets a workflow's current version with its YAML.
#[utoipa::path(
    get,
    path = "/workflows/{name}",
    tag = "workflows",
    operation_id = "getWorkflow",
    params(("name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 200, description = "The current version with its YAML", body = doc::WorkflowVersion),
        (status = 404, description = "No such workflow", body = doc::Error),
    ),
)]
pub(crate) async fn get(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let w = state.store.get_workflow(&name).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::not_found(format!("no workflow named `{name}`")),
        e => e.into(),
    })?;
    Ok(Json(version_json(&w, true)))
}

/// Lists a workflow's versions.
#[utoipa::path(
    get,
    path = "/workflows/{name}/versions",
    tag = "workflows",
    operation_id = "listWorkflowVersions",
    params(("name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 200, description = "Every version, without YAML", body = doc::WorkflowVersionPage),
        (status = 404, description = "No such workflow", body = doc::Error),
    ),
)]
pub(crate) async fn versions(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let versions = state.store.list_workflow_versions(&name).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("no workflow named `{name}`")));
    }
    let items: Vec<Value> = versions.iter().map(|v| version_json(v, false)).collect();
    Ok(Json(json!({"items": items, "next": null})))
}

/// Gets one version of a workflow with its YAML.
#[utoipa::path(
    get,
    path = "/workflows/{name}/versions/{version}",
    tag = "workflows",
    operation_id = "getWorkflowVersion",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("version" = i64, Path, description = "A version number, from 1"),
    ),
    responses(
        (status = 200, description = "That version with its YAML", body = doc::WorkflowVersion),
        (status = 404, description = "No such workflow or version", body = doc::Error),
    ),
)]
pub(crate) async fn get_version(
    State(state): State<ApiState>,
    Path((name, version)): Path<(String, i64)>,
) -> Result<Json<Value>, ApiError> {
    let v = state
        .store
        .get_workflow_version(&name, version)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::not_found(format!("workflow `{name}` has no version {version}"))
            }
            e => e.into(),
        })?;
    Ok(Json(version_json(&v, true)))
}

/// Deletes a workflow; its versions stay readable by number.
#[utoipa::path(
    delete,
    path = "/workflows/{name}",
    tag = "workflows",
    operation_id = "deleteWorkflow",
    params(("name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such workflow", body = doc::Error),
    ),
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_workflow(&name, caller.audit())
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::not_found(format!("no workflow named `{name}`")),
            e => e.into(),
        })?;
    state.triggers.workflow_changed(&name);
    Ok(StatusCode::NO_CONTENT)
}
