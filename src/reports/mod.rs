//! Reports for people who will not open Grafana: an execution's outcome,
//! which model to pick, what it costs, how things trend, how the service
//! performs.
//!
//! - Each kind fetches what it needs from analytics (and the monitor, the
//!   queue's stored results) in parallel, then builds its sections in
//!   parallel ([`build_sections`]), each timed (in the report and in
//!   `promptgauge_report_section_duration_seconds`).
//! - A report is data ([`model::Report`], the JSON schema); Markdown and
//!   HTML are rendered from it with minijinja templates (embedded, or from
//!   `REPORT_TEMPLATES`), compiled once and cached for 30 minutes; CSV is
//!   the execution's results, or a report's main table.
//! - Report data is cached for 10 minutes; every report made is stored, and
//!   a stored one renders in any format without recomputing.
//!
//! This module knows nothing of HTTP.

pub mod charts;
mod execution;
pub mod model;
mod performance;
pub mod render;
mod spec;
mod windows;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::Environment;
use tokio::task::JoinSet;

pub use model::Report;
pub use render::Format;
pub use spec::{KINDS, ReportSpec};

use crate::analytics::{AnalyticsEngine, AnalyticsError};
use crate::cache::TtlCache;
use crate::metrics::{Metrics, ReportMetrics};
use crate::monitor::Monitor;
use crate::queue::{QueueError, TestQueue};
use crate::storage::{NewReport, ReportRecord, Storage, StorageError};
use crate::suite::Problem;
use model::{Section, Table, Timings};

/// How long computed report data is kept.
const DATA_TTL: Duration = Duration::from_secs(600);
/// How long compiled templates are kept (then re-read, so edited
/// override templates take effect).
const TEMPLATE_TTL: Duration = Duration::from_secs(1800);

