//! Reading one value: numbers, percentages, thresholds, URLs, tokens, and
//! the error that names the variable, the value and what is allowed.

use std::path::Path;

use super::{ApiToken, ConfigError};
use crate::monitor::{Levels, Thresholds};

/// How a threshold variable is written and turned into the base unit.
#[derive(Clone, Copy)]
pub(super) enum Unit {
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
pub(super) fn thresholds(
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
pub(super) fn parse_http_url(name: &str, value: &str) -> Result<String, ConfigError> {
    let allowed = "expected an http:// or https:// URL such as http://127.0.0.1:9093";
    let url = reqwest::Url::parse(value.trim()).map_err(|_| invalid(name, value, allowed))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(name, value, allowed));
    }
    Ok(value.trim().trim_end_matches('/').to_owned())
}

/// Reads one variable; a value that is not UTF-8 is an error, not "unset".
pub(super) fn read_env(name: &str) -> Result<Option<String>, ConfigError> {
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

pub(super) fn invalid(name: &str, value: &str, problem: &str) -> ConfigError {
    ConfigError {
        name: name.to_owned(),
        value: value.to_owned(),
        problem: problem.to_owned(),
    }
}

pub(super) fn invalid_path(path: &Path, problem: &str) -> ConfigError {
    invalid("DATABASE_PATH", &path.display().to_string(), problem)
}

pub(super) fn parse_int(name: &str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
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

pub(super) fn parse_percent(name: &str, value: &str) -> Result<f64, ConfigError> {
    let allowed = "expected a percentage greater than 0 and at most 100, such as 80";
    match value.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(invalid(name, value, allowed)),
    }
}

/// Tokens are compared in constant time; short or blank ones are refused so an
/// operator who meant to turn auth on does not silently get a guessable token.
pub(super) fn parse_token(value: &str) -> Result<ApiToken, ConfigError> {
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

/// US dollars per hour, greater than 0.
pub(super) fn parse_usd_per_hour(name: &str, value: &str) -> Result<f64, ConfigError> {
    match value.trim().parse::<f64>() {
        Ok(usd) if usd > 0.0 && usd.is_finite() => Ok(usd),
        _ => Err(invalid(
            name,
            value,
            "expected US dollars per hour greater than 0, such as 2.5",
        )),
    }
}
