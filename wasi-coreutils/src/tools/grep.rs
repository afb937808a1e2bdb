//! `grep`: GNU grep in the C locale over bytes.
//!
//! Patterns (BRE by default, `-E`, `-F`) are translated to the `regex`
//! crate (see [`crate::util::posix_regex`]); back-references are rejected
//! with status 2. Without context or `-o`, whole buffers are searched at once
//! and only matching lines are located, so sparse matches run at the speed
//! of the regex prefilter (memchr/memmem). `-o` reports POSIX leftmost-longest
//! matches using an anchored DFA search for the longest end. Binary input (a
//! NUL byte, without `-a`) prints GNU's "binary file matches" notice on
//! stderr instead of lines. Exit: 0 selected, 1 none, 2 trouble.

// Nested `if`s mirror the structure of the GNU C sources they follow.
#![allow(clippy::collapsible_if)]

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{Read, Write};

use regex::bytes::{Regex, RegexBuilder};
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::{Anchored, Input, MatchKind};

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::posix_regex::{self, Dialect};
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("extended-regexp", HasArg::No, 'E'),
    ("fixed-strings", HasArg::No, 'F'),
    ("basic-regexp", HasArg::No, 'G'),
    ("perl-regexp", HasArg::No, 'P'),
    ("regexp", HasArg::Yes, 'e'),
    ("file", HasArg::Yes, 'f'),
    ("ignore-case", HasArg::No, 'i'),
    ("no-ignore-case", HasArg::No, '\u{1}'),
    ("word-regexp", HasArg::No, 'w'),
    ("line-regexp", HasArg::No, 'x'),
    ("no-messages", HasArg::No, 's'),
    ("invert-match", HasArg::No, 'v'),
    ("max-count", HasArg::Yes, 'm'),
    ("byte-offset", HasArg::No, 'b'),
    ("line-number", HasArg::No, 'n'),
    ("with-filename", HasArg::No, 'H'),
    ("no-filename", HasArg::No, 'h'),
    ("label", HasArg::Yes, '\u{2}'),
    ("only-matching", HasArg::No, 'o'),
    ("quiet", HasArg::No, 'q'),
    ("silent", HasArg::No, 'q'),
    ("binary-files", HasArg::Yes, '\u{3}'),
    ("text", HasArg::No, 'a'),
    ("files-without-match", HasArg::No, 'L'),
    ("files-with-matches", HasArg::No, 'l'),
    ("count", HasArg::No, 'c'),
    ("null", HasArg::No, 'Z'),
    ("before-context", HasArg::Yes, 'B'),
    ("after-context", HasArg::Yes, 'A'),
    ("context", HasArg::Yes, 'C'),
    ("color", HasArg::Optional, '\u{4}'),
    ("colour", HasArg::Optional, '\u{4}'),
    ("recursive", HasArg::No, 'r'),
    ("dereference-recursive", HasArg::No, 'R'),
    ("null-data", HasArg::No, 'z'),
    ("initial-tab", HasArg::No, 'T'),
    ("line-buffered", HasArg::No, '\u{5}'),
    ("no-group-separator", HasArg::No, '\u{6}'),
    ("group-separator", HasArg::Yes, '\u{7}'),
];
const SPEC: Spec = Spec {
    flags: "EFGPivwxsycnbHhoqaLlZrRzTU",
    with_arg: "efmABCd",
    long: LONG,
    digits: true,
    stop_at_operand: false,
};

#[derive(Default)]
struct Opts {
    invert: bool,
    count: bool,
    line_num: bool,
    byte_offset: bool,
    only: bool,
    list: Option<bool>, // Some(true) = -l, Some(false) = -L
    quiet: bool,
    no_messages: bool,
    max_count: Option<u64>,
    after: usize,
    before: usize,
    context: bool,
    text: bool,
    with_name: bool,
    null_after_name: bool,
    initial_tab: bool,
    group_sep: Option<Vec<u8>>,
    label: Vec<u8>,
}

