//! Trends: a period in aligned buckets (an hour in minutes, a day in hours,
//! a week or a month in days, the last one in progress), and how it
//! changed against the period before, from one read of the tier.

use std::time::Duration;

use serde::Serialize;

use super::figures::{Figures, bucket_quantile};
use super::queries::sum;
use super::{AnalyticsEngine, AnalyticsError, Answer, filter_key};
use crate::storage::rollup::{HOUR, MINUTE, RollupSums, align};
use crate::storage::{RollupFilter, now_ms};

/// A trend's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// 60 one-minute buckets.
    Hour,
    /// 24 one-hour buckets.
    Day,
    /// 7 one-day buckets.
    Week,
    /// 30 one-day buckets.
    Month,
}

impl Period {
    /// Every period, by name.
    pub const NAMES: [&'static str; 4] = ["hour", "day", "week", "month"];

    /// Parses `hour`, `day`, `week`, `month`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hour" => Some(Period::Hour),
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// (bucket length in seconds, buckets, tier that holds them).
    fn shape(self) -> (i64, i64, i64) {
        match self {
            Period::Hour => (MINUTE, 60, MINUTE),
            Period::Day => (HOUR, 24, HOUR),
            Period::Week => (24 * HOUR, 7, HOUR),
            Period::Month => (24 * HOUR, 30, HOUR),
        }
    }

    /// How long its answer is cached: longer periods move more slowly.
    fn ttl(self) -> Duration {
        Duration::from_secs(match self {
            Period::Hour => 300,
            Period::Day => 600,
            Period::Week => 1200,
            Period::Month => 1800,
        })
    }
}

/// One bucket of a trend.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrendBucket {
    /// Its start, unix ms.
    pub start: i64,
    /// Results.
    pub count: i64,
    /// passed / count.
    pub pass_rate: f64,
    /// errors / count.
    pub error_rate: f64,
    /// Latency p50, ms (histogram).
    pub p50_ms: Option<f64>,
    /// Latency p95, ms (histogram).
    pub p95_ms: Option<f64>,
    /// US dollars.
    pub cost_usd: f64,
}

/// The period against the one before. Counts and cost compare per hour:
/// the current period is still going.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Results per hour, percent (None when the previous period had none).
    pub count_per_hour_pct: Option<f64>,
    /// Pass rate, percentage points.
    pub pass_rate_points: f64,
    /// Latency p95, percent.
    pub p95_pct: Option<f64>,
    /// Cost per hour, percent.
    pub cost_per_hour_pct: Option<f64>,
}

/// `GET /api/analytics/trends`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trends {
    /// `hour`, `day`, `week` or `month`.
    pub period: &'static str,
    /// Bucket length, seconds.
    pub bucket_seconds: i64,
    /// Oldest first; the last one is in progress.
    pub buckets: Vec<TrendBucket>,
    /// The current period's buckets, [from, to), unix ms; the previous
    /// period is as long, just before.
    pub from: i64,
    /// End (the end of the bucket in progress).
    pub to: i64,
    /// The current period (its last bucket in progress).
    pub current: Figures,
    /// The one before it.
    pub previous: Figures,
    /// How it moved.
    pub change: Change,
}

impl AnalyticsEngine {
    /// The trend of `period`.
    pub async fn trends(
        &self,
        period: Period,
        filter: RollupFilter,
    ) -> Result<Answer<Trends>, AnalyticsError> {
        let key = format!("{} {}", period.name(), filter_key(&filter));
        let cache = &self.inner.caches.trends;
        self.answer("trends", cache, key, Some(period.ttl()), async {
            let now = now_ms();
            let (bucket_s, n, tier) = period.shape();
            let bucket_ms = bucket_s * 1000;
            let end = align(now, bucket_s) + bucket_ms;
            let start = end - n * bucket_ms;
            // One read of the tier: this period's buckets and the one before.
            let rows = self
                .inner
                .storage
                .rollup_rows(tier, start - n * bucket_ms, end, filter.clone())
                .await?;
            let mut buckets: Vec<RollupSums> = vec![RollupSums::default(); n as usize];
            let mut before = RollupSums::default();
            for r in &rows {
                if r.key.bucket_start < start {
                    before.add(&r.sums);
                } else if let Some(b) =
                    buckets.get_mut(((r.key.bucket_start - start) / bucket_ms) as usize)
                {
                    b.add(&r.sums);
                }
            }
            let current = Figures::of(&sum(buckets.iter()), None);
            let previous = Figures::of(&before, None);
            // The current period is still going: compare rates, not sums.
            let hours = |ms: i64| (ms as f64 / 3_600_000.0).max(1.0 / 60.0);
            let change = change(
                &current,
                hours(now - start),
                &previous,
                hours(n * bucket_ms),
            );
            Ok(Trends {
                period: period.name(),
                bucket_seconds: bucket_s,
                buckets: buckets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| bucket(start + i as i64 * bucket_ms, s))
                    .collect(),
                from: start,
                to: end,
                change,
                current,
                previous,
            })
        })
        .await
    }
}

fn bucket(start: i64, s: &RollupSums) -> TrendBucket {
    let f = Figures::of(s, None);
    TrendBucket {
        start,
        count: s.count,
        pass_rate: f.pass_rate,
        error_rate: f.error_rate,
        p50_ms: bucket_quantile(&s.latency, 0.5).map(|(v, _)| v),
        p95_ms: bucket_quantile(&s.latency, 0.95).map(|(v, _)| v),
        cost_usd: s.cost_usd(),
    }
}

/// The current period (`now_hours` elapsed) against the previous one
/// (`before_hours`): counts and cost per hour, pass rate, p95.
fn change(now: &Figures, now_hours: f64, before: &Figures, before_hours: f64) -> Change {
    let pct = |a: f64, b: f64| (b != 0.0).then(|| (a - b) / b * 100.0);
    Change {
        count_per_hour_pct: pct(
            now.count as f64 / now_hours,
            before.count as f64 / before_hours,
        ),
        pass_rate_points: (now.pass_rate - before.pass_rate) * 100.0,
        p95_pct: match (now.latency.p95_ms, before.latency.p95_ms) {
            (Some(a), Some(b)) => pct(a, b),
            _ => None,
        },
        cost_per_hour_pct: pct(now.cost_usd / now_hours, before.cost_usd / before_hours),
    }
}
