//! Request headers turned into typed values: ranges (§6.2), conditionals
//! (§6.6), durability level, `Content-MD5`, body-size limits (§1.5),
//! stored metadata headers (`m-*`, CORS, `role-tag`, ...; §6.1) and the PUT
//! content-type routing (§5.1, §7).
//!
//! Guarantees: nothing here panics on client input; every value a handler
//! receives has been validated.

use crate::disposition::InvalidDisposition;
use crate::error::ApiError;
use base64::Engine as _;
use http::HeaderMap;
use meta::namespace::{Conditions, Headers};
use std::time::UNIX_EPOCH;

/// Total bytes of `m-*` values kept per entry (muskie silently dropped the rest).
pub const MAX_USER_METADATA_BYTES: usize = 4096;
/// Total bytes of `m-*` values a request may carry at all: beyond this it is
/// refused (400 `BadRequest`) rather than silently trimmed. Manta's node front
/// end refused requests whose headers passed 80 KiB; a request sending 16x
/// what can be kept is a client bug or an attack, not metadata.
pub const MAX_USER_METADATA_REQUEST_BYTES: usize = 64 * 1024;

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

// ---------------------------------------------------------------- ranges

/// A single byte range as sent, before knowing the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b` (b inclusive) or `a-` (b = None).
    FromTo(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// Why a `Range` header cannot be served. Kept apart from [`ApiError`]
/// so the refusal can wait until after authorization and lookup: a
/// malformed range must not answer before a 403 or 404 would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRefusal {
    /// Not a `bytes=a-b` form muskie's storage nodes understood: 416.
    Malformed,
    /// More than one range (`NotImplemented`, as muskie's verifyRange).
    Multiple,
}

/// Parses `Range:`. `Ok(None)` when absent.
pub fn parse_range(h: &HeaderMap) -> Result<Option<ByteRange>, RangeRefusal> {
    let Some(raw) = h.get(http::header::RANGE) else {
        return Ok(None);
    };
    let bad = || RangeRefusal::Malformed;
    let s = raw.to_str().map_err(|_| bad())?.trim();
    if s.contains(',') {
        return Err(RangeRefusal::Multiple);
    }
    let spec = s.strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.trim().split_once('-').ok_or_else(bad)?;
    let num = |x: &str| x.trim().parse::<u64>().map_err(|_| bad());
    let r = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, true) => return Err(bad()),
        (true, false) => ByteRange::Suffix(num(b)?),
        (false, true) => ByteRange::FromTo(num(a)?, None),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(bad());
            }
            ByteRange::FromTo(a, Some(b))
        }
    };
    Ok(Some(r))
}

impl ByteRange {
    /// Resolves against the object size: `(start, end_inclusive)`. An end
    /// past the last byte is clamped (the CLI's resume asks one past it).
    pub fn resolve(self, size: u64) -> Result<(u64, u64), ApiError> {
        let unsat =
            || ApiError::RangeNotSatisfiable(format!("range not satisfiable for size {size}"));
        if size == 0 {
            return Err(unsat());
        }
        match self {
            ByteRange::FromTo(a, b) => {
                if a >= size {
                    return Err(unsat());
                }
                Ok((a, b.unwrap_or(size - 1).min(size - 1)))
            }
            ByteRange::Suffix(0) => Err(unsat()),
            ByteRange::Suffix(n) => Ok((size.saturating_sub(n), size - 1)),
        }
    }
}

// ---------------------------------------------------------- conditionals

fn http_date_secs(h: &HeaderMap, name: &str) -> Option<i64> {
    // An unparsable date is ignored, as RFC 9110 says and restify did.
    let t = httpdate::parse_http_date(header_str(h, name)?).ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_secs()).ok()
}

/// The four conditional headers (§6.6), in meta's form: meta evaluates them
/// for reads and inside the write transaction for writes.
pub fn parse_conditions(h: &HeaderMap) -> Conditions {
    Conditions {
        if_match: header_str(h, "if-match").map(Conditions::parse_etags),
        if_none_match: header_str(h, "if-none-match").map(Conditions::parse_etags),
        if_modified_since: http_date_secs(h, "if-modified-since"),
        if_unmodified_since: http_date_secs(h, "if-unmodified-since"),
    }
}

// ------------------------------------------------------ durability, md5

