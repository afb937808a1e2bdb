//! POSIX regular expressions (GNU BRE, GNU ERE and awk's ERE dialect) on
//! bytes, translated to the `regex` crate, shared by `sed` and `awk`.
//!
//! Guarantees: matching is byte-wise as in the C locale; `.` and negated
//! brackets match newline (as GNU sed and gawk do); the overall match is
//! POSIX leftmost-longest (an anchored longest-match DFA corrects the
//! leftmost-first answer of `regex` when the pattern has alternation or
//! optional groups). What `regex` cannot do — back-references in the
//! pattern — is rejected with [`ReError::Unsupported`], never mis-matched.

use std::cell::RefCell;
use std::fmt::Write as _;

use regex::bytes::Regex;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::{Anchored, Input, MatchKind};

/// Which flavour of POSIX syntax a pattern is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// GNU basic regular expressions (sed default): `\(`, `\{`, `\|`, `\+`, `\?`.
    Bre,
    /// GNU extended regular expressions (`sed -E`).
    Ere,
    /// awk's ERE: backslash escapes also inside brackets, `\y` is a word boundary.
    Awk,
}

/// Why a pattern could not be compiled.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReError {
    /// A construct the `regex` crate cannot express.
    #[error("unsupported in regular expression: {0}")]
    Unsupported(String),
    /// A malformed pattern (GNU-style message).
    #[error("{0}")]
    Syntax(String),
}

/// A compiled POSIX pattern.
#[derive(Debug)]
pub struct PosixRegex {
    re: Regex,
    /// Present when leftmost-first may differ from leftmost-longest.
    longest: Option<Longest>,
    groups: usize,
}

#[derive(Debug)]
struct Longest {
    dfa: DFA,
    cache: RefCell<Cache>,
    /// `(?:pat)\z`, to recover groups for a match ending at a given offset.
    anchored_end: Regex,
}

/// The pattern in `regex` syntax plus facts the matcher needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// `regex` crate syntax, without flags.
    pub pattern: String,
    /// Alternation or a quantified group: leftmost-first may be shorter than POSIX.
    pub ambiguous: bool,
    /// Number of capture groups.
    pub groups: usize,
}

impl PosixRegex {
    /// Compiles `src` in `dialect`; `icase` makes it ASCII case-insensitive.
    pub fn new(src: &[u8], dialect: Dialect, icase: bool) -> Result<Self, ReError> {
        Self::with_flags(src, dialect, icase, false)
    }

