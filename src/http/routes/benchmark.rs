//! `GET /api/performance/benchmark`, `POST /api/performance/benchmark`,
//! `POST /api/performance/benchmark/cancel`.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::bench::suite::Scenario;
use crate::bench::suite::service::StartError;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Query};
use crate::http::params;
use crate::http::state::AppState;
use crate::suite::Problem;

/// The newest run (`?scenario=`), or one (`?id=`), with its comparison
/// against its baseline; `running` names the run going on.
pub(in crate::http) async fn show(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = params::Query::new(query);
    let id = q.integer("id", 1, i64::MAX);
    let scenario = q.text("scenario");
    q.finish()?;
    let running = state.benchmarks.running();
    match state.benchmarks.run(id, scenario).await? {
        Some(run) => {
            let mut v = serde_json::to_value(&run).unwrap_or_default();
            v["running"] = json!(running);
            Ok(axum::Json(v).into_response())
        }
        None => Err(ApiError::not_found(match (id, running) {
            (Some(id), _) => format!("no benchmark run {id}"),
            (None, Some(r)) => format!("no finished benchmark run yet; run {r} is going"),
            (None, None) => {
                "no benchmark run yet: POST /api/performance/benchmark {\"scenario\": \"smoke\"}"
                    .to_owned()
            }
        })),
    }
}

/// `{scenario: "smoke" | {...}, saveBaseline?}`: starts a run (202); 409
/// while another is going.
pub(in crate::http) async fn start(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let Value::Object(o) = &body else {
        return Err(ApiError::bad_request(
            "expected a JSON object {scenario, saveBaseline}",
        ));
    };
    let mut problems = Vec::new();
    for key in o
        .keys()
        .filter(|k| !matches!(k.as_str(), "scenario" | "saveBaseline"))
    {
        let shown: String = key.chars().take(64).collect();
        problems.push(Problem::new(
            shown,
            "unknown field (allowed: scenario, saveBaseline)",
        ));
    }
    let save_baseline = match o.get("saveBaseline") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push(Problem::new("saveBaseline", "must be true or false"));
            false
        }
    };
    let scenario = match o.get("scenario") {
        Some(Value::String(name)) => match Scenario::shipped(name) {
            Some(Ok(s)) => Some(s),
            Some(Err(ps)) => {
                problems.extend(ps);
                None
            }
            None => {
                let names: Vec<&str> = crate::bench::suite::scenario::SHIPPED
                    .iter()
                    .map(|(n, _)| *n)
                    .collect();
                let shown: String = name.chars().take(64).collect();
                problems.push(Problem::new(
                    "scenario",
                    format!(
                        "unknown scenario {shown:?}: one of {}, or a scenario object",
                        names.join(", ")
                    ),
                ));
                None
            }
        },
        Some(v @ Value::Object(_)) => match Scenario::from_posted_json(v) {
            Ok(s) => Some(s),
            Err(ps) => {
                problems.extend(ps.into_iter().map(|p| {
                    let location = if p.location.is_empty() || p.location == "scenario" {
                        "scenario".to_owned()
                    } else {
                        format!("scenario.{}", p.location)
                    };
                    Problem::new(location, p.message)
                }));
                None
            }
        },
        Some(_) => {
            problems.push(Problem::new(
                "scenario",
                "must be a scenario name or a scenario object",
            ));
            None
        }
        None => {
            problems.push(Problem::new(
                "scenario",
                "missing: smoke, standard, stress, or a scenario object",
            ));
            None
        }
    };
    let scenario = match scenario {
        Some(s) if problems.is_empty() => s,
        _ => return Err(ApiError::invalid("invalid_request", problems)),
    };
    let name = scenario.name.clone();
    match state.benchmarks.start(scenario, save_baseline).await {
        Ok(id) => {
            let location = format!("/api/performance/benchmark?id={id}");
            Ok((
                StatusCode::ACCEPTED,
                [(LOCATION, location.clone())],
                axum::Json(
                    json!({"id": id, "scenario": name, "status": "running", "location": location}),
                ),
            )
                .into_response())
        }
        Err(StartError::Running(id)) => Ok((
            StatusCode::CONFLICT,
            axum::Json(json!({"error": {
                "code": "benchmark_running",
                "message": format!("benchmark run {id} is still running; one at a time"),
                "runningId": id,
            }})),
        )
            .into_response()),
        Err(StartError::Storage(e)) => Err(e.into()),
    }
}

/// Cancels the run going on: it stops after the sample it is measuring and
/// is stored as cancelled (`GET ...?id=` shows it). 404 when none is going.
pub(in crate::http) async fn cancel(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.benchmarks.cancel() {
        Some(id) => Ok(axum::Json(json!({"id": id, "status": "cancelling"})).into_response()),
        None => Err(ApiError::not_found("no benchmark run is going")),
    }
}
