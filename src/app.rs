//! The application: builds every subsystem from a [`Config`], serves HTTP,
//! runs background tasks, and shuts down in order.
//!
//! [`App::build`] binds the listener (so tests can bind port 0 and read the
//! address before anything runs) and opens storage. [`App::run`] serves
//! until the given shutdown future resolves, then: HTTP stops accepting and
//! finishes in-flight requests (bounded), background tasks stop (bounded),
//! and last the storage writer flushes everything queued and joins.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::analytics::{AnalyticsConfig, AnalyticsEngine};
use crate::config::Config;
use crate::events::EventBus;
use crate::health::Health;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::monitor::{Monitor, MonitorConfig, alertmanager};
use crate::optimize::OptimizeService;
use crate::progress::ProgressHub;
use crate::providers::Credentials;
use crate::queue::{QueueConfig, TestQueue};
use crate::reports::ReportService;
use crate::storage::Storage;

/// How long in-flight requests, then background tasks, get to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often planner statistics are refreshed after the start-up run.
const OPTIMIZE_EVERY: Duration = Duration::from_secs(600);

/// A built, bound, not yet serving promptgauge.
pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    storage: Storage,
    tracker: TaskTracker,
    token: CancellationToken,
    demo: bool,
    limits: http::Limits,
}

impl App {
    /// Binds `HOST:PORT`, creates the metrics registry and opens (and
    /// migrates) the database.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        crate::common::tls::install_crypto_provider();
        let listener = TcpListener::bind((config.host, config.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
        let addr = listener.local_addr()?;
        let limits = connection_limits(&config);
        let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
        metrics
            .providers
            .cost_budget
            .set(config.cost_budget_usd_per_hour.unwrap_or(0.0));

        let path = config.database_path.clone();
        let storage_metrics = metrics.storage.clone();
        let busy_timeout = config.db_busy_timeout;
        // Opening migrates and analyzes: blocking work, kept off the async workers.
        let storage = tokio::task::spawn_blocking(move || {
            Storage::open_with_busy_timeout(&path, busy_timeout, storage_metrics)
        })
        .await
        .context("storage start-up panicked")??;
        tracing::info!(path = %config.database_path.display(), "database ready");

        let (tracker, token) = (TaskTracker::new(), CancellationToken::new());
        let events = EventBus::new();
        let progress = ProgressHub::start(
            &events,
            storage.clone(),
            metrics.websocket.clone(),
            config.progress,
            tracker.clone(),
            token.clone(),
        );
        let queue = TestQueue::start(
            storage.clone(),
            &metrics,
            events.clone(),
            QueueConfig {
                max_concurrency: config.max_concurrent_tests,
                cache_ttl: config.cache_ttl,
                // Suites come from API clients: the server's keys stay home.
                credentials: Credentials::guarded(config.provider_guard.clone()),
            },
            tracker.clone(),
            token.clone(),
        );
        let monitor = Monitor::new(
            metrics.clone(),
            storage.clone(),
            events.clone(),
            MonitorConfig {
                interval: config.monitoring_interval,
                thresholds: config.thresholds,
                alert_for: config.alert_for,
                alertmanager: config
                    .alertmanager_url
                    .clone()
                    .map(|url| alertmanager::Target {
                        url: url.trim_end_matches('/').to_owned(),
                        instance: addr.to_string(),
                    }),
                max_concurrent_tests: config.max_concurrent_tests,
            },
        );
        storage.set_minute_retention(config.rollup_minute_retention);
        let analytics = AnalyticsEngine::new(
            storage.clone(),
            &metrics,
            AnalyticsConfig {
                cache_ttl: config.cache_ttl,
                slow_query: config.analytics_slow_query,
            },
        );
        let reports = ReportService::new(
            analytics.clone(),
            queue.clone(),
            monitor.clone(),
            &metrics,
            config.report_templates.clone(),
            config.cache_ttl,
        );
        let llm = match &config.optimize_provider {
            Some(spec) => Some(
                crate::providers::build(spec)
                    .map_err(|e| anyhow::anyhow!("OPTIMIZE_PROVIDER: {e}"))?,
            ),
            None => None,
        };
        let optimize = OptimizeService::new(
            storage.clone(),
            analytics.clone(),
            queue.clone(),
            &metrics,
            llm,
            config.cache_ttl,
        );
        let benchmarks = crate::bench::suite::service::BenchmarkService::new(
            storage.clone(),
            events.clone(),
            config
                .database_path
                .parent()
                .map_or_else(|| std::path::PathBuf::from("bench"), |p| p.join("bench")),
        );
        let state = AppState {
            benchmarks,
            optimize,
            reports,
            analytics,
            metrics,
            health: Health::new(storage.clone()),
            queue,
            monitor,
            events,
            progress,
            api_token: config.api_token.clone().map(Arc::new),
        };
        Ok(Self {
            listener,
            addr,
            state,
            storage,
            tracker,
            token,
            demo: false,
            limits,
        })
    }

    /// Runs the example workload of [`crate::demo`] while serving.
    pub fn with_demo(mut self) -> Self {
        self.demo = true;
        self
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The storage handle (tests and benchmarks write through it).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }

    /// The test queue.
    pub fn queue(&self) -> &TestQueue {
        &self.state.queue
    }

    /// The performance monitor.
    pub fn monitor(&self) -> &Monitor {
        &self.state.monitor
    }

    /// The in-process event stream.
    pub fn events(&self) -> &EventBus {
        &self.state.events
    }

    /// The WebSocket progress service.
    pub fn progress(&self) -> &ProgressHub {
        &self.state.progress
    }

    /// The report service.
    pub fn reports(&self) -> &ReportService {
        &self.state.reports
    }

    /// The prompt optimization service.
    pub fn optimize(&self) -> &OptimizeService {
        &self.state.optimize
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            addr,
            state,
            storage,
            tracker,
            token,
            demo,
            limits,
        } = self;
        tracker.spawn(refresh_statistics(storage.clone(), token.clone()));
        tracker.spawn(crate::common::memory::keep_trimmed(token.clone()));
        tracker.spawn(state.analytics.clone().compact(token.clone()));
        let queue = state.queue.clone();
        let recovering = queue.clone();
        let (recovered, recovery_done) = tokio::sync::oneshot::channel::<()>();
        tracker.spawn(async move {
            if let Err(e) = recovering.recover().await {
                tracing::error!(error = %e, "resuming unfinished executions failed");
            }
            drop(recovered);
        });
        let ready = async move {
            let _ = recovery_done.await;
        };
        state.monitor.start(&tracker, token.clone(), ready).await;

        if demo {
            tracker.spawn(crate::demo::run(queue.clone(), token.clone()));
        }

        let http_metrics = state.metrics.http.clone();
        let router = http::router(state);
        let server_token = token.clone();
        let mut server = tokio::spawn(http::serve(
            listener,
            router,
            limits,
            http_metrics,
            server_token.cancelled_owned(),
        ));
        tracing::info!(%addr, "promptgauge listening");

        tokio::select! {
            () = shutdown => tracing::info!("shutdown requested"),
            ended = &mut server => {
                // The server stopping by itself is an error; still flush storage.
                token.cancel();
                queue.close();
                tracker.close();
                tracker.wait().await;
                storage.close().await;
                return match ended {
                    Ok(Ok(())) => Err(anyhow::anyhow!("HTTP server stopped unexpectedly")),
                    Ok(Err(e)) => Err(e).context("HTTP server failed"),
                    Err(e) => Err(e).context("HTTP server panicked"),
                };
            }
        }

        token.cancel();
        queue.close();
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(_) => tracing::info!("HTTP server stopped"),
            Err(_) => {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight requests did not finish in time; dropping them");
                server.abort();
            }
        }
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop in time");
        }
        storage.close().await;
        tracing::info!("storage flushed; bye");
        Ok(())
    }
}