/// `durability-level` (or the CLI's `x-durability-level`). `Ok(None)` when absent.
pub fn parse_durability(h: &HeaderMap, max: u32) -> Result<Option<u32>, ApiError> {
    let raw = header_str(h, "durability-level").or_else(|| header_str(h, "x-durability-level"));
    let raw = match (
        raw,
        h.contains_key("durability-level") || h.contains_key("x-durability-level"),
    ) {
        (Some(r), _) => r,
        (None, true) => return Err(ApiError::InvalidDurabilityLevel { max }),
        (None, false) => return Ok(None),
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ApiError::InvalidDurabilityLevel { max }),
    }
}

/// Whether any durability header was sent (forbidden on metadata updates).
pub fn has_durability(h: &HeaderMap) -> bool {
    h.contains_key("durability-level") || h.contains_key("x-durability-level")
}

/// `Content-MD5` as 16 bytes. `Ok(None)` when absent.
pub fn parse_content_md5(h: &HeaderMap) -> Result<Option<[u8; 16]>, ApiError> {
    let Some(v) = h.get("content-md5") else {
        return Ok(None);
    };
    let bad = || ApiError::BadRequest("Content-MD5 invalid".to_owned());
    let s = v.to_str().map_err(|_| bad())?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| bad())?;
    let arr: [u8; 16] = bytes.try_into().map_err(|_| bad())?;
    Ok(Some(arr))
}

/// Announced body length, if `Content-Length` was sent.
pub fn content_length(h: &HeaderMap) -> Option<u64> {
    header_str(h, "content-length").and_then(|v| v.trim().parse().ok())
}

/// The effective upload cap: `max-content-length` if sent (never above
/// the server's own cap), else the server's cap.
pub fn max_content_length(h: &HeaderMap, server_cap: u64) -> Result<u64, ApiError> {
    match header_str(h, "max-content-length") {
        None => Ok(server_cap),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok((n as u64).min(server_cap)),
            _ => Err(ApiError::InvalidMaxContentLength),
        },
    }
}

// --------------------------------------------------- stored metadata

/// Headers stored verbatim with an entry besides `m-*` (§5.1, §6.1).
const STORED_HEADERS: &[&str] = &[
    "access-control-allow-origin",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
    "access-control-allow-methods",
    "cache-control",
    "surrogate-key",
    "content-disposition",
];

/// Metadata headers a PUT carries, lowercased names, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredHeaders {
    /// `m-*` and the CORS/cache headers.
    pub headers: Vec<(String, String)>,
    /// `role-tag` names, split on commas.
    pub role_tags: Vec<String>,
}

