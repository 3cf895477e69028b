//! Monitor families: host and process readings, the thresholds in force,
//! firing alerts, the monitor's own cost, and Alertmanager notifications.

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use super::register;

/// One evaluation cycle: from tens of microseconds to a second.
const EVALUATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0,
];

/// Handles for the performance monitor.
#[derive(Clone)]
pub struct MonitorMetrics {
    /// `promptgauge_system_cpu_usage_ratio`
    pub cpu: Gauge,
    /// `promptgauge_system_memory_usage_ratio`
    pub memory: Gauge,
    /// `promptgauge_system_memory_used_bytes`
    pub memory_used: IntGauge,
    /// `promptgauge_system_disk_usage_ratio{mount}`
    pub disk: GaugeVec,
    /// `promptgauge_system_disk_io_bytes_total{direction}`
    pub disk_io: IntCounterVec,
    /// `promptgauge_system_network_bytes_total{direction}`
    pub network: IntCounterVec,
    /// `promptgauge_monitor_threshold{signal,severity}`
    pub threshold: GaugeVec,
    /// `promptgauge_monitor_alerts_firing{alertname,severity}`
    pub alerts_firing: IntGaugeVec,
    /// `promptgauge_monitor_evaluation_duration_seconds`
    pub evaluation: Histogram,
    /// `promptgauge_monitor_memory_growth_bytes_per_second`
    pub memory_growth: Gauge,
    /// `promptgauge_alertmanager_notifications_total{status}`
    pub notifications: IntCounterVec,
}

impl MonitorMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            cpu: register(
                r,
                Gauge::new(
                    "promptgauge_system_cpu_usage_ratio",
                    "Host CPU busy share (0-1) over the last monitor interval, all cores.",
                )?,
            )?,
            memory: register(
                r,
                Gauge::new(
                    "promptgauge_system_memory_usage_ratio",
                    "Host memory in use (total minus available) as a share of total (0-1).",
                )?,
            )?,
            memory_used: register(
                r,
                IntGauge::new(
                    "promptgauge_system_memory_used_bytes",
                    "Host memory in use (total minus available), in bytes.",
                )?,
            )?,
            disk: register(
                r,
                GaugeVec::new(
                    Opts::new(
                        "promptgauge_system_disk_usage_ratio",
                        "Used share (0-1) of each mounted disk.",
                    ),
                    &["mount"],
                )?,
            )?,
            disk_io: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_system_disk_io_bytes_total",
                        "Bytes read from and written to the host's disks while promptgauge ran.",
                    ),
                    &["direction"],
                )?,
            )?,
            network: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_system_network_bytes_total",
                        "Bytes received and transmitted on the host's network interfaces while promptgauge ran.",
                    ),
                    &["direction"],
                )?,
            )?,
            threshold: register(
                r,
                GaugeVec::new(
                    Opts::new(
                        "promptgauge_monitor_threshold",
                        "Alert thresholds in force, in the signal's unit (ratio, seconds or jobs).",
                    ),
                    &["signal", "severity"],
                )?,
            )?,
            alerts_firing: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "promptgauge_monitor_alerts_firing",
                        "1 while the monitor's alert is firing, else 0.",
                    ),
                    &["alertname", "severity"],
                )?,
            )?,
            evaluation: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "promptgauge_monitor_evaluation_duration_seconds",
                        "Time one monitor cycle took: sampling, signals, alerts, trends.",
                    )
                    .buckets(EVALUATION_BUCKETS.to_vec()),
                )?,
            )?,
            memory_growth: register(
                r,
                Gauge::new(
                    "promptgauge_monitor_memory_growth_bytes_per_second",
                    "Growth of this process's resident memory fitted over the leak window; 0 while the fit is poor.",
                )?,
            )?,
            notifications: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_alertmanager_notifications_total",
                        "Pushes of alerts to Alertmanager, by outcome.",
                    ),
                    &["status"],
                )?,
            )?,
        };
        for status in ["success", "error"] {
            m.notifications.with_label_values(&[status]);
        }
        for direction in ["read", "written"] {
            m.disk_io.with_label_values(&[direction]);
        }
        for direction in ["received", "transmitted"] {
            m.network.with_label_values(&[direction]);
        }
        Ok(m)
    }
}
