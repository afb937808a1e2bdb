//! The string algorithms of GNU `basename` and `dirname` (no file system access).

/// GNU `basename NAME [SUFFIX]`.
pub fn basename(name: &str, suffix: Option<&str>) -> String {
    if name.is_empty() {
        return String::new();
    }
    let trimmed = name.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    let base = trimmed.rsplit('/').next().unwrap_or(trimmed);
    match suffix {
        Some(s) if !s.is_empty() && base != s && base.ends_with(s) => {
            base[..base.len() - s.len()].to_string()
        }
        _ => base.to_string(),
    }
}

/// GNU `dirname NAME`.
pub fn dirname(name: &str) -> String {
    let trimmed = name.trim_end_matches('/');
    if trimmed.is_empty() {
        return if name.is_empty() { "." } else { "/" }.to_string();
    }
    match trimmed.rfind('/') {
        None => ".".to_string(),
        Some(i) => {
            let dir = trimmed[..i].trim_end_matches('/');
            if dir.is_empty() {
                "/".to_string()
            } else {
                dir.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gnu_samples() {
        let cases = [
            ("/", "/", "/"),
            ("//a", "/", "a"),
            ("a/", ".", "a"),
            ("a//b/", "a", "b"),
            ("", ".", ""),
            ("..", ".", ".."),
            ("/a/b/", "/a", "b"),
            ("a/b//c//", "a/b", "c"),
        ];
        for (p, d, b) in cases {
            assert_eq!(dirname(p), d, "dirname {p:?}");
            assert_eq!(basename(p, None), b, "basename {p:?}");
        }
        assert_eq!(basename("a.txt", Some(".txt")), "a");
        assert_eq!(basename(".txt", Some(".txt")), ".txt");
    }

    proptest! {
        #[test]
        fn basename_has_no_slash_unless_root(p in "[a/.]{0,12}") {
            let b = basename(&p, None);
            prop_assert!(b == "/" || !b.contains('/'));
            let d = dirname(&p);
            prop_assert!(!d.is_empty());
        }
    }
}
