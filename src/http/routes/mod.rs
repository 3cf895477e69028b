//! Handlers, one file per resource. Each extracts, calls one service
//! method and maps its error; nothing else.

pub(super) mod analytics;
pub(super) mod benchmark;
pub(super) mod executions;
pub(super) mod health;
pub(super) mod metrics;
pub(super) mod optimize;
pub(super) mod performance;
pub(super) mod reports;
pub(super) mod suites;
pub(super) mod ws;

use axum::http::{Method, Uri};

use super::error::ApiError;

/// Fallback for paths no route matches.
pub(super) async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

/// Fallback for a known path with a method it does not serve.
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
