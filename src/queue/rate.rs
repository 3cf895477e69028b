//! Per-provider rate limits: requests and tokens per minute, as token
//! buckets that refill continuously. Token use is charged with the prompt's
//! estimate before a call and the completion's after it; the bucket may go
//! into debt, which later calls wait out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    level: f64,
    per_sec: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_minute: f64) -> Self {
        Self {
            capacity: per_minute,
            level: per_minute,
            per_sec: per_minute / 60.0,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.per_sec).min(self.capacity);
        self.at = now;
    }

    /// Time until `amount` is available (zero if it is now).
    fn wait_for(&self, amount: f64) -> Duration {
        let short = amount.min(self.capacity) - self.level;
        if short <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(short / self.per_sec)
        }
    }
}

/// Optional requests-per-minute and tokens-per-minute limits. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(super) struct RateLimit {
    buckets: Arc<Mutex<(Option<Bucket>, Option<Bucket>)>>,
}

impl RateLimit {
    /// Limits from a provider's `requestsPerMinute` / `tokensPerMinute`.
    pub(super) fn new(requests_per_minute: Option<f64>, tokens_per_minute: Option<f64>) -> Self {
        Self {
            buckets: Arc::new(Mutex::new((
                requests_per_minute.map(Bucket::new),
                tokens_per_minute.map(Bucket::new),
            ))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Bucket>, Option<Bucket>)> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one request and `tokens` now, or says how long to wait.
    pub(super) fn try_take(&self, tokens: u64) -> Result<(), Duration> {
        let now = Instant::now();
        let mut b = self.lock();
        let (requests, token_bucket) = &mut *b;
        let mut wait = Duration::ZERO;
        if let Some(r) = requests.as_mut() {
            r.refill(now);
            wait = wait.max(r.wait_for(1.0));
        }
        if let Some(t) = token_bucket.as_mut() {
            t.refill(now);
            wait = wait.max(t.wait_for(tokens as f64));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        if let Some(r) = requests.as_mut() {
            r.level -= 1.0;
        }
        if let Some(t) = token_bucket.as_mut() {
            t.level -= tokens as f64;
        }
        Ok(())
    }

    /// Charges tokens used beyond the estimate.
    pub(super) fn charge(&self, tokens: u64) {
        if let Some(t) = self.lock().1.as_mut() {
            t.level -= tokens as f64;
        }
    }

    /// Whether any limit is configured.
    #[cfg(test)]
    pub(super) fn is_limited(&self) -> bool {
        let b = self.lock();
        b.0.is_some() || b.1.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_spread_calls_out() {
        let r = RateLimit::new(Some(60.0), None);
        for _ in 0..60 {
            assert!(r.try_take(0).is_ok(), "a full bucket allows a burst");
        }
        let wait = r.try_take(0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        tokio::time::advance(wait).await;
        assert!(r.try_take(0).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_per_minute_include_what_completions_used() {
        let r = RateLimit::new(None, Some(1000.0));
        assert!(r.try_take(400).is_ok());
        r.charge(500);
        let wait = r.try_take(400).unwrap_err();
        assert_eq!(wait, Duration::from_secs_f64(300.0 / (1000.0 / 60.0)));
        assert!(!RateLimit::default().is_limited());
    }
}
