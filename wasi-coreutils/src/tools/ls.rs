//! `ls`: one name per line (as GNU prints to a pipe), sorted bytewise (C
//! locale). Options: `-1 -a -A -d -R -r -t -S -U -p`, `--`. Long listings
//! (`-l`, `-n`, `-o`, `-g`) and `-F`/`-i`/`-s` are rejected with exit 2:
//! WASI exposes no owners, permission bits or inode numbers, so they could
//! not be printed honestly. Exit 2 if an operand cannot be accessed, as GNU.

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
}

struct Entry {
    name: OsString,
    path: PathBuf,
    is_dir: bool,
    mtime: SystemTime,
    size: u64,
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
    for e in &entries {
        writeln!(out, "{}", show(e, o))?;
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

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("all", 'a', false),
        ("almost-all", 'A', false),
        ("directory", 'd', false),
        ("recursive", 'R', false),
        ("reverse", 'r', false),
        ("indicator-style=slash", 'p', false),
    ];
    let p = match getopt(&args, "1aAdRrtSUplnogFis", "", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    for c in ['l', 'n', 'o', 'g', 'F', 'i', 's'] {
        if p.has(c) {
            return common::usage_error(
                TOOL,
                format!(
                    "option -{c} is not supported: WASI does not expose owners, modes or inodes"
                ),
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
        for f in &files {
            writeln!(out, "{}", show(f, &o))?;
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
