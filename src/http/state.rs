//! `AppState`: the service handles every handler can reach. Cheap to clone.

use std::sync::Arc;

use crate::analytics::AnalyticsEngine;
use crate::config::ApiToken;
use crate::events::EventBus;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::optimize::OptimizeService;
use crate::progress::ProgressHub;
use crate::queue::TestQueue;
use crate::reports::ReportService;

/// Handles shared by all requests.
#[derive(Clone)]
pub struct AppState {
    /// The registry `/metrics` encodes.
    pub metrics: Arc<Metrics>,
    /// Database health checks.
    pub health: Health,
    /// Suites and executions.
    pub queue: TestQueue,
    /// The performance monitor.
    pub monitor: Monitor,
    /// The in-process event stream.
    pub events: EventBus,
    /// The WebSocket progress stream.
    pub progress: ProgressHub,
    /// Analytics queries.
    pub analytics: AnalyticsEngine,
    /// Reports.
    pub reports: ReportService,
    /// Prompt optimization.
    pub optimize: OptimizeService,
    /// Benchmark runs started over the API.
    pub benchmarks: crate::bench::suite::service::BenchmarkService,
    /// When set, the bearer token every protected route requires.
    pub api_token: Option<Arc<ApiToken>>,
}
