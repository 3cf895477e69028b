//! `GET /ws`: the WebSocket progress stream. The handler admits the
//! connection (or answers 503) and upgrades; the pump then moves frames
//! between the socket and the progress service's [`Connection`] (commands
//! in) and [`Outbox`] (messages out), and sends pings. Batching,
//! coalescing and limits live in `progress`, not here.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::progress::{
    Admission, CloseReason, Connection, Frame, MAX_FRAME_BYTES, Outbox, PROTOCOL, PROTOCOL_DEFLATE,
    ProgressConfig, WRITE_TIMEOUT,
};

/// How long the close frame may take to leave.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Upgrades to the progress stream.
pub(in crate::http) async fn connect(
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade?;
    let admission = state.progress.admit()?;
    let upgrade = upgrade
        .protocols([PROTOCOL_DEFLATE, PROTOCOL])
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES);
    let compress = upgrade
        .selected_protocol()
        .is_some_and(|p| p == PROTOCOL_DEFLATE);
    let hub = state.progress.clone();
    Ok(upgrade.on_upgrade(move |socket| {
        let config = *hub.config();
        hub.track(pump(socket, admission, compress, config))
    }))
}

/// Runs one connection until it closes, for whatever reason.
async fn pump(socket: WebSocket, admission: Admission, compress: bool, config: ProgressConfig) {
    let shutdown = admission.shutdown_token();
    let (mut conn, outbox) = admission.open(compress).await;
    let (mut tx, mut rx) = socket.split();
    let reason = tokio::select! {
        r = write(&mut tx, &outbox, &config) => r,
        r = read(&mut rx, &mut conn) => r,
        r = outbox.closing() => r,
        () = shutdown.cancelled() => CloseReason::Shutdown,
    };
    if reason != CloseReason::Client {
        let frame = CloseFrame {
            code: reason.code(),
            reason: Utf8Bytes::from_static(reason.text()),
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, tx.send(Message::Close(Some(frame)))).await;
    }
    conn.finish(&reason).await;
}

/// Writes every batch the outbox yields in one flush, and pings.
async fn write(
    tx: &mut SplitSink<WebSocket, Message>,
    outbox: &Outbox,
    config: &ProgressConfig,
) -> CloseReason {
    let start = Instant::now() + config.ping_interval;
    let mut ping = tokio::time::interval_at(start, config.ping_interval);
    // A ping waiting for any frame back: when it was sent, and how many
    // frames the client had sent by then.
    let mut waiting: Option<(Instant, u64)> = None;
    loop {
        let deadline = waiting.map(|(at, _)| at + config.pong_timeout);
        tokio::select! {
            batch = outbox.next() => {
                for f in &batch.frames {
                    let m = match f {
                        Frame::Text(b) => match Utf8Bytes::try_from(b.clone()) {
                            Ok(t) => Message::Text(t),
                            Err(_) => continue,
                        },
                        Frame::Deflated(b) => Message::Binary(b.clone()),
                    };
                    if tx.feed(m).await.is_err() {
                        return CloseReason::Client;
                    }
                }
                match tokio::time::timeout(WRITE_TIMEOUT, tx.flush()).await {
                    Ok(Ok(())) => outbox.sent(&batch),
                    Ok(Err(_)) => return CloseReason::Client,
                    Err(_) => return CloseReason::Slow,
                }
            }
            _ = ping.tick() => {
                if waiting.is_none() {
                    waiting = Some((Instant::now(), outbox.frames_seen()));
                    let sent = tokio::time::timeout(WRITE_TIMEOUT, tx.send(Message::Ping(Default::default()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return CloseReason::Slow;
                    }
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                if waiting.is_some_and(|(_, seen)| outbox.frames_seen() == seen) {
                    return CloseReason::Heartbeat;
                }
                waiting = None;
            }
        }
        if waiting.is_some_and(|(_, seen)| outbox.frames_seen() > seen) {
            waiting = None;
        }
    }
}

/// Reads the client's frames and hands them to the connection.
async fn read(rx: &mut SplitStream<WebSocket>, conn: &mut Connection) -> CloseReason {
    while let Some(frame) = rx.next().await {
        let handled = match frame {
            Ok(Message::Text(t)) => conn.text(t.as_str()).await,
            Ok(Message::Binary(b)) => conn.binary(b.len()).await,
            Ok(Message::Ping(_) | Message::Pong(_)) => {
                conn.seen();
                Ok(())
            }
            Ok(Message::Close(_)) => return CloseReason::Client,
            Err(e) => return read_error(e),
        };
        if let Err(reason) = handled {
            return reason;
        }
    }
    CloseReason::Client
}

/// A frame over the socket's limit cannot be skipped: the connection
/// closes with 1009. Anything else is the client going away.
fn read_error(e: axum::Error) -> CloseReason {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e.into_inner().downcast_ref::<WsError>() {
        Some(WsError::Capacity(_)) => CloseReason::TooBig,
        _ => CloseReason::Client,
    }
}
