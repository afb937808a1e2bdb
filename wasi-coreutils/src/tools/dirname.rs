//! `dirname`: GNU `dirname NAME...`, `-z`.

use std::ffi::OsString;
use std::io::Write;

use crate::common;
use crate::files::{getopt, paths};

const TOOL: &str = "dirname";

pub fn main(args: Vec<OsString>) -> i32 {
    let p = match getopt(&args, "z", "", &[("zero", 'z', false)]) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    if p.operands.is_empty() {
        eprintln!("{TOOL}: missing operand\nTry '{TOOL} --help' for more information.");
        return 1;
    }
    let end = if p.has('z') { "\0" } else { "\n" };
    let mut out = common::stdout();
    for n in &p.operands {
        if write!(out, "{}{end}", paths::dirname(&n.to_string_lossy())).is_err() {
            break;
        }
    }
    if common::finish(&mut out).is_err() {
        1
    } else {
        0
    }
}
