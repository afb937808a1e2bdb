//! `sort`: GNU sort in the C locale.
//!
//! Keys (`-k F[.C][OPTS][,F[.C][OPTS]]`), `-t`, and the ordering options
//! `-b -d -f -g -h -i -M -n -r -V` follow GNU's rules: a key with its own
//! ordering options inherits none of the global ones; equal keys fall back to
//! comparing whole lines bytewise unless `-s` or `-u`. `-u` keeps the first
//! of each run of equal lines; `-c`/`-C` check order; `-o` may name an input.
//! Inputs larger than the memory limit (`-S`, default 64 MiB) are sorted in
//! runs spilled to temporary files (under `-T`, `$TMPDIR`, or the current
//! directory) and merged. `-R` and `--files0-from` are unsupported.

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::cmp::Ordering;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("ignore-leading-blanks", HasArg::No, 'b'),
    ("dictionary-order", HasArg::No, 'd'),
    ("ignore-case", HasArg::No, 'f'),
    ("general-numeric-sort", HasArg::No, 'g'),
    ("ignore-nonprinting", HasArg::No, 'i'),
    ("month-sort", HasArg::No, 'M'),
    ("human-numeric-sort", HasArg::No, 'h'),
    ("numeric-sort", HasArg::No, 'n'),
    ("random-sort", HasArg::No, 'R'),
    ("reverse", HasArg::No, 'r'),
    ("version-sort", HasArg::No, 'V'),
    ("sort", HasArg::Yes, '\u{1}'),
    ("check", HasArg::Optional, 'c'),
    ("merge", HasArg::No, 'm'),
    ("key", HasArg::Yes, 'k'),
    ("output", HasArg::Yes, 'o'),
    ("stable", HasArg::No, 's'),
    ("buffer-size", HasArg::Yes, 'S'),
    ("field-separator", HasArg::Yes, 't'),
    ("temporary-directory", HasArg::Yes, 'T'),
    ("unique", HasArg::No, 'u'),
    ("zero-terminated", HasArg::No, 'z'),
    ("parallel", HasArg::Yes, '\u{2}'),
    ("debug", HasArg::No, '\u{3}'),
    ("files0-from", HasArg::Yes, '\u{4}'),
    ("compress-program", HasArg::Yes, '\u{5}'),
];
const SPEC: Spec = Spec::new("bdfghiMnRrVcCmsuz", "kotST", LONG);

/// Per-key ordering options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Order {
    skip_start_blanks: bool,
    skip_end_blanks: bool,
    dictionary: bool,
    fold: bool,
    general: bool,
    ignore_nonprint: bool,
    month: bool,
    human: bool,
    numeric: bool,
    reverse: bool,
    version: bool,
}

impl Order {
    fn any_ordering(&self) -> bool {
        let mut o = *self;
        o.skip_start_blanks = false;
        o.skip_end_blanks = false;
        o != Order::default()
    }

    fn apply_flag(&mut self, c: u8, end: bool) -> bool {
        match c {
            b'b' => {
                if end {
                    self.skip_end_blanks = true
                } else {
                    self.skip_start_blanks = true
                }
            }
            b'd' => self.dictionary = true,
            b'f' => self.fold = true,
            b'g' => self.general = true,
            b'i' => self.ignore_nonprint = true,
            b'M' => self.month = true,
            b'h' => self.human = true,
            b'n' => self.numeric = true,
            b'r' => self.reverse = true,
            b'V' => self.version = true,
            _ => return false,
        }
        true
    }
}

/// A sort key: 0-based start field and char, end field (0-based) and char
/// (1-based, 0 = end of field), as in GNU's `struct keyfield`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    sword: usize,
    schar: usize,
    eword: Option<usize>,
    echar: usize,
    order: Order,
}

