//! The health check: can the service read and write its database right now?
//!
//! Both checks run concurrently, each bounded by a timeout, and each goes
//! the real way: the write through the writer thread (answered after
//! COMMIT), the read on the read pool. Failures are reported without
//! internals; the details go to the log.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::storage::{Storage, StorageError};

/// How long a check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs health checks against the service's dependencies.
#[derive(Clone)]
pub struct Health {
    storage: Storage,
    started: Instant,
}

/// What `GET /api/performance/health` returns.
#[derive(Debug, Serialize)]
pub struct HealthReport {
    /// `ok`; `degraded` while a warning alert fires; `critical` when a
    /// check failed or a critical alert fires.
    pub status: &'static str,
    /// The monitor's verdict alone: `ok`, `degraded` or `critical`.
    pub alerts: &'static str,
    /// The running version.
    pub version: &'static str,
    /// The git revision it was built from.
    pub revision: &'static str,
    /// Seconds since the service started.
    pub uptime_seconds: f64,
    /// The schema version the read check saw.
    pub schema_version: Option<i64>,
    /// Each check by name.
    pub checks: Checks,
}

/// The individual checks.
#[derive(Debug, Serialize)]
pub struct Checks {
    /// A query on the read pool.
    pub database_read: Check,
    /// A durable write through the writer thread.
    pub database_write: Check,
}

/// One check's outcome.
#[derive(Debug, Serialize)]
pub struct Check {
    /// `ok` or `failed`.
    pub status: &'static str,
    /// How long it took.
    pub duration_ms: f64,
    /// Why it failed, without internals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HealthReport {
    /// True unless critical (a failed check or a critical alert).
    pub fn is_healthy(&self) -> bool {
        self.status != "critical"
    }

    /// Folds in the monitor's verdict (`ok`, `degraded`, `critical`).
    pub fn with_alerts(mut self, alerts: &'static str) -> Self {
        self.alerts = alerts;
        if self.status != "critical" && alerts != "ok" {
            self.status = alerts;
        }
        self
    }
}

impl Health {
    /// A checker for `storage`; uptime counts from now.
    pub fn new(storage: Storage) -> Self {
        Self {
            storage,
            started: Instant::now(),
        }
    }

    /// Runs every check.
    pub async fn check(&self) -> HealthReport {
        let (read, write) = tokio::join!(
            timed(self.storage.check_read()),
            timed(self.storage.check_write())
        );
        let (database_read, schema_version) = read;
        let (database_write, _) = write;
        let healthy = database_read.error.is_none() && database_write.error.is_none();
        HealthReport {
            status: if healthy { "ok" } else { "critical" },
            alerts: "ok",
            version: env!("CARGO_PKG_VERSION"),
            revision: env!("PROMPTGAUGE_REVISION"),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            schema_version,
            checks: Checks {
                database_read,
                database_write,
            },
        }
    }
}

async fn timed<T>(check: impl Future<Output = Result<T, StorageError>>) -> (Check, Option<T>) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, check).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (error, value) = match outcome {
        Ok(Ok(v)) => (None, Some(v)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check failed");
            let why = match e {
                StorageError::Busy { .. } => "database busy",
                StorageError::Closed => "storage is shut down",
                _ => "database error (details in the service log)",
            };
            (Some(why.to_owned()), None)
        }
        Err(_) => (
            Some(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
            None,
        ),
    };
    let status = if error.is_none() { "ok" } else { "failed" };
    (
        Check {
            status,
            duration_ms,
            error,
        },
        value,
    )
}
