//! Prompt optimization through the running app: analysis and suggestions
//! (cached, stored, listed), the data-driven strategies on a stored
//! history, verification of candidates through the queue with the `mock`
//! provider, the LLM rewrite against a loopback OpenAI-compatible server,
//! and bad input.

use std::time::Duration;

use promptgauge::storage::{NewExecution, NewTestResult, now_ms};
use serde_json::{Value, json};

use crate::fake_openai;
use crate::helpers::{TestApp, sample, spawn_app, spawn_app_with};

const VERBOSE: &str = "I would like you to summarize the following customer review. \
Please note that it is important that you really keep the summary very short. \
Basically, you should try to mention the product name. \
Summarize the following customer review.\n\
Review: {{review}}";

async fn analyze(app: &TestApp, body: Value) -> (u16, Value) {
    let res = app.post_json("/api/optimization/analyze", &body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn by_strategy<'a>(v: &'a Value, strategy: &str) -> Vec<&'a Value> {
    v["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["strategy"] == strategy)
        .collect()
}

#[tokio::test]
async fn a_prompt_is_analyzed_with_suggestions_that_are_cached_stored_and_listed() {
    let app = spawn_app().await;
    let (status, v) = analyze(&app, json!({"prompt": VERBOSE, "model": "gpt-4o"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["cached"], false);
    let tokens = tiktoken_rs::o200k_base()
        .unwrap()
        .encode_ordinary(VERBOSE)
        .len();
    assert_eq!(v["analysis"]["tokens"]["count"], tokens);
    assert_eq!(v["analysis"]["tokens"]["method"], "exact");
    let kinds: Vec<&str> = v["analysis"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    // "keep the summary very short" bounds it.
    assert!(!kinds.contains(&"unbounded_output"));
    for k in ["no_output_format", "filler", "hedging", "injection"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let concise = by_strategy(&v, "conciseness");
    assert_eq!(concise.len(), 1, "{v}");
    let rewritten = concise[0]["rewrittenPrompt"].as_str().unwrap();
    assert!(rewritten.contains("{{review}}"));
    assert!(concise[0]["estimatedTokenDelta"].as_i64().unwrap() < -10);
    // gpt-4o's list price, $2.50 per million prompt tokens.
    let delta = concise[0]["estimatedTokenDelta"].as_f64().unwrap();
    let cost = concise[0]["estimatedCostDeltaPer1kRuns"].as_f64().unwrap();
    assert!((cost - delta * 2.5e-6 * 1000.0).abs() < 1e-12, "{cost}");
    assert_eq!(
        by_strategy(&v, "structure").len(),
        1,
        "the output format only"
    );
    for s in ["conciseness", "structure", "few_shot"] {
        assert!(v["timings"]["strategiesMs"][s].as_f64().is_some(), "{s}");
    }
    assert_eq!(
        v["skipped"]["model_selection"],
        "needs model and suiteId: compares the models' results on the suite"
    );

    let (_, again) = analyze(&app, json!({"prompt": VERBOSE, "model": "gpt-4o"})).await;
    assert_eq!(again["cached"], true);
    assert_eq!(again["suggestions"], v["suggestions"]);
    let m = app.metrics_text().await;
    assert_eq!(
        sample(
            &m,
            r#"promptgauge_optimization_requests_total{source="cache"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"promptgauge_cache_lookups_total{cache="optimize_suggestions",result="hit"}"#
        ),
        Some(1.0),
        "cache metrics"
    );

    // Stored after the answer: listed by prompt hash and strategy.
    let hash = v["promptHash"].as_str().unwrap();
    let path = format!("/api/optimization/suggestions?prompt_hash={hash}");
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = app.get_json(&path).await;
        if listed["total"].as_i64() == Some(v["suggestions"].as_array().unwrap().len() as i64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        listed["total"].as_i64(),
        Some(v["suggestions"].as_array().unwrap().len() as i64),
        "{listed}"
    );
    let only = app.get_json(&format!("{path}&strategy=conciseness")).await;
    assert_eq!(only["total"], 1);
    assert_eq!(only["items"][0]["rewrittenPrompt"], rewritten);
    assert_eq!(
        only["items"][0]["estimatedTokenDelta"],
        concise[0]["estimatedTokenDelta"]
    );
}

#[tokio::test]
async fn bad_requests_name_the_problem() {
    let app = spawn_app().await;
    let suite = app
        .post_json(
            "/api/suites",
            &json!({"prompts": ["Say {{x}}"], "providers": ["echo"], "tests": [{"vars": {"x": "a"}}]}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let long = "a ".repeat(60_000);
    let cases = [
        (json!({"prompt": ""}), 422, "prompt"),
        (json!({"prompt": "   \n"}), 422, "prompt"),
        (json!({}), 422, "prompt"),
        (json!({"prompt": 5}), 422, "prompt"),
        (json!({"prompt": long}), 422, "prompt"),
        (
            json!({"prompt": "x", "model": "<script>alert(1)</script>"}),
            422,
            "model",
        ),
        (json!({"prompt": "x", "model": 4}), 422, "model"),
        (json!({"prompt": "x", "suiteId": 999}), 404, ""),
        (json!({"prompt": "x", "suiteId": "1"}), 422, "suiteId"),
        (json!({"prompt": "x", "promptId": 0}), 422, "promptId"),
        (
            json!({"prompt": "x", "suiteId": suite, "promptId": 7}),
            404,
            "",
        ),
        (json!({"prompt": "x", "tolerance": 3}), 422, "tolerance"),
        (json!({"prompt": "x", "llm": "yes"}), 422, "llm"),
        (json!({"prompt": "x", "extra": 1}), 422, "extra"),
        (json!(["x"]), 400, ""),
    ];
    for (body, status, location) in cases {
        let (got, v) = analyze(&app, body.clone()).await;
        assert_eq!(got, status, "{body}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty());
        if !location.is_empty() {
            let named = v["error"]["problems"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["location"] == location));
            assert!(named, "{body}: {v}");
        }
    }
    let res = app
        .post_raw(
            "/api/optimization/analyze",
            "application/json",
            "{\"prompt\": ",
        )
        .await;
    assert_eq!(res.status(), 400);
    let huge = format!("{{\"prompt\": \"{}\"}}", "x".repeat(3 << 20));
    let res = app
        .post_raw("/api/optimization/analyze", "application/json", &huge)
        .await;
    assert_eq!(res.status(), 413);
    for q in ["prompt_hash=abc", "strategy=", "limit=0", "nope=1"] {
        let res = app.get(&format!("/api/optimization/suggestions?{q}")).await;
        assert_eq!(res.status(), 422, "{q}");
    }
    // Verification input.
    let verify = |body: Value| {
        let app = &app;
        async move {
            let res = app.post_json("/api/optimization/verify", &body).await;
            res.status().as_u16()
        }
    };
    assert_eq!(
        verify(json!({"suiteId": 999, "promptId": 0, "candidates": ["a"]})).await,
        404
    );
    assert_eq!(
        verify(json!({"suiteId": suite, "promptId": 3, "candidates": ["a"]})).await,
        404
    );
    assert_eq!(
        verify(json!({"suiteId": suite, "promptId": 0, "candidates": []})).await,
        422
    );
    assert_eq!(
        verify(json!({"suiteId": suite, "promptId": 0, "candidates": [" "]})).await,
        422
    );
    assert_eq!(
        verify(json!({"suiteId": suite, "promptId": 0, "candidates": [1]})).await,
        422
    );
    let many: Vec<String> = (0..11).map(|i| format!("p{i}")).collect();
    assert_eq!(
        verify(json!({"suiteId": suite, "promptId": 0, "candidates": many})).await,
        422
    );
    assert_eq!(
        verify(json!({"promptId": 0, "candidates": ["a"]})).await,
        422
    );
    // An ordinary execution is not a verification.
    let id = app.submit(json!({"suiteId": suite})).await;
    app.wait_done(id).await;
    assert_eq!(
        app.get(&format!("/api/optimization/verify/{id}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get("/api/optimization/verify/99999").await.status(),
        404
    );
    assert_eq!(app.get("/api/optimization/verify/x").await.status(), 400);
    // Nothing was stored by the refused requests.
    assert_eq!(
        app.get_json("/api/optimization/suggestions").await["total"],
        0
    );
}

/// Stores `n` results of `model` on `suite`, `passed` of them passing, each
/// costing `cost`; failing ones say `reason`.
#[allow(clippy::too_many_arguments)]
async fn store(
    app: &TestApp,
    suite: i64,
    model: &str,
    n: i64,
    passed: i64,
    cost: f64,
    reason: &str,
    repeat_output: bool,
) {
    let (id, first) = app
        .storage
        .create_execution(NewExecution {
            suite_id: Some(suite),
            config: "{}".into(),
            total: n,
            ..NewExecution::default()
        })
        .await
        .unwrap();
    let now = now_ms();
    let rows = (0..n)
        .map(|j| NewTestResult {
            id: Some(first + j),
            execution_id: id,
            prompt_idx: 0,
            test_idx: j % 10,
            provider: format!("openai:{model}"),
            model: model.to_owned(),
            passed: j < passed,
            score: if j < passed { 1.0 } else { 0.0 },
            failure_reason: if j < passed { 0 } else { 1 },
            execution_time_ms: 500,
            input_tokens: 100,
            output_tokens: 50,
            cost_usd: cost,
            cached: false,
            output: Some(if repeat_output {
                format!("answer {}", j % 10)
            } else {
                format!("answer {j}")
            }),
            error: (j >= passed).then(|| format!("{reason} (test {j})")),
            grading: None,
            created_at: now - 60_000 + j,
        })
        .collect();
    app.storage.insert_results(rows).await.unwrap();
}

async fn stored_suite(app: &TestApp, name: &str) -> i64 {
    let tests: Vec<Value> = (0..10)
        .map(|i| json!({"description": format!("{name} test {i}"), "vars": {"q": i}}))
        .collect();
    let res = app
        .post_json(
            "/api/suites",
            &json!({"description": name, "prompts": ["Answer {{q}}"], "providers": ["echo"], "tests": tests}),
        )
        .await;
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn data_driven_strategies_read_the_suites_history() {
    let app = spawn_app().await;
    // Suite A: gpt-4o-mini passes within 1 point of gpt-4o for a fifteenth
    // of the price; gpt-3.5-turbo is cheaper still but 20 points worse.
    let a = stored_suite(&app, "a").await;
    store(
        &app,
        a,
        "gpt-4o",
        200,
        180,
        0.006,
        "Expected output to contain \"refund\"",
        true,
    )
    .await;
    store(
        &app,
        a,
        "gpt-4o-mini",
        200,
        178,
        0.0004,
        "Expected output to contain \"refund\"",
        true,
    )
    .await;
    store(
        &app,
        a,
        "gpt-3.5-turbo",
        200,
        140,
        0.0002,
        "Output is not valid JSON",
        true,
    )
    .await;
    // Suite B: no cheaper model comes close, none is better.
    let b = stored_suite(&app, "b").await;
    store(&app, b, "gpt-4o", 200, 180, 0.006, "x", false).await;
    store(&app, b, "gpt-4o-mini", 200, 150, 0.0004, "x", false).await;

    let (status, v) = analyze(
        &app,
        json!({"prompt": "Answer {{q}} in one word.", "model": "gpt-4o", "suiteId": a, "promptId": 0}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let pick = by_strategy(&v, "model_selection");
    assert_eq!(pick.len(), 1, "{v}");
    assert!(
        pick[0]["title"]
            .as_str()
            .unwrap()
            .contains("openai:gpt-4o-mini"),
        "{}",
        pick[0]
    );
    let delta = pick[0]["estimatedCostDeltaPer1kRuns"].as_f64().unwrap();
    assert!((delta - (0.0004 - 0.006) * 1000.0).abs() < 1e-9, "{delta}");
    assert_eq!(pick[0]["evidence"]["candidate"]["results"], 200);

    // Failure focus: 102 of 600 results failed, 60 of them not JSON.
    let focus = by_strategy(&v, "failure_focus");
    assert_eq!(focus.len(), 1, "{v}");
    let why = focus[0]["rationale"].as_str().unwrap();
    assert!(why.contains("102 of 600"), "{why}");
    assert!(
        focus[0]["title"]
            .as_str()
            .unwrap()
            .contains("Output is not valid JSON (test N)"),
        "{}",
        focus[0]["title"]
    );
    assert!(why.contains("(a test"), "test labels: {why}");
    // Every (test, provider) call repeated 20 times with one answer: cache it.
    let caching = by_strategy(&v, "caching");
    assert_eq!(caching.len(), 1, "{v}");
    assert!(caching[0]["title"].as_str().unwrap().contains("cache"));
    assert_eq!(caching[0]["evidence"]["repeated"], 600 - 30);

    let (_, v) = analyze(
        &app,
        json!({"prompt": "Answer {{q}} in one word.", "model": "gpt-4o", "suiteId": b}),
    )
    .await;
    assert!(by_strategy(&v, "model_selection").is_empty(), "{v}");
    assert!(
        v["skipped"]["failure_focus"]
            .as_str()
            .unwrap()
            .contains("promptId")
    );
}

#[tokio::test]
async fn verify_ranks_the_candidate_that_passes_more_first_with_the_stored_numbers() {
    let app = spawn_app().await;
    let tests: Vec<Value> = (0..6)
        .map(
            |i| json!({"description": format!("case {i}"), "vars": {"q": format!("question {i}")}}),
        )
        .collect();
    let suite = json!({
        "description": "json answers",
        "prompts": ["Answer {{q}}"],
        "providers": [{"id": "mock:m", "config": {
            "latencyMs": 1,
            "responses": [{"match": "JSON", "output": "{\"answer\": 42}"}],
            "output": "forty-two"
        }}],
        "defaultTest": {"assert": [{"type": "is-json"}]},
        "tests": tests,
    });
    let res = app.post_json("/api/suites", &suite).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{body}");
    let suite_id = body["id"].as_i64().unwrap();
    let res = app
        .post_json(
            "/api/optimization/verify",
            &json!({"suiteId": suite_id, "promptId": 0, "candidates": [
                "Reply to {{q}}",
                "Answer {{q}} as JSON",
            ]}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let started: Value = res.json().await.unwrap();
    let id = started["executionId"].as_i64().unwrap();
    assert_eq!(started["total"], 18);
    app.wait_done(id).await;
    let v = app
        .get_json(&format!("/api/optimization/verify/{id}"))
        .await;
    assert_eq!(v["status"], "completed", "{v}");
    let ranking = v["ranking"].as_array().unwrap();
    assert_eq!(ranking.len(), 3);
    assert_eq!(ranking[0]["label"], "candidate 2", "{v}");
    assert_eq!(ranking[0]["rank"], 1);
    assert_eq!(v["winner"]["index"], 2);
    assert_eq!(v["winner"]["passedDelta"], 6);
    assert!((v["winner"]["passRateDelta"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!(
        v["winner"]["verdict"]
            .as_str()
            .unwrap()
            .starts_with("candidate 2 wins")
    );
    // The numbers are the stored results'.
    let results = app
        .get_json(&format!("/api/executions/{id}/results?limit=100"))
        .await;
    for r in ranking {
        let idx = r["index"].as_i64().unwrap();
        let rows: Vec<&Value> = results["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["promptIdx"] == idx)
            .collect();
        assert_eq!(r["results"], rows.len(), "{r}");
        let passed = rows
            .iter()
            .filter(|x| x["success"] == true || x["passed"] == true)
            .count();
        assert_eq!(r["passed"], passed, "{r}");
    }
}

#[tokio::test]
async fn the_configured_model_rewrites_the_prompt_keeping_its_variables() {
    let server = fake_openai::start().await;
    let base = server.base_url();
    let spec = |model: &str| promptgauge::suite::ProviderSpec {
        id: format!("openai:{model}"),
        label: None,
        config: json!({"apiBaseUrl": base, "apiKeyRequired": false})
            .as_object()
            .unwrap()
            .clone(),
        delay_ms: None,
    };
    let good = spec("rewriter");
    let app = spawn_app_with(move |c| c.optimize_provider = Some(good)).await;
    let prompt = "Please summarize {{text}} for {{audience}}.";
    let (status, v) = analyze(&app, json!({"prompt": prompt})).await;
    assert_eq!(status, 200, "{v}");
    let llm = by_strategy(&v, "llm_rewrite");
    assert_eq!(llm.len(), 1, "{v}");
    assert_eq!(
        llm[0]["rewrittenPrompt"],
        "summarize {{text}} for {{audience}}.\nRespond in JSON."
    );
    let asked = server.last_body.lock().unwrap().clone().unwrap();
    let meta = asked["messages"][0]["content"].as_str().unwrap();
    assert!(
        meta.contains(&format!("<prompt>\n{prompt}\n</prompt>")),
        "{meta}"
    );
    assert!(meta.contains("- injection:"), "findings in the meta-prompt");
    // Off when asked.
    let (_, v) = analyze(&app, json!({"prompt": prompt, "llm": false})).await;
    assert!(by_strategy(&v, "llm_rewrite").is_empty());
    assert_eq!(v["skipped"]["llm_rewrite"], "not asked for (llm: false)");

    // A rewrite that loses variables is not suggested.
    let bad = spec("rewriter-drops");
    let app = spawn_app_with(move |c| c.optimize_provider = Some(bad)).await;
    let (_, v) = analyze(&app, json!({"prompt": prompt})).await;
    assert!(by_strategy(&v, "llm_rewrite").is_empty());
    let why = v["skipped"]["llm_rewrite"].as_str().unwrap();
    assert!(why.contains("changed the variables"), "{why}");

    // Without a configured model the strategy says why it did not run.
    let app = spawn_app().await;
    let (_, v) = analyze(&app, json!({"prompt": prompt})).await;
    assert!(
        v["skipped"]["llm_rewrite"]
            .as_str()
            .unwrap()
            .contains("OPTIMIZE_PROVIDER")
    );
}

#[tokio::test]
async fn the_cli_analyzes_a_prompt_file_locally_and_on_a_server() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prompt.txt");
    std::fs::write(&file, VERBOSE).unwrap();
    let db = dir.path().join("local.db");
    let server = format!("http://{}", app.addr);
    let cli = |args: Vec<String>, env: Vec<(String, String)>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            crate::helpers::run_binary(&args, &env)
        })
    };
    let f = file.to_str().unwrap().to_owned();
    let local_env = vec![("DATABASE_PATH".to_owned(), db.to_str().unwrap().to_owned())];
    // Locally, for a person: the findings, the rewrite, the savings.
    let out = cli(
        vec![
            "optimize".into(),
            f.clone(),
            "--model".into(),
            "gpt-4o".into(),
        ],
        local_env.clone(),
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tokens (o200k_base, exact)"), "{text}");
    assert!(
        text.contains("[conciseness] Remove repetition and filler"),
        "{text}"
    );
    assert!(text.contains("| Review: {{review}}"), "{text}");
    // The suggestions were stored before the command ended.
    let stored: i64 = crate::helpers::open_db(&db)
        .query_row("SELECT count(*) FROM optimization_suggestions", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(stored >= 2, "{stored}");
    // On a server, as JSON: the server's answer.
    let out = cli(
        vec![
            "optimize".into(),
            f.clone(),
            "--json".into(),
            "--server".into(),
            server.clone(),
        ],
        vec![],
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["analysis"]["tokens"]["encoding"], "o200k_base");
    assert!(!by_strategy(&v, "conciseness").is_empty());
    // Bad input: exit 1 with the reason.
    let out = cli(
        vec![
            "optimize".into(),
            f,
            "--model".into(),
            "no-such-model".into(),
            "--server".into(),
            server,
        ],
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model"));
    let out = cli(
        vec![
            "optimize".into(),
            dir.path().join("missing.txt").to_str().unwrap().into(),
        ],
        local_env,
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