/// Parses a `-k` argument; `global` fills in options for keys without their own.
fn parse_key(s: &[u8]) -> Result<Key, String> {
    let bad = || {
        format!(
            "invalid number at field start: invalid count at start of '{}'",
            String::from_utf8_lossy(s)
        )
    };
    let mut i = 0;
    let num = |i: &mut usize| -> Option<usize> {
        let st = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        if st == *i {
            return None;
        }
        Some(
            std::str::from_utf8(&s[st..*i])
                .ok()?
                .parse()
                .unwrap_or(usize::MAX),
        )
    };
    let f = num(&mut i).ok_or_else(bad)?;
    if f == 0 {
        return Err(format!(
            "field number is zero: invalid field specification '{}'",
            String::from_utf8_lossy(s)
        ));
    }
    let mut key = Key {
        sword: f - 1,
        schar: 0,
        eword: None,
        echar: 0,
        order: Order::default(),
    };
    if s.get(i) == Some(&b'.') {
        i += 1;
        let c = num(&mut i).ok_or_else(bad)?;
        if c == 0 {
            return Err(format!(
                "character offset is zero: invalid field specification '{}'",
                String::from_utf8_lossy(s)
            ));
        }
        key.schar = c - 1;
    }
    while i < s.len() && s[i] != b',' {
        if !key.order.apply_flag(s[i], false) {
            return Err(format!(
                "invalid key specification '{}'",
                String::from_utf8_lossy(s)
            ));
        }
        i += 1;
    }
    if s.get(i) == Some(&b',') {
        i += 1;
        let e = num(&mut i).ok_or_else(|| {
            format!(
                "invalid number after ',': invalid count at start of '{}'",
                String::from_utf8_lossy(&s[i..])
            )
        })?;
        if e == 0 {
            return Err(format!(
                "field number is zero: invalid field specification '{}'",
                String::from_utf8_lossy(s)
            ));
        }
        key.eword = Some(e - 1);
        if s.get(i) == Some(&b'.') {
            i += 1;
            key.echar = num(&mut i).ok_or_else(bad)?;
        }
        while i < s.len() {
            if !key.order.apply_flag(s[i], true) {
                return Err(format!(
                    "invalid key specification '{}'",
                    String::from_utf8_lossy(s)
                ));
            }
            i += 1;
        }
    }
    Ok(key)
}

/// Everything a comparison needs.
#[derive(Debug, Clone)]
struct Config {
    keys: Vec<Key>,
    tab: Option<u8>,
    global_reverse: bool,
    /// No last-resort whole-line comparison (`-s`, `-u`).
    stable: bool,
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\n'
}

impl Config {
    fn begfield(&self, line: &[u8], k: &Key) -> usize {
        let lim = line.len();
        let mut p = 0;
        let mut sword = k.sword;
        match self.tab {
            Some(t) => {
                while p < lim && sword > 0 {
                    sword -= 1;
                    while p < lim && line[p] != t {
                        p += 1;
                    }
                    if p < lim {
                        p += 1;
                    }
                }
            }
            None => {
                while p < lim && sword > 0 {
                    sword -= 1;
                    while p < lim && is_blank(line[p]) {
                        p += 1;
                    }
                    while p < lim && !is_blank(line[p]) {
                        p += 1;
                    }
                }
            }
        }
        if k.order.skip_start_blanks {
            while p < lim && is_blank(line[p]) {
                p += 1;
            }
        }
        lim.min(p.saturating_add(k.schar))
    }

    fn limfield(&self, line: &[u8], k: &Key) -> usize {
        let lim = line.len();
        let Some(mut eword) = k.eword else { return lim };
        let echar = k.echar;
        if echar == 0 {
            eword += 1;
        }
        let mut p = 0;
        match self.tab {
            Some(t) => {
                while p < lim && eword > 0 {
                    eword -= 1;
                    while p < lim && line[p] != t {
                        p += 1;
                    }
                    if p < lim && (eword > 0 || echar > 0) {
                        p += 1;
                    }
                }
            }
            None => {
                while p < lim && eword > 0 {
                    eword -= 1;
                    while p < lim && is_blank(line[p]) {
                        p += 1;
                    }
                    while p < lim && !is_blank(line[p]) {
                        p += 1;
                    }
                }
            }
        }
        if echar != 0 {
            if k.order.skip_end_blanks {
                while p < lim && is_blank(line[p]) {
                    p += 1;
                }
            }
            p = lim.min(p.saturating_add(echar));
        }
        p
    }

