//! Histogram readings and their arithmetic: sums across label sets,
//! deltas between two readings, and quantiles computed exactly as
//! Prometheus's `histogram_quantile` does, so the monitor's p95 agrees with
//! the alert rules that read the same buckets.

use prometheus::proto;

/// Cumulative bucket counts of a histogram (or of several with the same
/// buckets, summed), as read at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramReading {
    /// Finite upper bounds, ascending.
    pub bounds: Vec<f64>,
    /// Observations at or below each bound (cumulative).
    pub cumulative: Vec<u64>,
    /// All observations (the `+Inf` bucket).
    pub count: u64,
    /// Sum of all observations.
    pub sum: f64,
}

impl HistogramReading {
    /// From the client library's protobuf form.
    pub fn from_proto(h: &proto::Histogram) -> Self {
        let buckets = h.get_bucket();
        Self {
            bounds: buckets
                .iter()
                .map(|b| b.upper_bound())
                .filter(|b| b.is_finite())
                .collect(),
            cumulative: buckets
                .iter()
                .filter(|b| b.upper_bound().is_finite())
                .map(|b| b.cumulative_count())
                .collect(),
            count: h.get_sample_count(),
            sum: h.get_sample_sum(),
        }
    }

    /// Adds `other` (same buckets) into this one: `sum by (le)`.
    pub fn add(&mut self, other: &Self) {
        if self.bounds.is_empty() && self.count == 0 {
            *self = other.clone();
            return;
        }
        if self.bounds != other.bounds {
            return;
        }
        for (a, b) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    /// What was observed between `earlier` and this reading. A reset (a
    /// count going down) counts everything in this reading, as `increase()`
    /// does.
    pub fn since(&self, earlier: &Self) -> Self {
        if earlier.bounds != self.bounds || earlier.count > self.count {
            return self.clone();
        }
        Self {
            bounds: self.bounds.clone(),
            cumulative: self
                .cumulative
                .iter()
                .zip(&earlier.cumulative)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            count: self.count - earlier.count,
            sum: (self.sum - earlier.sum).max(0.0),
        }
    }

    /// The `q` quantile (0-1) with `histogram_quantile`'s linear
    /// interpolation inside the bucket; `None` without observations.
    ///
    /// As in Prometheus: the rank is `q x count`; the first bucket whose
    /// cumulative count reaches it holds the answer; a rank in the `+Inf`
    /// bucket answers the highest finite bound; the first bucket starts at 0.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || self.bounds.is_empty() || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * self.count as f64;
        let Some(b) = self.cumulative.iter().position(|&c| c as f64 >= rank) else {
            return self.bounds.last().copied();
        };
        let end = self.bounds[b];
        if b == 0 && end <= 0.0 {
            return Some(end);
        }
        let (start, below) = if b == 0 {
            (0.0, 0)
        } else {
            (self.bounds[b - 1], self.cumulative[b - 1])
        };
        let in_bucket = (self.cumulative[b] - below) as f64;
        if in_bucket == 0.0 {
            return Some(end);
        }
        Some(start + (end - start) * ((rank - below as f64) / in_bucket))
    }

    /// Mean of the observations.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(bounds: &[f64], cumulative: &[u64], count: u64, sum: f64) -> HistogramReading {
        HistogramReading {
            bounds: bounds.to_vec(),
            cumulative: cumulative.to_vec(),
            count,
            sum,
        }
    }

    const B: &[f64] = &[0.1, 0.5, 1.0, 5.0];

    #[test]
    fn quantiles_interpolate_like_histogram_quantile() {
        // 100 observations: 50 <= 0.1, 30 in (0.1, 0.5], 15 in (0.5, 1], 5 in (1, 5].
        let h = reading(B, &[50, 80, 95, 100], 100, 40.0);
        // histogram_quantile(0.95, ...): rank 95 is reached in the (0.5, 1]
        // bucket exactly at its top: 0.5 + 0.5 * (95-80)/15 = 1.0.
        assert_eq!(h.quantile(0.95), Some(1.0));
        // rank 90: 0.5 + 0.5 * (90-80)/15 = 0.8333...
        assert!((h.quantile(0.90).unwrap() - (0.5 + 0.5 * 10.0 / 15.0)).abs() < 1e-12);
        // rank 25 in the first bucket, which starts at 0: 0.1 * 25/50.
        assert!((h.quantile(0.25).unwrap() - 0.05).abs() < 1e-12);
        // rank 99: 1 + 4 * (99-95)/5 = 4.2.
        assert!((h.quantile(0.99).unwrap() - 4.2).abs() < 1e-12);
        assert_eq!(h.mean(), Some(0.4));
    }

    #[test]
    fn a_rank_in_the_inf_bucket_answers_the_highest_finite_bound() {
        // 10 observations, 3 above 5 s.
        let h = reading(B, &[2, 4, 6, 7], 10, 90.0);
        assert_eq!(h.quantile(0.95), Some(5.0));
        assert_eq!(reading(B, &[0, 0, 0, 0], 0, 0.0).quantile(0.95), None);
    }

    #[test]
    fn deltas_cover_only_the_interval_and_survive_a_reset() {
        let before = reading(B, &[50, 80, 95, 100], 100, 40.0);
        let after = reading(B, &[50, 80, 95, 120], 130, 190.0);
        let d = after.since(&before);
        // Only the 20 slow requests of the interval (and 10 above 5 s).
        assert_eq!(d, reading(B, &[0, 0, 0, 20], 30, 150.0));
        assert_eq!(d.quantile(0.5), Some(1.0 + 4.0 * (15.0 / 20.0)));
        assert_eq!(d.quantile(0.95), Some(5.0));
        let reset = reading(B, &[1, 1, 1, 1], 1, 0.05);
        assert_eq!(reset.since(&after), reset);
    }

    #[test]
    fn readings_with_the_same_buckets_add_up() {
        let mut total = HistogramReading::default();
        total.add(&reading(B, &[1, 2, 3, 4], 4, 2.0));
        total.add(&reading(B, &[0, 1, 1, 1], 2, 9.0));
        assert_eq!(total, reading(B, &[1, 3, 4, 5], 6, 11.0));
    }
}
