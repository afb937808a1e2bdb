//! The internal wire protocol between gateways/supervisors and storage nodes.
//!
//! Everything both sides must agree on lives here: object id syntax, JSON
//! bodies, header and query names, and single byte ranges. The server and
//! the client import these definitions, so they cannot drift apart.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Response header carrying an object's full size on GET/HEAD, also on 206
/// responses where `Content-Length` is only the range's length.
pub const HEADER_OBJECT_SIZE: &str = "x-object-size";

/// Query parameter with the expected blake3 (hex) on GET.
pub const QUERY_BLAKE3: &str = "blake3";

/// Error code of a copy that fails its block checksums as a whole
/// (truncated or extended), answered before any byte is sent.
pub const CORRUPT_COPY: &str = "CorruptCopy";

/// Longest accepted object id; UUIDs (36) and hex digests (64) fit.
pub const MAX_OBJECT_ID_LEN: usize = 128;

/// A validated object id: 2 to 128 characters of `[0-9a-z_-]`, starting
/// with two lowercase hex digits (the shard directory). No dots or slashes,
/// so an id can never escape the object directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(String);

/// An object id that does not have the required syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object id {0:?}: want 2-128 chars of [0-9a-z_-] starting with two hex digits")]
pub struct InvalidObjectId(pub String);

impl ObjectId {
    /// Validates `s` as an object id.
    pub fn parse(s: &str) -> Result<Self, InvalidObjectId> {
        let b = s.as_bytes();
        let ok = (2..=MAX_OBJECT_ID_LEN).contains(&b.len())
            && b[..2]
                .iter()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            && b.iter()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'z' | b'-' | b'_'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidObjectId(
                s.chars().take(MAX_OBJECT_ID_LEN + 8).collect(),
            ))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shard directory name: the id's first two hex digits.
    pub fn shard(&self) -> &str {
        &self.0[..2]
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a node answers after durably storing an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutReceipt {
    /// Bytes stored.
    pub size: u64,
    /// Base64 MD5 of the bytes (the form of `Content-MD5`).
    pub md5: String,
    /// Lowercase hex blake3 of the bytes.
    pub blake3: String,
}

/// Disk capacity of a node's data directory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Size of the file system.
    pub total_bytes: u64,
    /// Bytes in use (by anything on that file system).
    pub used_bytes: u64,
    /// Bytes an unprivileged writer can still use.
    pub free_bytes: u64,
}

/// `GET /status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's id.
    pub node_id: String,
    /// The node's availability zone.
    pub az: String,
    /// Capacity of the data directory's file system.
    pub capacity: Capacity,
}

/// `GET /objects?after=&limit=`: ids in ascending order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectList {
    /// Ids strictly after the `after` marker, at most `limit`.
    pub ids: Vec<String>,
}

/// Body of `POST /objects/{id}/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRequest {
    /// Expected blake3, hex.
    pub blake3: String,
}

/// Answer of `POST /objects/{id}/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether the file's blake3 equals the expected one.
    pub matches: bool,
    /// Size of the file.
    pub size: u64,
    /// The file's actual blake3, hex.
    pub blake3: String,
}

/// Error body of every non-2xx answer (same shape as Manta's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `ObjectNotFound`.
    pub code: String,
    /// Human-readable detail.
    pub message: String,
}

/// A resolved single byte range: `len` bytes from `start` (`len >= 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// Offset of the first byte.
    pub start: u64,
    /// Number of bytes.
    pub len: u64,
}

/// Why a `Range` header could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// Not `bytes=a-b`, `bytes=a-` or `bytes=-n` (multiple ranges included).
    #[error("malformed or unsupported range {0:?}")]
    Malformed(String),
    /// Well-formed but outside the object.
    #[error("range not satisfiable for an object of {size} bytes")]
    NotSatisfiable {
        /// The object's size.
        size: u64,
    },
}

impl ByteRange {
    /// Inclusive offset of the last byte.
    pub fn end_inclusive(&self) -> u64 {
        self.start + self.len.max(1) - 1
    }

    /// The `Range` request header value for this range.
    pub fn header_value(&self) -> String {
        format!("bytes={}-{}", self.start, self.end_inclusive())
    }

