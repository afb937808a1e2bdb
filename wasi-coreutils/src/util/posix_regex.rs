//! Translation of GNU BRE/ERE syntax (C locale, bytes) into `regex` crate
//! syntax for `regex::bytes` with Unicode disabled.
//!
//! Guarantees: every literal byte is emitted as a `\xNN` escape, so any
//! byte (including invalid UTF-8) matches itself; bracket expressions are
//! expanded into explicit byte sets; nothing in a translated pattern can
//! match a newline (lines are searched inside large buffers). Constructs the
//! `regex` crate cannot express — back-references, collating elements —
//! are rejected with an error instead of being approximated.

#![allow(clippy::collapsible_if)]

use std::fmt::Write;

/// Which POSIX dialect the pattern is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Basic,
    Extended,
}

/// Why a pattern cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("back-references are not supported")]
    BackReference,
    #[error("Unmatched [, [^, [:, [., or [=")]
    UnmatchedBracket,
    #[error("Unmatched ( or \\(")]
    UnmatchedOpen,
    #[error("Unmatched ) or \\)")]
    UnmatchedClose,
    #[error("Invalid character class name")]
    BadClass,
    #[error("collating elements and equivalence classes ([. .] [= =]) are not supported")]
    Collating,
    #[error("Invalid content of \\{{\\}}")]
    BadInterval,
    #[error("Trailing backslash")]
    TrailingBackslash,
}

const WORD: &str = r"[0-9A-Za-z_]";
const NOT_WORD: &str = r"[^0-9A-Za-z_\n]";

/// A 256-bit byte set.
#[derive(Clone, Copy, Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn add(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1 << (b & 63);
    }
    fn has(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1 << (b & 63)) != 0
    }
    fn emit(&self, out: &mut String) {
        out.push('[');
        let mut b = 0u16;
        let mut any = false;
        while b < 256 {
            if self.has(b as u8) {
                let s = b;
                while b < 256 && self.has(b as u8) {
                    b += 1;
                }
                let _ = write!(out, "\\x{s:02X}");
                if b - 1 > s {
                    let _ = write!(out, "-\\x{:02X}", b - 1);
                }
                any = true;
            } else {
                b += 1;
            }
        }
        if !any {
            // An empty class: matches nothing.
            out.clear_last_bracket();
            out.push_str(r"[^\x00-\xFF]");
            return;
        }
        out.push(']');
    }
}

trait ClearBracket {
    fn clear_last_bracket(&mut self);
}
impl ClearBracket for String {
    fn clear_last_bracket(&mut self) {
        self.pop();
    }
}

/// The bytes of a POSIX character class in the C locale.
fn class_bytes(name: &[u8]) -> Option<Vec<u8>> {
    let f: fn(u8) -> bool = match name {
        b"alpha" => |c| c.is_ascii_alphabetic(),
        b"digit" => |c| c.is_ascii_digit(),
        b"alnum" => |c| c.is_ascii_alphanumeric(),
        b"upper" => |c| c.is_ascii_uppercase(),
        b"lower" => |c| c.is_ascii_lowercase(),
        b"space" => |c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 11 | 12),
        b"blank" => |c| c == b' ' || c == b'\t',
        b"punct" => |c| c.is_ascii_punctuation(),
        b"print" => |c| (32..127).contains(&c),
        b"graph" => |c| (33..127).contains(&c),
        b"cntrl" => |c| c < 32 || c == 127,
        b"xdigit" => |c| c.is_ascii_hexdigit(),
        _ => return None,
    };
    Some((0..=255u8).filter(|&c| f(c)).collect())
}

/// Parses a bracket expression starting just after `[`; returns the set and the index after `]`.
fn bracket(p: &[u8], mut i: usize) -> Result<(ByteSet, bool, usize), TranslateError> {
    let mut set = ByteSet::default();
    let negate = p.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = p.get(i) else {
            return Err(TranslateError::UnmatchedBracket);
        };
        if c == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        if c == b'[' && matches!(p.get(i + 1), Some(b':' | b'.' | b'=')) {
            let kind = p[i + 1];
            let start = i + 2;
            let mut j = start;
            while j + 1 < p.len() && !(p[j] == kind && p[j + 1] == b']') {
                j += 1;
            }
            if j + 1 >= p.len() {
                return Err(TranslateError::UnmatchedBracket);
            }
            let name = &p[start..j];
            i = j + 2;
            match kind {
                b':' => {
                    for b in class_bytes(name).ok_or(TranslateError::BadClass)? {
                        set.add(b);
                    }
                }
                _ if name.len() == 1 => set.add(name[0]),
                _ => return Err(TranslateError::Collating),
            }
            continue;
        }
        // A range `a-z` (a `-` first or last is literal).
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
            let mut hi = p[i + 2];
            let mut next = i + 3;
            if hi == b'[' && p.get(i + 3) == Some(&b'.') {
                // `[.x.]` as a range end.
                if p.get(i + 5) == Some(&b'.') && p.get(i + 6) == Some(&b']') {
                    hi = p[i + 4];
                    next = i + 7;
                } else {
                    return Err(TranslateError::Collating);
                }
            }
            for b in c..=hi {
                set.add(b);
            }
            i = next;
            continue;
        }
        set.add(c);
        i += 1;
    }
    Ok((set, negate, i))
}

