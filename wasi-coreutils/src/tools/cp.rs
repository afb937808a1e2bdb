//! `cp SRC DST` / `cp SRC... DIR`: `-r`/`-R`/`-a` (recursive; symlinks are
//! copied as links), `-f`, `-n` (no clobber), `-v`, `-T`. Preserving
//! modes/owners (`-p`, `--preserve`) is rejected (exit 2): WASI has neither.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common;
use crate::files::{copy, getopt};

const TOOL: &str = "cp";

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("recursive", 'r', false),
        ("force", 'f', false),
        ("no-clobber", 'n', false),
        ("verbose", 'v', false),
        ("no-target-directory", 'T', false),
        ("preserve", 'p', false),
        ("archive", 'a', false),
    ];
    let p = match getopt(&args, "rRfnvTpaL", "", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    if p.has('p') {
        return common::usage_error(
            TOOL,
            "option -p/--preserve is not supported: WASI has no modes or owners",
        );
    }
    let recursive = p.has('r') || p.has('R') || p.has('a');
    let ops: Vec<PathBuf> = p.operands.iter().map(PathBuf::from).collect();
    match ops.len() {
        0 => {
            eprintln!("{TOOL}: missing file operand\nTry '{TOOL} --help' for more information.");
            return 1;
        }
        1 => {
            eprintln!(
                "{TOOL}: missing destination file operand after '{}'\nTry '{TOOL} --help' for more information.",
                ops[0].display()
            );
            return 1;
        }
        _ => {}
    }
    let (srcs, dest) = ops.split_at(ops.len() - 1);
    let dest = &dest[0];
    let into_dir = dest.is_dir() && !p.has('T');
    if srcs.len() > 1 && !into_dir {
        eprintln!("{TOOL}: target '{}' is not a directory", dest.display());
        return 1;
    }
    let mut out = common::stdout();
    let mut status = 0;
    for s in srcs {
        let target = if into_dir {
            match s.file_name() {
                Some(n) => dest.join(n),
                None => dest.join(
                    Path::new(s)
                        .components()
                        .next_back()
                        .map_or(s.as_os_str(), |c| c.as_os_str()),
                ),
            }
        } else {
            dest.clone()
        };
        if p.has('n') && target.symlink_metadata().is_ok() {
            continue;
        }
        if target.exists() && std::fs::canonicalize(&target).ok() == std::fs::canonicalize(s).ok() {
            eprintln!(
                "{TOOL}: '{}' and '{}' are the same file",
                s.display(),
                target.display()
            );
            status = 1;
            continue;
        }
        if copy::copy(TOOL, s, &target, recursive, true) {
            if p.has('v') {
                let _ = writeln!(out, "'{}' -> '{}'", s.display(), target.display());
            }
        } else {
            status = 1;
        }
    }
    let _ = common::finish(&mut out);
    status
}
