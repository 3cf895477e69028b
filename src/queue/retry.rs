//! Retry policy: which failures are retried, and how long to wait.
//!
//! promptfoo's defaults: three retries, exponential backoff from 1 s up to
//! 60 s with 20 % jitter; a provider's `retry-after` wins when it is longer.
//! Quota, bad-request and key errors are never retried.

use std::time::Duration;

use crate::providers::ProviderError;

/// Retries after the first attempt.
pub(super) const MAX_RETRIES: u32 = 3;
const BASE: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(60);

/// The `reason` label of a retry, `None` if the error is not retried.
pub(super) fn reason(e: &ProviderError) -> Option<&'static str> {
    match e {
        ProviderError::RateLimited { .. } => Some("rate_limited"),
        ProviderError::Timeout { .. } => Some("timeout"),
        ProviderError::Server { .. } => Some("server_error"),
        ProviderError::Transport { .. } => Some("transport"),
        _ => None,
    }
}

/// Delay before retry number `attempt` (1-based), `jitter` in 0..1.
pub(super) fn delay(attempt: u32, e: &ProviderError, jitter: f64) -> Duration {
    let exp = BASE
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_DELAY);
    // +/- 20 %.
    let backoff = exp.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0));
    match e {
        ProviderError::RateLimited {
            retry_after: Some(after),
            ..
        } => backoff.max(*after).min(MAX_DELAY * 5),
        _ => backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let server = ProviderError::Server {
            status: 500,
            message: String::new(),
        };
        assert_eq!(delay(1, &server, 0.5), Duration::from_secs(1));
        assert_eq!(delay(3, &server, 0.5), Duration::from_secs(4));
        assert_eq!(delay(2, &server, 0.0), Duration::from_millis(1600));
        assert_eq!(delay(2, &server, 1.0), Duration::from_millis(2400));
        assert_eq!(delay(20, &server, 0.5), MAX_DELAY);
        let limited = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: String::new(),
        };
        assert_eq!(delay(1, &limited, 0.5), Duration::from_secs(7));
        let quota = ProviderError::QuotaExhausted {
            message: String::new(),
        };
        assert_eq!(reason(&quota), None, "quota errors fail fast");
        assert_eq!(reason(&limited), Some("rate_limited"));
    }
}
