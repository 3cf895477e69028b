//! Verified candidates: the suite's tests run on the original prompt and on
//! each candidate, in one execution through the test queue (prompt 0 is
//! the original, prompt k candidate k); once it has finished, the prompts
//! are ranked by pass rate, then cost, then latency.
//!
//! The execution is an ordinary one (progress on `/ws`, results in
//! `/api/executions/{id}/results`); its description marks it as a
//! verification, so `GET /api/optimization/verify/{id}` can answer from
//! the stored results alone, after a restart too.

use serde::Serialize;
use serde_json::{Value, json};

use super::{MAX_PROMPT_CHARS, OptimizeError, OptimizeService, invalid};
use crate::queue::{SubmitRequest, Submitted, SuiteSource};
use crate::storage::{ExecutionStatus, Priority};
use crate::suite::Problem;

/// Candidates at most per verification.
pub const MAX_CANDIDATES: usize = 10;
/// How a verification's description starts.
const MARK: &str = "promptgauge verify:";

/// Candidates to verify.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyRequest {
    /// The stored suite.
    pub suite_id: i64,
    /// The prompt replaced (its index in the suite).
    pub prompt_idx: i64,
    /// Candidate prompts.
    pub candidates: Vec<String>,
    /// Only these providers of the suite (ids or labels).
    pub providers: Option<Vec<String>>,
}

/// One prompt's figures in the verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ranked {
    /// 0: the original; k: candidate k.
    pub index: usize,
    /// `original`, `candidate 1`, ...
    pub label: String,
    /// The prompt text.
    pub prompt: String,
    /// Results.
    pub results: i64,
    /// Passed.
    pub passed: i64,
    /// Passed / results.
    pub pass_rate: f64,
    /// US dollars for all its results.
    pub cost_usd: f64,
    /// Mean provider latency, ms.
    pub mean_latency_ms: f64,
    /// 1 is best.
    pub rank: usize,
}

/// How the winner compares with the original.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Winner {
    /// Its index (0: the original stays best).
    pub index: usize,
    /// Its label.
    pub label: String,
    /// Pass-rate points gained (0..1).
    pub pass_rate_delta: f64,
    /// Tests passed more.
    pub passed_delta: i64,
    /// Dollars per result changed (negative: cheaper).
    pub cost_delta_per_result: f64,
    /// Mean latency changed, ms.
    pub latency_delta_ms: f64,
    /// The verdict in words.
    pub verdict: String,
}

/// A verification: running, or ranked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// The execution that runs it.
    pub execution_id: i64,
    /// Its status.
    pub status: String,
    /// Results so far and expected.
    pub completed: i64,
    /// Jobs in all.
    pub total: i64,
    /// Best first, once finished.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranking: Vec<Ranked>,
    /// Once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner: Option<Winner>,
}

impl OptimizeService {
    /// Starts running the suite's tests on the original and each candidate.
    pub async fn verify(&self, req: VerifyRequest) -> Result<Submitted, OptimizeError> {
        let result = self.start(req).await;
        let status = if result.is_ok() { "started" } else { "refused" };
        self.inner
            .metrics
            .verifications
            .with_label_values(&[status])
            .inc();
        result
    }

