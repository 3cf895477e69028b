//! The process's open-file limit: raised at start-up to what the
//! connection limits need, as far as the hard limit allows.

/// Descriptors kept for everything but client connections: the database
/// and its WAL, provider connections, Alertmanager, logs.
pub const RESERVED: u64 = 2048;

/// The soft limit after trying to raise it to `wanted` (never lowered, and
/// never above the hard limit); `None` where it cannot be read.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn raise_open_file_limit(wanted: u64) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur >= wanted {
        return Some(limit.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: wanted.min(limit.rlim_max),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we own; raising the soft limit up
    // to the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        Some(raised.rlim_cur)
    } else {
        Some(limit.rlim_cur)
    }
}

/// Elsewhere the limit is left as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn raise_open_file_limit(_wanted: u64) -> Option<u64> {
    None
}

/// Client connections the open-file limit leaves room for, at most
/// `configured`.
pub fn connections_allowed(configured: usize, soft_limit: Option<u64>) -> usize {
    match soft_limit {
        Some(soft) => (soft.saturating_sub(RESERVED) as usize).clamp(16, configured.max(16)),
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_rises_and_connections_fit_under_it() {
        let soft = raise_open_file_limit(4096).unwrap();
        assert!(soft >= 1024, "{soft}");
        assert_eq!(connections_allowed(20_000, Some(1 << 20)), 20_000);
        assert_eq!(connections_allowed(20_000, Some(4096)), 2048);
        assert_eq!(connections_allowed(20_000, Some(256)), 16);
        assert_eq!(connections_allowed(500, None), 500);
    }
}
