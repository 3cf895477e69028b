//! The queue against a real OpenAI-compatible server on loopback that
//! rate-limits, fails and runs out of quota on command: the adaptive limit,
//! retry-after, fail-fast quota errors, the circuit breaker, and cancel.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_openai::{self, FakeOpenAi, Mode, SCRIPTED_RETRY_AFTER};
use crate::helpers::{TestApp, sample, spawn_app, spawn_app_with};

const PROVIDER: &str = "openai:chat:scripted";

/// `tests` tests against the scripted model, each with its own prompt.
fn suite(fake: &FakeOpenAi, tests: usize) -> Value {
    json!({
        "prompts": ["Question {{n}}"],
        "providers": [{"id": PROVIDER, "config": {"apiBaseUrl": fake.base_url(), "apiKeyRequired": false}}],
        "tests": (0..tests).map(|n| json!({"vars": {"n": n}, "assert": [{"type": "contains", "value": "Answer"}]})).collect::<Vec<_>>(),
    })
}

/// A sample of a provider-labelled family.
async fn gauge(app: &TestApp, family: &str) -> Option<f64> {
    sample(
        &app.metrics_text().await,
        &format!("{family}{{provider=\"{PROVIDER}\"}}"),
    )
}

/// Polls until `family` satisfies `cond` (a minute at most).
async fn wait_metric(app: &TestApp, family: &str, cond: impl Fn(f64) -> bool) -> f64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = gauge(app, family).await.filter(|v| cond(*v)) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{family} never got there"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn rate_limits_halve_the_concurrency_limit_retry_after_is_honoured_and_successes_restore_it()
{
    let fake = fake_openai::start().await;
    fake.set_mode(Mode::RateLimited);
    let app = spawn_app_with(|c| c.max_concurrent_tests = 8).await;
    let id = app
        .submit(json!({"suite": suite(&fake, 60), "cache": false}))
        .await;

    let dropped = wait_metric(&app, "promptgauge_test_concurrency_limit", |v| v <= 2.0).await;
    assert!(dropped >= 1.0);
    // The progress says why the execution waits.
    let view = app.get_json(&format!("/api/executions/{id}")).await;
    let waiting = view["progress"]["waiting"].as_str().unwrap_or_default();
    assert!(
        waiting.contains("rate limited from openai:chat:scripted"),
        "{view}"
    );
    fake.set_mode(Mode::Ok);
    fake.take_max_in_flight();

    let done = app.wait_done(id).await;
    assert_eq!(
        (&done["passed"], &done["errors"]),
        (&json!(60), &json!(0)),
        "{done}"
    );
    // Enough successes in a row grow the limit back to the ceiling.
    assert_eq!(
        gauge(&app, "promptgauge_test_concurrency_limit").await,
        Some(8.0)
    );
    assert!(fake.take_max_in_flight() <= 8);
    let text = app.metrics_text().await;
    let retries = sample(
        &text,
        &format!(
            "promptgauge_test_retries_total{{provider=\"{PROVIDER}\",reason=\"rate_limited\"}}"
        ),
    )
    .unwrap_or(0.0);

    // Every 429 was followed, for the same prompt, by a retry no sooner
    // than the server's retry-after (longer than our own first backoff).
    let hits = fake.scripted_hits();
    let limited: Vec<_> = hits.iter().filter(|h| h.status == 429).collect();
    assert!(!limited.is_empty());
    assert_eq!(retries as usize, limited.len(), "one retry per 429");
    for h in &limited {
        let next = hits
            .iter()
            .find(|n| n.prompt == h.prompt && n.at > h.at)
            .unwrap_or_else(|| panic!("{} was never retried", h.prompt));
        assert!(
            next.at - h.at >= SCRIPTED_RETRY_AFTER,
            "{} retried after {:?}",
            h.prompt,
            next.at - h.at
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn quota_errors_fail_fast_without_retries() {
    let fake = fake_openai::start().await;
    fake.set_mode(Mode::Quota);
    let app = spawn_app().await;
    let id = app
        .submit(json!({"suite": suite(&fake, 5), "cache": false}))
        .await;
    let done = app.wait_done(id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        (&done["passed"], &done["errors"]),
        (&json!(0), &json!(5)),
        "{done}"
    );
    assert_eq!(fake.scripted_hits().len(), 5, "one call per test, no retry");
    let results = app.get_json(&format!("/api/executions/{id}/results")).await;
    for r in results["items"].as_array().unwrap() {
        assert_eq!(r["failureReason"], 2);
        assert!(r["error"].as_str().unwrap().contains("quota"), "{r}");
    }
    let text = app.metrics_text().await;
    assert!(!text.contains(&format!(
        "promptgauge_test_retries_total{{provider=\"{PROVIDER}\""
    )));
    // Quota says nothing about the server's health: the circuit stays closed.
    assert_ne!(
        gauge(&app, "promptgauge_provider_circuit_open").await,
        Some(1.0)
    );
    app.stop().await;
}

/// Waits until no test is in flight.
async fn in_flight_drains(app: &crate::helpers::TestApp) {
    crate::helpers::eventually("no test in flight", || async {
        match sample(&app.metrics_text().await, "promptgauge_tests_in_flight") {
            Some(0.0) => Ok(()),
            other => Err(other),
        }
    })
    .await;
}

#[tokio::test]
async fn the_circuit_breaker_pauses_a_failing_provider_and_a_probe_closes_it() {
    let fake = fake_openai::start().await;
    fake.set_mode(Mode::Failing);
    let app = spawn_app().await;
    // A circuit pause counts as a retry: with six, no job runs out of them
    // before the probe (at most five failures open it, then one pause).
    let mut s = suite(&fake, 12);
    s["providers"][0]["config"]["maxRetries"] = json!(6);
    let id = app
        .submit(json!({"suite": s, "cache": false, "maxConcurrency": 2}))
        .await;

    wait_metric(&app, "promptgauge_provider_circuit_open", |v| v == 1.0).await;
    // A call already in the air when it opened lands; then the provider
    // has nothing to answer while the execution waits on the circuit.
    crate::helpers::eventually("calls landed, the run waits on the circuit", || async {
        let view = app.get_json(&format!("/api/executions/{id}")).await;
        let waiting = view["progress"]["waiting"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match (fake.in_flight(), waiting.contains("circuit open")) {
            (0, true) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let at_open = fake.scripted_hits().len();
    assert!(at_open >= 5, "opened after {at_open} calls");
    let view = app.get_json(&format!("/api/executions/{id}")).await;
    assert!(
        view["progress"]["waiting"]
            .as_str()
            .unwrap_or_default()
            .contains("circuit open"),
        "{view}"
    );

    // The provider recovers: the probe succeeds and the circuit closes.
    fake.set_mode(Mode::Ok);
    wait_metric(&app, "promptgauge_provider_circuit_open", |v| v == 0.0).await;
    let done = app.wait_done(id).await;
    assert_eq!(
        (&done["passed"], &done["errors"]),
        (&json!(12), &json!(0)),
        "{done}"
    );
    let hits = fake.scripted_hits();
    let first_ok = hits.iter().position(|h| h.status == 200).unwrap();
    // Nothing was called while the circuit was open: the first call after
    // the last failure is the probe, and it succeeded.
    assert_eq!(first_ok, at_open, "one probe first, after the pause");
    app.stop().await;
}

#[tokio::test]
async fn cancel_drops_pending_jobs_and_keeps_finished_results_across_a_restart() {
    let fake = fake_openai::start().await;
    let app = spawn_app().await;
    let id = app
        .submit(json!({"suite": suite(&fake, 400), "cache": false, "maxConcurrency": 2}))
        .await;
    app.wait_for(id, |e| e["completed"].as_i64() >= Some(10))
        .await;
    let res = app
        .post_json(&format!("/api/executions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let cancelled: Value = res.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");

    // Calls stop: at most the two running ones were in the air.
    let at_cancel = fake.scripted_hits().len();
    in_flight_drains(&app).await;
    let settled = fake.scripted_hits().len();
    assert!(settled <= at_cancel + 2, "{at_cancel} -> {settled}");

    let view = app.get_json(&format!("/api/executions/{id}")).await;
    let kept = view["completed"].as_i64().unwrap();
    assert!((10..400).contains(&kept), "{view}");
    let results = app
        .get_json(&format!("/api/executions/{id}/results?limit=1000"))
        .await;
    assert_eq!(results["total"].as_i64(), Some(kept));
    assert!(
        results["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["passed"] == true)
    );
    // Cancelling again is a no-op.
    let again = app
        .post_json(&format!("/api/executions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(again.status(), 200);

    // A restart does not resume a cancelled execution.
    let (dir, db_path) = app.stop().await;
    let app = crate::helpers::spawn_app_at(dir, db_path, |_| {}).await;
    // The monitor's first cycle runs once recovery has finished.
    crate::helpers::eventually("recovery done", || async {
        match sample(
            &app.metrics_text().await,
            "promptgauge_monitor_evaluation_duration_seconds_count",
        ) {
            Some(n) if n >= 1.0 => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let view = app.get_json(&format!("/api/executions/{id}")).await;
    assert_eq!(view["status"], "cancelled");
    assert_eq!(view["completed"].as_i64(), Some(kept));
    assert_eq!(fake.scripted_hits().len(), settled);
    app.stop().await;
}

/// A provider that answers 500, 502 with a proxy's page, or bodies that
/// break off: every test ends as an error that names the failure, within
/// the retry schedule (one retry here), never as a timeout.
#[tokio::test]
async fn a_failing_provider_ends_each_test_as_an_error_naming_the_failure() {
    let app = spawn_app().await;
    let mut runs = Vec::new();
    for (mode, named) in [
        (Mode::Failing, "500"),
        (Mode::BadGateway, "502"),
        (Mode::Truncated, "transport error"),
    ] {
        let fake = fake_openai::start().await;
        fake.set_mode(mode);
        let mut s = suite(&fake, 8);
        s["providers"][0]["config"]["maxRetries"] = json!(1);
        let id = app
            .submit(json!({"suite": s, "cache": false, "maxConcurrency": 2}))
            .await;
        runs.push((id, named, fake));
    }
    for (id, named, _fake) in &runs {
        let done = app.wait_done(*id).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["errors"], 8, "{done}");
        let page = app
            .get_json(&format!("/api/executions/{id}/results?limit=100"))
            .await;
        let errors: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["error"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(errors.len(), 8);
        for e in &errors {
            assert!(!e.contains("timed out"), "{e}");
            assert!(e.contains(named), "{named}: {e}");
        }
        // Once the circuit opened, the rest were told why without a call.
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("provider unavailable: ")
                    && e.contains("failed 5 calls in a row and its circuit is open")),
            "{errors:#?}"
        );
    }
    app.stop().await;
}
