//! Suites: promptfoo-style configs (YAML or JSON) parsed into prompts,
//! providers and test cases ready to run.
//!
//! A config that cannot run is rejected with every problem listed, each
//! with its location (`tests[3].assert[1]`); keys we do not support are
//! reported as warnings, never silently dropped. Templates are compiled and
//! assertion values rendered and prepared here, so running a job is just
//! render-prompt, call, grade. This module knows nothing of providers: the
//! caller passes a check for provider specs.

mod cases;
mod document;
pub mod files;
mod grader;
mod parse;
mod provider;
mod report;
pub mod rows;
pub mod template;
pub mod vars;

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::assertions::Assertion;
use template::Templates;
use vars::StagedVars;

pub use document::{Document, Embedded, Envelope};
pub use parse::{document, labels, parse, parse_document, test_labels};

/// Largest suite document, in bytes: a 100,000-test suite with a few
/// assertions each is about 40 MB once inlined.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024 * 1024;
/// Most prompts in a suite.
pub const MAX_PROMPTS: usize = 100;
/// Most providers in a suite.
pub const MAX_PROVIDERS: usize = 50;
/// Most test cases, after array vars expanded into combinations.
pub const MAX_TESTS: usize = 1_000_000;
/// Most assertions per test, `defaultTest` ones included.
pub const MAX_ASSERTIONS: usize = 100;
/// Longest prompt template, in bytes.
pub const MAX_PROMPT_BYTES: usize = 100_000;
/// Most jobs (prompts x providers x tests) one suite may expand into.
pub const MAX_JOBS: usize = 1_000_000;

/// The document's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (a superset of JSON).
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// JSON if the document starts with `{`, else YAML.
    pub fn detect(source: &str) -> Self {
        if source.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Yaml
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

/// A problem (or warning) and where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Path in the document, e.g. `tests[2].assert[0]`; empty for the whole.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

/// A suite that cannot run, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteError {
    /// Each problem, in document order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid suite ({n} problem{}): ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SuiteError {}

/// A parsed suite and the warnings about what it ignored.
#[derive(Debug)]
pub struct Loaded {
    /// The suite, ready to run.
    pub suite: Suite,
    /// Unsupported keys and other things ignored.
    pub warnings: Vec<Problem>,
}

/// A runnable suite.
#[derive(Debug)]
pub struct Suite {
    /// `description`.
    pub description: Option<String>,
    /// Prompt templates.
    pub prompts: Vec<Prompt>,
    /// Providers to call.
    pub providers: Vec<ProviderSpec>,
    /// Test cases, `defaultTest` merged and array vars expanded.
    pub tests: Vec<TestCase>,
    /// Providers that tests name for themselves (`provider` on a test or
    /// on `defaultTest`), by [`TestCase::provider`].
    pub test_providers: Vec<ProviderSpec>,
    /// `evaluateOptions.maxConcurrency`.
    pub max_concurrency: Option<u32>,
    /// `evaluateOptions.cache` (`false` bypasses the response cache).
    pub use_cache: Option<bool>,
    /// `evaluateOptions.timeoutMs`: how long one test's provider call may
    /// take (with its retries) before it is an error.
    pub timeout_ms: Option<u64>,
    templates: Templates,
}

impl Suite {
    /// Renders prompt `prompt_idx` with a test's vars, its `prefix` and
    /// `suffix` around the template, as promptfoo does.
    pub fn render_prompt(&self, prompt_idx: usize, test: &TestCase) -> Result<String, String> {
        let staged = test.staged();
        let vars;
        let json_vars = match &staged.resolved {
            Some(resolved) => resolved,
            None => {
                vars = test.vars();
                &vars
            }
        };
        let text_vars = staged.rendered.as_ref().unwrap_or(json_vars);
        if test.prefix().is_none() && test.suffix().is_none() {
            return self.templates.render(prompt_idx, text_vars, json_vars);
        }
        let raw = format!(
            "{}{}{}",
            test.prefix().unwrap_or_default(),
            self.prompts[prompt_idx].raw,
            test.suffix().unwrap_or_default()
        );
        self.templates.render_raw(&raw, text_vars, json_vars)
    }

    /// prompts x providers x tests.
    pub fn job_count(&self) -> usize {
        self.prompts.len() * self.providers.len() * self.tests.len()
    }
}

/// One prompt template.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// sha256 of the raw template, hex.
    pub id: String,
    /// `label`, or the raw template when none is given (as promptfoo does).
    pub label: String,
    /// The template.
    pub raw: String,
}

