//! Memory leak detection: a least-squares line through the process's
//! resident memory over a sliding window. Sustained growth is a slope above
//! a rate with a good fit (R²): a sawtooth of allocations and frees fits
//! badly, a leak fits well.

use serde::Serialize;

/// How far back the fit looks.
pub const WINDOW_SECS: f64 = 30.0 * 60.0;
/// Least spacing of the points the fit takes (at most 450 in the window,
/// however short the sampling interval; below the 5 s default so a tick
/// that comes a millisecond early is not skipped).
pub const STEP_SECS: f64 = 4.0;
/// The fit needs samples covering at least this much of the window.
pub const MIN_SPAN_SECS: f64 = 10.0 * 60.0;
/// Growth worth an alert: 1 MiB per minute.
pub const MIN_GROWTH_BYTES_PER_SEC: f64 = 1024.0 * 1024.0 / 60.0;
/// A fit at least this good.
pub const MIN_R2: f64 = 0.8;
/// Fewer samples say nothing.
const MIN_SAMPLES: usize = 10;

/// A fitted line `bytes = intercept + slope x seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fit {
    /// Growth, bytes per second.
    pub slope: f64,
    /// Bytes at t = 0.
    pub intercept: f64,
    /// Coefficient of determination (0-1; 1 for a perfect line).
    pub r2: f64,
    /// Samples used.
    pub samples: usize,
    /// Seconds between the first and last sample.
    pub span_secs: f64,
}

/// Least squares through `(seconds, bytes)` points; `None` with fewer than
/// two distinct times.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in points {
        let (dx, dy) = (x - mean_x, y - mean_y);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    // A flat line explains a constant series perfectly.
    let r2 = if syy == 0.0 {
        1.0
    } else {
        (sxy * sxy) / (sxx * syy)
    };
    let first = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let last = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    Some(Fit {
        slope,
        intercept: mean_y - slope * mean_x,
        r2,
        samples: points.len(),
        span_secs: last - first,
    })
}

/// The verdict over the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeakAssessment {
    /// The fit, when there were enough samples.
    pub fit: Option<Fit>,
    /// Growth to alert on: the slope when the fit is long and good enough, else 0.
    pub growth_bytes_per_sec: f64,
    /// Whether it looks like a leak.
    pub suspected: bool,
}

/// Fits `points` and decides.
pub fn assess(points: &[(f64, f64)]) -> LeakAssessment {
    let fit = fit(points).filter(|f| f.samples >= MIN_SAMPLES);
    let trusted = fit.filter(|f| f.span_secs >= MIN_SPAN_SECS && f.r2 >= MIN_R2);
    let growth = trusted.map_or(0.0, |f| f.slope.max(0.0));
    LeakAssessment {
        fit,
        growth_bytes_per_sec: growth,
        suspected: growth >= MIN_GROWTH_BYTES_PER_SEC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_line_is_recovered() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, 100.0 + 3.0 * i as f64))
            .collect();
        let f = fit(&pts).unwrap();
        assert!((f.slope - 3.0).abs() < 1e-12 && (f.intercept - 100.0).abs() < 1e-9);
        assert!((f.r2 - 1.0).abs() < 1e-12);
        assert_eq!((f.samples, f.span_secs), (10, 9.0));
    }

    #[test]
    fn a_hand_computed_fit() {
        // x = 1..5, y = 2, 4, 5, 4, 5: slope 0.6, intercept 2.2, R² 0.6.
        let pts = [(1.0, 2.0), (2.0, 4.0), (3.0, 5.0), (4.0, 4.0), (5.0, 5.0)];
        let f = fit(&pts).unwrap();
        assert!((f.slope - 0.6).abs() < 1e-12, "{f:?}");
        assert!((f.intercept - 2.2).abs() < 1e-12, "{f:?}");
        assert!((f.r2 - 0.6).abs() < 1e-12, "{f:?}");
        assert!(fit(&[(1.0, 2.0)]).is_none());
        assert!(fit(&[(1.0, 2.0), (1.0, 3.0)]).is_none());
    }

    /// 30 minutes of samples every 5 s.
    fn series(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..360)
            .map(|i| (i as f64 * 5.0, f(i as f64 * 5.0)))
            .collect()
    }

    #[test]
    fn steady_growth_is_a_leak_and_a_sawtooth_or_a_plateau_is_not() {
        // 4 MiB per minute with some noise.
        let leak = assess(&series(|t| {
            200e6 + t * 4.0 * 1024.0 * 1024.0 / 60.0 + 3e6 * (t * 0.7).sin()
        }));
        assert!(leak.suspected, "{leak:?}");
        assert!(leak.fit.unwrap().r2 > 0.9);
        // Allocate and free every 5 minutes: no trend.
        let saw = assess(&series(|t| 200e6 + 50e6 * ((t % 300.0) / 300.0)));
        assert!(!saw.suspected, "{saw:?}");
        let flat = assess(&series(|_| 150e6));
        assert!(!flat.suspected && flat.growth_bytes_per_sec == 0.0);
        // Slow growth, however clean, is under the rate.
        let slow = assess(&series(|t| 100e6 + t * 1000.0));
        assert!(!slow.suspected, "{slow:?}");
    }

    #[test]
    fn too_short_a_history_says_nothing() {
        let pts: Vec<(f64, f64)> = (0..60)
            .map(|i| (i as f64 * 5.0, 1e8 + i as f64 * 1e7))
            .collect();
        let a = assess(&pts);
        assert!(a.fit.is_some() && !a.suspected && a.growth_bytes_per_sec == 0.0);
    }
}
