//! What the monitor tracks: a [`Sample`] of named values per cycle, built
//! from the host, the process and the registry; and the signals it alerts
//! on, each with its thresholds, alertname and wording. A subsystem that
//! adds a signal adds its value in [`build`] and, if it alerts, a line to
//! [`ALERT_SIGNALS`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::leak::{self, LeakAssessment};
use super::reading::Reading;
use super::system::HostReading;
use super::thresholds::{Severity, Thresholds};

/// The values of one cycle, by metric name (see [`build`] for the names).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sample {
    /// When, unix ms.
    pub at: i64,
    /// Value by metric name.
    pub values: BTreeMap<String, f64>,
}

impl Sample {
    /// A value by name.
    pub fn get(&self, metric: &str) -> Option<f64> {
        self.values.get(metric).copied()
    }
}

/// How a signal's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// 0-1, shown as a percentage.
    Ratio,
    /// Seconds, shown in ms below a second.
    Seconds,
    /// Jobs.
    Jobs,
    /// Bytes per second, shown as MiB per minute.
    BytesPerSecond,
}

impl Unit {
    /// `value` for people.
    pub fn show(self, value: f64) -> String {
        match self {
            Self::Ratio => format!("{:.1}%", value * 100.0),
            Self::Seconds if value < 1.0 => format!("{:.0} ms", value * 1000.0),
            Self::Seconds => format!("{value:.2} s"),
            Self::Jobs => format!("{value:.0} jobs"),
            Self::BytesPerSecond => format!("{:.1} MiB/min", value * 60.0 / (1024.0 * 1024.0)),
        }
    }
}

/// A signal with thresholds.
#[derive(Debug, Clone, Copy)]
pub struct AlertSignal {
    /// The `signal` label of `promptgauge_monitor_threshold`.
    pub signal: &'static str,
    /// The [`Sample`] value it reads.
    pub metric: &'static str,
    /// The alertname (shared with the Prometheus rules).
    pub alertname: &'static str,
    /// What it measures, for descriptions.
    pub what: &'static str,
    /// How values read.
    pub unit: Unit,
}

/// Every signal the monitor alerts on.
pub const ALERT_SIGNALS: &[AlertSignal] = &[
    AlertSignal {
        signal: "cpu",
        metric: "cpu_usage_ratio",
        alertname: "PromptgaugeHighCpuUsage",
        what: "host CPU usage",
        unit: Unit::Ratio,
    },
    AlertSignal {
        signal: "memory",
        metric: "memory_usage_ratio",
        alertname: "PromptgaugeHighMemoryUsage",
        what: "host memory usage",
        unit: Unit::Ratio,
    },
    AlertSignal {
        signal: "response_time",
        metric: "http_response_time_p95_seconds",
        alertname: "PromptgaugeHighLatency",
        what: "p95 HTTP response time",
        unit: Unit::Seconds,
    },
    AlertSignal {
        signal: "error_rate",
        metric: "http_error_ratio",
        alertname: "PromptgaugeHighErrorRate",
        what: "share of HTTP responses that are 5xx",
        unit: Unit::Ratio,
    },
    AlertSignal {
        signal: "queue_length",
        metric: "test_queue_length",
        alertname: "PromptgaugeTestQueueBacklog",
        what: "test queue length",
        unit: Unit::Jobs,
    },
    AlertSignal {
        signal: "memory_growth",
        metric: "memory_growth_bytes_per_second",
        alertname: "PromptgaugeMemoryLeakSuspected",
        what: "steady growth of resident memory",
        unit: Unit::BytesPerSecond,
    },
];

impl AlertSignal {
    /// Its levels: warning and critical, or warning only (leaks).
    pub fn levels(&self, t: &Thresholds) -> Vec<(Severity, f64)> {
        let both = |l: super::Levels| {
            vec![
                (Severity::Warning, l.warning),
                (Severity::Critical, l.critical),
            ]
        };
        match self.signal {
            "cpu" => both(t.cpu),
            "memory" => both(t.memory),
            "response_time" => both(t.response_time),
            "error_rate" => both(t.error_rate),
            "queue_length" => both(t.queue_length),
            "memory_growth" => vec![(Severity::Warning, leak::MIN_GROWTH_BYTES_PER_SEC)],
            _ => Vec::new(),
        }
    }

    /// The alert's description at `value`.
    pub fn describe(&self, severity: Severity, threshold: f64, value: f64) -> String {
        format!(
            "{} is {} ({} threshold {})",
            self.what,
            self.unit.show(value),
            severity.as_str(),
            self.unit.show(threshold)
        )
    }
}

/// What one cycle saw, for [`build`].
pub struct Inputs<'a> {
    /// When, unix ms.
    pub at: i64,
    /// Seconds since the previous registry reading (0 on the first).
    pub elapsed_secs: f64,
    /// Host and process.
    pub host: &'a HostReading,
    /// The registry now.
    pub now: &'a Reading,
    /// The registry at the previous cycle.
    pub before: Option<&'a Reading>,
    /// The leak fit over the window.
    pub leak: &'a LeakAssessment,
}

