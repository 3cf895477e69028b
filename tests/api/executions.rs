//! Suites and executions through the HTTP API: verdicts checked by hand,
//! exports in every format, and bad input refused with nothing stored.

use serde_json::{Value, json};

use crate::helpers::{example, open_db, spawn_app};

/// (passed, score) per test of examples/capitals.yaml, worked out by hand
/// from its comments: every test also gets the defaultTest word-count check.
const CAPITALS: [(bool, f64); 6] = [
    (true, 1.0),       // France: equals Paris, word-count
    (true, 1.0),       // Japan: icontains (weight 3), not-contains, word-count
    (false, 0.5),      // Australia: equals Canberra fails, word-count passes
    (true, 2.0 / 3.0), // threshold 0.5: Canberra fails, Sydney and word-count pass
    (true, 1.0),       // weight 0: the failing Kyoto check weighs nothing
    (true, 1.0),       // Atlantis: the canned refusal is a refusal
];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn the_capitals_example_gets_the_hand_checked_verdicts() {
    let app = spawn_app().await;
    let source = example("capitals");
    let first = app
        .post_raw("/api/suites", "application/yaml", &source)
        .await;
    assert_eq!(first.status(), 201);
    let stored: Value = first.json().await.unwrap();
    let suite_id = stored["id"].as_i64().unwrap();
    assert_eq!(stored["name"], "Capital cities");
    assert_eq!(
        (stored["prompts"].as_i64(), stored["tests"].as_i64()),
        (Some(1), Some(6))
    );
    // The same document again is the same suite.
    let again = app
        .post_raw("/api/suites", "application/yaml", &source)
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], suite_id);
    let one = app.get_json(&format!("/api/suites/{suite_id}")).await;
    assert_eq!(one["source"], source.as_str());
    assert_eq!(app.get_json("/api/suites").await["total"], 1);

    let id = app.submit(json!({"suiteId": suite_id})).await;
    let done = app.wait_done(id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (
            &done["total"],
            &done["passed"],
            &done["failed"],
            &done["errors"]
        ),
        (&json!(6), &json!(5), &json!(1), &json!(0))
    );
    assert!(close(done["passRate"].as_f64().unwrap(), 5.0 / 6.0));
    assert!(
        done["costUsd"].as_f64().unwrap() > 0.0,
        "gpt-4o-mini pricing applies"
    );
    assert_eq!(done["groups"][0]["provider"], "geo-mock");
    // Finished tests are counted by provider and model too.
    let text = app.metrics_text().await;
    let runs = |status: &str| {
        crate::helpers::sample(
            &text,
            &format!(
                "promptgauge_test_runs_total{{model=\"gpt-4o-mini\",provider=\"mock\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(
        (
            runs("passed"),
            runs("failed"),
            runs("error"),
            runs("cancelled")
        ),
        (Some(5.0), Some(1.0), Some(0.0), Some(0.0)),
        "{text}"
    );

    let page = app
        .get_json(&format!("/api/executions/{id}/results?limit=100"))
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    for (i, (pass, score)) in CAPITALS.iter().enumerate() {
        let r = items
            .iter()
            .find(|r| r["testIdx"] == i)
            .unwrap_or_else(|| panic!("no result for test {i}"));
        assert_eq!(r["passed"], *pass, "test {i}: {r}");
        assert!(close(r["score"].as_f64().unwrap(), *score), "test {i}: {r}");
        assert_eq!(r["provider"], "mock:geo");
        assert_eq!(r["cached"], false);
    }
    let failed = &items.iter().find(|r| r["testIdx"] == 2).unwrap();
    assert_eq!(failed["failureReason"], 1);
    assert_eq!(failed["output"], "Sydney");
    assert_eq!(
        failed["gradingResult"]["componentResults"][1]["reason"],
        "Expected output \"Sydney\" to equal \"Canberra\""
    );

    let only_failed = app
        .get_json(&format!("/api/executions/{id}/results?filter=failed"))
        .await;
    assert_eq!(only_failed["total"], 1);
    let passed_page = app
        .get_json(&format!(
            "/api/executions/{id}/results?filter=passed&limit=2&offset=1"
        ))
        .await;
    assert_eq!(
        (
            passed_page["total"].as_i64(),
            passed_page["items"].as_array().unwrap().len()
        ),
        (Some(5), 2)
    );

    // A second run is served from the response cache, with the same verdicts.
    let cached = app.submit(json!({"suiteId": suite_id})).await;
    let cached_view = app.wait_done(cached).await;
    assert_eq!(
        (&cached_view["passed"], &cached_view["failed"]),
        (&json!(5), &json!(1))
    );
    let cached_items = app
        .get_json(&format!("/api/executions/{cached}/results"))
        .await;
    assert!(
        cached_items["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["cached"] == true)
    );
    app.stop().await;
}

#[tokio::test]
async fn weights_and_thresholds_decide_an_inline_suite() {
    let app = spawn_app().await;
    // echo returns the prompt "Say hi": the weight-3 check fails, the
    // weight-1 check passes, so the score is 1/4.
    let suite = r#"
prompts: ["Say hi"]
providers: [echo]
tests:
  - description: weighted, no threshold
    assert:
      - {type: contains, value: bye, weight: 3}
      - {type: contains, value: hi}
  - description: the same above a 0.2 threshold
    threshold: 0.2
    assert:
      - {type: contains, value: bye, weight: 3}
      - {type: contains, value: hi}
  - description: below a 0.3 threshold
    threshold: 0.3
    assert:
      - {type: contains, value: bye, weight: 3}
      - {type: contains, value: hi}
"#;
    let id = app.submit(json!({"suite": suite, "cache": false})).await;
    let done = app.wait_done(id).await;
    assert_eq!(
        (&done["passed"], &done["failed"]),
        (&json!(1), &json!(2)),
        "{done}"
    );
    let items = app.get_json(&format!("/api/executions/{id}/results")).await;
    let by_test = |i: i64| {
        items["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["testIdx"] == i)
            .unwrap()
            .clone()
    };
    for (i, pass) in [(0, false), (1, true), (2, false)] {
        let r = by_test(i);
        assert_eq!(r["passed"], pass, "{r}");
        assert!(close(r["score"].as_f64().unwrap(), 0.25), "{r}");
    }
    assert_eq!(
        by_test(1)["gradingResult"]["reason"],
        "Aggregate score 0.25 ≥ 0.2 threshold"
    );
    app.stop().await;
}

#[tokio::test]
async fn results_export_as_promptfoo_jsonl_and_csv() {
    let app = spawn_app().await;
    let suite_id = app.store_example("capitals").await;
    let id = app.submit(json!({"suiteId": suite_id})).await;
    app.wait_done(id).await;

    let res = app
        .get(&format!("/api/executions/{id}/results?format=promptfoo"))
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&format!("execution-{id}.json"))
    );
    let file: Value = res.json().await.unwrap();
    let results = file["results"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert_eq!(file["results"]["stats"]["successes"], 5);
    assert_eq!(file["results"]["stats"]["failures"], 1);
    let r = results.iter().find(|r| r["testIdx"] == 2).unwrap();
    assert_eq!(r["success"], false);
    assert!(close(r["score"].as_f64().unwrap(), 0.5));
    assert_eq!(r["failureReason"], 1);
    assert_eq!(r["response"]["output"], "Sydney");
    assert_eq!(r["vars"]["country"], "Australia");
    assert_eq!(r["provider"]["id"], "mock:geo");
    assert!(r["latencyMs"].as_i64().is_some());
    assert!(r["cost"].as_f64().is_some());
    let components = r["gradingResult"]["componentResults"].as_array().unwrap();
    assert_eq!(components.len(), 2);
    assert_eq!(components[0]["assertion"]["type"], "word-count");

    let jsonl = app
        .get(&format!("/api/executions/{id}/results?format=jsonl"))
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines.iter().filter(|l| l["success"] == true).count(), 5);

    let csv = app
        .get(&format!("/api/executions/{id}/results?format=csv"))
        .await
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 7, "{csv}");
    assert!(
        rows[0].starts_with(
            "id,prompt_idx,test_idx,provider,model,description,vars,output,passed,score"
        )
    );
    // The description with a comma is quoted, the vars' quotes doubled.
    assert!(
        csv.contains(r#""Japan, weighted","{""country"":""Japan""}",Tokyo,true,1,"#),
        "{csv}"
    );
    app.stop().await;
}

/// What the database holds, to prove bad input changed nothing.
fn row_counts(app: &crate::helpers::TestApp) -> [i64; 5] {
    let db = open_db(&app.db_path);
    ["suites", "test_cases", "executions", "jobs", "test_results"].map(|t| {
        db.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    })
}

async fn refused(res: reqwest::Response, status: u16) -> Value {
    let got = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"].clone()
}

fn locations(error: &Value) -> Vec<String> {
    error["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p["location"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_execution_requests_list_every_problem_and_store_nothing() {
    let app = spawn_app().await;
    let suite_id = app.store_example("smoke").await;
    let done = app.submit(json!({"suiteId": suite_id})).await;
    app.wait_done(done).await;
    let before = row_counts(&app);

    let e = refused(
        app.post_json("/api/executions", &json!({"suiteId": 999}))
            .await,
        404,
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("suite 999"), "{e}");

    let e = refused(
        app.post_json(
            "/api/executions",
            &json!({"suiteId": suite_id, "maxConcurrency": -3, "priority": "urgent", "cache": "yes", "colour": 1}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        locations(&e),
        ["colour", "maxConcurrency", "priority", "cache"],
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("-3") && text.contains("urgent") && text.contains("high, normal, low"),
        "{e}"
    );

    for (body, location) in [
        (json!({"suiteId": "one"}), "suiteId"),
        (json!({"suiteId": 0}), "suiteId"),
        (json!({}), "suite"),
        (
            json!({"suiteId": suite_id, "suite": "prompts: [a]"}),
            "suite",
        ),
        (json!({"suite": 42}), "suite"),
        (json!({"suiteId": suite_id, "providers": []}), "providers"),
        (
            json!({"suiteId": suite_id, "maxConcurrency": 1.5}),
            "maxConcurrency",
        ),
        (
            json!({"suiteId": suite_id, "maxConcurrency": 1_000_000}),
            "maxConcurrency",
        ),
    ] {
        let e = refused(app.post_json("/api/executions", &body).await, 422).await;
        assert_eq!(locations(&e), [location], "{body}: {e}");
    }

    let e = refused(
        app.post_json(
            "/api/executions",
            &json!({"suiteId": suite_id, "providers": ["openai:gpt-4o"]}),
        )
        .await,
        422,
    )
    .await;
    assert!(e.to_string().contains("openai:gpt-4o"), "{e}");

    // Malformed and wrongly typed bodies.
    refused(
        app.post_raw("/api/executions", "application/json", "{\"suiteId\": ")
            .await,
        400,
    )
    .await;
    refused(
        app.post_raw("/api/executions", "application/json", "[1, 2]")
            .await,
        400,
    )
    .await;
    refused(
        app.post_raw("/api/executions", "text/plain", "suiteId=1")
            .await,
        415,
    )
    .await;

    // An inline suite that cannot run: every problem, each located.
    let bad_suite = "prompts: []\nproviders: [nope:x]\ntests:\n  - assert: [{type: bogus}, {type: starts-with}]\n";
    let e = refused(
        app.post_json("/api/executions", &json!({"suite": bad_suite}))
            .await,
        422,
    )
    .await;
    let at = locations(&e);
    for want in [
        "prompts",
        "providers[0]",
        "tests[0].assert[0]",
        "tests[0].assert[1]",
    ] {
        assert!(at.iter().any(|l| l == want), "{want} missing in {at:?}");
    }

    // Unknown ids and bad paths and queries.
    refused(app.get("/api/executions/424242").await, 404).await;
    refused(app.get("/api/executions/abc").await, 400).await;
    refused(app.get("/api/executions/-1/results").await, 400).await;
    refused(app.get("/api/suites/424242").await, 404).await;
    let e = refused(
        app.get(&format!(
            "/api/executions/{done}/results?format=xml&filter=maybe&limit=0&extra=1"
        ))
        .await,
        422,
    )
    .await;
    assert_eq!(locations(&e), ["format", "filter", "limit", "extra"], "{e}");
    refused(app.get("/api/executions?status=sleeping").await, 422).await;
    refused(
        app.post_json("/api/executions/424242/cancel", &json!({}))
            .await,
        404,
    )
    .await;
    let e = refused(
        app.post_json(&format!("/api/executions/{done}/cancel"), &json!({}))
            .await,
        409,
    )
    .await;
    assert!(
        e["message"].as_str().unwrap().contains("already completed"),
        "{e}"
    );

    assert_eq!(row_counts(&app), before, "bad input changed what is stored");
    app.stop().await;
}

#[tokio::test]
async fn bad_suites_are_refused_with_their_problems_and_hostile_text_is_kept_verbatim() {
    let app = spawn_app().await;
    let before = row_counts(&app);
    refused(
        app.post_raw("/api/suites", "application/yaml", "").await,
        400,
    )
    .await;
    refused(
        app.post_raw("/api/suites", "application/yaml", "prompts: [unclosed")
            .await,
        422,
    )
    .await;
    refused(
        app.post_raw("/api/suites", "application/json", "{\"prompts\": ")
            .await,
        422,
    )
    .await;
    refused(
        app.post_raw("/api/suites", "application/yaml", "- just\n- a list\n")
            .await,
        422,
    )
    .await;
    let huge = format!(
        "prompts: ['{}']\nproviders: [echo]\n",
        "x".repeat(promptgauge::http::SUITE_BODY_LIMIT)
    );
    refused(
        app.post_raw("/api/suites", "application/yaml", &huge).await,
        413,
    )
    .await;
    assert_eq!(row_counts(&app), before);

    // A var no test sets renders empty, as in promptfoo: stored, with a
    // warning that names it.
    let res = app
        .post_raw(
            "/api/suites",
            "application/yaml",
            "prompts: ['{{country}}']\nproviders: [echo]\ntests: [{vars: {city: x}}]\n",
        )
        .await;
    assert_eq!(res.status(), 201);
    let stored: Value = res.json().await.unwrap();
    assert!(
        stored["warnings"]
            .to_string()
            .contains("{{country}} (1, first tests[0])"),
        "{stored}"
    );

    // Hostile strings are data: stored and returned as they were.
    let hostile = "description: \"'); DROP TABLE suites; -- <script>alert(1)</script> \\u0000\"\nprompts: [\"{{x}} \\u202e\"]\nproviders: [echo]\ntests: [{vars: {x: \"\\\"; rm -rf /\"}}]\n";
    let res = app
        .post_raw("/api/suites", "application/yaml", hostile)
        .await;
    assert_eq!(res.status(), 201);
    let stored: Value = res.json().await.unwrap();
    assert_eq!(
        stored["description"],
        "'); DROP TABLE suites; -- <script>alert(1)</script> \u{0}"
    );
    let id = app.submit(json!({"suiteId": stored["id"]})).await;
    app.wait_done(id).await;
    let results = app.get_json(&format!("/api/executions/{id}/results")).await;
    assert_eq!(results["items"][0]["output"], "\"; rm -rf / \u{202e}");
    app.stop().await;
}

/// `n` tests on the shared simulated model, 40 ms each.
fn shared_provider_suite(name: &str, n: usize) -> Value {
    json!({
        "description": name,
        "prompts": [format!("{name} {{{{i}}}}")],
        "providers": [{"id": "mock:shared", "config": {"latencyMs": 40}}],
        "tests": (0..n).map(|i| json!({"vars": {"i": i}})).collect::<Vec<_>>(),
    })
}

async fn completed(app: &crate::helpers::TestApp, id: i64) -> i64 {
    app.get_json(&format!("/api/executions/{id}")).await["completed"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn executions_take_turns_on_a_provider_and_high_priority_goes_first() {
    // One test at a time on the shared provider makes the order visible.
    let app = crate::helpers::spawn_app_with(|c| c.max_concurrent_tests = 1).await;
    let long = app
        .submit(json!({"suite": shared_provider_suite("long", 40), "cache": false}))
        .await;
    app.wait_for(long, |e| e["completed"].as_i64() >= Some(2))
        .await;
    let before = completed(&app, long).await;
    let urgent = app
        .submit(json!({"suite": shared_provider_suite("urgent", 10), "cache": false, "priority": "high"}))
        .await;
    let later = app
        .submit(json!({"suite": shared_provider_suite("later", 6), "cache": false}))
        .await;

    // The high-priority execution goes ahead: the long one only finishes
    // what was already running (and at most one that started while the
    // request was being answered), instead of taking every other turn.
    assert_eq!(app.wait_done(urgent).await["passed"], 10);
    let after_urgent = completed(&app, long).await;
    assert!(after_urgent <= before + 3, "{before} -> {after_urgent}");
    assert!(completed(&app, later).await <= 1);

    // The two normal executions alternate: the short one that came later
    // does not wait for the long one to finish.
    app.wait_done(later).await;
    let long_now = app.get_json(&format!("/api/executions/{long}")).await;
    assert_eq!(long_now["status"], "running", "{long_now}");
    assert!(
        long_now["completed"].as_i64().unwrap() <= after_urgent + 8,
        "{long_now}"
    );
    assert_eq!(app.wait_done(long).await["passed"], 40);
    app.stop().await;
}

/// `evaluateOptions.timeoutMs` bounds each test's provider call: the slow
/// model's tests end as errors that say so, the fast one's pass, and the
/// execution ends without waiting for the slow calls.
#[tokio::test]
async fn the_per_test_timeout_turns_slow_calls_into_errors() {
    let app = crate::helpers::spawn_app().await;
    let suite = serde_json::json!({
        "prompts": ["Say {{x}}"],
        "providers": [
            {"id": "mock:fast", "config": {"latencyMs": 1, "output": "ok"}},
            {"id": "mock:slow", "config": {"latencyMs": 30000, "output": "ok"}}
        ],
        "evaluateOptions": {"timeoutMs": 200},
        "tests": [{"vars": {"x": "a"}}, {"vars": {"x": "b"}}, {"vars": {"x": "c"}}],
    });
    let id = app.submit(serde_json::json!({"suite": suite})).await;
    let done = app.wait_done(id).await;
    assert_eq!(
        (&done["passed"], &done["errors"]),
        (&serde_json::json!(3), &serde_json::json!(3)),
        "{done}"
    );
    let results = app
        .get_json(&format!("/api/executions/{id}/results?filter=error"))
        .await;
    for r in results["items"].as_array().unwrap() {
        assert_eq!(r["model"], "slow", "{r}");
        let error = r["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            error.contains("timed out") || error.contains("timeout"),
            "{r}"
        );
        assert!(error.contains("200"), "the limit is named: {r}");
    }
    // A bad value is refused with its location.
    let bad = serde_json::json!({"prompts": ["p"], "providers": ["echo"], "tests": [{}], "evaluateOptions": {"timeoutMs": 0}});
    let res = app
        .post_json("/api/executions", &serde_json::json!({"suite": bad}))
        .await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body.to_string().contains("evaluateOptions.timeoutMs"),
        "{body}"
    );
}

/// `requestsPerMinute` on a provider goes through the queue: after the
/// bucket's first minute of calls, the rest leave one per 60/rpm seconds,
/// and the execution says it waits on the rate limit meanwhile.
#[tokio::test]
async fn requests_per_minute_spaces_the_calls_after_the_first_minutes_worth() {
    let app = crate::helpers::spawn_app().await;
    // 120 per minute: 120 at once, then one every 500 ms.
    let tests: Vec<serde_json::Value> = (0..124)
        .map(|i| serde_json::json!({"vars": {"x": i}}))
        .collect();
    let suite = serde_json::json!({
        "prompts": ["Say {{x}}"],
        "providers": [{"id": "mock:rpm", "config": {"latencyMs": 0, "output": "ok", "requestsPerMinute": 120}}],
        "tests": tests,
    });
    let id = app
        .submit(serde_json::json!({"suite": suite, "cache": false}))
        .await;
    let waiting = app
        .wait_for(id, |e| {
            e["progress"]["waiting"]
                .as_str()
                .is_some_and(|w| w.contains("rate limit"))
                || e["status"] == "completed"
        })
        .await;
    assert!(
        waiting["progress"]["waiting"]
            .as_str()
            .is_some_and(|w| w.contains("rate limit")),
        "the run said it waits on the rate limit: {waiting}"
    );
    let done = app.wait_done(id).await;
    assert_eq!(done["completed"], 124, "{done}");
    let conn = crate::helpers::open_db(&app.db_path);
    let mut times: Vec<i64> = conn
        .prepare("SELECT created_at FROM test_results WHERE execution_id = ?1 ORDER BY created_at")
        .unwrap()
        .query_map([id], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    times.sort_unstable();
    // The last four calls waited for the bucket: at least 3 x 500 ms
    // between the 121st and the 124th (a lower bound the limiter sets;
    // a slow host only widens it).
    let spread = times[123] - times[120];
    assert!(spread >= 1_400, "calls 121-124 spread over {spread} ms");
}

/// A 1,000,000-job submission does not stall the service: its jobs are
/// persisted in bounded writer commands, so the health check (which writes)
/// keeps answering while they are stored, not after.
#[tokio::test]
async fn health_answers_while_a_million_jobs_are_stored() {
    let app = crate::helpers::spawn_app().await;
    let values: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let suite = serde_json::json!({
        "prompts": (0..100).map(|p| format!("Prompt {p}: {{{{a}}}}-{{{{b}}}}")).collect::<Vec<_>>(),
        "providers": [{"id": "mock:big", "config": {"latencyMs": 60000}}],
        "tests": [{"vars": {"a": values, "b": values}}],
    });
    let submit = {
        let client = app.client.clone();
        let url = app.url("/api/executions");
        let body = serde_json::json!({"suite": suite, "maxConcurrency": 1});
        tokio::spawn(async move {
            let res = client.post(url).json(&body).send().await.unwrap();
            (
                std::time::Instant::now(),
                res.status(),
                res.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    let mut answered = Vec::new();
    while !submit.is_finished() {
        let started = std::time::Instant::now();
        let res = app.get("/api/performance/health").await;
        assert!(
            res.status().is_success(),
            "health answered {}",
            res.status()
        );
        answered.push((std::time::Instant::now(), started.elapsed()));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (submitted_at, status, body) = submit.await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["total"], 1_000_000);
    let during = answered.iter().filter(|(at, _)| *at < submitted_at).count();
    // Health kept answering while the jobs were stored (an order, not a time).
    assert!(
        during >= 5,
        "only {during} health answers before the submission returned"
    );
    let mut took: Vec<f64> = answered
        .iter()
        .map(|(_, d)| d.as_secs_f64() * 1e3)
        .collect();
    took.sort_by(f64::total_cmp);
    eprintln!(
        "health during a 1M-job submission: {} answers, p50 {:.1} ms, p99 {:.1} ms",
        took.len(),
        took[took.len() / 2],
        took[((took.len() as f64 * 0.99) as usize).min(took.len() - 1)]
    );
    let id = body["id"].as_i64().unwrap();
    let res = app
        .post_json(
            &format!("/api/executions/{id}/cancel"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
}
