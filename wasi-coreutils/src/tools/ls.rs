//! `ls`: one name per line (as GNU prints to a pipe), sorted bytewise (C
//! locale). Options: `-1 -a -A -d -R -r -t -S -U -p`, `--`, and the long
//! listing `-l` (with `-n`, `-o`, `-g`, `-h`). Exit 2 if an operand cannot be
//! accessed, as GNU.
//!
//! The long listing is GNU's format with what WASI exposes: the type, the
//! size and the modification time are the file's; the rest is fixed, as
//! the task is the only user of its file system: owner and group `root`
//! (`0` with `-n`), mode `-rw-r--r--` for files and `drwxr-xr-x` for
//! directories (the modes a task's files get under umask 022), one link
//! for a file and two plus its subdirectories for a directory (as ext4
//! counts them). Times are UTC, `%b %e %H:%M` within six months before
//! now, `%b %e  %Y` otherwise (GNU's rule). `total` counts 1 KiB blocks as
//! a 4 KiB-block file system allocates them (`ceil(size / 4096) * 4` per
//! entry; WASI has no block counts, so sparse files read larger than
//! GNU's figure). `-F`, `-i` and `-s` are rejected with exit 2: WASI
//! exposes no inode numbers or block counts.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::common;
use crate::files::{getopt, io_msg};

const TOOL: &str = "ls";

#[derive(Clone, Copy, Default)]
struct Opts {
    all: bool,
    almost_all: bool,
    dir_only: bool,
    recursive: bool,
    reverse: bool,
    by_time: bool,
    by_size: bool,
    unsorted: bool,
    slash: bool,
    long: bool,
    numeric: bool,
    no_owner: bool,
    no_group: bool,
    human: bool,
}

struct Entry {
    name: OsString,
    path: PathBuf,
    is_dir: bool,
    mtime: SystemTime,
    size: u64,
    is_link: bool,
}

fn entry(name: OsString, path: PathBuf, follow: bool) -> io::Result<Entry> {
    let meta = if follow {
        fs::metadata(&path).or_else(|_| fs::symlink_metadata(&path))?
    } else {
        fs::symlink_metadata(&path)?
    };
    Ok(Entry {
        name,
        path,
        is_dir: meta.is_dir(),
        mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        size: meta.len(),
        is_link: meta.file_type().is_symlink(),
    })
}

fn sort(v: &mut [Entry], o: &Opts) {
    if o.unsorted {
        return;
    }
    let bytes = |e: &Entry| e.name.to_string_lossy().into_owned().into_bytes();
    v.sort_by(|a, b| {
        let by_name = bytes(a).cmp(&bytes(b));
        let primary = if o.by_size {
            b.size.cmp(&a.size)
        } else if o.by_time {
            b.mtime.cmp(&a.mtime)
        } else {
            std::cmp::Ordering::Equal
        };
        primary.then(by_name)
    });
    if o.reverse {
        v.reverse();
    }
}

fn show(e: &Entry, o: &Opts) -> String {
    let mut s = e.name.to_string_lossy().into_owned();
    if o.slash && e.is_dir {
        s.push('/');
    }
    s
}

