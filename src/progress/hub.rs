//! The hub task: takes events from the [`EventBus`] and commands from
//! connections, keeps each execution's latest state, and fans messages
//! out to the clients that asked for them.
//!
//! One task owns the routing tables and makes every message, so each
//! client sees sequence numbers in order. Per execution, progress and
//! results go out at once when that execution was quiet for a batch
//! window; otherwise they wait for the window's end and leave together
//! (latest progress, all results in one message). Pushing to a client
//! never waits: a full queue is cleared and replaced by a `resync`, and a
//! client that overflows again within [`RESYNC_GRACE`] is closed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::command::TopicName;
use super::message::{Draft, Message};
use super::outbox::{Pushed, Shared};
use super::{CloseReason, ProgressConfig};
use crate::events::{Event, Topic};
use crate::metrics::WebsocketMetrics;

/// A client that overflows again this soon after a resync is closed.
pub(crate) const RESYNC_GRACE: Duration = Duration::from_secs(10);
/// Ended executions whose final state is kept for late subscribers.
const ENDED_KEPT: usize = 1024;

/// What connections ask of the hub.
pub(crate) enum Command {
    Open {
        client: u64,
        outbox: Arc<Shared>,
    },
    Close {
        client: u64,
    },
    Subscribe {
        client: u64,
        request: Option<String>,
        /// Each execution with its stored state, for one the hub does not know.
        executions: Vec<(i64, Option<State>)>,
        topics: Vec<TopicName>,
    },
    Unsubscribe {
        client: u64,
        request: Option<String>,
        executions: Vec<i64>,
        topics: Vec<TopicName>,
    },
    /// A message for one client (a pong, an error).
    Reply {
        client: u64,
        request: Option<String>,
        kind: &'static str,
        data: String,
    },
}

/// An execution's latest lifecycle or progress message, as data.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) kind: &'static str,
    pub(crate) at_us: i64,
    pub(crate) data: Arc<str>,
}

struct Client {
    outbox: Arc<Shared>,
    executions: HashSet<i64>,
    topics: [bool; 4],
    last_resync: Option<Instant>,
}

/// Events of one kind held back until a window ends.
#[derive(Default)]
struct Window {
    last: Option<Instant>,
    due: Option<Instant>,
}

