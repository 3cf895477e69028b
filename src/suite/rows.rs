//! Test cases from CSV the way promptfoo reads them (`testCaseFromCsvRow`):
//! a column per var, `__expected*` columns holding assertions in their
//! string form (`contains:Paris`, `not-regex:^x`, `levenshtein(2):abc`, a
//! bare value meaning `equals`), and `__description`, `__prefix`,
//! `__suffix`, `__metric`, `__threshold`, `__metadata:<key>` and
//! `__config:__expected<N>:threshold`. Pure: text in, test objects out.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

/// promptfoo's assertion types (`BaseAssertionTypesSchema`): what may
/// precede the `:` of an `__expected` cell.
const ASSERTION_TYPES: &[&str] = &[
    "agent-rubric",
    "answer-relevance",
    "bleu",
    "classifier",
    "contains",
    "contains-all",
    "contains-any",
    "contains-html",
    "contains-json",
    "contains-sql",
    "contains-xml",
    "context-faithfulness",
    "context-recall",
    "context-relevance",
    "conversation-relevance",
    "cost",
    "equals",
    "factuality",
    "finish-reason",
    "g-eval",
    "gleu",
    "guardrails",
    "icontains",
    "icontains-all",
    "icontains-any",
    "is-html",
    "is-json",
    "is-refusal",
    "is-sql",
    "is-valid-function-call",
    "is-valid-openai-function-call",
    "is-valid-openai-tools-call",
    "is-xml",
    "javascript",
    "latency",
    "levenshtein",
    "llm-rubric",
    "pi",
    "meteor",
    "model-graded-closedqa",
    "model-graded-factuality",
    "moderation",
    "perplexity",
    "perplexity-score",
    "python",
    "regex",
    "rouge-n",
    "ruby",
    "similar",
    "similar:cosine",
    "similar:dot",
    "similar:euclidean",
    "starts-with",
    "tool-call-f1",
    "skill-used",
    "trajectory:goal-success",
    "trajectory:tool-args-match",
    "trajectory:step-count",
    "trajectory:tool-sequence",
    "trajectory:tool-used",
    "trace-error-spans",
    "trace-span-count",
    "trace-span-duration",
    "search-rubric",
    "webhook",
    "word-count",
];

/// Types whose `type:value` form gets a threshold (0.75 unless given as
/// `type(0.9):value`), as promptfoo does.
const THRESHOLD_TYPES: &[&str] = &[
    "answer-relevance",
    "classifier",
    "context-faithfulness",
    "context-recall",
    "context-relevance",
    "cost",
    "latency",
    "levenshtein",
    "perplexity-score",
    "perplexity",
    "rouge-n",
    "similar",
    "starts-with",
];

/// Parses CSV text (header row first) into promptfoo test objects.
/// `Err` says which record is malformed.
pub fn tests_from_csv(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for_each_test(text, |_, t| {
        out.push(t);
        true
    })?;
    Ok(out)
}

/// Calls `f` with each row's test object in turn, one at a time, so a
/// large file never exists as objects all at once; `f` returns `false`
/// to stop. `Err` says which record is malformed.
pub fn for_each_test(text: &str, mut f: impl FnMut(usize, Value) -> bool) -> Result<(), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("CSV header: {e}"))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let mut record = csv::StringRecord::new();
    let mut i = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(format!("CSV row {}: {e}", i + 1)),
        }
        let row = headers.iter().map(String::as_str).zip(record.iter());
        if !f(i, test_from_row(row, i)?) {
            return Ok(());
        }
        i += 1;
    }
}

