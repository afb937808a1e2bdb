//! awk values: numbers, strings and "strnums" (input that looks numeric),
//! their conversions, and `printf`-style formatting as C/gawk does it.
//!
//! Guarantees: integral numbers convert to decimal integers exactly;
//! other numbers go through the given format (`CONVFMT`/`OFMT`, `%.6g`).

use std::rc::Rc;

/// An awk value. `StrNum` is a string from input whose numeric look is
/// decided lazily, only when a comparison needs it.
#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Uninit,
    Num(f64),
    Str(Rc<[u8]>),
    StrNum(Rc<[u8]>),
}

impl Value {
    pub fn str(b: &[u8]) -> Value {
        Value::Str(Rc::from(b))
    }

    pub fn strnum(b: &[u8]) -> Value {
        Value::StrNum(Rc::from(b))
    }

    pub fn to_num(&self) -> f64 {
        match self {
            Value::Uninit => 0.0,
            Value::Num(n) => *n,
            Value::Str(s) | Value::StrNum(s) => str_to_num(s),
        }
    }

    /// Truth as awk defines it (strnums by their numeric value when numeric).
    pub fn truthy(&self) -> bool {
        match self {
            Value::Uninit => false,
            Value::Num(n) => *n != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::StrNum(s) => {
                if looks_numeric(s) {
                    str_to_num(s) != 0.0
                } else {
                    !s.is_empty()
                }
            }
        }
    }

    /// Whether comparisons treat this value as a number.
    pub fn is_numeric(&self) -> bool {
        match self {
            Value::Uninit | Value::Num(_) => true,
            Value::Str(_) => false,
            Value::StrNum(s) => looks_numeric(s),
        }
    }

    /// Appends the string form (numbers through `fmt`) to `out`.
    pub fn write_str(&self, fmt: &[u8], out: &mut Vec<u8>) {
        match self {
            Value::Uninit => {}
            Value::Num(n) => num_to_str(*n, fmt, out),
            Value::Str(s) | Value::StrNum(s) => out.extend_from_slice(s),
        }
    }

    /// The string form as a shared byte string.
    pub fn to_rc_str(&self, fmt: &[u8]) -> Rc<[u8]> {
        match self {
            Value::Str(s) | Value::StrNum(s) => s.clone(),
            _ => {
                let mut v = Vec::new();
                self.write_str(fmt, &mut v);
                Rc::from(v)
            }
        }
    }
}

/// Formats a number the way awk converts it to a string.
pub fn num_to_str(n: f64, fmt: &[u8], out: &mut Vec<u8>) {
    if n.is_nan() {
        out.extend_from_slice(if n.is_sign_negative() {
            b"-nan"
        } else {
            b"+nan"
        });
    } else if n.is_infinite() {
        out.extend_from_slice(if n < 0.0 { b"-inf" } else { b"+inf" });
    } else if n == n.trunc() {
        if n.abs() < 1e18 {
            // Fast path, exact for all integers f64 holds in this range.
            // gawk prints negative zero as "0".
            let mut buf = itoa_buf(n as i64);
            out.append(&mut buf);
        } else {
            out.extend_from_slice(format!("{n:.0}").as_bytes());
        }
    } else {
        sprintf(fmt, &[Value::Num(n)], b"%.6g", out);
    }
}

fn itoa_buf(i: i64) -> Vec<u8> {
    i.to_string().into_bytes()
}

