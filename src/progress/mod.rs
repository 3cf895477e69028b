//! Live progress: the hub that streams executions' progress, results and
//! alerts to many WebSocket clients at once, without ever letting a client
//! slow down the producers.
//!
//! - Producers (the queue, the monitor) publish typed events on the
//!   [`EventBus`]; the hub ([`hub`]) takes them from there, keeps each
//!   execution's latest state for late subscribers, and fans messages out.
//! - Every message is made once and shared: a client's frame reuses it
//!   without a copy, and its compressed form is made once for every client
//!   that asked for compression ([`message`]).
//! - Each client has a bounded queue ([`outbox`]): progress is coalesced
//!   (latest wins), results of one batch window leave as one message, and
//!   a client that falls behind gets a `resync` instead of the backlog, or
//!   is closed if it still cannot keep up.
//! - A [`Connection`] turns a client's commands into hub commands, with a
//!   size limit, a subscription limit and a token-bucket rate limit.
//!
//! This module knows nothing about HTTP or sockets: `http::routes::ws`
//! pumps frames between a socket and a [`Connection`] / [`Outbox`] pair.
//! [`client`] is the typed client (tokio-tungstenite) the CLI, the tests
//! and the benchmark use. The protocol is in `docs/websocket.md`.

pub mod client;
mod command;
mod connection;
mod hub;
mod message;
mod outbox;
#[doc(hidden)]
pub use outbox::coalesce_workload;
mod state;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use command::TopicName;
pub use connection::Connection;
pub use message::{COMPRESSION_THRESHOLD, Frame, inflate};
pub use outbox::{Batch, Next, Outbox};
pub use state::{ExecutionState, Progress, ResultSummary};

use crate::events::EventBus;
use crate::metrics::WebsocketMetrics;
use crate::storage::Storage;

/// The subprotocol of plain JSON text frames.
pub const PROTOCOL: &str = "promptgauge.v1";
/// The subprotocol where messages of [`COMPRESSION_THRESHOLD`] bytes or
/// more come as raw DEFLATE in binary frames.
pub const PROTOCOL_DEFLATE: &str = "promptgauge.v1.deflate";
/// Largest client message the server reads; larger ones get an error.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;
/// Largest frame the socket accepts at all; beyond it the connection
/// closes (1009), since the frame cannot be skipped.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// How long one write to a client may take before it counts as stalled.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Commands queued to the hub at most.
const HUB_COMMANDS: usize = 4096;

/// Settings of the progress stream (`WS_*` variables).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressConfig {
    /// Under load, progress and results of an execution leave at most
    /// once per window (`WS_BATCH_WINDOW`, ms).
    pub batch_window: Duration,
    /// How often the server pings each client (`WS_PING_INTERVAL`, ms).
    pub ping_interval: Duration,
    /// A client silent this long after a ping is closed (`WS_PONG_TIMEOUT`, ms).
    pub pong_timeout: Duration,
    /// Connections open at once (`WS_MAX_CONNECTIONS`); more get 503.
    pub max_connections: usize,
    /// Executions one connection may watch (`WS_MAX_SUBSCRIPTIONS`).
    pub max_subscriptions: usize,
    /// Commands per second a connection may send (`WS_COMMANDS_PER_SECOND`);
    /// bursts of twice that are allowed.
    pub commands_per_second: u32,
    /// Messages a client's queue holds before it gets a resync (`WS_CLIENT_QUEUE`).
    pub client_queue: usize,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        Self {
            batch_window: Duration::from_millis(100),
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_subscriptions: 100,
            commands_per_second: 20,
            client_queue: 1024,
        }
    }
}

/// Why the server closes a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed it, or its socket failed.
    Client,
    /// No frame from the client within the pong timeout after a ping.
    Heartbeat,
    /// It fell behind again soon after a resync, or a write stalled.
    Slow,
    /// It kept sending faster than allowed.
    Abuse,
    /// It sent a frame over [`MAX_FRAME_BYTES`].
    TooBig,
    /// The server is shutting down.
    Shutdown,
}

impl CloseReason {
    /// The close code (RFC 6455 section 7.4 and the IANA registry).
    pub fn code(&self) -> u16 {
        match self {
            CloseReason::Client => 1000,
            CloseReason::Heartbeat | CloseReason::Shutdown => 1001,
            CloseReason::Abuse => 1008,
            CloseReason::TooBig => 1009,
            CloseReason::Slow => 1013,
        }
    }

