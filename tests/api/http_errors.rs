use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::spawn_app;

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let app = spawn_app().await;

    let res = app.get("/api/does-not-exist?x=%3Cscript%3E").await;

    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["message"], "no route for /api/does-not-exist");
    app.stop().await;
}

#[tokio::test]
async fn wrong_methods_get_a_json_405() {
    let app = spawn_app().await;

    let res = app
        .client
        .delete(app.url("/api/performance/health"))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 405);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    app.stop().await;
}

/// Sends raw bytes and returns the raw response, so the declared length can
/// exceed what is sent.
async fn raw_request(app: &crate::helpers::TestApp, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_before_it_is_read() {
    let app = spawn_app().await;
    let declared = promptgauge::http::BODY_LIMIT + 1;

    let response = raw_request(
        &app,
        &format!(
            "POST /api/performance/health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n{{"
        ),
    )
    .await;

    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains(r#""code":"payload_too_large""#),
        "{response}"
    );
    // Still serving.
    assert_eq!(app.get("/api/performance/health").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn malformed_http_does_not_take_the_server_down() {
    let app = spawn_app().await;

    let garbage = raw_request(&app, "\x00\x01NOT HTTP AT ALL\r\n\r\n").await;
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage}"
    );
    let huge_header = raw_request(
        &app,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(1 << 20)
        ),
    )
    .await;
    assert!(
        huge_header.is_empty()
            || huge_header.starts_with("HTTP/1.1 431")
            || huge_header.starts_with("HTTP/1.1 400"),
        "{}",
        &huge_header[..huge_header.len().min(200)]
    );

    assert_eq!(app.get("/api/performance/health").await.status(), 200);
    app.stop().await;
}
