//! Analytics over a million results: every query kind timed on a cache
//! miss and on a hit, what rollup upkeep costs the writer, and the cache
//! hit rate of a dashboard refreshing every panel every 10 s.
//!
//! The history (30 days, 8 models, bursty executions; [`super::history`])
//! is generated once and cached under the data folder; each run copies it
//! and adds a fresh burst in the last hour, so real-time windows have data.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::fixtures::{remove_db, write_all};
use super::history::{self, HistorySpec};
use crate::analytics::{AnalyticsConfig, AnalyticsEngine, AnalyticsError, Period, Span};
use crate::metrics::Metrics;
use crate::storage::{NewExecution, RollupFilter, Storage, now_ms};

/// Results in the cached history.
pub const HISTORY_RESULTS: usize = 1_000_000;
/// Calls per query kind on a cache miss.
const MISS_CALLS: usize = 300;
/// Calls per query kind on a hit.
const HIT_CALLS: usize = 2_000;
/// Rows the writer comparison stores per round.
const WRITER_ROWS: usize = 200_000;
/// Rounds each way.
const WRITER_ROUNDS: usize = 5;
/// Targets.
const MISS_P99_MS: f64 = 5.0;
const HIT_P99_US: f64 = 50.0;
const UPKEEP_PCT: f64 = 10.0;
const DASHBOARD_HIT_RATE: f64 = 0.85;

/// One query kind's times.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryFigures {
    /// Kind and parameters.
    pub query: String,
    /// Cache miss: p50 and p99, ms.
    pub miss_ms: [f64; 2],
    /// Cache hit: p50 and p99, µs.
    pub hit_us: [f64; 2],
}

/// What one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnalyticsFigures {
    /// Results stored.
    pub results: i64,
    /// Per query kind.
    pub queries: Vec<QueryFigures>,
    /// Writer throughput with rollups, rows/s.
    pub writer_with_rollups: f64,
    /// Without.
    pub writer_without_rollups: f64,
    /// The writer's time in rollup upkeep over its time in transactions,
    /// percent (measured within the same runs; the throughput comparison
    /// moves more with the host's noise than with the rollups).
    pub upkeep_cost_pct: f64,
    /// Hits / lookups of the dashboard simulation.
    pub dashboard_hit_rate: f64,
    /// Each target and whether it was met.
    pub targets: Vec<(String, bool)>,
}

impl AnalyticsFigures {
    /// Whether every target was met.
    pub fn met(&self) -> bool {
        self.targets.iter().all(|(_, met)| *met)
    }
}

