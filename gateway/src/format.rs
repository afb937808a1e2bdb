//! Wire formats of responses: listing lines (§5.3), ISO mtimes with
//! milliseconds, HTTP dates, base64 MD5.
//!
//! Guarantees: one compact JSON object per line, `\n`-terminated, absent
//! fields omitted (never `null`), `type` exactly `object` or `directory`.

use base64::Engine as _;
use serde::Serialize;
use std::time::{Duration, UNIX_EPOCH};

/// What JavaScript's `encodeURIComponent` leaves alone (how the CLI encodes
/// path segments, §1.3).
pub const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The directory content type HEAD/GET must return, byte for byte (§5.2).
pub const DIRECTORY_CONTENT_TYPE: &str = "application/x-json-stream; type=directory";

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (JavaScript `toISOString`).
pub fn iso_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// RFC 1123 GMT date of a millisecond timestamp (`Last-Modified`).
pub fn http_date_ms(ms: i64) -> String {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Base64 of an MD5 digest.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One listing line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ListRecord {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "contentType", skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(rename = "contentDisposition", skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(rename = "contentMD5", skip_serializing_if = "Option::is_none")]
    pub content_md5: Option<String>,
    pub mtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<u32>,
}

impl ListRecord {
    pub fn directory(name: String, mtime_ms: i64) -> ListRecord {
        ListRecord {
            name,
            etag: None,
            size: None,
            kind: "directory",
            content_type: None,
            content_disposition: None,
            content_md5: None,
            mtime: iso_ms(mtime_ms),
            durability: None,
        }
    }

    /// Appends the line (with its `\n`) to `out`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        // Serializing a struct of strings and numbers cannot fail.
        if serde_json::to_writer(&mut *out, self).is_ok() {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn iso_has_millis() {
        assert_eq!(iso_ms(1_795_309_889_545), "2026-11-22T01:11:29.545Z");
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn http_date() {
        assert_eq!(
            http_date_ms(1_795_309_889_545),
            "Sun, 22 Nov 2026 01:11:29 GMT"
        );
    }

    #[test]
    fn directory_line() {
        let mut out = Vec::new();
        ListRecord::directory("sub".into(), 0).write_line(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"name\":\"sub\",\"type\":\"directory\",\"mtime\":\"1970-01-01T00:00:00.000Z\"}\n"
        );
    }

    proptest! {
        #[test]
        fn iso_shape(ms in 0i64..4_102_444_800_000) {
            let s = iso_ms(ms);
            prop_assert_eq!(s.len(), 24);
            prop_assert!(s.ends_with('Z'));
            let parsed = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).unwrap();
            prop_assert_eq!((parsed.unix_timestamp_nanos() / 1_000_000) as i64, ms);
        }
    }
}
