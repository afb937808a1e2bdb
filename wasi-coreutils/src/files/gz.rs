//! `gzip`, `gunzip`, `zcat` on flate2's pure-Rust (miniz_oxide) backend, so
//! they build for wasm32-wasip1.
//!
//! Guarantees: decompression of any gzip stream (including GNU-made files
//! and concatenated members) is byte-exact; compressed output is valid gzip
//! that round-trips exactly, but its bytes differ from GNU gzip's (different
//! deflate implementation; no file name or mtime is stored in the header).
//! Options: `-c -d -k -f -q -v(ignored) -n -N(ignored) -1..-9 --fast --best
//! -t`, files or stdin→stdout. Not supported (exit 2): `-r`, `-S`, `-l`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::common;
use crate::files::{getopt, io_msg};

/// How the tool was invoked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Gzip,
    Gunzip,
    Zcat,
}

struct Opts {
    stdout: bool,
    decompress: bool,
    keep: bool,
    force: bool,
    quiet: bool,
    test: bool,
    level: u32,
}

pub fn main(args: Vec<OsString>, mode: Mode) -> i32 {
    // GNU's gunzip and zcat are scripts around gzip, so messages say "gzip".
    let tool = "gzip".to_string();
    let longs = [
        ("stdout", 'c', false),
        ("to-stdout", 'c', false),
        ("decompress", 'd', false),
        ("uncompress", 'd', false),
        ("keep", 'k', false),
        ("force", 'f', false),
        ("quiet", 'q', false),
        ("verbose", 'v', false),
        ("no-name", 'n', false),
        ("name", 'N', false),
        ("test", 't', false),
        ("fast", '1', false),
        ("best", '9', false),
        ("recursive", 'r', false),
        ("suffix", 'S', true),
        ("list", 'l', false),
    ];
    let p = match getopt(&args, "cdkfqvnNt123456789rl", "S", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(&tool, e),
    };
    for unsupported in ['r', 'S', 'l'] {
        if p.has(unsupported) {
            return common::usage_error(
                &tool,
                format!("option -{unsupported} is not supported in wasi-coreutils"),
            );
        }
    }
    let level = p
        .opts
        .iter()
        .rev()
        .find_map(|(c, _)| c.to_digit(10))
        .unwrap_or(6);
    let o = Opts {
        stdout: p.has('c') || mode == Mode::Zcat,
        decompress: p.has('d') || mode != Mode::Gzip || p.has('t'),
        keep: p.has('k'),
        force: p.has('f'),
        quiet: p.has('q'),
        test: p.has('t'),
        level,
    };
    let mut files = p.operands.clone();
    if files.is_empty() {
        files.push(OsString::from("-"));
    }
    let mut status = 0;
    for f in &files {
        let s = if f == "-" {
            stream_stdin(&tool, &o)
        } else {
            one_file(&tool, &o, f)
        };
        status = status.max(s);
    }
    status
}

/// Compresses or decompresses `r` into `w`. `Ok(false)` means not gzip data.
fn transform(o: &Opts, r: impl Read, w: &mut impl Write) -> io::Result<()> {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    if o.decompress {
        // Check the magic first: flate2 reports a short non-gzip input as a
        // truncated header, GNU as "not in gzip format".
        let head = r.fill_buf()?;
        if head.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unexpected end of file",
            ));
        }
        if head.len() < 2 && head[0] != 0x1f || head.len() >= 2 && head[..2] != [0x1f, 0x8b] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not in gzip format",
            ));
        }
        let mut d = MultiGzDecoder::new(r);
        if o.test {
            io::copy(&mut d, &mut io::sink())?;
        } else {
            io::copy(&mut d, w)?;
        }
    } else {
        let mut e = GzEncoder::new(w, Compression::new(o.level));
        io::copy(&mut r, &mut e)?;
        e.finish()?;
    }
    Ok(())
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            "not in gzip format".to_string()
        }
        io::ErrorKind::UnexpectedEof => "unexpected end of file".to_string(),
        _ => io_msg(e),
    }
}

