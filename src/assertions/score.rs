//! Combining assertion results into a test verdict (promptfoo's
//! `AssertionsResult`).

use std::borrow::Borrow;

use serde_json::{Map, Value};

use super::{Assertion, Check, ComponentResult, GradingResult, Output, evaluate};
use crate::js::{number as js_number, to_fixed};

/// Grades `output` against a test's assertions and optional `threshold`,
/// as promptfoo's `runAssertions` does:
///
/// - score: `Σ(score·weight) / Σ weight` (0 when all weights are 0);
/// - without a threshold the test passes only if no assertion failed
///   (`weight: 0` ones cannot fail), and the reason is the last failure;
/// - with one, `pass = score >= threshold` and the reason says so;
/// - an `assert-set` is graded the same way on its own assertions and
///   threshold, then counts as one component with its weight and metric.
///   Sets are added after the plain assertions, so a failing set's reason
///   wins over theirs.
pub fn grade<A: Borrow<Assertion>>(
    assertions: &[A],
    threshold: Option<f64>,
    output: &Output<'_>,
) -> GradingResult {
    if assertions.is_empty() {
        return GradingResult {
            pass: true,
            score: 1.0,
            reason: "No assertions".to_owned(),
            named_scores: Map::new(),
            named_score_weights: Map::new(),
            component_results: Vec::new(),
        };
    }
    let mut main = Tally::new(assertions.len());
    let mut sets = Vec::new();
    for (i, a) in assertions.iter().enumerate() {
        let a: &Assertion = a.borrow();
        match &a.check {
            Check::Set {
                assertions: inner,
                threshold,
            } => sets.push((i, a, grade(inner, *threshold, output))),
            _ => {
                let v = evaluate(a, output);
                let c = ComponentResult {
                    pass: v.pass,
                    score: v.score,
                    reason: v.reason,
                    assertion: Some(a.spec.clone()),
                };
                main.add(i, vec![c], a.metric.as_deref(), a.weight, None);
            }
        }
    }
    for (i, a, sub) in sets {
        let mut flat = Vec::with_capacity(sub.component_results.len() + 1);
        flat.push(ComponentResult {
            pass: sub.pass,
            score: sub.score,
            reason: sub.reason,
            assertion: None,
        });
        flat.extend(sub.component_results);
        let inner = (sub.named_scores, sub.named_score_weights);
        main.add(i, flat, a.metric.as_deref(), a.weight, Some(&inner));
    }
    main.finish(threshold)
}

/// A set's named scores and the weight behind each.
type NamedScores = (Map<String, Value>, Map<String, Value>);

/// promptfoo's `AssertionsResult` while results are added.
struct Tally {
    total_score: f64,
    total_weight: f64,
    failed_reason: Option<String>,
    /// Per assertion index: its result, then a set's own results.
    components: Vec<Vec<ComponentResult>>,
    /// Metric, weighted score sum, weight sum; in first-seen order.
    named: Vec<(String, f64, f64)>,
}

impl Tally {
    fn new(n: usize) -> Self {
        Self {
            total_score: 0.0,
            total_weight: 0.0,
            failed_reason: None,
            components: vec![Vec::new(); n],
            named: Vec::new(),
        }
    }

    /// Adds one component; `results[0]` is its own result, the rest a
    /// set's flattened results. A set's named scores count with its weight.
    fn add(
        &mut self,
        index: usize,
        results: Vec<ComponentResult>,
        metric: Option<&str>,
        weight: f64,
        inner: Option<&NamedScores>,
    ) {
        let own = &results[0];
        self.total_score += own.score * weight;
        self.total_weight += weight;
        if let Some(m) = metric {
            self.name(m, own.score * weight, weight);
        }
        if let Some((scores, weights)) = inner {
            for (m, score) in scores {
                if Some(m.as_str()) != metric {
                    let w = weights.get(m).and_then(Value::as_f64).unwrap_or(1.0) * weight;
                    self.name(m, score.as_f64().unwrap_or(0.0) * w, w);
                }
            }
        }
        if !own.pass {
            self.failed_reason = Some(own.reason.clone());
        }
        self.components[index] = results;
    }

    fn name(&mut self, metric: &str, score: f64, weight: f64) {
        match self.named.iter_mut().find(|(m, _, _)| m == metric) {
            Some(entry) => {
                entry.1 += score;
                entry.2 += weight;
            }
            None => self.named.push((metric.to_owned(), score, weight)),
        }
    }

    fn finish(self, threshold: Option<f64>) -> GradingResult {
        let score = if self.total_weight > 0.0 {
            self.total_score / self.total_weight
        } else {
            0.0
        };
        let (pass, reason) = match threshold {
            Some(t) if !t.is_nan() => {
                let pass = score >= t;
                let cmp = if pass { '≥' } else { '<' };
                let reason = format!(
                    "Aggregate score {} {cmp} {} threshold",
                    to_fixed(score, 2),
                    js_number(t)
                );
                (pass, reason)
            }
            _ => match self.failed_reason {
                Some(r) => (false, r),
                None => (true, "All assertions passed".to_owned()),
            },
        };
        let named_scores = self
            .named
            .iter()
            .map(|(m, s, w)| (m.clone(), Value::from(if *w > 0.0 { s / w } else { 0.0 })))
            .collect();
        let named_score_weights = self
            .named
            .into_iter()
            .map(|(m, _, w)| (m, Value::from(w)))
            .collect();
        GradingResult {
            pass,
            score,
            reason,
            named_scores,
            named_score_weights,
            component_results: self.components.into_iter().flatten().collect(),
        }
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
pub fn judge<A: Borrow<Assertion>>(
    assertions: &[A],
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
