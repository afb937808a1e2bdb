//! `nl`: numbers lines. `-b/-h/-f STYLE` (`a`, `t`, `n`, `pBRE`), `-n ln|rn|rz`,
//! `-w N`, `-s SEP`, `-v N`, `-i N`, `-p`, `-d CC` and the `\:\:\:`,
//! `\:\:`, `\:` section delimiters, as GNU nl. `-l` is unsupported.

use std::ffi::OsString;
use std::io::Write;

use regex::bytes::{Regex, RegexBuilder};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::posix_regex::{self, Dialect};
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("body-numbering", HasArg::Yes, 'b'),
    ("section-delimiter", HasArg::Yes, 'd'),
    ("footer-numbering", HasArg::Yes, 'f'),
    ("header-numbering", HasArg::Yes, 'h'),
    ("line-increment", HasArg::Yes, 'i'),
    ("join-blank-lines", HasArg::Yes, 'l'),
    ("number-format", HasArg::Yes, 'n'),
    ("no-renumber", HasArg::No, 'p'),
    ("number-separator", HasArg::Yes, 's'),
    ("starting-line-number", HasArg::Yes, 'v'),
    ("number-width", HasArg::Yes, 'w'),
];
const SPEC: Spec = Spec::new("p", "bdfhilnsvw", LONG);

enum Style {
    All,
    NonEmpty,
    None,
    Regex(Regex),
}

impl Style {
    fn parse(v: &[u8]) -> Result<Style, Fail> {
        Ok(match v {
            b"a" => Style::All,
            b"t" => Style::NonEmpty,
            b"n" => Style::None,
            [b'p', re @ ..] => {
                let t = posix_regex::translate(re, Dialect::Basic)
                    .map_err(|e| Fail::Usage(e.to_string()))?;
                Style::Regex(
                    RegexBuilder::new(&t)
                        .unicode(false)
                        .build()
                        .map_err(|e| Fail::Usage(e.to_string()))?,
                )
            }
            _ => {
                return util::usage(format!(
                    "invalid numbering style: '{}'",
                    String::from_utf8_lossy(v)
                ));
            }
        })
    }

    fn numbers(&self, line: &[u8]) -> bool {
        match self {
            Style::All => true,
            Style::NonEmpty => !line.is_empty(),
            Style::None => false,
            Style::Regex(r) => r.is_match(line),
        }
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut styles = [Style::None, Style::NonEmpty, Style::None]; // header, body, footer
        let (mut fmt, mut width, mut sep, mut start, mut incr, mut renumber) =
            (b"rn".to_vec(), 6usize, b"\t".to_vec(), 1i64, 1i64, true);
        let mut delim = b"\\:".to_vec();
        let num = |v: &[u8]| -> Result<i64, Fail> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    Fail::Usage(format!("invalid number: '{}'", String::from_utf8_lossy(v)))
                })
        };
        for (k, v) in p.opts {
            let v = v.unwrap_or_default();
            match k {
                'b' => styles[1] = Style::parse(&v)?,
                'h' => styles[0] = Style::parse(&v)?,
                'f' => styles[2] = Style::parse(&v)?,
                'n' => {
                    if !matches!(v.as_slice(), b"ln" | b"rn" | b"rz") {
                        return util::usage(format!(
                            "invalid line numbering format: '{}'",
                            String::from_utf8_lossy(&v)
                        ));
                    }
                    fmt = v;
                }
                'w' => {
                    width = usize::try_from(num(&v)?)
                        .ok()
                        .filter(|w| *w > 0)
                        .ok_or_else(|| Fail::Usage("invalid line number field width".into()))?;
                }
                's' => sep = v,
                'v' => start = num(&v)?,
                'i' => incr = num(&v)?,
                'p' => renumber = false,
                'd' => {
                    delim = match v.len() {
                        0 => Vec::new(),
                        1 => vec![v[0], b':'],
                        _ => v,
                    }
                }
                'l' => return util::unsupported("-l (join blank lines) is not supported"),
                _ => {}
            }
        }
        let mut out = crate::common::stdout();
        let mut status = 0;
        let mut n = start;
        let mut section = 1;
        let blank = vec![b' '; width + sep.len()];
        for name in input::operands_or_stdin(p.operands) {
            let r = match input::open(&name) {
                Ok(r) => r,
                Err(e) => {
                    input::report(tool, &name, &e);
                    status = 1;
                    continue;
                }
            };
            let mut lines = input::Lines::new(r, b'\n');
            loop {
                let line = match lines.next() {
                    Ok(Some(l)) => l,
                    Ok(None) => break,
                    Err(e) => {
                        input::report(tool, &name, &e);
                        status = 1;
                        break;
                    }
                };
                let body = input::chomp(line, b'\n');
                if !delim.is_empty()
                    && body.len().is_multiple_of(delim.len())
                    && !body.is_empty()
                    && body.len() / delim.len() <= 3
                    && body.chunks(delim.len()).all(|c| c == delim.as_slice())
                {
                    section = match body.len() / delim.len() {
                        3 => 0,
                        2 => 1,
                        _ => 2,
                    };
                    // GNU restarts numbering at each header (and at a body that follows none).
                    if renumber {
                        n = start;
                    }
                    out.write_all(b"\n")?;
                    continue;
                }
                if styles[section].numbers(body) {
                    let s = match fmt.as_slice() {
                        b"ln" => format!("{n:<width$}"),
                        b"rz" => {
                            if n < 0 {
                                format!("-{:0>w$}", n.unsigned_abs(), w = width.saturating_sub(1))
                            } else {
                                format!("{n:0>width$}")
                            }
                        }
                        _ => format!("{n:>width$}"),
                    };
                    out.write_all(s.as_bytes())?;
                    out.write_all(&sep)?;
                    n += incr;
                } else {
                    out.write_all(&blank)?;
                }
                out.write_all(body)?;
                out.write_all(b"\n")?;
            }
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}
