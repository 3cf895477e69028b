//! YAML as promptfoo users write it (js-yaml): the YAML 1.2 core schema,
//! so `yes`, `no`, `y` and `on` stay strings; duplicate keys are errors;
//! alias expansion and document size are budgeted against YAML bombs.

use serde_json::Value;

/// Parses a YAML (or JSON) document into a JSON value.
pub fn from_str(source: &str) -> Result<Value, String> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
    };
    serde_saphyr::from_str_with_options(source, options).map_err(|e| e.to_string())
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
    fn duplicate_keys_are_refused() {
        assert!(from_str("a: 1\na: 2\n").is_err());
    }
}
