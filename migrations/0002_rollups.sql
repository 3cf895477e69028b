-- Rollups keyed by suite and provider as well as model, with failed
-- counts and cost in integer nano-dollars (sums that do not depend on
-- order, so a rebuild reproduces them exactly). Replaces 0001's
-- result_rollups, which nothing wrote. The rows are backfilled from
-- test_results right after this file runs, in the same transaction.
DROP TABLE result_rollups;

CREATE TABLE rollups (
    resolution_s   INTEGER NOT NULL CHECK (resolution_s IN (60, 3600)),
    bucket_start   INTEGER NOT NULL,          -- unix ms, aligned to resolution
    suite_id       INTEGER NOT NULL,          -- the execution's suite; 0 for inline suites
    provider       TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    count          INTEGER NOT NULL,
    passed         INTEGER NOT NULL,
    failed         INTEGER NOT NULL,
    errors         INTEGER NOT NULL,
    latency_sum_ms INTEGER NOT NULL,
    latency_hist   BLOB    NOT NULL,          -- 81 little-endian u32 counts: <= 2^(k/4) ms, then +Inf
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    cost_nusd      INTEGER NOT NULL,          -- US dollars x 1e9
    PRIMARY KEY (resolution_s, bucket_start, suite_id, provider, model)
) WITHOUT ROWID;