/// Runs the benchmark on a copy of the cached history under `dir`.
pub async fn run(dir: &Path) -> anyhow::Result<AnalyticsFigures> {
    let source = history_db(dir).await?;
    let db = dir.join("run-analytics.db");
    remove_db(&db);
    std::fs::copy(&source, &db).with_context(|| format!("cannot copy {}", source.display()))?;
    let metrics = Metrics::new()?;
    let storage = Storage::open(&db, metrics.storage.clone())?;
    let recent = HistorySpec {
        results: 20_000,
        days: 1,
        per_execution: 2_000,
        now: now_ms(),
        seed: 43,
    };
    history::store(&storage, &recent, |_, _, _| {}).await?;
    let results = storage.count_results().await?;
    let execution = storage.list_executions(None, 1, 0).await?.0[0].id;

    let miss = AnalyticsEngine::new(
        storage.clone(),
        &metrics,
        AnalyticsConfig {
            cache_ttl: Some(Duration::from_nanos(1)),
            ..AnalyticsConfig::default()
        },
    );
    let hit = AnalyticsEngine::new(storage.clone(), &metrics, AnalyticsConfig::default());
    let mut queries = Vec::new();
    for q in QUERIES {
        let miss_ms = time(MISS_CALLS, || q.call(&miss, execution))
            .await?
            .map(|d| d * 1e3);
        q.call(&hit, execution).await?;
        let hit_us = time(HIT_CALLS, || q.call(&hit, execution))
            .await?
            .map(|d| d * 1e6);
        queries.push(QueryFigures {
            query: q.name.to_owned(),
            miss_ms,
            hit_us,
        });
    }
    let dashboard_hit_rate = dashboard(&storage).await?;
    let verified = verify(&storage, &hit).await?;
    storage.close().await;
    remove_db(&db);
    let (with, without, upkeep) = writer(dir).await?;
    let worst_miss = queries.iter().map(|q| q.miss_ms[1]).fold(0.0, f64::max);
    let worst_hit = queries.iter().map(|q| q.hit_us[1]).fold(0.0, f64::max);
    let targets = vec![
        (
            format!("every query p99 <= {MISS_P99_MS} ms on a miss (worst {worst_miss:.2})"),
            worst_miss <= MISS_P99_MS,
        ),
        (
            format!("every query p99 <= {HIT_P99_US} µs on a hit (worst {worst_hit:.1})"),
            worst_hit <= HIT_P99_US,
        ),
        (
            format!("rollup upkeep <= {UPKEEP_PCT} % of the writer's time ({upkeep:.1} %)"),
            upkeep <= UPKEEP_PCT,
        ),
        (
            format!(
                "dashboard hit rate >= {:.0} % ({:.1} %)",
                DASHBOARD_HIT_RATE * 100.0,
                dashboard_hit_rate * 100.0
            ),
            dashboard_hit_rate >= DASHBOARD_HIT_RATE,
        ),
        (verified.clone(), verified.starts_with("equal")),
    ];
    Ok(AnalyticsFigures {
        results,
        queries,
        writer_with_rollups: with,
        writer_without_rollups: without,
        upkeep_cost_pct: upkeep,
        dashboard_hit_rate,
        targets,
    })
}

/// A query the benchmark times.
pub(super) struct Query {
    pub(super) name: &'static str,
    kind: Kind,
}

enum Kind {
    Realtime(u64),
    Historical(Span),
    Trends(Period),
    Models(Span),
    Cost(Span),
    Execution,
}

const DAY: u64 = 86_400;

pub(super) const QUERIES: &[Query] = &[
    Query {
        name: "realtime 5m",
        kind: Kind::Realtime(300),
    },
    Query {
        name: "realtime 60m",
        kind: Kind::Realtime(3600),
    },
    Query {
        name: "historical 24h",
        kind: Kind::Historical(Span::Last(Duration::from_secs(DAY))),
    },
    Query {
        name: "historical 30d",
        kind: Kind::Historical(Span::Last(Duration::from_secs(30 * DAY))),
    },
    Query {
        name: "trends hour",
        kind: Kind::Trends(Period::Hour),
    },
    Query {
        name: "trends day",
        kind: Kind::Trends(Period::Day),
    },
    Query {
        name: "trends week",
        kind: Kind::Trends(Period::Week),
    },
    Query {
        name: "trends month",
        kind: Kind::Trends(Period::Month),
    },
    Query {
        name: "models 7d",
        kind: Kind::Models(Span::Last(Duration::from_secs(7 * DAY))),
    },
    Query {
        name: "models 30d",
        kind: Kind::Models(Span::Last(Duration::from_secs(30 * DAY))),
    },
    Query {
        name: "cost 30d",
        kind: Kind::Cost(Span::Last(Duration::from_secs(30 * DAY))),
    },
    Query {
        name: "execution (2,000 results)",
        kind: Kind::Execution,
    },
];

