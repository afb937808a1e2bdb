//! `tr`: translates, squeezes (`-s`) and deletes (`-d`) bytes, with
//! complement (`-c`/`-C`) and truncation (`-t`). Sets understand GNU's
//! escapes (`\n`, `\\`, `\NNN`), ranges, `[:class:]`, `[=c=]`, and in SET2
//! `[c*n]`/`[c*]` repeats. `[:upper:]`/`[:lower:]` pair up for case mapping.

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::ffi::OsString;
use std::io::{Read, Write};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input::{self, BUF_SIZE};
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("complement", HasArg::No, 'c'),
    ("delete", HasArg::No, 'd'),
    ("squeeze-repeats", HasArg::No, 's'),
    ("truncate-set1", HasArg::No, 't'),
];
const SPEC: Spec = Spec::new("cCdst", "", LONG);

/// One element of a parsed set.
#[derive(Debug, Clone, PartialEq)]
enum Elem {
    Bytes(Vec<u8>),
    /// `[c*n]` (n = None: fill to SET1's length).
    Repeat(u8, Option<usize>),
}

fn unescape(s: &[u8], i: &mut usize) -> u8 {
    // s[*i] == b'\\'
    *i += 1;
    let Some(&c) = s.get(*i) else { return b'\\' };
    *i += 1;
    match c {
        b'a' => 7,
        b'b' => 8,
        b'f' => 12,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 11,
        b'0'..=b'7' => {
            let mut v = u32::from(c - b'0');
            let mut n = 1;
            while n < 3
                && *i < s.len()
                && (b'0'..=b'7').contains(&s[*i])
                && v * 8 + u32::from(s[*i] - b'0') < 256
            {
                v = v * 8 + u32::from(s[*i] - b'0');
                *i += 1;
                n += 1;
            }
            v as u8
        }
        other => other,
    }
}

fn class(name: &[u8]) -> Option<Vec<u8>> {
    let f: fn(&u8) -> bool = match name {
        b"alpha" => u8::is_ascii_alphabetic,
        b"digit" => u8::is_ascii_digit,
        b"alnum" => u8::is_ascii_alphanumeric,
        b"upper" => u8::is_ascii_uppercase,
        b"lower" => u8::is_ascii_lowercase,
        b"space" => |c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 11 | 12),
        b"blank" => |c| *c == b' ' || *c == b'\t',
        b"punct" => u8::is_ascii_punctuation,
        b"print" => |c| (32..127).contains(c),
        b"graph" => |c| (33..127).contains(c),
        b"cntrl" => |c| *c < 32 || *c == 127,
        b"xdigit" => u8::is_ascii_hexdigit,
        _ => return None,
    };
    Some((0..=255u8).filter(f).collect())
}

/// Parses a set into elements; `set2` allows `[c*n]`.
fn parse_set(s: &[u8], set2: bool) -> Result<Vec<Elem>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'[' && i + 1 < s.len() {
            if s[i + 1] == b':' {
                if let Some(end) = find(s, i + 2, b":]") {
                    let name = &s[i + 2..end];
                    let bytes = class(name).ok_or_else(|| {
                        format!(
                            "invalid character class '{}'",
                            String::from_utf8_lossy(name)
                        )
                    })?;
                    out.push(Elem::Bytes(bytes));
                    i = end + 2;
                    continue;
                }
            } else if s[i + 1] == b'=' {
                if let Some(end) = find(s, i + 2, b"=]") {
                    if end == i + 3 {
                        out.push(Elem::Bytes(vec![s[i + 2]]));
                        i = end + 2;
                        continue;
                    }
                }
            } else if set2 {
                // [c*n] / [c*]
                let mut j = i + 1;
                let c = if s[j] == b'\\' {
                    unescape(s, &mut j)
                } else {
                    j += 1;
                    s[j - 1]
                };
                if s.get(j) == Some(&b'*') {
                    if let Some(end) = find(s, j + 1, b"]") {
                        let num = &s[j + 1..end];
                        let n = if num.is_empty() {
                            None
                        } else {
                            let parsed = if num[0] == b'0' {
                                usize::from_str_radix(std::str::from_utf8(num).unwrap_or("x"), 8)
                                    .ok()
                            } else {
                                std::str::from_utf8(num).ok().and_then(|x| x.parse().ok())
                            };
                            match parsed {
                                Some(0) => None,
                                Some(n) => Some(n),
                                None => {
                                    return Err(format!(
                                        "invalid repeat count '{}' in [c*n] construct",
                                        String::from_utf8_lossy(num)
                                    ));
                                }
                            }
                        };
                        out.push(Elem::Repeat(c, n));
                        i = end + 1;
                        continue;
                    }
                }
            }
        }
        let c = if s[i] == b'\\' {
            unescape(s, &mut i)
        } else {
            i += 1;
            s[i - 1]
        };
        // A range c-d.
        if s.get(i) == Some(&b'-') && i + 1 < s.len() {
            let mut j = i + 1;
            let d = if s[j] == b'\\' {
                unescape(s, &mut j)
            } else {
                j += 1;
                s[j - 1]
            };
            if d < c {
                return Err(format!(
                    "range-endpoints of '{}-{}' are in reverse collating sequence order",
                    c as char, d as char
                ));
            }
            out.push(Elem::Bytes((c..=d).collect()));
            i = j;
            continue;
        }
        out.push(Elem::Bytes(vec![c]));
    }
    Ok(out)
}

fn find(s: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    memchr::memmem::find(s.get(from..)?, pat).map(|p| p + from)
}

