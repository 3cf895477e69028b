//! Number formatting as JavaScript prints it, so reasons read like promptfoo's.

/// `String(n)` for the numbers configs contain: integers without `.0`.
pub(super) fn js_number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `n.toFixed(digits)`.
pub(super) fn to_fixed(n: f64, digits: usize) -> String {
    format!("{n:.digits$}")
}

/// `n.toPrecision(2)`: two significant digits, exponential outside
/// 1e-6..1e2 like JavaScript.
pub(super) fn to_precision_2(n: f64) -> String {
    if n == 0.0 || !n.is_finite() {
        return if n == 0.0 {
            "0.0".to_owned()
        } else {
            format!("{n}")
        };
    }
    let exponent = n.abs().log10().floor() as i32;
    // Rounding may carry into the next power of ten (9.96 -> 10).
    let rounded = format!("{:.1e}", n);
    let (mantissa, exp) = rounded.split_once('e').unwrap_or((&rounded, "0"));
    let exp: i32 = exp.parse().unwrap_or(exponent);
    if !(-6..2).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{}", exp.abs());
    }
    let decimals = (1 - exp).max(0) as usize;
    format!("{n:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(js_number(5.0), "5");
        assert_eq!(js_number(0.75), "0.75");
        assert_eq!(js_number(-3.0), "-3");
        assert_eq!(to_fixed(0.8, 2), "0.80");
        assert_eq!(to_precision_2(0.00123), "0.0012");
        assert_eq!(to_precision_2(0.5), "0.50");
        assert_eq!(to_precision_2(1.0), "1.0");
        assert_eq!(to_precision_2(12.3), "12");
        assert_eq!(to_precision_2(123.0), "1.2e+2");
        assert_eq!(to_precision_2(0.0000001234), "1.2e-7");
        assert_eq!(to_precision_2(9.96), "10");
    }
}
