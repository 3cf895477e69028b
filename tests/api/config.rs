//! Bad configuration stops start-up with one clear line, never a panic.

use crate::helpers::run_binary;

/// Runs `promptgauge` (serve) with one bad variable and checks the refusal.
fn assert_refused(env: &[(&str, &str)], args: &[&str], must_mention: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pg.db");
    let mut all_env = vec![("DATABASE_PATH", db.to_str().unwrap()), ("PORT", "0")];
    all_env.extend_from_slice(env);

    let out = run_binary(args, &all_env);

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{env:?} {args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for word in must_mention {
        assert!(stderr.contains(word), "{word:?} missing from: {stderr}");
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(!db.exists(), "nothing was created for a refused config");
}

#[test]
fn bad_config_values_stop_start_up_with_one_line() {
    let cases: &[(&str, &str, &str)] = &[
        ("PORT", "abc", "integer from 0 to 65535"),
        ("PORT", "65536", "integer from 0 to 65535"),
        ("PORT", "-1", "integer from 0 to 65535"),
        ("HOST", "example.com", "IP address"),
        ("MAX_CONCURRENT_TESTS", "0", "from 1 to 10000"),
        ("MAX_CONCURRENT_TESTS", "twenty", "from 1 to 10000"),
        ("CACHE_TTL", "1.5", "integer from 1 to 86400000"),
        (
            "PERFORMANCE_MONITORING_INTERVAL",
            "99",
            "from 100 to 3600000",
        ),
        ("MEMORY_THRESHOLD", "0", "percentage"),
        ("MEMORY_THRESHOLD", "101", "percentage"),
        ("RUST_LOG", "promptgauge=shouting", "tracing directives"),
    ];
    for (name, value, allowed) in cases {
        assert_refused(&[(name, value)], &[], &[name, value, allowed]);
    }
}

#[test]
fn a_short_api_token_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pg.db");
    let out = run_binary(
        &[],
        &[
            ("DATABASE_PATH", db.to_str().unwrap()),
            ("API_TOKEN", "hunter2"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("API_TOKEN") && stderr.contains("at least 16"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn flags_are_validated_like_their_variables() {
    assert_refused(
        &[],
        &["serve", "--port", "http"],
        &["--port", "http", "integer"],
    );
    assert_refused(
        &[],
        &["--memory-threshold", "-5"],
        &["--memory-threshold", "-5"],
    );
}

#[test]
fn an_unusable_database_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let under_file = file.join("data").join("pg.db");

    let out = run_binary(
        &[],
        &[
            ("DATABASE_PATH", under_file.to_str().unwrap()),
            ("PORT", "0"),
        ],
    );

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("DATABASE_PATH") && stderr.contains("cannot create folder"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");
}

#[test]
fn a_database_path_that_is_a_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();

    let out = run_binary(
        &[],
        &[
            ("DATABASE_PATH", dir.path().to_str().unwrap()),
            ("PORT", "0"),
        ],
    );

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("DATABASE_PATH") && stderr.contains("is a directory"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created inside"
    );
}

#[test]
fn a_port_in_use_is_reported_plainly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pg.db");

    let out = run_binary(
        &[],
        &[("DATABASE_PATH", db.to_str().unwrap()), ("PORT", &port)],
    );

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
