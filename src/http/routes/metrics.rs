//! `GET /metrics`: the Prometheus text exposition of the one registry.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::metrics::CONTENT_TYPE as EXPOSITION;

/// Encodes every family.
pub(in crate::http) async fn show(
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    let body = state.metrics.encode().map_err(ApiError::internal)?;
    Ok(([(CONTENT_TYPE, EXPOSITION)], body))
}
