//! The benchmark suite over the API: a run started in the background, a
//! second start refused with 409 and the running id, progress on `/ws`
//! (topic `benchmarks`), the run stored and returned with every figure; a
//! baseline made artificially better flags exactly that benchmark; bad
//! scenarios refused with their location.

use std::time::Duration;

use promptgauge::progress::TopicName;
use promptgauge::progress::client::{ClientOptions, ProgressClient};
use serde_json::{Value, json};

use crate::helpers::{TestApp, open_db, spawn_app};

const WAIT: Duration = Duration::from_secs(120);

/// Two in-process benchmarks, two samples each; generous tolerance so the
/// host's noise never regresses them.
fn scenario() -> Value {
    json!({
        "name": "api-check",
        "repeats": 2,
        "tolerance": 5.0,
        "benchmark": [
            {"name": "writer", "kind": "writer", "rows": 2000},
            {"name": "metrics", "kind": "metrics", "scrapes": 20}
        ]
    })
}

async fn start(app: &TestApp, body: Value) -> (u16, Value) {
    let res = app.post_json("/api/performance/benchmark", &body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// Runs the scenario to its end, watching `/ws`; returns the stored run.
async fn run_to_end(app: &TestApp, body: Value) -> Value {
    let mut c = ProgressClient::connect(&app.url(""), &ClientOptions::default())
        .await
        .unwrap();
    c.subscribe_topics(&[TopicName::Benchmarks]).await.unwrap();
    assert_eq!(c.next().await.unwrap().kind, "subscribed");
    let (status, started) = start(app, body).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_i64().unwrap();
    // One at a time.
    let (status, refused) = start(app, json!({"scenario": scenario()})).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["runningId"], id);
    let mut progress = 0;
    loop {
        let m = tokio::time::timeout(WAIT, c.next()).await.unwrap().unwrap();
        match m.kind.as_str() {
            "benchmark.progress" => {
                assert_eq!(m.data["id"], id);
                progress += 1;
            }
            "benchmark.finished" => {
                assert_eq!(m.data["id"], id);
                break;
            }
            _ => {}
        }
    }
    // 2 benchmarks x 2 samples, started and finished.
    assert_eq!(progress, 8);
    app.get_json(&format!("/api/performance/benchmark?id={id}"))
        .await
}

#[tokio::test]
async fn a_run_starts_in_the_background_reports_progress_and_is_stored() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/performance/benchmark").await.status(), 404);
    let run = run_to_end(&app, json!({"scenario": scenario(), "saveBaseline": true})).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["scenario"], "api-check");
    assert_eq!(run["baseline"], true);
    assert!(run["machine"]["cores"].as_u64().unwrap() >= 1);
    let benchmarks = run["benchmarks"].as_array().unwrap();
    assert_eq!(benchmarks.len(), 2);
    for b in benchmarks {
        assert!(b["error"].is_null(), "{b}");
        assert_eq!(b["figure"]["samples"].as_array().unwrap().len(), 2);
        assert!(b["throughput"].as_f64().unwrap() > 0.0);
        let l = &b["latencyMs"];
        assert!(l["p50"].as_f64().unwrap() <= l["p95"].as_f64().unwrap());
        assert!(l["p95"].as_f64().unwrap() <= l["p99"].as_f64().unwrap());
        assert!(l["p99"].as_f64().unwrap() <= l["max"].as_f64().unwrap());
        assert!(b["peakRssMb"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(benchmarks[0]["ops"], 2000);
    assert_eq!(benchmarks[1]["ops"], 20);
    // The newest run is the one returned without an id.
    let latest = app.get_json("/api/performance/benchmark").await;
    assert_eq!(latest["id"], run["id"]);
    assert!(latest["running"].is_null());

    // The baseline's metrics figure made 100 times better: exactly that
    // benchmark regresses in the next run.
    let id = run["id"].as_i64().unwrap();
    let db = open_db(&app.db_path);
    let better = benchmarks[1]["figure"]["value"].as_f64().unwrap() / 100.0;
    db.execute(
        "UPDATE benchmark_runs SET results = json_set(results, '$.benchmarks[1].figure.value', ?1) WHERE id = ?2",
        rusqlite::params![better, id],
    )
    .unwrap();
    let second = run_to_end(&app, json!({"scenario": scenario()})).await;
    let c = &second["comparison"];
    assert_eq!(c["baselineId"], id, "{second}");
    assert_eq!(c["regressions"], json!(["metrics"]), "{c}");
    let writer = c["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["benchmark"] == "writer")
        .unwrap();
    assert_ne!(writer["verdict"], "regression");
    assert!(
        second["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "benchmark_regression"),
        "{second}"
    );
    assert_eq!(second["baseline"], false);
}

#[tokio::test]
async fn bad_scenarios_are_refused_with_their_location() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), "scenario"),
        (json!({"scenario": "nope"}), "scenario"),
        (json!({"scenario": 5}), "scenario"),
        (
            json!({"scenario": "smoke", "saveBaseline": "yes"}),
            "saveBaseline",
        ),
        (json!({"scenario": "smoke", "other": 1}), "other"),
        (
            json!({"scenario": {"name": "x", "benchmark": [{"name": "w", "kind": "writer", "rows": 1_000_000_000u64}]}}),
            "scenario.benchmark[0].rows",
        ),
        (
            json!({"scenario": {"name": "x", "benchmark": [{"name": "h", "kind": "http", "connections": 2, "duration_s": 1, "endpoints": ["http://example.com/"]}]}}),
            "scenario.benchmark[0].endpoints[0]",
        ),
        (
            json!({"scenario": {"name": "x", "benchmark": [{"name": "m", "kind": "metrics", "scrapes": 1, "rows": 3}]}}),
            "scenario.benchmark[0].rows",
        ),
        (
            json!({"scenario": {"name": "<script>", "benchmark": []}}),
            "scenario.name",
        ),
    ];
    for (body, location) in cases {
        let (status, v) = start(&app, body.clone()).await;
        assert_eq!(status, 422, "{body}: {v}");
        let named = v["error"]["problems"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["location"] == location));
        assert!(named, "{body}: {v}");
    }
    assert_eq!(
        app.get("/api/performance/benchmark?id=999").await.status(),
        404
    );
    assert_eq!(
        app.get("/api/performance/benchmark?id=abc").await.status(),
        422
    );
    assert_eq!(
        app.get("/api/performance/benchmark?x=1").await.status(),
        422
    );
    // Nothing was started.
    assert_eq!(app.get("/api/performance/benchmark").await.status(), 404);
}

