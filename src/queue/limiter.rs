//! An adaptive concurrency limit per provider (AIMD), with priority-ordered,
//! first-come waiters.
//!
//! The limit starts at the ceiling, halves on a 429 or timeout, and grows
//! by half again after [`GROW_AFTER`] successes in a row, up to the
//! ceiling (promptfoo's scheduler does the same). Permits go to waiting
//! `high` jobs first, then `normal`, then `low`; within a priority in
//! arrival order, which keeps concurrent executions taking turns.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::storage::Priority;

/// Successes in a row before the limit grows.
pub(super) const GROW_AFTER: u32 = 5;

#[derive(Debug)]
struct State {
    limit: usize,
    ceiling: usize,
    in_flight: usize,
    streak: u32,
    waiters: [VecDeque<oneshot::Sender<()>>; 3],
}

/// A shared adaptive limit. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct AdaptiveLimit {
    state: Arc<Mutex<State>>,
}

/// Holding one unit of the limit; released on drop.
#[derive(Debug)]
pub(super) struct Permit {
    limit: AdaptiveLimit,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.limit.lock();
        s.in_flight -= 1;
        wake(&mut s);
    }
}

fn rank(p: Priority) -> usize {
    match p {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

/// Hands free units to waiters, best priority first; a waiter that gave up
/// (dropped its receiver) is skipped.
fn wake(s: &mut State) {
    while s.in_flight < s.limit {
        let Some(tx) = s.waiters.iter_mut().find_map(VecDeque::pop_front) else {
            return;
        };
        if tx.send(()).is_ok() {
            s.in_flight += 1;
        }
    }
}

impl AdaptiveLimit {
    /// A limit starting (and capped) at `ceiling`.
    pub(super) fn new(ceiling: usize) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            state: Arc::new(Mutex::new(State {
                limit: ceiling,
                ceiling,
                in_flight: 0,
                streak: 0,
                waiters: Default::default(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a unit. Cancel-safe: dropping the future gives up the
    /// place, and a unit granted to a dropped waiter is handed on.
    pub(super) async fn acquire(&self, priority: Priority) -> Permit {
        let rx = {
            let mut s = self.lock();
            if s.in_flight < s.limit && s.waiters.iter().all(VecDeque::is_empty) {
                s.in_flight += 1;
                return Permit {
                    limit: self.clone(),
                };
            }
            let (tx, rx) = oneshot::channel();
            s.waiters[rank(priority)].push_back(tx);
            rx
        };
        let mut guard = Granted {
            limit: self,
            rx: Some(rx),
            got: false,
        };
        let rx = guard.rx.as_mut().expect("set above");
        // The sender lives in `state`, which this handle keeps alive.
        rx.await.expect("a waiter is always answered");
        guard.got = true;
        Permit {
            limit: self.clone(),
        }
    }

    /// A success: grows the limit after a streak; returns the new limit
    /// when it grew.
    pub(super) fn on_success(&self) -> Option<usize> {
        let mut s = self.lock();
        s.streak += 1;
        if s.streak >= GROW_AFTER && s.limit < s.ceiling {
            s.limit = (s.limit + s.limit.div_ceil(2)).min(s.ceiling);
            s.streak = 0;
            wake(&mut s);
            return Some(s.limit);
        }
        None
    }

    /// A 429 or timeout: halves the limit (at least 1).
    pub(super) fn on_backoff(&self) {
        let mut s = self.lock();
        s.limit = (s.limit / 2).max(1);
        s.streak = 0;
    }

    /// Other failures end a success streak but keep the limit.
    pub(super) fn on_failure(&self) {
        self.lock().streak = 0;
    }

    /// The current limit.
    pub(super) fn limit(&self) -> usize {
        self.lock().limit
    }

    /// Units in use.
    #[cfg(test)]
    pub(super) fn in_flight(&self) -> usize {
        self.lock().in_flight
    }
}

/// If the acquiring future is dropped after its unit was granted but before
/// it noticed, the unit must go back.
struct Granted<'a> {
    limit: &'a AdaptiveLimit,
    rx: Option<oneshot::Receiver<()>>,
    got: bool,
}

impl Drop for Granted<'_> {
    fn drop(&mut self) {
        if self.got {
            return;
        }
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                let mut s = self.limit.lock();
                s.in_flight -= 1;
                wake(&mut s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_on_backoff_and_grows_back_after_streaks() {
        let l = AdaptiveLimit::new(20);
        l.on_backoff();
        assert_eq!(l.limit(), 10);
        l.on_backoff();
        l.on_backoff();
        l.on_backoff();
        l.on_backoff();
        assert_eq!(l.limit(), 1, "never below one");
        let mut seen = vec![l.limit()];
        for _ in 0..40 {
            l.on_success();
            seen.push(l.limit());
        }
        assert_eq!(*seen.last().unwrap(), 20, "back to the ceiling: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    }

    #[tokio::test]
    async fn waiters_are_served_by_priority_then_arrival() {
        let l = AdaptiveLimit::new(1);
        let first = l.acquire(Priority::Normal).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, p) in [
            ("low", Priority::Low),
            ("normal-1", Priority::Normal),
            ("high", Priority::High),
            ("normal-2", Priority::Normal),
        ] {
            let (l, order) = (l.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = l.acquire(p).await;
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["high", "normal-1", "normal-2", "low"]
        );
        assert_eq!(l.in_flight(), 0);
    }

    #[tokio::test]
    async fn an_abandoned_wait_gives_its_unit_back() {
        let l = AdaptiveLimit::new(1);
        let held = l.acquire(Priority::Normal).await;
        let waiting = tokio::spawn({
            let l = l.clone();
            async move {
                let _p = l.acquire(Priority::Normal).await;
            }
        });
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        drop(held);
        assert_eq!(l.in_flight(), 0);
        let _again =
            tokio::time::timeout(std::time::Duration::from_secs(1), l.acquire(Priority::Low))
                .await
                .expect("the unit was not lost");
    }
}
