//! The document level: syntax, top-level keys, prompts, providers, options.

use serde_json::{Map, Value};

use super::document::Document;
use super::provider::provider_spec;
use super::report::Report;
use super::template::Templates;
use super::{
    Format, Loaded, MAX_JOBS, MAX_PROMPT_BYTES, MAX_PROMPTS, MAX_PROVIDERS, MAX_SOURCE_BYTES,
    Problem, Prompt, ProviderSpec, Suite, SuiteError, cases, kind_of,
};

const TOP_KEYS: &[&str] = &[
    "description",
    "prompts",
    "providers",
    "tests",
    "defaultTest",
    "evaluateOptions",
];
/// Keys whose absence of support would change which tests run.
const TOP_UNRUNNABLE: &[(&str, &str)] = &[(
    "scenarios",
    "`scenarios` is not supported; write the combinations as `tests`",
)];
const OPTION_KEYS: &[&str] = &["maxConcurrency", "cache", "repeat", "timeoutMs"];

/// Parses a suite document. `check_provider` returns the problems of one
/// provider spec (unknown id, bad config); they are listed with the rest.
pub fn parse(
    source: &str,
    format: Format,
    check_provider: &dyn Fn(&ProviderSpec) -> Vec<String>,
) -> Result<Loaded, SuiteError> {
    parse_document(&document(source, format)?, check_provider)
}

/// The document, checked for size and syntax only.
pub fn document(source: &str, format: Format) -> Result<Document, SuiteError> {
    let fail = |message: String| SuiteError {
        problems: vec![Problem::new("", message)],
    };
    if source.len() > MAX_SOURCE_BYTES {
        return Err(fail(format!(
            "suite is {} bytes, over the limit of {MAX_SOURCE_BYTES}",
            source.len()
        )));
    }
    match format {
        Format::Json => {
            Document::from_json(source).map_err(|e| fail(format!("not valid JSON: {e}")))
        }
        Format::Yaml => {
            Document::from_yaml(source).map_err(|e| fail(format!("not valid YAML: {e}")))
        }
    }
}

/// The prompt labels and provider names of a stored suite (JSON), read
/// without building its tests: what the view of a finished execution
/// shows per prompt x provider.
pub fn labels(config: &str) -> (Vec<String>, Vec<String>) {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        prompts: Option<Value>,
        #[serde(default)]
        providers: Option<Value>,
    }
    let Ok(head) = serde_json::from_str::<Head>(config) else {
        return (Vec::new(), Vec::new());
    };
    let mut r = Report::default();
    let prompts = prompts(head.prompts.as_ref(), &mut r)
        .into_iter()
        .map(|p| p.label)
        .collect();
    let providers = providers(head.providers.as_ref(), &|_| Vec::new(), &mut r)
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    (prompts, providers)
}

/// Each inline test's label from a stored suite document, in test order:
/// its description, else its variables (`k=v, ...`, cut at 80 characters);
/// empty when the document has no inline tests.
pub fn test_labels(config: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Tests {
        #[serde(default)]
        tests: Option<Value>,
    }
    let Ok(Tests {
        tests: Some(Value::Array(tests)),
    }) = serde_json::from_str::<Tests>(config)
    else {
        return Vec::new();
    };
    tests
        .iter()
        .map(|t| match (t.get("description"), t.get("vars")) {
            (Some(Value::String(d)), _) => d.clone(),
            (_, Some(Value::Object(vars))) => {
                let all = vars
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut cut: String = all.chars().take(80).collect();
                if cut.len() < all.len() {
                    cut.push('…');
                }
                cut
            }
            _ => String::new(),
        })
        .collect()
}