impl Window {
    /// Whether an event arriving now goes at once (the window is closed).
    fn open_now(&mut self, now: Instant, window: Duration) -> bool {
        match self.last {
            Some(last) if now < last + window => {
                self.due = Some(last + window);
                false
            }
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

#[derive(Default)]
struct Execution {
    latest: Option<State>,
    ended: bool,
    progress: Window,
    pending_progress: Option<Event>,
    results: Window,
    pending_results: Vec<Event>,
}

pub(crate) struct Hub {
    config: ProgressConfig,
    metrics: WebsocketMetrics,
    seq: u64,
    clients: HashMap<u64, Client>,
    watchers: HashMap<i64, Vec<u64>>,
    topics: [HashSet<u64>; 4],
    executions: HashMap<i64, Execution>,
    ended: VecDeque<i64>,
    due: HashSet<i64>,
}

impl Hub {
    pub(crate) fn new(config: ProgressConfig, metrics: WebsocketMetrics) -> Self {
        Self {
            config,
            metrics,
            seq: 0,
            clients: HashMap::new(),
            watchers: HashMap::new(),
            topics: Default::default(),
            executions: HashMap::new(),
            ended: VecDeque::new(),
            due: HashSet::new(),
        }
    }

    /// Runs until `token` is cancelled or every sender is gone.
    pub(crate) async fn run(
        mut self,
        mut events: broadcast::Receiver<Event>,
        mut commands: mpsc::Receiver<Command>,
        token: CancellationToken,
    ) {
        loop {
            let due = self.next_due();
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                c = commands.recv() => match c {
                    Some(c) => self.command(c),
                    None => break,
                },
                e = events.recv() => match e {
                    Ok(e) => self.event(e, Instant::now()),
                    Err(broadcast::error::RecvError::Lagged(n)) => self.lagged(n),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    self.flush_due(Instant::now());
                }
            }
        }
        for c in self.clients.values() {
            c.outbox.close(CloseReason::Shutdown);
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.due
            .iter()
            .filter_map(|id| self.executions.get(id))
            .flat_map(|e| [e.progress.due, e.results.due])
            .flatten()
            .min()
    }

    fn message(&mut self, d: Draft<'_>) -> Arc<Message> {
        self.seq += 1;
        Arc::new(Message::build(self.seq, d))
    }

    // ---- events -------------------------------------------------------

    pub(crate) fn event(&mut self, e: Event, now: Instant) {
        match e.topic {
            Topic::Alerts => self.broadcast(TopicName::Alerts, &e),
            Topic::Benchmark => self.broadcast(TopicName::Benchmarks, &e),
            Topic::Execution(id) => match e.kind {
                "execution.progress" => self.progress(id, e, now),
                "result" => self.results(id, e, now),
                _ => self.lifecycle(id, e),
            },
        }
    }

    fn broadcast(&mut self, topic: TopicName, e: &Event) {
        if self.topics[topic.index()].is_empty() {
            return;
        }
        let m = self.message(Draft {
            kind: e.kind,
            execution: None,
            at_us: e.at_us,
            events: 1,
            id: None,
            data: &e.data,
        });
        let targets: Vec<u64> = self.topics[topic.index()].iter().copied().collect();
        for c in targets {
            self.push(c, &m);
        }
    }

    fn progress(&mut self, id: i64, e: Event, now: Instant) {
        let window = self.config.batch_window;
        let exec = self.executions.entry(id).or_default();
        if exec.ended {
            return;
        }
        exec.latest = Some(State {
            kind: e.kind,
            at_us: e.at_us,
            data: e.data.clone(),
        });
        if !self.watched(id, TopicName::Executions) {
            return;
        }
        // The newest progress supersedes one still held back, whether it
        // goes now or at the window's end.
        let exec = self.executions.entry(id).or_default();
        exec.pending_progress = None;
        if exec.progress.open_now(now, window) {
            self.send_progress(id, &e);
        } else {
            exec.pending_progress = Some(e);
            self.due.insert(id);
        }
    }

    fn results(&mut self, id: i64, e: Event, now: Instant) {
        if !self.watched(id, TopicName::Results) {
            return;
        }
        let window = self.config.batch_window;
        let exec = self.executions.entry(id).or_default();
        exec.pending_results.push(e);
        if exec.results.open_now(now, window) {
            self.send_results(id);
        } else {
            self.due.insert(id);
        }
    }

    fn lifecycle(&mut self, id: i64, e: Event) {
        // What waited goes first, so the end comes after the last result.
        self.flush(id);
        let exec = self.executions.entry(id).or_default();
        exec.latest = Some(State {
            kind: e.kind,
            at_us: e.at_us,
            data: e.data.clone(),
        });
        let ends = matches!(e.kind, "execution.finished" | "execution.cancelled");
        if ends && !exec.ended {
            exec.ended = true;
            self.ended.push_back(id);
            while self.ended.len() > ENDED_KEPT {
                if let Some(old) = self.ended.pop_front() {
                    self.executions.remove(&old);
                }
            }
        } else if !ends {
            exec.ended = false;
        }
        if self.watched(id, TopicName::Executions) {
            let m = self.message(Draft {
                kind: e.kind,
                execution: Some(id),
                at_us: e.at_us,
                events: 1,
                id: None,
                data: &e.data,
            });
            self.fan_out(id, TopicName::Executions, &m);
        }
    }

    fn flush_due(&mut self, now: Instant) {
        let ready: Vec<i64> = self
            .due
            .iter()
            .copied()
            .filter(|id| {
                self.executions.get(id).is_none_or(|e| {
                    [e.progress.due, e.results.due]
                        .into_iter()
                        .flatten()
                        .any(|d| d <= now)
                })
            })
            .collect();
        for id in ready {
            self.flush(id);
            if let Some(e) = self.executions.get_mut(&id) {
                e.progress.last = Some(now);
                e.results.last = Some(now);
            }
        }
    }

    /// Sends what an execution holds back (results first).
    fn flush(&mut self, id: i64) {
        self.due.remove(&id);
        let Some(exec) = self.executions.get_mut(&id) else {
            return;
        };
        exec.progress.due = None;
        exec.results.due = None;
        let progress = exec.pending_progress.take();
        if !exec.pending_results.is_empty() {
            self.send_results(id);
        }
        if let Some(p) = progress {
            self.send_progress(id, &p);
        }
    }

    fn send_progress(&mut self, id: i64, e: &Event) {
        let m = self.message(Draft {
            kind: e.kind,
            execution: Some(id),
            at_us: e.at_us,
            events: 1,
            id: None,
            data: &e.data,
        });
        self.fan_out(id, TopicName::Executions, &m);
    }

    /// One `result` message with every result held for `id`, in order.
    fn send_results(&mut self, id: i64) {
        let Some(exec) = self.executions.get_mut(&id) else {
            return;
        };
        let batch = std::mem::take(&mut exec.pending_results);
        let Some(first) = batch.first() else { return };
        let at_us = first.at_us;
        let events: u32 = batch.iter().map(|e| e.items).sum();
        let data = merge_arrays(batch.iter().map(|e| &*e.data));
        let m = self.message(Draft {
            kind: "result",
            execution: Some(id),
            at_us,
            events,
            id: None,
            data: &data,
        });
        self.fan_out(id, TopicName::Results, &m);
    }

    /// Whether a client watches execution `id`, or the topic that covers it.
    fn watched(&self, id: i64, topic: TopicName) -> bool {
        self.watchers.get(&id).is_some_and(|w| !w.is_empty())
            || !self.topics[topic.index()].is_empty()
    }

    /// Sends `m` to the watchers of `id` and, once each, to `topic`'s.
    fn fan_out(&mut self, id: i64, topic: TopicName, m: &Arc<Message>) {
        let direct: Vec<u64> = self.watchers.get(&id).cloned().unwrap_or_default();
        for c in &direct {
            self.push(*c, m);
        }
        let via_topic: Vec<u64> = self.topics[topic.index()]
            .iter()
            .copied()
            .filter(|c| {
                self.clients
                    .get(c)
                    .is_some_and(|cl| !cl.executions.contains(&id))
            })
            .collect();
        for c in via_topic {
            self.push(c, m);
        }
    }

    fn push(&mut self, client: u64, m: &Arc<Message>) {
        let Some(c) = self.clients.get(&client) else {
            return;
        };
        let pushed = c.outbox.lock().push(m.clone(), self.config.client_queue);
        match pushed {
            Pushed::Queued => c.outbox.wake(),
            Pushed::Coalesced => self.metrics.coalesced.inc(),
            Pushed::Full => self.overflow(client, true),
        }
    }
}

/// Joins JSON arrays' items into one array.
fn merge_arrays<'a>(arrays: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for a in arrays {
        let inner = a.trim();
        let inner = inner
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(inner)
            .trim();
        if inner.is_empty() {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(inner);
    }
    out.push(']');
    out
}

mod commands;
mod resync;

#[cfg(test)]
mod tests;
