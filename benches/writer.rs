//! Writer throughput: realistic test_results rows through the real writer
//! thread (group commit, four indexes), into an empty table and into a table
//! already holding 1,000,000 rows.
//!
//! `cargo bench --bench writer`. The 1M-row database is generated once and
//! cached under `target/tmp/bench/` (shared with `promptgauge bench`); each sample works on a fresh copy of it, so
//! every sample starts from the same state.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use promptgauge::bench::fixtures::{EXECUTIONS, create_executions, generate, remove_db, write_all};
use promptgauge::metrics::Metrics;
use promptgauge::storage::{Storage, now_ms};

/// Rows inserted per sample.
const ROWS: usize = 100_000;

fn bench_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How a sample ends: when the last write is acknowledged (what producers
/// see; the background checkpointer may still owe work), or after the
/// storage closed and folded the whole WAL into the database file.
#[derive(Clone, Copy)]
enum Until {
    Acknowledged,
    Checkpointed,
}

/// Opens `path`, inserts `ROWS` rows with `PRODUCERS` producers, times it.
fn sample(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    seed: u64,
    until: Until,
    preloaded: bool,
) -> Duration {
    rt.block_on(async {
        let metrics = Metrics::new().unwrap();
        let storage = Storage::open(path, metrics.storage.clone()).unwrap();
        let executions = if preloaded {
            // Created first by the generator, so their ids are 1..=EXECUTIONS.
            (1..=EXECUTIONS).collect()
        } else {
            create_executions(&storage).await.unwrap()
        };
        let rows = generate(
            &mut fastrand::Rng::with_seed(seed),
            ROWS,
            &executions,
            now_ms(),
        );
        let started = Instant::now();
        let acknowledged = write_all(&storage, rows).await.unwrap();
        storage.close().await;
        match until {
            Until::Acknowledged => acknowledged,
            Until::Checkpointed => started.elapsed(),
        }
    })
}

fn writer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("writer");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(ROWS as u64));
    let dir = bench_dir();
    let preloaded = rt
        .block_on(promptgauge::bench::fixtures::preloaded_db(&dir))
        .unwrap();
    let cases = [
        (
            "insert_100k_rows_into_empty_table",
            false,
            Until::Acknowledged,
        ),
        (
            "insert_100k_rows_into_empty_table_then_checkpoint",
            false,
            Until::Checkpointed,
        ),
        ("insert_100k_rows_with_1m_stored", true, Until::Acknowledged),
        (
            "insert_100k_rows_with_1m_stored_then_checkpoint",
            true,
            Until::Checkpointed,
        ),
    ];
    for (name, with_1m, until) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|i| {
                        let path = dir.join("sample.db");
                        remove_db(&path);
                        if with_1m {
                            std::fs::copy(&preloaded, &path).unwrap();
                        }
                        sample(&rt, &path, i, until, with_1m)
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
