//! `comm`: compares two sorted files line by line; `-1 -2 -3` hide columns,
//! `--output-delimiter`, `-z`, `--check-order`/`--nocheck-order`. As in GNU,
//! by default disorder is checked once a line is unpairable; it is reported
//! per file and makes the exit status 1 at the end.

use std::ffi::OsString;
use std::io::{Read, Write};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("check-order", HasArg::No, '\u{1}'),
    ("nocheck-order", HasArg::No, '\u{2}'),
    ("output-delimiter", HasArg::Yes, '\u{3}'),
    ("total", HasArg::No, '\u{4}'),
    ("zero-terminated", HasArg::No, 'z'),
];
const SPEC: Spec = Spec::new("123z", "", LONG);

#[derive(Clone, Copy, PartialEq)]
enum Check {
    Default,
    Enabled,
    Disabled,
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut show = [true; 3];
        let (mut check, mut delim, mut term) = (Check::Default, b"\t".to_vec(), b'\n');
        for (k, v) in p.opts {
            match k {
                '1' => show[0] = false,
                '2' => show[1] = false,
                '3' => show[2] = false,
                '\u{1}' => check = Check::Enabled,
                '\u{2}' => check = Check::Disabled,
                '\u{3}' => delim = v.unwrap_or_default(),
                '\u{4}' => return util::unsupported("--total is not supported"),
                'z' => term = 0,
                _ => {}
            }
        }
        if p.operands.len() != 2 {
            return util::usage(if p.operands.len() < 2 {
                "missing operand".to_string()
            } else {
                format!(
                    "extra operand '{}'",
                    String::from_utf8_lossy(&p.operands[2])
                )
            });
        }
        let mut files: Vec<input::Lines<Box<dyn Read>>> = Vec::new();
        for name in &p.operands {
            match input::open(name) {
                Ok(r) => files.push(input::Lines::new(r, term)),
                Err(e) => {
                    input::report(tool, name, &e);
                    return Err(Fail::Exit(1));
                }
            }
        }
        if delim.is_empty() {
            delim = b"\0".to_vec();
        }
        let mut out = crate::common::stdout();
        let rd = |e: std::io::Error| {
            eprintln!("{tool}: read error: {}", input::errmsg(&e));
            Fail::Exit(1)
        };
        let mut cur: [Option<Vec<u8>>; 2] = [None, None];
        for i in 0..2 {
            cur[i] = files[i]
                .next()
                .map_err(rd)?
                .map(|l| input::chomp(l, term).to_vec());
        }
        let mut warned = [false; 2];
        let mut seen_unpairable = false;
        let prefix = |col: usize| -> usize { show[..col].iter().filter(|s| **s).count() };
        while cur[0].is_some() || cur[1].is_some() {
            let order = match (&cur[0], &cur[1]) {
                (None, _) => 1,
                (_, None) => -1,
                (Some(a), Some(b)) => a.cmp(b) as i32,
            };
            let col = if order == 0 {
                2
            } else if order < 0 {
                0
            } else {
                1
            };
            if order != 0 {
                seen_unpairable = true;
            }
            if show[col] {
                let line = if col == 1 {
                    cur[1].as_deref()
                } else {
                    cur[0].as_deref()
                }
                .unwrap_or_default();
                for _ in 0..prefix(col) {
                    out.write_all(&delim)?;
                }
                out.write_all(line)?;
                out.write_all(&[term])?;
            }
            for i in 0..2 {
                if (i == 0 && order <= 0) || (i == 1 && order >= 0) {
                    let prev = cur[i].take();
                    cur[i] = files[i]
                        .next()
                        .map_err(rd)?
                        .map(|l| input::chomp(l, term).to_vec());
                    if let (Some(p), Some(c)) = (&prev, &cur[i]) {
                        let active =
                            check == Check::Enabled || (check == Check::Default && seen_unpairable);
                        if active && !warned[i] && p > c {
                            eprintln!("{tool}: file {} is not in sorted order", i + 1);
                            if check == Check::Enabled {
                                crate::common::finish(&mut out)?;
                                return Ok(1);
                            }
                            warned[i] = true;
                        }
                    }
                }
            }
        }
        crate::common::finish(&mut out)?;
        if warned[0] || warned[1] {
            eprintln!("{tool}: input is not in sorted order");
            return Ok(1);
        }
        Ok(0)
    })
}
