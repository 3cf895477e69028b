use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::{Command, Hub};
use crate::events::{Event, Topic};
use crate::metrics::Metrics;
use crate::progress::command::TopicName;
use crate::progress::outbox::Shared;
use crate::progress::{CloseReason, ProgressConfig};

const WINDOW: Duration = Duration::from_millis(100);

fn hub(client_queue: usize) -> (Hub, Metrics) {
    let metrics = Metrics::new().unwrap();
    let config = ProgressConfig {
        batch_window: WINDOW,
        client_queue,
        ..ProgressConfig::default()
    };
    (Hub::new(config, metrics.websocket.clone()), metrics)
}

fn open(hub: &mut Hub, client: u64) -> Arc<Shared> {
    let outbox = Shared::new();
    hub.command(Command::Open {
        client,
        outbox: outbox.clone(),
    });
    outbox
}

fn subscribe(hub: &mut Hub, client: u64, executions: &[i64], topics: &[TopicName]) {
    hub.command(Command::Subscribe {
        client,
        request: None,
        executions: executions.iter().map(|id| (*id, None)).collect(),
        topics: topics.to_vec(),
    });
}

/// What a client has waiting: (type, data) of each message.
fn drain(outbox: &Shared) -> Vec<(String, Value)> {
    outbox
        .lock()
        .take()
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_slice(&m.text).unwrap();
            (v["type"].as_str().unwrap().to_owned(), v["data"].clone())
        })
        .collect()
}

fn kinds(msgs: &[(String, Value)]) -> Vec<&str> {
    msgs.iter().map(|(k, _)| k.as_str()).collect()
}

fn progress(id: i64, completed: u64) -> Event {
    Event::new(
        "execution.progress",
        Topic::Execution(id),
        &serde_json::json!({"status": "running", "completed": completed}),
    )
}

fn results(id: i64, jobs: &[i64]) -> Event {
    let items: Vec<Value> = jobs.iter().map(|j| serde_json::json!({"job": j})).collect();
    Event::batch(
        "result",
        Topic::Execution(id),
        jobs.len() as u32,
        serde_json::to_string(&items).unwrap(),
    )
}

#[tokio::test]
async fn a_quiet_execution_goes_at_once_and_a_busy_one_once_per_window() {
    let (mut hub, _m) = hub(100);
    let c = open(&mut hub, 1);
    subscribe(&mut hub, 1, &[7], &[]);
    assert_eq!(kinds(&drain(&c)), ["subscribed"]);
    let t0 = Instant::now();
    hub.event(results(7, &[1]), t0);
    hub.event(progress(7, 1), t0);
    assert_eq!(
        kinds(&drain(&c)),
        ["result", "execution.progress"],
        "quiet: at once"
    );

    // Within the window: held, progress coalesced, results merged.
    let t1 = t0 + Duration::from_millis(10);
    hub.event(results(7, &[2, 3]), t1);
    hub.event(progress(7, 3), t1);
    hub.event(results(7, &[4]), t1);
    hub.event(progress(7, 4), t1);
    assert!(drain(&c).is_empty(), "held until the window ends");
    assert_eq!(hub.next_due(), Some(t0 + WINDOW));
    hub.flush_due(t0 + WINDOW);
    let msgs = drain(&c);
    assert_eq!(kinds(&msgs), ["result", "execution.progress"]);
    let jobs: Vec<i64> = msgs[0]
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job"].as_i64().unwrap())
        .collect();
    assert_eq!(
        jobs,
        [2, 3, 4],
        "one message with every held result, in order"
    );
    assert_eq!(msgs[1].1["completed"], 4, "the latest progress wins");

    // An event arriving as the window closes goes at once and supersedes
    // the one held back, which never follows it.
    let t3 = t0 + WINDOW * 2 - Duration::from_millis(1);
    hub.event(progress(7, 5), t3);
    hub.event(progress(7, 6), t0 + WINDOW * 2 + Duration::from_millis(1));
    hub.flush_due(t0 + WINDOW * 3);
    let msgs = drain(&c);
    assert_eq!(kinds(&msgs), ["execution.progress"]);
    assert_eq!(msgs[0].1["completed"], 6);

    // The end flushes what waits first, then says it ended.
    let t2 = t0 + WINDOW * 3 + Duration::from_millis(5);
    hub.event(results(7, &[5]), t2);
    hub.event(
        Event::new(
            "execution.finished",
            Topic::Execution(7),
            &serde_json::json!({"status": "completed"}),
        ),
        t2,
    );
    assert_eq!(kinds(&drain(&c)), ["result", "execution.finished"]);
}

