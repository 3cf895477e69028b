//! The queue's read side and suite storage, as the HTTP API and the CLI use
//! them: pages of suites, executions and results, and streamed exports.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use serde::Serialize;
use serde_json::Value;

use super::{Progress, QueueError, TestQueue};
use crate::export::{self, ExportContext, ExportFormat};
use crate::storage::{
    ExecutionRecord, ExecutionStatus, NewSuite, NewTestCase, ResultFilter, ResultRecord,
    SuiteRecord,
};
use crate::suite::{self, Format, Problem, Suite};

/// Results fetched per page while exporting.
const EXPORT_PAGE: i64 = 1000;

/// A page of items.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many match in all.
    pub total: i64,
    /// Page size asked for.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

/// A stored suite and the warnings of its parse.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSuite {
    /// The suite.
    #[serde(flatten)]
    pub suite: SuiteRecord,
    /// What was ignored.
    pub warnings: Vec<Problem>,
    /// False when the same document was already stored (its id is returned).
    #[serde(skip)]
    pub created: bool,
}

/// An execution with its live progress.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionView {
    /// The stored record.
    #[serde(flatten)]
    pub record: ExecutionRecord,
    /// Results stored.
    pub completed: i64,
    /// passed / completed (0 before any result).
    pub pass_rate: f64,
    /// Wall time so far, or in all once finished.
    pub duration_ms: Option<i64>,
    /// Live view while it runs in this process.
    pub progress: Option<Progress>,
    /// Totals per prompt and provider, once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupView>>,
}

/// Totals of one prompt x provider pair.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    /// Prompt label.
    pub prompt: String,
    /// Provider label or id.
    pub provider: String,
    /// The totals.
    #[serde(flatten)]
    pub totals: crate::storage::GroupTotals,
}

/// A stored result with its grading as an object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultView {
    /// The stored row.
    #[serde(flatten)]
    pub record: ResultRecord,
    /// promptfoo's `gradingResult`.
    pub grading_result: Value,
}

/// A suite's test rows, made as the writer stores them; tests that share
/// one assertion list share its JSON.
fn test_rows(suite: Arc<Suite>) -> crate::storage::TestRows {
    Box::new(move || {
        let json = |v: &serde_json::Map<String, Value>| Value::Object(v.clone()).to_string();
        let mut last: Option<(usize, String)> = None;
        let suite = suite.clone();
        Box::new((0..suite.tests.len()).map(move |i| {
            let t = &suite.tests[i];
            let key = t.assertions.as_ptr() as usize;
            let assertions = match &last {
                Some((k, text)) if *k == key => text.clone(),
                _ => {
                    let text = serde_json::to_string(&t.assert_specs()).unwrap_or_default();
                    last = Some((key, text.clone()));
                    text
                }
            };
            NewTestCase {
                description: t.description().map(str::to_owned),
                vars: t.vars_json().to_owned(),
                assertions,
                threshold: t.threshold(),
                metadata: json(t.metadata()),
            }
        }))
    })
}

/// Chunks of an export, in order.
pub type ExportStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, QueueError>> + Send>>;

impl TestQueue {
    /// Validates and stores a suite document.
    pub async fn store_suite(
        &self,
        source: String,
        format: Format,
    ) -> Result<StoredSuite, QueueError> {
        let doc = suite::document(&source, format).map_err(QueueError::InvalidSuite)?;
        let loaded = suite::parse_document(&doc, &self.shared.checker())
            .map_err(QueueError::InvalidSuite)?;
        let config = doc.to_string();
        drop(doc);
        let s = Arc::new(loaded.suite);
        let new = NewSuite {
            name: s.description.clone().unwrap_or_else(|| "suite".to_owned()),
            description: s.description.clone(),
            format: format.as_str().to_owned(),
            config_hash: crate::hash::sha256_hex(config.as_bytes()),
            config,
            source,
            prompts: s
                .prompts
                .iter()
                .map(|p| (p.label.clone(), p.raw.clone()))
                .collect(),
            tests: test_rows(s.clone()),
        };
        let tests = s.tests.len();
        let stored = self.shared.storage.create_suite(new).await;
        drop(s);
        // A large suite is gone from memory, and its rows from the
        // writer's cache: give the pages back.
        if tests >= crate::common::memory::LARGE {
            let _ = self.shared.storage.release_memory().await;
            crate::common::memory::release_after(tests);
        }
        let (id, created) = stored?;
        let (mut record, _) = self
            .shared
            .storage
            .get_suite(id)
            .await?
            .ok_or(QueueError::SuiteNotFound(id))?;
        // The client just sent it; `GET /api/suites/{id}` has it.
        record.source = None;
        Ok(StoredSuite {
            suite: record,
            warnings: loaded.warnings,
            created,
        })
    }