fn literal(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() {
        out.push(b as char);
    } else {
        let _ = write!(out, "\\x{b:02X}");
    }
}

/// Escapes a fixed string (`grep -F`) as a regex.
pub fn escape_fixed(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for &b in s {
        literal(&mut out, b);
    }
    out
}

/// Translates one GNU BRE/ERE (a single line; grep splits patterns at newlines).
pub fn translate(p: &[u8], dialect: Dialect) -> Result<String, TranslateError> {
    let ere = dialect == Dialect::Extended;
    let mut out = String::with_capacity(p.len() * 2);
    let mut i = 0;
    let mut depth = 0usize;
    // True where a repetition operator has nothing to repeat (start of RE,
    // after `(` or `|`, or after an anchor `^`): GNU treats it as a literal.
    let mut at_start = true;
    while i < p.len() {
        let c = p[i];
        i += 1;
        let was_start = at_start;
        at_start = false;
        match c {
            b'\\' => {
                let Some(&e) = p.get(i) else {
                    return Err(TranslateError::TrailingBackslash);
                };
                i += 1;
                match e {
                    b'(' if !ere => {
                        depth += 1;
                        out.push('(');
                        at_start = true;
                    }
                    b')' if !ere => {
                        if depth == 0 {
                            return Err(TranslateError::UnmatchedClose);
                        }
                        depth -= 1;
                        out.push(')');
                    }
                    b'|' if !ere => {
                        out.push('|');
                        at_start = true;
                    }
                    b'{' if !ere => {
                        if was_start {
                            return Err(TranslateError::BadInterval);
                        }
                        let (txt, next) =
                            interval(p, i, true)?.ok_or(TranslateError::BadInterval)?;
                        out.push_str(&txt);
                        i = next;
                    }
                    b'+' | b'?' if !ere => {
                        if was_start {
                            literal(&mut out, e);
                        } else {
                            out.push(e as char);
                        }
                    }
                    b'1'..=b'9' => return Err(TranslateError::BackReference),
                    b'<' => out.push_str(r"\b{start}"),
                    b'>' => out.push_str(r"\b{end}"),
                    b'b' => out.push_str(r"\b"),
                    b'B' => out.push_str(r"\B"),
                    b'w' => out.push_str(WORD),
                    b'W' => out.push_str(NOT_WORD),
                    b's' => out.push_str(r"[\t\x0B\x0C\r ]"),
                    b'S' => out.push_str(r"[^\t\n\x0B\x0C\r ]"),
                    b'`' => out.push('^'),
                    b'\'' => out.push('$'),
                    _ => literal(&mut out, e),
                }
            }
            b'[' => {
                let (mut set, negate, next) = bracket(p, i)?;
                i = next;
                if negate {
                    let mut inv = ByteSet::default();
                    for b in 0..=255u8 {
                        if !set.has(b) && b != b'\n' {
                            inv.add(b);
                        }
                    }
                    set = inv;
                }
                set.emit(&mut out);
            }
            b'.' => out.push_str(r"[^\n]"),
            b'*' => {
                if was_start {
                    literal(&mut out, c);
                } else {
                    out.push('*');
                }
            }
            b'^' => {
                if ere || was_start {
                    out.push('^');
                    at_start = true;
                } else {
                    literal(&mut out, c);
                }
            }
            b'$' => {
                let at_end =
                    ere || i == p.len() || p[i..].starts_with(b"\\)") || p[i..].starts_with(b"\\|");
                if at_end {
                    out.push('$');
                } else {
                    literal(&mut out, c);
                }
            }
            b'(' if ere => {
                depth += 1;
                out.push('(');
                at_start = true;
            }
            b')' if ere => {
                if depth == 0 {
                    literal(&mut out, c);
                } else {
                    depth -= 1;
                    out.push(')');
                }
            }
            b'|' if ere => {
                out.push('|');
                at_start = true;
            }
            b'+' | b'?' if ere => {
                if was_start {
                    literal(&mut out, c);
                } else {
                    out.push(c as char);
                }
            }
            b'{' if ere => match interval(p, i, false)? {
                Some((txt, next)) if !was_start => {
                    out.push_str(&txt);
                    i = next;
                }
                _ => literal(&mut out, c),
            },
            _ => literal(&mut out, c),
        }
    }
    if depth > 0 {
        return Err(TranslateError::UnmatchedOpen);
    }
    Ok(out)
}

