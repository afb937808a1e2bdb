//! Request authentication for Tidepool's Manta-compatible HTTP API: HTTP
//! Signature (`Authorization: Signature ...`) and presigned-URL verification
//! against SSH public keys, plus clock-skew checks (spec §2).
//!
//! Pure: no HTTP framework, no storage. The gateway builds a
//! [`RequestParts`], implements [`KeyLookup`] over `meta`, calls
//! [`authenticate`], and maps an [`AuthError`] to HTTP with its
//! [`AuthError::code`] / [`AuthError::message`] / [`AuthError::http_status`].
//! The [`sign`] module is the client side (tests, tools).

pub mod algorithm;
pub mod clock;
pub mod error;
pub mod header;
pub mod key;
pub mod keyid;
pub mod presigned;
pub mod request;
pub mod sign;

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
