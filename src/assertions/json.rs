//! `is-json` and `contains-json`, each with an optional JSON Schema.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::{Assertion, Check, Verdict};

/// Scanned text per `{` when looking for embedded JSON (promptfoo's limit).
const MAX_CANDIDATE_BYTES: usize = 100_000;

/// A compiled JSON Schema (draft detected from `$schema`, default 2020-12).
#[derive(Clone)]
pub(super) struct Schema(Arc<jsonschema::Validator>);

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Compiles a schema; the error says why it is not one.
    pub(super) fn compile(schema: &Value) -> Result<Self, String> {
        jsonschema::validator_for(schema)
            .map(|v| Self(Arc::new(v)))
            .map_err(|e| e.to_string())
    }

    fn errors(&self, instance: &Value) -> Option<String> {
        let errors: Vec<String> = self
            .0
            .iter_errors(instance)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    format!("data {e}")
                } else {
                    format!("data{at} {e}")
                }
            })
            .collect();
        (!errors.is_empty()).then(|| errors.join(", "))
    }
}

pub(super) fn evaluate(a: &Assertion, text: &str) -> Verdict {
    match &a.check {
        Check::IsJson(schema) => is_json(schema.as_ref(), text, a.inverse),
        Check::ContainsJson(schema) => contains_json(schema.as_ref(), text, a.inverse),
        _ => unreachable!("only JSON checks are dispatched here"),
    }
}

fn is_json(schema: Option<&Schema>, text: &str, inv: bool) -> Verdict {
    let parsed = serde_json::from_str::<Value>(text).ok();
    if let (Some(value), Some(schema)) = (&parsed, schema) {
        let errors = schema.errors(value);
        let pass = errors.is_none() != inv;
        if !pass {
            let reason = match errors {
                Some(e) if !inv => {
                    format!("JSON does not conform to the provided schema. Errors: {e}")
                }
                _ => "Output is JSON that conforms to the provided schema".to_owned(),
            };
            return Verdict {
                pass,
                score: 0.0,
                reason,
            };
        }
        return Verdict::binary(true, String::new);
    }
    Verdict::binary(parsed.is_some() != inv, || {
        "Expected output to be valid JSON".to_owned()
    })
}

fn contains_json(schema: Option<&Schema>, text: &str, inv: bool) -> Verdict {
    let objects = extract_json_objects(text);
    let mut pass = objects.is_empty() == inv;
    let mut reason = "Expected output to contain valid JSON".to_owned();
    if let Some(schema) = schema {
        for object in &objects {
            match schema.errors(object) {
                None => {
                    pass = !inv;
                    if inv {
                        reason =
                            "Output contains JSON conforming to the provided schema".to_owned();
                    }
                    break;
                }
                Some(e) => {
                    pass = inv;
                    reason = format!("JSON does not conform to the provided schema. Errors: {e}");
                }
            }
        }
    }
    Verdict::binary(pass, || reason)
}

/// Every JSON object embedded in `text`: from each `{`, the first complete
/// value that parses, then scanning continues after it.
pub(super) fn extract_json_objects(text: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(offset) = text[i..].find('{') {
        let start = i + offset;
        let end = (start + MAX_CANDIDATE_BYTES).min(text.len());
        let window = text.get(start..end).unwrap_or(&text[start..]);
        let mut stream = serde_json::Deserializer::from_str(window).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value @ Value::Object(_))) => {
                found.push(value);
                i = start + stream.byte_offset();
            }
            _ => i = start + 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_objects_are_found_in_prose() {
        let text = r#"Sure! {"a": 1} and then {"b": {"c": [1, 2]}} but not {broken"#;
        let found = extract_json_objects(text);
        assert_eq!(
            found,
            vec![
                serde_json::json!({"a": 1}),
                serde_json::json!({"b": {"c": [1, 2]}})
            ]
        );
    }
}
