//! Keeping the past: per-minute history rows from the ring of samples,
//! and component readings thinned with age.

use std::collections::{BTreeMap, VecDeque};

use super::signals::Sample;
use super::{HISTORY_RESOLUTION_S, RECENT, RING_SPAN};
use crate::storage::MonitorSampleRow;

/// Moves readings older than [`RECENT`] from `recent` to `older`, keeping
/// one a minute there, and forgets those older than [`RING_SPAN`].
pub(super) fn age_components<T>(
    recent: &mut VecDeque<(i64, T)>,
    older: &mut VecDeque<(i64, T)>,
    now: i64,
) {
    let recent_from = now - RECENT.as_millis() as i64;
    while let Some((t, r)) = recent.pop_front() {
        if t >= recent_from {
            recent.push_front((t, r));
            break;
        }
        if older.back().is_none_or(|(last, _)| t - last >= 60_000) {
            older.push_back((t, r));
        }
    }
    let oldest = now - RING_SPAN.as_millis() as i64;
    while older.front().is_some_and(|(t, _)| *t < oldest) {
        older.pop_front();
    }
}

/// Per-minute mean, min and max of every metric, for each whole minute
/// after `flushed` and before `current`.
pub(super) fn flush_minutes(
    ring: &VecDeque<Sample>,
    flushed: &mut i64,
    current: i64,
) -> Vec<MonitorSampleRow> {
    if current <= *flushed + 1 {
        return Vec::new();
    }
    let mut acc: BTreeMap<(i64, &str), (f64, f64, f64, u32)> = BTreeMap::new();
    for s in ring {
        let minute = s.at / 60_000;
        if minute <= *flushed || minute >= current {
            continue;
        }
        for (k, v) in &s.values {
            let e = acc.entry((minute, k.as_str())).or_insert((
                0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                0,
            ));
            e.0 += v;
            e.1 = e.1.min(*v);
            e.2 = e.2.max(*v);
            e.3 += 1;
        }
    }
    *flushed = current - 1;
    acc.into_iter()
        .map(|((minute, metric), (sum, min, max, n))| MonitorSampleRow {
            metric: metric.to_owned(),
            resolution_s: HISTORY_RESOLUTION_S,
            ts: minute * 60_000,
            value: sum / f64::from(n),
            min,
            max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, v: f64) -> Sample {
        Sample {
            at,
            values: BTreeMap::from([("x".to_owned(), v)]),
        }
    }

    #[test]
    fn whole_minutes_are_flushed_once_as_mean_min_and_max() {
        let ring: VecDeque<Sample> = [
            sample(60_000, 1.0),
            sample(90_000, 3.0),
            sample(120_000, 10.0),
            sample(150_000, 20.0),
        ]
        .into();
        let mut flushed = 0;
        let rows = flush_minutes(&ring, &mut flushed, 2);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].ts, rows[0].value, rows[0].min, rows[0].max),
            (60_000, 2.0, 1.0, 3.0)
        );
        assert!(
            flush_minutes(&ring, &mut flushed, 2).is_empty(),
            "the current minute waits"
        );
        let rows = flush_minutes(&ring, &mut flushed, 3);
        assert_eq!((rows[0].ts, rows[0].value), (120_000, 15.0));
    }

    #[test]
    fn component_readings_are_kept_per_cycle_for_5_minutes_then_per_minute_for_an_hour() {
        let (mut recent, mut older) = (VecDeque::new(), VecDeque::new());
        // Two hours of cycles every 5 s.
        for at in (0..7200).step_by(5).map(|s: i64| s * 1000) {
            recent.push_back((at, ()));
            age_components(&mut recent, &mut older, at);
        }
        let now = 7_195_000;
        assert_eq!(
            recent.len(),
            61,
            "every cycle of the last 5 minutes, both ends"
        );
        assert!(recent.iter().all(|(t, _)| *t >= now - 300_000));
        assert!(
            older
                .iter()
                .all(|(t, _)| *t < now - 300_000 && *t >= now - 3_600_000)
        );
        assert!(older.len() >= 54 && older.len() <= 56, "{}", older.len());
        let gaps: Vec<i64> = older
            .iter()
            .zip(older.iter().skip(1))
            .map(|(a, b)| b.0 - a.0)
            .collect();
        assert!(gaps.iter().all(|g| *g == 60_000), "{gaps:?}");
    }
}
