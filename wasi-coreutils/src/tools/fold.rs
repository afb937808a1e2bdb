//! `fold`: wraps lines at a width (`-w N`, default 80), at blanks with
//! `-s`, counting bytes instead of columns with `-b`. Column rules are GNU's:
//! tab to the next multiple of 8, backspace steps back, CR returns to 0.

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::ffi::OsString;
use std::io::Write;

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("bytes", HasArg::No, 'b'),
    ("spaces", HasArg::No, 's'),
    ("width", HasArg::Yes, 'w'),
];
const SPEC: Spec = Spec {
    flags: "bs",
    with_arg: "w",
    long: LONG,
    digits: true,
    stop_at_operand: false,
};

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let (mut bytes, mut spaces, mut width) = (false, false, 80usize);
        for (k, v) in &p.opts {
            match k {
                'b' => bytes = true,
                's' => spaces = true,
                'w' | '#' => {
                    let v = v.as_deref().unwrap_or_default();
                    width = args::parse_count(v)
                        .filter(|n| *n > 0)
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| {
                            Fail::Usage(format!(
                                "invalid number of columns: '{}'",
                                String::from_utf8_lossy(v)
                            ))
                        })?;
                }
                _ => {}
            }
        }
        let mut out = crate::common::stdout();
        let mut status = 0;
        let mut line_out = Vec::new();
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
                line_out.clear();
                fold_line(line, width, bytes, spaces, &mut line_out);
                out.write_all(&line_out)?;
            }
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}

fn adjust(column: usize, c: u8, bytes: bool) -> usize {
    if bytes {
        return column + 1;
    }
    match c {
        8 => column.saturating_sub(1),
        b'\r' => 0,
        b'\t' => column + 8 - column % 8,
        _ => column + 1,
    }
}

/// Folds one line (with its newline, if any) into `out`, as GNU fold.c does.
fn fold_line(line: &[u8], width: usize, bytes: bool, spaces: bool, out: &mut Vec<u8>) {
    let mut cur: Vec<u8> = Vec::new();
    let mut column = 0;
    for &c in line {
        if c == b'\n' {
            out.extend_from_slice(&cur);
            out.push(b'\n');
            return;
        }
        loop {
            column = adjust(column, c, bytes);
            if column <= width {
                cur.push(c);
                break;
            }
            if spaces {
                if let Some(b) = cur.iter().rposition(|&x| x == b' ' || x == b'\t') {
                    let end = b + 1;
                    out.extend_from_slice(&cur[..end]);
                    out.push(b'\n');
                    cur.drain(..end);
                    column = cur.iter().fold(0, |col, &x| adjust(col, x, bytes));
                    continue;
                }
            }
            if cur.is_empty() {
                cur.push(c);
                break;
            }
            out.extend_from_slice(&cur);
            out.push(b'\n');
            cur.clear();
            column = 0;
        }
    }
    out.extend_from_slice(&cur);
}

#[cfg(test)]
mod tests {
    fn f(s: &[u8], w: usize, sp: bool) -> Vec<u8> {
        let mut o = Vec::new();
        super::fold_line(s, w, false, sp, &mut o);
        o
    }

    #[test]
    fn folds_like_gnu() {
        assert_eq!(
            f(b"abcdefghij\tklmnop qrs tuv wxyz\n", 7, false),
            b"abcdefg\nhij\n\t\nklmnop \nqrs tuv\n wxyz\n"
        );
        assert_eq!(f(b"hello world foo\n", 8, true), b"hello \nworld \nfoo\n");
    }
}
