//! [`CpuPool`]: a few OS threads for CPU-bound work (grading), fed by a
//! bounded queue, so the async workers that serve requests and drive
//! providers never compute for long. A task that panics is an error for
//! its caller; the thread lives on.
//!
//! It bounds where work runs, not how long it takes: each task must carry
//! its own budget (a regex step budget, a size limit).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

type Task = Box<dyn FnOnce() + Send>;

/// Why a task gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The task panicked; the message is the panic's.
    #[error("the task panicked: {0}")]
    Panicked(String),
    /// The pool's threads are gone (the process is shutting down).
    #[error("the worker pool is closed")]
    Closed,
}

/// A fixed set of named threads. Cheap to clone; the threads end when the
/// last handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct CpuPool {
    tx: mpsc::Sender<Task>,
    threads: usize,
}

impl CpuPool {
    /// Starts `threads` threads named `{name}-{i}`; at most `queue` tasks
    /// wait (callers of [`CpuPool::run`] wait beyond that).
    pub fn new(name: &str, threads: usize, queue: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Task>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        // One thread waits on the queue, the others on the lock.
                        let task = rx.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
                        match task {
                            Some(task) => task(),
                            None => return,
                        }
                    }
                })?;
        }
        Ok(Self { tx, threads })
    }

    /// A pool with one thread per core.
    pub fn per_core(name: &str, queue: usize) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(name, cores, queue)
    }

    /// Its threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on a pool thread and waits for its result. Dropping the
    /// future abandons the result, not the task: a task that started runs
    /// to its end.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let task: Task = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_text(&*p));
            let _ = done.send(outcome);
        });
        self.tx.send(task).await.map_err(|_| PoolError::Closed)?;
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(PoolError::Panicked(message)),
            Err(_) => Err(PoolError::Closed),
        }
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_pools_threads_and_a_panic_is_an_error() {
        let pool = CpuPool::new("test-pool", 2, 4).unwrap();
        let name = pool
            .run(|| std::thread::current().name().unwrap_or_default().to_owned())
            .await
            .unwrap();
        assert!(name.starts_with("test-pool-"), "{name}");
        let err = pool.run(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert_eq!(err, PoolError::Panicked("boom".into()));
        // The thread that panicked still serves.
        let answers: Vec<u32> =
            futures_util::future::join_all((0..20).map(|i| pool.run(move || i * 2)))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        assert_eq!(answers, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_pool_leaves_the_async_thread_free() {
        let pool = CpuPool::new("busy-pool", 1, 4).unwrap();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    wait.recv().unwrap();
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .await
            }
        });
        // The only async thread is free while the pool's thread is held.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}