/// Expands elements to a byte sequence; repeats fill up to `target` (SET1's length).
fn expand(elems: &[Elem], target: usize) -> Vec<u8> {
    let fixed: usize = elems
        .iter()
        .map(|e| match e {
            Elem::Bytes(b) => b.len(),
            Elem::Repeat(_, Some(n)) => *n,
            Elem::Repeat(_, None) => 0,
        })
        .sum();
    let mut out = Vec::new();
    let mut filled = false;
    for e in elems {
        match e {
            Elem::Bytes(b) => out.extend_from_slice(b),
            Elem::Repeat(c, Some(n)) => out.extend(std::iter::repeat_n(*c, *n)),
            Elem::Repeat(c, None) => {
                if !filled {
                    out.extend(std::iter::repeat_n(*c, target.saturating_sub(fixed)));
                    filled = true;
                }
            }
        }
    }
    out
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |_tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let (mut compl, mut delete, mut squeeze, mut truncate) = (false, false, false, false);
        for (k, _) in &p.opts {
            match k {
                'c' | 'C' => compl = true,
                'd' => delete = true,
                's' => squeeze = true,
                't' => truncate = true,
                _ => {}
            }
        }
        let ops = &p.operands;
        let need2 = !delete && !squeeze || (delete && squeeze);
        match (ops.len(), need2) {
            (0, _) => return util::usage("missing operand"),
            (1, true) if !delete && !squeeze => {
                return util::usage(format!(
                    "missing operand after '{}'",
                    String::from_utf8_lossy(&ops[0])
                ));
            }
            (1, true) => {
                return util::usage(format!(
                    "missing operand after '{}'",
                    String::from_utf8_lossy(&ops[0])
                ));
            }
            (2, false) if delete => {
                return util::usage(format!(
                    "extra operand '{}'",
                    String::from_utf8_lossy(&ops[1])
                ));
            }
            (n, _) if n > 2 => {
                return util::usage(format!(
                    "extra operand '{}'",
                    String::from_utf8_lossy(&ops[2])
                ));
            }
            _ => {}
        }
        let e1 = parse_set(&ops[0], false).map_err(Fail::Usage)?;
        let mut set1 = expand(&e1, 0);
        if compl {
            let mut inset = [false; 256];
            for &b in &set1 {
                inset[b as usize] = true;
            }
            set1 = (0..=255u8).filter(|b| !inset[*b as usize]).collect();
        }
        let set2 = match ops.get(1) {
            Some(s) => {
                let e2 = parse_set(s, true).map_err(Fail::Usage)?;
                let mut v = expand(&e2, set1.len());
                if !delete && !truncate && !v.is_empty() && v.len() < set1.len() {
                    let last = *v.last().unwrap_or(&0);
                    v.resize(set1.len(), last);
                }
                if !delete && v.is_empty() && !set1.is_empty() {
                    return util::usage("when not truncating set1, string2 must be non-empty");
                }
                Some(v)
            }
            None => None,
        };
        // Tables: translation, deletion, squeeze membership.
        let mut map: [u8; 256] = std::array::from_fn(|i| i as u8);
        let mut del = [false; 256];
        let mut sq = [false; 256];
        if delete {
            for &b in &set1 {
                del[b as usize] = true;
            }
            if let Some(s2) = &set2 {
                for &b in s2 {
                    sq[b as usize] = true;
                }
            }
        } else if let Some(s2) = &set2 {
            for (i, &b) in set1.iter().enumerate() {
                if let Some(&t) = s2.get(i) {
                    map[b as usize] = t;
                }
            }
            if squeeze {
                for &b in s2 {
                    sq[b as usize] = true;
                }
            }
        } else {
            for &b in &set1 {
                sq[b as usize] = true;
            }
        }
        let mut stdin = std::io::stdin().lock();
        let mut out = crate::common::stdout();
        let mut buf = vec![0u8; BUF_SIZE];
        let mut obuf = Vec::with_capacity(BUF_SIZE);
        let mut last: Option<u8> = None;
        let squeezing = sq.iter().any(|&b| b);
        loop {
            let n = input::fill(&mut stdin as &mut dyn Read, &mut buf).map_err(|e| {
                eprintln!("tr: read error: {}", input::errmsg(&e));
                Fail::Exit(1)
            })?;
            if n == 0 {
                break;
            }
            obuf.clear();
            for &b in &buf[..n] {
                if del[b as usize] {
                    continue;
                }
                let t = map[b as usize];
                if squeezing && sq[t as usize] && last == Some(t) {
                    continue;
                }
                last = Some(t);
                obuf.push(t);
            }
            out.write_all(&obuf)?;
        }
        crate::common::finish(&mut out)?;
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        assert_eq!(
            expand(&parse_set(b"a-c\\n[:digit:]", false).unwrap(), 0),
            b"abc\n0123456789"
        );
        assert_eq!(expand(&parse_set(b"x[y*]z", true).unwrap(), 5), b"xyyyz");
        assert_eq!(expand(&parse_set(b"[y*2]", true).unwrap(), 5), b"yy");
        assert_eq!(expand(&parse_set(b"\\101", false).unwrap(), 0), b"A");
        assert!(parse_set(b"z-a", false).is_err());
        assert!(parse_set(b"[:nope:]", false).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in proptest::collection::vec(proptest::num::u8::ANY, 0..16), two in proptest::bool::ANY) {
            if let Ok(e) = parse_set(&s, two) {
                let _ = expand(&e, 10);
            }
        }
    }
}
