//! `promptgauge run`, the real binary: embedded and against a server,
//! result files, the summary, and promptfoo's exit codes.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::helpers::{run_binary, spawn_app};

fn example_path(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.yaml"))
        .display()
        .to_string()
}

/// Runs `promptgauge run ARGS` off the async workers (a server in this
/// process must keep answering), with its own database and `CI` set.
async fn run(args: Vec<String>, db: &Path) -> Output {
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn embedded_runs_write_files_print_a_summary_and_exit_like_promptfoo() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("run.db");
    let json_out = dir.path().join("out.json");
    let csv_out = dir.path().join("out.csv");

    let out = run(
        vec![
            example_path("smoke"),
            "-o".into(),
            json_out.display().to_string(),
            "--output".into(),
            csv_out.display().to_string(),
        ],
        &db,
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("3 passed, 0 failed, 0 errors of 3 (100.0% pass)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("progress: [########################] 3/3"),
        "{stderr}"
    );
    let file: Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    assert_eq!(file["results"]["results"].as_array().unwrap().len(), 3);
    assert_eq!(
        std::fs::read_to_string(&csv_out).unwrap().lines().count(),
        4
    );

    let out = run(vec![example_path("capitals")], &db).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(100), "{stdout}");
    assert!(
        stdout.contains("5 passed, 1 failed, 0 errors of 6 (83.3% pass)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("geo-mock"),
        "the table names the provider: {stdout}"
    );
    // After the totals, which test failed and why; plain in a pipe.
    assert!(
        stdout.contains(
            "Failed (1):\n  FAIL  Australia  [What is the capital of {{country}}? Ans…]  mock:geo\n      Expected output \"Sydney\" to equal \"Canberra\"\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'), "no colour in a pipe: {stdout}");

    // Both executions are in the run's own database.
    let db = crate::helpers::open_db(&db);
    let n: i64 = db
        .query_row("SELECT count(*) FROM test_results", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 9);
}

#[tokio::test]
async fn runs_that_cannot_complete_exit_1_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("run.db");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "prompts: []\nproviders: [echo]\ntests:\n  - assert: [{type: bogus}]\n",
    )
    .unwrap();

    let out = run(vec![bad.display().to_string()], &db).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("prompts: empty"), "{stderr}");
    assert!(
        stderr.contains("tests[0].assert[0]: unknown assertion type \"bogus\""),
        "{stderr}"
    );

    let out = run(
        vec![dir.path().join("missing.yaml").display().to_string()],
        &db,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read"));

    let out = run(
        vec![example_path("smoke"), "-o".into(), "out.html".into()],
        &db,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("use a .json, .jsonl, .csv or .xml (JUnit) file"));

    let out = run(
        vec![
            example_path("smoke"),
            "--server".into(),
            "http://127.0.0.1:9".into(),
        ],
        &db,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot reach http://127.0.0.1:9"));

    let out = run(
        vec![example_path("smoke"), "--server".into(), "not a url".into()],
        &db,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not a URL"));
}

#[tokio::test]
async fn runs_against_a_server_store_there_and_exit_the_same_way() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let local_db = dir.path().join("unused.db");
    let server = format!("http://{}", app.addr);
    let jsonl = dir.path().join("out.jsonl");

    let out = run(
        vec![
            example_path("capitals"),
            "--server".into(),
            server.clone(),
            "-j".into(),
            "2".into(),
            "--no-cache".into(),
            "-o".into(),
            jsonl.display().to_string(),
        ],
        &local_db,
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(100),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("5 passed, 1 failed"), "{stdout}");
    assert!(stdout.contains("FAIL  Australia"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 6);
    assert!(!local_db.exists(), "a server run opens no local database");

    let list = app.get_json("/api/executions").await;
    assert_eq!(list["total"], 1);
    let e = &list["items"][0];
    assert_eq!(
        (e["maxConcurrency"].as_i64(), &e["useCache"]),
        (Some(2), &Value::Bool(false))
    );

    let out = run(
        vec![example_path("smoke"), "--server".into(), server.clone()],
        &local_db,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "prompts: ['{{x}}']\nproviders: [nope:x]\n").unwrap();
    let out = run(
        vec![bad.display().to_string(), "--server".into(), server],
        &local_db,
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("server refused the suite (422"), "{stderr}");
    assert!(
        stderr.contains("providers[0]: unknown provider \"nope:x\""),
        "{stderr}"
    );
    assert_eq!(app.get_json("/api/executions").await["total"], 2);
    app.stop().await;
}

#[tokio::test]
async fn a_server_run_follows_the_progress_stream_instead_of_polling() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("slow.yaml");
    // 40 tests at 100 ms, two at a time: about two seconds.
    let tests: String = (0..40).map(|i| format!("  - vars: {{i: {i}}}\n")).collect();
    std::fs::write(
        &suite,
        format!("prompts: ['say {{{{i}}}}']\nproviders: [{{id: 'mock:slow', config: {{latencyMs: 100}}}}]\ntests:\n{tests}"),
    )
    .unwrap();
    let out = run(
        vec![
            suite.display().to_string(),
            "--server".into(),
            format!("http://{}", app.addr),
            "-j".into(),
            "2".into(),
        ],
        &dir.path().join("never").join("unused.db"),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A server run leaves this machine's disk alone: no database folder.
    assert!(!dir.path().join("never").exists());
    assert!(
        text(&out.stdout).contains("40 passed"),
        "{}",
        text(&out.stdout)
    );
    let metrics = app.metrics_text().await;
    assert_eq!(
        crate::helpers::sample(&metrics, "promptgauge_websocket_connections_total"),
        Some(1.0)
    );
    let polls = crate::helpers::sample(
        &metrics,
        r#"promptgauge_http_requests_total{method="GET",route="/api/executions/{id}",status="200"}"#,
    )
    .expect("status reads counted");
    // The first view and the final one; polling every 500 ms would be 5+.
    assert!((2.0..=3.0).contains(&polls), "{polls} status reads");
}

/// 30 failing and 25 erroring tests: 20 of each are listed with their
/// reasons, and the rest counted.
#[tokio::test]
async fn the_failure_listing_is_bounded_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("many.yaml");
    let mut yaml = String::from("prompts: ['Say {{n}}']\nproviders: [echo]\ntests:\n");
    for n in 0..30 {
        yaml.push_str(&format!(
            "  - description: case {n}\n    vars: {{n: '{n}'}}\n    assert: [{{type: contains, value: 'nope{n}'}}]\n"
        ));
    }
    for n in 0..25 {
        // A var that refers to itself: the test errors, naming it.
        yaml.push_str(&format!(
            "  - vars: {{n: '{{{{n}}}}', k: {n}}}\n    assert: [{{type: contains, value: x}}]\n"
        ));
    }
    std::fs::write(&suite, yaml).unwrap();
    let out = run(vec![suite.display().to_string()], &dir.path().join("r.db")).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(100), "{stdout}");
    assert!(stdout.contains("\nFailed (30):\n"), "{stdout}");
    assert!(
        stdout.contains(
            "  FAIL  case 0  [Say {{n}}]  echo\n      Expected output to contain \"nope0\"\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("... and 10 more"), "{stdout}");
    assert!(stdout.contains("\nErrored (25):\n"), "{stdout}");
    assert!(stdout.contains("... and 5 more"), "{stdout}");
    assert!(stdout.contains("refers back to itself"), "{stdout}");
    assert_eq!(stdout.matches("  FAIL  ").count(), 20);
    assert_eq!(stdout.matches("  ERROR ").count(), 20);
}
