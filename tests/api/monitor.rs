//! The performance monitor through the running app: real breaches (a queue
//! backlog, 5xx responses from a locked database) fire warning then
//! critical alerts in the alert API, in `/metrics` and on the event stream,
//! and resolve when the load stops; alerts survive a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use promptgauge::Config;
use promptgauge::events::Event;
use promptgauge::monitor::Levels;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::helpers::{TestApp, eventually, sample, spawn_app_at, spawn_app_with};

/// Fast sampling and a short hold so a test sees whole episodes in seconds.
/// Host CPU and memory levels out of reach: a busy CI host must not fire
/// alerts these tests do not expect.
pub fn fast_monitor(c: &mut Config) {
    c.monitoring_interval = Duration::from_millis(100);
    c.alert_for = Duration::from_millis(300);
    let unreachable = Levels {
        warning: 1.1,
        critical: 1.2,
    };
    c.thresholds.cpu = unreachable;
    c.thresholds.memory = unreachable;
}

/// `n` tests on a simulated model that takes 2 s per call.
fn slow_suite(name: &str, n: usize) -> Value {
    json!({
        "description": name,
        "prompts": [format!("{name} {{{{i}}}}")],
        "providers": [{"id": "mock:slow", "config": {"latencyMs": 2000}}],
        "tests": (0..n).map(|i| json!({"vars": {"i": i}})).collect::<Vec<_>>(),
    })
}

/// Waits (at most 30 s) for an `alert.<kind>` event of `alertname` at
/// `severity`; returns it and every alert event seen before it.
async fn wait_event(
    rx: &mut broadcast::Receiver<Event>,
    kind: &str,
    alertname: &str,
    severity: &str,
) -> (Event, Vec<Event>) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let e = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {kind} {alertname}/{severity}; saw {seen:?}"))
            .expect("event stream open");
        if e.kind == kind && e.json()["alertname"] == alertname && e.json()["severity"] == severity
        {
            return (e, seen);
        }
        seen.push(e);
    }
}

/// The alerts of `GET /api/performance/alerts` (with `query`).
pub async fn alerts(app: &TestApp, query: &str) -> Vec<Value> {
    let body = app
        .get_json(&format!("/api/performance/alerts{query}"))
        .await;
    body["alerts"].as_array().expect("alerts").clone()
}

fn find<'a>(alerts: &'a [Value], alertname: &str, severity: &str) -> Option<&'a Value> {
    alerts
        .iter()
        .find(|a| a["alertname"] == alertname && a["severity"] == severity)
}

async fn firing_gauge(app: &TestApp, alertname: &str, severity: &str) -> f64 {
    let text = app.metrics_text().await;
    let series = format!(
        "promptgauge_monitor_alerts_firing{{alertname=\"{alertname}\",severity=\"{severity}\"}}"
    );
    sample(&text, &series).unwrap_or_else(|| panic!("{series} missing"))
}

const BACKLOG: &str = "PromptgaugeTestQueueBacklog";

