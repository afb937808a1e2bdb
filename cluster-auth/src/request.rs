//! Signed internal requests.
//!
//! A client adds one header to every request:
//!
//! ```text
//! x-tidepool-cluster-auth: v1 <unix seconds> <nonce: 32 hex> <hmac: 64 hex>
//! ```
//!
//! where the HMAC-SHA256, keyed with the cluster key derived for
//! `"request"`, covers
//!
//! ```text
//! TIDEPOOL-REQUEST-V1\n<METHOD>\n<path?query as sent>\n<seconds>\n<nonce>
//! ```
//!
//! The server ([`RequestVerifier::verify`]) accepts a request only if the
//! HMAC matches, the timestamp is within the skew window of its own clock,
//! and the nonce has not been accepted before within that window. Nonces are
//! remembered only for as long as their timestamp could still pass the
//! window, and only nonces of correctly signed requests are remembered, so
//! the memory is bounded by the rate of genuine requests; past
//! [`MAX_NONCES`] remembered nonces the verifier refuses new requests
//! ([`AuthError::Busy`]) rather than forget one still replayable.
//!
//! The body is not covered (it streams); see the crate documentation.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;

use crate::key::ClusterKey;

/// The header carrying a request's signature.
pub const AUTH_HEADER: &str = "x-tidepool-cluster-auth";
/// Default accepted clock skew between client and server, seconds.
pub const DEFAULT_SKEW_SECS: u64 = 60;
/// Most nonces remembered at once (about 40 MB at worst).
pub const MAX_NONCES: usize = 1 << 20;

const LABEL: &str = "request";
const VERSION: &str = "v1";

/// Why a request was refused. Every variant but [`AuthError::Busy`] is the
/// caller's fault and answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No signature header.
    #[error("missing {AUTH_HEADER} header")]
    Missing,
    /// The header is not `v1 <secs> <nonce> <hmac>`.
    #[error("malformed {AUTH_HEADER} header")]
    Malformed,
    /// The HMAC does not match (wrong key, or another request's header).
    #[error("bad request signature")]
    BadSignature,
    /// The timestamp is outside the skew window.
    #[error("request timestamp outside the accepted clock skew")]
    Skewed,
    /// The nonce was already used.
    #[error("replayed request (nonce already used)")]
    Replayed,
    /// Too many nonces in the window to remember another.
    #[error("too many requests to remember their nonces")]
    Busy,
}

fn mac_for(
    key: &[u8; 32],
    method: &str,
    path_and_query: &str,
    secs: u64,
    nonce: &str,
) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(
        format!("TIDEPOOL-REQUEST-V1\n{method}\n{path_and_query}\n{secs}\n{nonce}").as_bytes(),
    );
    mac
}

/// Signs outgoing internal requests. Cheap to clone.
#[derive(Clone)]
pub struct RequestSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestSigner(..)")
    }
}

impl RequestSigner {
    /// A signer with `key`'s request key.
    pub fn new(key: &ClusterKey) -> RequestSigner {
        RequestSigner {
            key: key.derive(LABEL),
        }
    }

    /// The header value for a request of `method` to `path_and_query`
    /// (exactly as it goes on the request line, e.g. `/objects?limit=5`),
    /// with a fresh nonce and the current time.
    pub fn header_value(&self, method: &str, path_and_query: &str) -> HeaderValue {
        self.header_value_at(method, path_and_query, crate::unix_now())
    }

    /// [`RequestSigner::header_value`] at time `secs` (for tests of skew).
    pub fn header_value_at(&self, method: &str, path_and_query: &str, secs: u64) -> HeaderValue {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let sig = mac_for(&self.key, method, path_and_query, secs, &nonce)
            .finalize()
            .into_bytes();
        let v = format!("{VERSION} {secs} {nonce} {}", hex::encode(sig));
        HeaderValue::from_str(&v).expect("ASCII digits and hex only")
    }

    /// Adds the signature header to `headers`.
    pub fn sign(&self, method: &str, path_and_query: &str, headers: &mut HeaderMap) {
        headers.insert(AUTH_HEADER, self.header_value(method, path_and_query));
    }
}

/// Nonces accepted within the window, oldest timestamp first.
#[derive(Default)]
struct Nonces {
    by_time: BTreeSet<(u64, [u8; 16])>,
    seen: HashSet<[u8; 16]>,
}

/// Checks incoming internal requests; one per server (it remembers nonces).
pub struct RequestVerifier {
    key: [u8; 32],
    skew: u64,
    nonces: Mutex<Nonces>,
}

impl std::fmt::Debug for RequestVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestVerifier")
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

impl RequestVerifier {
    /// A verifier with `key`'s request key and the default skew window.
    pub fn new(key: &ClusterKey) -> RequestVerifier {
        RequestVerifier {
            key: key.derive(LABEL),
            skew: DEFAULT_SKEW_SECS,
            nonces: Mutex::default(),
        }
    }