/// Compiled pattern: the line matcher plus, for `-o`, a DFA that finds
/// the longest match at a given start.
struct Matcher {
    re: Regex,
    longest: Option<DFA>,
    /// With `-w`, the match proper is capture group 1 of `re`.
    word: bool,
    /// No pattern at all (`-f /dev/null`): nothing matches.
    never: bool,
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut o = Opts {
            label: b"(standard input)".to_vec(),
            group_sep: Some(b"--".to_vec()),
            ..Default::default()
        };
        let mut dialect = Dialect::Basic;
        let mut fixed = false;
        let (mut icase, mut word, mut linex) = (false, false, false);
        let mut patterns: Option<Vec<Vec<u8>>> = None;
        let mut with_name: Option<bool> = None;
        let num = |v: &Option<Vec<u8>>, what: &str| -> Result<u64, Fail> {
            let v = v.as_deref().unwrap_or_default();
            args::parse_count(v).ok_or_else(|| Fail::Usage(format!("invalid {what} argument")))
        };
        let (mut after, mut before) = (None, None);
        let mut ctx = None;
        for (k, v) in &p.opts {
            match k {
                'E' => (dialect, fixed) = (Dialect::Extended, false),
                'F' => fixed = true,
                'G' => (dialect, fixed) = (Dialect::Basic, false),
                'P' => return util::unsupported("Perl regular expressions (-P) are not supported"),
                'e' => {
                    let pats = patterns.get_or_insert_with(Vec::new);
                    pats.extend(
                        v.as_deref()
                            .unwrap_or_default()
                            .split(|&b| b == b'\n')
                            .map(<[u8]>::to_vec),
                    );
                }
                'f' => {
                    let name = v.as_deref().unwrap_or_default();
                    let mut data = Vec::new();
                    if let Err(e) =
                        input::open(name).and_then(|mut r| input::read_all(&mut r, &mut data))
                    {
                        input::report(tool, name, &e);
                        return Err(Fail::Exit(2));
                    }
                    let pats = patterns.get_or_insert_with(Vec::new);
                    if data.last() == Some(&b'\n') {
                        data.pop();
                    }
                    if !data.is_empty() || name.is_empty() {
                        pats.extend(data.split(|&b| b == b'\n').map(<[u8]>::to_vec));
                    }
                }
                'i' | 'y' => icase = true,
                '\u{1}' => icase = false,
                'w' => word = true,
                'x' => linex = true,
                's' => o.no_messages = true,
                'v' => o.invert = true,
                'm' => o.max_count = Some(num(v, "max count")?),
                'b' => o.byte_offset = true,
                'n' => o.line_num = true,
                'H' => with_name = Some(true),
                'h' => with_name = Some(false),
                '\u{2}' => o.label = v.clone().unwrap_or_default(),
                'o' => o.only = true,
                'q' => o.quiet = true,
                '\u{3}' => match v.as_deref() {
                    Some(b"text") => o.text = true,
                    Some(b"binary") => o.text = false,
                    _ => return util::unsupported("unsupported --binary-files value"),
                },
                'a' => o.text = true,
                'L' => o.list = Some(false),
                'l' => o.list = Some(true),
                'c' => o.count = true,
                'Z' => o.null_after_name = true,
                'A' => after = Some(num(v, "context length")?),
                'B' => before = Some(num(v, "context length")?),
                'C' | '#' => ctx = Some(num(v, "context length")?),
                '\u{4}' => match v.as_deref() {
                    None | Some(b"never") | Some(b"auto") | Some(b"none") | Some(b"no")
                    | Some(b"tty") | Some(b"if-tty") => {}
                    _ => return util::unsupported("--color=always is not supported"),
                },
                'r' | 'R' => return util::unsupported("recursive search (-r/-R) is not supported"),
                'z' => return util::unsupported("-z (NUL-separated records) is not supported"),
                'T' => o.initial_tab = true,
                'U' | '\u{5}' => {}
                '\u{6}' => o.group_sep = None,
                '\u{7}' => o.group_sep = v.clone(),
                'd' => return util::unsupported("-d (directories) is not supported"),
                _ => {}
            }
        }
        let mut operands = p.operands;
        let patterns = match patterns {
            Some(p) => p,
            None => {
                if operands.is_empty() {
                    return util::usage(
                        "no pattern given\nUsage: grep [OPTION]... PATTERNS [FILE]...",
                    );
                }
                let first = operands.remove(0);
                first.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
            }
        };
        // GNU exits at once when no line can be selected: `-m 0`, or `-v`
        // with one empty pattern (which matches every line).
        let all_empty = patterns.len() == 1 && patterns[0].is_empty();
        if o.max_count == Some(0) || (all_empty && o.invert && !linex && !word) {
            return Ok(1);
        }
        o.after = usize::try_from(after.or(ctx).unwrap_or(0)).unwrap_or(usize::MAX);
        o.before = usize::try_from(before.or(ctx).unwrap_or(0)).unwrap_or(usize::MAX);
        o.context = o.after > 0 || o.before > 0;
        let matcher =
            build(&patterns, dialect, fixed, icase, word, linex, o.only).map_err(|e| {
                eprintln!("{tool}: {e}");
                Fail::Exit(2)
            })?;
        let files = input::operands_or_stdin(operands);
        o.with_name = with_name.unwrap_or(files.len() > 1);
        let mut out = crate::common::stdout();
        let mut any = false;
        let mut trouble = false;
        for name in &files {
            let r = match input::open(name) {
                Ok(r) => r,
                Err(e) => {
                    if !o.no_messages {
                        input::report(tool, name, &e);
                    }
                    trouble = true;
                    continue;
                }
            };
            let shown = if name == b"-" {
                o.label.clone()
            } else {
                name.clone()
            };
            let mut f = FileSearch {
                o: &o,
                m: &matcher,
                name: &shown,
                out: &mut out,
                selected: 0,
                binary: false,
                tool,
            };
            let res = if o.context || o.only || o.byte_offset {
                f.by_lines(r)
            } else {
                f.by_buffer(r)
            };
            let selected = match res {
                Ok(n) => n,
                Err(Fail::Usage(m)) => {
                    if !o.no_messages {
                        eprintln!("{tool}: {}: {m}", String::from_utf8_lossy(&shown));
                    }
                    trouble = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if selected > 0 {
                any = true;
                if o.quiet {
                    crate::common::finish(&mut out)?;
                    return Ok(0);
                }
            }
            if o.count && o.list.is_none() {
                if o.with_name {
                    out.write_all(&shown)?;
                    out.write_all(if o.null_after_name { b"\0" } else { b":" })?;
                }
                writeln!(out, "{selected}")?;
            }
            if let Some(l) = o.list {
                if l == (selected > 0) {
                    out.write_all(&shown)?;
                    out.write_all(if o.null_after_name { b"\0" } else { b"\n" })?;
                }
            }
        }
        crate::common::finish(&mut out)?;
        Ok(if trouble && !(o.quiet && any) {
            2
        } else if any {
            0
        } else {
            1
        })
    })
}

