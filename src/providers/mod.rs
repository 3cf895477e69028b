//! Providers: how a model is called. One completion per call, returning the
//! output, latency, token usage, cost and finish reason, or a typed error
//! the queue can act on (retry, back off, fail fast).
//!
//! - [`echo`]: returns the rendered prompt (promptfoo's `echo`).
//! - [`mock`]: a simulated model with configurable latency, errors and 429s.
//! - [`openai`]: any OpenAI-compatible chat completions endpoint.
//!
//! [`Client`] wraps every call with the response cache and the provider
//! metrics. API keys come from the environment only and never appear in
//! errors, logs or stored configs.

mod cache;
pub mod credentials;
pub mod echo;
pub mod mock;
pub mod openai;
pub mod pricing;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

pub use cache::{CACHE_TTL, Client, cache_key};
pub use credentials::Credentials;
pub use pricing::{Pricing, price_for};

use crate::suite::ProviderSpec;

/// Provider config keys read by the test queue (concurrency, rate limits,
/// retries); providers accept them and leave them out of requests.
pub const QUEUE_KEYS: &[&str] = &[
    "maxConcurrency",
    "requestsPerMinute",
    "tokensPerMinute",
    "maxRetries",
];

/// A boxed, sendable future (the trait must be object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A model to call.
pub trait Provider: Send + Sync {
    /// The provider id as configured (`openai:gpt-4o-mini`).
    fn id(&self) -> &str;
    /// Provider family, a bounded metrics label: `echo`, `mock`, `openai`.
    fn kind(&self) -> &'static str;
    /// The model name.
    fn model(&self) -> &str;
    /// Request parameters that change the answer (part of the cache key).
    fn params(&self) -> &Map<String, Value>;
    /// Where requests go, when that is configurable (part of the cache key).
    fn endpoint(&self) -> &str {
        ""
    }
    /// Whether answers may be served from the response cache.
    fn cacheable(&self) -> bool {
        true
    }
    /// One completion of `prompt`.
    fn complete<'a>(&'a self, prompt: &'a str) -> BoxFuture<'a, Result<Completion, ProviderError>>;
}

/// Tokens used by one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
}

/// Rate-limit headroom the provider reported (`x-ratelimit-*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// Requests left in the window.
    pub remaining_requests: Option<u64>,
    /// Tokens left in the window.
    pub remaining_tokens: Option<u64>,
    /// Requests allowed per window.
    pub limit_requests: Option<u64>,
}

/// A successful completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The model's output text.
    pub output: String,
    /// Time the call took (zero for cache hits).
    pub latency: Duration,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Cost in US dollars (zero for cache hits: nothing was spent).
    pub cost_usd: f64,
    /// `stop`, `length`, ...
    pub finish_reason: Option<String>,
    /// Served from the response cache.
    pub cached: bool,
    /// Rate-limit headroom, when reported.
    pub rate_limit: RateLimitInfo,
}

/// Why a call failed, by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// No answer in time. Retryable.
    #[error("provider timed out after {} ms", after.as_millis())]
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// 429: slow down. Retryable after `retry_after`.
    #[error("rate limited{}: {message}", retry_after.map(|d| format!(" (retry after {} ms)", d.as_millis())).unwrap_or_default())]
    RateLimited {
        /// When to try again, if the provider said.
        retry_after: Option<Duration>,
        /// The provider's message.
        message: String,
    },
    /// Out of credit or quota: retrying will not help.
    #[error("quota exhausted: {message}")]
    QuotaExhausted {
        /// The provider's message.
        message: String,
    },
    /// 5xx. Retryable.
    #[error("provider error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// 4xx other than 429: the request is wrong (or unauthorized). Not retryable.
    #[error("request rejected ({status}): {message}")]
    BadRequest {
        /// HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// Could not reach the provider. Retryable.
    #[error("transport error: {message}")]
    Transport {
        /// What failed.
        message: String,
    },
    /// The provider answered with something that is not a completion.
    #[error("invalid response: {message}")]
    InvalidResponse {
        /// What was wrong.
        message: String,
    },
    /// The provider kept failing and its circuit is open: the queue gave
    /// up on this call within its retry schedule. Not retryable.
    #[error("provider unavailable: {message}")]
    Unavailable {
        /// What failed, and how often.
        message: String,
    },
    /// The API key environment variable is not set. Not retryable.
    #[error("API key missing: set the environment variable {env}")]
    MissingApiKey {
        /// The variable to set.
        env: String,
    },
}

impl ProviderError {
    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Timeout { .. }
                | ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
                | ProviderError::Transport { .. }
        )
    }

    /// Bounded label for metrics (`status` of provider requests).
    pub fn status_label(&self) -> &'static str {
        match self {
            ProviderError::Timeout { .. } => "timeout",
            ProviderError::RateLimited { .. } => "rate_limited",
            _ => "error",
        }
    }
}

/// Looks up an environment variable (tests pass their own).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Builds the operator's own provider (`promptgauge run`,
/// `OPTIMIZE_PROVIDER`), reading keys from the process environment.
pub fn build(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, String> {
    build_with(spec, &|name| std::env::var(name).ok(), &Credentials::Local)
}

/// [`build`], reading environment variables through `env`.
pub fn build_with_env(
    spec: &ProviderSpec,
    env: EnvLookup<'_>,
) -> Result<Arc<dyn Provider>, String> {
    build_with(spec, env, &Credentials::Local)
}

/// Builds a provider under `credentials` (where the server's keys may go),
/// reading environment variables through `env`. A credential written into
/// the config is refused whatever the family.
pub fn build_with(
    spec: &ProviderSpec,
    env: EnvLookup<'_>,
    credentials: &Credentials,
) -> Result<Arc<dyn Provider>, String> {
    if let Some(refused) = credentials::inline_credentials(&spec.config)
        .into_iter()
        .next()
    {
        return Err(refused);
    }
    let family = spec.id.split(':').next().unwrap_or_default();
    Ok(match family {
        "echo" if spec.id == "echo" => Arc::new(echo::Echo::new(spec)?),
        "mock" => Arc::new(mock::Mock::new(spec)?),
        "openai" => Arc::new(openai::OpenAi::new(spec, env, credentials)?),
        _ => {
            return Err(format!(
                "unknown provider \"{}\"; supported: echo, mock:<name>, openai:<model>, openai:chat:<model>",
                spec.id
            ));
        }
    })
}

/// The problems of the operator's own spec, for suite validation.
pub fn check(spec: &ProviderSpec) -> Vec<String> {
    check_with(spec, &Credentials::Local)
}

/// The problems of a spec under `credentials`, for suite validation.
pub fn check_with(spec: &ProviderSpec, credentials: &Credentials) -> Vec<String> {
    let mut problems = credentials::inline_credentials(&spec.config);
    if problems.is_empty() {
        if let Err(e) = build_with(spec, &|name| std::env::var(name).ok(), credentials) {
            problems.push(e);
        }
    }
    problems
}

/// Rough token count for providers that do not report one: about four
/// characters per token, as OpenAI's guidance for English text.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Reads an optional number from a provider config.
fn config_f64(config: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(format!("config.{key} must be a number, got {other}")),
    }
}
