//! Analytics: pass rate, latency percentiles, tokens and cost, in real
//! time, over any window, as trends, per model, per execution, and cost.
//!
//! - Answers come from the rollups the writer keeps (`storage::rollup`),
//!   the tier chosen per window ([`window::plan`]), with raw results only
//!   for the partial buckets at a window's edges and for exact percentiles
//!   of small windows; so a 30-day question costs about the same at ten
//!   thousand or ten million results.
//! - Every answer is cached with a time to live per kind (real time 30 s,
//!   historical 10 min, trends 5-30 min by period, ...; `CACHE_TTL`
//!   overrides), timed by kind and source, and a slow one is recorded.
//! - The figures themselves are pure functions ([`figures`], [`window`]).
//!
//! This module reads through `storage` and knows nothing of HTTP.

mod execution;
pub mod figures;
mod queries;
mod trends;
pub mod window;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use execution::{ExecutionAnalytics, LatencyBucket, TestFigures};
pub use figures::{Figures, Latency};
pub use queries::{CostReport, Historical, ModelFigures, ModelsReport, Realtime, Spend};
pub use trends::{Change, Period, TrendBucket, Trends};
pub use window::Source;

use crate::cache::{CacheStats, Clock, TtlCache};
use crate::metrics::{AnalyticsMetrics, Metrics};
use crate::storage::{RollupFilter, Storage, StorageError};

/// Windows answered with exact percentiles (from every result) when they
/// hold at most this many results; bigger ones use the histogram buckets.
pub const EXACT_PERCENTILES_UP_TO: usize = 500;
/// The longest window a query may ask for.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);
/// Slow queries kept for the bottleneck view.
const SLOW_KEPT: usize = 100;
/// Entries per cache.
const CACHE_SIZE: usize = 256;
/// How often minute rollups past their retention are dropped.
const COMPACT_EVERY: Duration = Duration::from_secs(3600);

/// What can go wrong, named by what happened.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// No execution with that id.
    #[error("execution {0} not found")]
    ExecutionNotFound(i64),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Settings.
#[derive(Debug, Clone, Copy)]
pub struct AnalyticsConfig {
    /// Overrides every cache's time to live (`CACHE_TTL`).
    pub cache_ttl: Option<Duration>,
    /// Queries slower than this are recorded (`ANALYTICS_SLOW_QUERY_MS`).
    pub slow_query: Duration,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            cache_ttl: None,
            slow_query: Duration::from_millis(50),
        }
    }
}

/// A window: the last so long, or [from, to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    /// Ending now, in whole rollup buckets: from the start of the minute
    /// (windows up to 2 h) or hour (longer ones) `d` ago, to the end of the
    /// current minute (nothing is stored after now), so it is answered from
    /// the rollups alone. The answer states the bounds it used.
    Last(Duration),
    /// Unix ms, `from` included, `to` excluded.
    Between {
        /// Start.
        from: i64,
        /// End.
        to: i64,
    },
}

impl Span {
    /// [from, to) now.
    pub fn bounds(&self, now: i64) -> (i64, i64) {
        use crate::storage::rollup::{HOUR, MINUTE, align};
        match *self {
            Span::Last(d) => {
                let d = d.as_millis() as i64;
                let start = if d <= 2 * 3_600_000 { MINUTE } else { HOUR };
                (align(now - d, start), align(now, MINUTE) + MINUTE * 1000)
            }
            Span::Between { from, to } => (from, to),
        }
    }
}

/// How an answer was obtained.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryInfo {
    /// The query kind.
    pub kind: &'static str,
    /// `cache` or `db`.
    pub source: &'static str,
    /// Time to answer, ms.
    pub duration_ms: f64,
}

/// An answer and how it was obtained.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    /// The answer (shared with the cache).
    pub data: Arc<T>,
    /// How.
    pub query: QueryInfo,
}

/// A query slower than the threshold.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowQuery {
    /// Kind.
    pub kind: &'static str,
    /// Its parameters' shape (which filters, how long a window).
    pub shape: String,
    /// Time to answer, ms.
    pub duration_ms: f64,
    /// When, unix ms.
    pub at: i64,
}

struct Caches {
    realtime: TtlCache<String, Arc<Realtime>>,
    historical: TtlCache<String, Arc<Historical>>,
    trends: TtlCache<String, Arc<Trends>>,
    models: TtlCache<String, Arc<ModelsReport>>,
    execution: TtlCache<String, Arc<ExecutionAnalytics>>,
    cost: TtlCache<String, Arc<CostReport>>,
}

/// The analytics service. Cheap to clone.
#[derive(Clone)]
pub struct AnalyticsEngine {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    metrics: AnalyticsMetrics,
    config: AnalyticsConfig,
    caches: Caches,
    slow: Mutex<VecDeque<SlowQuery>>,
}

impl AnalyticsEngine {
    /// An engine over `storage`, its caches registered in `metrics`.
    pub fn new(storage: Storage, metrics: &Metrics, config: AnalyticsConfig) -> Self {
        Self::with_clock(storage, metrics, config, Arc::new(Instant::now))
    }

