use crate::helpers::{spawn_app, spawn_app_with};
use promptgauge::config::Config;

const TOKEN: &str = "s3cret-token-for-tests-0123456789";

async fn app_with_token() -> crate::helpers::TestApp {
    let config = Config::from_lookup(
        |name| Ok((name == "API_TOKEN").then(|| TOKEN.to_owned())),
        &Default::default(),
    )
    .unwrap();
    spawn_app_with(|c| c.api_token = config.api_token).await
}

#[tokio::test]
async fn without_api_token_everything_is_open() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/performance/health").await.status(), 200);
    assert_eq!(app.get("/api/unknown").await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn with_api_token_metrics_and_health_stay_open() {
    let app = app_with_token().await;
    assert_eq!(app.get("/metrics").await.status(), 200);
    assert_eq!(app.get("/api/performance/health").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn with_api_token_other_paths_need_the_bearer_token() {
    let app = app_with_token().await;

    let missing = app.get("/api/executions").await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );

    let wrong = app
        .get_with_token("/api/executions", "s3cret-token-for-tests-0123456788")
        .await;
    assert_eq!(wrong.status(), 401);
    let prefix = app.get_with_token("/api/executions", "s3cret").await;
    assert_eq!(prefix.status(), 401);
    let basic = app
        .client
        .get(app.url("/api/executions"))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);

    // With the token the request reaches the handler.
    let right = app.get_with_token("/api/executions", TOKEN).await;
    assert_eq!(right.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn rejected_requests_are_counted_in_metrics() {
    let app = app_with_token().await;
    app.get("/api/executions").await;
    let text = app.metrics_text().await;
    assert_eq!(
        crate::helpers::sample(
            &text,
            r#"promptgauge_http_requests_total{method="GET",route="/api/executions",status="401"}"#
        ),
        Some(1.0)
    );
    app.stop().await;
}
