//! `suites`, `prompts` and `test_cases`: stored suite documents.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A suite's test rows, made one at a time as they are stored, so a
/// million-test suite is never a million rows in memory. A factory: a
/// write tried again starts the rows again.
pub type TestRows = Box<dyn Fn() -> Box<dyn Iterator<Item = NewTestCase>> + Send>;

/// A suite to store: the document and its parts.
pub struct NewSuite {
    /// Display name (the description, else "suite").
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `yaml` or `json`.
    pub format: String,
    /// The document as submitted.
    pub source: String,
    /// The document as JSON.
    pub config: String,
    /// sha256 of `config`.
    pub config_hash: String,
    /// (label, raw) of each prompt.
    pub prompts: Vec<(String, String)>,
    /// Each expanded test: description, vars, assertions (JSON), threshold, metadata (JSON).
    pub tests: TestRows,
}

impl std::fmt::Debug for NewSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSuite")
            .field("name", &self.name)
            .field("config_hash", &self.config_hash)
            .finish_non_exhaustive()
    }
}

/// One stored test case.
#[derive(Debug, Clone)]
pub struct NewTestCase {
    /// `description`.
    pub description: Option<String>,
    /// Vars as JSON.
    pub vars: String,
    /// Assertions as JSON.
    pub assertions: String,
    /// Test threshold.
    pub threshold: Option<f64>,
    /// Metadata as JSON.
    pub metadata: String,
}

/// A stored suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuiteRecord {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `yaml` or `json`.
    pub format: String,
    /// Number of prompts.
    pub prompts: i64,
    /// Number of (expanded) tests.
    pub tests: i64,
    /// sha256 of the normalized document.
    pub config_hash: String,
    /// Created, unix ms.
    pub created_at: i64,
    /// The document as submitted (only when one suite is fetched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

pub(in crate::storage) fn insert(
    conn: &Connection,
    s: &NewSuite,
    now: i64,
) -> rusqlite::Result<(i64, bool)> {
    // The same document stored twice is one suite: re-posting it (the demo
    // on every start, a CI job on every run) does not pile up copies.
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM suites WHERE config_hash = ?1 ORDER BY id LIMIT 1")?
        .query_row(params![s.config_hash], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok((id, false));
    }
    conn.prepare_cached(
        "INSERT INTO suites (name, description, format, source, config, config_hash, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![s.name, s.description, s.format, s.source, s.config, s.config_hash, now])?;
    let id = conn.last_insert_rowid();
    let mut prompt = conn.prepare_cached(
        "INSERT INTO prompts (suite_id, idx, label, raw) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (i, (label, raw)) in s.prompts.iter().enumerate() {
        prompt.execute(params![id, i as i64, label, raw])?;
    }
    let mut test = conn.prepare_cached(
        "INSERT INTO test_cases (suite_id, idx, description, vars, assertions, threshold, metadata)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (i, t) in (s.tests)().enumerate() {
        test.execute(params![
            id,
            i as i64,
            t.description,
            t.vars,
            t.assertions,
            t.threshold,
            t.metadata
        ])?;
    }
    Ok((id, true))
}

const COLUMNS: &str = "s.id, s.name, s.description, s.format,
    (SELECT count(*) FROM prompts p WHERE p.suite_id = s.id),
    (SELECT count(*) FROM test_cases t WHERE t.suite_id = s.id),
    s.config_hash, s.created_at";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<SuiteRecord> {
    Ok(SuiteRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        format: r.get(3)?,
        prompts: r.get(4)?,
        tests: r.get(5)?,
        config_hash: r.get(6)?,
        created_at: r.get(7)?,
        source: None,
    })
}

/// The suite and its JSON document.
pub(in crate::storage) fn get(
    conn: &Connection,
    id: i64,
) -> rusqlite::Result<Option<(SuiteRecord, String)>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, s.source, s.config FROM suites s WHERE s.id = ?1"
    ))?
    .query_row(params![id], |r| {
        let mut rec = record(r)?;
        rec.source = Some(r.get(8)?);
        Ok((rec, r.get(9)?))
    })
    .optional()
}

/// Newest first.
pub(in crate::storage) fn list(
    conn: &Connection,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<(Vec<SuiteRecord>, i64)> {
    let total = conn.query_row("SELECT count(*) FROM suites", [], |r| r.get(0))?;
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM suites s ORDER BY s.id DESC LIMIT ?1 OFFSET ?2"
        ))?
        .query_map(params![limit, offset], record)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}
