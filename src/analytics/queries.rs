//! Real-time, historical, per-model and cost answers: fetch the rows of a
//! window's plan (concurrently), fold them per model and in total.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::try_join_all;
use serde::Serialize;

use super::figures::Figures;
use super::window::{Segment, Source, plan};
use super::{AnalyticsEngine, AnalyticsError, Answer, EXACT_PERCENTILES_UP_TO, Span, filter_key};
use crate::common::time::rfc3339;
use crate::storage::rollup::{HOUR, RollupSums, align};
use crate::storage::{RollupFilter, RollupRow, now_ms};

/// One provider and model's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFigures {
    /// Provider id.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// `GET /api/analytics/realtime`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Realtime {
    /// The window, seconds.
    pub window_seconds: u64,
    /// [from, to), unix ms.
    pub from: i64,
    /// End (now).
    pub to: i64,
    /// Results per second.
    pub throughput_per_sec: f64,
    /// Spending per hour at this window's rate, US dollars.
    pub cost_per_hour_usd: f64,
    /// Everything.
    pub totals: Figures,
    /// Per provider and model, most results first.
    pub models: Vec<ModelFigures>,
    /// Where the figures came from.
    pub source: Source,
}

/// `GET /api/analytics/historical`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Historical {
    /// [from, to), unix ms.
    pub from: i64,
    /// End.
    pub to: i64,
    /// Everything.
    pub totals: Figures,
    /// Per provider and model, most results first.
    pub models: Vec<ModelFigures>,
    /// Where the figures came from.
    pub source: Source,
}

/// `GET /api/analytics/models`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelsReport {
    /// [from, to), unix ms.
    pub from: i64,
    /// End.
    pub to: i64,
    /// Per provider and model, most results first.
    pub models: Vec<ModelFigures>,
    /// Where the figures came from.
    pub source: Source,
}

/// Spend of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spend {
    /// What it is (a model, a suite, a day).
    pub name: String,
    /// US dollars.
    pub cost_usd: f64,
    /// Results.
    pub count: i64,
    /// cost / count.
    pub cost_per_test_usd: f64,
}

/// `GET /api/analytics/cost`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostReport {
    /// [from, to), unix ms.
    pub from: i64,
    /// End.
    pub to: i64,
    /// Spent in the window.
    pub total_usd: f64,
    /// By provider/model, most first.
    pub by_model: Vec<Spend>,
    /// By suite (`inline` for suites posted inline), most first.
    pub by_suite: Vec<Spend>,
    /// By UTC day, oldest first.
    pub by_day: Vec<Spend>,
    /// The last 24 hours' spend.
    pub last_24h_usd: f64,
    /// That rate over 30 days.
    pub projected_monthly_usd: f64,
    /// Where the window's figures came from.
    pub source: Source,
}

impl AnalyticsEngine {
    /// The last `window` (5, 15 or 60 minutes).
    pub async fn realtime(
        &self,
        window: Duration,
        filter: RollupFilter,
    ) -> Result<Answer<Realtime>, AnalyticsError> {
        let key = format!("{}s {}", window.as_secs(), filter_key(&filter));
        let cache = &self.inner.caches.realtime;
        self.answer("realtime", cache, key, None, async {
            let (from, to) = Span::Last(window).bounds(now_ms());
            let w = self.window(from, to, &filter).await?;
            // Whole minutes: the current one counts as far as it went.
            let secs = ((now_ms().min(to) - from) as f64 / 1000.0).max(1.0);
            Ok(Realtime {
                window_seconds: window.as_secs(),
                from,
                to,
                throughput_per_sec: w.totals.count as f64 / secs,
                cost_per_hour_usd: w.totals.cost_usd * 3600.0 / secs,
                totals: w.totals,
                models: w.models,
                source: w.source,
            })
        })
        .await
    }

    /// Totals and per-model figures of any window.
    pub async fn historical(
        &self,
        span: Span,
        filter: RollupFilter,
    ) -> Result<Answer<Historical>, AnalyticsError> {
        let key = format!("{span:?} {}", filter_key(&filter));
        let cache = &self.inner.caches.historical;
        self.answer("historical", cache, key, None, async {
            let (from, to) = span.bounds(now_ms());
            let w = self.window(from, to, &filter).await?;
            Ok(Historical {
                from,
                to,
                totals: w.totals,
                models: w.models,
                source: w.source,
            })
        })
        .await
    }

    /// Per provider and model over a window.
    pub async fn models(
        &self,
        span: Span,
        filter: RollupFilter,
    ) -> Result<Answer<ModelsReport>, AnalyticsError> {
        let key = format!("{span:?} {}", filter_key(&filter));
        let cache = &self.inner.caches.models;
        self.answer("models", cache, key, None, async {
            let (from, to) = span.bounds(now_ms());
            let w = self.window(from, to, &filter).await?;
            Ok(ModelsReport {
                from,
                to,
                models: w.models,
                source: w.source,
            })
        })
        .await
    }