    async fn start(&self, req: VerifyRequest) -> Result<Submitted, OptimizeError> {
        let mut problems = Vec::new();
        if req.candidates.is_empty() {
            problems.push(Problem::new(
                "candidates",
                "empty: give 1 to 10 candidate prompts",
            ));
        }
        if req.candidates.len() > MAX_CANDIDATES {
            problems.push(Problem::new(
                "candidates",
                format!(
                    "{} candidates; at most {MAX_CANDIDATES}",
                    req.candidates.len()
                ),
            ));
        }
        for (i, c) in req.candidates.iter().enumerate() {
            if c.trim().is_empty() {
                problems.push(Problem::new(format!("candidates[{i}]"), "empty prompt"));
            } else if c.chars().count() > MAX_PROMPT_CHARS {
                problems.push(Problem::new(
                    format!("candidates[{i}]"),
                    format!("longer than {MAX_PROMPT_CHARS} characters"),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(OptimizeError::Invalid(problems));
        }
        let storage = &self.inner.storage;
        let (suite, config) = storage
            .get_suite(req.suite_id)
            .await?
            .ok_or_else(|| OptimizeError::NotFound(format!("suite {} not found", req.suite_id)))?;
        let (_, original) = storage
            .suite_prompt(req.suite_id, req.prompt_idx)
            .await?
            .ok_or_else(|| {
                OptimizeError::NotFound(format!(
                    "suite {} has no prompt {} (prompts count from 0)",
                    req.suite_id, req.prompt_idx
                ))
            })?;
        let mut doc = crate::suite::Document::from_json(&config)
            .map_err(|e| invalid("suiteId", format!("the stored suite is unreadable: {e}")))?;
        let root = doc.root_mut();
        let prompts: Vec<Value> = std::iter::once(json!({"label": "original", "raw": original}))
            .chain(
                req.candidates
                    .iter()
                    .enumerate()
                    .map(|(i, c)| json!({"label": format!("candidate {}", i + 1), "raw": c})),
            )
            .collect();
        root.insert("prompts".into(), Value::Array(prompts));
        root.insert(
            "description".into(),
            json!(format!(
                "{MARK} suite {} prompt {} ({})",
                suite.id, req.prompt_idx, suite.name
            )),
        );
        Ok(self
            .inner
            .queue
            .submit(SubmitRequest {
                suite: SuiteSource::Document(doc),
                providers: req.providers,
                max_concurrency: None,
                priority: Priority::Normal,
                use_cache: None,
            })
            .await?)
    }

    /// A verification's state, ranked once its execution has finished.
    pub async fn verification(&self, id: i64) -> Result<Verification, OptimizeError> {
        let i = &self.inner;
        let not_one = || OptimizeError::NotFound(format!("execution {id} is not a verification"));
        let config = i
            .storage
            .execution_config(id)
            .await?
            .ok_or_else(|| OptimizeError::NotFound(format!("execution {id} not found")))?;
        let doc: Value = serde_json::from_str(&config).map_err(|_| not_one())?;
        let is_verification = doc
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| d.starts_with(MARK));
        if !is_verification {
            return Err(not_one());
        }
        let prompts: Vec<(String, String)> = doc
            .get("prompts")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        let get = |k: &str| {
                            p.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        (get("label"), get("raw"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let view = i.queue.execution(id).await?;
        let record = &view.record;
        let mut v = Verification {
            execution_id: id,
            status: record.status.as_str().to_owned(),
            completed: view.completed,
            total: record.total,
            ranking: Vec::new(),
            winner: None,
        };
        if record.status != ExecutionStatus::Completed {
            return Ok(v);
        }
        let totals = i.storage.group_totals(record).await?;
        let mut ranked: Vec<Ranked> = prompts
            .iter()
            .enumerate()
            .map(|(index, (label, prompt))| {
                let of = totals.iter().filter(|g| g.prompt_idx == index as i64);
                let (results, passed, cost, latency) = of.fold((0, 0, 0.0, 0), |acc, g| {
                    (
                        acc.0 + g.count,
                        acc.1 + g.passed,
                        acc.2 + g.cost_usd,
                        acc.3 + g.latency_ms,
                    )
                });
                Ranked {
                    index,
                    label: label.clone(),
                    prompt: prompt.clone(),
                    results,
                    passed,
                    pass_rate: ratio(passed as f64, results),
                    cost_usd: cost,
                    mean_latency_ms: ratio(latency as f64, results),
                    rank: 0,
                }
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.pass_rate
                .total_cmp(&a.pass_rate)
                .then(ratio(a.cost_usd, a.results).total_cmp(&ratio(b.cost_usd, b.results)))
                .then(a.mean_latency_ms.total_cmp(&b.mean_latency_ms))
                .then(a.index.cmp(&b.index))
        });
        for (k, r) in ranked.iter_mut().enumerate() {
            r.rank = k + 1;
        }
        if let (Some(best), Some(original)) = (ranked.first(), ranked.iter().find(|r| r.index == 0))
        {
            v.winner = Some(winner(best, original));
        }
        v.ranking = ranked;
        Ok(v)
    }
}

fn ratio(x: f64, n: i64) -> f64 {
    if n == 0 { 0.0 } else { x / n as f64 }
}

fn winner(best: &Ranked, original: &Ranked) -> Winner {
    let pass_rate_delta = best.pass_rate - original.pass_rate;
    let cost_delta =
        ratio(best.cost_usd, best.results) - ratio(original.cost_usd, original.results);
    let latency_delta = best.mean_latency_ms - original.mean_latency_ms;
    let verdict = if best.index == 0 {
        "The original prompt stays best: no candidate passes more tests, or as many for less."
            .to_owned()
    } else {
        format!(
            "{} wins: {} of {} passed ({:+.1} points, {:+} tests) against the original's {} of {}; {:+.6} USD and {:+.0} ms per result.",
            best.label,
            best.passed,
            best.results,
            pass_rate_delta * 100.0,
            best.passed - original.passed,
            original.passed,
            original.results,
            cost_delta,
            latency_delta
        )
    };
    Winner {
        index: best.index,
        label: best.label.clone(),
        pass_rate_delta,
        passed_delta: best.passed - original.passed,
        cost_delta_per_result: cost_delta,
        latency_delta_ms: latency_delta,
        verdict,
    }
}
