//! What the performance API shows: the current picture, a metric over a
//! window, alerts, bottlenecks and recommendations, read from the
//! monitor's state.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::alerts::Alert;
use super::bottlenecks::{self, Bottleneck};
use super::leak::LeakAssessment;
use super::recommend::{self, Recommendation};
use super::recorder::alert_from_row;
use super::signals::{ALERT_SIGNALS, Sample, Unit};
use super::thresholds::{Severity, Thresholds};
use super::{HISTORY_RESOLUTION_S, Monitor, MonitorError, RECENT, RING_SPAN, lock};
use crate::storage::now_ms;

/// One tracked metric now.
#[derive(Debug, Clone, Serialize)]
pub struct Tracked {
    /// Its name.
    pub name: String,
    /// Its latest value.
    pub value: f64,
}

/// A metric over a window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricWindow {
    /// The metric.
    pub name: String,
    /// The window asked for, seconds.
    pub window_seconds: f64,
    /// The latest value.
    pub current: Option<f64>,
    /// Lowest in the window.
    pub min: Option<f64>,
    /// Highest in the window.
    pub max: Option<f64>,
    /// Mean in the window.
    pub avg: Option<f64>,
    /// 95th percentile of the samples (nearest rank).
    pub p95: Option<f64>,
    /// Where the points come from: `memory` (every sample) or `history`
    /// (per-minute means, min and max).
    pub source: &'static str,
    /// The points, oldest first.
    pub samples: Vec<Point>,
}

/// One point of a window.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Unix ms.
    pub at: i64,
    /// The value (a mean for history points).
    pub value: f64,
    /// Lowest in the period (history points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest in the period (history points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A signal's current standing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalView {
    /// `cpu`, `memory`, ...
    pub signal: &'static str,
    /// The sample value it reads.
    pub metric: &'static str,
    /// Its alertname.
    pub alertname: &'static str,
    /// How values read.
    pub unit: Unit,
    /// The latest value, if there is one.
    pub value: Option<f64>,
    /// The value for people.
    pub display: Option<String>,
    /// Warning level.
    pub warning: Option<f64>,
    /// Critical level.
    pub critical: Option<f64>,
    /// `ok`, `warning`, `critical` (by the levels), or `no_data`.
    pub status: &'static str,
}

/// `GET /api/performance/overview`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// `ok`, `degraded` (warnings firing) or `critical`.
    pub status: &'static str,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// When the latest sample was taken, unix ms.
    pub sampled_at: Option<i64>,
    /// Sampling interval, ms.
    pub interval_ms: u64,
    /// Every alerting signal.
    pub signals: Vec<SignalView>,
    /// Pending and firing alerts.
    pub active_alerts: Vec<Alert>,
    /// Key throughput figures from the latest sample.
    pub throughput: BTreeMap<&'static str, Option<f64>>,
    /// The memory-leak fit.
    pub memory_leak: LeakAssessment,
}

/// `GET /api/performance/bottlenecks`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BottleneckReport {
    /// The window the figures cover, seconds (shorter than asked while
    /// the history is).
    pub window_seconds: f64,
    /// Components, slowest p95 first.
    pub components: Vec<Bottleneck>,
}

impl Monitor {
    /// The latest sample, if one was taken.
    pub fn latest(&self) -> Option<Sample> {
        lock(&self.shared.state).ring.back().cloned()
    }

