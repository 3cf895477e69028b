//! Test cases: `defaultTest` merging, array vars expanded into
//! combinations (as promptfoo does), assertion values rendered with the
//! test's vars and prepared, missing vars found before anything runs.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::parse::Report;
use super::template::{self, Templates};
use super::{MAX_ASSERTIONS, MAX_TESTS, TestCase, kind_of};
use crate::assertions::{Assertion, parse_assertion};

const TEST_KEYS: &[&str] = &[
    "description",
    "vars",
    "assert",
    "threshold",
    "metadata",
    "options",
];
/// Keys that would change what runs or how it is graded.
const TEST_UNRUNNABLE: &[(&str, &str)] = &[
    (
        "providerOutput",
        "fixed provider outputs (`providerOutput`) are not supported",
    ),
    (
        "assertScoringFunction",
        "custom scoring functions are not supported",
    ),
    ("provider", "a per-test provider is not supported"),
    ("providers", "per-test provider filters are not supported"),
    ("prompts", "per-test prompt filters are not supported"),
];
const OPTION_UNRUNNABLE: &[&str] = &["transform", "postprocess", "transformVars"];

/// The parts of a test (or `defaultTest`) as written.
#[derive(Default)]
struct Partial<'a> {
    description: Option<String>,
    vars: Map<String, Value>,
    asserts: Vec<(String, &'a Value)>,
    threshold: Option<f64>,
    metadata: Map<String, Value>,
    disable_default_asserts: bool,
}

pub(super) fn test_cases(
    root: &Map<String, Value>,
    templates: &Templates,
    prompts: usize,
    r: &mut Report,
) -> Vec<TestCase> {
    let default = match root.get("defaultTest") {
        None | Some(Value::Null) => Partial::default(),
        Some(Value::Object(o)) => partial("defaultTest", o, r),
        Some(other) => {
            r.problem(
                "defaultTest",
                format!("must be an object, got {}", kind_of(other)),
            );
            Partial::default()
        }
    };
    let empty = Value::Object(Map::new());
    let tests: Vec<&Value> = match root.get("tests") {
        None | Some(Value::Null) => vec![&empty], // promptfoo runs each prompt once
        Some(Value::Array(a)) if a.is_empty() => vec![&empty],
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::String(_)) => {
            r.problem(
                "tests",
                "tests from files (file://, CSV) are not supported; list them inline",
            );
            return Vec::new();
        }
        Some(other) => {
            r.problem("tests", format!("must be a list, got {}", kind_of(other)));
            return Vec::new();
        }
    };
    let env = template::environment();
    let mut grader = Grader::default();
    let mut out = Vec::new();
    for (i, t) in tests.into_iter().enumerate() {
        let at = format!("tests[{i}]");
        let Value::Object(obj) = t else {
            r.problem(at, format!("must be an object, got {}", kind_of(t)));
            continue;
        };
        let own = partial(&at, obj, r);
        let mut vars = default.vars.clone();
        vars.extend(own.vars.clone());
        let mut asserts = if own.disable_default_asserts {
            Vec::new()
        } else {
            default.asserts.clone()
        };
        asserts.extend(own.asserts.iter().cloned());
        if asserts.len() > MAX_ASSERTIONS {
            r.problem(
                at.as_str(),
                format!(
                    "{} assertions, over the limit of {MAX_ASSERTIONS}",
                    asserts.len()
                ),
            );
            continue;
        }
        report_missing_vars(&at, &vars, templates, prompts, r);
        let combos = match combinations(&vars, MAX_TESTS - out.len().min(MAX_TESTS)) {
            Some(c) => c,
            None => {
                r.problem(
                    "tests",
                    format!("more than {MAX_TESTS} test cases once list vars are expanded"),
                );
                return out;
            }
        };
        let mut metadata = default.metadata.clone();
        metadata.extend(own.metadata.clone());
        for combo in combos {
            let assertions = grader.prepare(&asserts, &combo, &env, r);
            out.push(TestCase {
                idx: out.len(),
                source_idx: i,
                description: own.description.clone(),
                vars: combo,
                assertions,
                threshold: own.threshold.or(default.threshold),
                metadata: metadata.clone(),
                assert_specs: asserts.iter().map(|(_, v)| (*v).clone()).collect(),
            });
        }
    }
    out
}

fn partial<'a>(at: &str, obj: &'a Map<String, Value>, r: &mut Report) -> Partial<'a> {
    for (key, why) in TEST_UNRUNNABLE {
        if obj.contains_key(*key) {
            r.problem(format!("{at}.{key}"), *why);
        }
    }
    let known: Vec<&str> = TEST_KEYS
        .iter()
        .chain(TEST_UNRUNNABLE.iter().map(|(k, _)| k))
        .copied()
        .collect();
    r.unknown_keys(at, obj, &known);
    let mut p = Partial::default();
    match obj.get("description") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => p.description = Some(s.clone()),
        Some(other) => r.problem(
            format!("{at}.description"),
            format!("must be a string, got {}", kind_of(other)),
        ),
    }
    match obj.get("vars") {
        None | Some(Value::Null) => {}
        Some(Value::Object(v)) => p.vars = v.clone(),
        Some(other) => r.problem(
            format!("{at}.vars"),
            format!(
                "must be a mapping of names to values, got {}",
                kind_of(other)
            ),
        ),
    }
    match obj.get("assert") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            p.asserts = a
                .iter()
                .enumerate()
                .map(|(j, v)| (format!("{at}.assert[{j}]"), v))
                .collect();
        }
        Some(other) => r.problem(
            format!("{at}.assert"),
            format!("must be a list, got {}", kind_of(other)),
        ),
    }
    match obj.get("threshold") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => p.threshold = n.as_f64(),
        Some(other) => r.problem(
            format!("{at}.threshold"),
            format!("must be a number, got {}", kind_of(other)),
        ),
    }
    match obj.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => p.metadata = m.clone(),
        Some(other) => r.problem(
            format!("{at}.metadata"),
            format!("must be an object, got {}", kind_of(other)),
        ),
    }
    match obj.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for key in OPTION_UNRUNNABLE {
                if o.contains_key(*key) {
                    r.problem(
                        format!("{at}.options.{key}"),
                        "JavaScript transforms are not supported",
                    );
                }
            }
            let known: Vec<&str> = ["disableDefaultAsserts"]
                .iter()
                .chain(OPTION_UNRUNNABLE)
                .copied()
                .collect();
            r.unknown_keys(&format!("{at}.options"), o, &known);
            p.disable_default_asserts = o.get("disableDefaultAsserts") == Some(&Value::Bool(true));
        }
        Some(other) => r.problem(
            format!("{at}.options"),
            format!("must be an object, got {}", kind_of(other)),
        ),
    }
    p
}

