//! A client's outbox: the bounded queue between the hub (which pushes and
//! never waits) and the client's writer (which takes everything waiting
//! and writes it in one flush).
//!
//! A newer `execution.progress` replaces one the client has not read yet
//! (latest wins; it goes last, so sequence numbers stay in order). A push that does not fit is refused, and the
//! hub decides: clear the queue and send a resync, or close the client.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::CloseReason;
use super::message::{Frame, Message};
use crate::metrics::WebsocketMetrics;

/// Bytes a client's queue may hold at most.
pub(crate) const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// What became of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// It replaced an unread progress message of the same execution.
    Coalesced,
    /// The queue is full; nothing changed.
    Full,
}

/// The queue proper.
#[derive(Default)]
pub(crate) struct Queue {
    messages: VecDeque<Arc<Message>>,
    bytes: usize,
    /// Absolute position of the unread progress message per execution.
    progress_at: HashMap<i64, u64, foldhash::fast::RandomState>,
    /// Messages taken so far (the absolute position of the front).
    taken: u64,
}

impl Queue {
    pub(crate) fn push(&mut self, m: Arc<Message>, max_messages: usize) -> Pushed {
        let progress_of = |m: &Message| m.execution.filter(|_| m.kind == "execution.progress");
        // Latest wins: the unread one leaves its place and the new one goes
        // last, so sequence numbers stay in order.
        let coalesced = progress_of(&m)
            .and_then(|e| self.progress_at.remove(&e))
            .and_then(|at| {
                let old = self.messages.remove((at - self.taken) as usize)?;
                self.bytes -= old.text.len();
                for pos in self.progress_at.values_mut() {
                    if *pos > at {
                        *pos -= 1;
                    }
                }
                Some(())
            })
            .is_some();
        if !coalesced
            && (self.messages.len() >= max_messages || self.bytes + m.text.len() > MAX_QUEUED_BYTES)
        {
            return Pushed::Full;
        }
        if let Some(e) = progress_of(&m) {
            self.progress_at
                .insert(e, self.taken + self.messages.len() as u64);
        }
        self.bytes += m.text.len();
        self.messages.push_back(m);
        if coalesced {
            Pushed::Coalesced
        } else {
            Pushed::Queued
        }
    }

    /// Puts `m` in even when the queue is full (a resync after a clear).
    pub(crate) fn force(&mut self, m: Arc<Message>) {
        self.bytes += m.text.len();
        self.messages.push_back(m);
    }

    /// Takes everything waiting, oldest first.
    pub(crate) fn take(&mut self) -> Vec<Arc<Message>> {
        self.taken += self.messages.len() as u64;
        self.progress_at.clear();
        self.bytes = 0;
        self.messages.drain(..).collect()
    }

    /// Drops everything waiting; returns how many events that was.
    pub(crate) fn clear(&mut self) -> u64 {
        self.take().iter().map(|m| u64::from(m.events)).sum()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }
}

/// What the hub and the client's tasks share.
pub(crate) struct Shared {
    pub(crate) queue: Mutex<Queue>,
    notify: Notify,
    /// Set once the connection must close (the reason is beside it).
    closing: AtomicBool,
    reason: Mutex<Option<CloseReason>>,
    /// Frames received from the client so far.
    seen: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            closing: AtomicBool::new(false),
            reason: Mutex::new(None),
            seen: AtomicU64::new(0),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the writer.
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Asks the connection to close; the first reason given wins. The
    /// writer learns it from its next wake-up, like a message.
    pub(crate) fn close(&self, reason: CloseReason) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.closing.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    fn close_reason(&self) -> Option<CloseReason> {
        if !self.closing.load(Ordering::Acquire) {
            return None;
        }
        let r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        Some(r.clone().unwrap_or(CloseReason::Client))
    }

    /// The close reason, once a close was asked for.
    #[cfg(test)]
    pub(crate) fn closed_with(&self) -> Option<CloseReason> {
        self.close_reason()
    }

    /// Notes a frame from the client (any frame proves it is alive).
    pub(crate) fn seen(&self) {
        self.seen.fetch_add(1, Ordering::Relaxed);
    }
}

/// The writer's side of a client's queue.
pub struct Outbox {
    pub(crate) shared: Arc<Shared>,
    pub(crate) compress: bool,
    metrics: Handles,
}

/// The metric handles a writer updates per frame, looked up once.
struct Handles {
    delivery: prometheus::Histogram,
    frames: prometheus::IntCounter,
    events: prometheus::IntCounter,
    plain_bytes: prometheus::IntCounter,
    deflated_bytes: prometheus::IntCounter,
    compression_input: prometheus::IntCounter,
}

/// What the writer gets next.
pub enum Next {
    /// Messages to write, in one flush.
    Batch(Batch),
    /// The connection must close.
    Close(CloseReason),
}

/// Messages taken from the queue, ready to write.
pub struct Batch {
    messages: Vec<Arc<Message>>,
    compress: bool,
}

impl Batch {
    /// The frames, one per message, in order.
    pub fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        self.messages.iter().map(|m| m.frame(self.compress))
    }
}

impl Outbox {
    pub(crate) fn new(shared: Arc<Shared>, compress: bool, m: &WebsocketMetrics) -> Self {
        Self {
            shared,
            compress,
            metrics: Handles {
                delivery: m.delivery.clone(),
                frames: m.frames.clone(),
                events: m.messages.with_label_values(&["out"]),
                plain_bytes: m.bytes.with_label_values(&["false"]),
                deflated_bytes: m.bytes.with_label_values(&["true"]),
                compression_input: m.compression_input.clone(),
            },
        }
    }