    /// Every tracked metric with its latest value.
    pub fn tracked(&self) -> Vec<Tracked> {
        self.latest()
            .map(|s| {
                s.values
                    .into_iter()
                    .map(|(name, value)| Tracked { name, value })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `name` over the last `window`: from memory while the window fits in
    /// it, else from the per-minute history.
    pub async fn metric(&self, name: &str, window: Duration) -> Result<MetricWindow, MonitorError> {
        let now = now_ms();
        let since = now - window.as_millis() as i64;
        let (known, in_memory, covered) = {
            let st = lock(&self.shared.state);
            let known: Vec<String> = st
                .ring
                .back()
                .map(|s| s.values.keys().cloned().collect())
                .unwrap_or_default();
            let points: Vec<Point> = st
                .ring
                .iter()
                .filter(|s| s.at >= since)
                .filter_map(|s| {
                    Some(Point {
                        at: s.at,
                        value: s.get(name)?,
                        min: None,
                        max: None,
                    })
                })
                .collect();
            let covered = st.ring.front().is_some_and(|s| s.at <= since);
            (known, points, covered)
        };
        if !known.iter().any(|k| k == name) {
            return Err(MonitorError::UnknownMetric {
                name: name.to_owned(),
                known,
            });
        }
        let (source, samples) = if covered || window <= RING_SPAN {
            ("memory", in_memory)
        } else {
            let rows = self
                .shared
                .storage
                .monitor_samples(name.to_owned(), HISTORY_RESOLUTION_S, since)
                .await?;
            let points = rows
                .into_iter()
                .map(|r| Point {
                    at: r.ts,
                    value: r.value,
                    min: Some(r.min),
                    max: Some(r.max),
                })
                .collect();
            ("history", points)
        };
        let values: Vec<f64> = samples.iter().map(|p| p.value).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let min = samples
            .iter()
            .map(|p| p.min.unwrap_or(p.value))
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))));
        let max = samples
            .iter()
            .map(|p| p.max.unwrap_or(p.value))
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
        Ok(MetricWindow {
            name: name.to_owned(),
            window_seconds: window.as_secs_f64(),
            current: self.latest().and_then(|s| s.get(name)),
            min,
            max,
            avg: (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64),
            p95: nearest_rank(&sorted, 0.95),
            source,
            samples,
        })
    }

    /// Pending and firing alerts, worst first.
    pub fn active_alerts(&self) -> Vec<Alert> {
        lock(&self.shared.state).book.active()
    }

    /// Resolved alerts that ended at or after `since` (unix ms), newest first.
    pub async fn resolved_alerts(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<Alert>, MonitorError> {
        let rows = self.shared.storage.resolved_alerts(since, limit).await?;
        Ok(rows.into_iter().filter_map(alert_from_row).collect())
    }

    /// `ok`, `degraded` (a warning firing) or `critical` (a critical firing).
    pub fn status(&self) -> &'static str {
        let st = lock(&self.shared.state);
        let worst = st.book.firing().map(|a| a.severity).max();
        match worst {
            Some(Severity::Critical) => "critical",
            Some(Severity::Warning) => "degraded",
            None => "ok",
        }
    }

    /// Components over the last `window`, slowest p95 first.
    pub fn bottlenecks(&self, window: Duration) -> BottleneckReport {
        let st = lock(&self.shared.state);
        let Some((now_at, now)) = &st.latest_components else {
            return BottleneckReport {
                window_seconds: 0.0,
                components: Vec::new(),
            };
        };
        let start = now_at - window.as_millis() as i64;
        // The reading at the window's start, or the oldest there is.
        let mut all = st.older_components.iter().chain(st.components.iter());
        let (from_at, from) = all
            .clone()
            .rev()
            .find(|(at, _)| *at <= start)
            .or_else(|| all.next())
            .map(|(at, r)| (*at, r))
            .expect("not empty");
        BottleneckReport {
            window_seconds: (now_at - from_at) as f64 / 1000.0,
            components: bottlenecks::rank(now, from),
        }
    }

    /// Advice from the current figures, each with its evidence.
    pub fn recommendations(&self) -> Vec<Recommendation> {
        let report = self.bottlenecks(RECENT);
        let st = lock(&self.shared.state);
        let since = st.ring.back().map_or(0, |s| s.at) - RECENT.as_millis() as i64;
        let recent = recommend::means(st.ring.iter().filter(|s| s.at >= since));
        recommend::recommend(&recommend::Evidence {
            recent: &recent,
            bottlenecks: &report.components,
            leak: &st.leak,
            thresholds: &self.shared.config.thresholds,
            max_concurrent_tests: self.shared.config.max_concurrent_tests,
        })
    }

    /// The current picture.
    pub fn overview(&self) -> Overview {
        let latest = self.latest();
        let thresholds = &self.shared.config.thresholds;
        let signals = ALERT_SIGNALS
            .iter()
            .map(|s| {
                let value = latest.as_ref().and_then(|l| l.get(s.metric));
                let levels = s.levels(thresholds);
                let level = |sev: Severity| levels.iter().find(|(s, _)| *s == sev).map(|(_, l)| *l);
                let (warning, critical) = (level(Severity::Warning), level(Severity::Critical));
                let status = match value {
                    None => "no_data",
                    Some(v) if critical.is_some_and(|c| v >= c) => "critical",
                    Some(v) if warning.is_some_and(|w| v >= w) => "warning",
                    Some(_) => "ok",
                };
                SignalView {
                    signal: s.signal,
                    metric: s.metric,
                    alertname: s.alertname,
                    unit: s.unit,
                    value,
                    display: value.map(|v| s.unit.show(v)),
                    warning,
                    critical,
                    status,
                }
            })
            .collect();
        let get = |k: &str| latest.as_ref().and_then(|l| l.get(k));
        let throughput = BTreeMap::from([
            ("httpRequestsPerSecond", get("http_requests_per_second")),
            ("testsCompletedPerSecond", get("tests_completed_per_second")),
            ("testQueueLength", get("test_queue_length")),
            ("testsInFlight", get("tests_in_flight")),
            ("websocketConnections", get("websocket_connections")),
            (
                "websocketEventsPerSecond",
                get("websocket_events_per_second"),
            ),
            (
                "websocketDeliveryP99Seconds",
                get("websocket_delivery_p99_seconds"),
            ),
            (
                "websocketDroppedPerSecond",
                get("websocket_dropped_per_second"),
            ),
        ]);
        Overview {
            status: self.status(),
            uptime_seconds: self.shared.started.elapsed().as_secs_f64(),
            sampled_at: latest.as_ref().map(|s| s.at),
            interval_ms: self.shared.config.interval.as_millis() as u64,
            signals,
            active_alerts: self.active_alerts(),
            throughput,
            memory_leak: lock(&self.shared.state).leak,
        }
    }

    /// The thresholds in force.
    pub fn thresholds(&self) -> &Thresholds {
        &self.shared.config.thresholds
    }
}

/// The `q` quantile of sorted values by nearest rank.
fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.95), Some(19.0));
        assert_eq!(nearest_rank(&v, 0.5), Some(10.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }
}
