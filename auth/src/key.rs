//! SSH public keys as stored per account, their fingerprints, and signature
//! verification with them.
//!
//! A [`PublicKey`] is parsed from an OpenSSH `authorized_keys`-style line and
//! keeps the exact wire blob it came from, so fingerprints are computed over
//! the very bytes the user registered (MD5 for Manta's keyIds, SHA-256 for
//! OpenSSH-style ones). Parsing and verification never panic on untrusted
//! input; every failure is a typed error.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::algorithm::Algorithm;
use crate::error::KeyError;

/// Largest RSA modulus accepted, in bits. The `rsa` crate's default (4096)
/// would refuse the 8192-bit keys some users have; larger keys only cost
/// verification time, which this bound keeps reasonable.
const MAX_RSA_BITS: usize = 16384;

/// Standard base64 that accepts input with or without `=` padding (OpenSSH
/// prints SHA256 fingerprints without it, other tools with it).
pub(crate) const B64_LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The kind (and for ECDSA, the curve) of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `ssh-rsa`.
    Rsa,
    /// `ecdsa-sha2-nistp256`.
    EcdsaP256,
    /// `ecdsa-sha2-nistp384`.
    EcdsaP384,
    /// `ecdsa-sha2-nistp521`.
    EcdsaP521,
    /// `ssh-ed25519`.
    Ed25519,
}

impl KeyType {
    /// The OpenSSH key type name (first field of an `authorized_keys` line).
    pub fn ssh_name(self) -> &'static str {
        match self {
            KeyType::Rsa => "ssh-rsa",
            KeyType::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyType::EcdsaP384 => "ecdsa-sha2-nistp384",
            KeyType::EcdsaP521 => "ecdsa-sha2-nistp521",
            KeyType::Ed25519 => "ssh-ed25519",
        }
    }
}

/// A key fingerprint as it appears in a keyId.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fingerprint {
    /// MD5 of the wire blob; printed as lowercase colon-separated hex.
    Md5([u8; 16]),
    /// SHA-256 of the wire blob; printed `SHA256:<base64 without padding>`.
    Sha256([u8; 32]),
}

impl Fingerprint {
    /// Parses `71:cd:...:b6`, `MD5:71:cd:...:b6` or `SHA256:<base64>`.
    /// Prefixes and hex digits are accepted in either case.
    pub fn parse(s: &str) -> Option<Fingerprint> {
        if let Some(rest) = strip_prefix_ci(s, "SHA256:") {
            let bytes = B64_LENIENT.decode(rest).ok()?;
            return Some(Fingerprint::Sha256(bytes.try_into().ok()?));
        }
        let hex_part = strip_prefix_ci(s, "MD5:").unwrap_or(s);
        let mut out = [0u8; 16];
        let mut pairs = hex_part.split(':');
        for byte in &mut out {
            let pair = pairs.next()?;
            if pair.len() != 2 || !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        if pairs.next().is_some() {
            return None;
        }
        Some(Fingerprint::Md5(out))
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fingerprint::Md5(bytes) => {
                for (i, b) in bytes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(":")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            Fingerprint::Sha256(bytes) => write!(f, "SHA256:{}", B64_LENIENT.encode(bytes)),
        }
    }
}

impl FromStr for Fingerprint {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fingerprint::parse(s).ok_or_else(|| KeyError::Malformed(format!("bad fingerprint {s:?}")))
    }
}

/// The verifying half of a key, in the form its crate needs.
#[derive(Clone)]
enum Verifier {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// An SSH public key usable to verify request signatures.
#[derive(Clone)]
pub struct PublicKey {
    blob: Vec<u8>,
    comment: String,
    key_type: KeyType,
    verifier: Verifier,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("type", &self.key_type)
            .field("md5", &self.fingerprint_md5())
            .field("comment", &self.comment)
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.blob == other.blob
    }
}
impl Eq for PublicKey {}

