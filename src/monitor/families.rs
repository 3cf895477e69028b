//! The metrics a collector holds and their labels: what reading the
//! registry and ranking bottlenecks both need.

use prometheus::core::Collector;
use prometheus::proto::Metric;

/// The value of label `name` on `m`.
pub(super) fn label<'a>(m: &'a Metric, name: &str) -> &'a str {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map_or("", |l| l.value())
}

/// Every metric of a collector (one family for a `*Vec`).
pub(super) fn metrics_of(c: &dyn Collector) -> Vec<Metric> {
    c.collect()
        .into_iter()
        .flat_map(|mut f| f.take_metric())
        .collect()
}
