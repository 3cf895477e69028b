//! The Prometheus assets shipped in the repository: `prometheus.yml`, the
//! rules in `alerts/`, their promtool tests, `alertmanager.yml` and the
//! runbooks. Checked by the real tools where a test needs them (ignored
//! without them; `.ci/run` installs them), and for completeness here.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    promptgauge::yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every rule of a rule file.
fn rules(path: &str) -> Vec<Value> {
    yaml(path)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Runs a tool from the repository root; it must succeed.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool} on PATH (apt-get install prometheus prometheus-alertmanager): {e}")
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{report}");
    report
}

fn alert_names() -> Vec<String> {
    let mut names: Vec<String> = rules("alerts/promptgauge.alerts.yml")
        .iter()
        .map(|r| r["alert"].as_str().unwrap().to_owned())
        .collect();
    names.dedup();
    names
}

#[test]
#[ignore = "needs promtool (Debian package prometheus)"]
fn promtool_accepts_the_config_and_the_rules_and_their_tests_pass() {
    let report = run("promtool", &["check", "config", "prometheus.yml"]);
    assert!(report.contains("SUCCESS"), "{report}");
    // check config also checks the rule files it names.
    assert!(report.contains("alerts/promptgauge.alerts.yml"), "{report}");
    let rule_files: Vec<String> = files("alerts", "yml")
        .iter()
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    let mut args = vec!["check", "rules"];
    args.extend(rule_files.iter().map(String::as_str));
    run("promtool", &args);
    let test_files: Vec<String> = files("alerts/tests", "yml")
        .iter()
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    assert!(!test_files.is_empty());
    let mut args = vec!["test", "rules"];
    args.extend(test_files.iter().map(String::as_str));
    let report = run("promtool", &args);
    assert!(!report.contains("FAILED"), "{report}");
}

#[test]
#[ignore = "needs amtool (Debian package prometheus-alertmanager)"]
fn amtool_accepts_the_alertmanager_example() {
    let report = run("amtool", &["check-config", "alertmanager.yml"]);
    assert!(report.contains("1 inhibit rules"), "{report}");
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_promtool_case() {
    let mut cases: Vec<(String, bool)> = Vec::new();
    for file in files("alerts/tests", "yml") {
        let path = file.strip_prefix(repo()).unwrap().display().to_string();
        for test in yaml(&path)["tests"].as_array().unwrap() {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                cases.push((case["alertname"].as_str().unwrap().to_owned(), fires));
            }
        }
    }
    for name in alert_names() {
        assert!(
            cases.contains(&(name.clone(), true)),
            "{name} has no case where it fires"
        );
        assert!(
            cases.contains(&(name.clone(), false)),
            "{name} has no case where it stays quiet"
        );
    }
}

#[test]
fn every_alert_follows_the_conventions_and_has_its_runbook_section() {
    let runbooks = std::fs::read_to_string(repo().join("docs/runbooks.md")).unwrap();
    for rule in rules("alerts/promptgauge.alerts.yml") {
        let name = rule["alert"].as_str().unwrap();
        assert!(name.starts_with("Promptgauge"), "{name}");
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            matches!(severity, "warning" | "critical"),
            "{name}: {severity:?}"
        );
        assert!(rule["for"].as_str().is_some(), "{name} has a for");
        let notes = &rule["annotations"];
        assert!(
            notes["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}"
        );
        let description = notes["description"].as_str().unwrap_or_default();
        assert!(
            description.contains("$labels.instance"),
            "{name}: the description names the instance"
        );
        let expr = rule["expr"].as_str().unwrap();
        if expr.contains(">=") {
            assert!(description.contains("$value"), "{name}: and the value");
        }
        assert_eq!(
            notes["runbook_url"],
            format!("docs/runbooks.md#{}", name.to_lowercase()),
            "{name}"
        );
        assert!(
            runbooks.contains(&format!("\n## {name}\n")),
            "docs/runbooks.md has no section for {name}"
        );
    }
    for rule in rules("alerts/promptgauge.rules.yml") {
        let record = rule["record"].as_str().unwrap();
        assert_eq!(
            record.split(':').count(),
            3,
            "level:metric:operations: {record}"
        );
    }
}