/// One CSV row (header, cell) as a test object.
pub fn test_from_row<'a>(
    row: impl Iterator<Item = (&'a str, &'a str)>,
    idx: usize,
) -> Result<Value, String> {
    let mut vars = Map::new();
    let mut asserts: Vec<Map<String, Value>> = Vec::new();
    let mut options = Map::new();
    let mut metadata = Map::new();
    let mut thresholds: Vec<(usize, f64)> = Vec::new();
    let (mut description, mut metric, mut threshold, mut provider_output) =
        (None, None, None, None);
    for (key, value) in row {
        if let Some(_n) = key.strip_prefix("__expected") {
            if !crate::js::trim(value).is_empty() {
                asserts.push(assertion_from_string(crate::js::trim(value)));
            }
        } else if key == "__prefix" || key == "__suffix" {
            options.insert(key[2..].to_owned(), Value::String(value.to_owned()));
        } else if key == "__description" {
            description = Some(value.to_owned());
        } else if key == "__providerOutput" {
            provider_output = Some(value.to_owned());
        } else if key == "__metric" {
            metric = Some(value.to_owned());
        } else if key == "__threshold" {
            threshold = finite_number(value);
        } else if let Some(meta) = key.strip_prefix("__metadata:") {
            metadata_cell(meta, value, &mut metadata);
        } else if let Some(config) = key.strip_prefix("__config:") {
            thresholds.push(config_cell(config, key, value)?);
        } else if key != "__metadata" {
            vars.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }
    for (i, a) in asserts.iter_mut().enumerate() {
        if let Some(m) = &metric {
            a.insert("metric".to_owned(), Value::String(m.clone()));
        }
        for (target, t) in &thresholds {
            if *target == i {
                a.insert("threshold".to_owned(), json!(t));
                metadata.insert("threshold".to_owned(), json!(t));
            }
        }
    }
    let mut test = Map::new();
    let description = description
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("Row #{}", idx + 1));
    test.insert("description".to_owned(), Value::String(description));
    test.insert("vars".to_owned(), Value::Object(vars));
    test.insert(
        "assert".to_owned(),
        Value::Array(asserts.into_iter().map(Value::Object).collect()),
    );
    if !options.is_empty() {
        test.insert("options".to_owned(), Value::Object(options));
    }
    if let Some(t) = threshold {
        test.insert("threshold".to_owned(), json!(t));
    }
    if let Some(p) = provider_output.filter(|p| !p.is_empty()) {
        test.insert("providerOutput".to_owned(), Value::String(p));
    }
    if !metadata.is_empty() {
        test.insert("metadata".to_owned(), Value::Object(metadata));
    }
    Ok(Value::Object(test))
}

/// `__metadata:key` (a value) or `__metadata:key[]` (a list split on
/// unescaped commas).
fn metadata_cell(key: &str, value: &str, metadata: &mut Map<String, Value>) {
    if crate::js::trim(value).is_empty() {
        return;
    }
    match key.strip_suffix("[]") {
        Some(list_key) => {
            let mut items = Vec::new();
            let mut current = String::new();
            let mut chars = value.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&',') => {
                        current.push(',');
                        chars.next();
                    }
                    ',' => items.push(std::mem::take(&mut current)),
                    c => current.push(c),
                }
            }
            items.push(current);
            let items = items
                .iter()
                .map(|i| Value::String(crate::js::trim(i).to_owned()))
                .collect();
            metadata.insert(list_key.to_owned(), Value::Array(items));
        }
        None => {
            metadata.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }
}

/// `__config:__expected<N>:threshold` -> (assertion index, threshold).
fn config_cell(config: &str, column: &str, value: &str) -> Result<(usize, f64), String> {
    let bad = |why: &str| format!("column {column:?}: {why}");
    let (expected, key) = config.split_once(':').ok_or_else(|| {
        bad("use __config:__expected:threshold or __config:__expected<N>:threshold")
    })?;
    let index = match expected.strip_prefix("__expected") {
        Some("") => 0,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n >= 1 => n - 1,
            _ => return Err(bad("must name __expected or __expected<N> with N >= 1")),
        },
        None => return Err(bad("must name __expected or __expected<N>")),
    };
    if key != "threshold" {
        return Err(bad("the only config key is threshold"));
    }
    let t = finite_number(value).ok_or_else(|| bad(&format!("{value:?} is not a number")))?;
    Ok((index, t))
}

