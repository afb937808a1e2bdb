//! `join`: joins lines of two sorted files on a common field. `-t CHAR`,
//! `-1 F`, `-2 F`, `-j F`, `-a 1|2`, `-v 1|2`, `-o LIST|auto`, `-e EMPTY`,
//! `-i`, `-z`, `--check-order`/`--nocheck-order`, following GNU join.c
//! (including its disorder warning once unpairable lines were seen, which
//! makes the exit status 1). `--header` is unsupported.

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::cmp::Ordering;
use std::ffi::OsString;
use std::io::{Read, Write};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("ignore-case", HasArg::No, 'i'),
    ("check-order", HasArg::No, '\u{1}'),
    ("nocheck-order", HasArg::No, '\u{2}'),
    ("zero-terminated", HasArg::No, 'z'),
    ("header", HasArg::No, '\u{3}'),
];
const SPEC: Spec = Spec::new("iz", "12aejotv", LONG);

/// One output field spec: `0` (the join field) or file (0/1) and field index (0-based).
#[derive(Debug, Clone, Copy, PartialEq)]
enum OutField {
    Join,
    Field(usize, usize),
}

struct Cfg {
    tab: Option<u8>,
    jf: [usize; 2],
    icase: bool,
    out: Option<Vec<OutField>>,
    auto: bool,
    auto_counts: [usize; 2],
    empty: Option<Vec<u8>>,
    term: u8,
}

/// A line split into fields.
struct Line {
    text: Vec<u8>,
    fields: Vec<(usize, usize)>,
}

impl Cfg {
    fn split(&self, text: Vec<u8>) -> Line {
        let mut fields = Vec::new();
        match self.tab {
            Some(t) => {
                if !text.is_empty() {
                    let mut s = 0;
                    for p in memchr::memchr_iter(t, &text) {
                        fields.push((s, p));
                        s = p + 1;
                    }
                    fields.push((s, text.len()));
                }
            }
            None => {
                let blank = |c: u8| c == b' ' || c == b'\t' || c == b'\n';
                let mut i = 0;
                while i < text.len() {
                    while i < text.len() && blank(text[i]) {
                        i += 1;
                    }
                    if i >= text.len() {
                        break;
                    }
                    let s = i;
                    while i < text.len() && !blank(text[i]) {
                        i += 1;
                    }
                    fields.push((s, i));
                }
            }
        }
        Line { text, fields }
    }

    fn field<'a>(&self, l: &'a Line, i: usize) -> Option<&'a [u8]> {
        l.fields.get(i).map(|&(s, e)| &l.text[s..e])
    }

    fn keycmp(&self, a: &Line, ai: usize, b: &Line, bi: usize) -> Ordering {
        let ka = self.field(a, self.jf[ai]).unwrap_or_default();
        let kb = self.field(b, self.jf[bi]).unwrap_or_default();
        if self.icase {
            ka.iter()
                .map(u8::to_ascii_lowercase)
                .cmp(kb.iter().map(u8::to_ascii_lowercase))
        } else {
            ka.cmp(kb)
        }
    }

    /// A field as printed: missing or empty fields become the `-e` filler.
    fn filled<'a>(&'a self, v: Option<&'a [u8]>) -> &'a [u8] {
        match (v, &self.empty) {
            (Some(f), _) if !f.is_empty() => f,
            (_, Some(e)) => e,
            (v, None) => v.unwrap_or_default(),
        }
    }

    /// Prints a joined (or unpaired, with `None`) pair as GNU's prjoin does.
    fn prjoin(
        &self,
        out: &mut impl Write,
        l1: Option<&Line>,
        l2: Option<&Line>,
    ) -> std::io::Result<()> {
        let sep: &[u8] = match self.tab {
            Some(t) => &[t],
            None => b" ",
        };
        let mut buf = Vec::with_capacity(128);
        if let Some(spec) = &self.out {
            let mut specs: Vec<OutField> = spec.clone();
            if self.auto {
                specs = vec![OutField::Join];
                for f in 0..2 {
                    for i in 0..self.auto_counts[f] {
                        if i != self.jf[f] {
                            specs.push(OutField::Field(f, i));
                        }
                    }
                }
            }
            for (k, s) in specs.iter().enumerate() {
                if k > 0 {
                    buf.extend_from_slice(sep);
                }
                let v = match *s {
                    OutField::Join => match (l1, l2) {
                        (Some(a), _) => self.field(a, self.jf[0]),
                        (None, Some(b)) => self.field(b, self.jf[1]),
                        _ => None,
                    },
                    OutField::Field(f, i) => {
                        (if f == 0 { l1 } else { l2 }).and_then(|l| self.field(l, i))
                    }
                };
                buf.extend_from_slice(self.filled(v));
            }
        } else {
            let (jl, jf) = match (l1, l2) {
                (Some(a), _) => (a, self.jf[0]),
                (None, Some(b)) => (b, self.jf[1]),
                _ => return Ok(()),
            };
            buf.extend_from_slice(self.filled(self.field(jl, jf)));
            for (l, f) in [(l1, 0), (l2, 1)] {
                let Some(l) = l else { continue };
                for i in 0..l.fields.len() {
                    if i != self.jf[f] {
                        buf.extend_from_slice(sep);
                        buf.extend_from_slice(self.filled(self.field(l, i)));
                    }
                }
            }
        }
        buf.push(self.term);
        out.write_all(&buf)
    }
}

