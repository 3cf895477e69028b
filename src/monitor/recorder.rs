//! The recorder: stores what the sampling loop hands over (alert
//! transitions, per-minute history, pruning) on its own task, in order, so
//! a locked or slow database never delays sampling.

use std::collections::BTreeMap;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::alerts::{Alert, State as AlertState, Transition};
use super::thresholds::Severity;
use super::{Monitor, lock};
use crate::storage::{AlertRow, MonitorSampleRow};

/// Storage work for the recorder task.
pub(super) enum Record {
    Alert(Transition),
    History(Vec<MonitorSampleRow>),
    Prune { before: i64 },
}

impl Monitor {
    /// Stores what [`Monitor::record`] hands over, in order, until `token`
    /// is cancelled; then stores what is left.
    pub(super) async fn run_recorder(
        self,
        mut rx: mpsc::UnboundedReceiver<Record>,
        token: CancellationToken,
    ) {
        // Ids of stored firing alerts whose resolution may come before the
        // book heard of the id.
        let mut ids: BTreeMap<(String, Severity), i64> = BTreeMap::new();
        loop {
            let record = tokio::select! {
                biased;
                r = rx.recv() => r,
                () = token.cancelled() => None,
            };
            match record {
                Some(r) => self.store(r, &mut ids).await,
                None => break,
            }
        }
        while let Ok(r) = rx.try_recv() {
            self.store(r, &mut ids).await;
        }
    }

    async fn store(&self, record: Record, ids: &mut BTreeMap<(String, Severity), i64>) {
        let storage = &self.shared.storage;
        match record {
            Record::Alert(Transition::Fired(a)) => {
                match storage.insert_alert(alert_to_row(&a)).await {
                    Ok(id) => {
                        ids.insert((a.signal.clone(), a.severity), id);
                        lock(&self.shared.state)
                            .book
                            .set_id(&a.signal, a.severity, id);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, alertname = %a.alertname, "cannot store the alert");
                    }
                }
            }
            Record::Alert(Transition::Resolved(a)) => {
                let id = ids.remove(&(a.signal.clone(), a.severity)).or(a.id);
                let stored = match id {
                    Some(id) => {
                        storage
                            .update_alert(
                                id,
                                a.value,
                                a.peak_value,
                                Some(a.description.clone()),
                                a.resolved_at,
                            )
                            .await
                    }
                    // Its firing was never stored: keep the episode anyway.
                    None => storage.insert_alert(alert_to_row(&a)).await.map(|_| ()),
                };
                if let Err(e) = stored {
                    tracing::warn!(error = %e, alertname = %a.alertname, "cannot store the resolution");
                }
            }
            Record::History(rows) => {
                if let Err(e) = storage.insert_monitor_samples(rows).await {
                    tracing::warn!(error = %e, "cannot store monitor history");
                }
            }
            Record::Prune { before } => {
                if let Err(e) = storage.prune_monitor_samples(before).await {
                    tracing::warn!(error = %e, "cannot prune monitor history");
                }
            }
        }
    }
}

fn alert_to_row(a: &Alert) -> AlertRow {
    AlertRow {
        id: a.id.unwrap_or(0),
        alertname: a.alertname.clone(),
        signal: a.signal.clone(),
        severity: a.severity.as_str().to_owned(),
        state: match a.state {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
        .to_owned(),
        threshold: a.threshold,
        value: a.value,
        peak_value: a.peak_value,
        labels: "{}".to_owned(),
        description: Some(a.description.clone()),
        started_at: a.started_at,
        fired_at: a.fired_at,
        resolved_at: a.resolved_at,
    }
}

pub(super) fn alert_from_row(r: AlertRow) -> Option<Alert> {
    Some(Alert {
        id: Some(r.id),
        alertname: r.alertname,
        signal: r.signal,
        severity: match r.severity.as_str() {
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            _ => return None,
        },
        state: match r.state.as_str() {
            "pending" => AlertState::Pending,
            "firing" => AlertState::Firing,
            "resolved" => AlertState::Resolved,
            _ => return None,
        },
        threshold: r.threshold,
        value: r.value,
        peak_value: r.peak_value,
        description: r.description.unwrap_or_default(),
        started_at: r.started_at,
        fired_at: r.fired_at,
        resolved_at: r.resolved_at,
    })
}
