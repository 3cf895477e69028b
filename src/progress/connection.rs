//! A client's incoming side: each frame it sends is size-checked,
//! rate-limited, parsed and turned into a hub command; every refusal is an
//! `error` message naming the problem, and the connection stays open
//! unless the client abuses it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use super::command::{self, Op, Rejection};
use super::outbox::Shared;
use super::{Admission, CloseReason, MAX_COMMAND_BYTES, ProgressHub, hub, state};

/// A token bucket: `rate` per second, up to `capacity` at once.
struct Bucket {
    tokens: f64,
    capacity: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, capacity: f64) -> Self {
        Self {
            tokens: capacity,
            capacity,
            rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One client connection's command side.
pub struct Connection {
    hub: ProgressHub,
    id: u64,
    shared: Arc<Shared>,
    /// Commands allowed.
    commands: Bucket,
    /// Commands refused for rate that are tolerated; empty means abuse.
    strikes: Bucket,
    /// Executions this connection watches (the hub keeps the truth; this
    /// copy enforces the limit without asking it).
    executions: HashSet<i64>,
    _admission: Admission,
}

impl Connection {
    pub(super) fn new(
        hub: ProgressHub,
        id: u64,
        shared: Arc<Shared>,
        admission: Admission,
    ) -> Self {
        let rate = f64::from(hub.config().commands_per_second.max(1));
        Self {
            hub,
            id,
            shared,
            commands: Bucket::new(rate, 2.0 * rate),
            strikes: Bucket::new(rate, 2.0 * rate),
            executions: HashSet::new(),
            _admission: admission,
        }
    }

    /// The client's id (unique in this process).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Notes a frame from the client: it is alive.
    pub fn seen(&self) {
        self.shared.seen();
    }

    /// Handles a text frame: a command.
    pub async fn text(&mut self, text: &str) -> Result<(), CloseReason> {
        self.seen();
        let m = &self.hub.inner.metrics;
        m.messages.with_label_values(&["in"]).inc();
        if !self.commands.take() {
            let per_second = self.hub.config().commands_per_second;
            self.reject(Rejection::new(
                "rate_limited",
                format!("more than {per_second} commands per second; this one was ignored"),
            ))
            .await;
            return if self.strikes.take() {
                Ok(())
            } else {
                Err(CloseReason::Abuse)
            };
        }
        if text.len() > MAX_COMMAND_BYTES {
            self.reject(Rejection::new(
                "too_large",
                format!(
                    "message of {} bytes exceeds the {MAX_COMMAND_BYTES}-byte limit for commands",
                    text.len()
                ),
            ))
            .await;
            return Ok(());
        }
        match command::parse(text, self.hub.config().max_subscriptions) {
            Ok(c) => self.run(c).await,
            Err(r) => self.reject(r).await,
        }
        Ok(())
    }

    /// Handles a binary frame: not part of the protocol.
    pub async fn binary(&mut self, len: usize) -> Result<(), CloseReason> {
        self.seen();
        self.hub
            .inner
            .metrics
            .messages
            .with_label_values(&["in"])
            .inc();
        if !self.commands.take() && !self.strikes.take() {
            return Err(CloseReason::Abuse);
        }
        self.reject(Rejection::new(
            "binary",
            format!("got a binary frame of {len} bytes; commands are JSON text frames"),
        ))
        .await;
        Ok(())
    }

    /// Ends the connection: the hub forgets it; the reason is counted.
    pub async fn finish(self, reason: &CloseReason) {
        self.hub
            .inner
            .metrics
            .disconnects
            .with_label_values(&[reason.label()])
            .inc();
        self.hub.send(hub::Command::Close { client: self.id }).await;
    }

    async fn run(&mut self, c: command::Command) {
        match c.op {
            Op::Ping => {
                self.reply(c.id, "pong", "{}".to_owned()).await;
            }
            Op::Subscribe { executions, topics } => {
                self.subscribe(c.id, executions, topics).await;
            }
            Op::Unsubscribe { executions, topics } => {
                for id in &executions {
                    self.executions.remove(id);
                }
                self.hub
                    .send(hub::Command::Unsubscribe {
                        client: self.id,
                        request: c.id,
                        executions,
                        topics,
                    })
                    .await;
            }
        }
    }

    async fn subscribe(
        &mut self,
        request: Option<String>,
        ids: Vec<i64>,
        topics: Vec<command::TopicName>,
    ) {
        let max = self.hub.config().max_subscriptions;
        let new = ids
            .iter()
            .filter(|id| !self.executions.contains(id))
            .count();
        if self.executions.len() + new > max {
            let r = Rejection {
                code: "too_many_subscriptions",
                message: format!(
                    "this connection watches {} executions; {new} more would pass the limit of {max}",
                    self.executions.len()
                ),
                id: request,
            };
            self.reject(r).await;
            return;
        }
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.hub.inner.storage.get_execution(id).await {
                Ok(Some(r)) => found.push((id, Some(state::from_record(&r)))),
                Ok(None) => missing.push(id),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read an execution for a subscription");
                    let r = Rejection {
                        code: "unavailable",
                        message: "the database cannot be read right now; try again".to_owned(),
                        id: request,
                    };
                    self.reject(r).await;
                    return;
                }
            }
        }
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(i64::to_string).collect();
            let r = Rejection {
                code: "not_found",
                message: if found.is_empty() {
                    format!("no execution with id {}", list.join(", "))
                } else {
                    format!(
                        "no execution with id {}; the others were subscribed",
                        list.join(", ")
                    )
                },
                id: request.clone(),
            };
            self.reject(r).await;
            if found.is_empty() && topics.is_empty() {
                return;
            }
        }
        self.executions.extend(found.iter().map(|(id, _)| *id));
        self.hub
            .send(hub::Command::Subscribe {
                client: self.id,
                request,
                executions: found,
                topics,
            })
            .await;
    }

    async fn reject(&self, r: Rejection) {
        let m = &self.hub.inner.metrics;
        m.rejected.with_label_values(&[r.code]).inc();
        let data = serde_json::json!({"code": r.code, "message": r.message}).to_string();
        self.reply(r.id, "error", data).await;
    }

    async fn reply(&self, request: Option<String>, kind: &'static str, data: String) {
        self.hub
            .send(hub::Command::Reply {
                client: self.id,
                request,
                kind,
                data,
            })
            .await;
    }
}
