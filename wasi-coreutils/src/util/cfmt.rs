//! C `printf` conversions (`%d %i %o %u %x %X %c %s %e %E %f %F %g %G`) with
//! flags, width and precision, as glibc formats them (doubles, not long
//! doubles). Used by `printf` and `seq -f`.

#![allow(clippy::collapsible_if)]

use std::fmt::Write;

/// One parsed `%...` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conv {
    pub minus: bool,
    pub plus: bool,
    pub space: bool,
    pub alt: bool,
    pub zero: bool,
    /// `None`, a number, or `*` (taken from the arguments by the caller).
    pub width: Option<Count>,
    pub prec: Option<Count>,
    pub conv: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    N(usize),
    Star,
}

/// Parses a directive starting after `%`; returns it and the index after the conversion letter.
pub fn parse_conv(f: &[u8], mut i: usize) -> Option<(Conv, usize)> {
    let mut c = Conv::default();
    while let Some(&b) = f.get(i) {
        match b {
            b'-' => c.minus = true,
            b'+' => c.plus = true,
            b' ' => c.space = true,
            b'#' => c.alt = true,
            b'0' => c.zero = true,
            b'\'' => {}
            _ => break,
        }
        i += 1;
    }
    let count = |i: &mut usize| -> Option<Count> {
        if f.get(*i) == Some(&b'*') {
            *i += 1;
            return Some(Count::Star);
        }
        let s = *i;
        while f.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        (s != *i).then(|| {
            Count::N(
                std::str::from_utf8(&f[s..*i])
                    .ok()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(usize::MAX),
            )
        })
    };
    c.width = count(&mut i);
    if f.get(i) == Some(&b'.') {
        i += 1;
        c.prec = Some(count(&mut i).unwrap_or(Count::N(0)));
    }
    // Length modifiers are accepted and ignored, as GNU printf does.
    while matches!(
        f.get(i),
        Some(b'h' | b'l' | b'L' | b'q' | b'j' | b'z' | b't')
    ) {
        i += 1;
    }
    c.conv = *f.get(i)?;
    Some((c, i + 1))
}

fn n(c: Option<Count>) -> Option<usize> {
    match c {
        Some(Count::N(v)) => Some(v),
        _ => None,
    }
}

