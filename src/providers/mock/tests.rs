//! The mock honours its configured distributions (checked statistically
//! over many calls with a fixed seed, in paused time so nothing waits).

use serde_json::json;

use super::*;

fn mock(config: Value) -> Mock {
    let spec = ProviderSpec {
        id: "mock:test".into(),
        label: None,
        config: config.as_object().cloned().unwrap_or_default(),
        delay_ms: None,
    };
    Mock::new(&spec).unwrap_or_else(|e| panic!("{e}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(start_paused = true)]
async fn latency_follows_the_configured_log_normal() {
    let m = mock(json!({"latency": {"medianMs": 200, "p99Ms": 1000}, "seed": 42}));
    let mut ms = Vec::new();
    for i in 0..4000 {
        let c = m.complete(&format!("prompt {i}")).await.unwrap();
        ms.push(c.latency.as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
    assert!((p50 - 200.0).abs() < 200.0 * 0.08, "median {p50}");
    assert!((p99 - 1000.0).abs() < 1000.0 * 0.2, "p99 {p99}");
}

#[tokio::test(start_paused = true)]
async fn error_and_rate_limit_shares_match_the_configured_rates() {
    let m = mock(
        json!({"latencyMs": 1, "errorRate": 0.1, "rateLimitRate": 0.05, "retryAfterMs": 250, "seed": 7}),
    );
    let n = 5000.0;
    let (mut errors, mut limited) = (0.0, 0.0);
    for _ in 0..n as usize {
        match m.complete("x").await {
            Err(ProviderError::Server { status: 500, .. }) => errors += 1.0,
            Err(ProviderError::RateLimited { retry_after, .. }) => {
                assert_eq!(retry_after, Some(Duration::from_millis(250)));
                limited += 1.0;
            }
            Err(other) => panic!("unexpected {other}"),
            Ok(_) => {}
        }
    }
    // Within four standard deviations of the binomial expectation.
    let within = |count: f64, p: f64| (count - n * p).abs() < 4.0 * (n * p * (1.0 - p)).sqrt();
    assert!(within(errors, 0.1), "errors {errors}");
    assert!(within(limited, 0.05), "429s {limited}");
}

#[tokio::test(start_paused = true)]
async fn outputs_are_deterministic_per_seed_and_prompt() {
    let a = mock(json!({"latencyMs": 0, "seed": 1}));
    let b = mock(json!({"latencyMs": 0, "seed": 1}));
    let c = mock(json!({"latencyMs": 0, "seed": 2}));
    let first = a.complete("same prompt").await.unwrap().output;
    assert_eq!(first, a.complete("same prompt").await.unwrap().output);
    assert_eq!(first, b.complete("same prompt").await.unwrap().output);
    assert_ne!(first, c.complete("same prompt").await.unwrap().output);
    assert_ne!(first, a.complete("other prompt").await.unwrap().output);
}

#[tokio::test(start_paused = true)]
async fn canned_responses_match_by_regex_and_tokens_price_the_call() {
    let m = mock(json!({
        "latencyMs": 0, "model": "gpt-4o-mini",
        "responses": [{"match": "[Cc]apital of [Ff]rance", "output": "Paris"}, {"match": ".*", "output": "I don't know"}]
    }));
    let c = m.complete("What is the capital of France?").await.unwrap();
    assert_eq!(c.output, "Paris");
    assert_eq!(
        c.usage,
        TokenUsage {
            input: 8,
            output: 2
        }
    );
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    let expected = (8.0 * 0.15 + 2.0 * 0.60) / 1e6;
    assert!((c.cost_usd - expected).abs() < 1e-15);
    assert_eq!(m.complete("anything").await.unwrap().output, "I don't know");
}

#[test]
fn bad_configs_are_refused_with_the_reason() {
    let cases = [
        (
            "mock:x",
            json!({"errorRate": 2}),
            "errorRate must be between 0 and 1",
        ),
        (
            "mock:x",
            json!({"errorRate": 0.7, "rateLimitRate": 0.5}),
            "must not exceed 1",
        ),
        (
            "mock:x",
            json!({"latency": {"medianMs": 500, "p99Ms": 100}}),
            "0 < medianMs <= p99Ms",
        ),
        (
            "mock:x",
            json!({"latencyMs": "fast"}),
            "latencyMs must be a number",
        ),
        (
            "mock:x",
            json!({"responses": [{"match": "(", "output": "x"}]}),
            "not a valid regex",
        ),
        (
            "mock:x",
            json!({"temperature": 1}),
            "unknown mock config key `temperature`",
        ),
        (
            "mock:x",
            json!({"seed": -1}),
            "seed must be a non-negative integer",
        ),
        ("mock:", json!({}), "named `mock:<name>`"),
    ];
    for (id, config, expected) in cases {
        let spec = ProviderSpec {
            id: id.into(),
            label: None,
            config: config.as_object().cloned().unwrap(),
            delay_ms: None,
        };
        let err = Mock::new(&spec)
            .err()
            .unwrap_or_else(|| panic!("{config} accepted"));
        assert!(err.contains(expected), "{err}");
    }
}
