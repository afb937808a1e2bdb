//! Signing requests exactly like the Manta CLI (smartdc-auth + http-signature),
//! for tests, benchmarks and Tidepool's own tools.
//!
//! Produces the same `Authorization` value the CLI would for a given date and
//! key (RSA PKCS#1 v1.5 and Ed25519 are deterministic, so results are
//! byte-identical; ECDSA uses RFC 6979 nonces, so it is deterministic here
//! but differs from OpenSSL's random nonces), and `msign`-style presigned
//! URLs. Private keys are read from unencrypted OpenSSH key files.

use std::time::SystemTime;

use base64::Engine as _;
use sha2::Digest as _;

use crate::algorithm::Algorithm;
use crate::error::{KeyError, SignError};
use crate::key::{KeyType, PublicKey};
use crate::keyid::KeyId;
use crate::presigned::{rfc3986_encode, signing_string as presigned_signing_string};

enum Secret {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A private key that can sign request strings.
pub struct SigningKey {
    secret: Secret,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn invalid(e: impl std::fmt::Display) -> KeyError {
    KeyError::Invalid(e.to_string())
}

fn biguint(m: &ssh_key::Mpint) -> Result<rsa::BigUint, KeyError> {
    m.as_positive_bytes()
        .map(rsa::BigUint::from_bytes_be)
        .ok_or_else(|| invalid("negative RSA component"))
}

impl SigningKey {
    /// Reads an unencrypted OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    pub fn from_openssh(pem: &str) -> Result<SigningKey, KeyError> {
        let key = ssh_key::PrivateKey::from_openssh(pem)
            .map_err(|e| KeyError::Malformed(format!("bad OpenSSH private key: {e}")))?;
        if key.is_encrypted() {
            return Err(KeyError::Encrypted);
        }
        let blob = key.public_key().to_bytes().map_err(invalid)?;
        let mut public = PublicKey::from_wire(&blob)?;
        if !key.comment().is_empty() {
            public = PublicKey::from_openssh(&format!("{} {}", public.to_openssh(), key.comment()))?;
        }
        let data = key.key_data();
        let secret = if let Some(kp) = data.rsa() {
            // Built from n, e, d, p, q directly: ssh-key 0.6's own conversion
            // passes `p` twice.
            let rsa_key = rsa::RsaPrivateKey::from_components(
                biguint(&kp.public.n)?,
                biguint(&kp.public.e)?,
                biguint(&kp.private.d)?,
                vec![biguint(&kp.private.p)?, biguint(&kp.private.q)?],
            )
            .map_err(invalid)?;
            Secret::Rsa(Box::new(rsa_key))
        } else if let Some(kp) = data.ecdsa() {
            let bytes = kp.private_key_bytes();
            match public.key_type() {
                KeyType::EcdsaP256 => {
                    Secret::P256(p256::ecdsa::SigningKey::from_slice(bytes).map_err(invalid)?)
                }
                KeyType::EcdsaP384 => {
                    Secret::P384(p384::ecdsa::SigningKey::from_slice(bytes).map_err(invalid)?)
                }
                KeyType::EcdsaP521 => {
                    Secret::P521(p521::ecdsa::SigningKey::from_slice(bytes).map_err(invalid)?)
                }
                other => return Err(invalid(format!("ECDSA key reported as {other:?}"))),
            }
        } else if let Some(kp) = data.ed25519() {
            Secret::Ed25519(ed25519_dalek::SigningKey::try_from(kp).map_err(invalid)?)
        } else {
            return Err(KeyError::Unsupported(key.algorithm().to_string()));
        };
        Ok(SigningKey { secret, public })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The algorithm the Manta CLI would use with this key.
    pub fn default_algorithm(&self) -> Algorithm {
        Algorithm::default_for(self.public.key_type())
    }

    /// Signs `data`, returning the raw signature bytes in the §2.3 encoding
    /// (PKCS#1 v1.5 for RSA, DER for ECDSA, 64 bytes for Ed25519).
    pub fn sign(&self, algorithm: Algorithm, data: &[u8]) -> Result<Vec<u8>, SignError> {
        if !algorithm.fits(self.public.key_type()) {
            return Err(SignError::AlgorithmMismatch {
                algorithm: algorithm.as_str(),
                key_type: self.public.key_type().ssh_name(),
            });
        }
        use ecdsa_signer::Signer as _;
        let crypto = |e: rsa::Error| SignError::Crypto(e.to_string());
        Ok(match (&self.secret, algorithm) {
            (Secret::Rsa(k), Algorithm::RsaSha1) => k
                .sign(rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), &sha1::Sha1::digest(data))
                .map_err(crypto)?,
            (Secret::Rsa(k), Algorithm::RsaSha512) => k
                .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), &sha2::Sha512::digest(data))
                .map_err(crypto)?,
            (Secret::Rsa(k), _) => k
                .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &sha2::Sha256::digest(data))
                .map_err(crypto)?,
            (Secret::P256(k), _) => {
                let sig: p256::ecdsa::Signature = k.sign(data);
                sig.to_der().as_bytes().to_vec()
            }
            (Secret::P384(k), _) => {
                let sig: p384::ecdsa::Signature = k.sign(data);
                sig.to_der().as_bytes().to_vec()
            }
            (Secret::P521(k), _) => {
                let sig: p521::ecdsa::Signature = k.sign(data);
                sig.to_der().as_bytes().to_vec()
            }
            (Secret::Ed25519(k), _) => k.sign(data).to_bytes().to_vec(),
        })
    }
}

