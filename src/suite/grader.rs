//! A suite's assertions, prepared once and shared: identical (rendered)
//! specs are parsed once, and tests with the same assertions share one
//! list. A test whose vars make a templated assertion invalid gets that as
//! its error, as in promptfoo; a type we do not grade is refused before any
//! value is rendered.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::report::Report;
use super::template::Engine;
use crate::assertions::{Assertion, parse_assertion};

/// Assertion lists shared between tests: a suite whose tests all take
/// `defaultTest`'s assertions holds that list once, not a million times.
#[derive(Default)]
pub(super) struct Lists(HashMap<Vec<usize>, Arc<[Arc<Assertion>]>>);

impl Lists {
    /// Distinct lists kept for sharing; past it each test has its own.
    const MAX: usize = 10_000;

    pub(super) fn intern(&mut self, list: Vec<Arc<Assertion>>) -> Arc<[Arc<Assertion>]> {
        let key: Vec<usize> = list.iter().map(|a| Arc::as_ptr(a) as usize).collect();
        if let Some(shared) = self.0.get(&key) {
            return shared.clone();
        }
        let shared: Arc<[Arc<Assertion>]> = list.into();
        if self.0.len() < Self::MAX {
            self.0.insert(key, shared.clone());
        }
        shared
    }
}

/// Parses assertions, sharing the prepared form of identical (rendered)
/// specs instead of recompiling their regexes and schemas per test: a suite
/// of a thousand tests usually holds a handful of distinct assertions.
#[derive(Default)]
pub(super) struct Grader {
    /// Renders assertion values, each distinct template compiled once.
    engine: Engine,
    prepared: HashMap<String, Prepared>,
    /// (location, message) already reported, so an expanded test reports once.
    said: BTreeSet<(String, String)>,
}

/// Distinct prepared assertions kept for sharing between tests.
const MAX_SHARED_ASSERTIONS: usize = 4096;

/// A parsed assertion (or its problems) and its warnings.
type Prepared = (Result<Arc<Assertion>, Vec<String>>, Vec<String>);

impl Grader {
    /// The test's assertions, or the error that keeps it from being graded.
    /// Problems of an assertion that holds no template refuse the suite.
    pub(super) fn prepare(
        &mut self,
        asserts: &[(String, &Value)],
        vars: &Map<String, Value>,
        r: &mut Report,
    ) -> Result<Vec<Arc<Assertion>>, String> {
        let mut out = Vec::with_capacity(asserts.len());
        let mut test_error = None;
        for (at, spec) in asserts {
            // A file reference in the document was reported by the parser;
            // one from a CSV cell (`javascript:file://x.js`) is reported here,
            // never dropped.
            if let Some(file) = spec
                .get("value")
                .and_then(Value::as_str)
                .filter(|v| v.starts_with("file://"))
            {
                let location = format!("{at}.value");
                if !r.problems.iter().any(|p| p.location == location) {
                    r.problem(location, super::parse::file_reference(file));
                }
                continue;
            }
            let templated = has_template(spec);
            if templated && let Some(p) = crate::assertions::type_problem(spec) {
                if self.said.insert((at.clone(), p.clone())) {
                    r.problem(at.as_str(), p);
                }
                continue;
            }
            let rendered = if templated {
                match render_spec(spec, vars, &mut self.engine) {
                    Ok(s) => s,
                    Err(e) => {
                        test_error.get_or_insert_with(|| format!("{at}: {e}"));
                        continue;
                    }
                }
            } else {
                (*spec).clone()
            };
            let parse = || match parse_assertion(&rendered) {
                Ok((a, w)) => (Ok(Arc::new(a)), w),
                Err(problems) => (Err(problems), Vec::new()),
            };
            let key = rendered.to_string();
            // Past a bound (each CSV row with its own expected value), an
            // assertion is parsed for its test alone instead of kept.
            let alone;
            let (parsed, warnings) = if self.prepared.contains_key(&key)
                || self.prepared.len() < MAX_SHARED_ASSERTIONS
            {
                &*self.prepared.entry(key).or_insert_with(parse)
            } else {
                alone = parse();
                &alone
            };
            for w in warnings.iter() {
                if self.said.insert((at.clone(), w.clone())) {
                    r.warn(at.as_str(), w.clone());
                }
            }
            match parsed {
                Ok(a) => out.push(a.clone()),
                Err(problems) if templated => {
                    test_error.get_or_insert_with(|| format!("{at}: {}", problems.join("; ")));
                }
                Err(problems) => {
                    for p in problems.iter() {
                        if self.said.insert((at.clone(), p.clone())) {
                            r.problem(at.as_str(), p.clone());
                        }
                    }
                }
            }
        }
        match test_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(a) => a.iter().any(has_template),
        Value::Object(o) => ["value", "metric", "assert"]
            .iter()
            .filter_map(|k| o.get(*k))
            .any(has_template),
        _ => false,
    }
}

/// The assertion with its `value` strings and `metric` rendered with the
/// test's vars (an `assert-set`'s assertions too), as promptfoo renders
/// them when it grades.
fn render_spec(
    spec: &Value,
    vars: &Map<String, Value>,
    engine: &mut Engine,
) -> Result<Value, String> {
    let Value::Object(obj) = spec else {
        return Ok(spec.clone());
    };
    let mut render = |s: &str| engine.render_cached(s, vars).map(Value::String);
    let mut out = obj.clone();
    match obj.get("value") {
        Some(Value::String(s)) if has_template(&Value::String(s.clone())) => {
            out.insert("value".to_owned(), render(s)?);
        }
        Some(Value::Array(items)) => {
            let rendered = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => render(s),
                    other => Ok(other.clone()),
                })
                .collect::<Result<_, _>>()?;
            out.insert("value".to_owned(), Value::Array(rendered));
        }
        _ => {}
    }
    // A metric name that does not render is kept as written (promptfoo
    // logs a warning).
    if let Some(Value::String(m)) = obj.get("metric")
        && let Ok(rendered) = render(m)
    {
        out.insert("metric".to_owned(), rendered);
    }
    if let Some(Value::Array(inner)) = obj.get("assert") {
        let rendered = inner
            .iter()
            .map(|a| render_spec(a, vars, engine))
            .collect::<Result<_, _>>()?;
        out.insert("assert".to_owned(), Value::Array(rendered));
    }
    Ok(Value::Object(out))
}
