//! `tar`: list (`-t`) and extract (`-x`) ustar/GNU/pax archives with the
//! `tar` crate; `-f FILE|-` (default stdin), `-v` (GNU's listing format),
//! `-z` (gzip; detected automatically for `-f FILE` as GNU does), `-C DIR`,
//! `-O` (extract to stdout), `--strip-components=N`, member operands, and
//! bundled old-style options (`tar xzf a.tgz`). Creating archives, other
//! compressors and owner/permission restoration are rejected (exit 2).
//!
//! Extraction is confined to the target directory: a leading `/` is
//! stripped (as GNU does), members with `..` components are refused, and
//! nothing is written through a symlink or to a hard-link target outside it.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs::{self, File, FileTimes};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;
use tar::{Archive, EntryType};

use crate::common;
use crate::files::{datefmt, getopt, io_msg};

const TOOL: &str = "tar";

#[derive(Default)]
struct Opts {
    list: bool,
    extract: bool,
    verbose: bool,
    gzip: bool,
    to_stdout: bool,
    file: Option<String>,
    dir: Option<String>,
    strip: usize,
    members: Vec<String>,
}

/// Expands old-style bundled options: `tar xzf a.tgz d` → `-x -z -f a.tgz d`.
fn expand_bundled(args: &[OsString]) -> Vec<OsString> {
    let Some(first) = args.get(1).map(|a| a.to_string_lossy().into_owned()) else {
        return args.to_vec();
    };
    if first.starts_with('-') {
        return args.to_vec();
    }
    let mut out = vec![args[0].clone()];
    let mut rest = args[2..].iter();
    for c in first.chars() {
        out.push(OsString::from(format!("-{c}")));
        if matches!(c, 'f' | 'C')
            && let Some(v) = rest.next()
        {
            out.push(v.clone());
        }
    }
    out.extend(rest.cloned());
    out
}

fn parse(args: &[OsString]) -> Result<Opts, String> {
    let args = expand_bundled(args);
    let longs = [
        ("list", 't', false),
        ("extract", 'x', false),
        ("get", 'x', false),
        ("verbose", 'v', false),
        ("gzip", 'z', false),
        ("gunzip", 'z', false),
        ("file", 'f', true),
        ("directory", 'C', true),
        ("to-stdout", 'O', false),
        ("strip-components", 's', true),
        ("create", 'c', false),
        ("append", 'r', false),
        ("bzip2", 'j', false),
        ("xz", 'J', false),
        ("same-permissions", 'p', false),
    ];
    let p = getopt(&args, "txvzOcrjJpo", "fC", &longs)?;
    for (c, what) in [
        ('c', "creating archives"),
        ('r', "appending"),
        ('j', "bzip2"),
        ('J', "xz"),
        ('p', "restoring permissions"),
    ] {
        if p.has(c) {
            return Err(format!(
                "{what} is not supported in wasi-coreutils tar (only -t and -x)"
            ));
        }
    }
    let o = Opts {
        list: p.has('t'),
        extract: p.has('x'),
        verbose: p.has('v'),
        gzip: p.has('z'),
        to_stdout: p.has('O'),
        file: p.value('f').map(str::to_string),
        dir: p.value('C').map(str::to_string),
        strip: match p.value('s') {
            Some(n) => n
                .parse()
                .map_err(|_| format!("invalid --strip-components '{n}'"))?,
            None => 0,
        },
        members: p
            .operands
            .iter()
            .map(|m| m.to_string_lossy().trim_end_matches('/').to_string())
            .collect(),
    };
    if o.list == o.extract {
        return Err(
            "You must specify one of the '-tx' options (only list and extract are supported)"
                .into(),
        );
    }
    Ok(o)
}

/// GNU's `ls -l`-style mode string of a member.
fn mode_string(t: EntryType, mode: u32) -> String {
    let kind = match t {
        EntryType::Directory => 'd',
        EntryType::Symlink => 'l',
        EntryType::Link => 'h',
        EntryType::Char => 'c',
        EntryType::Block => 'b',
        EntryType::Fifo => 'p',
        _ => '-',
    };
    let mut s = String::from(kind);
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        let bit = 1 << (8 - i);
        s.push(if mode & bit != 0 { c } else { '-' });
    }
    let fix = |s: &mut String, idx: usize, set: bool, on: char, off: char| {
        if set {
            let cur = s.as_bytes()[idx];
            s.replace_range(idx..=idx, &(if cur == b'-' { off } else { on }).to_string());
        }
    };
    fix(&mut s, 3, mode & 0o4000 != 0, 's', 'S');
    fix(&mut s, 6, mode & 0o2000 != 0, 's', 'S');
    fix(&mut s, 9, mode & 0o1000 != 0, 't', 'T');
    s
}