    /// A stored suite, with its source.
    pub async fn suite(&self, id: i64) -> Result<SuiteRecord, QueueError> {
        let (record, _) = self
            .shared
            .storage
            .get_suite(id)
            .await?
            .ok_or(QueueError::SuiteNotFound(id))?;
        Ok(record)
    }

    /// Stored suites, newest first.
    pub async fn suites(&self, limit: i64, offset: i64) -> Result<Page<SuiteRecord>, QueueError> {
        let (items, total) = self.shared.storage.list_suites(limit, offset).await?;
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }

    /// Resolves once execution `id` ends in this process (at once if it
    /// is not running here), so a caller can wait for it without polling.
    pub async fn ended(&self, id: i64) {
        let token = self
            .shared
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(|r| r.ended.clone());
        if let Some(t) = token {
            t.cancelled().await;
        }
    }

    /// One execution; a finished one with its totals per prompt and provider.
    pub async fn execution(&self, id: i64) -> Result<ExecutionView, QueueError> {
        let storage = &self.shared.storage;
        let record = self.shared.execution(id).await?;
        let groups = if record.status.is_final() {
            let config = storage.execution_config(id).await?.unwrap_or_default();
            let (prompts, providers) = suite::labels(&config);
            let totals = storage.group_totals(&record).await?;
            Some(
                totals
                    .into_iter()
                    .map(|g| GroupView {
                        prompt: prompts
                            .get(g.prompt_idx as usize)
                            .cloned()
                            .unwrap_or_else(|| g.prompt_idx.to_string()),
                        provider: providers
                            .get(g.provider_idx as usize)
                            .cloned()
                            .unwrap_or_else(|| g.provider_idx.to_string()),
                        totals: g,
                    })
                    .collect(),
            )
        } else {
            None
        };
        let mut view = self.view(record);
        view.groups = groups;
        Ok(view)
    }

    /// Executions, newest first, optionally of one status.
    pub async fn executions(
        &self,
        status: Option<ExecutionStatus>,
        limit: i64,
        offset: i64,
    ) -> Result<Page<ExecutionView>, QueueError> {
        let (records, total) = self
            .shared
            .storage
            .list_executions(status, limit, offset)
            .await?;
        let items = records.into_iter().map(|r| self.view(r)).collect();
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }

    fn view(&self, record: ExecutionRecord) -> ExecutionView {
        let completed = record.passed + record.failed + record.errors;
        let now = crate::storage::now_ms();
        ExecutionView {
            completed,
            pass_rate: if completed > 0 {
                record.passed as f64 / completed as f64
            } else {
                0.0
            },
            duration_ms: record
                .started_at
                .map(|s| record.finished_at.unwrap_or(now) - s),
            progress: self.progress(record.id),
            groups: None,
            record,
        }
    }

    /// A page of an execution's results, in job order.
    pub async fn results(
        &self,
        id: i64,
        filter: Option<ResultFilter>,
        limit: i64,
        offset: i64,
    ) -> Result<Page<ResultView>, QueueError> {
        let record = self.shared.execution(id).await?;
        let (rows, total) = self
            .shared
            .storage
            .list_results(&record, filter, limit, offset)
            .await?;
        let items = rows
            .into_iter()
            .map(|mut r| {
                let grading = r
                    .grading
                    .take()
                    .and_then(|g| serde_json::from_str(&g).ok())
                    .unwrap_or(Value::Null);
                ResultView {
                    record: r,
                    grading_result: grading,
                }
            })
            .collect();
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }

    /// Streams every result of an execution in `format`.
    pub async fn export(&self, id: i64, format: ExportFormat) -> Result<ExportStream, QueueError> {
        let storage = self.shared.storage.clone();
        let execution = self.shared.execution(id).await?;
        let config = storage
            .execution_config(id)
            .await?
            .ok_or(QueueError::NotFound(id))?;
        let doc = suite::Document::from_json(&config).map_err(QueueError::InvalidRequest)?;
        // Providers are not called: do not build them (or read their keys).
        let suite = suite::parse_document(&doc, &|_| Vec::new())
            .map_err(QueueError::InvalidSuite)?
            .suite;
        let mut totals = match format {
            ExportFormat::Promptfoo | ExportFormat::Junit => {
                storage.group_totals(&execution).await?
            }
            _ => Vec::new(),
        };
        totals.sort_by_key(|g| (g.provider_idx, g.prompt_idx));
        let state = Arc::new(ExportState {
            execution,
            suite,
            doc,
            format,
            totals,
            storage,
        });
        let stream =
            futures_util::stream::unfold((state, Phase::Head), |(state, phase)| async move {
                let (chunk, next) = state.step(phase).await?;
                Some((chunk, (state, next)))
            });
        Ok(Box::pin(stream))
    }
}

