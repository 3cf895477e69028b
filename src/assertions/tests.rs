//! Assertion semantics, case by case, against promptfoo's handlers.

use serde_json::{Value, json};

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

#[test]
fn equals_compares_strings_exactly_and_objects_as_parsed_json() {
    assert_eq!(
        check(json!({"type": "equals", "value": "Hello"}), "Hello"),
        (true, 1.0, "Assertion passed".into())
    );
    assert_eq!(
        check(json!({"type": "equals", "value": "hello"}), "Hello").2,
        r#"Expected output "Hello" to equal "hello""#
    );
    assert_eq!(
        check(json!({"type": "not-equals", "value": "Hello"}), "Hello").2,
        r#"Expected output "Hello" to not equal "Hello""#
    );
    assert!(passes(json!({"type": "equals", "value": 42}), "42"));
    assert!(passes(
        json!({"type": "equals", "value": {"a": 1, "b": [1, 2]}}),
        r#"{"b": [1, 2], "a": 1}"#
    ));
    assert!(!passes(
        json!({"type": "equals", "value": {"a": 1}}),
        "not json"
    ));
    // promptfoo: output that is not JSON cannot equal an object, so not-equals passes.
    assert!(passes(
        json!({"type": "not-equals", "value": {"a": 1}}),
        "not json"
    ));
    assert_eq!(
        check(json!({"type": "equals", "value": {"a": 1}}), "{}").2,
        r#"Expected output "{}" to equal "{"a":1}""#
    );
}

#[test]
fn contains_family_matches_substrings_with_promptfoo_reasons() {
    assert!(passes(
        json!({"type": "contains", "value": "Paris"}),
        "It is Paris."
    ));
    assert!(!passes(
        json!({"type": "contains", "value": "paris"}),
        "It is Paris."
    ));
    assert!(passes(
        json!({"type": "icontains", "value": "PARIS"}),
        "It is Paris."
    ));
    assert_eq!(
        check(json!({"type": "contains", "value": "Rome"}), "Paris").2,
        r#"Expected output to contain "Rome""#
    );
    assert_eq!(
        check(json!({"type": "not-contains", "value": "Paris"}), "Paris").2,
        r#"Expected output to not contain "Paris""#
    );
    assert!(passes(
        json!({"type": "contains", "value": 42}),
        "answer: 42"
    ));
    assert!(passes(
        json!({"type": "contains-any", "value": "Rome, Paris"}),
        "Paris"
    ));
    assert!(passes(
        json!({"type": "icontains-any", "value": ["ROME", "PARIS"]}),
        "paris"
    ));
    assert_eq!(
        check(
            json!({"type": "contains-any", "value": ["Rome", "Oslo"]}),
            "Paris"
        )
        .2,
        r#"Expected output to contain one of "Rome, Oslo""#
    );
    assert_eq!(
        check(
            json!({"type": "contains-all", "value": ["Paris", "France", "Seine"]}),
            "Paris, France"
        )
        .2,
        "Expected output to contain all of [Paris, France, Seine]. Missing: [Seine]"
    );
    assert!(passes(
        json!({"type": "icontains-all", "value": "paris, FRANCE"}),
        "Paris, France"
    ));
    assert!(passes(
        json!({"type": "not-contains-all", "value": ["a", "zzz"]}),
        "abc"
    ));
    assert!(passes(
        json!({"type": "starts-with", "value": "Yes"}),
        "Yes, it is."
    ));
    assert_eq!(
        check(json!({"type": "not-starts-with", "value": "Yes"}), "Yes").2,
        r#"Expected output to not start with "Yes""#
    );
}