    /// Key comparison only (no last resort).
    fn keycmp(&self, a: &[u8], b: &[u8]) -> Ordering {
        for k in &self.keys {
            let ka = {
                let s = self.begfield(a, k);
                let e = self.limfield(a, k).max(s);
                &a[s..e]
            };
            let kb = {
                let s = self.begfield(b, k);
                let e = self.limfield(b, k).max(s);
                &b[s..e]
            };
            let o = &k.order;
            let ord = if o.numeric {
                numcmp(ka, kb)
            } else if o.general {
                general_cmp(ka, kb)
            } else if o.human {
                human_cmp(ka, kb)
            } else if o.month {
                month(ka).cmp(&month(kb))
            } else if o.version {
                version_cmp(ka, kb)
            } else if o.dictionary || o.ignore_nonprint || o.fold {
                let keep = |c: &u8| {
                    !((o.dictionary && !(c.is_ascii_alphanumeric() || *c == b' ' || *c == b'\t'))
                        || (o.ignore_nonprint && !(32..127).contains(c)))
                };
                let tr = |c: &u8| if o.fold { c.to_ascii_uppercase() } else { *c };
                ka.iter()
                    .filter(|c| keep(c))
                    .map(tr)
                    .cmp(kb.iter().filter(|c| keep(c)).map(tr))
            } else {
                ka.cmp(kb)
            };
            if ord != Ordering::Equal {
                return if o.reverse { ord.reverse() } else { ord };
            }
        }
        Ordering::Equal
    }

    /// Whole lines compared bytewise: no keys, options or stability.
    fn plain(&self) -> bool {
        self.keys.len() == 1
            && self.keys[0]
                == Key {
                    sword: 0,
                    schar: 0,
                    eword: None,
                    echar: 0,
                    order: Order::default(),
                }
            && !self.stable
    }

    fn cmp(&self, a: &[u8], b: &[u8]) -> Ordering {
        let o = self.keycmp(a, b);
        if o != Ordering::Equal || self.stable {
            return o;
        }
        let o = a.cmp(b);
        if self.global_reverse { o.reverse() } else { o }
    }
}

/// GNU numeric comparison: optional blanks, `-`, digits, `.`, digits; anything else is 0.
fn numcmp(a: &[u8], b: &[u8]) -> Ordering {
    fn parse(s: &[u8]) -> (bool, &[u8], &[u8]) {
        let mut i = 0;
        while i < s.len() && is_blank(s[i]) {
            i += 1;
        }
        let neg = s.get(i) == Some(&b'-');
        if neg {
            i += 1;
        }
        let st = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let mut int = &s[st..i];
        while int.first() == Some(&b'0') {
            int = &int[1..];
        }
        let mut frac: &[u8] = &[];
        if s.get(i) == Some(&b'.') {
            let fs = i + 1;
            let mut j = fs;
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            frac = &s[fs..j];
            while frac.last() == Some(&b'0') {
                frac = &frac[..frac.len() - 1];
            }
        }
        let zero = int.is_empty() && frac.is_empty();
        (neg && !zero, int, frac)
    }
    let (na, ia, fa) = parse(a);
    let (nb, ib, fb) = parse(b);
    let mag = ia
        .len()
        .cmp(&ib.len())
        .then_with(|| ia.cmp(ib))
        .then_with(|| fa.cmp(fb));
    match (na, nb) {
        (false, false) => mag,
        (true, true) => mag.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    }
}

