//! Parsing one assertion from config (after the suite rendered its
//! template values) into a prepared [`Assertion`], or every problem with it.

use serde_json::{Map, Value};

use super::json::Schema;
use super::text::{WordCount, value_string};
use super::{Assertion, Check};

/// Base types promptgauge grades; each also takes a `not-` prefix.
pub const SUPPORTED_TYPES: &[&str] = &[
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "contains-all",
    "icontains-any",
    "icontains-all",
    "starts-with",
    "regex",
    "is-json",
    "contains-json",
    "levenshtein",
    "latency",
    "cost",
    "word-count",
    "rouge-n",
    "bleu",
    "finish-reason",
    "is-refusal",
];

/// Keys an assertion may carry.
const KNOWN_KEYS: &[&str] = &["type", "value", "threshold", "weight", "metric"];
/// Keys that change what is graded; ignoring them would give wrong verdicts.
const UNRUNNABLE_KEYS: &[&str] = &["transform", "contextTransform"];

/// What is wrong with an assertion, for the suite to place.
pub type AssertionProblem = String;

/// Parses and prepares an assertion. `Ok` carries warnings about keys that
/// were ignored; `Err` carries every problem found.
pub fn parse_assertion(spec: &Value) -> Result<(Assertion, Vec<String>), Vec<AssertionProblem>> {
    let Some(obj) = spec.as_object() else {
        return Err(vec![format!(
            "must be an object with a `type`, got {}",
            kind_of(spec)
        )]);
    };
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for key in obj.keys() {
        if UNRUNNABLE_KEYS.contains(&key.as_str()) {
            problems.push(format!("`{key}` (a JavaScript transform) is not supported"));
        } else if !KNOWN_KEYS.contains(&key.as_str()) {
            warnings.push(format!("unsupported key `{key}` ignored"));
        }
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(other) => {
            return Err(vec![format!(
                "`type` must be a string, got {}",
                kind_of(other)
            )]);
        }
        None => return Err(vec!["missing `type`".to_owned()]),
    };
    let (inverse, base) = match ty.strip_prefix("not-") {
        Some(b) => (true, b),
        None => (false, ty),
    };
    let threshold = number_field(obj, "threshold", &mut problems);
    let weight = number_field(obj, "weight", &mut problems).unwrap_or(1.0);
    if weight < 0.0 {
        problems.push(format!("`weight` must be 0 or more, got {weight}"));
    }
    let metric = match obj.get("metric") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(other) => {
            problems.push(format!("`metric` must be a string, got {}", kind_of(other)));
            None
        }
    };
    let value = obj.get("value").filter(|v| !v.is_null());
    let check = match prepare(base, value, threshold) {
        Ok(c) => Some(c),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    match check {
        Some(check) if problems.is_empty() => Ok((
            Assertion {
                check,
                inverse,
                weight,
                metric,
                spec: spec.clone(),
            },
            warnings,
        )),
        _ => Err(problems),
    }
}

fn number_field(obj: &Map<String, Value>, key: &str, problems: &mut Vec<String>) -> Option<f64> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => {
            problems.push(format!("`{key}` must be a number, got {}", kind_of(other)));
            None
        }
    }
}