/// Parses a suite from its document (see [`document`]).
pub fn parse_document(
    doc: &Document,
    check_provider: &dyn Fn(&ProviderSpec) -> Vec<String>,
) -> Result<Loaded, SuiteError> {
    let root = doc.root();

    let mut r = Report::default();
    for (key, why) in TOP_UNRUNNABLE {
        if root.contains_key(*key) {
            r.problem(*key, *why);
        }
    }
    let unrunnable: Vec<&str> = TOP_UNRUNNABLE.iter().map(|(k, _)| *k).collect();
    let known: Vec<&str> = TOP_KEYS.iter().chain(&unrunnable).copied().collect();
    r.unknown_keys("", root, &known);

    let description = match root.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            r.problem(
                "description",
                format!("must be a string, got {}", kind_of(other)),
            );
            None
        }
    };
    let prompts = prompts(root.get("prompts"), &mut r);
    let providers = providers(root.get("providers"), check_provider, &mut r);
    let (max_concurrency, use_cache, timeout_ms) = options(root.get("evaluateOptions"), &mut r);

    file_references(root, &mut r);
    let templates =
        match Templates::compile(&prompts.iter().map(|p| p.raw.clone()).collect::<Vec<_>>()) {
            Ok(t) => Some(t),
            Err((i, e)) => {
                r.problem(format!("prompts[{i}]"), e);
                None
            }
        };
    let cases = match &templates {
        Some(t) => cases::test_cases(root, doc.tests(), t, prompts.len(), check_provider, &mut r),
        None => cases::Cases {
            tests: Vec::new(),
            test_providers: Vec::new(),
        },
    };
    let tests = cases.tests;
    let jobs = prompts.len() * providers.len() * tests.len();
    if jobs > MAX_JOBS {
        r.problem(
            "",
            format!("{jobs} jobs (prompts x providers x tests), over the limit of {MAX_JOBS}"),
        );
    }
    match templates {
        Some(templates) if r.problems.is_empty() => Ok(Loaded {
            suite: Suite {
                description,
                prompts,
                providers,
                tests,
                test_providers: cases.test_providers,
                max_concurrency,
                use_cache,
                timeout_ms,
                templates,
            },
            warnings: r.warnings,
        }),
        _ => Err(SuiteError {
            problems: r.problems,
        }),
    }
}

fn prompts(value: Option<&Value>, r: &mut Report) -> Vec<Prompt> {
    let items: Vec<(String, &Value)> = match value {
        None | Some(Value::Null) => {
            r.problem("prompts", "missing: a suite needs at least one prompt");
            return Vec::new();
        }
        Some(v @ Value::String(_)) => vec![("prompts".to_owned(), v)],
        Some(Value::Array(a)) if a.is_empty() => {
            r.problem("prompts", "empty: a suite needs at least one prompt");
            return Vec::new();
        }
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("prompts[{i}]"), v))
            .collect(),
        Some(other) => {
            r.problem(
                "prompts",
                format!("must be a string or a list, got {}", kind_of(other)),
            );
            return Vec::new();
        }
    };
    if items.len() > MAX_PROMPTS {
        r.problem(
            "prompts",
            format!("{} prompts, over the limit of {MAX_PROMPTS}", items.len()),
        );
        return Vec::new();
    }
    items
        .into_iter()
        .filter_map(|(at, v)| prompt(&at, v, r))
        .collect()
}

fn prompt(at: &str, v: &Value, r: &mut Report) -> Option<Prompt> {
    let (raw, label) = match v {
        Value::String(s) => (s.clone(), None),
        Value::Object(o) => {
            r.unknown_keys(at, o, &["raw", "label", "id"]);
            let label = o.get("label").and_then(Value::as_str).map(str::to_owned);
            match o.get("raw") {
                Some(Value::String(s)) => (s.clone(), label),
                _ => {
                    r.problem(at, "needs `raw` (the template text)");
                    return None;
                }
            }
        }
        other => {
            r.problem(
                at,
                format!(
                    "must be a string or an object with `raw`, got {}",
                    kind_of(other)
                ),
            );
            return None;
        }
    };
    if raw.starts_with("file://") {
        // Reported by `file_references`.
        return None;
    }
    if raw.trim().is_empty() {
        r.problem(at, "prompt is empty");
        return None;
    }
    if raw.len() > MAX_PROMPT_BYTES {
        r.problem(
            at,
            format!(
                "prompt is {} bytes, over the limit of {MAX_PROMPT_BYTES}",
                raw.len()
            ),
        );
        return None;
    }
    let id = crate::hash::sha256_hex(raw.as_bytes());
    Some(Prompt {
        id,
        label: label.unwrap_or_else(|| raw.clone()),
        raw,
    })
}