/// strtod-like prefix parse; `None` when no number starts the string.
fn parse_float(s: &[u8]) -> Option<f64> {
    let mut i = 0;
    while i < s.len() && (is_blank(s[i]) || matches!(s[i], b'\r' | 11 | 12)) {
        i += 1;
    }
    let st = i;
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let rest = &s[i..];
    let lower: Vec<u8> = rest.iter().take(8).map(u8::to_ascii_lowercase).collect();
    let neg = s.get(st) == Some(&b'-');
    if lower.starts_with(b"inf") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower.starts_with(b"nan") {
        return Some(f64::NAN);
    }
    if rest.len() > 2
        && (rest.starts_with(b"0x") || rest.starts_with(b"0X"))
        && rest[2].is_ascii_hexdigit()
    {
        // strtold reads hexadecimal integers (fractions/exponents are rare in sort input).
        let hex: Vec<u8> = rest[2..]
            .iter()
            .copied()
            .take_while(u8::is_ascii_hexdigit)
            .collect();
        let v = hex.iter().fold(0f64, |a, &d| {
            a * 16.0 + f64::from((d as char).to_digit(16).unwrap_or(0))
        });
        return Some(if neg { -v } else { v });
    }
    let ds = i;
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - ds;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let fs = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - fs;
    }
    if digits == 0 {
        return None;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if s.get(j).is_some_and(u8::is_ascii_digit) {
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    std::str::from_utf8(&s[st..i]).ok()?.parse().ok()
}

fn general_cmp(a: &[u8], b: &[u8]) -> Ordering {
    match (parse_float(a), parse_float(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => match x.partial_cmp(&y) {
            Some(o) => o,
            None => x.is_nan().cmp(&y.is_nan()).reverse(),
        },
    }
}

/// GNU -h: sign, then SI suffix magnitude, then the number.
fn human_cmp(a: &[u8], b: &[u8]) -> Ordering {
    fn info(s: &[u8]) -> (i32, usize) {
        let mut i = 0;
        while i < s.len() && is_blank(s[i]) {
            i += 1;
        }
        let neg = s.get(i) == Some(&b'-');
        if neg {
            i += 1;
        }
        let st = i;
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'.') {
            i += 1;
        }
        let nonzero = s[st..i].iter().any(|c| (b'1'..=b'9').contains(c));
        let suffix = s.get(i).and_then(|c| {
            b"KMGTPEZYRQ"
                .iter()
                .position(|x| x == c)
                .or(if *c == b'k' { Some(0) } else { None })
        });
        let mag = suffix.map_or(0, |p| p + 1);
        let sign = if !nonzero {
            0
        } else if neg {
            -1
        } else {
            1
        };
        (sign, mag)
    }
    let (sa, ma) = info(a);
    let (sb, mb) = info(b);
    sa.cmp(&sb).then_with(|| {
        let m = ma.cmp(&mb);
        let m = if sa < 0 { m.reverse() } else { m };
        m.then_with(|| numcmp(a, b))
    })
}

fn month(s: &[u8]) -> u8 {
    let t: Vec<u8> = s
        .iter()
        .skip_while(|c| is_blank(**c))
        .take(3)
        .map(u8::to_ascii_uppercase)
        .collect();
    const M: [&[u8]; 12] = [
        b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV",
        b"DEC",
    ];
    M.iter()
        .position(|m| *m == t.as_slice())
        .map_or(0, |p| p as u8 + 1)
}

/// GNU filevercmp (version sort).
fn version_cmp(a: &[u8], b: &[u8]) -> Ordering {
    fn suffix_start(s: &[u8]) -> usize {
        // Length without the file suffix `(\.[A-Za-z~][A-Za-z0-9~]*)*$`.
        let mut i = 0;
        let mut match_start = None;
        let mut read_alpha = false;
        while i < s.len() {
            let c = s[i];
            if read_alpha {
                read_alpha = false;
                if !(c.is_ascii_alphabetic() || c == b'~') {
                    match_start = None;
                }
            } else if c == b'.' {
                read_alpha = true;
                if match_start.is_none() {
                    match_start = Some(i);
                }
            } else if !(c.is_ascii_alphanumeric() || c == b'~') {
                match_start = None;
            }
            i += 1;
        }
        match_start.unwrap_or(s.len())
    }
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(b'~') => -1,
            Some(c) => i32::from(c) + 256,
        }
    }
    fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let mut first_diff = 0;
            while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit())
            {
                let ac = order(a.get(i).copied());
                let bc = order(b.get(j).copied());
                if ac != bc {
                    return ac.cmp(&bc);
                }
                i += 1;
                j += 1;
            }
            while a.get(i) == Some(&b'0') {
                i += 1;
            }
            while b.get(j) == Some(&b'0') {
                j += 1;
            }
            while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
                if first_diff == 0 {
                    first_diff = i32::from(a[i]) - i32::from(b[j]);
                }
                i += 1;
                j += 1;
            }
            if i < a.len() && a[i].is_ascii_digit() {
                return Ordering::Greater;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                return Ordering::Less;
            }
            if first_diff != 0 {
                return first_diff.cmp(&0);
            }
        }
        Ordering::Equal
    }
    if a == b {
        return Ordering::Equal;
    }
    // Empty, ".", ".." and hidden files first, as filevercmp does.
    for (x, y) in [
        (a.is_empty(), b.is_empty()),
        (a == b".", b == b"."),
        (a == b"..", b == b".."),
    ] {
        if x != y {
            return if x { Ordering::Less } else { Ordering::Greater };
        }
    }
    let (ha, hb) = (a.first() == Some(&b'.'), b.first() == Some(&b'.'));
    if ha != hb {
        return if ha {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let (a2, b2) = if ha { (&a[1..], &b[1..]) } else { (a, b) };
    let (sa, sb) = (suffix_start(a2), suffix_start(b2));
    let r = verrevcmp(&a2[..sa], &b2[..sb]);
    if r != Ordering::Equal {
        r
    } else {
        verrevcmp(a2, b2)
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut global = Order::default();
        let mut keys = Vec::new();
        let (mut tab, mut unique, mut stable, mut check, mut zero) =
            (None, false, false, None, false);
        let mut output: Option<Vec<u8>> = None;
        let mut limit: usize = 64 << 20;
        let mut tmpdir: Option<PathBuf> = None;
        for (k, v) in &p.opts {
            let v = v.as_deref();
            match k {
                'b' | 'd' | 'f' | 'g' | 'i' | 'M' | 'h' | 'n' | 'r' | 'V' => {
                    global.apply_flag(*k as u8, false);
                    if *k == 'b' {
                        global.skip_end_blanks = true;
                    }
                }
                '\u{1}' => {
                    let flag = match v.unwrap_or_default() {
                        b"general-numeric" => b'g',
                        b"human-numeric" => b'h',
                        b"month" => b'M',
                        b"numeric" => b'n',
                        b"version" => b'V',
                        _ => return util::unsupported("unsupported --sort value"),
                    };
                    global.apply_flag(flag, false);
                }
                'R' => return util::unsupported("random sort (-R) is not supported"),
                'c' => {
                    check = Some(!matches!(v, Some(b"quiet" | b"silent")));
                }
                'C' => check = Some(false),
                'm' | '\u{2}' | '\u{3}' => {}
                's' => stable = true,
                'u' => unique = true,
                'z' => zero = true,
                'k' => keys.push(parse_key(v.unwrap_or_default()).map_err(Fail::Usage)?),
                'o' => output = v.map(<[u8]>::to_vec),
                't' => {
                    let t = v.unwrap_or_default();
                    match t {
                        [c] => tab = Some(*c),
                        b"\\0" => tab = Some(0),
                        [] => return util::usage("empty tab"),
                        _ => {
                            return util::usage(format!(
                                "multi-character tab '{}'",
                                String::from_utf8_lossy(t)
                            ));
                        }
                    }
                }
                'S' => {
                    let s = v.unwrap_or_default();
                    limit = parse_buffer_size(s).ok_or_else(|| {
                        Fail::Usage(format!(
                            "invalid -S argument '{}'",
                            String::from_utf8_lossy(s)
                        ))
                    })?;
                }
                'T' => tmpdir = v.map(input::path_of),
                '\u{4}' => return util::unsupported("--files0-from is not supported"),
                '\u{5}' => return util::unsupported("--compress-program is not supported"),
                _ => {}
            }
        }
        // Keys without ordering options inherit the global ones (GNU rule).
        for k in keys.iter_mut() {
            if !k.order.any_ordering() && !k.order.skip_start_blanks && !k.order.skip_end_blanks {
                k.order = global;
            }
        }
        if keys.is_empty() {
            keys.push(Key {
                sword: 0,
                schar: 0,
                eword: None,
                echar: 0,
                order: global,
            });
        }
        let cfg = Config {
            keys,
            tab,
            global_reverse: global.reverse,
            stable: stable || unique,
        };
        let delim = if zero { 0 } else { b'\n' };
        let files = input::operands_or_stdin(p.operands);
        if let Some(loud) = check {
            return check_sorted(tool, &cfg, &files, delim, unique, loud);
        }
        let mut sorter = Sorter {
            cfg: &cfg,
            delim,
            unique,
            limit,
            runs: Vec::new(),
            tmpdir,
            data: Vec::new(),
            tool,
        };
        let mut status = 0;
        for name in &files {
            let mut r = match input::open(name) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!(
                        "{tool}: cannot read: {}: {}",
                        String::from_utf8_lossy(name),
                        input::errmsg(&e)
                    );
                    return Err(Fail::Exit(2));
                }
            };
            if let Err(e) = sorter.feed(&mut r) {
                eprintln!(
                    "{tool}: {}: {}",
                    String::from_utf8_lossy(name),
                    input::errmsg(&e)
                );
                status = 2;
            }
        }
        let mut sink: Box<dyn Write> = match &output {
            Some(o) if o.as_slice() != b"-" => match File::create(input::path_of(o)) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    eprintln!(
                        "{tool}: open failed: {}: {}",
                        String::from_utf8_lossy(o),
                        input::errmsg(&e)
                    );
                    return Err(Fail::Exit(2));
                }
            },
            _ => Box::new(crate::common::RawStdout::default()),
        };
        let mut out = BufWriter::with_capacity(crate::common::STDOUT_BUF, &mut sink);
        sorter.finish(&mut out)?;
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}

