//! Host and process readings: CPU, memory, disks and their I/O through
//! `sysinfo`; network traffic from `/proc/net/dev`; this process's CPU,
//! memory, threads and open files from the Prometheus process collector.

use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, System};

/// What the host and this process look like now (rates over the time
/// since the previous reading).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostReading {
    /// Busy share of all cores (0-1).
    pub cpu_ratio: f64,
    /// Memory in use (total minus available) as a share of total (0-1).
    pub memory_ratio: f64,
    /// Memory in use, bytes.
    pub memory_used_bytes: u64,
    /// Memory in all, bytes.
    pub memory_total_bytes: u64,
    /// Used share of each mounted disk, by mount point.
    pub disks: Vec<(String, f64)>,
    /// Bytes read from all disks since the previous reading.
    pub disk_read_bytes: u64,
    /// Bytes written to all disks since the previous reading.
    pub disk_written_bytes: u64,
    /// Bytes received on all interfaces since the previous reading.
    pub network_received_bytes: u64,
    /// Bytes sent on all interfaces since the previous reading.
    pub network_transmitted_bytes: u64,
    /// This process: cores busy (1.0 = one core).
    pub process_cpu_cores: f64,
    /// This process: resident memory, bytes.
    pub process_rss_bytes: u64,
    /// This process: threads.
    pub process_threads: Option<u64>,
    /// This process: open file descriptors.
    pub process_open_fds: Option<u64>,
}

/// The host, kept between readings (CPU usage and I/O are differences of
/// counters).
pub struct Host {
    system: System,
    disks: Disks,
    /// Network byte totals at the previous reading.
    network: Option<(u64, u64)>,
    process: Process,
}

impl Host {
    /// Takes the first readings, which later ones are measured against.
    pub fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        let disks = Disks::new_with_refreshed_list_specifics(
            DiskRefreshKind::nothing().with_storage().with_io_usage(),
        );
        let mut process = Process::new();
        process.read();
        Self {
            system,
            disks,
            network: network_totals(),
            process,
        }
    }

    /// Reads everything; rates cover the time since the previous call.
    pub fn read(&mut self) -> HostReading {
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.disks.refresh_specifics(
            true,
            DiskRefreshKind::nothing().with_storage().with_io_usage(),
        );

        let total = self.system.total_memory();
        let used = total.saturating_sub(self.system.available_memory());
        let mut r = HostReading {
            cpu_ratio: f64::from(self.system.global_cpu_usage()).clamp(0.0, 100.0) / 100.0,
            memory_ratio: if total > 0 {
                used as f64 / total as f64
            } else {
                0.0
            },
            memory_used_bytes: used,
            memory_total_bytes: total,
            ..HostReading::default()
        };
        for d in self.disks.list() {
            let usage = d.usage();
            r.disk_read_bytes += usage.read_bytes;
            r.disk_written_bytes += usage.written_bytes;
            if d.total_space() > 0 {
                let used = d.total_space().saturating_sub(d.available_space());
                r.disks.push((
                    d.mount_point().display().to_string(),
                    used as f64 / d.total_space() as f64,
                ));
            }
        }
        r.disks.sort_by(|a, b| a.0.cmp(&b.0));
        r.disks.dedup_by(|a, b| a.0 == b.0);
        let network = network_totals();
        if let (Some((rx, tx)), Some((rx0, tx0))) = (network, self.network) {
            // An interface that went away makes totals drop: no traffic then.
            r.network_received_bytes = rx.saturating_sub(rx0);
            r.network_transmitted_bytes = tx.saturating_sub(tx0);
        }
        self.network = network;
        let p = self.process.read();
        r.process_cpu_cores = p.cpu_cores;
        r.process_rss_bytes = p.rss_bytes;
        r.process_threads = p.threads;
        r.process_open_fds = p.open_fds;
        r
    }
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

/// This process's figures.
#[derive(Debug, Default)]
struct ProcessReading {
    cpu_cores: f64,
    rss_bytes: u64,
    threads: Option<u64>,
    open_fds: Option<u64>,
}