fn providers(
    value: Option<&Value>,
    check: &dyn Fn(&ProviderSpec) -> Vec<String>,
    r: &mut Report,
) -> Vec<ProviderSpec> {
    let items: Vec<&Value> = match value {
        None | Some(Value::Null) => {
            r.problem("providers", "missing: a suite needs at least one provider");
            return Vec::new();
        }
        Some(v @ Value::String(_)) => vec![v],
        Some(Value::Array(a)) if a.is_empty() => {
            r.problem("providers", "empty: a suite needs at least one provider");
            return Vec::new();
        }
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => {
            r.problem(
                "providers",
                format!("must be a string or a list, got {}", kind_of(other)),
            );
            return Vec::new();
        }
    };
    if items.len() > MAX_PROVIDERS {
        r.problem(
            "providers",
            format!(
                "{} providers, over the limit of {MAX_PROVIDERS}",
                items.len()
            ),
        );
        return Vec::new();
    }
    let mut specs = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        let at = format!("providers[{i}]");
        if let Some(spec) = provider_spec(&at, v, r) {
            for message in check(&spec) {
                r.problem(at.as_str(), message);
            }
            specs.push(spec);
        }
    }
    specs
}

fn options(value: Option<&Value>, r: &mut Report) -> (Option<u32>, Option<bool>, Option<u64>) {
    let o = match value {
        None | Some(Value::Null) => return (None, None, None),
        Some(Value::Object(o)) => o,
        Some(other) => {
            r.problem(
                "evaluateOptions",
                format!("must be an object, got {}", kind_of(other)),
            );
            return (None, None, None);
        }
    };
    r.unknown_keys("evaluateOptions", o, OPTION_KEYS);
    let max = match o.get("maxConcurrency") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|n| (1..=10_000).contains(n)) {
            Some(n) => Some(n as u32),
            None => {
                r.problem(
                    "evaluateOptions.maxConcurrency",
                    format!("must be an integer from 1 to 10000, got {v}"),
                );
                None
            }
        },
    };
    let cache = match o.get("cache") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            r.problem(
                "evaluateOptions.cache",
                format!("must be true or false, got {}", kind_of(other)),
            );
            None
        }
    };
    if let Some(repeat) = o.get("repeat").filter(|v| v.as_u64() != Some(1)) {
        r.problem(
            "evaluateOptions.repeat",
            format!("repeating tests is not supported (got {repeat})"),
        );
    }
    let timeout = match o.get("timeoutMs") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|n| (1..=3_600_000).contains(n)) {
            Some(n) => Some(n),
            None => {
                r.problem(
                    "evaluateOptions.timeoutMs",
                    format!("must be an integer from 1 to 3600000 (ms), got {v}"),
                );
                None
            }
        },
    };
    (max, cache, timeout)
}

/// Why a `file://` reference cannot be read here.
pub(super) fn file_reference(s: &str) -> String {
    format!(
        "{s:?} is a file reference; the service reads no files: inline its content, \
         or run the suite with `promptgauge run`, which resolves file:// from the \
         suite's folder"
    )
}

/// Every `file://` reference where promptfoo would read a file. The
/// service never reads its own files for a suite: `promptgauge run`
/// resolves them from the suite's folder and sends the suite inlined.
fn file_references(root: &Map<String, Value>, r: &mut Report) {
    for key in ["prompts", "providers", "tests", "defaultTest"] {
        if let Some(v) = root.get(key) {
            file_references_in(key.to_owned(), v, r);
        }
    }
}

/// Every `file://` string in `v` (at `at`), reported as a problem.
pub(super) fn file_references_in(at: String, v: &Value, r: &mut Report) {
    match v {
        Value::String(s) if s.starts_with("file://") => r.problem(at, file_reference(s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                file_references_in(format!("{at}[{i}]"), item, r);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                file_references_in(format!("{at}.{k}"), item, r);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_labels_are_descriptions_else_variables() {
        let doc = r#"{"prompts":["p"],"tests":[{"description":"greets"},{"vars":{"name":"Ada","n":3}},{}]}"#;
        assert_eq!(super::test_labels(doc), ["greets", "name=Ada, n=3", ""]);
        assert!(super::test_labels("{}").is_empty());
        assert!(super::test_labels("not json").is_empty());
        assert!(super::test_labels(r#"{"tests":"file://t.csv"}"#).is_empty());
    }
}
