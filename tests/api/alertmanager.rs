//! Pushing alerts to Alertmanager: to the real one (Debian package
//! `prometheus-alertmanager`, started on a loopback port), and to a loopback
//! server that refuses the first push, to see failures counted and retried
//! without holding up the monitor.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use promptgauge::Config;
use promptgauge::common::time::rfc3339;
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, sample, spawn_app_with, start_alertmanager};

const BACKLOG: &str = "PromptgaugeTestQueueBacklog";

/// Fast sampling, one test at a time and low queue levels, so 60 slow
/// tests breach both levels within a second.
fn backlog_app(c: &mut Config, alertmanager: String) {
    c.monitoring_interval = Duration::from_millis(100);
    c.alert_for = Duration::from_millis(300);
    c.max_concurrent_tests = 1;
    c.thresholds.queue_length.warning = 20.0;
    c.thresholds.queue_length.critical = 40.0;
    c.alertmanager_url = Some(alertmanager);
}

async fn start_backlog(app: &TestApp) -> i64 {
    app.submit(json!({
        "suite": {
            "prompts": ["backlog {{i}}"],
            "providers": [{"id": "mock:slow", "config": {"latencyMs": 2000}}],
            "tests": (0..60).map(|i| json!({"vars": {"i": i}})).collect::<Vec<_>>(),
        },
        "cache": false,
    }))
    .await
}

/// `GET /api/v2/alerts`, our backlog alerts only.
async fn backlog_alerts(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let all: Vec<Value> = client
        .get(format!("{base}/api/v2/alerts"))
        .send()
        .await
        .expect("Alertmanager answers")
        .json()
        .await
        .unwrap();
    all.into_iter()
        .filter(|a| a["labels"]["alertname"] == BACKLOG)
        .collect()
}

#[tokio::test]
#[ignore = "needs prometheus-alertmanager"]
async fn firing_alerts_reach_a_real_alertmanager_and_leave_it_when_resolved() {
    promptgauge::common::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (_am, base) = start_alertmanager(dir.path()).await;
    let client = reqwest::Client::new();

    let app = spawn_app_with(|c| backlog_app(c, base.clone())).await;
    let id = start_backlog(&app).await;

    let pushed = eventually("both levels in Alertmanager", || async {
        let alerts = backlog_alerts(&client, &base).await;
        if alerts.len() == 2 {
            Ok(alerts)
        } else {
            Err(alerts)
        }
    })
    .await;
    let ours = app.get_json("/api/performance/alerts").await["alerts"].clone();
    for severity in ["warning", "critical"] {
        let a = pushed
            .iter()
            .find(|a| a["labels"]["severity"] == severity)
            .unwrap_or_else(|| panic!("{severity}: {pushed:?}"));
        assert_eq!(a["status"]["state"], "active", "{a}");
        let labels = &a["labels"];
        assert_eq!(labels["service"], "promptgauge");
        assert_eq!(labels["instance"], app.addr.to_string());
        assert_eq!(labels["signal"], "queue_length");
        let level = if severity == "warning" { 20.0 } else { 40.0 };
        let notes = &a["annotations"];
        assert!(
            notes["summary"]
                .as_str()
                .unwrap()
                .contains("test queue length"),
            "{notes}"
        );
        let description = notes["description"].as_str().unwrap();
        assert!(
            description.contains(&format!("{severity} threshold {level:.0} jobs")),
            "{description}"
        );
        assert_eq!(notes["threshold"], level.to_string());
        assert_eq!(
            notes["runbook_url"],
            "docs/runbooks.md#promptgaugetestqueuebacklog"
        );
        assert!(notes["value"].as_str().unwrap().parse::<f64>().unwrap() >= level);
        assert_eq!(
            a["generatorURL"],
            format!("http://{}/api/performance/alerts", app.addr)
        );
        // startsAt is the episode's start as the monitor recorded it.
        let mine = ours
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["alertname"] == BACKLOG && o["severity"] == severity)
            .unwrap();
        assert_eq!(a["startsAt"], rfc3339(mine["startedAt"].as_i64().unwrap()));
        // Firing alerts are sent with endsAt a few minutes out.
        assert!(a["endsAt"].as_str().unwrap() > a["startsAt"].as_str().unwrap());
    }
    let text = app.metrics_text().await;
    assert!(
        sample(
            &text,
            "promptgauge_alertmanager_notifications_total{status=\"success\"}"
        )
        .unwrap()
            >= 1.0
    );

    // The load stops: the resolution is pushed and Alertmanager drops both.
    let res = app
        .post_json(&format!("/api/executions/{id}/cancel"), &json!({}))
        .await;
    assert!(res.status().is_success());
    eventually("gone from Alertmanager", || async {
        let alerts = backlog_alerts(&client, &base).await;
        if alerts.is_empty() {
            Ok(())
        } else {
            Err(alerts)
        }
    })
    .await;
    app.stop().await;
}

/// What the loopback Alertmanager stand-in saw.
#[derive(Default)]
struct Pushes {
    refused: usize,
    accepted: Vec<Value>,
}

/// Refuses the first push with a 503, accepts the rest.
async fn receive(
    State(pushes): State<Arc<Mutex<Pushes>>>,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    let mut p = pushes.lock().unwrap();
    if p.refused == 0 {
        p.refused += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    p.accepted.push(body);
    StatusCode::OK
}

#[tokio::test]
async fn a_failed_push_is_counted_and_retried_while_the_monitor_goes_on() {
    let pushes = Arc::new(Mutex::new(Pushes::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/api/v2/alerts", post(receive))
        .with_state(pushes.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let app = spawn_app_with(|c| backlog_app(c, format!("http://{addr}/"))).await;
    let mut events = app.events.subscribe();
    let id = start_backlog(&app).await;

    // The refused push does not stop the monitor: both levels fire.
    let mut fired = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while fired < 2 {
        let e = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("alerts fire")
            .unwrap();
        if e.kind == "alert.firing" && e.json()["alertname"] == BACKLOG {
            fired += 1;
        }
        assert!(Instant::now() < deadline);
    }
    let body = eventually("a push accepted after the refused one", || async {
        let p = pushes.lock().unwrap();
        p.accepted.first().cloned().ok_or(p.refused)
    })
    .await;
    let text = app.metrics_text().await;
    let count = |status: &str| {
        sample(
            &text,
            &format!("promptgauge_alertmanager_notifications_total{{status=\"{status}\"}}"),
        )
        .unwrap()
    };
    assert_eq!(count("error"), 1.0, "the refused push is counted");
    assert!(count("success") >= 1.0);
    // The retry carries what is firing by then, both levels.
    let severities: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == BACKLOG)
        .map(|a| a["labels"]["severity"].as_str().unwrap())
        .collect();
    assert!(
        severities.contains(&"critical") && severities.contains(&"warning"),
        "{body}"
    );
    let res = app
        .post_json(&format!("/api/executions/{id}/cancel"), &json!({}))
        .await;
    assert!(res.status().is_success());
    app.stop().await;
    server.abort();
}
