//! `diff [-u | -U N] [-q] [-s] FILE1 FILE2`: compares two text files line
//! by line (`-` is standard input) and prints GNU diff's normal format, or
//! its unified format with `-u`/`-U N` (`--unified[=N]`). Exit 0 when the
//! files are the same, 1 when they differ, 2 on trouble.
//!
//! The edit script is a shortest one, found with Myers' O(ND) algorithm
//! (linear space, divide and conquer on the middle snake), after the
//! common prefix and suffix are set aside; each run of changed lines is
//! then slid as GNU diff slides it: merged with neighbouring runs where
//! equal lines allow, as far down as it goes, then back up to meet a
//! change in the other file. On inputs with one natural alignment the
//! output is GNU's byte for byte; where several shortest scripts exist
//! and GNU's heuristics (for very large inputs) pick another, the hunks
//! may differ while still being a correct, minimal diff. `-q` prints
//! `Files A and B differ`, `-s` reports identical files; a file holding
//! a NUL byte is binary (`Binary files A and B differ`). Unified headers
//! carry the files' modification times as GNU prints them (UTC).
//! Other options (`-c`, `-r`, `-i`, `-w`, ...) are refused.

use std::ffi::OsString;
use std::io::Write;

use crate::files::datefmt::civil_from_days;
use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("unified", HasArg::Optional, 'U'),
    ("brief", HasArg::No, 'q'),
    ("report-identical-files", HasArg::No, 's'),
    ("context", HasArg::Optional, 'C'),
    ("recursive", HasArg::No, 'r'),
    ("ignore-case", HasArg::No, 'i'),
    ("ignore-all-space", HasArg::No, 'w'),
    ("ignore-space-change", HasArg::No, 'b'),
    ("ignore-blank-lines", HasArg::No, 'B'),
    ("text", HasArg::No, 'a'),
];
const SPEC: Spec = Spec::new("uqscriwbBaN", "UC", LONG);

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(|m| Fail::Exit(usage2(tool, &m)))?;
        let mut unified: Option<usize> = None;
        let (mut brief, mut report_same) = (false, false);
        for (k, v) in &p.opts {
            match k {
                'u' => unified = Some(3),
                'U' => {
                    let n = match v.as_deref() {
                        None => 3,
                        Some(v) => args::parse_count(v)
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| {
                                Fail::Exit(usage2(
                                    tool,
                                    &format!(
                                        "invalid context length '{}'",
                                        String::from_utf8_lossy(v)
                                    ),
                                ))
                            })?,
                    };
                    unified = Some(n);
                }
                'q' => brief = true,
                's' => report_same = true,
                'C' | 'c' => return util::unsupported("context format (-c, -C) is not supported"),
                'r' => return util::unsupported("-r (directories) is not supported"),
                other => return util::unsupported(format!("-{other} is not supported")),
            }
        }
        if p.operands.len() != 2 {
            let msg = if p.operands.len() < 2 {
                format!(
                    "missing operand after '{}'",
                    String::from_utf8_lossy(p.operands.last().map_or(b"diff".as_slice(), |v| v))
                )
            } else {
                format!(
                    "extra operand '{}'",
                    String::from_utf8_lossy(&p.operands[2])
                )
            };
            return Err(Fail::Exit(usage2(tool, &msg)));
        }
        let names = [p.operands[0].clone(), p.operands[1].clone()];
        let mut data = [Vec::new(), Vec::new()];
        for (n, d) in names.iter().zip(data.iter_mut()) {
            let read = input::open(n).and_then(|mut r| input::read_all(&mut *r, d));
            if let Err(e) = read {
                input::report(tool, n, &e);
                return Err(Fail::Exit(2));
            }
        }
        let shown = |i: usize| String::from_utf8_lossy(&names[i]).into_owned();
        let mut out = crate::common::stdout();
        if data[0] == data[1] {
            if report_same {
                writeln!(out, "Files {} and {} are identical", shown(0), shown(1))?;
            }
            out.flush()?;
            return Ok(0);
        }
        if brief {
            writeln!(out, "Files {} and {} differ", shown(0), shown(1))?;
            out.flush()?;
            return Ok(1);
        }
        if data.iter().any(|d| d.contains(&0)) {
            writeln!(out, "Binary files {} and {} differ", shown(0), shown(1))?;
            out.flush()?;
            return Ok(1);
        }
        let a = split_lines(&data[0]);
        let b = split_lines(&data[1]);
        let (ca, cb) = changes(&a, &b);
        match unified {
            None => normal(&mut out, &a, &b, &ca, &cb)?,
            Some(ctx) => {
                for (i, name) in names.iter().enumerate() {
                    let sign = if i == 0 { "---" } else { "+++" };
                    writeln!(out, "{sign} {}\t{}", shown(i), mtime(name))?;
                }
                unified_hunks(&mut out, &a, &b, &ca, &cb, ctx)?;
            }
        }
        out.flush()?;
        Ok(1)
    })
}

