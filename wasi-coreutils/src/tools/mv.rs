//! `mv SRC DST` / `mv SRC... DIR`: rename, falling back to copy-and-remove;
//! `-f`, `-n` (no clobber), `-v`, `-T`. `-i` is rejected (no terminal).

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use crate::common;
use crate::files::{copy, getopt, io_msg};

const TOOL: &str = "mv";

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("force", 'f', false),
        ("no-clobber", 'n', false),
        ("verbose", 'v', false),
        ("no-target-directory", 'T', false),
        ("interactive", 'i', false),
    ];
    let p = match getopt(&args, "fnvTi", "", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    if p.has('i') {
        return common::usage_error(TOOL, "option -i is not supported (no terminal)");
    }
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
        if let Err(e) = fs::symlink_metadata(s) {
            eprintln!("{TOOL}: cannot stat '{}': {}", s.display(), io_msg(&e));
            status = 1;
            continue;
        }
        let target = match (into_dir, s.file_name()) {
            (true, Some(n)) => dest.join(n),
            _ => dest.clone(),
        };
        if p.has('n') && target.symlink_metadata().is_ok() {
            continue;
        }
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if let (Ok(a), Ok(b)) = (fs::canonicalize(s), fs::canonicalize(parent))
            && b.starts_with(&a)
            && s.is_dir()
        {
            eprintln!(
                "{TOOL}: cannot move '{}' to a subdirectory of itself, '{}'",
                s.display(),
                target.display()
            );
            status = 1;
            continue;
        }
        let moved = match fs::rename(s, &target) {
            Ok(()) => true,
            Err(_) if copy::copy(TOOL, s, &target, true, false) => {
                let r = if s.is_dir() && !s.is_symlink() {
                    fs::remove_dir_all(s)
                } else {
                    fs::remove_file(s)
                };
                match r {
                    Ok(()) => true,
                    Err(e) => {
                        eprintln!("{TOOL}: cannot remove '{}': {}", s.display(), io_msg(&e));
                        false
                    }
                }
            }
            Err(_) => false,
        };
        if moved {
            if p.has('v') {
                let _ = writeln!(out, "renamed '{}' -> '{}'", s.display(), target.display());
            }
        } else {
            status = 1;
        }
    }
    let _ = common::finish(&mut out);
    status
}