fn is_user_meta(name: &str) -> bool {
    name.strip_prefix("m-").is_some_and(|r| {
        r.chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// What a write does with `Content-Disposition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispositionRule {
    /// Objects: parsed whole, stored normalized ([`crate::disposition`]),
    /// refused (400) when it does not parse.
    Normalize,
    /// Directories (and updates whose target is not known yet): never
    /// stored, never an error.
    Ignore,
}

/// `Content-Disposition` of a request, normalized; `None` when absent.
pub fn disposition(h: &HeaderMap) -> Option<Result<String, InvalidDisposition>> {
    let v = h.get(http::header::CONTENT_DISPOSITION)?;
    Some(crate::disposition::normalize_bytes(v.as_bytes()))
}

impl StoredHeaders {
    /// The headers an object write stores ([`DispositionRule::Normalize`]).
    pub fn parse(h: &HeaderMap) -> Result<StoredHeaders, ApiError> {
        StoredHeaders::parse_with(h, DispositionRule::Normalize)
    }

    pub fn parse_with(h: &HeaderMap, rule: DispositionRule) -> Result<StoredHeaders, ApiError> {
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut user_bytes = 0usize;
        for (name, value) in h {
            let name = name.as_str(); // http lowercases names
            let user = is_user_meta(name);
            if !user && !STORED_HEADERS.contains(&name) {
                continue;
            }
            if name == "content-disposition" {
                if rule == DispositionRule::Normalize {
                    let v = crate::disposition::normalize_bytes(value.as_bytes())
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    headers.push((name.to_owned(), v));
                }
                continue;
            }
            let Ok(v) = std::str::from_utf8(value.as_bytes()) else {
                continue;
            };
            if user {
                user_bytes += v.len();
                if user_bytes > MAX_USER_METADATA_REQUEST_BYTES {
                    return Err(ApiError::BadRequest(format!(
                        "m-* headers total more than {MAX_USER_METADATA_REQUEST_BYTES} bytes \
                         (at most {MAX_USER_METADATA_BYTES} are stored)"
                    )));
                }
                if user_bytes > MAX_USER_METADATA_BYTES {
                    continue;
                }
            }
            headers.push((name.to_owned(), v.to_owned()));
        }
        headers.sort();
        let role_tags = header_str(h, "role-tag")
            .map(auth::rbac::comma_list)
            .unwrap_or_default();
        Ok(StoredHeaders { headers, role_tags })
    }
}

/// The headers a write stores with an entry (PUT of an object, directory
/// or link, metadata updates, multipart-upload create): validated by
/// [`StoredHeaders::parse`], `role-tag` names joined with `", "` as muskie
/// returned them (§2.6). Every path that stores client headers goes through
/// here, so one cap and one set of checks hold for all of them.
pub fn stored_headers(h: &HeaderMap) -> Result<Headers, ApiError> {
    stored_headers_with(h, DispositionRule::Normalize)
}

/// [`stored_headers`] with an explicit rule for `Content-Disposition`.
pub fn stored_headers_with(h: &HeaderMap, rule: DispositionRule) -> Result<Headers, ApiError> {
    let s = StoredHeaders::parse_with(h, rule)?;
    let mut map: Headers = s.headers.into_iter().collect();
    if !s.role_tags.is_empty() {
        map.insert("role-tag".to_owned(), s.role_tags.join(", "));
    }
    Ok(map)
}

// ------------------------------------------------- PUT routing by type

/// What a PUT's `Content-Type` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutKind {
    Directory,
    Link,
    /// An object with this content type (defaulted).
    Object(String),
}

/// Default content type for objects sent without one (§6.1).
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Classifies a PUT by content type, tolerant of case and whitespace.
pub fn put_kind(h: &HeaderMap) -> PutKind {
    let Some(ct) = header_str(h, "content-type")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return PutKind::Object(DEFAULT_CONTENT_TYPE.to_owned());
    };
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if media == "application/json" {
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("type")
            {
                match v.trim().trim_matches('"').to_ascii_lowercase().as_str() {
                    "directory" => return PutKind::Directory,
                    "link" => return PutKind::Link,
                    _ => {}
                }
            }
        }
    }
    PutKind::Object(crate::mime::normalize(ct))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn hm(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn ranges() {
        let r = |v: &str| parse_range(&hm(&[("range", v)]));
        assert_eq!(r("bytes=0-4").unwrap(), Some(ByteRange::FromTo(0, Some(4))));
        assert_eq!(r("bytes=5-").unwrap(), Some(ByteRange::FromTo(5, None)));
        assert_eq!(r("bytes=-3").unwrap(), Some(ByteRange::Suffix(3)));
        assert_eq!(r("bytes=0-1,3-4").unwrap_err(), RangeRefusal::Multiple);
        for bad in ["bytes=4-2", "bytes=-", "items=0-1", "bytes=a-b", "bytes=0"] {
            assert_eq!(r(bad).unwrap_err(), RangeRefusal::Malformed, "{bad}");
        }
        assert_eq!(parse_range(&HeaderMap::new()).unwrap(), None);
        assert_eq!(ByteRange::FromTo(0, Some(4)).resolve(12).unwrap(), (0, 4));
        assert_eq!(ByteRange::FromTo(3, Some(12)).resolve(12).unwrap(), (3, 11));
        assert_eq!(ByteRange::Suffix(3).resolve(12).unwrap(), (9, 11));
        assert_eq!(ByteRange::Suffix(30).resolve(12).unwrap(), (0, 11));
        assert!(ByteRange::FromTo(12, None).resolve(12).is_err());
        assert!(ByteRange::Suffix(0).resolve(12).is_err());
        assert!(ByteRange::FromTo(0, None).resolve(0).is_err());
    }

    #[test]
    fn conditionals() {
        let c = parse_conditions(&hm(&[
            ("if-match", "\"e1\", W/\"e2\""),
            ("if-modified-since", "garbage"),
        ]));
        assert_eq!(c.if_match, Some(vec!["e1".to_owned(), "e2".to_owned()]));
        assert_eq!(c.if_modified_since, None);
        let c = parse_conditions(&hm(&[(
            "if-unmodified-since",
            "Sun, 22 Nov 2026 01:00:00 GMT",
        )]));
        assert_eq!(c.if_unmodified_since, Some(1_795_309_200));
        assert!(parse_conditions(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn durability() {
        assert_eq!(parse_durability(&hm(&[]), 6).unwrap(), None);
        assert_eq!(
            parse_durability(&hm(&[("x-durability-level", "3")]), 6).unwrap(),
            Some(3)
        );
        assert_eq!(
            parse_durability(
                &hm(&[("durability-level", "1"), ("x-durability-level", "5")]),
                6
            )
            .unwrap(),
            Some(1)
        );
        for bad in ["0", "99", "-1", "two", ""] {
            assert_eq!(
                parse_durability(&hm(&[("durability-level", bad)]), 6)
                    .unwrap_err()
                    .code(),
                "InvalidDurabilityLevel"
            );
        }
    }

    #[test]
    fn md5_header() {
        assert_eq!(
            parse_content_md5(&hm(&[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")]))
                .unwrap()
                .unwrap()[0],
            0xd4
        );
        assert_eq!(
            parse_content_md5(&hm(&[("content-md5", "nope")]))
                .unwrap_err()
                .code(),
            "BadRequest"
        );
        assert_eq!(
            parse_content_md5(&hm(&[("content-md5", "AAAA")]))
                .unwrap_err()
                .code(),
            "BadRequest"
        );
    }

    #[test]
    fn limits() {
        assert_eq!(max_content_length(&hm(&[]), 100).unwrap(), 100);
        assert_eq!(
            max_content_length(&hm(&[("max-content-length", "5")]), 100).unwrap(),
            5
        );
        assert_eq!(
            max_content_length(&hm(&[("max-content-length", "500")]), 100).unwrap(),
            100
        );
        assert_eq!(
            max_content_length(&hm(&[("max-content-length", "-1")]), 100)
                .unwrap_err()
                .code(),
            "InvalidMaxContentLength"
        );
    }

    #[test]
    fn stored_headers() {
        let s = StoredHeaders::parse(&hm(&[
            ("m-color", "blue"),
            ("m-", "no"),
            ("content-type", "text/plain"),
            ("cache-control", "no-cache"),
            ("role-tag", "r1, r2"),
        ]))
        .unwrap();
        assert_eq!(
            s.headers,
            vec![
                ("cache-control".into(), "no-cache".into()),
                ("m-color".into(), "blue".into())
            ]
        );
        assert_eq!(s.role_tags, vec!["r1".to_owned(), "r2".to_owned()]);
        let big = "x".repeat(3000);
        let s = StoredHeaders::parse(&hm(&[("m-a", &big), ("m-b", &big)])).unwrap();
        assert_eq!(s.headers.len(), 1);
        // Far more than can be kept is refused, not trimmed.
        let huge = "x".repeat(MAX_USER_METADATA_REQUEST_BYTES / 2);
        let err =
            StoredHeaders::parse(&hm(&[("m-a", &huge), ("m-b", &huge), ("m-c", "x")])).unwrap_err();
        assert_eq!(err.code(), "BadRequest");
        assert!(StoredHeaders::parse(&hm(&[("m-a", &huge), ("m-b", &huge)])).is_ok());
    }

    #[test]
    fn put_kinds() {
        let k = |v: &str| put_kind(&hm(&[("content-type", v)]));
        assert_eq!(k("application/json; type=directory"), PutKind::Directory);
        assert_eq!(k("Application/JSON;type=Directory"), PutKind::Directory);
        assert_eq!(k("application/json; type=link"), PutKind::Link);
        assert_eq!(
            k("application/json"),
            PutKind::Object("application/json".into())
        );
        assert_eq!(k("text/plain"), PutKind::Object("text/plain".into()));
        assert_eq!(
            put_kind(&HeaderMap::new()),
            PutKind::Object(DEFAULT_CONTENT_TYPE.into())
        );
    }

    proptest! {
        #[test]
        fn range_parse_never_panics(s in "[ -~]{0,40}", size in 0u64..1000) {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let mut h = HeaderMap::new();
                h.insert("range", v);
                if let Ok(Some(r)) = parse_range(&h) && let Ok((a, b)) = r.resolve(size) {
                    prop_assert!(a <= b && b < size);
                }
            }
        }
    }
}