/// Parses the longest numeric prefix like `strtod` (after leading blanks);
/// returns the value and the number of bytes consumed (0 if none).
pub fn parse_number_prefix(s: &[u8]) -> (f64, usize) {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let start = i;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        i += 1;
    }
    let digits_start = i;
    let mut int_val: u64 = 0;
    let mut simple = true;
    while i < s.len() && s[i].is_ascii_digit() {
        if i - digits_start >= 18 {
            simple = false;
        } else {
            int_val = int_val * 10 + u64::from(s[i] - b'0');
        }
        i += 1;
    }
    let mut ndigits = i - digits_start;
    if i < s.len() && s[i] == b'.' {
        simple = false;
        i += 1;
        let f = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        ndigits += i - f;
    }
    if ndigits == 0 {
        // gawk also reads "+inf"/"-nan" style words only with a sign.
        if i > start && i < s.len() {
            let rest = &s[i..];
            let neg = s[start] == b'-';
            if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"inf") {
                return (
                    if neg {
                        f64::NEG_INFINITY
                    } else {
                        f64::INFINITY
                    },
                    i + 3,
                );
            }
            if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"nan") {
                return (if neg { -f64::NAN } else { f64::NAN }, i + 3);
            }
        }
        return (0.0, 0);
    }
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        let mut j = i + 1;
        if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
            j += 1;
        }
        if j < s.len() && s[j].is_ascii_digit() {
            simple = false;
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    if simple {
        let v = int_val as f64;
        return (if s[start] == b'-' { -v } else { v }, i);
    }
    let text = std::str::from_utf8(&s[start..i]).unwrap_or("0");
    (text.parse::<f64>().unwrap_or(0.0), i)
}

/// The numeric value of a string (its numeric prefix, else 0).
pub fn str_to_num(s: &[u8]) -> f64 {
    parse_number_prefix(s).0
}

/// True when the whole string (blanks aside) is a number.
pub fn looks_numeric(s: &[u8]) -> bool {
    let (_, n) = parse_number_prefix(s);
    n > 0
        && s[n..]
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}

/// A C-style conversion spec.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(out: &mut Vec<u8>, body: &[u8], spec: &Spec, numeric: bool) {
    let w = spec.width.unwrap_or(0);
    if body.len() >= w {
        out.extend_from_slice(body);
        return;
    }
    let fill = w - body.len();
    if spec.minus {
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else if spec.zero && numeric {
        // Zeros go after the sign / 0x prefix.
        let mut k = 0;
        if matches!(body.first(), Some(b'-' | b'+' | b' ')) {
            k = 1;
        }
        if body[k..].starts_with(b"0x") || body[k..].starts_with(b"0X") {
            k += 2;
        }
        out.extend_from_slice(&body[..k]);
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(&body[k..]);
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(body);
    }
}

fn sign_prefix(neg: bool, spec: &Spec) -> &'static str {
    if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

/// `%e` body (without sign) with `prec` digits.
fn fmt_e(v: f64, prec: usize, upper: bool, alt: bool) -> String {
    let s = format!("{:.*e}", prec, v);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut m = mant.to_string();
    if alt && prec == 0 {
        m.push('.');
    }
    let e = if upper { 'E' } else { 'e' };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{m}{e}{sign}{:02}", exp.abs())
}

/// `%g` body (without sign).
fn fmt_g(v: f64, prec: usize, upper: bool, alt: bool) -> String {
    let p = if prec == 0 { 1 } else { prec };
    if v == 0.0 {
        let mut s = String::from("0");
        if alt && p > 1 {
            s.push('.');
            s.extend(std::iter::repeat_n('0', p - 1));
        }
        return s;
    }
    let e_form = format!("{:.*e}", p - 1, v);
    let x: i32 = e_form
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let mut s = if x < -4 || x >= p as i32 {
        fmt_e(v, p - 1, upper, alt)
    } else {
        format!("{:.*}", (p as i32 - 1 - x).max(0) as usize, v)
    };
    if !alt {
        // Strip trailing zeros of the fraction (before any exponent).
        let (num, exp) = match s.find(['e', 'E']) {
            Some(k) => (s[..k].to_string(), s[k..].to_string()),
            None => (s.clone(), String::new()),
        };
        let num = if num.contains('.') {
            num.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            num
        };
        s = num + &exp;
    }
    s
}

fn fmt_special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some(if v.is_sign_negative() { "-nan" } else { "+nan" })
    } else if v.is_infinite() {
        Some(if v < 0.0 { "-inf" } else { "+inf" })
    } else {
        None
    }
}

