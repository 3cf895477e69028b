//! Host and process readings through `sysinfo`: CPU, memory, disks and
//! their I/O, network traffic, and this process's CPU, memory, threads and
//! open files.

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind,
    ProcessesToUpdate, System,
};

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

/// The host, kept between readings (CPU usage is a difference of counters).
pub struct Host {
    system: System,
    disks: Disks,
    networks: Networks,
    pid: Option<Pid>,
}

impl Host {
    /// Takes the first readings, which later ones are measured against.
    pub fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        let pid = sysinfo::get_current_pid().ok();
        let disks = Disks::new_with_refreshed_list_specifics(
            DiskRefreshKind::nothing().with_storage().with_io_usage(),
        );
        let networks = Networks::new_with_refreshed_list();
        let mut host = Self {
            system,
            disks,
            networks,
            pid,
        };
        host.refresh_process();
        host
    }

    fn refresh_process(&mut self) {
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
        }
    }

    /// Reads everything; rates cover the time since the previous call.
    pub fn read(&mut self) -> HostReading {
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.refresh_process();
        self.disks.refresh_specifics(
            true,
            DiskRefreshKind::nothing().with_storage().with_io_usage(),
        );
        self.networks.refresh(true);

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
        for n in self.networks.list().values() {
            r.network_received_bytes += n.received();
            r.network_transmitted_bytes += n.transmitted();
        }
        if let Some(p) = self.pid.and_then(|pid| self.system.process(pid)) {
            r.process_cpu_cores = f64::from(p.cpu_usage()) / 100.0;
            r.process_rss_bytes = p.memory();
            r.process_threads = p.tasks().map(|t| t.len() as u64);
            r.process_open_fds = p.open_files().map(|n| n as u64);
        }
        r
    }
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
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
}
