//! The WebSocket progress stream through the running app, with real
//! clients: late subscribers get the current state at once, every result
//! arrives and the end's counts equal what was stored, bad commands get
//! errors on a connection that survives, abusers, silent and stalled
//! clients are dealt with, and large messages come compressed.

use std::collections::BTreeSet;
use std::time::Duration;

use promptgauge::Config;
use promptgauge::progress::TopicName;
use promptgauge::progress::client::{ClientError, ClientOptions, ProgressClient, ServerMessage};
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, sample, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "ws-token-for-tests-0123456789";

async fn client(app: &TestApp) -> ProgressClient {
    ProgressClient::connect(&app.url(""), &ClientOptions::default())
        .await
        .expect("connects")
}

/// `n` tests on the mock with a fixed latency.
fn suite(n: usize, latency_ms: u64) -> Value {
    json!({
        "prompts": ["say {{i}}"],
        "providers": [{"id": "mock:m", "config": {"latencyMs": latency_ms}}],
        "tests": (0..n).map(|i| json!({"description": format!("test {i}"), "vars": {"i": i}})).collect::<Vec<_>>(),
    })
}

async fn next(c: &mut ProgressClient) -> ServerMessage {
    tokio::time::timeout(WAIT, c.next())
        .await
        .expect("a message in time")
        .expect("a message")
}

/// Reads until an `execution.finished` / `execution.cancelled` for `id`;
/// returns every message read.
async fn until_end(c: &mut ProgressClient, id: i64) -> Vec<ServerMessage> {
    let mut seen = Vec::new();
    loop {
        let m = next(c).await;
        let end = m.execution == Some(id)
            && matches!(
                m.kind.as_str(),
                "execution.finished" | "execution.cancelled"
            );
        seen.push(m);
        if end {
            return seen;
        }
    }
}

/// Sends `command` and returns the reply (the next `error`, `pong`,
/// `subscribed` or `unsubscribed` message).
async fn ask(c: &mut ProgressClient, command: &str) -> ServerMessage {
    c.send_text(command.to_owned()).await.expect("sent");
    loop {
        let m = next(c).await;
        if matches!(
            m.kind.as_str(),
            "error" | "pong" | "subscribed" | "unsubscribed"
        ) {
            return m;
        }
    }
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    sample(&app.metrics_text().await, series).unwrap_or(0.0)
}

