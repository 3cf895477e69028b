//! Warning and critical thresholds: the one source of truth. The monitor
//! evaluates them, exports them as `promptgauge_monitor_threshold`, and the
//! Prometheus alert rules are checked against [`Thresholds::default`].

use serde::Serialize;

/// How bad a breach is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Look soon.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// Both, in order.
    pub const ALL: [Severity; 2] = [Severity::Warning, Severity::Critical];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// A warning and a critical level, in the signal's unit; a value at or
/// above a level breaches it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Levels {
    /// Warning level.
    pub warning: f64,
    /// Critical level.
    pub critical: f64,
}

impl Levels {
    /// The level of `severity`.
    pub fn get(&self, severity: Severity) -> f64 {
        match severity {
            Severity::Warning => self.warning,
            Severity::Critical => self.critical,
        }
    }
}

/// Every threshold, in base units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    /// Host CPU busy share (0-1).
    pub cpu: Levels,
    /// Host memory used share (0-1); warning from `MEMORY_THRESHOLD`.
    pub memory: Levels,
    /// p95 HTTP response time over the interval, seconds.
    pub response_time: Levels,
    /// 5xx responses / all responses over the interval (0-1).
    pub error_rate: Levels,
    /// Jobs waiting to start.
    pub queue_length: Levels,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            cpu: Levels {
                warning: 0.70,
                critical: 0.90,
            },
            memory: Levels {
                warning: 0.80,
                critical: 0.95,
            },
            response_time: Levels {
                warning: 1.0,
                critical: 5.0,
            },
            error_rate: Levels {
                warning: 0.05,
                critical: 0.10,
            },
            queue_length: Levels {
                warning: 100.0,
                critical: 500.0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones_and_warning_is_below_critical() {
        let t = Thresholds::default();
        assert_eq!((t.cpu.warning, t.cpu.critical), (0.70, 0.90));
        assert_eq!((t.memory.warning, t.memory.critical), (0.80, 0.95));
        assert_eq!(
            (t.response_time.warning, t.response_time.critical),
            (1.0, 5.0)
        );
        assert_eq!((t.error_rate.warning, t.error_rate.critical), (0.05, 0.10));
        assert_eq!(
            (t.queue_length.warning, t.queue_length.critical),
            (100.0, 500.0)
        );
        for l in [
            t.cpu,
            t.memory,
            t.response_time,
            t.error_rate,
            t.queue_length,
        ] {
            assert!(l.warning < l.critical);
            assert_eq!(l.get(Severity::Critical), l.critical);
        }
    }
}