/// Checks the value's shape for `base` and compiles what can be compiled.
fn prepare(base: &str, value: Option<&Value>, threshold: Option<f64>) -> Result<Check, String> {
    let needs = |what: &str| format!("\"{base}\" needs {what} as `value`");
    let text = || -> Result<String, String> {
        match value {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(value_string(&Value::Number(n.clone()))),
            _ => Err(needs("a non-empty string or number")),
        }
    };
    let list = || -> Result<Vec<String>, String> {
        match value {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|v| match v {
                    Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(value_string(v)),
                    _ => Err(needs("a list of strings (or a comma-separated string)")),
                })
                .collect(),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(split_comma_separated(s)),
            _ => Err(needs("a list of strings (or a comma-separated string)")),
        }
    };
    let ignore_case = base.starts_with('i');
    Ok(match base {
        "equals" => Check::Equals(value.cloned().ok_or_else(|| needs("a value"))?),
        "contains" | "icontains" => Check::Contains {
            needle: text()?,
            ignore_case,
        },
        "contains-any" | "icontains-any" => Check::ContainsAny {
            needles: list()?,
            ignore_case,
        },
        "contains-all" | "icontains-all" => Check::ContainsAll {
            needles: list()?,
            ignore_case,
        },
        "starts-with" => match value {
            Some(Value::String(s)) if !s.is_empty() => Check::StartsWith(s.clone()),
            _ => return Err(needs("a non-empty string")),
        },
        "regex" => {
            let Some(Value::String(pattern)) =
                value.filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            else {
                return Err(needs("a regular expression string"));
            };
            let regex = fancy_regex::Regex::new(pattern)
                .map_err(|e| format!("invalid regex {pattern:?}: {e}"))?;
            Check::Regex {
                pattern: pattern.clone(),
                regex: Box::new(regex),
            }
        }
        "is-json" => Check::IsJson(schema(value)?),
        "contains-json" => Check::ContainsJson(schema(value)?),
        "levenshtein" => match value {
            Some(Value::String(s)) => Check::Levenshtein {
                expected: s.clone(),
                threshold: threshold.unwrap_or(5.0),
            },
            _ => return Err(needs("a string")),
        },
        "latency" => Check::Latency {
            threshold_ms: threshold.ok_or("\"latency\" needs a `threshold` in milliseconds")?,
        },
        "cost" => Check::Cost {
            threshold: threshold.ok_or("\"cost\" needs a `threshold` in US dollars")?,
        },
        "word-count" => Check::WordCount(
            word_count(value)
                .map_err(|_| needs("a number or an object with `min` and/or `max` (min <= max)"))?,
        ),
        "rouge-n" => Check::RougeN {
            reference: text()?,
            threshold: threshold.unwrap_or(0.75),
        },
        "bleu" => Check::Bleu {
            references: match value {
                Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
                Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
                    a.iter().map(value_string).collect()
                }
                _ => return Err(needs("a reference string or a list of them")),
            },
            threshold: threshold.unwrap_or(0.5),
        },
        "finish-reason" => match value {
            Some(Value::String(s)) if !s.is_empty() => Check::FinishReason(s.clone()),
            _ => return Err(needs("a finish reason such as \"stop\"")),
        },
        "is-refusal" => Check::IsRefusal,
        other => {
            return Err(format!(
                "unknown assertion type \"{other}\"; supported (each also with a `not-` prefix): {}",
                SUPPORTED_TYPES.join(", ")
            ));
        }
    })
}

/// An optional schema: an object or boolean, or a JSON/YAML string of one.
fn schema(value: Option<&Value>) -> Result<Option<Schema>, String> {
    let parsed;
    let schema = match value {
        None => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => {
            parsed = crate::yaml::from_str(s).map_err(|e| format!("invalid JSON schema: {e}"))?;
            &parsed
        }
        Some(v) => v,
    };
    if !(schema.is_object() || schema.is_boolean()) {
        return Err(format!(
            "invalid JSON schema: expected an object, got {}",
            kind_of(schema)
        ));
    }
    Schema::compile(schema)
        .map(Some)
        .map_err(|e| format!("invalid JSON schema: {e}"))
}

fn word_count(value: Option<&Value>) -> Result<WordCount, ()> {
    match value {
        Some(Value::Number(n)) => n.as_f64().map(WordCount::Exact).ok_or(()),
        Some(Value::String(s)) => s.trim().parse().map(WordCount::Exact).map_err(|_| ()),
        Some(Value::Object(o)) => {
            let get = |k: &str| match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64()),
                _ => Err(()),
            };
            let (min, max) = (get("min")?, get("max")?);
            match (min, max) {
                (None, None) => Err(()),
                (Some(lo), Some(hi)) if lo > hi => Err(()),
                _ => Ok(WordCount::Range { min, max }),
            }
        }
        _ => Err(()),
    }
}

/// Comma-separated values, where a double-quoted field may hold commas
/// (`"a, b", c` -> `a, b` and `c`); unquoted fields are trimmed.
pub(super) fn split_comma_separated(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
            // Skip to the next separator.
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
            }
            out.push(field);
        } else {
            let mut ended = true;
            for c in chars.by_ref() {
                if c == ',' {
                    ended = false;
                    break;
                }
                field.push(c);
            }
            let field = field.trim();
            if !field.is_empty() {
                out.push(field.to_owned());
            }
            if ended {
                break;
            }
            continue;
        }
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_separated_values_allow_quoted_commas() {
        assert_eq!(split_comma_separated("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(split_comma_separated(r#""x, y", z"#), ["x, y", "z"]);
        assert_eq!(
            split_comma_separated(r#"say ""hi"", "q""uote""#),
            [r#"say ""hi"""#, r#"q"uote"#]
        );
        assert_eq!(split_comma_separated("solo"), ["solo"]);
    }
}
