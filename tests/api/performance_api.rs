//! The performance API over a running monitor: tracked metrics, windows
//! from memory and from the per-minute history, bottlenecks, the export,
//! and bad input refused by name.

use serde_json::Value;

use crate::helpers::{eventually, spawn_app_with, wait_samples};
use crate::monitor::{alerts, fast_monitor};

#[tokio::test]
async fn the_performance_api_reports_samples_bottlenecks_and_an_export() {
    let app = spawn_app_with(fast_monitor).await;
    // A first sample (windows start there), some traffic, a few cycles.
    wait_samples(&app, 1).await;
    for _ in 0..20 {
        app.get("/api/performance/health").await;
    }
    // A cycle after the traffic sees all of it.
    eventually("the health requests in the bottlenecks", || async {
        let b = app.get_json("/api/performance/bottlenecks?window=1m").await;
        let count = b["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["component"] == "http GET /api/performance/health")
            .and_then(|c| c["count"].as_f64())
            .unwrap_or(0.0);
        if count >= 20.0 { Ok(()) } else { Err(b) }
    })
    .await;
    wait_samples(&app, 3).await;

    let tracked = app.get_json("/api/performance/metrics").await;
    let names: Vec<&str> = tracked["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for expected in [
        "cpu_usage_ratio",
        "memory_usage_ratio",
        "process_resident_memory_bytes",
        "test_queue_length",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }

    let m = app
        .get_json("/api/performance/metrics/process_resident_memory_bytes?window=1m")
        .await;
    assert_eq!(m["source"], "memory");
    assert_eq!(m["windowSeconds"], 60.0);
    let samples = m["samples"].as_array().unwrap();
    assert!(samples.len() >= 3, "{m}");
    let values: Vec<f64> = samples
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    assert_eq!(m["min"].as_f64(), Some(min));
    assert_eq!(m["max"].as_f64(), Some(max));
    assert!(min > 1e6, "a real RSS: {m}");

    let b = app.get_json("/api/performance/bottlenecks?window=1m").await;
    let components = b["components"].as_array().unwrap();
    let health = components
        .iter()
        .find(|c| c["component"] == "http GET /api/performance/health")
        .unwrap_or_else(|| panic!("{b}"));
    assert!(health["count"].as_f64().unwrap() >= 20.0, "{health}");

    let r = app.get_json("/api/performance/recommendations").await;
    assert!(r["recommendations"].is_array(), "{r}");

    let export = app.get_json("/api/performance/export").await;
    for key in [
        "overview",
        "thresholds",
        "metrics",
        "alerts",
        "bottlenecks",
        "recommendations",
    ] {
        assert!(!export[key].is_null(), "{key} in export");
    }
    assert_eq!(
        export["thresholds"]["queueLength"]["critical"], 500.0,
        "{export}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_performance_api_refuses_bad_input_by_name() {
    let app = spawn_app_with(fast_monitor).await;
    wait_samples(&app, 1).await;

    let res = app.get("/api/performance/metrics/no_such_metric").await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("no_such_metric"), "{message}");
    assert!(
        message.contains("cpu_usage_ratio"),
        "lists the known: {message}"
    );

    // Hostile names come back escaped in JSON, never interpreted.
    let res = app
        .get("/api/performance/metrics/%3Cscript%3Ealert(1)%3C%2Fscript%3E'%3B%20DROP%20TABLE%20alerts")
        .await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("<script>alert(1)</script>'; DROP TABLE alerts")
    );
    // Past the longest request target read: a JSON 414.
    let long = "m".repeat(10_000);
    let res = app.get(&format!("/api/performance/metrics/{long}")).await;
    assert_eq!(res.status(), 414);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "uri_too_long");
    let long = "m".repeat(4_000);
    assert_eq!(
        app.get(&format!("/api/performance/metrics/{long}"))
            .await
            .status(),
        404
    );

    let cases = [
        (
            "/api/performance/metrics/cpu_usage_ratio?window=soon",
            "window",
        ),
        (
            "/api/performance/metrics/cpu_usage_ratio?window=-5m",
            "window",
        ),
        (
            "/api/performance/metrics/cpu_usage_ratio?window=30d",
            "window",
        ),
        (
            "/api/performance/metrics/cpu_usage_ratio?window=0s",
            "window",
        ),
        (
            "/api/performance/metrics/cpu_usage_ratio?colour=red",
            "colour",
        ),
        ("/api/performance/bottlenecks?window=1y", "window"),
        ("/api/performance/bottlenecks?top=5", "top"),
        ("/api/performance/alerts?state=burning", "state"),
        (
            "/api/performance/alerts?state=resolved&since=yesterday",
            "since",
        ),
        ("/api/performance/alerts?state=resolved&limit=0", "limit"),
        ("/api/performance/alerts?state=resolved&limit=many", "limit"),
    ];
    for (path, name) in cases {
        let res = app.get(path).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert!(status.is_client_error(), "{path}: {status} {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(name), "{path}: {body}");
    }
    // Nothing was stored or changed by any of it.
    assert!(alerts(&app, "?state=resolved").await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn windows_longer_than_the_memory_read_the_per_minute_history() {
    let app = spawn_app_with(fast_monitor).await;
    wait_samples(&app, 1).await;
    let now = promptgauge::storage::now_ms();
    let minute = |ago_min: i64| (now / 60_000 - ago_min) * 60_000;
    let row = |metric: &str, ts: i64, value: f64| promptgauge::storage::MonitorSampleRow {
        metric: metric.to_owned(),
        resolution_s: 60,
        ts,
        value,
        min: value - 0.1,
        max: value + 0.1,
    };
    app.storage
        .insert_monitor_samples(vec![
            row("cpu_usage_ratio", minute(200), 0.9), // outside a 3h window
            row("cpu_usage_ratio", minute(120), 0.2),
            row("cpu_usage_ratio", minute(90), 0.4),
            row("cpu_usage_ratio", minute(30), 0.6),
            row("memory_usage_ratio", minute(30), 0.5),
        ])
        .await
        .unwrap();

    let m = app
        .get_json("/api/performance/metrics/cpu_usage_ratio?window=3h")
        .await;
    assert_eq!(m["source"], "history", "{m}");
    assert_eq!(m["windowSeconds"], 10_800.0);
    let values: Vec<f64> = m["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [0.2, 0.4, 0.6], "{m}");
    let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;
    assert!(close(&m["min"], 0.1), "{m}");
    assert!(close(&m["max"], 0.7), "{m}");
    assert!(close(&m["avg"], 0.4), "{m}");
    assert!(m["current"].as_f64().is_some(), "the live value: {m}");

    // Within the hour in memory, the same metric answers from memory.
    let m = app
        .get_json("/api/performance/metrics/cpu_usage_ratio?window=30m")
        .await;
    assert_eq!(m["source"], "memory");
    app.stop().await;
}
