//! Request authentication for Tidepool's Manta-compatible HTTP API: HTTP
//! Signature (`Authorization: Signature ...`) and presigned-URL verification
//! against SSH public keys, plus clock-skew checks (spec §2).
//!
//! Pure: no HTTP framework, no storage. The gateway builds a
//! [`RequestParts`], implements [`KeyLookup`] over `meta`, calls
//! [`authenticate`], and maps an [`AuthError`] to HTTP with its
//! [`AuthError::code`] / [`AuthError::message`] / [`AuthError::http_status`].
//! The [`sign`] module is the client side (tests, tools). [`policy`] is
//! Manta's rule language and [`rbac`] the subuser access decision.
//!
//! ```
//! use auth::{Prepared, PublicKey, RequestParts, prepare};
//!
//! let key = PublicKey::from_openssh(
//!     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf6V+NA7W8bMOQAfSmHRntHtu7T7UkFEaRx7HyOEj4k vm",
//! )?;
//! let date = "Sun, 22 Nov 2026 01:33:04 GMT";
//! let mut headers = http::HeaderMap::new();
//! headers.insert("date", date.parse()?);
//! headers.insert("authorization", "Signature keyId=\"/alice/keys/5a:4c:27:b4:10:75:8a:f2:b2:e9:96:8c:83:2b:dc:31\",algorithm=\"ed25519-sha512\",headers=\"date\",signature=\"/yJ3o07tfGr57k8vSNGX7XKcOuCeOFxRlkTdSl4ZexnNzKp8vP3+zC8/22zCzyH9M5omrP9VSrBKUn9LD4LPAw==\"".parse()?);
//! let parts = RequestParts {
//!     method: "GET",
//!     raw_path_and_query: "/alice/stor",
//!     headers: &headers,
//!     now: httpdate::parse_http_date(date)?,
//! };
//! // `authenticate(&parts, &lookup).await` does these steps with a `KeyLookup`.
//! let Prepared::Verify(pending) = prepare(&parts)? else { unreachable!() };
//! assert_eq!(pending.key_id.login, "alice");
//! let caller = pending.finish(Ok(Some(key)))?;
//! assert_eq!(caller.fingerprint.to_string(), "5a:4c:27:b4:10:75:8a:f2:b2:e9:96:8c:83:2b:dc:31");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod algorithm;
pub mod clock;
pub mod error;
pub mod header;
pub mod key;
pub mod keyid;
pub mod policy;
pub mod presigned;
pub mod rbac;
pub mod request;
pub mod sign;
pub mod token;

pub use algorithm::Algorithm;
pub use clock::{MAX_SKEW_SECS, check_date};
pub use error::{AuthError, KeyError, LookupError, SignError};
pub use header::{SignatureParams, parse_authorization};
pub use key::{Fingerprint, KeyType, PublicKey};
pub use keyid::KeyId;
pub use request::{
    AuthOutcome, Caller, KeyLookup, PendingSignature, Prepared, PresignInfo, RequestKind,
    RequestParts, authenticate, classify, prepare,
};
