//! `tee`: copies stdin to stdout and to each file (`-a` appends; `-i` and
//! `-p` are accepted and change nothing here: there are no signals to
//! ignore and pipe errors already end the copy quietly).

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};

use crate::util;
use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input::{self, BUF_SIZE};

const LONG: &[LongOpt] = &[
    ("append", HasArg::No, 'a'),
    ("ignore-interrupts", HasArg::No, 'i'),
    ("output-error", HasArg::Optional, 'p'),
];
const SPEC: Spec = Spec::new("aip", "", LONG);

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let append = p.opts.iter().any(|(k, _)| *k == 'a');
        let mut status = 0;
        let mut files: Vec<(Vec<u8>, Option<File>)> = Vec::new();
        for name in p.operands {
            let r = OpenOptions::new()
                .write(true)
                .create(true)
                .append(append)
                .truncate(!append)
                .open(input::path_of(&name));
            match r {
                Ok(f) => files.push((name, Some(f))),
                Err(e) => {
                    input::report(tool, &name, &e);
                    status = 1;
                }
            }
        }
        let mut out = std::io::stdout().lock();
        let mut stdout_ok = true;
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; BUF_SIZE];
        loop {
            let n = match input::fill(&mut stdin as &mut dyn Read, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    input::report(tool, b"-", &e);
                    status = 1;
                    break;
                }
            };
            if n == 0 {
                break;
            }
            if stdout_ok {
                if let Err(e) = out.write_all(&buf[..n]) {
                    // Like GNU without -p: a closed stdout ends tee, other errors are reported.
                    if crate::common::is_broken_pipe(&e) {
                        return Ok(status);
                    }
                    eprintln!("{tool}: standard output: {}", input::errmsg(&e));
                    status = 1;
                    stdout_ok = false;
                }
            }
            for (name, f) in files.iter_mut() {
                if let Some(file) = f {
                    if let Err(e) = file.write_all(&buf[..n]) {
                        input::report(tool, name, &e);
                        status = 1;
                        *f = None;
                    }
                }
            }
        }
        if stdout_ok {
            crate::common::finish(&mut out)?;
        }
        Ok(status)
    })
}