    /// Parses one `Range` header value against an object of `size` bytes,
    /// clamping an end past the last byte (RFC 9110 §14.1.2).
    pub fn parse(value: &str, size: u64) -> Result<Self, RangeError> {
        let malformed = || RangeError::Malformed(value.chars().take(100).collect());
        let spec = value.trim().strip_prefix("bytes=").ok_or_else(malformed)?;
        let (first, last) = spec.split_once('-').ok_or_else(malformed)?;
        let num = |s: &str| -> Result<Option<u64>, RangeError> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().map(Some).map_err(|_| malformed())
            } else {
                Err(malformed())
            }
        };
        let unsatisfiable = RangeError::NotSatisfiable { size };
        match (num(first)?, num(last)?) {
            (Some(start), end) => {
                if end.is_some_and(|e| e < start) {
                    return Err(malformed());
                }
                if start >= size {
                    return Err(unsatisfiable);
                }
                let end = end.map_or(size - 1, |e| e.min(size - 1));
                Ok(Self {
                    start,
                    len: end - start + 1,
                })
            }
            (None, Some(suffix)) => {
                if suffix == 0 || size == 0 {
                    return Err(unsatisfiable);
                }
                let len = suffix.min(size);
                Ok(Self {
                    start: size - len,
                    len,
                })
            }
            (None, None) => Err(malformed()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn object_ids() {
        assert!(ObjectId::parse("23b1799e-287b-4a92-98c6-100cee99495b").is_ok());
        assert_eq!(ObjectId::parse("ab").unwrap().shard(), "ab");
        for bad in [
            "",
            "a",
            "zz12",
            "AB12",
            "ab/../x",
            "ab.tmp",
            "ab c",
            &"a".repeat(129),
        ] {
            assert!(ObjectId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges() {
        let r = |s: &str, size| ByteRange::parse(s, size);
        assert_eq!(r("bytes=0-0", 10), Ok(ByteRange { start: 0, len: 1 }));
        assert_eq!(r("bytes=2-", 10), Ok(ByteRange { start: 2, len: 8 }));
        assert_eq!(r("bytes=5-100", 10), Ok(ByteRange { start: 5, len: 5 }));
        assert_eq!(r("bytes=-3", 10), Ok(ByteRange { start: 7, len: 3 }));
        assert_eq!(r("bytes=-30", 10), Ok(ByteRange { start: 0, len: 10 }));
        assert_eq!(
            r("bytes=10-", 10),
            Err(RangeError::NotSatisfiable { size: 10 })
        );
        assert_eq!(
            r("bytes=-0", 10),
            Err(RangeError::NotSatisfiable { size: 10 })
        );
        assert_eq!(
            r("bytes=0-", 0),
            Err(RangeError::NotSatisfiable { size: 0 })
        );
        for bad in [
            "bytes=5-2",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=-",
            "bytes=+1-2",
            "bytes=a-b",
            "bytes=1",
        ] {
            assert!(matches!(r(bad, 10), Err(RangeError::Malformed(_))), "{bad}");
        }
        assert_eq!(ByteRange { start: 3, len: 4 }.header_value(), "bytes=3-6");
    }

    proptest! {
        #[test]
        fn parsed_ranges_lie_inside_the_object(value in "\\PC{0,30}", size in 0u64..1000) {
            if let Ok(r) = ByteRange::parse(&value, size) {
                prop_assert!(r.len >= 1);
                prop_assert!(r.start + r.len <= size);
            }
        }

        #[test]
        fn header_value_round_trips(start in 0u64..1_000_000, len in 1u64..1_000_000, extra in 0u64..10) {
            let r = ByteRange { start, len };
            prop_assert_eq!(ByteRange::parse(&r.header_value(), start + len + extra), Ok(r));
        }

        #[test]
        fn object_id_parse_never_panics_and_accepts_only_safe_names(s in "\\PC{0,140}") {
            if let Ok(id) = ObjectId::parse(&s) {
                prop_assert!(!id.as_str().contains(['/', '.', '\0']));
                prop_assert_eq!(id.shard().len(), 2);
            }
        }
    }
}
