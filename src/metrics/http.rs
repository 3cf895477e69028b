//! HTTP server families: requests by route template, latency, in-flight,
//! panics, open and refused connections.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use super::{HTTP_BUCKETS, register};

/// Handles for the HTTP middleware.
#[derive(Clone)]
pub struct HttpMetrics {
    /// `promptgauge_http_requests_total{method,route,status}`
    pub requests: IntCounterVec,
    /// `promptgauge_http_request_duration_seconds{method,route}`
    pub duration: HistogramVec,
    /// `promptgauge_http_requests_in_flight`
    pub in_flight: IntGauge,
    /// `promptgauge_http_panics_total`: handlers that panicked (each
    /// answered 500 and counted in `requests` too).
    pub panics: IntCounter,
    /// `promptgauge_http_connections`: connections open (WebSockets leave
    /// when they upgrade).
    pub connections: IntGauge,
    /// `promptgauge_http_connections_refused_total`: connections answered
    /// 503 because `HTTP_MAX_CONNECTIONS` were open.
    pub connections_refused: IntCounter,
}

impl HttpMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        Ok(Self {
            requests: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_http_requests_total",
                        "HTTP requests answered, by method, route template and status code.",
                    ),
                    &["method", "route", "status"],
                )?,
            )?,
            duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "promptgauge_http_request_duration_seconds",
                        "Time from receiving a request to producing its response, by method and route template.",
                    )
                    .buckets(HTTP_BUCKETS.to_vec()),
                    &["method", "route"],
                )?,
            )?,
            in_flight: register(
                r,
                IntGauge::new(
                    "promptgauge_http_requests_in_flight",
                    "HTTP requests currently being handled.",
                )?,
            )?,
            panics: register(
                r,
                IntCounter::new(
                    "promptgauge_http_panics_total",
                    "Requests whose handler panicked; each was answered 500.",
                )?,
            )?,
            connections: register(
                r,
                IntGauge::new(
                    "promptgauge_http_connections",
                    "HTTP connections open (a WebSocket leaves when it upgrades).",
                )?,
            )?,
            connections_refused: register(
                r,
                IntCounter::new(
                    "promptgauge_http_connections_refused_total",
                    "Connections answered 503 and closed because HTTP_MAX_CONNECTIONS were open.",
                )?,
            )?,
        })
    }

    /// Creates the series of a known route at zero, so error ratios and
    /// latency quantiles have data before the first request or error.
    pub fn preinit(&self, method: &str, route: &str) {
        for status in ["200", "500"] {
            self.requests.with_label_values(&[method, route, status]);
        }
        self.duration.with_label_values(&[method, route]);
    }
}