/// Parses `m,n}` (BRE: `m,n\}`) after the opening brace. `None` when it is
/// not an interval (ERE then treats `{` literally).
fn interval(p: &[u8], mut i: usize, bre: bool) -> Result<Option<(String, usize)>, TranslateError> {
    let num = |i: &mut usize| -> Option<u32> {
        let s = *i;
        while *i < p.len() && p[*i].is_ascii_digit() {
            *i += 1;
        }
        std::str::from_utf8(&p[s..*i]).ok()?.parse().ok()
    };
    let lo = num(&mut i);
    let mut hi = lo;
    let mut comma = false;
    if p.get(i) == Some(&b',') {
        comma = true;
        i += 1;
        hi = num(&mut i);
    }
    let close_ok = if bre {
        p[i..].starts_with(b"\\}")
    } else {
        p.get(i) == Some(&b'}')
    };
    if !close_ok || (lo.is_none() && !comma) {
        return if bre {
            Err(TranslateError::BadInterval)
        } else {
            Ok(None)
        };
    }
    i += if bre { 2 } else { 1 };
    let lo = lo.unwrap_or(0);
    if let Some(h) = hi {
        if h < lo {
            return Err(TranslateError::BadInterval);
        }
    }
    let txt = match (comma, hi) {
        (false, _) => format!("{{{lo}}}"),
        (true, None) => format!("{{{lo},}}"),
        (true, Some(h)) => format!("{{{lo},{h}}}"),
    };
    Ok(Some((txt, i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, d: Dialect, hay: &str) -> bool {
        let t = translate(p.as_bytes(), d).unwrap();
        regex::bytes::RegexBuilder::new(&t)
            .unicode(false)
            .build()
            .unwrap()
            .is_match(hay.as_bytes())
    }

    #[test]
    fn bre_basics() {
        use Dialect::Basic as B;
        assert!(m("a\\(b\\)*c", B, "xabbc"));
        assert!(m("a+b", B, "a+b"));
        assert!(!m("a+b", B, "aab"));
        assert!(m("a\\+b", B, "aab"));
        assert!(m("*a", B, "*a"));
        assert!(m("a\\{2\\}", B, "aa"));
        assert!(!m("^a\\{2\\}$", B, "a"));
        assert!(m("a^b$c", B, "a^b$c"));
        assert!(m("[]a]", B, "]"));
        assert!(m("[^]a]", B, "b"));
        assert!(m("[[:digit:]x-z]", B, "y"));
        assert!(m("\\<foo\\>", B, "a foo b"));
        assert!(!m("\\<foo\\>", B, "afoo"));
        assert!(m("a.c", B, "a\u{1}c"));
        assert!(!m("[^a]", B, "\n"));
    }

    #[test]
    fn ere_basics() {
        use Dialect::Extended as E;
        assert!(m("(ab)+|z", E, "abab"));
        assert!(m("a{", E, "a{"));
        assert!(m("a{1,2}b", E, "aab"));
        assert!(m("\\(x\\)", E, "(x)"));
        assert!(m("[.]", E, "."));
    }

    #[test]
    fn rejections() {
        assert_eq!(
            translate(b"\\(a\\)\\1", Dialect::Basic),
            Err(TranslateError::BackReference)
        );
        assert_eq!(
            translate(b"[a", Dialect::Basic),
            Err(TranslateError::UnmatchedBracket)
        );
        assert_eq!(
            translate(b"(a", Dialect::Extended),
            Err(TranslateError::UnmatchedOpen)
        );
        assert_eq!(
            translate(b"[[:foo:]]", Dialect::Extended),
            Err(TranslateError::BadClass)
        );
    }

    proptest::proptest! {
        #[test]
        fn translation_compiles_or_errors(p in proptest::collection::vec(proptest::num::u8::ANY, 0..20), ere in proptest::bool::ANY) {
            let d = if ere { Dialect::Extended } else { Dialect::Basic };
            if let Ok(t) = translate(&p, d) {
                // Either a valid regex or a size-limit error, never a panic.
                let _ = regex::bytes::RegexBuilder::new(&t).unicode(false).build();
            }
        }
    }
}