    /// Like [`new`](Self::new); `multiline` makes `^`/`$` also match around
    /// embedded newlines (sed's `M` flag).
    pub fn with_flags(
        src: &[u8],
        dialect: Dialect,
        icase: bool,
        multiline: bool,
    ) -> Result<Self, ReError> {
        let t = translate(src, dialect)?;
        let flags = match (icase, multiline) {
            (false, false) => "(?s-u)",
            (true, false) => "(?is-u)",
            (false, true) => "(?sm-u)",
            (true, true) => "(?ism-u)",
        };
        let full = format!("{flags}(?:{})", t.pattern);
        let re = regex::bytes::RegexBuilder::new(&full)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| ReError::Syntax(short_regex_error(&e)))?;
        let longest = if t.ambiguous {
            let dfa = DFA::builder()
                .configure(DFA::config().match_kind(MatchKind::All))
                .syntax(
                    regex_automata::util::syntax::Config::new()
                        .unicode(false)
                        .utf8(false)
                        .case_insensitive(icase)
                        .multi_line(multiline)
                        .dot_matches_new_line(true),
                )
                .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
                .build(&t.pattern)
                .map_err(|e| ReError::Syntax(e.to_string()))?;
            let cache = RefCell::new(dfa.create_cache());
            let anchored_end = regex::bytes::RegexBuilder::new(&format!("{full}\\z"))
                .size_limit(64 << 20)
                .build()
                .map_err(|e| ReError::Syntax(short_regex_error(&e)))?;
            Some(Longest {
                dfa,
                cache,
                anchored_end,
            })
        } else {
            None
        };
        Ok(PosixRegex {
            re,
            longest,
            groups: t.groups,
        })
    }

    /// Number of capture groups (`\1`..`\9` in replacements may not exceed it).
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// True when the pattern matches anywhere in `hay`.
    pub fn is_match(&self, hay: &[u8]) -> bool {
        self.re.is_match(hay)
    }

    /// The leftmost-longest match starting at or after `start`.
    pub fn find_at(&self, hay: &[u8], start: usize) -> Option<(usize, usize)> {
        let m = self.re.find_at(hay, start)?;
        Some((m.start(), self.longest_end(hay, m.start(), m.end())))
    }

    /// Like [`find_at`](Self::find_at), also filling `locs` with the
    /// groups (index 0 is the whole match). Returns false when no match.
    pub fn captures_at(
        &self,
        hay: &[u8],
        start: usize,
        locs: &mut Vec<Option<(usize, usize)>>,
    ) -> bool {
        let Some(caps) = self.re.captures_at(hay, start) else {
            return false;
        };
        let Some(whole) = caps.get(0) else {
            return false;
        };
        let end = self.longest_end(hay, whole.start(), whole.end());
        locs.clear();
        if end == whole.end() {
            locs.extend(caps.iter().map(|g| g.map(|m| (m.start(), m.end()))));
            return true;
        }
        if let Some(l) = &self.longest
            && let Some(c2) = l.anchored_end.captures_at(&hay[..end], whole.start())
            && c2.get(0).map(|m| m.start()) == Some(whole.start())
        {
            locs.extend(c2.iter().map(|g| g.map(|m| (m.start(), m.end()))));
            return true;
        }
        // The longest end could not be reproduced with groups: keep the
        // groups of the leftmost-first match but report the POSIX extent.
        locs.extend(caps.iter().map(|g| g.map(|m| (m.start(), m.end()))));
        locs[0] = Some((whole.start(), end));
        true
    }

    fn longest_end(&self, hay: &[u8], start: usize, end: usize) -> usize {
        let Some(l) = &self.longest else {
            return end;
        };
        let Ok(mut cache) = l.cache.try_borrow_mut() else {
            return end;
        };
        let input = Input::new(hay).range(start..).anchored(Anchored::Yes);
        match l.dfa.try_search_fwd(&mut cache, &input) {
            Ok(Some(hm)) if hm.offset() > end => hm.offset(),
            _ => end,
        }
    }
}

fn short_regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(_) => "regular expression too big".to_string(),
        other => {
            let s = other.to_string();
            s.lines()
                .last()
                .unwrap_or("invalid regular expression")
                .trim()
                .to_string()
        }
    }
}

fn push_lit(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || b == b' ' || b == b'_' {
        out.push(b as char);
    } else {
        let _ = write!(out, "\\x{b:02X}");
    }
}

const CLASSES: &[&str] = &[
    "alpha", "digit", "alnum", "upper", "lower", "space", "blank", "punct", "print", "graph",
    "cntrl", "xdigit",
];

/// Translates a POSIX pattern to `regex` syntax (no flags prepended).
pub fn translate(src: &[u8], dialect: Dialect) -> Result<Translated, ReError> {
    let mut p = Translator {
        src,
        i: 0,
        dialect,
        out: String::new(),
        ambiguous: false,
        groups: 0,
    };
    p.run()?;
    Ok(Translated {
        pattern: p.out,
        ambiguous: p.ambiguous,
        groups: p.groups,
    })
}

struct Translator<'a> {
    src: &'a [u8],
    i: usize,
    dialect: Dialect,
    out: String,
    ambiguous: bool,
    groups: usize,
}

