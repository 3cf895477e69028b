//! Combining assertion results into a test verdict (promptfoo's
//! `AssertionsResult`).

use serde_json::{Map, Value};

use super::format::{js_number, to_fixed};
use super::{Assertion, ComponentResult, GradingResult, Output, evaluate};

/// Grades `output` against a test's assertions and optional `threshold`.
///
/// - score: `Σ(score·weight) / Σ weight` (0 when all weights are 0);
/// - without a threshold the test passes only if no assertion failed
///   (`weight: 0` ones cannot fail), and the reason is the last failure;
/// - with one, `pass = score >= threshold` and the reason says so.
pub fn grade(
    assertions: &[Assertion],
    threshold: Option<f64>,
    output: &Output<'_>,
) -> GradingResult {
    if assertions.is_empty() {
        return GradingResult {
            pass: true,
            score: 1.0,
            reason: "No assertions".to_owned(),
            named_scores: Map::new(),
            component_results: Vec::new(),
        };
    }
    let mut total_score = 0.0;
    let mut total_weight = 0.0;
    let mut failed_reason: Option<String> = None;
    let mut named: Vec<(String, f64, f64)> = Vec::new();
    let mut components = Vec::with_capacity(assertions.len());
    for a in assertions {
        let v = evaluate(a, output);
        total_score += v.score * a.weight;
        total_weight += a.weight;
        if let Some(metric) = &a.metric {
            match named.iter_mut().find(|(m, _, _)| m == metric) {
                Some(entry) => {
                    entry.1 += v.score * a.weight;
                    entry.2 += a.weight;
                }
                None => named.push((metric.clone(), v.score * a.weight, a.weight)),
            }
        }
        if !v.pass {
            failed_reason = Some(v.reason.clone());
        }
        components.push(ComponentResult {
            pass: v.pass,
            score: v.score,
            reason: v.reason,
            assertion: a.spec.clone(),
        });
    }
    let score = if total_weight > 0.0 {
        total_score / total_weight
    } else {
        0.0
    };
    let (pass, reason) = match threshold {
        Some(t) if !t.is_nan() => {
            let pass = score >= t;
            let cmp = if pass { '≥' } else { '<' };
            (
                pass,
                format!(
                    "Aggregate score {} {cmp} {} threshold",
                    to_fixed(score, 2),
                    js_number(t)
                ),
            )
        }
        _ => match failed_reason {
            Some(r) => (false, r),
            None => (true, "All assertions passed".to_owned()),
        },
    };
    let named_scores = named
        .into_iter()
        .map(|(m, s, w)| (m, Value::from(if w > 0.0 { s / w } else { 0.0 })))
        .collect();
    GradingResult {
        pass,
        score,
        reason,
        named_scores,
        component_results: components,
    }
}

/// promptfoo's `failureReason`: an error is not an assertion failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FailureReason {
    /// Passed.
    None = 0,
    /// Graded and failed.
    Assertion = 1,
    /// Never graded: the provider failed.
    Error = 2,
}

/// The judgement on one job: graded output, or the provider's error.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Whether the test passed.
    pub pass: bool,
    /// The score (0 on error).
    pub score: f64,
    /// Why it did not pass.
    pub failure_reason: FailureReason,
    /// The grading, when there was an output to grade.
    pub grading: Option<GradingResult>,
    /// The provider error, when the call failed.
    pub error: Option<String>,
}

/// Judges one job: a provider failure is an error (never graded); an
/// output is graded against the test's assertions.
pub fn judge(
    assertions: &[Assertion],
    threshold: Option<f64>,
    output: Result<&Output<'_>, &str>,
) -> Judgement {
    match output {
        Err(error) => Judgement {
            pass: false,
            score: 0.0,
            failure_reason: FailureReason::Error,
            grading: None,
            error: Some(error.to_owned()),
        },
        Ok(out) => {
            let g = grade(assertions, threshold, out);
            Judgement {
                pass: g.pass,
                score: g.score,
                failure_reason: if g.pass {
                    FailureReason::None
                } else {
                    FailureReason::Assertion
                },
                error: (!g.pass).then(|| g.reason.clone()),
                grading: Some(g),
            }
        }
    }
}