fn stream_stdin(tool: &str, o: &Opts) -> i32 {
    let mut out = common::stdout();
    let r = transform(o, io::stdin().lock(), &mut out).and_then(|_| common::finish(&mut out));
    match r {
        Ok(()) => 0,
        Err(e) if common::is_broken_pipe(&e) => 0,
        Err(e) => {
            let _ = out.flush();
            if !o.quiet || e.kind() != io::ErrorKind::InvalidInput {
                eprintln!("{tool}: stdin: {}", describe(&e));
            }
            1
        }
    }
}

fn one_file(tool: &str, o: &Opts, f: &OsString) -> i32 {
    let name = f.to_string_lossy().into_owned();
    let meta = match fs::metadata(f) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{tool}: {name}: {}", io_msg(&e));
            return 1;
        }
    };
    if meta.is_dir() {
        eprintln!("{tool}: {name} is a directory -- ignored");
        return 2;
    }
    let input = match File::open(f) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{tool}: {name}: {}", io_msg(&e));
            return 1;
        }
    };
    if o.stdout || o.test {
        let mut out = common::stdout();
        let r = transform(o, input, &mut out).and_then(|_| common::finish(&mut out));
        return match r {
            Ok(()) => 0,
            Err(e) if common::is_broken_pipe(&e) => 0,
            Err(e) => {
                let _ = out.flush();
                eprintln!("{tool}: {name}: {}", describe(&e));
                1
            }
        };
    }
    let target: PathBuf = if o.decompress {
        if let Some(base) = name.strip_suffix(".gz").filter(|b| !b.is_empty()) {
            PathBuf::from(base)
        } else if let Some(base) = name.strip_suffix(".tgz").filter(|b| !b.is_empty()) {
            PathBuf::from(format!("{base}.tar"))
        } else {
            eprintln!("{tool}: {name}: unknown suffix -- ignored");
            return 2;
        }
    } else {
        if name.ends_with(".gz") && !o.force {
            eprintln!("{tool}: {name} already has .gz suffix -- unchanged");
            return 2;
        }
        PathBuf::from(format!("{name}.gz"))
    };
    if target.exists() && !o.force {
        eprintln!(
            "{tool}: {} already exists;\tnot overwritten",
            target.display()
        );
        return 2;
    }
    let out = match File::create(&target) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{tool}: {}: {}", target.display(), io_msg(&e));
            return 1;
        }
    };
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    let r = transform(o, input, &mut out).and_then(|_| out.flush());
    if let Err(e) = r {
        drop(out);
        let _ = fs::remove_file(&target);
        eprintln!("{tool}: {name}: {}", describe(&e));
        return 1;
    }
    if !o.keep
        && let Err(e) = fs::remove_file(f)
    {
        eprintln!("{tool}: {name}: {}", io_msg(&e));
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(decompress: bool) -> Opts {
        Opts {
            stdout: true,
            decompress,
            keep: true,
            force: false,
            quiet: false,
            test: false,
            level: 6,
        }
    }

    proptest! {
        #[test]
        fn round_trip(data in prop::collection::vec(any::<u8>(), 0..2000)) {
            let mut gz = Vec::new();
            transform(&opts(false), &data[..], &mut gz).unwrap();
            let mut back = Vec::new();
            transform(&opts(true), &gz[..], &mut back).unwrap();
            prop_assert_eq!(back, data);
        }
    }

    #[test]
    fn concatenated_members_and_garbage() {
        let mut gz = Vec::new();
        transform(&opts(false), &b"ab"[..], &mut gz).unwrap();
        let mut two = gz.clone();
        two.extend_from_slice(&gz);
        let mut back = Vec::new();
        transform(&opts(true), &two[..], &mut back).unwrap();
        assert_eq!(back, b"abab");
        assert!(transform(&opts(true), &b"not gzip"[..], &mut Vec::new()).is_err());
    }
}