#[tokio::test]
async fn a_queue_backlog_fires_warning_then_critical_and_resolves_when_the_load_stops() {
    let app = spawn_app_with(|c| {
        fast_monitor(c);
        c.max_concurrent_tests = 2;
    })
    .await;
    let mut rx = app.events.subscribe();

    // 200 slow tests: about 198 wait, past the warning line (100) only.
    let first = app
        .submit(json!({"suite": slow_suite("first", 200), "cache": false}))
        .await;
    let (fired, before) = wait_event(&mut rx, "alert.firing", BACKLOG, "warning").await;
    assert!(
        before.iter().all(|e| e.json()["alertname"] != BACKLOG),
        "{before:?}"
    );
    assert!(
        fired.json()["value"].as_f64().unwrap() >= 100.0,
        "{fired:?}"
    );
    assert_eq!(fired.json()["state"], "firing");
    let active = alerts(&app, "").await;
    assert_eq!(
        find(&active, BACKLOG, "warning").unwrap()["state"],
        "firing"
    );
    assert!(find(&active, BACKLOG, "critical").is_none(), "{active:?}");
    assert_eq!(firing_gauge(&app, BACKLOG, "warning").await, 1.0);
    assert_eq!(firing_gauge(&app, BACKLOG, "critical").await, 0.0);
    let overview = app.get_json("/api/performance/overview").await;
    assert_eq!(overview["status"], "degraded", "{overview}");

    // 400 more: about 596 wait, past the critical line (500).
    let second = app
        .submit(json!({"suite": slow_suite("second", 400), "cache": false}))
        .await;
    let (fired, _) = wait_event(&mut rx, "alert.firing", BACKLOG, "critical").await;
    assert!(
        fired.json()["value"].as_f64().unwrap() >= 500.0,
        "{fired:?}"
    );
    let active = alerts(&app, "").await;
    for severity in ["warning", "critical"] {
        assert_eq!(find(&active, BACKLOG, severity).unwrap()["state"], "firing");
        assert_eq!(firing_gauge(&app, BACKLOG, severity).await, 1.0);
    }
    // Worst first.
    assert_eq!(active[0]["severity"], "critical", "{active:?}");
    let overview = app.get_json("/api/performance/overview").await;
    assert_eq!(overview["status"], "critical");
    let queue = overview["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["signal"] == "queue_length")
        .unwrap();
    assert_eq!(queue["status"], "critical", "{queue}");
    assert_eq!(
        (queue["warning"].as_f64(), queue["critical"].as_f64()),
        (Some(100.0), Some(500.0))
    );
    let health = app.get("/api/performance/health").await;
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "critical", "{health}");

    // The load stops: both resolve, and the history keeps the episodes.
    for id in [first, second] {
        let res = app
            .post_json(&format!("/api/executions/{id}/cancel"), &json!({}))
            .await;
        assert!(res.status().is_success(), "cancel {id}: {}", res.status());
    }
    let (resolved, _) = wait_event(&mut rx, "alert.resolved", BACKLOG, "critical").await;
    assert_eq!(resolved.json()["state"], "resolved");
    assert!(
        resolved.json()["peakValue"].as_f64().unwrap() >= 500.0,
        "{resolved:?}"
    );
    eventually("no active alerts once the load stopped", || async {
        let active = alerts(&app, "").await;
        if active.is_empty() {
            Ok(())
        } else {
            Err(active)
        }
    })
    .await;
    for severity in ["warning", "critical"] {
        assert_eq!(firing_gauge(&app, BACKLOG, severity).await, 0.0);
    }
    // The recorder stores in the background.
    let history = eventually("both episodes stored", || async {
        let h = alerts(&app, "?state=resolved").await;
        let stored = h.iter().filter(|a| a["alertname"] == BACKLOG).count();
        if stored == 2 { Ok(h) } else { Err(h) }
    })
    .await;
    for severity in ["warning", "critical"] {
        let a = find(&history, BACKLOG, severity).unwrap_or_else(|| panic!("{history:?}"));
        assert_eq!(a["state"], "resolved");
        assert!(a["id"].as_i64().is_some(), "{a}");
        assert!(a["startedAt"].as_i64() <= a["firedAt"].as_i64(), "{a}");
        assert!(a["firedAt"].as_i64() < a["resolvedAt"].as_i64(), "{a}");
        assert!(
            a["peakValue"].as_f64().unwrap() >= a["threshold"].as_f64().unwrap(),
            "{a}"
        );
    }
    assert_eq!(
        app.get_json("/api/performance/overview").await["status"],
        "ok"
    );
    app.stop().await;
}

/// Posts new suites until `stop`, counting answers by status.
async fn post_suites(
    app: Arc<TestApp>,
    worker: usize,
    stop: Arc<AtomicBool>,
    created: Arc<AtomicUsize>,
    unavailable: Arc<AtomicUsize>,
) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let suite = json!({
            "description": format!("burst {worker}-{i}"),
            "prompts": ["p"],
            "providers": ["echo"],
        });
        let res = app.post_json("/api/suites", &suite).await;
        match res.status().as_u16() {
            201 => created.fetch_add(1, Ordering::Relaxed),
            503 => {
                let body: Value = res.json().await.unwrap();
                assert!(
                    body["error"]["message"].as_str().unwrap().contains("busy"),
                    "{body}"
                );
                unavailable.fetch_add(1, Ordering::Relaxed)
            }
            s => panic!("unexpected {s}"),
        };
    }
}

const ERRORS: &str = "PromptgaugeHighErrorRate";

