//! Secrets (per workflow) and connections (account-wide, typed) through the API: set, list
//! names, delete. Values are sealed before they reach the store and are never returned: no
//! route reads one back, and no error message contains one.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use gantry_store::{SealedKind, SealedValue, StoreError};
use serde_json::{json, Value};

use super::audit::Caller;
use super::error::ApiError;
use super::openapi as doc;
use super::ApiState;
use crate::runs::{connection_binding, secret_binding};

/// The connection types Gantry knows (Relay's, and two generic ones).
pub const CONNECTION_TYPES: &[&str] = &[
    "aws",
    "azure",
    "gcp",
    "kubernetes",
    "slack",
    "ssh",
    "jira",
    "datadog",
    "pagerduty",
    "puppet",
    "http-basic",
    "token",
    "generic",
];

pub(crate) fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            what,
            format!("a {what} is 1 to 200 letters, digits, `-`, `_` or `.`"),
        ))
    }
}

pub(crate) fn seal(
    state: &ApiState,
    kind: SealedKind,
    scope: &str,
    name: &str,
    binding: &str,
    plain: &[u8],
) -> Result<SealedValue, ApiError> {
    let sealed = state.vault.seal(binding, plain).map_err(|e| {
        tracing::error!(error = %e, "could not seal a value");
        ApiError::internal()
    })?;
    Ok(SealedValue {
        kind,
        scope: scope.to_owned(),
        name: name.to_owned(),
        key_id: sealed.key_id,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
        updated_at: Utc::now(),
    })
}

/// Sets a workflow's secret; the value is sealed and never read back.
#[utoipa::path(
    put,
    path = "/workflows/{name}/secrets/{secret}",
    tag = "secrets",
    operation_id = "putSecret",
    params(("name" = String, Path, description = "The workflow's name"), ("secret" = String, Path, description = "The secret's name")),
    request_body(content = String, content_type = "text/plain", description = "The value, as UTF-8 text"),
    responses(
        (status = 204, description = "Stored"),
        (status = 404, description = "No such workflow", body = doc::Error),
        (status = 422, description = "A bad name, or a value that is not UTF-8", body = doc::Error),
    ),
)]
pub(crate) async fn put_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path((workflow, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    check_name("secret name", &name)?;
    state
        .store
        .get_workflow(&workflow)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::not_found(format!("no workflow named `{workflow}`"))
            }
            e => e.into(),
        })?;
    if std::str::from_utf8(&body).is_err() {
        return Err(ApiError::invalid(
            "body",
            "a secret is text; base64-encode binary values",
        ));
    }
    let sealed = seal(
        &state,
        SealedKind::Secret,
        &workflow,
        &name,
        &secret_binding(&workflow, &name),
        &body,
    )?;
    state.store.put_sealed(&sealed, caller.audit()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the names of a workflow's secrets.
#[utoipa::path(
    get,
    path = "/workflows/{name}/secrets",
    tag = "secrets",
    operation_id = "listSecrets",
    params(("name" = String, Path, description = "The workflow's name")),
    responses((status = 200, description = "Secret names, sorted", body = doc::NamePage)),
)]
pub(crate) async fn list_secrets(
    State(state): State<ApiState>,
    Path(workflow): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let names = state
        .store
        .list_sealed_names(SealedKind::Secret, &workflow)
        .await?;
    Ok(Json(json!({"items": names, "next": null})))
}

/// Deletes a workflow's secret.
#[utoipa::path(
    delete,
    path = "/workflows/{name}/secrets/{secret}",
    tag = "secrets",
    operation_id = "deleteSecret",
    params(("name" = String, Path, description = "The workflow's name"), ("secret" = String, Path, description = "The secret's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such secret", body = doc::Error),
    ),
)]
pub(crate) async fn delete_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path((workflow, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_sealed(SealedKind::Secret, &workflow, &name, caller.audit())
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::not_found(format!("workflow `{workflow}` has no secret `{name}`"))
            }
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_type(type_: &str) -> Result<(), ApiError> {
    if CONNECTION_TYPES.contains(&type_) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "type",
            format!(
                "unknown connection type `{type_}`; known types: {}",
                CONNECTION_TYPES.join(", ")
            ),
        ))
    }
}

/// Sets a connection; its fields are sealed and never read back.
#[utoipa::path(
    put,
    path = "/connections/{type}/{name}",
    tag = "connections",
    operation_id = "putConnection",
    params(("type" = String, Path, description = "The connection type: aws, azure, gcp, kubernetes, slack, ssh, jira, datadog, pagerduty, puppet, http-basic, token or generic"), ("name" = String, Path, description = "The connection's name")),
    request_body(content = HashMap<String, String>, description = "The connection's fields, all strings"),
    responses(
        (status = 204, description = "Stored"),
        (status = 422, description = "An unknown type, a bad name, or a body that is not an object of strings", body = doc::Error),
    ),
)]
pub(crate) async fn put_connection(
    State(state): State<ApiState>,
    caller: Caller,
    Path((type_, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    check_type(&type_)?;
    check_name("connection name", &name)?;
    // Never echo the body: it holds credentials.
    let fields: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::invalid("body", "a connection is a JSON object of fields"))?;
    let Value::Object(map) = &fields else {
        return Err(ApiError::invalid(
            "body",
            "a connection is a JSON object of fields",
        ));
    };
    if let Some((key, _)) = map.iter().find(|(_, v)| !v.is_string()) {
        return Err(ApiError::invalid(
            &format!("body.{key}"),
            "connection fields are strings",
        ));
    }
    let sealed = seal(
        &state,
        SealedKind::Connection,
        &type_,
        &name,
        &connection_binding(&type_, &name),
        &body,
    )?;
    state.store.put_sealed(&sealed, caller.audit()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists every connection's type and name.
#[utoipa::path(
    get,
    path = "/connections",
    tag = "connections",
    operation_id = "listConnections",
    responses((status = 200, description = "Connections by type, then name", body = doc::ConnectionPage)),
)]
pub(crate) async fn list_connections(
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    let mut items = Vec::new();
    for t in CONNECTION_TYPES {
        for name in state
            .store
            .list_sealed_names(SealedKind::Connection, t)
            .await?
        {
            items.push(json!({"type": t, "name": name}));
        }
    }
    Ok(Json(json!({"items": items, "next": null})))
}

/// Deletes a connection.
#[utoipa::path(
    delete,
    path = "/connections/{type}/{name}",
    tag = "connections",
    operation_id = "deleteConnection",
    params(("type" = String, Path, description = "The connection type: aws, azure, gcp, kubernetes, slack, ssh, jira, datadog, pagerduty, puppet, http-basic, token or generic"), ("name" = String, Path, description = "The connection's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such connection", body = doc::Error),
    ),
)]
pub(crate) async fn delete_connection(
    State(state): State<ApiState>,
    caller: Caller,
    Path((type_, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_sealed(SealedKind::Connection, &type_, &name, caller.audit())
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::not_found(format!("no {type_} connection named `{name}`"))
            }
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