/// The HTTP server's guards, with the open-file limit raised for them (HTTP
/// and WebSocket connections each take a descriptor) and the connection
/// limit lowered to what the hard limit leaves room for.
fn connection_limits(config: &Config) -> http::Limits {
    use crate::common::files;
    let wanted = config.http.max_connections + config.progress.max_connections;
    let soft = files::raise_open_file_limit(wanted as u64 + files::RESERVED);
    let max_connections = files::connections_allowed(config.http.max_connections, soft);
    if max_connections < config.http.max_connections {
        tracing::warn!(
            configured = config.http.max_connections,
            allowed = max_connections,
            open_files = ?soft,
            "the open-file limit leaves room for fewer HTTP connections than HTTP_MAX_CONNECTIONS"
        );
    }
    http::Limits {
        max_connections,
        header_timeout: config.http.header_timeout,
        body_timeout: config.http.body_timeout,
    }
}

/// Keeps planner statistics fresh as tables grow (`PRAGMA optimize`).
async fn refresh_statistics(storage: Storage, token: CancellationToken) {
    let mut every = tokio::time::interval(OPTIMIZE_EVERY);
    every.tick().await; // The first tick is immediate; start-up already ran it.
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = every.tick() => {
                if let Err(e) = storage.optimize().await {
                    tracing::warn!(error = %e, "PRAGMA optimize failed");
                }
            }
        }
    }
}
