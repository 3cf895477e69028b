//! `mock:<name>`: a simulated model for the embedded default, demos and
//! load tests. Nothing leaves the process.
//!
//! Config (all optional):
//! - `latency: {medianMs, p99Ms}` log-normal latency (default 300 / 1500),
//!   or `latencyMs` for a fixed one;
//! - `errorRate`, `rateLimitRate` (0..1): share of calls answered with a
//!   500 or a 429 (`retryAfterMs`, default 1000);
//! - `seed`: makes the draws and the generated outputs repeatable;
//! - `responses: [{match: <regex>, output: <text>}]`: canned outputs by
//!   a JavaScript regex on the prompt, first match wins; `output`: one fixed output;
//!   otherwise a deterministic pseudo-answer derived from seed and prompt;
//! - `model` (pricing and labels; default the name after `mock:`),
//!   `pricing`, `finishReason` (default `stop`).

use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use serde_json::{Map, Value};

use super::pricing::{Pricing, resolve};
use super::{
    BoxFuture, Completion, Provider, ProviderError, RateLimitInfo, TokenUsage, config_f64,
    estimate_tokens,
};
use crate::suite::ProviderSpec;

/// z-score of the 99th percentile of a standard normal.
const Z_99: f64 = 2.326_347_874;
const KEYS: &[&str] = &[
    "latency",
    "latencyMs",
    "errorRate",
    "rateLimitRate",
    "retryAfterMs",
    "seed",
    "responses",
    "output",
    "model",
    "pricing",
    "finishReason",
];
const WORDS: &[&str] = &[
    "the", "answer", "is", "based", "on", "context", "a", "clear", "result", "with", "evidence",
    "from", "the", "prompt", "and", "a", "short", "summary", "of", "key", "points", "which",
    "covers", "cost", "quality", "latency", "for", "each", "model", "tested", "today",
];

/// Latency model.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Latency {
    Fixed(Duration),
    LogNormal { median_ms: f64, sigma: f64 },
}

/// The mock provider.
pub struct Mock {
    id: String,
    model: String,
    latency: Latency,
    error_rate: f64,
    rate_limit_rate: f64,
    retry_after: Duration,
    seed: u64,
    responses: Vec<(crate::js::Regex, String)>,
    output: Option<String>,
    finish_reason: String,
    pricing: Option<Pricing>,
    params: Map<String, Value>,
    rng: Mutex<fastrand::Rng>,
}

impl Mock {
    /// Builds it from `spec`, refusing bad config values.
    pub fn new(spec: &ProviderSpec) -> Result<Self, String> {
        let name = spec
            .id
            .strip_prefix("mock:")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                format!(
                    "mock providers are named `mock:<name>`, got \"{}\"",
                    spec.id
                )
            })?;
        let c = &spec.config;
        if let Some(k) = c
            .keys()
            .find(|k| !KEYS.contains(&k.as_str()) && !super::QUEUE_KEYS.contains(&k.as_str()))
        {
            return Err(format!(
                "unknown mock config key `{k}`; known: {}",
                KEYS.join(", ")
            ));
        }
        let rate = |key: &str| -> Result<f64, String> {
            let r = config_f64(c, key)?.unwrap_or(0.0);
            if (0.0..=1.0).contains(&r) {
                Ok(r)
            } else {
                Err(format!("config.{key} must be between 0 and 1, got {r}"))
            }
        };
        let (error_rate, rate_limit_rate) = (rate("errorRate")?, rate("rateLimitRate")?);
        if error_rate + rate_limit_rate > 1.0 {
            return Err("config.errorRate + config.rateLimitRate must not exceed 1".to_owned());
        }
        let model = match c.get("model") {
            Some(Value::String(m)) => m.clone(),
            None => name.to_owned(),
            Some(_) => return Err("config.model must be a string".to_owned()),
        };
        let pricing = resolve(&model, c)?;
        let string = |key: &str| -> Result<Option<String>, String> {
            match c.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("config.{key} must be a string")),
            }
        };
        let seed = match c.get("seed") {
            None => 0,
            Some(v) => v
                .as_u64()
                .ok_or("config.seed must be a non-negative integer")?,
        };
        Ok(Self {
            id: spec.id.clone(),
            latency: latency(c)?,
            error_rate,
            rate_limit_rate,
            retry_after: Duration::from_millis(
                config_f64(c, "retryAfterMs")?.unwrap_or(1000.0).max(0.0) as u64,
            ),
            seed,
            responses: responses(c.get("responses"))?,
            output: string("output")?,
            finish_reason: string("finishReason")?.unwrap_or_else(|| "stop".to_owned()),
            pricing,
            params: c
                .iter()
                .filter(|(k, _)| !super::QUEUE_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            model,
        })
    }

    /// Draws this call's latency and outcome.
    fn draw(&self) -> (Duration, f64) {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let latency = match self.latency {
            Latency::Fixed(d) => d,
            Latency::LogNormal { median_ms, sigma } => {
                // Box-Muller: one standard normal from two uniforms.
                let (u1, u2) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                Duration::from_secs_f64(median_ms * (sigma * z).exp() / 1000.0)
            }
        };
        (latency, rng.f64())
    }

    /// The canned, fixed or generated output for `prompt`.
    fn answer(&self, prompt: &str) -> Result<String, ProviderError> {
        for (i, (regex, output)) in self.responses.iter().enumerate() {
            let matched = regex
                .is_match(prompt)
                .map_err(|why| ProviderError::BadRequest {
                    status: 0,
                    message: format!("config.responses[{i}].match: {why}"),
                })?;
            if matched {
                return Ok(output.clone());
            }
        }
        if let Some(o) = &self.output {
            return Ok(o.clone());
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (self.seed, prompt).hash(&mut hasher);
        let mut rng = fastrand::Rng::with_seed(hasher.finish());
        let n = rng.usize(12..40);
        let words: Vec<&str> = (0..n).map(|_| WORDS[rng.usize(..WORDS.len())]).collect();
        Ok(format!("{}.", words.join(" ")))
    }
}

