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

const PEM_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const PEM_END: &str = "-----END OPENSSH PRIVATE KEY-----";
const MAGIC: &[u8] = b"openssh-key-v1\0";

/// Reader for the SSH wire encoding (big-endian u32 lengths); every read is
/// bounds-checked.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn u32(&mut self) -> Result<u32, KeyError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or_else(|| KeyError::Malformed("truncated private key".into()))?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*head))
    }

    fn bytes(&mut self) -> Result<&'a [u8], KeyError> {
        let len = usize::try_from(self.u32()?).map_err(invalid)?;
        if len > self.0.len() {
            return Err(KeyError::Malformed("truncated private key".into()));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn str(&mut self) -> Result<&'a str, KeyError> {
        std::str::from_utf8(self.bytes()?).map_err(invalid)
    }
}

/// An mpint's magnitude as exactly `size` big-endian bytes (OpenSSH drops
/// leading zero bytes of EC scalars, so they must be put back).
fn scalar(mpint: &[u8], size: usize) -> Result<Vec<u8>, KeyError> {
    let first_nonzero = mpint.iter().position(|b| *b != 0).unwrap_or(mpint.len());
    let magnitude = &mpint[first_nonzero..];
    if magnitude.len() > size {
        return Err(invalid("EC private scalar too long"));
    }
    let mut out = vec![0u8; size - magnitude.len()];
    out.extend_from_slice(magnitude);
    Ok(out)
}

