//! `GET /api/performance/{overview,metrics,metrics/{name},alerts,bottlenecks,recommendations,export}`:
//! the monitor's figures as JSON. Health is in `health.rs`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::params;
use crate::http::state::AppState;
use crate::monitor::{MAX_WINDOW, MetricWindow, Overview};
use crate::storage::now_ms;

/// Window when none is asked for.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// Signals with their thresholds and status, active alerts, uptime, throughput.
pub(in crate::http) async fn overview(State(state): State<AppState>) -> Json<Overview> {
    Json(state.monitor.overview())
}

/// Every tracked metric with its latest value.
pub(in crate::http) async fn metrics(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "metrics": state.monitor.tracked() }))
}

/// One metric over `?window=` (default 5m): current, min, max, avg, p95, samples.
pub(in crate::http) async fn metric(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<MetricWindow>, ApiError> {
    let mut q = params::Query::new(query);
    let window = q.duration("window", MAX_WINDOW).unwrap_or(DEFAULT_WINDOW);
    q.finish()?;
    Ok(Json(state.monitor.metric(&name, window).await?))
}

/// Active alerts, or with `?state=resolved` the history: resolved since
/// `since` (unix ms or a duration ago; default 24h), newest first, `limit`
/// at most (default 50).
pub(in crate::http) async fn alerts(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut q = params::Query::new(query);
    let which = q.choice("state", &["active", "resolved"], |s| {
        matches!(s, "active" | "resolved").then(|| s.to_owned())
    });
    let since = q.since("since", now_ms());
    let (limit, _) = q.paging();
    q.finish()?;
    match which.as_deref() {
        Some("resolved") => {
            let since = since.unwrap_or(now_ms() - 86_400_000);
            let alerts = state.monitor.resolved_alerts(since, limit).await?;
            Ok(Json(
                json!({ "state": "resolved", "since": since, "alerts": alerts }),
            ))
        }
        _ => Ok(Json(
            json!({ "state": "active", "alerts": state.monitor.active_alerts() }),
        )),
    }
}

/// Components ranked by p95 and share of time over `?window=` (default 5m).
pub(in crate::http) async fn bottlenecks(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut q = params::Query::new(query);
    let window = q.duration("window", MAX_WINDOW).unwrap_or(DEFAULT_WINDOW);
    q.finish()?;
    Ok(Json(json!(state.monitor.bottlenecks(window))))
}

/// Advice from the current figures, each with its evidence.
pub(in crate::http) async fn recommendations(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "recommendations": state.monitor.recommendations() }))
}

/// Everything above as one document, for analysis elsewhere.
pub(in crate::http) async fn export(
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let m = &state.monitor;
    let day_ago = now_ms() - 86_400_000;
    Ok(Json(json!({
        "generatedAt": crate::common::time::rfc3339(now_ms()),
        "version": env!("CARGO_PKG_VERSION"),
        "overview": m.overview(),
        "thresholds": m.thresholds(),
        "metrics": m.tracked(),
        "alerts": {
            "active": m.active_alerts(),
            "resolvedLastDay": m.resolved_alerts(day_ago, 1000).await?,
        },
        "bottlenecks": {
            "5m": m.bottlenecks(Duration::from_secs(300)),
            "1h": m.bottlenecks(Duration::from_secs(3600)),
        },
        "recommendations": m.recommendations(),
    })))
}
