//! A suite posted to the API cannot make the server send its keys where
//! the operator did not allow, read variables that are not provider keys,
//! or store a credential written into it; keys never follow a redirect and
//! an upstream's error body comes back cut and cleaned.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use promptgauge::providers::{self, ProviderError};
use promptgauge::suite::ProviderSpec;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

fn suite(config: Value) -> Value {
    json!({"prompts": ["Hi"], "providers": [{"id": "openai:gpt-4o-mini", "config": config}],
           "tests": [{"assert": [{"type": "contains", "value": "x"}]}]})
}

/// Posts `config` as a suite and as an execution; both must be 422 with
/// `problem` in a problem's message, `leaked` nowhere in the answer, and
/// nothing stored.
async fn refused(app: &crate::helpers::TestApp, config: Value, problem: &str, leaked: &str) {
    for (path, body) in [
        ("/api/suites", suite(config.clone())),
        ("/api/executions", json!({"suite": suite(config.clone())})),
    ] {
        let res = app.post_json(path, &body).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 422, "{path} {config}: {text}");
        assert!(text.contains(problem), "{config}: {text}");
        assert!(leaked.is_empty() || !text.contains(leaked), "{text}");
    }
    for list in ["/api/suites", "/api/executions"] {
        assert_eq!(app.get_json(list).await["total"], 0, "{list}");
    }
}

#[tokio::test]
async fn a_posted_suite_cannot_send_the_servers_key_to_a_host_of_its_choosing() {
    let app = spawn_app().await;
    for base in [
        "https://attacker.example/v1",
        "https://api.openai.com.attacker.example/v1",
        "http://169.254.169.254/latest",
        "http://10.1.2.3:8080/v1",
    ] {
        refused(
            &app,
            json!({"apiBaseUrl": base}),
            "this server sends OPENAI_API_KEY only to api.openai.com, loopback and the hosts in PROVIDER_ALLOWED_HOSTS",
            "",
        )
        .await;
    }
    // Loopback and the family's own host are fine; a server that needs no
    // key may be anywhere (no key goes with the call).
    for ok in [
        json!({"apiBaseUrl": "http://127.0.0.1:9/v1"}),
        json!({"apiBaseUrl": "https://api.openai.com/v1"}),
        json!({"apiBaseUrl": "http://10.1.2.3:8080/v1", "apiKeyRequired": false}),
    ] {
        let res = app.post_json("/api/suites", &suite(ok.clone())).await;
        assert_eq!(res.status(), 201, "{ok}");
    }
    app.stop().await;

    // The operator allows a host.
    let app = spawn_app_with(|c| c.provider_guard.hosts = vec!["10.1.2.3:8080".into()]).await;
    let res = app
        .post_json(
            "/api/suites",
            &suite(json!({"apiBaseUrl": "http://10.1.2.3:8080/v1"})),
        )
        .await;
    assert_eq!(res.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn a_posted_suite_reads_keys_only_from_provider_key_variables() {
    let app = spawn_app().await;
    for var in ["API_TOKEN", "HOME", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY"] {
        for key in ["apiKeyEnv", "apiKeyEnvar"] {
            refused(
                &app,
                json!({key: var, "apiBaseUrl": "http://127.0.0.1:9/v1"}),
                "this server reads keys only from the providers' variables",
                "",
            )
            .await;
        }
    }
    let res = app
        .post_json(
            "/api/suites",
            &suite(
                json!({"apiKeyEnv": "ANTHROPIC_API_KEY", "apiBaseUrl": "http://127.0.0.1:9/v1"}),
            ),
        )
        .await;
    assert_eq!(res.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn every_spelling_of_a_key_in_a_suite_is_refused_and_never_stored() {
    let app = spawn_app().await;
    let secret = "sk-live-0123456789abcdef0123456789";
    for (config, path) in [
        (json!({"apiKey": secret}), "config.apiKey"),
        (json!({"api_key": secret}), "config.api_key"),
        (json!({"API_KEY": secret}), "config.API_KEY"),
        (
            json!({"headers": {"Authorization": format!("Bearer {secret}")}}),
            "config.headers.Authorization",
        ),
        (
            json!({"headers": {"x-api-key": secret}}),
            "config.headers.x-api-key",
        ),
        (
            json!({"extra_body": {"access_token": secret}}),
            "config.extra_body.access_token",
        ),
    ] {
        refused(&app, config, &format!("{path} is refused"), secret).await;
    }
    // Also on a test's own provider and on echo.
    let body = json!({"prompts": ["Hi"], "providers": ["echo"], "tests": [
        {"provider": {"id": "echo", "config": {"apiKey": secret}}, "assert": []}
    ]});
    let res = app.post_json("/api/suites", &body).await;
    let text = res.text().await.unwrap();
    assert!(
        text.contains("config.apiKey is refused") && !text.contains(secret),
        "{text}"
    );
    app.stop().await;
}

/// A fake that answers every call with a redirect to `to`, and one that
/// counts what reaches it.
async fn redirecting_pair() -> (String, Arc<AtomicUsize>) {
    let reached = Arc::new(AtomicUsize::new(0));
    let count = reached.clone();
    let target = Router::new().route(
        "/v1/chat/completions",
        post(move |_: HeaderMap| {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    let t = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let to = format!("http://{}/v1/chat/completions", t.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(t, target).await.unwrap() });
    let redirect = Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let to = to.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response() }
        }),
    );
    let r = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", r.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(r, redirect).await.unwrap() });
    (base, reached)
}

#[tokio::test]
async fn the_key_never_follows_a_redirect() {
    let (base, reached) = redirecting_pair().await;
    let spec = ProviderSpec {
        id: "openai:gpt-4o-mini".into(),
        label: None,
        config: json!({"apiBaseUrl": base, "apiKeyEnv": "TEST_KEY"})
            .as_object()
            .cloned()
            .unwrap(),
        delay_ms: None,
    };
    let p = providers::build_with_env(&spec, &|n| (n == "TEST_KEY").then(|| "sk-x".to_owned()))
        .unwrap();
    let err = p.complete("hi").await.unwrap_err();
    match &err {
        ProviderError::BadRequest {
            status: 307,
            message,
        } => {
            assert!(message.contains("redirects are not followed"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing reached the target"
    );
}

#[tokio::test]
async fn an_upstream_error_body_comes_back_cut_and_cleaned() {
    let page = format!(
        "<html>\n<body>\r\n\u{1b}[31m{}INTERNAL-ONLY: db password hunter2</body></html>",
        "padding ".repeat(100)
    );
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let page = page.clone();
            async move { (StatusCode::BAD_GATEWAY, page).into_response() }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let spec = ProviderSpec {
        id: "openai:gpt-4o-mini".into(),
        label: None,
        config: json!({"apiBaseUrl": base, "apiKeyRequired": false})
            .as_object()
            .cloned()
            .unwrap(),
        delay_ms: None,
    };
    let p = providers::build_with_env(&spec, &|_| None).unwrap();
    let err = p.complete("hi").await.unwrap_err().to_string();
    assert!(
        err.starts_with("provider error 502: <html> <body> [31mpadding"),
        "{err}"
    );
    assert!(err.ends_with('…'), "{err}");
    assert!(
        !err.contains("hunter2") && !err.contains('\n') && !err.contains('\u{1b}'),
        "{err}"
    );
    assert!(err.chars().count() < 360, "{}", err.chars().count());
}