/// The `signature::Signer` trait, reached through a crate we depend on.
mod ecdsa_signer {
    pub use p256::ecdsa::signature::Signer;
}

/// An RFC 1123 `Date` header value, as the CLI sends it.
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// What to presign (the inputs of `msign`).
#[derive(Debug, Clone, Copy)]
pub struct Presign<'a> {
    /// Allowed methods (sorted and de-duplicated by the signer).
    pub methods: &'a [&'a str],
    /// `host[:port]` of `MANTA_URL`.
    pub host: &'a str,
    /// The already percent-encoded path (`/alice/stor/a%20b.txt`).
    pub raw_path: &'a str,
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// Optional comma-joined role names.
    pub role: Option<&'a str>,
}

/// Signs requests for one account (or subuser) key, like the Manta CLI.
#[derive(Debug)]
pub struct RequestSigner {
    key: SigningKey,
    key_id: KeyId,
    algorithm: Algorithm,
}

impl RequestSigner {
    /// A signer for `login` (and `subuser`), using the key's MD5 fingerprint
    /// in the keyId and the CLI's default algorithm for its type.
    pub fn new(key: SigningKey, login: &str, subuser: Option<&str>) -> RequestSigner {
        let key_id = KeyId::new(login, subuser, key.public_key().md5());
        let algorithm = key.default_algorithm();
        RequestSigner {
            key,
            key_id,
            algorithm,
        }
    }

    /// Uses another algorithm (e.g. `rsa-sha512`); fails if it does not fit.
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Result<RequestSigner, SignError> {
        if !algorithm.fits(self.key.public_key().key_type()) {
            return Err(SignError::AlgorithmMismatch {
                algorithm: algorithm.as_str(),
                key_type: self.key.public_key().key_type().ssh_name(),
            });
        }
        self.algorithm = algorithm;
        Ok(self)
    }

    /// The keyId this signer sends.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The CLI's `Authorization` value for a request whose `Date` header is
    /// `date` (`headers="date"`).
    pub fn authorization(&self, date: &str) -> Result<String, SignError> {
        self.authorization_for(&["date"], &format!("date: {date}"))
    }

    /// An `Authorization` value for an arbitrary header list; the caller
    /// builds `signing_string` (see [`crate::header::signing_string`]).
    pub fn authorization_for(
        &self,
        headers: &[&str],
        signing_string: &str,
    ) -> Result<String, SignError> {
        let sig = self.key.sign(self.algorithm, signing_string.as_bytes())?;
        Ok(format!(
            "Signature keyId=\"{}\",algorithm=\"{}\",headers=\"{}\",signature=\"{}\"",
            self.key_id,
            self.algorithm,
            headers.join(" "),
            base64::engine::general_purpose::STANDARD.encode(sig)
        ))
    }

    /// The path and query of a presigned URL, exactly as `msign` prints it
    /// after `MANTA_URL`.
    pub fn presign(&self, p: &Presign<'_>) -> Result<String, SignError> {
        let mut methods: Vec<String> = p.methods.iter().map(|m| (*m).to_owned()).collect();
        methods.sort();
        methods.dedup();
        let mut params = vec![
            ("algorithm".to_owned(), self.algorithm.as_upper_str().to_owned()),
            ("expires".to_owned(), p.expires.to_string()),
            ("keyId".to_owned(), self.key_id.to_string()),
        ];
        if methods.len() > 1 {
            params.push(("method".to_owned(), methods.join(",")));
        }
        if let Some(role) = p.role {
            params.push(("role".to_owned(), role.to_owned()));
        }
        let to_sign = presigned_signing_string(&methods, p.host, p.raw_path, &params);
        let sig = self.key.sign(self.algorithm, to_sign.as_bytes())?;
        params.push((
            "signature".to_owned(),
            base64::engine::general_purpose::STANDARD.encode(sig),
        ));
        let query = params
            .iter()
            .map(|(k, v)| format!("{}={}", rfc3986_encode(k), rfc3986_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        Ok(format!("{}?{query}", p.raw_path))
    }
}