/// GNU diff's status for bad usage is 2, with its `--help` hint.
fn usage2(tool: &str, msg: &str) -> i32 {
    eprintln!("{tool}: {msg}");
    eprintln!("{tool}: Try '{tool} --help' for more information.");
    2
}

/// Lines with their newline (the last one may lack it).
fn split_lines(d: &[u8]) -> Vec<&[u8]> {
    d.split_inclusive(|&c| c == b'\n').collect()
}

/// A file's modification time as GNU diff's unified header shows it
/// (`2026-12-06 13:49:14.603854972 +0000`); now for standard input.
fn mtime(name: &[u8]) -> String {
    let t = if name == b"-" {
        std::time::SystemTime::now()
    } else {
        std::fs::metadata(input::path_of(name))
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| std::time::SystemTime::now())
    };
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02} {:02}:{:02}:{:02}.{:09} +0000",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Which lines of `a` are deleted and which of `b` inserted, in a shortest
/// edit script, runs slid as GNU diff slides them.
fn changes(a: &[&[u8]], b: &[&[u8]]) -> (Vec<bool>, Vec<bool>) {
    // Lines compared by number: equal lines get equal ids.
    let mut ids = std::collections::HashMap::new();
    let mut id = |l: &[u8]| {
        let n = ids.len();
        *ids.entry(l.to_vec()).or_insert(n)
    };
    let ea: Vec<usize> = a.iter().map(|l| id(l)).collect();
    let eb: Vec<usize> = b.iter().map(|l| id(l)).collect();
    let mut ca = vec![false; a.len()];
    let mut cb = vec![false; b.len()];
    let n = ea.len().max(eb.len()) * 2 + 2;
    let mut fwd = vec![0isize; n * 2 + 1];
    let mut bwd = vec![0isize; n * 2 + 1];
    compare(
        &ea,
        &eb,
        0,
        ea.len(),
        0,
        eb.len(),
        &mut ca,
        &mut cb,
        &mut fwd,
        &mut bwd,
    );
    shift(&ea, &mut ca, &cb);
    shift(&eb, &mut cb, &ca);
    (ca, cb)
}

/// Marks the changes between `a[xo..xl]` and `b[yo..yl]`.
#[allow(clippy::too_many_arguments)]
fn compare(
    a: &[usize],
    b: &[usize],
    mut xo: usize,
    mut xl: usize,
    mut yo: usize,
    mut yl: usize,
    ca: &mut [bool],
    cb: &mut [bool],
    fwd: &mut [isize],
    bwd: &mut [isize],
) {
    // The divide and conquer recursion is replaced by a work list: its
    // depth would be the number of differences.
    let mut work = vec![(xo, xl, yo, yl)];
    while let Some(w) = work.pop() {
        (xo, xl, yo, yl) = w;
        while xo < xl && yo < yl && a[xo] == b[yo] {
            xo += 1;
            yo += 1;
        }
        while xl > xo && yl > yo && a[xl - 1] == b[yl - 1] {
            xl -= 1;
            yl -= 1;
        }
        if xo == xl {
            cb[yo..yl].iter_mut().for_each(|c| *c = true);
        } else if yo == yl {
            ca[xo..xl].iter_mut().for_each(|c| *c = true);
        } else {
            let (xm, ym) = middle_snake(a, b, xo, xl, yo, yl, fwd, bwd);
            // Lower half last on the stack: processed first (order does
            // not matter for the result).
            work.push((xm, xl, ym, yl));
            work.push((xo, xm, yo, ym));
        }
    }
}

