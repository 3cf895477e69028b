//! `openai:<model>` / `openai:chat:<model>`: the OpenAI-compatible chat
//! completions API (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio).
//!
//! Config: `apiBaseUrl` (else `OPENAI_BASE_URL`, else OpenAI's),
//! `apiKeyEnv` (the variable holding the key; default `OPENAI_API_KEY`;
//! promptfoo's `apiKeyEnvar` also works), `apiKeyRequired` (default true;
//! false for local servers such as Ollama or llama.cpp, which then get no
//! `Authorization` header when the variable is unset), `timeoutMs` (default 60000),
//! `pricing`; every other key (`temperature`, `max_tokens`, ...) is sent as
//! a request parameter. A key written into the config (`apiKey`) is refused:
//! keys live in the environment, are read once, sent only in the
//! `Authorization` header, and scrubbed from every error message.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use super::pricing::{Pricing, resolve};
use super::{
    BoxFuture, Completion, Credentials, EnvLookup, Provider, ProviderError, RateLimitInfo,
    TokenUsage, config_f64,
};
use crate::suite::ProviderSpec;

const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The host of [`DEFAULT_BASE_URL`], where a guarded key may always go.
const HOME_HOST: &str = "api.openai.com";
const DEFAULT_KEY_ENV: &str = "OPENAI_API_KEY";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response body read, so a broken server cannot exhaust memory.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Longest excerpt of an upstream's text kept in an error.
const EXCERPT_CHARS: usize = 300;
/// Config keys that configure us rather than the request.
const OWN_KEYS: &[&str] = &[
    "apiBaseUrl",
    "apiKeyEnv",
    "apiKeyEnvar",
    "apiKeyRequired",
    "timeoutMs",
    "pricing",
];

/// An API key. Never printed.
struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// An OpenAI-compatible chat model.
pub struct OpenAi {
    id: String,
    model: String,
    url: String,
    key_env: String,
    key: Option<ApiKey>,
    key_required: bool,
    timeout: Duration,
    params: Map<String, Value>,
    pricing: Option<Pricing>,
    http: reqwest::Client,
}

impl fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAi")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("key", &self.key)
            .finish()
    }
}

