//! HTTP: the router, its layers, and the handlers under `routes`.
//!
//! The only module that imports `axum`. Handlers parse, call one service
//! method and map its error to [`error::ApiError`]; they hold no SQL, locks
//! or business rules.

pub mod error;
pub mod extract;
pub mod state;

mod auth;
mod layers;
mod params;
mod routes;
mod server;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{MethodRouter, get, post};

pub use state::AppState;

pub use layers::{MAX_HEADER_BYTES, MAX_URI_BYTES};
pub use server::{Limits, serve};

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Largest body of the routes that take a suite (`POST /api/suites`,
/// `POST /api/executions`): room for a 100,000-test suite written inline.
pub const SUITE_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The body limit of a request path.
fn body_limit(path: &str) -> usize {
    if matches!(path, "/api/suites" | "/api/executions") {
        SUITE_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

const METRICS: &str = "/metrics";
/// The WebSocket progress stream: browsers cannot set headers on it, so it
/// also takes the token as `?token=`.
pub(crate) const WS: &str = "/ws";
const HEALTH: &str = "/api/performance/health";

/// Routes that stay open when `API_TOKEN` is set: scrapers and load
/// balancers do not carry the token.
const OPEN_ROUTES: &[&str] = &[METRICS, HEALTH];

/// Builds the router with every route and layer.
pub fn router(state: AppState) -> Router {
    let routes = Routes::new(&state)
        .add(&["GET"], METRICS, get(routes::metrics::show))
        .add(&["GET"], HEALTH, get(routes::health::show))
        .add(&["GET"], WS, get(routes::ws::connect))
        .add(
            &["GET"],
            "/api/analytics/realtime",
            get(routes::analytics::realtime),
        )
        .add(
            &["GET"],
            "/api/analytics/historical",
            get(routes::analytics::historical),
        )
        .add(
            &["GET"],
            "/api/analytics/trends",
            get(routes::analytics::trends),
        )
        .add(
            &["GET"],
            "/api/analytics/models",
            get(routes::analytics::models),
        )
        .add(
            &["GET"],
            "/api/analytics/cost",
            get(routes::analytics::cost),
        )
        .add(
            &["GET"],
            "/api/analytics/executions/{id}",
            get(routes::analytics::execution),
        )
        .add(
            &["GET", "POST"],
            "/api/reports",
            get(routes::reports::list).post(routes::reports::create),
        )
        .add(&["GET"], "/api/reports/{id}", get(routes::reports::show))
        .add(
            &["GET", "POST"],
            "/api/performance/benchmark",
            get(routes::benchmark::show).post(routes::benchmark::start),
        )
        .add(
            &["POST"],
            "/api/performance/benchmark/cancel",
            post(routes::benchmark::cancel),
        )
        .add(
            &["POST"],
            "/api/optimization/analyze",
            post(routes::optimize::analyze),
        )
        .add(
            &["POST"],
            "/api/optimization/verify",
            post(routes::optimize::verify),
        )
        .add(
            &["GET"],
            "/api/optimization/verify/{id}",
            get(routes::optimize::verification),
        )
        .add(
            &["GET"],
            "/api/optimization/suggestions",
            get(routes::optimize::suggestions),
        )
        .add(
            &["GET"],
            "/api/analytics/cache-stats",
            get(routes::analytics::cache_stats),
        )
        .add(
            &["GET"],
            "/api/analytics/slow-queries",
            get(routes::analytics::slow_queries),
        )
        .add(
            &["GET"],
            "/api/performance/overview",
            get(routes::performance::overview),
        )
        .add(
            &["GET"],
            "/api/performance/metrics",
            get(routes::performance::metrics),
        )
        .add(
            &["GET"],
            "/api/performance/metrics/{name}",
            get(routes::performance::metric),
        )
        .add(
            &["GET"],
            "/api/performance/alerts",
            get(routes::performance::alerts),
        )
        .add(
            &["GET"],
            "/api/performance/bottlenecks",
            get(routes::performance::bottlenecks),
        )
        .add(
            &["GET"],
            "/api/performance/recommendations",
            get(routes::performance::recommendations),
        )
        .add(
            &["GET"],
            "/api/performance/export",
            get(routes::performance::export),
        )
        .add(
            &["GET", "POST"],
            "/api/suites",
            get(routes::suites::list)
                .post(routes::suites::create)
                .layer(DefaultBodyLimit::max(SUITE_BODY_LIMIT)),
        )
        .add(&["GET"], "/api/suites/{id}", get(routes::suites::show))
        .add(
            &["GET", "POST"],
            "/api/executions",
            get(routes::executions::list)
                .post(routes::executions::create)
                .layer(DefaultBodyLimit::max(SUITE_BODY_LIMIT)),
        )
        .add(
            &["GET"],
            "/api/executions/{id}",
            get(routes::executions::show),
        )
        .add(
            &["GET"],
            "/api/executions/{id}/results",
            get(routes::executions::results),
        )
        .add(
            &["POST"],
            "/api/executions/{id}/cancel",
            post(routes::executions::cancel),
        );
    // Layers run outermost-last: metrics see every response (a panic's 500
    // too), auth runs before the body is looked at.
    routes
        .router
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn(layers::limit_body))
        .layer(from_fn(layers::json_errors))
        .layer(from_fn_with_state(state.clone(), auth::require_token))
        .layer(from_fn_with_state(state.clone(), layers::catch_panic))
        .layer(from_fn_with_state(state.clone(), layers::track_metrics))
        .with_state(state)
}

/// Adds routes and creates their metric series at zero in one step, so no
/// route is served without its series.
struct Routes<'a> {
    router: Router<AppState>,
    state: &'a AppState,
}

impl<'a> Routes<'a> {
    fn new(state: &'a AppState) -> Self {
        Self {
            router: Router::new(),
            state,
        }
    }

    fn add(mut self, methods: &[&str], path: &str, handler: MethodRouter<AppState>) -> Self {
        for method in methods {
            self.state.metrics.http.preinit(method, path);
        }
        self.router = self.router.route(path, handler);
        self
    }
}
