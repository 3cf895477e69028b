//! `POST /api/executions`, `GET /api/executions[/{id}]`,
//! `GET /api/executions/{id}/results`, `POST /api/executions/{id}/cancel`

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

use crate::export::ExportFormat;
use crate::http::error::ApiError;
use crate::http::extract::{Json, JsonBytes, Path, Query};
use crate::http::params;
use crate::http::state::AppState;
use crate::queue::{ExecutionView, Page, ResultView, SubmitRequest, Submitted, SuiteSource};
use crate::storage::{ExecutionStatus, Priority, ResultFilter};
use crate::suite::{Embedded, Envelope, Format, Problem};

const FIELDS: &[&str] = &[
    "suiteId",
    "suite",
    "providers",
    "maxConcurrency",
    "priority",
    "cache",
];

/// Starts an execution of a stored (`suiteId`) or inline (`suite`) suite.
/// An inline suite is read as the body streams by, its tests kept as text
/// until each is parsed, never as one tree.
pub(in crate::http) async fn create(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let envelope = Envelope::from_json(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("Failed to parse the request body as JSON: {e}"),
        )
    })?;
    drop(body);
    let request = submit_request(envelope)?;
    let submitted = state.queue.submit(request).await?;
    Ok((StatusCode::ACCEPTED, Json(submitted)))
}

/// Checks every field of the body, reporting all problems at once.
fn submit_request(envelope: Envelope) -> Result<SubmitRequest, ApiError> {
    let Envelope {
        fields: body,
        suite,
    } = envelope;
    let mut problems = Vec::new();
    let mut problem = |at: &str, msg: String| problems.push(Problem::new(at, msg));
    for key in body.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        problem(
            key,
            format!("unknown field; expected one of {}", FIELDS.join(", ")),
        );
    }
    let suite = match (body.get("suiteId"), suite) {
        (Some(_), Some(_)) => {
            problem("suite", "give either `suiteId` or `suite`, not both".into());
            None
        }
        (Some(v), None) => match v.as_i64().filter(|n| *n > 0) {
            Some(id) => Some(SuiteSource::Stored(id)),
            None => {
                problem("suiteId", format!("must be a positive integer, got {v}"));
                None
            }
        },
        (None, Some(Embedded::Text(s))) => Some(SuiteSource::Inline {
            format: Format::detect(&s),
            source: s,
        }),
        (None, Some(Embedded::Document(doc))) => Some(SuiteSource::Document(doc)),
        (None, Some(Embedded::Other(v))) => {
            problem(
                "suite",
                format!("must be a YAML/JSON string or an object, got {v}"),
            );
            None
        }
        (None, None) => {
            problem(
                "suite",
                "missing: give `suiteId` (a stored suite) or `suite` (the suite itself)".into(),
            );
            None
        }
    };
    let providers = match body.get("providers") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        Some(v) => {
            problem(
                "providers",
                format!("must be a non-empty list of provider ids or labels, got {v}"),
            );
            None
        }
    };
    let max_concurrency = match body.get("maxConcurrency") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|n| (1..=10_000).contains(n)) {
            Some(n) => Some(n as u32),
            None => {
                problem(
                    "maxConcurrency",
                    format!("must be an integer from 1 to 10000, got {v}"),
                );
                None
            }
        },
    };
    let priority = match body.get("priority") {
        None | Some(Value::Null) => Priority::Normal,
        Some(v) => match v.as_str().and_then(Priority::parse) {
            Some(p) => p,
            None => {
                problem(
                    "priority",
                    format!("must be one of high, normal, low, got {v}"),
                );
                Priority::Normal
            }
        },
    };
    let use_cache = match body.get("cache") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => {
            problem("cache", format!("must be true or false, got {v}"));
            None
        }
    };
    match suite {
        Some(suite) if problems.is_empty() => Ok(SubmitRequest {
            suite,
            providers,
            max_concurrency,
            priority,
            use_cache,
        }),
        _ => Err(ApiError::invalid("invalid_request", problems)),
    }
}

/// Executions, newest first, optionally one `status`.
pub(in crate::http) async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Page<ExecutionView>>, ApiError> {
    let mut q = params::Query::new(query);
    let (limit, offset) = q.paging();
    let status = q.choice(
        "status",
        &["pending", "running", "completed", "failed", "cancelled"],
        ExecutionStatus::parse,
    );
    q.finish()?;
    Ok(Json(state.queue.executions(status, limit, offset).await?))
}

/// One execution: totals, pass rate, cost, timing and live progress.
pub(in crate::http) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExecutionView>, ApiError> {
    let id = params::id("execution", &id)?;
    Ok(Json(state.queue.execution(id).await?))
}

/// Results: a JSON page, or a whole download (`format=promptfoo|jsonl|csv|junit`).
pub(in crate::http) async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = params::id("execution", &id)?;
    let mut q = params::Query::new(query);
    let format = q.choice(
        "format",
        &["json", "promptfoo", "jsonl", "csv", "junit"],
        |f| match f {
            "json" => Some(None),
            other => ExportFormat::parse(other).map(Some),
        },
    );
    let filter = q.choice("filter", &["passed", "failed", "error"], |f| match f {
        "passed" => Some(ResultFilter::Passed),
        "failed" => Some(ResultFilter::Failed),
        "error" => Some(ResultFilter::Error),
        _ => None,
    });
    let (limit, offset) = q.paging();
    q.finish()?;
    match format.flatten() {
        None => {
            let page: Page<ResultView> = state.queue.results(id, filter, limit, offset).await?;
            Ok(Json(page).into_response())
        }
        Some(format) => {
            let stream = state.queue.export(id, format).await?;
            let body = Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other)));
            let name = match format {
                ExportFormat::Promptfoo => "json",
                ExportFormat::Jsonl => "jsonl",
                ExportFormat::Csv => "csv",
                ExportFormat::Junit => "xml",
            };
            let disposition = format!("attachment; filename=\"execution-{id}.{name}\"");
            Ok((
                [
                    (header::CONTENT_TYPE, format.content_type().to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                body,
            )
                .into_response())
        }
    }
}

/// Cancels: pending jobs dropped, running ones aborted, results kept.
pub(in crate::http) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExecutionView>, ApiError> {
    let id = params::id("execution", &id)?;
    state.queue.cancel(id).await?;
    // The same shape as `GET /api/executions/{id}`.
    Ok(Json(state.queue.execution(id).await?))
}
