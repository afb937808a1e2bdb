//! `printf`: GNU printf. The format is reused while arguments remain;
//! missing arguments read as empty/zero; numeric arguments accept `0x`,
//! leading `0` (octal), and `'c` (the byte's value). A malformed number is
//! reported and makes the exit status 1, as in GNU. `%q` and `%a` are
//! unsupported (status 2).

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::ffi::OsString;
use std::io::Write;

use crate::util::cfmt::{self, Conv, Count};
use crate::util::{self, Fail};

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let mut rest = rest;
        if rest.first().map(Vec::as_slice) == Some(b"--") {
            rest.remove(0);
        }
        let Some(fmt) = rest.first().cloned() else {
            return util::usage("missing operand");
        };
        let args = &rest[1..];
        let mut st = State {
            args,
            next: 0,
            status: 0,
            tool,
        };
        let mut out = Vec::new();
        loop {
            let before = st.next;
            if st.run(&fmt, &mut out)? {
                break;
            }
            if st.next >= args.len() || st.next == before {
                break;
            }
        }
        let mut so = std::io::stdout().lock();
        so.write_all(&out).and_then(|_| so.flush())?;
        Ok(st.status)
    })
}

struct State<'a> {
    args: &'a [Vec<u8>],
    next: usize,
    status: i32,
    tool: &'a str,
}

impl State<'_> {
    fn arg(&mut self) -> Option<&[u8]> {
        let a = self.args.get(self.next)?;
        self.next += 1;
        Some(a)
    }

    fn bad_number(&mut self, a: &[u8], complete: bool) {
        let s = String::from_utf8_lossy(a);
        if complete {
            eprintln!("{}: '{s}': expected a numeric value", self.tool);
        } else {
            eprintln!("{}: '{s}': value not completely converted", self.tool);
        }
        self.status = 1;
    }

    fn int_arg(&mut self) -> i128 {
        let Some(a) = self.arg().map(<[u8]>::to_vec) else {
            return 0;
        };
        if let [b'\'' | b'"', rest @ ..] = a.as_slice() {
            return rest.first().map_or(0, |&c| i128::from(c));
        }
        let s = a
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .map_or(&a[a.len()..], |p| &a[p..]);
        let (neg, body) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (radix, digits) =
            if body.len() > 1 && (body.starts_with(b"0x") || body.starts_with(b"0X")) {
                (16, &body[2..])
            } else if body.first() == Some(&b'0') {
                (8, body)
            } else {
                (10, body)
            };
        let n = digits
            .iter()
            .take_while(|c| (**c as char).is_digit(radix))
            .count();
        let v = std::str::from_utf8(&digits[..n])
            .ok()
            .and_then(|d| i128::from_str_radix(d, radix).ok())
            .unwrap_or(0);
        if n == 0 && radix != 8 {
            self.bad_number(&a, true);
        } else if n < digits.len() {
            self.bad_number(&a, false);
        }
        if neg { -v } else { v }
    }

    fn float_arg(&mut self) -> f64 {
        let Some(a) = self.arg().map(<[u8]>::to_vec) else {
            return 0.0;
        };
        if let [b'\'' | b'"', rest @ ..] = a.as_slice() {
            return rest.first().map_or(0.0, |&c| f64::from(c));
        }
        let s = String::from_utf8_lossy(&a).trim_start().to_string();
        // Longest prefix that parses as a float.
        let mut best = None;
        for end in (1..=s.len()).rev() {
            if !s.is_char_boundary(end) {
                continue;
            }
            let t = &s[..end];
            if t.ends_with(['e', 'E', '+', '-']) && t.len() > 1 && !t.eq_ignore_ascii_case("inf") {
                continue;
            }
            if let Ok(v) = t.parse::<f64>() {
                best = Some((v, end));
                break;
            }
        }
        match best {
            Some((v, end)) => {
                if end < s.len() {
                    self.bad_number(&a, false);
                }
                v
            }
            None => {
                self.bad_number(&a, true);
                0.0
            }
        }
    }

    fn count(&mut self, c: Option<Count>) -> Option<Count> {
        match c {
            Some(Count::Star) => {
                let v = self.int_arg();
                Some(Count::N(usize::try_from(v.max(0)).unwrap_or(usize::MAX)))
            }
            other => other,
        }
    }

    /// Runs the format once; true when `\c` stopped all output.
    fn run(&mut self, fmt: &[u8], out: &mut Vec<u8>) -> Result<bool, Fail> {
        let mut i = 0;
        while i < fmt.len() {
            let c = fmt[i];
            if c == b'\\' {
                match escape(fmt, &mut i, false) {
                    Esc::Byte(b) => out.push(b),
                    Esc::Bytes(b) => out.extend_from_slice(&b),
                    Esc::Stop => return Ok(true),
                }
                continue;
            }
            if c != b'%' {
                out.push(c);
                i += 1;
                continue;
            }
            if fmt.get(i + 1) == Some(&b'%') {
                out.push(b'%');
                i += 2;
                continue;
            }
            let Some((mut conv, next)) = cfmt::parse_conv(fmt, i + 1) else {
                return util::usage(format!(
                    "%{}: invalid conversion specification",
                    String::from_utf8_lossy(&fmt[i + 1..])
                ));
            };
            i = next;
            conv.width = self.count(conv.width);
            conv.prec = self.count(conv.prec);
            if let Some(Count::N(w)) = conv.width {
                if w > 1 << 20 {
                    return util::usage("field width too large");
                }
            }
            self.directive(&mut conv, out)?;
        }
        Ok(false)
    }

    fn directive(&mut self, conv: &mut Conv, out: &mut Vec<u8>) -> Result<(), Fail> {
        match conv.conv {
            b'd' | b'i' => {
                let v = self.int_arg();
                out.extend_from_slice(cfmt::signed(conv, v).as_bytes());
            }
            b'o' | b'u' | b'x' | b'X' => {
                let v = self.int_arg();
                let u = if v < 0 {
                    u128::from(v as i64 as u64)
                } else {
                    v as u128
                };
                out.extend_from_slice(cfmt::unsigned(conv, u).as_bytes());
            }
            b'e' | b'E' | b'f' | b'F' | b'g' | b'G' => {
                let v = self.float_arg();
                out.extend_from_slice(cfmt::float(conv, v).as_bytes());
            }
            b's' => {
                let a = self.arg().unwrap_or_default().to_vec();
                out.extend_from_slice(&cfmt::string(conv, &a));
            }
            b'c' => {
                let a = self.arg().unwrap_or_default();
                let b = a.first().map(|b| vec![*b]).unwrap_or_default();
                conv.prec = None;
                out.extend_from_slice(&cfmt::string(conv, &b));
            }
            b'b' => {
                let a = self.arg().unwrap_or_default().to_vec();
                let mut s = Vec::new();
                let mut j = 0;
                let mut stop = false;
                while j < a.len() {
                    if a[j] == b'\\' {
                        match escape(&a, &mut j, true) {
                            Esc::Byte(b) => s.push(b),
                            Esc::Bytes(b) => s.extend_from_slice(&b),
                            Esc::Stop => {
                                stop = true;
                                break;
                            }
                        }
                    } else {
                        s.push(a[j]);
                        j += 1;
                    }
                }
                out.extend_from_slice(&cfmt::string(conv, &s));
                if stop {
                    self.next = self.args.len();
                    return Err(Fail::Exit(self.flush_and_status(out)?));
                }
            }
            other => {
                return util::usage(format!(
                    "%{}: invalid or unsupported conversion",
                    other as char
                ));
            }
        }
        Ok(())
    }

    fn flush_and_status(&self, out: &[u8]) -> Result<i32, Fail> {
        let mut so = std::io::stdout().lock();
        so.write_all(out).and_then(|_| so.flush())?;
        Ok(self.status)
    }
}

