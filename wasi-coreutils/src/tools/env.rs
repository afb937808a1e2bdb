//! `env`: prints the environment (`env`, `env -0`), optionally after
//! `-u NAME` / `-i` / `NAME=VALUE` changes. Running a command (`env VAR=x
//! cmd`) needs `exec`, which a WASI program cannot do: that is rejected
//! with exit status 2 (the sandbox shell handles `VAR=x cmd` itself).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;

use crate::common;
use crate::files::getopt;

const TOOL: &str = "env";

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("ignore-environment", 'i', false),
        ("null", '0', false),
        ("unset", 'u', true),
    ];
    // Options stop at the first operand: everything after belongs to the command.
    let split = args
        .iter()
        .skip(1)
        .position(|a| {
            let s = a.to_string_lossy();
            !s.starts_with('-') || s == "-"
        })
        .map_or(args.len(), |i| i + 1);
    let mut opt_args = args[..split].to_vec();
    // `-u NAME` consumes the next word even when it does not start with '-'.
    let mut rest = args[split..].to_vec();
    if opt_args.last().is_some_and(|a| a == "-u" || a == "--unset") && !rest.is_empty() {
        opt_args.push(rest.remove(0));
    }
    let p = match getopt(&opt_args, "i0", "u", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    let mut vars: BTreeMap<usize, (String, String)> = BTreeMap::new();
    if !(p.has('i') || rest.first().is_some_and(|a| a == "-")) {
        for (i, (k, v)) in std::env::vars_os().enumerate() {
            vars.insert(
                i,
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                ),
            );
        }
    }
    for (c, v) in &p.opts {
        if *c == 'u' {
            let name = v.as_deref().unwrap_or("");
            vars.retain(|_, (k, _)| k != name);
        }
    }
    let mut next = vars.keys().last().map_or(0, |k| k + 1);
    for a in rest.iter().skip_while(|a| *a == "-") {
        let s = a.to_string_lossy();
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => match vars.values_mut().find(|(name, _)| name == k) {
                Some(slot) => slot.1 = v.to_string(),
                None => {
                    vars.insert(next, (k.to_string(), v.to_string()));
                    next += 1;
                }
            },
            _ => {
                return common::usage_error(
                    TOOL,
                    format!(
                        "cannot run '{s}': running commands is not supported inside wasm (use VAR=value {s} in the shell)"
                    ),
                );
            }
        }
    }
    let end = if p.has('0') { "\0" } else { "\n" };
    let mut out = common::stdout();
    for (k, v) in vars.values() {
        if write!(out, "{k}={v}{end}").is_err() {
            break;
        }
    }
    if common::finish(&mut out).is_err() {
        1
    } else {
        0
    }
}