impl SigningKey {
    /// Reads an unencrypted OpenSSH private key
    /// (`-----BEGIN OPENSSH PRIVATE KEY-----`, what `ssh-keygen` writes).
    ///
    /// The container is parsed here rather than with `ssh-key` 0.6, which
    /// rejects P-521 (and some P-256) keys whose scalar has leading zero
    /// bytes and builds RSA keys with a wrong prime.
    pub fn from_openssh(pem: &str) -> Result<SigningKey, KeyError> {
        let body = pem
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|s| s.strip_suffix(PEM_END))
            .ok_or_else(|| KeyError::Malformed("not an OpenSSH private key".into()))?;
        let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| KeyError::Malformed(format!("private key is not base64: {e}")))?;
        let rest = raw
            .strip_prefix(MAGIC)
            .ok_or_else(|| KeyError::Malformed("not an openssh-key-v1 container".into()))?;
        let mut outer = Wire(rest);
        let cipher = outer.str()?;
        let _kdf = outer.str()?;
        let _kdf_options = outer.bytes()?;
        if cipher != "none" {
            return Err(KeyError::Encrypted);
        }
        if outer.u32()? != 1 {
            return Err(KeyError::Malformed("expected exactly one key".into()));
        }
        let public_blob = outer.bytes()?;
        let mut inner = Wire(outer.bytes()?);
        if inner.u32()? != inner.u32()? {
            return Err(KeyError::Invalid("check bytes differ".into()));
        }
        let key_type = inner.str()?;
        let public = PublicKey::from_wire(public_blob)?;
        if public.key_type().ssh_name() != key_type {
            return Err(KeyError::Invalid(
                "public and private key types differ".into(),
            ));
        }
        let secret = match public.key_type() {
            KeyType::Rsa => {
                let mut next = || inner.bytes().map(rsa::BigUint::from_bytes_be);
                let (n, e, d, _iqmp, p, q) = (next()?, next()?, next()?, next()?, next()?, next()?);
                let key =
                    rsa::RsaPrivateKey::from_components(n, e, d, vec![p, q]).map_err(invalid)?;
                Secret::Rsa(Box::new(key))
            }
            ty @ (KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521) => {
                let _curve = inner.str()?;
                let _point = inner.bytes()?;
                let d = inner.bytes()?;
                match ty {
                    KeyType::EcdsaP256 => Secret::P256(
                        p256::ecdsa::SigningKey::from_slice(&scalar(d, 32)?).map_err(invalid)?,
                    ),
                    KeyType::EcdsaP384 => Secret::P384(
                        p384::ecdsa::SigningKey::from_slice(&scalar(d, 48)?).map_err(invalid)?,
                    ),
                    _ => Secret::P521(
                        p521::ecdsa::SigningKey::from_slice(&scalar(d, 66)?).map_err(invalid)?,
                    ),
                }
            }
            KeyType::Ed25519 => {
                let _pk = inner.bytes()?;
                let sk = inner.bytes()?;
                let seed: [u8; 32] = sk
                    .get(..32)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| invalid("short Ed25519 private key"))?;
                Secret::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
        };
        let comment = inner.str().unwrap_or_default();
        let key = SigningKey {
            secret,
            public: public.with_comment(comment),
        };
        // A container whose private half does not match its public half
        // would sign requests that never verify; catch it here instead.
        let probe = b"tidepool key self-check";
        let alg = key.default_algorithm();
        let sig = key.sign(alg, probe).map_err(invalid)?;
        if !key.public.verify(alg, probe, &sig) {
            return Err(KeyError::Invalid(
                "private key does not match public key".into(),
            ));
        }
        Ok(key)
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
        // One `Signer` trait (the `signature` crate) serves all ECDSA curves
        // and Ed25519.
        use p256::ecdsa::signature::Signer as _;
        let crypto = |e: rsa::Error| SignError::Crypto(e.to_string());
        Ok(match (&self.secret, algorithm) {
            (Secret::Rsa(k), Algorithm::RsaSha1) => k
                .sign(
                    rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                    &sha1::Sha1::digest(data),
                )
                .map_err(crypto)?,
            (Secret::Rsa(k), Algorithm::RsaSha512) => k
                .sign(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                    &sha2::Sha512::digest(data),
                )
                .map_err(crypto)?,
            (Secret::Rsa(k), _) => k
                .sign(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &sha2::Sha256::digest(data),
                )
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

    /// An `Authorization` value that also binds the method and target:
    /// `headers="(request-target) date"`, so the signature cannot be
    /// replayed with another method or on another path.
    /// `raw_path_and_query` is the request target exactly as sent.
    pub fn authorization_with_target(
        &self,
        method: &str,
        raw_path_and_query: &str,
        date: &str,
    ) -> Result<String, SignError> {
        let names = [crate::header::REQUEST_TARGET, "date"];
        let signing_string = format!(
            "{}: {} {raw_path_and_query}\ndate: {date}",
            names[0],
            method.to_ascii_lowercase()
        );
        self.authorization_for(&names, &signing_string)
    }

    /// `(Date, Authorization)` header values for a request sent at `now`.
    pub fn date_and_authorization(&self, now: SystemTime) -> Result<(String, String), SignError> {
        let date = http_date(now);
        let authorization = self.authorization(&date)?;
        Ok((date, authorization))
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
            (
                "algorithm".to_owned(),
                self.algorithm.as_upper_str().to_owned(),
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn testdata(name: &str) -> String {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn fixtures_load_and_match_their_public_keys() {
        for name in ["rsa_2048", "ecdsa_256", "ecdsa_384", "ecdsa_521", "ed25519"] {
            let key = SigningKey::from_openssh(&testdata(name)).unwrap();
            let public = PublicKey::from_openssh(&testdata(&format!("{name}.pub"))).unwrap();
            assert_eq!(key.public_key(), &public, "{name}");
            assert_eq!(key.public_key().comment(), format!("tidepool-test-{name}"));
        }
    }

    #[test]
    fn rsa_and_ed25519_signatures_are_deterministic() {
        for name in ["rsa_2048", "ed25519"] {
            let key = SigningKey::from_openssh(&testdata(name)).unwrap();
            let alg = key.default_algorithm();
            assert_eq!(
                key.sign(alg, b"date: x").unwrap(),
                key.sign(alg, b"date: x").unwrap()
            );
            assert_ne!(
                key.sign(alg, b"date: x").unwrap(),
                key.sign(alg, b"date: y").unwrap()
            );
        }
    }

    #[test]
    fn mismatched_algorithms_and_bad_keys_are_refused() {
        let key = SigningKey::from_openssh(&testdata("ed25519")).unwrap();
        assert!(matches!(
            key.sign(Algorithm::RsaSha256, b"x"),
            Err(SignError::AlgorithmMismatch { .. })
        ));
        let signer = RequestSigner::new(key, "alice", None);
        assert!(signer.with_algorithm(Algorithm::EcdsaSha256).is_err());
        assert_eq!(
            SigningKey::from_openssh(&testdata("ed25519_encrypted")).unwrap_err(),
            KeyError::Encrypted
        );
        let pem = testdata("ecdsa_256");
        for bad in [
            "",
            "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
            &pem[..pem.len() / 2],
            &testdata("ecdsa_256.pub"),
        ] {
            assert!(SigningKey::from_openssh(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cli_authorization_format() {
        let key = SigningKey::from_openssh(&testdata("rsa_2048")).unwrap();
        let md5 = key.public_key().fingerprint_md5();
        let signer = RequestSigner::new(key, "alice", Some("bob"));
        let auth = signer
            .authorization("Sun, 22 Nov 2026 01:33:03 GMT")
            .unwrap();
        let prefix = format!(
            "Signature keyId=\"/alice/bob/keys/{md5}\",algorithm=\"rsa-sha256\",headers=\"date\",signature=\""
        );
        assert!(auth.starts_with(&prefix), "{auth}");
        let params = crate::parse_authorization(&auth).unwrap();
        assert_eq!(params.to_header_value(), auth);
    }

    #[test]
    fn presign_format_matches_msign() {
        let key = SigningKey::from_openssh(&testdata("ed25519")).unwrap();
        let md5 = key.public_key().fingerprint_md5().replace(':', "%3A");
        let signer = RequestSigner::new(key, "alice", None);
        let url = signer
            .presign(&Presign {
                methods: &["GET"],
                host: "manta.example.com",
                raw_path: "/alice/public/x.txt",
                expires: 1_700_000_000,
                role: None,
            })
            .unwrap();
        let prefix = format!(
            "/alice/public/x.txt?algorithm=ED25519-SHA512&expires=1700000000&keyId=%2Falice%2Fkeys%2F{md5}&signature="
        );
        assert!(url.starts_with(&prefix), "{url}");
        assert!(!url.contains("method="));
    }

    /// Keys made by the real `ssh-keygen` at test time: our fingerprints must
    /// equal its own, and its private keys must sign verifiable requests.
    #[test]
    fn keys_generated_by_ssh_keygen() {
        if Command::new("ssh-keygen").arg("-?").output().is_err() {
            eprintln!("ssh-keygen not installed; skipping");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for (ty, bits) in [
            ("rsa", "3072"),
            ("ecdsa", "256"),
            ("ecdsa", "384"),
            ("ecdsa", "521"),
            ("ed25519", ""),
        ] {
            // Several keys per type so scalars with leading zero bytes show up.
            for i in 0..4 {
                let path = dir.path().join(format!("{ty}{bits}_{i}"));
                let mut cmd = Command::new("ssh-keygen");
                cmd.args(["-q", "-t", ty, "-N", "", "-C", "gen", "-f"])
                    .arg(&path);
                if !bits.is_empty() {
                    cmd.args(["-b", bits]);
                }
                assert!(cmd.status().unwrap().success());
                let key =
                    SigningKey::from_openssh(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let pub_path = path.with_extension("pub");
                let public =
                    PublicKey::from_openssh(&std::fs::read_to_string(&pub_path).unwrap()).unwrap();
                assert_eq!(key.public_key(), &public);
                for (hash, ours) in [
                    ("md5", format!("MD5:{}", public.fingerprint_md5())),
                    ("sha256", public.fingerprint_sha256()),
                ] {
                    let out = Command::new("ssh-keygen")
                        .args(["-l", "-E", hash, "-f"])
                        .arg(&pub_path)
                        .output()
                        .unwrap();
                    let text = String::from_utf8(out.stdout).unwrap();
                    assert_eq!(
                        text.split_whitespace().nth(1),
                        Some(ours.as_str()),
                        "{ty}{bits}"
                    );
                }
                let alg = key.default_algorithm();
                let sig = key
                    .sign(alg, b"date: Sun, 22 Nov 2026 01:33:03 GMT")
                    .unwrap();
                assert!(public.verify(alg, b"date: Sun, 22 Nov 2026 01:33:03 GMT", &sig));
                assert!(!public.verify(alg, b"date: Sun, 22 Nov 2026 01:33:04 GMT", &sig));
                if ty == "rsa" {
                    break; // RSA generation is slow and has no scalar-padding edge case.
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn private_key_reader_never_panics(body in proptest::collection::vec(0u8..=255, 0..300)) {
            let pem = format!(
                "{PEM_BEGIN}\n{}\n{PEM_END}",
                base64::engine::general_purpose::STANDARD.encode([MAGIC, &body].concat())
            );
            let _ = SigningKey::from_openssh(&pem);
        }
    }

    /// Our RSA and ECDSA signatures verify with OpenSSL, independently of
    /// this crate's verifier (keys exported by `ssh-keygen -e -m PKCS8`).
    #[test]
    fn openssl_verifies_our_signatures() {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("openssl not installed; skipping");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = b"date: Sun, 22 Nov 2026 01:33:03 GMT";
        let data_path = dir.path().join("data");
        std::fs::write(&data_path, data).unwrap();
        let cases = [
            ("rsa_2048", Algorithm::RsaSha1, "-sha1"),
            ("rsa_2048", Algorithm::RsaSha256, "-sha256"),
            ("rsa_2048", Algorithm::RsaSha512, "-sha512"),
            ("ecdsa_256", Algorithm::EcdsaSha256, "-sha256"),
            ("ecdsa_384", Algorithm::EcdsaSha384, "-sha384"),
            ("ecdsa_521", Algorithm::EcdsaSha512, "-sha512"),
        ];
        for (name, alg, digest) in cases {
            let key = SigningKey::from_openssh(&testdata(name)).unwrap();
            let pub_path = format!("{}/testdata/{name}.pub", env!("CARGO_MANIFEST_DIR"));
            let pem = Command::new("ssh-keygen")
                .args(["-e", "-m", "PKCS8", "-f", &pub_path])
                .output()
                .unwrap();
            assert!(pem.status.success(), "ssh-keygen -e failed for {name}");
            let pem_path = dir.path().join(format!("{name}.pem"));
            std::fs::write(&pem_path, &pem.stdout).unwrap();
            for (payload, expect) in [(&data[..], true), (&b"date: other"[..], false)] {
                let sig_path = dir.path().join("sig");
                std::fs::write(&sig_path, key.sign(alg, payload).unwrap()).unwrap();
                let status = Command::new("openssl")
                    .args(["dgst", digest, "-verify"])
                    .arg(&pem_path)
                    .arg("-signature")
                    .arg(&sig_path)
                    .arg(&data_path)
                    .output()
                    .unwrap()
                    .status;
                assert_eq!(status.success(), expect, "{name} {alg}");
            }
        }
    }
}
