//! Bottlenecks: components ranked by tail latency and by their share of
//! the time spent, over a window, from histograms a subsystem registers as
//! sources. A new subsystem adds its histograms with
//! [`super::Monitor::add_bottleneck_source`]; the monitor needs no change.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use prometheus::core::Collector;
use serde::Serialize;

use super::families::{label, metrics_of};
use super::histogram::HistogramReading;

/// Every component of `kind` added up (all HTTP routes, say).
pub fn total_of(readings: &Readings, kind: &str) -> HistogramReading {
    let prefix = format!("{kind} ");
    let mut total = HistogramReading::default();
    for (key, h) in readings {
        if key == kind || key.starts_with(&prefix) {
            total.add(h);
        }
    }
    total
}

/// A histogram family whose label sets are components.
pub struct Source {
    /// The kind of component (`http`, `provider`, `db_read`, ...).
    pub kind: &'static str,
    /// The labels that name a component within the family, joined by a space.
    pub labels: &'static [&'static str],
    /// The histogram (a `Histogram` or `HistogramVec` handle).
    pub collector: Box<dyn Collector>,
}

impl Source {
    /// A source over `collector`.
    pub fn new(
        kind: &'static str,
        labels: &'static [&'static str],
        collector: impl Collector + 'static,
    ) -> Self {
        Self {
            kind,
            labels,
            collector: Box::new(collector),
        }
    }
}

/// Cumulative readings of every component: `kind/name` -> histogram.
pub type Readings = BTreeMap<String, HistogramReading>;

/// Reads every source.
pub fn read(sources: &[Source]) -> Readings {
    let mut out = Readings::new();
    for s in sources {
        for m in metrics_of(s.collector.as_ref()) {
            let mut key = String::with_capacity(48);
            key.push_str(s.kind);
            for l in s.labels {
                key.push(' ');
                key.push_str(label(&m, l));
            }
            let h = HistogramReading::from_proto(m.get_histogram());
            match out.entry(key) {
                Entry::Vacant(e) => {
                    e.insert(h);
                }
                Entry::Occupied(mut e) => e.get_mut().add(&h),
            }
        }
    }
    out
}

/// One component over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bottleneck {
    /// `http GET /api/executions`, `provider openai:gpt-4o`, ...
    pub component: String,
    /// Observations in the window.
    pub count: u64,
    /// Mean, seconds.
    pub mean_seconds: f64,
    /// p95, seconds (bucket interpolation, as `histogram_quantile`).
    pub p95_seconds: f64,
    /// p99, seconds.
    pub p99_seconds: f64,
    /// Time spent in all, seconds.
    pub total_seconds: f64,
    /// Share of the time spent by every component (0-1).
    pub share: f64,
}

/// Components active between `earlier` and `now`, slowest p95 first.
pub fn rank(now: &Readings, earlier: &Readings) -> Vec<Bottleneck> {
    let deltas: Vec<(&String, HistogramReading)> = now
        .iter()
        .map(|(k, h)| {
            let d = match earlier.get(k) {
                Some(e) => h.since(e),
                None => h.clone(),
            };
            (k, d)
        })
        .filter(|(_, d)| d.count > 0)
        .collect();
    let total: f64 = deltas.iter().map(|(_, d)| d.sum).sum();
    let mut out: Vec<Bottleneck> = deltas
        .into_iter()
        .map(|(k, d)| Bottleneck {
            component: k.clone(),
            count: d.count,
            mean_seconds: d.mean().unwrap_or(0.0),
            p95_seconds: d.quantile(0.95).unwrap_or(0.0),
            p99_seconds: d.quantile(0.99).unwrap_or(0.0),
            total_seconds: d.sum,
            share: if total > 0.0 { d.sum / total } else { 0.0 },
        })
        .collect();
    out.sort_by(|a, b| {
        b.p95_seconds
            .total_cmp(&a.p95_seconds)
            .then(b.share.total_cmp(&a.share))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec};

    #[test]
    fn components_are_ranked_by_p95_with_their_share_of_time() {
        let h = HistogramVec::new(
            HistogramOpts::new("t_seconds", "t").buckets(vec![0.01, 0.1, 1.0, 10.0]),
            &["route"],
        )
        .unwrap();
        let sources = [Source::new("http", &["route"], h.clone())];
        h.with_label_values(&["/old"]).observe(5.0);
        let before = read(&sources);
        for _ in 0..10 {
            h.with_label_values(&["/fast"]).observe(0.005);
        }
        h.with_label_values(&["/slow"]).observe(0.5);
        h.with_label_values(&["/slow"]).observe(0.7);
        let ranked = rank(&read(&sources), &before);
        let names: Vec<&str> = ranked.iter().map(|b| b.component.as_str()).collect();
        assert_eq!(
            names,
            ["http /slow", "http /fast"],
            "/old saw nothing in the window"
        );
        let slow = &ranked[0];
        assert_eq!(slow.count, 2);
        assert!((slow.total_seconds - 1.2).abs() < 1e-9);
        assert!((slow.share - 1.2 / 1.25).abs() < 1e-9);
        // Both in (0.1, 1]: rank 1.9 of 2 -> 0.1 + 0.9 * 0.95.
        assert!((slow.p95_seconds - (0.1 + 0.9 * 0.95)).abs() < 1e-9);
    }
}
