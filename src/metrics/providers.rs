//! Provider families: requests by outcome, latency, tokens, cost, cache.

use prometheus::{CounterVec, Gauge, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::{BoundedLabels, PROVIDER_BUCKETS, register};

/// Distinct `model` label values kept; later ones are reported as `other`.
const MAX_MODELS: usize = 64;

/// Handles for provider calls.
#[derive(Clone)]
pub struct ProviderMetrics {
    /// `promptgauge_provider_requests_total{provider,model,status}`
    pub requests: IntCounterVec,
    /// `promptgauge_provider_request_duration_seconds{provider,model}`
    pub duration: HistogramVec,
    /// `promptgauge_provider_tokens_total{provider,model,kind}`
    pub tokens: IntCounterVec,
    /// `promptgauge_provider_cost_usd_total{provider,model}`
    pub cost: CounterVec,
    /// `promptgauge_provider_cache_lookups_total{result}`
    pub cache_lookups: IntCounterVec,
    /// `promptgauge_cost_budget_usd_per_hour` (`COST_BUDGET_USD_PER_HOUR`; 0 when unset)
    pub cost_budget: Gauge,
    models: BoundedLabels,
}

impl ProviderMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let pm = &["provider", "model"];
        let m = Self {
            requests: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_provider_requests_total",
                        "Provider calls by provider family, model and outcome (success, error, rate_limited, timeout).",
                    ),
                    &["provider", "model", "status"],
                )?,
            )?,
            duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "promptgauge_provider_request_duration_seconds",
                        "Time of one provider call, cache hits excluded.",
                    )
                    .buckets(PROVIDER_BUCKETS.to_vec()),
                    pm,
                )?,
            )?,
            tokens: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_provider_tokens_total",
                        "Tokens used by provider calls, by kind (input or output).",
                    ),
                    &["provider", "model", "kind"],
                )?,
            )?,
            cost: register(
                r,
                CounterVec::new(
                    Opts::new(
                        "promptgauge_provider_cost_usd_total",
                        "Money spent on provider calls, in US dollars.",
                    ),
                    pm,
                )?,
            )?,
            cost_budget: register(
                r,
                Gauge::new(
                    "promptgauge_cost_budget_usd_per_hour",
                    "Spending per hour on provider calls that alerts compare with (COST_BUDGET_USD_PER_HOUR); 0 when unset.",
                )?,
            )?,
            cache_lookups: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_provider_cache_lookups_total",
                        "Response cache lookups by result (hit or miss).",
                    ),
                    &["result"],
                )?,
            )?,
            models: BoundedLabels::new(MAX_MODELS),
        };
        for result in ["hit", "miss"] {
            m.cache_lookups.with_label_values(&[result]);
        }
        Ok(m)
    }

    /// The `model` label for `model` (`other` past 64 distinct models).
    pub fn model_label(&self, model: &str) -> String {
        self.models.get(model)
    }

    /// Creates a provider's series at zero, so ratios exist before errors.
    pub fn preinit(&self, provider: &str, model: &str) {
        let model = self.model_label(model);
        for status in ["success", "error", "rate_limited", "timeout"] {
            self.requests.with_label_values(&[provider, &model, status]);
        }
        self.duration.with_label_values(&[provider, &model]);
        self.cost.with_label_values(&[provider, &model]);
        for kind in ["input", "output"] {
            self.tokens.with_label_values(&[provider, &model, kind]);
        }
    }
}