/// Pads `body` (with `sign_len` leading sign/prefix bytes) to the width.
fn pad(c: &Conv, body: String, sign_len: usize, zero_ok: bool) -> String {
    let w = n(c.width).unwrap_or(0);
    if body.len() >= w {
        return body;
    }
    let fill = w - body.len();
    if c.minus {
        format!("{body}{}", " ".repeat(fill))
    } else if c.zero && zero_ok {
        format!(
            "{}{}{}",
            &body[..sign_len],
            "0".repeat(fill),
            &body[sign_len..]
        )
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}

/// `%d`/`%i`.
pub fn signed(c: &Conv, v: i128) -> String {
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 {
        "-"
    } else if c.plus {
        "+"
    } else if c.space {
        " "
    } else {
        ""
    };
    int_body(c, sign, digits, "")
}

/// `%o %u %x %X`.
pub fn unsigned(c: &Conv, v: u128) -> String {
    let (digits, prefix) = match c.conv {
        b'o' => {
            let d = format!("{v:o}");
            (d, if c.alt { "0" } else { "" })
        }
        b'x' => (format!("{v:x}"), if c.alt && v != 0 { "0x" } else { "" }),
        b'X' => (format!("{v:X}"), if c.alt && v != 0 { "0X" } else { "" }),
        _ => (v.to_string(), ""),
    };
    int_body(c, "", digits, prefix)
}

fn int_body(c: &Conv, sign: &str, mut digits: String, prefix: &str) -> String {
    let prec = n(c.prec);
    if prec == Some(0) && digits == "0" {
        digits.clear();
    }
    if let Some(p) = prec {
        if digits.len() < p {
            digits = format!("{}{digits}", "0".repeat(p - digits.len()));
        }
    }
    let prefix = if prefix == "0" && digits.starts_with('0') {
        ""
    } else {
        prefix
    };
    let body = format!("{sign}{prefix}{digits}");
    pad(c, body, sign.len() + prefix.len(), prec.is_none())
}

/// `%s` (and `%b` after unescaping, `%c` with one byte): precision truncates.
pub fn string(c: &Conv, s: &[u8]) -> Vec<u8> {
    let s = match n(c.prec) {
        Some(p) if p < s.len() => &s[..p],
        _ => s,
    };
    let w = n(c.width).unwrap_or(0);
    let mut out = Vec::with_capacity(s.len().max(w));
    if s.len() < w && !c.minus {
        out.resize(w - s.len(), b' ');
    }
    out.extend_from_slice(s);
    if s.len() < w && c.minus {
        out.resize(w, b' ');
    }
    out
}

/// `%e %E %f %F %g %G`.
pub fn float(c: &Conv, v: f64) -> String {
    let upper = c.conv.is_ascii_uppercase();
    let sign = if v.is_sign_negative() && !v.is_nan() {
        "-"
    } else if c.plus {
        "+"
    } else if c.space {
        " "
    } else {
        ""
    };
    let a = v.abs();
    if !a.is_finite() {
        let t = if a.is_nan() { "nan" } else { "inf" };
        let t = if upper {
            t.to_uppercase()
        } else {
            t.to_string()
        };
        return pad(c, format!("{sign}{t}"), sign.len(), false);
    }
    let prec = n(c.prec).unwrap_or(6);
    let body = match c.conv.to_ascii_lowercase() {
        b'f' => {
            let mut s = format!("{a:.prec$}");
            if c.alt && prec == 0 {
                s.push('.');
            }
            s
        }
        b'e' => exp_form(a, prec, c.alt),
        _ => {
            let p = if prec == 0 { 1 } else { prec };
            let x = if a == 0.0 { 0 } else { exponent_of(a, p) };
            let mut s = if x < -4 || x >= p as i32 {
                exp_form(a, p - 1, c.alt)
            } else {
                let fp = usize::try_from(p as i32 - 1 - x).unwrap_or(0);
                let mut s = format!("{a:.fp$}");
                if c.alt && fp == 0 {
                    s.push('.');
                }
                s
            };
            if !c.alt {
                s = strip_zeros(&s);
            }
            s
        }
    };
    let body = if upper { body.to_uppercase() } else { body };
    pad(c, format!("{sign}{body}"), sign.len(), true)
}

/// The decimal exponent `a` has once rounded to `p` significant digits.
fn exponent_of(a: f64, p: usize) -> i32 {
    let s = format!("{:.*e}", p.saturating_sub(1), a);
    s.rsplit('e')
        .next()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0)
}

fn exp_form(a: f64, prec: usize, alt: bool) -> String {
    let s = format!("{a:.prec$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = exp.parse().unwrap_or(0);
    let mut m = mant.to_string();
    if alt && prec == 0 {
        m.push('.');
    }
    let mut out = String::with_capacity(m.len() + 5);
    out.push_str(&m);
    let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    out
}

/// Removes trailing fraction zeros (and a bare point) from a %g body.
fn strip_zeros(s: &str) -> String {
    let (m, e) = match s.find('e') {
        Some(p) => (&s[..p], &s[p..]),
        None => (s, ""),
    };
    let m = if m.contains('.') {
        m.trim_end_matches('0').trim_end_matches('.')
    } else {
        m
    };
    format!("{m}{e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(spec: &str, v: f64) -> String {
        let (c, _) = parse_conv(spec.as_bytes(), 0).unwrap();
        float(&c, v)
    }

    #[test]
    fn floats_like_glibc() {
        assert_eq!(f("f", 1.5), "1.500000");
        assert_eq!(f(".2e", 12345.0), "1.23e+04");
        assert_eq!(f("g", 0.0001), "0.0001");
        assert_eq!(f("g", 0.00001), "1e-05");
        assert_eq!(f("g", 123456789.0), "1.23457e+08");
        assert_eq!(f("g", 100000.0), "100000");
        assert_eq!(f("08.3f", -1.5), "-001.500");
        assert_eq!(f("G", 1e-10), "1E-10");
        assert_eq!(f("g", 999999.5), "1e+06");
    }

    #[test]
    fn ints() {
        let (c, _) = parse_conv(b"05d", 0).unwrap();
        assert_eq!(signed(&c, -42), "-0042");
        let (c, _) = parse_conv(b"#x", 0).unwrap();
        assert_eq!(unsigned(&c, 255), "0xff");
        let (c, _) = parse_conv(b"-4s|", 0).unwrap();
        assert_eq!(string(&c, b"ab"), b"ab  ");
        let (c, _) = parse_conv(b".3d", 0).unwrap();
        assert_eq!(signed(&c, 7), "007");
    }
}