#[test]
fn regex_has_javascript_features_and_bad_patterns_are_refused() {
    assert!(passes(
        json!({"type": "regex", "value": r"ans-\d{6}"}),
        "id ans-000042"
    ));
    assert!(passes(
        json!({"type": "regex", "value": r"^(?=.*cat)(?=.*dog)"}),
        "dog and cat"
    ));
    assert!(passes(json!({"type": "regex", "value": r"(\w)\1"}), "book"));
    assert_eq!(
        check(json!({"type": "regex", "value": "^no"}), "yes").2,
        r#"Expected output to match regex "^no""#
    );
    assert!(passes(json!({"type": "not-regex", "value": "^no"}), "yes"));
    let err = parse_assertion(&json!({"type": "regex", "value": "(unclosed"})).unwrap_err();
    assert!(err[0].starts_with("invalid regex \"(unclosed\""), "{err:?}");
}

#[test]
fn json_assertions_parse_extract_and_validate_schemas() {
    assert!(passes(json!({"type": "is-json"}), r#" {"a": 1} "#));
    assert_eq!(
        check(json!({"type": "is-json"}), "{a: 1}").2,
        "Expected output to be valid JSON"
    );
    assert!(passes(json!({"type": "not-is-json"}), "plain"));
    let schema =
        json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}});
    assert!(passes(
        json!({"type": "is-json", "value": schema}),
        r#"{"city": "Paris"}"#
    ));
    let (pass, _, reason) = check(
        json!({"type": "is-json", "value": schema}),
        r#"{"town": "Paris"}"#,
    );
    assert!(!pass);
    assert!(
        reason.starts_with("JSON does not conform to the provided schema. Errors: "),
        "{reason}"
    );
    // A YAML string schema, as promptfoo accepts.
    let yaml = "type: object\nrequired: [city]\n";
    assert!(passes(
        json!({"type": "is-json", "value": yaml}),
        r#"{"city": "x"}"#
    ));
    assert!(passes(
        json!({"type": "contains-json"}),
        r#"Here: {"a": {"b": 2}} done"#
    ));
    assert_eq!(
        check(json!({"type": "contains-json"}), "no json {here").2,
        "Expected output to contain valid JSON"
    );
    assert!(passes(
        json!({"type": "contains-json", "value": schema}),
        r#"first {"x": 1} then {"city": "Oslo"}"#
    ));
    assert!(!passes(
        json!({"type": "contains-json", "value": schema}),
        r#"only {"x": 1}"#
    ));
    let bad = parse_assertion(&json!({"type": "is-json", "value": {"type": 12}})).unwrap_err();
    assert!(bad[0].starts_with("invalid JSON schema"), "{bad:?}");
}

#[test]
fn levenshtein_defaults_to_five_edits() {
    assert!(passes(
        json!({"type": "levenshtein", "value": "kitten"}),
        "sitting"
    ));
    assert_eq!(
        check(
            json!({"type": "levenshtein", "value": "kitten", "threshold": 2}),
            "sitting"
        )
        .2,
        "Levenshtein distance 3 is greater than threshold 2"
    );
    assert!(passes(
        json!({"type": "not-levenshtein", "value": "abc", "threshold": 1}),
        "xyz"
    ));
}

#[test]
fn latency_and_cost_compare_with_the_threshold() {
    assert!(passes(json!({"type": "latency", "threshold": 500}), "x"));
    assert_eq!(
        check(json!({"type": "latency", "threshold": 100}), "x").2,
        "Latency 120ms is greater than threshold 100ms"
    );
    assert!(passes(
        json!({"type": "not-latency", "threshold": 100}),
        "x"
    ));
    let cached = Output {
        latency_ms: None,
        ..out("x")
    };
    let v = evaluate(&a(json!({"type": "latency", "threshold": 500})), &cached);
    assert!(!v.pass && v.reason.contains("--no-cache"), "{}", v.reason);
    assert_eq!(
        check(json!({"type": "cost", "threshold": 0.001}), "x").2,
        "Cost 0.0012 is greater than threshold 0.001"
    );
    assert!(passes(json!({"type": "cost", "threshold": 0.01}), "x"));
    assert!(parse_assertion(&json!({"type": "latency"})).is_err());
    let free = Output {
        cost: None,
        ..out("x")
    };
    assert!(!evaluate(&a(json!({"type": "cost", "threshold": 1})), &free).pass);
}

