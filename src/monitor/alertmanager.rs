//! Pushing the monitor's alerts to Alertmanager (API v2) when
//! `ALERTMANAGER_URL` is set.
//!
//! The monitor hands transitions to this task over a channel and never
//! waits for it. Firing alerts are sent at once and again every
//! [`RESEND`] with `endsAt = now + 4m` (Alertmanager resolves an alert that
//! stops being re-sent); a resolved alert is sent with `endsAt` = its
//! resolution time until Alertmanager accepted it. `startsAt` is the
//! episode's start, stable across re-sends and restarts. A failed push is
//! counted and retried after [`RETRY`], never blocking the monitor.

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus::IntCounter;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::alerts::{Alert, Transition};
use super::signals::ALERT_SIGNALS;
use super::thresholds::Severity;
use crate::common::time::rfc3339;
use crate::metrics::MonitorMetrics;
use crate::storage::now_ms;

/// How often firing alerts are sent again.
pub const RESEND: Duration = Duration::from_secs(60);
/// How long Alertmanager keeps a firing alert after the last send.
const ENDS_AFTER: Duration = Duration::from_secs(4 * 60);
/// Pause after a failed push.
const RETRY: Duration = Duration::from_secs(5);
/// Transitions waiting for the pusher at most; beyond, the next resend
/// catches up.
pub const CHANNEL: usize = 256;
/// Longest a push may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where and as whom to push.
#[derive(Debug, Clone)]
pub struct Target {
    /// Alertmanager's base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    /// This instance (`host:port`), the `instance` label.
    pub instance: String,
}

/// The API v2 body for `alerts` at `now` (unix ms).
pub fn payload(alerts: &[&Alert], target: &Target, now: i64) -> Value {
    let list: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let ends = a.resolved_at.unwrap_or(now + ENDS_AFTER.as_millis() as i64);
            let summary = ALERT_SIGNALS
                .iter()
                .find(|s| s.signal == a.signal)
                .map_or_else(|| a.alertname.clone(), |s| format!("High {}", s.what));
            json!({
                "labels": {
                    "alertname": a.alertname,
                    "severity": a.severity.as_str(),
                    "service": "promptgauge",
                    "instance": target.instance,
                    "signal": a.signal,
                },
                "annotations": {
                    "summary": summary,
                    "description": a.description,
                    "value": a.value.to_string(),
                    "threshold": a.threshold.to_string(),
                    "runbook_url": format!("docs/runbooks.md#{}", a.alertname.to_lowercase()),
                },
                "startsAt": rfc3339(a.started_at),
                "endsAt": rfc3339(ends),
                "generatorURL": format!("http://{}/api/performance/alerts", target.instance),
            })
        })
        .collect();
    Value::Array(list)
}

/// Runs until `token` is cancelled.
pub async fn run(
    target: Target,
    mut rx: mpsc::Receiver<Transition>,
    metrics: MonitorMetrics,
    token: CancellationToken,
) {
    crate::common::tls::install_crypto_provider();
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the Alertmanager client; alerts will not be pushed");
            return;
        }
    };
    let ok: IntCounter = metrics.notifications.with_label_values(&["success"]);
    let failed: IntCounter = metrics.notifications.with_label_values(&["error"]);
    let endpoint = format!("{}/api/v2/alerts", target.url);
    let mut firing: BTreeMap<(String, Severity), Alert> = BTreeMap::new();
    let mut resolved: Vec<Alert> = Vec::new();
    let mut next_push = tokio::time::Instant::now() + RESEND;
    loop {
        let changed = tokio::select! {
            () = token.cancelled() => return,
            t = rx.recv() => match t {
                Some(t) => { apply(&mut firing, &mut resolved, t); true }
                None => return,
            },
            () = tokio::time::sleep_until(next_push) => false,
        };
        if changed {
            // Take whatever else is waiting, then push once.
            while let Ok(t) = rx.try_recv() {
                apply(&mut firing, &mut resolved, t);
            }
        }
        if firing.is_empty() && resolved.is_empty() {
            next_push = tokio::time::Instant::now() + RESEND;
            continue;
        }
        let all: Vec<&Alert> = firing.values().chain(resolved.iter()).collect();
        let body = payload(&all, &target, now_ms());
        let outcome = client.post(&endpoint).json(&body).send().await;
        match outcome {
            Ok(r) if r.status().is_success() => {
                ok.inc();
                resolved.clear();
                next_push = tokio::time::Instant::now() + RESEND;
            }
            Ok(r) => {
                failed.inc();
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                // 4xx means our payload is wrong: say so loudly.
                tracing::warn!(%status, body = %text.chars().take(500).collect::<String>(), "Alertmanager refused the alerts");
                next_push = tokio::time::Instant::now() + RETRY;
            }
            Err(e) => {
                failed.inc();
                tracing::warn!(error = %e, url = %endpoint, "cannot reach Alertmanager; retrying");
                next_push = tokio::time::Instant::now() + RETRY;
            }
        }
    }
}

fn apply(
    firing: &mut BTreeMap<(String, Severity), Alert>,
    resolved: &mut Vec<Alert>,
    t: Transition,
) {
    match t {
        Transition::Fired(a) => {
            firing.insert((a.signal.clone(), a.severity), a);
        }
        Transition::Resolved(a) => {
            firing.remove(&(a.signal.clone(), a.severity));
            resolved.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::alerts::State;

    #[test]
    fn the_payload_follows_api_v2() {
        let a = Alert {
            id: Some(1),
            alertname: "PromptgaugeTestQueueBacklog".into(),
            signal: "queue_length".into(),
            severity: Severity::Critical,
            state: State::Firing,
            threshold: 500.0,
            value: 612.0,
            peak_value: 640.0,
            description: "test queue length is 612 jobs (critical threshold 500 jobs)".into(),
            started_at: 1_795_000_000_000,
            fired_at: Some(1_795_000_060_000),
            resolved_at: None,
        };
        let target = Target {
            url: "http://127.0.0.1:9093".into(),
            instance: "127.0.0.1:3001".into(),
        };
        let now = 1_795_000_100_000;
        let body = payload(&[&a], &target, now);
        let sent = &body[0];
        assert_eq!(sent["labels"]["alertname"], "PromptgaugeTestQueueBacklog");
        assert_eq!(sent["labels"]["severity"], "critical");
        assert_eq!(sent["labels"]["instance"], "127.0.0.1:3001");
        assert_eq!(sent["annotations"]["value"], "612");
        assert_eq!(sent["startsAt"], rfc3339(a.started_at));
        assert_eq!(
            sent["endsAt"],
            rfc3339(now + 240_000),
            "firing: ends in 4 minutes unless re-sent"
        );
        assert_eq!(
            sent["generatorURL"],
            "http://127.0.0.1:3001/api/performance/alerts"
        );
        let done = Alert {
            resolved_at: Some(now),
            state: State::Resolved,
            ..a
        };
        assert_eq!(
            payload(&[&done], &target, now + 5)[0]["endsAt"],
            rfc3339(now)
        );
    }
}