#[tokio::test]
async fn every_result_arrives_and_the_end_counts_equal_the_stored_results() {
    let app = spawn_app().await;
    let mut c = client(&app).await;
    c.subscribe_topics(&[TopicName::Results, TopicName::Executions])
        .await
        .unwrap();
    assert_eq!(next(&mut c).await.kind, "subscribed");
    let mut body = suite(300, 2);
    body["tests"][7]["assert"] = json!([{"type": "contains", "value": "never"}]);
    let id = app
        .submit(json!({"suite": body, "maxConcurrency": 8}))
        .await;

    let seen = until_end(&mut c, id).await;
    let jobs: BTreeSet<i64> = seen
        .iter()
        .filter(|m| m.execution == Some(id))
        .flat_map(|m| m.results())
        .map(|r| r.job)
        .collect();
    assert_eq!(jobs.len(), 300, "one result per job, none twice");
    let failed: Vec<_> = seen
        .iter()
        .flat_map(|m| m.results())
        .filter(|r| r.status != "passed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].description.as_deref(), Some("test 7"));
    assert_eq!(failed[0].provider, "mock:m");
    assert_eq!(seen[0].kind, "execution.started");
    let end = seen.last().unwrap().state().expect("a state");
    let stored = app.get_json(&format!("/api/executions/{id}")).await;
    assert_eq!(end.status, "completed");
    assert_eq!(
        end.progress.completed as i64,
        stored["completed"].as_i64().unwrap()
    );
    assert_eq!(
        end.progress.passed as i64,
        stored["passed"].as_i64().unwrap()
    );
    assert_eq!(
        end.progress.failed as i64,
        stored["failed"].as_i64().unwrap()
    );
    assert_eq!((end.progress.passed, end.progress.failed), (299, 1));
    // Sequence numbers rise; progress never goes backwards.
    assert!(seen.windows(2).all(|w| w[0].seq < w[1].seq));
    let done: Vec<u64> = seen
        .iter()
        .filter_map(|m| m.state())
        .map(|s| s.progress.completed)
        .collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
}

#[tokio::test]
async fn a_late_subscriber_gets_the_current_state_at_once_then_live_events() {
    let app = spawn_app().await;
    let id = app
        .submit(json!({"suite": suite(200, 20), "maxConcurrency": 4}))
        .await;
    app.wait_for(id, |e| e["completed"].as_i64().unwrap_or(0) >= 20)
        .await;

    let mut c = client(&app).await;
    let reply = ask(
        &mut c,
        &format!(r#"{{"op":"subscribe","executions":["{id}"],"id":"s1"}}"#),
    )
    .await;
    assert_eq!(reply.kind, "subscribed");
    assert_eq!(reply.id, Some(json!("s1")));
    assert_eq!(reply.data["executions"], json!([id]));
    let first = next(&mut c).await;
    assert_eq!(first.execution, Some(id));
    let state = first.state().expect("the current state comes first");
    assert_eq!(state.status, "running");
    assert!(
        state.progress.completed >= 20 && state.progress.completed < 200,
        "{state:?}"
    );
    assert_eq!(state.progress.total, 200);
    assert!(state.progress.concurrency >= 1);

    let rest = until_end(&mut c, id).await;
    assert!(rest.iter().any(|m| m.kind == "result"));
    assert_eq!(
        rest.last().unwrap().state().unwrap().progress.completed,
        200
    );

    // After the end, a new subscriber gets the end itself.
    let mut late = client(&app).await;
    late.subscribe(&[id]).await.unwrap();
    assert_eq!(next(&mut late).await.kind, "subscribed");
    let end = next(&mut late).await;
    assert_eq!(end.kind, "execution.finished");
    assert_eq!(end.state().unwrap().progress.completed, 200);
}

#[tokio::test]
async fn unsubscribe_stops_the_stream_and_ping_answers_with_the_request_id() {
    let app = spawn_app().await;
    let id = app
        .submit(json!({"suite": suite(400, 20), "maxConcurrency": 4}))
        .await;
    let mut c = client(&app).await;
    assert_eq!(
        ask(
            &mut c,
            &format!(r#"{{"op":"subscribe","executions":[{id}]}}"#)
        )
        .await
        .kind,
        "subscribed"
    );
    let live = next(&mut c).await;
    assert_eq!(live.execution, Some(id));
    let reply = ask(
        &mut c,
        &format!(r#"{{"op":"unsubscribe","executions":[{id}],"id":2}}"#),
    )
    .await;
    assert_eq!(reply.kind, "unsubscribed");
    assert_eq!(reply.data["executions"], json!([]));
    // Whatever was in flight before the reply may still come; after a
    // round trip nothing more about the execution does.
    let pong = ask(&mut c, r#"{"op":"ping","id":"p"}"#).await;
    assert_eq!(
        (pong.kind.as_str(), pong.id.clone()),
        ("pong", Some(json!("p")))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = ask(&mut c, r#"{"op":"ping"}"#).await;
    assert_eq!(after.kind, "pong");
    assert!(after.seq > pong.seq);
    app.post_json(&format!("/api/executions/{id}/cancel"), &json!({}))
        .await;
}

#[tokio::test]
async fn bad_commands_get_a_clear_error_and_the_connection_survives() {
    let app = spawn_app().await;
    let mut c = client(&app).await;
    let oversized = format!(r#"{{"op":"ping","pad":"{}"}}"#, "x".repeat(20_000));
    let hostile = r#"{"op":"<script>alert(1)</script>\u0000'; DROP TABLE executions;--"}"#;
    for (command, code, needle) in [
        ("{not json", "bad_json", "not valid JSON"),
        (r#"{"op":"dance"}"#, "unknown_op", "unknown op \"dance\""),
        (
            r#"{"op":"subscribe","executions":[999999]}"#,
            "not_found",
            "no execution with id 999999",
        ),
        (
            r#"{"op":"subscribe","executions":["abc"]}"#,
            "invalid_command",
            "executions[0]",
        ),
        (
            r#"{"op":"subscribe","executions":[1],"topics":"alerts"}"#,
            "invalid_command",
            "\"topics\" must be an array",
        ),
        (r#"[]"#, "invalid_command", "JSON object"),
        (oversized.as_str(), "too_large", "16384-byte limit"),
        (hostile, "unknown_op", "unknown op"),
    ] {
        let reply = ask(&mut c, command).await;
        assert_eq!(reply.kind, "error", "{command:.60}");
        assert_eq!(reply.data["code"], code, "{command:.60}: {}", reply.data);
        let message = reply.data["message"].as_str().unwrap();
        assert!(message.contains(needle), "{command:.60}: {message}");
        assert!(message.len() < 300, "{message}");
    }
    c.send_binary(vec![1, 2, 3]).await.unwrap();
    let reply = next(&mut c).await;
    assert_eq!(
        (reply.kind.as_str(), &reply.data["code"]),
        ("error", &json!("binary"))
    );
    assert_eq!(
        ask(&mut c, r#"{"op":"ping"}"#).await.kind,
        "pong",
        "still open"
    );
    let rejected = metric(
        &app,
        r#"promptgauge_websocket_commands_rejected_total{reason="bad_json"}"#,
    )
    .await;
    assert_eq!(rejected, 1.0);
    // Nothing was stored by any of it.
    let executions = app.get_json("/api/executions").await;
    assert_eq!(executions["total"], 0);
}

#[tokio::test]
async fn too_many_subscriptions_are_refused_and_the_others_kept() {
    let app = spawn_app_with(|c| c.progress.max_subscriptions = 2).await;
    let a = app.submit(json!({"suite": suite(1, 0)})).await;
    let b = app.submit(json!({"suite": suite(1, 0)})).await;
    let d = app.submit(json!({"suite": suite(1, 0)})).await;
    let mut c = client(&app).await;
    assert_eq!(
        ask(
            &mut c,
            &format!(r#"{{"op":"subscribe","executions":[{a},{b}]}}"#)
        )
        .await
        .kind,
        "subscribed"
    );
    let reply = ask(
        &mut c,
        &format!(r#"{{"op":"subscribe","executions":[{d}]}}"#),
    )
    .await;
    assert_eq!(
        reply.data["code"], "too_many_subscriptions",
        "{}",
        reply.data
    );
    let reply = ask(
        &mut c,
        &format!(r#"{{"op":"subscribe","executions":[{a},{b},{d}]}}"#),
    )
    .await;
    assert_eq!(
        reply.data["code"], "too_many_subscriptions",
        "{}",
        reply.data
    );
    let pong = ask(
        &mut c,
        r#"{"op":"unsubscribe","executions":[1,2,3],"topics":["alerts"]}"#,
    )
    .await;
    assert_eq!(pong.kind, "unsubscribed", "{}", pong.data);
}

#[tokio::test]
async fn a_client_that_floods_commands_gets_errors_then_is_closed_with_1008() {
    let app = spawn_app_with(|c| c.progress.commands_per_second = 5).await;
    let mut c = client(&app).await;
    for _ in 0..60 {
        if c.send_text(r#"{"op":"ping"}"#.to_owned()).await.is_err() {
            break;
        }
    }
    let mut limited = 0;
    let closed = loop {
        match tokio::time::timeout(WAIT, c.next()).await.expect("in time") {
            Ok(m) if m.kind == "error" => {
                assert_eq!(m.data["code"], "rate_limited");
                limited += 1;
            }
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(
        limited >= 1,
        "{limited} rate_limited errors before the close"
    );
    assert!(
        matches!(
            closed,
            ClientError::Closed {
                code: Some(1008),
                ..
            }
        ),
        "{closed:?}"
    );
    let abuse = r#"promptgauge_websocket_disconnects_total{reason="abuse"}"#;
    eventually("abuse counted", || async {
        let n = metric(&app, abuse).await;
        if n == 1.0 { Ok(()) } else { Err(n) }
    })
    .await;
}

#[tokio::test]
async fn a_frame_over_the_socket_limit_closes_with_1009() {
    let app = spawn_app().await;
    let mut c = client(&app).await;
    let huge = format!(r#"{{"op":"ping","pad":"{}"}}"#, "x".repeat(1_100_000));
    let _ = c.send_text(huge).await;
    let closed = loop {
        match tokio::time::timeout(WAIT, c.next()).await.expect("in time") {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            closed,
            ClientError::Closed {
                code: Some(1009),
                ..
            } | ClientError::Protocol(_)
        ),
        "{closed:?}"
    );
    let series = r#"promptgauge_websocket_disconnects_total{reason="too_big"}"#;
    eventually("too_big counted", || async {
        let n = metric(&app, series).await;
        if n == 1.0 { Ok(()) } else { Err(n) }
    })
    .await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_heartbeat_timeout() {
    let app = spawn_app_with(|c| {
        c.progress.ping_interval = Duration::from_millis(100);
        c.progress.pong_timeout = Duration::from_millis(200);
    })
    .await;
    let mut talking = client(&app).await;
    let silent = client(&app).await;
    assert_eq!(metric(&app, "promptgauge_websocket_connections").await, 2.0);
    // `talking` reads (and so answers pings); `silent` never reads.
    let reader = tokio::spawn(async move {
        let end = tokio::time::Instant::now() + Duration::from_millis(1500);
        while tokio::time::Instant::now() < end {
            let _ = tokio::time::timeout(Duration::from_millis(50), talking.next()).await;
        }
        talking
    });
    eventually("the silent client dropped", || async {
        let n = metric(
            &app,
            r#"promptgauge_websocket_disconnects_total{reason="heartbeat"}"#,
        )
        .await;
        if n == 1.0 { Ok(()) } else { Err(n) }
    })
    .await;
    let mut talking = reader.await.unwrap();
    assert_eq!(metric(&app, "promptgauge_websocket_connections").await, 1.0);
    assert_eq!(ask(&mut talking, r#"{"op":"ping"}"#).await.kind, "pong");
    drop(silent);
}

#[tokio::test]
async fn a_stalled_client_neither_slows_the_run_nor_the_others_and_is_resynced_or_closed() {
    let app = spawn_app_with(|c| {
        c.progress.batch_window = Duration::from_millis(1);
        c.progress.client_queue = 16;
    })
    .await;
    // Baseline: the same execution with nobody stalled.
    let mut body = suite(4000, 0);
    for t in body["tests"].as_array_mut().unwrap() {
        t["description"] = json!(format!(
            "{} {}",
            t["description"].as_str().unwrap(),
            "d".repeat(1500)
        ));
    }
    let started = std::time::Instant::now();
    let first = app
        .submit(json!({"suite": body.clone(), "cache": false}))
        .await;
    app.wait_done(first).await;
    let baseline = started.elapsed();

    let slow = ClientOptions {
        receive_buffer: Some(4096),
        ..ClientOptions::default()
    };
    let mut s = ProgressClient::connect(&app.url(""), &slow).await.unwrap();
    s.subscribe_topics(&[TopicName::Results]).await.unwrap();
    let mut healthy = client(&app).await;
    healthy
        .subscribe_topics(&[TopicName::Results, TopicName::Executions])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let id = app.submit(json!({"suite": body, "cache": false})).await;
    let seen = until_end(&mut healthy, id).await;
    let with_stall = started.elapsed();
    let jobs: BTreeSet<i64> = seen
        .iter()
        .flat_map(|m| m.results())
        .map(|r| r.job)
        .collect();
    assert_eq!(jobs.len(), 4000, "the healthy client got every result");
    app.wait_done(id).await;
    let resynced = metric(&app, "promptgauge_websocket_resyncs_total").await;
    let closed = metric(
        &app,
        r#"promptgauge_websocket_disconnects_total{reason="slow"}"#,
    )
    .await;
    assert!(
        resynced + closed >= 1.0,
        "resyncs {resynced}, closed {closed}"
    );
    assert!(
        with_stall.as_secs_f64() < 3.0 * baseline.as_secs_f64() + 1.0,
        "{with_stall:?} with a stalled client vs {baseline:?} without"
    );
    drop(s);
}

#[tokio::test]
async fn large_messages_come_compressed_to_clients_that_ask_and_the_counters_show_the_saving() {
    let app = spawn_app_with(|c| c.progress.batch_window = Duration::from_millis(200)).await;
    let options = ClientOptions {
        compress: true,
        ..ClientOptions::default()
    };
    let mut c = ProgressClient::connect(&app.url(""), &options)
        .await
        .unwrap();
    assert_eq!(c.protocol(), Some("promptgauge.v1.deflate"));
    let mut plain = client(&app).await;
    assert_eq!(plain.protocol(), Some("promptgauge.v1"));
    c.subscribe_topics(&[TopicName::Results]).await.unwrap();
    plain.subscribe_topics(&[TopicName::Results]).await.unwrap();
    let id = app
        .submit(json!({"suite": suite(500, 0), "cache": false}))
        .await;
    app.wait_done(id).await;
    let (mut compressed, mut small_text, mut results) = (0, 0, 0);
    while results < 500 {
        let r = tokio::time::timeout(WAIT, c.next_frame())
            .await
            .unwrap()
            .unwrap();
        let m: ServerMessage = serde_json::from_str(r.text()).unwrap();
        results += m.results().len();
        if r.compressed {
            compressed += 1;
            assert!(
                r.wire_bytes * 3 < r.text().len(),
                "{} -> {}",
                r.text().len(),
                r.wire_bytes
            );
        } else {
            small_text += 1;
            assert!(r.text().len() < 1024, "a large frame came uncompressed");
        }
    }
    assert!(
        compressed >= 1,
        "{compressed} compressed, {small_text} small"
    );
    let text = app.metrics_text().await;
    let input = sample(&text, "promptgauge_websocket_compression_input_bytes_total").unwrap();
    let sent = sample(
        &text,
        r#"promptgauge_websocket_bytes_total{compressed="true"}"#,
    )
    .unwrap();
    assert!(
        sent > 0.0 && sent * 3.0 < input,
        "{input} bytes compressed to {sent}"
    );
    // The plain client got the same results as text.
    let mut plain_results = 0;
    while plain_results < 500 {
        let r = tokio::time::timeout(WAIT, plain.next_frame())
            .await
            .unwrap()
            .unwrap();
        assert!(!r.compressed);
        plain_results += serde_json::from_str::<ServerMessage>(r.text())
            .unwrap()
            .results()
            .len();
    }
}

#[tokio::test]
async fn alerts_reach_subscribers_as_they_fire_and_resolve() {
    let app = spawn_app_with(|c: &mut Config| {
        crate::monitor::fast_monitor(c);
        c.thresholds.queue_length = promptgauge::monitor::Levels {
            warning: 5.0,
            critical: 1_000_000.0,
        };
    })
    .await;
    let mut c = client(&app).await;
    c.subscribe_topics(&[TopicName::Alerts]).await.unwrap();
    assert_eq!(next(&mut c).await.kind, "subscribed");
    let id = app
        .submit(json!({"suite": suite(40, 2000), "maxConcurrency": 1}))
        .await;
    let fired = c.next_of("alert.firing", WAIT).await.unwrap();
    assert_eq!(fired.data["alertname"], "PromptgaugeTestQueueBacklog");
    assert_eq!(fired.data["severity"], "warning");
    app.post_json(&format!("/api/executions/{id}/cancel"), &json!({}))
        .await;
    let resolved = c.next_of("alert.resolved", WAIT).await.unwrap();
    assert_eq!(resolved.data["alertname"], "PromptgaugeTestQueueBacklog");
}

#[tokio::test]
async fn the_token_is_required_by_header_or_query_and_the_connection_limit_answers_503() {
    let token = Config::from_lookup(
        |name| Ok((name == "API_TOKEN").then(|| TOKEN.to_owned())),
        &Default::default(),
    )
    .unwrap()
    .api_token;
    let app = spawn_app_with(|c| {
        c.api_token = token;
        c.progress.max_connections = 2;
    })
    .await;
    let none = ProgressClient::connect(&app.url(""), &ClientOptions::default()).await;
    assert!(
        matches!(&none, Err(ClientError::Connect { reason, .. }) if reason.contains("401")),
        "{:?}",
        none.err()
    );
    let header = ClientOptions {
        token: Some(TOKEN.into()),
        ..ClientOptions::default()
    };
    let _a = ProgressClient::connect(&app.url(""), &header)
        .await
        .expect("header token");
    let query = format!("ws://{}/ws?token={TOKEN}", app.addr);
    let _b = ProgressClient::connect(&query, &ClientOptions::default())
        .await
        .expect("query token");
    let wrong = format!("ws://{}/ws?token=nope", app.addr);
    assert!(
        ProgressClient::connect(&wrong, &ClientOptions::default())
            .await
            .is_err()
    );
    let third = ProgressClient::connect(&app.url(""), &header).await;
    assert!(
        matches!(&third, Err(ClientError::Connect { reason, .. }) if reason.contains("503") && reason.contains("too many WebSocket connections")),
        "{:?}",
        third.err()
    );
    // A plain GET is told to upgrade.
    let res = app.get_with_token("/ws", TOKEN).await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "websocket_upgrade_required");
}

#[tokio::test]
async fn shutting_down_closes_every_connection_with_1001() {
    let app = spawn_app().await;
    let mut c = client(&app).await;
    assert_eq!(ask(&mut c, r#"{"op":"ping"}"#).await.kind, "pong");
    let reader = tokio::spawn(async move {
        loop {
            match tokio::time::timeout(WAIT, c.next())
                .await
                .expect("closed in time")
            {
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    });
    app.stop().await;
    let closed = reader.await.unwrap();
    assert!(
        matches!(
            closed,
            ClientError::Closed {
                code: Some(1001),
                ..
            }
        ),
        "{closed:?}"
    );
}

#[tokio::test]
async fn the_monitor_tracks_connections_delivery_latency_and_drops() {
    let app = spawn_app_with(crate::monitor::fast_monitor).await;
    let mut c = client(&app).await;
    c.subscribe_topics(&[TopicName::Results, TopicName::Executions])
        .await
        .unwrap();
    let id = app
        .submit(json!({"suite": suite(100, 5), "maxConcurrency": 4}))
        .await;
    until_end(&mut c, id).await;
    let p99 = eventually("a delivery p99 sample", || async {
        let res = app
            .get("/api/performance/metrics/websocket_delivery_p99_seconds?window=5m")
            .await;
        if res.status() != 200 {
            return Err(res.status().to_string());
        }
        let body: Value = res.json().await.unwrap();
        body["max"].as_f64().ok_or_else(|| body.to_string())
    })
    .await;
    assert!(p99 > 0.0 && p99 <= 0.25, "{p99}");
    let overview = app.get_json("/api/performance/overview").await;
    let t = &overview["throughput"];
    assert_eq!(t["websocketConnections"], 1.0, "{t}");
    assert!(t.get("websocketDroppedPerSecond").is_some(), "{t}");
    let tracked = app.get_json("/api/performance/metrics").await;
    let names: Vec<&str> = tracked["metrics"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["name"].as_str()).collect())
        .unwrap_or_default();
    for name in [
        "websocket_connections",
        "websocket_events_per_second",
        "websocket_dropped_per_second",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let bottlenecks = app.get_json("/api/performance/bottlenecks?window=5m").await;
    assert!(
        bottlenecks["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["component"] == "websocket_delivery"),
        "{bottlenecks}"
    );
}
