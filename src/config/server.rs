//! `HTTP_*`: how the HTTP server guards its connections.

use std::time::Duration;

use super::ConfigError;
use super::values::parse_int;

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
