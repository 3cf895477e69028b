//! What the hub does when a client cannot keep up: its queue is replaced
//! by one `resync` with the current state of what it watches, and a client
//! that overflows again within [`RESYNC_GRACE`] is closed.

use tokio::time::Instant;

use super::{Hub, RESYNC_GRACE};
use crate::events::now_us;
use crate::progress::CloseReason;
use crate::progress::command::TopicName;
use crate::progress::message::Draft;

impl Hub {
    /// A client's queue is full: resync it, or close it if it was resynced
    /// a moment ago (`counts` is false when the hub itself fell behind).
    pub(super) fn overflow(&mut self, client: u64, counts: bool) {
        let now = Instant::now();
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        if counts && c.last_resync.is_some_and(|t| now < t + RESYNC_GRACE) {
            let dropped = c.outbox.lock().clear();
            self.metrics.dropped.inc_by(dropped);
            c.outbox.close(CloseReason::Slow);
            return;
        }
        if counts {
            c.last_resync = Some(now);
        }
        let dropped = c.outbox.lock().clear();
        self.metrics.dropped.inc_by(dropped);
        self.metrics.resyncs.inc();
        let data = self.resync_data(client, dropped);
        let m = self.message(Draft {
            kind: "resync",
            execution: None,
            at_us: now_us(),
            events: 1,
            id: None,
            data: &data,
        });
        if let Some(c) = self.clients.get(&client) {
            c.outbox.lock().force(m);
            c.outbox.wake();
        }
    }

    /// `{"dropped":N,"executions":[{"type","execution","data"}...]}`: the
    /// current state of everything the client watches.
    fn resync_data(&self, client: u64, dropped: u64) -> String {
        let Some(c) = self.clients.get(&client) else {
            return String::new();
        };
        let all = c.topics[TopicName::Executions.index()];
        let mut ids: Vec<i64> = if all {
            self.executions
                .iter()
                .filter(|(_, e)| !e.ended)
                .map(|(id, _)| *id)
                .chain(c.executions.iter().copied())
                .collect()
        } else {
            c.executions.iter().copied().collect()
        };
        ids.sort_unstable();
        ids.dedup();
        let states: Vec<String> = ids
            .iter()
            .filter_map(|id| {
                let s = self.executions.get(id)?.latest.as_ref()?;
                Some(format!(
                    r#"{{"type":"{}","execution":{id},"data":{}}}"#,
                    s.kind, s.data
                ))
            })
            .collect();
        format!(
            r#"{{"dropped":{dropped},"executions":[{}]}}"#,
            states.join(",")
        )
    }

    /// The hub missed events: every client gets the current state instead.
    pub(super) fn lagged(&mut self, missed: u64) {
        tracing::warn!(
            missed,
            "progress hub fell behind the event bus; resyncing clients"
        );
        let ids: Vec<u64> = self.clients.keys().copied().collect();
        for c in ids {
            self.overflow(c, false);
        }
    }
}
