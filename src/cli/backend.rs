//! Where `promptgauge run` runs a suite: in this process (its own queue and
//! database) or on a promptgauge server over HTTP. Both answer with the
//! same JSON views, so the display code does not care which.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::export::ExportFormat;
use crate::metrics::Metrics;
use crate::queue::{QueueConfig, QueueError, SubmitRequest, SuiteSource, TestQueue};
use crate::storage::{Priority, Storage};

/// What a run asks for.
pub struct Request {
    /// The suite document, its files inlined.
    pub doc: Value,
    /// `-j`.
    pub max_concurrency: Option<u32>,
    /// `--no-cache`.
    pub no_cache: bool,
}

/// A failure worth one line on stderr (exit code 1).
pub type Failure = String;

/// A place to run executions.
pub enum Backend {
    /// This process.
    Embedded {
        /// The queue.
        queue: TestQueue,
        /// Its storage (closed at the end).
        storage: Storage,
        /// Queue tasks.
        tracker: TaskTracker,
        /// Stops the queue.
        token: CancellationToken,
    },
    /// A server.
    Server {
        /// HTTP client.
        client: reqwest::Client,
        /// e.g. `http://127.0.0.1:3001`.
        base: String,
        /// `API_TOKEN`, if set.
        token: Option<String>,
    },
}

impl Backend {
    /// An in-process queue over `config`'s database.
    pub fn embedded(config: &Config, metrics: &Metrics) -> Result<Self, Failure> {
        let storage = Storage::open_with_busy_timeout(
            &config.database_path,
            config.db_busy_timeout,
            metrics.storage.clone(),
        )
        .map_err(|e| e.to_string())?;
        let (tracker, token) = (TaskTracker::new(), CancellationToken::new());
        let queue = TestQueue::start(
            storage.clone(),
            metrics,
            crate::events::EventBus::new(),
            QueueConfig {
                max_concurrency: config.max_concurrent_tests,
                cache_ttl: config.cache_ttl,
            },
            tracker.clone(),
            token.clone(),
        );
        Ok(Self::Embedded {
            queue,
            storage,
            tracker,
            token,
        })
    }

