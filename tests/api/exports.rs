//! Exports stream every result once, in job order, across pages (keyset
//! pages of 1,000), for every format.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn exports_over_several_pages_hold_every_result_once_in_order() {
    let app = spawn_app().await;
    let n: Vec<String> = (0..1300).map(|i| i.to_string()).collect();
    let id = app
        .submit(json!({"suite": {
            "prompts": ["A {{n}}", "B {{n}}"],
            "providers": ["echo"],
            "tests": [{"vars": {"n": n}, "assert": [{"type": "contains", "value": "1"}]}],
        }, "cache": false}))
        .await;
    let done = app.wait_done(id).await;
    assert_eq!(done["completed"], 2600, "{done}");
    let get = |format: &str| {
        let url = app.url(&format!("/api/executions/{id}/results?format={format}"));
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };

    let jsonl = get("jsonl").await;
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2600);
    // Test-major job order: each test, then each prompt.
    let order: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["testIdx"].as_u64().unwrap(),
                r["promptIdx"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(u64, u64)> = (0..1300).flat_map(|t| [(t, 0), (t, 1)]).collect();
    assert_eq!(order, expected);

    let csv = get("csv").await;
    assert_eq!(csv.lines().count(), 2601);

    let promptfoo: Value = serde_json::from_str(&get("promptfoo").await).unwrap();
    assert_eq!(
        promptfoo["results"]["results"].as_array().unwrap().len(),
        2600
    );

    let junit = get("junit").await;
    assert_eq!(junit.matches("<testsuite ").count(), 2);
    assert_eq!(junit.matches("<testcase ").count(), 2600);
    // Each group holds its own prompt's results only.
    let (first, second) = junit.split_once("</testsuite>").unwrap();
    assert_eq!(first.matches("<testcase ").count(), 1300);
    assert_eq!(second.matches("<testcase ").count(), 1300);
    // Every job left `pending` with its result: the index of unfinished
    // jobs holds nothing of a finished execution.
    let db = crate::helpers::open_db(&app.db_path);
    let unfinished: i64 = db
        .query_row(
            "SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unfinished, 0);
    app.stop().await;
}
