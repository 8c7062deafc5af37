//! API key authentication: `Authorization: Bearer gantry_<prefix>_<secret>`. The prefix finds
//! the stored key; the secret is checked against its hash; revoked and expired keys are refused.
//! Every failure is the same 401, so a caller learns nothing about which part was wrong.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;

use super::error::ApiError;
use super::ApiState;
use crate::apikey;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub String);

pub(crate) async fn require_api_key(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let refused =
        || ApiError::unauthorized("a valid API key is required: Authorization: Bearer <key>");
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(refused)?;
    let (prefix, secret) = apikey::parse(presented).ok_or_else(refused)?;
    let key = match state.store.find_api_key(prefix).await {
        Ok(key) => key,
        Err(gantry_store::StoreError::NotFound(_)) => return Err(refused()),
        Err(e) => return Err(e.into()),
    };
    let now = Utc::now();
    let hash = String::from_utf8_lossy(&key.hash);
    if !apikey::verify(secret, &hash)
        || key.revoked_at.is_some()
        || key.expires_at.is_some_and(|at| at <= now)
    {
        return Err(refused());
    }
    // Best effort: a failed touch must not fail the request.
    if let Err(e) = state.store.touch_api_key(&key.id, now).await {
        tracing::warn!(error = %e, "could not record the API key's last use");
    }
    request.extensions_mut().insert(Principal(key.principal));
    Ok(next.run(request).await)
}
