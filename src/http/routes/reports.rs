//! `POST /api/reports`, `GET /api/reports`, `GET /api/reports/{id}`.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::params;
use crate::http::state::AppState;
use crate::reports::{Format, Rendered, ReportSpec};
use crate::suite::Problem;

/// The document with its id (`Location`, `X-Report-Id`).
fn document(status: StatusCode, r: Rendered) -> Response {
    let location = format!("/api/reports/{}", r.id);
    (
        status,
        [
            (CONTENT_TYPE, r.format.content_type().to_owned()),
            (LOCATION, location),
            (
                axum::http::HeaderName::from_static("x-report-id"),
                r.id.to_string(),
            ),
        ],
        r.body,
    )
        .into_response()
}

fn format_problem(v: &Value) -> Problem {
    Problem::new(
        "format",
        format!("expected one of {}, got {v}", Format::NAMES.join(", ")),
    )
}

/// `{kind, params, format}`: makes, stores and returns the report (201).
pub(in crate::http) async fn create(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let Value::Object(body) = body else {
        return Err(ApiError::bad_request(
            "expected a JSON object {kind, params, format}",
        ));
    };
    let mut problems = Vec::new();
    for key in body
        .keys()
        .filter(|k| !matches!(k.as_str(), "kind" | "params" | "format"))
    {
        problems.push(Problem::new(
            key.as_str(),
            "unknown field (allowed: kind, params, format)",
        ));
    }
    let kind = match body.get("kind") {
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => {
            problems.push(Problem::new("kind", "must be a string"));
            None
        }
        None => {
            problems.push(Problem::new(
                "kind",
                "missing: one of execution, model-comparison, cost, trend, performance",
            ));
            None
        }
    };
    let format = match body.get("format") {
        None => Some(Format::Json),
        Some(v) => {
            let f = v.as_str().and_then(Format::parse);
            if f.is_none() {
                problems.push(format_problem(v));
            }
            f
        }
    };
    let spec = kind.map(|k| ReportSpec::parse(k, body.get("params").unwrap_or(&Value::Null)));
    let spec = match spec {
        Some(Ok(s)) => Some(s),
        Some(Err(crate::reports::ReportError::Invalid(ps))) => {
            problems.extend(ps);
            None
        }
        Some(Err(e)) => return Err(e.into()),
        None => None,
    };
    match (spec, format) {
        (Some(spec), Some(format)) if problems.is_empty() => Ok(document(
            StatusCode::CREATED,
            state.reports.generate(spec, format).await?,
        )),
        _ => Err(ApiError::invalid("invalid_report", problems)),
    }
}

/// Stored reports, newest first, paged.
pub(in crate::http) async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut q = params::Query::new(query);
    let (limit, offset) = q.paging();
    q.finish()?;
    let (items, total) = state.reports.list(limit, offset).await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|r| {
            let params: Value = serde_json::from_str(&r.params).unwrap_or(Value::Null);
            let mut v = serde_json::to_value(&r).unwrap_or_default();
            v["params"] = params;
            v
        })
        .collect();
    Ok(Json(
        json!({"items": items, "total": total, "limit": limit, "offset": offset}),
    ))
}

/// A stored report in `?format=` (default: the one it was made in),
/// rendered from its stored data.
pub(in crate::http) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = params::id("report", &id)?;
    let mut q = params::Query::new(query);
    let format = q.choice("format", &Format::NAMES, Format::parse);
    q.finish()?;
    Ok(document(
        StatusCode::OK,
        state.reports.stored(id, format).await?,
    ))
}
