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