impl OpenAi {
    /// Builds it from `spec`, reading the key (and `OPENAI_BASE_URL`)
    /// through `env` now.
    pub fn new(
        spec: &ProviderSpec,
        env: EnvLookup<'_>,
        credentials: &Credentials,
    ) -> Result<Self, String> {
        let model = spec
            .id
            .strip_prefix("openai:chat:")
            .or_else(|| spec.id.strip_prefix("openai:"))
            .filter(|m| !m.is_empty() && !m.contains(':'))
            .ok_or_else(|| {
                format!(
                    "OpenAI providers are `openai:<model>` or `openai:chat:<model>`, got \"{}\"",
                    spec.id
                )
            })?
            .to_owned();
        let c = &spec.config;
        let string = |k: &str| match c.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("config.{k} must be a non-empty string")),
        };
        let operator_base = env("OPENAI_BASE_URL").filter(|b| !b.trim().is_empty());
        let base = match string("apiBaseUrl")? {
            Some(b) => b,
            None => operator_base
                .clone()
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
        };
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| format!("API base URL {base:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("API base URL {base:?} must be http or https"));
        }
        let key_env = match string("apiKeyEnv")? {
            Some(e) => e,
            None => string("apiKeyEnvar")?.unwrap_or_else(|| DEFAULT_KEY_ENV.to_owned()),
        };
        credentials.check_key_var(&key_env)?;
        let key = env(&key_env).filter(|k| !k.is_empty()).map(ApiKey);
        let key_required = match c.get("apiKeyRequired") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("config.apiKeyRequired must be true or false".to_owned()),
        };
        // The key would go with every call: only where the operator allows.
        if key_required || key.is_some() {
            credentials.check_host(&parsed, HOME_HOST, operator_base.as_deref(), &key_env)?;
        }
        let timeout = match config_f64(c, "timeoutMs")? {
            Some(ms) if ms > 0.0 && ms <= 3_600_000.0 => Duration::from_millis(ms as u64),
            Some(ms) => {
                return Err(format!(
                    "config.timeoutMs must be from 1 to 3600000, got {ms}"
                ));
            }
            None => DEFAULT_TIMEOUT,
        };
        let params: Map<String, Value> = c
            .iter()
            .filter(|(k, _)| {
                !OWN_KEYS.contains(&k.as_str()) && !super::QUEUE_KEYS.contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if params.contains_key("model") || params.contains_key("messages") {
            return Err(
                "config must not set `model` or `messages`; they come from the id and the prompt"
                    .to_owned(),
            );
        }
        crate::common::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("promptgauge/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry the key to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
        Ok(Self {
            id: spec.id.clone(),
            pricing: resolve(&model, c)?,
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
            model,
            key_env,
            key,
            key_required,
            timeout,
            params,
            http,
        })
    }

    async fn call(&self, prompt: &str) -> Result<Completion, ProviderError> {
        if self.key.is_none() && self.key_required {
            return Err(ProviderError::MissingApiKey {
                env: self.key_env.clone(),
            });
        }
        let mut body = json!({"model": self.model, "messages": messages(prompt)});
        if let Some(obj) = body.as_object_mut() {
            obj.extend(self.params.clone());
        }
        let mut request = self.http.post(&self.url);
        if let Some(key) = &self.key {
            let mut auth = HeaderValue::from_str(&format!("Bearer {}", key.0)).map_err(|_| {
                ProviderError::BadRequest {
                    status: 0,
                    message: format!("the key in {} is not a valid header value", self.key_env),
                }
            })?;
            auth.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        let started = Instant::now();
        let response = request
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let raw = read_capped(response).await.map_err(|e| match e {
            ReadError::TooLarge => ProviderError::InvalidResponse {
                message: format!("response larger than {MAX_BODY_BYTES} bytes"),
            },
            ReadError::Http(e) => self.transport_error(&e),
        })?;
        let latency = started.elapsed();
        if !status.is_success() {
            return Err(self.status_error(status, &headers, &raw));
        }
        let parsed: Value =
            serde_json::from_slice(&raw).map_err(|e| ProviderError::InvalidResponse {
                message: format!("body is not JSON: {e}"),
            })?;
        self.completion(&parsed, latency, rate_limit_info(&headers))
    }

    fn completion(
        &self,
        body: &Value,
        latency: Duration,
        rate_limit: RateLimitInfo,
    ) -> Result<Completion, ProviderError> {
        let choice = body.get("choices").and_then(|c| c.get(0)).ok_or_else(|| {
            ProviderError::InvalidResponse {
                message: "no `choices[0]` in the response".to_owned(),
            }
        })?;
        let message = choice.get("message");
        let output = match message.and_then(|m| m.get("content")) {
            Some(Value::String(s)) => s.clone(),
            _ => match message.and_then(|m| m.get("tool_calls")) {
                Some(calls) if !calls.is_null() => calls.to_string(),
                _ => {
                    return Err(ProviderError::InvalidResponse {
                        message: "`choices[0].message.content` is missing".to_owned(),
                    });
                }
            },
        };
        let usage = body.get("usage");
        let tokens = |k: &str| {
            usage
                .and_then(|u| u.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        let usage = TokenUsage {
            input: tokens("prompt_tokens"),
            output: tokens("completion_tokens"),
        };
        Ok(Completion {
            output,
            latency,
            cost_usd: self.pricing.map_or(0.0, |p| p.cost(usage)),
            usage,
            finish_reason: choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
            cached: false,
            rate_limit,
        })
    }

    fn status_error(&self, status: StatusCode, headers: &HeaderMap, raw: &[u8]) -> ProviderError {
        let body: Option<Value> = serde_json::from_slice(raw).ok();
        let error = body.as_ref().and_then(|b| b.get("error"));
        let field = |k: &str| {
            error
                .and_then(|e| e.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        // An upstream's body is someone else's text (an internal service's
        // page, when apiBaseUrl points at one): only a bounded, cleaned
        // excerpt is kept.
        let message = match field("message") {
            m if !m.is_empty() => self.scrub(&m),
            _ => self.scrub(&String::from_utf8_lossy(raw)),
        };
        let code = status.as_u16();
        let quota = [field("code"), field("type")]
            .iter()
            .any(|c| c == "insufficient_quota");
        match code {
            300..=399 => ProviderError::BadRequest {
                status: code,
                message: format!(
                    "the provider answered a redirect to {}; redirects are not followed (the key would go with it): set apiBaseUrl to the final URL",
                    self.scrub(
                        headers
                            .get(reqwest::header::LOCATION)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("(no location)")
                    )
                ),
            },
            429 if quota => ProviderError::QuotaExhausted { message },
            429 => ProviderError::RateLimited {
                retry_after: retry_after(headers),
                message,
            },
            500..=599 => ProviderError::Server {
                status: code,
                message,
            },
            _ => ProviderError::BadRequest {
                status: code,
                message,
            },
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            return ProviderError::Timeout {
                after: self.timeout,
            };
        }
        // reqwest's message names the URL, never the headers; scrub anyway.
        ProviderError::Transport {
            message: self.scrub(&format!("{e}")),
        }
    }

    /// Text that came from elsewhere, made safe to store and show: the key
    /// removed, control characters and runs of whitespace made one space,
    /// at most [`EXCERPT_CHARS`] characters.
    fn scrub(&self, text: &str) -> String {
        let text = match &self.key {
            Some(k) if !k.0.is_empty() => text.replace(&k.0, "[redacted]"),
            _ => text.to_owned(),
        };
        let mut out = String::with_capacity(text.len().min(EXCERPT_CHARS * 4));
        let mut chars = 0;
        for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
            if word.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
                chars += 1;
            }
            for c in word.chars() {
                if chars == EXCERPT_CHARS {
                    out.push('…');
                    return out;
                }
                out.push(c);
                chars += 1;
            }
        }
        out
    }
}

/// A prompt that is a JSON list of `{role, content}` is sent as the chat
/// messages (promptfoo's chat format); anything else is one user message.
fn messages(prompt: &str) -> Value {
    if prompt.trim_start().starts_with('[')
        && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(prompt)
        && !items.is_empty()
        && items
            .iter()
            .all(|m| m.get("role").is_some_and(Value::is_string))
    {
        return Value::Array(items);
    }
    json!([{"role": "user", "content": prompt}])
}

enum ReadError {
    TooLarge,
    Http(reqwest::Error),
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `retry-after-ms`, `retry-after` (seconds), else `x-ratelimit-reset-requests`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    if let Some(s) = get("retry-after").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(s.max(0.0)));
    }
    get("x-ratelimit-reset-requests").and_then(parse_reset)
}

/// OpenAI's reset format: `1s`, `250ms`, `6m0s`, `1h2m3.5s`.
fn parse_reset(v: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        total += match c {
            'h' => n * 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                n / 1000.0
            }
            'm' => n * 60.0,
            's' => n,
            _ => return None,
        };
    }
    (number.is_empty() && total > 0.0).then(|| Duration::from_secs_f64(total))
}

fn rate_limit_info(headers: &HeaderMap) -> RateLimitInfo {
    let num = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    };
    RateLimitInfo {
        remaining_requests: num("x-ratelimit-remaining-requests"),
        remaining_tokens: num("x-ratelimit-remaining-tokens"),
        limit_requests: num("x-ratelimit-limit-requests"),
    }
}

impl Provider for OpenAi {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    fn endpoint(&self) -> &str {
        &self.url
    }

    fn complete<'a>(&'a self, prompt: &'a str) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(self.call(prompt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations_parse_like_openai_writes_them() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(
            parse_reset("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_reset("soon"), None);
    }

    #[test]
    fn chat_format_prompts_become_messages() {
        let chat =
            r#"[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]"#;
        assert_eq!(messages(chat).as_array().unwrap().len(), 2);
        assert_eq!(messages("[not json")[0]["content"], "[not json");
        assert_eq!(messages("plain")[0]["role"], "user");
    }
}
