//! promptgauge: runs LLM prompt test suites at scale, stores every result in
//! SQLite and reports on itself in Prometheus terms.
//!
//! # Layout
//!
//! - [`app`] builds every subsystem from a [`config::Config`], binds the
//!   listener, serves, and shuts down gracefully (HTTP first, the storage
//!   writer last).
//! - [`config`] reads environment variables and flags, validates them.
//! - [`demo`] is the example workload of `serve --demo`.
//! - [`telemetry`] installs the `tracing` subscriber.
//! - [`metrics`] owns the one Prometheus registry and every metric family.
//! - [`events`] is the in-process event stream: executions' progress and
//!   results, alerts.
//! - [`progress`] streams those events to WebSocket clients (`/ws`):
//!   per-client queues, coalescing, batching, resyncs, limits.
//! - [`monitor`] samples host and registry, evaluates thresholds, raises
//!   alerts, finds leaks and bottlenecks, and recommends.
//! - [`analytics`] answers pass rate, latency, tokens and cost questions
//!   from the rollups, with caches per kind.
//! - [`reports`] makes execution, model, cost, trend and performance
//!   reports as JSON, Markdown, HTML or CSV, and stores them.
//! - [`optimize`] analyzes prompts (real tokenizers), runs strategies in
//!   parallel that say what each change saves, and verifies candidates by
//!   running the suite on them through the queue.
//! - [`suite`] parses promptfoo-style suites (prompts, providers, tests,
//!   `file://` references, CSV/JSON rows) into test cases; [`yaml`] reads
//!   YAML as promptfoo's js-yaml does, with budgets against YAML bombs.
//! - [`assertions`] grades an output against a test's assertions as
//!   promptfoo does; [`js`] evaluates its `javascript` expressions.
//! - [`providers`] calls models (`openai`, `mock`, `echo`) with prices and
//!   the response cache.
//! - [`queue`] is the persistent, concurrent test queue: executions, jobs,
//!   per-provider lanes, retries, recovery after a restart.
//! - [`export`] writes results as promptfoo's JSON, JSONL, CSV and JUnit.
//! - [`cache`] is the `TtlCache` every cache is built from.
//! - [`hash`] is the content hashing (sha256) keys are made from.
//! - [`common`] holds what several layers share: timestamps, TLS setup.
//! - [`storage`] is the only place with SQL: a writer thread with group
//!   commit, a read pool, embedded migrations.
//! - [`health`] checks that the service can read and write its database.
//! - [`bench`] is `promptgauge bench`: load scenarios and their figures.
//! - [`cli`] is `promptgauge run` (a suite run embedded or on a server),
//!   `report` and `optimize`.
//! - [`http`] is the only place that knows HTTP: router, auth, errors,
//!   extractors, one file per resource under `http::routes`.
//!
//! Layers point one way: `app -> http -> services -> {storage, cache,
//! metrics}`. Services never see HTTP types; nothing outside `storage` sees
//! `rusqlite`.

#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod analytics;
pub mod app;
pub mod assertions;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod common;
pub mod config;
pub mod demo;
pub mod events;
pub mod export;
pub mod hash;
pub mod health;
pub mod http;
pub mod js;
pub mod metrics;
pub mod monitor;
pub mod optimize;
pub mod progress;
pub mod providers;
pub mod queue;
pub mod reports;
pub mod storage;
pub mod suite;
pub mod telemetry;
pub mod yaml;

pub use app::App;
pub use config::Config;
