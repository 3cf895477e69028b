//! A typed client of `/ws` on tokio-tungstenite: connect (with the API
//! token and, optionally, compression), send commands, read messages.
//! `promptgauge run --server`, the integration tests and the WebSocket
//! benchmark use it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{ExecutionState, PROTOCOL, PROTOCOL_DEFLATE, ResultSummary, TopicName};

/// Read buffer of a client, bytes (larger frames are read in pieces).
const READ_BUFFER: usize = 4096;
/// Largest message a client accepts (inflated, too).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// What can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or refused the upgrade.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The WebSocket URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server closed the connection.
    #[error("connection closed ({code:?}: {reason})")]
    Closed {
        /// The close code, if the server sent one.
        code: Option<u16>,
        /// Its reason text.
        reason: String,
    },
    /// The socket failed or a frame could not be read.
    #[error("{0}")]
    Protocol(String),
}

/// How to connect.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// The API token (sent as `Authorization: Bearer`).
    pub token: Option<String>,
    /// Ask for compressed large messages (the `promptgauge.v1.deflate` subprotocol).
    pub compress: bool,
    /// The socket's receive buffer in bytes (small values make a slow
    /// reader, for tests and benchmarks); the system default if unset.
    pub receive_buffer: Option<u32>,
}

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServerMessage {
    /// Its type: `execution.progress`, `result`, `alert.firing`, `error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Its sequence number (increasing on a connection).
    pub seq: u64,
    /// When its (oldest) event happened, unix ms.
    pub ts: f64,
    /// The execution it is about.
    #[serde(default)]
    pub execution: Option<i64>,
    /// The request id it answers.
    #[serde(default)]
    pub id: Option<Value>,
    /// Its data.
    #[serde(default)]
    pub data: Value,
}

impl ServerMessage {
    /// The execution state an `execution.*` message carries.
    pub fn state(&self) -> Option<ExecutionState> {
        self.kind
            .starts_with("execution.")
            .then(|| serde_json::from_value(self.data.clone()).ok())
            .flatten()
    }

    /// The results a `result` message carries.
    pub fn results(&self) -> Vec<ResultSummary<'static>> {
        if self.kind != "result" {
            return Vec::new();
        }
        serde_json::from_value(self.data.clone()).unwrap_or_default()
    }
}

/// A frame as received: its JSON text, and whether it came compressed.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message's JSON (the frame's own buffer, not a copy).
    text: Utf8Bytes,
    /// It came as a compressed binary frame.
    pub compressed: bool,
    /// Bytes on the wire (the frame's payload).
    pub wire_bytes: usize,
}

impl Received {
    /// The message's JSON.
    pub fn text(&self) -> &str {
        self.text.as_str()
    }
}

/// A connected client.
pub struct ProgressClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    protocol: Option<String>,
}

