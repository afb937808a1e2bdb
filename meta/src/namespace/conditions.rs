//! Evaluation of conditional headers (spec §6.6, RFC 9110 §13.2.2 order).
//!
//! Writes evaluate these inside the transaction against the current entry,
//! so a condition can never pass against a state that is replaced before
//! commit. Timestamps compare at one-second resolution.

use super::types::{Conditions, Entry, ReadCheck};

impl Conditions {
    /// No conditions.
    pub fn none() -> Self {
        Conditions::default()
    }

    /// Split an `If-Match`/`If-None-Match` header value into plain etags:
    /// comma separated, optional `W/` prefix and surrounding quotes removed.
    pub fn parse_etags(value: &str) -> Vec<String> {
        value
            .split(',')
            .map(|v| {
                let v = v.trim();
                let v = v.strip_prefix("W/").unwrap_or(v);
                v.trim_matches('"').to_owned()
            })
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// True if nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Conditions::default()
    }

    /// May a PUT/DELETE proceed given the current entry (`None` = absent)?
    /// `If-Modified-Since` is ignored for writes, as RFC 9110 says.
    pub fn allows_write(&self, current: Option<&Entry>) -> bool {
        if let Some(list) = &self.if_match {
            if !matches_any(list, current) {
                return false;
            }
        } else if let (Some(t), Some(e)) = (self.if_unmodified_since, current)
            && mtime_s(e) > t
        {
            return false;
        }
        if let Some(list) = &self.if_none_match
            && matches_any(list, current)
        {
            return false;
        }
        true
    }

    /// Decide a GET/HEAD of an existing entry.
    pub fn check_read(&self, current: &Entry) -> ReadCheck {
        if let Some(list) = &self.if_match {
            if !matches_any(list, Some(current)) {
                return ReadCheck::PreconditionFailed;
            }
        } else if let Some(t) = self.if_unmodified_since
            && mtime_s(current) > t
        {
            return ReadCheck::PreconditionFailed;
        }
        if let Some(list) = &self.if_none_match {
            if matches_any(list, Some(current)) {
                return ReadCheck::NotModified;
            }
        } else if let Some(t) = self.if_modified_since
            && mtime_s(current) <= t
        {
            return ReadCheck::NotModified;
        }
        ReadCheck::Proceed
    }
}

fn mtime_s(e: &Entry) -> i64 {
    i64::try_from(e.mtime_ms / 1000).unwrap_or(i64::MAX)
}

fn matches_any(list: &[String], current: Option<&Entry>) -> bool {
    let Some(cur) = current else {
        return false;
    };
    let etag = cur.etag();
    list.iter()
        .any(|v| v == "*" || etag.as_deref() == Some(v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::types::{EntryKind, ObjectInfo};
    use uuid::Uuid;

    fn obj(mtime_ms: u64) -> Entry {
        Entry {
            name: "x".into(),
            mtime_ms,
            headers: Default::default(),
            kind: EntryKind::Object(ObjectInfo {
                object_id: Uuid::from_u128(7),
                size: 0,
                content_md5: String::new(),
                blake3: String::new(),
                content_type: "text/plain".into(),
                copies: vec![],
                durability: 1,
                linked: false,
            }),
        }
    }

    #[test]
    fn parse_etags_strips_weak_and_quotes() {
        assert_eq!(
            Conditions::parse_etags(r#"W/"a", "b" ,c,,"#),
            vec!["a", "b", "c"]
        );
        assert_eq!(Conditions::parse_etags("*"), vec!["*"]);
    }

    #[test]
    fn write_conditions() {
        let e = obj(10_500);
        let tag = e.etag().unwrap();
        let c = |m: Option<&str>, n: Option<&str>| Conditions {
            if_match: m.map(|v| vec![v.to_owned()]),
            if_none_match: n.map(|v| vec![v.to_owned()]),
            ..Default::default()
        };
        assert!(c(Some(&tag), None).allows_write(Some(&e)));
        assert!(!c(Some("other"), None).allows_write(Some(&e)));
        assert!(c(Some("*"), None).allows_write(Some(&e)));
        assert!(!c(Some("*"), None).allows_write(None));
        assert!(!c(None, Some("*")).allows_write(Some(&e)));
        assert!(c(None, Some("*")).allows_write(None));
        assert!(!c(None, Some(&tag)).allows_write(Some(&e)));
        assert!(c(None, Some("other")).allows_write(Some(&e)));
        let since = |t| Conditions {
            if_unmodified_since: Some(t),
            ..Default::default()
        };
        assert!(since(10).allows_write(Some(&e)));
        assert!(!since(9).allows_write(Some(&e)));
        assert!(since(9).allows_write(None));
    }

    #[test]
    fn read_conditions() {
        let e = obj(10_500);
        let tag = e.etag().unwrap();
        let inm = Conditions {
            if_none_match: Some(vec![tag.clone()]),
            ..Default::default()
        };
        assert_eq!(inm.check_read(&e), ReadCheck::NotModified);
        let ims = |t| Conditions {
            if_modified_since: Some(t),
            ..Default::default()
        };
        assert_eq!(ims(10).check_read(&e), ReadCheck::NotModified);
        assert_eq!(ims(9).check_read(&e), ReadCheck::Proceed);
        let im = Conditions {
            if_match: Some(vec!["nope".into()]),
            ..Default::default()
        };
        assert_eq!(im.check_read(&e), ReadCheck::PreconditionFailed);
        assert_eq!(Conditions::none().check_read(&e), ReadCheck::Proceed);
    }
}
