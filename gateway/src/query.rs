//! Query strings: decoding (§1.4) and the listing parameters (§5.3).
//!
//! Guarantees: the `ListOptions` produced have a limit in 1..=1024, a marker of the kind
//! its sort needs (a name, or a parsed mtime), and a known sort.

use crate::error::ApiError;
use meta::namespace::{ListOptions, Marker, SortBy, TypeFilter};
use percent_encoding::percent_decode;
use time::OffsetDateTime;

/// Decoded `key=value` pairs in request order. Keys repeat as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Decodes a raw query (without `?`). Malformed escapes are kept
    /// literally; invalid UTF-8 is replaced (never panics).
    pub fn parse(raw: Option<&str>) -> Query {
        let Some(raw) = raw else {
            return Query::default();
        };
        let dec = |s: &str| {
            // Node's querystring turns '+' into a space; the CLI never sends
            // a raw '+', it sends %2B.
            let s = s.replace('+', " ");
            String::from_utf8_lossy(&percent_decode(s.as_bytes()).collect::<Vec<u8>>()).into_owned()
        };
        Query(
            raw.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (dec(k), dec(v)),
                    None => (dec(kv), String::new()),
                })
                .collect(),
        )
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present with a non-empty value.
    pub fn has_nonempty(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| !v.is_empty())
    }
}

/// Default listing page size (muskie).
pub const DEFAULT_LIMIT: usize = 256;
/// Largest listing page.
pub const MAX_LIMIT: usize = 1024;

/// Parses the listing keys of a query (§5.3) into meta's listing options.
pub fn list_params(q: &Query) -> Result<ListOptions, ApiError> {
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as usize,
            _ => return Err(ApiError::InvalidLimit(v.to_owned())),
        },
    };
    if q.get("skip_owner_check").is_some_and(|v| v == "true") {
        return Err(ApiError::QueryParameterForbidden(
            "skip_owner_check".to_owned(),
        ));
    }
    let sort = match q.get("sort") {
        None | Some("") | Some("name") => SortBy::Name,
        Some("mtime") => SortBy::Mtime,
        Some("none") => return Err(ApiError::QueryParameterForbidden("sort=none".to_owned())),
        Some(other) => {
            return Err(ApiError::InvalidParameter(format!(
                "sort={other} is invalid: must be one of name, mtime"
            )));
        }
    };
    let reverse = q.get("sort_order") == Some("reverse");
    let marker = match (q.get("marker"), sort) {
        (None, _) | (Some(""), _) => None,
        (Some(m), SortBy::Name) => Some(Marker::Name(m.to_owned())),
        (Some(m), SortBy::Mtime) => Some(Marker::Mtime(parse_marker_time(m).ok_or_else(|| {
            ApiError::InvalidParameter(format!("marker={m} is not a valid date"))
        })?)),
    };
    let filter = match (q.get("dir").is_some(), q.get("obj").is_some()) {
        (true, false) => TypeFilter::Directories,
        (false, true) => TypeFilter::Objects,
        _ => TypeFilter::All,
    };
    Ok(ListOptions {
        limit,
        marker,
        sort,
        reverse,
        filter,
    })
}

/// Parses an mtime marker: ISO 8601 (what listings print) or an HTTP date.
fn parse_marker_time(s: &str) -> Option<u64> {
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok();
    }
    let t = httpdate::parse_http_date(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lp(q: &str) -> Result<ListOptions, ApiError> {
        list_params(&Query::parse(Some(q)))
    }

    #[test]
    fn decodes_pairs() {
        let q = Query::parse(Some("limit=1024&marker=a%20b%2Bc&dir=true&x"));
        assert_eq!(q.get("marker"), Some("a b+c"));
        assert_eq!(q.get("x"), Some(""));
        assert!(q.has_nonempty("dir"));
        assert!(!q.has_nonempty("x"));
    }

    #[test]
    fn limits() {
        assert_eq!(lp("").unwrap().limit, 256);
        assert_eq!(lp("limit=1024").unwrap().limit, 1024);
        assert_eq!(lp("limit=1").unwrap().limit, 1);
        for bad in ["limit=0", "limit=1025", "limit=-1", "limit=abc", "limit="] {
            assert_eq!(lp(bad).unwrap_err().code(), "InvalidArgumentError", "{bad}");
        }
    }

    #[test]
    fn sorts_and_markers() {
        let p = lp("sort=mtime&sort_order=reverse&marker=2026-11-22T01%3A11%3A29.545Z").unwrap();
        assert_eq!(p.sort, SortBy::Mtime);
        assert!(p.reverse);
        assert_eq!(p.marker, Some(Marker::Mtime(1_795_309_889_545)));
        assert_eq!(
            lp("sort=mtime&marker=yesterday").unwrap_err().code(),
            "InvalidParameter"
        );
        assert_eq!(
            lp("sort=none").unwrap_err().code(),
            "QueryParameterForbidden"
        );
        assert_eq!(
            lp("marker=b").unwrap().marker,
            Some(Marker::Name("b".into()))
        );
        assert_eq!(lp("dir=true").unwrap().filter, TypeFilter::Directories);
        assert_eq!(lp("obj=true").unwrap().filter, TypeFilter::Objects);
        assert_eq!(lp("obj=true&dir=true").unwrap().filter, TypeFilter::All);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = list_params(&Query::parse(Some(&s)));
        }
    }
}
