//! The alert state machine, one per (signal, severity):
//! inactive -> pending (breached, waiting `for`) -> firing -> resolved.
//!
//! A value at or above the threshold breaches it. A pending alert whose
//! value drops back below is forgotten. A firing alert resolves only once
//! the value falls below the threshold minus a hysteresis band
//! ([`HYSTERESIS`] of the threshold), so a value hovering at the line does
//! not fire and resolve on every sample. A missing value (no requests, so
//! no error rate) counts as not breached, as an absent series does in
//! Prometheus.
//!
//! Pure: the caller passes the time and persists and publishes the
//! transitions this returns.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::thresholds::Severity;

/// Share of the threshold a firing alert's value must fall below it to
/// resolve.
pub const HYSTERESIS: f64 = 0.05;

/// Where an alert is in its episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Breached, waiting for `for`.
    Pending,
    /// Breached for at least `for`.
    Firing,
    /// The episode ended.
    Resolved,
}

/// One alert episode.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Database id once stored (firing or resolved).
    pub id: Option<i64>,
    /// `PromptgaugeHighCpuUsage`, ...
    pub alertname: String,
    /// The signal it watches.
    pub signal: String,
    /// Warning or critical.
    pub severity: Severity,
    /// Where it is.
    pub state: State,
    /// The level breached, in the signal's unit.
    pub threshold: f64,
    /// The latest value.
    pub value: f64,
    /// The worst value of the episode.
    pub peak_value: f64,
    /// A sentence for people.
    pub description: String,
    /// When the breach began (unix ms); stable for the whole episode.
    pub started_at: i64,
    /// When it began firing (unix ms).
    pub fired_at: Option<i64>,
    /// When it resolved (unix ms).
    pub resolved_at: Option<i64>,
}

/// What changed in one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Began firing.
    Fired(Alert),
    /// Was firing, now resolved.
    Resolved(Alert),
}

/// One (signal, severity) to evaluate.
pub struct Check<'a> {
    /// The signal's name.
    pub signal: &'a str,
    /// Its alertname.
    pub alertname: &'a str,
    /// Severity of this level.
    pub severity: Severity,
    /// The level.
    pub threshold: f64,
    /// The current value, if there is one.
    pub value: Option<f64>,
    /// Renders the description from the value.
    pub describe: &'a dyn Fn(f64) -> String,
}

/// Every alert that is pending or firing.
#[derive(Debug, Default)]
pub struct AlertBook {
    active: BTreeMap<(String, Severity), Alert>,
}

impl AlertBook {
    /// A book holding alerts that were firing before a restart.
    pub fn restore(firing: Vec<Alert>) -> Self {
        let active = firing
            .into_iter()
            .map(|a| ((a.signal.clone(), a.severity), a))
            .collect();
        Self { active }
    }

    /// Pending and firing alerts, worst first.
    pub fn active(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self.active.values().cloned().collect();
        v.sort_by(|a, b| {
            (b.state == State::Firing, b.severity, &a.alertname).cmp(&(
                a.state == State::Firing,
                a.severity,
                &b.alertname,
            ))
        });
        v
    }