impl Translator<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.src.get(self.i + k).copied()
    }

    fn run(&mut self) -> Result<(), ReError> {
        let bre = self.dialect == Dialect::Bre;
        // Start offset in `out` of the last atom, None right after `(`, `|` or at start.
        let mut atom: Option<usize> = None;
        let mut atom_quantified = false;
        let mut atom_is_group = false;
        let mut open: Vec<usize> = Vec::new();
        while let Some(c) = self.peek(0) {
            let here = self.out.len();
            // Decode one token: (kind, consumed)
            enum Tok {
                Lit(u8),
                Raw(&'static str),
                Open,
                Close,
                Alt,
                Star,
                Plus,
                Quest,
                Interval(u32, Option<u32>),
                Class,
                Caret,
                Dollar,
            }
            let tok = match c {
                b'\\' => {
                    let Some(n) = self.peek(1) else {
                        return Err(ReError::Syntax("trailing backslash (\\)".into()));
                    };
                    self.i += 2;
                    match n {
                        b'(' if bre => Tok::Open,
                        b')' if bre => Tok::Close,
                        b'|' if bre => Tok::Alt,
                        b'+' if bre => Tok::Plus,
                        b'?' if bre => Tok::Quest,
                        b'{' if bre => {
                            let (m, n2) = self.interval(true)?;
                            Tok::Interval(m, n2)
                        }
                        b'1'..=b'9' => {
                            return Err(ReError::Unsupported(
                                "back-references in the pattern".into(),
                            ));
                        }
                        b'w' => Tok::Raw("[0-9A-Za-z_]"),
                        b'W' => Tok::Raw("[^0-9A-Za-z_]"),
                        b's' => Tok::Raw("[\\t\\n\\v\\f\\r ]"),
                        b'S' => Tok::Raw("[^\\t\\n\\v\\f\\r ]"),
                        b'<' => Tok::Raw("\\b{start}"),
                        b'>' => Tok::Raw("\\b{end}"),
                        b'y' if self.dialect == Dialect::Awk => Tok::Raw("\\b"),
                        b'b' if self.dialect != Dialect::Awk => Tok::Raw("\\b"),
                        b'B' => Tok::Raw("\\B"),
                        b'`' => Tok::Raw("\\A"),
                        b'\'' => Tok::Raw("\\z"),
                        b'n' => Tok::Lit(b'\n'),
                        b't' => Tok::Lit(b'\t'),
                        b'r' => Tok::Lit(b'\r'),
                        b'f' => Tok::Lit(0x0c),
                        b'v' => Tok::Lit(0x0b),
                        b'a' => Tok::Lit(0x07),
                        b'b' => Tok::Lit(0x08),
                        other => Tok::Lit(other),
                    }
                }
                b'(' if !bre => {
                    self.i += 1;
                    Tok::Open
                }
                b')' if !bre && !open.is_empty() => {
                    self.i += 1;
                    Tok::Close
                }
                b'|' if !bre => {
                    self.i += 1;
                    Tok::Alt
                }
                b'*' => {
                    self.i += 1;
                    Tok::Star
                }
                b'+' if !bre => {
                    self.i += 1;
                    Tok::Plus
                }
                b'?' if !bre => {
                    self.i += 1;
                    Tok::Quest
                }
                b'{' if !bre => {
                    let save = self.i;
                    self.i += 1;
                    match self.interval(false) {
                        Ok((m, n)) => Tok::Interval(m, n),
                        Err(_) => {
                            self.i = save + 1;
                            Tok::Lit(b'{')
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    Tok::Class
                }
                b'.' => {
                    self.i += 1;
                    Tok::Raw(".")
                }
                b'^' => {
                    self.i += 1;
                    // In a BRE, `^` anchors only at the start of the pattern
                    // or of a group/alternative.
                    if bre
                        && (atom.is_some()
                            || (here > 0 && !self.out.ends_with('(') && !self.out.ends_with('|')))
                    {
                        Tok::Lit(b'^')
                    } else {
                        Tok::Caret
                    }
                }
                b'$' => {
                    self.i += 1;
                    let at_end = self.i == self.src.len()
                        || self.src[self.i..].starts_with(b"\\)")
                        || self.src[self.i..].starts_with(b"\\|");
                    if bre && !at_end {
                        Tok::Lit(b'$')
                    } else {
                        Tok::Dollar
                    }
                }
                other => {
                    self.i += 1;
                    Tok::Lit(other)
                }
            };
            let is_quant = matches!(tok, Tok::Star | Tok::Plus | Tok::Quest | Tok::Interval(..));
            if is_quant {
                let Some(start) = atom else {
                    // Nothing to repeat: GNU takes the operator literally.
                    match tok {
                        Tok::Star => push_lit(&mut self.out, b'*'),
                        Tok::Plus => push_lit(&mut self.out, b'+'),
                        Tok::Quest => push_lit(&mut self.out, b'?'),
                        Tok::Interval(..) => {
                            if bre {
                                return Err(ReError::Syntax(
                                    "Invalid preceding regular expression".into(),
                                ));
                            }
                            push_lit(&mut self.out, b'{');
                        }
                        _ => {}
                    }
                    atom = Some(here);
                    atom_quantified = false;
                    atom_is_group = false;
                    continue;
                };
                if atom_quantified {
                    self.out.insert_str(start, "(?:");
                    self.out.push(')');
                }
                if atom_is_group || atom_quantified {
                    self.ambiguous = true;
                }
                match tok {
                    Tok::Star => self.out.push('*'),
                    Tok::Plus => self.out.push('+'),
                    Tok::Quest => self.out.push('?'),
                    Tok::Interval(m, n) => {
                        if m > 1000 || n.is_some_and(|n| n > 1000) {
                            return Err(ReError::Syntax("Regular expression too big".into()));
                        }
                        match n {
                            Some(n) if n < m => {
                                return Err(ReError::Syntax("Invalid content of \\{\\}".into()));
                            }
                            Some(n) => {
                                let _ = write!(self.out, "{{{m},{n}}}");
                            }
                            None => {
                                let _ = write!(self.out, "{{{m},}}");
                            }
                        }
                    }
                    _ => {}
                }
                atom_quantified = true;
                continue;
            }
            match tok {
                Tok::Lit(b) => push_lit(&mut self.out, b),
                Tok::Raw(s) => self.out.push_str(s),
                Tok::Class => self.class()?,
                Tok::Caret => self.out.push('^'),
                Tok::Dollar => self.out.push('$'),
                Tok::Open => {
                    self.groups += 1;
                    open.push(here);
                    self.out.push('(');
                    atom = None;
                    atom_quantified = false;
                    continue;
                }
                Tok::Close => {
                    let Some(start) = open.pop() else {
                        return Err(ReError::Syntax("Unmatched ) or \\)".into()));
                    };
                    self.out.push(')');
                    atom = Some(start);
                    atom_quantified = false;
                    atom_is_group = true;
                    continue;
                }
                Tok::Alt => {
                    self.ambiguous = true;
                    self.out.push('|');
                    atom = None;
                    atom_quantified = false;
                    continue;
                }
                _ => {}
            }
            // Anchors cannot be repeated meaningfully; GNU treats `^*` as literal star.
            atom = if matches!(tok, Tok::Caret) {
                None
            } else {
                Some(here)
            };
            atom_quantified = false;
            atom_is_group = false;
        }
        if !open.is_empty() {
            return Err(ReError::Syntax("Unmatched ( or \\(".into()));
        }
        Ok(())
    }

    /// Parses `m}`, `m,}`, `m,n}` (BRE: `\}`), after the opening brace.
    fn interval(&mut self, bre: bool) -> Result<(u32, Option<u32>), ReError> {
        let bad = || ReError::Syntax("Invalid content of \\{\\}".into());
        let num = |t: &mut Self| -> Option<u32> {
            let s = t.i;
            while t.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                t.i += 1;
            }
            std::str::from_utf8(&t.src[s..t.i]).ok()?.parse().ok()
        };
        let m = num(self);
        let n = if self.peek(0) == Some(b',') {
            self.i += 1;
            num(self)
        } else {
            Some(m.ok_or_else(bad)?)
        };
        let m = m.unwrap_or(0);
        if bre {
            if self.peek(0) == Some(b'\\') && self.peek(1) == Some(b'}') {
                self.i += 2;
            } else {
                return Err(ReError::Syntax("Unmatched \\{".into()));
            }
        } else if self.peek(0) == Some(b'}') {
            self.i += 1;
        } else {
            return Err(bad());
        }
        Ok((m, n))
    }

    /// Translates a bracket expression; `self.i` is just after `[`.
    fn class(&mut self) -> Result<(), ReError> {
        let unterminated = || ReError::Syntax("unterminated [".into());
        let mut items = String::from("[");
        if self.peek(0) == Some(b'^') {
            items.push('^');
            self.i += 1;
        }
        let mut first = true;
        let mut any = false;
        loop {
            let c = self.peek(0).ok_or_else(unterminated)?;
            if c == b']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            let lo = match c {
                b'[' if matches!(self.peek(1), Some(b':' | b'=' | b'.')) => {
                    let kind = self.peek(1).unwrap_or(b':');
                    let start = self.i + 2;
                    let mut j = start;
                    while j + 1 < self.src.len()
                        && !(self.src[j] == kind && self.src[j + 1] == b']')
                    {
                        j += 1;
                    }
                    if j + 1 >= self.src.len() {
                        return Err(unterminated());
                    }
                    let name = &self.src[start..j];
                    self.i = j + 2;
                    if kind == b':' {
                        let name = std::str::from_utf8(name).unwrap_or("");
                        if !CLASSES.contains(&name) {
                            return Err(ReError::Syntax("Invalid character class name".into()));
                        }
                        let _ = write!(items, "[:{name}:]");
                        any = true;
                        continue;
                    }
                    if name.len() != 1 {
                        return Err(ReError::Unsupported(
                            "multi-character collating elements".into(),
                        ));
                    }
                    name[0]
                }
                b'\\' if self.dialect == Dialect::Awk => {
                    let n = self.peek(1).ok_or_else(unterminated)?;
                    self.i += 2;
                    escape_byte(n)
                }
                b'\\' if matches!(self.peek(1), Some(b'n' | b't' | b'\\')) => {
                    let n = self.peek(1).unwrap_or(b'\\');
                    self.i += 2;
                    escape_byte(n)
                }
                _ => {
                    self.i += 1;
                    c
                }
            };
            // A range `lo-hi` unless `-` is last.
            if self.peek(0) == Some(b'-') && self.peek(1).is_some_and(|c| c != b']') {
                self.i += 1;
                let h = self.peek(0).ok_or_else(unterminated)?;
                let hi = if h == b'\\' && self.dialect == Dialect::Awk {
                    let n = self.peek(1).ok_or_else(unterminated)?;
                    self.i += 2;
                    escape_byte(n)
                } else if h == b'[' && self.peek(1) == Some(b'.') && self.peek(3) == Some(b'.') {
                    self.i += 5;
                    self.src.get(self.i - 3).copied().unwrap_or(h)
                } else {
                    self.i += 1;
                    h
                };
                if hi < lo {
                    return Err(ReError::Syntax("Invalid range end".into()));
                }
                let _ = write!(items, "\\x{lo:02X}-\\x{hi:02X}");
            } else {
                let _ = write!(items, "\\x{lo:02X}");
            }
            any = true;
        }
        if !any {
            return Err(unterminated());
        }
        items.push(']');
        self.out.push_str(&items);
        Ok(())
    }
}

