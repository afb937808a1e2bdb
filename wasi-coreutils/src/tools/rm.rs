//! `rm`: files, `-r`/`-R` (recursive, symlinks removed not followed), `-f`
//! (ignore missing, never prompt), `-d` (empty directories), `-v`.
//! Refuses `.`, `..` and `/` as GNU does. `-i`/`-I` are rejected (no
//! terminal to ask).

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::common;
use crate::files::{getopt, io_msg};

const TOOL: &str = "rm";

struct Opts {
    recursive: bool,
    force: bool,
    dirs: bool,
    verbose: bool,
}

fn remove(path: &Path, o: &Opts, out: &mut impl Write) -> i32 {
    let name = path.display();
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => {
            if o.force && e.kind() == io::ErrorKind::NotFound {
                return 0;
            }
            eprintln!("{TOOL}: cannot remove '{name}': {}", io_msg(&e));
            return 1;
        }
    };
    if meta.is_dir() {
        if !o.recursive {
            if o.dirs {
                return match fs::remove_dir(path) {
                    Ok(()) => {
                        if o.verbose {
                            let _ = writeln!(out, "removed directory '{name}'");
                        }
                        0
                    }
                    Err(e) => {
                        eprintln!("{TOOL}: cannot remove '{name}': {}", io_msg(&e));
                        1
                    }
                };
            }
            eprintln!("{TOOL}: cannot remove '{name}': Is a directory");
            return 1;
        }
        let mut status = 0;
        match fs::read_dir(path) {
            Ok(rd) => {
                let mut children: Vec<_> = rd.filter_map(Result::ok).map(|d| d.path()).collect();
                children.sort();
                for c in children {
                    status = status.max(remove(&c, o, out));
                }
            }
            Err(e) => {
                eprintln!("{TOOL}: cannot remove '{name}': {}", io_msg(&e));
                return 1;
            }
        }
        if status != 0 {
            return status;
        }
        match fs::remove_dir(path) {
            Ok(()) => {
                if o.verbose {
                    let _ = writeln!(out, "removed directory '{name}'");
                }
                0
            }
            Err(e) => {
                eprintln!("{TOOL}: cannot remove '{name}': {}", io_msg(&e));
                1
            }
        }
    } else {
        match fs::remove_file(path) {
            Ok(()) => {
                if o.verbose {
                    let _ = writeln!(out, "removed '{name}'");
                }
                0
            }
            Err(e) => {
                eprintln!("{TOOL}: cannot remove '{name}': {}", io_msg(&e));
                1
            }
        }
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("recursive", 'r', false),
        ("force", 'f', false),
        ("dir", 'd', false),
        ("verbose", 'v', false),
        ("interactive", 'i', false),
    ];
    let p = match getopt(&args, "rRfdviI", "", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    if p.has('i') || p.has('I') {
        return common::usage_error(TOOL, "interactive removal is not supported (no terminal)");
    }
    if p.operands.is_empty() {
        if p.has('f') {
            return 0;
        }
        eprintln!("{TOOL}: missing operand\nTry '{TOOL} --help' for more information.");
        return 1;
    }
    let o = Opts {
        recursive: p.has('r') || p.has('R'),
        force: p.has('f'),
        dirs: p.has('d'),
        verbose: p.has('v'),
    };
    let mut out = common::stdout();
    let mut status = 0;
    for op in &p.operands {
        let s = op.to_string_lossy();
        let last = s.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        if last == "." || last == ".." {
            eprintln!("{TOOL}: refusing to remove '.' or '..' directory: skipping '{s}'");
            status = 1;
            continue;
        }
        if !s.is_empty() && s.trim_start_matches('/').is_empty() {
            eprintln!("{TOOL}: it is dangerous to operate recursively on '/'");
            status = 1;
            continue;
        }
        status = status.max(remove(Path::new(op), &o, &mut out));
    }
    let _ = common::finish(&mut out);
    status
}
