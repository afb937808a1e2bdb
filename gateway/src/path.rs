//! Request paths: from the raw, percent-encoded request target to meta's
//! validated [`MantaPath`] (spec §1.3, §3).
//!
//! Guarantees: each segment is percent-decoded exactly once (`+` stays
//! literal), must be valid UTF-8, free of NUL and `/`, not `.`/`..`, and
//! within meta's length limits; empty segments (`//`, a trailing `/`) are
//! collapsed, as muskie did. Failures are `400 InvalidResource`, except an
//! unknown login shape or top-level directory, which is `404`.

use crate::error::ApiError;
use meta::path::{MAX_PATH_BYTES, MantaPath, PathError};
use percent_encoding::percent_decode_str;

/// Percent-decodes one segment; meta validates the decoded name.
fn decode_segment(raw: &str, shown: &str) -> Result<String, ApiError> {
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    String::from_utf8(bytes).map_err(|_| {
        ApiError::InvalidResource(format!("{shown} is not a valid path: invalid UTF-8"))
    })
}

/// Maps meta's path rejection to the wire error.
pub fn path_error(e: PathError, shown: &str) -> ApiError {
    match e {
        PathError::UnknownTopDirectory { login, name } => {
            ApiError::ResourceNotFound(format!("/{login}/{name}"))
        }
        PathError::InvalidLogin(l) => ApiError::ResourceNotFound(format!("/{l}")),
        other => ApiError::InvalidResource(format!("{shown} is not a valid path: {other}")),
    }
}

/// Parses the raw path of a request line (still percent-encoded, no query).
pub fn parse_path(raw: &str) -> Result<MantaPath, ApiError> {
    // Keep a huge client path out of error messages.
    let shown: String = raw.chars().take(256).collect();
    if !raw.starts_with('/') {
        return Err(ApiError::InvalidResource(format!(
            "{shown} is not a valid path"
        )));
    }
    // Each decoded byte takes at most 3 encoded ones: anything longer cannot
    // be valid, and refusing early bounds the work.
    if raw.len() > MAX_PATH_BYTES * 3 {
        return Err(ApiError::InvalidResource(format!(
            "{shown} is not a valid path: too long"
        )));
    }
    let mut segs = Vec::new();
    for raw_seg in raw.split('/').filter(|s| !s.is_empty()) {
        segs.push(decode_segment(raw_seg, &shown)?);
    }
    if segs.is_empty() {
        return Err(ApiError::ResourceNotFound("/".to_owned()));
    }
    let login = segs.remove(0);
    MantaPath::new(&login, segs).map_err(|e| path_error(e, &shown))
}

/// Parses a snaplink `Location` value: a percent-encoded absolute path, or a
/// full URL whose path part is used (§7).
pub fn parse_location(value: &str) -> Result<MantaPath, ApiError> {
    let path = if let Some(idx) = value.find("://") {
        let after = &value[idx + 3..];
        match after.find('/') {
            Some(p) => &after[p..],
            None => return Err(ApiError::InvalidLink(value.to_owned())),
        }
    } else {
        value
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    match parse_path(path) {
        Ok(p) if p.top().is_some() => Ok(p),
        Ok(_) => Err(ApiError::InvalidLink(value.to_owned())),
        Err(ApiError::ResourceNotFound(_)) => Err(ApiError::SourceObjectNotFound(value.to_owned())),
        Err(_) => Err(ApiError::InvalidLink(value.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meta::path::{MAX_DEPTH, MAX_NAME_BYTES, TopDir};
    use proptest::prelude::*;

    #[test]
    fn decodes_segments_keeping_plus() {
        let p = parse_path("/alice/stor/%C3%BCn%C3%AF%2Bc%C3%B6d%C3%A9%3F%23/a%20b+c.txt").unwrap();
        assert_eq!(p.login(), "alice");
        assert_eq!(p.top(), Some(TopDir::Stor));
        assert_eq!(p.rest(), ["ünï+cödé?#".to_owned(), "a b+c.txt".to_owned()]);
        assert_eq!(p.to_string(), "/alice/stor/ünï+cödé?#/a b+c.txt");
    }

    #[test]
    fn collapses_slashes() {
        let p = parse_path("//alice//stor///d/").unwrap();
        assert_eq!(p.to_string(), "/alice/stor/d");
        assert!(parse_path("/alice/").unwrap().is_account_root());
        assert!(parse_path("/alice/stor/").unwrap().is_root());
    }

    #[test]
    fn rejects_tricks() {
        for bad in [
            "/alice/stor/..",
            "/alice/stor/a/../b",
            "/alice/stor/%2e%2e",
            "/alice/stor/%2E",
            "/alice/stor/a%00b",
            "/alice/stor/%ff%fe",
            "/alice/stor/a%2fb",
            "alice/stor",
        ] {
            let err = parse_path(bad).unwrap_err();
            assert_eq!(err.code(), "InvalidResource", "{bad}");
        }
        let long = format!("/alice/stor/{}", "x".repeat(MAX_NAME_BYTES + 1));
        assert_eq!(parse_path(&long).unwrap_err().code(), "InvalidResource");
        let deep = format!("/alice/stor{}", "/d".repeat(MAX_DEPTH + 1));
        assert_eq!(parse_path(&deep).unwrap_err().code(), "InvalidResource");
    }

    #[test]
    fn unknown_top_and_login_are_not_found() {
        assert_eq!(
            parse_path("/alice/foo").unwrap_err().code(),
            "ResourceNotFound"
        );
        assert_eq!(parse_path("/").unwrap_err().code(), "ResourceNotFound");
        assert_eq!(
            parse_path("/9bad/stor").unwrap_err().code(),
            "ResourceNotFound"
        );
    }

    #[test]
    fn location_forms() {
        let p = parse_location("/alice/stor/lnk%201.txt").unwrap();
        assert_eq!(p.name(), Some("lnk 1.txt"));
        let p = parse_location("https://h.example/alice/stor/x").unwrap();
        assert_eq!(p.to_string(), "/alice/stor/x");
        assert_eq!(
            parse_location("nonsense").unwrap_err().code(),
            "InvalidLink"
        );
        assert_eq!(
            parse_location("/alice/stor/..").unwrap_err().code(),
            "InvalidLink"
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_path(&s);
            let _ = parse_location(&s);
        }

        #[test]
        fn encoded_names_round_trip(name in "[^/\\x00]{1,40}") {
            prop_assume!(name != "." && name != "..");
            let enc = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
            let p = parse_path(&format!("/alice/stor/{enc}")).unwrap();
            prop_assert_eq!(p.rest(), [name]);
        }
    }
}
