//! `file://` suites and JUnit reports: `promptgauge run` resolves a
//! suite's files from its folder (embedded and with `--server`) and gets
//! promptfoo's verdicts on the file-based example; the HTTP API refuses
//! any `file://` with its location and stores nothing; `-o results.xml`
//! is JUnit that a schema validator accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{TestApp, open_db, run_binary, spawn_app};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example() -> String {
    repo()
        .join("examples/file-suite/promptfooconfig.yaml")
        .display()
        .to_string()
}

async fn run(args: Vec<String>, db: &Path) -> std::process::Output {
    let db = db.display().to_string();
    tokio::task::spawn_blocking(move || {
        let mut all = vec!["run".to_owned()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run_binary(&refs, &[("DATABASE_PATH", &db), ("CI", "1")])
    })
    .await
    .unwrap()
}

/// (testIdx, promptIdx) -> success, from a promptfoo-shaped result file.
fn verdicts(results: &[Value]) -> BTreeMap<(u64, u64), bool> {
    results
        .iter()
        .map(|r| {
            let key = (
                r["testIdx"].as_u64().unwrap(),
                r["promptIdx"].as_u64().unwrap(),
            );
            (key, r["success"].as_bool().unwrap())
        })
        .collect()
}

fn promptfoo_verdicts() -> BTreeMap<(u64, u64), bool> {
    let text =
        std::fs::read_to_string(repo().join("compat/expected/example-file-suite.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    verdicts(expected["results"].as_array().unwrap())
}

/// Runs the example and returns its verdicts and JUnit report.
async fn run_example(extra: Vec<String>) -> (BTreeMap<(u64, u64), bool>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (json_out, xml_out) = (dir.path().join("out.json"), dir.path().join("results.xml"));
    let mut args = vec![
        example(),
        "-o".into(),
        json_out.display().to_string(),
        "-o".into(),
        xml_out.display().to_string(),
    ];
    args.extend(extra);
    let out = run(args, &dir.path().join("run.db")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{stderr}");
    let file: Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    let xml = std::fs::read_to_string(&xml_out).unwrap();
    (
        verdicts(file["results"]["results"].as_array().unwrap()),
        xml,
    )
}

#[tokio::test]
async fn a_suite_with_file_prompts_and_a_csv_gets_promptfoos_verdicts_embedded_and_on_a_server() {
    let (embedded, xml) = run_example(Vec::new()).await;
    assert_eq!(embedded, promptfoo_verdicts());
    assert_eq!(
        embedded.len(),
        12,
        "6 CSV rows x 2 prompts (a .txt and a glob of .md)"
    );

    let app = spawn_app().await;
    let (served, _) = run_example(vec!["--server".into(), app.url("")]).await;
    assert_eq!(served, promptfoo_verdicts());
    app.stop().await;

    // The JUnit report: one suite per provider x prompt, the counts right,
    // a failure carrying the grading reason.
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"promptgauge\" tests=\"12\" failures=\"5\" errors=\"0\""), "{xml}");
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 12);
    assert_eq!(xml.matches("<failure ").count(), 5);
    assert!(
        xml.contains("name=\"[echo] prompt 1\" tests=\"6\" failures=\"2\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase name=\"test 4: refund request fails on purpose\" classname=\"[echo] prompt 1\""), "{xml}");
    assert!(xml.contains("message=\"Expected output to not contain &quot;refund&quot;\" type=\"assertion\">Score: 0.5"), "{xml}");
}

#[tokio::test]
async fn a_missing_file_names_its_path_and_the_reference_that_asked_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(
        &suite,
        "prompts: [file://prompts/none.txt]\nproviders: [echo]\ntests: file://cases/missing.csv\n",
    )
    .unwrap();
    let out = run(
        vec![suite.display().to_string()],
        &dir.path().join("run.db"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for want in [
        "prompts[0]: cannot read",
        "prompts/none.txt (file://prompts/none.txt)",
        "tests: cannot read",
        "cases/missing.csv (file://cases/missing.csv)",
    ] {
        assert!(stderr.contains(want), "{want:?} missing in {stderr}");
    }
    // A CSV row with a missing field is located too.
    std::fs::write(
        dir.path().join("bad.csv"),
        "q,__expected\nok,contains:ok\nshort\n",
    )
    .unwrap();
    std::fs::write(
        &suite,
        "prompts: ['{{q}}']\nproviders: [echo]\ntests: file://bad.csv\n",
    )
    .unwrap();
    let out = run(
        vec![suite.display().to_string()],
        &dir.path().join("run.db"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tests[0]: CSV (file://bad.csv): CSV row 2: "),
        "{stderr}"
    );
}

fn row_counts(app: &TestApp) -> [i64; 4] {
    let db = open_db(&app.db_path);
    ["suites", "executions", "jobs", "test_results"].map(|t| {
        db.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    })
}

#[tokio::test]
async fn the_api_refuses_every_file_reference_with_its_location_and_reads_nothing() {
    let app = spawn_app().await;
    let before = row_counts(&app);
    let suite = json!({
        "prompts": ["file://../../etc/passwd", {"raw": "file:///etc/passwd", "label": "abs"}],
        "providers": ["echo"],
        "defaultTest": {"vars": {"secret": "file:///root/.ssh/id_rsa"}},
        "tests": [
            "file://tests/*.yaml",
            {"vars": {"q": "hi"}, "assert": [{"type": "is-json", "value": "file://schema.json"}]}
        ]
    });
    for (path, body) in [
        ("/api/executions", json!({"suite": suite})),
        (
            "/api/executions",
            json!({"suite": {"prompts": ["hi"], "providers": ["echo"], "tests": "file://t.csv"}}),
        ),
    ] {
        let res = app.post_json(path, &body).await;
        assert_eq!(res.status(), 422);
        let error: Value = res.json().await.unwrap();
        let problems = error["error"]["problems"].as_array().unwrap().clone();
        assert!(!problems.is_empty(), "{error}");
        for p in &problems {
            assert!(
                p["message"]
                    .as_str()
                    .unwrap()
                    .contains("the service reads no files: inline its content"),
                "{p}"
            );
        }
    }
    let res = app
        .post_json("/api/executions", &json!({"suite": suite}))
        .await;
    let error: Value = res.json().await.unwrap();
    let at: Vec<&str> = error["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["location"].as_str().unwrap())
        .collect();
    for want in [
        "prompts[0]",
        "prompts[1].raw",
        "defaultTest.vars.secret",
        "tests[0]",
        "tests[1].assert[0].value",
    ] {
        assert!(at.contains(&want), "{want} missing in {at:?}");
    }
    // No file's content leaks into the answer.
    assert!(!error.to_string().contains("root:"), "{error}");
    let yaml = "prompts: [file://p.txt]\nproviders: [echo]\n";
    let res = app.post_raw("/api/suites", "application/yaml", yaml).await;
    assert_eq!(res.status(), 422);
    assert_eq!(row_counts(&app), before);
    app.stop().await;
}

/// The JUnit report of a suite with passes, failures and errors, checked
/// against the schema by `xmllint` (Debian package libxml2-utils).
#[tokio::test]
#[ignore = "needs xmllint (Debian package libxml2-utils)"]
async fn junit_reports_validate_against_the_junit_schema() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(
        &suite,
        r#"
description: "JUnit <&> \"quotes\""
prompts: ["{{q}}", "again: {{q}}"]
providers: [echo, {id: "mock:broken", label: "broken & <odd>", config: {errorRate: 1, maxRetries: 0}}]
tests:
  - description: "passes"
    vars: {q: "hello"}
    assert: [{type: contains, value: hello}]
  - description: "fails with a control character \u0001 and ]]>"
    vars: {q: "bye"}
    assert: [{type: contains, value: "<hello>"}, {type: regex, value: "^x"}]
  - vars: {q: "no description"}
"#,
    )
    .unwrap();
    let xml_out = dir.path().join("results.xml");
    let out = run(
        vec![
            suite.display().to_string(),
            "-o".into(),
            xml_out.display().to_string(),
        ],
        &dir.path().join("run.db"),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read_to_string(&xml_out).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 4, "{xml}");
    assert!(xml.contains("<error message="), "{xml}");
    assert!(xml.contains("<failure message="), "{xml}");
    let check = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(repo().join("tests/data/junit.xsd"))
        .arg(&xml_out)
        .output()
        .expect("xmllint runs (install libxml2-utils)");
    assert!(
        check.status.success(),
        "{}\n{xml}",
        String::from_utf8_lossy(&check.stderr)
    );
}