/// `-S` sizes: a number with an optional unit suffix (default KiB, `%` of memory unsupported).
fn parse_buffer_size(s: &[u8]) -> Option<usize> {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let base: usize = std::str::from_utf8(&s[..n]).ok()?.parse().ok()?;
    let mult: usize = match &s[n..] {
        b"" | b"k" | b"K" => 1 << 10,
        b"b" => 1,
        b"M" | b"m" => 1 << 20,
        b"G" | b"g" => 1 << 30,
        _ => return None,
    };
    Some(base.saturating_mul(mult).max(1 << 16))
}

/// Splits `data` into lines (without terminators).
fn split_lines(data: &[u8], delim: u8) -> Vec<&[u8]> {
    let mut v = Vec::with_capacity(data.len() / 32 + 1);
    for_each_line(data, delim, |l| v.push(l));
    v
}

/// Calls `f` with each line of `data` (without terminator).
fn for_each_line<'d>(data: &'d [u8], delim: u8, mut f: impl FnMut(&'d [u8])) {
    let mut s = 0;
    for p in memchr::memchr_iter(delim, data) {
        f(&data[s..p]);
        s = p + 1;
    }
    if s < data.len() {
        f(&data[s..]);
    }
}

/// The first 8 bytes, big-endian, zero-padded: ordering these agrees with
/// ordering the lines, and equal keys leave the rest to a byte compare.
fn prefix_key(l: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = l.len().min(8);
    b[..n].copy_from_slice(&l[..n]);
    u64::from_be_bytes(b)
}