/// The byte a backslash escape inside an awk bracket stands for.
fn escape_byte(n: u8) -> u8 {
    match n {
        b'n' => b'\n',
        b't' => b'\t',
        b'r' => b'\r',
        b'f' => 0x0c,
        b'v' => 0x0b,
        b'a' => 0x07,
        b'b' => 0x08,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(p: &str, d: Dialect, h: &str) -> Option<(usize, usize)> {
        PosixRegex::new(p.as_bytes(), d, false)
            .unwrap()
            .find_at(h.as_bytes(), 0)
    }

    #[test]
    fn leftmost_longest_alternation() {
        assert_eq!(find("a|ab", Dialect::Ere, "abcd"), Some((0, 2)));
        assert_eq!(find("(ab)?(abcd)?", Dialect::Ere, "abcd"), Some((0, 4)));
    }

    #[test]
    fn bre_specials() {
        assert_eq!(find("a\\{2\\}", Dialect::Bre, "caaa"), Some((1, 3)));
        assert_eq!(find("a+", Dialect::Bre, "aa+"), Some((1, 3)));
        assert_eq!(find("*a", Dialect::Bre, "x*a"), Some((1, 3)));
        assert_eq!(find("a^b$c", Dialect::Bre, "a^b$c"), Some((0, 5)));
        assert_eq!(find("\\(^a\\)", Dialect::Bre, "ab"), Some((0, 1)));
    }

    #[test]
    fn brackets() {
        assert_eq!(find("[]a]+", Dialect::Ere, "x]a]"), Some((1, 4)));
        assert_eq!(find("[^[:digit:]]", Dialect::Ere, "12x"), Some((2, 3)));
        assert_eq!(find("[\\/]", Dialect::Awk, "a/b"), Some((1, 2)));
        assert_eq!(find("[a-c-]+", Dialect::Ere, "zb-a"), Some((1, 4)));
        assert_eq!(find("x{", Dialect::Ere, "x{"), Some((0, 2)));
    }

    #[test]
    fn backrefs_rejected() {
        assert!(matches!(
            PosixRegex::new(b"\\(a\\)\\1", Dialect::Bre, false),
            Err(ReError::Unsupported(_))
        ));
    }

    #[test]
    fn captures_follow_longest() {
        let re = PosixRegex::new(b"(a|ab)(c|bcd)", Dialect::Ere, false).unwrap();
        let mut locs = Vec::new();
        assert!(re.captures_at(b"abcd", 0, &mut locs));
        assert_eq!(locs[0], Some((0, 4)));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(p in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            for d in [Dialect::Bre, Dialect::Ere, Dialect::Awk] {
                if let Ok(re) = PosixRegex::new(&p, d, false) {
                    let _ = re.find_at(b"abc\n[]()*+?{}", 0);
                }
            }
        }
    }
}