    /// A server at `base`.
    pub fn server(base: &str, token: Option<String>) -> Result<Self, Failure> {
        crate::providers::openai::install_crypto_provider();
        let base = base.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base).map_err(|e| format!("--server {base:?} is not a URL: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self::Server {
            client,
            base,
            token,
        })
    }

    /// Starts the execution; returns its id, total and the warnings.
    pub async fn submit(&self, req: Request) -> Result<Value, Failure> {
        match self {
            Self::Embedded { queue, .. } => {
                let submitted = queue
                    .submit(SubmitRequest {
                        suite: SuiteSource::Document(req.doc),
                        providers: None,
                        max_concurrency: req.max_concurrency,
                        priority: Priority::Normal,
                        use_cache: req.no_cache.then_some(false),
                    })
                    .await
                    .map_err(describe)?;
                Ok(serde_json::to_value(submitted).unwrap_or_default())
            }
            Self::Server { .. } => {
                let mut body = json!({"suite": req.doc});
                if let Some(j) = req.max_concurrency {
                    body["maxConcurrency"] = json!(j);
                }
                if req.no_cache {
                    body["cache"] = json!(false);
                }
                self.http(reqwest::Method::POST, "/api/executions", Some(body))
                    .await
            }
        }
    }

    /// The execution's view (status, totals, progress, groups once final).
    pub async fn status(&self, id: i64) -> Result<Value, Failure> {
        match self {
            Self::Embedded { queue, .. } => {
                let view = queue.execution(id).await.map_err(describe)?;
                Ok(serde_json::to_value(view).unwrap_or_default())
            }
            Self::Server { .. } => {
                self.http(reqwest::Method::GET, &format!("/api/executions/{id}"), None)
                    .await
            }
        }
    }

    /// Waits up to `interval` for the execution to change: in this process
    /// until it ends, on a server simply `interval` (it is polled).
    pub async fn wait(&self, id: i64, interval: Duration) {
        match self {
            Self::Embedded { queue, .. } => {
                let _ = tokio::time::timeout(interval, queue.ended(id)).await;
            }
            Self::Server { .. } => tokio::time::sleep(interval).await,
        }
    }

    /// Cancels the execution (on Ctrl-C).
    pub async fn cancel(&self, id: i64) {
        let _ = match self {
            Self::Embedded { queue, .. } => queue.cancel(id).await.map(|_| ()).map_err(describe),
            Self::Server { .. } => self
                .http(
                    reqwest::Method::POST,
                    &format!("/api/executions/{id}/cancel"),
                    None,
                )
                .await
                .map(|_| ()),
        };
    }

    /// Writes every result to `path` in `format`.
    pub async fn export(&self, id: i64, format: ExportFormat, path: &Path) -> Result<(), Failure> {
        let cannot = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        let mut file = tokio::fs::File::create(path).await.map_err(cannot)?;
        match self {
            Self::Embedded { queue, .. } => {
                let mut stream = queue.export(id, format).await.map_err(describe)?;
                while let Some(chunk) = stream.next().await {
                    file.write_all(&chunk.map_err(describe)?)
                        .await
                        .map_err(cannot)?;
                }
            }
            Self::Server {
                client,
                base,
                token,
            } => {
                let name = match format {
                    ExportFormat::Promptfoo => "promptfoo",
                    ExportFormat::Jsonl => "jsonl",
                    ExportFormat::Csv => "csv",
                    ExportFormat::Junit => "junit",
                };
                let mut req = client
                    .get(format!("{base}/api/executions/{id}/results?format={name}"))
                    .timeout(Duration::from_secs(3600));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach {base}: {e}"))?;
                if !resp.status().is_success() {
                    return Err(error_text(resp).await);
                }
                let mut stream = resp.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| format!("download failed: {e}"))?;
                    file.write_all(&chunk).await.map_err(cannot)?;
                }
            }
        }
        file.flush().await.map_err(cannot)
    }

    /// Stops the in-process queue and flushes its database.
    pub async fn shutdown(self) {
        if let Self::Embedded {
            queue,
            storage,
            tracker,
            token,
        } = self
        {
            token.cancel();
            queue.close();
            tracker.close();
            let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
            storage.close().await;
        }
    }

    async fn http(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let Self::Server {
            client,
            base,
            token,
        } = self
        else {
            unreachable!("only for servers")
        };
        let mut req = client.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach {base}: {e}"))?;
        if !resp.status().is_success() {
            return Err(error_text(resp).await);
        }
        resp.json()
            .await
            .map_err(|e| format!("unexpected answer from {base}: {e}"))
    }
}

/// The server's `{"error": {...}}` as lines.
async fn error_text(resp: reqwest::Response) -> Failure {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let error = &body["error"];
    match error["problems"].as_array() {
        Some(problems) if !problems.is_empty() => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| match p["location"].as_str().filter(|l| !l.is_empty()) {
                    Some(at) => format!("  {at}: {}", p["message"].as_str().unwrap_or_default()),
                    None => format!("  {}", p["message"].as_str().unwrap_or_default()),
                })
                .collect();
            format!("server refused the suite ({status}):\n{}", lines.join("\n"))
        }
        _ => format!(
            "server answered {status}: {}",
            error["message"].as_str().unwrap_or("no details")
        ),
    }
}

/// A queue error as the lines to print.
fn describe(e: QueueError) -> Failure {
    match e {
        QueueError::InvalidSuite(s) => {
            let lines: Vec<String> = s.problems.iter().map(|p| format!("  {p}")).collect();
            format!("invalid suite:\n{}", lines.join("\n"))
        }
        other => other.to_string(),
    }
}
