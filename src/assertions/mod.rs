//! Grading: one output against a test's assertions, with promptfoo's
//! semantics (ARCHITECTURE.md, PROMPTFOO.md).
//!
//! Pure functions over data: no IO, no clock, no provider. An [`Assertion`]
//! is parsed and prepared once (regexes and JSON schemas compiled, template
//! values already rendered by the suite); [`grade`] then runs every
//! assertion of a test against an [`Output`] and combines the results the
//! way promptfoo does: weighted mean score; without a test `threshold` any
//! failed assertion fails the test (`weight: 0` ones are informational);
//! with one, the test passes when the score reaches it.

mod ajv;
mod distance;
mod json;
mod overlap;
mod parse;
mod score;
mod text;

use serde::Serialize;
use serde_json::Value;

pub use parse::{
    AssertionProblem, SUPPORTED_TYPES, parse_assertion, split_comma_separated, type_problem,
};
pub use score::{FailureReason, Judgement, grade, judge};

/// What was produced, and what the provider reported about it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output<'a> {
    /// The model's output text.
    pub text: &'a str,
    /// Provider latency; `None` for a cached response (promptfoo refuses
    /// latency assertions on cached results).
    pub latency_ms: Option<u64>,
    /// Cost of the call in US dollars, when the provider reports one.
    pub cost: Option<f64>,
    /// The provider's finish reason (`stop`, `length`, ...).
    pub finish_reason: Option<&'a str>,
}

/// One prepared assertion of a test.
#[derive(Debug, Clone)]
pub struct Assertion {
    check: Check,
    inverse: bool,
    /// Weight in the test's score; 0 makes it informational.
    pub weight: f64,
    /// Named metric it contributes to.
    pub metric: Option<String>,
    /// The assertion as configured, echoed in results.
    pub spec: Value,
}

impl Assertion {
    /// The configured type, `not-` prefix included.
    pub fn type_name(&self) -> String {
        let base = self.check.type_name();
        if self.inverse {
            format!("not-{base}")
        } else {
            base.to_owned()
        }
    }
}

/// A base assertion type with its prepared value.
#[derive(Debug, Clone)]
enum Check {
    Equals(Value),
    Contains {
        needle: String,
        ignore_case: bool,
    },
    ContainsAny {
        needles: Vec<String>,
        ignore_case: bool,
    },
    ContainsAll {
        needles: Vec<String>,
        ignore_case: bool,
    },
    StartsWith(String),
    Regex {
        pattern: String,
        regex: crate::js::Regex,
    },
    /// A pattern JavaScript refuses: fails with V8's message.
    InvalidRegex {
        error: String,
    },
    IsJson(Option<ajv::Schema>),
    ContainsJson(Option<ajv::Schema>),
    Levenshtein {
        expected: String,
        threshold: f64,
    },
    Latency {
        threshold_ms: f64,
    },
    Cost {
        threshold: f64,
    },
    WordCount(text::WordCount),
    RougeN {
        reference: String,
        threshold: f64,
    },
    Bleu {
        references: Vec<String>,
        threshold: f64,
    },
    FinishReason(String),
    IsRefusal,
    /// `assert-set`: its assertions graded as one component.
    Set {
        assertions: Vec<Assertion>,
        threshold: Option<f64>,
    },
}

impl Check {
    fn type_name(&self) -> &'static str {
        match self {
            Check::Equals(_) => "equals",
            Check::Contains {
                ignore_case: false, ..
            } => "contains",
            Check::Contains {
                ignore_case: true, ..
            } => "icontains",
            Check::ContainsAny {
                ignore_case: false, ..
            } => "contains-any",
            Check::ContainsAny {
                ignore_case: true, ..
            } => "icontains-any",
            Check::ContainsAll {
                ignore_case: false, ..
            } => "contains-all",
            Check::ContainsAll {
                ignore_case: true, ..
            } => "icontains-all",
            Check::StartsWith(_) => "starts-with",
            Check::Regex { .. } | Check::InvalidRegex { .. } => "regex",
            Check::IsJson(_) => "is-json",
            Check::ContainsJson(_) => "contains-json",
            Check::Levenshtein { .. } => "levenshtein",
            Check::Latency { .. } => "latency",
            Check::Cost { .. } => "cost",
            Check::WordCount(_) => "word-count",
            Check::RougeN { .. } => "rouge-n",
            Check::Bleu { .. } => "bleu",
            Check::FinishReason(_) => "finish-reason",
            Check::IsRefusal => "is-refusal",
            Check::Set { .. } => "assert-set",
        }
    }
}

/// One assertion's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentResult {
    /// Passed (always true for `weight: 0`).
    pub pass: bool,
    /// 0..=1 for most types.
    pub score: f64,
    /// `Assertion passed`, or why not, worded like promptfoo.
    pub reason: String,
    /// The assertion as configured; none for an `assert-set`'s own result
    /// (promptfoo lists the set, then each of its assertions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Value>,
}

/// A test's outcome: promptfoo's `gradingResult`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GradingResult {
    /// Whether the test passed.
    pub pass: bool,
    /// Weighted mean of the assertion scores.
    pub score: f64,
    /// `All assertions passed`, the failing reason, or the threshold verdict.
    pub reason: String,
    /// Weighted means per `metric` name.
    pub named_scores: serde_json::Map<String, Value>,
    /// The weight behind each named score.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub named_score_weights: serde_json::Map<String, Value>,
    /// Each assertion's result, in order.
    pub component_results: Vec<ComponentResult>,
}

/// A single verdict before weights apply.
struct Verdict {
    pass: bool,
    score: f64,
    reason: String,
}

impl Verdict {
    /// Pass/fail with score 1/0; `reason` is used only on failure.
    fn binary(pass: bool, failure: impl FnOnce() -> String) -> Self {
        Self {
            pass,
            score: if pass { 1.0 } else { 0.0 },
            reason: if pass {
                "Assertion passed".to_owned()
            } else {
                failure()
            },
        }
    }
}

/// Runs one prepared assertion (not a set); `weight: 0` forces a pass.
fn evaluate(assertion: &Assertion, output: &Output<'_>) -> Verdict {
    let mut v = match &assertion.check {
        Check::IsJson(_) | Check::ContainsJson(_) => json::evaluate(assertion, output.text),
        Check::RougeN { .. } | Check::Bleu { .. } => overlap::evaluate(assertion, output.text),
        Check::Set { .. } => unreachable!("sets are graded by score::grade"),
        _ => text::evaluate(assertion, output),
    };
    if assertion.weight == 0.0 {
        v.pass = true;
    }
    v
}

#[cfg(test)]
mod tests;
