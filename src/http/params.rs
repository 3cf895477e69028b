//! Path and query parameters, checked with every problem reported at once.

use std::collections::HashMap;
use std::time::Duration;

use super::error::ApiError;
use crate::common::time::{MAX_TIME_MS, parse_duration, parse_instant};
use crate::suite::Problem;

/// Largest page.
pub(super) const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 50;

/// A positive id from the path.
pub(super) fn id(what: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid {what} id {raw:?}: expected a positive integer"
        ))
    })
}

/// Query parameters, each taken at most once; leftovers are problems.
pub(super) struct Query {
    params: HashMap<String, String>,
    pub(super) problems: Vec<Problem>,
}

impl Query {
    pub(super) fn new(params: HashMap<String, String>) -> Self {
        Self {
            params,
            problems: Vec::new(),
        }
    }

    /// `limit` (1..=1000, default 50) and `offset` (>= 0, default 0).
    pub(super) fn paging(&mut self) -> (i64, i64) {
        let limit = self.int("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
        let offset = self.int("offset", 0, i64::MAX).unwrap_or(0);
        (limit, offset)
    }

    fn int(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let raw = self.params.remove(key)?;
        match raw.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let range = if max == i64::MAX {
                    format!("{min} or more")
                } else {
                    format!("{min} to {max}")
                };
                self.problems.push(Problem::new(
                    key,
                    format!("expected an integer from {range}, got {raw:?}"),
                ));
                None
            }
        }
    }

    /// An optional value parsed by `parse`, listing what is allowed on failure.
    pub(super) fn choice<T>(
        &mut self,
        key: &str,
        allowed: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let raw = self.params.remove(key)?;
        let parsed = parse(&raw);
        if parsed.is_none() {
            self.problems.push(Problem::new(
                key,
                format!("expected one of {}, got {raw:?}", allowed.join(", ")),
            ));
        }
        parsed
    }

    /// A duration such as `90s`, `5m`, `1h` or `7d` (a bare number is
    /// seconds), from 1 s to `max`.
    pub(super) fn duration(&mut self, key: &str, max: Duration) -> Option<Duration> {
        let raw = self.params.remove(key)?;
        match parse_duration(&raw).filter(|d| *d >= Duration::from_secs(1) && *d <= max) {
            Some(d) => Some(d),
            None => {
                self.problems.push(Problem::new(
                    key,
                    format!(
                        "expected a duration such as 90s, 5m, 1h or 7d, at most {}d, got {raw:?}",
                        max.as_secs() / 86_400
                    ),
                ));
                None
            }
        }
    }

    /// Unix milliseconds, or a duration meaning that long ago.
    pub(super) fn since(&mut self, key: &str, now_ms: i64) -> Option<i64> {
        let raw = self.params.remove(key)?;
        if let Ok(ms) = raw.parse::<i64>() {
            if (0..=MAX_TIME_MS).contains(&ms) {
                return Some(ms);
            }
        }
        match parse_duration(&raw) {
            // At most 100 years back: no wrap, at worst the epoch.
            Some(d) if !raw.chars().all(|c| c.is_ascii_digit()) => {
                Some((now_ms - d.as_millis() as i64).max(0))
            }
            _ => {
                self.problems.push(Problem::new(
                    key,
                    format!("expected unix milliseconds or a duration such as 24h, got {raw:?}"),
                ));
                None
            }
        }
    }

    /// A point in time: unix milliseconds or RFC 3339 (`2026-12-01`,
    /// `2026-12-01T10:00:00Z`).
    pub(super) fn time(&mut self, key: &str) -> Option<i64> {
        let raw = self.params.remove(key)?;
        let parsed = parse_instant(&raw);
        if parsed.is_none() {
            self.problems.push(Problem::new(
                key,
                format!("expected unix milliseconds or an RFC 3339 time such as 2026-12-01T00:00:00Z, got {}", quoted(&raw)),
            ));
        }
        parsed
    }

    /// A short free-text value (a provider id, a model), 1-200 characters.
    pub(super) fn text(&mut self, key: &str) -> Option<String> {
        let raw = self.params.remove(key)?;
        if raw.is_empty() || raw.chars().count() > 200 || raw.chars().any(char::is_control) {
            self.problems.push(Problem::new(
                key,
                "expected 1 to 200 characters without control characters",
            ));
            return None;
        }
        Some(raw)
    }

    /// An integer from `min` to `max`.
    pub(super) fn integer(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        self.int(key, min, max)
    }

    /// Notes a problem found by the caller.
    pub(super) fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    /// Refuses unknown parameters and any problem found so far.
    pub(super) fn finish(mut self) -> Result<(), ApiError> {
        let mut unknown: Vec<String> = self.params.into_keys().collect();
        unknown.sort();
        for key in unknown {
            self.problems
                .push(Problem::new(key, "unknown query parameter"));
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid("invalid_query", self.problems))
        }
    }
}

/// Client input quoted for a message: cut at 64 characters.
fn quoted(raw: &str) -> String {
    let cut: String = raw.chars().take(64).collect();
    if cut.len() < raw.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_prometheus_ranges() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        for bad in ["", "m", "5 m", "-5m", "1.5h", "5w", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
