//! The performance report: the service's own figures over a window, from
//! the monitor (its samples in memory, then its per-minute history) and its
//! alerts: request latency, error rate, throughput, queue, cache hit rates,
//! and the alerts that fired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::model::{Chart, ChartKind, Point, Section, Stat, Table, n, pct};
use super::{Report, ReportError, ReportService, build_sections, report};
use crate::common::time::rfc3339;
use crate::monitor::{Alert, MetricWindow};

/// The signals the report draws, with how their values read.
const SIGNALS: &[(&str, &str, f64)] = &[
    ("http_response_time_p95_seconds", "request p95 (ms)", 1000.0),
    ("http_error_ratio", "5xx share", 1.0),
    ("http_requests_per_second", "requests per second", 1.0),
    ("tests_completed_per_second", "tests per second", 1.0),
    ("test_queue_length", "test queue", 1.0),
    (
        "process_resident_memory_bytes",
        "resident memory (MB)",
        1e-6,
    ),
];

struct Data {
    window: Duration,
    signals: Vec<(&'static str, &'static str, f64, Option<MetricWindow>)>,
    caches: Vec<MetricWindow>,
    alerts: Vec<Alert>,
    status: &'static str,
}

pub(super) async fn make(s: &ReportService, window: Duration) -> Result<Report, ReportError> {
    let started = Instant::now();
    let monitor = &s.inner.monitor;
    let caches: Vec<String> = monitor
        .tracked()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n.starts_with("cache_hit_ratio:"))
        .collect();
    // A metric the monitor has not sampled yet is no data, not an error.
    let fetch = |name: String| async move { monitor.metric(&name, window).await.ok() };
    let since = crate::storage::now_ms() - window.as_millis() as i64;
    let (signals, cache_windows, resolved) = tokio::join!(
        futures_util::future::join_all(SIGNALS.iter().map(|(name, ..)| fetch((*name).to_owned()))),
        futures_util::future::join_all(caches.into_iter().map(fetch)),
        monitor.resolved_alerts(since, 200),
    );
    let mut alerts = monitor.active_alerts();
    alerts.extend(resolved.unwrap_or_default());
    let data = Arc::new(Data {
        window,
        signals: SIGNALS
            .iter()
            .zip(signals)
            .map(|((name, label, scale), w)| (*name, *label, *scale, w))
            .collect(),
        caches: cache_windows.into_iter().flatten().collect(),
        alerts,
        status: monitor.status(),
    });
    let fetch_took = started.elapsed();
    let hours = window.as_secs_f64() / 3600.0;
    let title = format!("Service performance, the last {hours:.0} h");
    let empty = data
        .signals
        .iter()
        .all(|(.., w)| w.as_ref().is_none_or(|w| w.samples.is_empty()));
    let summary = vec![
        Stat::text("status now", data.status),
        Stat::num(
            "alerts in the window",
            data.alerts.len().to_string(),
            data.alerts.len() as f64,
        ),
    ];
    let sections = build_sections(data, BUILDERS, &s.inner.metrics).await;
    Ok(report(
        "performance",
        title,
        empty,
        summary,
        sections,
        fetch_took,
    ))
}

const BUILDERS: &[super::Builder<Data>] = &[
    ("signals", signals),
    ("latency_chart", |d| {
        chart(
            d,
            "http_response_time_p95_seconds",
            "latency_chart",
            "Request p95 over the window",
        )
    }),
    ("queue_chart", |d| {
        chart(
            d,
            "test_queue_length",
            "queue_chart",
            "Test queue over the window",
        )
    }),
    ("caches", caches),
    ("alerts", alerts),
];

fn signals(d: &Data) -> Section {
    let rows = d
        .signals
        .iter()
        .map(|(name, label, scale, w)| {
            let v = |x: Option<f64>| x.map_or(serde_json::Value::Null, |x| n(x * scale, 3));
            match w {
                Some(w) => vec![
                    json!(label),
                    v(w.current),
                    v(w.avg),
                    v(w.p95),
                    v(w.max),
                    json!(w.samples.len()),
                    json!(name),
                ],
                None => vec![
                    json!(label),
                    json!(null),
                    json!(null),
                    json!(null),
                    json!(null),
                    json!(0),
                    json!(name),
                ],
            }
        })
        .collect();
    Section {
        id: "signals".into(),
        title: "Signals".into(),
        text: vec![format!(
            "From the monitor's samples over the last {:.0} h (per-minute history beyond the last hour).",
            d.window.as_secs_f64() / 3600.0
        )],
        table: Some(Table {
            columns: ["signal", "now", "mean", "p95", "max", "samples", "metric"]
                .map(String::from)
                .to_vec(),
            rows,
        }),
        ..Section::default()
    }
}

fn chart(d: &Data, name: &str, id: &str, title: &str) -> Section {
    let (label, scale, points) = d
        .signals
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, label, scale, w)| {
            let pts = w.as_ref().map_or_else(Vec::new, |w| {
                w.samples
                    .iter()
                    .map(|p| Point {
                        label: rfc3339(p.at)[11..16].to_owned(),
                        value: p.value * scale,
                    })
                    .collect()
            });
            (*label, *scale, pts)
        })
        .unwrap_or(("", 1.0, Vec::new()));
    let _ = scale;
    Section {
        id: id.into(),
        title: title.into(),
        text: if points.is_empty() {
            vec!["No samples in this window.".into()]
        } else {
            Vec::new()
        },
        chart: Some(Chart {
            kind: ChartKind::Line,
            unit: label.into(),
            points,
        }),
        ..Section::default()
    }
}

fn caches(d: &Data) -> Section {
    Section {
        id: "caches".into(),
        title: "Cache hit rates".into(),
        stats: d
            .caches
            .iter()
            .map(|w| {
                let name = w.name.trim_start_matches("cache_hit_ratio:");
                let avg = w.avg.unwrap_or(0.0);
                Stat::num(name, pct(avg), avg)
            })
            .collect(),
        text: if d.caches.is_empty() {
            vec!["No cache lookups in this window.".into()]
        } else {
            Vec::new()
        },
        ..Section::default()
    }
}

fn alerts(d: &Data) -> Section {
    Section {
        id: "alerts".into(),
        title: "Alerts".into(),
        text: vec![if d.alerts.is_empty() {
            "No alert fired in this window.".into()
        } else {
            format!("{} alert episodes, active ones first.", d.alerts.len())
        }],
        table: Some(Table {
            columns: [
                "alert",
                "severity",
                "state",
                "started",
                "resolved",
                "peak",
                "threshold",
            ]
            .map(String::from)
            .to_vec(),
            rows: d
                .alerts
                .iter()
                .map(|a| {
                    vec![
                        json!(a.alertname),
                        json!(a.severity.as_str()),
                        json!(a.state),
                        json!(rfc3339(a.started_at)),
                        json!(a.resolved_at.map(rfc3339)),
                        n(a.peak_value, 4),
                        n(a.threshold, 4),
                    ]
                })
                .collect(),
        }),
        ..Section::default()
    }
}