    /// Waits for messages, then takes every one waiting; or says the
    /// connection must close. Cancel-safe: nothing is taken until it returns.
    pub async fn next(&self) -> Next {
        loop {
            if let Some(r) = self.shared.close_reason() {
                return Next::Close(r);
            }
            let messages = self.shared.lock().take();
            if !messages.is_empty() {
                return Next::Batch(Batch {
                    messages,
                    compress: self.compress,
                });
            }
            self.shared.notify.notified().await;
        }
    }

    /// Records a written batch: frames, events, bytes, delivery latency.
    pub fn sent(&self, batch: &Batch) {
        let m = &self.metrics;
        let now = crate::events::now_us();
        let mut events = 0;
        for (msg, frame) in batch.messages.iter().zip(batch.frames()) {
            events += u64::from(msg.events);
            m.delivery
                .observe((now - msg.at_us).max(0) as f64 / 1_000_000.0);
            match frame {
                Frame::Text(b) => m.plain_bytes.inc_by(b.len() as u64),
                Frame::Deflated(b) => {
                    m.deflated_bytes.inc_by(b.len() as u64);
                    m.compression_input.inc_by(msg.text.len() as u64);
                }
            }
        }
        m.frames.inc_by(batch.messages.len() as u64);
        m.events.inc_by(events);
    }

    /// Asks the connection to close.
    pub fn close(&self, reason: CloseReason) {
        self.shared.close(reason);
    }

    /// Frames received from the client so far: a heartbeat compares it
    /// before and after its ping.
    pub fn frames_seen(&self) -> u64 {
        self.shared.seen.load(Ordering::Relaxed)
    }
}

/// The hub's hot path for one slow client, for the criterion bench
/// (`benches/hot_paths.rs`): builds `messages` progress messages spread
/// over `executions` executions and pushes each into one outbox queue
/// (latest wins), taking everything every `take_every` pushes like a
/// writer would. Returns how many were coalesced.
#[doc(hidden)]
pub fn coalesce_workload(executions: i64, messages: usize, take_every: usize) -> usize {
    let data = r#"{"total":10000,"completed":4711,"passed":4500,"failed":200,"errors":11,"running":20,"rate":312.5,"etaSeconds":16.9}"#;
    let mut q = Queue::default();
    let mut coalesced = 0;
    for i in 0..messages {
        let m = Message::build(
            i as u64,
            super::message::Draft {
                kind: "execution.progress",
                execution: Some(i as i64 % executions.max(1)),
                at_us: i as i64,
                events: 1,
                id: None,
                data,
            },
        );
        if q.push(Arc::new(m), usize::MAX) == Pushed::Coalesced {
            coalesced += 1;
        }
        if take_every > 0 && (i + 1) % take_every == 0 {
            q.take();
        }
    }
    coalesced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::message::Draft;

    fn msg(seq: u64, kind: &'static str, execution: i64, data: &str) -> Arc<Message> {
        Arc::new(Message::build(
            seq,
            Draft {
                kind,
                execution: Some(execution),
                at_us: 0,
                events: 1,
                id: None,
                data,
            },
        ))
    }

    fn seq(m: &Message) -> u64 {
        let v: serde_json::Value = serde_json::from_slice(&m.text).unwrap();
        v["seq"].as_u64().unwrap()
    }

    #[test]
    fn unread_progress_is_replaced_in_place_by_the_latest() {
        let mut q = Queue::default();
        assert_eq!(
            q.push(msg(1, "execution.progress", 1, "1"), 10),
            Pushed::Queued
        );
        assert_eq!(q.push(msg(2, "result", 1, "[]"), 10), Pushed::Queued);
        assert_eq!(
            q.push(msg(3, "execution.progress", 2, "1"), 10),
            Pushed::Queued
        );
        assert_eq!(
            q.push(msg(4, "execution.progress", 1, "22"), 10),
            Pushed::Coalesced
        );
        let taken: Vec<u64> = q.take().iter().map(|m| seq(m)).collect();
        assert_eq!(
            taken,
            [2, 3, 4],
            "the latest progress replaces the unread one, last"
        );
        // Once read, progress queues again.
        assert_eq!(
            q.push(msg(5, "execution.progress", 1, "3"), 10),
            Pushed::Queued
        );
        assert_eq!(
            q.push(msg(6, "execution.progress", 1, "4"), 10),
            Pushed::Coalesced
        );
        assert_eq!(q.take().len(), 1);
    }

    #[test]
    fn a_full_queue_refuses_and_a_clear_counts_what_it_dropped() {
        let mut q = Queue::default();
        for i in 0..3 {
            assert_eq!(q.push(msg(i, "result", 1, "[]"), 3), Pushed::Queued);
        }
        assert_eq!(q.push(msg(9, "result", 1, "[]"), 3), Pushed::Full);
        assert_eq!(q.len(), 3);
        assert_eq!(q.clear(), 3);
        q.force(msg(10, "resync", 1, "{}"));
        assert_eq!(q.len(), 1);
        let big = "x".repeat(MAX_QUEUED_BYTES);
        assert_eq!(q.push(msg(11, "result", 1, &big), 1000), Pushed::Full);
    }
}
