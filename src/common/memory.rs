//! Giving freed memory back to the system. glibc keeps what a large
//! request freed (a million-test suite's tree, a finished execution's
//! tests) in its heap, so the process would stay at its peak for good;
//! `malloc_trim` returns the free pages. Called after work that freed a
//! lot, and by a background task whenever much of the heap sits free; off
//! the async workers (it walks the heap).

/// Work at least this large (tests) is followed by a [`release`].
pub const LARGE: usize = 10_000;

/// Returns free heap pages to the system, on a blocking thread, when
/// `size` (tests, jobs) is at least [`LARGE`].
pub fn release_after(size: usize) {
    if size >= LARGE && tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::spawn_blocking(release);
    }
}

/// Free heap above which [`keep_trimmed`] gives pages back.
const FREE_HEAP_TRIM: usize = 64 * 1024 * 1024;
/// How often [`keep_trimmed`] looks.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Gives free heap back whenever more than 64 MiB of it sits unused
/// (whatever freed it: a finished execution, a report, a burst of
/// requests), looking every 10 s until `token` is cancelled.
pub async fn keep_trimmed(token: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = every.tick() => {
                if free_heap().is_some_and(|free| free > FREE_HEAP_TRIM) {
                    let _ = tokio::task::spawn_blocking(release).await;
                }
            }
        }
    }
}

/// Bytes the allocator holds free in its heap, where it can say.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_heap() -> Option<usize> {
    // SAFETY: mallinfo2 fills and returns a plain struct.
    let info = unsafe { libc::mallinfo2() };
    Some(info.fordblks)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn free_heap() -> Option<usize> {
    None
}

/// Returns free heap pages to the system now.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Elsewhere the allocator keeps its own counsel.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release() {}
