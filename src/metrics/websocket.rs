//! WebSocket progress stream families: connections, what was sent (events,
//! frames, bytes before and after compression), what was coalesced or
//! dropped for slow clients, and how long delivery took.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::register;

/// Delivery latency buckets (event created -> frame written).
pub const DELIVERY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
/// Connection lifetime buckets: a second to a day.
const LIFETIME_BUCKETS: &[f64] = &[1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 14400.0, 86400.0];

/// Why the server closed a connection (the `reason` label).
pub const CLOSE_REASONS: &[&str] = &[
    "client",
    "heartbeat",
    "slow",
    "abuse",
    "too_big",
    "shutdown",
];

/// Handles for the WebSocket progress stream.
#[derive(Clone)]
pub struct WebsocketMetrics {
    /// `promptgauge_websocket_connections`
    pub connections: IntGauge,
    /// `promptgauge_websocket_connections_total`
    pub connections_total: IntCounter,
    /// `promptgauge_websocket_connections_refused_total`
    pub refused: IntCounter,
    /// `promptgauge_websocket_connection_duration_seconds`
    pub lifetime: Histogram,
    /// `promptgauge_websocket_disconnects_total{reason}`
    pub disconnects: IntCounterVec,
    /// `promptgauge_websocket_messages_total{direction="in|out"}`: commands
    /// received; events delivered (a `result` frame carries several).
    pub messages: IntCounterVec,
    /// `promptgauge_websocket_frames_total`
    pub frames: IntCounter,
    /// `promptgauge_websocket_messages_coalesced_total`
    pub coalesced: IntCounter,
    /// `promptgauge_websocket_messages_dropped_total`
    pub dropped: IntCounter,
    /// `promptgauge_websocket_resyncs_total`
    pub resyncs: IntCounter,
    /// `promptgauge_websocket_commands_rejected_total{reason}`
    pub rejected: IntCounterVec,
    /// `promptgauge_websocket_bytes_total{compressed="true|false"}`
    pub bytes: IntCounterVec,
    /// `promptgauge_websocket_compression_input_bytes_total`
    pub compression_input: IntCounter,
    /// `promptgauge_websocket_delivery_seconds`
    pub delivery: Histogram,
}

impl WebsocketMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| register(r, IntCounter::new(name, help)?);
        let counter_vec = |name: &str, help: &str, label: &str, values: &[&str]| {
            let v = register(r, IntCounterVec::new(Opts::new(name, help), &[label])?)?;
            for value in values {
                v.with_label_values(&[*value]).reset();
            }
            Ok::<_, prometheus::Error>(v)
        };
        Ok(Self {
            connections: register(
                r,
                IntGauge::new(
                    "promptgauge_websocket_connections",
                    "WebSocket progress connections open now.",
                )?,
            )?,
            connections_total: counter(
                "promptgauge_websocket_connections_total",
                "WebSocket progress connections accepted.",
            )?,
            refused: counter(
                "promptgauge_websocket_connections_refused_total",
                "WebSocket upgrades refused because the connection limit was reached.",
            )?,
            lifetime: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "promptgauge_websocket_connection_duration_seconds",
                        "How long WebSocket connections stayed open.",
                    )
                    .buckets(LIFETIME_BUCKETS.to_vec()),
                )?,
            )?,
            disconnects: counter_vec(
                "promptgauge_websocket_disconnects_total",
                "WebSocket connections ended, by reason: client, heartbeat, slow, abuse, too_big, shutdown.",
                "reason",
                CLOSE_REASONS,
            )?,
            messages: counter_vec(
                "promptgauge_websocket_messages_total",
                "Commands received (in) and events delivered (out) on WebSocket connections.",
                "direction",
                &["in", "out"],
            )?,
            frames: counter(
                "promptgauge_websocket_frames_total",
                "WebSocket data frames written to clients.",
            )?,
            coalesced: counter(
                "promptgauge_websocket_messages_coalesced_total",
                "Progress messages replaced by a newer one before a client read them.",
            )?,
            dropped: counter(
                "promptgauge_websocket_messages_dropped_total",
                "Messages dropped from a client's queue that fell too far behind (it got a resync instead).",
            )?,
            resyncs: counter(
                "promptgauge_websocket_resyncs_total",
                "Resync messages sent to clients that fell behind.",
            )?,
            rejected: counter_vec(
                "promptgauge_websocket_commands_rejected_total",
                "Client commands answered with an error, by reason.",
                "reason",
                &[
                    "bad_json",
                    "invalid_command",
                    "unknown_op",
                    "too_large",
                    "rate_limited",
                    "not_found",
                    "too_many_subscriptions",
                    "binary",
                    "unavailable",
                ],
            )?,
            bytes: counter_vec(
                "promptgauge_websocket_bytes_total",
                "Payload bytes written in WebSocket data frames, by whether the frame was compressed.",
                "compressed",
                &["true", "false"],
            )?,
            compression_input: counter(
                "promptgauge_websocket_compression_input_bytes_total",
                "Size before compression of the frames sent compressed.",
            )?,
            delivery: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "promptgauge_websocket_delivery_seconds",
                        "Time from an event's creation to its frame being written to a client.",
                    )
                    .buckets(DELIVERY_BUCKETS.to_vec()),
                )?,
            )?,
        })
    }
}
