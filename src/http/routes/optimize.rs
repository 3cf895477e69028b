//! `POST /api/optimization/analyze`, `POST /api/optimization/verify`,
//! `GET /api/optimization/verify/{id}`, `GET /api/optimization/suggestions`.

use std::collections::HashMap;

use crate::common::json::{kind, short};
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::params;
use crate::http::state::AppState;
use crate::optimize::{AnalyzeRequest, VerifyRequest};
use crate::suite::Problem;

/// Reads typed fields of a JSON object, collecting every problem.
struct Fields<'a> {
    body: &'a Map<String, Value>,
    problems: Vec<Problem>,
}

impl<'a> Fields<'a> {
    fn new(body: &'a Value, allowed: &[&str], shape: &str) -> Result<Self, ApiError> {
        let Value::Object(body) = body else {
            return Err(ApiError::bad_request(format!(
                "expected a JSON object {shape}"
            )));
        };
        let mut problems = Vec::new();
        for key in body.keys().filter(|k| !allowed.contains(&k.as_str())) {
            let shown: String = key.chars().take(64).collect();
            problems.push(Problem::new(
                shown,
                format!("unknown field (allowed: {})", allowed.join(", ")),
            ));
        }
        Ok(Self { body, problems })
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.body.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problems.push(Problem::new(
                    key,
                    format!("must be a string, got {}", kind(other)),
                ));
                None
            }
        }
    }

    fn id(&mut self, key: &str) -> Option<i64> {
        match self.body.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64().filter(|n| *n >= 0) {
                Some(n) => Some(n),
                None => {
                    self.problems.push(Problem::new(
                        key,
                        format!("must be an integer >= 0, got {}", short(v)),
                    ));
                    None
                }
            },
        }
    }

    fn number(&mut self, key: &str) -> Option<f64> {
        match self.body.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => {
                self.problems.push(Problem::new(
                    key,
                    format!("must be a number, got {}", kind(other)),
                ));
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.body.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.problems.push(Problem::new(
                    key,
                    format!("must be true or false, got {}", kind(other)),
                ));
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        match self.body.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        other => self.problems.push(Problem::new(
                            format!("{key}[{i}]"),
                            format!("must be a string, got {}", kind(other)),
                        )),
                    }
                }
                Some(out)
            }
            Some(other) => {
                self.problems.push(Problem::new(
                    key,
                    format!("must be an array of strings, got {}", kind(other)),
                ));
                None
            }
        }
    }

    fn require<T>(&mut self, key: &str, v: Option<T>, what: &str) -> Option<T> {
        if v.is_none() && !self.body.contains_key(key) {
            self.problems
                .push(Problem::new(key, format!("missing: {what}")));
        }
        v
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid("invalid_request", self.problems))
        }
    }
}

/// `{prompt, model?, suiteId?, promptId?, tolerance?, llm?}`: the analysis
/// and every suggestion, with `cached`.
pub(in crate::http) async fn analyze(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(
        &body,
        &["prompt", "model", "suiteId", "promptId", "tolerance", "llm"],
        "{prompt, model, suiteId, promptId}",
    )?;
    let prompt = f.string("prompt");
    let prompt = f.require("prompt", prompt, "the prompt text");
    let req = AnalyzeRequest {
        prompt: prompt.unwrap_or_default(),
        model: f.string("model"),
        suite_id: f.id("suiteId"),
        prompt_idx: f.id("promptId"),
        tolerance: f.number("tolerance"),
        llm: f.boolean("llm"),
    };
    f.finish()?;
    let answer = state.optimize.analyze(req).await?;
    let mut v = serde_json::to_value(&*answer.optimization).unwrap_or_default();
    v["cached"] = json!(answer.cached);
    Ok(axum::Json(v).into_response())
}

/// `{suiteId, promptId, candidates[], providers?}`: starts the run; 202
/// with the execution that runs it.
pub(in crate::http) async fn verify(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(
        &body,
        &["suiteId", "promptId", "candidates", "providers"],
        "{suiteId, promptId, candidates}",
    )?;
    let suite_id = f.id("suiteId");
    let suite_id = f.require("suiteId", suite_id, "the stored suite");
    let prompt_idx = f.id("promptId");
    let prompt_idx = f.require(
        "promptId",
        prompt_idx,
        "the prompt's index in the suite (from 0)",
    );
    let candidates = f.strings("candidates");
    let candidates = f.require("candidates", candidates, "1 to 10 candidate prompts");
    let providers = f.strings("providers");
    f.finish()?;
    let started = state
        .optimize
        .verify(VerifyRequest {
            suite_id: suite_id.unwrap_or_default(),
            prompt_idx: prompt_idx.unwrap_or_default(),
            candidates: candidates.unwrap_or_default(),
            providers,
        })
        .await?;
    let location = format!("/api/optimization/verify/{}", started.id);
    Ok((
        StatusCode::ACCEPTED,
        [(LOCATION, location.clone())],
        axum::Json(json!({
            "executionId": started.id,
            "total": started.total,
            "location": location,
            "warnings": started.warnings,
        })),
    )
        .into_response())
}

/// A verification: its progress, then its ranking.
pub(in crate::http) async fn verification(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = params::id("execution", &id)?;
    let v = state.optimize.verification(id).await?;
    Ok(axum::Json(v).into_response())
}

/// Stored suggestions, newest first: `?prompt_hash=&strategy=&limit=&offset=`.
pub(in crate::http) async fn suggestions(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut q = params::Query::new(query);
    let (limit, offset) = q.paging();
    let hash = q.text("prompt_hash");
    if let Some(h) = &hash
        && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        q.problem("prompt_hash", "expected the 64 hex digits of a sha256");
    }
    let strategy = q.text("strategy");
    q.finish()?;
    let (items, total) = state
        .optimize
        .suggestions(
            hash.map(|h| h.to_ascii_lowercase()),
            strategy,
            limit,
            offset,
        )
        .await?;
    Ok(
        axum::Json(json!({"items": items, "total": total, "limit": limit, "offset": offset}))
            .into_response(),
    )
}