/// Lists directory `path`; returns the exit status contribution.
fn list_dir(
    out: &mut impl Write,
    path: &Path,
    o: &Opts,
    header: Option<String>,
    first: &mut bool,
) -> io::Result<i32> {
    let rd = match fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) => {
            out.flush()?;
            eprintln!(
                "{TOOL}: cannot open directory '{}': {}",
                path.display(),
                io_msg(&e)
            );
            return Ok(2);
        }
    };
    let mut status = 0;
    let mut entries = Vec::new();
    if o.all {
        for dot in [".", ".."] {
            if let Ok(e) = entry(dot.into(), path.join(dot), false) {
                entries.push(e);
            }
        }
    }
    for d in rd {
        let d = match d {
            Ok(d) => d,
            Err(e) => {
                eprintln!(
                    "{TOOL}: reading directory '{}': {}",
                    path.display(),
                    io_msg(&e)
                );
                status = 1;
                continue;
            }
        };
        let name = d.file_name();
        if name.to_string_lossy().starts_with('.') && !(o.all || o.almost_all) {
            continue;
        }
        match entry(name, d.path(), false) {
            Ok(e) => entries.push(e),
            Err(e) => {
                eprintln!(
                    "{TOOL}: cannot access '{}': {}",
                    d.path().display(),
                    io_msg(&e)
                );
                status = 1;
            }
        }
    }
    sort(&mut entries, o);
    if let Some(h) = header {
        if !*first {
            out.write_all(b"\n")?;
        }
        writeln!(out, "{h}:")?;
    }
    *first = false;
    if o.long {
        let blocks: u64 = entries.iter().map(blocks_1k).sum();
        writeln!(out, "total {}", human_or_plain(blocks * 1024, blocks, o))?;
        long_listing(out, &entries, o)?;
    } else {
        for e in &entries {
            writeln!(out, "{}", show(e, o))?;
        }
    }
    if o.recursive {
        for e in entries
            .iter()
            .filter(|e| e.is_dir && e.name != "." && e.name != "..")
        {
            let h = e.path.to_string_lossy().into_owned();
            status = status.max(list_dir(out, &e.path, o, Some(h), first)?);
        }
    }
    Ok(status)
}

/// 1 KiB blocks a 4 KiB-block file system gives the entry.
fn blocks_1k(e: &Entry) -> u64 {
    e.size.div_ceil(4096) * 4
}

/// GNU's `-h` size: powers of 1024, rounded up, one decimal below 10.
fn human(n: u64) -> String {
    if n < 1024 {
        return n.to_string();
    }
    let units = ['K', 'M', 'G', 'T', 'P', 'E'];
    let mut v = n as f64;
    for u in units {
        v /= 1024.0;
        if v < 1024.0 || u == 'E' {
            // Rounded up at the precision shown, as GNU does.
            if v < 10.0 {
                let t = (v * 10.0).ceil() / 10.0;
                if t < 10.0 {
                    return format!("{t:.1}{u}");
                }
                return format!("{}{u}", t as u64);
            }
            let t = v.ceil();
            if t < 1024.0 || u == 'E' {
                return format!("{}{u}", t as u64);
            }
        }
    }
    n.to_string()
}

fn human_or_plain(bytes: u64, plain: u64, o: &Opts) -> String {
    if o.human {
        human(bytes)
    } else {
        plain.to_string()
    }
}

/// Links a directory has on ext4: its entry, its `.`, each subdirectory's `..`.
fn dir_links(path: &Path) -> u64 {
    let subdirs = fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
                .count() as u64
        })
        .unwrap_or(0);
    2 + subdirs
}

/// `Dec  6 13:49` within six months before now, `Dec  6  2025` otherwise.
fn long_time(t: SystemTime, now: SystemTime) -> String {
    let secs = |t: SystemTime| match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (ts, ns) = (secs(t), secs(now));
    // GNU: half of a Gregorian year (31556952 s / 2).
    let recent = ts <= ns && ns - ts < 31_556_952 / 2;
    let fmt = if recent { "%b %e %H:%M" } else { "%b %e  %Y" };
    crate::files::datefmt::format(fmt, ts, 0).unwrap_or_default()
}