    /// Spend by model, suite and day, and the monthly projection.
    pub async fn cost(
        &self,
        span: Span,
        filter: RollupFilter,
    ) -> Result<Answer<CostReport>, AnalyticsError> {
        let key = format!("{span:?} {}", filter_key(&filter));
        let cache = &self.inner.caches.cost;
        self.answer("cost", cache, key, None, async {
            let now = now_ms();
            let (from, to) = span.bounds(now);
            let segments = plan(from, to, self.minute_since(now));
            let names = async {
                self.inner
                    .storage
                    .suite_names()
                    .await
                    .map_err(AnalyticsError::from)
            };
            let (rows, names) = tokio::try_join!(self.fetch(&segments, &filter), names)?;
            // The last 24 h in whole hours: part of these rows when the
            // window ends now (it always does when given as `window`).
            let (day_from, day_to) = Span::Last(Duration::from_secs(86_400)).bounds(now);
            let last_day = if to == day_to && from <= day_from {
                rows.iter()
                    .filter(|r| r.key.bucket_start >= day_from)
                    .cloned()
                    .collect()
            } else {
                self.fetch(&plan(day_from, day_to, self.minute_since(now)), &filter)
                    .await?
            };
            let suite_name = |id: i64| {
                names.iter().find(|(i, _)| *i == id).map_or_else(
                    || {
                        if id == 0 {
                            "inline".to_owned()
                        } else {
                            format!("suite {id}")
                        }
                    },
                    |(_, n)| n.clone(),
                )
            };
            let total: RollupSums = sum(rows.iter().map(|r| &r.sums));
            let last_24h = sum(last_day.iter().map(|r| &r.sums)).cost_usd();
            Ok(CostReport {
                from,
                to,
                total_usd: total.cost_usd(),
                by_model: spend(&rows, |r| format!("{}/{}", r.key.provider, r.key.model)),
                by_suite: spend(&rows, |r| suite_name(r.key.suite_id)),
                by_day: by_day(&rows),
                last_24h_usd: last_24h,
                projected_monthly_usd: last_24h * 30.0,
                source: Source::of(&segments),
            })
        })
        .await
    }

    /// The rows of every segment, fetched concurrently.
    pub(super) async fn fetch(
        &self,
        segments: &[Segment],
        filter: &RollupFilter,
    ) -> Result<Vec<RollupRow>, AnalyticsError> {
        let storage = &self.inner.storage;
        let parts = try_join_all(segments.iter().map(|s| async move {
            match *s {
                Segment::Tier {
                    resolution_s,
                    from,
                    to,
                } => {
                    storage
                        .rollup_rows(resolution_s, from, to, filter.clone())
                        .await
                }
                Segment::Raw { from, to } => storage.raw_rollup(from, to, filter.clone()).await,
            }
        }))
        .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// A window's totals and per-model figures; exact percentiles when it
    /// holds few results.
    async fn window(
        &self,
        from: i64,
        to: i64,
        filter: &RollupFilter,
    ) -> Result<Folded, AnalyticsError> {
        let segments = plan(from, to, self.minute_since(now_ms()));
        let rows = self.fetch(&segments, filter).await?;
        let mut models: BTreeMap<(String, String), RollupSums> = BTreeMap::new();
        for r in &rows {
            models
                .entry((r.key.provider.to_string(), r.key.model.to_string()))
                .or_default()
                .add(&r.sums);
        }
        let totals = sum(models.values());
        let mut exact = if totals.count > 0 && totals.count as usize <= EXACT_PERCENTILES_UP_TO {
            self.inner
                .storage
                .raw_latencies(from, to, filter.clone(), EXACT_PERCENTILES_UP_TO)
                .await?
        } else {
            None
        };
        let mut all: Option<Vec<i64>> = exact.as_ref().map(|v| v.iter().map(|(_, l)| *l).collect());
        let mut per_model: Vec<ModelFigures> = models
            .into_iter()
            .map(|((provider, model), sums)| {
                let name = format!("{provider}/{model}");
                let mut mine: Option<Vec<i64>> = exact.as_mut().map(|v| {
                    v.iter()
                        .filter(|(m, _)| *m == name)
                        .map(|(_, l)| *l)
                        .collect()
                });
                ModelFigures {
                    figures: Figures::of(&sums, mine.as_deref_mut()),
                    provider,
                    model,
                }
            })
            .collect();
        per_model.sort_by(|a, b| {
            b.figures
                .count
                .cmp(&a.figures.count)
                .then(a.model.cmp(&b.model))
        });
        Ok(Folded {
            totals: Figures::of(&totals, all.as_deref_mut()),
            models: per_model,
            source: Source::of(&segments),
        })
    }
}

/// A window folded.
struct Folded {
    totals: Figures,
    models: Vec<ModelFigures>,
    source: Source,
}

/// The sum of sums.
pub(super) fn sum<'a>(all: impl Iterator<Item = &'a RollupSums>) -> RollupSums {
    let mut total = RollupSums::default();
    for s in all {
        total.add(s);
    }
    total
}

/// Spend per group named by `name`, most first.
fn spend(rows: &[RollupRow], name: impl Fn(&RollupRow) -> String) -> Vec<Spend> {
    let mut groups: BTreeMap<String, RollupSums> = BTreeMap::new();
    for r in rows {
        groups.entry(name(r)).or_default().add(&r.sums);
    }
    let mut out: Vec<Spend> = groups
        .into_iter()
        .map(|(name, s)| to_spend(name, &s))
        .collect();
    out.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(a.name.cmp(&b.name)));
    out
}

fn to_spend(name: String, s: &RollupSums) -> Spend {
    Spend {
        name,
        cost_usd: s.cost_usd(),
        count: s.count,
        cost_per_test_usd: if s.count > 0 {
            s.cost_usd() / s.count as f64
        } else {
            0.0
        },
    }
}

/// Spend per UTC day (rows of any tier; raw edge rows count on their day).
fn by_day(rows: &[RollupRow]) -> Vec<Spend> {
    let mut days: BTreeMap<i64, RollupSums> = BTreeMap::new();
    for r in rows {
        let day = align(r.key.bucket_start, 24 * HOUR);
        days.entry(day).or_default().add(&r.sums);
    }
    days.into_iter()
        .map(|(day, s)| to_spend(rfc3339(day)[..10].to_owned(), &s))
        .collect()
}
