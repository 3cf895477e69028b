//! [`Client`]: every provider call goes through here, for the response
//! cache and the provider metrics.
//!
//! The cache (SQLite, `provider_cache`) is keyed by a hash of provider id,
//! model, endpoint, request parameters and the rendered prompt, like
//! promptfoo's, so re-running a suite only pays for what changed. Only
//! successes are stored; a hit is marked `cached`, costs nothing and has no
//! latency. A cache that fails (database busy) degrades to a miss: the call
//! is made, never failed, because of the cache.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Completion, Provider, ProviderError, RateLimitInfo, TokenUsage};
use crate::hash::sha256_hex;
use crate::metrics::ProviderMetrics;
use crate::storage::{CachedResponse, NewCacheEntry, Storage, now_ms};

/// How long a cached response is served (promptfoo's default is 14 days).
pub const CACHE_TTL: Duration = Duration::from_secs(14 * 24 * 3600);

/// Calls providers with caching and metrics. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    storage: Storage,
    metrics: ProviderMetrics,
}

impl Client {
    /// A client storing its cache in `storage`.
    pub fn new(storage: Storage, metrics: ProviderMetrics) -> Self {
        Self { storage, metrics }
    }

    /// One completion of `prompt`, from the cache when `use_cache` allows.
    pub async fn complete(
        &self,
        provider: &dyn Provider,
        prompt: &str,
        use_cache: bool,
    ) -> Result<Completion, ProviderError> {
        let key = (use_cache && provider.cacheable()).then(|| cache_key(provider, prompt));
        if let Some(key) = &key {
            match self.storage.cache_get(key.clone()).await {
                Ok(Some(hit)) => {
                    self.metrics.cache_lookups.with_label_values(&["hit"]).inc();
                    return Ok(from_cache(hit));
                }
                Ok(None) => self
                    .metrics
                    .cache_lookups
                    .with_label_values(&["miss"])
                    .inc(),
                Err(e) => {
                    tracing::warn!(error = %e, "response cache lookup failed; calling the provider");
                    self.metrics
                        .cache_lookups
                        .with_label_values(&["miss"])
                        .inc();
                }
            }
        }
        let started = Instant::now();
        let result = provider.complete(prompt).await;
        self.record(provider, &result, started.elapsed());
        if let (Ok(c), Some(key)) = (&result, key) {
            let entry = NewCacheEntry {
                key,
                provider: provider.id().to_owned(),
                model: provider.model().to_owned(),
                response: CachedResponse {
                    output: c.output.clone(),
                    finish_reason: c.finish_reason.clone(),
                    input_tokens: c.usage.input,
                    output_tokens: c.usage.output,
                },
                expires_at: Some(now_ms() + CACHE_TTL.as_millis() as i64),
            };
            if let Err(e) = self.storage.cache_put(entry).await {
                tracing::warn!(error = %e, "could not store the response in the cache");
            }
        }
        result
    }

    fn record(&self, p: &dyn Provider, result: &Result<Completion, ProviderError>, took: Duration) {
        let model = self.metrics.model_label(p.model());
        let labels = [p.kind(), model.as_str()];
        let status = match result {
            Ok(_) => "success",
            Err(e) => e.status_label(),
        };
        self.metrics
            .requests
            .with_label_values(&[labels[0], labels[1], status])
            .inc();
        self.metrics
            .duration
            .with_label_values(&labels)
            .observe(took.as_secs_f64());
        if let Ok(c) = result {
            for (kind, n) in [("input", c.usage.input), ("output", c.usage.output)] {
                self.metrics
                    .tokens
                    .with_label_values(&[labels[0], labels[1], kind])
                    .inc_by(n);
            }
            self.metrics
                .cost
                .with_label_values(&labels)
                .inc_by(c.cost_usd);
        }
    }
}

fn from_cache(hit: CachedResponse) -> Completion {
    Completion {
        output: hit.output,
        latency: Duration::ZERO,
        usage: TokenUsage {
            input: hit.input_tokens,
            output: hit.output_tokens,
        },
        cost_usd: 0.0,
        finish_reason: hit.finish_reason,
        cached: true,
        rate_limit: RateLimitInfo::default(),
    }
}

/// Hex sha256 of what determines the answer: provider id, model, endpoint,
/// parameters (keys sorted) and the rendered prompt.
pub fn cache_key(provider: &dyn Provider, prompt: &str) -> String {
    let identity = json!({
        "id": provider.id(),
        "model": provider.model(),
        "endpoint": provider.endpoint(),
        "params": canonical(&Value::Object(provider.params().clone())),
        "prompt": prompt,
    });
    sha256_hex(canonical(&identity).to_string().as_bytes())
}

/// `v` with every object's keys sorted, so equal configs hash equally.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&o[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}
