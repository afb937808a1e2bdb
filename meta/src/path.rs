//! Validated paths in the Manta namespace (`/:login/<top>/<name>...`).
//!
//! A [`MantaPath`] is built from *already percent-decoded* segments, so a
//! name may hold any Unicode except NUL and `/`. Guarantees of every value:
//! - the login matches muskie's rule `^[a-zA-Z][a-zA-Z0-9_.@%-]+$` and is at
//!   most [`MAX_LOGIN_BYTES`];
//! - the second segment, if any, is one of the top directories
//!   (`jobs public reports stor uploads`);
//! - every segment is non-empty, not `.`/`..`, free of NUL and `/`, at most
//!   [`MAX_NAME_BYTES`] bytes; the whole path (`/`-joined, decoded) is at most
//!   [`MAX_PATH_BYTES`] and at most [`MAX_DEPTH`] names below the top dir.
//!
//! The limits are the gateway's (Manta documented no byte limits; 1024-byte
//! names and 4096-byte paths are the common POSIX-like choice and keep every
//! metadata key far below TiKV's 8 KiB key limit).

use std::fmt;

/// Longest accepted name (one segment), in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest accepted decoded path (`/login/top/a/b`), in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Deepest accepted path (names below the top-level directory).
pub const MAX_DEPTH: usize = 256;
/// Longest accepted login or subuser name.
pub const MAX_LOGIN_BYTES: usize = 256;

/// Why a path or login was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The login does not match the login rule.
    #[error("invalid login {0:?}")]
    InvalidLogin(String),
    /// A segment is empty, `.`/`..`, contains NUL or `/`, or is too long.
    #[error("invalid name {name:?}: {why}")]
    InvalidSegment {
        /// The offending segment (truncated to 64 chars).
        name: String,
        /// Human reason.
        why: &'static str,
    },
    /// The second segment is not a top directory (`/:login/foo`); the
    /// gateway answers `404 ResourceNotFound`.
    #[error("/{login}/{name} is not a top-level directory")]
    UnknownTopDirectory {
        /// Account.
        login: String,
        /// The unknown segment.
        name: String,
    },
    /// The path exceeds [`MAX_PATH_BYTES`] or [`MAX_DEPTH`].
    #[error("path too long")]
    TooLong,
}

/// The top-level directories every account has (spec §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopDir {
    /// `/:login/jobs`
    Jobs,
    /// `/:login/public`
    Public,
    /// `/:login/reports`
    Reports,
    /// `/:login/stor`
    Stor,
    /// `/:login/uploads`
    Uploads,
}

impl TopDir {
    /// All of them, in name (byte) order.
    pub const ALL: [TopDir; 5] = [
        TopDir::Jobs,
        TopDir::Public,
        TopDir::Reports,
        TopDir::Stor,
        TopDir::Uploads,
    ];

    /// The directory's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TopDir::Jobs => "jobs",
            TopDir::Public => "public",
            TopDir::Reports => "reports",
            TopDir::Stor => "stor",
            TopDir::Uploads => "uploads",
        }
    }

    /// Parse a top directory name.
    pub fn parse(s: &str) -> Option<TopDir> {
        TopDir::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Logins no account can be created with: the gateway serves other
/// things at `/<login>/` for them (`/console/`, the web console).
pub const RESERVED_LOGINS: &[&str] = &["console"];

/// Whether `s` is a valid login (muskie: `^[a-zA-Z][a-zA-Z0-9_.@%-]+$`).
pub fn valid_login(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    let rest = chars.as_str();
    !rest.is_empty()
        && s.len() <= MAX_LOGIN_BYTES
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@%-".contains(c))
}

/// Check one decoded name.
pub fn validate_name(s: &str) -> Result<(), PathError> {
    let bad = |why| PathError::InvalidSegment {
        name: s.chars().take(64).collect(),
        why,
    };
    if s.is_empty() {
        return Err(bad("empty name"));
    }
    if s == "." || s == ".." {
        return Err(bad("relative segments are not allowed"));
    }
    if s.contains('\0') {
        return Err(bad("NUL is not allowed"));
    }
    if s.contains('/') {
        return Err(bad("'/' is not allowed in a name"));
    }
    if s.len() > MAX_NAME_BYTES {
        return Err(bad("name too long"));
    }
    Ok(())
}

/// A validated absolute path; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MantaPath {
    login: String,
    top: Option<TopDir>,
    rest: Vec<String>,
}

