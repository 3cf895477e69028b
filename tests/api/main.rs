//! Integration tests: the real app on 127.0.0.1:0 with a temporary database,
//! driven over HTTP (and, where a test needs it, the real binary).

mod alertmanager;
mod analytics;
mod auth;
mod benchmark;
mod budgets;
mod compat;
mod config;
mod crash;
mod dashboards;
mod executions;
mod exports;
mod fake_openai;
mod files;
mod health;
mod helpers;
mod http_errors;
mod metrics;
mod migrations;
mod monitor;
mod optimize;
mod performance_api;
mod prometheus_assets;
mod prometheus_live;
mod promql;
mod providers;
mod queue_faults;
mod readme;
mod reports;
mod run_cli;
mod secrets;
mod storage;
mod suite_checks;
mod ws;