fn latency(c: &Map<String, Value>) -> Result<Latency, String> {
    if let Some(ms) = config_f64(c, "latencyMs")? {
        if ms < 0.0 || !ms.is_finite() {
            return Err(format!("config.latencyMs must be >= 0, got {ms}"));
        }
        return Ok(Latency::Fixed(Duration::from_secs_f64(ms / 1000.0)));
    }
    let (median, p99) = match c.get("latency") {
        None | Some(Value::Null) => (300.0, 1500.0),
        Some(Value::Object(l)) => {
            let median =
                config_f64(l, "medianMs").map_err(|e| e.replace("config.", "config.latency."))?;
            let p99 =
                config_f64(l, "p99Ms").map_err(|e| e.replace("config.", "config.latency."))?;
            let median = median.ok_or("config.latency needs medianMs")?;
            (median, p99.unwrap_or(median))
        }
        Some(_) => return Err("config.latency must be {medianMs, p99Ms}".to_owned()),
    };
    if median <= 0.0 || p99 < median || !p99.is_finite() {
        return Err(format!(
            "config.latency needs 0 < medianMs <= p99Ms, got {median} and {p99}"
        ));
    }
    Ok(Latency::LogNormal {
        median_ms: median,
        sigma: (p99 / median).ln() / Z_99,
    })
}

fn responses(v: Option<&Value>) -> Result<Vec<(crate::js::Regex, String)>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = v
        .as_array()
        .ok_or("config.responses must be a list of {match, output}")?;
    items
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let pattern = r.get("match").and_then(Value::as_str);
            let output = r.get("output").and_then(Value::as_str);
            match (pattern, output) {
                (Some(p), Some(o)) => crate::js::Regex::new(p)
                    .map(|re| (re, o.to_owned()))
                    .map_err(|e| format!("config.responses[{i}].match is not a valid regex: {e}")),
                _ => Err(format!(
                    "config.responses[{i}] needs string `match` and `output`"
                )),
            }
        })
        .collect()
}

impl Provider for Mock {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "mock"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    fn complete<'a>(&'a self, prompt: &'a str) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let started = Instant::now();
            let (latency, roll) = self.draw();
            tokio::time::sleep(latency).await;
            if roll < self.error_rate {
                return Err(ProviderError::Server {
                    status: 500,
                    message: "mock server error".to_owned(),
                });
            }
            if roll < self.error_rate + self.rate_limit_rate {
                return Err(ProviderError::RateLimited {
                    retry_after: Some(self.retry_after),
                    message: "mock rate limit".to_owned(),
                });
            }
            let output = self.answer(prompt)?;
            let usage = TokenUsage {
                input: estimate_tokens(prompt),
                output: estimate_tokens(&output),
            };
            Ok(Completion {
                cost_usd: self.pricing.map_or(0.0, |p| p.cost(usage)),
                output,
                latency: started.elapsed(),
                usage,
                finish_reason: Some(self.finish_reason.clone()),
                cached: false,
                rate_limit: RateLimitInfo::default(),
            })
        })
    }
}

#[cfg(test)]
mod tests;
