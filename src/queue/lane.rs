//! A lane: everything shared by the jobs that call one provider — the
//! adaptive concurrency limit, the circuit breaker, the rate limits — and
//! the last reason it made jobs wait (for progress displays).

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::breaker::Breaker;
use super::limiter::AdaptiveLimit;
use super::rate::RateLimit;
use super::retry::MAX_RETRIES;

/// How long a wait reason stays visible.
const WAIT_NOTE_TTL: Duration = Duration::from_secs(5);

/// Queue settings read from a provider's config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneSettings {
    /// Concurrency ceiling for this provider.
    pub max_concurrency: Option<usize>,
    /// Requests per minute.
    pub requests_per_minute: Option<f64>,
    /// Tokens per minute.
    pub tokens_per_minute: Option<f64>,
    /// Retries after the first attempt.
    pub max_retries: u32,
}

impl LaneSettings {
    /// Reads (and checks) the queue keys of a provider config.
    pub fn from_config(config: &Map<String, Value>) -> Result<Self, String> {
        let positive = |key: &str| -> Result<Option<f64>, String> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_f64() {
                    Some(n) if n > 0.0 && n.is_finite() => Ok(Some(n)),
                    _ => Err(format!(
                        "config.{key} must be a number greater than 0, got {v}"
                    )),
                },
            }
        };
        let max_concurrency = match config.get("maxConcurrency") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64().filter(|n| (1..=10_000).contains(n)) {
                Some(n) => Some(n as usize),
                None => {
                    return Err(format!(
                        "config.maxConcurrency must be an integer from 1 to 10000, got {v}"
                    ));
                }
            },
        };
        let max_retries = match config.get("maxRetries") {
            None | Some(Value::Null) => MAX_RETRIES,
            Some(v) => match v.as_u64().filter(|n| *n <= 10) {
                Some(n) => n as u32,
                None => {
                    return Err(format!(
                        "config.maxRetries must be an integer from 0 to 10, got {v}"
                    ));
                }
            },
        };
        Ok(Self {
            max_concurrency,
            requests_per_minute: positive("requestsPerMinute")?,
            tokens_per_minute: positive("tokensPerMinute")?,
            max_retries,
        })
    }
}

/// Shared state of one provider's calls.
#[derive(Debug)]
pub(super) struct Lane {
    /// The `provider` metrics label.
    pub(super) label: String,
    pub(super) limit: AdaptiveLimit,
    pub(super) breaker: Breaker,
    pub(super) rate: RateLimit,
    pub(super) max_retries: u32,
    waiting: Mutex<Option<(String, Instant)>>,
}

impl Lane {
    pub(super) fn new(label: String, ceiling: usize, settings: LaneSettings) -> Self {
        Self {
            label,
            limit: AdaptiveLimit::new(settings.max_concurrency.map_or(ceiling, |m| m.min(ceiling))),
            breaker: Breaker::default(),
            rate: RateLimit::new(settings.requests_per_minute, settings.tokens_per_minute),
            max_retries: settings.max_retries,
            waiting: Mutex::new(None),
        }
    }

    /// Remembers why jobs on this lane are waiting.
    pub(super) fn note_wait(&self, reason: String) {
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = Some((reason, Instant::now()));
    }

    /// The wait reason noted in the last few seconds.
    pub(super) fn waiting(&self) -> Option<String> {
        let w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        w.as_ref()
            .filter(|(_, at)| at.elapsed() < WAIT_NOTE_TTL)
            .map(|(r, _)| r.clone())
    }
}
