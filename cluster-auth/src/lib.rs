//! Tidepool's internal authentication: the cluster credential, signed
//! internal requests and signed task grants.
//!
//! Everything a storage node or compute agent accepts comes from a holder
//! of the cluster credential, a random 256-bit secret ([`ClusterKey`]) that
//! every gateway, node and supervisor of one deployment reads from a file
//! only its owner can read. The secret itself never goes on the wire; two
//! keys are derived from it, one per purpose, so a value signed for one
//! purpose is never accepted for another:
//!
//! * [`request`] — every internal HTTP request carries an HMAC-SHA256 over
//!   its method, path and query, a timestamp and a random nonce
//!   ([`RequestSigner`]); the server ([`RequestVerifier`]) accepts it only
//!   within a clock-skew window and only once (a bounded nonce memory), so
//!   a captured request cannot be replayed.
//! * [`grant`] — a task attempt is sent with a grant: an HMAC over the exact
//!   bytes of the task request, the node it is meant for and an expiry
//!   ([`GrantSigner`]). The agent ([`GrantVerifier`]) checks it before it
//!   parses the request, so owner, input, scripts and output names are
//!   exactly what a supervisor decided.
//!
//! What is not covered: request *bodies* (object bytes stream and are not
//! part of the request HMAC; object integrity is checked end to end by
//! md5/blake3), and confidentiality — on an untrusted network the internal
//! protocol needs TLS. See `docs/internal-auth.md`.
//!
//! This crate depends on no other Tidepool crate; storage-node, compute,
//! jobs, gateway and the binary use it.

pub mod grant;
pub mod key;
pub mod request;

pub use grant::{GRANT_HEADER, GrantError, GrantSigner, GrantVerifier};
pub use key::{ClusterKey, KEY_FILE_ENV, KeyError};
pub use request::{AUTH_HEADER, AuthError, RequestSigner, RequestVerifier};

/// Seconds since the Unix epoch by the system clock (0 if the clock is set
/// before 1970, which every check then treats as skewed).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
