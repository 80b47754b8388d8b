//! The API's one error type, mapped to an HTTP status and the body
//! `{"error": {"code", "message", "details"}}` in one place ([`ApiError::into_response`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tradewarden_engine::{EngineError, JobError, StoreError};

/// An error answer: its status, a stable machine-readable `code`, a message for people and
/// structured `details` (`null` when there are none).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    /// 401: no token, or one that is not configured.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a known token whose role or expert does not allow this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: the named resource does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413: the body is larger than `[server] max_body_bytes`.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is larger than [server] max_body_bytes ({limit} bytes) — send smaller batches"
            ),
        )
    }

    /// 400: the request cannot be read at all (a body that is not valid UTF-8 or cannot
    /// be received).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422: the request is well-formed but its values are not acceptable.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 422 with the problems of each item of a batch.
    pub fn invalid_items(message: impl Into<String>, details: Vec<ItemProblem>) -> ApiError {
        ApiError {
            details: json!(details),
            ..ApiError::invalid(message)
        }
    }

    /// 409: the request conflicts with the resource's state (a job ended before).
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 408: the request's work took longer than the server allows.
    pub fn timed_out(limit: std::time::Duration) -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request took longer than {} s and was stopped — its work may be done or not: read it back before asking again",
                limit.as_secs()
            ),
        )
    }

    /// 503: the server is stopping, or the database is not reachable.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: something failed on our side.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

/// One bad item of a batch: its 0-based `index` in the array, the `field` concerned (`null`
/// for the item as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ItemProblem {
    pub index: usize,
    pub field: Option<String>,
    pub message: String,
}

/// The body of every error answer (for the API's description).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What an error answer says.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `unauthorized`, `forbidden`, `not_found`, `conflict`, `payload_too_large`, `invalid`,
    /// `bad_request`, `unavailable`, `internal` or `broker`.
    pub code: String,
    pub message: String,
    /// `null`, or for a batch the problem of each bad item (for the jobs routes each bad
    /// field: `[{"field", "message"}]`, no `index`).
    pub details: Option<Vec<ItemProblem>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("not found: {what}")),
            e if e.is_transient() => ApiError::unavailable(format!(
                "{e} — the database is busy or unreachable; try again"
            )),
            e => ApiError::internal(e.to_string()),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownExpert(id) => ApiError::not_found(format!(
                "unknown expert {id}: no expert with this id is configured"
            )),
            EngineError::BadInput(lines) => {
                let details: Vec<ItemProblem> = lines
                    .into_iter()
                    .map(|(index, message)| item_problem(index, message))
                    .collect();
                ApiError::invalid_items(
                    format!("{} bad item(s); nothing was stored", details.len()),
                    details,
                )
            }
            EngineError::Store(e) => e.into(),
            EngineError::Broker(e) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "broker", format!("broker: {e}"))
            }
            e @ EngineError::LeaseLost(_) => ApiError::unavailable(e.to_string()),
            e => ApiError::internal(e.to_string()),
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        let message = e.to_string();
        match e {
            JobError::Invalid(fields) => ApiError {
                details: json!(fields),
                ..ApiError::invalid(message)
            },
            JobError::UnknownExpert(id) => ApiError::not_found(format!(
                "unknown expert {id}: no expert with this id is configured"
            )),
            JobError::NotFound(id) => {
                ApiError::not_found(format!("unknown job {id}: GET /api/v1/jobs lists them"))
            }
            JobError::AlreadyEnded { .. } => {
                ApiError::conflict(format!("{message}: a job ends once"))
            }
            JobError::Store(e) => e.into(),
        }
    }
}

/// A batch problem as the engine words it (`"field: message"`, or a message about the whole
/// item), at `index`.
fn item_problem(index: usize, message: String) -> ItemProblem {
    let field = message
        .split_once(": ")
        .filter(|(f, _)| !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    match field {
        Some((f, m)) => ItemProblem {
            index,
            field: Some(f.to_string()),
            message: m.to_string(),
        },
        None => ItemProblem {
            index,
            field: None,
            message,
        },
    }
}
