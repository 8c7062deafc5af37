//! Triggers through HTTP: the list of a workflow's triggers with their webhook URLs, push
//! endpoints and schedules; push tokens (create once, list, revoke); and the two public doors,
//! `/hooks/{id}` and `POST /api/events`, which need no API key (the unguessable id and the
//! push token are the credentials).
//!
//! The doors answer `202` only after the event is stored durably, with
//! `{id, created, runId}`; `200 {accepted: false}` when the trigger's `when` filtered the event
//! out. Errors use the API's table. A webhook trigger with an `image` is the exception: its
//! container answers (see `crate::triggers::container`), and only failures to reach it are
//! Gantry's own `{code, message}` (`trigger_unavailable` 503, `trigger_failed` 502,
//! `trigger_timeout` 504).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use gantry_store::StoreError;
use gantry_workflow::TriggerSource;
use serde_json::{json, Map, Value};

use super::audit::Caller;
use super::error::ApiError;
use super::openapi as doc;
use super::runs::{idempotency_key, json_body};
use super::{time_json as time, ApiState};
use crate::triggers::container::ContainerError;
use crate::triggers::proxy::{Inbound, ProxyError};
use crate::triggers::{Acceptance, Delivery, Door, TriggerError};

/// Lists a workflow's triggers with their webhook URLs, push endpoints and schedules.
#[utoipa::path(
    get,
    path = "/workflows/{name}/triggers",
    tag = "triggers",
    operation_id = "listTriggers",
    params(("name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 200, description = "The workflow's triggers", body = doc::TriggerPage),
        (status = 404, description = "No such workflow", body = doc::Error),
    ),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (_, wf) = state
        .triggers
        .workflow(&name)
        .await
        .map_err(trigger_error)?;
    let store = state.store.as_ref();
    // One read of the stored records; a webhook seen for the first time gets its id here.
    let records: std::collections::HashMap<String, gantry_store::TriggerRecord> = store
        .list_triggers(&name)
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    let now = Utc::now();
    let mut items = Vec::new();
    for t in &wf.triggers {
        let trigger = t.name.value.as_str();
        let record = records.get(trigger);
        let mut item = json!({"name": trigger, "type": t.source.type_name()});
        match &t.source {
            TriggerSource::Webhook(container) => {
                let id = match record {
                    Some(r) => r.id.clone(),
                    None => {
                        store
                            .ensure_trigger(&gantry_store::new_id()?, &name, trigger, now)
                            .await?
                            .id
                    }
                };
                item["url"] = json!(format!("{}/hooks/{id}", state.public_url));
                item["image"] = json!(container.image.as_ref().map(|i| i.value.clone()));
            }
            TriggerSource::Push { .. } => {
                item["endpoint"] = json!(format!("{}/api/events", state.public_url));
                let tokens = store.list_push_tokens(&name, trigger).await?;
                item["tokens"] = tokens.iter().map(token_json).collect();
            }
            TriggerSource::Schedule { schedule, parsed } => {
                let last = record.and_then(|r| r.last_fire_at);
                let from = last.unwrap_or(now).max(now);
                item["schedule"] = json!(schedule.value);
                item["nextFireAt"] = time(parsed.as_ref().and_then(|s| s.next_after(from)));
                item["lastFireAt"] = time(last);
            }
        }
        items.push(item);
    }
    Ok(Json(json!({ "items": items, "next": null })))
}

fn token_json(t: &gantry_store::PushToken) -> Value {
    json!({"id": t.id, "createdAt": time(Some(t.created_at)), "revokedAt": time(t.revoked_at)})
}

/// The push trigger `trigger` of `name` must exist.
async fn push_trigger(state: &ApiState, name: &str, trigger: &str) -> Result<(), ApiError> {
    let (_, wf) = state.triggers.workflow(name).await.map_err(trigger_error)?;
    if crate::triggers::find(&wf, trigger, Door::Push).is_none() {
        return Err(ApiError::not_found(format!(
            "workflow `{name}` has no push trigger named `{trigger}`"
        )));
    }
    Ok(())
}

