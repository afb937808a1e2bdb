//! Stored value formats: one format-version byte, then JSON.
//!
//! JSON (serde_json) because values are small, the schema will grow (new
//! fields with `#[serde(default)]` stay readable by old and new code), and
//! records stay inspectable with generic tools while debugging. The version
//! byte leaves room for a binary encoding later without a migration flag day.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use super::error::NamespaceError;
use super::types::{EntryKind, Headers, NodeId};

/// Current value format.
const FORMAT_V1: u8 = 1;

/// Encode a value.
pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    // Serializing these plain structs to a Vec cannot fail (no maps with
    // non-string keys, no custom serializers).
    serde_json::to_writer(&mut out, v).unwrap_or_default();
    out
}

/// Decode a value written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, NamespaceError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, json)) => serde_json::from_slice(json)
            .map_err(|e| NamespaceError::Internal(format!("corrupt metadata record: {e}"))),
        Some((v, _)) => Err(NamespaceError::Internal(format!(
            "unknown metadata record format {v}"
        ))),
        None => Err(NamespaceError::Internal("empty metadata record".into())),
    }
}

/// A directory entry's stored value (the name is the key's suffix).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    #[serde(rename = "m")]
    pub mtime_ms: u64,
    #[serde(rename = "h", default, skip_serializing_if = "Headers::is_empty")]
    pub headers: Headers,
    #[serde(rename = "k")]
    pub kind: EntryKind,
}

/// `0x20 objectid`: shared object record once snaplinked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ObjectRecord {
    pub refcount: u64,
    pub copies: Vec<NodeId>,
    pub size: u64,
}

/// `0x40 ...`: one copy to delete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredGc {
    pub node: NodeId,
    pub object_id: Uuid,
    pub recorded_ms: u64,
}

/// `0x72 ...`: SHA256 fingerprint index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Sha256Index {
    pub md5: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let e = StoredEntry {
            mtime_ms: 5,
            headers: [("m-a".to_owned(), "1".to_owned())].into(),
            kind: EntryKind::Directory,
        };
        let bytes = encode(&e);
        assert_eq!(bytes[0], FORMAT_V1);
        let back: StoredEntry = decode(&bytes).unwrap();
        assert_eq!(back.mtime_ms, 5);
        assert_eq!(back.kind, EntryKind::Directory);
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(decode::<StoredEntry>(&bad).is_err());
        assert!(decode::<StoredEntry>(&[]).is_err());
        assert!(decode::<StoredEntry>(&[FORMAT_V1, b'{']).is_err());
    }
}
