//! `GET /api/performance/health`

use axum::extract::State;
use axum::http::StatusCode;

use crate::health::HealthReport;
use crate::http::extract::Json;
use crate::http::state::AppState;

/// `ok` or `degraded` (a warning alert fires): 200; `critical` (the
/// database fails to read or write, or a critical alert fires): 503. The
/// body says which.
pub(in crate::http) async fn show(
    State(state): State<AppState>,
) -> (StatusCode, Json<HealthReport>) {
    let report = state
        .health
        .check()
        .await
        .with_alerts(state.monitor.status());
    let status = if report.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}