struct Sorter<'a> {
    cfg: &'a Config,
    delim: u8,
    unique: bool,
    limit: usize,
    runs: Vec<tempfile_lite::TempRun>,
    tmpdir: Option<PathBuf>,
    data: Vec<u8>,
    tool: &'a str,
}

impl Sorter<'_> {
    fn feed(&mut self, r: &mut dyn std::io::Read) -> std::io::Result<()> {
        let mut chunk = input::read_buf();
        loop {
            let n = input::fill(r, &mut chunk)?;
            if n == 0 {
                break;
            }
            self.data.extend_from_slice(&chunk[..n]);
            let asked = chunk.len();
            input::grow_when_filled(&mut chunk, asked, n);
            if self.data.len() >= self.limit {
                // Spill everything up to the last complete line.
                if let Some(p) = memchr::memrchr(self.delim, &self.data) {
                    let tail = self.data.split_off(p + 1);
                    self.spill()?;
                    self.data = tail;
                }
            }
        }
        // Inputs are concatenated: a file without final newline still ends its line.
        if !self.data.is_empty() && self.data.last() != Some(&self.delim) {
            self.data.push(self.delim);
        }
        Ok(())
    }

    fn sorted_lines<'d>(&self, data: &'d [u8]) -> Vec<&'d [u8]> {
        let cfg = self.cfg;
        if cfg.plain() {
            // Whole-line bytes: equal lines are identical, so stability is
            // moot. Most comparisons are settled by the first 8 bytes as one
            // integer, sparing a byte-wise `memcmp` (a plain loop in wasm).
            let mut keyed: Vec<(u64, &[u8])> = Vec::with_capacity(data.len() / 32 + 1);
            for_each_line(data, self.delim, |l| keyed.push((prefix_key(l), l)));
            keyed.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0).then_with(|| {
                    if a.1.len() >= 8 && b.1.len() >= 8 {
                        a.1[8..].cmp(&b.1[8..])
                    } else {
                        a.1.cmp(b.1)
                    }
                })
            });
            return keyed.into_iter().map(|(_, l)| l).collect();
        }
        let mut lines = split_lines(data, self.delim);
        lines.sort_by(|a, b| cfg.cmp(a, b));
        lines
    }

    fn spill(&mut self) -> std::io::Result<()> {
        let data = std::mem::take(&mut self.data);
        let lines = self.sorted_lines(&data);
        let dir = self
            .tmpdir
            .clone()
            .or_else(|| std::env::var_os("TMPDIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."));
        let mut run = tempfile_lite::TempRun::create(&dir, self.runs.len())?;
        {
            let mut w = BufWriter::with_capacity(256 * 1024, run.file()?);
            write_lines(&mut w, &lines, self.delim, self.unique.then_some(self.cfg))?;
            w.flush()?;
        }
        self.runs.push(run);
        Ok(())
    }

    fn finish(mut self, out: &mut impl Write) -> Result<(), Fail> {
        if self.runs.is_empty() {
            let lines = self.sorted_lines(&self.data);
            write_lines(out, &lines, self.delim, self.unique.then_some(self.cfg))?;
            return Ok(());
        }
        if !self.data.is_empty() {
            self.spill().map_err(|e| {
                eprintln!(
                    "{}: cannot create temporary file: {}",
                    self.tool,
                    input::errmsg(&e)
                );
                Fail::Exit(2)
            })?;
        }
        let mut readers = Vec::new();
        for run in &self.runs {
            readers.push(input::Lines::new(BufReader::new(run.reopen()?), self.delim));
        }
        merge(self.cfg, readers, out, self.delim, self.unique)?;
        Ok(())
    }
}

