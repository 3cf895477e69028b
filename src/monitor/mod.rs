//! The performance monitor: every `PERFORMANCE_MONITORING_INTERVAL` it
//! samples the host and this process, reads the metrics registry (the same
//! handles `/metrics` serves), evaluates warning and critical thresholds
//! with a hold time and hysteresis, and keeps the rest of the picture:
//! trends, memory-leak detection, bottlenecks and recommendations.
//!
//! - [`thresholds`]: the one source of truth for alert levels.
//! - [`system`] and [`reading`]: host readings and registry readings.
//! - [`signals`]: what a sample holds and which signals alert.
//! - [`alerts`]: the per-(signal, severity) state machine.
//! - [`histogram`]: deltas and `histogram_quantile`'s interpolation.
//! - [`leak`], [`bottlenecks`], [`recommend`]: the analyses.
//! - [`alertmanager`]: the optional push to Alertmanager.
//!
//! Firing and resolved alerts are stored (they survive a restart),
//! exported as `promptgauge_monitor_alerts_firing`, published on the
//! [`EventBus`] as `alert.firing` / `alert.resolved`, and pushed to
//! Alertmanager when configured. The monitor reads metrics, never services.

pub mod alertmanager;
pub mod alerts;
pub mod bottlenecks;
pub mod histogram;
pub mod leak;
pub mod reading;
pub mod recommend;
pub mod signals;
pub mod system;
pub mod thresholds;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use alerts::{Alert, State as AlertState, Transition};
pub use bottlenecks::{Bottleneck, Source as BottleneckSource};
pub use leak::LeakAssessment;
pub use recommend::Recommendation;
pub use signals::{ALERT_SIGNALS, Sample, Unit};
pub use thresholds::{Levels, Severity, Thresholds};

use crate::events::{Event, EventBus};
use crate::metrics::Metrics;
use crate::storage::{AlertRow, MonitorSampleRow, Storage, StorageError, now_ms};
use alerts::{AlertBook, Check};
use reading::Reading;
use system::Host;

/// Memory the monitor keeps: an hour of samples at the interval, within bounds.
const RING_SPAN: Duration = Duration::from_secs(3600);
const RING_MIN: usize = 60;
const RING_MAX: usize = 3600;
/// Resolution of the persisted history.
const HISTORY_RESOLUTION_S: i64 = 60;
/// How long the persisted history is kept.
const HISTORY_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// How often old history is deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The window recommendations average over.
const RECENT: Duration = Duration::from_secs(300);
/// The longest window the API answers for.
pub const MAX_WINDOW: Duration = HISTORY_RETENTION;
/// sysinfo needs this long between CPU readings for a meaningful figure.
const MIN_CPU_INTERVAL: Duration = Duration::from_millis(200);

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Sampling interval.
    pub interval: Duration,
    /// Alert levels.
    pub thresholds: Thresholds,
    /// How long a breach lasts before its alert fires.
    pub alert_for: Duration,
    /// Where to push alerts, if anywhere.
    pub alertmanager: Option<alertmanager::Target>,
    /// `MAX_CONCURRENT_TESTS`, for recommendations.
    pub max_concurrent_tests: usize,
}

