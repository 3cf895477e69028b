//! `POST /api/suites`, `GET /api/suites`, `GET /api/suites/{id}`

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};

use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::params;
use crate::http::state::AppState;
use crate::queue::{Page, StoredSuite};
use crate::storage::SuiteRecord;
use crate::suite::Format;

/// Stores a suite sent as YAML or JSON (by `Content-Type`, else detected):
/// 201, or 200 with the stored one when the same document exists.
pub(in crate::http) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<StoredSuite>), ApiError> {
    let (source, format) = suite_body(&headers, body)?;
    let stored = state.queue.store_suite(source, format).await?;
    let status = if stored.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)))
}

/// The source text and its format.
pub(in crate::http) fn suite_body(
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(String, Format), ApiError> {
    let source = String::from_utf8(Vec::from(body))
        .map_err(|_| ApiError::bad_request("the suite is not UTF-8 text"))?;
    if source.trim().is_empty() {
        return Err(ApiError::bad_request(
            "empty body: send the suite as YAML or JSON",
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let format = if content_type.contains("json") {
        Format::Json
    } else if content_type.contains("yaml") {
        Format::Yaml
    } else {
        Format::detect(&source)
    };
    Ok((source, format))
}

/// Stored suites, newest first.
pub(in crate::http) async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Page<SuiteRecord>>, ApiError> {
    let mut q = params::Query::new(query);
    let (limit, offset) = q.paging();
    q.finish()?;
    Ok(Json(state.queue.suites(limit, offset).await?))
}

/// One suite with its source.
pub(in crate::http) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SuiteRecord>, ApiError> {
    let id = params::id("suite", &id)?;
    Ok(Json(state.queue.suite(id).await?))
}
