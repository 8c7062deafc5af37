//! The metadata API's error table: every failure a handler can answer with, its HTTP status,
//! and Relay's error envelope.
//!
//! Relay's metadata API answered errors with an `errawr` envelope (core
//! `pkg/metadataapi/errors/errors.yaml`, written by leg's `httputil/api.WriteError`):
//! `{"error": {"domain": "rma", "section", "code", "title", "description": {"friendly",
//! "technical"}}}`. Gantry sends the same envelope and adds `message` (and `path` where an
//! expression failed) so it also reads like the rest of Gantry's API. Relay's clients only look
//! at the status code (`relay-sdk` calls `raise_for_status`, `ni` compares codes), so the body
//! is for people and logs.
//! Messages never carry internals: a backend's `Unavailable` reason is logged, not sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use gantry_engine::metadata::MetadataError;
use gantry_workflow::expr::EvalError;

/// A failed request, ready to be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    section: &'static str,
    code: &'static str,
    title: &'static str,
    message: String,
    path: Option<String>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        section: &'static str,
        code: &'static str,
        title: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            section,
            code,
            title,
            message: message.into(),
            path: None,
        }
    }

    pub(crate) fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "api",
            "authentication_error",
            "Unauthorized",
            "The provided credential information did not authenticate this request.",
        )
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "model",
            "authorization_error",
            "Unauthorized",
            message,
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "model",
            "not_found_error",
            "Not found",
            message,
        )
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "api",
            "malformed_request_error",
            "Malformed request",
            message,
        )
    }

    pub(crate) fn unknown_media_type(media_type: &str) -> Self {
        // The media type is the client's own header, echoed back; cap it so a huge header
        // does not become a huge body.
        let shown: String = media_type.chars().take(100).collect();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "api",
            "unknown_request_media_type_error",
            "Unknown media type",
            format!("We don't know how to decode a request body with media type `{shown}`."),
        )
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "api",
            "request_too_large_error",
            "Request too large",
            format!("The request body is larger than {limit} bytes."),
        )
    }

    pub(crate) fn unsupported_language(lang: &str) -> Self {
        let shown: String = lang.chars().take(100).collect();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "expression",
            "unsupported_language_error",
            "Unsupported query language",
            format!(
                "We don't know the query language `{shown}` \
                 (use path, path-template, jsonpath or jsonpath-template)."
            ),
        )
    }

    /// A query or expression that could not be evaluated (syntax, missing key, type error).
    pub(crate) fn evaluation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "expression",
            "evaluation_error",
            "Evaluation error",
            message,
        )
    }

    /// An error the expression evaluator reported inside the caller's own `spec` or `env`.
    pub(crate) fn from_eval(e: &EvalError) -> Self {
        let mut out = if e.code == "condition_type" {
            Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "condition",
                "type_error",
                "Type error",
                e.message.clone(),
            )
        } else {
            Self::evaluation(e.message.clone())
        };
        if !e.path.is_empty() {
            out.path = Some(e.path.clone());
        }
        out
    }

    /// Not served under this path (Relay's router answered unknown paths the same way).
    pub(crate) fn no_route() -> Self {
        Self::not_found("The resource you requested does not exist.")
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "api",
            "method_not_allowed_error",
            "Method not allowed",
            "This resource does not accept that method.",
        )
    }
}

impl From<MetadataError> for ApiError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::NotFound(m) => ApiError::not_found(m),
            MetadataError::Forbidden(m) => ApiError::forbidden(m),
            MetadataError::Conflict(m) => ApiError::new(
                StatusCode::CONFLICT,
                "model",
                "conflict_error",
                "Conflict",
                m,
            ),
            MetadataError::Invalid(m) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "model",
                "validation_error",
                "Invalid request",
                m,
            ),
            MetadataError::Unavailable(reason) => {
                // The reason may name a database or a file; it stays in the server's log.
                tracing::warn!(%reason, "metadata backend unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "model",
                    "unavailable_error",
                    "Unavailable",
                    "The run's data is not available right now; retry shortly.",
                )
            }
        }
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    domain: &'static str,
    section: &'static str,
    code: &'static str,
    title: &'static str,
    description: Description<'a>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
}

#[derive(Serialize)]
struct Description<'a> {
    friendly: &'a str,
    technical: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            error: ErrorBody {
                domain: "rma",
                section: self.section,
                code: self.code,
                title: self.title,
                description: Description {
                    friendly: &self.message,
                    technical: &self.message,
                },
                message: &self.message,
                path: self.path.as_deref(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gantry-metadata\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
