//! `base64`: GNU-compatible encode (`-w COLS`, default 76, `-w 0` no
//! wrapping and no final newline) and decode (`-d`, newlines ignored, `-i` ignores all
//! non-alphabet bytes), streaming in bounded memory. Invalid input when
//! decoding prints what was decoded so far, then `base64: invalid input`,
//! exit status 1, as GNU does.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::common;
use crate::files::{getopt, io_msg};

const TOOL: &str = "base64";

pub fn main(args: Vec<OsString>) -> i32 {
    let longs = [
        ("decode", 'd', false),
        ("ignore-garbage", 'i', false),
        ("wrap", 'w', true),
    ];
    let p = match getopt(&args, "di", "w", &longs) {
        Ok(p) => p,
        Err(e) => return common::usage_error(TOOL, e),
    };
    let wrap = match p.value('w').map(str::parse::<usize>) {
        None => 76,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return common::usage_error(
                TOOL,
                format!("invalid wrap size: '{}'", p.value('w').unwrap_or("")),
            );
        }
    };
    if p.operands.len() > 1 {
        return common::usage_error(
            TOOL,
            format!("extra operand '{}'", p.operands[1].to_string_lossy()),
        );
    }
    let mut input: Box<dyn Read> = match p.operands.first() {
        Some(f) if f != "-" => match File::open(f) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("{TOOL}: {}: {}", f.to_string_lossy(), io_msg(&e));
                return 1;
            }
        },
        _ => Box::new(io::stdin().lock()),
    };
    let mut out = common::stdout();
    let r = if p.has('d') {
        decode(&mut input, &mut out, p.has('i'))
    } else {
        encode(&mut input, &mut out, wrap)
    };
    let r = r.and_then(|ok| common::finish(&mut out).map(|_| ok));
    match r {
        Ok(true) => 0,
        Ok(false) => {
            eprintln!("{TOOL}: invalid input");
            1
        }
        Err(e) if common::is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("{TOOL}: {}", io_msg(&e));
            1
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Encodes in chunks that are multiples of 3 bytes so no padding appears mid-stream.
fn encode(r: &mut impl Read, w: &mut impl Write, wrap: usize) -> io::Result<bool> {
    let mut buf = vec![0u8; 3 * 16 * 1024];
    let mut col = 0;
    let mut any = false;
    loop {
        let n = read_full(r, &mut buf)?;
        if n == 0 {
            break;
        }
        any = true;
        let text = STANDARD.encode(&buf[..n]);
        if wrap == 0 {
            w.write_all(text.as_bytes())?;
        } else {
            let mut t = text.as_bytes();
            while !t.is_empty() {
                let take = (wrap - col).min(t.len());
                w.write_all(&t[..take])?;
                col += take;
                t = &t[take..];
                if col == wrap {
                    w.write_all(b"\n")?;
                    col = 0;
                }
            }
        }
        if n < buf.len() {
            break;
        }
    }
    if any && wrap > 0 && col > 0 {
        w.write_all(b"\n")?;
    }
    Ok(true)
}

fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes 4-character groups; `=` padding ends a group early. Returns
/// `Ok(false)` on invalid input (after writing what decoded cleanly).
fn decode(r: &mut impl Read, w: &mut impl Write, ignore_garbage: bool) -> io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut group: Vec<u8> = Vec::with_capacity(4);
    let mut out = Vec::with_capacity(48 * 1024);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if b == b'\n' || (ignore_garbage && b != b'=' && sextet(b).is_none()) {
                continue;
            }
            if b != b'=' && sextet(b).is_none() {
                w.write_all(&out)?;
                return Ok(false);
            }
            group.push(b);
            if group.len() == 4 {
                if !decode_group(&group, &mut out) {
                    w.write_all(&out)?;
                    return Ok(false);
                }
                group.clear();
            }
        }
        w.write_all(&out)?;
        out.clear();
    }
    if group.is_empty() {
        return Ok(true);
    }
    // A short final group: GNU still emits the bytes it can.
    let vals: Vec<u8> = group
        .iter()
        .take_while(|&&b| b != b'=')
        .filter_map(|&b| sextet(b))
        .collect();
    if vals.len() >= 2 {
        out.push((vals[0] << 2) | (vals[1] >> 4));
    }
    if vals.len() >= 3 {
        out.push((vals[1] << 4) | (vals[2] >> 2));
    }
    w.write_all(&out)?;
    Ok(false)
}

fn decode_group(g: &[u8], out: &mut Vec<u8>) -> bool {
    let pad = g.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 || g[..4 - pad].contains(&b'=') {
        return false;
    }
    let v: Vec<u8> = g[..4 - pad].iter().filter_map(|&b| sextet(b)).collect();
    out.push((v[0] << 2) | (v[1] >> 4));
    if pad < 2 {
        out.push((v[1] << 4) | (v[2] >> 2));
    }
    if pad < 1 {
        out.push((v[2] << 6) | v[3]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(data: &[u8], wrap: usize) -> String {
        let mut out = Vec::new();
        encode(&mut &data[..], &mut out, wrap).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn dec(text: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let ok = decode(&mut &text[..], &mut out, false).unwrap();
        (out, ok)
    }

    #[test]
    fn gnu_samples() {
        assert_eq!(enc(b"hello\n", 76), "aGVsbG8K\n");
        assert_eq!(enc(b"hello\n", 4), "aGVs\nbG8K\n");
        assert_eq!(enc(b"", 76), "");
        assert_eq!(dec(b"YQ==YQ=="), (b"aa".to_vec(), true));
        assert_eq!(dec(b"YQ"), (b"a".to_vec(), false));
        assert_eq!(dec(b"Y Q=="), (Vec::new(), false));
        assert_eq!(dec(b"YQ=\n=\n"), (b"a".to_vec(), true));
    }

    proptest! {
        #[test]
        fn round_trip(data in prop::collection::vec(any::<u8>(), 0..300), wrap in 0usize..80) {
            let text = enc(&data, wrap);
            prop_assert_eq!(dec(text.as_bytes()), (data, true));
        }
    }
}
