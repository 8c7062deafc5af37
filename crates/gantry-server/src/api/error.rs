//! The one table from errors to HTTP: a status, a stable `snake_case` code, a message, and the
//! path of the bad field when there is one. Internal details (SQL, panics) are logged with a
//! request id and never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gantry_store::StoreError;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub path: Option<Box<str>>,
    /// Extra machine-readable detail (the diagnostics of an invalid workflow).
    pub details: Option<Box<Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            path: None,
            details: None,
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn invalid(path: &str, message: impl Into<String>) -> Self {
        ApiError {
            path: Some(path.into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
        }
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed; the cause is in its log",
        )
    }
}

/// A 422 coded `code` listing every problem of the `what` with its path in
/// `details.problems`; the message quotes the first.
pub fn problems(
    code: &'static str,
    what: &str,
    problems: &[gantry_catalog::schema::Problem],
) -> ApiError {
    let first = problems.first();
    let quoted = first.map_or(String::new(), |p| p.to_string());
    ApiError {
        path: first.map(|p| p.path.clone().into()),
        details: Some(Box::new(json!({ "problems": problems }))),
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            match problems.len() {
                1 => format!("the {what} has a problem: {quoted}"),
                n => format!("the {what} has {n} problems; the first: {quoted}"),
            },
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(what) => ApiError::new(StatusCode::CONFLICT, "conflict", what),
            StoreError::InvalidCursor => {
                ApiError::invalid("after", "this page cursor is not valid")
            }
            StoreError::Database(reason) => {
                // The reason may hold SQL: for the log only.
                tracing::error!(%reason, "store error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "code": self.code,
            "message": self.message,
            "path": self.path,
        });
        if let Some(details) = self.details {
            body["details"] = *details;
        }
        (self.status, Json(body)).into_response()
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}