fn report_missing_vars(
    at: &str,
    vars: &Map<String, Value>,
    templates: &Templates,
    prompts: usize,
    r: &mut Report,
) {
    for p in 0..prompts {
        let missing: BTreeSet<String> = templates
            .variables(p)
            .into_iter()
            .filter(|name| !vars.contains_key(name))
            .collect();
        if !missing.is_empty() {
            let names = missing
                .iter()
                .map(|m| format!("{{{{{m}}}}}"))
                .collect::<Vec<_>>()
                .join(", ");
            r.problem(
                at,
                format!("prompts[{p}] uses {names}, which this test does not set in `vars`"),
            );
        }
    }
}

/// promptfoo's expansion: a var whose value is a list of strings yields one
/// test per element (the cartesian product across such vars); any other
/// value, lists of non-strings included, is passed whole. `None` if there
/// would be more than `limit` combinations.
fn combinations(vars: &Map<String, Value>, limit: usize) -> Option<Vec<Map<String, Value>>> {
    let mut total: usize = 1;
    for v in vars.values() {
        if let Value::Array(a) = v
            && a.first().is_some_and(Value::is_string)
        {
            total = total.checked_mul(a.len())?;
        }
    }
    if total > limit {
        return None;
    }
    let mut combos = vec![Map::new()];
    for (key, value) in vars {
        let choices: Vec<&Value> = match value {
            Value::Array(a) if a.first().is_some_and(Value::is_string) => a.iter().collect(),
            other => vec![other],
        };
        combos = combos
            .into_iter()
            .flat_map(|combo| {
                choices.iter().map(move |choice| {
                    let mut next = combo.clone();
                    next.insert(key.clone(), (*choice).clone());
                    next
                })
            })
            .collect();
    }
    Some(combos)
}

/// Parses assertions, reusing the prepared form of identical (rendered)
/// specs instead of recompiling their regexes and schemas per test: a suite
/// of a thousand tests usually holds a handful of distinct assertions.
#[derive(Default)]
struct Grader {
    prepared: HashMap<String, Prepared>,
}

/// A parsed assertion (or its problems) and its warnings.
type Prepared = (Result<Assertion, Vec<String>>, Vec<String>);

impl Grader {
    fn prepare(
        &mut self,
        asserts: &[(String, &Value)],
        vars: &Map<String, Value>,
        env: &minijinja::Environment<'static>,
        r: &mut Report,
    ) -> Vec<Assertion> {
        let mut out = Vec::with_capacity(asserts.len());
        for (at, spec) in asserts {
            let rendered = match render_value(spec, vars, env) {
                Ok(s) => s,
                Err(e) => {
                    r.problem(at.as_str(), e);
                    continue;
                }
            };
            let (parsed, warnings) =
                self.prepared
                    .entry(rendered.to_string())
                    .or_insert_with(|| match parse_assertion(&rendered) {
                        Ok((a, w)) => (Ok(a), w),
                        Err(problems) => (Err(problems), Vec::new()),
                    });
            // The same location recurs once per expanded combination: say it once.
            for w in warnings.iter() {
                if !r
                    .warnings
                    .iter()
                    .any(|p| &p.location == at && &p.message == w)
                {
                    r.warn(at.as_str(), w.clone());
                }
            }
            match parsed {
                Ok(a) => out.push(a.clone()),
                Err(problems) => {
                    for p in problems.iter() {
                        if !r
                            .problems
                            .iter()
                            .any(|q| &q.location == at && &q.message == p)
                        {
                            r.problem(at.as_str(), p.clone());
                        }
                    }
                }
            }
        }
        out
    }
}

fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(a) => a.iter().any(has_template),
        _ => false,
    }
}

/// The assertion with template strings in its `value` rendered.
fn render_value(
    spec: &Value,
    vars: &Map<String, Value>,
    env: &minijinja::Environment<'static>,
) -> Result<Value, String> {
    let Some(value) = spec.get("value").filter(|v| has_template(v)) else {
        return Ok(spec.clone());
    };
    let render = |s: &str| template::render_str(env, s, vars).map(Value::String);
    let rendered = match value {
        Value::String(s) => render(s)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => render(s),
                    other => Ok(other.clone()),
                })
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    };
    let mut out = spec.clone();
    out["value"] = rendered;
    Ok(out)
}
