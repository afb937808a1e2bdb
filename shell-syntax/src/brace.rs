//! Bash's brace expansion on a word's source text: `a{b,c}d` becomes the
//! words `abd acd`, `{1..3}` becomes `1 2 3` (also `{a..e}`, `{01..10}`,
//! `{1..10..3}`, descending ranges). It happens first, before parameter,
//! command and pathname expansion, so it works on the raw text: quoted
//! text, `\` escapes and `$...` expansions (`${x}`, `$(...)`) are never
//! brace patterns. A `{...}` without a top-level comma or a valid range is
//! left as it is, as bash leaves it.
//!
//! Guarantee: at most [`MAX_WORDS`] words come out of one word; more is an
//! error rather than unbounded memory.

use crate::error::ScriptError;

/// Most words one word may expand to.
pub const MAX_WORDS: usize = 10_000;

/// Expand `text` into its words (a single word when there is nothing to
/// expand).
pub fn expand(text: &str) -> Result<Vec<String>, ScriptError> {
    let mut out = Vec::new();
    expand_into(text, &mut out, text)?;
    Ok(out)
}

fn too_many(near: &str) -> ScriptError {
    ScriptError::unsupported(
        "brace expansion into more than 10000 words",
        near.to_owned(),
    )
}

fn expand_into(text: &str, out: &mut Vec<String>, near: &str) -> Result<(), ScriptError> {
    let Some((open, close, alts)) = first_pattern(text) else {
        if out.len() >= MAX_WORDS {
            return Err(too_many(near));
        }
        out.push(text.to_owned());
        return Ok(());
    };
    let (pre, post) = (&text[..open], &text[close + 1..]);
    for alt in alts {
        // The alternative and what follows may hold further patterns.
        expand_into(&format!("{pre}{alt}{post}"), out, near)?;
    }
    Ok(())
}

/// Byte index just past the quoted or `$` construct starting at `i`, if
/// one starts there.
fn skip_special(b: &[u8], i: usize) -> Option<usize> {
    match b[i] {
        b'\\' => Some((i + 2).min(b.len())),
        b'\'' => Some(
            b[i + 1..]
                .iter()
                .position(|&c| c == b'\'')
                .map_or(b.len(), |p| i + p + 2),
        ),
        b'"' => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some((j + 1).min(b.len()))
        }
        b'$' if i + 1 < b.len() && matches!(b[i + 1], b'{' | b'(') => {
            let (open, close) = if b[i + 1] == b'{' {
                (b'{', b'}')
            } else {
                (b'(', b')')
            };
            let mut depth = 0usize;
            let mut j = i + 1;
            while j < b.len() {
                let c = b[j];
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j + 1);
                    }
                } else if let Some(k) = skip_special(b, j) {
                    j = k;
                    continue;
                }
                j += 1;
            }
            Some(b.len())
        }
        _ => None,
    }
}

/// The first expandable `{...}`: its byte range and alternatives.
fn first_pattern(text: &str) -> Option<(usize, usize, Vec<String>)> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if let Some(next) = skip_special(b, i) {
            i = next;
            continue;
        }
        if b[i] == b'{'
            && let Some((close, commas)) = matching(b, i)
        {
            let body = &text[i + 1..close];
            if !commas.is_empty() {
                let mut alts = Vec::with_capacity(commas.len() + 1);
                let mut from = i + 1;
                for c in commas {
                    alts.push(text[from..c].to_owned());
                    from = c + 1;
                }
                alts.push(text[from..close].to_owned());
                return Some((i, close, alts));
            }
            if let Some(seq) = sequence(body) {
                return Some((i, close, seq));
            }
        }
        i += 1;
    }
    None
}

/// The `}` matching the `{` at `open` and the top-level commas between.
fn matching(b: &[u8], open: usize) -> Option<(usize, Vec<usize>)> {
    let mut depth = 0usize;
    let mut commas = Vec::new();
    let mut j = open;
    while j < b.len() {
        if let Some(next) = skip_special(b, j) {
            j = next;
            continue;
        }
        match b[j] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((j, commas));
                }
            }
            b',' if depth == 1 => commas.push(j),
            _ => {}
        }
        j += 1;
    }
    None
}

