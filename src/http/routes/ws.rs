//! `GET /ws`: the WebSocket progress stream. The handler admits the
//! connection (or answers 503) and upgrades; the pump then moves frames
//! between the socket and the progress service's [`Connection`] (commands
//! in) and [`Outbox`] (messages out), and sends pings, in one task. Batching,
//! coalescing and limits live in `progress`, not here.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::SinkExt;
use tokio::time::Instant;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::progress::{
    Admission, Batch, CloseReason, Connection, Frame, MAX_FRAME_BYTES, Next, Outbox, PROTOCOL,
    PROTOCOL_DEFLATE, ProgressConfig, WRITE_TIMEOUT,
};

/// Read buffer per connection, bytes.
const READ_BUFFER: usize = 4096;
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
        .max_frame_size(MAX_FRAME_BYTES)
        // Clients send small commands. tungstenite allocates this buffer
        // per connection and zero-fills its free space before each read:
        // the 128 KiB default cost 1.3 GB for 10,000 clients and a memset
        // per read (BENCHMARKS.md).
        .read_buffer_size(READ_BUFFER);
    let compress = upgrade
        .selected_protocol()
        .is_some_and(|p| p == PROTOCOL_DEFLATE);
    let hub = state.progress.clone();
    Ok(upgrade.on_upgrade(move |socket| {
        let config = *hub.config();
        hub.track(pump(socket, admission, compress, config))
    }))
}

/// Runs one connection until it closes, for whatever reason. One task
/// does both directions: it writes what the outbox yields (all of it in
/// one flush), reads commands, and pings. A close comes through the
/// outbox too (the hub closes every client when the service stops).
async fn pump(mut socket: WebSocket, admission: Admission, compress: bool, config: ProgressConfig) {
    let (mut conn, outbox) = admission.open(compress).await;
    // One timer: the next ping, or the deadline of the one sent, with how
    // many frames the client had sent when it went out.
    let timer = tokio::time::sleep(config.ping_interval);
    tokio::pin!(timer);
    let mut waiting: Option<(Instant, u64)> = None;
    let reason = loop {
        tokio::select! {
            biased;
            next = outbox.next() => match next {
                Next::Close(r) => break r,
                Next::Batch(batch) => {
                    if let Err(r) = write(&mut socket, &outbox, &batch).await {
                        break r;
                    }
                }
            },
            frame = socket.recv() => {
                if let Err(r) = read(frame, &mut conn).await {
                    break r;
                }
            }
            () = &mut timer => {
                let now = Instant::now();
                match waiting.take() {
                    Some((_, seen)) if outbox.frames_seen() == seen => break CloseReason::Heartbeat,
                    Some((sent, _)) => timer.as_mut().reset(sent + config.ping_interval),
                    None => {
                        waiting = Some((now, outbox.frames_seen()));
                        timer.as_mut().reset(now + config.pong_timeout);
                        let ping = socket.send(Message::Ping(Default::default()));
                        if !matches!(tokio::time::timeout(WRITE_TIMEOUT, ping).await, Ok(Ok(()))) {
                            break CloseReason::Slow;
                        }
                    }
                }
            }
        }
    };
    if reason != CloseReason::Client {
        let frame = CloseFrame {
            code: reason.code(),
            reason: Utf8Bytes::from_static(reason.text()),
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Close(Some(frame)))).await;
    }
    conn.finish(&reason).await;
}

/// Writes a batch in one flush.
async fn write(socket: &mut WebSocket, outbox: &Outbox, batch: &Batch) -> Result<(), CloseReason> {
    for f in batch.frames() {
        let m = match f {
            Frame::Text(b) => match Utf8Bytes::try_from(b) {
                Ok(t) => Message::Text(t),
                Err(_) => continue,
            },
            Frame::Deflated(b) => Message::Binary(b),
        };
        socket.feed(m).await.map_err(|_| CloseReason::Client)?;
    }
    match tokio::time::timeout(WRITE_TIMEOUT, socket.flush()).await {
        Ok(Ok(())) => {
            outbox.sent(batch);
            Ok(())
        }
        Ok(Err(_)) => Err(CloseReason::Client),
        Err(_) => Err(CloseReason::Slow),
    }
}

/// Hands one frame from the client to the connection.
async fn read(
    frame: Option<Result<Message, axum::Error>>,
    conn: &mut Connection,
) -> Result<(), CloseReason> {
    match frame {
        Some(Ok(Message::Text(t))) => conn.text(t.as_str()).await,
        Some(Ok(Message::Binary(b))) => conn.binary(b.len()).await,
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
            conn.seen();
            Ok(())
        }
        Some(Ok(Message::Close(_))) | None => Err(CloseReason::Client),
        Some(Err(e)) => Err(read_error(e)),
    }
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
