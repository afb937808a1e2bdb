//! `split [OPTION]... [INPUT [PREFIX]]`: `-l N` lines (default 1000), `-b
//! SIZE` bytes (suffixes K M G KB MB GB, KiB…), `-n N` equal byte chunks
//! (regular files only, as GNU), `-d`/`--numeric-suffixes[=FROM]`, `-a N`,
//! `--additional-suffix=S`. Without `-a`, suffixes widen as GNU's do
//! (`yz` → `zaaa`); with `-a` running out is an error (exit 1).
//! `-C`, `-n l/N`, `-n r/N`, `--filter` are rejected (exit 2).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use crate::common;
use crate::files::{getopt, io_msg};

const TOOL: &str = "split";

/// Generates output names: PREFIX + suffix + additional suffix.
struct Names {
    prefix: String,
    extra: String,
    numeric: bool,
    width: usize,
    fixed: bool,
    next: u64,
}

impl Names {
    fn digit(&self, d: u64) -> char {
        if self.numeric {
            char::from(b'0' + d as u8)
        } else {
            char::from(b'a' + d as u8)
        }
    }

    /// The next file name, or `None` when the suffixes are exhausted.
    fn next_name(&mut self) -> Option<String> {
        let radix: u64 = if self.numeric { 10 } else { 26 };
        let mut i = self.next;
        self.next += 1;
        let mut lead = String::new();
        let mut w = self.width;
        if self.fixed {
            if (w as u32) < 20 && i >= radix.checked_pow(w as u32)? {
                return None;
            }
        } else {
            // Tier k holds (radix-1)*radix^(w-1) names starting with a non-last digit.
            loop {
                let tier = (radix - 1).checked_mul(radix.checked_pow(w as u32 - 1)?)?;
                if i < tier {
                    break;
                }
                i -= tier;
                lead.push(self.digit(radix - 1));
                w += 1;
            }
        }
        let mut digits = vec![self.digit(0); w];
        for slot in digits.iter_mut().rev() {
            *slot = self.digit(i % radix);
            i /= radix;
        }
        Some(format!(
            "{}{lead}{}{}",
            self.prefix,
            digits.into_iter().collect::<String>(),
            self.extra
        ))
    }
}

