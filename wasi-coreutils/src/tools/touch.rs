//! `touch`: creates missing files and sets access/modification times to now,
//! `-d DATE` (as `date -d`), `-t [[CC]YY]MMDDhhmm[.ss]` (UTC) or `-r FILE`;
//! `-c` (do not create), `-a`/`-m` (only one of the times).

use std::ffi::OsString;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common;
use crate::files::{datefmt, getopt, io_msg};

const TOOL: &str = "touch";

fn to_system(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.into())
    }
}

/// Parses `touch -t` stamps.
fn parse_stamp(s: &str) -> Option<(i64, u32)> {
    let (main, secs) = match s.split_once('.') {
        Some((m, ss)) if ss.len() == 2 && ss.bytes().all(|b| b.is_ascii_digit()) => {
            (m, ss.parse::<i64>().ok()?)
        }
        Some(_) => return None,
        None => (s, 0),
    };
    if !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_year = datefmt::gmtime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    )
    .year;
    let (year, rest) = match main.len() {
        8 => (now_year, main),
        10 => {
            let yy: i64 = main[..2].parse().ok()?;
            (if yy < 69 { 2000 + yy } else { 1900 + yy }, &main[2..])
        }
        12 => (main[..4].parse().ok()?, &main[4..]),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| rest[r].parse::<u32>().ok();
    let (mo, d, h, mi) = (n(0..2)?, n(2..4)?, n(4..6)?, n(6..8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || secs > 60 {
        return None;
    }
    let days = datefmt::days_from_civil(year, mo, d);
    Some((
        days * 86400 + i64::from(h) * 3600 + i64::from(mi) * 60 + secs,
        0,
    ))
}

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("no-create", 'c', false),
        ("date", 'd', true),
        ("reference", 'r', true),
    ];
    let p = match getopt(&args, "cam", "drt", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    if p.operands.is_empty() {
        eprintln!("{TOOL}: missing file operand\nTry '{TOOL} --help' for more information.");
        return 1;
    }
    let now = SystemTime::now();
    let (atime, mtime) = if let Some(d) = p.value('d') {
        let n = now
            .duration_since(UNIX_EPOCH)
            .map(|d| (d.as_secs() as i64, d.subsec_nanos()))
            .unwrap_or((0, 0));
        match datefmt::parse_date(d, n) {
            Ok((s, ns)) => (to_system(s, ns), to_system(s, ns)),
            Err(e) => return common::usage_error(TOOL, e),
        }
    } else if let Some(t) = p.value('t') {
        match parse_stamp(t) {
            Some((s, ns)) => (to_system(s, ns), to_system(s, ns)),
            None => return common::usage_error(TOOL, format!("invalid date format '{t}'")),
        }
    } else if let Some(r) = p.value('r') {
        match fs::metadata(r) {
            Ok(m) => (m.accessed().unwrap_or(now), m.modified().unwrap_or(now)),
            Err(e) => {
                eprintln!("{TOOL}: failed to get attributes of '{r}': {}", io_msg(&e));
                return 1;
            }
        }
    } else {
        (now, now)
    };
    let only_a = p.has('a') && !p.has('m');
    let only_m = p.has('m') && !p.has('a');
    let mut status = 0;
    for op in &p.operands {
        let name = op.to_string_lossy();
        let exists = fs::metadata(op).is_ok();
        if !exists && p.has('c') {
            continue;
        }
        let file = if exists {
            File::open(op).or_else(|_| OpenOptions::new().write(true).open(op))
        } else {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(op)
        };
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{TOOL}: cannot touch '{name}': {}", io_msg(&e));
                status = 1;
                continue;
            }
        };
        let mut times = FileTimes::new();
        if !only_m {
            times = times.set_accessed(atime);
        }
        if !only_a {
            times = times.set_modified(mtime);
        }
        if let Err(e) = file.set_times(times) {
            eprintln!("{TOOL}: setting times of '{name}': {}", io_msg(&e));
            status = 1;
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(parse_stamp("202311142213.20"), Some((1_700_000_000, 0)));
        assert_eq!(parse_stamp("2311142213.20"), Some((1_700_000_000, 0)));
        assert_eq!(parse_stamp("20231314"), None);
        assert_eq!(parse_stamp("x"), None);
    }
}
