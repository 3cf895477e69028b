//! Combining results: weights, thresholds, metrics, errors, bad specs.

use serde_json::{Value, json};

use super::super::*;
use super::{a, out};

/// PROMPTFOO.md's example: four assertions pass, `equals` fails.
fn promptfoo_example(threshold: Option<f64>) -> GradingResult {
    let output = r#"{"id": 0, "city": "Paris", "answer": "ans-000000"}"#;
    let assertions = [
        json!({"type": "contains", "value": "Paris"}),
        json!({"type": "icontains", "value": "PARIS"}),
        json!({"type": "regex", "value": r"ans-\d{6}"}),
        json!({"type": "is-json"}),
        json!({"type": "equals", "value": "this will not match"}),
    ]
    .map(a);
    grade(&assertions, threshold, &out(output))
}

#[test]
fn a_failed_assertion_fails_the_test_with_its_reason_and_a_weighted_score() {
    let r = promptfoo_example(None);
    assert!(!r.pass);
    assert!((r.score - 0.8).abs() < 1e-12);
    assert_eq!(
        r.reason,
        r#"Expected output "{"id": 0, "city": "Paris", "answer": "ans-000000"}" to equal "this will not match""#
    );
    assert_eq!(r.component_results.len(), 5);
    assert_eq!(
        r.component_results[4].assertion,
        Some(json!({"type": "equals", "value": "this will not match"}))
    );
    assert!(
        r.component_results[..4]
            .iter()
            .all(|c| c.pass && c.reason == "Assertion passed")
    );
}

#[test]
fn a_test_threshold_decides_on_the_score_alone() {
    let at = promptfoo_example(Some(0.8));
    assert!(at.pass);
    assert_eq!(at.reason, "Aggregate score 0.80 ≥ 0.8 threshold");
    let above = promptfoo_example(Some(0.9));
    assert!(!above.pass);
    assert_eq!(above.reason, "Aggregate score 0.80 < 0.9 threshold");
}

#[test]
fn weights_scale_scores_and_weight_zero_is_informational() {
    let weighted = [
        a(json!({"type": "contains", "value": "a", "weight": 3})),
        a(json!({"type": "contains", "value": "zzz"})),
    ];
    let r = grade(&weighted, None, &out("abc"));
    assert!((r.score - 0.75).abs() < 1e-12);
    assert!(!r.pass, "any failure fails the test without a threshold");

    let informational = [
        a(json!({"type": "contains", "value": "a"})),
        a(json!({"type": "contains", "value": "zzz", "weight": 0})),
    ];
    let r = grade(&informational, None, &out("abc"));
    assert!(r.pass);
    assert_eq!(r.score, 1.0);
    assert_eq!(r.reason, "All assertions passed");
    assert!(r.component_results[1].pass, "forced pass for weight 0");
    assert_eq!(r.component_results[1].score, 0.0);

    let all_zero = [a(json!({"type": "contains", "value": "zzz", "weight": 0}))];
    let r = grade(&all_zero, None, &out("abc"));
    assert!(r.pass);
    assert_eq!(r.score, 0.0);

    let none = grade::<Assertion>(&[], None, &out("abc"));
    assert_eq!(
        (none.pass, none.score, none.reason.as_str()),
        (true, 1.0, "No assertions")
    );
}

#[test]
fn named_metrics_are_weighted_means() {
    let set = [
        a(json!({"type": "contains", "value": "a", "metric": "accuracy"})),
        a(json!({"type": "contains", "value": "zzz", "metric": "accuracy", "weight": 3})),
        a(json!({"type": "is-json", "metric": "format"})),
    ];
    let r = grade(&set, Some(0.0), &out("abc"));
    assert_eq!(r.named_scores["accuracy"], json!(0.25));
    assert_eq!(r.named_scores["format"], json!(0.0));
}

#[test]
fn bad_assertions_list_every_problem() {
    let errs =
        parse_assertion(&json!({"type": "contains", "weight": "heavy", "metric": 3})).unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("`weight` must be a number")));
    assert!(errs.iter().any(|e| e.contains("`metric` must be a string")));
    assert!(
        errs.iter()
            .any(|e| e.contains("\"contains\" needs a non-empty string or number"))
    );
    let unknown =
        parse_assertion(&json!({"type": "llm-rubric", "value": "is polite"})).unwrap_err();
    assert!(
        unknown[0].starts_with("unknown assertion type \"llm-rubric\""),
        "{unknown:?}"
    );
    let transform =
        parse_assertion(&json!({"type": "equals", "value": "x", "transform": "output.trim()"}))
            .unwrap_err();
    assert!(transform[0].contains("`transform`"), "{transform:?}");
    let (_, warnings) =
        parse_assertion(&json!({"type": "equals", "value": "x", "provider": "openai:gpt-4o"}))
            .unwrap();
    assert_eq!(warnings, ["unsupported key `provider` ignored"]);
    assert!(parse_assertion(&json!("contains")).is_err());
    assert!(parse_assertion(&json!({"value": "x"})).is_err());
}

#[test]
fn every_supported_type_parses_with_and_without_not() {
    for ty in SUPPORTED_TYPES {
        let value = match *ty {
            "contains-any" | "contains-all" | "icontains-any" | "icontains-all" => json!(["a"]),
            "word-count" => json!(3),
            "is-json" | "contains-json" | "is-refusal" | "latency" | "cost" => Value::Null,
            _ => json!("a"),
        };
        let prefixes: &[&str] = if *ty == "assert-set" {
            &[""]
        } else {
            &["", "not-"]
        };
        for prefix in prefixes {
            let mut spec = json!({"type": format!("{prefix}{ty}"), "value": value, "threshold": 1});
            if *ty == "assert-set" {
                spec =
                    json!({"type": "assert-set", "assert": [{"type": "contains", "value": "a"}]});
            }
            let parsed = a(spec);
            assert_eq!(parsed.type_name(), format!("{prefix}{ty}"));
        }
    }
}

#[test]
fn a_provider_error_is_not_an_assertion_failure() {
    let assertions = [a(json!({"type": "contains", "value": "Paris"}))];
    let error = judge(&assertions, None, Err("provider error 500: boom"));
    assert_eq!(
        (error.pass, error.score, error.failure_reason),
        (false, 0.0, FailureReason::Error)
    );
    assert!(error.grading.is_none());
    let failed = judge(&assertions, None, Ok(&out("Rome")));
    assert_eq!(failed.failure_reason, FailureReason::Assertion);
    assert_eq!(
        failed.error.as_deref(),
        Some(r#"Expected output to contain "Paris""#)
    );
    let passed = judge(&assertions, None, Ok(&out("Paris")));
    assert_eq!(
        (passed.pass, passed.failure_reason, passed.error),
        (true, FailureReason::None, None)
    );
}
