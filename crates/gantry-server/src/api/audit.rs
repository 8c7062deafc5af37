//! The audit log's door: who made a request, for the store to record with the change
//! ([`Caller`]), and `GET /audit` to read the log back (admins only, newest first). No route
//! changes or deletes an audit event; the store refuses it too.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::Json;
use chrono::{DateTime, Utc};
use gantry_store::{Actor, ActorKind, Audit, AuditEvent, AuditFilter, PageRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::openapi as doc;
use super::time_json;
use super::ApiState;
use crate::authz::Principal;

/// The header a caller may send to tie its request to the audit log (and that proxies set).
pub const REQUEST_ID: &str = "x-request-id";

/// Who made this request, from where: the `Audit` every change through the API is stored with.
/// The principal comes from the guard; the request id from `X-Request-Id` when the caller sent
/// a sane one (1 to 128 letters, digits, `-`, `_`, `.`, `:`), else a new one; the source is
/// the peer address.
pub struct Caller(pub Audit);

impl Caller {
    pub fn audit(&self) -> &Audit {
        &self.0
    }
}

/// The audit actor of a principal.
pub fn actor_of(principal: &Principal) -> Actor {
    let kind = if principal.id.starts_with("user:") {
        ActorKind::User
    } else if principal.id.starts_with("service:") {
        ActorKind::ServiceAccount
    } else if principal.is_agent() {
        ActorKind::Agent
    } else {
        ActorKind::Admin
    };
    Actor {
        kind,
        id: principal.id.clone(),
        name: principal.name.clone(),
    }
}

fn request_id(parts: &Parts) -> String {
    let sent = parts
        .headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        });
    match sent {
        Some(id) => id.to_owned(),
        None => gantry_store::new_id().unwrap_or_else(|_| "unknown".to_owned()),
    }
}

/// The peer's address, when the server was served with connection info.
pub fn source_of(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Arc<Principal>>()
            .ok_or_else(|| ApiError::unauthorized("a valid API key is required"))?;
        Ok(Caller(Audit {
            actor: actor_of(principal),
            request_id: Some(request_id(parts)),
            source: source_of(parts),
            at: Utc::now(),
        }))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// A resource and everything under it: `workflow/deploy` also finds
    /// `workflow/deploy/secret/token`.
    resource: Option<String>,
    /// An actor's id (`user:<id>`, `service:<id>`, `admin`, `trigger:<workflow>/<name>`) or
    /// name (an email, a service account's name).
    actor: Option<String>,
    /// An action (`workflow.put`) or all actions of a kind (`workflow`).
    action: Option<String>,
    /// Events at or after this time (RFC 3339).
    since: Option<String>,
    /// Events before this time (RFC 3339).
    until: Option<String>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
    /// At most this many events (default 100, at most 1000).
    limit: Option<u32>,
}

fn instant(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::invalid(
                    field,
                    format!("`{field}` is an RFC 3339 time, e.g. 2026-01-31T12:00:00Z"),
                )
            })
    })
    .transpose()
}

pub(crate) fn event_json(e: &AuditEvent) -> Value {
    json!({
        "seq": e.seq,
        "at": time_json(Some(e.at)),
        "actor": {"kind": e.actor.kind.as_str(), "id": e.actor.id, "name": e.actor.name},
        "action": e.action,
        "resource": e.resource,
        "before": e.before,
        "after": e.after,
        "requestId": e.request_id,
        "source": e.source,
    })
}

/// Lists audit events, newest first, narrowed by resource, actor, action and time.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "access",
    operation_id = "listAuditEvents",
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of audit events", body = doc::AuditPage),
        (status = 422, description = "A bad time or cursor", body = doc::Error),
    ),
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = AuditFilter {
        resource: q.resource.filter(|s| !s.is_empty()),
        actor: q.actor.filter(|s| !s.is_empty()),
        action: q.action.filter(|s| !s.is_empty()),
        since: instant("since", q.since.as_deref())?,
        until: instant("until", q.until.as_deref())?,
    };
    let page = state
        .store
        .list_audit(
            &filter,
            &PageRequest {
                after: q.after,
                limit: q.limit.unwrap_or(100),
            },
        )
        .await?;
    let items: Vec<Value> = page.items.iter().map(event_json).collect();
    Ok(Json(json!({"items": items, "next": page.next})))
}

/// The peer's address as text (`None` when the server was not served with connection info).
pub struct Peer(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(source_of(parts)))
    }
}
