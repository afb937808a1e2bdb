//! `mkdir`: `-p` (parents, no error if existing), `-v`. `-m MODE` is
//! rejected (exit 2): WASI has no permission bits.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::Path;

use crate::common;
use crate::files::{getopt, io_msg};

const TOOL: &str = "mkdir";

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("parents", 'p', false),
        ("verbose", 'v', false),
        ("mode", 'm', true),
    ];
    let p = match getopt(&args, "pv", "m", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    if p.has('m') {
        return common::usage_error(
            TOOL,
            "option -m is not supported: WASI has no permission bits",
        );
    }
    if p.operands.is_empty() {
        eprintln!("{TOOL}: missing operand\nTry '{TOOL} --help' for more information.");
        return 1;
    }
    let mut out = common::stdout();
    let mut status = 0;
    for op in &p.operands {
        let path = Path::new(op);
        let name = op.to_string_lossy();
        if p.has('p') {
            // Create each missing ancestor so -v can report each one, as GNU does.
            let mut built = std::path::PathBuf::new();
            for comp in path.components() {
                built.push(comp);
                if built.is_dir() {
                    continue;
                }
                match fs::create_dir(&built) {
                    Ok(()) => {
                        if p.has('v') {
                            let _ =
                                writeln!(out, "{TOOL}: created directory '{}'", built.display());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && built.is_dir() => {}
                    Err(e) => {
                        let _ = out.flush();
                        eprintln!(
                            "{TOOL}: cannot create directory '{}': {}",
                            built.display(),
                            io_msg(&e)
                        );
                        status = 1;
                        break;
                    }
                }
            }
        } else {
            match fs::create_dir(path) {
                Ok(()) => {
                    if p.has('v') {
                        let _ = writeln!(out, "{TOOL}: created directory '{name}'");
                    }
                }
                Err(e) => {
                    let _ = out.flush();
                    eprintln!("{TOOL}: cannot create directory '{name}': {}", io_msg(&e));
                    status = 1;
                }
            }
        }
    }
    let _ = common::finish(&mut out);
    status
}