    /// Checks a request of `method` to `path_and_query` with `headers`
    /// against the current time.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
    ) -> Result<(), AuthError> {
        self.verify_at(method, path_and_query, headers, crate::unix_now())
    }

    /// [`RequestVerifier::verify`] at time `now` (seconds).
    pub fn verify_at(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<(), AuthError> {
        let value = headers.get(AUTH_HEADER).ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        let mut parts = value.split(' ');
        let (Some(VERSION), Some(secs), Some(nonce), Some(sig), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(AuthError::Malformed);
        };
        let secs: u64 = secs.parse().map_err(|_| AuthError::Malformed)?;
        let mut nonce_bytes = [0u8; 16];
        hex::decode_to_slice(nonce, &mut nonce_bytes).map_err(|_| AuthError::Malformed)?;
        let mut sig_bytes = [0u8; 32];
        hex::decode_to_slice(sig, &mut sig_bytes).map_err(|_| AuthError::Malformed)?;
        // Constant-time comparison.
        mac_for(&self.key, method, path_and_query, secs, nonce)
            .verify_slice(&sig_bytes)
            .map_err(|_| AuthError::BadSignature)?;
        if secs.abs_diff(now) > self.skew {
            return Err(AuthError::Skewed);
        }
        self.remember(nonce_bytes, secs, now)
    }

    /// Records `nonce` (timestamp `secs`) unless already seen, forgetting
    /// nonces whose timestamp can no longer pass the window.
    fn remember(&self, nonce: [u8; 16], secs: u64, now: u64) -> Result<(), AuthError> {
        let mut n = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(t, old)) = n.by_time.first() {
            if t.saturating_add(self.skew) >= now {
                break;
            }
            n.by_time.pop_first();
            n.seen.remove(&old);
        }
        if n.seen.contains(&nonce) {
            return Err(AuthError::Replayed);
        }
        if n.seen.len() >= MAX_NONCES {
            return Err(AuthError::Busy);
        }
        n.seen.insert(nonce);
        n.by_time.insert((secs, nonce));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(s: &RequestSigner, method: &str, pq: &str, secs: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTH_HEADER, s.header_value_at(method, pq, secs));
        h
    }

    #[test]
    fn accepts_once_and_only_what_was_signed() {
        let key = ClusterKey::generate();
        let (s, v) = (RequestSigner::new(&key), RequestVerifier::new(&key));
        let now = 1_000_000;
        let h = signed(&s, "GET", "/objects?limit=5", now);
        assert_eq!(v.verify_at("GET", "/objects?limit=5", &h, now), Ok(()));
        assert_eq!(
            v.verify_at("GET", "/objects?limit=5", &h, now + 1),
            Err(AuthError::Replayed)
        );
        let h = signed(&s, "GET", "/objects?limit=5", now);
        assert_eq!(
            v.verify_at("DELETE", "/objects?limit=5", &h, now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v.verify_at("GET", "/objects?limit=6", &h, now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v.verify_at("GET", "/objects", &HeaderMap::new(), now),
            Err(AuthError::Missing)
        );
        let other = RequestSigner::new(&ClusterKey::generate());
        let h = signed(&other, "GET", "/status", now);
        assert_eq!(
            v.verify_at("GET", "/status", &h, now),
            Err(AuthError::BadSignature)
        );
        let mut h = HeaderMap::new();
        h.insert(AUTH_HEADER, HeaderValue::from_static("v1 1 zz 00"));
        assert_eq!(
            v.verify_at("GET", "/status", &h, now),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn skew_window_and_nonce_expiry() {
        let key = ClusterKey::generate();
        let (s, v) = (RequestSigner::new(&key), RequestVerifier::new(&key));
        let now = 5_000_000;
        for secs in [now - 61, now + 61] {
            let h = signed(&s, "GET", "/status", secs);
            assert_eq!(
                v.verify_at("GET", "/status", &h, now),
                Err(AuthError::Skewed)
            );
        }
        let h = signed(&s, "GET", "/status", now - 60);
        assert_eq!(v.verify_at("GET", "/status", &h, now), Ok(()));
        // Once its timestamp is out of the window the nonce is forgotten,
        // and the request is refused as skewed instead.
        let later = now + 200;
        let h2 = signed(&s, "GET", "/status", later);
        assert_eq!(v.verify_at("GET", "/status", &h2, later), Ok(()));
        let n = v.nonces.lock().expect("lock");
        assert_eq!(n.seen.len(), 1, "expired nonces are dropped");
        drop(n);
        assert_eq!(
            v.verify_at("GET", "/status", &h, later),
            Err(AuthError::Skewed)
        );
    }
}