    /// Firing alerts only.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().filter(|a| a.state == State::Firing)
    }

    /// Sets the database id of a fired alert.
    pub fn set_id(&mut self, signal: &str, severity: Severity, id: i64) {
        if let Some(a) = self.active.get_mut(&(signal.to_owned(), severity)) {
            a.id = Some(id);
        }
    }

    /// Evaluates one check at `now` (unix ms) with hold time `hold`.
    pub fn evaluate(&mut self, c: &Check<'_>, now: i64, hold: Duration) -> Option<Transition> {
        let key = (c.signal.to_owned(), c.severity);
        let breached = c.value.is_some_and(|v| v >= c.threshold);
        let clear_below = c.threshold - HYSTERESIS * c.threshold.abs();
        let hold_ms = hold.as_millis() as i64;
        match self.active.get_mut(&key) {
            None if breached => {
                let v = c.value.unwrap_or_default();
                let alert = Alert {
                    id: None,
                    alertname: c.alertname.to_owned(),
                    signal: c.signal.to_owned(),
                    severity: c.severity,
                    state: State::Pending,
                    threshold: c.threshold,
                    value: v,
                    peak_value: v,
                    description: (c.describe)(v),
                    started_at: now,
                    fired_at: None,
                    resolved_at: None,
                };
                self.active.insert(key.clone(), alert);
                self.fire_if_due(&key, now, hold_ms)
            }
            None => None,
            Some(a) if a.state == State::Pending => {
                if breached {
                    let v = c.value.unwrap_or_default();
                    a.value = v;
                    a.peak_value = a.peak_value.max(v);
                    a.description = (c.describe)(v);
                    self.fire_if_due(&key, now, hold_ms)
                } else {
                    self.active.remove(&key);
                    None
                }
            }
            Some(a) => {
                if let Some(v) = c.value {
                    a.value = v;
                    a.peak_value = a.peak_value.max(v);
                }
                let cleared = c.value.is_none_or(|v| v < clear_below);
                if !cleared {
                    if let Some(v) = c.value {
                        a.description = (c.describe)(v);
                    }
                    return None;
                }
                let mut a = self.active.remove(&key)?;
                a.state = State::Resolved;
                a.resolved_at = Some(now);
                Some(Transition::Resolved(a))
            }
        }
    }

    fn fire_if_due(
        &mut self,
        key: &(String, Severity),
        now: i64,
        hold_ms: i64,
    ) -> Option<Transition> {
        let a = self.active.get_mut(key)?;
        if now - a.started_at < hold_ms {
            return None;
        }
        a.state = State::Firing;
        a.fired_at = Some(now);
        Some(Transition::Fired(a.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_secs(60);

    fn describe(v: f64) -> String {
        format!("queue length is {v}")
    }

    fn check(value: Option<f64>) -> Check<'static> {
        Check {
            signal: "queue_length",
            alertname: "PromptgaugeTestQueueBacklog",
            severity: Severity::Warning,
            threshold: 100.0,
            value,
            describe: &describe,
        }
    }

    fn run(book: &mut AlertBook, values: &[(i64, Option<f64>)]) -> Vec<(i64, &'static str)> {
        values
            .iter()
            .filter_map(|&(t, v)| {
                book.evaluate(&check(v), t * 1000, HOLD).map(|tr| match tr {
                    Transition::Fired(_) => (t, "fired"),
                    Transition::Resolved(_) => (t, "resolved"),
                })
            })
            .collect()
    }

    #[test]
    fn a_breach_goes_pending_then_fires_after_the_hold_time_then_resolves() {
        let mut book = AlertBook::default();
        let events = run(
            &mut book,
            &[
                (0, Some(50.0)),
                (10, Some(120.0)),
                (40, Some(300.0)),
                (69, Some(150.0)),
            ],
        );
        assert!(events.is_empty(), "still pending: {events:?}");
        let pending = book.active();
        assert_eq!(pending[0].state, State::Pending);
        assert_eq!(pending[0].started_at, 10_000);
        assert_eq!(pending[0].peak_value, 300.0);

        assert_eq!(run(&mut book, &[(70, Some(130.0))]), [(70, "fired")]);
        let firing = book.active().remove(0);
        assert_eq!(
            (firing.state, firing.fired_at),
            (State::Firing, Some(70_000))
        );
        assert_eq!(
            firing.started_at, 10_000,
            "startsAt stays the episode's start"
        );
        assert_eq!(firing.description, "queue length is 130");

        assert_eq!(run(&mut book, &[(80, Some(20.0))]), [(80, "resolved")]);
        assert!(book.active().is_empty());
    }

    #[test]
    fn a_breach_shorter_than_the_hold_time_never_fires() {
        let mut book = AlertBook::default();
        let events = run(
            &mut book,
            &[
                (0, Some(500.0)),
                (30, Some(500.0)),
                (59, Some(99.0)),
                (61, Some(500.0)),
                (100, Some(10.0)),
            ],
        );
        assert!(events.is_empty(), "{events:?}");
        assert!(book.active().is_empty());
    }

    #[test]
    fn a_value_hovering_at_the_line_does_not_flap() {
        let mut book = AlertBook::default();
        assert_eq!(
            run(&mut book, &[(0, Some(100.0)), (60, Some(101.0))]),
            [(60, "fired")]
        );
        // 99 and 96 are below the line but inside the 5 % band: still firing.
        let hovering = [
            (70, Some(99.0)),
            (80, Some(100.0)),
            (90, Some(96.0)),
            (100, Some(101.0)),
        ];
        assert!(run(&mut book, &hovering).is_empty());
        assert_eq!(book.firing().count(), 1);
        // Clearly below: resolved; a later breach is a new episode.
        assert_eq!(run(&mut book, &[(110, Some(94.0))]), [(110, "resolved")]);
        assert!(run(&mut book, &[(120, Some(150.0))]).is_empty());
        assert_eq!(book.active()[0].started_at, 120_000);
    }

    #[test]
    fn no_data_counts_as_not_breached() {
        let mut book = AlertBook::default();
        run(&mut book, &[(0, Some(200.0)), (60, Some(200.0))]);
        assert_eq!(run(&mut book, &[(70, None)]), [(70, "resolved")]);
        assert!(run(&mut book, &[(80, None)]).is_empty());
    }

    #[test]
    fn zero_hold_fires_at_once_and_restored_alerts_resolve_normally() {
        let mut book = AlertBook::default();
        let fired = book.evaluate(&check(Some(100.0)), 5, Duration::ZERO);
        let Some(Transition::Fired(a)) = fired else {
            panic!("{fired:?}")
        };
        let mut restored = AlertBook::restore(vec![Alert { id: Some(7), ..a }]);
        let t = restored.evaluate(&check(Some(1.0)), 9, HOLD);
        let Some(Transition::Resolved(r)) = t else {
            panic!("{t:?}")
        };
        assert_eq!((r.id, r.started_at, r.resolved_at), (Some(7), 5, Some(9)));
    }
}
