//! The real service's registry after real traffic, shared by the benches
//! that read the registry (`/metrics`, the monitor): the app is built and
//! served on loopback with a temporary database, every resource of the API
//! is used (suites, executions on two mock models with errors and rate
//! limits, results and exports, analytics, reports, optimization, the
//! performance API, a WebSocket client, bad requests and an unknown
//! route), then it shuts down and its registry is what the bench reads.
//! No family, route or label is made up here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use promptgauge::app::App;
use promptgauge::config::Config;
use promptgauge::metrics::Metrics;
use promptgauge::progress::TopicName;
use promptgauge::progress::client::{ClientOptions, ProgressClient};
use serde_json::{Value, json};

/// Rounds of reads over every GET route (histogram observations).
const ROUNDS: usize = 20;

/// The registry of a real app after real traffic.
pub fn populated() -> Arc<Metrics> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(drive())
}

async fn drive() -> Arc<Metrics> {
    promptgauge::common::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let app = App::build(Config {
        port: 0,
        database_path: dir.path().join("bench.db"),
        ..Config::default()
    })
    .await
    .unwrap();
    let metrics = app.metrics().clone();
    let base = format!("http://{}", app.local_addr());
    let token = tokio_util::sync::CancellationToken::new();
    let stop = token.clone();
    let server = tokio::spawn(app.run(async move { stop.cancelled().await }));
    let http = reqwest::Client::new();
    let get = |path: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            let _ = r.bytes().await;
        }
    };
    let post = |path: &str, body: Value| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            r.json::<Value>().await.unwrap_or(Value::Null)
        }
    };

    // A WebSocket watcher for the whole run.
    let mut ws = ProgressClient::connect(&base, &ClientOptions::default())
        .await
        .unwrap();
    ws.subscribe_topics(&[TopicName::Executions, TopicName::Alerts])
        .await
        .unwrap();

    let suite = json!({
        "description": "registry bench",
        "prompts": ["Answer {{q}}", "Answer {{q}} in one word"],
        "providers": [
            {"id": "mock:fast", "config": {"latencyMs": 1, "seed": 1, "errorRate": 0.05}},
            {"id": "mock:slow", "config": {"latencyMs": 5, "seed": 2, "rateLimitRate": 0.05, "retryAfterMs": 10}}
        ],
        "tests": (0..25).map(|i| json!({"description": format!("case {i}"), "vars": {"q": i}, "assert": [{"type": "contains", "value": "a"}]})).collect::<Vec<_>>(),
    });
    let stored = post("/api/suites", suite).await;
    let suite_id = stored["id"].as_i64().unwrap();
    let mut executions = Vec::new();
    for cache in [false, true, true] {
        let e = post(
            "/api/executions",
            json!({"suiteId": suite_id, "cache": cache}),
        )
        .await;
        let id = e["id"].as_i64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = http
                .get(format!("{base}/api/executions/{id}"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            if !matches!(r["status"].as_str(), Some("pending" | "running")) {
                break;
            }
            assert!(Instant::now() < deadline, "execution {id} did not end");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        executions.push(id);
    }
    let id = executions[0];
    post(&format!("/api/executions/{id}/cancel"), json!({})).await;
    let report = post(
        "/api/reports",
        json!({"kind": "execution", "params": {"execution": id}, "format": "json"}),
    )
    .await;
    let report_id = report["id"].as_i64().unwrap_or(1);
    post(
        "/api/optimization/analyze",
        json!({"prompt": "Please answer {{q}} very briefly.", "model": "gpt-4o-mini", "suiteId": suite_id, "promptId": 0}),
    )
    .await;
    // Bad requests and an unknown route.
    post("/api/executions", json!({})).await;
    post("/api/reports", json!({"kind": "nope"})).await;
    get("/api/executions/999999".into()).await;
    get("/no-such-route".into()).await;

    let reads = [
        "/metrics".to_owned(),
        "/api/performance/health".into(),
        "/api/performance/overview".into(),
        "/api/performance/metrics".into(),
        "/api/performance/metrics/http_response_time_p95_seconds?window=5m".into(),
        "/api/performance/alerts".into(),
        "/api/performance/bottlenecks".into(),
        "/api/performance/recommendations".into(),
        "/api/performance/export".into(),
        "/api/suites".into(),
        format!("/api/suites/{suite_id}"),
        "/api/executions".into(),
        format!("/api/executions/{id}"),
        format!("/api/executions/{id}/results?limit=20"),
        format!("/api/executions/{id}/results?format=csv"),
        "/api/analytics/realtime?window=5m".into(),
        "/api/analytics/historical?window=24h".into(),
        "/api/analytics/trends?period=day".into(),
        "/api/analytics/models".into(),
        "/api/analytics/cost".into(),
        format!("/api/analytics/executions/{id}"),
        "/api/analytics/cache-stats".into(),
        "/api/analytics/slow-queries".into(),
        "/api/reports".into(),
        format!("/api/reports/{report_id}?format=md"),
        "/api/optimization/suggestions".into(),
    ];
    for _ in 0..ROUNDS {
        for path in &reads {
            get(path.clone()).await;
        }
    }
    // Drain what the watcher was sent, then leave.
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(50), ws.next()).await {}
    drop(ws);
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    drop(dir);
    metrics
}
