//! A circuit breaker per provider: after [`TRIP_AFTER`] failures in a row
//! (server errors, timeouts, transport errors) the provider is paused; after
//! a cool-down one probe is let through; its success closes the circuit,
//! its failure re-opens it for twice as long (up to [`MAX_OPEN`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Failures in a row that open the circuit.
pub(super) const TRIP_AFTER: u32 = 5;
/// First pause.
const FIRST_OPEN: Duration = Duration::from_secs(5);
/// Longest pause.
const MAX_OPEN: Duration = Duration::from_secs(300);

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
        pause: Duration,
    },
    /// One probe is out; others wait.
    Probing {
        pause: Duration,
    },
}

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// Call the provider.
    Go,
    /// Call it as the probe after a pause.
    Probe,
    /// The circuit is open: wait this long, then ask again.
    Wait(Duration),
    /// A probe is out: ask again in a moment.
    Probing,
}

/// Shared breaker state. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Breaker {
    state: Arc<Mutex<State>>,
    /// What the last failure said, for the jobs the open circuit fails.
    last_failure: Arc<Mutex<String>>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State::Closed { failures: 0 })),
            last_failure: Arc::new(Mutex::new(String::new())),
        }
    }
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a call go now?
    pub(super) fn admit(&self) -> Admission {
        let mut s = self.lock();
        match *s {
            State::Closed { .. } => Admission::Go,
            State::Open { until, pause } => {
                let now = Instant::now();
                if now >= until {
                    *s = State::Probing { pause };
                    Admission::Probe
                } else {
                    Admission::Wait(until - now)
                }
            }
            // Ask again soon: the probe's outcome decides.
            State::Probing { .. } => Admission::Probing,
        }
    }

    /// A call succeeded (or failed in a way that says the provider is up).
    pub(super) fn on_success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// A call failed because the provider is down (`why`). Returns true
    /// when this opened the circuit.
    pub(super) fn on_failure(&self, why: &str) -> bool {
        why.clone_into(&mut self.last_failure.lock().unwrap_or_else(|p| p.into_inner()));
        let mut s = self.lock();
        match *s {
            State::Closed { failures } if failures + 1 >= TRIP_AFTER => {
                *s = State::Open {
                    until: Instant::now() + FIRST_OPEN,
                    pause: FIRST_OPEN,
                };
                true
            }
            State::Closed { failures } => {
                *s = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            // A call let through before the circuit opened: already paused.
            State::Open { .. } => false,
            State::Probing { pause } => {
                let pause = (pause * 2).min(MAX_OPEN);
                *s = State::Open {
                    until: Instant::now() + pause,
                    pause,
                };
                true
            }
        }
    }

    /// What the last failure said.
    pub(super) fn last_failure(&self) -> String {
        self.last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether calls are held back now.
    pub(super) fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_probes_after_the_pause_and_closes_on_success() {
        let b = Breaker::default();
        for _ in 0..TRIP_AFTER - 1 {
            assert!(!b.on_failure("HTTP 500"));
            assert_eq!(b.admit(), Admission::Go);
        }
        assert!(b.on_failure("HTTP 500"), "the fifth failure opens it");
        assert!(
            !b.on_failure("HTTP 500"),
            "a late failure does not extend the pause"
        );
        assert!(matches!(b.admit(), Admission::Wait(d) if d == FIRST_OPEN));
        tokio::time::advance(FIRST_OPEN).await;
        assert_eq!(b.admit(), Admission::Probe);
        assert!(
            matches!(b.admit(), Admission::Probing),
            "one probe at a time"
        );
        b.on_failure("HTTP 502 from the probe");
        assert_eq!(b.last_failure(), "HTTP 502 from the probe");
        assert!(
            matches!(b.admit(), Admission::Wait(d) if d == FIRST_OPEN * 2),
            "failed probe doubles the pause"
        );
        tokio::time::advance(FIRST_OPEN * 2).await;
        assert_eq!(b.admit(), Admission::Probe);
        b.on_success();
        assert_eq!(b.admit(), Admission::Go);
        assert!(!b.is_open());
    }
}
