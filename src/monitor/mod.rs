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
//! - `recorder` (storage on its own task), `history` (per-minute rows,
//!   aged component readings), `views` (what the performance API shows).
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

mod families;
mod history;
mod recorder;
mod views;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use alerts::{Alert, State as AlertState, Transition};
pub use bottlenecks::{Bottleneck, Source as BottleneckSource};
pub use leak::LeakAssessment;
pub use recommend::Recommendation;
pub use signals::{ALERT_SIGNALS, Sample, Unit};
pub use thresholds::{Levels, Severity, Thresholds};
pub use views::{BottleneckReport, MetricWindow, Overview, Point, SignalView, Tracked};

use crate::events::{Event, EventBus, Topic};
use crate::metrics::Metrics;
use crate::storage::{MonitorSampleRow, Storage, StorageError, now_ms};
use alerts::{AlertBook, Check};
use history::{age_components, flush_minutes};
use reading::Reading;
use recorder::{Record, alert_from_row};
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
            BottleneckSource::new("websocket_delivery", &[], m.websocket.delivery.clone()),
            BottleneckSource::new(
                "analytics",
                &["query", "source"],
                m.analytics.duration.clone(),
            ),
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
            shared
                .events
                .publish(Event::new(kind, Topic::Alerts, alert));
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
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ring_size(interval: Duration) -> usize {
    let per_hour = RING_SPAN.as_millis() / interval.as_millis().max(1);
    (per_hour as usize).clamp(RING_MIN, RING_MAX)
}