/// What can go wrong, named by what happened.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// No tracked metric by that name.
    #[error("unknown metric {name:?}; known: {}", known.join(", "))]
    UnknownMetric {
        /// The name asked for.
        name: String,
        /// What is tracked.
        known: Vec<String>,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The performance monitor. Cheap to clone.
#[derive(Clone)]
pub struct Monitor {
    shared: Arc<Shared>,
}

struct Shared {
    metrics: Arc<Metrics>,
    storage: Storage,
    events: EventBus,
    config: MonitorConfig,
    sources: Mutex<Vec<BottleneckSource>>,
    state: Mutex<MonitorState>,
    notify: Mutex<Option<mpsc::Sender<Transition>>>,
    recorder: Mutex<Option<mpsc::UnboundedSender<Record>>>,
    started: Instant,
}

/// Storage work for the recorder task.
enum Record {
    Alert(Transition),
    History(Vec<MonitorSampleRow>),
    Prune { before: i64 },
}

struct MonitorState {
    host: Host,
    last_cpu_refresh: Option<Instant>,
    last: Option<(Instant, Reading)>,
    ring: VecDeque<Sample>,
    /// Component readings of every cycle in the last [`RECENT`]...
    /// (at most one a second: at short intervals that is plenty)...
    components: VecDeque<(i64, Arc<bottlenecks::Readings>)>,
    /// ...and one a minute before that, for an hour: a reading holds
    /// every label set's buckets, too much to keep for every cycle.
    older_components: VecDeque<(i64, Arc<bottlenecks::Readings>)>,
    /// The latest component readings.
    latest_components: Option<(i64, Arc<bottlenecks::Readings>)>,
    book: AlertBook,
    /// (unix seconds, RSS bytes) over the leak window.
    rss: VecDeque<(f64, f64)>,
    leak: LeakAssessment,
    flushed_minute: i64,
    last_prune: Option<Instant>,
    cached_host: Option<system::HostReading>,
}

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
    /// A monitor over `metrics`, with the built-in bottleneck sources
    /// (HTTP routes, provider calls, queue wait, writer commits, database
    /// operations). It does nothing until [`Monitor::start`].
    pub fn new(
        metrics: Arc<Metrics>,
        storage: Storage,
        events: EventBus,
        config: MonitorConfig,
    ) -> Self {
        let m = &metrics;
        for s in ALERT_SIGNALS {
            for (severity, level) in s.levels(&config.thresholds) {
                m.monitor
                    .threshold
                    .with_label_values(&[s.signal, severity.as_str()])
                    .set(level);
            }
            for severity in Severity::ALL {
                m.monitor
                    .alerts_firing
                    .with_label_values(&[s.alertname, severity.as_str()]);
            }
        }
        let sources = vec![
            BottleneckSource::new("http", &["method", "route"], m.http.duration.clone()),
            BottleneckSource::new(
                "provider",
                &["provider", "model"],
                m.providers.duration.clone(),
            ),
            BottleneckSource::new("queue_wait", &[], m.queue.queue_wait.clone()),
            BottleneckSource::new("db_commit", &[], m.storage.writer_commit_duration.clone()),
            BottleneckSource::new("db", &["operation"], m.storage.query_duration.clone()),
        ];
        let ring = ring_size(config.interval);
        Self {
            shared: Arc::new(Shared {
                metrics,
                storage,
                events,
                sources: Mutex::new(sources),
                state: Mutex::new(MonitorState {
                    host: Host::new(),
                    last_cpu_refresh: Some(Instant::now()),
                    last: None,
                    ring: VecDeque::with_capacity(ring),
                    components: VecDeque::new(),
                    older_components: VecDeque::new(),
                    latest_components: None,
                    book: AlertBook::default(),
                    rss: VecDeque::new(),
                    leak: leak::assess(&[]),
                    flushed_minute: now_ms() / 60_000,
                    last_prune: None,
                    cached_host: None,
                }),
                notify: Mutex::new(None),
                recorder: Mutex::new(None),
                config,
                started: Instant::now(),
            }),
        }
    }

    /// Adds a histogram whose label sets are components to rank.
    pub fn add_bottleneck_source(&self, source: BottleneckSource) {
        lock(&self.shared.sources).push(source);
    }

    /// Restores the alerts that were firing before a restart, starts the
    /// Alertmanager pusher when configured, and, once `ready` completes
    /// (unfinished executions are back in the queue, so a restored backlog
    /// alert does not resolve on an empty queue), samples every interval
    /// until `token` is cancelled.
    pub async fn start(
        &self,
        tracker: &TaskTracker,
        token: CancellationToken,
        ready: impl Future<Output = ()> + Send + 'static,
    ) {
        let shared = &self.shared;
        let restored = match shared.storage.active_alerts().await {
            Ok(rows) => rows.into_iter().filter_map(alert_from_row).collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read active alerts; starting without them");
                Vec::new()
            }
        };
        if let Some(target) = shared.config.alertmanager.clone() {
            let (tx, rx) = mpsc::channel(alertmanager::CHANNEL);
            for a in &restored {
                let _ = tx.try_send(Transition::Fired(a.clone()));
            }
            *lock(&shared.notify) = Some(tx);
            tracker.spawn(alertmanager::run(
                target,
                rx,
                shared.metrics.monitor.clone(),
                token.clone(),
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&shared.recorder) = Some(tx);
        tracker.spawn(self.clone().run_recorder(rx, token.clone()));
        {
            let mut st = lock(&shared.state);
            for a in &restored {
                shared
                    .metrics
                    .monitor
                    .alerts_firing
                    .with_label_values(&[&a.alertname, a.severity.as_str()])
                    .set(1);
            }
            st.book = AlertBook::restore(restored);
        }
        let monitor = self.clone();
        let interval = shared.config.interval;
        tracker.spawn(async move {
            tokio::select! {
                () = token.cancelled() => return,
                () = ready => {}
            }
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    _ = tick.tick() => monitor.cycle(),
                }
            }
        });
    }

    /// One cycle: sample, evaluate, publish. [`Monitor::start`] runs it
    /// every interval; the bench calls it directly. Storage happens on the
    /// recorder task that [`Monitor::start`] starts, never here.
    pub fn cycle(&self) {
        let started = Instant::now();
        let (transitions, history) = self.evaluate();
        self.shared
            .metrics
            .monitor
            .evaluation
            .observe(started.elapsed().as_secs_f64());
        self.record(transitions, history);
    }

    /// The synchronous part of a cycle: everything but storage.
    fn evaluate(&self) -> (Vec<Transition>, Vec<MonitorSampleRow>) {
        let shared = &self.shared;
        let m = &shared.metrics;
        let cfg = &shared.config;
        let components = bottlenecks::read(&lock(&shared.sources));
        let now_reading = Reading::take(m, &components);
        let mut st = lock(&shared.state);
        let st = &mut *st;
        // CPU usage is a difference of counters: too short a gap reads nonsense.
        let host = match (&st.cached_host, st.last_cpu_refresh) {
            (Some(h), Some(t)) if t.elapsed() < MIN_CPU_INTERVAL => h.clone(),
            _ => {
                let h = st.host.read();
                st.last_cpu_refresh = Some(Instant::now());
                st.cached_host = Some(h.clone());
                h
            }
        };
        let at = now_ms();
        let secs = at as f64 / 1000.0;
        let window_start = secs - leak::WINDOW_SECS;
        if st
            .rss
            .back()
            .is_none_or(|(t, _)| secs - t >= leak::STEP_SECS)
        {
            st.rss.push_back((secs, host.process_rss_bytes as f64));
        }
        while st.rss.front().is_some_and(|(t, _)| *t < window_start) {
            st.rss.pop_front();
        }
        st.leak = leak::assess(st.rss.make_contiguous());
        let elapsed = st
            .last
            .as_ref()
            .map_or(0.0, |(t, _)| t.elapsed().as_secs_f64());
        let sample = signals::build(&signals::Inputs {
            at,
            elapsed_secs: elapsed,
            host: &host,
            now: &now_reading,
            before: st.last.as_ref().map(|(_, r)| r),
            leak: &st.leak,
        });

        let g = &m.monitor;
        g.cpu.set(host.cpu_ratio);
        g.memory.set(host.memory_ratio);
        g.memory_used.set(host.memory_used_bytes as i64);
        for (mount, ratio) in &host.disks {
            g.disk.with_label_values(&[mount]).set(*ratio);
        }
        g.disk_io
            .with_label_values(&["read"])
            .inc_by(host.disk_read_bytes);
        g.disk_io
            .with_label_values(&["written"])
            .inc_by(host.disk_written_bytes);
        g.network
            .with_label_values(&["received"])
            .inc_by(host.network_received_bytes);
        g.network
            .with_label_values(&["transmitted"])
            .inc_by(host.network_transmitted_bytes);
        g.memory_growth.set(st.leak.growth_bytes_per_sec);

        let mut transitions = Vec::new();
        // The first sample has no interval behind it (no error rate, no
        // latency): judging it would resolve restored alerts for nothing.
        let signals = if st.last.is_some() {
            ALERT_SIGNALS
        } else {
            &[]
        };
        for s in signals {
            let value = sample.get(s.metric);
            for (severity, threshold) in s.levels(&cfg.thresholds) {
                let describe = |v: f64| s.describe(severity, threshold, v);
                let check = Check {
                    signal: s.signal,
                    alertname: s.alertname,
                    severity,
                    threshold,
                    value,
                    describe: &describe,
                };
                if let Some(t) = st.book.evaluate(&check, at, cfg.alert_for) {
                    let firing = i64::from(matches!(t, Transition::Fired(_)));
                    g.alerts_firing
                        .with_label_values(&[s.alertname, severity.as_str()])
                        .set(firing);
                    transitions.push(t);
                }
            }
        }

        let cap = ring_size(cfg.interval);
        st.ring.push_back(sample);
        while st.ring.len() > cap {
            st.ring.pop_front();
        }
        let components = Arc::new(components);
        if st.components.back().is_none_or(|(t, _)| at - t >= 1000) {
            st.components.push_back((at, components.clone()));
        }
        age_components(&mut st.components, &mut st.older_components, at);
        st.latest_components = Some((at, components));
        st.last = Some((Instant::now(), now_reading));
        let history = flush_minutes(&st.ring, &mut st.flushed_minute, at / 60_000);
        (transitions, history)
    }

    /// Publishes and forwards what a cycle produced at once, and hands the
    /// storage work to the recorder, so a locked or slow database never
    /// delays sampling.
    fn record(&self, transitions: Vec<Transition>, history: Vec<MonitorSampleRow>) {
        let shared = &self.shared;
        let recorder = lock(&shared.recorder).clone();
        let notify = lock(&shared.notify).clone();
        for t in transitions {
            let (kind, alert) = match &t {
                Transition::Fired(a) => ("alert.firing", a),
                Transition::Resolved(a) => ("alert.resolved", a),
            };
            if matches!(t, Transition::Fired(_)) {
                tracing::warn!(alertname = %alert.alertname, severity = alert.severity.as_str(), value = alert.value, "alert firing: {}", alert.description);
            } else {
                tracing::info!(alertname = %alert.alertname, severity = alert.severity.as_str(), "alert resolved");
            }
            shared.events.publish(Event {
                kind,
                at: now_ms(),
                data: serde_json::to_value(alert).unwrap_or_default(),
            });
            if let Some(tx) = &notify {
                // Never wait: a full channel is caught up by the next resend.
                let _ = tx.try_send(t.clone());
            }
            if let Some(tx) = &recorder {
                let _ = tx.send(Record::Alert(t));
            }
        }
        if let Some(tx) = &recorder {
            if !history.is_empty() {
                let _ = tx.send(Record::History(history));
            }
            let mut st = lock(&shared.state);
            if st.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                st.last_prune = Some(Instant::now());
                let _ = tx.send(Record::Prune {
                    before: now_ms() - HISTORY_RETENTION.as_millis() as i64,
                });
            }
        }
    }

    /// Stores what [`Monitor::record`] hands over, in order, until `token`
    /// is cancelled; then stores what is left.
    async fn run_recorder(self, mut rx: mpsc::UnboundedReceiver<Record>, token: CancellationToken) {
        // Ids of stored firing alerts whose resolution may come before the
        // book heard of the id.
        let mut ids: BTreeMap<(String, Severity), i64> = BTreeMap::new();
        loop {
            let record = tokio::select! {
                biased;
                r = rx.recv() => r,
                () = token.cancelled() => None,
            };
            match record {
                Some(r) => self.store(r, &mut ids).await,
                None => break,
            }
        }
        while let Ok(r) = rx.try_recv() {
            self.store(r, &mut ids).await;
        }
    }

    async fn store(&self, record: Record, ids: &mut BTreeMap<(String, Severity), i64>) {
        let storage = &self.shared.storage;
        match record {
            Record::Alert(Transition::Fired(a)) => {
                match storage.insert_alert(alert_to_row(&a)).await {
                    Ok(id) => {
                        ids.insert((a.signal.clone(), a.severity), id);
                        lock(&self.shared.state)
                            .book
                            .set_id(&a.signal, a.severity, id);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, alertname = %a.alertname, "cannot store the alert");
                    }
                }
            }
            Record::Alert(Transition::Resolved(a)) => {
                let id = ids.remove(&(a.signal.clone(), a.severity)).or(a.id);
                let stored = match id {
                    Some(id) => {
                        storage
                            .update_alert(
                                id,
                                a.value,
                                a.peak_value,
                                Some(a.description.clone()),
                                a.resolved_at,
                            )
                            .await
                    }
                    // Its firing was never stored: keep the episode anyway.
                    None => storage.insert_alert(alert_to_row(&a)).await.map(|_| ()),
                };
                if let Err(e) = stored {
                    tracing::warn!(error = %e, alertname = %a.alertname, "cannot store the resolution");
                }
            }
            Record::History(rows) => {
                if let Err(e) = storage.insert_monitor_samples(rows).await {
                    tracing::warn!(error = %e, "cannot store monitor history");
                }
            }
            Record::Prune { before } => {
                if let Err(e) = storage.prune_monitor_samples(before).await {
                    tracing::warn!(error = %e, "cannot prune monitor history");
                }
            }
        }
    }

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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ring_size(interval: Duration) -> usize {
    let per_hour = RING_SPAN.as_millis() / interval.as_millis().max(1);
    (per_hour as usize).clamp(RING_MIN, RING_MAX)
}

