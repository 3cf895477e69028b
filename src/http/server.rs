//! The accept loop: HTTP/1.1 connections served by hyper with the guards
//! `axum::serve` leaves out. A client must send a request's headers within
//! the header timeout (a kept-alive connection may idle that long), a body
//! may not stall longer than the body timeout, and at most
//! `max_connections` are open at once: past that a connection is answered
//! 503 and closed, so half-sent requests cannot starve the health check.
//! A WebSocket leaves this count when it upgrades; the progress hub has its
//! own limit.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;
use tower_http::timeout::TimeoutBody;

use crate::metrics::HttpMetrics;

/// The server's guards (`HTTP_*`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to send a request's headers; also the keep-alive idle limit.
    pub header_timeout: Duration,
    /// Longest silence inside a request body.
    pub body_timeout: Duration,
}

/// What a client over the connection limit reads before the close.
const BUSY: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 91\r\n\r\n{\"error\":{\"code\":\"unavailable\",\"message\":\"too many open connections; retry in a moment\"}}\r\n";

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// connections finish their requests. Small writes leave at once
/// (`TCP_NODELAY`): with Nagle's algorithm progress frames and JSON answers
/// waited for the peer's delayed ACK, up to 40 ms.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: HttpMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or a connection reset before
                    // accept: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connections_refused.inc();
            connections.spawn(refuse(tcp));
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = hyper::service::service_fn({
            let (router, body_timeout) = (router.clone(), limits.body_timeout);
            move |req: hyper::Request<Incoming>| {
                let req = req.map(|b| Body::new(TimeoutBody::new(body_timeout, b)));
                let mut router = router.clone();
                async move { Ok::<_, Infallible>(router.call(req).await.unwrap_or_else(|e| match e {})) }
            }
        });
        let connection = http
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let (closing, gauge) = (closing.clone(), metrics.connections.clone());
        gauge.inc();
        connections.spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                r = connection.as_mut() => r,
                () = closing.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            gauge.dec();
            drop(slot);
        });
    }
    closing.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Tells a client over the limit to come back, without waiting on it long.
async fn refuse(mut tcp: TcpStream) {
    let write = async {
        tcp.write_all(BUSY.as_bytes()).await?;
        tcp.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_answer_declares_its_length() {
        let (head, body) = super::BUSY.split_once("\r\n\r\n").unwrap();
        let declared: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(declared, body.len());
        let v: serde_json::Value = serde_json::from_str(body.trim_end()).unwrap();
        assert_eq!(v["error"]["code"], "unavailable");
    }
}