impl Query {
    pub(super) async fn call(
        &self,
        e: &AnalyticsEngine,
        execution: i64,
    ) -> Result<(), AnalyticsError> {
        let f = RollupFilter::default;
        match self.kind {
            Kind::Realtime(s) => e.realtime(Duration::from_secs(s), f()).await.map(drop),
            Kind::Historical(span) => e.historical(span, f()).await.map(drop),
            Kind::Trends(p) => e.trends(p, f()).await.map(drop),
            Kind::Models(span) => e.models(span, f()).await.map(drop),
            Kind::Cost(span) => e.cost(span, f()).await.map(drop),
            Kind::Execution => e.execution(execution, 100, 0).await.map(drop),
        }
    }
}

/// p50 and p99 of `calls` sequential calls, seconds.
async fn time<F, Fut>(calls: usize, mut f: F) -> Result<[f64; 2], AnalyticsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), AnalyticsError>>,
{
    let mut took = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        f().await?;
        took.push(started.elapsed().as_secs_f64());
    }
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    Ok([at(0.5), at(0.99)])
}

/// Checks the answers at this scale against sums over the raw rows (one
/// SQL pass over every result) and that a rebuild reproduces the rollups.
async fn verify(storage: &Storage, engine: &AnalyticsEngine) -> anyhow::Result<String> {
    use crate::storage::rollup::{HOUR, MINUTE};
    let a = engine
        .historical(
            Span::Last(Duration::from_secs(30 * DAY)),
            RollupFilter::default(),
        )
        .await?;
    let (from, to) = (a.data.from, a.data.to);
    let raw = storage
        .raw_rollup(from, to, RollupFilter::default())
        .await?;
    let (mut count, mut passed, mut cost) = (0, 0, 0);
    for r in &raw {
        count += r.sums.count;
        passed += r.sums.passed;
        cost += r.sums.cost_nusd;
    }
    let t = &a.data.totals;
    let answers_match =
        t.count == count && t.passed == passed && (t.cost_usd - cost as f64 / 1e9).abs() < 1e-6;
    // Minute rows the rebuild keeps: those within the retention (older ones
    // stay until compaction drops them).
    let since = now_ms() - storage.minute_retention().as_millis() as i64 + 60_000;
    let all =
        |res: i64, from: i64| storage.rollup_rows(res, from, i64::MAX, RollupFilter::default());
    let before = (all(MINUTE, since).await?, all(HOUR, 0).await?);
    storage.rebuild_rollups().await?;
    let after = (all(MINUTE, since).await?, all(HOUR, 0).await?);
    let rebuilt = before == after;
    Ok(match (answers_match, rebuilt) {
        (true, true) => format!(
            "equal to raw rows over 30 days ({count} results) and a rebuild reproduces all {} rollup rows",
            before.0.len() + before.1.len()
        ),
        _ => format!(
            "MISMATCH: answer {}/{} vs raw {count}/{passed}; rebuild identical: {rebuilt}",
            t.count, t.passed
        ),
    })
}

/// A dashboard with seven panels refreshing every 10 s for an hour, on a
/// simulated clock (the caches' real TTLs, no waiting): the hit rate.
async fn dashboard(storage: &Storage) -> anyhow::Result<f64> {
    let metrics = Metrics::new()?;
    let base = Instant::now();
    let elapsed = Arc::new(AtomicU64::new(0));
    let clock = {
        let elapsed = elapsed.clone();
        Arc::new(move || base + Duration::from_secs(elapsed.load(Ordering::Relaxed)))
    };
    let engine =
        AnalyticsEngine::with_clock(storage.clone(), &metrics, AnalyticsConfig::default(), clock);
    let panels = [0usize, 1, 2, 5, 6, 8, 10]; // of QUERIES
    for _ in 0..360 {
        for &p in &panels {
            QUERIES[p].call(&engine, 1).await?;
        }
        elapsed.fetch_add(10, Ordering::Relaxed);
    }
    let (hits, lookups) = engine
        .cache_stats()
        .iter()
        .fold((0, 0), |(h, l), s| (h + s.hits, l + s.hits + s.misses));
    Ok(hits as f64 / lookups as f64)
}

