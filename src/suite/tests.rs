//! Suite parsing on promptfoo-style configs, good and bad.

use serde_json::json;

use super::*;
use crate::assertions::{Output, grade};

/// Accepts the provider families promptgauge has; the real check lives in
/// `providers`.
fn check(spec: &ProviderSpec) -> Vec<String> {
    let known = ["echo", "mock", "openai"];
    let family = spec.id.split(':').next().unwrap_or_default();
    if known.contains(&family) {
        Vec::new()
    } else {
        vec![format!("unknown provider \"{}\"", spec.id)]
    }
}

fn load(source: &str) -> Loaded {
    parse(source, Format::detect(source), &check).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(source: &str) -> Vec<String> {
    parse(source, Format::detect(source), &check)
        .expect_err("should be refused")
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

const YAML: &str = r#"
description: Capitals
prompts:
  - "What is the capital of {{country}}? Answer in {{style}}."
  - id: short
    label: terse
    raw: "Capital of {{country}}:"
providers:
  - echo
  - id: mock:fast
    label: fast mock
    config: {latencyMs: 5}
  - openai:gpt-4o-mini:
      config: {temperature: 0}
defaultTest:
  vars:
    style: one word
  assert:
    - type: icontains
      value: "{{country}}"
  threshold: 0.5
  metadata: {suite: capitals}
tests:
  - description: France
    vars: {country: France}
    assert:
      - type: contains
        value: Paris
        weight: 2
  - vars: {country: Japan, style: a sentence}
    threshold: 1
    metadata: {region: asia}
evaluateOptions:
  maxConcurrency: 3
"#;

#[test]
fn a_promptfoo_yaml_config_parses_with_default_test_merged() {
    let Loaded { suite, warnings } = load(YAML);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(suite.description.as_deref(), Some("Capitals"));
    assert_eq!(suite.prompts.len(), 2);
    assert_eq!(
        suite.prompts[0].label, suite.prompts[0].raw,
        "label defaults to the template"
    );
    assert_eq!(suite.prompts[1].label, "terse");
    assert_eq!(suite.prompts[0].id.len(), 64);
    let ids: Vec<&str> = suite.providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["echo", "mock:fast", "openai:gpt-4o-mini"]);
    assert_eq!(suite.providers[1].name(), "fast mock");
    assert_eq!(suite.providers[2].config["temperature"], json!(0));
    assert_eq!(suite.max_concurrency, Some(3));
    assert_eq!(suite.job_count(), 2 * 3 * 2);

    let france = &suite.tests[0];
    assert_eq!(
        france.vars(),
        *json!({"style": "one word", "country": "France"})
            .as_object()
            .unwrap()
    );
    assert_eq!(
        france.assertions.len(),
        2,
        "defaultTest's assertion comes first"
    );
    assert_eq!(france.assertions[0].type_name(), "icontains");
    assert_eq!(france.threshold(), Some(0.5));
    assert_eq!(france.metadata()["suite"], json!("capitals"));
    let japan = &suite.tests[1];
    assert_eq!(
        japan.vars()["style"],
        json!("a sentence"),
        "the test's vars win"
    );
    assert_eq!(japan.threshold(), Some(1.0));
    assert_eq!(
        *japan.metadata(),
        *json!({"suite": "capitals", "region": "asia"})
            .as_object()
            .unwrap()
    );

    assert_eq!(
        suite.render_prompt(0, france).unwrap(),
        "What is the capital of France? Answer in one word."
    );
    // The templated assertion value was rendered with each test's vars.
    let graded = grade(
        &japan.assertions,
        japan.threshold(),
        &Output {
            text: "Tokyo, Japan",
            ..Output::default()
        },
    );
    assert!(graded.pass);
    let graded = grade(
        &france.assertions,
        france.threshold(),
        &Output {
            text: "Paris",
            ..Output::default()
        },
    );
    assert!(!graded.pass || graded.score >= 0.5);
    assert!(
        (graded.score - 2.0 / 3.0).abs() < 1e-12,
        "weights 1 and 2: {}",
        graded.score
    );
}

#[test]
fn the_same_config_in_json_parses_the_same() {
    let yaml = load(YAML).suite;
    let doc = crate::yaml::from_str(YAML).unwrap();
    let json = load(&doc.to_string()).suite;
    assert_eq!(yaml.prompts, json.prompts);
    assert_eq!(yaml.providers, json.providers);
    assert_eq!(yaml.tests.len(), json.tests.len());
    for (a, b) in yaml.tests.iter().zip(&json.tests) {
        assert_eq!(a.vars(), b.vars());
        assert_eq!(a.assert_specs(), b.assert_specs());
    }
}

#[test]
fn vars_of_every_json_type_reach_the_template() {
    let source = r#"{
      "prompts": ["{{s}} {{i}} {{f}} {{b}} {{n}}|{{obj.city}}|{{obj}}|{{nums}}|{% for t in tags %}[{{t}}]{% endfor %}"],
      "providers": ["echo"],
      "tests": [{"vars": {"s": "str", "i": 7, "f": 0.5, "b": false, "n": null,
                          "obj": {"city": "Oslo"}, "nums": [1, 2], "tags": [true, "x"]}}]
    }"#;
    let suite = load(source).suite;
    assert_eq!(
        suite.tests.len(),
        1,
        "lists of non-strings are passed whole"
    );
    let rendered = suite.render_prompt(0, &suite.tests[0]).unwrap();
    assert_eq!(
        rendered,
        r#"str 7 0.5 false |Oslo|[object Object]|1,2|[true][x]"#
    );
}

