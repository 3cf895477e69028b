//! Storage methods for prompt optimization: suggestions, a stored prompt,
//! and the recent results the data-driven strategies read.

use super::queries::optimize::{self as q, NewSuggestion, SuggestionRecord};
use super::{Storage, StorageError, now_ms, op};

/// Recent results of one prompt of a suite, as the strategies read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptHistory {
    /// Results of the prompt in the executions read.
    pub results: i64,
    /// Failing results: (error, test index, count).
    pub failures: Vec<(String, i64, i64)>,
    /// Provider calls per (test, provider): (calls, distinct outputs, cost).
    pub calls: Vec<(i64, i64, f64)>,
}

impl Storage {
    /// Stores suggestions (one transaction).
    pub async fn insert_suggestions(&self, rows: Vec<NewSuggestion>) -> Result<(), StorageError> {
        let now = now_ms();
        self.inner
            .writer
            .call(op::SUGGESTION_WRITE, move |c| q::insert(c, &rows, now))
            .await
    }

    /// Stored suggestions, newest first, optionally of one prompt hash and
    /// strategy; and how many match.
    pub async fn list_suggestions(
        &self,
        prompt_hash: Option<String>,
        strategy: Option<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<SuggestionRecord>, i64), StorageError> {
        self.inner
            .readers
            .run(op::SUGGESTION_READ, move |c| {
                q::list(
                    c,
                    prompt_hash.as_deref(),
                    strategy.as_deref(),
                    limit,
                    offset,
                )
            })
            .await
    }

    /// Prompt `idx` of stored suite `suite`: (label, raw text).
    pub async fn suite_prompt(
        &self,
        suite: i64,
        idx: i64,
    ) -> Result<Option<(Option<String>, String)>, StorageError> {
        self.inner
            .readers
            .run(op::GET_SUITE, move |c| q::prompt(c, suite, idx))
            .await
    }

    /// Prompt `prompt_idx`'s results in the latest `executions` executions
    /// of suite `suite`.
    pub async fn prompt_history(
        &self,
        suite: i64,
        prompt_idx: i64,
        executions: i64,
    ) -> Result<PromptHistory, StorageError> {
        self.inner
            .readers
            .run(op::OPTIMIZE_DATA, move |c| {
                let (results, failures) = q::failures(c, suite, prompt_idx, executions)?;
                let calls = q::repeats(c, suite, prompt_idx, executions)?;
                Ok(PromptHistory {
                    results,
                    failures,
                    calls,
                })
            })
            .await
    }
}
