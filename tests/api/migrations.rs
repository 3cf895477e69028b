//! `promptgauge migrate`, and refusing databases the binary must not touch.

use std::path::Path;

use promptgauge::storage::SCHEMA_VERSION;
use promptgauge::{App, Config};

use crate::helpers::{new_execution, open_db, results, run_binary, spawn_app_at};

fn migrate(db: &Path) -> std::process::Output {
    run_binary(&["migrate"], &[("DATABASE_PATH", db.to_str().unwrap())])
}

fn user_version(db: &Path) -> i64 {
    open_db(db)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn migrate_creates_the_schema_on_a_fresh_file_and_prints_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested").join("pg.db");

    let out = migrate(&db);

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "schema version {SCHEMA_VERSION} (was 0; applied 0001_initial"
        )),
        "{stdout}"
    );
    assert_eq!(user_version(&db), SCHEMA_VERSION);
    let conn = open_db(&db);
    for table in [
        "suites",
        "prompts",
        "test_cases",
        "executions",
        "jobs",
        "test_results",
        "rollups",
        "provider_cache",
        "optimization_suggestions",
        "reports",
        "alerts",
        "monitor_samples",
        "benchmark_runs",
    ] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "table {table}");
    }
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'test_results' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "test_results_created_passed",
            "test_results_execution",
            "test_results_latency",
            "test_results_model"
        ]
    );
}

#[tokio::test]
async fn migrating_an_already_migrated_database_changes_nothing_and_keeps_data() {
    let app = crate::helpers::spawn_app().await;
    let execution = new_execution(&app.storage).await;
    app.storage
        .insert_results(results(execution, 1, 25))
        .await
        .unwrap();
    let (dir, db) = app.stop().await;

    let out = migrate(&db);

    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("schema version {SCHEMA_VERSION} (up to date)"))
    );
    // Restarting on the same file keeps every row.
    let app = spawn_app_at(dir, db, |_| {}).await;
    let counts = app.storage.result_counts(execution).await.unwrap();
    assert_eq!(counts.total, 25);
    assert_eq!(counts.passed, 20);
    app.stop().await;
}

fn newer_schema_db(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("future.db");
    assert!(migrate(&db).status.success());
    open_db(&db)
        .pragma_update(None, "user_version", SCHEMA_VERSION + 7)
        .unwrap();
    db
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = newer_schema_db(dir.path());
    let before = std::fs::read(&db).unwrap();

    let out = migrate(&db);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("schema version {}", SCHEMA_VERSION + 7))
            && stderr.contains("upgrade promptgauge"),
        "{stderr}"
    );

    let config = Config {
        port: 0,
        database_path: db.clone(),
        ..Config::default()
    };
    let err = App::build(config).await.err().expect("refused");
    assert!(err.to_string().contains("newer than"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(user_version(&db), SCHEMA_VERSION + 7);
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    let content = "These are my notes, not a database.\n".repeat(200);
    std::fs::write(&db, &content).unwrap();

    let out = run_binary(
        &[],
        &[("DATABASE_PATH", db.to_str().unwrap()), ("PORT", "0")],
    );

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a SQLite database"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read_to_string(&db).unwrap(), content);
    let siblings: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(siblings.len(), 1, "no -wal or -shm created");

    let short = dir.path().join("short.db");
    std::fs::write(&short, "SQLite").unwrap();
    assert_eq!(migrate(&short).status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&short).unwrap(), "SQLite");
}

#[test]
fn another_applications_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crm.db");
    open_db(&db)
        .execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'Ada');")
        .unwrap();

    let out = migrate(&db);

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another application"), "{stderr}");
    let tables: i64 = open_db(&db)
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn a_version_1_database_gets_its_rollups_backfilled_by_migration_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v1.db");
    // A database as version 1 left it, with results and no rollups.
    {
        let conn = open_db(&db);
        conn.execute_batch(include_str!("../../migrations/0001_initial.sql"))
            .unwrap();
        conn.execute_batch("PRAGMA user_version = 1; PRAGMA application_id = 0x50474155;")
            .unwrap();
        let now = promptgauge::storage::now_ms();
        conn.execute(
            "INSERT INTO executions (id, config, created_at) VALUES (1, '{}', ?1)",
            [now],
        )
        .unwrap();
        // 310 jobs left pending by version 1; 300 have their result.
        for id in 1..=310 {
            conn.execute(
                "INSERT INTO jobs (id, execution_id, prompt_idx, provider_idx, test_idx, created_at, updated_at)
                 VALUES (?1, 1, 0, 0, ?1, 0, 0)",
                [id],
            )
            .unwrap();
        }
        for (i, r) in results(1, 1, 300).iter().enumerate() {
            conn.execute(
                "INSERT INTO test_results (id, execution_id, prompt_idx, test_idx, provider, model,
                     passed, score, failure_reason, execution_time_ms, input_tokens, output_tokens,
                     cost_usd, created_at) VALUES (?1, 1, 0, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                rusqlite::params![
                    r.id, r.test_idx, r.provider, r.model, r.passed, r.score, r.failure_reason,
                    r.execution_time_ms, r.input_tokens, r.output_tokens, r.cost_usd,
                    // Over the last five hours: both tiers get rows.
                    now - (i as i64) * 60_000,
                ],
            )
            .unwrap();
        }
    }
    let out = migrate(&db);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied 0002_rollups"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = open_db(&db);
    let sums = |res: i64| -> (i64, i64, i64) {
        conn.query_row(
            "SELECT sum(count), sum(passed), sum(latency_sum_ms) FROM rollups WHERE resolution_s = ?1",
            [res],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let raw: (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(passed), sum(execution_time_ms) FROM test_results",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(sums(3600), raw, "the hour tier holds every result");
    assert_eq!(sums(60), raw, "all within the minute retention");
    let old: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'result_rollups'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0);
    // 0004: jobs with a result are done; the rest are still to run.
    let jobs = |status: &str| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM jobs WHERE status = ?1",
            [status],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!((jobs("done"), jobs("pending")), (300, 10));
}
