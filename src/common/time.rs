//! RFC 3339 timestamps from unix milliseconds (UTC), without a date crate.

/// `2026-11-27T07:55:01.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Longest duration [`parse_duration`] reads: 100 years, so a window
/// subtracted from a unix-ms clock can neither wrap nor leave the calendar.
pub const MAX_DURATION_SECS: u64 = 100 * 366 * 86_400;

/// Latest instant a timestamp may name: 9999-12-31T23:59:59.999Z.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// `90s`, `5m`, `1h`, `7d`, or a bare number of seconds, up to
/// [`MAX_DURATION_SECS`].
pub fn parse_duration(raw: &str) -> Option<std::time::Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (n, unit) = raw.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs <= MAX_DURATION_SECS).then(|| std::time::Duration::from_secs(secs))
}

/// An instant as an API takes it: unix milliseconds or RFC 3339, from
/// 1970 to [`MAX_TIME_MS`].
pub fn parse_instant(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    raw.parse::<i64>()
        .ok()
        .or_else(|| parse_rfc3339(raw))
        .filter(|ms| (0..=MAX_TIME_MS).contains(ms))
}

/// Unix ms from `2026-12-01`, `2026-12-01T10:00:00Z`,
/// `2026-12-01T10:00:00.5+01:00` (RFC 3339; a date alone is midnight UTC).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if b.len() == 10 {
        return Some(days * 86_400_000);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 20 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = s.get(start..i).filter(|f| !f.is_empty())?;
        millis = format!("{frac:0<3}")[..3].parse().ok()?;
    }
    // Bytes, not string slices: a multi-byte character where the offset
    // should be is simply not an offset.
    let offset_min = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if *sign == b'-' { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_min * 60;
    Some(secs * 1000 + millis)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's algorithm: (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's algorithm: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_what_it_formats_and_common_variants() {
        for ms in [0, 951_782_400_123, 1_796_190_901_000, -86_400_000] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(ms)), Some(ms), "{ms}");
        }
        assert_eq!(super::parse_rfc3339("2026-12-02"), Some(1_796_169_600_000));
        assert_eq!(
            super::parse_rfc3339("2026-12-02T06:55:01+01:00"),
            Some(1_796_190_901_000)
        );
        assert_eq!(
            super::parse_rfc3339("2026-12-02T05:55:01.5Z"),
            Some(1_796_190_901_500)
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-02-30",
            "2026-12-02T25:00:00Z",
            "2026-12-02T05:55:01",
            "yesterday",
            "2026-12-02T05:55:01+0100",
            "２０２６-12-02",
        ] {
            assert_eq!(super::parse_rfc3339(bad), None, "{bad}");
        }
    }

    /// Strings near timestamps and durations: valid ones mutated with
    /// characters of every UTF-8 width where the parsers slice.
    fn hostile(rng: &mut fastrand::Rng) -> String {
        const PIECES: &[&str] = &[
            "0",
            "9",
            "-",
            ":",
            "T",
            "Z",
            "z",
            "+",
            ".",
            " ",
            "s",
            "m",
            "h",
            "d",
            "é",
            "日",
            "😀",
            "٣",
            "\u{0}",
            "%",
            "e",
            "1e309",
            "99999999999999999999",
        ];
        const SEEDS: &[&str] = &[
            "2026-12-01T10:00:00+01:00",
            "2026-12-01T10:00:00.123Z",
            "2026-12-01",
            "90s",
            "7d",
            "213503982334601d",
        ];
        let mut s: Vec<char> = SEEDS[rng.usize(..SEEDS.len())].chars().collect();
        for _ in 0..rng.usize(1..4) {
            let piece: Vec<char> = PIECES[rng.usize(..PIECES.len())].chars().collect();
            let at = rng.usize(..=s.len());
            match rng.u8(..3) {
                0 => s.splice(at..at, piece),
                1 if at < s.len() => s.splice(at..at + 1, piece),
                _ => s.splice(at..s.len().min(at + 2), Vec::new()),
            };
        }
        s.into_iter().collect()
    }

    #[test]
    fn no_string_makes_the_parsers_panic_and_what_parses_round_trips() {
        let mut rng = fastrand::Rng::with_seed(22);
        for _ in 0..200_000 {
            let raw = hostile(&mut rng);
            if let Some(ms) = super::parse_rfc3339(&raw) {
                assert_eq!(
                    super::parse_rfc3339(&super::rfc3339(ms)),
                    Some(ms),
                    "{raw:?}"
                );
            }
            if let Some(ms) = super::parse_instant(&raw) {
                assert!((0..=super::MAX_TIME_MS).contains(&ms), "{raw:?}");
            }
            if let Some(d) = super::parse_duration(&raw) {
                assert!(d.as_secs() <= super::MAX_DURATION_SECS, "{raw:?}");
            }
        }
        // The reported cases.
        assert_eq!(super::parse_rfc3339("2026-12-01T10:00:00é0:00"), None);
        assert_eq!(super::parse_rfc3339("2026-12-01T10:00:00+日:0"), None);
        assert_eq!(super::parse_duration("213503982334601d"), None);
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            super::rfc3339(1_796_190_901_000),
            "2026-12-02T05:55:01.000Z"
        );
    }
}