    /// [`AnalyticsEngine::new`] whose caches read time from `clock` (the
    /// dashboard simulation of the benchmark).
    pub fn with_clock(
        storage: Storage,
        metrics: &Metrics,
        config: AnalyticsConfig,
        clock: Clock,
    ) -> Self {
        fn cache<V: Clone>(
            name: &str,
            ttl: Duration,
            metrics: &Metrics,
            clock: &Clock,
        ) -> TtlCache<String, V> {
            TtlCache::with_clock(name, CACHE_SIZE, ttl, &metrics.cache, clock.clone())
        }
        let ttl = |default_secs| {
            config
                .cache_ttl
                .unwrap_or(Duration::from_secs(default_secs))
        };
        let caches = Caches {
            realtime: cache("analytics_realtime", ttl(30), metrics, &clock),
            historical: cache("analytics_historical", ttl(600), metrics, &clock),
            trends: cache("analytics_trends", ttl(300), metrics, &clock),
            models: cache("analytics_models", ttl(600), metrics, &clock),
            execution: cache("analytics_executions", ttl(600), metrics, &clock),
            cost: cache("analytics_cost", ttl(600), metrics, &clock),
        };
        Self {
            inner: Arc::new(Inner {
                storage,
                metrics: metrics.analytics.clone(),
                config,
                caches,
                slow: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// Drops minute rollups past their retention every hour until `token`.
    pub async fn compact(self, token: CancellationToken) {
        let mut every = tokio::time::interval(COMPACT_EVERY);
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                _ = every.tick() => {
                    match self.inner.storage.compact_rollups().await {
                        Ok(n) if n > 0 => tracing::info!(rows = n, "dropped minute rollups past their retention"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "compacting rollups failed"),
                    }
                }
            }
        }
    }

    /// Hits, misses and entries of every analytics cache.
    pub fn cache_stats(&self) -> Vec<CacheStats> {
        let c = &self.inner.caches;
        vec![
            c.realtime.stats(),
            c.historical.stats(),
            c.trends.stats(),
            c.models.stats(),
            c.execution.stats(),
            c.cost.stats(),
        ]
    }

    /// The slowest recent queries, newest first.
    pub fn slow_queries(&self) -> Vec<SlowQuery> {
        let slow = self.inner.slow.lock().unwrap_or_else(|p| p.into_inner());
        slow.iter().rev().cloned().collect()
    }

    /// Minute rows exist from here on (retention).
    fn minute_since(&self, now: i64) -> i64 {
        now - self.inner.storage.minute_retention().as_millis() as i64
    }

    /// Serves `key` of kind `kind` from `cache`, or loads, caches for `ttl`
    /// and records how long it took.
    async fn answer<T, F>(
        &self,
        kind: &'static str,
        cache: &TtlCache<String, Arc<T>>,
        key: String,
        ttl: Option<Duration>,
        load: F,
    ) -> Result<Answer<T>, AnalyticsError>
    where
        F: Future<Output = Result<T, AnalyticsError>>,
    {
        let load = async { load.await.map(|v| (v, ttl)) };
        self.answer_with_ttl(kind, cache, key, load).await
    }

    /// [`AnalyticsEngine::answer`] where the loader picks the time to live
    /// (`None`: the cache's).
    async fn answer_with_ttl<T, F>(
        &self,
        kind: &'static str,
        cache: &TtlCache<String, Arc<T>>,
        key: String,
        load: F,
    ) -> Result<Answer<T>, AnalyticsError>
    where
        F: Future<Output = Result<(T, Option<Duration>), AnalyticsError>>,
    {
        let started = Instant::now();
        let mut loaded = false;
        let data = cache
            .get_or_try_insert_with_expiry(&key, async {
                loaded = true;
                let (value, ttl) = load.await?;
                let ttl = self.inner.config.cache_ttl.or(ttl).unwrap_or(cache.ttl());
                Ok::<_, AnalyticsError>((Arc::new(value), ttl))
            })
            .await?;
        let source = if loaded { "db" } else { "cache" };
        let took = started.elapsed();
        let m = &self.inner.metrics;
        m.duration
            .with_label_values(&[kind, source])
            .observe(took.as_secs_f64());
        m.queries.with_label_values(&[kind, source]).inc();
        if source == "db" && took >= self.inner.config.slow_query {
            m.slow.with_label_values(&[kind]).inc();
            let mut slow = self.inner.slow.lock().unwrap_or_else(|p| p.into_inner());
            if slow.len() >= SLOW_KEPT {
                slow.pop_front();
            }
            slow.push_back(SlowQuery {
                kind,
                shape: key,
                duration_ms: took.as_secs_f64() * 1000.0,
                at: crate::storage::now_ms(),
            });
        }
        Ok(Answer {
            data,
            query: QueryInfo {
                kind,
                source,
                duration_ms: took.as_secs_f64() * 1000.0,
            },
        })
    }
}

/// A cache key part for a filter.
fn filter_key(f: &RollupFilter) -> String {
    format!(
        "suite={:?} provider={:?} model={:?}",
        f.suite_id, f.provider, f.model
    )
}
