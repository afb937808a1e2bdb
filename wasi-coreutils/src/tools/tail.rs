//! `tail`: the last N lines or bytes (`-n N`, `-c N`), or everything from
//! the Nth on (`-n +N`, `-c +N`); `-q`, `-v`, `-z`, `-N`. Following (`-f`,
//! `-F`, `--follow`) is unsupported: a job's input never grows.
//!
//! Works on pipes as well as files: the input is read once, keeping only
//! as many chunks as can still hold the last N lines.

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
    ("follow", HasArg::Optional, 'f'),
];
const SPEC: Spec = Spec {
    flags: "qvzfF",
    with_arg: "nc",
    long: LONG,
    digits: true,
    stop_at_operand: false,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Amount {
    LastLines(u64),
    FromLine(u64),
    LastBytes(u64),
    FromByte(u64),
}

fn parse_amount(v: &[u8], lines: bool) -> Result<Amount, Fail> {
    let (plus, num) = match v.first() {
        Some(b'-') => (false, &v[1..]),
        Some(b'+') => (true, &v[1..]),
        _ => (false, v),
    };
    let what = if lines { "lines" } else { "bytes" };
    let n = args::parse_size(num).ok_or_else(|| {
        Fail::Usage(format!(
            "invalid number of {what}: '{}'",
            String::from_utf8_lossy(v)
        ))
    })?;
    Ok(match (lines, plus) {
        (true, false) => Amount::LastLines(n),
        (true, true) => Amount::FromLine(n),
        (false, false) => Amount::LastBytes(n),
        (false, true) => Amount::FromByte(n),
    })
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut amount = Amount::LastLines(10);
        let (mut quiet, mut verbose, mut delim) = (false, false, b'\n');
        for (k, v) in &p.opts {
            let v = v.as_deref().unwrap_or_default();
            match k {
                'n' | '#' => amount = parse_amount(v, true)?,
                'c' => amount = parse_amount(v, false)?,
                'q' => (quiet, verbose) = (true, false),
                'v' => (verbose, quiet) = (true, false),
                'z' => delim = 0,
                'f' | 'F' => {
                    return util::unsupported("following (-f/-F/--follow) is not supported");
                }
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
            match tail(&mut r, &mut out, amount, delim) {
                Ok(()) => {}
                Err(Fail::Usage(m)) => {
                    eprintln!("{tool}: error reading '{}': {m}", input::display_name(name));
                    status = 1;
                }
                Err(e) => return Err(e),
            }
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}

fn rd(e: std::io::Error) -> Fail {
    Fail::Usage(input::errmsg(&e))
}

fn tail(r: &mut dyn Read, out: &mut impl Write, amount: Amount, delim: u8) -> Result<(), Fail> {
    let mut buf = vec![0u8; BUF_SIZE];
    match amount {
        Amount::FromByte(n) => {
            let mut skip = n.saturating_sub(1);
            loop {
                let got = input::fill(r, &mut buf).map_err(rd)?;
                if got == 0 {
                    return Ok(());
                }
                let s = usize::try_from(skip).unwrap_or(usize::MAX).min(got);
                skip -= s as u64;
                out.write_all(&buf[s..got])?;
            }
        }
        Amount::FromLine(n) => {
            let mut skip = n.saturating_sub(1);
            loop {
                let got = input::fill(r, &mut buf).map_err(rd)?;
                if got == 0 {
                    return Ok(());
                }
                let mut s = 0;
                if skip > 0 {
                    s = got;
                    for p in memchr::memchr_iter(delim, &buf[..got]) {
                        skip -= 1;
                        if skip == 0 {
                            s = p + 1;
                            break;
                        }
                    }
                }
                out.write_all(&buf[s..got])?;
            }
        }
        Amount::LastBytes(k) => {
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            let mut held: VecDeque<u8> = VecDeque::new();
            loop {
                let got = input::fill(r, &mut buf).map_err(rd)?;
                if got == 0 {
                    break;
                }
                held.extend(&buf[..got]);
                let excess = held.len().saturating_sub(k);
                held.drain(..excess);
            }
            let (a, b) = held.as_slices();
            out.write_all(a)?;
            out.write_all(b)?;
            Ok(())
        }
        Amount::LastLines(k) => {
            // Chunks with their terminator counts; drop the oldest chunk while
            // the newer ones alone hold more than k terminators.
            let mut chunks: VecDeque<(Vec<u8>, u64)> = VecDeque::new();
            let mut total: u64 = 0;
            loop {
                let mut chunk = vec![0u8; BUF_SIZE];
                let got = input::fill(r, &mut chunk).map_err(rd)?;
                if got == 0 {
                    break;
                }
                chunk.truncate(got);
                let c = memchr::memchr_iter(delim, &chunk).count() as u64;
                total += c;
                chunks.push_back((chunk, c));
                while let Some(&(_, fc)) = chunks.front() {
                    if total - fc > k {
                        total -= fc;
                        chunks.pop_front();
                    } else {
                        break;
                    }
                }
            }
            let data: Vec<u8> = chunks.into_iter().flat_map(|(c, _)| c).collect();
            if k == 0 {
                return Ok(());
            }
            // Walk back over k terminators (a final unterminated line counts as one).
            let mut end = data.len();
            if data.last() == Some(&delim) {
                end -= 1;
            }
            let mut start = 0;
            let mut need = k;
            let mut pos = end;
            while let Some(p) = memchr::memrchr(delim, &data[..pos]) {
                need -= 1;
                if need == 0 {
                    start = p + 1;
                    break;
                }
                pos = p;
            }
            out.write_all(&data[start..])?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8], a: Amount) -> Vec<u8> {
        let mut out = Vec::new();
        tail(&mut &data[..], &mut out, a, b'\n').unwrap();
        out
    }

    #[test]
    fn amounts() {
        assert_eq!(run(b"a\nb\nc", Amount::LastLines(2)), b"b\nc");
        assert_eq!(run(b"a\nb\nc\n", Amount::LastLines(2)), b"b\nc\n");
        assert_eq!(run(b"a\nb\nc\n", Amount::LastLines(5)), b"a\nb\nc\n");
        assert_eq!(run(b"a\nb\nc\n", Amount::FromLine(2)), b"b\nc\n");
        assert_eq!(run(b"abc", Amount::LastBytes(2)), b"bc");
        assert_eq!(run(b"abc", Amount::FromByte(2)), b"bc");
        assert_eq!(run(b"a\nb\n", Amount::LastLines(0)), b"");
    }

    #[test]
    fn many_chunks() {
        let data: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        assert_eq!(run(&data, Amount::LastLines(2)), b"199998\n199999\n");
    }
}