fn build(
    pats: &[Vec<u8>],
    d: Dialect,
    fixed: bool,
    icase: bool,
    word: bool,
    linex: bool,
    only: bool,
) -> Result<Matcher, String> {
    let mut alts = Vec::with_capacity(pats.len());
    for p in pats {
        let t = if fixed {
            posix_regex::escape_fixed(p)
        } else {
            posix_regex::translate(p, d).map_err(|e| e.to_string())?
        };
        alts.push(format!("(?:{t})"));
    }
    let never = pats.is_empty();
    let core = if never {
        r"[^\x00-\xFF]".to_string()
    } else {
        alts.join("|")
    };
    let core = if linex { format!("^(?:{core})$") } else { core };
    let full = if word && !linex {
        format!(r"(?:^|[^0-9A-Za-z_\n])({core})(?:[^0-9A-Za-z_\n]|$)")
    } else {
        core.clone()
    };
    let re = RegexBuilder::new(&full)
        .unicode(false)
        .multi_line(true)
        .case_insensitive(icase)
        .size_limit(256 << 20)
        .dfa_size_limit(256 << 20)
        .build()
        .map_err(|e| format!("invalid pattern: {e}"))?;
    let longest = if only && (!word || linex) {
        let syntax = regex_automata::util::syntax::Config::new()
            .unicode(false)
            .utf8(false)
            .multi_line(true)
            .case_insensitive(icase);
        let dfa = DFA::builder()
            .configure(DFA::config().match_kind(MatchKind::All))
            .syntax(syntax)
            .build(&core)
            .map_err(|e| format!("invalid pattern: {e}"))?;
        Some(dfa)
    } else {
        None
    };
    Ok(Matcher {
        re,
        longest,
        word: word && !linex,
        never,
    })
}