/// Writer throughput (rows/s) storing the same rows with and without
/// rollup upkeep, four producers of 5,000-row commands each way; rounds
/// alternate (the host is noisy) and the medians are compared.
async fn writer(dir: &Path) -> anyhow::Result<(f64, f64, f64)> {
    let spec = HistorySpec {
        results: WRITER_ROWS,
        days: 30,
        per_execution: 2_000,
        now: now_ms(),
        seed: 11,
    };
    let plan = history::plan(&spec);
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut shares = Vec::new();
    for round in 0..2 * WRITER_ROUNDS {
        let rollups = round % 2 == 0;
        let db = dir.join("run-writer.db");
        remove_db(&db);
        let metrics = Metrics::new()?;
        let storage = Storage::open(&db, metrics.storage.clone())?;
        if !rollups {
            storage.disable_rollups();
        }
        let mut rows = Vec::with_capacity(WRITER_ROWS);
        for (i, e) in plan.iter().enumerate() {
            let (id, first) = storage
                .create_execution(NewExecution {
                    config: "{}".into(),
                    total: e.results as i64,
                    ..NewExecution::default()
                })
                .await?;
            rows.extend(history::rows(&spec, i, e, id, first));
        }
        let m = &metrics.storage;
        let (upkeep, commits) = (
            m.rollup_upkeep.get(),
            m.writer_commit_duration.get_sample_sum(),
        );
        let took = write_all(&storage, rows).await?;
        rates[round % 2].push(WRITER_ROWS as f64 / took.as_secs_f64());
        if rollups {
            // In the same run: the writer's time in rollups over its time in transactions.
            let spent = m.writer_commit_duration.get_sample_sum() - commits;
            shares.push((m.rollup_upkeep.get() - upkeep) / spent * 100.0);
        }
        storage.close().await;
        remove_db(&db);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((
        median(&mut rates[0]),
        median(&mut rates[1]),
        median(&mut shares),
    ))
}

/// The cached history database under `dir` (generated on first use).
pub(super) async fn history_db(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(
        "analytics-{HISTORY_RESULTS}-{}.db",
        crate::storage::schema_fingerprint()
    ));
    if path.exists() {
        return Ok(path);
    }
    tracing::warn!(path = %path.display(), "generating {HISTORY_RESULTS} results over 30 days (cached for later runs)");
    let partial = path.with_extension("partial");
    remove_db(&partial);
    let storage = Storage::open(&partial, Metrics::new()?.storage)?;
    let spec = HistorySpec {
        results: HISTORY_RESULTS,
        days: 30,
        per_execution: 2_000,
        now: now_ms(),
        seed: 42,
    };
    history::store(&storage, &spec, |_, _, _| {}).await?;
    storage.optimize().await?;
    storage.close().await;
    std::fs::rename(&partial, &path)?;
    remove_db(&partial);
    Ok(path)
}

/// The figures as a table.
pub fn table(f: &AnalyticsFigures) -> String {
    let mut out = format!(
        "analytics over {} results\n{:<28} {:>10} {:>10} {:>10} {:>10}\n",
        f.results, "query", "miss p50", "miss p99", "hit p50", "hit p99"
    );
    for q in &f.queries {
        out.push_str(&format!(
            "{:<28} {:>7.2} ms {:>7.2} ms {:>7.1} µs {:>7.1} µs\n",
            q.query, q.miss_ms[0], q.miss_ms[1], q.hit_us[0], q.hit_us[1]
        ));
    }
    out.push_str(&format!(
        "writer: {:.0} rows/s with rollups, {:.0} without; rollups {:.1} % of the writer's transaction time\ndashboard hit rate: {:.1} %\n",
        f.writer_with_rollups,
        f.writer_without_rollups,
        f.upkeep_cost_pct,
        f.dashboard_hit_rate * 100.0
    ));
    for (t, met) in &f.targets {
        out.push_str(&format!("  {t}: {}\n", if *met { "met" } else { "MISSED" }));
    }
    out
}
