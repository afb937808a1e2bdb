//! `paste`: joins corresponding lines of files (`-d LIST` cycles through
//! delimiters, with `\n \t \\ \0` escapes) or each file's lines (`-s`).
//! `-` may be given several times; each occurrence reads the next line of
//! standard input, as in GNU.

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::ffi::OsString;
use std::io::{Read, Write};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("delimiters", HasArg::Yes, 'd'),
    ("serial", HasArg::No, 's'),
    ("zero-terminated", HasArg::No, 'z'),
];
const SPEC: Spec = Spec::new("sz", "d", LONG);

/// The delimiter list; `None` entries are `\0` (no delimiter).
fn parse_delims(s: &[u8]) -> Vec<Option<u8>> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 1 < s.len() {
            v.push(match s[i + 1] {
                b'n' => Some(b'\n'),
                b't' => Some(b'\t'),
                b'0' => None,
                b'\\' => Some(b'\\'),
                c => Some(c),
            });
            i += 2;
        } else {
            v.push(Some(s[i]));
            i += 1;
        }
    }
    v
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let (mut delims, mut serial, mut term) = (vec![Some(b'\t')], false, b'\n');
        for (k, v) in p.opts {
            match k {
                'd' => delims = parse_delims(&v.unwrap_or_default()),
                's' => serial = true,
                'z' => term = 0,
                _ => {}
            }
        }
        if delims.is_empty() {
            delims.push(None);
        }
        let names = input::operands_or_stdin(p.operands);
        let mut out = crate::common::stdout();
        let mut readers: Vec<Option<input::Lines<Box<dyn Read>>>> = Vec::new();
        let mut stdin_idx: Option<usize> = None;
        // Indexes into `readers`; every `-` shares one reader.
        let mut slots = Vec::new();
        for name in &names {
            if name.as_slice() == b"-" {
                if let Some(i) = stdin_idx {
                    slots.push(Some(i));
                    continue;
                }
            }
            match input::open(name) {
                Ok(r) => {
                    if name.as_slice() == b"-" {
                        stdin_idx = Some(readers.len());
                    }
                    slots.push(Some(readers.len()));
                    readers.push(Some(input::Lines::new(r, term)));
                }
                Err(e) => {
                    input::report(tool, name, &e);
                    return Err(Fail::Exit(1));
                }
            }
        }
        let mut line = Vec::new();
        if serial {
            for slot in slots.iter().flatten() {
                let Some(r) = readers[*slot].as_mut() else {
                    continue;
                };
                line.clear();
                let mut k = 0;
                let mut any = false;
                while let Some(l) = r.next().map_err(|e| read_err(tool, &e))? {
                    if any {
                        if let Some(d) = delims[k % delims.len()] {
                            line.push(d);
                        }
                        k += 1;
                    }
                    any = true;
                    line.extend_from_slice(input::chomp(l, term));
                }
                if any || !names.is_empty() {
                    line.push(term);
                    out.write_all(&line)?;
                }
                readers[*slot] = None;
            }
        } else {
            loop {
                line.clear();
                let mut got_any = false;
                for (i, slot) in slots.iter().enumerate() {
                    if i > 0 {
                        if let Some(d) = delims[(i - 1) % delims.len()] {
                            line.push(d);
                        }
                    }
                    if let Some(r) = slot.and_then(|s| readers[s].as_mut()) {
                        if let Some(l) = r.next().map_err(|e| read_err(tool, &e))? {
                            got_any = true;
                            line.extend_from_slice(input::chomp(l, term));
                        }
                    }
                }
                if !got_any {
                    break;
                }
                line.push(term);
                out.write_all(&line)?;
            }
        }
        crate::common::finish(&mut out)?;
        Ok(0)
    })
}

fn read_err(tool: &str, e: &std::io::Error) -> Fail {
    eprintln!("{tool}: read error: {}", input::errmsg(e));
    Fail::Exit(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn delims() {
        assert_eq!(
            super::parse_delims(b",\\t\\0"),
            vec![Some(b','), Some(b'\t'), None]
        );
    }
}
