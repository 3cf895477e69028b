//! Configuration: environment variables, overridden by command-line flags.
//!
//! This module owns parsing, defaults and validation. It reads nothing but the
//! environment (through a lookup function, so tests pass their own) and
//! creates nothing but the database's parent folder. A bad value becomes one
//! [`ConfigError`] naming the variable, the value and what is allowed.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::monitor::{Levels, Thresholds};

/// Everything the service needs to start, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind (`HOST`).
    pub host: IpAddr,
    /// Port to bind (`PORT`); 0 picks a free one.
    pub port: u16,
    /// SQLite database file (`DATABASE_PATH`).
    pub database_path: PathBuf,
    /// How long a statement waits for a lock held by another process before
    /// it fails and the request answers 503 (`DB_BUSY_TIMEOUT`, ms).
    pub db_busy_timeout: Duration,
    /// Starting per-provider concurrency of the test queue (`MAX_CONCURRENT_TESTS`).
    pub max_concurrent_tests: usize,
    /// Overrides every cache's default time to live (`CACHE_TTL`, ms).
    pub cache_ttl: Option<Duration>,
    /// How often the performance monitor samples (`PERFORMANCE_MONITORING_INTERVAL`, ms).
    pub monitoring_interval: Duration,
    /// The monitor's warning and critical thresholds (`*_THRESHOLD`,
    /// `*_CRITICAL_THRESHOLD`; memory's warning is `MEMORY_THRESHOLD`).
    pub thresholds: Thresholds,
    /// How long a breach lasts before its alert fires (`ALERT_FOR`, ms).
    pub alert_for: Duration,
    /// Alertmanager to push the monitor's alerts to (`ALERTMANAGER_URL`).
    pub alertmanager_url: Option<String>,
    /// Spending on provider calls per hour that the cost alerts compare
    /// with (`COST_BUDGET_USD_PER_HOUR`, US dollars).
    pub cost_budget_usd_per_hour: Option<f64>,
    /// Bearer token required on every route but `/metrics` and health (`API_TOKEN`).
    pub api_token: Option<ApiToken>,
    /// `tracing` filter directives (`RUST_LOG`).
    pub log_filter: String,
}

/// A secret bearer token. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// The token's bytes, for a constant-time comparison.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Values given as command-line flags; each wins over its environment variable.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--host`
    pub host: Option<String>,
    /// `--port`
    pub port: Option<String>,
    /// `--database-path`
    pub database_path: Option<String>,
    /// `--max-concurrent-tests`
    pub max_concurrent_tests: Option<String>,
    /// `--cache-ttl`
    pub cache_ttl: Option<String>,
    /// `--performance-monitoring-interval`
    pub performance_monitoring_interval: Option<String>,
    /// `--memory-threshold`
    pub memory_threshold: Option<String>,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid {name}={value:?}: {problem}")]
pub struct ConfigError {
    /// The variable or flag, e.g. `PORT` or `--port`.
    pub name: String,
    /// The value as given (empty for unreadable values).
    pub value: String,
    /// What is allowed, or what went wrong.
    pub problem: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 3001,
            database_path: PathBuf::from("./data/promptgauge.db"),
            db_busy_timeout: Duration::from_secs(5),
            max_concurrent_tests: 20,
            cache_ttl: None,
            monitoring_interval: Duration::from_millis(5000),
            thresholds: Thresholds::default(),
            alert_for: Duration::from_secs(60),
            alertmanager_url: None,
            cost_budget_usd_per_hour: None,
            api_token: None,
            log_filter: "info".to_owned(),
        }
    }
}

/// Where a raw value came from: the flag wins over the variable.
struct Source<'a> {
    env: &'a str,
    flag: &'a str,
}