fn parse_field(v: &[u8]) -> Result<usize, Fail> {
    match args::parse_count(v) {
        Some(n) if n > 0 => Ok(usize::try_from(n - 1).unwrap_or(usize::MAX)),
        _ => util::usage(format!(
            "invalid field number: '{}'",
            String::from_utf8_lossy(v)
        )),
    }
}

fn parse_out(v: &[u8]) -> Result<Vec<OutField>, Fail> {
    let mut r = Vec::new();
    for part in v
        .split(|&c| c == b',' || c == b' ' || c == b'\t')
        .filter(|p| !p.is_empty())
    {
        if part == b"0" {
            r.push(OutField::Join);
            continue;
        }
        match part {
            [f @ (b'1' | b'2'), b'.', n @ ..] => {
                r.push(OutField::Field(usize::from(*f - b'1'), parse_field(n)?))
            }
            _ => {
                return util::usage(format!(
                    "invalid field specifier: '{}'",
                    String::from_utf8_lossy(part)
                ));
            }
        }
    }
    Ok(r)
}

struct Reader<'a> {
    lines: input::Lines<Box<dyn Read>>,
    name: &'a [u8],
    lineno: u64,
    prev: Option<Line>,
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        // GNU accepts the obsolete `-j1 F`/`-j2 F`: not supported here.
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut cfg = Cfg {
            tab: None,
            jf: [0, 0],
            icase: false,
            out: None,
            auto: false,
            auto_counts: [0, 0],
            empty: None,
            term: b'\n',
        };
        let (mut unpaired, mut pairs) = ([false, false], true);
        let mut check: Option<bool> = None;
        for (k, v) in p.opts {
            let v = v.unwrap_or_default();
            match k {
                'i' => cfg.icase = true,
                'z' => cfg.term = 0,
                '1' => cfg.jf[0] = parse_field(&v)?,
                '2' => cfg.jf[1] = parse_field(&v)?,
                'j' => {
                    let f = parse_field(&v)?;
                    cfg.jf = [f, f];
                }
                'a' | 'v' => {
                    match v.as_slice() {
                        b"1" => unpaired[0] = true,
                        b"2" => unpaired[1] = true,
                        _ => {
                            return util::usage(format!(
                                "invalid file number: '{}'",
                                String::from_utf8_lossy(&v)
                            ));
                        }
                    }
                    if k == 'v' {
                        pairs = false;
                    }
                }
                'e' => cfg.empty = Some(v),
                'o' => {
                    if v == b"auto" {
                        cfg.auto = true;
                        cfg.out = Some(Vec::new());
                    } else {
                        cfg.out.get_or_insert_with(Vec::new).extend(parse_out(&v)?);
                    }
                }
                't' => {
                    cfg.tab = match v.as_slice() {
                        [c] => Some(*c),
                        [] => Some(b'\n'),
                        b"\\0" => Some(0),
                        _ => {
                            return util::usage(format!(
                                "multi-character tab '{}'",
                                String::from_utf8_lossy(&v)
                            ));
                        }
                    }
                }
                '\u{1}' => check = Some(true),
                '\u{2}' => check = Some(false),
                '\u{3}' => return util::unsupported("--header is not supported"),
                _ => {}
            }
        }
        if p.operands.len() != 2 {
            return util::usage(if p.operands.len() < 2 {
                "missing operand".to_string()
            } else {
                format!(
                    "extra operand '{}'",
                    String::from_utf8_lossy(&p.operands[2])
                )
            });
        }
        let mut readers = Vec::new();
        for name in &p.operands {
            match input::open(name) {
                Ok(r) => readers.push(Reader {
                    lines: input::Lines::new(r, cfg.term),
                    name,
                    lineno: 0,
                    prev: None,
                }),
                Err(e) => {
                    input::report(tool, name, &e);
                    return Err(Fail::Exit(1));
                }
            }
        }
        let mut out = crate::common::stdout();
        let mut j = Join {
            cfg: &cfg,
            check,
            seen_unpairable: false,
            warned: [false, false],
            tool,
        };
        let mut seq: [Vec<Line>; 2] = [Vec::new(), Vec::new()];
        for f in 0..2 {
            if let Some(l) = j.get_line(&mut readers[f], f)? {
                seq[f].push(l);
            }
        }
        // `-o auto` needs the first lines' field counts before anything prints.
        let auto_counts = [
            seq[0].first().map_or(0, |l| l.fields.len()),
            seq[1].first().map_or(0, |l| l.fields.len()),
        ];
        let cfg2;
        let cfg_ref: &Cfg = if cfg.auto {
            cfg2 = Cfg {
                auto_counts,
                tab: cfg.tab,
                jf: cfg.jf,
                icase: cfg.icase,
                out: cfg.out.clone(),
                auto: true,
                empty: cfg.empty.clone(),
                term: cfg.term,
            };
            &cfg2
        } else {
            &cfg
        };
        j.cfg = cfg_ref;
        while !seq[0].is_empty() && !seq[1].is_empty() {
            let diff = cfg_ref.keycmp(&seq[0][0], 0, &seq[1][0], 1);
            if diff != Ordering::Equal {
                let f = if diff == Ordering::Less { 0 } else { 1 };
                if unpaired[f] {
                    let l = &seq[f][0];
                    if f == 0 {
                        cfg_ref.prjoin(&mut out, Some(l), None)?
                    } else {
                        cfg_ref.prjoin(&mut out, None, Some(l))?
                    }
                }
                j.seen_unpairable = true;
                let next = j.get_line(&mut readers[f], f)?;
                seq[f].clear();
                seq[f].extend(next);
                continue;
            }
            // Gather the runs of equal keys on both sides.
            let mut eof = [false, false];
            for f in 0..2 {
                loop {
                    match j.get_line(&mut readers[f], f)? {
                        Some(l) => {
                            let same = if f == 0 {
                                cfg_ref.keycmp(&l, 0, &seq[1][0], 1)
                            } else {
                                cfg_ref.keycmp(&seq[0][0], 0, &l, 1)
                            } == Ordering::Equal;
                            seq[f].push(l);
                            if !same {
                                break;
                            }
                        }
                        None => {
                            eof[f] = true;
                            break;
                        }
                    }
                }
            }
            if pairs {
                let n0 = seq[0].len() - usize::from(!eof[0]);
                let n1 = seq[1].len() - usize::from(!eof[1]);
                for a in &seq[0][..n0] {
                    for b in &seq[1][..n1] {
                        cfg_ref.prjoin(&mut out, Some(a), Some(b))?;
                    }
                }
            }
            for f in 0..2 {
                if eof[f] {
                    seq[f].clear();
                } else {
                    let last = seq[f].pop();
                    seq[f].clear();
                    seq[f].extend(last);
                }
            }
        }
        // Like GNU, read the tails (unless order checking is off) so
        // disorder there is still noticed.
        let checktail = j.check != Some(false) && !(j.warned[0] && j.warned[1]);
        for f in 0..2 {
            if (unpaired[f] || checktail) && !seq[f].is_empty() {
                if !seq[1 - f].is_empty() {
                    j.seen_unpairable = true;
                }
                let l = seq[f].remove(0);
                if unpaired[f] {
                    if f == 0 {
                        cfg_ref.prjoin(&mut out, Some(&l), None)?
                    } else {
                        cfg_ref.prjoin(&mut out, None, Some(&l))?
                    }
                }
                while let Some(l) = j.get_line(&mut readers[f], f)? {
                    if unpaired[f] {
                        if f == 0 {
                            cfg_ref.prjoin(&mut out, Some(&l), None)?
                        } else {
                            cfg_ref.prjoin(&mut out, None, Some(&l))?
                        }
                    } else if j.warned[f] {
                        break;
                    }
                }
            }
        }
        crate::common::finish(&mut out)?;
        if j.warned[0] || j.warned[1] {
            eprintln!("{tool}: input is not in sorted order");
            return Ok(1);
        }
        Ok(0)
    })
}