#[tokio::test]
async fn a_posted_scenario_past_its_cost_is_refused_and_a_running_one_can_be_cancelled() {
    let app = spawn_app().await;
    // Each benchmark within its bound; two billion rows in all.
    let flood: Vec<Value> = (0..50)
        .map(|i| json!({"name": format!("w{i}"), "kind": "writer", "rows": 2_000_000}))
        .collect();
    let (status, refused) = start(
        &app,
        json!({"scenario": {"name": "flood", "repeats": 20, "benchmark": flood}}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("work units"),
        "{refused}"
    );
    assert_eq!(app.get("/api/performance/benchmark").await.status(), 404);
    assert_eq!(
        app.post_json("/api/performance/benchmark/cancel", &json!({}))
            .await
            .status(),
        404
    );

    // A long run (ten samples of a million rows, within the cost) is
    // cancelled in its first sample.
    let long = json!({"name": "long", "repeats": 10, "benchmark": [
        {"name": "writer", "kind": "writer", "rows": 1_000_000}
    ]});
    let (status, started) = start(&app, json!({"scenario": long})).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_i64().unwrap();
    let res = app
        .post_json("/api/performance/benchmark/cancel", &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"id": id, "status": "cancelling"}));
    let run = crate::helpers::eventually("the cancelled run stored", || async {
        let run = app
            .get_json(&format!("/api/performance/benchmark?id={id}"))
            .await;
        if run["running"].is_null() && run["status"] == "cancelled" {
            Ok(run)
        } else {
            Err(run)
        }
    })
    .await;
    assert_eq!(run["baseline"], false);
    let samples = run["benchmarks"][0]["figure"]["samples"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(samples < 10, "{run}");
    // A new run may start at once.
    let (status, again) = start(&app, json!({"scenario": scenario()})).await;
    assert_eq!(status, 202, "{again}");
    app.stop().await;
}
