//! Result rollups: per minute and per hour, per (suite, provider, model),
//! the counts, latency sum and a fixed log-spaced latency histogram,
//! tokens and cost of the results stored in that bucket.
//!
//! The writer folds each batch of new results into [`Rollups`] in memory
//! and applies one read-modify-write per bucket and key, in the batch's
//! transaction, so rollups never disagree with the rows they summarize.
//! Every sum is an integer (cost in nano-dollars), so a rebuild from raw
//! rows gives the same numbers whatever the order.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, params};

/// The minute tier's resolution, seconds.
pub const MINUTE: i64 = 60;
/// The hour tier's resolution, seconds.
pub const HOUR: i64 = 3600;
/// Buckets per power of two of the latency histogram.
const PER_OCTAVE: i32 = 4;
/// Finite buckets: upper bounds 2^(k/4) ms for k = 0..80 (1 ms .. ~14.7 min);
/// one more counts everything above.
pub const FINITE_BUCKETS: usize = 80;
/// Nano-dollars per dollar: costs are summed as integers.
pub const NANOS_PER_USD: f64 = 1e9;

/// Upper bound of finite bucket `k`, ms.
pub fn bucket_upper_ms(k: usize) -> f64 {
    2f64.powf(k as f64 / f64::from(PER_OCTAVE))
}

/// A latency histogram: counts per bucket, the last one for +Inf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram(pub [u32; FINITE_BUCKETS + 1]);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self([0; FINITE_BUCKETS + 1])
    }
}

impl LatencyHistogram {
    /// The bucket of a latency: the first whose upper bound is >= it.
    pub fn bucket_of(latency_ms: i64) -> usize {
        if latency_ms <= 1 {
            return 0;
        }
        let k = (f64::from(PER_OCTAVE) * (latency_ms as f64).log2()).ceil() as usize;
        // Guard the float edge: 2^(k/4) computed may sit a hair below.
        let k = if bucket_upper_ms(k.saturating_sub(1)) >= latency_ms as f64 {
            k - 1
        } else {
            k
        };
        k.min(FINITE_BUCKETS)
    }

    /// Counts one latency.
    pub fn observe(&mut self, latency_ms: i64) {
        self.0[Self::bucket_of(latency_ms)] += 1;
    }

    /// Adds another histogram's counts.
    pub fn add(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|c| u64::from(*c)).sum()
    }

    /// Little-endian u32 counts, as stored.
    pub fn encode(&self) -> Vec<u8> {
        self.0.iter().flat_map(|c| c.to_le_bytes()).collect()
    }

    /// Adds stored counts (a blob of [`encode`](Self::encode)'s shape).
    pub fn add_encoded(&mut self, blob: &[u8]) {
        for (slot, chunk) in self.0.iter_mut().zip(blob.chunks_exact(4)) {
            *slot += u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
    }
}

/// What a rollup row is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    /// 60 or 3600.
    pub resolution_s: i64,
    /// Unix ms, aligned to the resolution.
    pub bucket_start: i64,
    /// The execution's stored suite; 0 for suites posted inline.
    pub suite_id: i64,
    /// Provider id as configured (shared: a read names few providers).
    pub provider: Arc<str>,
    /// Model.
    pub model: Arc<str>,
}

/// The sums of a rollup row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupSums {
    /// Results.
    pub count: i64,
    /// Passed.
    pub passed: i64,
    /// Failed an assertion.
    pub failed: i64,
    /// The provider call failed.
    pub errors: i64,
    /// Sum of provider latency, ms.
    pub latency_sum_ms: i64,
    /// Latency distribution.
    pub latency: LatencyHistogram,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Cost in nano-dollars.
    pub cost_nusd: i64,
}

impl RollupSums {
    /// Counts one result.
    pub fn observe(&mut self, r: &ResultFacts<'_>) {
        self.observe_in(r, LatencyHistogram::bucket_of(r.latency_ms));
    }

    /// Counts one result whose latency bucket is known.
    fn observe_in(&mut self, r: &ResultFacts<'_>, bucket: usize) {
        self.count += 1;
        match (r.passed, r.failure_reason) {
            (true, _) => self.passed += 1,
            (false, 2) => self.errors += 1,
            (false, _) => self.failed += 1,
        }
        self.latency_sum_ms += r.latency_ms;
        self.latency.0[bucket] += 1;
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        self.cost_nusd += (r.cost_usd * NANOS_PER_USD).round() as i64;
    }

    /// Adds another row's sums.
    pub fn add(&mut self, o: &Self) {
        self.count += o.count;
        self.passed += o.passed;
        self.failed += o.failed;
        self.errors += o.errors;
        self.latency_sum_ms += o.latency_sum_ms;
        self.latency.add(&o.latency);
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_nusd += o.cost_nusd;
    }

