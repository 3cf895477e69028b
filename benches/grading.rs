//! Grading, prompt rendering and suite parsing: the per-job and per-suite
//! CPU the test queue spends besides waiting for providers.
//!
//! `cargo bench --bench grading`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use promptgauge::assertions::{Assertion, Output, grade, parse_assertion};
use promptgauge::providers;
use promptgauge::suite::{self, Format};
use serde_json::{Value, json};

fn prepared(specs: &[Value]) -> Vec<Assertion> {
    specs
        .iter()
        .map(|s| parse_assertion(s).unwrap().0)
        .collect()
}

const ANSWER: &str = r#"Sure. Here is the data you asked for: {"city": "Paris", "country": "France", "population": 2102650, "facts": ["capital", "Seine", "Louvre"]}. Paris is the capital of France and its largest city, on the Seine; it is known for the Louvre, the Eiffel Tower and its cafés. Let me know if you need anything else about the city or the country."#;

fn grading(c: &mut Criterion) {
    let example = prepared(&[
        json!({"type": "contains", "value": "Paris"}),
        json!({"type": "icontains", "value": "PARIS"}),
        json!({"type": "regex", "value": r"ans-\d{6}"}),
        json!({"type": "is-json"}),
        json!({"type": "equals", "value": "this will not match"}),
    ]);
    let short = r#"{"id": 0, "city": "Paris", "answer": "ans-000000"}"#;
    let schema = json!({"type": "object", "required": ["city", "population"], "properties": {"city": {"type": "string"}, "population": {"type": "integer"}}});
    let mixed = prepared(&[
        json!({"type": "contains-all", "value": ["Paris", "France", "Seine"]}),
        json!({"type": "icontains-any", "value": "louvre, orsay"}),
        json!({"type": "regex", "value": r"[Cc]apital\s+of\s+[Ff]rance"}),
        json!({"type": "contains-json", "value": schema}),
        json!({"type": "not-is-json"}),
        json!({"type": "starts-with", "value": "Sure"}),
        json!({"type": "levenshtein", "value": "Paris is the capital of France.", "threshold": 400}),
        json!({"type": "rouge-n", "value": "Paris is the capital and largest city of France, on the Seine.", "threshold": 0.3}),
        json!({"type": "bleu", "value": "Paris is the capital of France and its largest city.", "threshold": 0.1}),
        json!({"type": "word-count", "value": {"min": 20, "max": 200}}),
        json!({"type": "not-is-refusal"}),
        json!({"type": "latency", "threshold": 5000}),
    ]);
    let out = |text| Output {
        text,
        latency_ms: Some(820),
        cost: Some(0.0004),
        finish_reason: Some("stop"),
    };

    let mut g = c.benchmark_group("grading");
    g.throughput(Throughput::Elements(1));
    g.bench_function("promptfoo_example_5_assertions", |b| {
        b.iter(|| black_box(grade(&example, None, &out(short))))
    });
    g.bench_function("mixed_12_assertions_330_char_output", |b| {
        b.iter(|| black_box(grade(&mixed, Some(0.8), &out(ANSWER))))
    });
    g.finish();
}

fn suite_yaml(tests: usize) -> String {
    let mut s = String::from(
        "prompts:\n  - |\n    You are a travel assistant. Answer in {{style}}.\n    Question: what is the capital of {{country}}?\n    {% for f in facts %}- consider {{ f }}\n    {% endfor %}Reply as JSON with keys city and country.\nproviders: [echo, 'mock:fast']\ndefaultTest:\n  vars: {style: one sentence, facts: [history, geography]}\n  assert:\n    - {type: is-json}\ntests:\n",
    );
    for i in 0..tests {
        s.push_str(&format!(
            "  - vars: {{country: Country{i}}}\n    assert:\n      - {{type: icontains, value: \"{{{{country}}}}\"}}\n      - {{type: regex, value: \"city\\\\W+\"}}\n"
        ));
    }
    s
}

fn templates(c: &mut Criterion) {
    let source = suite_yaml(1);
    let loaded = suite::parse(&source, Format::Yaml, &providers::check).unwrap();
    let (s, test) = (&loaded.suite, &loaded.suite.tests[0]);
    let mut g = c.benchmark_group("templates");
    g.throughput(Throughput::Elements(1));
    g.bench_function("render_prompt_3_vars_and_a_loop", |b| {
        b.iter(|| black_box(s.render_prompt(0, test).unwrap()))
    });
    g.finish();

    let big = suite_yaml(1000);
    let mut g = c.benchmark_group("suite");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("parse_yaml_1000_tests_3_assertions_each", |b| {
        b.iter(|| black_box(suite::parse(&big, Format::Yaml, &providers::check).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, grading, templates);
criterion_main!(benches);