impl Config {
    /// Reads the process environment, applies `overrides`, validates, and
    /// creates the database's parent folder.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let config = Self::from_lookup(read_env, overrides)?;
        config.prepare_database_dir()?;
        Ok(config)
    }

    /// Parses and validates from any lookup; touches nothing on disk.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Result<Option<String>, ConfigError>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let d = Self::default();
        let get = |src: Source<'_>, flag: &Option<String>| -> Result<_, ConfigError> {
            Ok(match flag {
                Some(v) => Some((src.flag.to_owned(), v.clone())),
                None => lookup(src.env)?.map(|v| (src.env.to_owned(), v)),
            })
        };
        let src = |env, flag| Source { env, flag };
        let o = overrides;

        let host = match get(src("HOST", "--host"), &o.host)? {
            Some((_, v)) if v.trim().eq_ignore_ascii_case("localhost") => d.host,
            Some((n, v)) => v.trim().parse().map_err(|_| {
                invalid(
                    &n,
                    &v,
                    "expected an IP address such as 127.0.0.1, 0.0.0.0 or ::1 (or localhost)",
                )
            })?,
            None => d.host,
        };
        let port = match get(src("PORT", "--port"), &o.port)? {
            Some((n, v)) => parse_int(&n, &v, 0, u16::MAX as u64)? as u16,
            None => d.port,
        };
        let database_path = match get(src("DATABASE_PATH", "--database-path"), &o.database_path)? {
            Some((n, v)) if v.trim().is_empty() => {
                return Err(invalid(&n, &v, "expected a file path"));
            }
            Some((_, v)) => PathBuf::from(v),
            None => d.database_path,
        };
        let db_busy_timeout = match lookup("DB_BUSY_TIMEOUT")? {
            Some(v) => Duration::from_millis(parse_int("DB_BUSY_TIMEOUT", &v, 1, 600_000)?),
            None => d.db_busy_timeout,
        };
        let max_concurrent_tests = match get(
            src("MAX_CONCURRENT_TESTS", "--max-concurrent-tests"),
            &o.max_concurrent_tests,
        )? {
            Some((n, v)) => parse_int(&n, &v, 1, 10_000)? as usize,
            None => d.max_concurrent_tests,
        };
        let cache_ttl = match get(src("CACHE_TTL", "--cache-ttl"), &o.cache_ttl)? {
            Some((n, v)) => Some(Duration::from_millis(parse_int(&n, &v, 1, 86_400_000)?)),
            None => d.cache_ttl,
        };
        let monitoring_interval = match get(
            src(
                "PERFORMANCE_MONITORING_INTERVAL",
                "--performance-monitoring-interval",
            ),
            &o.performance_monitoring_interval,
        )? {
            Some((n, v)) => Duration::from_millis(parse_int(&n, &v, 100, 3_600_000)?),
            None => d.monitoring_interval,
        };
        let memory_warning = get(
            src("MEMORY_THRESHOLD", "--memory-threshold"),
            &o.memory_threshold,
        )?;
        let thresholds = thresholds(&lookup, memory_warning, &d.thresholds)?;
        let alert_for = match lookup("ALERT_FOR")? {
            Some(v) => Duration::from_millis(parse_int("ALERT_FOR", &v, 0, 86_400_000)?),
            None => d.alert_for,
        };
        let alertmanager_url = match lookup("ALERTMANAGER_URL")? {
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(parse_http_url("ALERTMANAGER_URL", &v)?),
            None => None,
        };
        let cost_budget_usd_per_hour = match lookup("COST_BUDGET_USD_PER_HOUR")? {
            Some(v) if v.trim().is_empty() => None,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(usd) if usd > 0.0 && usd.is_finite() => Some(usd),
                _ => {
                    return Err(invalid(
                        "COST_BUDGET_USD_PER_HOUR",
                        &v,
                        "expected US dollars per hour greater than 0, such as 2.5",
                    ));
                }
            },
            None => None,
        };
        let api_token = match lookup("API_TOKEN")? {
            Some(v) => Some(parse_token(&v)?),
            None => None,
        };
        let log_filter = match lookup("RUST_LOG")? {
            Some(v) => {
                EnvFilter::try_new(&v).map_err(|e| {
                    invalid("RUST_LOG", &v, &format!("expected tracing directives such as \"info\" or \"promptgauge=debug\" ({e})"))
                })?;
                v
            }
            None => d.log_filter,
        };

        Ok(Self {
            host,
            port,
            database_path,
            db_busy_timeout,
            max_concurrent_tests,
            cache_ttl,
            monitoring_interval,
            thresholds,
            alert_for,
            alertmanager_url,
            cost_budget_usd_per_hour,
            api_token,
            log_filter,
        })
    }

    /// Creates the database's parent folder so SQLite can create the file.
    pub fn prepare_database_dir(&self) -> Result<(), ConfigError> {
        let path = &self.database_path;
        if path.is_dir() {
            return Err(invalid_path(
                path,
                "is a directory; expected a database file path",
            ));
        }
        match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => std::fs::create_dir_all(parent).map_err(|e| {
                invalid_path(
                    path,
                    &format!("cannot create folder {}: {e}", parent.display()),
                )
            }),
            None => Ok(()),
        }
    }
}

/// How a threshold variable is written and turned into the base unit.
#[derive(Clone, Copy)]
enum Unit {
    /// Percent in the variable, a 0-1 ratio inside.
    Percent,
    /// Milliseconds in the variable, seconds inside.
    Millis,
    /// A count of jobs.
    Jobs,
}

