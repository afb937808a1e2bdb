//! Signature algorithms of the HTTP Signature scheme (spec §2.3).
//!
//! An [`Algorithm`] is `<keytype>-<hash>`; each one fits exactly one
//! [`KeyType`] family (and, for ECDSA, exactly one curve), so a signature can
//! never be checked with a hash the key owner did not intend.

use std::fmt;

use crate::key::KeyType;

/// A supported `algorithm` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-1 (legacy clients).
    RsaSha1,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (what the Manta CLI sends for RSA).
    RsaSha256,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsaSha512,
    /// ECDSA P-256 with SHA-256, DER-encoded signature.
    EcdsaSha256,
    /// ECDSA P-384 with SHA-384, DER-encoded signature.
    EcdsaSha384,
    /// ECDSA P-521 with SHA-512, DER-encoded signature.
    EcdsaSha512,
    /// Pure Ed25519 (the `sha512` label does not mean pre-hashing).
    Ed25519Sha512,
}

impl Algorithm {
    /// Every supported algorithm, in the order error messages list them.
    pub const ALL: [Algorithm; 7] = [
        Algorithm::RsaSha1,
        Algorithm::RsaSha256,
        Algorithm::RsaSha512,
        Algorithm::EcdsaSha256,
        Algorithm::EcdsaSha384,
        Algorithm::EcdsaSha512,
        Algorithm::Ed25519Sha512,
    ];

    /// The lowercase name used in the `Authorization` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha1 => "rsa-sha1",
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::RsaSha512 => "rsa-sha512",
            Algorithm::EcdsaSha256 => "ecdsa-sha256",
            Algorithm::EcdsaSha384 => "ecdsa-sha384",
            Algorithm::EcdsaSha512 => "ecdsa-sha512",
            Algorithm::Ed25519Sha512 => "ed25519-sha512",
        }
    }

    /// The uppercase name used in presigned URLs (`RSA-SHA256`).
    pub fn as_upper_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha1 => "RSA-SHA1",
            Algorithm::RsaSha256 => "RSA-SHA256",
            Algorithm::RsaSha512 => "RSA-SHA512",
            Algorithm::EcdsaSha256 => "ECDSA-SHA256",
            Algorithm::EcdsaSha384 => "ECDSA-SHA384",
            Algorithm::EcdsaSha512 => "ECDSA-SHA512",
            Algorithm::Ed25519Sha512 => "ED25519-SHA512",
        }
    }

    /// Parses a name case-insensitively (`rsa-sha256`, `RSA-SHA256`).
    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether a key of type `key` may be verified with this algorithm.
    pub fn fits(self, key: KeyType) -> bool {
        matches!(
            (self, key),
            (
                Algorithm::RsaSha1 | Algorithm::RsaSha256 | Algorithm::RsaSha512,
                KeyType::Rsa
            ) | (Algorithm::EcdsaSha256, KeyType::EcdsaP256)
                | (Algorithm::EcdsaSha384, KeyType::EcdsaP384)
                | (Algorithm::EcdsaSha512, KeyType::EcdsaP521)
                | (Algorithm::Ed25519Sha512, KeyType::Ed25519)
        )
    }

    /// The algorithm the Manta CLI uses for a key type.
    pub fn default_for(key: KeyType) -> Algorithm {
        match key {
            KeyType::Rsa => Algorithm::RsaSha256,
            KeyType::EcdsaP256 => Algorithm::EcdsaSha256,
            KeyType::EcdsaP384 => Algorithm::EcdsaSha384,
            KeyType::EcdsaP521 => Algorithm::EcdsaSha512,
            KeyType::Ed25519 => Algorithm::Ed25519Sha512,
        }
    }

    /// `"rsa-sha1, rsa-sha256, ..."`, for error messages.
    pub(crate) fn supported_list() -> String {
        Algorithm::ALL
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_both_cases() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.as_str()), Some(a));
            assert_eq!(Algorithm::parse(a.as_upper_str()), Some(a));
        }
        assert_eq!(Algorithm::parse("dsa-sha1"), None);
        assert_eq!(Algorithm::parse("hmac-sha256"), None);
        assert_eq!(Algorithm::parse(""), None);
    }

    #[test]
    fn each_algorithm_fits_one_key_family() {
        assert!(Algorithm::RsaSha1.fits(KeyType::Rsa));
        assert!(!Algorithm::EcdsaSha256.fits(KeyType::Rsa));
        assert!(!Algorithm::EcdsaSha256.fits(KeyType::EcdsaP384));
        assert!(!Algorithm::Ed25519Sha512.fits(KeyType::EcdsaP521));
        for k in [
            KeyType::Rsa,
            KeyType::EcdsaP256,
            KeyType::EcdsaP384,
            KeyType::EcdsaP521,
            KeyType::Ed25519,
        ] {
            assert!(Algorithm::default_for(k).fits(k));
        }
    }
}