/// Drops a leading `/` and `n` leading components; `None` if a `..`
/// component would escape or nothing is left.
fn safe_relative(name: &str, strip: usize) -> Result<Option<PathBuf>, String> {
    let mut parts = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_os_string()),
            Component::ParentDir => return Err(format!("{name}: Member name contains '..'")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if parts.len() <= strip {
        return Ok(None);
    }
    Ok(Some(parts[strip..].iter().collect()))
}

/// Refuses to write below a symlink: every existing ancestor of `rel`
/// inside `root` must be a real directory.
fn no_symlink_ancestors(root: &Path, rel: &Path) -> bool {
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return false,
            _ => {}
        }
    }
    true
}

fn open_archive(o: &Opts) -> Result<Box<dyn Read>, (String, i32)> {
    let raw: Box<dyn Read> = match o.file.as_deref() {
        None | Some("-") => Box::new(io::stdin().lock()),
        Some(f) => match File::open(f) {
            Ok(f) => Box::new(f),
            Err(e) => return Err((format!("{f}: Cannot open: {}", io_msg(&e)), 2)),
        },
    };
    let mut r = BufReader::with_capacity(64 * 1024, raw);
    let head = r.fill_buf().map_err(|e| (io_msg(&e), 2))?;
    let gz = head.len() >= 2 && head[..2] == [0x1f, 0x8b];
    let from_file = !matches!(o.file.as_deref(), None | Some("-"));
    if gz && !o.gzip && !from_file {
        return Err(("Archive is compressed. Use -z option".into(), 2));
    }
    if o.gzip || gz {
        if !gz {
            return Err(("gzip: stdin: not in gzip format".into(), 2));
        }
        return Ok(Box::new(MultiGzDecoder::new(r)));
    }
    Ok(Box::new(r))
}

fn member_selected(o: &Opts, name: &str, found: &mut [bool]) -> bool {
    if o.members.is_empty() {
        return true;
    }
    let name = name.trim_end_matches('/');
    let mut hit = false;
    for (i, m) in o.members.iter().enumerate() {
        if name == m || name.starts_with(&format!("{m}/")) {
            found[i] = true;
            hit = true;
        }
    }
    hit
}

