//! `tac`: prints lines in reverse order (`-s SEP` for another separator,
//! `-b` to attach the separator before instead of after). Regex separators
//! (`-r`) are unsupported.

use std::ffi::OsString;
use std::io::Write;

use crate::util;
use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;

const LONG: &[LongOpt] = &[
    ("before", HasArg::No, 'b'),
    ("regex", HasArg::No, 'r'),
    ("separator", HasArg::Yes, 's'),
];
const SPEC: Spec = Spec::new("br", "s", LONG);

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let (mut before, mut sep) = (false, b"\n".to_vec());
        for (k, v) in p.opts {
            match k {
                'b' => before = true,
                'r' => {
                    return util::unsupported(
                        "regular-expression separators (-r) are not supported",
                    );
                }
                's' => sep = v.unwrap_or_default(),
                _ => {}
            }
        }
        if sep.is_empty() {
            return util::usage("separator cannot be empty");
        }
        let mut out = crate::common::stdout();
        let mut status = 0;
        for name in input::operands_or_stdin(p.operands) {
            let mut data = Vec::new();
            if let Err(e) = input::open(&name).and_then(|mut r| input::read_all(&mut r, &mut data))
            {
                input::report(tool, &name, &e);
                status = 1;
                continue;
            }
            out.write_all(&reverse(&data, &sep, before))?;
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}

/// The records of `data` in reverse order, each keeping its separator.
fn reverse(data: &[u8], sep: &[u8], before: bool) -> Vec<u8> {
    let mut bounds: Vec<usize> = memchr::memmem::find_iter(data, sep).collect();
    let mut out = Vec::with_capacity(data.len());
    if before {
        // Records start at a separator: [s0..s1), [s1..s2), ... plus a head record.
        let mut end = data.len();
        while let Some(s) = bounds.pop() {
            out.extend_from_slice(&data[s..end]);
            end = s;
        }
        out.extend_from_slice(&data[..end]);
    } else {
        let mut end = data.len();
        // A trailing record without separator comes out first, unterminated.
        let mut starts: Vec<usize> = Vec::with_capacity(bounds.len() + 1);
        starts.push(0);
        starts.extend(bounds.drain(..).map(|s| s + sep.len()));
        while let Some(s) = starts.pop() {
            if s < end || (s == end && s == 0 && end > 0) {
                out.extend_from_slice(&data[s..end]);
            }
            end = s;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reverses() {
        assert_eq!(super::reverse(b"a\nb\nc\n", b"\n", false), b"c\nb\na\n");
        assert_eq!(super::reverse(b"a\nb", b"\n", false), b"ba\n");
        assert_eq!(super::reverse(b"", b"\n", false), b"");
        assert_eq!(super::reverse(b"\n\n", b"\n", false), b"\n\n");
        assert_eq!(super::reverse(b"a\nb\n", b"\n", true), b"\n\nba");
    }
}
