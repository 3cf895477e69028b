//! The hub's side of connection commands: a client opening and closing,
//! subscribing and unsubscribing (with the state of what it now watches
//! sent at once), and replies to it.

use std::collections::HashSet;

use super::{Client, Command, Hub, State};
use crate::events::now_us;
use crate::progress::command::TopicName;
use crate::progress::message::Draft;

impl Hub {
    pub(crate) fn command(&mut self, c: Command) {
        match c {
            Command::Open { client, outbox } => {
                self.clients.insert(
                    client,
                    Client {
                        outbox,
                        executions: HashSet::new(),
                        topics: [false; 4],
                        last_resync: None,
                    },
                );
            }
            Command::Close { client } => self.remove(client),
            Command::Subscribe {
                client,
                request,
                executions,
                topics,
            } => self.subscribe(client, request, executions, topics),
            Command::Unsubscribe {
                client,
                request,
                executions,
                topics,
            } => self.unsubscribe(client, request, &executions, &topics),
            Command::Reply {
                client,
                request,
                kind,
                data,
            } => self.reply(client, request.as_deref(), kind, &data),
        }
    }

    fn remove(&mut self, client: u64) {
        let Some(c) = self.clients.remove(&client) else {
            return;
        };
        for id in c.executions {
            if let Some(w) = self.watchers.get_mut(&id) {
                w.retain(|x| *x != client);
                if w.is_empty() {
                    self.watchers.remove(&id);
                }
            }
        }
        for t in &mut self.topics {
            t.remove(&client);
        }
    }

    fn reply(&mut self, client: u64, request: Option<&str>, kind: &'static str, data: &str) {
        let m = self.message(Draft {
            kind,
            execution: None,
            at_us: now_us(),
            events: 1,
            id: request,
            data,
        });
        if let Some(c) = self.clients.get(&client) {
            // Replies are few and small; they are never refused.
            c.outbox.lock().force(m);
            c.outbox.wake();
        }
    }

    fn subscribe(
        &mut self,
        client: u64,
        request: Option<String>,
        executions: Vec<(i64, Option<State>)>,
        topics: Vec<TopicName>,
    ) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        let mut fresh = Vec::new();
        for (id, stored) in executions {
            if c.executions.insert(id) {
                self.watchers.entry(id).or_default().push(client);
            }
            fresh.push((id, stored));
        }
        let mut running_now = Vec::new();
        for t in topics {
            if !c.topics[t.index()] {
                c.topics[t.index()] = true;
                self.topics[t.index()].insert(client);
                if t == TopicName::Executions {
                    running_now.extend(
                        self.executions
                            .iter()
                            .filter(|(id, e)| !e.ended && !c.executions.contains(id))
                            .map(|(id, _)| (*id, None)),
                    );
                }
            }
        }
        let data = self.subscriptions(client);
        self.reply(client, request.as_deref(), "subscribed", &data);
        // Then the state of each, from the cache or from storage.
        for (id, stored) in fresh.into_iter().chain(running_now) {
            let state = self
                .executions
                .get(&id)
                .and_then(|e| e.latest.clone())
                .or(stored);
            if let Some(s) = state {
                let m = self.message(Draft {
                    kind: s.kind,
                    execution: Some(id),
                    at_us: s.at_us,
                    events: 1,
                    id: None,
                    data: &s.data,
                });
                self.push(client, &m);
            }
        }
    }

    fn unsubscribe(
        &mut self,
        client: u64,
        request: Option<String>,
        executions: &[i64],
        topics: &[TopicName],
    ) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        for id in executions {
            if c.executions.remove(id) {
                if let Some(w) = self.watchers.get_mut(id) {
                    w.retain(|x| *x != client);
                    if w.is_empty() {
                        self.watchers.remove(id);
                    }
                }
            }
        }
        for t in topics {
            c.topics[t.index()] = false;
            self.topics[t.index()].remove(&client);
        }
        let data = self.subscriptions(client);
        self.reply(client, request.as_deref(), "unsubscribed", &data);
    }

    /// `{"executions":[..],"topics":[..]}`: what the client watches now.
    fn subscriptions(&self, client: u64) -> String {
        let Some(c) = self.clients.get(&client) else {
            return "{}".to_owned();
        };
        let mut ids: Vec<i64> = c.executions.iter().copied().collect();
        ids.sort_unstable();
        let topics: Vec<&str> = TopicName::ALL
            .iter()
            .filter(|t| c.topics[t.index()])
            .map(|t| t.as_str())
            .collect();
        serde_json::json!({"executions": ids, "topics": topics}).to_string()
    }
}
