//! Grading under budgets: a catastrophic pattern fails its assertion with
//! the reason, and while it is graded the service keeps answering.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

/// `tests` echo tests whose output makes `(a|a?)+$` backtrack for hours
/// without a budget, each also with a plain regex that passes.
pub(crate) fn catastrophic_suite(tests: usize) -> Value {
    let text = format!("{}b", "a".repeat(28));
    let tests: Vec<Value> = (0..tests)
        .map(|i| {
            json!({"description": format!("t{i}"), "vars": {"s": text, "i": i}, "assert": [
                {"type": "regex", "value": "(a|a?)+$"},
                {"type": "regex", "value": "^a+b"},
            ]})
        })
        .collect();
    json!({"prompts": ["{{s}}"], "providers": ["echo"], "tests": tests})
}

#[tokio::test]
async fn a_catastrophic_regex_fails_with_its_reason_while_health_and_cancel_answer() {
    let app = spawn_app().await;
    let id = app
        .submit(json!({"suite": catastrophic_suite(40), "maxConcurrency": 4, "cache": false}))
        .await;

    // While outputs are graded, the service answers.
    let mut answered_while_running = 0;
    loop {
        let health = app.get("/api/performance/health").await;
        assert_eq!(health.status(), 200);
        let view = app.get_json(&format!("/api/executions/{id}")).await;
        if view["status"] != "running" {
            break;
        }
        answered_while_running += 1;
        if view["completed"].as_i64().unwrap() >= 2 {
            break;
        }
    }
    assert!(answered_while_running >= 1, "the execution ended first");

    let cancel = app
        .post_json(&format!("/api/executions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(cancel.status(), 200);
    let view = app.wait_done(id).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    let done = view["completed"].as_i64().unwrap();
    assert!((2..40).contains(&done), "{view}");

    let page = app
        .get_json(&format!("/api/executions/{id}/results?limit=100"))
        .await;
    let results = page["items"].as_array().unwrap();
    assert_eq!(results.len() as i64, done);
    for r in results {
        assert_eq!(r["passed"], false, "{r}");
        let parts = r["gradingResult"]["componentResults"].as_array().unwrap();
        let reason = parts[0]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("Regex could not be evaluated: matching /(a|a?)+$/ took more than 10000000 backtracking steps"),
            "{reason}"
        );
        // The other assertion of the same test was graded as usual.
        assert_eq!(parts[1]["pass"], true, "{r}");
    }
    app.stop().await;
}