/// The `q` quantile of sorted values by nearest rank.
fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Moves readings older than [`RECENT`] from `recent` to `older`, keeping
/// one a minute there, and forgets those older than [`RING_SPAN`].
fn age_components<T>(recent: &mut VecDeque<(i64, T)>, older: &mut VecDeque<(i64, T)>, now: i64) {
    let recent_from = now - RECENT.as_millis() as i64;
    while let Some((t, r)) = recent.pop_front() {
        if t >= recent_from {
            recent.push_front((t, r));
            break;
        }
        if older.back().is_none_or(|(last, _)| t - last >= 60_000) {
            older.push_back((t, r));
        }
    }
    let oldest = now - RING_SPAN.as_millis() as i64;
    while older.front().is_some_and(|(t, _)| *t < oldest) {
        older.pop_front();
    }
}

/// Per-minute mean, min and max of every metric, for each whole minute
/// after `flushed` and before `current`.
fn flush_minutes(
    ring: &VecDeque<Sample>,
    flushed: &mut i64,
    current: i64,
) -> Vec<MonitorSampleRow> {
    if current <= *flushed + 1 {
        return Vec::new();
    }
    let mut acc: BTreeMap<(i64, &str), (f64, f64, f64, u32)> = BTreeMap::new();
    for s in ring {
        let minute = s.at / 60_000;
        if minute <= *flushed || minute >= current {
            continue;
        }
        for (k, v) in &s.values {
            let e = acc.entry((minute, k.as_str())).or_insert((
                0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                0,
            ));
            e.0 += v;
            e.1 = e.1.min(*v);
            e.2 = e.2.max(*v);
            e.3 += 1;
        }
    }
    *flushed = current - 1;
    acc.into_iter()
        .map(|((minute, metric), (sum, min, max, n))| MonitorSampleRow {
            metric: metric.to_owned(),
            resolution_s: HISTORY_RESOLUTION_S,
            ts: minute * 60_000,
            value: sum / f64::from(n),
            min,
            max,
        })
        .collect()
}