impl ProgressClient {
    /// Connects to `base` (`http://host:port` or `ws://host:port/ws`).
    pub async fn connect(base: &str, options: &ClientOptions) -> Result<Self, ClientError> {
        let url = ws_url(base);
        let fail = |reason: String| ClientError::Connect {
            url: url.clone(),
            reason,
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| fail(e.to_string()))?;
        let h = request.headers_mut();
        if let Some(t) = &options.token {
            let v =
                HeaderValue::from_str(&format!("Bearer {t}")).map_err(|e| fail(e.to_string()))?;
            h.insert("authorization", v);
        }
        let protocols = if options.compress {
            format!("{PROTOCOL_DEFLATE}, {PROTOCOL}")
        } else {
            PROTOCOL.to_owned()
        };
        h.insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&protocols).map_err(|e| fail(e.to_string()))?,
        );
        // tungstenite zero-fills the free space of its read buffer (up to
        // this size) before every read; its 128 KiB default made each small
        // frame cost a 128 KiB memset.
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE))
            .read_buffer_size(READ_BUFFER);
        let stream = tcp(&request, options.receive_buffer)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (ws, resp) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|e| match e {
                tungstenite::Error::Http(r) => fail(format!(
                    "HTTP {}: {}",
                    r.status(),
                    r.body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default()
                )),
                e => fail(e.to_string()),
            })?;
        let protocol = resp
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self { ws, protocol })
    }

    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Sends any JSON command.
    pub async fn send(&mut self, command: &Value) -> Result<(), ClientError> {
        self.send_text(command.to_string()).await
    }

    /// Sends a text frame as it is (tests send malformed ones).
    pub async fn send_text(&mut self, text: String) -> Result<(), ClientError> {
        self.ws
            .send(WsMessage::text(text))
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Sends a binary frame (not part of the protocol; tests use it).
    pub async fn send_binary(&mut self, data: Vec<u8>) -> Result<(), ClientError> {
        self.ws
            .send(WsMessage::binary(data))
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Subscribes to executions by id.
    pub async fn subscribe(&mut self, executions: &[i64]) -> Result<(), ClientError> {
        self.send(&serde_json::json!({"op": "subscribe", "executions": executions}))
            .await
    }

    /// Subscribes to whole topics.
    pub async fn subscribe_topics(&mut self, topics: &[TopicName]) -> Result<(), ClientError> {
        let names: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
        self.send(&serde_json::json!({"op": "subscribe", "topics": names}))
            .await
    }

    /// The next message, parsed.
    pub async fn next(&mut self) -> Result<ServerMessage, ClientError> {
        let r = self.next_frame().await?;
        serde_json::from_str(r.text())
            .map_err(|e| ClientError::Protocol(format!("bad message from the server: {e}")))
    }

    /// The next message of type `kind`, skipping others, within `wait`.
    pub async fn next_of(
        &mut self,
        kind: &str,
        wait: Duration,
    ) -> Result<ServerMessage, ClientError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let m = tokio::time::timeout_at(deadline, self.next())
                .await
                .map_err(|_| {
                    ClientError::Protocol(format!("no {kind} message within {wait:?}"))
                })??;
            if m.kind == kind {
                return Ok(m);
            }
        }
    }

    /// The next data frame as text (inflated if it came compressed).
    /// Pings are answered while reading.
    pub async fn next_frame(&mut self) -> Result<Received, ClientError> {
        loop {
            let frame = self
                .ws
                .next()
                .await
                .ok_or(ClientError::Closed {
                    code: None,
                    reason: "stream ended".into(),
                })?
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            match frame {
                WsMessage::Text(t) => {
                    return Ok(Received {
                        wire_bytes: t.len(),
                        text: t,
                        compressed: false,
                    });
                }
                WsMessage::Binary(b) => {
                    let text = super::inflate(&b, MAX_MESSAGE).map_err(|e| {
                        ClientError::Protocol(format!("cannot inflate a frame: {e}"))
                    })?;
                    return Ok(Received {
                        text: text.into(),
                        compressed: true,
                        wire_bytes: b.len(),
                    });
                }
                WsMessage::Close(c) => {
                    return Err(ClientError::Closed {
                        code: c.as_ref().map(|c| u16::from(c.code)),
                        reason: c.map(|c| c.reason.to_string()).unwrap_or_default(),
                    });
                }
                WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
            }
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A TCP connection to the request's host (plain: the client speaks
/// `ws://` only), without Nagle's delay.
async fn tcp(
    request: &tungstenite::handshake::client::Request,
    receive_buffer: Option<u32>,
) -> std::io::Result<MaybeTlsStream<TcpStream>> {
    let uri = request.uri();
    if uri.scheme_str() != Some("ws") {
        return Err(std::io::Error::other("only ws:// URLs are supported"));
    }
    let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']);
    let addr = tokio::net::lookup_host((host, uri.port_u16().unwrap_or(80)))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(MaybeTlsStream::Plain(stream))
}

/// `http://h:p` -> `ws://h:p/ws`; a `ws://` URL is kept.
fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.starts_with("ws://") || base.starts_with("wss://") {
        return base.to_owned();
    }
    let rest = base
        .strip_prefix("http://")
        .map(|r| format!("ws://{r}"))
        .or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")))
        .unwrap_or_else(|| format!("ws://{base}"));
    format!("{rest}/ws")
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_bases_become_ws_urls() {
        assert_eq!(
            super::ws_url("http://127.0.0.1:3001/"),
            "ws://127.0.0.1:3001/ws"
        );
        assert_eq!(super::ws_url("127.0.0.1:3001"), "ws://127.0.0.1:3001/ws");
        assert_eq!(super::ws_url("ws://h:1/ws"), "ws://h:1/ws");
        assert_eq!(super::ws_url("https://h"), "wss://h/ws");
    }
}
