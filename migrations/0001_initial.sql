-- promptgauge schema, version 1.
-- Times are unix milliseconds (INTEGER). JSON documents are TEXT.
-- On hot tables (executions, jobs, test_results) CHECKs avoid `x IN (a, b, c)`:
-- SQLite evaluates an IN list of three or more by building a temporary
-- b-tree on every row written, which cost the writer a fifth of its time.
-- Append-only: never edit a released migration; add 0002_*.sql instead.

-- A test suite as submitted (promptfoo-style YAML or JSON), plus its parts.
CREATE TABLE suites (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    description TEXT,
    format      TEXT    NOT NULL CHECK (format IN ('yaml', 'json')),
    source      TEXT    NOT NULL,              -- the document as submitted
    config      TEXT    NOT NULL,              -- normalized JSON
    config_hash TEXT    NOT NULL,              -- sha256 of config, to spot re-submissions
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX suites_config_hash ON suites (config_hash);

CREATE TABLE prompts (
    id       INTEGER PRIMARY KEY,
    suite_id INTEGER NOT NULL REFERENCES suites (id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,                 -- position in the suite's prompt list
    label    TEXT,
    raw      TEXT    NOT NULL,
    UNIQUE (suite_id, idx)
);

CREATE TABLE test_cases (
    id          INTEGER PRIMARY KEY,
    suite_id    INTEGER NOT NULL REFERENCES suites (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,              -- position in the suite's test list
    description TEXT,
    vars        TEXT    NOT NULL DEFAULT '{}',
    assertions  TEXT    NOT NULL DEFAULT '[]',
    threshold   REAL,
    metadata    TEXT    NOT NULL DEFAULT '{}',
    UNIQUE (suite_id, idx)
);

-- One run of a suite: prompts x providers x test cases, each a job.
CREATE TABLE executions (
    id              INTEGER PRIMARY KEY,
    suite_id        INTEGER REFERENCES suites (id) ON DELETE SET NULL,
    config          TEXT    NOT NULL,          -- the suite as run, JSON (inline suites have no suite_id)
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status = 'pending' OR status = 'running' OR status = 'completed'
                           OR status = 'failed' OR status = 'cancelled'),
    priority        TEXT    NOT NULL DEFAULT 'normal'
                    CHECK (priority = 'high' OR priority = 'normal' OR priority = 'low'),
    max_concurrency INTEGER,
    use_cache       INTEGER NOT NULL DEFAULT 1,
    total           INTEGER NOT NULL DEFAULT 0,
    first_job_id    INTEGER,                   -- its jobs (and results) have ids first_job_id .. + total
    passed          INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    errors          INTEGER NOT NULL DEFAULT 0,
    cost_usd        REAL    NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER
);
CREATE INDEX executions_status_created ON executions (status, created_at);
CREATE INDEX executions_created ON executions (created_at);

-- Persisted before anything runs, so a restart resumes unfinished work.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,         -- also the id of the job's test_results row
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    prompt_idx   INTEGER NOT NULL,
    provider_idx INTEGER NOT NULL,            -- position in the suite's providers
    test_idx     INTEGER NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status = 'pending' OR status = 'running' OR status = 'done' OR status = 'cancelled'),
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_execution_status ON jobs (execution_id, status);
-- Claiming scans only unfinished jobs, however many finished ones pile up.
CREATE INDEX jobs_unfinished ON jobs (status, execution_id, id) WHERE status IN ('pending', 'running');

-- One graded output. id = the job id, so a re-run job cannot store twice.
CREATE TABLE test_results (
    id                INTEGER PRIMARY KEY,
    execution_id      INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    prompt_idx        INTEGER NOT NULL,
    test_idx          INTEGER NOT NULL,
    provider          TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    passed            INTEGER NOT NULL CHECK (passed = 0 OR passed = 1),
    score             REAL    NOT NULL,
    failure_reason    INTEGER NOT NULL DEFAULT 0 CHECK (failure_reason BETWEEN 0 AND 2), -- promptfoo: none, assertion, error
    execution_time_ms INTEGER NOT NULL,       -- provider latency
    input_tokens      INTEGER NOT NULL DEFAULT 0,
    output_tokens     INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL    NOT NULL DEFAULT 0,
    cached            INTEGER NOT NULL DEFAULT 0,
    output            TEXT,
    error             TEXT,
    grading           TEXT,                   -- JSON: componentResults
    created_at        INTEGER NOT NULL
);
-- The seed's four indexes: time windows, latency percentiles, per model, per execution.
CREATE INDEX test_results_created_passed ON test_results (created_at, passed);
CREATE INDEX test_results_latency ON test_results (execution_time_ms, created_at) WHERE execution_time_ms > 0;
CREATE INDEX test_results_model ON test_results (model, passed, execution_time_ms);
CREATE INDEX test_results_execution ON test_results (execution_id, created_at, passed);

-- Per minute and per hour x model aggregates; analytics read these, not raw rows.
CREATE TABLE result_rollups (
    resolution_s   INTEGER NOT NULL CHECK (resolution_s IN (60, 3600)),
    bucket_start   INTEGER NOT NULL,          -- unix ms, aligned to resolution
    model          TEXT    NOT NULL,
    count          INTEGER NOT NULL DEFAULT 0,
    passed         INTEGER NOT NULL DEFAULT 0,
    errors         INTEGER NOT NULL DEFAULT 0,
    latency_sum_ms INTEGER NOT NULL DEFAULT 0,
    latency_hist   BLOB    NOT NULL,          -- fixed log-spaced buckets, little-endian u32 counts
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd       REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (resolution_s, bucket_start, model)
) WITHOUT ROWID;

-- Provider responses by hash of provider, model, parameters and rendered prompt.
CREATE TABLE provider_cache (
    key        TEXT    PRIMARY KEY,           -- hex sha256
    provider   TEXT    NOT NULL,
    model      TEXT    NOT NULL,
    response   TEXT    NOT NULL,              -- JSON: output, tokens, finish reason
    created_at INTEGER NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX provider_cache_expires ON provider_cache (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE optimization_suggestions (
    id                   INTEGER PRIMARY KEY,
    prompt_hash          TEXT    NOT NULL,
    strategy             TEXT    NOT NULL,
    title                TEXT    NOT NULL,
    detail               TEXT    NOT NULL,
    rewritten_prompt     TEXT,
    est_token_savings    INTEGER,
    est_cost_savings_usd REAL,
    evidence             TEXT    NOT NULL DEFAULT '{}',
    created_at           INTEGER NOT NULL
);
CREATE INDEX optimization_suggestions_prompt ON optimization_suggestions (prompt_hash, created_at);
CREATE INDEX optimization_suggestions_created ON optimization_suggestions (created_at);

CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    params      TEXT    NOT NULL DEFAULT '{}',
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    data        TEXT,                         -- JSON: computed sections
    timings     TEXT,                         -- JSON: section -> ms
    error       TEXT,
    created_at  INTEGER NOT NULL,
    duration_ms INTEGER
);
CREATE INDEX reports_created ON reports (created_at);

-- Monitor alert episodes: active ones are not resolved; history is kept.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    alertname   TEXT    NOT NULL,
    signal      TEXT    NOT NULL,
    severity    TEXT    NOT NULL CHECK (severity IN ('warning', 'critical')),
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    threshold   REAL    NOT NULL,
    value       REAL    NOT NULL,
    peak_value  REAL    NOT NULL,
    labels      TEXT    NOT NULL DEFAULT '{}',
    description TEXT,
    started_at  INTEGER NOT NULL,
    fired_at    INTEGER,
    resolved_at INTEGER
);
CREATE INDEX alerts_active ON alerts (alertname, severity) WHERE state <> 'resolved';
CREATE INDEX alerts_started ON alerts (started_at);

-- Downsampled monitor history, per metric and resolution.
CREATE TABLE monitor_samples (
    metric       TEXT    NOT NULL,
    resolution_s INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    value        REAL    NOT NULL,
    min          REAL,
    max          REAL,
    PRIMARY KEY (metric, resolution_s, ts)
) WITHOUT ROWID;

CREATE TABLE benchmark_runs (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    scenario    TEXT,
    revision    TEXT,
    machine     TEXT,                         -- JSON: cores, memory, os
    results     TEXT    NOT NULL,             -- JSON
    is_baseline INTEGER NOT NULL DEFAULT 0,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER
);
CREATE INDEX benchmark_runs_name ON benchmark_runs (name, started_at);

-- Small service facts: the health check writes here to prove the disk takes writes.
CREATE TABLE service_meta (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
