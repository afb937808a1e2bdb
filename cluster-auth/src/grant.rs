//! Task grants: what a supervisor allows one task attempt to do.
//!
//! The grant is an HMAC-SHA256, keyed with the cluster key derived for
//! `"task-grant"` (never the request key), over
//!
//! ```text
//! TIDEPOOL-GRANT-V1\n<node id>\n<expiry, unix seconds>\n<the request body bytes>
//! ```
//!
//! sent as `x-tidepool-grant: v1 <expiry> <hmac hex>` with the body. The
//! body is the task request (owner, job, phase, task, attempt, input object
//! and id or reducer index, exec/init, assets, environment, output names,
//! limits), so the grant covers every byte of it: the agent verifies the
//! grant over the raw bytes *before* parsing them, and then takes every
//! identity and path from the verified request. A grant is good for one
//! node (the one the supervisor chose) and until its expiry.

use hmac::{Hmac, Mac};
use http::HeaderValue;
use sha2::Sha256;

use crate::key::ClusterKey;

/// The header carrying a task grant.
pub const GRANT_HEADER: &str = "x-tidepool-grant";
/// How long a grant stays valid after signing (it is checked when the task
/// arrives, not while it runs).
pub const GRANT_TTL_SECS: u64 = 300;

const LABEL: &str = "task-grant";
const VERSION: &str = "v1";

/// Why a grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// No grant header.
    #[error("missing {GRANT_HEADER} header")]
    Missing,
    /// The header is not `v1 <expiry> <hmac>`.
    #[error("malformed {GRANT_HEADER} header")]
    Malformed,
    /// The HMAC does not match the body, node or expiry.
    #[error("task grant does not match the task")]
    BadSignature,
    /// The grant has expired.
    #[error("task grant expired")]
    Expired,
}

fn mac_for(key: &[u8; 32], node: &str, expires: u64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(format!("TIDEPOOL-GRANT-V1\n{node}\n{expires}\n").as_bytes());
    mac.update(body);
    mac
}

/// Signs task requests (the supervisor's side). Cheap to clone.
#[derive(Clone)]
pub struct GrantSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for GrantSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantSigner(..)")
    }
}

impl GrantSigner {
    /// A signer with `key`'s grant key.
    pub fn new(key: &ClusterKey) -> GrantSigner {
        GrantSigner {
            key: key.derive(LABEL),
        }
    }

    /// The grant header for sending `body` to node `node`, valid for
    /// [`GRANT_TTL_SECS`].
    pub fn grant(&self, node: &str, body: &[u8]) -> HeaderValue {
        self.grant_until(node, body, crate::unix_now() + GRANT_TTL_SECS)
    }

    /// The grant header for `body` on `node`, valid until `expires`.
    pub fn grant_until(&self, node: &str, body: &[u8], expires: u64) -> HeaderValue {
        let sig = mac_for(&self.key, node, expires, body)
            .finalize()
            .into_bytes();
        HeaderValue::from_str(&format!("{VERSION} {expires} {}", hex::encode(sig)))
            .expect("ASCII digits and hex only")
    }
}

/// Checks task grants (the agent's side). Cheap to clone.
#[derive(Clone)]
pub struct GrantVerifier {
    key: [u8; 32],
    node: String,
}

impl std::fmt::Debug for GrantVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantVerifier")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl GrantVerifier {
    /// A verifier of grants for node `node`.
    pub fn new(key: &ClusterKey, node: &str) -> GrantVerifier {
        GrantVerifier {
            key: key.derive(LABEL),
            node: node.to_owned(),
        }
    }

    /// Checks that `header` (the grant header's value, if any) grants
    /// exactly `body` to this node, now.
    pub fn verify(&self, header: Option<&HeaderValue>, body: &[u8]) -> Result<(), GrantError> {
        self.verify_at(header, body, crate::unix_now())
    }

    /// [`GrantVerifier::verify`] at time `now` (seconds).
    pub fn verify_at(
        &self,
        header: Option<&HeaderValue>,
        body: &[u8],
        now: u64,
    ) -> Result<(), GrantError> {
        let value = header.ok_or(GrantError::Missing)?;
        let value = value.to_str().map_err(|_| GrantError::Malformed)?;
        let mut parts = value.split(' ');
        let (Some(VERSION), Some(expires), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(GrantError::Malformed);
        };
        let expires: u64 = expires.parse().map_err(|_| GrantError::Malformed)?;
        let mut sig_bytes = [0u8; 32];
        hex::decode_to_slice(sig, &mut sig_bytes).map_err(|_| GrantError::Malformed)?;
        mac_for(&self.key, &self.node, expires, body)
            .verify_slice(&sig_bytes)
            .map_err(|_| GrantError::BadSignature)?;
        if expires < now {
            return Err(GrantError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_covers_body_node_and_expiry() {
        let key = ClusterKey::generate();
        let s = GrantSigner::new(&key);
        let v = GrantVerifier::new(&key, "node1");
        let body = br#"{"owner":"bob"}"#;
        let g = s.grant_until("node1", body, 1000);
        assert_eq!(v.verify_at(Some(&g), body, 999), Ok(()));
        assert_eq!(
            v.verify_at(Some(&g), br#"{"owner":"alice"}"#, 999),
            Err(GrantError::BadSignature)
        );
        assert_eq!(v.verify_at(Some(&g), body, 1001), Err(GrantError::Expired));
        let other_node = s.grant_until("node2", body, 1000);
        assert_eq!(
            v.verify_at(Some(&other_node), body, 999),
            Err(GrantError::BadSignature)
        );
        // A later expiry pasted into the header breaks the HMAC.
        let forged =
            HeaderValue::from_str(&g.to_str().expect("ascii").replacen("1000", "999999", 1))
                .expect("header");
        assert_eq!(
            v.verify_at(Some(&forged), body, 1001),
            Err(GrantError::BadSignature)
        );
        assert_eq!(v.verify_at(None, body, 0), Err(GrantError::Missing));
        // The request key is not the grant key.
        let wrong = GrantSigner {
            key: key.derive("request"),
        }
        .grant_until("node1", body, 1000);
        assert_eq!(
            v.verify_at(Some(&wrong), body, 999),
            Err(GrantError::BadSignature)
        );
    }
}
