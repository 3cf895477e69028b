//! The OpenAI-compatible provider against a real HTTP server on loopback,
//! and the response cache in front of it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use promptgauge::metrics::Metrics;
use promptgauge::providers::{self, Client, Provider, ProviderError};
use promptgauge::storage::Storage;
use promptgauge::suite::ProviderSpec;
use serde_json::{Value, json};

use crate::fake_openai::{self, FakeOpenAi, KEY};

const KEY_ENV: &str = "PROMPTGAUGE_TEST_OPENAI_KEY";

fn spec(model: &str, server: &FakeOpenAi, extra: Value) -> ProviderSpec {
    let mut config =
        json!({"apiBaseUrl": server.base_url(), "apiKeyEnv": KEY_ENV, "temperature": 0});
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    ProviderSpec {
        id: format!("openai:{model}"),
        label: None,
        config: config.as_object().cloned().unwrap(),
        delay_ms: None,
    }
}

fn build(spec: &ProviderSpec, key: Option<&str>) -> Arc<dyn Provider> {
    let key = key.map(str::to_owned);
    providers::build_with_env(spec, &move |name| {
        (name == KEY_ENV).then(|| key.clone()).flatten()
    })
    .unwrap()
}

async fn call(
    model: &str,
    extra: Value,
) -> (Result<providers::Completion, ProviderError>, FakeOpenAi) {
    let server = fake_openai::start().await;
    let p = build(&spec(model, &server, extra), Some(KEY));
    (p.complete("What is the capital of France?").await, server)
}

#[tokio::test]
async fn a_completion_carries_output_usage_cost_and_rate_limit_headroom() {
    let (result, server) = call("gpt-4o-mini-2024-07-18", json!({"max_tokens": 50})).await;
    let c = result.unwrap();
    assert_eq!(c.output, "Answer to: What is the capital of France?");
    assert_eq!((c.usage.input, c.usage.output), (12, 3));
    let expected = (12.0 * 0.15 + 3.0 * 0.60) / 1e6;
    assert!((c.cost_usd - expected).abs() < 1e-15, "{}", c.cost_usd);
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    assert_eq!(c.rate_limit.remaining_requests, Some(499));
    assert_eq!(c.rate_limit.remaining_tokens, Some(199_000));
    assert!(!c.cached);
    let body = server.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(body["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["max_tokens"], 50);
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "What is the capital of France?"}])
    );
    assert!(body.get("apiBaseUrl").is_none() && body.get("apiKeyEnv").is_none());
}