/// A point on a shortest path from (xo, yo) to (xl, yl), both boxes
/// non-empty, found by running the forward and backward searches until
/// they overlap (Myers 1986, section 4b).
#[allow(clippy::too_many_arguments)]
fn middle_snake(
    a: &[usize],
    b: &[usize],
    xo: usize,
    xl: usize,
    yo: usize,
    yl: usize,
    fwd: &mut [isize],
    bwd: &mut [isize],
) -> (usize, usize) {
    let (xo, xl, yo, yl) = (xo as isize, xl as isize, yo as isize, yl as isize);
    let off = (fwd.len() / 2) as isize;
    let dmin = xo - yl;
    let dmax = xl - yo;
    let fmid = xo - yo;
    let bmid = xl - yl;
    let odd = (fmid - bmid) & 1 != 0;
    let ix = |d: isize| (d + off) as usize;
    fwd[ix(fmid)] = xo;
    bwd[ix(bmid)] = xl;
    let (mut fmin, mut fmax, mut bmin, mut bmax) = (fmid, fmid, bmid, bmid);
    loop {
        // Extend the forward search by one edit.
        if fmin > dmin {
            fmin -= 1;
            fwd[ix(fmin - 1)] = -1;
        } else {
            fmin += 1;
        }
        if fmax < dmax {
            fmax += 1;
            fwd[ix(fmax + 1)] = -1;
        } else {
            fmax -= 1;
        }
        let mut d = fmax;
        while d >= fmin {
            let lo = fwd[ix(d - 1)];
            let hi = fwd[ix(d + 1)];
            let mut x = if lo >= hi { lo + 1 } else { hi };
            let mut y = x - d;
            while x < xl && y < yl && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            fwd[ix(d)] = x;
            if odd && bmin <= d && d <= bmax && bwd[ix(d)] <= x {
                return (x as usize, y as usize);
            }
            d -= 2;
        }
        // Extend the backward search by one edit.
        if bmin > dmin {
            bmin -= 1;
            bwd[ix(bmin - 1)] = isize::MAX;
        } else {
            bmin += 1;
        }
        if bmax < dmax {
            bmax += 1;
            bwd[ix(bmax + 1)] = isize::MAX;
        } else {
            bmax -= 1;
        }
        let mut d = bmax;
        while d >= bmin {
            let lo = bwd[ix(d - 1)];
            let hi = bwd[ix(d + 1)];
            let mut x = if lo < hi { lo } else { hi - 1 };
            let mut y = x - d;
            while x > xo && y > yo && a[(x - 1) as usize] == b[(y - 1) as usize] {
                x -= 1;
                y -= 1;
            }
            bwd[ix(d)] = x;
            if !odd && fmin <= d && d <= fmax && x <= fwd[ix(d)] {
                return (x as usize, y as usize);
            }
            d -= 2;
        }
    }
}

/// Slides each run of changed lines of one file (`changed`, lines `eq`)
/// the way GNU diff does: up while the line before the run equals its last
/// line (merging with runs above), then down while its first line equals
/// the line after it (merging with runs below), until it stops growing;
/// then back up to where it last lined up with a run of changes in the
/// other file, if it passed one.
fn shift(eq: &[usize], changed: &mut [bool], other: &[bool]) {
    let n = changed.len();
    // gap[k]: the other file has changed lines right after its k-th
    // unchanged line (both files have the same number of unchanged lines,
    // and sliding one file's runs does not change that number).
    let mut gap = vec![false];
    for &c in other {
        if c {
            *gap.last_mut().unwrap_or(&mut false) = true;
        } else {
            gap.push(false);
        }
    }
    let has_gap = |k: usize| gap.get(k).copied().unwrap_or(false);
    // `k`: unchanged lines before `i`.
    let (mut i, mut k) = (0usize, 0usize);
    loop {
        while i < n && !changed[i] {
            i += 1;
            k += 1;
        }
        if i >= n {
            return;
        }
        let mut start = i;
        while i < n && changed[i] {
            i += 1;
        }
        let mut corresponding;
        loop {
            let len = i - start;
            while start > 0 && eq[start - 1] == eq[i - 1] {
                start -= 1;
                changed[start] = true;
                i -= 1;
                changed[i] = false;
                k -= 1;
                while start > 0 && changed[start - 1] {
                    start -= 1;
                }
            }
            corresponding = if has_gap(k) { i } else { n };
            while i < n && eq[start] == eq[i] {
                changed[start] = false;
                start += 1;
                changed[i] = true;
                i += 1;
                k += 1;
                while i < n && changed[i] {
                    i += 1;
                }
                if has_gap(k) {
                    corresponding = i;
                }
            }
            if len == i - start {
                break;
            }
        }
        while corresponding < i {
            start -= 1;
            changed[start] = true;
            i -= 1;
            changed[i] = false;
            k -= 1;
        }
    }
}

/// One hunk: lines `a[a0..a1]` replaced by `b[b0..b1]`.
struct Hunk {
    a0: usize,
    a1: usize,
    b0: usize,
    b1: usize,
}

fn hunks(ca: &[bool], cb: &[bool]) -> Vec<Hunk> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < ca.len() || j < cb.len() {
        if i < ca.len() && j < cb.len() && !ca[i] && !cb[j] {
            i += 1;
            j += 1;
            continue;
        }
        let (a0, b0) = (i, j);
        while i < ca.len() && ca[i] {
            i += 1;
        }
        while j < cb.len() && cb[j] {
            j += 1;
        }
        out.push(Hunk {
            a0,
            a1: i,
            b0,
            b1: j,
        });
    }
    out
}

fn write_line(out: &mut impl Write, prefix: &[u8], line: &[u8]) -> std::io::Result<()> {
    out.write_all(prefix)?;
    out.write_all(line)?;
    if line.last() != Some(&b'\n') {
        out.write_all(b"\n\\ No newline at end of file\n")?;
    }
    Ok(())
}

