//! The `provider_cache` table: successful provider responses by key.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// A cached successful response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedResponse {
    /// The output text.
    pub output: String,
    /// The finish reason, if any.
    pub finish_reason: Option<String>,
    /// Prompt tokens of the original call.
    pub input_tokens: u64,
    /// Completion tokens of the original call.
    pub output_tokens: u64,
}

/// An entry to store.
#[derive(Debug, Clone)]
pub struct NewCacheEntry {
    /// Hex sha256 of the request.
    pub key: String,
    /// Provider id.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// The response.
    pub response: CachedResponse,
    /// Expiry, unix ms (`None`: never).
    pub expires_at: Option<i64>,
}

pub(in crate::storage) fn get(
    conn: &Connection,
    key: &str,
    now_ms: i64,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT response FROM provider_cache WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
    )?
    .query_row(params![key, now_ms], |r| r.get(0))
    .optional()
}

pub(in crate::storage) fn put(
    conn: &Connection,
    e: &NewCacheEntry,
    json: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO provider_cache (key, provider, model, response, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (key) DO UPDATE SET response = excluded.response,
             created_at = excluded.created_at, expires_at = excluded.expires_at",
    )?
    .execute(params![
        e.key,
        e.provider,
        e.model,
        json,
        now_ms,
        e.expires_at
    ])?;
    Ok(())
}
