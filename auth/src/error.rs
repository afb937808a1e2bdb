//! Error types of the `auth` crate.
//!
//! [`AuthError`] is the one error a request can fail authentication with. Its
//! variants correspond 1:1 to Manta's wire codes (spec §4.2); [`AuthError::code`],
//! [`AuthError::message`] and [`AuthError::http_status`] give exactly what the
//! gateway puts in the `{"code","message"}` body, so the mapping to HTTP lives
//! in one place and never drifts from the spec. [`LookupError`] is what a key
//! store reports back through [`crate::KeyLookup`].

/// Why a request failed authentication. Each variant is one Manta error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// `400 InvalidHeader`: malformed `Authorization`, unparsable `Date`,
    /// a date too far in the future, a signed header missing from the request.
    #[error("{0}")]
    InvalidHeader(String),
    /// `400 RequestExpired`: the `Date` header (carried verbatim) is more than
    /// 300 s in the past.
    #[error("Date header {date} is too old")]
    RequestExpired {
        /// The header value as received.
        date: String,
    },
    /// `403 AuthorizationSchemeNotAllowed`: a scheme other than `Signature`.
    #[error("{scheme} authorization scheme is not allowed")]
    AuthorizationSchemeNotAllowed {
        /// The scheme token as received.
        scheme: String,
    },
    /// `401 InvalidAlgorithm`: unsupported algorithm, or one that does not
    /// fit the key's type. The string is the full message.
    #[error("{0}")]
    InvalidAlgorithm(String),
    /// `403 InvalidKeyId`: the keyId (carried verbatim) is malformed.
    #[error("the KeyId token you provided is invalid: {key_id}")]
    InvalidKeyId {
        /// The keyId as received.
        key_id: String,
    },
    /// `403 KeyDoesNotExist`: no such key for that account/subuser.
    /// `key_id` is `/<login>[/<user>]/keys/<fp>`.
    #[error("{key_id} does not exist")]
    KeyDoesNotExist {
        /// The normalized keyId.
        key_id: String,
    },
    /// `403 InvalidSignature`: the signature does not verify (including
    /// undecodable base64 or a malformed DER encoding).
    #[error("The signature we calculated does not match the one you sent")]
    InvalidSignature,
    /// `403 AccountDoesNotExist`.
    #[error("{login} does not exist")]
    AccountDoesNotExist {
        /// The account login from the keyId.
        login: String,
    },
    /// `403 UserDoesNotExist`.
    #[error("{login}/{user} does not exist")]
    UserDoesNotExist {
        /// The account login from the keyId.
        login: String,
        /// The subuser from the keyId.
        user: String,
    },
    /// `403 AccountBlocked`: the account is disabled.
    #[error("{login} is not active")]
    AccountBlocked {
        /// The account login from the keyId.
        login: String,
    },
    /// `403 InvalidQueryStringAuthentication`: any presigned-URL failure that
    /// is not a key/signature problem. The string is the full message.
    #[error("{0}")]
    InvalidQueryStringAuthentication(String),
    /// `403 InvalidAuthenticationToken`: an `Authorization: Token` that is
    /// not one this service issued, or has expired. The string says why
    /// (for logs; the client sees a fixed message).
    #[error("the authentication token you provided is not valid")]
    InvalidAuthToken(String),
    /// `503 ServiceUnavailable`: the key store could not answer. The string is
    /// the cause, for logs only; [`AuthError::message`] hides it from clients.
    #[error("key lookup unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The stable Manta error code sent as `code` on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::InvalidHeader(_) => "InvalidHeader",
            AuthError::RequestExpired { .. } => "RequestExpired",
            AuthError::AuthorizationSchemeNotAllowed { .. } => "AuthorizationSchemeNotAllowed",
            AuthError::InvalidAlgorithm(_) => "InvalidAlgorithm",
            AuthError::InvalidKeyId { .. } => "InvalidKeyId",
            AuthError::KeyDoesNotExist { .. } => "KeyDoesNotExist",
            AuthError::InvalidSignature => "InvalidSignature",
            AuthError::AccountDoesNotExist { .. } => "AccountDoesNotExist",
            AuthError::UserDoesNotExist { .. } => "UserDoesNotExist",
            AuthError::AccountBlocked { .. } => "AccountBlocked",
            AuthError::InvalidQueryStringAuthentication(_) => "InvalidQueryStringAuthentication",
            AuthError::InvalidAuthToken(_) => "InvalidAuthenticationToken",
            AuthError::Unavailable(_) => "ServiceUnavailable",
        }
    }

    /// The HTTP status Manta answered this code with (spec §4.2).
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::InvalidHeader(_) | AuthError::RequestExpired { .. } => 400,
            AuthError::InvalidAlgorithm(_) => 401,
            AuthError::Unavailable(_) => 503,
            AuthError::AuthorizationSchemeNotAllowed { .. }
            | AuthError::InvalidKeyId { .. }
            | AuthError::KeyDoesNotExist { .. }
            | AuthError::InvalidSignature
            | AuthError::AccountDoesNotExist { .. }
            | AuthError::UserDoesNotExist { .. }
            | AuthError::AccountBlocked { .. }
            | AuthError::InvalidQueryStringAuthentication(_)
            | AuthError::InvalidAuthToken(_) => 403,
        }
    }

    /// The human-readable `message` for the client. Equal to `Display` except
    /// for [`AuthError::Unavailable`], whose internal cause is not leaked.
    pub fn message(&self) -> String {
        match self {
            AuthError::Unavailable(_) => "authentication service unavailable".to_owned(),
            other => other.to_string(),
        }
    }
}

