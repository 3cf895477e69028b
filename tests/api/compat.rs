//! The promptfoo conformance corpus: every config in `compat/configs/`
//! (and the file-based example) runs through the real API, resolved the
//! way `promptgauge run` resolves its files, and each result is compared
//! with promptfoo's own result for it (`compat/expected/`, written by
//! `compat/regenerate.sh` with promptfoo 0.123.1): `success`, `score`,
//! `failureReason` and `gradingResult.reason`. Every difference must be a
//! deviation listed in docs/promptfoo-compatibility.md, every listed
//! deviation must still differ, and the counts the doc states must be the
//! counts measured here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (name, config path) of every corpus entry with an expected file.
fn corpus() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(repo().join("compat/expected"))
        .expect("compat/expected exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let config = match name.strip_prefix("example-") {
                Some(example) => repo()
                    .join("examples")
                    .join(example)
                    .join("promptfooconfig.yaml"),
                None => repo().join("compat/configs").join(format!("{name}.yaml")),
            };
            (name, config)
        })
        .collect();
    out.sort();
    out
}

/// The suite as `promptgauge run` sends it: parsed, files inlined.
fn load(config: &Path) -> Value {
    let source = std::fs::read_to_string(config).expect("config readable");
    let doc = promptgauge::suite::document(&source, promptgauge::suite::Format::Yaml)
        .expect("config parses");
    promptgauge::suite::files::inline(doc.into_value(), config.parent().unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", config.display()))
}

/// A latency reason carries the measured time: compare without it.
fn normalised(reason: Option<&str>) -> Option<String> {
    let reason = reason?;
    let mut out = String::new();
    let mut rest = reason;
    while let Some(at) = rest.find("Latency ") {
        out.push_str(&rest[..at + 8]);
        rest = &rest[at + 8..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with("ms") {
            out.push_str("<n>");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    Some(out)
}

/// What differs between promptfoo's result and ours, if anything.
fn differences(expected: &Value, ours: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    if expected["success"] != ours["success"] {
        diffs.push(format!(
            "success {} (promptfoo {})",
            ours["success"], expected["success"]
        ));
    }
    let score = |v: &Value| v["score"].as_f64().unwrap_or(f64::NAN);
    if (score(expected) - score(ours)).abs() > 1e-6 {
        diffs.push(format!(
            "score {} (promptfoo {})",
            ours["score"], expected["score"]
        ));
    }
    if expected["failureReason"] != ours["failureReason"] {
        diffs.push(format!(
            "failureReason {} (promptfoo {})",
            ours["failureReason"], expected["failureReason"]
        ));
    }
    let reason = |v: &Value| normalised(v["gradingResult"]["reason"].as_str());
    if reason(expected) != reason(ours) {
        diffs.push(format!(
            "reason {:?} (promptfoo {:?})",
            reason(ours),
            reason(expected)
        ));
    }
    diffs
}

/// A row of the deviations table: config, the tests it covers (`None` for
/// all of them), and the reason given.
struct Deviation {
    config: String,
    tests: Option<BTreeSet<u64>>,
}

/// The table between the `deviations` markers, and the stated counts.
fn documented() -> (Vec<Deviation>, (u64, u64, u64)) {
    let doc = std::fs::read_to_string(repo().join("docs/promptfoo-compatibility.md"))
        .expect("docs/promptfoo-compatibility.md exists");
    let table = doc
        .split("<!-- deviations:start -->")
        .nth(1)
        .and_then(|t| t.split("<!-- deviations:end -->").next())
        .expect("the doc marks its deviations table");
    let mut rows = Vec::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let config = cells[1].trim_matches('`').to_owned();
        let tests = match cells[2] {
            "all" => None,
            list => Some(
                list.split(',')
                    .map(|t| t.trim().parse().expect("test indices are numbers"))
                    .collect(),
            ),
        };
        assert!(!cells[4].is_empty(), "{line}: a deviation needs its reason");
        rows.push(Deviation { config, tests });
    }
    let counts = doc
        .lines()
        .find(|l| l.starts_with("Measured by `cargo test compat`:"))
        .expect("the doc states the measured counts");
    let numbers: Vec<u64> = counts
        .split("**")
        .filter_map(|n| n.replace(',', "").parse().ok())
        .collect();
    assert_eq!(numbers.len(), 3, "{counts}");
    (rows, (numbers[0], numbers[1], numbers[2]))
}

#[tokio::test]
async fn the_corpus_gets_promptfoos_verdicts_or_a_documented_deviation() {
    let app = spawn_app().await;
    let corpus = corpus();
    assert!(corpus.len() >= 20, "the corpus is in compat/");
    // Submit everything first: the queue runs the configs side by side.
    let mut runs = Vec::new();
    for (name, config) in &corpus {
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(repo().join(format!("compat/expected/{name}.json"))).unwrap(),
        )
        .unwrap();
        let resp = app
            .post_json("/api/executions", &json!({"suite": load(config)}))
            .await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        let id = (status == 202).then(|| body["id"].as_i64().unwrap());
        assert!(status == 202 || status == 422, "{name}: {status} {body}");
        runs.push((name.clone(), expected, id, body));
    }
    let (deviations, stated) = documented();
    let mut found: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut unexplained = Vec::new();
    let (mut total, mut equal) = (0u64, 0u64);
    for (name, expected, id, refusal) in &runs {
        let expected_results = expected["results"].as_array().cloned().unwrap_or_default();
        total += expected_results.len() as u64;
        let Some(id) = id else {
            // Refused whole: every promptfoo result differs.
            let listed = deviations
                .iter()
                .any(|d| &d.config == name && d.tests.is_none());
            if !listed {
                unexplained.push(format!("{name}: refused ({refusal})"));
            }
            found.entry(name.clone()).or_default();
            continue;
        };
        let done = app.wait_done(*id).await;
        assert_eq!(done["status"], "completed", "{name}: {done}");
        let text = app
            .get(&format!("/api/executions/{id}/results?format=jsonl"))
            .await
            .text()
            .await
            .unwrap();
        let ours: BTreeMap<(u64, u64), Value> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|r| {
                (
                    (
                        r["testIdx"].as_u64().unwrap(),
                        r["promptIdx"].as_u64().unwrap(),
                    ),
                    r,
                )
            })
            .collect();
        assert_eq!(ours.len(), expected_results.len(), "{name}: result count");
        for e in &expected_results {
            let key = (
                e["testIdx"].as_u64().unwrap(),
                e["promptIdx"].as_u64().unwrap(),
            );
            let diffs = match ours.get(&key) {
                Some(r) => differences(e, r),
                None => vec!["missing from ours".to_owned()],
            };
            if diffs.is_empty() {
                equal += 1;
                continue;
            }
            found.entry(name.clone()).or_default().insert(key.0);
            let listed = deviations
                .iter()
                .any(|d| &d.config == name && d.tests.as_ref().is_none_or(|t| t.contains(&key.0)));
            if !listed {
                unexplained.push(format!(
                    "{name} test {} prompt {}: {}",
                    key.0,
                    key.1,
                    diffs.join("; ")
                ));
            }
        }
    }
    let deviating = total - equal;
    println!(
        "promptfoo corpus: {total} results, {equal} equal to promptfoo's, {deviating} documented deviations"
    );
    assert!(
        unexplained.is_empty(),
        "differences not in docs/promptfoo-compatibility.md:\n{}",
        unexplained.join("\n")
    );
    for d in &deviations {
        let still = found.get(&d.config).is_some_and(|tests| match &d.tests {
            None => true,
            Some(listed) => listed.iter().all(|t| tests.contains(t)),
        });
        assert!(
            still,
            "{} {:?}: listed as a deviation but now equal to promptfoo",
            d.config, d.tests
        );
    }
    assert!(total >= 400, "the corpus holds {total} results");
    assert_eq!(
        stated,
        (total, equal, deviating),
        "docs/promptfoo-compatibility.md states other counts than measured"
    );
}

#[test]
fn a_latency_reason_is_compared_without_its_measured_time() {
    assert_eq!(
        normalised(Some("Latency 304ms is greater than threshold 150ms")).as_deref(),
        Some("Latency <n>ms is greater than threshold 150ms")
    );
    assert_eq!(
        normalised(Some("Latency assertion does not support")).as_deref(),
        Some("Latency assertion does not support")
    );
}