#[test]
fn word_count_handles_exact_counts_and_ranges() {
    let text = "one two  three\nfour";
    assert!(passes(json!({"type": "word-count", "value": 4}), text));
    assert_eq!(
        check(json!({"type": "word-count", "value": 3}), text).2,
        "Word count 4 does not equal expected 3"
    );
    assert!(passes(
        json!({"type": "word-count", "value": {"min": 2, "max": 4}}),
        text
    ));
    assert_eq!(
        check(json!({"type": "word-count", "value": {"max": 3}}), text).2,
        "Word count 4 is greater than maximum 3"
    );
    assert_eq!(
        check(json!({"type": "word-count", "value": {"min": 5}}), text).2,
        "Word count 4 is less than minimum 5"
    );
    assert_eq!(
        check(
            json!({"type": "not-word-count", "value": {"min": 1, "max": 9}}),
            text
        )
        .2,
        "Expected word count to not be between 1 and 9, but got 4"
    );
    assert!(
        parse_assertion(&json!({"type": "word-count", "value": {"min": 5, "max": 2}})).is_err()
    );
}

#[test]
fn overlap_scores_are_the_assertion_score() {
    let (pass, score, reason) = check(
        json!({"type": "rouge-n", "value": "the cat sat on the mat"}),
        "the cat sat on the mat",
    );
    assert!(pass && (score - 1.0).abs() < 1e-12);
    assert_eq!(
        reason,
        "ROUGE-N score 1.00 is greater than or equal to threshold 0.75"
    );
    let (pass, score, reason) = check(
        json!({"type": "rouge-n", "value": "the cat sat on the mat"}),
        "a dog ran",
    );
    assert!(!pass && score == 0.0);
    assert_eq!(reason, "ROUGE-N score 0.00 is less than threshold 0.75");
    let (_, inv_score, _) = check(json!({"type": "not-rouge-n", "value": "x y"}), "x y");
    assert_eq!(inv_score, 0.0);
    let (pass, _, reason) = check(
        json!({"type": "bleu", "value": "the quick brown fox"}),
        "a slow green turtle",
    );
    assert!(!pass);
    assert!(
        reason.starts_with("BLEU score 0.0000 is less than threshold 0.5"),
        "{reason}"
    );
    assert!(passes(
        json!({"type": "bleu", "value": ["x", "the quick brown fox jumps"]}),
        "the quick brown fox jumps"
    ));
}

#[test]
fn finish_reason_and_refusal() {
    assert!(passes(
        json!({"type": "finish-reason", "value": "STOP"}),
        "x"
    ));
    assert_eq!(
        check(json!({"type": "finish-reason", "value": "length"}), "x").2,
        r#"Expected finish reason "length" but got "stop""#
    );
    assert!(passes(
        json!({"type": "is-refusal"}),
        "I'm sorry, but I can't help with that."
    ));
    assert!(passes(
        json!({"type": "is-refusal"}),
        "As an AI, I cannot provide that."
    ));
    assert!(!passes(
        json!({"type": "is-refusal"}),
        "Paris is the capital of France."
    ));
    assert!(!passes(
        json!({"type": "is-refusal"}),
        "As an Airbnb host you can list rooms."
    ));
    let (pass, score, reason) = check(json!({"type": "is-refusal"}), "  ");
    assert_eq!(
        (pass, score, reason.as_str()),
        (true, 0.0, "Empty response treated as refusal")
    );
    assert_eq!(
        check(
            json!({"type": "not-is-refusal"}),
            "I apologize, I will not do that"
        )
        .2,
        "Expected output to not be a refusal"
    );
}

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
        json!({"type": "equals", "value": "this will not match"})
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

    let none = grade(&[], None, &out("abc"));
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
        for prefix in ["", "not-"] {
            let spec = json!({"type": format!("{prefix}{ty}"), "value": value, "threshold": 1});
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
