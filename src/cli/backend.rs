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
use crate::progress::ExecutionState;
use crate::progress::client::{ClientOptions, ProgressClient};
use crate::queue::{QueueConfig, QueueError, SubmitRequest, SuiteSource, TestQueue};
use crate::storage::{Priority, Storage};

/// What a run asks for.
pub struct Request {
    /// The suite document, its files inlined.
    pub doc: crate::suite::Document,
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
                // The operator's own suite, run on their machine.
                credentials: crate::providers::Credentials::Local,
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
        crate::common::tls::install_crypto_provider();
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
                let mut options = json!({});
                if let Some(j) = req.max_concurrency {
                    options["maxConcurrency"] = json!(j);
                }
                if req.no_cache {
                    options["cache"] = json!(false);
                }
                // The document is written as it is held, not rebuilt as a tree.
                let options = options.to_string();
                let body = match options.strip_prefix('{').filter(|o| o.len() > 1) {
                    Some(rest) => format!("{{\"suite\":{},{rest}", req.doc),
                    None => format!("{{\"suite\":{}}}", req.doc),
                };
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

    /// A page of the execution's results that `failed` or errored (`error`),
    /// in job order, as `GET .../results` answers it.
    pub async fn results(&self, id: i64, filter: &str, limit: i64) -> Result<Value, Failure> {
        match self {
            Self::Embedded { queue, .. } => {
                let filter = match filter {
                    "error" => crate::storage::ResultFilter::Error,
                    "passed" => crate::storage::ResultFilter::Passed,
                    _ => crate::storage::ResultFilter::Failed,
                };
                let page = queue
                    .results(id, Some(filter), limit, 0)
                    .await
                    .map_err(describe)?;
                Ok(serde_json::to_value(page).unwrap_or_default())
            }
            Self::Server { .. } => {
                let path = format!("/api/executions/{id}/results?filter={filter}&limit={limit}");
                self.http(reqwest::Method::GET, &path, None).await
            }
        }
    }

    /// Starts following an execution: on a server, its WebSocket progress
    /// stream (`/ws`); if that cannot be opened, polling.
    pub async fn follow(&self, id: i64) -> Follow {
        let Self::Server { base, token, .. } = self else {
            return Follow { stream: None };
        };
        let options = ClientOptions {
            token: token.clone(),
            ..ClientOptions::default()
        };
        let stream = match ProgressClient::connect(base, &options).await {
            Ok(mut c) => c.subscribe(&[id]).await.ok().map(|()| c),
            Err(e) => {
                eprintln!("note: no progress stream ({e}); polling instead");
                None
            }
        };
        Follow { stream }
    }

    /// The execution's next state, as a view for the display: in this
    /// process after it changed (or `interval`); on a server the next
    /// `execution.*` message of the stream, with a poll as a safety net
    /// when the stream says nothing for [`STREAM_SILENCE`].
    pub async fn next_update(
        &self,
        id: i64,
        follow: &mut Follow,
        interval: Duration,
    ) -> Result<Value, Failure> {
        match (self, follow.stream.as_mut()) {
            (Self::Embedded { queue, .. }, _) => {
                let _ = tokio::time::timeout(interval, queue.ended(id)).await;
                self.status(id).await
            }
            (Self::Server { .. }, Some(stream)) => {
                match tokio::time::timeout(STREAM_SILENCE, next_state(stream, id)).await {
                    Ok(Some(view)) => Ok(view),
                    Ok(None) => {
                        follow.stream = None;
                        self.status(id).await
                    }
                    Err(_) => self.status(id).await,
                }
            }
            (Self::Server { .. }, None) => {
                tokio::time::sleep(interval).await;
                self.status(id).await
            }
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
        body: Option<String>,
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
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
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

/// How long the stream may say nothing about a running execution before
/// the status is read over HTTP (the stream publishes at least once a
/// second while it runs).
const STREAM_SILENCE: Duration = Duration::from_secs(5);

/// How an execution is followed.
pub struct Follow {
    stream: Option<ProgressClient>,
}

/// The next `execution.*` message about `id` as a view; `None` once the
/// stream fails (the caller falls back to polling).
async fn next_state(stream: &mut ProgressClient, id: i64) -> Option<Value> {
    loop {
        let m = stream.next().await.ok()?;
        if m.execution != Some(id) {
            continue;
        }
        if let Some(state) = m.state() {
            return Some(view(&state));
        }
    }
}

/// A stream state in the shape of the execution view the display reads.
fn view(s: &ExecutionState) -> Value {
    let p = &s.progress;
    json!({
        "status": s.status,
        "total": p.total,
        "completed": p.completed,
        "passed": p.passed,
        "failed": p.failed,
        "errors": p.errors,
        "passRate": s.pass_rate,
        "progress": p,
    })
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
