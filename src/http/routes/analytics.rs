//! `GET /api/analytics/{realtime,historical,trends,models,cost,executions/{id},cache-stats,slow-queries}`.
//!
//! Handlers check the parameters (every problem at once, 400 naming each)
//! and call the analytics engine; answers carry `query` (kind, source,
//! time to answer).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::analytics::{Answer, MAX_WINDOW, Period, QueryInfo, Span};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::params;
use crate::http::state::AppState;
use crate::storage::RollupFilter;

/// The real-time windows.
const REALTIME: &[(&str, u64)] = &[("5m", 300), ("15m", 900), ("60m", 3600), ("1h", 3600)];

/// An answer as JSON: its data with `query` beside.
fn answered<T: Serialize>(a: &Answer<T>) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Answered<'a, T> {
        #[serde(flatten)]
        data: &'a T,
        query: &'a QueryInfo,
    }
    let body = serde_json::to_vec(&Answered {
        data: &*a.data,
        query: &a.query,
    })
    .map_err(ApiError::internal)?;
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

/// `suite`, `provider`, `model`.
fn filter(q: &mut params::Query) -> RollupFilter {
    RollupFilter {
        suite_id: q.integer("suite", 0, i64::MAX),
        provider: q.text("provider"),
        model: q.text("model"),
    }
}

/// `window` (ending now) or `from` and `to` (`to` defaults to now).
fn span(q: &mut params::Query, default: Duration) -> Span {
    let window = q.duration("window", MAX_WINDOW);
    let (from, to) = (q.time("from"), q.time("to"));
    let now = crate::storage::now_ms();
    match (window, from, to) {
        (Some(_), Some(_), _) => {
            q.problem("window", "give either window or from/to, not both");
            Span::Last(default)
        }
        (Some(w), None, None) => Span::Last(w),
        (Some(w), None, Some(_)) => {
            q.problem("to", "to needs from (or use window alone)");
            Span::Last(w)
        }
        (None, Some(from), to) => {
            let to = to.unwrap_or(now);
            if from >= to {
                q.problem("from", format!("from ({from}) must be before to ({to})"));
            } else if to - from > MAX_WINDOW.as_millis() as i64 {
                q.problem(
                    "to",
                    format!(
                        "the window is longer than {} days",
                        MAX_WINDOW.as_secs() / 86_400
                    ),
                );
            }
            Span::Between { from, to }
        }
        (None, None, Some(_)) => {
            q.problem("to", "to needs from");
            Span::Last(default)
        }
        (None, None, None) => Span::Last(default),
    }
}

/// The last 5, 15 or 60 minutes: throughput, pass and error rate,
/// latency percentiles, cost rate, per model.
pub(in crate::http) async fn realtime(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = params::Query::new(query);
    let names: Vec<&str> = REALTIME.iter().map(|(n, _)| *n).collect();
    let window = q
        .choice("window", &names, |w| {
            REALTIME.iter().find(|(n, _)| *n == w).map(|(_, s)| *s)
        })
        .unwrap_or(300);
    let f = filter(&mut q);
    q.finish()?;
    answered(
        &state
            .analytics
            .realtime(Duration::from_secs(window), f)
            .await?,
    )
}

/// Totals and per-model figures of any window (default the last 24 h).
pub(in crate::http) async fn historical(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = params::Query::new(query);
    let s = span(&mut q, Duration::from_secs(86_400));
    let f = filter(&mut q);
    q.finish()?;
    answered(&state.analytics.historical(s, f).await?)
}

/// A period in buckets and its change against the one before.
pub(in crate::http) async fn trends(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = params::Query::new(query);
    let period = q
        .choice("period", &Period::NAMES, Period::parse)
        .unwrap_or(Period::Day);
    let f = filter(&mut q);
    q.finish()?;
    answered(&state.analytics.trends(period, f).await?)
}

/// Per provider and model (default the last 7 days).
pub(in crate::http) async fn models(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = params::Query::new(query);
    let s = span(&mut q, Duration::from_secs(7 * 86_400));
    let f = filter(&mut q);
    q.finish()?;
    answered(&state.analytics.models(s, f).await?)
}

/// Spend by model, suite and day, and the monthly projection (default the
/// last 30 days).
pub(in crate::http) async fn cost(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = params::Query::new(query);
    let s = span(&mut q, Duration::from_secs(30 * 86_400));
    let f = filter(&mut q);
    q.finish()?;
    answered(&state.analytics.cost(s, f).await?)
}

/// One execution: summary, per model, a page of tests, slowest and most failing.
pub(in crate::http) async fn execution(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = params::id("execution", &id)?;
    let mut q = params::Query::new(query);
    let (limit, offset) = q.paging();
    q.finish()?;
    answered(
        &state
            .analytics
            .execution(id, limit as usize, offset as usize)
            .await?,
    )
}

/// Hits, misses, hit rate and entries of every analytics cache.
pub(in crate::http) async fn cache_stats(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "caches": state.analytics.cache_stats() }))
}

/// The slowest recent queries, newest first.
pub(in crate::http) async fn slow_queries(
    State(state): State<AppState>,
) -> Json<serde_json::Value> {
    Json(json!({ "queries": state.analytics.slow_queries() }))
}