    /// Cost in dollars.
    pub fn cost_usd(&self) -> f64 {
        self.cost_nusd as f64 / NANOS_PER_USD
    }
}

/// The facts of one result a rollup needs.
#[derive(Debug, Clone, Copy)]
pub struct ResultFacts<'a> {
    /// When it was stored, unix ms.
    pub created_at: i64,
    /// Its execution's suite (0: inline).
    pub suite_id: i64,
    /// Provider id.
    pub provider: &'a str,
    /// Model.
    pub model: &'a str,
    /// Passed.
    pub passed: bool,
    /// 0 none, 1 assertion, 2 error.
    pub failure_reason: u8,
    /// Provider latency, ms.
    pub latency_ms: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// US dollars.
    pub cost_usd: f64,
}

/// Rollup deltas of a batch, by key, for both tiers.
#[derive(Debug, Clone, Default)]
pub struct Rollups {
    /// Minute rows older than this are not kept (retention); 0 keeps all.
    pub minute_since: i64,
    /// The batch's distinct (suite, provider, model): few per batch, so
    /// rows name them by index instead of copying strings.
    groups: Vec<(i64, Arc<str>, Arc<str>)>,
    /// (group, resolution, bucket start) -> sums.
    deltas: HashMap<(usize, i64, i64), RollupSums, foldhash::fast::RandomState>,
}

/// The start of `ms`'s bucket at `resolution_s`.
pub fn align(ms: i64, resolution_s: i64) -> i64 {
    ms - ms.rem_euclid(resolution_s * 1000)
}

impl Rollups {
    /// Empty, keeping minute rows from `minute_since` (unix ms) on.
    pub fn since(minute_since: i64) -> Self {
        Self {
            minute_since,
            ..Self::default()
        }
    }

    /// Counts a result into its minute and hour buckets.
    pub fn observe(&mut self, r: &ResultFacts<'_>) {
        let group = match self
            .groups
            .iter()
            .rposition(|(s, p, m)| *s == r.suite_id && **p == *r.provider && **m == *r.model)
        {
            Some(g) => g,
            None => {
                self.groups
                    .push((r.suite_id, r.provider.into(), r.model.into()));
                self.groups.len() - 1
            }
        };
        let bucket = LatencyHistogram::bucket_of(r.latency_ms);
        for resolution_s in [MINUTE, HOUR] {
            let start = align(r.created_at, resolution_s);
            if resolution_s == MINUTE && start < self.minute_since {
                continue;
            }
            self.deltas
                .entry((group, resolution_s, start))
                .or_default()
                .observe_in(r, bucket);
        }
    }

    /// Whether nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }

    /// The deltas with their keys.
    fn keyed(&self) -> impl Iterator<Item = (RollupKey, &RollupSums)> {
        self.deltas
            .iter()
            .map(|(&(g, resolution_s, bucket_start), sums)| {
                let (suite_id, provider, model) = &self.groups[g];
                let key = RollupKey {
                    resolution_s,
                    bucket_start,
                    suite_id: *suite_id,
                    provider: provider.clone(),
                    model: model.clone(),
                };
                (key, sums)
            })
    }

    /// Adds every delta to its stored row: one upsert per key, the
    /// histograms added by `rollup_hist_add` inside SQLite.
    pub fn apply(&self, conn: &Connection) -> rusqlite::Result<()> {
        let mut upsert = conn.prepare_cached(
            "INSERT INTO rollups (resolution_s, bucket_start, suite_id, provider, model, count,
                 passed, failed, errors, latency_sum_ms, latency_hist, input_tokens,
                 output_tokens, cost_nusd)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT DO UPDATE SET
                 count = count + excluded.count,
                 passed = passed + excluded.passed,
                 failed = failed + excluded.failed,
                 errors = errors + excluded.errors,
                 latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms,
                 latency_hist = rollup_hist_add(latency_hist, excluded.latency_hist),
                 input_tokens = input_tokens + excluded.input_tokens,
                 output_tokens = output_tokens + excluded.output_tokens,
                 cost_nusd = cost_nusd + excluded.cost_nusd",
        )?;
        for (k, d) in self.keyed() {
            upsert.execute(params![
                k.resolution_s,
                k.bucket_start,
                k.suite_id,
                &*k.provider,
                &*k.model,
                d.count,
                d.passed,
                d.failed,
                d.errors,
                d.latency_sum_ms,
                d.latency.encode(),
                d.input_tokens,
                d.output_tokens,
                d.cost_nusd
            ])?;
        }
        Ok(())
    }
}

