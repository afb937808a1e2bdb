//! `fnmatch(3)`-style wildcard matching as `find -name` uses it (no
//! `FNM_PATHNAME`, no `FNM_PERIOD`): `*`, `?`, `[...]` with ranges and
//! `!`/`^` negation, backslash escapes. Matching works on characters and is
//! iterative (no exponential backtracking).

fn class(p: &[char], mut i: usize, c: char, fold: bool) -> Option<(bool, usize)> {
    // p[i] is just after '['.
    let neg = matches!(p.get(i), Some('!' | '^'));
    if neg {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    let norm = |x: char| if fold { x.to_ascii_lowercase() } else { x };
    let c = norm(c);
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != neg, i + 1));
        }
        first = false;
        let lo = if lo == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            lo
        };
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = p[i + 2];
            if norm(lo) <= c && c <= norm(hi) {
                matched = true;
            }
            i += 3;
        } else {
            if norm(lo) == c {
                matched = true;
            }
            i += 1;
        }
    }
}

/// Does `name` match `pattern`? `fold` ignores ASCII case (`-iname`).
pub fn matches(pattern: &str, name: &str, fold: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    let eq = |a: char, b: char| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match class(&p, pi + 1, s[si], fold) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // An unterminated '[' matches itself literally.
                None => eq('[', s[si]).then_some(pi + 1),
            },
            Some('\\') if pi + 1 < p.len() => eq(p[pi + 1], s[si]).then_some(pi + 2),
            Some(&c) => eq(c, s[si]).then_some(pi + 1),
            None => None,
        };
        match step {
            Some(next) => {
                pi = next;
                si += 1;
            }
            None => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fnmatch_cases() {
        assert!(matches("*.txt", "a.txt", false));
        assert!(matches("*.txt", ".txt", false));
        assert!(!matches("*.txt", "a.txt.gz", false));
        assert!(matches("a?c", "abc", false));
        assert!(matches("[a-c]x", "bx", false));
        assert!(!matches("[!a-c]x", "bx", false));
        assert!(matches("[]]", "]", false));
        assert!(matches("\\*", "*", false));
        assert!(!matches("\\*", "a", false));
        assert!(matches("*A*", "xay", true));
        assert!(matches("[", "[", false));
        assert!(matches("**a*b", "xxaxxb", false));
    }

    proptest! {
        #[test]
        fn literal_matches_itself(s in "[a-z.]{0,10}") {
            prop_assert!(matches(&s, &s, false));
            prop_assert!(matches("*", &s, false));
        }

        #[test]
        fn never_panics(p in "[a-c*?\\[\\]!\\\\-]{0,8}", s in "[a-c\\]\\[-]{0,8}") {
            let _ = matches(&p, &s, false);
            let _ = matches(&p, &s, true);
        }
    }
}
