//! `basename`: GNU `basename NAME [SUFFIX]`, `-a`, `-s SUFFIX`, `-z`.

use std::ffi::OsString;
use std::io::Write;

use crate::common;
use crate::files::{getopt, paths};

const TOOL: &str = "basename";

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("multiple", 'a', false),
        ("suffix", 's', true),
        ("zero", 'z', false),
    ];
    let p = match getopt(&args, "az", "s", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    let names: Vec<String> = p
        .operands
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        eprintln!("{TOOL}: missing operand\nTry '{TOOL} --help' for more information.");
        return 1;
    }
    let multiple = p.has('a') || p.has('s');
    let (list, suffix): (&[String], Option<&str>) = if multiple {
        (&names, p.value('s'))
    } else {
        match names.len() {
            1 => (&names[..1], None),
            2 => (&names[..1], Some(names[1].as_str())),
            _ => {
                eprintln!(
                    "{TOOL}: extra operand '{}'\nTry '{TOOL} --help' for more information.",
                    names[2]
                );
                return 1;
            }
        }
    };
    let end = if p.has('z') { "\0" } else { "\n" };
    let mut out = common::stdout();
    for n in list {
        if write!(out, "{}{end}", paths::basename(n, suffix)).is_err() {
            break;
        }
    }
    if common::finish(&mut out).is_err() {
        1
    } else {
        0
    }
}