impl MantaPath {
    /// Build from a login and the decoded segments after it (the first one
    /// must be a top directory). `MantaPath::new("alice", vec![])` is `/alice`.
    pub fn new(login: &str, segments: Vec<String>) -> Result<Self, PathError> {
        let mut it = segments.into_iter();
        let top = match it.next() {
            None => None,
            Some(t) => {
                validate_name(&t)?;
                Some(
                    TopDir::parse(&t).ok_or_else(|| PathError::UnknownTopDirectory {
                        login: login.to_owned(),
                        name: t.chars().take(64).collect(),
                    })?,
                )
            }
        };
        Self::from_parts(login, top, it.collect())
    }

    /// Build from parts; `rest` are the names below the top directory (must
    /// be empty when `top` is `None`).
    pub fn from_parts(
        login: &str,
        top: Option<TopDir>,
        rest: Vec<String>,
    ) -> Result<Self, PathError> {
        if !valid_login(login) {
            return Err(PathError::InvalidLogin(login.chars().take(64).collect()));
        }
        if top.is_none() && !rest.is_empty() {
            return Err(PathError::InvalidSegment {
                name: String::new(),
                why: "names below the account root need a top directory",
            });
        }
        for s in &rest {
            validate_name(s)?;
        }
        let p = MantaPath {
            login: login.to_owned(),
            top,
            rest,
        };
        if p.rest.len() > MAX_DEPTH || p.byte_len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        Ok(p)
    }

    /// Parse a decoded absolute path such as `/alice/stor/a b`. Convenience
    /// for tests and tools: names containing `/` cannot be expressed this
    /// way, so request handling should use [`MantaPath::new`].
    pub fn parse(s: &str) -> Result<Self, PathError> {
        let mut it = s.split('/').filter(|x| !x.is_empty());
        let login = it.next().unwrap_or("");
        Self::new(login, it.map(str::to_owned).collect())
    }

    /// `/:login`.
    pub fn account_root(login: &str) -> Result<Self, PathError> {
        Self::from_parts(login, None, Vec::new())
    }

    /// `/:login/<top>`.
    pub fn top_dir(login: &str, top: TopDir) -> Result<Self, PathError> {
        Self::from_parts(login, Some(top), Vec::new())
    }

    fn byte_len(&self) -> usize {
        1 + self.login.len()
            + self.top.map_or(0, |t| 1 + t.as_str().len())
            + self.rest.iter().map(|s| 1 + s.len()).sum::<usize>()
    }

    /// The owner's login.
    pub fn login(&self) -> &str {
        &self.login
    }

    /// The top directory, `None` for `/:login`.
    pub fn top(&self) -> Option<TopDir> {
        self.top
    }

    /// Names below the top directory.
    pub fn rest(&self) -> &[String] {
        &self.rest
    }

    /// All segments after the login (top directory first).
    pub fn segments(&self) -> Vec<&str> {
        self.top
            .map(TopDir::as_str)
            .into_iter()
            .chain(self.rest.iter().map(String::as_str))
            .collect()
    }

    /// `/:login` itself.
    pub fn is_account_root(&self) -> bool {
        self.top.is_none()
    }

    /// `/:login` or a top directory: cannot be written or deleted as an entry.
    pub fn is_root(&self) -> bool {
        self.rest.is_empty()
    }

