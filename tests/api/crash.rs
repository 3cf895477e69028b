//! A real `promptgauge serve` process killed with SIGKILL in the middle of
//! a 10,000-test execution; the restarted service finishes it with exactly
//! one result per job and never runs a finished job again.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{KillOnDrop, open_db, sample, spawn_app_at};

/// 100 x 100 list vars expand into 10,000 tests (promptfoo's expansion).
fn ten_thousand_tests() -> Value {
    let values: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    json!({
        "description": "crash test",
        "prompts": ["Item {{a}}-{{b}}"],
        "providers": [{"id": "mock:crash", "config": {"latencyMs": 20}}],
        "tests": [{"vars": {"a": values, "b": values}, "assert": [{"type": "latency", "threshold": 60000}]}],
    })
}

/// Starts the binary on `db` with port 0 and returns it with its address
/// (read from its start-up log; the rest of the log is drained).
fn start_server(db: &std::path::Path) -> (KillOnDrop, String) {
    start_server_with(db, &[])
}

/// [`start_server`] with more `serve` arguments.
fn start_server_with(db: &std::path::Path, args: &[&str]) -> (KillOnDrop, String) {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_promptgauge"))
            .arg("serve")
            .args(args)
            .env("DATABASE_PATH", db)
            .env("PORT", "0")
            .env("MAX_CONCURRENT_TESTS", "100")
            .env("RUST_LOG", "info")
            .env_remove("API_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start promptgauge"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("addr=").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs its address");
    (child, addr)
}

/// Submits the 10,000-test suite to the server at `addr` and waits until
/// at least 1,500 results are acknowledged; returns (id, acknowledged).
async fn submit_and_run_a_while(client: &reqwest::Client, addr: &str) -> (i64, i64) {
    let body = json!({"suite": ten_thousand_tests(), "cache": false});
    let (id, done, total) = submit_and_wait(client, addr, &body, 1500).await;
    assert_eq!(total, 10_000);
    (id, done)
}

/// Submits `body` to the server at `addr` and waits (a minute at most)
/// until at least `results` are acknowledged; returns (id, acknowledged,
/// total).
async fn submit_and_wait(
    client: &reqwest::Client,
    addr: &str,
    body: &Value,
    results: i64,
) -> (i64, i64, i64) {
    let res = client
        .post(format!("http://{addr}/api/executions"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let submitted: Value = res.json().await.unwrap();
    let id = submitted["id"].as_i64().unwrap();
    let total = submitted["total"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view: Value = client
            .get(format!("http://{addr}/api/executions/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let done = view["completed"].as_i64().unwrap();
        if done >= results {
            return (id, done, total);
        }
        assert!(Instant::now() < deadline, "no progress: {view}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sigkill_mid_execution_then_restart_completes_with_one_result_per_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    // Blocking here is fine: nothing else runs on this runtime yet.
    let (mut child, addr) = start_server(&db);
    promptgauge::common::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    // Kill once a good share, but not all, is done.
    let (id, seen) = submit_and_run_a_while(&client, &addr).await;
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();

    let stored_at_kill: i64 = open_db(&db)
        .query_row(
            "SELECT count(*) FROM test_results WHERE execution_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        stored_at_kill >= seen,
        "{stored_at_kill} < {seen} acknowledged"
    );
    assert!(stored_at_kill < 10_000, "killed too late to mean anything");

    // Restart on the same file: the execution resumes by itself.
    let app = spawn_app_at(dir, db.clone(), |c| c.max_concurrent_tests = 100).await;
    let done = app.wait_done(id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let counted = ["passed", "failed", "errors"]
        .iter()
        .map(|k| done[k].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(
        (done["completed"].as_i64(), counted),
        (Some(10_000), 10_000),
        "{done}"
    );

    eprintln!("killed with {stored_at_kill} of 10000 stored ({seen} seen acknowledged)");
    // Only the jobs without a result ran again.
    let rerun = sample(
        &app.metrics_text().await,
        r#"promptgauge_provider_requests_total{model="crash",provider="mock",status="success"}"#,
    )
    .unwrap_or(0.0);
    assert_eq!(rerun as i64, 10_000 - stored_at_kill);

    let conn = open_db(&db);
    let one = |sql: &str| -> i64 { conn.query_row(sql, [id], |r| r.get(0)).unwrap() };
    assert_eq!(
        one("SELECT count(*) FROM jobs WHERE execution_id = ?1"),
        10_000
    );
    assert_eq!(
        one("SELECT count(*) FROM test_results WHERE execution_id = ?1"),
        10_000
    );
    assert_eq!(
        one(
            "SELECT count(*) FROM jobs j LEFT JOIN test_results r ON r.id = j.id
             WHERE j.execution_id = ?1 AND r.id IS NULL"
        ),
        0,
        "a job without its result"
    );
    assert_eq!(
        one(
            "SELECT count(*) FROM test_results r LEFT JOIN jobs j ON j.id = r.id
             WHERE r.execution_id = ?1 AND j.id IS NULL"
        ),
        0,
        "a result without its job"
    );
    drop(conn);
    app.stop().await;
}

/// SIGTERM mid-execution: the process stops accepting work, lets running
/// tests store their results, flushes every write and exits 0; the restart
/// resumes the rest, running each unfinished job once.
#[tokio::test]
async fn sigterm_mid_execution_exits_0_keeps_every_result_and_the_restart_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("term.db");
    let (mut child, addr) = start_server(&db);
    promptgauge::common::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let (id, seen) = submit_and_run_a_while(&client, &addr).await;
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = child.0.wait().unwrap();
        drop(child);
        status
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");

    let conn = open_db(&db);
    let one = |sql: &str| -> i64 { conn.query_row(sql, [id], |r| r.get(0)).unwrap() };
    let stored = one("SELECT count(*) FROM test_results WHERE execution_id = ?1");
    assert!(stored >= seen, "{stored} < {seen} acknowledged");
    assert!(stored < 10_000, "stopped too late to mean anything");
    // Nothing in flight was lost: every result belongs to a job.
    assert_eq!(
        one(
            "SELECT count(*) FROM test_results r LEFT JOIN jobs j ON j.id = r.id
             WHERE r.execution_id = ?1 AND j.id IS NULL"
        ),
        0
    );
    drop(conn);

    let app = spawn_app_at(dir, db.clone(), |c| c.max_concurrent_tests = 100).await;
    let done = app.wait_done(id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["completed"].as_i64(), Some(10_000), "{done}");
    let rerun = sample(
        &app.metrics_text().await,
        r#"promptgauge_provider_requests_total{model="crash",provider="mock",status="success"}"#,
    )
    .unwrap_or(0.0);
    assert_eq!(
        rerun as i64,
        10_000 - stored,
        "only the unfinished jobs ran again"
    );
    let conn = open_db(&db);
    let one = |sql: &str| -> i64 { conn.query_row(sql, [id], |r| r.get(0)).unwrap() };
    assert_eq!(
        one("SELECT count(*) FROM test_results WHERE execution_id = ?1"),
        10_000
    );
    drop(conn);
    app.stop().await;
}

/// A process that stops while a large execution's jobs are still being
/// stored (they go in chunks) leaves fewer jobs than the execution's
/// total: the restart fails it with the reason instead of running a part
/// of it as if it were whole, and other executions are unaffected.
#[tokio::test]
async fn an_execution_whose_jobs_were_not_all_stored_fails_at_restart_with_the_reason() {
    let app = crate::helpers::spawn_app().await;
    let whole = app
        .submit(serde_json::json!({"suite": crate::helpers::example("smoke")}))
        .await;
    app.wait_done(whole).await;
    let (dir, db) = app.stop().await;
    {
        // What a stop between two chunks leaves: the row, 2 of its 5 jobs.
        let conn = open_db(&db);
        let config: String = conn
            .query_row(
                "SELECT config FROM executions WHERE id = ?1",
                [whole],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute(
            "INSERT INTO executions (config, priority, use_cache, total, created_at, first_job_id)
             VALUES (?1, 'normal', 1, 5, 0, 1000)",
            [&config],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        for j in 0..2 {
            conn.execute(
                "INSERT INTO jobs (id, execution_id, prompt_idx, provider_idx, test_idx, created_at, updated_at)
                 VALUES (?1, ?2, 0, 0, ?3, 0, 0)",
                rusqlite::params![1000 + j, id, j],
            )
            .unwrap();
        }
    }
    let app = spawn_app_at(dir, db, |_| {}).await;
    // Recovery runs once the app serves: wait for what it does.
    let partial = crate::helpers::eventually("the partial execution failed", || async {
        let e = app.get_json("/api/executions/2").await;
        if e["status"] == "pending" {
            Err(e)
        } else {
            Ok(e)
        }
    })
    .await;
    assert_eq!(partial["status"], "failed", "{partial}");
    assert!(
        partial["error"]
            .as_str()
            .is_some_and(|e| e.contains("stopped while this execution's jobs were being stored")),
        "{partial}"
    );
    assert_eq!(partial["completed"], 0, "none of its jobs ran");
    let first = app.get_json(&format!("/api/executions/{whole}")).await;
    assert_eq!(first["status"], "completed");
    app.stop().await;
}

/// `serve --demo` stores the example suites and keeps a mock workload
/// running: executions appear and finish without anyone submitting them.
#[tokio::test]
async fn serve_demo_stores_the_examples_and_runs_executions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let (mut child, addr) = start_server_with(&db, &["--demo"]);
    promptgauge::common::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let (client, url) = (client.clone(), format!("http://{addr}{path}"));
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    crate::helpers::eventually("a finished demo execution", || async {
        let list = get("/api/executions?status=completed").await;
        match list["total"].as_i64() {
            Some(n) if n >= 1 => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let suites = get("/api/suites").await;
    assert!(suites["total"].as_i64().unwrap() >= 1, "{suites}");
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || child.0.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let stored: i64 = open_db(&db)
        .query_row("SELECT count(*) FROM test_results", [], |r| r.get(0))
        .unwrap();
    assert!(stored > 0);
}

/// SIGTERM while 100 tests grade a catastrophic pattern: the process exits
/// 0 within the documented shutdown bound (10 s for requests, 10 s for
/// running tests), not when the backtracking would end.
#[tokio::test]
async fn sigterm_while_catastrophic_patterns_are_graded_exits_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("regex.db");
    let (mut child, addr) = start_server(&db);
    promptgauge::common::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let suite = crate::budgets::catastrophic_suite(400);
    let body = json!({"suite": suite, "maxConcurrency": 100, "cache": false});
    submit_and_wait(&client, &addr, &body, 1).await;
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGTERM);
    }
    let signalled = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return Some(status);
            }
            if signalled.elapsed() > Duration::from_secs(25) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let status = status.expect("exited within the 20 s shutdown bound (and 5 s to flush)");
    assert_eq!(status.code(), Some(0), "{status:?}");
}