/// Creates a push token; the token is in this answer only.
#[utoipa::path(
    post,
    path = "/workflows/{name}/triggers/{trigger}/tokens",
    tag = "triggers",
    operation_id = "createPushToken",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("trigger" = String, Path, description = "A push trigger's name"),
    ),
    responses(
        (status = 201, description = "The new token", body = doc::NewPushToken),
        (status = 404, description = "No such workflow or push trigger", body = doc::Error),
    ),
)]
pub(crate) async fn create_token(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, trigger)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    push_trigger(&state, &name, &trigger).await?;
    let (record, token) = state
        .triggers
        .push
        .issue(state.store.as_ref(), &name, &trigger, caller.audit())
        .await?;
    let mut body = token_json(&record);
    body["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(body)))
}

/// Lists a push trigger's tokens: ids and times, never the tokens.
#[utoipa::path(
    get,
    path = "/workflows/{name}/triggers/{trigger}/tokens",
    tag = "triggers",
    operation_id = "listPushTokens",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("trigger" = String, Path, description = "A push trigger's name"),
    ),
    responses(
        (status = 200, description = "The tokens, oldest first", body = doc::PushTokenPage),
        (status = 404, description = "No such workflow or push trigger", body = doc::Error),
    ),
)]
pub(crate) async fn list_tokens(
    State(state): State<ApiState>,
    Path((name, trigger)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    push_trigger(&state, &name, &trigger).await?;
    let tokens = state.store.list_push_tokens(&name, &trigger).await?;
    let items: Vec<Value> = tokens.iter().map(token_json).collect();
    Ok(Json(json!({ "items": items, "next": null })))
}

/// Revokes a push token: events sent with it are refused from now on.
#[utoipa::path(
    delete,
    path = "/workflows/{name}/triggers/{trigger}/tokens/{id}",
    tag = "triggers",
    operation_id = "revokePushToken",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("trigger" = String, Path, description = "A push trigger's name"),
        ("id" = String, Path, description = "The token's id"),
    ),
    responses(
        (status = 204, description = "Revoked (revoking twice keeps the first time)"),
        (status = 404, description = "No such token for this trigger", body = doc::Error),
    ),
)]
pub(crate) async fn revoke_token(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, trigger, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let token = state.store.get_push_token(&id).await?;
    if token.workflow != name || token.trigger != trigger {
        return Err(ApiError::not_found(format!("push token {id:?}")));
    }
    state.store.revoke_push_token(&id, caller.audit()).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ the public doors

/// `/hooks/{id}` and every path below it. A webhook trigger with an `image` answers from its
/// container: the request (any method, the path below the hook's root, the query, headers and
/// body) is proxied to it and its reply comes back unchanged. A trigger without one takes
/// `POST /hooks/{id}` with a JSON object, which is the event.
pub(crate) async fn hook(
    State(state): State<ApiState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let unknown = || ApiError::not_found("no such webhook");
    let id = params.get("id").ok_or_else(unknown)?;
    let record = match state.triggers.hook(id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(unknown()),
        Err(e) => return Err(e.into()),
    };
    let (_, wf) = state
        .triggers
        .workflow(&record.workflow)
        .await
        .map_err(|_| unknown())?;
    let Some(trigger) = crate::triggers::find(&wf, &record.name, Door::Webhook) else {
        return Err(unknown());
    };
    let below = below_hook_root(&uri);
    if let TriggerSource::Webhook(container) = &trigger.source {
        if container.image.is_some() {
            let inbound = Inbound {
                method,
                path_and_query: below,
                headers,
                body,
            };
            return forward(&state, &record.workflow, &record.name, container, inbound).await;
        }
    }
    if below != "/" {
        return Err(unknown());
    }
    if method != Method::POST {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this webhook takes POST (it has no image to answer anything else)",
        ));
    }
    let data = match json_body(&body)? {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        _ => return Err(ApiError::invalid(
            "",
            "a webhook event is a JSON object (this trigger has no image to read anything else)",
        )),
    };
    let delivery = Delivery {
        data,
        key: None,
        idempotency_key: idempotency_key(&headers)?,
    };
    accept(
        &state,
        &record.workflow,
        &record.name,
        Door::Webhook,
        delivery,
    )
    .await
}

/// The path below `/hooks/{id}` (`/` for the root itself) and the query.
fn below_hook_root(uri: &Uri) -> String {
    let after = uri.path().strip_prefix("/hooks/").unwrap_or_default();
    let rest = after.split_once('/').map_or("", |(_, rest)| rest);
    match uri.query() {
        Some(query) => format!("/{rest}?{query}"),
        None => format!("/{rest}"),
    }
}

