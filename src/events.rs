//! The in-process event stream: subsystems publish what happened (an alert
//! firing or resolving, ...), and whoever listens (the WebSocket progress
//! service, tests) subscribes. Publishing never blocks: a listener that
//! falls behind misses old events and is told how many.

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// Events kept for a listener that is behind.
const CAPACITY: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// What happened, e.g. `alert.firing`, `alert.resolved`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When, unix ms.
    pub at: i64,
    /// The subject (an alert, ...), as JSON.
    pub data: Value,
}

/// The stream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// An empty stream.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    /// Publishes `event` to every current listener (none is fine).
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// A listener from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listeners_get_what_is_published_after_they_subscribe() {
        let bus = EventBus::new();
        bus.publish(Event {
            kind: "x.before",
            at: 1,
            data: Value::Null,
        });
        let mut rx = bus.subscribe();
        bus.publish(Event {
            kind: "alert.firing",
            at: 2,
            data: serde_json::json!({"a": 1}),
        });
        let e = rx.recv().await.unwrap();
        assert_eq!((e.kind, e.at), ("alert.firing", 2));
        assert_eq!(serde_json::to_value(&e).unwrap()["type"], "alert.firing");
    }
}
