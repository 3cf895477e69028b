//! Test cases: `defaultTest` merging, array vars expanded into
//! combinations, vars staged and assertion values rendered with them, as
//! promptfoo does. A problem that holds whatever the vars are refuses the
//! suite; one that only a test's vars cause (a templated value that comes
//! out empty) becomes that test's error, as it is in promptfoo.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::document::Tests;
use super::grader::{Grader, Lists};
use super::provider::provider_spec;
use super::report::Report;
use super::template::{Engine, Templates};
use super::vars::{self, StagedVars};
use super::{MAX_ASSERTIONS, MAX_TESTS, ProviderSpec, TestCase, TestExtra, kind_of};

const TEST_KEYS: &[&str] = &[
    "description",
    "vars",
    "assert",
    "threshold",
    "metadata",
    "options",
    "provider",
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
    ("providers", "per-test provider filters are not supported"),
    ("prompts", "per-test prompt filters are not supported"),
];
const OPTION_KEYS: &[&str] = &[
    "disableDefaultAsserts",
    "disableVarExpansion",
    "prefix",
    "suffix",
];
const OPTION_UNRUNNABLE: &[&str] = &["transform", "postprocess", "transformVars"];

/// The parts of a test (or `defaultTest`) as written.
#[derive(Default, Clone)]
struct Partial<'a> {
    description: Option<String>,
    vars: Map<String, Value>,
    asserts: Vec<(String, &'a Value)>,
    threshold: Option<f64>,
    metadata: Map<String, Value>,
    disable_default_asserts: bool,
    disable_var_expansion: bool,
    prefix: Option<String>,
    suffix: Option<String>,
    provider: Option<ProviderSpec>,
}

/// The test cases of a suite, and the providers tests name for themselves.
pub(super) struct Cases {
    pub(super) tests: Vec<TestCase>,
    pub(super) test_providers: Vec<ProviderSpec>,
}

pub(super) fn test_cases(
    root: &Map<String, Value>,
    tests: Tests<'_>,
    templates: &Templates,
    prompts: usize,
    check_provider: &dyn Fn(&ProviderSpec) -> Vec<String>,
    r: &mut Report,
) -> Cases {
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
    let items_hint = match &tests {
        Tests::Items(items) => items.len(),
        Tests::Value(_) => 0,
    };
    let tests: Vec<Item<'_>> = match tests {
        Tests::Items([]) => vec![Item::Value(&empty)],
        // Each read when its turn comes, so only one is a tree at a time.
        Tests::Items(items) => items.iter().map(|raw| Item::Raw(raw)).collect(),
        // promptfoo runs each prompt once.
        Tests::Value(None | Some(Value::Null)) => vec![Item::Value(&empty)],
        Tests::Value(Some(Value::Array(a))) if a.is_empty() => vec![Item::Value(&empty)],
        Tests::Value(Some(Value::Array(a))) => a.iter().map(Item::Value).collect(),
        Tests::Value(Some(block @ Value::Object(o))) if o.contains_key("csv") => {
            vec![Item::Value(block)]
        }
        // A file reference; reported as one by the parser.
        Tests::Value(Some(Value::String(s))) if s.starts_with("file://") => Vec::new(),
        Tests::Value(Some(other)) => {
            r.problem("tests", format!("must be a list, got {}", kind_of(other)));
            return Cases {
                tests: Vec::new(),
                test_providers: Vec::new(),
            };
        }
    };
    let mut b = Builder {
        engine: templates.engine(),
        grader: Grader::default(),
        providers: Vec::new(),
        missing: BTreeMap::new(),
        lists: Lists::default(),
        // One test per item at least; list vars add to it.
        out: Vec::with_capacity(items_hint.min(MAX_TESTS)),
    };
    let default_provider = default
        .provider
        .as_ref()
        .map(|p| b.provider("defaultTest.provider", p, check_provider, r));
    for (i, item) in tests.into_iter().enumerate() {
        let at = format!("tests[{i}]");
        let read;
        let t: &Value = match item {
            Item::Value(v) => v,
            Item::Raw(raw) => match crate::common::json::from_slice_strict(raw.get().as_bytes()) {
                Ok(v) => {
                    read = v;
                    super::parse::file_references_in(at.clone(), &read, r);
                    &read
                }
                Err(e) => {
                    r.problem(at, format!("not valid JSON: {e}"));
                    continue;
                }
            },
        };
        if let Some(block) = t.as_object().filter(|o| o.contains_key("csv")) {
            if !b.add_csv(
                i,
                &at,
                block,
                &default,
                default_provider,
                templates,
                prompts,
                r,
            ) {
                break;
            }
            continue;
        }
        let Value::Object(obj) = t else {
            if !t.as_str().is_some_and(|s| s.starts_with("file://")) {
                r.problem(at, format!("must be an object, got {}", kind_of(t)));
            }
            continue;
        };
        let own = partial(&at, obj, r);
        let provider = match &own.provider {
            Some(p) => Some(b.provider(&format!("{at}.provider"), p, check_provider, r)),
            None => default_provider,
        };
        if !b.add(i, &at, &default, own, provider, templates, prompts, r) {
            break;
        }
    }
    for (p, names) in &b.missing {
        let list: Vec<String> = names
            .iter()
            .map(|(name, (count, first))| format!("{{{{{name}}}}} ({count}, first {first})"))
            .collect();
        r.warn(
            format!("prompts[{p}]"),
            format!(
                "uses vars some tests do not set; they render as empty, as in promptfoo: {}",
                list.join(", ")
            ),
        );
    }
    let mut tests = b.out;
    tests.shrink_to_fit();
    Cases {
        tests,
        test_providers: b.providers,
    }
}

