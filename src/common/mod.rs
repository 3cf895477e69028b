//! Small helpers several layers share: timestamps and durations
//! ([`time`]), the process-wide TLS setup ([`tls`]). Nothing here knows
//! another module of the crate.

pub mod json;
pub mod time;
pub mod tls;
