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

/// Every route that reads a time or a duration from the query or the body,
/// given the strings that used to panic or wrap, and mutations of them.
#[tokio::test]
async fn hostile_times_and_durations_are_4xx_never_a_dropped_connection() {
    let app = spawn_app().await;
    let values = [
        "2026-12-01T10:00:00%C3%A90:00",
        "2026-12-01T10:00:00+%E6%97%A5:0",
        "2026-12-01T10:00:00%F0%9F%98%80",
        "213503982334601d",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999",
        "1e309",
        "%00",
    ];
    let mut checked = 0;
    for v in values {
        for path in [
            format!("/api/analytics/historical?from={v}"),
            format!("/api/analytics/historical?from=0&to={v}"),
            format!("/api/analytics/models?from={v}"),
            format!("/api/analytics/cost?from={v}"),
            format!("/api/analytics/realtime?window={v}"),
            format!("/api/performance/alerts?since={v}"),
        ] {
            let res = app.get(&path).await;
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap();
            assert!((400..500).contains(&status), "{path}: {status} {body}");
            assert!(body["error"]["code"].is_string(), "{path}: {body}");
            checked += 1;
        }
        let decoded = v.replace("%C3%A9", "é").replace("%E6%97%A5", "日");
        for params in [
            serde_json::json!({"from": decoded, "to": "2026-12-02"}),
            serde_json::json!({"window": decoded}),
        ] {
            let body = serde_json::json!({"kind": "cost", "params": params});
            let res = app.post_json("/api/reports", &body).await;
            let status = res.status().as_u16();
            assert!((400..500).contains(&status), "{body}: {status}");
            checked += 1;
        }
    }
    assert_eq!(checked, values.len() * 8);
    // `since` as a duration reaches back at most 100 years: no wrap into
    // the future, so the window holds everything (the empty list here).
    let res = app
        .get_json("/api/performance/alerts?state=resolved&since=36500d")
        .await;
    assert_eq!(res["since"], 0, "{res}");
    let m = app.metrics_text().await;
    let errors: Vec<&str> = m
        .lines()
        .filter(|l| {
            l.starts_with("promptgauge_http_requests_total") && l.contains(r#"status="500""#)
        })
        .filter(|l| !l.ends_with(" 0"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    app.stop().await;
}

/// Opens `n` connections that send the start of a request and stop.
async fn half_sent(app: &crate::helpers::TestApp, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"GET /api/performance/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        open.push(s);
    }
    open
}

#[tokio::test]
async fn health_answers_while_a_thousand_half_sent_requests_are_open() {
    // The client side needs its own thousand descriptors.
    promptgauge::common::files::raise_open_file_limit(8192);
    let app = spawn_app().await;
    let slow = half_sent(&app, 1000).await;

    for _ in 0..5 {
        assert_eq!(app.get("/api/performance/health").await.status(), 200);
    }
    let m = app.metrics_text().await;
    let open = crate::helpers::sample(&m, "promptgauge_http_connections").unwrap();
    assert!(open >= 1000.0, "{open} connections counted");
    drop(slow);
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.http.header_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let mut slow = half_sent(&app, 3).await;
    for s in &mut slow {
        // The server closes it: the read ends (the deadline is a hang guard).
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(std::time::Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("the server closed the connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    assert_eq!(app.get("/api/performance/health").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn past_the_connection_limit_a_client_gets_a_json_503_and_others_still_work() {
    let app = crate::helpers::spawn_app_with(|c| c.http.max_connections = 16).await;
    let held = half_sent(&app, 16).await;

    let refused = raw_request(
        &app,
        "GET /api/performance/health HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains(r#""code":"unavailable""#), "{refused}");

    drop(held);
    // The slots come back as the server sees the closes.
    let health = crate::helpers::eventually("a free connection slot", || async {
        match app
            .client
            .get(app.url("/api/performance/health"))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => Ok(()),
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let () = health;
    let m = app.metrics_text().await;
    assert!(
        crate::helpers::sample(&m, "promptgauge_http_connections_refused_total").unwrap() >= 1.0
    );
    app.stop().await;
}

/// Oversized requests answer in our JSON shape: a body cut off while read
/// (no length declared), a long request target, large headers.
#[tokio::test]
async fn oversized_requests_answer_json_errors() {
    let app = spawn_app().await;
    // A chunked YAML body over the limit of POST /api/suites.
    let body = format!(
        "prompts: ['{}']\n",
        "x".repeat(promptgauge::http::SUITE_BODY_LIMIT + 10)
    );
    let stream = futures_util::stream::iter(
        body.into_bytes()
            .chunks(1 << 20)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let res = app
        .client
        .post(app.url("/api/suites"))
        .header("content-type", "application/yaml")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");

    let long = format!(
        "/api/executions?x={}",
        "a".repeat(promptgauge::http::MAX_URI_BYTES)
    );
    let res = app.get(&long).await;
    assert_eq!(res.status(), 414);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "uri_too_long", "{v}");

    let res = app
        .client
        .get(app.url("/api/executions"))
        .header("x-big", "b".repeat(promptgauge::http::MAX_HEADER_BYTES + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "headers_too_large", "{v}");
    // Not UTF-8: a plain-text rejection below, JSON outside.
    let res = app
        .client
        .post(app.url("/api/suites"))
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: serde_json::Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("UTF-8"),
        "{v}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_or_suite_that_names_a_key_twice_is_refused() {
    let app = spawn_app().await;
    let res = app
        .post_raw(
            "/api/executions",
            "application/json",
            r#"{"suiteId": 1, "priority": "low", "priority": "high"}"#,
        )
        .await;
    assert_eq!(res.status(), 400);
    let v: serde_json::Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate key \"priority\""),
        "{v}"
    );
    // A suite document in JSON, stored as such.
    let res = app
        .post_raw(
            "/api/suites",
            "application/json",
            r#"{"prompts": ["a"], "providers": ["echo"], "tests": [{"vars": {"x": 1, "x": 2}}]}"#,
        )
        .await;
    assert_eq!(res.status(), 422);
    let v: serde_json::Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate key \"x\""),
        "{v}"
    );
    assert_eq!(app.get_json("/api/suites").await["total"], 0);
    assert_eq!(app.get_json("/api/executions").await["total"], 0);
    app.stop().await;
}