/// A provider as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSpec {
    /// `echo`, `mock:<name>`, `openai:<model>`, ...
    pub id: String,
    /// Display label; defaults to the id.
    pub label: Option<String>,
    /// Provider settings.
    pub config: Map<String, Value>,
    /// `delay`: milliseconds to wait after each call that was not cached.
    pub delay_ms: Option<u64>,
}

impl ProviderSpec {
    /// The label, or the id.
    pub fn name(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.id)
    }
}

/// One test case, after `defaultTest` merging and var expansion. Small:
/// a suite holds up to a million of them, so what most tests lack lives in
/// one optional box, and tests with the same assertions share one list.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// Position among the expanded tests (promptfoo's `testIdx`).
    pub idx: usize,
    /// Position of the test in the document's `tests`.
    pub source_idx: usize,
    /// Variables as configured (`defaultTest`'s under the test's), as
    /// compact JSON: a map per test cost a million-test suite 200 MB more.
    vars: Box<str>,
    /// Prepared assertions (`defaultTest`'s first), each keeps its spec
    /// with templated values rendered; identical lists are one.
    pub assertions: Arc<[Arc<Assertion>]>,
    extra: Option<Box<TestExtra>>,
}

/// What a test may have besides its vars and assertions.
#[derive(Debug, Clone, Default)]
pub struct TestExtra {
    /// `description`.
    pub description: Option<String>,
    /// The vars as promptfoo renders with them, where they differ.
    pub staged: StagedVars,
    /// `threshold` (the test's, else `defaultTest`'s).
    pub threshold: Option<f64>,
    /// `metadata`, `defaultTest`'s merged under the test's.
    pub metadata: Map<String, Value>,
    /// `options.prefix`: text put before the prompt template.
    pub prefix: Option<String>,
    /// `options.suffix`: text put after it.
    pub suffix: Option<String>,
    /// The provider this test calls instead of the suite's, an index into
    /// [`Suite::test_providers`].
    pub provider: Option<usize>,
    /// Why the test cannot be graded (an assertion its vars make invalid):
    /// it is recorded as an error without calling the provider.
    pub error: Option<String>,
}

impl TestExtra {
    fn is_empty(&self) -> bool {
        self.description.is_none()
            && self.staged == StagedVars::default()
            && self.threshold.is_none()
            && self.metadata.is_empty()
            && self.prefix.is_none()
            && self.suffix.is_none()
            && self.provider.is_none()
            && self.error.is_none()
    }
}

static NO_EXTRA: std::sync::LazyLock<TestExtra> = std::sync::LazyLock::new(TestExtra::default);

impl TestCase {
    /// A test; `extra` is kept only when it says something.
    pub fn new(
        idx: usize,
        source_idx: usize,
        vars: Map<String, Value>,
        assertions: Arc<[Arc<Assertion>]>,
        extra: TestExtra,
    ) -> Self {
        Self {
            idx,
            source_idx,
            vars: Value::Object(vars).to_string().into_boxed_str(),
            assertions,
            extra: (!extra.is_empty()).then(|| Box::new(extra)),
        }
    }

    /// Variables as configured (`defaultTest`'s under the test's).
    pub fn vars(&self) -> Map<String, Value> {
        serde_json::from_str(&self.vars).unwrap_or_default()
    }

    /// The same, as compact JSON.
    pub fn vars_json(&self) -> &str {
        &self.vars
    }

    fn extra(&self) -> &TestExtra {
        self.extra.as_deref().unwrap_or(&NO_EXTRA)
    }

    /// `description`.
    pub fn description(&self) -> Option<&str> {
        self.extra().description.as_deref()
    }

    /// The vars as promptfoo renders with them, where they differ.
    pub fn staged(&self) -> &StagedVars {
        &self.extra().staged
    }

    /// `threshold`.
    pub fn threshold(&self) -> Option<f64> {
        self.extra().threshold
    }

    /// `metadata`.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.extra().metadata
    }

    /// `options.prefix`.
    pub fn prefix(&self) -> Option<&str> {
        self.extra().prefix.as_deref()
    }

    /// `options.suffix`.
    pub fn suffix(&self) -> Option<&str> {
        self.extra().suffix.as_deref()
    }

    /// The provider this test calls instead of the suite's.
    pub fn provider(&self) -> Option<usize> {
        self.extra().provider
    }

    /// Why the test cannot be graded.
    pub fn error(&self) -> Option<&str> {
        self.extra().error.as_deref()
    }
}

/// "a string", "a list", ... for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;

impl TestCase {
    /// The assertions as graded (templated values rendered), for export.
    pub fn assert_specs(&self) -> Vec<&Value> {
        self.assertions.iter().map(|a| &a.spec).collect()
    }
}
