//! The Grafana dashboards in `dashboards/` follow the conventions operators
//! expect (OBSERVABILITY.md): importable with a data source input, job and
//! instance variables, a unit and a description on every panel, every
//! query scoped to `$job` and `$instance`, rates over `$__rate_interval`,
//! every expression valid PromQL, and threshold colours equal to the alert
//! thresholds. Whether every selector finds series is checked against a
//! real Prometheus in `prometheus_live`.

use std::collections::BTreeSet;

use promptgauge::monitor::Thresholds;
use promql_parser::parser;
use serde_json::{Value, json};

use crate::promql::{dashboards, each_selector, rules, substitute};

const PANEL_TYPES: &[&str] = &["timeseries", "stat", "gauge", "heatmap", "table"];

#[test]
fn dashboards_are_importable_and_follow_the_conventions() {
    let all = dashboards();
    assert_eq!(all.len(), 3, "overview, tests, storage");
    let mut uids = BTreeSet::new();
    for (name, d) in &all {
        assert_eq!(d["__inputs"][0]["name"], "DS_PROMETHEUS", "{name}");
        assert_eq!(d["__inputs"][0]["pluginId"], "prometheus", "{name}");
        assert!(d["id"].is_null(), "{name}: id must be null");
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty() && uids.insert(uid.to_owned()),
            "{name}: uid {uid:?}"
        );
        let schema = d["schemaVersion"].as_i64().unwrap();
        assert!(
            (36..=39).contains(&schema),
            "{name}: schemaVersion {schema}"
        );
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(vars, ["datasource", "job", "instance"], "{name}");
        let job = &d["templating"]["list"][1];
        assert_eq!(
            job["definition"],
            "label_values(promptgauge_build_info, job)"
        );

        let ds = json!({"type": "prometheus", "uid": "${datasource}"});
        for p in d["panels"].as_array().unwrap() {
            let title = p["title"].as_str().unwrap();
            let at = format!("{name}: {title}");
            let kind = p["type"].as_str().unwrap();
            assert!(PANEL_TYPES.contains(&kind), "{at}: panel type {kind}");
            assert_eq!(p["datasource"], ds, "{at}");
            assert!(
                p["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{at}: description"
            );
            assert!(
                p["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{at}: unit"
            );
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{at}");
            for t in targets {
                assert_eq!(t["datasource"], ds, "{at}");
                let expr = t["expr"].as_str().unwrap();
                if kind == "heatmap" {
                    assert_eq!(t["format"], "heatmap", "{at}");
                }
                // Ranges are Grafana's rate interval, except on recording rules.
                for (i, _) in expr.match_indices('[') {
                    assert!(
                        expr[i..].starts_with("[$__rate_interval]"),
                        "{at}: a range other than $__rate_interval in {expr}"
                    );
                }
                let ast = parser::parse(&substitute(expr))
                    .unwrap_or_else(|e| panic!("{at}: {expr}: {e}"));
                each_selector(&ast, &mut |v| {
                    let scoped = |label: &str, var: &str| {
                        v.matchers
                            .matchers
                            .iter()
                            .any(|m| m.name == label && m.value == ".+")
                            && expr.contains(&format!("{label}=~\"${var}\""))
                    };
                    assert!(
                        scoped("job", "job") && scoped("instance", "instance"),
                        "{at}: {v} is not scoped to $job and $instance"
                    );
                });
            }
        }
    }
}

/// The (warning, critical) steps of a panel's threshold colours.
fn steps(panel: &Value) -> Vec<f64> {
    panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect()
}

/// The constant of the alert rule `alertname` at `severity`.
fn rule_constant(alertname: &str, severity: &str) -> f64 {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/promptgauge.alerts.yml"),
    )
    .unwrap();
    let doc = promptgauge::yaml::from_str(&text).unwrap();
    let rule = doc["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == alertname && r["labels"]["severity"] == severity)
        .unwrap_or_else(|| panic!("{alertname} {severity}"));
    let expr = rule["expr"].as_str().unwrap();
    expr.rsplit_once(">=").unwrap().1.trim().parse().unwrap()
}

#[test]
fn threshold_colours_equal_the_alert_thresholds() {
    let t = Thresholds::default();
    let provider = (
        rule_constant("PromptgaugeProviderFailing", "warning"),
        rule_constant("PromptgaugeProviderFailing", "critical"),
    );
    // What a panel shows -> the levels its colours must use.
    let watched: Vec<(&str, (f64, f64))> = vec![
        (
            "promptgauge_system_cpu_usage_ratio",
            (t.cpu.warning, t.cpu.critical),
        ),
        (
            "promptgauge_system_memory_usage_ratio",
            (t.memory.warning, t.memory.critical),
        ),
        (
            "job:promptgauge_http_request_errors:ratio_rate5m",
            (t.error_rate.warning, t.error_rate.critical),
        ),
        (
            "promptgauge_test_queue_length",
            (t.queue_length.warning, t.queue_length.critical),
        ),
        (
            "histogram_quantile(0.95, sum by (le) (rate(promptgauge_http_request_duration_seconds_bucket",
            (t.response_time.warning, t.response_time.critical),
        ),
        (
            "job:promptgauge_provider_request_errors:ratio_rate5m",
            provider,
        ),
        (
            "job:promptgauge_websocket_delivery_seconds:p99_5m",
            (
                rule_constant("PromptgaugeWebsocketDeliverySlow", "warning"),
                rule_constant("PromptgaugeWebsocketDeliverySlow", "critical"),
            ),
        ),
    ];
    let mut checked = 0;
    for (name, d) in dashboards() {
        for p in d["panels"].as_array().unwrap() {
            let exprs: Vec<&str> = p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["expr"].as_str().unwrap())
                .collect();
            for (what, (warning, critical)) in &watched {
                if exprs.iter().any(|e| e.contains(what)) {
                    assert_eq!(
                        steps(p),
                        [*warning, *critical],
                        "{name}: {}: colours for {what}",
                        p["title"]
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 8, "panels with alert thresholds: {checked}");
    // The rules themselves use the monitor's levels (unit test in
    // src/monitor/signals.rs), so colours, alerts and monitor agree.
    assert!(!rules().is_empty());
}

#[test]
fn every_rule_expression_is_valid_promql() {
    let rules = rules();
    assert!(rules.len() >= 29, "{}", rules.len());
    for (name, expr) in rules {
        parser::parse(&expr).unwrap_or_else(|e| panic!("{name}: {expr}: {e}"));
    }
}