fn write_lines(
    out: &mut impl Write,
    lines: &[&[u8]],
    delim: u8,
    unique: Option<&Config>,
) -> std::io::Result<()> {
    let mut prev: Option<&[u8]> = None;
    for l in lines {
        if let (Some(cfg), Some(p)) = (unique, prev) {
            if cfg.keycmp(p, l) == Ordering::Equal {
                continue;
            }
        }
        out.write_all(l)?;
        out.write_all(&[delim])?;
        prev = Some(l);
    }
    Ok(())
}

/// k-way merge of sorted runs; ties go to the earlier run (stability).
/// A binary heap of run indices picks the next line; each run's current
/// line lives in a buffer reused for the whole merge.
fn merge<R: std::io::Read>(
    cfg: &Config,
    mut runs: Vec<input::Lines<R>>,
    out: &mut impl Write,
    delim: u8,
    unique: bool,
) -> std::io::Result<()> {
    let plain = cfg.plain();
    let mut heads: Vec<Vec<u8>> = vec![Vec::new(); runs.len()];
    let mut heap: Vec<usize> = Vec::with_capacity(runs.len());
    for (i, r) in runs.iter_mut().enumerate() {
        if let Some(l) = r.next()? {
            heads[i].extend_from_slice(input::chomp(l, delim));
            heap.push(i);
        }
    }
    let before = |heads: &[Vec<u8>], a: usize, b: usize| -> bool {
        let o = if plain {
            heads[a].cmp(&heads[b])
        } else {
            cfg.cmp(&heads[a], &heads[b])
        };
        o == Ordering::Less || (o == Ordering::Equal && a < b)
    };
    for i in (0..heap.len() / 2).rev() {
        sift_down(&mut heap, i, |a, b| before(&heads, a, b));
    }
    let mut last: Vec<u8> = Vec::new();
    let mut have_last = false;
    while let Some(&top) = heap.first() {
        let dup = unique && have_last && cfg.keycmp(&last, &heads[top]) == Ordering::Equal;
        if !dup {
            out.write_all(&heads[top])?;
            out.write_all(&[delim])?;
            if unique {
                last.clear();
                last.extend_from_slice(&heads[top]);
                have_last = true;
            }
        }
        match runs[top].next()? {
            Some(l) => {
                heads[top].clear();
                heads[top].extend_from_slice(input::chomp(l, delim));
            }
            None => {
                heap.swap_remove(0);
            }
        }
        sift_down(&mut heap, 0, |a, b| before(&heads, a, b));
    }
    Ok(())
}

/// Restores the heap property below `i` (`before(a, b)`: `a` comes first).
fn sift_down(heap: &mut [usize], mut i: usize, before: impl Fn(usize, usize) -> bool) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut m = i;
        if l < heap.len() && before(heap[l], heap[m]) {
            m = l;
        }
        if r < heap.len() && before(heap[r], heap[m]) {
            m = r;
        }
        if m == i {
            return;
        }
        heap.swap(i, m);
        i = m;
    }
}