/// What a key store reports when it cannot return a key. "No such key" is
/// not an error: [`crate::KeyLookup::lookup`] returns `Ok(None)` for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The account login does not exist.
    #[error("account does not exist")]
    AccountNotFound,
    /// The account exists but the subuser does not.
    #[error("subuser does not exist")]
    UserNotFound,
    /// The account exists but is disabled.
    #[error("account is blocked")]
    AccountBlocked,
    /// The store failed (timeout, unreachable); maps to 503.
    #[error("key store unavailable: {0}")]
    Unavailable(String),
}

/// Why an SSH public or private key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not an `authorized_keys`-style line.
    #[error("malformed public key line: {0}")]
    Malformed(String),
    /// The key type is not one Tidepool verifies (e.g. DSA, security keys).
    #[error("unsupported key type {0}")]
    Unsupported(String),
    /// The key material is invalid (bad point, bad modulus, bad encoding).
    #[error("invalid key: {0}")]
    Invalid(String),
    /// The private key is passphrase-protected.
    #[error("encrypted private keys are not supported")]
    Encrypted,
}

/// Why signing failed (only in [`crate::sign`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The algorithm does not fit the key type.
    #[error("algorithm {algorithm} cannot be used with a {key_type} key")]
    AlgorithmMismatch {
        /// The requested algorithm.
        algorithm: &'static str,
        /// The key's type.
        key_type: &'static str,
    },
    /// The underlying signer failed.
    #[error("signing failed: {0}")]
    Crypto(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_statuses_and_messages_follow_the_spec() {
        let e = AuthError::RequestExpired {
            date: "Sun, 22 Nov 2026 01:33:03 GMT".into(),
        };
        assert_eq!(e.code(), "RequestExpired");
        assert_eq!(e.http_status(), 400);
        assert_eq!(
            e.message(),
            "Date header Sun, 22 Nov 2026 01:33:03 GMT is too old"
        );
        assert_eq!(AuthError::InvalidSignature.http_status(), 403);
        assert_eq!(
            AuthError::InvalidSignature.message(),
            "The signature we calculated does not match the one you sent"
        );
        let e = AuthError::UserDoesNotExist {
            login: "alice".into(),
            user: "bob".into(),
        };
        assert_eq!(
            (e.code(), e.message().as_str()),
            ("UserDoesNotExist", "alice/bob does not exist")
        );
        assert_eq!(AuthError::InvalidAlgorithm("x".into()).http_status(), 401);
        let e = AuthError::Unavailable("tikv timeout".into());
        assert_eq!((e.code(), e.http_status()), ("ServiceUnavailable", 503));
        assert!(!e.message().contains("tikv"));
    }
}
