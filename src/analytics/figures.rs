//! The figures every analytics answer is made of, folded from rollup rows:
//! counts and rates, latency percentiles (exact from raw latencies, or
//! interpolated in histogram buckets like Prometheus's
//! `histogram_quantile`), tokens and cost. Pure: no IO.

use serde::Serialize;

use crate::storage::rollup::{FINITE_BUCKETS, LatencyHistogram, RollupSums, bucket_upper_ms};

/// Latency of a set of results.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// Mean, ms.
    pub mean_ms: Option<f64>,
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// `exact` (from every result's latency) or `histogram` (interpolated
    /// within log-spaced buckets, like Prometheus's `histogram_quantile`).
    pub method: &'static str,
    /// With `histogram`: the most each percentile can be off, ms (the width
    /// of the bucket it fell in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_error_ms: Option<[f64; 3]>,
}

/// Counts, rates, latency, tokens and cost of a set of results.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Results.
    pub count: i64,
    /// Passed.
    pub passed: i64,
    /// Failed an assertion.
    pub failed: i64,
    /// The provider call failed.
    pub errors: i64,
    /// passed / count (0 without results).
    pub pass_rate: f64,
    /// errors / count.
    pub error_rate: f64,
    /// Latency.
    pub latency: Latency,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// US dollars.
    pub cost_usd: f64,
    /// cost / count.
    pub cost_per_test_usd: f64,
    /// cost / passed: what a passing answer costs.
    pub cost_per_passing_test_usd: Option<f64>,
}

impl Figures {
    /// The figures of `sums`, percentiles from its histogram, or from
    /// `exact` latencies when the caller has them all.
    pub fn of(sums: &RollupSums, exact: Option<&mut [i64]>) -> Self {
        let ratio = |a: i64| {
            if sums.count > 0 {
                a as f64 / sums.count as f64
            } else {
                0.0
            }
        };
        let cost = sums.cost_usd();
        Self {
            count: sums.count,
            passed: sums.passed,
            failed: sums.failed,
            errors: sums.errors,
            pass_rate: ratio(sums.passed),
            error_rate: ratio(sums.errors),
            latency: latency(sums, exact),
            input_tokens: sums.input_tokens,
            output_tokens: sums.output_tokens,
            cost_usd: cost,
            cost_per_test_usd: if sums.count > 0 {
                cost / sums.count as f64
            } else {
                0.0
            },
            cost_per_passing_test_usd: (sums.passed > 0).then(|| cost / sums.passed as f64),
        }
    }
}

fn latency(sums: &RollupSums, exact: Option<&mut [i64]>) -> Latency {
    let mean_ms = (sums.count > 0).then(|| sums.latency_sum_ms as f64 / sums.count as f64);
    match exact {
        Some(values) if !values.is_empty() => {
            values.sort_unstable();
            let at = |q| Some(exact_quantile(values, q));
            Latency {
                mean_ms,
                p50_ms: at(0.5),
                p95_ms: at(0.95),
                p99_ms: at(0.99),
                method: "exact",
                max_error_ms: None,
            }
        }
        _ => {
            let q = [0.5, 0.95, 0.99].map(|q| bucket_quantile(&sums.latency, q));
            Latency {
                mean_ms,
                p50_ms: q[0].map(|(v, _)| v),
                p95_ms: q[1].map(|(v, _)| v),
                p99_ms: q[2].map(|(v, _)| v),
                method: "histogram",
                max_error_ms: q
                    .iter()
                    .all(Option::is_some)
                    .then(|| q.map(|x| x.map_or(0.0, |(_, e)| e))),
            }
        }
    }
}

/// The `q` quantile of sorted values by nearest rank.
pub fn exact_quantile(sorted: &[i64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// The `q` quantile interpolated within its bucket, and the bucket's
/// width (the most it can be off); `None` without observations. Like
/// `histogram_quantile`: linear within the bucket holding rank `q * n`,
/// the first bucket starting at 0, and the +Inf bucket answering its
/// lower bound (the highest finite one).
pub fn bucket_quantile(h: &LatencyHistogram, q: f64) -> Option<(f64, f64)> {
    let total = h.count();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let (mut below, mut lower) = (0u64, 0.0);
    for (k, &n) in h.0.iter().enumerate() {
        let n = u64::from(n);
        if n > 0 && (below + n) as f64 >= rank {
            if k == FINITE_BUCKETS {
                return Some((lower, f64::INFINITY));
            }
            let upper = bucket_upper_ms(k);
            let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
            return Some((lower + (upper - lower) * within, upper - lower));
        }
        below += n;
        if k < FINITE_BUCKETS {
            lower = bucket_upper_ms(k);
        }
    }
    Some((lower, 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[i64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::default();
        for v in values {
            h.observe(*v);
        }
        h
    }

    #[test]
    fn bucket_quantiles_interpolate_like_histogram_quantile() {
        // 100 values all in (861, 1024]: rank 95 is 95 % into that bucket.
        let h = histogram(&[1000; 100]);
        let (p95, width) = bucket_quantile(&h, 0.95).unwrap();
        let (lo, hi) = (bucket_upper_ms(39), bucket_upper_ms(40));
        assert!((p95 - (lo + (hi - lo) * 0.95)).abs() < 1e-9, "{p95}");
        assert!((width - (hi - lo)).abs() < 1e-9);
        assert!(p95 < hi, "never the bucket's upper edge");
        assert_eq!(bucket_quantile(&LatencyHistogram::default(), 0.5), None);
        // Beyond the last finite bucket: its bound, as Prometheus answers.
        let h = histogram(&[10_000_000]);
        assert_eq!(bucket_quantile(&h, 0.5).unwrap().0, bucket_upper_ms(79));
    }

    #[test]
    fn estimates_stay_within_a_bucket_of_the_exact_value() {
        let mut values: Vec<i64> = (0..5000).map(|i| 40 + (i * 7919) % 9000).collect();
        let h = histogram(&values);
        values.sort_unstable();
        for q in [0.5, 0.95, 0.99] {
            let exact = exact_quantile(&values, q);
            let (est, width) = bucket_quantile(&h, q).unwrap();
            assert!(
                (est - exact).abs() <= width,
                "q{q}: {est} vs {exact} (bucket {width})"
            );
        }
    }

    #[test]
    fn figures_say_how_percentiles_were_computed() {
        let mut sums = RollupSums::default();
        for (i, l) in [100i64, 200, 300, 400].iter().enumerate() {
            sums.observe(&crate::storage::rollup::ResultFacts {
                created_at: 0,
                suite_id: 0,
                provider: "p",
                model: "m",
                passed: i < 3,
                failure_reason: if i == 3 { 1 } else { 0 },
                latency_ms: *l,
                input_tokens: 1,
                output_tokens: 2,
                cost_usd: 0.25,
            });
        }
        let mut exact = vec![400, 100, 300, 200];
        let f = Figures::of(&sums, Some(&mut exact));
        assert_eq!((f.count, f.passed, f.failed), (4, 3, 1));
        assert_eq!(f.pass_rate, 0.75);
        assert_eq!(f.latency.method, "exact");
        assert_eq!(f.latency.p50_ms, Some(200.0));
        assert_eq!(f.latency.p99_ms, Some(400.0));
        assert_eq!(f.cost_usd, 1.0);
        assert_eq!(f.cost_per_passing_test_usd, Some(1.0 / 3.0));
        let h = Figures::of(&sums, None);
        assert_eq!(h.latency.method, "histogram");
        assert!(h.latency.max_error_ms.is_some());
        assert_eq!(h.latency.mean_ms, Some(250.0));
    }
}