fn alert_to_row(a: &Alert) -> AlertRow {
    AlertRow {
        id: a.id.unwrap_or(0),
        alertname: a.alertname.clone(),
        signal: a.signal.clone(),
        severity: a.severity.as_str().to_owned(),
        state: match a.state {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
        .to_owned(),
        threshold: a.threshold,
        value: a.value,
        peak_value: a.peak_value,
        labels: "{}".to_owned(),
        description: Some(a.description.clone()),
        started_at: a.started_at,
        fired_at: a.fired_at,
        resolved_at: a.resolved_at,
    }
}

fn alert_from_row(r: AlertRow) -> Option<Alert> {
    Some(Alert {
        id: Some(r.id),
        alertname: r.alertname,
        signal: r.signal,
        severity: match r.severity.as_str() {
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            _ => return None,
        },
        state: match r.state.as_str() {
            "pending" => AlertState::Pending,
            "firing" => AlertState::Firing,
            "resolved" => AlertState::Resolved,
            _ => return None,
        },
        threshold: r.threshold,
        value: r.value,
        peak_value: r.peak_value,
        description: r.description.unwrap_or_default(),
        started_at: r.started_at,
        fired_at: r.fired_at,
        resolved_at: r.resolved_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, v: f64) -> Sample {
        Sample {
            at,
            values: BTreeMap::from([("x".to_owned(), v)]),
        }
    }

    #[test]
    fn whole_minutes_are_flushed_once_as_mean_min_and_max() {
        let ring: VecDeque<Sample> = [
            sample(60_000, 1.0),
            sample(90_000, 3.0),
            sample(120_000, 10.0),
            sample(150_000, 20.0),
        ]
        .into();
        let mut flushed = 0;
        let rows = flush_minutes(&ring, &mut flushed, 2);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].ts, rows[0].value, rows[0].min, rows[0].max),
            (60_000, 2.0, 1.0, 3.0)
        );
        assert!(
            flush_minutes(&ring, &mut flushed, 2).is_empty(),
            "the current minute waits"
        );
        let rows = flush_minutes(&ring, &mut flushed, 3);
        assert_eq!((rows[0].ts, rows[0].value), (120_000, 15.0));
    }

    #[test]
    fn component_readings_are_kept_per_cycle_for_5_minutes_then_per_minute_for_an_hour() {
        let (mut recent, mut older) = (VecDeque::new(), VecDeque::new());
        // Two hours of cycles every 5 s.
        for at in (0..7200).step_by(5).map(|s: i64| s * 1000) {
            recent.push_back((at, ()));
            age_components(&mut recent, &mut older, at);
        }
        let now = 7_195_000;
        assert_eq!(
            recent.len(),
            61,
            "every cycle of the last 5 minutes, both ends"
        );
        assert!(recent.iter().all(|(t, _)| *t >= now - 300_000));
        assert!(
            older
                .iter()
                .all(|(t, _)| *t < now - 300_000 && *t >= now - 3_600_000)
        );
        assert!(older.len() >= 54 && older.len() <= 56, "{}", older.len());
        let gaps: Vec<i64> = older
            .iter()
            .zip(older.iter().skip(1))
            .map(|(a, b)| b.0 - a.0)
            .collect();
        assert!(gaps.iter().all(|g| *g == 60_000), "{gaps:?}");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.95), Some(19.0));
        assert_eq!(nearest_rank(&v, 0.5), Some(10.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }
}