impl PublicKey {
    /// Parses an `authorized_keys`-style line: `[options] type base64 [comment]`.
    /// The type field must agree with the type inside the blob.
    pub fn from_openssh(line: &str) -> Result<PublicKey, KeyError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Err(KeyError::Malformed("empty line".into()));
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        let rest = if looks_like_key_type(first) {
            line
        } else {
            skip_options(line)
        };
        let (type_name, rest) = split_token(rest);
        let (b64, comment) = split_token(rest);
        if b64.is_empty() {
            return Err(KeyError::Malformed("missing base64 key field".into()));
        }
        let blob = B64_LENIENT
            .decode(b64)
            .map_err(|e| KeyError::Malformed(format!("key is not base64: {e}")))?;
        let mut key = PublicKey::from_wire(&blob)?;
        if key.key_type.ssh_name() != type_name {
            return Err(KeyError::Malformed(format!(
                "line says {type_name} but the key is {}",
                key.key_type.ssh_name()
            )));
        }
        key.comment = comment.to_owned();
        Ok(key)
    }

    /// Parses the SSH wire encoding of a public key (the base64-decoded second
    /// field of an `authorized_keys` line).
    pub fn from_wire(blob: &[u8]) -> Result<PublicKey, KeyError> {
        let parsed = ssh_key::PublicKey::from_bytes(blob)
            .map_err(|e| KeyError::Malformed(format!("bad key blob: {e}")))?;
        let data = parsed.key_data();
        let invalid = |e: &dyn fmt::Display| KeyError::Invalid(e.to_string());
        let (key_type, verifier) = if let Some(rsa_key) = data.rsa() {
            let n = rsa_key
                .n
                .as_positive_bytes()
                .ok_or_else(|| invalid(&"bad modulus"))?;
            let e = rsa_key
                .e
                .as_positive_bytes()
                .ok_or_else(|| invalid(&"bad exponent"))?;
            let key = rsa::RsaPublicKey::new_with_max_size(
                rsa::BigUint::from_bytes_be(n),
                rsa::BigUint::from_bytes_be(e),
                MAX_RSA_BITS,
            )
            .map_err(|e| invalid(&e))?;
            (KeyType::Rsa, Verifier::Rsa(key))
        } else if let Some(ec) = data.ecdsa() {
            let point = ec.as_sec1_bytes();
            match ec {
                ssh_key::public::EcdsaPublicKey::NistP256(_) => (
                    KeyType::EcdsaP256,
                    Verifier::P256(
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                            .map_err(|e| invalid(&e))?,
                    ),
                ),
                ssh_key::public::EcdsaPublicKey::NistP384(_) => (
                    KeyType::EcdsaP384,
                    Verifier::P384(
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                            .map_err(|e| invalid(&e))?,
                    ),
                ),
                ssh_key::public::EcdsaPublicKey::NistP521(_) => (
                    KeyType::EcdsaP521,
                    Verifier::P521(
                        p521::ecdsa::VerifyingKey::from_sec1_bytes(point)
                            .map_err(|e| invalid(&e))?,
                    ),
                ),
            }
        } else if let Some(ed) = data.ed25519() {
            (
                KeyType::Ed25519,
                Verifier::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&ed.0).map_err(|e| invalid(&e))?,
                ),
            )
        } else {
            return Err(KeyError::Unsupported(data.algorithm().to_string()));
        };
        Ok(PublicKey {
            blob: blob.to_vec(),
            comment: String::new(),
            key_type,
            verifier,
        })
    }

    pub(crate) fn with_comment(mut self, comment: &str) -> PublicKey {
        self.comment = comment.to_owned();
        self
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The comment field of the line it was parsed from (may be empty).
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The SSH wire blob.
    pub fn wire_blob(&self) -> &[u8] {
        &self.blob
    }

    /// The MD5 fingerprint (the form the Manta CLI puts in keyIds).
    pub fn md5(&self) -> Fingerprint {
        Fingerprint::Md5(Md5::digest(&self.blob).into())
    }

    /// The SHA-256 fingerprint.
    pub fn sha256(&self) -> Fingerprint {
        Fingerprint::Sha256(Sha256::digest(&self.blob).into())
    }

    /// `71:cd:44:...` — lowercase colon hex of the MD5 of the wire blob.
    pub fn fingerprint_md5(&self) -> String {
        self.md5().to_string()
    }

    /// `SHA256:...` — base64 (no padding) of the SHA-256 of the wire blob,
    /// exactly as `ssh-keygen -l` prints it.
    pub fn fingerprint_sha256(&self) -> String {
        self.sha256().to_string()
    }

    /// Whether `fp` (of either kind) is this key's fingerprint.
    pub fn matches(&self, fp: &Fingerprint) -> bool {
        match fp {
            Fingerprint::Md5(_) => self.md5() == *fp,
            Fingerprint::Sha256(_) => self.sha256() == *fp,
        }
    }

    /// `type base64 [comment]`, the canonical `authorized_keys` line.
    pub fn to_openssh(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.blob);
        if self.comment.is_empty() {
            format!("{} {b64}", self.key_type.ssh_name())
        } else {
            format!("{} {b64} {}", self.key_type.ssh_name(), self.comment)
        }
    }

    /// Verifies `signature` (raw bytes, §2.3 encodings) over `data`.
    /// Returns `false` for a mismatched algorithm, a malformed encoding or a
    /// wrong signature; callers decide which error that is.
    pub fn verify(&self, algorithm: Algorithm, data: &[u8], signature: &[u8]) -> bool {
        if !algorithm.fits(self.key_type) {
            return false;
        }
        match (&self.verifier, algorithm) {
            (Verifier::Rsa(key), Algorithm::RsaSha1) => {
                verify_rsa::<sha1::Sha1>(key, data, signature)
            }
            (Verifier::Rsa(key), Algorithm::RsaSha256) => {
                verify_rsa::<Sha256>(key, data, signature)
            }
            (Verifier::Rsa(key), Algorithm::RsaSha512) => {
                verify_rsa::<sha2::Sha512>(key, data, signature)
            }
            (Verifier::P256(key), _) => {
                use p256::ecdsa::{Signature, signature::Verifier as _};
                parse_ecdsa_sig(signature, Signature::from_der, Signature::from_slice)
                    .is_some_and(|sig| key.verify(data, &sig).is_ok())
            }
            (Verifier::P384(key), _) => {
                use p384::ecdsa::{Signature, signature::Verifier as _};
                parse_ecdsa_sig(signature, Signature::from_der, Signature::from_slice)
                    .is_some_and(|sig| key.verify(data, &sig).is_ok())
            }
            (Verifier::P521(key), _) => {
                use p521::ecdsa::{Signature, signature::Verifier as _};
                parse_ecdsa_sig(signature, Signature::from_der, Signature::from_slice)
                    .is_some_and(|sig| key.verify(data, &sig).is_ok())
            }
            (Verifier::Ed25519(key), _) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(data, &sig).is_ok()),
            // `fits` above already excluded every other pairing.
            (Verifier::Rsa(_), _) => false,
        }
    }
}

