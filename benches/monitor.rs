//! The monitor's own cost: one evaluation cycle (host and process readings,
//! a registry snapshot, signals, alert evaluation, trends, leak fit) over
//! the real app's registry after real traffic (`common::populated`), with
//! fresh observations on its own series between cycles so every windowed
//! figure is computed.
//!
//! Criterion measures the parts; then 300 full cycles spaced 210 ms apart
//! (so every cycle refreshes the host readings, as at the default 5 s
//! interval) give the p50/p99/max of a cycle and its CPU time, from which
//! the share of one core at the default interval follows.
//!
//! `cargo bench --bench monitor`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use promptgauge::events::EventBus;
use promptgauge::metrics::Metrics;
use promptgauge::monitor::system::Host;
use promptgauge::monitor::{Monitor, MonitorConfig, Thresholds};
use promptgauge::storage::Storage;

mod common;
use common::populated;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const SPACED_CYCLES: usize = 300;
/// More than the 200 ms sysinfo needs between CPU readings.
const SPACING: Duration = Duration::from_millis(210);

/// What a busy service adds between two cycles.
fn traffic(m: &Metrics, k: u64) {
    for (i, route) in ["/api/executions", "/api/executions/{id}", "/metrics"]
        .iter()
        .enumerate()
    {
        let h = m.http.duration.with_label_values(&["GET", route]);
        for j in 0..20 {
            h.observe(0.001 * ((k + j + i as u64) % 300) as f64);
        }
        m.http
            .requests
            .with_label_values(&["GET", route, "200"])
            .inc_by(20);
    }
    // A series the real registry has (the driven traffic asked for an unknown execution).
    m.http
        .requests
        .with_label_values(&["GET", "/api/executions/{id}", "404"])
        .inc_by(k % 2);
    let p = m.providers.duration.with_label_values(&["mock", "fast"]);
    for j in 0..50 {
        p.observe(0.02 * ((k + j) % 100) as f64);
    }
    m.providers
        .requests
        .with_label_values(&["mock", "fast", "success"])
        .inc_by(50);
    m.queue.queue_wait.observe(0.01);
    m.queue.queue_length.set((k % 150) as i64);
}

fn monitor(m: Arc<Metrics>, storage: Storage) -> Monitor {
    Monitor::new(
        m,
        storage,
        EventBus::new(),
        MonitorConfig {
            interval: DEFAULT_INTERVAL,
            thresholds: Thresholds::default(),
            alert_for: Duration::from_secs(60),
            alertmanager: None,
            max_concurrent_tests: 20,
        },
    )
}

fn setup() -> (tempfile::TempDir, Arc<Metrics>, Monitor) {
    let dir = tempfile::tempdir().unwrap();
    let m = populated();
    let storage = Storage::open(&dir.path().join("bench.db"), m.storage.clone()).unwrap();
    let mon = monitor(m.clone(), storage);
    (dir, m, mon)
}

fn parts(c: &mut Criterion) {
    let (_dir, m, mon) = setup();
    let mut g = c.benchmark_group("monitor");
    // Back to back, sysinfo's CPU reading is reused (< 200 ms apart): this
    // is the registry snapshot, signals, evaluation and bookkeeping.
    let mut k = 0;
    g.bench_function("cycle_host_reading_reused", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                k += 1;
                traffic(&m, k);
                let t = Instant::now();
                mon.cycle();
                spent += t.elapsed();
            }
            spent
        })
    });
    let mut host = Host::new();
    g.bench_function("host_and_process_reading", |b| {
        b.iter(|| black_box(host.read()))
    });
    g.bench_function("api_overview", |b| b.iter(|| black_box(mon.overview())));
    g.bench_function("api_recommendations", |b| {
        b.iter(|| black_box(mon.recommendations()))
    });
    g.bench_function("api_bottlenecks_5m", |b| {
        b.iter(|| black_box(mon.bottlenecks(Duration::from_secs(300))))
    });
    g.finish();
}

/// CPU time of this process so far.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cpu_time() -> Duration {
    Duration::ZERO
}

/// Full cycles at realistic spacing: percentiles and CPU per cycle.
fn spaced() {
    let (_dir, m, mon) = setup();
    mon.cycle();
    let mut walls = Vec::with_capacity(SPACED_CYCLES);
    let mut cpu = Duration::ZERO;
    for k in 0..SPACED_CYCLES as u64 {
        traffic(&m, k);
        std::thread::sleep(SPACING);
        let (c0, t0) = (cpu_time(), Instant::now());
        mon.cycle();
        walls.push(t0.elapsed());
        cpu += cpu_time() - c0;
    }
    walls.sort();
    let pct = |q: f64| walls[((q * walls.len() as f64).ceil() as usize).clamp(1, walls.len()) - 1];
    let mean_cpu = cpu / SPACED_CYCLES as u32;
    let share = mean_cpu.as_secs_f64() / DEFAULT_INTERVAL.as_secs_f64();
    println!(
        "monitor/full_cycle ({SPACED_CYCLES} cycles, {} ms apart): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; CPU {:.3} ms per cycle = {:.4}% of one core at the default 5 s interval",
        SPACING.as_millis(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        walls.last().unwrap().as_secs_f64() * 1e3,
        mean_cpu.as_secs_f64() * 1e3,
        share * 100.0,
    );
}

criterion_group!(benches, parts);

fn main() {
    benches();
    spaced();
    Criterion::default().configure_from_args().final_summary();
}
