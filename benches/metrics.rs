//! `/metrics` cost: gathering and text-encoding the real app's whole
//! registry after real traffic over every resource of the API
//! (`common::populated`).
//!
//! `cargo bench --bench metrics`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::populated;

fn encode(c: &mut Criterion) {
    let m = populated();
    let text = m.encode().unwrap();
    let series = text.iter().filter(|&&b| b == b'\n').count();
    eprintln!("exposition: {} bytes, {series} lines", text.len());
    c.bench_function("metrics/gather_and_encode_full_registry", |b| {
        b.iter(|| black_box(m.encode().unwrap()))
    });
}

criterion_group!(benches, encode);
criterion_main!(benches);
