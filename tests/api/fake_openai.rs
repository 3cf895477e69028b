//! A real HTTP server on loopback that speaks (and misbehaves like) the
//! OpenAI chat completions API. The model name picks the behaviour; the
//! model `scripted` does what the test sets with [`FakeOpenAi::set_mode`]
//! and needs no key (like a local server).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const KEY: &str = "sk-test-0123456789abcdef";

/// What `scripted` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// A completion after [`SCRIPTED_DELAY`].
    Ok = 0,
    /// 429 with `retry-after-ms` [`SCRIPTED_RETRY_AFTER`].
    RateLimited = 1,
    /// 500.
    Failing = 2,
    /// 429 `insufficient_quota`.
    Quota = 3,
    /// 502 with a proxy's HTML page.
    BadGateway = 4,
    /// 200 whose body breaks off after its first bytes.
    Truncated = 5,
}

/// How long a `scripted` completion takes, so requests overlap.
pub const SCRIPTED_DELAY: Duration = Duration::from_millis(30);
/// The `retry-after-ms` of a scripted 429: longer than the queue's own
/// first backoff (1 s +/- 20 %), so honouring it shows.
pub const SCRIPTED_RETRY_AFTER: Duration = Duration::from_millis(1500);

/// One request to `scripted`.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub prompt: String,
    pub status: u16,
}

/// The running server and what it saw.
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    pub last_body: Arc<Mutex<Option<Value>>>,
    mode: Arc<AtomicU8>,
    hits: Arc<Mutex<Vec<Hit>>>,
    max_in_flight: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenAi {
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// `scripted` requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// What `scripted` answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Every request to `scripted` so far, in arrival order.
    pub fn scripted_hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The most `scripted` requests seen at once since the last reset.
    pub fn take_max_in_flight(&self) -> usize {
        self.max_in_flight.swap(0, Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Seen {
    requests: Arc<AtomicUsize>,
    last_body: Arc<Mutex<Option<Value>>>,
    mode: Arc<AtomicU8>,
    hits: Arc<Mutex<Vec<Hit>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

pub async fn start() -> FakeOpenAi {
    let seen = Seen {
        requests: Arc::new(AtomicUsize::new(0)),
        last_body: Arc::new(Mutex::new(None)),
        mode: Arc::new(AtomicU8::new(Mode::Ok as u8)),
        hits: Arc::default(),
        in_flight: Arc::default(),
        max_in_flight: Arc::default(),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    FakeOpenAi {
        addr,
        requests: seen.requests,
        last_body: seen.last_body,
        mode: seen.mode,
        hits: seen.hits,
        max_in_flight: seen.max_in_flight,
        in_flight: seen.in_flight,
        task,
    }
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

async fn completions(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    *seen.last_body.lock().unwrap() = Some(body.clone());
    if body["model"] == "scripted" {
        return scripted(&seen, &body).await;
    }
    if let Some(model @ ("rewriter" | "rewriter-drops")) = body["model"].as_str() {
        return rewriter(model, &body);
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if auth != format!("Bearer {KEY}") {
        // Like some servers, echo what was sent: our errors must scrub it.
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": format!("Incorrect API key provided: {auth}"), "type": "invalid_request_error"}}),
        );
    }
    let model = body["model"].as_str().unwrap_or_default();
    match model {
        "rate-limited" => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}}),
            );
            r.headers_mut().insert("retry-after", "2".parse().unwrap());
            r
        }
        "quota" => error(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
        ),
        "server-error" => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"message": "The server had an error"}}),
        ),
        "bad-request" => error(
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": "Invalid 'temperature'"}}),
        ),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Json(json!({})).into_response()
        }
        "malformed" => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"choices\": [",
        )
            .into_response(),
        "no-choices" => Json(json!({"id": "x", "choices": []})).into_response(),
        _ => {
            let prompt = body["messages"][0]["content"].as_str().unwrap_or_default();
            let mut r = Json(json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("Answer to: {prompt}")}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
            }))
            .into_response();
            let h = r.headers_mut();
            h.insert("x-ratelimit-remaining-requests", "499".parse().unwrap());
            h.insert("x-ratelimit-remaining-tokens", "199000".parse().unwrap());
            h.insert("x-ratelimit-limit-requests", "500".parse().unwrap());
            r
        }
    }
}

/// A prompt rewriter (no key, like a local server): `rewriter` answers the
/// text between `<prompt>` tags without "Please " and with an output format,
/// in a code fence; `rewriter-drops` answers one without its variables.
fn rewriter(model: &str, body: &Value) -> Response {
    let asked = body["messages"][0]["content"].as_str().unwrap_or_default();
    let inner = asked
        .split_once("<prompt>\n")
        .and_then(|(_, rest)| rest.rsplit_once("\n</prompt>"))
        .map_or("", |(p, _)| p);
    let answer = if model == "rewriter" {
        format!(
            "```\n{}\nRespond in JSON.\n```",
            inner.replace("Please ", "")
        )
    } else {
        "Summarize the text.".to_owned()
    };
    Json(json!({
        "id": "chatcmpl-r",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 200, "completion_tokens": 40, "total_tokens": 240}
    }))
    .into_response()
}

/// Leaves the in-flight count when the request ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn scripted(seen: &Seen, body: &Value) -> Response {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&seen.in_flight);
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let prompt = body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mode = seen.mode.load(Ordering::SeqCst);
    let response = if mode == Mode::RateLimited as u8 {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"message": "Rate limit reached for requests", "code": "rate_limit_exceeded"}}),
        );
        r.headers_mut().insert(
            "retry-after-ms",
            SCRIPTED_RETRY_AFTER
                .as_millis()
                .to_string()
                .parse()
                .unwrap(),
        );
        r
    } else if mode == Mode::Failing as u8 {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"message": "The server had an error"}}),
        )
    } else if mode == Mode::BadGateway as u8 {
        (
            StatusCode::BAD_GATEWAY,
            [("content-type", "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response()
    } else if mode == Mode::Truncated as u8 {
        let chunks: Vec<Result<&'static str, std::io::Error>> = vec![
            Ok("{\"id\": \"chatcmpl-t\", \"choices\": ["),
            Err(std::io::Error::other("the upstream went away")),
        ];
        (
            StatusCode::OK,
            [("content-type", "application/json")],
            axum::body::Body::from_stream(futures_util::stream::iter(chunks)),
        )
            .into_response()
    } else if mode == Mode::Quota as u8 {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
        )
    } else {
        tokio::time::sleep(SCRIPTED_DELAY).await;
        Json(json!({
            "id": "chatcmpl-s",
            "object": "chat.completion",
            "model": "scripted",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("Answer to: {prompt}")}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
        }))
        .into_response()
    };
    seen.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        prompt,
        status: response.status().as_u16(),
    });
    response
}