#[test]
fn lists_of_strings_expand_into_one_test_per_combination() {
    let source = r#"
prompts: ["{{a}}-{{b}}"]
providers: [echo]
tests:
  - vars: {a: [x, y], b: ["1", "2", "3"], n: [1, 2]}
  - vars: {a: z, b: "9"}
"#;
    let suite = load(source).suite;
    let rendered: Vec<String> = suite
        .tests
        .iter()
        .map(|t| suite.render_prompt(0, t).unwrap())
        .collect();
    assert_eq!(rendered, ["x-1", "x-2", "x-3", "y-1", "y-2", "y-3", "z-9"]);
    assert_eq!(suite.tests[6].source_idx, 1);
    assert_eq!(suite.tests[6].idx, 6);
}

#[test]
fn no_tests_means_one_run_per_prompt() {
    let suite = load("prompts: [hello]\nproviders: [echo]\n").suite;
    assert_eq!(suite.tests.len(), 1);
    assert_eq!(suite.job_count(), 1);
}

#[test]
fn every_problem_is_listed_with_its_location() {
    let source = r#"
prompts:
  - "Hello {{name}} from {{place}}"
providers:
  - echo
  - gemini:pro
tests:
  - vars: {name: Ada}
    assert:
      - type: regex
        value: "([unclosed"
      - type: llm-rubric
        value: is polite
  - vars: {name: Bob, place: Paris}
    threshold: high
    assert:
      - type: contains
      - {type: equals, value: x, weight: -1}
scenarios: []
"#;
    let found = problems(source);
    let expect = [
        "scenarios: `scenarios` is not supported",
        "providers[1]: unknown provider \"gemini:pro\"",
        "tests[0].assert[1]: unknown assertion type \"llm-rubric\"",
        "tests[1].threshold: must be a number, got a string",
        "tests[1].assert[0]: \"contains\" needs a non-empty string or number as `value`",
        "tests[1].assert[1]: `weight` must be 0 or more, got -1",
    ];
    for e in expect {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "missing {e:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    // What promptfoo runs anyway is a warning: a missing var renders
    // empty, a pattern JavaScript refuses fails its assertion.
    let source = source
        .replace("gemini:pro", "mock:x")
        .replace("scenarios: []", "");
    let source = source
        .replace("threshold: high", "threshold: 1")
        .replace("- type: contains\n", "- {type: contains, value: a}\n");
    let source = source.replace(
        "{type: equals, value: x, weight: -1}",
        "{type: equals, value: x}",
    );
    let source = source.replace(
        "- type: llm-rubric\n        value: is polite",
        "- {type: contains, value: Ada}",
    );
    let warnings: Vec<String> = load(&source)
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        warnings.iter().any(
            |w| w.starts_with("prompts[0]: uses vars some tests do not set")
                && w.contains("{{place}} (1, first tests[0])")
        ),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("tests[0].assert[0]: Invalid regular expression: /([unclosed/")),
        "{warnings:#?}"
    );
}

