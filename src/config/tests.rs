//! Parsing, defaults and the messages bad values get.

use super::*;
use std::collections::HashMap;

fn load(vars: &[(&str, &str)], o: &Overrides) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|n| Ok(map.get(n).cloned()), o)
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let c = load(&[], &Overrides::default()).unwrap();
    assert_eq!(c.port, 3001);
    assert_eq!(c.host.to_string(), "127.0.0.1");
    assert_eq!(c.max_concurrent_tests, 20);
    assert_eq!(c.monitoring_interval, Duration::from_millis(5000));
    assert_eq!(c.thresholds, Thresholds::default());
    assert_eq!(c.alert_for, Duration::from_secs(60));
    assert!(c.alertmanager_url.is_none());
    assert!(c.api_token.is_none() && c.cache_ttl.is_none());
}

#[test]
fn localhost_and_ipv6_hosts_are_accepted() {
    let c = load(&[("HOST", "localhost")], &Overrides::default()).unwrap();
    assert_eq!(c.host.to_string(), "127.0.0.1");
    let c = load(&[("HOST", "::1")], &Overrides::default()).unwrap();
    assert_eq!(c.host.to_string(), "::1");
}

#[test]
fn flags_override_environment() {
    let o = Overrides {
        port: Some("4000".into()),
        ..Default::default()
    };
    let c = load(&[("PORT", "5000"), ("CACHE_TTL", "1500")], &o).unwrap();
    assert_eq!(c.port, 4000);
    assert_eq!(c.cache_ttl, Some(Duration::from_millis(1500)));
}

#[test]
fn bad_values_name_the_variable_value_and_what_is_allowed() {
    let cases = [
        ("PORT", "abc", "integer from 0 to 65535"),
        ("PORT", "70000", "integer from 0 to 65535"),
        ("HOST", "not-an-ip", "IP address"),
        ("MAX_CONCURRENT_TESTS", "0", "from 1 to 10000"),
        ("MAX_CONCURRENT_TESTS", "-3", "from 1 to 10000"),
        ("CACHE_TTL", "soon", "integer"),
        ("PERFORMANCE_MONITORING_INTERVAL", "5", "from 100"),
        ("MEMORY_THRESHOLD", "150", "percentage"),
        ("MEMORY_THRESHOLD", "NaN", "percentage"),
        ("DATABASE_PATH", " ", "file path"),
        ("RUST_LOG", "foo=loud", "tracing directives"),
        ("CPU_THRESHOLD", "0", "percentage"),
        (
            "CPU_THRESHOLD",
            "95",
            "below the critical level CPU_CRITICAL_THRESHOLD=90",
        ),
        (
            "MEMORY_CRITICAL_THRESHOLD",
            "50",
            "above the warning level MEMORY_THRESHOLD=80",
        ),
        ("RESPONSE_TIME_THRESHOLD", "1.5", "integer from 1 to 600000"),
        ("ERROR_RATE_CRITICAL_THRESHOLD", "101", "percentage"),
        ("QUEUE_LENGTH_THRESHOLD", "many", "integer"),
        ("ALERT_FOR", "-1", "integer from 0 to 86400000"),
        ("DB_BUSY_TIMEOUT", "0", "integer from 1 to 600000"),
        ("COST_BUDGET_USD_PER_HOUR", "-1", "greater than 0"),
        ("COST_BUDGET_USD_PER_HOUR", "lots", "US dollars per hour"),
        ("COST_BUDGET_USD_PER_HOUR", "inf", "greater than 0"),
        ("ALERTMANAGER_URL", "ftp://x", "http:// or https:// URL"),
        (
            "ALERTMANAGER_URL",
            "localhost:9093",
            "http:// or https:// URL",
        ),
    ];
    for (name, value, allowed) in cases {
        let err = load(&[(name, value)], &Overrides::default()).unwrap_err();
        let line = err.to_string();
        assert!(line.contains(name) && line.contains(value), "{line}");
        assert!(line.contains(allowed), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}

#[test]
fn thresholds_are_read_in_their_units_and_kept_in_base_units() {
    let c = load(
        &[
            ("CPU_THRESHOLD", "60"),
            ("MEMORY_THRESHOLD", "85"),
            ("RESPONSE_TIME_THRESHOLD", "250"),
            ("RESPONSE_TIME_CRITICAL_THRESHOLD", "750"),
            ("ERROR_RATE_CRITICAL_THRESHOLD", "20"),
            ("QUEUE_LENGTH_THRESHOLD", "10"),
            ("QUEUE_LENGTH_CRITICAL_THRESHOLD", "50"),
            ("ALERT_FOR", "0"),
            ("ALERTMANAGER_URL", "http://127.0.0.1:9093/"),
            ("DB_BUSY_TIMEOUT", "250"),
            ("COST_BUDGET_USD_PER_HOUR", "2.5"),
        ],
        &Overrides::default(),
    )
    .unwrap();
    let t = c.thresholds;
    assert_eq!((t.cpu.warning, t.cpu.critical), (0.6, 0.9));
    assert_eq!((t.memory.warning, t.memory.critical), (0.85, 0.95));
    assert_eq!(
        (t.response_time.warning, t.response_time.critical),
        (0.25, 0.75)
    );
    assert_eq!((t.error_rate.warning, t.error_rate.critical), (0.05, 0.2));
    assert_eq!(
        (t.queue_length.warning, t.queue_length.critical),
        (10.0, 50.0)
    );
    assert_eq!(c.alert_for, Duration::ZERO);
    assert_eq!(c.db_busy_timeout, Duration::from_millis(250));
    assert_eq!(c.cost_budget_usd_per_hour, Some(2.5));
    assert_eq!(c.alertmanager_url.as_deref(), Some("http://127.0.0.1:9093"));
    // The memory flag still sets memory's warning level.
    let o = Overrides {
        memory_threshold: Some("90".into()),
        ..Default::default()
    };
    assert_eq!(load(&[], &o).unwrap().thresholds.memory.warning, 0.9);
    let err = load(
        &[],
        &Overrides {
            memory_threshold: Some("96".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.name, "--memory-threshold");
}

#[test]
fn a_bad_flag_is_reported_under_the_flag_name() {
    let o = Overrides {
        port: Some("x".into()),
        ..Default::default()
    };
    let err = load(&[], &o).unwrap_err();
    assert_eq!(err.name, "--port");
}

#[test]
fn api_token_is_validated_and_never_shown() {
    let err = load(&[("API_TOKEN", "short")], &Overrides::default()).unwrap_err();
    assert!(!err.to_string().contains("short"));
    let c = load(&[("API_TOKEN", "0123456789abcdef")], &Overrides::default()).unwrap();
    assert!(!format!("{c:?}").contains("0123456789abcdef"));
}

#[test]
fn a_database_path_under_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let c = Config {
        database_path: file.join("sub").join("pg.db"),
        ..Config::default()
    };
    let err = c.prepare_database_dir().unwrap_err();
    assert_eq!(err.name, "DATABASE_PATH");
    assert!(err.to_string().contains("cannot create folder"), "{err}");
}
