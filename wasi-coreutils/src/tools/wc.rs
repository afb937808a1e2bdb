//! `wc`: line, word, byte/char and max-line-length counts (`-l -w -c -m -L`)
//! with GNU's column layout.
//!
//! Layout follows GNU: one count of one input is printed unpadded; otherwise
//! every number is right-aligned to the width of the total size of the
//! regular-file inputs, at least 7 when an input is not a regular file.
//! Words are as GNU 9 counts them in the C locale: printable non-space bytes
//! start or continue a word, spaces end one, other bytes are neutral. `-m`
//! counts bytes (the C locale has single-byte characters).

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::ffi::OsString;
use std::io::{Read, Write};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("bytes", HasArg::No, 'c'),
    ("chars", HasArg::No, 'm'),
    ("lines", HasArg::No, 'l'),
    ("words", HasArg::No, 'w'),
    ("max-line-length", HasArg::No, 'L'),
];
const SPEC: Spec = Spec::new("cmlwL", "", LONG);

#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
    max_len: u64,
}

#[derive(Debug, Clone, Copy)]
struct Want {
    lines: bool,
    words: bool,
    chars: bool,
    bytes: bool,
    max_len: bool,
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut w = Want {
            lines: false,
            words: false,
            chars: false,
            bytes: false,
            max_len: false,
        };
        for (k, _) in &p.opts {
            match k {
                'c' => w.bytes = true,
                'm' => w.chars = true,
                'l' => w.lines = true,
                'w' => w.words = true,
                'L' => w.max_len = true,
                _ => {}
            }
        }
        if !(w.lines || w.words || w.chars || w.bytes || w.max_len) {
            (w.lines, w.words, w.bytes) = (true, true, true);
        }
        let n_counts = [w.lines, w.words, w.chars, w.bytes, w.max_len]
            .iter()
            .filter(|b| **b)
            .count();
        let explicit = !p.operands.is_empty();
        let files = input::operands_or_stdin(p.operands);
        // Open everything first: the column width depends on all inputs.
        let mut opened = Vec::new();
        let mut status = 0;
        let mut reg_total: u64 = 0;
        let mut min_width = 1;
        for name in &files {
            match open_sized(name) {
                Ok((r, size)) => {
                    match size {
                        Some(s) => reg_total += s,
                        None => min_width = 7,
                    }
                    opened.push((name, Some(r), size));
                }
                Err(e) => {
                    input::report(tool, name, &e);
                    status = 1;
                    opened.push((name, None, None));
                }
            }
        }
        let width = if files.len() == 1 && n_counts == 1 {
            1
        } else {
            let mut width = 1;
            let mut t = reg_total;
            while t >= 10 {
                width += 1;
                t /= 10;
            }
            width.max(min_width)
        };
        let mut out = crate::common::stdout();
        let mut total = Counts::default();
        for (name, r, size) in opened {
            let Some(mut r) = r else { continue };
            let c = match count(&mut r, w, size) {
                Ok(c) => c,
                Err(e) => {
                    input::report(tool, name, &e);
                    status = 1;
                    continue;
                }
            };
            total.lines += c.lines;
            total.words += c.words;
            total.bytes += c.bytes;
            total.max_len = total.max_len.max(c.max_len);
            print(
                &mut out,
                &c,
                w,
                width,
                if explicit {
                    Some(name.as_slice())
                } else {
                    None
                },
            )?;
        }
        if files.len() > 1 {
            print(&mut out, &total, w, width, Some(b"total"))?;
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}

/// Opens an operand and, when it is a regular file, learns its size.
fn open_sized(name: &[u8]) -> std::io::Result<(Box<dyn Read>, Option<u64>)> {
    if name == b"-" {
        return Ok((Box::new(std::io::stdin()), stdin_size()));
    }
    let f = std::fs::File::open(input::path_of(name))?;
    let md = f.metadata()?;
    if md.is_dir() {
        return Err(std::io::Error::other("Is a directory"));
    }
    let size = md.is_file().then_some(md.len());
    Ok((Box::new(f), size))
}

/// The size of standard input when it is a regular file (GNU aligns
/// columns to it). `BorrowedFd::try_clone_to_owned` is unsupported on WASI,
/// so fd 0 is viewed as a `File` that is never dropped.
#[allow(unsafe_code)]
fn stdin_size() -> Option<u64> {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 0 stays open for the whole process and `ManuallyDrop`
    // guarantees this `File` never closes it; only `fstat` is performed.
    let f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
    let md = f.metadata().ok()?;
    md.is_file().then_some(md.len())
}

fn print(
    out: &mut impl Write,
    c: &Counts,
    w: Want,
    width: usize,
    name: Option<&[u8]>,
) -> Result<(), Fail> {
    let mut fields = Vec::with_capacity(5);
    if w.lines {
        fields.push(c.lines);
    }
    if w.words {
        fields.push(c.words);
    }
    if w.chars {
        fields.push(c.bytes);
    }
    if w.bytes {
        fields.push(c.bytes);
    }
    if w.max_len {
        fields.push(c.max_len);
    }
    let mut line = Vec::with_capacity(64);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        line.extend_from_slice(format!("{f:>width$}").as_bytes());
    }
    if let Some(n) = name {
        line.push(b' ');
        line.extend_from_slice(n);
    }
    line.push(b'\n');
    out.write_all(&line)?;
    Ok(())
}

