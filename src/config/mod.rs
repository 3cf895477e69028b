//! Configuration: environment variables, overridden by command-line flags.
//!
//! This module owns parsing, defaults and validation. It reads nothing but the
//! environment (through a lookup function, so tests pass their own) and
//! creates nothing but the database's parent folder. A bad value becomes one
//! [`ConfigError`] naming the variable, the value and what is allowed.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::monitor::Thresholds;
use crate::progress::ProgressConfig;
use values::{
    invalid, invalid_path, parse_http_url, parse_int, parse_token, parse_usd_per_hour, read_env,
    thresholds,
};

mod server;
mod values;

pub use server::HttpConfig;

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
    /// Hosts and key variables posted suites may use beyond the defaults
    /// (`PROVIDER_ALLOWED_HOSTS`, `PROVIDER_KEY_VARS`).
    pub provider_guard: crate::providers::credentials::Guard,
    /// The HTTP server's connection limits (`HTTP_*`).
    pub http: HttpConfig,
    /// The WebSocket progress stream (`WS_*`).
    pub progress: ProgressConfig,
    /// How long minute rollups are kept (`ROLLUP_MINUTE_RETENTION`, hours).
    pub rollup_minute_retention: Duration,
    /// Analytics queries slower than this are recorded (`ANALYTICS_SLOW_QUERY_MS`).
    pub analytics_slow_query: Duration,
    /// A folder whose `report.html` / `report.md` replace the embedded
    /// report templates (`REPORT_TEMPLATES`).
    pub report_templates: Option<PathBuf>,
    /// The model asked for prompt rewrites (`OPTIMIZE_PROVIDER`: a provider
    /// id, or `{"id", "config"}` as JSON); none by default.
    pub optimize_provider: Option<crate::suite::ProviderSpec>,
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
            provider_guard: Default::default(),
            http: HttpConfig::default(),
            progress: ProgressConfig::default(),
            rollup_minute_retention: crate::storage::ROLLUP_MINUTE_RETENTION,
            analytics_slow_query: Duration::from_millis(50),
            report_templates: None,
            optimize_provider: None,
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
    /// Reads the process environment, applies `overrides` and validates;
    /// touches nothing on disk (commands that open the database call
    /// [`Config::prepare_database_dir`]).
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::from_lookup(read_env, overrides)
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
            Some(v) => Some(parse_usd_per_hour("COST_BUDGET_USD_PER_HOUR", &v)?),
            None => None,
        };
        let api_token = match lookup("API_TOKEN")? {
            Some(v) => Some(parse_token(&v)?),
            None => None,
        };
        let http = server::http_config(&lookup, d.http)?;
        let provider_guard = server::provider_guard(&lookup)?;
        let progress = progress_config(&lookup, d.progress)?;
        let rollup_minute_retention = match lookup("ROLLUP_MINUTE_RETENTION")? {
            Some(v) => {
                Duration::from_secs(3600 * parse_int("ROLLUP_MINUTE_RETENTION", &v, 2, 24 * 366)?)
            }
            None => d.rollup_minute_retention,
        };
        let analytics_slow_query = match lookup("ANALYTICS_SLOW_QUERY_MS")? {
            Some(v) => Duration::from_millis(parse_int("ANALYTICS_SLOW_QUERY_MS", &v, 1, 600_000)?),
            None => d.analytics_slow_query,
        };
        let report_templates = match lookup("REPORT_TEMPLATES")? {
            Some(v) if v.trim().is_empty() => None,
            Some(v) => {
                let dir = PathBuf::from(&v);
                if !dir.is_dir() {
                    return Err(invalid(
                        "REPORT_TEMPLATES",
                        &v,
                        "expected a folder holding report.html and/or report.md",
                    ));
                }
                Some(dir)
            }
            None => None,
        };
        let optimize_provider = match lookup("OPTIMIZE_PROVIDER")? {
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(optimize_provider(&v)?),
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
            provider_guard,
            http,
            progress,
            rollup_minute_retention,
            analytics_slow_query,
            report_templates,
            optimize_provider,
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

/// The `WS_*` settings of the progress stream.
fn progress_config(
    lookup: &impl Fn(&str) -> Result<Option<String>, ConfigError>,
    d: ProgressConfig,
) -> Result<ProgressConfig, ConfigError> {
    let ms = |name: &str, min: u64, max: u64, default: Duration| -> Result<Duration, ConfigError> {
        Ok(match lookup(name)? {
            Some(v) => Duration::from_millis(parse_int(name, &v, min, max)?),
            None => default,
        })
    };
    let int = |name: &str, min: u64, max: u64, default: u64| -> Result<u64, ConfigError> {
        Ok(match lookup(name)? {
            Some(v) => parse_int(name, &v, min, max)?,
            None => default,
        })
    };
    Ok(ProgressConfig {
        batch_window: ms("WS_BATCH_WINDOW", 1, 10_000, d.batch_window)?,
        ping_interval: ms("WS_PING_INTERVAL", 10, 3_600_000, d.ping_interval)?,
        pong_timeout: ms("WS_PONG_TIMEOUT", 10, 3_600_000, d.pong_timeout)?,
        max_connections: int("WS_MAX_CONNECTIONS", 1, 1_000_000, d.max_connections as u64)?
            as usize,
        max_subscriptions: int(
            "WS_MAX_SUBSCRIPTIONS",
            1,
            10_000,
            d.max_subscriptions as u64,
        )? as usize,
        commands_per_second: int(
            "WS_COMMANDS_PER_SECOND",
            1,
            10_000,
            u64::from(d.commands_per_second),
        )? as u32,
        client_queue: int("WS_CLIENT_QUEUE", 16, 1_000_000, d.client_queue as u64)? as usize,
    })
}

#[cfg(test)]
mod tests;

/// `OPTIMIZE_PROVIDER`: `openai:gpt-4o-mini`, or `{"id": ..., "config": {...}}`.
fn optimize_provider(v: &str) -> Result<crate::suite::ProviderSpec, ConfigError> {
    const NAME: &str = "OPTIMIZE_PROVIDER";
    let (id, config) = if v.trim_start().starts_with('{') {
        let doc: serde_json::Value = serde_json::from_str(v)
            .map_err(|e| invalid(NAME, v, &format!("not valid JSON: {e}")))?;
        let id = doc
            .get("id")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                invalid(
                    NAME,
                    v,
                    "expected {\"id\": \"openai:<model>\", \"config\": {...}}",
                )
            })?
            .to_owned();
        let config = match doc.get("config") {
            None => serde_json::Map::new(),
            Some(serde_json::Value::Object(c)) => c.clone(),
            Some(_) => return Err(invalid(NAME, v, "config must be an object")),
        };
        (id, config)
    } else {
        (v.trim().to_owned(), serde_json::Map::new())
    };
    let spec = crate::suite::ProviderSpec {
        id,
        label: None,
        config,
        delay_ms: None,
    };
    if let Some(problem) = crate::providers::check(&spec).into_iter().next() {
        return Err(invalid(NAME, v, &problem));
    }
    Ok(spec)
}