/// `3`, or `3,5`: lines `from+1..=to` (normal format).
fn range(from: usize, to: usize) -> String {
    if to == from + 1 {
        format!("{to}")
    } else if to <= from {
        format!("{from}")
    } else {
        format!("{},{to}", from + 1)
    }
}

fn normal(
    out: &mut impl Write,
    a: &[&[u8]],
    b: &[&[u8]],
    ca: &[bool],
    cb: &[bool],
) -> std::io::Result<()> {
    for h in hunks(ca, cb) {
        let op = match (h.a0 == h.a1, h.b0 == h.b1) {
            (true, _) => 'a',
            (_, true) => 'd',
            _ => 'c',
        };
        writeln!(out, "{}{op}{}", range(h.a0, h.a1), range(h.b0, h.b1))?;
        for l in &a[h.a0..h.a1] {
            write_line(out, b"< ", l)?;
        }
        if op == 'c' {
            out.write_all(b"---\n")?;
        }
        for l in &b[h.b0..h.b1] {
            write_line(out, b"> ", l)?;
        }
    }
    Ok(())
}

/// `@@` ranges: `start,count`, `start` alone for one line, and for none
/// the line before (`3,0`).
fn urange(from: usize, to: usize) -> String {
    match to - from {
        0 => format!("{from},0"),
        1 => format!("{}", from + 1),
        n => format!("{},{n}", from + 1),
    }
}

fn unified_hunks(
    out: &mut impl Write,
    a: &[&[u8]],
    b: &[&[u8]],
    ca: &[bool],
    cb: &[bool],
    ctx: usize,
) -> std::io::Result<()> {
    let hs = hunks(ca, cb);
    let mut k = 0;
    while k < hs.len() {
        // Group hunks whose gaps are at most twice the context.
        let mut e = k;
        while e + 1 < hs.len() && hs[e + 1].a0 - hs[e].a1 <= 2 * ctx {
            e += 1;
        }
        let a0 = hs[k].a0.saturating_sub(ctx);
        let b0 = hs[k].b0 - (hs[k].a0 - a0);
        let a1 = (hs[e].a1 + ctx).min(a.len());
        let b1 = hs[e].b1 + (a1 - hs[e].a1);
        writeln!(out, "@@ -{} +{} @@", urange(a0, a1), urange(b0, b1))?;
        let mut i = a0;
        for h in &hs[k..=e] {
            while i < h.a0 {
                write_line(out, b" ", a[i])?;
                i += 1;
            }
            for l in &a[h.a0..h.a1] {
                write_line(out, b"-", l)?;
            }
            for l in &b[h.b0..h.b1] {
                write_line(out, b"+", l)?;
            }
            i = h.a1;
        }
        while i < a1 {
            write_line(out, b" ", a[i])?;
            i += 1;
        }
        k = e + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff_normal(a: &str, b: &str) -> String {
        let la = split_lines(a.as_bytes());
        let lb = split_lines(b.as_bytes());
        let (ca, cb) = changes(&la, &lb);
        let mut out = Vec::new();
        normal(&mut out, &la, &lb, &ca, &cb).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn normal_format_as_gnu() {
        // Each expected output is GNU diff 3.x's.
        assert_eq!(diff_normal("a\nb\nc\n", "a\nc\n"), "2d1\n< b\n");
        assert_eq!(diff_normal("a\nc\n", "a\nb\nc\n"), "1a2\n> b\n");
        assert_eq!(
            diff_normal("a\nb\n", "a\nc"),
            "2c2\n< b\n---\n> c\n\\ No newline at end of file\n"
        );
        // A run of equal lines: the change slides to the last one.
        assert_eq!(diff_normal("x\na\na\ny\n", "x\na\ny\n"), "3d2\n< a\n");
        assert_eq!(diff_normal("", "a\nb\n"), "0a1,2\n> a\n> b\n");
        assert_eq!(diff_normal("a\nb\n", ""), "1,2d0\n< a\n< b\n");
    }

    #[test]
    fn shortest_script() {
        let a: Vec<&[u8]> = "abcabba"
            .split("")
            .filter(|s| !s.is_empty())
            .map(str::as_bytes)
            .collect();
        let b: Vec<&[u8]> = "cbabac"
            .split("")
            .filter(|s| !s.is_empty())
            .map(str::as_bytes)
            .collect();
        let (ca, cb) = changes(&a, &b);
        let edits = ca.iter().filter(|c| **c).count() + cb.iter().filter(|c| **c).count();
        assert_eq!(edits, 5, "Myers' example has distance 5");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_428), (2025, 12, 6));
    }
}
