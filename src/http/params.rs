//! Path and query parameters, checked with every problem reported at once.

use std::collections::HashMap;

use super::error::ApiError;
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