#[tokio::test]
async fn a_locked_database_causes_5xx_that_fire_error_rate_alerts_which_resolve_once_it_is_released()
 {
    let app = Arc::new(
        spawn_app_with(|c| {
            fast_monitor(c);
            c.db_busy_timeout = Duration::from_millis(50);
        })
        .await,
    );
    let mut rx = app.events.subscribe();
    let suites_before = count_suites(&app);

    // Another process takes the write lock and keeps it: every write the
    // app tries waits 50 ms and fails. Reads go on (WAL).
    let locker = crate::helpers::open_db(&app.db_path);
    locker.busy_timeout(Duration::from_secs(5)).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(post_suites(
                app.clone(),
                w,
                stop.clone(),
                created.clone(),
                unavailable.clone(),
            ))
        })
        .collect();

    let (warning, before) = wait_event(&mut rx, "alert.firing", ERRORS, "warning").await;
    let (critical, _) = wait_event(&mut rx, "alert.firing", ERRORS, "critical").await;
    assert!(
        before.iter().all(|e| e.json()["alertname"] != ERRORS),
        "warning comes first: {before:?}"
    );
    assert!(warning.at_us <= critical.at_us);
    assert!(
        critical.json()["value"].as_f64().unwrap() >= 0.10,
        "{critical:?}"
    );
    assert_eq!(
        created.load(Ordering::Relaxed),
        0,
        "no write got through the lock"
    );
    assert!(unavailable.load(Ordering::Relaxed) > 0);
    let active = alerts(&app, "").await;
    for severity in ["warning", "critical"] {
        assert_eq!(find(&active, ERRORS, severity).unwrap()["state"], "firing");
        assert_eq!(firing_gauge(&app, ERRORS, severity).await, 1.0);
    }
    let text = app.metrics_text().await;
    assert!(
        sample(&text, "promptgauge_db_busy_total").unwrap() > 0.0,
        "busy writes are counted"
    );

    // The lock goes away: writes succeed again and the alerts resolve.
    locker.execute_batch("COMMIT").unwrap();
    drop(locker);
    wait_event(&mut rx, "alert.resolved", ERRORS, "critical").await;
    eventually("the warning resolved", || async {
        let active = alerts(&app, "").await;
        match find(&active, ERRORS, "warning") {
            None => Ok(()),
            Some(a) => Err(a.clone()),
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    for severity in ["warning", "critical"] {
        assert_eq!(firing_gauge(&app, ERRORS, severity).await, 0.0);
    }
    let created = created.load(Ordering::Relaxed);
    assert!(created > 0, "writes succeed after the lock is gone");
    // Every 201 is stored, every 503 left nothing behind.
    assert_eq!(count_suites(&app), suites_before + created as i64);
    // The episodes are in the history although the lock kept the monitor
    // from storing them while they fired.
    eventually("both episodes stored", || async {
        let h = alerts(&app, "?state=resolved").await;
        let both = find(&h, ERRORS, "warning").is_some() && find(&h, ERRORS, "critical").is_some();
        if both { Ok(()) } else { Err(h) }
    })
    .await;
    Arc::into_inner(app).expect("workers are done").stop().await;
}

fn count_suites(app: &TestApp) -> i64 {
    crate::helpers::open_db(&app.db_path)
        .query_row("SELECT count(*) FROM suites", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_firing_alert_survives_a_restart_as_the_same_episode() {
    let settings = |c: &mut Config| {
        fast_monitor(c);
        c.max_concurrent_tests = 1;
        c.thresholds.queue_length.warning = 20.0;
        c.thresholds.queue_length.critical = 10_000.0;
    };
    let app = spawn_app_with(settings).await;
    let mut rx = app.events.subscribe();
    let id = app
        .submit(json!({"suite": slow_suite("restart", 60), "cache": false}))
        .await;
    wait_event(&mut rx, "alert.firing", BACKLOG, "warning").await;
    // Wait until the recorder stored it (it has an id).
    let before = eventually("the firing alert stored", || async {
        let active = alerts(&app, "").await;
        match find(&active, BACKLOG, "warning").filter(|a| a["id"].is_i64()) {
            Some(a) => Ok(a.clone()),
            None => Err(active),
        }
    })
    .await;
    let (dir, path) = app.stop().await;

    // The execution resumes after the restart, so the backlog is still there.
    let app = spawn_app_at(dir, path, settings).await;
    let restored = alerts(&app, "").await;
    let after = find(&restored, BACKLOG, "warning").unwrap_or_else(|| panic!("{restored:?}"));
    assert_eq!(after["state"], "firing");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["startedAt"], before["startedAt"]);
    assert_eq!(firing_gauge(&app, BACKLOG, "warning").await, 1.0);

    let mut rx = app.events.subscribe();
    let res = app
        .post_json(&format!("/api/executions/{id}/cancel"), &json!({}))
        .await;
    assert!(res.status().is_success());
    let (resolved, _) = wait_event(&mut rx, "alert.resolved", BACKLOG, "warning").await;
    assert_eq!(resolved.json()["id"], before["id"]);
    assert_eq!(resolved.json()["startedAt"], before["startedAt"]);
    // One episode in the history, not two.
    let episodes = eventually("the episode resolved in the history", || async {
        let h = alerts(&app, "?state=resolved").await;
        let episodes: Vec<Value> = h
            .into_iter()
            .filter(|a| a["alertname"] == BACKLOG)
            .collect();
        if episodes.iter().any(|a| a["resolvedAt"].is_i64()) {
            Ok(episodes)
        } else {
            Err(episodes)
        }
    })
    .await;
    assert_eq!(episodes.len(), 1, "one episode, not two: {episodes:?}");
    assert_eq!(episodes[0]["id"], before["id"]);
    app.stop().await;
}
