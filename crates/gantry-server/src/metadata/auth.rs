//! Who is calling: the token in the `Authorization` header, resolved to a [`Caller`] by the
//! backend.
//!
//! Relay's rule (core `pkg/authenticate/http.go`): HTTP Basic with an empty username or the
//! username `token` and the token as password (what `METADATA_API_URL=http://:TOKEN@host`
//! makes `requests` and Go's `net/http` send), or `Bearer <token>` with a case-insensitive
//! scheme. Anything else, and any token the backend does not know, is a 401.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use gantry_engine::metadata::Caller;

use super::error::ApiError;
use super::Shared;

/// The token a request carries, if its `Authorization` header has one in a form Relay accepts.
pub(crate) fn token_from_header(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        if !(user.is_empty() || user == "token") || password.is_empty() {
            return None;
        }
        Some(password.to_string())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        (!rest.is_empty()).then(|| rest.to_string())
    } else {
        None
    }
}

/// An authenticated caller; extracting it answers 401 for a missing or unknown token.
pub(crate) struct Authenticated(pub(crate) Caller);

impl FromRequestParts<Shared> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(token_from_header)
            .ok_or_else(ApiError::unauthenticated)?;
        state
            .backend
            .authenticate(&token)
            .map(Authenticated)
            .ok_or_else(ApiError::unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    #[test]
    fn accepts_relay_forms() {
        assert_eq!(token_from_header(&basic(":t0k")), Some("t0k".into()));
        assert_eq!(token_from_header(&basic("token:t0k")), Some("t0k".into()));
        // A colon inside the token belongs to the password.
        assert_eq!(token_from_header(&basic(":a:b")), Some("a:b".into()));
        assert_eq!(token_from_header("Bearer t0k"), Some("t0k".into()));
        assert_eq!(token_from_header("bearer t0k"), Some("t0k".into()));
    }

    #[test]
    fn rejects_other_forms() {
        assert_eq!(token_from_header(&basic("alice:t0k")), None);
        assert_eq!(token_from_header(&basic(":")), None);
        assert_eq!(token_from_header(&basic("no-colon")), None);
        assert_eq!(token_from_header("Basic !!!"), None);
        assert_eq!(token_from_header("Bearer "), None);
        assert_eq!(token_from_header("Bearer"), None);
        assert_eq!(token_from_header("Digest t0k"), None);
        assert_eq!(token_from_header(""), None);
    }
}