impl Unit {
    fn parse(self, name: &str, value: &str) -> Result<f64, ConfigError> {
        match self {
            Self::Percent => Ok(parse_percent(name, value)? / 100.0),
            Self::Millis => Ok(parse_int(name, value, 1, 600_000)? as f64 / 1000.0),
            Self::Jobs => Ok(parse_int(name, value, 1, 100_000_000)? as f64),
        }
    }

    fn show(self, base: f64) -> String {
        match self {
            Self::Percent => format!("{}", base * 100.0),
            Self::Millis => format!("{}", base * 1000.0),
            Self::Jobs => format!("{base}"),
        }
    }
}

/// Every `<SIGNAL>_THRESHOLD` / `<SIGNAL>_CRITICAL_THRESHOLD` pair; a
/// warning level must be below its critical level.
fn thresholds(
    lookup: &impl Fn(&str) -> Result<Option<String>, ConfigError>,
    memory_warning: Option<(String, String)>,
    d: &Thresholds,
) -> Result<Thresholds, ConfigError> {
    let pair = |signal: &str,
                unit: Unit,
                default: Levels,
                warning_given: Option<(String, String)>|
     -> Result<Levels, ConfigError> {
        let warning_name = format!("{signal}_THRESHOLD");
        let critical_name = format!("{signal}_CRITICAL_THRESHOLD");
        let warning_given = match warning_given {
            Some(given) => Some(given),
            None => lookup(&warning_name)?.map(|v| (warning_name.clone(), v)),
        };
        let (warning, warning_name, warning_raw) = match warning_given {
            Some((n, v)) => (unit.parse(&n, &v)?, n, v),
            None => (default.warning, warning_name, unit.show(default.warning)),
        };
        let critical = match lookup(&critical_name)? {
            Some(v) => {
                let c = unit.parse(&critical_name, &v)?;
                if c <= warning {
                    return Err(invalid(
                        &critical_name,
                        &v,
                        &format!("must be above the warning level {warning_name}={warning_raw}"),
                    ));
                }
                c
            }
            None => default.critical,
        };
        if warning >= critical {
            return Err(invalid(
                &warning_name,
                &warning_raw,
                &format!(
                    "must be below the critical level {critical_name}={} (set both to move both)",
                    unit.show(critical)
                ),
            ));
        }
        Ok(Levels { warning, critical })
    };
    Ok(Thresholds {
        cpu: pair("CPU", Unit::Percent, d.cpu, None)?,
        memory: pair("MEMORY", Unit::Percent, d.memory, memory_warning)?,
        response_time: pair("RESPONSE_TIME", Unit::Millis, d.response_time, None)?,
        error_rate: pair("ERROR_RATE", Unit::Percent, d.error_rate, None)?,
        queue_length: pair("QUEUE_LENGTH", Unit::Jobs, d.queue_length, None)?,
    })
}

/// An `http://` or `https://` URL.
fn parse_http_url(name: &str, value: &str) -> Result<String, ConfigError> {
    let allowed = "expected an http:// or https:// URL such as http://127.0.0.1:9093";
    let url = reqwest::Url::parse(value.trim()).map_err(|_| invalid(name, value, allowed))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(name, value, allowed));
    }
    Ok(value.trim().trim_end_matches('/').to_owned())
}

/// Reads one variable; a value that is not UTF-8 is an error, not "unset".
fn read_env(name: &str) -> Result<Option<String>, ConfigError> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(raw)) => Err(invalid(
            name,
            &raw.to_string_lossy(),
            "expected valid UTF-8",
        )),
    }
}

fn invalid(name: &str, value: &str, problem: &str) -> ConfigError {
    ConfigError {
        name: name.to_owned(),
        value: value.to_owned(),
        problem: problem.to_owned(),
    }
}

fn invalid_path(path: &Path, problem: &str) -> ConfigError {
    invalid("DATABASE_PATH", &path.display().to_string(), problem)
}

fn parse_int(name: &str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let allowed = || format!("expected an integer from {min} to {max}");
    let n: u64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(name, value, &allowed()))?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(invalid(name, value, &allowed()))
    }
}

fn parse_percent(name: &str, value: &str) -> Result<f64, ConfigError> {
    let allowed = "expected a percentage greater than 0 and at most 100, such as 80";
    match value.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(invalid(name, value, allowed)),
    }
}

/// Tokens are compared in constant time; short or blank ones are refused so an
/// operator who meant to turn auth on does not silently get a guessable token.
fn parse_token(value: &str) -> Result<ApiToken, ConfigError> {
    let shown = "<redacted>";
    if value.chars().count() < 16 || value.chars().any(char::is_whitespace) {
        return Err(invalid(
            "API_TOKEN",
            shown,
            "expected at least 16 characters without whitespace (unset it to disable auth)",
        ));
    }
    Ok(ApiToken(value.to_owned()))
}

#[cfg(test)]
mod tests {
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
}