/// One item of `tests`: a value of the document, or the compact text of
/// a list item, read when its turn comes.
enum Item<'a> {
    Value(&'a Value),
    Raw(&'a serde_json::value::RawValue),
}

/// What test expansion accumulates.
struct Builder<'e> {
    engine: &'e Engine,
    grader: Grader,
    providers: Vec<ProviderSpec>,
    /// Per prompt: var name -> (tests without it, first such test).
    missing: BTreeMap<usize, BTreeMap<String, (usize, String)>>,
    lists: Lists,
    out: Vec<TestCase>,
}

impl Builder<'_> {
    /// The index of a test's provider among the suite's test providers.
    fn provider(
        &mut self,
        at: &str,
        spec: &ProviderSpec,
        check: &dyn Fn(&ProviderSpec) -> Vec<String>,
        r: &mut Report,
    ) -> usize {
        if let Some(i) = self.providers.iter().position(|p| p == spec) {
            return i;
        }
        for message in check(spec) {
            r.problem(at, message);
        }
        self.providers.push(spec.clone());
        self.providers.len() - 1
    }

    /// Expands one test into its combinations; `false` once the test
    /// limit is passed.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        i: usize,
        at: &str,
        default: &Partial<'_>,
        own: Partial<'_>,
        provider: Option<usize>,
        templates: &Templates,
        prompts: usize,
        r: &mut Report,
    ) -> bool {
        let mut vars = default.vars.clone();
        vars.extend(own.vars);
        let mut asserts = if own.disable_default_asserts {
            Vec::new()
        } else {
            default.asserts.clone()
        };
        asserts.extend(own.asserts);
        if asserts.len() > MAX_ASSERTIONS {
            r.problem(
                at,
                format!(
                    "{} assertions, over the limit of {MAX_ASSERTIONS}",
                    asserts.len()
                ),
            );
            return true;
        }
        self.note_missing(at, &vars, templates, prompts);
        let combos = if own.disable_var_expansion || default.disable_var_expansion {
            vec![vars]
        } else {
            match combinations(&vars, MAX_TESTS - self.out.len().min(MAX_TESTS)) {
                Some(c) => c,
                None => {
                    r.problem(
                        "tests",
                        format!("more than {MAX_TESTS} test cases (each combination of list vars counts)"),
                    );
                    return false;
                }
            }
        };
        let mut metadata = default.metadata.clone();
        metadata.extend(own.metadata);
        for combo in combos {
            let (staged, error) = match vars::stage(self.engine, &combo) {
                Ok(s) => (s, None),
                Err(e) => (StagedVars::default(), Some(e)),
            };
            let assertion_vars = staged.resolved.as_ref().unwrap_or(&combo);
            let (assertions, error) = match error {
                Some(e) => (Vec::new(), Some(e)),
                None => match self.grader.prepare(&asserts, assertion_vars, r) {
                    Ok(a) => (a, None),
                    Err(e) => (Vec::new(), Some(e)),
                },
            };
            let assertions = self.lists.intern(assertions);
            let extra = TestExtra {
                description: own.description.clone(),
                staged,
                threshold: own.threshold.or(default.threshold),
                metadata: metadata.clone(),
                prefix: own.prefix.clone().or_else(|| default.prefix.clone()),
                suffix: own.suffix.clone().or_else(|| default.suffix.clone()),
                provider,
                error,
            };
            self.out
                .push(TestCase::new(self.out.len(), i, combo, assertions, extra));
        }
        true
    }

    /// The tests of an inlined CSV (`{csv: <text>, file: <name>}`), one
    /// row at a time; `false` once the test limit is passed.
    #[allow(clippy::too_many_arguments)]
    fn add_csv(
        &mut self,
        i: usize,
        at: &str,
        block: &Map<String, Value>,
        default: &Partial<'_>,
        provider: Option<usize>,
        templates: &Templates,
        prompts: usize,
        r: &mut Report,
    ) -> bool {
        r.unknown_keys(at, block, &["csv", "file"]);
        let Some(text) = block.get("csv").and_then(Value::as_str) else {
            r.problem(format!("{at}.csv"), "must be the text of a CSV file");
            return true;
        };
        let from = block
            .get("file")
            .and_then(Value::as_str)
            .map_or_else(String::new, |f| format!(" (file://{f})"));
        let mut more = true;
        let read = super::rows::for_each_test(text, |n, row| {
            let row_at = format!("{at}.csv[{n}]");
            let Value::Object(obj) = &row else {
                return true;
            };
            let own = partial(&row_at, obj, r);
            more = self.add(i, &row_at, default, own, provider, templates, prompts, r);
            more
        });
        if let Err(e) = read {
            r.problem(at, format!("CSV{from}: {e}"));
        }
        more
    }

    fn note_missing(
        &mut self,
        at: &str,
        vars: &Map<String, Value>,
        templates: &Templates,
        prompts: usize,
    ) {
        for p in 0..prompts {
            for name in templates.variables(p) {
                if vars.contains_key(name) {
                    continue;
                }
                let entry = self.missing.entry(p).or_default();
                entry
                    .entry(name.clone())
                    .and_modify(|(n, _)| *n += 1)
                    .or_insert((1, at.to_owned()));
            }
        }
    }
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
    let wrong = |r: &mut Report, key: &str, want: &str, got: &Value| {
        r.problem(
            format!("{at}.{key}"),
            format!("must be {want}, got {}", kind_of(got)),
        );
    };
    match obj.get("description") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => p.description = Some(s.clone()),
        Some(other) => wrong(r, "description", "a string", other),
    }
    match obj.get("vars") {
        None | Some(Value::Null) => {}
        Some(Value::Object(v)) => p.vars = v.clone(),
        Some(other) => wrong(r, "vars", "a mapping of names to values", other),
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
        Some(other) => wrong(r, "assert", "a list", other),
    }
    match obj.get("threshold") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => p.threshold = n.as_f64(),
        Some(other) => wrong(r, "threshold", "a number", other),
    }
    match obj.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => p.metadata = m.clone(),
        Some(other) => wrong(r, "metadata", "an object", other),
    }
    match obj.get("provider") {
        None | Some(Value::Null) => {}
        Some(v) => p.provider = provider_spec(&format!("{at}.provider"), v, r),
    }
    match obj.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => options(at, o, &mut p, r),
        Some(other) => wrong(r, "options", "an object", other),
    }
    p
}

