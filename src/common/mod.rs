//! Small helpers several layers share: timestamps and durations
//! ([`time`]), the process-wide TLS setup ([`tls`]), a pool of threads for
//! CPU-bound work ([`pool`]). Nothing here knows
//! another module of the crate.

pub mod files;
pub mod json;
pub mod memory;
pub mod pool;
pub mod time;
pub mod tls;
