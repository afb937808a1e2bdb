//! `seq`: prints FIRST, FIRST+INCR, ... up to LAST. Integer arguments are
//! counted exactly (i128); others as doubles printed with `%.Nf`, N being
//! the most fraction digits of FIRST and INCR, as GNU does. `-s SEP`, `-w`
//! (equal width) and `-f FORMAT` (one float directive) are supported.

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::ffi::OsString;
use std::io::Write;

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::cfmt::{self, Count};
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("separator", HasArg::Yes, 's'),
    ("equal-width", HasArg::No, 'w'),
    ("format", HasArg::Yes, 'f'),
];
const SPEC: Spec = Spec::new("w", "sf", LONG);

/// A parsed operand: its value and how it was written.
#[derive(Debug, Clone, Copy)]
struct Num {
    value: f64,
    int: Option<i128>,
    frac_digits: usize,
}

fn parse_num(s: &[u8]) -> Option<Num> {
    let t = std::str::from_utf8(s).ok()?.trim_start();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || t.contains(['x', 'X']) {
        return None;
    }
    let value: f64 = t.parse().ok()?;
    if value.is_nan() {
        return None;
    }
    let int = if t.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
        t.parse().ok()
    } else {
        None
    };
    let frac_digits = match t.find('.') {
        Some(p) => t[p + 1..].bytes().take_while(u8::is_ascii_digit).count(),
        None => 0,
    };
    let frac_digits = if t.contains(['e', 'E']) {
        // GNU: an exponent shifts the precision.
        let e: i64 = t
            .rsplit(['e', 'E'])
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        usize::try_from(frac_digits as i64 - e).unwrap_or(0)
    } else {
        frac_digits
    };
    Some(Num {
        value,
        int,
        frac_digits,
    })
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |_tool, rest| {
        // Negative numbers are operands, not options.
        let mut opts_part = Vec::new();
        let mut operands = Vec::new();
        let mut it = rest.into_iter().peekable();
        while let Some(a) = it.next() {
            let looks_negative =
                a.len() > 1 && a[0] == b'-' && (a[1].is_ascii_digit() || a[1] == b'.');
            if looks_negative || a.first() != Some(&b'-') || a.len() == 1 {
                operands.push(a);
            } else if a == b"--" {
                operands.extend(it.by_ref());
            } else {
                let takes = matches!(a.as_slice(), b"-s" | b"-f" | b"--separator" | b"--format");
                opts_part.push(a);
                if takes {
                    if let Some(v) = it.next() {
                        opts_part.push(v);
                    }
                }
            }
        }
        let p = args::parse(&SPEC, &opts_part).map_err(util::opt_error)?;
        let (mut sep, mut width, mut fmt) = (b"\n".to_vec(), false, None);
        for (k, v) in p.opts {
            match k {
                's' => sep = v.unwrap_or_default(),
                'w' => width = true,
                'f' => fmt = v,
                _ => {}
            }
        }
        if width && fmt.is_some() {
            return util::usage(
                "format string may not be specified when printing equal width strings",
            );
        }
        let nums: Vec<Num> = operands
            .iter()
            .map(|o| {
                parse_num(o).ok_or_else(|| {
                    Fail::Usage(format!(
                        "invalid floating point argument: '{}'",
                        String::from_utf8_lossy(o)
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let one = Num {
            value: 1.0,
            int: Some(1),
            frac_digits: 0,
        };
        let (first, step, last) = match nums.as_slice() {
            [l] => (one, one, *l),
            [f, l] => (*f, one, *l),
            [f, s, l] => (*f, *s, *l),
            [] => return util::usage("missing operand"),
            _ => {
                return util::usage(format!(
                    "extra operand '{}'",
                    String::from_utf8_lossy(&operands[3])
                ));
            }
        };
        if step.value == 0.0 {
            return util::usage(format!(
                "invalid Zero increment value: '{}'",
                String::from_utf8_lossy(&operands[1])
            ));
        }
        let mut out = crate::common::stdout();
        let mut firstout = true;
        let mut emit = |out: &mut dyn Write, s: &[u8]| -> std::io::Result<()> {
            if !firstout {
                out.write_all(&sep)?;
            }
            firstout = false;
            out.write_all(s)
        };
        if let (Some(f), Some(s), Some(l), None) = (first.int, step.int, last.int, &fmt) {
            let w = if width {
                f.to_string().len().max(l.to_string().len())
            } else {
                0
            };
            let mut x = f;
            while (s > 0 && x <= l) || (s < 0 && x >= l) {
                let t = if width {
                    if x < 0 {
                        format!("-{:0>w$}", x.unsigned_abs(), w = w.saturating_sub(1))
                    } else {
                        format!("{x:0>w$}")
                    }
                } else {
                    x.to_string()
                };
                emit(&mut out, t.as_bytes())?;
                x += s;
            }
        } else {
            let prec = first.frac_digits.max(step.frac_digits);
            let conv = match &fmt {
                Some(f) => parse_format(f)?,
                None => {
                    let mut c = cfmt::Conv {
                        conv: b'f',
                        prec: Some(Count::N(prec)),
                        ..Default::default()
                    };
                    if width {
                        let wf = cfmt::float(&c, first.value).len();
                        let wl = cfmt::float(&c, last.value).len();
                        c.width = Some(Count::N(wf.max(wl)));
                        c.zero = true;
                    }
                    (Vec::new(), c, Vec::new())
                }
            };
            let (pre, c, post) = conv;
            let mut i: u64 = 0;
            loop {
                let x = first.value + (i as f64) * step.value;
                if (step.value > 0.0 && x > last.value) || (step.value < 0.0 && x < last.value) {
                    break;
                }
                let mut t = pre.clone();
                t.extend_from_slice(cfmt::float(&c, x).as_bytes());
                t.extend_from_slice(&post);
                emit(&mut out, &t)?;
                i += 1;
            }
        }
        if !firstout {
            out.write_all(b"\n")?;
        }
        crate::common::finish(&mut out)?;
        Ok(0)
    })
}

/// Splits a `-f` format into text before, the one float directive, and text after.
fn parse_format(f: &[u8]) -> Result<(Vec<u8>, cfmt::Conv, Vec<u8>), Fail> {
    let mut pre = Vec::new();
    let mut i = 0;
    while i < f.len() {
        if f[i] == b'%' {
            if f.get(i + 1) == Some(&b'%') {
                pre.push(b'%');
                i += 2;
                continue;
            }
            let (c, next) = cfmt::parse_conv(f, i + 1)
                .ok_or_else(|| Fail::Usage("format has no % directive".into()))?;
            if !b"eEfFgG".contains(&c.conv)
                || c.width == Some(Count::Star)
                || c.prec == Some(Count::Star)
            {
                return util::usage(format!(
                    "format '{}' has unknown %{} directive",
                    String::from_utf8_lossy(f),
                    c.conv as char
                ));
            }
            let mut post = Vec::new();
            let mut j = next;
            while j < f.len() {
                if f[j] == b'%' {
                    if f.get(j + 1) == Some(&b'%') {
                        post.push(b'%');
                        j += 2;
                        continue;
                    }
                    return util::usage(format!(
                        "format '{}' has too many % directives",
                        String::from_utf8_lossy(f)
                    ));
                }
                post.push(f[j]);
                j += 1;
            }
            return Ok((pre, c, post));
        }
        pre.push(f[i]);
        i += 1;
    }
    util::usage(format!(
        "format '{}' has no % directive",
        String::from_utf8_lossy(f)
    ))
}