fn options(at: &str, o: &Map<String, Value>, p: &mut Partial<'_>, r: &mut Report) {
    for key in OPTION_UNRUNNABLE {
        if o.contains_key(*key) {
            r.problem(
                format!("{at}.options.{key}"),
                "JavaScript transforms are not supported",
            );
        }
    }
    let known: Vec<&str> = OPTION_KEYS
        .iter()
        .chain(OPTION_UNRUNNABLE)
        .copied()
        .collect();
    r.unknown_keys(&format!("{at}.options"), o, &known);
    p.disable_default_asserts = o.get("disableDefaultAsserts") == Some(&Value::Bool(true));
    p.disable_var_expansion = o.get("disableVarExpansion") == Some(&Value::Bool(true));
    for (key, slot) in [("prefix", &mut p.prefix), ("suffix", &mut p.suffix)] {
        match o.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => *slot = Some(s.clone()),
            Some(other) => r.problem(
                format!("{at}.options.{key}"),
                format!("must be a string, got {}", kind_of(other)),
            ),
        }
    }
}

/// promptfoo's expansion: a var whose value is a list starting with a
/// string yields one test per element (the cartesian product across such
/// vars); any other value, other lists included, is passed whole. `None`
/// if there would be more than `limit` combinations.
fn combinations(vars: &Map<String, Value>, limit: usize) -> Option<Vec<Map<String, Value>>> {
    let expands =
        |v: &Value| matches!(v, Value::Array(a) if a.first().is_some_and(Value::is_string));
    let mut total: usize = 1;
    for v in vars.values() {
        if let Value::Array(a) = v
            && expands(v)
        {
            total = total.checked_mul(a.len())?;
        }
    }
    if total > limit {
        return None;
    }
    if total == 1 && !vars.values().any(expands) {
        return Some(vec![vars.clone()]);
    }
    let mut combos = vec![Map::new()];
    for (key, value) in vars {
        let choices: Vec<&Value> = match value {
            Value::Array(a) if expands(value) => a.iter().collect(),
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
