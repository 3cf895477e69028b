//! The end-to-end check: a real Prometheus scrapes the running app every
//! second with the repository's rules while traffic runs through the queue,
//! the providers, the cache and the HTTP API. Every selector of every rule
//! must find series, every expression must evaluate, every rule must be
//! healthy, and a forced backlog must fire `PromptgaugeTestQueueBacklog` in
//! Prometheus and promptgauge's own alert in a real Alertmanager.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use promql_parser::parser;
use serde_json::{Value, json};

use crate::helpers::{
    KillOnDrop, TestApp, eventually, free_port, spawn_app_with, start_alertmanager, wait_ready,
};
use crate::promql::{dashboard_exprs, rules, selectors, substitute};

/// Starts Prometheus scraping `target` every second with the repository's
/// rules, their hold times cut to 2 s (promtool's tests check the real ones).
async fn start_prometheus(dir: &Path, target: &str, alertmanager: &str) -> (KillOnDrop, String) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rule_files = Vec::new();
    for file in ["promptgauge.rules.yml", "promptgauge.alerts.yml"] {
        let text = std::fs::read_to_string(repo.join("alerts").join(file)).unwrap();
        let fast: String = text
            .lines()
            .map(|l| match l.trim_start().strip_prefix("for: ") {
                Some(_) => format!("{}for: 2s", &l[..l.len() - l.trim_start().len()]),
                None => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let path = dir.join(file);
        std::fs::write(&path, fast).unwrap();
        rule_files.push(path.display().to_string());
    }
    let am = alertmanager.trim_start_matches("http://");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: {rule_files:?}\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{am}\"]\n\
         scrape_configs:\n  - job_name: promptgauge\n    metrics_path: /metrics\n    static_configs:\n      - targets: [\"{target}\"]\n"
    );
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let log_path = dir.join("prometheus.log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("prometheus on PATH (apt-get install prometheus)");
    let mut child = KillOnDrop(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/-/ready"), &mut child, &log_path).await;
    (child, base)
}

async fn get(client: &reqwest::Client, url: &str, query: &[(&str, &str)]) -> Value {
    let url = reqwest::Url::parse_with_params(url, query).unwrap();
    let res = client.get(url.clone()).send().await.expect("answers");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "success", "{url}: {body}");
    body["data"].clone()
}

/// Traffic through every subsystem that exists: passing, failing, erroring
/// and rate-limited tests, cache hits, HTTP errors, and a WebSocket client
/// (one asking for compression) watching the results.
async fn traffic(app: &TestApp) {
    use promptgauge::progress::TopicName;
    use promptgauge::progress::client::{ClientOptions, ProgressClient};
    let options = ClientOptions {
        compress: true,
        ..ClientOptions::default()
    };
    let mut watcher = ProgressClient::connect(&app.url(""), &options)
        .await
        .expect("progress stream");
    watcher
        .subscribe_topics(&[TopicName::Executions, TopicName::Results])
        .await
        .unwrap();
    let reader = tokio::spawn(async move { while watcher.next_frame().await.is_ok() {} });
    let suite = json!({
        "description": "live traffic",
        "prompts": ["Say {{word}}"],
        "providers": [
            {"id": "echo"},
            {"id": "mock:flaky", "config": {"latencyMs": 5, "errorRate": 0.2, "rateLimitRate": 0.1, "retryAfterMs": 10, "seed": 7}},
        ],
        "tests": (0..20).map(|i| json!({
            "vars": {"word": format!("w{i}")},
            "assert": [{"type": "contains", "value": if i % 4 == 0 { "nope" } else { "w" }}],
        })).collect::<Vec<_>>(),
    });
    for _ in 0..2 {
        let id = app.submit(json!({"suite": suite.clone()})).await;
        app.wait_done(id).await;
    }
    app.get("/api/no-such-route").await;
    app.get("/api/executions?limit=5").await;
    app.get("/api/performance/overview").await;
    reader.abort();
}

#[tokio::test]
#[ignore = "needs prometheus and prometheus-alertmanager"]
async fn a_real_prometheus_finds_every_series_the_rules_use_and_the_backlog_alert_fires() {
    promptgauge::common::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (_am, am_url) = start_alertmanager(dir.path()).await;
    let app = spawn_app_with(|c| {
        c.monitoring_interval = Duration::from_millis(200);
        c.alert_for = Duration::from_millis(300);
        c.max_concurrent_tests = 2;
        c.alertmanager_url = Some(am_url.clone());
    })
    .await;
    let (_prom, prom) = start_prometheus(dir.path(), &app.addr.to_string(), &am_url).await;
    let client = reqwest::Client::new();
    traffic(&app).await;

    // Every selector of every rule and dashboard panel finds series.
    let rules = rules();
    let panels: Vec<(String, String)> = dashboard_exprs()
        .into_iter()
        .map(|(dashboard, title, expr)| (format!("{dashboard}: {title}"), substitute(&expr)))
        .collect();
    let mut wanted = BTreeSet::new();
    for (name, expr) in rules.iter().chain(&panels) {
        let ast = parser::parse(expr).unwrap_or_else(|e| panic!("{name}: {e}"));
        selectors(&ast, &mut wanted);
    }
    assert!(wanted.len() >= 30, "{wanted:?}");
    for selector in &wanted {
        let url = format!("{prom}/api/v1/series");
        eventually(&format!("series for {selector}"), || async {
            let data = get(&client, &url, &[("match[]", selector.as_str())]).await;
            if data.as_array().is_some_and(|a| !a.is_empty()) {
                Ok(())
            } else {
                Err(data)
            }
        })
        .await;
    }

    // Every expression evaluates, and every rule is healthy.
    for (name, expr) in rules.iter().chain(&panels) {
        let data = get(
            &client,
            &format!("{prom}/api/v1/query"),
            &[("query", expr.as_str())],
        )
        .await;
        assert!(data["resultType"].is_string(), "{name}: {data}");
    }
    let groups = get(&client, &format!("{prom}/api/v1/rules"), &[]).await;
    let mut evaluated = 0;
    for g in groups["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{r}");
            evaluated += 1;
        }
    }
    assert_eq!(evaluated, rules.len());

    // A forced backlog: 200 slow tests, two at a time.
    let backlog = app
        .submit(json!({
            "suite": {
                "prompts": ["slow {{i}}"],
                "providers": [{"id": "mock:slow", "config": {"latencyMs": 2000}}],
                "tests": (0..200).map(|i| json!({"vars": {"i": i}})).collect::<Vec<_>>(),
            },
            "cache": false,
        }))
        .await;
    let alerts_url = format!("{prom}/api/v1/alerts");
    eventually(
        "PromptgaugeTestQueueBacklog firing in Prometheus",
        || async {
            let data = get(&client, &alerts_url, &[]).await;
            let firing = data["alerts"].as_array().unwrap().iter().any(|a| {
                a["labels"]["alertname"] == "PromptgaugeTestQueueBacklog"
                    && a["labels"]["severity"] == "warning"
                    && a["labels"]["instance"] == app.addr.to_string()
                    && a["state"] == "firing"
            });
            if firing { Ok(()) } else { Err(data) }
        },
    )
    .await;
    // promptgauge's own alert, pushed by the monitor (service label), in
    // the real Alertmanager beside the one Prometheus sends.
    let am_alerts = format!("{am_url}/api/v2/alerts");
    eventually(
        "promptgauge's own backlog alert in Alertmanager",
        || async {
            let all: Value = client
                .get(&am_alerts)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let ours = all.as_array().unwrap().iter().any(|a| {
                a["labels"]["alertname"] == "PromptgaugeTestQueueBacklog"
                    && a["labels"]["service"] == "promptgauge"
                    && a["status"]["state"] == "active"
            });
            if ours { Ok(()) } else { Err(all) }
        },
    )
    .await;

    let res = app
        .post_json(&format!("/api/executions/{backlog}/cancel"), &json!({}))
        .await;
    assert!(res.status().is_success());
    app.stop().await;
}
