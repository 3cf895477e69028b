//! The hot paths not covered by the other benches: rollup aggregation (the
//! writer's per-batch upkeep), percentile interpolation over a latency
//! histogram, prompt analysis (2,000 tokens) and its strategies, and the
//! WebSocket outbox's progress coalescing.
//!
//! `cargo bench --bench hot_paths`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use promptgauge::analytics::figures::{bucket_quantile, exact_quantile};
use promptgauge::bench::optimize::long_prompt;
use promptgauge::optimize::{analysis, strategies};
use promptgauge::storage::rollup::{LatencyHistogram, ResultFacts, RollupSums};

fn rollups(c: &mut Criterion) {
    let mut g = c.benchmark_group("rollup");
    let latencies: Vec<i64> = (0..5_000).map(|i| 50 + (i * 7919) % 20_000).collect();
    g.throughput(Throughput::Elements(latencies.len() as u64));
    g.bench_function("observe_5000_results", |b| {
        b.iter(|| {
            let mut sums = RollupSums::default();
            for (i, &latency_ms) in latencies.iter().enumerate() {
                sums.observe(&ResultFacts {
                    created_at: 1_700_000_000_000 + i as i64,
                    suite_id: 1,
                    provider: "openai:gpt-4o-mini",
                    model: "gpt-4o-mini",
                    passed: i % 7 != 0,
                    failure_reason: if i % 7 == 0 { 1 } else { 0 },
                    latency_ms,
                    input_tokens: 300,
                    output_tokens: 120,
                    cost_usd: 0.0004,
                });
            }
            black_box(sums)
        })
    });
    let mut h = LatencyHistogram::default();
    for &l in &latencies {
        h.observe(l);
    }
    let blob = h.encode();
    g.throughput(Throughput::Elements(1));
    g.bench_function("merge_encoded_histogram", |b| {
        b.iter(|| {
            let mut into = LatencyHistogram::default();
            into.add_encoded(black_box(&blob));
            black_box(into)
        })
    });
    g.finish();
}

fn percentiles(c: &mut Criterion) {
    let mut g = c.benchmark_group("percentile");
    let mut h = LatencyHistogram::default();
    let mut sorted: Vec<i64> = (0..10_000).map(|i| 20 + (i * 104_729) % 30_000).collect();
    for &l in &sorted {
        h.observe(l);
    }
    sorted.sort_unstable();
    g.bench_function("bucket_p50_p95_p99", |b| {
        b.iter(|| {
            black_box((
                bucket_quantile(&h, 0.5),
                bucket_quantile(&h, 0.95),
                bucket_quantile(&h, 0.99),
            ))
        })
    });
    g.bench_function("exact_p99_of_10000_sorted", |b| {
        b.iter(|| black_box(exact_quantile(black_box(&sorted), 0.99)))
    });
    g.finish();
}

fn prompt_analysis(c: &mut Criterion) {
    let mut g = c.benchmark_group("optimize");
    let prompt = long_prompt(2_000);
    let model = Some("gpt-4o");
    // Load the tokenizer outside the measurement.
    let a = analysis::analyze(&prompt, model);
    g.bench_function("analyze_2000_tokens", |b| {
        b.iter(|| black_box(analysis::analyze(black_box(&prompt), model)))
    });
    g.bench_function("conciseness_2000_tokens", |b| {
        b.iter(|| black_box(strategies::conciseness(&prompt, &a, model)))
    });
    g.finish();
}

fn coalescing(c: &mut Criterion) {
    let mut g = c.benchmark_group("progress");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("push_10000_progress_20_executions", |b| {
        b.iter(|| black_box(promptgauge::progress::coalesce_workload(20, 10_000, 50)))
    });
    g.finish();
}

criterion_group!(benches, rollups, percentiles, prompt_analysis, coalescing);
criterion_main!(benches);