enum Esc {
    Byte(u8),
    Bytes(Vec<u8>),
    Stop,
}

/// Decodes the escape at `s[*i] == '\\'`. `in_b`: `%b` rules (`\0NNN`).
fn escape(s: &[u8], i: &mut usize, in_b: bool) -> Esc {
    *i += 1;
    let Some(&c) = s.get(*i) else {
        return Esc::Byte(b'\\');
    };
    *i += 1;
    let digits = |i: &mut usize, max: usize, radix: u32| -> Option<u32> {
        let st = *i;
        let mut v = 0u32;
        while *i < s.len() && *i - st < max {
            match (s[*i] as char).to_digit(radix) {
                Some(d) => v = v * radix + d,
                None => break,
            }
            *i += 1;
        }
        (*i > st).then_some(v)
    };
    match c {
        b'"' => Esc::Byte(b'"'),
        b'\\' => Esc::Byte(b'\\'),
        b'a' => Esc::Byte(7),
        b'b' => Esc::Byte(8),
        b'c' => Esc::Stop,
        b'e' => Esc::Byte(27),
        b'f' => Esc::Byte(12),
        b'n' => Esc::Byte(b'\n'),
        b'r' => Esc::Byte(b'\r'),
        b't' => Esc::Byte(b'\t'),
        b'v' => Esc::Byte(11),
        b'0' if in_b => Esc::Byte(digits(i, 3, 8).unwrap_or(0) as u8),
        b'0'..=b'7' if !in_b => {
            *i -= 1;
            Esc::Byte(digits(i, 3, 8).unwrap_or(0) as u8)
        }
        b'1'..=b'7' if in_b => {
            *i -= 1;
            Esc::Byte(digits(i, 3, 8).unwrap_or(0) as u8)
        }
        b'x' => match digits(i, 2, 16) {
            Some(v) => Esc::Byte(v as u8),
            None => Esc::Bytes(b"\\x".to_vec()),
        },
        b'u' | b'U' => {
            let max = if c == b'u' { 4 } else { 8 };
            // The C locale cannot encode non-ASCII characters: GNU prints them escaped.
            match digits(i, max, 16) {
                Some(v) if v < 0x80 => Esc::Byte(v as u8),
                Some(v) if c == b'u' => Esc::Bytes(format!("\\u{v:04X}").into_bytes()),
                Some(v) => Esc::Bytes(format!("\\U{v:08X}").into_bytes()),
                None => Esc::Bytes(vec![b'\\', c]),
            }
        }
        other => Esc::Bytes(vec![b'\\', other]),
    }
}
