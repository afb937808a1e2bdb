//! How S3 names map onto the namespace, and the S3 view of an entry.
//!
//! A bucket is the directory `/:login/stor/<bucket>` of the signing
//! account; a key is a path below it, one segment per `/`-separated part.
//! Guarantees: every path built here lies under the principal's own
//! `stor` (the login comes from the access key, never from the request);
//! keys that cannot be a path (empty or `.`/`..` segments, NUL) are
//! refused with `InvalidArgument` rather than altered.

use super::error::{S3ApiError, S3ApiResult};
use base64::Engine as _;
use meta::namespace::{Entry, Headers};
use meta::path::{MantaPath, TopDir};

/// Stored-header key of a multipart object's S3 ETag (`<hex>-<parts>`);
/// never returned as a header by either frontend.
pub const ETAG_HEADER: &str = "s3-etag";
/// Largest key S3 accepts.
const MAX_KEY_BYTES: usize = 1024;

/// S3's bucket naming rules (3..=63 of `a-z 0-9 . -`, starting and ending
/// with a letter or digit). `stor` directories with other names are not
/// buckets.
pub fn valid_bucket(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// `/:login/stor`.
pub fn stor(login: &str) -> S3ApiResult<MantaPath> {
    MantaPath::top_dir(login, TopDir::Stor).map_err(|e| S3ApiError::InvalidArgument(e.to_string()))
}

/// The directory of `bucket`.
pub fn bucket_path(login: &str, bucket: &str) -> S3ApiResult<MantaPath> {
    if !valid_bucket(bucket) {
        return Err(S3ApiError::InvalidBucketName(bucket.to_owned()));
    }
    MantaPath::from_parts(login, Some(TopDir::Stor), vec![bucket.to_owned()])
        .map_err(|_| S3ApiError::InvalidBucketName(bucket.to_owned()))
}

/// A key's path. A trailing `/` (a "folder" marker) names the directory.
pub fn key_path(login: &str, bucket: &str, key: &str) -> S3ApiResult<MantaPath> {
    let bad = |why: &str| S3ApiError::InvalidArgument(format!("key {key:?}: {why}"));
    if key.is_empty() {
        return Err(bad("empty key"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(bad("longer than 1024 bytes"));
    }
    let trimmed = key.strip_suffix('/').unwrap_or(key);
    let mut rest = vec![bucket.to_owned()];
    for seg in trimmed.split('/') {
        if seg.is_empty() {
            return Err(bad("empty path segments are not supported"));
        }
        rest.push(seg.to_owned());
    }
    if !valid_bucket(bucket) {
        return Err(S3ApiError::InvalidBucketName(bucket.to_owned()));
    }
    MantaPath::from_parts(login, Some(TopDir::Stor), rest).map_err(|e| bad(&e.to_string()))
}

/// The S3 ETag of an object entry (unquoted): the hex MD5 of its bytes,
/// or `<md5 of the parts' md5s>-<parts>` for an S3 multipart object.
pub fn etag(e: &Entry) -> Option<String> {
    let o = e.object()?;
    if let Some(t) = e.headers.get(ETAG_HEADER) {
        return Some(t.clone());
    }
    Some(md5_hex(&o.content_md5))
}

/// Hex form of a stored base64 MD5.
pub fn md5_hex(b64: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(hex::encode)
        .unwrap_or_default()
}

/// `x-amz-meta-*` of a write as stored headers (`m-*`).
pub fn user_metadata(meta: Option<&s3s::dto::Metadata>) -> Headers {
    meta.into_iter()
        .flatten()
        .map(|(k, v)| (format!("m-{}", k.to_ascii_lowercase()), v.clone()))
        .collect()
}

/// Stored `m-*` headers as `x-amz-meta-*` metadata.
pub fn metadata_of(e: &Entry) -> Option<s3s::dto::Metadata> {
    let m: s3s::dto::Metadata = e
        .headers
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("m-").map(|n| (n.to_owned(), v.clone())))
        .collect();
    (!m.is_empty()).then_some(m)
}

/// An entry's mtime as an S3 timestamp.
pub fn timestamp(ms: u64) -> s3s::dto::Timestamp {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    s3s::dto::Timestamp::from(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_paths_below_the_bucket() {
        let p = key_path("alice", "photos", "2024/jan/a.jpg").expect("path");
        assert_eq!(p.to_string(), "/alice/stor/photos/2024/jan/a.jpg");
        let d = key_path("alice", "photos", "2024/").expect("dir");
        assert_eq!(d.to_string(), "/alice/stor/photos/2024");
        for bad in ["", "a//b", "/a", "a/../b", "./a", "a\0b"] {
            assert!(key_path("alice", "photos", bad).is_err(), "{bad:?}");
        }
        assert!(key_path("alice", "Bad_Bucket", "a").is_err());
        assert!(bucket_path("alice", "..").is_err());
    }

    #[test]
    fn bucket_names_follow_s3() {
        assert!(valid_bucket("my-bucket.1"));
        for bad in ["ab", "-ab", "abc-", "ABC", "a_b", "jobs/x"] {
            assert!(!valid_bucket(bad), "{bad}");
        }
    }

    #[test]
    fn etag_is_hex_md5() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(
            md5_hex("1B2M2Y8AsgTpgAmY7PhCfg=="),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }
}
