//! The reference the WebSocket benchmark is compared with: a bare
//! tokio-tungstenite server that sends every event to every client through
//! a `tokio::sync::broadcast` channel, with no hub, no queues, no
//! coalescing, no limits. It is not the service: it runs only as the other
//! side of the `ws-*-bare` scenarios, in a child process, so both are
//! measured by the same clients on the same machine in one run.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Serves on `port`, publishing `rate` progress-sized events per second,
/// until killed.
pub async fn serve(port: u16, rate: f64) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let (tx, _) = broadcast::channel::<Utf8Bytes>(1024);
    let ticker = tx.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for seq in 1u64.. {
            every.tick().await;
            let _ = ticker.send(event(seq).into());
        }
    });
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, answer).await else {
                return;
            };
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Ok(text) => {
                            if ws.send(Message::Text(text)).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    incoming = ws.next() => if !matches!(incoming, Some(Ok(_))) {
                        return;
                    },
                }
            }
        });
    }
}

/// Echoes the subprotocol the clients ask for, as promptgauge does.
// The error type is tungstenite's callback contract, not ours.
#[allow(clippy::result_large_err)]
fn answer(_: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    resp.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(crate::progress::PROTOCOL),
    );
    Ok(resp)
}

/// A message shaped and sized like promptgauge's `execution.progress`.
fn event(seq: u64) -> String {
    let now = crate::events::now_us();
    format!(
        r#"{{"type":"execution.progress","seq":{seq},"ts":{}.{:03},"execution":1,"data":{{"status":"running","total":100000,"completed":{seq},"passed":{seq},"failed":0,"errors":0,"running":1,"pending":99999,"ratePerSec":5.0,"etaSeconds":19999.0,"concurrency":1,"waiting":null,"passRate":1.0}}}}"#,
        now / 1000,
        now % 1000
    )
}
