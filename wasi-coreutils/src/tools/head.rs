//! `head`: the first (or all but the last) N lines or bytes of each input.
//! `-n [-]N`, `-c [-]N` (with GNU size suffixes), `-q`, `-v`, `-z`, `-N`.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{Read, Write};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input::{self, BUF_SIZE};
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("lines", HasArg::Yes, 'n'),
    ("bytes", HasArg::Yes, 'c'),
    ("quiet", HasArg::No, 'q'),
    ("silent", HasArg::No, 'q'),
    ("verbose", HasArg::No, 'v'),
    ("zero-terminated", HasArg::No, 'z'),
];
const SPEC: Spec = Spec {
    flags: "qvz",
    with_arg: "nc",
    long: LONG,
    digits: true,
    stop_at_operand: false,
};

/// What to print from each input.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Amount {
    Lines(u64),
    AllButLastLines(u64),
    Bytes(u64),
    AllButLastBytes(u64),
}

fn parse_amount(v: &[u8], lines: bool) -> Result<Amount, Fail> {
    let (neg, num) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let what = if lines { "lines" } else { "bytes" };
    let n = args::parse_size(num).ok_or_else(|| {
        Fail::Usage(format!(
            "invalid number of {what}: '{}'",
            String::from_utf8_lossy(v)
        ))
    })?;
    Ok(match (lines, neg) {
        (true, false) => Amount::Lines(n),
        (true, true) => Amount::AllButLastLines(n),
        (false, false) => Amount::Bytes(n),
        (false, true) => Amount::AllButLastBytes(n),
    })
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut amount = Amount::Lines(10);
        let (mut quiet, mut verbose, mut delim) = (false, false, b'\n');
        for (k, v) in &p.opts {
            let v = v.as_deref().unwrap_or_default();
            match k {
                'n' => amount = parse_amount(v, true)?,
                '#' => amount = parse_amount(v, true)?,
                'c' => amount = parse_amount(v, false)?,
                'q' => (quiet, verbose) = (true, false),
                'v' => (verbose, quiet) = (true, false),
                'z' => delim = 0,
                _ => {}
            }
        }
        let files = input::operands_or_stdin(p.operands);
        let headers = verbose || (files.len() > 1 && !quiet);
        let mut out = crate::common::stdout();
        let mut status = 0;
        let mut first = true;
        for name in &files {
            let mut r = match input::open(name) {
                Ok(r) => r,
                Err(e) => {
                    input::report(tool, name, &e);
                    status = 1;
                    continue;
                }
            };
            if headers {
                if !first {
                    out.write_all(b"\n")?;
                }
                writeln!(out, "==> {} <==", input::display_name(name))?;
            }
            first = false;
            if let Err(e) = head(&mut r, &mut out, amount, delim) {
                if let Fail::Usage(m) = e {
                    eprintln!("{tool}: error reading '{}': {m}", input::display_name(name));
                    status = 1;
                } else {
                    return Err(e);
                }
            }
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}

fn rd(e: std::io::Error) -> Fail {
    Fail::Usage(input::errmsg(&e))
}

fn head(r: &mut dyn Read, out: &mut impl Write, amount: Amount, delim: u8) -> Result<(), Fail> {
    let mut buf = vec![0u8; BUF_SIZE];
    match amount {
        Amount::Bytes(mut left) => {
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = input::fill(r, &mut buf[..want]).map_err(rd)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                left -= n as u64;
            }
        }
        Amount::Lines(mut left) => {
            while left > 0 {
                let n = input::fill(r, &mut buf).map_err(rd)?;
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                let mut end = n;
                for p in memchr::memchr_iter(delim, chunk) {
                    left -= 1;
                    if left == 0 {
                        end = p + 1;
                        break;
                    }
                }
                out.write_all(&chunk[..end])?;
            }
        }
        Amount::AllButLastBytes(k) => {
            // Hold back the last k bytes; everything older can go out.
            let mut held: VecDeque<u8> = VecDeque::new();
            loop {
                let n = input::fill(r, &mut buf).map_err(rd)?;
                if n == 0 {
                    break;
                }
                held.extend(&buf[..n]);
                let excess = held
                    .len()
                    .saturating_sub(usize::try_from(k).unwrap_or(usize::MAX));
                if excess > 0 {
                    let (a, b) = held.as_slices();
                    let fa = excess.min(a.len());
                    out.write_all(&a[..fa])?;
                    out.write_all(&b[..excess - fa])?;
                    held.drain(..excess);
                }
            }
        }
        Amount::AllButLastLines(k) => {
            // Keep the last k lines; print each line once it is older than that.
            let mut lines = input::Lines::new(r, delim);
            let mut held: VecDeque<Vec<u8>> = VecDeque::new();
            while let Some(l) = lines.next().map_err(rd)? {
                if k == 0 {
                    out.write_all(l)?;
                    continue;
                }
                let v = if held.len() as u64 == k {
                    held.pop_front().map(|mut old| {
                        out.write_all(&old).map(|_| {
                            old.clear();
                            old.extend_from_slice(l);
                            old
                        })
                    })
                } else {
                    None
                };
                match v {
                    Some(r) => held.push_back(r?),
                    None => held.push_back(l.to_vec()),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8], a: Amount) -> Vec<u8> {
        let mut out = Vec::new();
        head(&mut &data[..], &mut out, a, b'\n').unwrap();
        out
    }

    #[test]
    fn amounts() {
        assert_eq!(run(b"a\nb\nc", Amount::Lines(2)), b"a\nb\n");
        assert_eq!(run(b"a\nb\nc", Amount::AllButLastLines(1)), b"a\nb\n");
        assert_eq!(run(b"a\nb\nc", Amount::Bytes(3)), b"a\nb");
        assert_eq!(run(b"a\nb\nc", Amount::AllButLastBytes(2)), b"a\nb");
        assert_eq!(
            parse_amount(b"-3", true).unwrap(),
            Amount::AllButLastLines(3)
        );
        assert!(parse_amount(b"x", true).is_err());
    }
}