/// Registers `rollup_hist_add(a, b)`, the sum of two stored histograms, on
/// a writing connection.
pub(super) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "rollup_hist_add",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let mut h = LatencyHistogram::default();
            h.add_encoded(ctx.get_raw(0).as_blob()?);
            h.add_encoded(ctx.get_raw(1).as_blob()?);
            Ok(h.encode())
        },
    )
}

/// Recomputes every rollup from the raw results (minute rows only from
/// `minute_since` on); returns the rows written.
pub fn rebuild(conn: &Connection, minute_since: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM rollups", [])?;
    let mut rollups = Rollups::since(minute_since);
    let mut stmt = conn.prepare(
        "SELECT r.created_at, coalesce(e.suite_id, 0), r.provider, r.model, r.passed,
                r.failure_reason, r.execution_time_ms, r.input_tokens, r.output_tokens,
                r.cost_usd
         FROM test_results r JOIN executions e ON e.id = r.execution_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (provider, model): (String, String) = (row.get(2)?, row.get(3)?);
        rollups.observe(&ResultFacts {
            created_at: row.get(0)?,
            suite_id: row.get(1)?,
            provider: &provider,
            model: &model,
            passed: row.get(4)?,
            failure_reason: row.get(5)?,
            latency_ms: row.get(6)?,
            input_tokens: row.get(7)?,
            output_tokens: row.get(8)?,
            cost_usd: row.get(9)?,
        });
    }
    let written = rollups.deltas.len();
    rollups.apply(conn)?;
    Ok(written)
}

/// Drops minute rows older than `before` (retention); returns how many.
pub fn compact(conn: &Connection, before: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM rollups WHERE resolution_s = 60 AND bucket_start < ?1")?
        .execute([before])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_first_bucket_whose_bound_holds_them() {
        assert_eq!(LatencyHistogram::bucket_of(0), 0);
        assert_eq!(LatencyHistogram::bucket_of(1), 0);
        assert_eq!(LatencyHistogram::bucket_of(2), 4, "2 ms = 2^(4/4)");
        assert_eq!(
            LatencyHistogram::bucket_of(3),
            7,
            "2^(6/4) = 2.83 < 3 <= 2^(7/4) = 3.36"
        );
        assert_eq!(LatencyHistogram::bucket_of(1024), 40);
        assert_eq!(LatencyHistogram::bucket_of(1025), 41);
        assert_eq!(
            LatencyHistogram::bucket_of(10_000_000),
            FINITE_BUCKETS,
            "+Inf"
        );
        for ms in [1i64, 2, 5, 99, 100, 101, 999, 60_000, 700_000] {
            let k = LatencyHistogram::bucket_of(ms);
            assert!(bucket_upper_ms(k) >= ms as f64, "{ms} in {k}");
            if k > 0 {
                assert!(bucket_upper_ms(k - 1) < ms as f64, "{ms} not in {}", k - 1);
            }
        }
    }

    #[test]
    fn histograms_round_trip_and_add() {
        let mut h = LatencyHistogram::default();
        for ms in [3, 3, 900, 70_000] {
            h.observe(ms);
        }
        let mut back = LatencyHistogram::default();
        back.add_encoded(&h.encode());
        assert_eq!(back, h);
        back.add(&h);
        assert_eq!(back.count(), 8);
    }

    #[test]
    fn a_batch_folds_into_one_delta_per_bucket_and_key() {
        let mut r = Rollups::default();
        let base = 1_764_000_000_000; // aligned to the hour
        for (i, model) in ["a", "a", "b"].iter().enumerate() {
            r.observe(&ResultFacts {
                created_at: base + i as i64 * 1000,
                suite_id: 1,
                provider: "p",
                model,
                passed: i != 1,
                failure_reason: if i == 1 { 2 } else { 0 },
                latency_ms: 100,
                input_tokens: 10,
                output_tokens: 20,
                cost_usd: 0.000_123_4,
            });
        }
        assert_eq!(r.deltas.len(), 4, "two models x two tiers");
        let (_, a) = r
            .keyed()
            .find(|(k, _)| {
                *k == RollupKey {
                    resolution_s: MINUTE,
                    bucket_start: base,
                    suite_id: 1,
                    provider: "p".into(),
                    model: "a".into(),
                }
            })
            .unwrap();
        assert_eq!(
            (a.count, a.passed, a.errors, a.cost_nusd),
            (2, 1, 1, 246_800)
        );
        // Outside the minute retention only the hour tier counts.
        let mut old = Rollups::since(base + 1);
        old.observe(&ResultFacts {
            created_at: base,
            suite_id: 0,
            provider: "p",
            model: "a",
            passed: true,
            failure_reason: 0,
            latency_ms: 1,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
        });
        assert_eq!(old.deltas.len(), 1);
    }
}
