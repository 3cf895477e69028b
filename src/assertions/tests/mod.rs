//! Assertion semantics, case by case, against promptfoo's handlers.

mod scoring;
mod types;

use serde_json::Value;

use super::*;

fn a(spec: Value) -> Assertion {
    parse_assertion(&spec)
        .unwrap_or_else(|e| panic!("{spec}: {e:?}"))
        .0
}

fn out(text: &str) -> Output<'_> {
    Output {
        text,
        latency_ms: Some(120),
        cost: Some(0.0012),
        finish_reason: Some("stop"),
    }
}

/// (pass, score, reason) of one assertion.
fn check(spec: Value, text: &str) -> (bool, f64, String) {
    let v = evaluate(&a(spec), &out(text));
    (v.pass, v.score, v.reason)
}

fn passes(spec: Value, text: &str) -> bool {
    check(spec, text).0
}