#[tokio::test]
async fn a_late_subscriber_gets_the_latest_state_at_once() {
    let (mut hub, _m) = hub(100);
    let t0 = Instant::now();
    hub.event(
        Event::new(
            "execution.started",
            Topic::Execution(3),
            &serde_json::json!({"completed": 0}),
        ),
        t0,
    );
    hub.event(progress(3, 40), t0);
    hub.event(progress(3, 41), t0 + Duration::from_millis(1));
    let c = open(&mut hub, 1);
    subscribe(&mut hub, 1, &[3], &[]);
    let msgs = drain(&c);
    assert_eq!(kinds(&msgs), ["subscribed", "execution.progress"]);
    assert_eq!(msgs[1].1["completed"], 41);
    // An ended one: its end, from the cache or from storage.
    hub.event(
        Event::new(
            "execution.finished",
            Topic::Execution(3),
            &serde_json::json!({"completed": 50}),
        ),
        t0,
    );
    let d = open(&mut hub, 2);
    hub.command(Command::Subscribe {
        client: 2,
        request: Some("\"r\"".into()),
        executions: vec![
            (3, None),
            (
                9,
                Some(super::State {
                    kind: "execution.cancelled",
                    at_us: 1,
                    data: Arc::from(r#"{"completed":2}"#),
                }),
            ),
        ],
        topics: vec![],
    });
    let msgs = drain(&d);
    assert_eq!(
        kinds(&msgs),
        ["subscribed", "execution.finished", "execution.cancelled"]
    );
    assert_eq!(msgs[0].1["executions"], serde_json::json!([3, 9]));
}

#[tokio::test]
async fn topics_route_progress_and_results_apart_and_nobody_gets_a_message_twice() {
    let (mut hub, _m) = hub(100);
    let overview = open(&mut hub, 1);
    subscribe(&mut hub, 1, &[], &[TopicName::Executions]);
    let firehose = open(&mut hub, 2);
    subscribe(&mut hub, 2, &[], &[TopicName::Results]);
    let both = open(&mut hub, 3);
    subscribe(
        &mut hub,
        3,
        &[5],
        &[TopicName::Executions, TopicName::Results],
    );
    let alerts = open(&mut hub, 4);
    subscribe(&mut hub, 4, &[], &[TopicName::Alerts]);
    for c in [&overview, &firehose, &both, &alerts] {
        drain(c);
    }
    let t0 = Instant::now();
    hub.event(results(5, &[1]), t0);
    hub.event(progress(5, 1), t0);
    hub.event(
        Event::new(
            "alert.firing",
            Topic::Alerts,
            &serde_json::json!({"alertname": "X"}),
        ),
        t0,
    );
    assert_eq!(kinds(&drain(&overview)), ["execution.progress"]);
    assert_eq!(kinds(&drain(&firehose)), ["result"]);
    assert_eq!(kinds(&drain(&both)), ["result", "execution.progress"]);
    assert_eq!(kinds(&drain(&alerts)), ["alert.firing"]);
}

#[tokio::test]
async fn sequence_numbers_rise_on_every_connection() {
    let (mut hub, _m) = hub(100);
    let a = open(&mut hub, 1);
    let b = open(&mut hub, 2);
    subscribe(&mut hub, 1, &[1], &[]);
    subscribe(&mut hub, 2, &[1, 2], &[]);
    let t0 = Instant::now();
    let mut seen = [Vec::new(), Vec::new()];
    for i in 0..20u64 {
        let t = t0 + WINDOW * (i as u32 + 1);
        hub.event(progress(1 + (i % 2) as i64, i), t);
        hub.command(Command::Reply {
            client: 1,
            request: None,
            kind: "pong",
            data: "{}".into(),
        });
        if i % 3 == 0 {
            for (c, seqs) in [&a, &b].into_iter().zip(&mut seen) {
                seqs.extend(c.lock().take().iter().map(|m| {
                    serde_json::from_slice::<Value>(&m.text).unwrap()["seq"]
                        .as_u64()
                        .unwrap()
                }));
            }
        }
    }
    for seqs in seen {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert!(seqs.len() > 5, "{seqs:?}");
    }
}

#[tokio::test]
async fn a_full_queue_gets_a_resync_and_a_second_overflow_closes_the_client() {
    let (mut hub, m) = hub(16);
    let c = open(&mut hub, 1);
    subscribe(&mut hub, 1, &[1], &[]);
    let t0 = Instant::now();
    hub.event(progress(1, 16), t0);
    // Never read: each window's result message queues up.
    for i in 0..16 {
        hub.event(results(1, &[i]), t0 + WINDOW * (i as u32 + 1));
    }
    let msgs = drain(&c);
    assert_eq!(
        kinds(&msgs),
        ["resync", "result"],
        "the backlog is replaced, then live again"
    );
    let resync = &msgs[0].1;
    assert!(resync["dropped"].as_u64().unwrap() >= 15, "{resync}");
    assert_eq!(resync["executions"][0]["data"]["completed"], 16);
    assert_eq!(m.websocket.resyncs.get(), 1);
    assert_eq!(c.closed_with(), None, "a first overflow is forgiven");

    // Falls behind again at once: closed as too slow.
    for i in 0..20 {
        hub.event(results(1, &[100 + i]), t0 + WINDOW * (20 + i as u32));
    }
    assert_eq!(c.closed_with(), Some(CloseReason::Slow));
    assert!(m.websocket.dropped.get() >= 30);
}
