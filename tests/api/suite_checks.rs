//! Nothing a user wrote is dropped silently: what the service cannot run
//! is refused with its location when the suite is read, and var
//! references resolve to any depth or fail the test by name.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

async fn refused(app: &crate::helpers::TestApp, suite: Value) -> Vec<(String, String)> {
    let res = app.post_json("/api/suites", &suite).await;
    assert_eq!(res.status(), 422, "{suite}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(app.get_json("/api/suites").await["total"], 0);
    body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["location"].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_csv_expected_cell_naming_code_in_a_file_is_refused_with_its_location() {
    let app = spawn_app().await;
    let csv = "q,__expected\nhello,javascript:file://check.ts\nbye,contains:bye\n";
    let problems = refused(
        &app,
        json!({"prompts": ["{{q}}"], "providers": ["echo"], "tests": {"csv": csv, "file": "t.csv"}}),
    )
    .await;
    assert!(
        problems
            .iter()
            .any(|(at, m)| at.ends_with(".assert[0].value")
                && at.contains("csv[")
                && m.contains("\"file://check.ts\" is a file reference")),
        "{problems:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unsupported_type_with_a_templated_value_is_refused_before_any_test_runs() {
    let app = spawn_app().await;
    let suite = json!({"prompts": ["{{q}}"], "providers": ["echo"], "tests": [
        {"vars": {"q": "hi"}, "assert": [{"type": "moderation", "value": "{{q}}"}]},
        {"vars": {"q": "ho"}, "assert": [{"type": "assert-set", "assert": [
            {"type": "contains", "value": "{{q}}"}, {"type": "not-similar", "value": "{{q}}"}]}]},
    ]});
    let problems = refused(&app, suite.clone()).await;
    let at: Vec<&str> = problems.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        at,
        ["tests[0].assert[0]", "tests[1].assert[0]"],
        "{problems:?}"
    );
    assert!(
        problems[0]
            .1
            .starts_with("unknown assertion type \"moderation\"")
    );
    assert!(
        problems[1]
            .1
            .starts_with("unknown assertion type \"similar\"")
    );
    // The same as an execution: refused, nothing runs.
    let res = app
        .post_json("/api/executions", &json!({"suite": suite}))
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(app.get_json("/api/executions").await["total"], 0);
    app.stop().await;
}

#[tokio::test]
async fn var_references_resolve_to_any_depth_and_a_cycle_fails_its_test_by_name() {
    let app = spawn_app().await;
    let id = app
        .submit(json!({"suite": {"prompts": ["say {{q}}"], "providers": ["echo"], "tests": [
            {"vars": {"a1": "{{a2}}", "a2": "{{a3}}", "a3": "{{a4}}", "a4": "{{a5}}", "a5": "{{a6}}",
                      "a6": "{{a7}}", "a7": "{{a8}}", "a8": "deep", "q": "{{a1}}"},
             "assert": [{"type": "equals", "value": "say deep"}]},
            {"vars": {"a": "{{b}}", "b": "{{a}}", "q": "{{a}}"},
             "assert": [{"type": "contains", "value": "say"}]},
        ]}}))
        .await;
    let done = app.wait_done(id).await;
    assert_eq!(
        (&done["passed"], &done["errors"]),
        (&json!(1), &json!(1)),
        "{done}"
    );
    let page = app
        .get_json(&format!("/api/executions/{id}/results?filter=error"))
        .await;
    let error = page["items"][0]["error"].as_str().unwrap();
    assert!(error.contains("must not form a cycle"), "{error}");
    app.stop().await;
}