/// This process, read through the same collector that gives `/metrics`
/// its `process_*` series, so the monitor and Prometheus see one number.
/// (sysinfo's per-process refresh lists every thread: ten times the cost.)
struct Process {
    #[cfg(target_os = "linux")]
    collector: prometheus::process_collector::ProcessCollector,
    /// CPU seconds and when they were read.
    last_cpu: Option<(std::time::Instant, f64)>,
}

impl Process {
    fn new() -> Self {
        Self {
            #[cfg(target_os = "linux")]
            collector: prometheus::process_collector::ProcessCollector::for_self(),
            last_cpu: None,
        }
    }

    #[cfg(target_os = "linux")]
    fn read(&mut self) -> ProcessReading {
        use prometheus::core::Collector;
        let mut r = ProcessReading::default();
        let mut cpu_seconds = None;
        for family in self.collector.collect() {
            let Some(m) = family.get_metric().first() else {
                continue;
            };
            match family.name() {
                "process_cpu_seconds_total" => cpu_seconds = Some(m.get_counter().get_value()),
                "process_resident_memory_bytes" => r.rss_bytes = m.get_gauge().get_value() as u64,
                "process_threads" => r.threads = Some(m.get_gauge().get_value() as u64),
                "process_open_fds" => r.open_fds = Some(m.get_gauge().get_value() as u64),
                _ => {}
            }
        }
        let now = std::time::Instant::now();
        if let (Some(cpu), Some((then, before))) = (cpu_seconds, self.last_cpu) {
            let secs = now.duration_since(then).as_secs_f64();
            if secs > 0.0 {
                r.cpu_cores = ((cpu - before) / secs).max(0.0);
            }
        }
        if let Some(cpu) = cpu_seconds {
            self.last_cpu = Some((now, cpu));
        }
        r
    }

    #[cfg(not(target_os = "linux"))]
    fn read(&mut self) -> ProcessReading {
        ProcessReading::default()
    }
}

/// Bytes received and sent by every interface but loopback, from
/// `/proc/net/dev` (one read; sysinfo opens files per interface and
/// counter, about 15 times slower). `None` where there is no such file.
fn network_totals() -> Option<(u64, u64)> {
    parse_net_dev(&std::fs::read_to_string("/proc/net/dev").ok()?)
}

fn parse_net_dev(text: &str) -> Option<(u64, u64)> {
    let (mut rx, mut tx) = (0, 0);
    // Two header lines, then `iface: rx_bytes packets errs drop fifo frame
    // compressed multicast tx_bytes ...`.
    for line in text.lines().skip(2) {
        let (name, counters) = line.split_once(':')?;
        if name.trim() == "lo" {
            continue;
        }
        let mut fields = counters.split_whitespace().map(|f| f.parse::<u64>().ok());
        rx += fields.next()??;
        tx += fields.nth(7)??;
    }
    Some((rx, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_plausible() {
        let mut host = Host::new();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let r = host.read();
        assert!((0.0..=1.0).contains(&r.cpu_ratio), "{r:?}");
        assert!(r.memory_ratio > 0.0 && r.memory_ratio <= 1.0, "{r:?}");
        assert!(r.memory_used_bytes > 0 && r.memory_used_bytes <= r.memory_total_bytes);
        if cfg!(target_os = "linux") {
            assert!(r.process_rss_bytes > 1_000_000, "{r:?}");
            assert!(r.process_threads.unwrap_or(0) >= 1, "{r:?}");
            assert!(r.process_open_fds.unwrap_or(0) >= 3, "{r:?}");
            assert!(r.disks.iter().all(|(_, u)| (0.0..=1.0).contains(u)));
        }
    }

    #[test]
    fn net_dev_sums_every_interface_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9000      10    0    0    0     0          0         0     9000      10    0    0    0     0       0          0
  eth0: 1500      12    0    0    0     0          0         0      700       9    0    0    0     0       0          0
  eth1:   25       1    0    0    0     0          0         0       30       1    0    0    0     0       0          0
";
        assert_eq!(parse_net_dev(text), Some((1525, 730)));
        assert_eq!(parse_net_dev("h\nh\n  eth0: x y\n"), None);
    }
}
