//! `GET /api/performance/health`

use axum::extract::State;
use axum::http::StatusCode;

use crate::health::HealthReport;
use crate::http::extract::Json;
use crate::http::state::AppState;

/// 200 when the database reads and writes, 503 otherwise; the body says which.
pub(in crate::http) async fn show(
    State(state): State<AppState>,
) -> (StatusCode, Json<HealthReport>) {
    let report = state.health.check().await;
    let status = if report.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}
