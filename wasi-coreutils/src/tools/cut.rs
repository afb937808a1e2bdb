//! `cut`: selects bytes (`-b`), characters (`-c`, bytes in the C locale) or
//! delimited fields (`-f` with `-d`, `-s`), with `--complement` and
//! `--output-delimiter`, as GNU cut does.

use std::ffi::OsString;
use std::io::Write;

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("bytes", HasArg::Yes, 'b'),
    ("characters", HasArg::Yes, 'c'),
    ("delimiter", HasArg::Yes, 'd'),
    ("fields", HasArg::Yes, 'f'),
    ("only-delimited", HasArg::No, 's'),
    ("complement", HasArg::No, '\u{1}'),
    ("output-delimiter", HasArg::Yes, '\u{2}'),
    ("zero-terminated", HasArg::No, 'z'),
];
const SPEC: Spec = Spec::new("nsz", "bcdf", LONG);

/// Inclusive 1-based ranges, sorted and merged.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ranges(Vec<(usize, usize)>);

impl Ranges {
    fn parse(s: &[u8]) -> Result<Ranges, String> {
        let mut v = Vec::new();
        let bad = |m: &str| m.to_string();
        for part in s.split(|&c| c == b',' || c == b' ') {
            if part.is_empty() {
                return Err(bad("invalid byte, character or field list"));
            }
            let num = |x: &[u8]| -> Result<usize, String> {
                let n = args::parse_count(x).ok_or_else(|| {
                    format!("invalid field value '{}'", String::from_utf8_lossy(x))
                })?;
                if n == 0 {
                    return Err("fields and positions are numbered from 1".to_string());
                }
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            };
            let r = match part.iter().position(|&c| c == b'-') {
                None => {
                    let n = num(part)?;
                    (n, n)
                }
                Some(p) => {
                    let (a, b) = (&part[..p], &part[p + 1..]);
                    if a.is_empty() && b.is_empty() {
                        return Err("invalid range with no endpoint: -".to_string());
                    }
                    let lo = if a.is_empty() { 1 } else { num(a)? };
                    let hi = if b.is_empty() { usize::MAX } else { num(b)? };
                    if hi < lo {
                        return Err("invalid decreasing range".to_string());
                    }
                    (lo, hi)
                }
            };
            v.push(r);
        }
        v.sort();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (a, b) in v {
            match merged.last_mut() {
                Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Ok(Ranges(merged))
    }

    fn complement(&self) -> Ranges {
        let mut v = Vec::new();
        let mut next = 1usize;
        for &(a, b) in &self.0 {
            if a > next {
                v.push((next, a - 1));
            }
            next = b.saturating_add(1);
            if b == usize::MAX {
                return Ranges(v);
            }
        }
        v.push((next, usize::MAX));
        Ranges(v)
    }

    fn contains(&self, i: usize) -> bool {
        self.0.iter().any(|&(a, b)| a <= i && i <= b)
    }
}

enum Mode {
    Bytes,
    Fields { delim: u8, only_delimited: bool },
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let (mut list, mut fields, mut delim, mut only, mut compl, mut out_delim, mut zero) =
            (None, false, None, false, false, None, false);
        for (k, v) in &p.opts {
            let v = v.clone().unwrap_or_default();
            match k {
                'b' | 'c' | 'f' => {
                    if list.is_some() {
                        return util::usage("only one type of list may be specified");
                    }
                    list = Some(Ranges::parse(&v).map_err(Fail::Usage)?);
                    fields = *k == 'f';
                }
                'd' => {
                    if v.len() > 1 {
                        return util::usage("the delimiter must be a single character");
                    }
                    delim = Some(v.first().copied().unwrap_or(0));
                }
                's' => only = true,
                '\u{1}' => compl = true,
                '\u{2}' => out_delim = Some(v),
                'z' => zero = true,
                _ => {}
            }
        }
        let Some(mut list) = list else {
            return util::usage("you must specify a list of bytes, characters, or fields");
        };
        if !fields && (delim.is_some() || only) {
            return util::usage(
                "an input delimiter may be specified only when operating on fields",
            );
        }
        if compl {
            list = list.complement();
        }
        let mode = if fields {
            Mode::Fields {
                delim: delim.unwrap_or(b'\t'),
                only_delimited: only,
            }
        } else {
            Mode::Bytes
        };
        let out_delim = out_delim.unwrap_or_else(|| match mode {
            Mode::Fields { delim, .. } => vec![delim],
            Mode::Bytes => Vec::new(),
        });
        let term = if zero { 0 } else { b'\n' };
        let mut out = crate::common::stdout();
        let mut status = 0;
        let mut buf = Vec::with_capacity(4096);
        for name in input::operands_or_stdin(p.operands) {
            let r = match input::open(&name) {
                Ok(r) => r,
                Err(e) => {
                    input::report(tool, &name, &e);
                    status = 1;
                    continue;
                }
            };
            let mut lines = input::Lines::new(r, term);
            loop {
                let line = match lines.next() {
                    Ok(Some(l)) => input::chomp(l, term),
                    Ok(None) => break,
                    Err(e) => {
                        input::report(tool, &name, &e);
                        status = 1;
                        break;
                    }
                };
                buf.clear();
                if cut_line(line, &list, &mode, &out_delim, &mut buf) {
                    buf.push(term);
                    out.write_all(&buf)?;
                }
            }
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}

/// Cuts one line into `out`; false when the line is suppressed (`-s`).
fn cut_line(line: &[u8], list: &Ranges, mode: &Mode, out_delim: &[u8], out: &mut Vec<u8>) -> bool {
    match *mode {
        Mode::Bytes => {
            let mut first = true;
            for &(a, b) in &list.0 {
                if a > line.len() {
                    break;
                }
                if !first {
                    out.extend_from_slice(out_delim);
                }
                first = false;
                out.extend_from_slice(&line[a - 1..b.min(line.len())]);
            }
            true
        }
        Mode::Fields {
            delim,
            only_delimited,
        } => {
            if memchr::memchr(delim, line).is_none() {
                if only_delimited {
                    return false;
                }
                out.extend_from_slice(line);
                return true;
            }
            let mut first = true;
            for (i, f) in line.split(|&c| c == delim).enumerate() {
                if list.contains(i + 1) {
                    if !first {
                        out.extend_from_slice(out_delim);
                    }
                    first = false;
                    out.extend_from_slice(f);
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            Ranges::parse(b"3,1-2,5-").unwrap(),
            Ranges(vec![(1, 3), (5, usize::MAX)])
        );
        assert_eq!(
            Ranges::parse(b"-2").unwrap().complement(),
            Ranges(vec![(3, usize::MAX)])
        );
        assert!(Ranges::parse(b"0").is_err());
        assert!(Ranges::parse(b"3-1").is_err());
        assert!(Ranges::parse(b"").is_err());
    }

    #[test]
    fn fields() {
        let mut o = Vec::new();
        let m = Mode::Fields {
            delim: b',',
            only_delimited: false,
        };
        assert!(cut_line(
            b"a,b,c",
            &Ranges::parse(b"1,3").unwrap(),
            &m,
            b":",
            &mut o
        ));
        assert_eq!(o, b"a:c");
    }
}
