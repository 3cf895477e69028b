//! Parsing one assertion from config (after the suite rendered its
//! template values) into a prepared [`Assertion`], or every problem with it.

use serde_json::{Map, Value};

use super::ajv::Schema;
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
    "assert-set",
];

/// Keys an assertion may carry.
const KNOWN_KEYS: &[&str] = &["type", "value", "threshold", "weight", "metric", "assert"];
/// Keys that change what is graded; ignoring them would give wrong verdicts.
const UNRUNNABLE_KEYS: &[&str] = &["transform", "contextTransform"];

/// What is wrong with an assertion, for the suite to place.
pub type AssertionProblem = String;

/// Parses and prepares an assertion. `Ok` carries warnings about keys that
/// were ignored; `Err` carries every problem found.
pub fn parse_assertion(spec: &Value) -> Result<(Assertion, Vec<String>), Vec<AssertionProblem>> {
    parse_nested(spec, false)
}

fn parse_nested(
    spec: &Value,
    in_set: bool,
) -> Result<(Assertion, Vec<String>), Vec<AssertionProblem>> {
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
    let check = if base == "assert-set" {
        if inverse {
            problems.push("`assert-set` cannot take a `not-` prefix".to_owned());
        }
        set(obj, in_set, threshold, &mut problems, &mut warnings)
    } else {
        match prepare(base, obj.get("value"), threshold, &mut warnings) {
            Ok(c) => Some(c),
            Err(p) => {
                problems.push(p);
                None
            }
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

/// The assertions of an `assert-set`, each parsed like a test's.
fn set(
    obj: &Map<String, Value>,
    in_set: bool,
    threshold: Option<f64>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<Check> {
    if in_set {
        // promptfoo has no handler for a set inside a set: the test errors.
        problems.push("an `assert-set` cannot contain another `assert-set`".to_owned());
        return None;
    }
    let Some(Value::Array(items)) = obj.get("assert") else {
        problems.push("`assert-set` needs `assert`, a list of assertions".to_owned());
        return None;
    };
    let mut assertions = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match parse_nested(item, true) {
            Ok((a, w)) => {
                assertions.push(a);
                warnings.extend(w.into_iter().map(|w| format!("assert[{i}]: {w}")));
            }
            Err(p) => problems.extend(p.into_iter().map(|p| format!("assert[{i}]: {p}"))),
        }
    }
    Some(Check::Set {
        assertions,
        threshold,
    })
}

/// Checks the value's shape for `base`, as promptfoo's handler would
/// before grading, and compiles what can be compiled.
fn prepare(
    base: &str,
    value: Option<&Value>,
    threshold: Option<f64>,
    warnings: &mut Vec<String>,
) -> Result<Check, String> {
    let needs = |what: &str| format!("\"{base}\" needs {what} as `value`");
    // JavaScript's truthiness: what promptfoo's `invariant(value)` lets by.
    let truthy = |v: Option<&Value>| match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(_) => true,
    };
    let text = || -> Result<String, String> {
        match value {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(v @ Value::Number(_)) => Ok(value_string(v)),
            _ => Err(needs("a non-empty string or number")),
        }
    };
    let list = || -> Result<Vec<String>, String> {
        match value {
            Some(Value::Array(items)) => Ok(items.iter().map(value_string).collect()),
            Some(Value::String(s)) if !s.is_empty() => split_comma_separated(s),
            _ => Err(needs("a list of strings (or a comma-separated string)")),
        }
    };
    let string = |non_empty: bool| -> Result<String, String> {
        match value {
            Some(Value::String(s)) if !(non_empty && s.is_empty()) => Ok(s.clone()),
            _ if non_empty => Err(needs("a non-empty string")),
            _ => Err(needs("a string")),
        }
    };
    let ignore_case = base.starts_with('i');
    Ok(match base {
        // No value compares with `String(undefined)`, as in promptfoo.
        "equals" => Check::Equals(match value {
            Some(v) => v.clone(),
            None => {
                warnings.push(
                    "`equals` without a `value` compares the output with \"undefined\"".to_owned(),
                );
                Value::String("undefined".to_owned())
            }
        }),
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
        "starts-with" => Check::StartsWith(string(true)?),
        "regex" => {
            let pattern = string(true).map_err(|_| needs("a regular expression string"))?;
            match crate::js::Regex::new(&pattern) {
                Ok(regex) => Check::Regex { pattern, regex },
                Err(error) => {
                    // promptfoo grades it as a failure, not an error.
                    warnings.push(format!("{error}: the assertion always fails"));
                    Check::InvalidRegex { error }
                }
            }
        }
        "is-json" => Check::IsJson(schema(value.filter(|v| truthy(Some(v))))?),
        "contains-json" => Check::ContainsJson(schema(value.filter(|v| truthy(Some(v))))?),
        "levenshtein" => Check::Levenshtein {
            expected: string(false)?,
            threshold: threshold.unwrap_or(5.0),
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
            reference: string(false)?,
            threshold: threshold.unwrap_or(0.75),
        },
        "bleu" => Check::Bleu {
            references: match value {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
                    a.iter().map(value_string).collect()
                }
                _ => return Err(needs("a reference string or a list of them")),
            },
            threshold: threshold.unwrap_or(0.5),
        },
        "finish-reason" => Check::FinishReason(string(false)?),
        "is-refusal" => Check::IsRefusal,
        other => return Err(unknown_type(other)),
    })
}

fn unknown_type(ty: &str) -> String {
    format!(
        "unknown assertion type \"{ty}\"; supported (each also with a `not-` prefix): {}",
        SUPPORTED_TYPES.join(", ")
    )
}

/// The problem with an assertion's `type` (and its set's), known before
/// its value is rendered: a type we do not grade is refused when the suite
/// is read, not when each test runs.
pub fn type_problem(spec: &Value) -> Option<String> {
    let ty = spec.get("type")?.as_str()?;
    let base = ty.strip_prefix("not-").unwrap_or(ty);
    if base == "assert-set" {
        return spec
            .get("assert")
            .and_then(Value::as_array)
            .and_then(|inner| inner.iter().find_map(type_problem));
    }
    (!SUPPORTED_TYPES.contains(&base)).then(|| unknown_type(base))
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
    if !schema.is_object() {
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

/// promptfoo's `parseCommaSeparatedValues`: fields split on commas
/// (repeated commas skipped, unquoted fields trimmed); a double-quoted
/// field may hold commas, `\"`, `\\` and `""`, and must be closed and
/// followed by a comma.
pub fn split_comma_separated(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let space = |i: &mut usize| {
        while *i < chars.len() && crate::js::is_space(chars[*i]) {
            *i += 1;
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        loop {
            space(&mut i);
            if chars.get(i) != Some(&',') {
                break;
            }
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        if chars[i] == '"' {
            let mut field = String::new();
            let mut closed = false;
            i += 1;
            while i < chars.len() {
                match (chars[i], chars.get(i + 1)) {
                    ('\\', Some(&n)) if n == '"' || n == '\\' => {
                        field.push(n);
                        i += 2;
                    }
                    ('"', Some(&'"')) => {
                        field.push('"');
                        i += 2;
                    }
                    ('"', _) => {
                        i += 1;
                        closed = true;
                        break;
                    }
                    (c, _) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                return Err("unterminated quoted field in the comma-separated value".to_owned());
            }
            out.push(field);
            space(&mut i);
            if i < chars.len() && chars[i] != ',' {
                return Err(
                    "expected a comma after a quoted field in the comma-separated value".to_owned(),
                );
            }
        } else {
            let start = i;
            while i < chars.len() && chars[i] != ',' {
                i += 1;
            }
            let field: String = chars[start..i].iter().collect();
            out.push(crate::js::trim(&field).to_owned());
        }
    }
    Ok(out)
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
    fn comma_separated_values_split_like_promptfoo() {
        let split = |s: &str| split_comma_separated(s).unwrap();
        assert_eq!(split("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(split(r#""x, y", z"#), ["x, y", "z"]);
        assert_eq!(
            split(r#""q""uote", "back\"slash""#),
            [r#"q"uote"#, r#"back"slash"#]
        );
        assert_eq!(split(",,a,,"), ["a"]);
        assert_eq!(split("solo"), ["solo"]);
        assert!(split_comma_separated(r#""open"#).is_err());
        assert!(split_comma_separated(r#""a" b"#).is_err());
    }
}