/// Byte classes for the word/width scan.
const OTHER: u8 = 0;
const PRINT: u8 = 1;
const SPACE: u8 = 2;
const NEWLINE: u8 = 3;
const CR_FF: u8 = 4;
const TAB: u8 = 5;
const VTAB: u8 = 6;

const fn classes() -> [u8; 256] {
    let mut t = [OTHER; 256];
    let mut i = 33;
    while i < 127 {
        t[i] = PRINT;
        i += 1;
    }
    t[b' ' as usize] = SPACE;
    t[b'\n' as usize] = NEWLINE;
    t[b'\r' as usize] = CR_FF;
    t[12] = CR_FF;
    t[b'\t' as usize] = TAB;
    t[11] = VTAB;
    t
}
static CLASS: [u8; 256] = classes();

fn count(r: &mut dyn Read, w: Want, size: Option<u64>) -> std::io::Result<Counts> {
    let mut c = Counts::default();
    if !(w.lines || w.words || w.max_len) {
        if let Some(s) = size {
            // GNU also answers `wc -c FILE` from the file size.
            c.bytes = s;
            return Ok(c);
        }
    }
    let mut buf = input::read_buf();
    if !(w.words || w.max_len) {
        loop {
            let n = input::fill(r, &mut buf)?;
            if n == 0 {
                return Ok(c);
            }
            c.bytes += n as u64;
            if w.lines {
                c.lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
            }
            let asked = buf.len();
            input::grow_when_filled(&mut buf, asked, n);
        }
    }
    let (mut in_word, mut pos, mut max) = (false, 0u64, 0u64);
    loop {
        let n = input::fill(r, &mut buf)?;
        if n == 0 {
            break;
        }
        c.bytes += n as u64;
        for &b in &buf[..n] {
            match CLASS[b as usize] {
                PRINT => {
                    in_word = true;
                    pos += 1;
                }
                SPACE => {
                    pos += 1;
                    c.words += u64::from(in_word);
                    in_word = false;
                }
                NEWLINE | CR_FF => {
                    if b == b'\n' {
                        c.lines += 1;
                    }
                    max = max.max(pos);
                    pos = 0;
                    c.words += u64::from(in_word);
                    in_word = false;
                }
                TAB => {
                    pos += 8 - pos % 8;
                    c.words += u64::from(in_word);
                    in_word = false;
                }
                VTAB => {
                    c.words += u64::from(in_word);
                    in_word = false;
                }
                _ => {}
            }
        }
        let asked = buf.len();
        input::grow_when_filled(&mut buf, asked, n);
    }
    c.words += u64::from(in_word);
    c.max_len = max.max(pos);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Want = Want {
        lines: true,
        words: true,
        chars: false,
        bytes: true,
        max_len: true,
    };

    #[test]
    fn counts_like_gnu() {
        let c = count(&mut &b"a\x80b c\xff\nx\ty\n\x01\n"[..], ALL, None).unwrap();
        assert_eq!(
            c,
            Counts {
                lines: 3,
                words: 4,
                bytes: 13,
                max_len: 9
            }
        );
        let c = count(&mut &b"ab\rc"[..], ALL, None).unwrap();
        assert_eq!((c.lines, c.words, c.max_len), (0, 2, 2));
    }
}