pub fn main(args: Vec<OsString>) -> i32 {
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => return common::usage_error(TOOL, e),
    };
    let reader = match open_archive(&o) {
        Ok(r) => r,
        Err((m, code)) => {
            eprintln!("{TOOL}: {m}");
            eprintln!("{TOOL}: Error is not recoverable: exiting now");
            return code;
        }
    };
    let root = PathBuf::from(o.dir.clone().unwrap_or_else(|| ".".into()));
    if o.extract && !root.is_dir() {
        eprintln!(
            "{TOOL}: {}: Cannot open: No such file or directory",
            root.display()
        );
        eprintln!("{TOOL}: Error is not recoverable: exiting now");
        return 2;
    }
    let mut out = common::stdout();
    let mut status = 0;
    let mut found = vec![false; o.members.len()];
    let mut ugswidth = 19usize;
    let mut warned_root = false;
    let mut archive = Archive::new(reader);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{TOOL}: {}", io_msg(&e));
            return 2;
        }
    };
    let mut seen_any = false;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let _ = out.flush();
                if seen_any {
                    eprintln!("{TOOL}: {}", io_msg(&e));
                } else {
                    eprintln!("{TOOL}: This does not look like a tar archive");
                }
                status = 2;
                break;
            }
        };
        seen_any = true;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !member_selected(&o, &name, &mut found) {
            continue;
        }
        let etype = entry.header().entry_type();
        let link: Option<String> = entry
            .link_name_bytes()
            .map(|l: Cow<[u8]>| String::from_utf8_lossy(&l).into_owned());
        if o.verbose || o.list {
            let line = if o.verbose && o.list {
                let h = entry.header();
                let mode = h.mode().unwrap_or(0);
                let user = h
                    .username()
                    .ok()
                    .flatten()
                    .filter(|u| !u.is_empty())
                    .map_or_else(|| h.uid().unwrap_or(0).to_string(), str::to_string);
                let group = h
                    .groupname()
                    .ok()
                    .flatten()
                    .filter(|g| !g.is_empty())
                    .map_or_else(|| h.gid().unwrap_or(0).to_string(), str::to_string);
                let size = if matches!(
                    etype,
                    EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse
                ) {
                    entry.size().to_string()
                } else {
                    "0".to_string()
                };
                let pad = user.len() + 1 + group.len() + 1 + size.len();
                ugswidth = ugswidth.max(pad);
                let when = datefmt::format("%Y-%m-%d %H:%M", h.mtime().unwrap_or(0) as i64, 0)
                    .unwrap_or_default();
                let mut l = format!(
                    "{} {user}/{group} {size:>w$} {when} {name}",
                    mode_string(etype, mode),
                    w = ugswidth - user.len() - group.len() - 2
                );
                match (etype, &link) {
                    (EntryType::Symlink, Some(t)) => l.push_str(&format!(" -> {t}")),
                    (EntryType::Link, Some(t)) => l.push_str(&format!(" link to {t}")),
                    _ => {}
                }
                l
            } else {
                name.clone()
            };
            if !(o.extract && o.to_stdout) || o.verbose {
                let w = if o.to_stdout {
                    writeln!(io::stderr(), "{line}")
                } else {
                    writeln!(out, "{line}")
                };
                if let Err(e) = w
                    && common::is_broken_pipe(&e)
                {
                    return status;
                }
            }
        }
        if !o.extract {
            continue;
        }
        if o.to_stdout {
            if matches!(etype, EntryType::Regular | EntryType::Continuous)
                && let Err(e) = io::copy(&mut entry, &mut out)
            {
                if common::is_broken_pipe(&e) {
                    return status;
                }
                eprintln!("{TOOL}: {name}: {}", io_msg(&e));
                status = 2;
            }
            continue;
        }
        if name.starts_with('/') && !warned_root {
            let _ = out.flush();
            eprintln!("{TOOL}: Removing leading `/' from member names");
            warned_root = true;
        }
        let rel = match safe_relative(&name, o.strip) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(m) => {
                let _ = out.flush();
                eprintln!("{TOOL}: {m}");
                status = 2;
                continue;
            }
        };
        if !no_symlink_ancestors(&root, &rel) {
            let _ = out.flush();
            eprintln!("{TOOL}: {name}: Cannot open: refusing to extract through a symbolic link");
            status = 2;
            continue;
        }
        let dst = root.join(&rel);
        if let Some(parent) = dst.parent()
            && let Err(e) = fs::create_dir_all(parent)
        {
            eprintln!("{TOOL}: {name}: Cannot mkdir: {}", io_msg(&e));
            status = 2;
            continue;
        }
        let r: io::Result<()> = match etype {
            EntryType::Directory => match fs::create_dir(&dst) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dst.is_dir() => Ok(()),
                r => r,
            },
            EntryType::Symlink => {
                let _ = fs::remove_file(&dst);
                crate::files::copy::make_symlink(Path::new(link.as_deref().unwrap_or("")), &dst)
            }
            EntryType::Link => match link.as_deref().map(|l| safe_relative(l, o.strip)) {
                Some(Ok(Some(t))) if no_symlink_ancestors(&root, &t) => {
                    let _ = fs::remove_file(&dst);
                    fs::hard_link(root.join(t), &dst)
                }
                _ => Err(io::Error::other(
                    "refusing hard link outside the target directory",
                )),
            },
            EntryType::Regular | EntryType::Continuous => {
                let _ = fs::remove_file(&dst);
                let mtime = entry.header().mtime().unwrap_or(0);
                File::create(&dst).and_then(|mut f| {
                    io::copy(&mut entry, &mut f)?;
                    // Like GNU, restore the modification time (best effort).
                    let t = UNIX_EPOCH + Duration::from_secs(mtime);
                    let _ = f.set_times(FileTimes::new().set_modified(t).set_accessed(t));
                    Ok(())
                })
            }
            other => Err(io::Error::other(format!(
                "unsupported member type {other:?}"
            ))),
        };
        if let Err(e) = r {
            let _ = out.flush();
            eprintln!("{TOOL}: {name}: Cannot extract: {}", io_msg(&e));
            status = 2;
        }
    }
    let _ = common::finish(&mut out);
    for (i, m) in o.members.iter().enumerate() {
        if !found[i] {
            eprintln!("{TOOL}: {m}: Not found in archive");
            status = 2;
        }
    }
    if status != 0 {
        eprintln!("{TOOL}: Exiting with failure status due to previous errors");
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_confined() {
        assert_eq!(
            safe_relative("/etc/passwd", 0),
            Ok(Some(PathBuf::from("etc/passwd")))
        );
        assert!(safe_relative("a/../../x", 0).is_err());
        assert_eq!(safe_relative("a/b/c", 1), Ok(Some(PathBuf::from("b/c"))));
        assert_eq!(safe_relative("a/", 1), Ok(None));
    }

    #[test]
    fn modes() {
        assert_eq!(mode_string(EntryType::Regular, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(EntryType::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(EntryType::Link, 0o4755), "hrwsr-xr-x");
    }

    #[test]
    fn bundled_options() {
        let a: Vec<OsString> = ["tar", "xzf", "a.tgz", "m"]
            .iter()
            .map(OsString::from)
            .collect();
        let o = parse(&a).ok().unwrap();
        assert!(o.extract && o.gzip);
        assert_eq!(o.file.as_deref(), Some("a.tgz"));
        assert_eq!(o.members, vec!["m".to_string()]);
        let c: Vec<OsString> = ["tar", "-cf", "x.tar", "d"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(parse(&c).is_err());
    }
}
