//! Pathname expansion (POSIX sh "2.13 Pattern Matching Notation"): `*`,
//! `?` and bracket expressions in unquoted parts of command words are
//! matched against the guest's filesystem view — scratch at `/`, the input
//! directory read-only — through the same confinement as every other host
//! access ([`FsLayout`]).
//!
//! Guarantees, as `sh` in the C locale:
//! - only unquoted characters are special: quoted ones reach the pattern
//!   escaped with `\`, so `"*".txt` matches only a file named `*.txt`;
//! - a leading `.` in a file name is matched only by a literal `.`;
//! - matches are sorted bytewise; a pattern that matches nothing is left
//!   as the word's literal text;
//! - `/` is never matched by a pattern character; a trailing `/` selects
//!   directories.

use crate::fs::FsLayout;

/// Escapes `s` so it matches only itself.
pub(crate) fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether `pat` has an active (unescaped) `*`, `?` or bracket expression.
pub(crate) fn is_pattern(pat: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => i += 1,
            '*' | '?' => return true,
            '[' if bracket_end(&p, i).is_some() => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// The literal text of an escaped pattern (backslashes removed).
fn unescape(pat: &str) -> String {
    let mut out = String::with_capacity(pat.len());
    let mut esc = false;
    for c in pat.chars() {
        if !esc && c == '\\' {
            esc = true;
            continue;
        }
        esc = false;
        out.push(c);
    }
    out
}

/// Index of the `]` closing the bracket expression that opens at `p[open]`.
fn bracket_end(p: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if i < p.len() && (p[i] == '!' || p[i] == '^') {
        i += 1;
    }
    // A `]` right after the opening (and negation) is a literal member.
    if i < p.len() && p[i] == ']' {
        i += 1;
    }
    while i < p.len() {
        match p[i] {
            ']' => return Some(i),
            '\\' => i += 1,
            '[' if i + 1 < p.len() && matches!(p[i + 1], ':' | '.' | '=') => {
                let kind = p[i + 1];
                let mut j = i + 2;
                while j + 1 < p.len() && !(p[j] == kind && p[j + 1] == ']') {
                    j += 1;
                }
                if j + 1 >= p.len() {
                    return None;
                }
                i = j + 1;
            }
            '/' => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

fn class_has(name: &str, c: char) -> Option<bool> {
    Some(match name {
        "alnum" => c.is_ascii_alphanumeric(),
        "alpha" => c.is_ascii_alphabetic(),
        "blank" => c == ' ' || c == '\t',
        "cntrl" => c.is_ascii_control(),
        "digit" => c.is_ascii_digit(),
        "graph" => c.is_ascii_graphic(),
        "lower" => c.is_ascii_lowercase(),
        "print" => c.is_ascii_graphic() || c == ' ',
        "punct" => c.is_ascii_punctuation(),
        "space" => c.is_ascii_whitespace() || c == '\x0b',
        "upper" => c.is_ascii_uppercase(),
        "xdigit" => c.is_ascii_hexdigit(),
        _ => return None,
    })
}

/// Does the bracket expression `p[open..=close]` match `c`?
fn bracket_matches(p: &[char], open: usize, close: usize, c: char) -> bool {
    let mut i = open + 1;
    let negate = p[i] == '!' || p[i] == '^';
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < close {
        let lo = match p[i] {
            '[' if i + 1 < close && p[i + 1] == ':' => {
                let end = (i + 2..close)
                    .find(|&j| p[j] == ':' && p.get(j + 1) == Some(&']'))
                    .unwrap_or(close);
                let name: String = p[i + 2..end].iter().collect();
                hit |= class_has(&name, c).unwrap_or(false);
                i = end + 2;
                first = false;
                continue;
            }
            '\\' if i + 1 < close => {
                i += 1;
                p[i]
            }
            ']' if first => ']',
            ch => ch,
        };
        first = false;
        if i + 2 < close && p[i + 1] == '-' {
            let hi = if p[i + 2] == '\\' && i + 3 < close {
                i += 1;
                p[i + 2]
            } else {
                p[i + 2]
            };
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
    hit != negate
}

/// Matches one path component `name` against the escaped pattern `pat`.
pub(crate) fn matches(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = name.chars().collect();
    if t.first() == Some(&'.') && p.first() != Some(&'.') && !p.starts_with(&['\\', '.']) {
        return false;
    }
    match_chars(&p, &t)
}

/// Matches a whole string against the escaped pattern `pat`, as
/// `[[ s == pattern ]]` does: no rule for a leading `.`, and `*` matches
/// `/` too.
pub(crate) fn matches_string(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    match_chars(&p, &t)
}

fn match_chars(p: &[char], t: &[char]) -> bool {
    // Iterative matching, backtracking to the last `*`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi + 1, ti));
                    pi += 1;
                    continue;
                }
                '?' => Some(pi + 1),
                '[' => match bracket_end(p, pi) {
                    Some(close) => bracket_matches(p, pi, close, t[ti]).then_some(close + 1),
                    None => (t[ti] == '[').then_some(pi + 1),
                },
                '\\' if pi + 1 < p.len() => (p[pi + 1] == t[ti]).then_some(pi + 2),
                c => (c == t[ti]).then_some(pi + 1),
            }
        } else {
            None
        };
        match step {
            Some(next) => {
                pi = next;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn is_dir(fs: &FsLayout, cwd: &str, p: &str) -> bool {
    fs.metadata(cwd, p).is_ok_and(|m| m.is_dir()) || fs.leads_to_mount(cwd, p)
}

/// Expands the escaped pattern `pat` relative to the guest directory
/// `cwd`: the sorted matching paths, empty if none (or `pat` is no pattern).
pub(crate) fn expand(fs: &FsLayout, cwd: &str, pat: &str) -> Vec<String> {
    if !is_pattern(pat) {
        return Vec::new();
    }
    let absolute = pat.starts_with('/');
    let comps: Vec<&str> = pat.split('/').collect();
    let mut found: Vec<String> = vec![if absolute { "/".into() } else { String::new() }];
    let skip = usize::from(absolute);
    let last = comps.len() - 1;
    for (i, comp) in comps.iter().enumerate().skip(skip) {
        if comp.is_empty() {
            if i == last {
                // Trailing `/`: directories only, shown with the slash.
                found.retain(|p| is_dir(fs, cwd, p));
                for p in &mut found {
                    p.push('/');
                }
            }
            continue;
        }
        let mut next = Vec::new();
        if is_pattern(comp) {
            for dir in &found {
                let list = if dir.is_empty() { "." } else { dir.as_str() };
                let Ok(names) = fs.list_dir(cwd, list) else {
                    continue;
                };
                for name in names {
                    if matches(comp, &name) {
                        next.push(join(dir, &name));
                    }
                }
            }
        } else {
            let lit = unescape(comp);
            for dir in &found {
                let p = join(dir, &lit);
                // Intermediate components must be directories; the last must exist.
                if fs.metadata(cwd, &p).is_ok() || fs.leads_to_mount(cwd, &p) {
                    next.push(p);
                }
            }
        }
        if i < last {
            next.retain(|p| is_dir(fs, cwd, p));
        }
        found = next;
        if found.is_empty() {
            break;
        }
    }
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_matching() {
        assert!(matches("*.txt", "a.txt"));
        assert!(!matches("*.txt", ".a.txt"));
        assert!(matches(".*", ".a"));
        assert!(matches("part??", "partab"));
        assert!(!matches("part??", "parta"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[!a-c]x", "bx"));
        assert!(matches("[]]", "]"));
        assert!(matches("[[:digit:]]*", "7up"));
        assert!(!matches("\\*", "a"));
        assert!(matches("\\*", "*"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(matches("[ab", "[ab"));
    }

    #[test]
    fn pattern_detection() {
        assert!(is_pattern("*"));
        assert!(is_pattern("a[bc]"));
        assert!(!is_pattern("\\*"));
        assert!(!is_pattern("["));
        assert!(!is_pattern("a]"));
        let mut e = String::new();
        escape("x*[y]?", &mut e);
        assert!(!is_pattern(&e));
        assert_eq!(unescape(&e), "x*[y]?");
    }

    #[test]
    fn expands_in_scratch_sorted_and_confined() {
        let scratch = tempfile::tempdir().unwrap();
        let input = tempfile::tempdir().unwrap();
        for f in ["b.txt", "a.txt", ".h.txt", "c.log"] {
            std::fs::write(scratch.path().join(f), b"").unwrap();
        }
        std::fs::create_dir(scratch.path().join("d")).unwrap();
        std::fs::write(scratch.path().join("d/x"), b"").unwrap();
        std::fs::write(input.path().join("obj"), b"").unwrap();
        std::os::unix::fs::symlink("/etc", scratch.path().join("evil")).unwrap();
        let fs = FsLayout::new(scratch.path(), &[(input.path(), "/manta/input")]).unwrap();
        assert_eq!(expand(&fs, "/", "*.txt"), ["a.txt", "b.txt"]);
        assert_eq!(expand(&fs, "/", "/*.log"), ["/c.log"]);
        assert_eq!(expand(&fs, "/", "*/"), ["d/"]);
        assert_eq!(expand(&fs, "/", "*/x"), ["d/x"]);
        assert_eq!(expand(&fs, "/d", "../?.txt"), ["../a.txt", "../b.txt"]);
        assert_eq!(expand(&fs, "/", "/manta/input/*"), ["/manta/input/obj"]);
        assert!(expand(&fs, "/", "evil/pass*").is_empty());
        assert!(expand(&fs, "/", "*.none").is_empty());
    }
}