/// `x..y` or `x..y..step` over integers or single ASCII letters.
fn sequence(body: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = body.split("..").collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let step = match parts.get(2) {
        Some(s) => s.parse::<i64>().ok()?.unsigned_abs().max(1),
        None => 1,
    };
    let (a, z) = (parts[0], parts[1]);
    if let (Ok(x), Ok(y)) = (a.parse::<i64>(), z.parse::<i64>()) {
        let padded = |s: &str| {
            let d = s.strip_prefix('-').unwrap_or(s);
            d.len() > 1 && d.starts_with('0')
        };
        let width = if padded(a) || padded(z) {
            a.len().max(z.len())
        } else {
            0
        };
        let count = x.abs_diff(y) / step + 1;
        if count > MAX_WORDS as u64 {
            return Some(vec![String::new(); MAX_WORDS + 1]);
        }
        let mut out = Vec::new();
        let mut v = x;
        for _ in 0..count {
            out.push(if width > 0 {
                if v < 0 {
                    format!("-{:0w$}", v.unsigned_abs(), w = width - 1)
                } else {
                    format!("{v:0width$}")
                }
            } else {
                v.to_string()
            });
            v = if x <= y {
                v + step as i64
            } else {
                v - step as i64
            };
        }
        return Some(out);
    }
    let (ca, cz) = (single_letter(a)?, single_letter(z)?);
    let (lo, hi) = (ca.min(cz), ca.max(cz));
    let mut out: Vec<String> = (lo..=hi)
        .step_by(step as usize)
        .map(|c| (c as char).to_string())
        .collect();
    if ca > cz {
        // Descending: bash steps down from the first letter.
        out = (lo..=hi)
            .rev()
            .step_by(step as usize)
            .map(|c| (c as char).to_string())
            .collect();
    }
    Some(out)
}

fn single_letter(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [c] if c.is_ascii_alphabetic() => Some(*c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> Vec<String> {
        expand(s).unwrap()
    }

    #[test]
    fn lists_and_ranges_expand_as_bash_does() {
        assert_eq!(ex("{a,b}"), ["a", "b"]);
        assert_eq!(ex("x{a,b}y"), ["xay", "xby"]);
        assert_eq!(ex("{a,b}{1,2}"), ["a1", "a2", "b1", "b2"]);
        assert_eq!(ex("{a,{b,c}}"), ["a", "b", "c"]);
        assert_eq!(ex("x{,s}"), ["x", "xs"]);
        assert_eq!(ex("{1..3}"), ["1", "2", "3"]);
        assert_eq!(ex("{3..1}"), ["3", "2", "1"]);
        assert_eq!(ex("{1..10..4}"), ["1", "5", "9"]);
        assert_eq!(ex("{08..11}"), ["08", "09", "10", "11"]);
        assert_eq!(ex("{-1..1}"), ["-1", "0", "1"]);
        assert_eq!(ex("{a..c}"), ["a", "b", "c"]);
        assert_eq!(ex("{c..a}"), ["c", "b", "a"]);
    }

    #[test]
    fn quotes_expansions_and_non_patterns_stay() {
        for s in [
            "{a}",
            "{}",
            "'{a,b}'",
            "\"{a,b}\"",
            "\\{a,b}",
            "${x}",
            "$(echo {a,b})",
            "{a..}",
            "{1..2..}",
            "{ab..c}",
            "a{b",
            "a}b",
        ] {
            assert_eq!(ex(s), [s], "{s}");
        }
        assert_eq!(ex("{'a,b',c}"), ["'a,b'", "c"]);
        assert_eq!(ex("${x}{a,b}"), ["${x}a", "${x}b"]);
    }

    #[test]
    fn explosion_is_refused() {
        assert!(expand("{1..100000}").is_err());
        assert!(
            expand("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}")
                .is_err()
        );
    }
}
