//! `HTTP_*`: how the HTTP server guards its connections; `PROVIDER_*`:
//! where posted suites may make it send its keys.

use std::time::Duration;

use super::ConfigError;
use super::values::{invalid, parse_int};
use crate::providers::credentials::Guard;

/// Connection limits of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Connections open at once, WebSockets included
    /// (`HTTP_MAX_CONNECTIONS`); more are answered 503 and closed.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, and how long a
    /// kept-alive connection may sit idle (`HTTP_HEADER_TIMEOUT`, ms).
    pub header_timeout: Duration,
    /// How long a request body may go without sending a byte
    /// (`HTTP_BODY_TIMEOUT`, ms).
    pub body_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// `PROVIDER_ALLOWED_HOSTS` and `PROVIDER_KEY_VARS`: where a posted
/// suite may make the server send its keys, and which variables it may
/// read them from, beyond the defaults.
pub(super) fn provider_guard(
    lookup: &impl Fn(&str) -> Result<Option<String>, ConfigError>,
) -> Result<Guard, ConfigError> {
    let list = |name: &str,
                valid: &dyn Fn(&str) -> bool,
                what: &str|
     -> Result<Vec<String>, ConfigError> {
        let Some(raw) = lookup(name)? else {
            return Ok(Vec::new());
        };
        let items: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        match items.iter().find(|i| !valid(i)) {
            Some(bad) => Err(invalid(name, &raw, &format!("{bad:?} is not {what}"))),
            None => Ok(items),
        }
    };
    let host = |h: &str| {
        let (name, port) = h.rsplit_once(':').unwrap_or((h, "0"));
        !name.is_empty()
            && port.parse::<u16>().is_ok()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
    };
    let var = |v: &str| {
        v.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && v != "API_TOKEN"
    };
    Ok(Guard {
        hosts: list(
            "PROVIDER_ALLOWED_HOSTS",
            &host,
            "a host or host:port (comma-separated)",
        )?,
        key_vars: list(
            "PROVIDER_KEY_VARS",
            &var,
            "an upper-case variable name other than API_TOKEN (comma-separated)",
        )?,
    })
}

/// Reads the `HTTP_*` variables through `lookup`.
pub(super) fn http_config(
    lookup: &impl Fn(&str) -> Result<Option<String>, ConfigError>,
    d: HttpConfig,
) -> Result<HttpConfig, ConfigError> {
    let int = |name: &str, min: u64, max: u64, default: u64| -> Result<u64, ConfigError> {
        Ok(match lookup(name)? {
            Some(v) => parse_int(name, &v, min, max)?,
            None => default,
        })
    };
    let ms = |d: Duration| d.as_millis() as u64;
    Ok(HttpConfig {
        max_connections: int(
            "HTTP_MAX_CONNECTIONS",
            16,
            1_000_000,
            d.max_connections as u64,
        )? as usize,
        header_timeout: Duration::from_millis(int(
            "HTTP_HEADER_TIMEOUT",
            100,
            600_000,
            ms(d.header_timeout),
        )?),
        body_timeout: Duration::from_millis(int(
            "HTTP_BODY_TIMEOUT",
            100,
            600_000,
            ms(d.body_timeout),
        )?),
    })
}