/// What can go wrong, named by what happened.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request is wrong (each problem located).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// What the report is about does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A template failed to load or render.
    #[error("template: {0}")]
    Template(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The queue failed (an execution's results).
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<AnalyticsError> for ReportError {
    fn from(e: AnalyticsError) -> Self {
        match e {
            AnalyticsError::ExecutionNotFound(id) => {
                ReportError::NotFound(format!("execution {id} not found"))
            }
            AnalyticsError::Storage(s) => ReportError::Storage(s),
        }
    }
}

/// A rendered report.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Its stored id.
    pub id: i64,
    /// Its format.
    pub format: Format,
    /// The document.
    pub body: String,
}

/// The report service. Cheap to clone.
#[derive(Clone)]
pub struct ReportService {
    inner: Arc<Inner>,
}

struct Inner {
    analytics: AnalyticsEngine,
    queue: TestQueue,
    monitor: Monitor,
    storage: Storage,
    metrics: ReportMetrics,
    data: TtlCache<String, Arc<Report>>,
    /// Finished executions' CSV documents, by execution.
    csv: TtlCache<i64, Arc<String>>,
    templates: TtlCache<(), Arc<Environment<'static>>>,
    template_dir: Option<PathBuf>,
}

impl ReportService {
    /// A service over the other services; templates from `template_dir`
    /// where it has them.
    pub fn new(
        analytics: AnalyticsEngine,
        queue: TestQueue,
        monitor: Monitor,
        metrics: &Metrics,
        template_dir: Option<PathBuf>,
        cache_ttl: Option<Duration>,
    ) -> Self {
        let storage = queue.storage().clone();
        Self {
            inner: Arc::new(Inner {
                data: TtlCache::new(
                    "report_data",
                    128,
                    cache_ttl.unwrap_or(DATA_TTL),
                    &metrics.cache,
                ),
                csv: TtlCache::new(
                    "report_csv",
                    8,
                    cache_ttl.unwrap_or(DATA_TTL),
                    &metrics.cache,
                ),
                templates: TtlCache::new(
                    "report_templates",
                    1,
                    cache_ttl.unwrap_or(TEMPLATE_TTL),
                    &metrics.cache,
                ),
                analytics,
                queue,
                monitor,
                storage,
                metrics: metrics.reports.clone(),
                template_dir,
            }),
        }
    }

    /// Makes (or takes from the cache) the report `spec` describes, renders
    /// it as `format`, stores it, and returns it with its id.
    pub async fn generate(
        &self,
        spec: ReportSpec,
        format: Format,
    ) -> Result<Rendered, ReportError> {
        let started = Instant::now();
        let kind = spec.kind();
        let outcome = self.generate_inner(spec, format, started).await;
        let m = &self.inner.metrics;
        let status = if outcome.is_ok() { "ok" } else { "error" };
        m.generated
            .with_label_values(&[kind, format.name(), status])
            .inc();
        m.duration
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    async fn generate_inner(
        &self,
        spec: ReportSpec,
        format: Format,
        started: Instant,
    ) -> Result<Rendered, ReportError> {
        let key = spec.cache_key();
        let report = self
            .inner
            .data
            .get_or_try_insert_with(&key, async {
                self.make(&spec, started).await.map(Arc::new)
            })
            .await?;
        let id = self
            .inner
            .storage
            .insert_report(NewReport {
                kind: report.kind.clone(),
                params: report.params.to_string(),
                format: format.name().to_owned(),
                data: serde_json::to_string(&*report).unwrap_or_default(),
                timings: serde_json::to_string(&report.timings).unwrap_or_default(),
                duration_ms: started.elapsed().as_millis() as i64,
            })
            .await?;
        // Rendered with its id, so the document matches a later re-render.
        let mut report = (*report).clone();
        report.id = Some(id);
        let body = self.render(&report, &spec, format).await;
        let outcome = match &body {
            Ok(b) => Ok(b.len() as i64),
            Err(e) => Err(e.to_string()),
        };
        self.inner.storage.finish_report(id, outcome).await?;
        let body = body?;
        Ok(Rendered { id, format, body })
    }

    /// A stored report rendered as `format` (default: the one it was made in).
    pub async fn stored(&self, id: i64, format: Option<Format>) -> Result<Rendered, ReportError> {
        let (record, data) = self
            .inner
            .storage
            .get_report(id)
            .await?
            .ok_or_else(|| ReportError::NotFound(format!("report {id} not found")))?;
        let mut report: Report = serde_json::from_str(&data)
            .map_err(|e| ReportError::Template(format!("stored report {id} is unreadable: {e}")))?;
        report.id = Some(id);
        let format = format
            .or_else(|| Format::parse(&record.format))
            .unwrap_or(Format::Json);
        let spec = ReportSpec::parse(&record.kind, &report.params)?;
        let body = self.render(&report, &spec, format).await?;
        Ok(Rendered { id, format, body })
    }

    /// Stored reports, newest first, and how many there are.
    pub async fn list(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ReportRecord>, i64), ReportError> {
        Ok(self.inner.storage.list_reports(limit, offset).await?)
    }

    async fn make(&self, spec: &ReportSpec, started: Instant) -> Result<Report, ReportError> {
        let mut report = match spec {
            ReportSpec::Execution { execution } => execution::make(self, *execution).await?,
            ReportSpec::ModelComparison { span, suite } => {
                windows::comparison(self, *span, *suite).await?
            }
            ReportSpec::Cost { span, suite } => windows::cost(self, *span, *suite).await?,
            ReportSpec::Trend { period, suite } => windows::trend(self, *period, *suite).await?,
            ReportSpec::Performance { window } => performance::make(self, *window).await?,
        };
        report.params = spec.params_json();
        report.generated_at = crate::storage::now_ms();
        report.timings.total_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(report)
    }

    async fn render(
        &self,
        report: &Report,
        spec: &ReportSpec,
        format: Format,
    ) -> Result<String, ReportError> {
        match format {
            Format::Csv => match spec {
                ReportSpec::Execution { execution } => execution::csv(self, *execution).await,
                _ => Ok(render::csv(&primary_table(report))),
            },
            Format::Json => render::render(report, format, &Environment::new()),
            _ => {
                let env = self.templates().await?;
                render::render(report, format, &env)
            }
        }
    }

    async fn templates(&self) -> Result<Arc<Environment<'static>>, ReportError> {
        let dir = self.inner.template_dir.clone();
        self.inner
            .templates
            .get_or_try_insert_with(&(), async move {
                render::templates(dir.as_deref()).map(Arc::new)
            })
            .await
    }
}

/// The table a CSV of a windowed report holds: its largest.
fn primary_table(r: &Report) -> Table {
    r.sections
        .iter()
        .filter_map(|s| s.table.as_ref())
        .max_by_key(|t| t.rows.len())
        .cloned()
        .unwrap_or(Table {
            columns: Vec::new(),
            rows: Vec::new(),
        })
}

/// A section builder over a report's fetched data.
pub(crate) type Builder<D> = (&'static str, fn(&D) -> Section);

/// Builds every section in parallel, timing each.
pub(crate) async fn build_sections<D: Send + Sync + 'static>(
    data: Arc<D>,
    builders: &[Builder<D>],
    metrics: &ReportMetrics,
) -> (Vec<Section>, BTreeMap<String, f64>) {
    let mut set = JoinSet::new();
    for (i, &(id, build)) in builders.iter().enumerate() {
        let data = data.clone();
        set.spawn(async move {
            let started = Instant::now();
            let section = build(&data);
            (i, id, section, started.elapsed())
        });
    }
    let mut sections: Vec<Option<Section>> = vec![None; builders.len()];
    let mut timings = BTreeMap::new();
    while let Some(done) = set.join_next().await {
        if let Ok((i, id, section, took)) = done {
            metrics
                .sections
                .with_label_values(&[id])
                .observe(took.as_secs_f64());
            timings.insert(id.to_owned(), took.as_secs_f64() * 1000.0);
            sections[i] = Some(section);
        }
    }
    (sections.into_iter().flatten().collect(), timings)
}

/// A report shell of `kind` with its sections and fetch time.
pub(crate) fn report(
    kind: &str,
    title: String,
    empty: bool,
    summary: Vec<model::Stat>,
    (sections, sections_ms): (Vec<Section>, BTreeMap<String, f64>),
    fetch: Duration,
) -> Report {
    Report {
        id: None,
        kind: kind.to_owned(),
        title,
        params: serde_json::Value::Null,
        generated_at: 0,
        empty,
        summary,
        sections,
        timings: Timings {
            fetch_ms: fetch.as_secs_f64() * 1000.0,
            sections_ms,
            total_ms: 0.0,
        },
    }
}
