//! `ApiError`: the one error type handlers return, and the only place that
//! maps errors to HTTP status codes.
//!
//! Bodies are always `{"error":{"code","message"}}`. 4xx messages say what
//! was wrong with the request; 5xx messages carry no internals (the details
//! are logged). A request that cannot be read at all is 400; one that reads
//! but says something invalid is 422, with every problem located.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::analytics::AnalyticsError;
use crate::monitor::MonitorError;
use crate::optimize::OptimizeError;
use crate::progress::ProgressError;
use crate::queue::QueueError;
use crate::reports::ReportError;
use crate::storage::StorageError;
use crate::suite::Problem;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Every problem, each with its location, when there are several.
    problems: Vec<Problem>,
}

impl ApiError {
    /// Any status with a stable machine-readable code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// 422 listing every problem of the request.
    pub fn invalid(code: &'static str, problems: Vec<Problem>) -> Self {
        let message = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message,
            problems,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: missing or wrong bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404: nothing here.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413: the body is larger than allowed.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 500: logs `detail` and answers without it.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }

    /// 503: try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if !self.problems.is_empty() {
            error["problems"] = json!(self.problems);
        }
        let body = Json(json!({ "error": error }));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Busy { .. } => {
                tracing::warn!(error = %e, "database busy");
                Self::unavailable("the database is busy; retry shortly")
            }
            StorageError::Closed => Self::unavailable("the service is shutting down"),
            other => Self::internal(other),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::SuiteNotFound(_) | QueueError::NotFound(_) => {
                Self::not_found(e.to_string())
            }
            QueueError::InvalidSuite(s) => Self::invalid("invalid_suite", s.problems),
            QueueError::InvalidRequest(m) => {
                Self::invalid("invalid_request", vec![Problem::new("", m)])
            }
            QueueError::AlreadyFinished { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            QueueError::ShuttingDown => Self::unavailable(e.to_string()),
            QueueError::Storage(s) => s.into(),
        }
    }
}

impl From<MonitorError> for ApiError {
    fn from(e: MonitorError) -> Self {
        match e {
            MonitorError::UnknownMetric { .. } => Self::not_found(e.to_string()),
            MonitorError::Storage(s) => s.into(),
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Invalid(problems) => Self::invalid("invalid_report", problems),
            ReportError::NotFound(m) => Self::not_found(m),
            ReportError::Template(m) => Self::internal(m),
            ReportError::Storage(s) => s.into(),
            ReportError::Queue(q) => q.into(),
        }
    }
}

impl From<OptimizeError> for ApiError {
    fn from(e: OptimizeError) -> Self {
        match e {
            OptimizeError::Invalid(problems) => Self::invalid("invalid_request", problems),
            OptimizeError::NotFound(m) => Self::not_found(m),
            OptimizeError::Storage(s) => s.into(),
            OptimizeError::Queue(q) => q.into(),
        }
    }
}

impl From<AnalyticsError> for ApiError {
    fn from(e: AnalyticsError) -> Self {
        match e {
            AnalyticsError::ExecutionNotFound(_) => Self::not_found(e.to_string()),
            AnalyticsError::Storage(s) => s.into(),
        }
    }
}

impl From<ProgressError> for ApiError {
    fn from(e: ProgressError) -> Self {
        Self::unavailable(e.to_string())
    }
}

impl From<WebSocketUpgradeRejection> for ApiError {
    fn from(rejection: WebSocketUpgradeRejection) -> Self {
        Self::new(
            rejection.status(),
            "websocket_upgrade_required",
            format!(
                "{}: /ws speaks WebSocket (see docs/websocket.md)",
                rejection.body_text()
            ),
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let text = rejection.body_text();
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a request body with Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_json", text)
            }
            JsonRejection::JsonDataError(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", text)
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", text)
            }
            other => Self::new(other.status(), "bad_request", text),
        }
    }
}
