//! `md5sum`, `sha1sum`, `sha256sum`: GNU-compatible digest listing and
//! `-c` checking (text mode only; `-b` is accepted and marks lines with `*`
//! as GNU does, which does not change the digest on POSIX systems).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::common;
use crate::files::{getopt, io_msg};

/// Which digest a tool computes.
#[derive(Clone, Copy, Debug)]
pub enum Algo {
    Md5,
    Sha1,
    Sha256,
}

impl Algo {
    fn hex_len(self) -> usize {
        match self {
            Algo::Md5 => 32,
            Algo::Sha1 => 40,
            Algo::Sha256 => 64,
        }
    }

    /// Hex digest of everything `r` yields.
    pub fn digest(self, r: &mut impl Read) -> io::Result<String> {
        fn run<D: Digest>(r: &mut impl Read) -> io::Result<String> {
            let mut d = D::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                d.update(&buf[..n]);
            }
            Ok(hex::encode(d.finalize()))
        }
        match self {
            Algo::Md5 => run::<Md5>(r),
            Algo::Sha1 => run::<Sha1>(r),
            Algo::Sha256 => run::<Sha256>(r),
        }
    }
}

fn digest_path(algo: Algo, path: &OsString) -> io::Result<String> {
    if path == "-" {
        return algo.digest(&mut io::stdin().lock());
    }
    let f = File::open(path)?;
    if f.metadata()?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "Is a directory",
        ));
    }
    algo.digest(&mut BufReader::new(f))
}

/// GNU escapes names holding `\` or a newline and marks the line with `\`.
fn escape_name(name: &str) -> (bool, String) {
    if !name.contains(['\\', '\n']) {
        return (false, name.to_string());
    }
    (true, name.replace('\\', "\\\\").replace('\n', "\\n"))
}

