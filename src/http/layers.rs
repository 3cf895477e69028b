//! Middleware for every route: request metrics and the body size limit.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::metrics::HttpMetrics;

/// Label for requests that matched no route: one series, not one per path.
const UNMATCHED: &str = "unmatched";

/// Decrements the in-flight gauge even if the request future is dropped.
struct InFlight<'a>(&'a HttpMetrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// Counts and times every request by method, route template and status.
pub(super) async fn track_metrics(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let http = &state.metrics.http;
    let started = Instant::now();
    let method = req.method().clone();
    let route = matched.as_ref().map_or(UNMATCHED, |m| m.as_str());
    http.in_flight.inc();
    let _guard = InFlight(http);
    let response = next.run(req).await;
    let method = method.as_str();
    http.duration
        .with_label_values(&[method, route])
        .observe(started.elapsed().as_secs_f64());
    http.requests
        .with_label_values(&[method, route, response.status().as_str()])
        .inc();
    response
}

/// Refuses a declared body over the limit before reading any of it; bodies
/// without a length are cut off by `DefaultBodyLimit` while extracting.
pub(super) async fn limit_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = super::body_limit(req.uri().path());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::payload_too_large(limit).into_response();
    }
    next.run(req).await
}
