//! The in-process event stream: subsystems publish what happened (an
//! execution started or made progress, results were stored, an alert fired
//! or resolved), and whoever listens (the WebSocket progress hub, tests)
//! subscribes. Publishing never blocks: a listener that falls behind misses
//! old events and is told how many.
//!
//! An event carries any serializable payload, serialized once when it is
//! published: every listener and every WebSocket client shares that text.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// Events kept for a listener that is behind.
const CAPACITY: usize = 4096;

/// What an event is about; listeners route by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// The monitor's alerts.
    Alerts,
    /// One execution (its lifecycle, progress and results).
    Execution(i64),
    /// A benchmark run.
    Benchmark,
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened, e.g. `alert.firing`, `execution.progress`, `result`.
    pub kind: &'static str,
    /// What it is about.
    pub topic: Topic,
    /// When, unix microseconds.
    pub at_us: i64,
    /// How many events this one stands for: 1, or the size of a batch
    /// (a `result` event carries every result of one stored batch).
    pub items: u32,
    /// The subject as JSON text (an object, or an array for `result`).
    pub data: Arc<str>,
}

impl Event {
    /// An event about `topic` happening now, with `data` serialized once.
    pub fn new(kind: &'static str, topic: Topic, data: &impl Serialize) -> Self {
        Self::raw(
            kind,
            topic,
            serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned()),
        )
    }

    /// An event whose data is already JSON text.
    pub fn raw(kind: &'static str, topic: Topic, json: String) -> Self {
        Self::batch(kind, topic, 1, json)
    }

    /// An event standing for `items` events, whose data is a JSON array.
    pub fn batch(kind: &'static str, topic: Topic, items: u32, json: String) -> Self {
        Self {
            kind,
            topic,
            at_us: now_us(),
            items,
            data: json.into(),
        }
    }

    /// When, unix ms.
    pub fn at_ms(&self) -> i64 {
        self.at_us / 1000
    }

    /// The data parsed back (for tests and tools; the hot path never does).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// Now, unix microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
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

    /// Whether anyone listens (publishers may skip building costly data).
    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
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
        bus.publish(Event::new("x.before", Topic::Alerts, &1));
        let mut rx = bus.subscribe();
        bus.publish(Event::new(
            "alert.firing",
            Topic::Alerts,
            &serde_json::json!({"a": 1}),
        ));
        let e = rx.recv().await.unwrap();
        assert_eq!(e.kind, "alert.firing");
        assert_eq!(&*e.data, r#"{"a":1}"#);
        assert_eq!(e.json()["a"], 1);
        assert!(e.at_us > 1_700_000_000_000_000);
    }
}