struct ExportState {
    execution: ExecutionRecord,
    suite: Suite,
    doc: suite::Document,
    format: ExportFormat,
    totals: Vec<crate::storage::GroupTotals>,
    storage: crate::storage::Storage,
}

#[derive(Clone, Copy)]
enum Phase {
    Head,
    /// The rows after this result id (0 at first), and how many were sent.
    Rows(i64, i64),
    /// JUnit: the rows of provider x prompt group `.0` after result id
    /// `.1` (0 at first); each group is a `<testsuite>` of its own.
    Group(usize, i64),
    Tail,
    Done,
}

impl ExportState {
    fn ctx(&self) -> ExportContext<'_> {
        ExportContext {
            execution: &self.execution,
            suite: &self.suite,
            doc: &self.doc,
        }
    }

    /// A page of JUnit group `g`: its `<testsuite>` opened on the first
    /// page, its results after id `after`, closed after the last page.
    async fn junit_group(&self, g: usize, after: i64) -> (Result<Vec<u8>, QueueError>, Phase) {
        let Some(group) = self.totals.get(g) else {
            return (Ok(Vec::new()), Phase::Tail);
        };
        let ctx = self.ctx();
        let mut out = String::new();
        if after == 0 {
            out.push_str(&export::junit_suite_open(&ctx, group));
        }
        let key = Some((group.prompt_idx, group.provider_idx));
        let rows = match self
            .storage
            .results_after(&self.execution, after, key, EXPORT_PAGE)
            .await
        {
            Ok(rows) => rows,
            Err(e) => return (Err(e.into()), Phase::Done),
        };
        let classname = export::junit_suite_name(&ctx, group);
        for r in &rows {
            out.push_str(&export::junit_case(&ctx, &classname, r));
        }
        let next = match rows.last() {
            Some(last) if rows.len() as i64 == EXPORT_PAGE => Phase::Group(g, last.id),
            _ => {
                out.push_str(export::junit_suite_close());
                Phase::Group(g + 1, 0)
            }
        };
        (Ok(out.into_bytes()), next)
    }

    /// The chunk for `phase` and the phase after it; `None` when done.
    async fn step(&self, phase: Phase) -> Option<(Result<Vec<u8>, QueueError>, Phase)> {
        let ctx = self.ctx();
        match phase {
            Phase::Done => None,
            Phase::Head => {
                let head = match self.format {
                    ExportFormat::Promptfoo => export::promptfoo_envelope(&ctx, &self.totals).0,
                    ExportFormat::Csv => export::csv_header(),
                    ExportFormat::Jsonl => String::new(),
                    ExportFormat::Junit => {
                        return Some((
                            Ok(export::junit_head(&self.totals).into_bytes()),
                            Phase::Group(0, 0),
                        ));
                    }
                };
                Some((Ok(head.into_bytes()), Phase::Rows(0, 0)))
            }
            Phase::Group(g, offset) => Some(self.junit_group(g, offset).await),
            Phase::Rows(after, sent) => {
                let page = self
                    .storage
                    .results_after(&self.execution, after, None, EXPORT_PAGE)
                    .await;
                let rows = match page {
                    Ok(rows) => rows,
                    Err(e) => return Some((Err(e.into()), Phase::Done)),
                };
                let next = match rows.last() {
                    Some(last) if rows.len() as i64 == EXPORT_PAGE => {
                        Phase::Rows(last.id, sent + EXPORT_PAGE)
                    }
                    _ => Phase::Tail,
                };
                let offset = sent;
                let mut out = String::new();
                for (i, r) in rows.iter().enumerate() {
                    match self.format {
                        ExportFormat::Promptfoo => {
                            if offset + i as i64 > 0 {
                                out.push(',');
                            }
                            out.push_str(&export::promptfoo_result(&ctx, r).to_string());
                        }
                        ExportFormat::Jsonl => {
                            out.push_str(&export::promptfoo_result(&ctx, r).to_string());
                            out.push('\n');
                        }
                        ExportFormat::Csv => out.push_str(&export::csv_row(&ctx, r)),
                        ExportFormat::Junit => unreachable!("JUnit goes group by group"),
                    }
                }
                Some((Ok(out.into_bytes()), next))
            }
            Phase::Tail => {
                let tail = match self.format {
                    ExportFormat::Promptfoo => export::promptfoo_envelope(&ctx, &self.totals).1,
                    ExportFormat::Junit => export::junit_tail().to_owned(),
                    _ => String::new(),
                };
                Some((Ok(tail.into_bytes()), Phase::Done))
            }
        }
    }
}
