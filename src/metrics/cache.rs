//! Cache families, one label set per named `TtlCache`.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use super::register;

/// Handles shared by every `TtlCache`; each cache uses its own `cache` label.
#[derive(Clone)]
pub struct CacheMetrics {
    /// `promptgauge_cache_lookups_total{cache,result="hit|miss"}`
    pub lookups: IntCounterVec,
    /// `promptgauge_cache_evictions_total{cache,reason="capacity|expired"}`
    pub evictions: IntCounterVec,
    /// `promptgauge_cache_entries{cache}`
    pub entries: IntGaugeVec,
}

impl CacheMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        Ok(Self {
            lookups: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_cache_lookups_total",
                        "Cache lookups by cache and result (hit or miss; an expired entry is a miss).",
                    ),
                    &["cache", "result"],
                )?,
            )?,
            evictions: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_cache_evictions_total",
                        "Entries removed by the cache itself: capacity (full) or expired (time to live passed).",
                    ),
                    &["cache", "reason"],
                )?,
            )?,
            entries: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "promptgauge_cache_entries",
                        "Entries currently held, by cache.",
                    ),
                    &["cache"],
                )?,
            )?,
        })
    }
}