/// Parses a GNU size (`10`, `1K`, `2MB`, `3KiB`).
fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let mult: u64 = match &s[split..] {
        "" => 1,
        "b" => 512,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

enum Mode {
    Lines(u64),
    Bytes(u64),
    Chunks(u64),
}

fn create(name: &str) -> io::Result<BufWriter<File>> {
    File::create(name).map(|f| BufWriter::with_capacity(64 * 1024, f))
}

fn exhausted() -> io::Error {
    io::Error::other("output file suffixes exhausted")
}

fn run(
    mode: &Mode,
    input: &mut dyn BufRead,
    names: &mut Names,
    size: Option<u64>,
) -> io::Result<()> {
    match *mode {
        Mode::Lines(n) => {
            let mut out: Option<BufWriter<File>> = None;
            let mut count = 0;
            let mut line = Vec::new();
            loop {
                line.clear();
                if input.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                if out.is_none() || count == n {
                    if let Some(mut o) = out.take() {
                        o.flush()?;
                    }
                    out = Some(create(&names.next_name().ok_or_else(exhausted)?)?);
                    count = 0;
                }
                if let Some(o) = out.as_mut() {
                    o.write_all(&line)?;
                }
                count += 1;
            }
            if let Some(mut o) = out {
                o.flush()?;
            }
        }
        Mode::Bytes(n) => {
            let mut buf = vec![0u8; 64 * 1024];
            let mut out: Option<BufWriter<File>> = None;
            let mut left = 0u64;
            loop {
                let got = input.read(&mut buf)?;
                if got == 0 {
                    break;
                }
                let mut chunk = &buf[..got];
                while !chunk.is_empty() {
                    if out.is_none() || left == 0 {
                        if let Some(mut o) = out.take() {
                            o.flush()?;
                        }
                        out = Some(create(&names.next_name().ok_or_else(exhausted)?)?);
                        left = n;
                    }
                    let take = (left.min(chunk.len() as u64)) as usize;
                    if let Some(o) = out.as_mut() {
                        o.write_all(&chunk[..take])?;
                    }
                    left -= take as u64;
                    chunk = &chunk[take..];
                }
            }
            if let Some(mut o) = out {
                o.flush()?;
            }
        }
        Mode::Chunks(k) => {
            let total = size.unwrap_or(0);
            let each = total / k;
            for i in 0..k {
                let len = if i == k - 1 {
                    total - each * (k - 1)
                } else {
                    each
                };
                let mut o = create(&names.next_name().ok_or_else(exhausted)?)?;
                io::copy(&mut input.take(len), &mut o)?;
                o.flush()?;
            }
        }
    }
    Ok(())
}

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("lines", 'l', true),
        ("bytes", 'b', true),
        ("number", 'n', true),
        ("suffix-length", 'a', true),
        ("numeric-suffixes", 'd', false),
        ("additional-suffix", 'S', true),
        ("line-bytes", 'C', true),
        ("filter", 'F', true),
        ("elide-empty-files", 'e', false),
        ("verbose", 'v', false),
    ];
    let p = match getopt(&args, "dev", "lbnaC", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    for (c, what) in [
        ('C', "-C/--line-bytes"),
        ('F', "--filter"),
        ('e', "-e"),
        ('v', "--verbose"),
    ] {
        if p.has(c) {
            return common::usage_error(TOOL, format!("{what} is not supported in wasi-coreutils"));
        }
    }
    let modes = p
        .opts
        .iter()
        .filter(|(c, _)| matches!(c, 'l' | 'b' | 'n'))
        .count();
    if modes > 1 {
        return common::usage_error(TOOL, "cannot split in more than one way");
    }
    let mode = if let Some(l) = p.value('l') {
        match l.parse::<u64>() {
            Ok(n) if n > 0 => Mode::Lines(n),
            _ => {
                eprintln!("{TOOL}: invalid number of lines: '{l}'");
                return 1;
            }
        }
    } else if let Some(b) = p.value('b') {
        match parse_size(b) {
            Some(n) if n > 0 => Mode::Bytes(n),
            _ => {
                eprintln!("{TOOL}: invalid number of bytes: '{b}'");
                return 1;
            }
        }
    } else if let Some(n) = p.value('n') {
        match n.parse::<u64>() {
            Ok(k) if k > 0 => Mode::Chunks(k),
            _ => {
                return common::usage_error(
                    TOOL,
                    format!("invalid or unsupported number of chunks: '{n}' (only N)"),
                );
            }
        }
    } else {
        Mode::Lines(1000)
    };
    let (width, fixed) = match p.value('a').map(str::parse::<usize>) {
        None => (2, false),
        Some(Ok(w)) if w > 0 => (w, true),
        Some(_) => {
            eprintln!(
                "{TOOL}: invalid suffix length: '{}'",
                p.value('a').unwrap_or("")
            );
            return 1;
        }
    };
    if p.operands.len() > 2 {
        return common::usage_error(
            TOOL,
            format!("extra operand '{}'", p.operands[2].to_string_lossy()),
        );
    }
    let input_name = p
        .operands
        .first()
        .map_or("-".to_string(), |s| s.to_string_lossy().into_owned());
    let prefix = p
        .operands
        .get(1)
        .map_or("x".to_string(), |s| s.to_string_lossy().into_owned());
    let mut names = Names {
        prefix,
        extra: p.value('S').unwrap_or("").to_string(),
        numeric: p.has('d'),
        width,
        fixed,
        next: 0,
    };
    let (mut input, size): (Box<dyn BufRead>, Option<u64>) = if input_name == "-" {
        if matches!(mode, Mode::Chunks(_)) {
            eprintln!("{TOOL}: -: cannot determine file size");
            return 1;
        }
        (
            Box::new(BufReader::with_capacity(64 * 1024, io::stdin())),
            None,
        )
    } else {
        match File::open(&input_name) {
            Ok(f) => {
                let size = f.metadata().map(|m| m.len()).ok();
                (Box::new(BufReader::with_capacity(64 * 1024, f)), size)
            }
            Err(e) => {
                eprintln!(
                    "{TOOL}: cannot open '{input_name}' for reading: {}",
                    io_msg(&e)
                );
                return 1;
            }
        }
    };
    match run(&mode, &mut input, &mut names, size) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{TOOL}: {}", io_msg(&e));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(numeric: bool, width: usize, fixed: bool) -> Names {
        Names {
            prefix: "x".into(),
            extra: String::new(),
            numeric,
            width,
            fixed,
            next: 0,
        }
    }

    #[test]
    fn suffixes_widen_like_gnu() {
        let mut n = names(false, 2, false);
        let all: Vec<String> = (0..700).filter_map(|_| n.next_name()).collect();
        assert_eq!(all[0], "xaa");
        assert_eq!(all[649], "xyz");
        assert_eq!(all[650], "xzaaa");
        let mut d = names(true, 2, false);
        let all: Vec<String> = (0..91).filter_map(|_| d.next_name()).collect();
        assert_eq!((all[89].as_str(), all[90].as_str()), ("x89", "x9000"));
        let mut f = names(true, 1, true);
        assert_eq!((0..11).filter_map(|_| f.next_name()).count(), 10);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1K"), Some(1024));
        assert_eq!(parse_size("2MB"), Some(2_000_000));
        assert_eq!(parse_size("10x"), None);
    }
}
