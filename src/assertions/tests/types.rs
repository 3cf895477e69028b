//! One assertion type at a time.

use serde_json::json;

use super::super::*;
use super::{a, check, out, passes};

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
fn regex_has_javascript_features_and_bad_patterns_fail_with_v8s_message() {
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
    // promptfoo grades a pattern JavaScript refuses as a failure, even
    // negated, with V8's message; the parse warns about it.
    let (bad, warnings) =
        parse_assertion(&json!({"type": "not-regex", "value": "(unclosed"})).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let v = evaluate(&bad, &out("anything"));
    assert_eq!(
        (v.pass, v.score, v.reason.as_str()),
        (
            false,
            0.0,
            "Invalid regex pattern: Invalid regular expression: /(unclosed/: Unterminated group"
        )
    );
    assert!(!passes(json!({"type": "regex", "value": "(?i)yes"}), "YES"));
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
        check(json!({"type": "contains-json"}), "no json [here]").2,
        "Expected output to contain valid JSON"
    );
    assert_eq!(
        check(json!({"type": "not-contains-json"}), "lenient {a: 1}").2,
        "Expected output to not contain valid JSON"
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
    // Inside the text, on word boundaries, past a near miss.
    assert!(passes(
        json!({"type": "is-refusal"}),
        "Well, that is not appropriate here."
    ));
    assert!(passes(
        json!({"type": "is-refusal"}),
        "The bot can't helpers. Also I can't help you."
    ));
    assert!(!passes(
        json!({"type": "is-refusal"}),
        "The bot can't helpers do that."
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
