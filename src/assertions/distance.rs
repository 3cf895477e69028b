//! `levenshtein`: edit distance in UTF-16 code units (as promptfoo's
//! fastest-levenshtein counts), within a budget of cells.
//!
//! The full table costs `n·m` cells: two 100,000-character texts are 10^10,
//! minutes of one core. Up to [`CELL_BUDGET`] cells the distance is exact;
//! beyond, only the band of the table within `threshold` of its diagonal is
//! computed (Ukkonen's cut-off), which decides pass or fail exactly and
//! gives the distance whenever it is within the threshold.

use super::Verdict;
use crate::js::number as js_number;

/// Table cells one assertion may compute (about 0.2 s of one core).
pub(super) const CELL_BUDGET: usize = 100_000_000;

/// What the budget allowed to learn about the distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Distance {
    Exact(usize),
    /// More than this (the band's width).
    Above(usize),
    /// Even the band would exceed the budget.
    Unknown,
}

pub(super) fn evaluate(text: &str, expected: &str, threshold: f64, inv: bool) -> Verdict {
    let a: Vec<u16> = text.encode_utf16().collect();
    let b: Vec<u16> = expected.encode_utf16().collect();
    let t = js_number(threshold);
    let (within, distance) = match distance(&a, &b, threshold) {
        Distance::Exact(d) => (d as f64 <= threshold, d.to_string()),
        Distance::Above(k) => (false, format!("above {k}")),
        Distance::Unknown => {
            return Verdict {
                pass: false,
                score: 0.0,
                reason: format!(
                    "Levenshtein distance could not be computed: texts of {} and {} characters need more than {CELL_BUDGET} table cells within threshold {t}",
                    a.len(),
                    b.len()
                ),
            };
        }
    };
    Verdict::binary(within != inv, || {
        if inv {
            format!("Levenshtein distance {distance} is less than or equal to threshold {t}")
        } else {
            format!("Levenshtein distance {distance} is greater than threshold {t}")
        }
    })
}

fn distance(a: &[u16], b: &[u16], threshold: f64) -> Distance {
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) <= CELL_BUDGET {
        return Distance::Exact(full(a, b));
    }
    // Only `d <= threshold` matters beyond the budget.
    let k = if threshold >= 0.0 {
        threshold.floor() as usize
    } else {
        0
    };
    if (2 * k + 1).saturating_mul(n.min(m)) > CELL_BUDGET {
        return Distance::Unknown;
    }
    match banded(a, b, k) {
        Some(d) => Distance::Exact(d),
        None => Distance::Above(k),
    }
}

/// The whole table, one row at a time.
fn full(a: &[u16], b: &[u16]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The distance if it is at most `k`: only cells with `|i - j| <= k` are
/// computed, the others count as `k + 1`.
fn banded(a: &[u16], b: &[u16], k: usize) -> Option<usize> {
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > k {
        return None;
    }
    let far = k + 1;
    let mut prev: Vec<usize> = (0..=m).map(|j| if j <= k { j } else { far }).collect();
    let mut cur = vec![far; m + 1];
    for i in 1..=n {
        let (lo, hi) = (i.saturating_sub(k).max(1), (i + k).min(m));
        cur[0] = if i <= k { i } else { far };
        cur[lo - 1] = if lo == 1 { cur[0] } else { far };
        for j in lo..=hi {
            let substitute = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = substitute.min(prev[j] + 1).min(cur[j - 1] + 1).min(far);
        }
        if hi < m {
            cur[hi + 1] = far;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    (prev[m] <= k).then_some(prev[m])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn the_band_agrees_with_the_full_table_whenever_it_answers() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..3_000 {
            let len = |rng: &mut fastrand::Rng| rng.usize(0..30);
            let (la, lb) = (len(&mut rng), len(&mut rng));
            let a: Vec<u16> = (0..la).map(|_| rng.u16(97..100)).collect();
            let b: Vec<u16> = (0..lb).map(|_| rng.u16(97..100)).collect();
            let full_table = strsim::generic_levenshtein(&a, &b);
            assert_eq!(full(&a, &b), full_table, "{a:?} {b:?}");
            let full = full_table;
            for k in 0..32 {
                let expected = (full <= k).then_some(full);
                assert_eq!(banded(&a, &b, k), expected, "{a:?} {b:?} k={k}");
            }
        }
    }

    #[test]
    fn long_texts_are_decided_within_the_budget() {
        let a = "ab".repeat(100_000);
        let mut b = a.clone();
        b.replace_range(1000..1003, "xyz");
        // 4·10^10 cells in full; the band of 11 is 2.2·10^6.
        assert_eq!(distance(&units(&a), &units(&b), 10.0), Distance::Exact(3));
        assert_eq!(distance(&units(&a), &units(&b), 2.0), Distance::Above(2));
        let v = evaluate(&a, &b, 2.0, false);
        assert_eq!(
            v.reason,
            "Levenshtein distance above 2 is greater than threshold 2"
        );
        assert!(evaluate(&a, &b, 10.0, false).pass);
        // A threshold as wide as the texts would need the full table again.
        let v = evaluate(&a, &b, 1e6, false);
        assert!(
            !v.pass
                && v.reason
                    .starts_with("Levenshtein distance could not be computed"),
            "{}",
            v.reason
        );
    }
}
