//! The API's one error shape (DESIGN §7): `{"error": {"code", "message", "details"}}` with a
//! fitting status. Internal failures are logged with their cause and answered with a generic
//! message, so no database or platform detail leaks to a caller.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tidemark_jobs::JobsError;
use tidemark_store::StoreError;
use utoipa::ToSchema;

/// An answer other than success.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: serde_json::Value,
    /// For 429: when to ask again (also sent as `Retry-After`).
    pub retry_after: Option<Duration>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `not_found`, `invalid_body`, `cooldown`, …
    pub code: String,
    /// What was wrong, for a person.
    pub message: String,
    /// More about it (the field at fault, the time left), or `null`.
    #[schema(value_type = Object, nullable)]
    pub details: serde_json::Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// A failure the caller cannot fix: logged in full, answered in general terms.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context}; the server log has the cause"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tidemark\""),
            );
        }
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::NotFound { entity, .. } => ApiError::not_found(entity),
            StoreError::UnknownConnection { name } => {
                ApiError::not_found(format!("connection {name:?}"))
            }
            StoreError::Conflict { .. } => ApiError::conflict(error.to_string()),
            StoreError::Invalid { detail, .. } => {
                ApiError::unprocessable("invalid", detail.clone())
            }
            StoreError::InvalidUrl { .. }
            | StoreError::Database { .. }
            | StoreError::Migrate(_)
            | StoreError::Corrupt { .. } => ApiError::internal("the store failed", &error),
        }
    }
}

impl From<JobsError> for ApiError {
    fn from(error: JobsError) -> Self {
        match error {
            JobsError::Store(error) => error.into(),
            JobsError::UnknownConnection(_) => ApiError::not_found("connection"),
            JobsError::Cooldown { what, until, left } => {
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                let message = JobsError::Cooldown { what, until, left }.to_string();
                ApiError {
                    retry_after: Some(left),
                    ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "cooldown", message)
                        .with_details(serde_json::json!({
                            "retry_after_secs": secs,
                            "until": until.0,
                        }))
                }
            }
            JobsError::Invalid(message) | JobsError::Schedule(message) => {
                ApiError::unprocessable("invalid", message)
            }
            error @ (JobsError::Queue { .. } | JobsError::QueueUrl { .. }) => {
                tracing::error!(%error, "the job queue failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_unavailable",
                    "the job queue is not answering; the request was not queued",
                )
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