struct Join<'a> {
    cfg: &'a Cfg,
    check: Option<bool>,
    seen_unpairable: bool,
    warned: [bool; 2],
    tool: &'a str,
}

impl Join<'_> {
    /// Reads the next line of file `f`, checking order against the previous one.
    fn get_line(&mut self, r: &mut Reader, f: usize) -> Result<Option<Line>, Fail> {
        let next = r.lines.next().map_err(|e| {
            eprintln!(
                "{}: {}: {}",
                self.tool,
                String::from_utf8_lossy(r.name),
                input::errmsg(&e)
            );
            Fail::Exit(1)
        })?;
        let Some(raw) = next else { return Ok(None) };
        r.lineno += 1;
        #[allow(clippy::unnecessary_to_owned)] // `split` keeps an owned copy of the line
        let line = self.cfg.split(input::chomp(raw, self.cfg.term).to_vec());
        let active = match self.check {
            Some(c) => c,
            None => self.seen_unpairable,
        };
        if let Some(prev) = &r.prev {
            if active && !self.warned[f] && self.cfg.keycmp(prev, f, &line, f) == Ordering::Greater
            {
                eprintln!(
                    "{}: {}:{}: is not sorted: {}",
                    self.tool,
                    String::from_utf8_lossy(r.name),
                    r.lineno,
                    String::from_utf8_lossy(&line.text)
                );
                if self.check == Some(true) {
                    return Err(Fail::Exit(1));
                }
                self.warned[f] = true;
            }
        }
        r.prev = Some(Line {
            text: line.text.clone(),
            fields: line.fields.clone(),
        });
        Ok(Some(line))
    }
}