/// Proxies a request to the container of a webhook trigger with an image.
async fn forward(
    state: &ApiState,
    workflow: &str,
    trigger: &str,
    container: &gantry_workflow::Container,
    inbound: Inbound,
) -> Result<Response, ApiError> {
    let Some(containers) = state.triggers.containers() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "trigger_unavailable",
            "this server runs no trigger containers",
        ));
    };
    let lease = containers
        .lease(workflow, trigger, container)
        .await
        .map_err(|e| container_error(workflow, trigger, &e))?;
    containers
        .proxy
        .forward(lease, inbound)
        .await
        .map_err(|e| match e {
            ProxyError::Unreachable(ref reason) => {
                tracing::warn!(workflow, trigger, %reason, "a trigger's container did not answer");
                ApiError::new(StatusCode::BAD_GATEWAY, "trigger_failed", e.to_string())
            }
            ProxyError::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "trigger_timeout",
                e.to_string(),
            ),
        })
}

/// The caller learns what kind of failure it was; the reason goes to the log only.
fn container_error(workflow: &str, trigger: &str, e: &ContainerError) -> ApiError {
    let status = match e {
        ContainerError::Start(reason) => {
            tracing::error!(workflow, trigger, %reason, "a trigger's container could not be started");
            StatusCode::SERVICE_UNAVAILABLE
        }
        ContainerError::Exited => {
            tracing::warn!(
                workflow,
                trigger,
                "a trigger's container exited before it listened"
            );
            StatusCode::BAD_GATEWAY
        }
        ContainerError::NotReady(_) => {
            tracing::warn!(
                workflow,
                trigger,
                "a trigger's container did not listen in time"
            );
            StatusCode::SERVICE_UNAVAILABLE
        }
        ContainerError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
    };
    let code = if status == StatusCode::BAD_GATEWAY {
        "trigger_failed"
    } else {
        "trigger_unavailable"
    };
    ApiError::new(status, code, e.to_string())
}

/// `POST /api/events` with `Authorization: Bearer <push token>` and `{data, key?}`.
pub(crate) async fn push_event(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let refused =
        || ApiError::unauthorized("a valid push token is required: Authorization: Bearer <token>");
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(refused)?;
    let identity = state
        .triggers
        .push
        .verify(presented.trim())
        .ok_or_else(refused)?;
    let record = match state.store.get_push_token(&identity.token_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(refused()),
        Err(e) => return Err(e.into()),
    };
    if record.revoked_at.is_some()
        || record.workflow != identity.workflow
        || record.trigger != identity.trigger
    {
        return Err(refused());
    }
    let envelope = match json_body(&body)? {
        Value::Object(m) => m,
        _ => {
            return Err(ApiError::invalid(
                "",
                "the body is `{\"data\": {…}, \"key\": \"…\"}`",
            ))
        }
    };
    let delivery = Delivery {
        idempotency_key: idempotency_key(&headers)?,
        ..crate::triggers::event_envelope(envelope)
            .map_err(|(field, message)| ApiError::invalid(field, message))?
    };
    accept(
        &state,
        &identity.workflow,
        &identity.trigger,
        Door::Push,
        delivery,
    )
    .await
}

async fn accept(
    state: &ApiState,
    workflow: &str,
    trigger: &str,
    door: Door,
    delivery: Delivery,
) -> Result<Response, ApiError> {
    let acceptance = state
        .triggers
        .accept(workflow, trigger, door, delivery, Utc::now())
        .await
        .map_err(trigger_error)?;
    Ok(match acceptance {
        Acceptance::Accepted {
            event_id,
            created,
            run_id,
        } => (
            StatusCode::ACCEPTED,
            Json(json!({"id": event_id, "created": created, "runId": run_id})),
        )
            .into_response(),
        Acceptance::Filtered => (
            StatusCode::OK,
            Json(json!({"accepted": false, "reason": "the trigger's `when` is false for this event"})),
        )
            .into_response(),
    })
}

pub(crate) fn trigger_error(e: TriggerError) -> ApiError {
    match e {
        TriggerError::NoWorkflow(_) | TriggerError::NoTrigger { .. } => {
            ApiError::not_found(e.to_string())
        }
        TriggerError::Invalid { path, message } => ApiError::invalid(&path, message),
        TriggerError::Store(reason) => {
            tracing::error!(%reason, "a trigger's event could not be stored");
            ApiError::internal()
        }
    }
}
