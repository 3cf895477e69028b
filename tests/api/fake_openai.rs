//! A real HTTP server on loopback that speaks (and misbehaves like) the
//! OpenAI chat completions API. The model name picks the behaviour.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const KEY: &str = "sk-test-0123456789abcdef";

/// The running server and what it saw.
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    pub last_body: Arc<std::sync::Mutex<Option<Value>>>,
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
}

#[derive(Clone)]
struct Seen {
    requests: Arc<AtomicUsize>,
    last_body: Arc<std::sync::Mutex<Option<Value>>>,
}

pub async fn start() -> FakeOpenAi {
    let seen = Seen {
        requests: Arc::new(AtomicUsize::new(0)),
        last_body: Arc::new(std::sync::Mutex::new(None)),
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