fn long_listing(out: &mut impl Write, entries: &[Entry], o: &Opts) -> io::Result<()> {
    let now = SystemTime::now();
    let owner = if o.numeric { "0" } else { "root" };
    let rows: Vec<(u64, String)> = entries
        .iter()
        .map(|e| {
            let links = if e.is_dir { dir_links(&e.path) } else { 1 };
            let size = if o.human {
                human(e.size)
            } else {
                e.size.to_string()
            };
            (links, size)
        })
        .collect();
    let lw = rows
        .iter()
        .map(|r| r.0.to_string().len())
        .max()
        .unwrap_or(1);
    let sw = rows.iter().map(|r| r.1.len()).max().unwrap_or(1);
    for (e, (links, size)) in entries.iter().zip(rows) {
        let mode = if e.is_link {
            "lrwxrwxrwx"
        } else if e.is_dir {
            "drwxr-xr-x"
        } else {
            "-rw-r--r--"
        };
        let mut line = format!("{mode} {links:>lw$} ");
        if !o.no_owner {
            line.push_str(owner);
            line.push(' ');
        }
        if !o.no_group {
            line.push_str(owner);
            line.push(' ');
        }
        line.push_str(&format!(
            "{size:>sw$} {} {}",
            long_time(e.mtime, now),
            show(e, o)
        ));
        if e.is_link
            && let Ok(t) = fs::read_link(&e.path)
        {
            line.push_str(&format!(" -> {}", t.display()));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("all", 'a', false),
        ("almost-all", 'A', false),
        ("directory", 'd', false),
        ("recursive", 'R', false),
        ("reverse", 'r', false),
        ("indicator-style=slash", 'p', false),
    ];
    let p = match getopt(&args, "1aAdRrtSUplnogFish", "", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    for c in ['F', 'i', 's'] {
        if p.has(c) {
            return common::usage_error(
                TOOL,
                format!("option -{c} is not supported: WASI does not expose inodes or blocks"),
            );
        }
    }
    let o = Opts {
        all: p.has('a'),
        almost_all: p.has('A'),
        dir_only: p.has('d'),
        recursive: p.has('R'),
        reverse: p.has('r'),
        by_time: p.has('t'),
        by_size: p.has('S'),
        unsorted: p.has('U'),
        slash: p.has('p'),
        long: ['l', 'n', 'o', 'g'].iter().any(|c| p.has(*c)),
        numeric: p.has('n'),
        no_owner: p.has('g'),
        no_group: p.has('o'),
        human: p.has('h'),
    };
    let operands = if p.operands.is_empty() {
        vec![OsString::from(".")]
    } else {
        p.operands.clone()
    };
    let mut status = 0;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for op in &operands {
        match entry(op.clone(), PathBuf::from(op), true) {
            Ok(e) if e.is_dir && !o.dir_only => dirs.push(e),
            Ok(e) => files.push(e),
            Err(e) => {
                eprintln!(
                    "{TOOL}: cannot access '{}': {}",
                    op.to_string_lossy(),
                    io_msg(&e)
                );
                status = 2;
            }
        }
    }
    sort(&mut files, &o);
    sort(&mut dirs, &o);
    let mut out = common::stdout();
    let r = (|| -> io::Result<i32> {
        let mut st = 0;
        if o.long {
            long_listing(&mut out, &files, &o)?;
        } else {
            for f in &files {
                writeln!(out, "{}", show(f, &o))?;
            }
        }
        let headers = operands.len() > 1 || o.recursive;
        let mut first = files.is_empty();
        for d in &dirs {
            let h = headers.then(|| d.name.to_string_lossy().into_owned());
            st = st.max(list_dir(&mut out, &d.path, &o, h, &mut first)?);
        }
        Ok(st)
    })();
    let r = r.and_then(|s| common::finish(&mut out).map(|_| s));
    match r {
        Ok(s) => status.max(s),
        Err(e) if common::is_broken_pipe(&e) => status,
        Err(e) => {
            eprintln!("{TOOL}: write error: {}", io_msg(&e));
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_as_gnu() {
        // Each checked with GNU `ls -lh` on files of these sizes.
        for (n, want) in [
            (0, "0"),
            (1023, "1023"),
            (1024, "1.0K"),
            (1025, "1.1K"),
            (4096, "4.0K"),
            (10_240, "10K"),
            (15_000, "15K"),
            (1_048_576, "1.0M"),
            (5_000_000, "4.8M"),
        ] {
            assert_eq!(human(n), want, "{n}");
        }
    }

    #[test]
    fn times_recent_and_old() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_000_000);
        let recent = now - std::time::Duration::from_secs(3600);
        let old = now - std::time::Duration::from_secs(200 * 86_400);
        assert_eq!(long_time(recent, now), "Nov 29 23:53");
        assert_eq!(long_time(old, now), "May 14  2026");
        let future = now + std::time::Duration::from_secs(3600);
        assert_eq!(long_time(future, now), "Nov 30  2026");
    }
}