/// Builds the sample. Names: `cpu_usage_ratio`, `memory_usage_ratio`,
/// `memory_used_bytes`, `disk_usage_ratio:<mount>`, `disk_read_bytes_per_second`,
/// `disk_written_bytes_per_second`, `network_received_bytes_per_second`,
/// `network_transmitted_bytes_per_second`, `process_cpu_cores`,
/// `process_resident_memory_bytes`, `process_threads`, `process_open_fds`,
/// `http_requests_per_second`, `tests_completed_per_second`, `http_error_ratio`,
/// `http_response_time_p95_seconds`, `test_queue_length`, `tests_in_flight`,
/// `test_concurrency_limit`, `cache_hit_ratio:<cache>`,
/// `cache_lookups_per_second:<cache>`, `provider_error_ratio:<provider>`,
/// `provider_rate_limited_ratio:<provider>`,
/// `provider_requests_per_second:<provider>`, `memory_growth_bytes_per_second`,
/// `websocket_connections`, `websocket_delivery_p99_seconds`,
/// `websocket_events_per_second`, `websocket_dropped_per_second`.
/// Interval values are absent when nothing happened in the interval.
pub fn build(i: &Inputs<'_>) -> Sample {
    let mut v = BTreeMap::new();
    let h = i.host;
    let mut put = |k: String, x: f64| {
        if x.is_finite() {
            v.insert(k, x);
        }
    };
    put("cpu_usage_ratio".into(), h.cpu_ratio);
    put("memory_usage_ratio".into(), h.memory_ratio);
    put("memory_used_bytes".into(), h.memory_used_bytes as f64);
    for (mount, ratio) in &h.disks {
        put(format!("disk_usage_ratio:{mount}"), *ratio);
    }
    put("process_cpu_cores".into(), h.process_cpu_cores);
    put(
        "process_resident_memory_bytes".into(),
        h.process_rss_bytes as f64,
    );
    if let Some(t) = h.process_threads {
        put("process_threads".into(), t as f64);
    }
    if let Some(f) = h.process_open_fds {
        put("process_open_fds".into(), f as f64);
    }
    put("test_queue_length".into(), i.now.queue_length as f64);
    put("tests_in_flight".into(), i.now.in_flight as f64);
    put(
        "test_concurrency_limit".into(),
        i.now.concurrency_limit as f64,
    );
    put(
        "memory_growth_bytes_per_second".into(),
        i.leak.growth_bytes_per_sec,
    );
    put(
        "websocket_connections".into(),
        i.now.websocket_connections as f64,
    );

    let (Some(before), secs) = (i.before, i.elapsed_secs) else {
        return Sample {
            at: i.at,
            values: v,
        };
    };
    if secs > 0.0 {
        put(
            "disk_read_bytes_per_second".into(),
            h.disk_read_bytes as f64 / secs,
        );
        put(
            "disk_written_bytes_per_second".into(),
            h.disk_written_bytes as f64 / secs,
        );
        put(
            "network_received_bytes_per_second".into(),
            h.network_received_bytes as f64 / secs,
        );
        put(
            "network_transmitted_bytes_per_second".into(),
            h.network_transmitted_bytes as f64 / secs,
        );
        let requests = i.now.http.whole.saturating_sub(before.http.whole);
        put("http_requests_per_second".into(), requests as f64 / secs);
        let tests = i.now.tests_finished.saturating_sub(before.tests_finished);
        put("tests_completed_per_second".into(), tests as f64 / secs);
        let delivered = i
            .now
            .websocket_delivered
            .saturating_sub(before.websocket_delivered);
        put(
            "websocket_events_per_second".into(),
            delivered as f64 / secs,
        );
        let dropped = i
            .now
            .websocket_dropped
            .saturating_sub(before.websocket_dropped);
        put("websocket_dropped_per_second".into(), dropped as f64 / secs);
    }
    if let Some(p99) = i
        .now
        .websocket_delivery
        .since(&before.websocket_delivery)
        .quantile(0.99)
    {
        put("websocket_delivery_p99_seconds".into(), p99);
    }
    if let Some((ratio, _)) = i.now.http.since(&before.http) {
        put("http_error_ratio".into(), ratio);
    }
    if let Some(p95) = i
        .now
        .http_latency
        .since(&before.http_latency)
        .quantile(0.95)
    {
        put("http_response_time_p95_seconds".into(), p95);
    }
    for (name, now) in &i.now.caches {
        if let Some((ratio, n)) = now.since(&before.caches.get(name).copied().unwrap_or_default()) {
            put(format!("cache_hit_ratio:{name}"), ratio);
            if secs > 0.0 {
                put(format!("cache_lookups_per_second:{name}"), n as f64 / secs);
            }
        }
    }
    for (name, now) in &i.now.provider_errors {
        if let Some((ratio, n)) = now.since(
            &before
                .provider_errors
                .get(name)
                .copied()
                .unwrap_or_default(),
        ) {
            put(format!("provider_error_ratio:{name}"), ratio);
            if secs > 0.0 {
                put(
                    format!("provider_requests_per_second:{name}"),
                    n as f64 / secs,
                );
            }
        }
    }
    for (name, now) in &i.now.provider_429s {
        if let Some((ratio, _)) =
            now.since(&before.provider_429s.get(name).copied().unwrap_or_default())
        {
            put(format!("provider_rate_limited_ratio:{name}"), ratio);
        }
    }
    Sample {
        at: i.at,
        values: v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Prometheus rules shipped beside the service.
    const ALERT_RULES: &str = include_str!("../../alerts/promptgauge.alerts.yml");

    /// The constant after the last `>=` of an alert expression.
    fn constant(expr: &str) -> f64 {
        let (_, c) = expr
            .rsplit_once(">=")
            .unwrap_or_else(|| panic!("no >= in {expr}"));
        c.trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {expr}"))
    }

    #[test]
    fn every_prometheus_alert_threshold_equals_the_monitor_default() {
        let doc = crate::yaml::from_str(ALERT_RULES).unwrap();
        let rules: Vec<&serde_json::Value> = doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .collect();
        let defaults = Thresholds::default();
        for s in ALERT_SIGNALS {
            let ours = s.levels(&defaults);
            let theirs: Vec<(&str, f64)> = rules
                .iter()
                .filter(|r| r["alert"] == s.alertname)
                .map(|r| {
                    (
                        r["labels"]["severity"].as_str().unwrap(),
                        constant(r["expr"].as_str().unwrap()),
                    )
                })
                .collect();
            assert_eq!(theirs.len(), ours.len(), "{}: {theirs:?}", s.alertname);
            for (severity, level) in ours {
                let (_, c) = theirs
                    .iter()
                    .find(|(sev, _)| *sev == severity.as_str())
                    .unwrap_or_else(|| panic!("{} has no {} rule", s.alertname, severity.as_str()));
                assert!(
                    (c - level).abs() <= 1e-9 * level.abs(),
                    "{} {}: rule {c}, monitor {level}",
                    s.alertname,
                    severity.as_str()
                );
            }
        }
    }
    use crate::monitor::histogram::HistogramReading;
    use crate::monitor::reading::Ratio;

    #[test]
    fn interval_signals_come_from_the_deltas() {
        let bounds = vec![0.1, 1.0, 5.0];
        let before = Reading {
            http: Ratio {
                part: 5,
                whole: 1000,
            },
            http_latency: HistogramReading {
                bounds: bounds.clone(),
                cumulative: vec![900, 990, 1000],
                count: 1000,
                sum: 50.0,
            },
            queue_length: 3,
            ..Reading::default()
        };
        // 100 requests in 5 s, 8 of them 5xx; 60 under 0.1 s, 30 in (0.1, 1], 10 in (1, 5].
        let now = Reading {
            http: Ratio {
                part: 13,
                whole: 1100,
            },
            http_latency: HistogramReading {
                bounds,
                cumulative: vec![960, 1080, 1100],
                count: 1100,
                sum: 90.0,
            },
            queue_length: 612,
            ..Reading::default()
        };
        let host = HostReading {
            cpu_ratio: 0.5,
            ..HostReading::default()
        };
        let leak = leak::assess(&[]);
        let s = build(&Inputs {
            at: 7,
            elapsed_secs: 5.0,
            host: &host,
            now: &now,
            before: Some(&before),
            leak: &leak,
        });
        assert_eq!(s.get("http_requests_per_second"), Some(20.0));
        assert_eq!(s.get("http_error_ratio"), Some(0.08));
        // Rank 95 of the interval's 100 falls in (1, 5]: 1 + 4 * (95-90)/10.
        assert_eq!(s.get("http_response_time_p95_seconds"), Some(3.0));
        assert_eq!(s.get("test_queue_length"), Some(612.0));
        assert_eq!(s.get("cpu_usage_ratio"), Some(0.5));

        // With no traffic there is no error ratio and no latency (not zero).
        let idle = build(&Inputs {
            at: 8,
            elapsed_secs: 5.0,
            host: &host,
            now: &now,
            before: Some(&now),
            leak: &leak,
        });
        assert_eq!(idle.get("http_requests_per_second"), Some(0.0));
        assert_eq!(idle.get("http_error_ratio"), None);
        assert_eq!(idle.get("http_response_time_p95_seconds"), None);
    }

    #[test]
    fn descriptions_read_in_the_signal_unit() {
        let queue = ALERT_SIGNALS
            .iter()
            .find(|s| s.signal == "queue_length")
            .unwrap();
        assert_eq!(
            queue.describe(Severity::Critical, 500.0, 612.0),
            "test queue length is 612 jobs (critical threshold 500 jobs)"
        );
        let errors = ALERT_SIGNALS
            .iter()
            .find(|s| s.signal == "error_rate")
            .unwrap();
        assert_eq!(
            errors.describe(Severity::Warning, 0.05, 0.125),
            "share of HTTP responses that are 5xx is 12.5% (warning threshold 5.0%)"
        );
        let t = Thresholds::default();
        assert_eq!(
            queue.levels(&t),
            [(Severity::Warning, 100.0), (Severity::Critical, 500.0)]
        );
        for s in ALERT_SIGNALS {
            assert!(!s.levels(&t).is_empty(), "{} has no levels", s.signal);
        }
    }
}
