//! Problems and warnings found while reading a suite, each with its location.

use serde_json::{Map, Value};

use super::Problem;

/// Problems and warnings collected while walking the document.
#[derive(Default)]
pub(super) struct Report {
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<Problem>,
}

impl Report {
    pub(super) fn problem(&mut self, at: impl Into<String>, msg: impl Into<String>) {
        self.problems.push(Problem::new(at, msg));
    }

    pub(super) fn warn(&mut self, at: impl Into<String>, msg: impl Into<String>) {
        self.warnings.push(Problem::new(at, msg));
    }

    /// Warns about keys outside `known`.
    pub(super) fn unknown_keys(&mut self, at: &str, obj: &Map<String, Value>, known: &[&str]) {
        let unknown: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !known.contains(k))
            .collect();
        if !unknown.is_empty() {
            let keys = unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            self.warn(at, format!("unsupported keys ignored: {keys}"));
        }
    }
}
