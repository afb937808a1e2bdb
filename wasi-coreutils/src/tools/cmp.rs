//! `cmp FILE1 [FILE2]`: compares two files byte by byte (`-` or a missing
//! FILE2 is standard input). Silent and exit 0 when equal; otherwise GNU's
//! `FILE1 FILE2 differ: char N, line L` on stdout (its C-locale wording),
//! or `cmp: EOF on NAME after byte N, line L` on stderr when one is a
//! prefix of the other, and exit 1; trouble is exit 2. `-s` (`--quiet`,
//! `--silent`) prints nothing, `-n LIMIT` compares at most LIMIT bytes.
//! `-l`, `-b`, `-i` and skip operands are refused.

use std::ffi::OsString;
use std::io::{Read, Write};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("quiet", HasArg::No, 's'),
    ("silent", HasArg::No, 's'),
    ("bytes", HasArg::Yes, 'n'),
    ("verbose", HasArg::No, 'l'),
    ("print-bytes", HasArg::No, 'b'),
    ("ignore-initial", HasArg::Yes, 'i'),
];
const SPEC: Spec = Spec::new("slb", "ni", LONG);

/// Chunk read from each file at a time.
const CHUNK: usize = 64 * 1024;

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(|m| Fail::Exit(usage2(tool, &m)))?;
        let mut silent = false;
        let mut limit = u64::MAX;
        for (k, v) in &p.opts {
            match k {
                's' => silent = true,
                'n' => {
                    limit = args::parse_size(v.as_deref().unwrap_or_default())
                        .ok_or_else(|| Fail::Exit(usage2(tool, "invalid --bytes value")))?
                }
                'l' => return util::unsupported("-l (--verbose) is not supported"),
                'b' => return util::unsupported("-b (--print-bytes) is not supported"),
                'i' => return util::unsupported("-i (--ignore-initial) is not supported"),
                _ => {}
            }
        }
        let names: Vec<Vec<u8>> = match p.operands.len() {
            0 => return Err(Fail::Exit(usage2(tool, "missing operand after 'cmp'"))),
            1 => vec![p.operands[0].clone(), b"-".to_vec()],
            2 => p.operands.clone(),
            _ => return util::unsupported("skip operands are not supported"),
        };
        let mut files = Vec::with_capacity(2);
        for n in &names {
            match input::open(n) {
                Ok(r) => files.push(r),
                Err(e) => {
                    input::report(tool, n, &e);
                    return Err(Fail::Exit(2));
                }
            }
        }
        let (mut a, mut b) = (files.remove(0), files.remove(0));
        compare(tool, &names, &mut *a, &mut *b, limit, silent)
    })
}

/// GNU cmp's status for bad usage is 2, with its `--help` hint.
fn usage2(tool: &str, msg: &str) -> i32 {
    eprintln!("{tool}: {msg}");
    eprintln!("{tool}: Try '{tool} --help' for more information.");
    2
}

fn compare(
    tool: &str,
    names: &[Vec<u8>],
    a: &mut dyn Read,
    b: &mut dyn Read,
    limit: u64,
    silent: bool,
) -> Result<i32, Fail> {
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let (mut offset, mut line) = (0u64, 1u64);
    let rd = |e: std::io::Error, n: &[u8]| {
        input::report(tool, n, &e);
        Fail::Exit(2)
    };
    loop {
        let want = usize::try_from((limit - offset).min(CHUNK as u64)).unwrap_or(CHUNK);
        if want == 0 {
            return Ok(0);
        }
        let na = input::fill(a, &mut ba[..want]).map_err(|e| rd(e, &names[0]))?;
        let nb = input::fill(b, &mut bb[..want]).map_err(|e| rd(e, &names[1]))?;
        let common = na.min(nb);
        if let Some(i) = (0..common).find(|&i| ba[i] != bb[i]) {
            if !silent {
                line += ba[..i].iter().filter(|&&c| c == b'\n').count() as u64;
                let mut out = crate::common::stdout();
                writeln!(
                    out,
                    "{} {} differ: char {}, line {}",
                    String::from_utf8_lossy(&names[0]),
                    String::from_utf8_lossy(&names[1]),
                    offset + i as u64 + 1,
                    line
                )?;
                out.flush()?;
            }
            return Ok(1);
        }
        line += ba[..common].iter().filter(|&&c| c == b'\n').count() as u64;
        offset += common as u64;
        if na != nb {
            if !silent {
                let short = if na < nb { &names[0] } else { &names[1] };
                // GNU counts the lines before the end: a final newline
                // ends the last one.
                let ended = if common > 0 && ba[common - 1] == b'\n' {
                    line - 1
                } else {
                    line
                };
                let at = if offset == 0 {
                    String::from("which is empty")
                } else {
                    format!("after byte {offset}, line {}", ended.max(1))
                };
                eprintln!("{tool}: EOF on {} {at}", String::from_utf8_lossy(short));
            }
            return Ok(1);
        }
        if na < want {
            return Ok(0);
        }
    }
}
