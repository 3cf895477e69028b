//! YAML as promptfoo users write it (js-yaml): the YAML 1.2 core schema,
//! so `yes`, `no`, `y` and `on` stay strings; duplicate keys are errors;
//! alias expansion and document size are budgeted against YAML bombs.
//!
//! The budget is serde-saphyr's, with the counts that grow with an honest
//! document (nodes, events, scalar bytes) scaled to its length: a node
//! takes at least a byte of input unless an alias repeats it, and aliases
//! and what they may copy keep their fixed limits. So a 1,000,000-test
//! suite parses, and a small document still cannot expand into a large one.

use serde::de::DeserializeSeed;
use serde_json::Value;

/// Parses a YAML (or JSON) document into a JSON value.
pub fn from_str(source: &str) -> Result<Value, String> {
    serde_saphyr::from_str_with_options(source, options(source)).map_err(|e| e.to_string())
}

/// Parses a YAML (or JSON) document through `seed`.
pub fn from_str_seed<T>(
    source: &str,
    seed: impl for<'de> DeserializeSeed<'de, Value = T>,
) -> Result<T, String> {
    serde_saphyr::with_deserializer_from_str_with_options(source, options(source), |d| {
        seed.deserialize(d)
    })
    .map_err(|e| e.to_string())
}

fn options(source: &str) -> serde_saphyr::Options {
    let len = source.len();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(len);
    budget.max_events = budget.max_events.max(2 * len);
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(len);
    serde_saphyr::options! {
        strict_booleans: true,
        budget: Some(budget),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        assert_eq!(
            from_str("a: [y, n, yes, no, on, off, true, False]").unwrap(),
            json!({"a": ["y", "n", "yes", "no", "on", "off", true, false]})
        );
    }

    #[test]
    fn a_long_honest_document_parses_and_a_short_bomb_does_not() {
        // 260,000 list items: past the default 250,000-node budget.
        let long = format!("a:\n{}", "  - 1\n".repeat(260_000));
        let v = from_str(&long).unwrap();
        assert_eq!(v["a"].as_array().unwrap().len(), 260_000);
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
        assert!(from_str(bomb).is_err());
    }

    #[test]
    fn duplicate_keys_are_refused() {
        assert!(from_str("a: 1\na: 2\n").is_err());
    }
}