    /// The close frame's reason text.
    pub fn text(&self) -> &'static str {
        match self {
            CloseReason::Client => "bye",
            CloseReason::Heartbeat => "no pong within the heartbeat timeout",
            CloseReason::Slow => "too slow: fell behind again after a resync",
            CloseReason::Abuse => "too many commands: rate limit exceeded repeatedly",
            CloseReason::TooBig => "frame exceeds 1048576 bytes",
            CloseReason::Shutdown => "server shutting down",
        }
    }

    /// The `reason` label of `promptgauge_websocket_disconnects_total`.
    pub fn label(&self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Heartbeat => "heartbeat",
            CloseReason::Slow => "slow",
            CloseReason::Abuse => "abuse",
            CloseReason::TooBig => "too_big",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// What can go wrong before a connection opens.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// `WS_MAX_CONNECTIONS` are open.
    #[error("too many WebSocket connections ({0} open); try again later")]
    TooManyConnections(usize),
    /// The service is shutting down.
    #[error("the progress stream is shutting down")]
    ShuttingDown,
}

/// The progress service. Cheap to clone.
#[derive(Clone)]
pub struct ProgressHub {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProgressConfig,
    metrics: WebsocketMetrics,
    storage: Storage,
    commands: mpsc::Sender<hub::Command>,
    open: AtomicUsize,
    next_client: AtomicU64,
    tracker: TaskTracker,
    token: CancellationToken,
}

impl ProgressHub {
    /// Starts the hub task on `tracker`, listening to `bus`.
    pub fn start(
        bus: &EventBus,
        storage: Storage,
        metrics: WebsocketMetrics,
        config: ProgressConfig,
        tracker: TaskTracker,
        token: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(HUB_COMMANDS);
        let hub = hub::Hub::new(config, metrics.clone());
        tracker.spawn(hub.run(bus.subscribe(), rx, token.clone()));
        Self {
            inner: Arc::new(Inner {
                config,
                metrics,
                storage,
                commands: tx,
                open: AtomicUsize::new(0),
                next_client: AtomicU64::new(1),
                tracker,
                token,
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ProgressConfig {
        &self.inner.config
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Reserves a connection slot, or says why not.
    pub fn admit(&self) -> Result<Admission, ProgressError> {
        let i = &self.inner;
        if i.token.is_cancelled() {
            return Err(ProgressError::ShuttingDown);
        }
        let max = i.config.max_connections;
        let taken = i
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if taken.is_err() {
            i.metrics.refused.inc();
            return Err(ProgressError::TooManyConnections(max));
        }
        i.metrics.connections.inc();
        i.metrics.connections_total.inc();
        Ok(Admission {
            hub: self.clone(),
            opened: Instant::now(),
        })
    }

    /// Tracks `task` (a connection) on the app's tracker, so shutdown
    /// waits for its close frame.
    pub fn track<F: Future>(&self, task: F) -> tokio_util::task::task_tracker::TrackedFuture<F> {
        self.inner.tracker.track_future(task)
    }

    async fn send(&self, c: hub::Command) {
        // Fails only once the hub stopped (shutdown): nothing to tell then.
        let _ = self.inner.commands.send(c).await;
    }
}

/// A reserved connection slot; freed (and the lifetime recorded) on drop.
pub struct Admission {
    hub: ProgressHub,
    opened: Instant,
}

impl Admission {
    /// Registers the client with the hub; `compress` when it negotiated
    /// [`PROTOCOL_DEFLATE`].
    pub async fn open(self, compress: bool) -> (Connection, Outbox) {
        let hub = self.hub.clone();
        let id = hub.inner.next_client.fetch_add(1, Ordering::Relaxed);
        let shared = outbox::Shared::new();
        hub.send(hub::Command::Open {
            client: id,
            outbox: shared.clone(),
        })
        .await;
        // The hub closes every client it knows when the service stops; one
        // opening just then may not have reached it.
        if hub.inner.token.is_cancelled() {
            shared.close(CloseReason::Shutdown);
        }
        let outbox = Outbox::new(shared.clone(), compress, &hub.inner.metrics);
        (Connection::new(hub, id, shared, self), outbox)
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let i = &self.hub.inner;
        i.open.fetch_sub(1, Ordering::AcqRel);
        i.metrics.connections.dec();
        i.metrics
            .lifetime
            .observe(self.opened.elapsed().as_secs_f64());
    }
}