#[test]
fn structural_problems_are_reported_without_a_panic() {
    let cases = [
        ("", "a suite must be a mapping"),
        ("- just\n- a list\n", "a suite must be a mapping"),
        ("prompts: [\n", "not valid YAML"),
        ("{\"prompts\": ", "not valid JSON"),
        ("providers: [echo]\n", "prompts: missing"),
        ("prompts: []\nproviders: [echo]\n", "prompts: empty"),
        ("prompts: [hi]\n", "providers: missing"),
        (
            "prompts: [hi]\nproviders: 3\n",
            "providers: must be a string or a list",
        ),
        (
            "prompts: [file://p.txt]\nproviders: [echo]\n",
            "prompts[0]: \"file://p.txt\" is a file reference; the service reads no files",
        ),
        (
            "prompts: [hi]\nproviders: [echo]\ntests: file://t.csv\n",
            "tests: \"file://t.csv\" is a file reference",
        ),
        (
            "prompts: [hi]\nproviders: [echo]\ntests: [{vars: {a: file://../../etc/passwd}}]\n",
            "tests[0].vars.a: \"file://../../etc/passwd\" is a file reference",
        ),
        (
            "prompts: [hi]\nproviders: [echo]\ndefaultTest: {assert: [{type: is-json, value: file:///etc/shadow}]}\n",
            "defaultTest.assert[0].value: \"file:///etc/shadow\" is a file reference",
        ),
        (
            "prompts: [hi]\nproviders: [echo]\ntests: [3]\n",
            "tests[0]: must be an object",
        ),
        (
            "prompts: [hi]\nproviders: [echo]\ntests: [{vars: [1]}]\n",
            "tests[0].vars: must be a mapping",
        ),
        (
            "prompts: [\"{{ x }}{% endif %}\"]\nproviders: [echo]\n",
            "prompts[0]: template error on line 1",
        ),
        (
            "prompts: [hi]\nproviders: [echo]\nevaluateOptions: {maxConcurrency: 0}\n",
            "evaluateOptions.maxConcurrency",
        ),
        (
            "prompts: [hi]\nproviders: [echo]\ntests: [{vars: {a: 1}, providerOutput: x}]\n",
            "tests[0].providerOutput",
        ),
        (
            "prompts: [hi]\nproviders: [{id: echo, transform: x}]\n",
            "providers[0]: `transform`",
        ),
    ];
    for (source, expected) in cases {
        let found = problems(source);
        assert!(
            found.iter().any(|f| f.contains(expected)),
            "{source:?}: {found:?}"
        );
    }
}

#[test]
fn unknown_keys_are_warnings_naming_them() {
    let source = r#"
prompts: [hi]
providers: [{id: echo, delay: 100, prompts: [hi]}]
tags: {team: ml}
outputPath: out.json
tests:
  - vars: {}
    options: {provider: x}
    assert:
      - {type: equals, value: hi, rubricPrompt: nope}
evaluateOptions: {showProgressBar: false}
"#;
    let warnings: Vec<String> = load(source)
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        [
            "unsupported keys ignored: `tags`, `outputPath`",
            "providers[0]: unsupported keys ignored: `prompts`",
            "evaluateOptions: unsupported keys ignored: `showProgressBar`",
            "tests[0].options: unsupported keys ignored: `provider`",
            "tests[0].assert[0]: unsupported key `rubricPrompt` ignored",
        ]
    );
}

#[test]
fn limits_refuse_oversized_suites_clearly() {
    let huge = format!(
        "prompts: [\"{}\"]\nproviders: [echo]\n",
        "x".repeat(MAX_SOURCE_BYTES)
    );
    assert!(problems(&huge)[0].contains(&format!("over the limit of {MAX_SOURCE_BYTES}")));
    let long_prompt = format!(
        "prompts: [\"{}\"]\nproviders: [echo]\n",
        "y".repeat(MAX_PROMPT_BYTES + 1)
    );
    assert!(problems(&long_prompt)[0].contains("prompts[0]: prompt is 100001 bytes"));
    let many: Vec<String> = (0..=MAX_PROMPTS).map(|i| format!("p{i}")).collect();
    let many_prompts = format!("prompts: {:?}\nproviders: [echo]\n", many);
    assert!(problems(&many_prompts)[0].contains("101 prompts, over the limit of 100"));
    let letters: Vec<String> = (0..1001).map(|i| format!("v{i}")).collect();
    let explosive = format!(
        "prompts: [\"{{{{a}}}}{{{{b}}}}\"]\nproviders: [echo]\ntests: [{{vars: {{a: {:?}, b: {:?}}}}}]\n",
        letters, letters
    );
    assert!(
        problems(&explosive)
            .iter()
            .any(|p| p.contains(&format!("more than {MAX_TESTS} test cases")))
    );
}

#[test]
fn yaml_alias_bombs_are_refused() {
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    let found = problems(bomb);
    assert!(found[0].contains("not valid YAML"), "{found:?}");
}