struct FileSearch<'a, W: Write> {
    o: &'a Opts,
    m: &'a Matcher,
    name: &'a [u8],
    out: &'a mut W,
    selected: u64,
    binary: bool,
    tool: &'a str,
}

impl<W: Write> FileSearch<'_, W> {
    /// Whether matching lines are printed (rather than counted or listed).
    fn printing(&self) -> bool {
        !(self.o.count || self.o.list.is_some() || self.o.quiet)
    }

    fn limit_reached(&self) -> bool {
        self.o.max_count.is_some_and(|m| self.selected >= m)
    }

    fn prefix(&mut self, lineno: u64, offset: u64, sep: u8) -> std::io::Result<()> {
        if self.o.with_name {
            self.out.write_all(self.name)?;
            if self.o.null_after_name {
                self.out.write_all(b"\0")?;
            } else {
                self.out.write_all(&[sep])?;
            }
        }
        if self.o.line_num {
            write!(self.out, "{lineno}")?;
            self.out.write_all(&[sep])?;
        }
        if self.o.byte_offset {
            write!(self.out, "{offset}")?;
            self.out.write_all(&[sep])?;
        }
        if self.o.initial_tab && (self.o.with_name || self.o.line_num || self.o.byte_offset) {
            self.out.write_all(b"\t")?;
        }
        Ok(())
    }

    /// A binary file's first selected line: GNU prints a notice instead.
    /// Returns true when the file's output must stop.
    fn binary_hit(&mut self) -> Result<bool, Fail> {
        if self.binary && self.printing() {
            self.out.flush()?;
            eprintln!(
                "{}: {}: binary file matches",
                self.tool,
                String::from_utf8_lossy(self.name)
            );
            return Ok(true);
        }
        Ok(false)
    }

    /// Whole-buffer search: no context, `-o` or `-b`.
    fn by_buffer(&mut self, mut r: Box<dyn Read>) -> Result<u64, Fail> {
        let mut buf = input::read_buf();
        let mut len = 0; // bytes held (a partial line carried over at the front)
        let mut eof = false;
        let mut lineno = 0u64;
        let mut asked = 0;
        let mut got = 0;
        while !eof {
            if len == buf.len() {
                buf.resize(buf.len() * 2, 0);
            } else {
                input::grow_when_filled(&mut buf, asked, got);
            }
            asked = buf.len() - len;
            let n =
                input::fill(&mut r, &mut buf[len..]).map_err(|e| Fail::Usage(input::errmsg(&e)))?;
            got = n;
            if n == 0 {
                eof = true;
                if len == 0 {
                    break;
                }
                if buf[len - 1] != b'\n' {
                    // Give the last line a terminator, as grep's output does.
                    if len == buf.len() {
                        buf.push(b'\n');
                    } else {
                        buf[len] = b'\n';
                    }
                    len += 1;
                }
            } else {
                if !self.o.text && memchr::memchr(0, &buf[len..len + n]).is_some() {
                    self.binary = true;
                }
                len += n;
            }
            let end = match memchr::memrchr(b'\n', &buf[..len]) {
                Some(p) => p + 1,
                None => continue,
            };
            let stop = self.search_region(&buf[..end], &mut lineno)?;
            if stop {
                return Ok(self.selected);
            }
            buf.copy_within(end..len, 0);
            len -= end;
        }
        Ok(self.selected)
    }

    /// Searches complete lines; returns true when the file is done (limit, -q, -l, binary).
    fn search_region(&mut self, region: &[u8], lineno: &mut u64) -> Result<bool, Fail> {
        let printing = self.printing();
        let only_first = self.o.quiet || self.o.list.is_some();
        let mut pos = 0;
        // Position up to which newlines have been counted into `lineno`.
        let mut counted = 0;
        while pos < region.len() {
            let hit = if self.m.never {
                None
            } else {
                self.m
                    .re
                    .find_at(region, pos)
                    .filter(|m| m.start() < region.len())
            };
            let (ls, le) = match hit {
                Some(m) => {
                    let ls = memchr::memrchr(b'\n', &region[pos..m.start()])
                        .map_or(pos, |p| pos + p + 1);
                    // With -w the wrapper may have consumed the newline-free neighbour; the line ends at the next newline.
                    let from = if m.start() > ls { m.start() } else { ls };
                    let le = memchr::memchr(b'\n', &region[from..])
                        .map_or(region.len(), |p| from + p + 1);
                    (ls, le)
                }
                None => (region.len(), region.len()),
            };
            if self.o.invert {
                // Every line in [pos, ls) is selected.
                let mut s = pos;
                while s < ls {
                    let e = memchr::memchr(b'\n', &region[s..ls]).map_or(ls, |p| s + p + 1);
                    self.selected += 1;
                    if printing {
                        if self.binary_hit()? {
                            return Ok(true);
                        }
                        if self.o.line_num {
                            *lineno +=
                                memchr::memchr_iter(b'\n', &region[counted..s]).count() as u64 + 1;
                            counted = e;
                        }
                        self.prefix(*lineno, 0, b':')?;
                        self.out.write_all(&region[s..e])?;
                    }
                    if only_first || self.limit_reached() {
                        return Ok(true);
                    }
                    s = e;
                }
            } else if ls < region.len() {
                self.selected += 1;
                if printing {
                    if self.binary_hit()? {
                        return Ok(true);
                    }
                    if self.o.line_num {
                        *lineno +=
                            memchr::memchr_iter(b'\n', &region[counted..ls]).count() as u64 + 1;
                        counted = le;
                    }
                    self.prefix(*lineno, 0, b':')?;
                    self.out.write_all(&region[ls..le])?;
                }
                if only_first || self.limit_reached() {
                    return Ok(true);
                }
            }
            pos = le;
        }
        if self.o.line_num {
            *lineno += memchr::memchr_iter(b'\n', &region[counted..]).count() as u64;
        }
        Ok(false)
    }

    /// The matches to show for `-o` in one line (without terminator).
    fn only_matches(&self, line: &[u8], cache: &mut Option<Cache>) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        let mut pos = 0;
        while pos <= line.len() {
            let (s, e) = if self.m.word {
                match self.m.re.captures_at(line, pos).and_then(|c| c.get(1)) {
                    Some(g) => (g.start(), g.end()),
                    None => break,
                }
            } else {
                let Some(mt) = self.m.re.find_at(line, pos) else {
                    break;
                };
                let mut e = mt.end();
                if let (Some(dfa), Some(c)) = (&self.m.longest, cache.as_mut()) {
                    let inp = Input::new(line).range(mt.start()..).anchored(Anchored::Yes);
                    if let Ok(Some(hm)) = dfa.try_search_fwd(c, &inp) {
                        e = e.max(hm.offset());
                    }
                }
                (mt.start(), e)
            };
            if e > s {
                v.push((s, e));
                pos = e;
            } else {
                pos = s + 1;
            }
        }
        v
    }

    /// Line-at-a-time search for context, `-o` and `-b`.
    fn by_lines(&mut self, r: Box<dyn Read>) -> Result<u64, Fail> {
        let mut lines = input::Lines::new(r, b'\n');
        let printing = self.printing();
        let mut cache = self.m.longest.as_ref().map(DFA::create_cache);
        let mut lineno = 0u64;
        let mut offset = 0u64;
        let mut pending_after = 0usize;
        let mut last_printed: Option<u64> = None;
        let mut before: VecDeque<(u64, u64, Vec<u8>)> = VecDeque::new();
        loop {
            let line = match lines.next() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => return Err(Fail::Usage(input::errmsg(&e))),
            };
            if !self.o.text && !self.binary && memchr::memchr(0, line).is_some() {
                self.binary = true;
            }
            lineno += 1;
            let this_off = offset;
            offset += line.len() as u64;
            let body = input::chomp(line, b'\n');
            let matched = !self.m.never && self.m.re.is_match(body);
            let selected = matched != self.o.invert;
            if selected && !self.limit_reached() {
                self.selected += 1;
                if !printing {
                    if self.o.quiet || self.o.list.is_some() {
                        return Ok(self.selected);
                    }
                    continue;
                }
                if self.binary_hit()? {
                    return Ok(self.selected);
                }
                if self.o.context {
                    if let (Some(lp), Some(sep)) = (last_printed, &self.o.group_sep) {
                        let first = before.front().map_or(lineno, |b| b.0);
                        if first > lp + 1 {
                            self.out.write_all(sep)?;
                            self.out.write_all(b"\n")?;
                        }
                    }
                    while let Some((n, off, l)) = before.pop_front() {
                        self.prefix(n, off, b'-')?;
                        self.out.write_all(&l)?;
                        self.out.write_all(b"\n")?;
                    }
                }
                if self.o.only {
                    if !self.o.invert {
                        for (s, e) in self.only_matches(body, &mut cache) {
                            self.prefix(lineno, this_off + s as u64, b':')?;
                            self.out.write_all(&body[s..e])?;
                            self.out.write_all(b"\n")?;
                        }
                    }
                } else {
                    self.prefix(lineno, this_off, b':')?;
                    self.out.write_all(body)?;
                    self.out.write_all(b"\n")?;
                }
                last_printed = Some(lineno);
                pending_after = self.o.after;
            } else {
                // GNU stops at the -m limit once the trailing context is out.
                if self.limit_reached() && pending_after == 0 {
                    break;
                }
                if pending_after > 0 && printing {
                    pending_after -= 1;
                    if !self.o.only {
                        self.prefix(lineno, this_off, b'-')?;
                        self.out.write_all(body)?;
                        self.out.write_all(b"\n")?;
                    }
                    last_printed = Some(lineno);
                } else if self.o.before > 0 {
                    if before.len() == self.o.before {
                        before.pop_front();
                    }
                    before.push_back((lineno, this_off, body.to_vec()));
                }
            }
        }
        Ok(self.selected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grep(pats: &[&str], o: Opts, fixed: bool, d: Dialect, input: &str) -> (Vec<u8>, u64) {
        let pats: Vec<Vec<u8>> = pats.iter().map(|p| p.as_bytes().to_vec()).collect();
        let m = build(&pats, d, fixed, false, false, false, o.only).unwrap();
        let mut out = Vec::new();
        let n = {
            let mut f = FileSearch {
                o: &o,
                m: &m,
                name: b"-",
                out: &mut out,
                selected: 0,
                binary: false,
                tool: "grep",
            };
            let r: Box<dyn Read> = Box::new(std::io::Cursor::new(input.as_bytes().to_vec()));
            if o.context || o.only {
                f.by_lines(r).unwrap()
            } else {
                f.by_buffer(r).unwrap()
            }
        };
        (out, n)
    }

    #[test]
    fn buffer_search_lines_numbers_invert() {
        let o = Opts {
            line_num: true,
            ..Default::default()
        };
        assert_eq!(
            grep(&["b"], o, false, Dialect::Basic, "abc\nxyz\nbb"),
            (b"1:abc\n3:bb\n".to_vec(), 2)
        );
        let o = Opts {
            invert: true,
            line_num: true,
            ..Default::default()
        };
        assert_eq!(
            grep(&["b"], o, false, Dialect::Basic, "abc\nxyz\nbb\nq\n"),
            (b"2:xyz\n4:q\n".to_vec(), 2)
        );
    }

    #[test]
    fn only_matching_is_leftmost_longest() {
        let o = Opts {
            only: true,
            ..Default::default()
        };
        assert_eq!(
            grep(&["a|ab"], o, false, Dialect::Extended, "xaby ab\n").0,
            b"ab\nab\n"
        );
    }

    #[test]
    fn context_separators() {
        let o = Opts {
            after: 1,
            context: true,
            group_sep: Some(b"--".to_vec()),
            ..Default::default()
        };
        assert_eq!(
            grep(&["m"], o, false, Dialect::Basic, "m\n1\n2\nm\n3\n").0,
            b"m\n1\n--\nm\n3\n"
        );
    }
}
