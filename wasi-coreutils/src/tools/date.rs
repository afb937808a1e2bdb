//! `date`: prints the time in UTC (WASI has no time zones; `TZ` must be
//! unset or UTC), in GNU's C-locale default format or `+FORMAT` (see
//! `crate::files::datefmt`). Options: `-u`, `-d STRING` (`@SECONDS`, ISO
//! dates/times), `-r FILE`, `-R`, `-I[date|hours|minutes|seconds|ns]`.
//! Setting the clock and relative dates ("yesterday") are rejected (exit 2).

use std::ffi::OsString;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common;
use crate::files::{datefmt, getopt, io_msg};

const TOOL: &str = "date";

fn epoch(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            if d.subsec_nanos() == 0 {
                (-(d.as_secs() as i64), 0)
            } else {
                (-(d.as_secs() as i64) - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("utc", 'u', false),
        ("universal", 'u', false),
        ("date", 'd', true),
        ("reference", 'r', true),
        ("rfc-email", 'R', false),
        ("iso-8601", 'I', false),
    ];
    // -I takes an optional attached argument, which getopt cannot express.
    let mut iso: Option<String> = None;
    let mut rest = Vec::new();
    for a in &args {
        let s = a.to_string_lossy();
        if let Some(v) = s
            .strip_prefix("--iso-8601=")
            .or_else(|| s.strip_prefix("-I").filter(|_| !s.starts_with("--")))
        {
            iso = Some(if v.is_empty() {
                "date".into()
            } else {
                v.into()
            });
        } else if s == "--iso-8601" {
            iso = Some("date".into());
        } else {
            rest.push(a.clone());
        }
    }
    let p = match getopt(&rest, "uR", "dr", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    match std::env::var("TZ").as_deref() {
        Err(_)
        | Ok("" | "UTC" | "UTC0" | "GMT" | "GMT0" | ":UTC" | "Etc/UTC" | "UTC+0" | "UTC-0") => {}
        Ok(tz) => {
            return common::usage_error(
                TOOL,
                format!("time zone TZ={tz} is not supported (only UTC)"),
            );
        }
    }
    let mut fmt: Option<String> = None;
    for op in &p.operands {
        let s = op.to_string_lossy();
        match s.strip_prefix('+') {
            Some(f) if fmt.is_none() => fmt = Some(f.to_string()),
            _ => {
                return common::usage_error(
                    TOOL,
                    format!("extra operand '{s}' (setting the date is not supported)"),
                );
            }
        }
    }
    let now = epoch(SystemTime::now());
    let when = if let Some(d) = p.value('d') {
        match datefmt::parse_date(d, now) {
            Ok(t) => t,
            Err(e) => return common::usage_error(TOOL, e),
        }
    } else if let Some(f) = p.value('r') {
        match std::fs::metadata(f).and_then(|m| m.modified()) {
            Ok(t) => epoch(t),
            Err(e) => {
                eprintln!("{TOOL}: {f}: {}", io_msg(&e));
                return 1;
            }
        }
    } else {
        now
    };
    let chosen = [fmt.is_some(), iso.is_some(), p.has('R')]
        .iter()
        .filter(|b| **b)
        .count();
    if chosen > 1 {
        return common::usage_error(TOOL, "multiple output formats specified");
    }
    let f = if let Some(f) = fmt {
        f
    } else if let Some(i) = iso {
        match i.as_str() {
            "date" => "%Y-%m-%d".into(),
            "hours" => "%Y-%m-%dT%H%:z".into(),
            "minutes" => "%Y-%m-%dT%H:%M%:z".into(),
            "seconds" => "%Y-%m-%dT%H:%M:%S%:z".into(),
            "ns" => "%Y-%m-%dT%H:%M:%S,%N%:z".into(),
            other => {
                return common::usage_error(
                    TOOL,
                    format!("invalid argument '{other}' for '--iso-8601'"),
                );
            }
        }
    } else if p.has('R') {
        "%a, %d %b %Y %H:%M:%S %z".into()
    } else {
        "%a %b %e %H:%M:%S %Z %Y".into()
    };
    match datefmt::format(&f, when.0, when.1) {
        Ok(s) => {
            let mut out = common::stdout();
            let _ = writeln!(out, "{s}");
            if common::finish(&mut out).is_err() {
                1
            } else {
                0
            }
        }
        Err(e) => common::usage_error(TOOL, e),
    }
}