fn unescape_name(name: &str) -> String {
    let mut out = String::new();
    let mut it = name.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// GNU's locale-independent quoting of a name in messages (`'a b'`).
fn shell_quote(name: &str) -> String {
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/+,:@%".contains(&b))
    {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', "'\\''"))
    }
}

/// Entry point shared by the three tools.
pub fn main(args: Vec<OsString>, algo: Algo) -> i32 {
    let tool = common::tool_name(&args);
    let longs = [
        ("check", 'c', false),
        ("binary", 'b', false),
        ("text", 't', false),
        ("quiet", 'q', false),
        ("status", 's', false),
        ("strict", 'S', false),
        ("warn", 'w', false),
    ];
    let p = match getopt(&args, "cbtw", "", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(&tool, e),
    };
    let mut files = p.operands.clone();
    if files.is_empty() {
        files.push(OsString::from("-"));
    }
    let mut out = common::stdout();
    let status = if p.has('c') {
        check(&tool, algo, &files, &p, &mut out)
    } else {
        if p.has('q') || p.has('s') || p.has('S') || p.has('w') {
            return common::usage_error(
                &tool,
                "the --quiet, --status, --strict and --warn options are meaningful only when verifying checksums",
            );
        }
        let mark = if p.has('b') { '*' } else { ' ' };
        let mut status = 0;
        for f in &files {
            let name = f.to_string_lossy();
            match digest_path(algo, f) {
                Ok(h) => {
                    let (esc, n) = escape_name(&name);
                    let line = format!("{}{h} {mark}{n}\n", if esc { "\\" } else { "" });
                    if let Err(e) = out.write_all(line.as_bytes()) {
                        return write_fail(&tool, e);
                    }
                }
                Err(e) => {
                    let _ = out.flush();
                    eprintln!("{tool}: {name}: {}", io_msg(&e));
                    status = 1;
                }
            }
        }
        status
    };
    match common::finish(&mut out) {
        Ok(()) => status,
        Err(e) => write_fail(&tool, e),
    }
}

fn write_fail(tool: &str, e: io::Error) -> i32 {
    if common::is_broken_pipe(&e) {
        return 0;
    }
    eprintln!("{tool}: write error: {}", io_msg(&e));
    1
}

/// Splits a checksum line `HASH  NAME` / `HASH *NAME` (or `\HASH ...`).
fn parse_line(line: &str, algo: Algo) -> Option<(String, String)> {
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let hash = line.get(..algo.hex_len())?;
    if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let rest = &line[algo.hex_len()..];
    let name = rest
        .strip_prefix(" *")
        .or_else(|| rest.strip_prefix("  "))?;
    if name.is_empty() {
        return None;
    }
    let name = if escaped {
        unescape_name(name)
    } else {
        name.to_string()
    };
    Some((hash.to_ascii_lowercase(), name))
}

fn check(
    tool: &str,
    algo: Algo,
    lists: &[OsString],
    p: &crate::files::Parsed,
    out: &mut impl Write,
) -> i32 {
    let quiet = p.has('q');
    let status_only = p.has('s');
    let strict = p.has('S');
    let mut status = 0;
    for list in lists {
        let list_name = if list == "-" {
            "standard input".to_string()
        } else {
            list.to_string_lossy().into_owned()
        };
        let reader: Box<dyn BufRead> = if list == "-" {
            Box::new(BufReader::new(io::stdin()))
        } else {
            match File::open(list) {
                Ok(f) => Box::new(BufReader::new(f)),
                Err(e) => {
                    eprintln!("{tool}: {list_name}: {}", io_msg(&e));
                    status = 1;
                    continue;
                }
            }
        };
        let (mut bad_lines, mut failed, mut unreadable, mut good_lines) =
            (0usize, 0usize, 0usize, 0usize);
        for line in reader.split(b'\n') {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{tool}: {list_name}: {}", io_msg(&e));
                    status = 1;
                    break;
                }
            };
            let line = String::from_utf8_lossy(&line);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            let Some((want, name)) = parse_line(line, algo) else {
                bad_lines += 1;
                continue;
            };
            good_lines += 1;
            let got = digest_path(algo, &OsString::from(&name));
            let verdict = match got {
                Ok(h) if h == want => "OK",
                Ok(_) => {
                    failed += 1;
                    "FAILED"
                }
                Err(e) => {
                    let _ = out.flush();
                    eprintln!("{tool}: {name}: {}", io_msg(&e));
                    unreadable += 1;
                    "FAILED open or read"
                }
            };
            if !status_only && (!quiet || verdict != "OK") {
                let (esc, n) = escape_name(&name);
                let l = format!("{}{n}: {verdict}\n", if esc { "\\" } else { "" });
                if let Err(e) = out.write_all(l.as_bytes()) {
                    return write_fail(tool, e);
                }
            }
        }
        let _ = out.flush();
        if good_lines == 0 {
            eprintln!(
                "{tool}: {}: no properly formatted checksum lines found",
                shell_quote(&list_name)
            );
            status = 1;
            continue;
        }
        let plural = |n: usize, one: &str, many: &str| {
            if n == 1 {
                one.to_string()
            } else {
                many.to_string()
            }
        };
        if !status_only {
            if bad_lines > 0 {
                eprintln!(
                    "{tool}: WARNING: {bad_lines} {} improperly formatted",
                    plural(bad_lines, "line is", "lines are")
                );
            }
            if unreadable > 0 {
                eprintln!(
                    "{tool}: WARNING: {unreadable} listed {} could not be read",
                    plural(unreadable, "file", "files")
                );
            }
            if failed > 0 {
                eprintln!(
                    "{tool}: WARNING: {failed} computed {} did NOT match",
                    plural(failed, "checksum", "checksums")
                );
            }
        }
        if failed > 0 || unreadable > 0 || (strict && bad_lines > 0) {
            status = 1;
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let d = |a: Algo| a.digest(&mut &b"abc"[..]).unwrap();
        assert_eq!(d(Algo::Md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d(Algo::Sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d(Algo::Sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn check_lines() {
        let h = "0cc175b9c0f1b6a831c399e269772661";
        assert_eq!(
            parse_line(&format!("{h}  a b"), Algo::Md5),
            Some((h.into(), "a b".into()))
        );
        assert_eq!(
            parse_line(&format!("{h} *x"), Algo::Md5),
            Some((h.into(), "x".into()))
        );
        assert_eq!(
            parse_line(&format!("\\{h}  a\\\\b\\nc"), Algo::Md5),
            Some((h.into(), "a\\b\nc".into()))
        );
        assert_eq!(parse_line("garbage", Algo::Md5), None);
        assert_eq!(parse_line(&format!("{h} x"), Algo::Md5), None);
        assert_eq!(escape_name("a\\b"), (true, "a\\\\b".into()));
    }
}