/// promptfoo's `parseFiniteNumber`: a complete numeric literal, else none.
fn finite_number(s: &str) -> Option<f64> {
    let t = crate::js::trim(s);
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// An `__expected` cell as an assertion (`assertionFromString`).
pub fn assertion_from_string(expected: &str) -> Map<String, Value> {
    static FORM: LazyLock<regress::Regex> = LazyLock::new(|| {
        let types = ASSERTION_TYPES.join("|");
        regress::Regex::new(&format!(
            r"^(not-)?({types})(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$"
        ))
        .expect("the assertion form pattern compiles")
    });
    let mut a = Map::new();
    let mut set = |ty: &str, value: Option<Value>| {
        a.insert("type".to_owned(), Value::String(ty.to_owned()));
        if let Some(v) = value {
            a.insert("value".to_owned(), v);
        }
    };
    for (prefix, ty) in [
        ("javascript:", "javascript"),
        ("fn:", "javascript"),
        ("eval:", "javascript"),
        ("grade:", "llm-rubric"),
        ("llm-rubric:", "llm-rubric"),
        ("python:", "python"),
    ] {
        if let Some(rest) = expected.strip_prefix(prefix) {
            set(ty, Some(Value::String(rest.trim().to_owned())));
            return a;
        }
    }
    let Some(m) = FORM.find(expected) else {
        set("equals", Some(Value::String(expected.to_owned())));
        return a;
    };
    let group = |i: usize| m.group(i).map(|r| &expected[r]);
    let base = group(2).unwrap_or_default();
    let ty = match group(1) {
        Some(_) => format!("not-{base}"),
        None => base.to_owned(),
    };
    let value = group(4);
    let threshold = group(3).and_then(finite_number);
    let trimmed = value.map(|v| Value::String(crate::js::trim(v).to_owned()));
    match base {
        "contains-all" | "contains-any" | "icontains-all" | "icontains-any" => {
            let list = value.map(|v| match crate::assertions::split_comma_separated(v) {
                Ok(items) => Value::Array(items.into_iter().map(Value::String).collect()),
                // Left for the assertion parser to report.
                Err(_) => Value::String(v.to_owned()),
            });
            set(&ty, list);
        }
        "contains-json" | "is-json" => set(&ty, value.map(|v| Value::String(v.to_owned()))),
        b if THRESHOLD_TYPES.contains(&b) => {
            set(&ty, trimmed);
            a.insert("threshold".to_owned(), json!(threshold.unwrap_or(0.75)));
        }
        _ => set(&ty, trimmed),
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_cells_read_like_promptfoo_reads_them() {
        let cases = [
            (
                "contains:Paris",
                json!({"type": "contains", "value": "Paris"}),
            ),
            (
                "not-regex: ^x ",
                json!({"type": "not-regex", "value": "^x"}),
            ),
            (
                "icontains-any:a, \"b, c\"",
                json!({"type": "icontains-any", "value": ["a", "b, c"]}),
            ),
            (
                "levenshtein:abc",
                json!({"type": "levenshtein", "value": "abc", "threshold": 0.75}),
            ),
            (
                "starts-with(0.5):he",
                json!({"type": "starts-with", "value": "he", "threshold": 0.5}),
            ),
            ("is-json", json!({"type": "is-json"})),
            (
                "hello world",
                json!({"type": "equals", "value": "hello world"}),
            ),
            (
                "contains-word:x",
                json!({"type": "equals", "value": "contains-word:x"}),
            ),
            (
                "grade:is polite",
                json!({"type": "llm-rubric", "value": "is polite"}),
            ),
        ];
        for (cell, want) in cases {
            assert_eq!(Value::Object(assertion_from_string(cell)), want, "{cell}");
        }
    }

    #[test]
    fn rows_become_tests_with_promptfoos_columns() {
        let csv = "q,__expected,__expected2,__description,__metric,__threshold,__metadata:tags[],__config:__expected2:threshold\n\
                   hi,contains:hi,rouge-n:hi there,,tone,0.5,\"a,b\\,c\",0.3\n";
        let tests = tests_from_csv(csv).unwrap();
        assert_eq!(
            tests[0],
            json!({
                "description": "Row #1",
                "vars": {"q": "hi"},
                "assert": [
                    {"type": "contains", "value": "hi", "metric": "tone"},
                    {"type": "rouge-n", "value": "hi there", "threshold": 0.3, "metric": "tone"}
                ],
                "threshold": 0.5,
                "metadata": {"tags": ["a", "b,c"], "threshold": 0.3}
            })
        );
    }

    #[test]
    fn malformed_csv_names_the_row() {
        let err = tests_from_csv("a,b\n1,2\n3\n").unwrap_err();
        assert!(err.starts_with("CSV row 2"), "{err}");
        assert!(config_cell("__expected:weight", "c", "1").is_err());
    }
}