    /// The parent directory, `None` for `/:login`.
    pub fn parent(&self) -> Option<MantaPath> {
        let mut p = self.clone();
        if p.rest.pop().is_none() {
            p.top.take()?;
        }
        Some(p)
    }

    /// The last segment (the entry's name in its parent); `None` for `/:login`.
    pub fn name(&self) -> Option<&str> {
        match self.rest.last() {
            Some(s) => Some(s),
            None => self.top.map(TopDir::as_str),
        }
    }

    /// A child of this path.
    pub fn join(&self, name: &str) -> Result<MantaPath, PathError> {
        match self.top {
            None => Self::new(&self.login, vec![name.to_owned()]),
            Some(t) => {
                let mut rest = self.rest.clone();
                rest.push(name.to_owned());
                Self::from_parts(&self.login, Some(t), rest)
            }
        }
    }
}

impl fmt::Display for MantaPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.login)?;
        for s in self.segments() {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn basics() {
        let p = MantaPath::parse("/alice/stor/a b/c.txt").unwrap();
        assert_eq!(p.login(), "alice");
        assert_eq!(p.top(), Some(TopDir::Stor));
        assert_eq!(p.rest(), ["a b", "c.txt"]);
        assert_eq!(p.to_string(), "/alice/stor/a b/c.txt");
        assert_eq!(p.name(), Some("c.txt"));
        let parent = p.parent().unwrap();
        assert_eq!(parent.to_string(), "/alice/stor/a b");
        let top = parent.parent().unwrap();
        assert!(top.is_root() && !top.is_account_root());
        assert_eq!(top.name(), Some("stor"));
        let root = top.parent().unwrap();
        assert!(root.is_account_root());
        assert_eq!(root.name(), None);
        assert!(root.parent().is_none());
        assert_eq!(root.join("public").unwrap().top(), Some(TopDir::Public));
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "/alice/foo",
            "/alice/stor/.",
            "/alice/stor/..",
            "/1alice/stor",
            "/a/stor",
            "/",
            "/alice/stor/a\0b",
        ] {
            assert!(MantaPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(MantaPath::new("alice", vec!["stor".into(), "a/b".into()]).is_err());
        assert!(MantaPath::new("alice", vec!["stor".into(), String::new()]).is_err());
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(MantaPath::new("alice", vec!["stor".into(), long]).is_err());
        let ok = "x".repeat(MAX_NAME_BYTES);
        let deep: Vec<String> = std::iter::once("stor".to_owned())
            .chain(std::iter::repeat_n(ok, 4))
            .collect();
        assert_eq!(MantaPath::new("alice", deep), Err(PathError::TooLong));
    }

    proptest! {
        #[test]
        fn valid_names_round_trip(names in prop::collection::vec("[^/\u{0}]{1,40}", 0..6)) {
            let names: Vec<String> = names.into_iter().filter(|n| n != "." && n != "..").collect();
            let p = MantaPath::from_parts("alice", Some(TopDir::Public), names.clone()).unwrap();
            prop_assert_eq!(p.rest(), names.as_slice());
            let again = MantaPath::parse(&p.to_string()).unwrap();
            prop_assert_eq!(&again, &p);
            if let Some(last) = names.last() {
                prop_assert_eq!(p.name(), Some(last.as_str()));
                prop_assert_eq!(p.parent().unwrap().join(last).unwrap(), p);
            }
        }

        #[test]
        fn never_panics_and_rejects_nul_or_slash(login in ".{0,10}", segs in prop::collection::vec(".{0,20}", 0..5)) {
            if let Ok(p) = MantaPath::new(&login, segs.clone()) {
                for s in p.segments() {
                    prop_assert!(!s.is_empty() && !s.contains('\0') && !s.contains('/'));
                    prop_assert!(s != "." && s != "..");
                }
                prop_assert!(valid_login(p.login()));
            }
        }
    }
}