#[tokio::test]
async fn each_failure_becomes_the_right_typed_error() {
    let (r, _s) = call("rate-limited", json!({})).await;
    let e = r.unwrap_err();
    assert!(
        matches!(e, ProviderError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(2)),
        "{e:?}"
    );
    assert!(e.is_retryable());

    let (r, _s) = call("quota", json!({})).await;
    let e = r.unwrap_err();
    assert!(matches!(e, ProviderError::QuotaExhausted { .. }), "{e:?}");
    assert!(!e.is_retryable(), "quota errors fail fast");

    let (r, _s) = call("server-error", json!({})).await;
    let e = r.unwrap_err();
    assert_eq!(
        e,
        ProviderError::Server {
            status: 500,
            message: "The server had an error".into()
        }
    );
    assert!(e.is_retryable());

    let (r, _s) = call("bad-request", json!({})).await;
    assert!(matches!(
        r.unwrap_err(),
        ProviderError::BadRequest { status: 400, .. }
    ));

    let (r, _s) = call("slow", json!({"timeoutMs": 200})).await;
    assert_eq!(
        r.unwrap_err(),
        ProviderError::Timeout {
            after: Duration::from_millis(200)
        }
    );

    for model in ["malformed", "no-choices"] {
        let (r, _s) = call(model, json!({})).await;
        assert!(
            matches!(r.unwrap_err(), ProviderError::InvalidResponse { .. }),
            "{model}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let spec = ProviderSpec {
        id: "openai:gpt-4o".into(),
        label: None,
        config: json!({"apiBaseUrl": format!("http://127.0.0.1:{port}/v1"), "apiKeyEnv": KEY_ENV})
            .as_object()
            .cloned()
            .unwrap(),
        delay_ms: None,
    };
    let e = build(&spec, Some(KEY)).complete("hi").await.unwrap_err();
    assert!(matches!(e, ProviderError::Transport { .. }), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_missing_key_fails_without_calling_the_server() {
    let server = fake_openai::start().await;
    let p = build(&spec("gpt-4o", &server, json!({})), None);
    let e = p.complete("hi").await.unwrap_err();
    assert_eq!(
        e,
        ProviderError::MissingApiKey {
            env: KEY_ENV.into()
        }
    );
    assert!(e.to_string().contains(KEY_ENV));
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn a_local_server_is_called_without_a_key_when_none_is_required() {
    let server = fake_openai::start().await;
    let p = build(
        &spec("scripted", &server, json!({"apiKeyRequired": false})),
        None,
    );
    let c = p.complete("hi").await.unwrap();
    assert_eq!(c.output, "Answer to: hi");
    assert_eq!(server.hits(), 1);
    let err = providers::build_with_env(
        &spec("scripted", &server, json!({"apiKeyRequired": "no"})),
        &|_| None,
    )
    .err()
    .unwrap();
    assert!(
        err.contains("apiKeyRequired must be true or false"),
        "{err}"
    );
}

#[tokio::test]
async fn a_key_in_the_config_is_refused() {
    let server = fake_openai::start().await;
    let err = providers::build_with_env(
        &spec("gpt-4o", &server, json!({"apiKey": "sk-inline"})),
        &|_| None,
    )
    .err()
    .unwrap();
    assert!(
        err.contains("apiKeyEnv") && !err.contains("sk-inline"),
        "{err}"
    );
}

/// A `MakeWriter` collecting everything logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_key_never_appears_in_errors_debug_output_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = fake_openai::start().await;
    // A wrong key: the server echoes it back in its 401 message.
    let wrong = "sk-wrong-key-that-must-not-leak-42";
    let p = build(&spec("gpt-4o", &server, json!({})), Some(wrong));
    let e = p.complete("hello").await.unwrap_err();
    assert!(
        matches!(e, ProviderError::BadRequest { status: 401, .. }),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?}").contains(wrong), "{e}");
    assert!(format!("{e}").contains("[redacted]"));

    let good = build(&spec("gpt-4o", &server, json!({})), Some(KEY));
    good.complete("hello").await.unwrap();
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!logged.is_empty(), "the HTTP stack logged at trace level");
    assert!(
        !logged.contains(wrong) && !logged.contains(KEY),
        "a key was logged"
    );
}

fn cache_client() -> (Client, Metrics, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new().unwrap();
    let storage = Storage::open(&dir.path().join("cache.db"), metrics.storage.clone()).unwrap();
    (
        Client::new(storage, metrics.providers.clone()),
        metrics,
        dir,
    )
}

#[tokio::test]
async fn an_identical_call_is_served_from_the_cache() {
    let server = fake_openai::start().await;
    let (client, metrics, _dir) = cache_client();
    let p = build(&spec("gpt-4o", &server, json!({})), Some(KEY));

    let first = client
        .complete(p.as_ref(), "Capital of Peru?", true)
        .await
        .unwrap();
    let second = client
        .complete(p.as_ref(), "Capital of Peru?", true)
        .await
        .unwrap();

    assert_eq!(server.hits(), 1);
    assert!(!first.cached && second.cached);
    assert_eq!(second.output, first.output);
    assert_eq!(second.usage, first.usage);
    assert_eq!(
        (second.cost_usd, second.latency),
        (0.0, Duration::ZERO),
        "a hit costs nothing"
    );
    let lookups = |r: &str| {
        metrics
            .providers
            .cache_lookups
            .with_label_values(&[r])
            .get()
    };
    assert_eq!((lookups("hit"), lookups("miss")), (1, 1));
    assert_eq!(
        metrics
            .providers
            .requests
            .with_label_values(&["openai", "gpt-4o", "success"])
            .get(),
        1
    );

    // A different prompt or different parameters are different calls.
    client
        .complete(p.as_ref(), "Capital of Chile?", true)
        .await
        .unwrap();
    let hotter = build(
        &spec("gpt-4o", &server, json!({"temperature": 1})),
        Some(KEY),
    );
    client
        .complete(hotter.as_ref(), "Capital of Peru?", true)
        .await
        .unwrap();
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn failures_are_never_cached_and_disabling_the_cache_bypasses_it() {
    let server = fake_openai::start().await;
    let (client, metrics, _dir) = cache_client();
    let failing = build(&spec("server-error", &server, json!({})), Some(KEY));
    for _ in 0..2 {
        assert!(client.complete(failing.as_ref(), "x", true).await.is_err());
    }
    assert_eq!(
        server.hits(),
        2,
        "the failure was not served from the cache"
    );
    assert_eq!(
        metrics
            .providers
            .requests
            .with_label_values(&["openai", "server-error", "error"])
            .get(),
        2
    );

    let ok = build(&spec("gpt-4o", &server, json!({})), Some(KEY));
    client.complete(ok.as_ref(), "y", true).await.unwrap();
    let bypassed = client.complete(ok.as_ref(), "y", false).await.unwrap();
    assert!(!bypassed.cached);
    assert_eq!(server.hits(), 4);
}
