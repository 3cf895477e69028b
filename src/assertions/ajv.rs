//! JSON Schema checks worded like ajv, the validator promptfoo uses:
//! draft-07 unless the schema names another, formats checked (promptfoo
//! adds ajv-formats), and only the first error reported (ajv stops there
//! unless `allErrors` is set), as `data/path message`.

use std::fmt;
use std::sync::Arc;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError};
use serde_json::Value;

/// A compiled JSON Schema.
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
        let mut options = jsonschema::options().should_validate_formats(true);
        if schema.get("$schema").is_none() {
            options = options.with_draft(Draft::Draft7);
        }
        options
            .build(schema)
            .map(|v| Self(Arc::new(v)))
            .map_err(|e| e.to_string())
    }

    /// ajv's `errorsText` for the first error, or `None` when valid.
    pub(super) fn errors(&self, instance: &Value) -> Option<String> {
        let mut errors: Vec<ValidationError<'_>> = self.0.iter_errors(instance).collect();
        // ajv checks `type` before the other keywords of a schema, and
        // `required` before `properties`: report what it would meet first.
        errors.sort_by_key(|e| (e.instance_path().as_str().len(), rank(e.kind())));
        errors
            .first()
            .map(|e| format!("data{} {}", e.instance_path().as_str(), message(e.kind())))
    }
}

fn rank(kind: &ValidationErrorKind) -> u8 {
    match kind {
        ValidationErrorKind::Type { .. } => 0,
        ValidationErrorKind::Required { .. } => 1,
        ValidationErrorKind::AdditionalProperties { .. } => 2,
        _ => 3,
    }
}

/// ajv's message for one error.
fn message(kind: &ValidationErrorKind) -> String {
    use ValidationErrorKind as K;
    let n = |v: &Value| v.as_f64().map_or_else(|| v.to_string(), crate::js::number);
    match kind {
        K::Type { kind } => {
            let names: Vec<String> = match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            format!("must be {}", names.join(","))
        }
        K::Required { property } => format!(
            "must have required property '{}'",
            property.as_str().unwrap_or_default()
        ),
        K::AdditionalProperties { .. } => "must NOT have additional properties".to_owned(),
        K::Minimum { limit } => format!("must be >= {}", n(limit)),
        K::Maximum { limit } => format!("must be <= {}", n(limit)),
        K::ExclusiveMinimum { limit } => format!("must be > {}", n(limit)),
        K::ExclusiveMaximum { limit } => format!("must be < {}", n(limit)),
        K::MinLength { limit } => format!("must NOT have fewer than {limit} characters"),
        K::MaxLength { limit } => format!("must NOT have more than {limit} characters"),
        K::MinItems { limit } => format!("must NOT have fewer than {limit} items"),
        K::MaxItems { limit } => format!("must NOT have more than {limit} items"),
        K::AdditionalItems { limit } => format!("must NOT have more than {limit} items"),
        K::MinProperties { limit } => format!("must NOT have fewer than {limit} properties"),
        K::MaxProperties { limit } => format!("must NOT have more than {limit} properties"),
        K::Pattern { pattern } => format!("must match pattern \"{pattern}\""),
        K::Format { format } => format!("must match format \"{format}\""),
        K::Enum { .. } => "must be equal to one of the allowed values".to_owned(),
        K::Constant { .. } => "must be equal to constant".to_owned(),
        K::MultipleOf { multiple_of } => {
            format!("must be multiple of {}", crate::js::number(*multiple_of))
        }
        K::UniqueItems => "must NOT have duplicate items".to_owned(),
        K::AnyOf { .. } => "must match a schema in anyOf".to_owned(),
        K::OneOfNotValid { .. } | K::OneOfMultipleValid { .. } => {
            "must match exactly one schema in oneOf".to_owned()
        }
        K::Not { .. } => "must NOT be valid".to_owned(),
        K::Contains => "must contain at least 1 valid item(s)".to_owned(),
        K::FalseSchema => "boolean schema is false".to_owned(),
        K::PropertyNames { .. } => "property name must be valid".to_owned(),
        other => other.keyword().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: Value, instance: Value) -> Option<String> {
        Schema::compile(&schema).unwrap().errors(&instance)
    }

    #[test]
    fn errors_read_like_ajv() {
        let person = json!({"name": "Ada", "age": 36});
        let cases = [
            (json!({"type": "array"}), "data must be array"),
            (
                json!({"required": ["email"]}),
                "data must have required property 'email'",
            ),
            (
                json!({"properties": {"age": {"type": "string"}}}),
                "data/age must be string",
            ),
            (
                json!({"properties": {"age": {"maximum": 10}}}),
                "data/age must be <= 10",
            ),
            (
                json!({"properties": {"age": {"exclusiveMinimum": 36}}}),
                "data/age must be > 36",
            ),
            (
                json!({"properties": {"name": {"minLength": 5}}}),
                "data/name must NOT have fewer than 5 characters",
            ),
            (
                json!({"additionalProperties": false, "properties": {"name": {}}}),
                "data must NOT have additional properties",
            ),
            (
                json!({"properties": {"name": {"enum": ["Bob"]}}}),
                "data/name must be equal to one of the allowed values",
            ),
            (
                json!({"properties": {"name": {"pattern": "^B"}}}),
                "data/name must match pattern \"^B\"",
            ),
            (
                json!({"type": "object", "required": ["x"], "properties": {"age": {"type": "string"}}}),
                "data must have required property 'x'",
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(
                errors(schema.clone(), person.clone()).as_deref(),
                Some(want),
                "{schema}"
            );
        }
        assert_eq!(
            errors(
                json!({"properties": {"e": {"format": "email"}}}),
                json!({"e": "nope"})
            )
            .as_deref(),
            Some("data/e must match format \"email\"")
        );
        assert_eq!(errors(json!({"type": "object"}), person), None);
    }
}