fn verify_rsa<D>(key: &rsa::RsaPublicKey, data: &[u8], signature: &[u8]) -> bool
where
    D: Digest + rsa::pkcs8::AssociatedOid,
{
    let hashed = D::digest(data);
    key.verify(rsa::Pkcs1v15Sign::new::<D>(), &hashed, signature)
        .is_ok()
}

/// ECDSA signatures are DER per spec; raw `r||s` is accepted as a fallback
/// because some non-CLI clients send it, and it cannot be confused with DER
/// (DER starts with 0x30 and has a different length).
fn parse_ecdsa_sig<S, E1, E2>(
    bytes: &[u8],
    from_der: impl Fn(&[u8]) -> Result<S, E1>,
    from_raw: impl Fn(&[u8]) -> Result<S, E2>,
) -> Option<S> {
    from_der(bytes).ok().or_else(|| from_raw(bytes).ok())
}

/// Splits off the first whitespace-delimited token; returns it and the
/// trimmed remainder.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

fn looks_like_key_type(token: &str) -> bool {
    token.starts_with("ssh-") || token.starts_with("ecdsa-sha2-") || token.starts_with("sk-")
}

/// Skips the leading options field of an `authorized_keys` line, which ends
/// at the first whitespace outside double quotes.
fn skip_options(line: &str) -> &str {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c.is_ascii_whitespace() && !in_quotes => return line[i..].trim_start(),
            _ => {}
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDQlioIbXV2ZlER0VDzWfTQLHTb7fZe9YkE6FI7Y+X+gO/Rd17SXG0a8Ue0JwfwLE76gnbugxoKsmnXzz/hXKORza3nAZusVBQRa9yih4TikanW5eBvP+BXVWKUJuJQIEL11Y/Bj4qhaTCEf2LDIL6TMroDS1OtGyBSbhoy0+zhUMMmfqPA7Bz9+fus9jZzf/9qO2Hy5OyKyTu7tcRj2XPFE/PL5CHUzI3TSHGE1YfNWCeneOHlOJBkBKf65UskWEUzoX+U+CI2bQn6TJhiWGtzS2LaqL/BjGsgIkcdYjvbvzXCAtEpspmXitDICIGxLDgOHa8CnrwtW0ztWRjzh9Fd test";
    pub(crate) const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNH8XncoUAngQMZnttkDGMqZTv57UWvs1Z0Nr9A+rBtcAbhKkMPfE/ofJqtoMbkCTCrcRUqS5YfohKEiGSmYpNg= vm";
    pub(crate) const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMf6V+NA7W8bMOQAfSmHRntHtu7T7UkFEaRx7HyOEj4k vm";

    #[test]
    fn spec_vector_md5_fingerprints() {
        let cases = [
            (
                RSA,
                KeyType::Rsa,
                "71:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6",
                "test",
            ),
            (
                P256,
                KeyType::EcdsaP256,
                "a5:1b:d9:cd:f1:25:29:66:20:ff:ab:84:45:94:03:9a",
                "vm",
            ),
            (
                ED25519,
                KeyType::Ed25519,
                "5a:4c:27:b4:10:75:8a:f2:b2:e9:96:8c:83:2b:dc:31",
                "vm",
            ),
        ];
        for (line, ty, md5, comment) in cases {
            let key = PublicKey::from_openssh(line).unwrap();
            assert_eq!(key.key_type(), ty);
            assert_eq!(key.fingerprint_md5(), md5);
            assert_eq!(key.comment(), comment);
            assert!(key.fingerprint_sha256().starts_with("SHA256:"));
            assert!(!key.fingerprint_sha256().ends_with('='));
            assert_eq!(key.to_openssh(), line);
            assert!(key.matches(&Fingerprint::parse(md5).unwrap()));
            assert!(key.matches(&key.sha256()));
        }
    }

    #[test]
    fn options_prefix_and_extra_whitespace_are_accepted() {
        let line = format!(
            "no-pty,command=\"echo a b\" {}",
            ED25519.replace(' ', "   ")
        );
        let key = PublicKey::from_openssh(&line).unwrap();
        assert_eq!(
            key.fingerprint_md5(),
            "5a:4c:27:b4:10:75:8a:f2:b2:e9:96:8c:83:2b:dc:31"
        );
    }

    #[test]
    fn malformed_lines_are_rejected() {
        let blob_of_ed = ED25519.split(' ').nth(1).unwrap();
        for bad in [
            "",
            "# comment",
            "ssh-rsa",
            "ssh-rsa !!!notbase64",
            "ssh-rsa AAAA",
            &format!("ssh-rsa {blob_of_ed}"),
            &format!("ssh-ed25519 {}", &blob_of_ed[..20]),
        ] {
            assert!(PublicKey::from_openssh(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn fingerprint_forms_parse_and_print() {
        let md5 = "71:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6";
        let fp = Fingerprint::parse(md5).unwrap();
        assert_eq!(fp.to_string(), md5);
        assert_eq!(Fingerprint::parse(&format!("MD5:{md5}")), Some(fp));
        assert_eq!(Fingerprint::parse(&md5.to_uppercase()), Some(fp));
        let key = PublicKey::from_openssh(RSA).unwrap();
        let sha = key.fingerprint_sha256();
        assert_eq!(Fingerprint::parse(&sha), Some(key.sha256()));
        assert_eq!(Fingerprint::parse(&format!("{sha}=")), Some(key.sha256()));
        for bad in [
            "",
            "71:cd",
            "71:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6:00",
            "71:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b",
            "7:1cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6",
            "SHA256:abc",
            "SHA256:",
            "zz:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6",
            "+1:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6",
        ] {
            assert_eq!(Fingerprint::parse(bad), None, "{bad:?}");
        }
    }

    /// OpenSSL (and so the Node CLI) does not normalize ECDSA `s` to the low
    /// half; both halves must verify.
    #[test]
    fn ecdsa_high_s_signatures_verify() {
        let pem =
            std::fs::read_to_string(format!("{}/testdata/ecdsa_256", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        let key = crate::sign::SigningKey::from_openssh(&pem).unwrap();
        let der = key.sign(Algorithm::EcdsaSha256, b"date: x").unwrap();
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        let flipped =
            p256::ecdsa::Signature::from_scalars(sig.r().to_bytes(), (-*sig.s()).to_bytes())
                .unwrap();
        assert_ne!(sig, flipped);
        let public = key.public_key();
        for s in [sig, flipped] {
            assert!(public.verify(Algorithm::EcdsaSha256, b"date: x", s.to_der().as_bytes()));
            // Raw r||s is accepted too.
            assert!(public.verify(Algorithm::EcdsaSha256, b"date: x", &s.to_bytes()));
            assert!(!public.verify(Algorithm::EcdsaSha256, b"date: y", s.to_der().as_bytes()));
        }
        assert!(!public.verify(Algorithm::EcdsaSha256, b"date: x", &der[..der.len() - 1]));
        assert!(!public.verify(Algorithm::EcdsaSha256, b"date: x", b""));
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(line in ".{0,300}", blob in proptest::collection::vec(0u8..=255, 0..200)) {
            let _ = PublicKey::from_openssh(&line);
            let _ = PublicKey::from_wire(&blob);
            let _ = Fingerprint::parse(&line);
        }

        /// Truncating or corrupting a valid key blob yields an error, never a
        /// panic, and never a different key with the same fingerprint.
        #[test]
        fn corrupted_blobs_are_rejected_or_differ(cut in 0usize..400, flip in 0usize..400, bit in 0u8..8) {
            for line in [RSA, P256, ED25519] {
                let good = PublicKey::from_openssh(line).unwrap();
                let blob = good.wire_blob();
                let _ = PublicKey::from_wire(&blob[..cut.min(blob.len())]);
                let mut bad = blob.to_vec();
                let i = flip % bad.len();
                bad[i] ^= 1 << bit;
                if let Ok(other) = PublicKey::from_wire(&bad) {
                    proptest::prop_assert_ne!(other.md5(), good.md5());
                }
            }
        }
    }
}
