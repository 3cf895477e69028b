//! Middleware for every route: request metrics, panics turned into 500
//! answers, and the body size limit.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures_util::FutureExt;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
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
    track(&state.metrics.http, matched, req, next).await
}

async fn track(
    http: &HttpMetrics,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
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

/// Answers a handler's panic with a 500 in our JSON shape (and counts it)
/// instead of dropping the connection. Runs inside [`track_metrics`], so
/// the 500 is in `promptgauge_http_requests_total` and the error-rate alert
/// sees it.
pub(super) async fn catch_panic(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    answer_panics(&state.metrics.http, req, next).await
}

async fn answer_panics(http: &HttpMetrics, req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(payload) => {
            http.panics.inc();
            ApiError::internal(format!(
                "request handler panicked: {}",
                panic_message(&*payload)
            ))
            .into_response()
        }
    }
}

/// The text a panic was raised with, when it has one.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Longest request target (path and query) read, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest sum of header names and values read, in bytes. hyper closes a
/// connection whose request head passes its own buffer (about 400 KiB)
/// without a body; below that every refusal is ours, in JSON.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Every error leaves in our JSON shape: a request target or headers over
/// the limits are refused here (414, 431), and an error produced below
/// without a JSON body (an extractor's plain-text rejection, a body cut
/// off by its limit or its timeout) is rewritten with its status kept.
pub(super) async fn json_errors(req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {uri} bytes; at most {MAX_URI_BYTES} are read"),
        )
        .into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the headers are {headers} bytes; at most {MAX_HEADER_BYTES} are read"),
        )
        .into_response();
    }
    let response = next.run(req).await;
    let status = response.status();
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    // A rejection's text is short and says what was wrong; a 5xx's is not
    // shown.
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    if status.is_server_error() {
        return ApiError::internal(format!("{status}: {text}")).into_response();
    }
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_owned()
    } else {
        text
    };
    ApiError::new(status, code_of(status), message).into_response()
}

/// The stable code of a status we did not produce ourselves.
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "invalid_request",
        431 => "headers_too_large",
        _ => "bad_request",
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::StatusCode;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::metrics::Metrics;

    async fn panics_with_str() -> &'static str {
        panic!("slice index out of range")
    }

    async fn panics_with_string() -> &'static str {
        std::panic::panic_any(format!("at {}", 7))
    }

    /// The real layers, in the router's order, around routes that panic.
    fn app(metrics: &Arc<Metrics>) -> Router {
        let (m1, m2) = (metrics.clone(), metrics.clone());
        Router::new()
            .route("/str", get(panics_with_str))
            .route("/string", get(panics_with_string))
            .route("/ok", get(|| async { "fine" }))
            .layer(from_fn(move |req, next| {
                let m = m1.clone();
                async move { answer_panics(&m.http, req, next).await }
            }))
            .layer(from_fn(move |matched: Option<MatchedPath>, req, next| {
                let m = m2.clone();
                async move { track(&m.http, matched, req, next).await }
            }))
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_counted_500_in_our_json_shape() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let app = app(&metrics);
        for path in ["/str", "/string", "/ok"] {
            let req = Request::get(path).body(Body::empty()).unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let body = to_bytes(res.into_body(), 1 << 16).await.unwrap();
            if path == "/ok" {
                assert_eq!((status, &body[..]), (StatusCode::OK, &b"fine"[..]));
                continue;
            }
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["code"], "internal", "{v}");
            // No internals leave: the panic's text is only logged.
            assert!(!v.to_string().contains("slice"), "{v}");
            let count = |route| {
                metrics
                    .http
                    .requests
                    .with_label_values(&["GET", route, "500"])
                    .get()
            };
            assert_eq!(count(path), 1, "{path}");
        }
        assert_eq!(metrics.http.panics.get(), 2);
    }
}