fn check_sorted(
    tool: &str,
    cfg: &Config,
    files: &[Vec<u8>],
    delim: u8,
    unique: bool,
    loud: bool,
) -> Result<i32, Fail> {
    if files.len() > 1 {
        return util::usage(format!(
            "extra operand '{}' not allowed with -c",
            String::from_utf8_lossy(&files[1])
        ));
    }
    let name = &files[0];
    let r = input::open(name).map_err(|e| {
        eprintln!(
            "{tool}: cannot read: {}: {}",
            String::from_utf8_lossy(name),
            input::errmsg(&e)
        );
        Fail::Exit(2)
    })?;
    let mut lines = input::Lines::new(r, delim);
    let mut prev: Option<Vec<u8>> = None;
    let mut n = 0u64;
    while let Some(l) = lines.next().map_err(|e| Fail::Usage(input::errmsg(&e)))? {
        n += 1;
        let l = input::chomp(l, delim);
        if let Some(p) = &prev {
            let o = cfg.cmp(p, l);
            if o == Ordering::Greater || (unique && o == Ordering::Equal) {
                if loud {
                    eprintln!(
                        "{tool}: {}:{n}: disorder: {}",
                        String::from_utf8_lossy(name),
                        String::from_utf8_lossy(l)
                    );
                }
                return Ok(1);
            }
        }
        prev = Some(l.to_vec());
    }
    Ok(0)
}

/// Temporary run files, removed on drop. (A tiny local helper: the
/// `tempfile` crate's randomness source is not available on every WASI host.)
mod tempfile_lite {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::path::{Path, PathBuf};

    pub struct TempRun {
        path: PathBuf,
    }

    impl TempRun {
        pub fn create(dir: &Path, n: usize) -> io::Result<Self> {
            // WASI has no process ids (`std::process::id` panics there), so
            // the name is made unique by the clock plus `create_new` retries.
            let pid = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            for attempt in 0..1000 {
                let path = dir.join(format!(".sort-run-{pid}-{n}-{attempt}"));
                match OpenOptions::new().write(true).create_new(true).open(&path) {
                    Ok(_) => return Ok(TempRun { path }),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(io::Error::other("cannot create temporary file"))
        }

        pub fn file(&mut self) -> io::Result<File> {
            OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&self.path)
        }

        pub fn reopen(&self) -> io::Result<File> {
            File::open(&self.path)
        }
    }

    impl Drop for TempRun {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(keys: &[&str], tab: Option<u8>) -> Config {
        Config {
            keys: keys
                .iter()
                .map(|k| parse_key(k.as_bytes()).unwrap())
                .collect(),
            tab,
            global_reverse: false,
            stable: false,
        }
    }

    #[test]
    fn key_parsing() {
        let k = parse_key(b"2.3nr,4.5b").unwrap();
        assert_eq!((k.sword, k.schar, k.eword, k.echar), (1, 2, Some(3), 5));
        assert!(k.order.numeric && k.order.reverse && k.order.skip_end_blanks);
        assert!(parse_key(b"0").is_err());
        assert!(parse_key(b"1.0").is_err());
        assert!(parse_key(b"1x").is_err());
        assert!(parse_key(b"").is_err());
    }

    #[test]
    fn fields() {
        let c = cfg(&["2,2"], None);
        let k = &c.keys[0];
        let l = b"a  bb c";
        assert_eq!(&l[c.begfield(l, k)..c.limfield(l, k)], b"  bb");
        let c = cfg(&["2,2"], Some(b':'));
        let l = b"a:b:c";
        assert_eq!(
            &l[c.begfield(l, &c.keys[0])..c.limfield(l, &c.keys[0])],
            b"b"
        );
    }

    #[test]
    fn numeric_and_friends() {
        assert_eq!(numcmp(b"-1", b"0"), Ordering::Less);
        assert_eq!(numcmp(b"1.50", b"1.5"), Ordering::Equal);
        assert_eq!(numcmp(b"-0", b"0"), Ordering::Equal);
        assert_eq!(numcmp(b" 10", b"9"), Ordering::Greater);
        assert_eq!(numcmp(b"abc", b"0"), Ordering::Equal);
        assert_eq!(human_cmp(b"2K", b"1M"), Ordering::Less);
        assert_eq!(general_cmp(b"1e3", b"999"), Ordering::Greater);
        assert_eq!(version_cmp(b"a2", b"a10"), Ordering::Less);
        assert_eq!(month(b" feb"), 2);
    }

    proptest::proptest! {
        #[test]
        fn numcmp_matches_integers(a in -10_000i64..10_000, b in -10_000i64..10_000) {
            proptest::prop_assert_eq!(numcmp(a.to_string().as_bytes(), b.to_string().as_bytes()), a.cmp(&b));
        }

        #[test]
        fn key_parser_total(s in proptest::collection::vec(proptest::num::u8::ANY, 0..12)) {
            let _ = parse_key(&s);
        }
    }
}
