//! Which rows answer a window: whole hours from the hour tier, whole
//! minutes (while the minute tier keeps them) from the minute tier, and the
//! partial minutes or hours at the edges from raw results, so any
//! [from, to) is answered exactly. Pure: no IO.

use serde::Serialize;

use crate::storage::rollup::{HOUR, MINUTE, align};

/// Windows longer than this use the hour tier for their whole hours.
const HOURS_FROM_MS: i64 = 2 * 3_600_000;

/// A part of a window and where its rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Rollup rows of a tier (60 or 3600 s), buckets in [from, to).
    Tier {
        /// Resolution, seconds.
        resolution_s: i64,
        /// Start, unix ms, aligned.
        from: i64,
        /// End, unix ms, aligned.
        to: i64,
    },
    /// Raw results in [from, to).
    Raw {
        /// Start, unix ms.
        from: i64,
        /// End, unix ms.
        to: i64,
    },
}

/// Where a window's figures came from, as the answer states it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Milliseconds answered from the hour tier.
    pub hour_tier_ms: i64,
    /// From the minute tier.
    pub minute_tier_ms: i64,
    /// From raw results (the window's partial buckets).
    pub raw_ms: i64,
    /// Served from the cache.
    pub cached: bool,
}

impl Source {
    /// Tallies the segments of a plan.
    pub fn of(plan: &[Segment]) -> Self {
        let mut s = Self::default();
        for seg in plan {
            match *seg {
                Segment::Tier {
                    resolution_s: HOUR,
                    from,
                    to,
                } => s.hour_tier_ms += to - from,
                Segment::Tier { from, to, .. } => s.minute_tier_ms += to - from,
                Segment::Raw { from, to } => s.raw_ms += to - from,
            }
        }
        s
    }
}

fn ceil(ms: i64, resolution_s: i64) -> i64 {
    let a = align(ms, resolution_s);
    if a == ms { a } else { a + resolution_s * 1000 }
}

/// The segments answering [from, to) when minute rows exist from
/// `minute_since` on.
pub fn plan(from: i64, to: i64, minute_since: i64) -> Vec<Segment> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    let (h0, h1) = (ceil(from, HOUR), align(to, HOUR));
    if to - from > HOURS_FROM_MS && h0 < h1 {
        edge(from, h0, minute_since, &mut out);
        out.push(Segment::Tier {
            resolution_s: HOUR,
            from: h0,
            to: h1,
        });
        edge(h1, to, minute_since, &mut out);
    } else {
        edge(from, to, minute_since, &mut out);
    }
    out
}

/// A sub-window: whole minutes from the minute tier where it has them,
/// raw results for the rest.
fn edge(from: i64, to: i64, minute_since: i64, out: &mut Vec<Segment>) {
    if from >= to {
        return;
    }
    let (m0, m1) = (ceil(from.max(minute_since), MINUTE), align(to, MINUTE));
    if m0 >= m1 {
        out.push(Segment::Raw { from, to });
        return;
    }
    if from < m0 {
        out.push(Segment::Raw { from, to: m0 });
    }
    out.push(Segment::Tier {
        resolution_s: MINUTE,
        from: m0,
        to: m1,
    });
    if m1 < to {
        out.push(Segment::Raw { from: m1, to });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    fn covered(plan: &[Segment]) -> Vec<(i64, i64)> {
        plan.iter()
            .map(|s| match *s {
                Segment::Tier { from, to, .. } | Segment::Raw { from, to } => (from, to),
            })
            .collect()
    }

    #[test]
    fn a_plan_covers_the_window_exactly_once() {
        let base = 1_764_000_000_000 - 1_764_000_000_000 % H;
        for (from, to, since) in [
            (base + 7 * M + 123, base + 50 * H + 3 * M + 9, base - 10 * H),
            (base + 7 * M + 123, base + 50 * H + 3 * M + 9, base + 49 * H),
            (base + 5, base + 30 * M, 0),
            (base, base + 24 * H, base + 100 * H),
            (base + 1, base + 2, 0),
        ] {
            let p = plan(from, to, since);
            let spans = covered(&p);
            assert_eq!(spans.first().unwrap().0, from);
            assert_eq!(spans.last().unwrap().1, to);
            assert!(spans.windows(2).all(|w| w[0].1 == w[1].0), "{spans:?}");
            for s in &p {
                if let Segment::Tier {
                    resolution_s,
                    from,
                    to,
                } = *s
                {
                    assert_eq!(align(from, resolution_s), from);
                    assert_eq!(align(to, resolution_s), to);
                    if resolution_s == MINUTE {
                        assert!(from >= since, "no minute rows before retention");
                    }
                }
            }
        }
    }

    #[test]
    fn long_windows_use_hours_and_short_ones_minutes() {
        let base = 1_764_000_000_000 - 1_764_000_000_000 % H;
        let p = plan(base + 30 * M, base + 30 * H + 30 * M, 0);
        let s = Source::of(&p);
        assert_eq!(s.hour_tier_ms, 29 * H);
        assert_eq!(s.minute_tier_ms, 60 * M);
        assert_eq!(s.raw_ms, 0);
        let p = plan(base + 30 * M + 5, base + 90 * M, 0);
        let s = Source::of(&p);
        assert_eq!((s.hour_tier_ms, s.raw_ms), (0, M - 5));
        // Older than the minute tier: partial hours come from raw rows.
        let p = plan(base + 30 * M, base + 30 * H, base + 100 * H);
        let s = Source::of(&p);
        assert_eq!(
            (s.hour_tier_ms, s.minute_tier_ms, s.raw_ms),
            (29 * H, 0, 30 * M)
        );
    }
}
