//! `cat`: concatenates files; `-n -b -s -v -E -T -A -e -t -u` as in GNU.
//!
//! Without formatting options the bytes are copied through a large buffer
//! untouched; with them, the line state (numbering, "at line start",
//! squeezing) carries across files as GNU's does.

use std::ffi::OsString;
use std::io::{Read, Write};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input::{self, BUF_SIZE};
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("show-all", HasArg::No, 'A'),
    ("number-nonblank", HasArg::No, 'b'),
    ("show-ends", HasArg::No, 'E'),
    ("number", HasArg::No, 'n'),
    ("squeeze-blank", HasArg::No, 's'),
    ("show-tabs", HasArg::No, 'T'),
    ("show-nonprinting", HasArg::No, 'v'),
];
const SPEC: Spec = Spec::new("AbeEnstTuv", "", LONG);

#[derive(Default)]
struct Opts {
    number: bool,
    nonblank: bool,
    squeeze: bool,
    ends: bool,
    tabs: bool,
    nonprint: bool,
}

/// Formatting state carried across files.
struct State {
    line_no: u64,
    at_start: bool,
    prev_blank: bool,
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut o = Opts::default();
        for (k, _) in &p.opts {
            match k {
                'A' => (o.nonprint, o.ends, o.tabs) = (true, true, true),
                'b' => o.nonblank = true,
                'e' => (o.nonprint, o.ends) = (true, true),
                'E' => o.ends = true,
                'n' => o.number = true,
                's' => o.squeeze = true,
                't' => (o.nonprint, o.tabs) = (true, true),
                'T' => o.tabs = true,
                'v' => o.nonprint = true,
                _ => {}
            }
        }
        if o.nonblank {
            o.number = false;
        }
        let plain = !(o.number || o.nonblank || o.squeeze || o.ends || o.tabs || o.nonprint);
        let mut out = crate::common::stdout();
        let mut st = State {
            line_no: 0,
            at_start: true,
            prev_blank: false,
        };
        let mut status = 0;
        let mut buf = vec![0u8; BUF_SIZE];
        for name in input::operands_or_stdin(p.operands) {
            let mut r = match input::open(&name) {
                Ok(r) => r,
                Err(e) => {
                    input::report(tool, &name, &e);
                    status = 1;
                    continue;
                }
            };
            let res = if plain {
                copy(&mut r, &mut out, &mut buf)
            } else {
                format(&mut r, &mut out, &o, &mut st)
            };
            match res {
                Ok(()) => {}
                Err(Fail::Usage(m)) => {
                    eprintln!("{tool}: {}: {m}", String::from_utf8_lossy(&name));
                    status = 1;
                }
                Err(e) => return Err(e),
            }
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}

/// Plain copy. Read errors come back as `Usage` (reported per file, status 1).
fn copy(r: &mut dyn Read, out: &mut impl Write, buf: &mut [u8]) -> Result<(), Fail> {
    loop {
        let n = input::fill(r, buf).map_err(|e| Fail::Usage(input::errmsg(&e)))?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n])?;
    }
}

fn format(r: &mut dyn Read, out: &mut impl Write, o: &Opts, st: &mut State) -> Result<(), Fail> {
    let mut lines = input::Lines::new(r, b'\n');
    let mut tmp = Vec::with_capacity(1024);
    while let Some(line) = lines.next().map_err(|e| Fail::Usage(input::errmsg(&e)))? {
        let (body, nl) = match line.split_last() {
            Some((b'\n', b)) => (b, true),
            _ => (line, false),
        };
        if st.at_start {
            let blank = body.is_empty() && nl;
            if o.squeeze && blank && st.prev_blank {
                continue;
            }
            st.prev_blank = blank;
            if o.number || (o.nonblank && !blank) {
                st.line_no += 1;
                write!(out, "{:>6}\t", st.line_no)?;
            }
        } else if !body.is_empty() || nl {
            // Continuation of a line begun by the previous file.
            st.prev_blank = false;
        }
        // GNU 9 shows a CR before the newline as `^M$` under -E.
        let crlf = o.ends && nl && body.last() == Some(&b'\r') && !o.nonprint;
        let body = if crlf { &body[..body.len() - 1] } else { body };
        tmp.clear();
        if o.nonprint || o.tabs {
            for &c in body {
                render(c, o, &mut tmp);
            }
            out.write_all(&tmp)?;
        } else {
            out.write_all(body)?;
        }
        if nl {
            if crlf {
                out.write_all(b"^M")?;
            }
            if o.ends {
                out.write_all(b"$")?;
            }
            out.write_all(b"\n")?;
        }
        st.at_start = nl;
    }
    Ok(())
}

/// One byte as `cat -v`/`-T` shows it.
fn render(c: u8, o: &Opts, out: &mut Vec<u8>) {
    if c == b'\t' {
        if o.tabs {
            out.extend_from_slice(b"^I");
        } else {
            out.push(c);
        }
        return;
    }
    if !o.nonprint {
        out.push(c);
        return;
    }
    let mut c = c;
    if c >= 128 {
        out.extend_from_slice(b"M-");
        c -= 128;
    }
    match c {
        0..=31 => {
            out.push(b'^');
            out.push(c + 64);
        }
        127 => out.extend_from_slice(b"^?"),
        _ => out.push(c),
    }
}
