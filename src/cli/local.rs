//! The services a one-shot command (`report`, `optimize`) needs over this
//! machine's database, without the HTTP server; closed in order after use;
//! and the request such a command makes to a server instead.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::analytics::{AnalyticsConfig, AnalyticsEngine};
use crate::config::Config;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::queue::{QueueConfig, TestQueue};
use crate::storage::Storage;

/// Storage, the queue and analytics on `DATABASE_PATH`.
pub(super) struct Local {
    pub(super) metrics: Arc<Metrics>,
    pub(super) storage: Storage,
    pub(super) events: EventBus,
    pub(super) queue: TestQueue,
    pub(super) analytics: AnalyticsEngine,
    tracker: TaskTracker,
    token: CancellationToken,
}

impl Local {
    /// Opens the database and starts the queue.
    pub(super) fn open(config: &Config) -> Result<Self, String> {
        let metrics = Arc::new(Metrics::new().map_err(|e| e.to_string())?);
        let storage = Storage::open_with_busy_timeout(
            &config.database_path,
            config.db_busy_timeout,
            metrics.storage.clone(),
        )
        .map_err(|e| e.to_string())?;
        storage.set_minute_retention(config.rollup_minute_retention);
        let (tracker, token) = (TaskTracker::new(), CancellationToken::new());
        let events = EventBus::new();
        let queue = TestQueue::start(
            storage.clone(),
            &metrics,
            events.clone(),
            QueueConfig {
                max_concurrency: config.max_concurrent_tests,
                cache_ttl: config.cache_ttl,
                // The operator's own suite, run on their machine.
                credentials: crate::providers::Credentials::Local,
            },
            tracker.clone(),
            token.clone(),
        );
        let analytics = AnalyticsEngine::new(storage.clone(), &metrics, AnalyticsConfig::default());
        Ok(Self {
            metrics,
            storage,
            events,
            queue,
            analytics,
            tracker,
            token,
        })
    }

    /// Stops the queue and flushes every write.
    pub(super) async fn close(self) {
        self.token.cancel();
        self.queue.close();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await;
        self.storage.close().await;
    }
}

/// POSTs `body` to `path` on the server at `base` (with `API_TOKEN` when
/// set); the answer's text, or the server's error message.
pub(super) async fn post_to_server(
    base: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<String, String> {
    crate::common::tls::install_crypto_provider();
    let base = base.trim_end_matches('/');
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body);
    if let Ok(token) = std::env::var("API_TOKEN") {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("cannot reach {base}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let message = v["error"]["message"].as_str().unwrap_or(&text).to_owned();
        return Err(format!("server answered {status}: {message}"));
    }
    Ok(text)
}
