//! Number-to-text conversions that match two reference implementations:
//! jq 1.6 (`jvp_dtoa_fmt`: shortest round-trip digits, exponent form when the
//! decimal point is far away) and JavaScript's `Number.prototype.toString`
//! (used by trentm's `json`, which runs on node).
//!
//! Both start from the shortest digit string that round-trips to the same
//! `f64`; Rust's `{:e}` formatting produces exactly that, so only the layout
//! rules differ.

/// Shortest round-trip decimal digits of a finite, non-zero `|x|` and the
/// position of the decimal point (`x = 0.DIGITS * 10^decpt`).
fn digits(x: f64) -> (String, i32) {
    let s = format!("{:e}", x.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// Places `digits` around the decimal point at `decpt` without an exponent.
fn fixed(digits: &str, decpt: i32, out: &mut String) {
    let n = digits.len() as i32;
    if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-decpt) as usize));
        out.push_str(digits);
    } else if decpt >= n {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
}

/// `d.ddd` mantissa of an exponent form.
fn mantissa(digits: &str, out: &mut String) {
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
}

/// Formats a number as jq 1.6 prints it: NaN as `null`, infinities clamped
/// to the largest finite double, `1e+17`, `1e-05`, `12345678901234567000`.
pub fn jq(x: f64) -> String {
    if x.is_nan() {
        return "null".to_string();
    }
    let x = x.clamp(f64::MIN, f64::MAX);
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (d, decpt) = digits(x);
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if decpt <= -4 || decpt > d.len() as i32 + 15 {
        mantissa(&d, &mut out);
        let e = decpt - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", e.abs()));
    } else {
        fixed(&d, decpt, &mut out);
    }
    out
}

/// Formats a number as JavaScript's `String(x)` does (`JSON.stringify`
/// uses the same digits, but writes `null` for NaN and infinities).
pub fn js(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let (d, decpt) = digits(x);
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if (-5..=21).contains(&decpt) {
        // ECMA-262 Number::toString: fixed notation for 1e-7 < |x| < 1e21.
        fixed(&d, decpt, &mut out);
    } else {
        mantissa(&d, &mut out);
        let e = decpt - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&e.abs().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn jq_matches_jq16_samples() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (1e17, "1e+17"),
            (1e15, "1000000000000000"),
            (1e300, "1e+300"),
            (f64::INFINITY, "1.7976931348623157e+308"),
            (-0.0, "-0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (12345678901234567890.0, "12345678901234567000"),
            (1.234_567_890_123_456_7, "1.2345678901234567"),
            (123e5, "12300000"),
            (1.23e-4, "0.000123"),
            (2.5e-5, "2.5e-05"),
            (10.0 / 3.0, "3.3333333333333335"),
        ];
        for (x, want) in cases {
            assert_eq!(jq(x), want, "{x}");
        }
        assert_eq!(jq(f64::NAN), "null");
    }

    #[test]
    fn js_matches_node_samples() {
        let cases = [
            (1.0, "1"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (1e-6, "0.000001"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123456789.0, "123456789"),
        ];
        for (x, want) in cases {
            assert_eq!(js(x), want, "{x}");
        }
    }

    proptest! {
        #[test]
        fn jq_round_trips(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            let s = jq(x);
            prop_assert_eq!(s.parse::<f64>().unwrap(), x);
        }

        #[test]
        fn js_round_trips(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            let s = js(x);
            prop_assert_eq!(s.parse::<f64>().unwrap(), x);
        }
    }
}