/// awk's `sprintf(fmt, args...)`, appending to `out`. Numbers that are
/// printed with `%s` use `convfmt`. Returns false when the format needs
/// more arguments than given (gawk's fatal error).
pub fn sprintf(fmt: &[u8], args: &[Value], convfmt: &[u8], out: &mut Vec<u8>) -> bool {
    let mut ai = 0;
    let mut next_arg = || {
        let v = args.get(ai).cloned().unwrap_or(Value::Uninit);
        ai += 1;
        v
    };
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let mut spec = Spec::default();
        while i < fmt.len() {
            match fmt[i] {
                b'-' => spec.minus = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'#' => spec.alt = true,
                b'0' => spec.zero = true,
                _ => break,
            }
            i += 1;
        }
        if fmt.get(i) == Some(&b'*') {
            let w = next_arg().to_num() as i64;
            if w < 0 {
                spec.minus = true;
            }
            spec.width = Some(w.unsigned_abs().min(1 << 20) as usize);
            i += 1;
        } else {
            let mut w = None;
            while i < fmt.len() && fmt[i].is_ascii_digit() {
                w = Some(
                    w.unwrap_or(0usize)
                        .saturating_mul(10)
                        .saturating_add(usize::from(fmt[i] - b'0'))
                        .min(1 << 20),
                );
                i += 1;
            }
            spec.width = w;
        }
        if fmt.get(i) == Some(&b'.') {
            i += 1;
            if fmt.get(i) == Some(&b'*') {
                let p = next_arg().to_num() as i64;
                spec.prec = if p < 0 {
                    None
                } else {
                    Some((p as usize).min(1 << 20))
                };
                i += 1;
            } else {
                let mut p = 0usize;
                while i < fmt.len() && fmt[i].is_ascii_digit() {
                    p = p
                        .saturating_mul(10)
                        .saturating_add(usize::from(fmt[i] - b'0'))
                        .min(1 << 20);
                    i += 1;
                }
                spec.prec = Some(p);
            }
        }
        // Length modifiers are accepted and ignored, as gawk does.
        while i < fmt.len() && matches!(fmt[i], b'h' | b'l' | b'L' | b'q' | b'j' | b'z' | b't') {
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else {
            out.extend_from_slice(&fmt[start..]);
            break;
        };
        i += 1;
        match conv {
            b'%' => out.push(b'%'),
            b'c' => {
                let v = next_arg();
                let body: Vec<u8> = match &v {
                    Value::Num(n) => {
                        let code = *n as i64;
                        if (0..256).contains(&code) {
                            vec![code as u8]
                        } else {
                            char::from_u32(code as u32)
                                .map(|ch| ch.to_string().into_bytes())
                                .unwrap_or_default()
                        }
                    }
                    other => {
                        let mut s = Vec::new();
                        other.write_str(convfmt, &mut s);
                        s.truncate(1);
                        s
                    }
                };
                pad(out, &body, &spec, false);
            }
            b's' => {
                let v = next_arg();
                let mut s = Vec::new();
                v.write_str(convfmt, &mut s);
                if let Some(p) = spec.prec {
                    s.truncate(p);
                }
                pad(out, &s, &spec, false);
            }
            b'd' | b'i' => {
                let v = next_arg().to_num();
                if let Some(sp) = fmt_special(v) {
                    pad(out, sp.as_bytes(), &spec, false);
                    continue;
                }
                let t = v.trunc();
                let mut digits = if t.abs() < 1e18 {
                    (t.abs() as u64).to_string()
                } else {
                    format!("{:.0}", t.abs())
                };
                if let Some(p) = spec.prec {
                    if p == 0 && t == 0.0 {
                        digits.clear();
                    }
                    while digits.len() < p {
                        digits.insert(0, '0');
                    }
                }
                let body = format!("{}{}", sign_prefix(t < 0.0, &spec), digits);
                let numeric = spec.prec.is_none();
                pad(out, body.as_bytes(), &spec, numeric);
            }
            b'o' | b'x' | b'X' | b'u' => {
                let v = next_arg().to_num();
                if let Some(sp) = fmt_special(v) {
                    pad(out, sp.as_bytes(), &spec, false);
                    continue;
                }
                let t = v.trunc();
                let u: u64 = if t < 0.0 { (t as i64) as u64 } else { t as u64 };
                let mut digits = match conv {
                    b'o' => format!("{u:o}"),
                    b'x' => format!("{u:x}"),
                    b'X' => format!("{u:X}"),
                    _ => u.to_string(),
                };
                if let Some(p) = spec.prec {
                    if p == 0 && u == 0 {
                        digits.clear();
                    }
                    while digits.len() < p {
                        digits.insert(0, '0');
                    }
                }
                if spec.alt && u != 0 {
                    match conv {
                        b'o' if !digits.starts_with('0') => digits.insert(0, '0'),
                        b'x' => digits.insert_str(0, "0x"),
                        b'X' => digits.insert_str(0, "0X"),
                        _ => {}
                    }
                }
                let numeric = spec.prec.is_none();
                pad(out, digits.as_bytes(), &spec, numeric);
            }
            b'e' | b'E' | b'f' | b'F' | b'g' | b'G' => {
                let v = next_arg().to_num();
                if let Some(sp) = fmt_special(v) {
                    let sp = if sp.starts_with('+') && !spec.plus {
                        if spec.space {
                            format!(" {}", &sp[1..])
                        } else {
                            sp[1..].to_string()
                        }
                    } else {
                        sp.to_string()
                    };
                    let sp = if conv.is_ascii_uppercase() {
                        sp.to_uppercase()
                    } else {
                        sp
                    };
                    pad(out, sp.as_bytes(), &spec, false);
                    continue;
                }
                let prec = spec.prec.unwrap_or(6);
                let a = v.abs();
                let body = match conv {
                    b'e' | b'E' => fmt_e(a, prec, conv == b'E', spec.alt),
                    b'f' | b'F' => {
                        let mut s = format!("{:.*}", prec, a);
                        if spec.alt && prec == 0 {
                            s.push('.');
                        }
                        s
                    }
                    _ => fmt_g(a, prec, conv == b'G', spec.alt),
                };
                let body = format!("{}{}", sign_prefix(v.is_sign_negative(), &spec), body);
                pad(out, body.as_bytes(), &spec, true);
            }
            _ => {
                // Unknown conversion: copied through as gawk does.
                out.extend_from_slice(&fmt[start..i]);
            }
        }
    }
    // `ai` counts every argument the format asked for.
    ai <= args.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[Value]) -> String {
        let mut o = Vec::new();
        sprintf(fmt.as_bytes(), args, b"%.6g", &mut o);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn printf_matches_c() {
        assert_eq!(
            f(
                "%5.2f|%-4d|%04d",
                &[Value::Num(1.23456), Value::Num(7.0), Value::Num(-5.0)]
            ),
            " 1.23|7   |-005"
        );
        assert_eq!(f("%e", &[Value::Num(12345.678)]), "1.234568e+04");
        assert_eq!(
            f(
                "%g %g %g",
                &[Value::Num(0.0001234), Value::Num(1e6), Value::Num(123456.0)]
            ),
            "0.0001234 1e+06 123456"
        );
        assert_eq!(f("%c%c", &[Value::Num(65.0), Value::str(b"hi")]), "Ah");
        assert_eq!(
            f(
                "%x %o %#x",
                &[Value::Num(255.0), Value::Num(8.0), Value::Num(255.0)]
            ),
            "ff 10 0xff"
        );
        assert_eq!(
            f("%.3s|%5s", &[Value::str(b"abcdef"), Value::str(b"ab")]),
            "abc|   ab"
        );
    }

    #[test]
    fn number_strings() {
        let mut o = Vec::new();
        num_to_str(0.1 + 0.2, b"%.6g", &mut o);
        assert_eq!(o, b"0.3");
        o.clear();
        num_to_str(1e20, b"%.6g", &mut o);
        assert_eq!(o, b"100000000000000000000");
        assert!(looks_numeric(b" 12 "));
        assert!(looks_numeric(b"1e3"));
        assert!(!looks_numeric(b"12a"));
        assert!(!looks_numeric(b""));
        assert_eq!(str_to_num(b"3abc"), 3.0);
        assert_eq!(str_to_num(b".5"), 0.5);
    }
}
