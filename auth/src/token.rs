//! Manta's auth tokens: `POST /:login/tokens` hands an authenticated
//! caller a token, and `Authorization: Token <token>` then stands for that
//! caller until the token expires.
//!
//! muskie encrypted its tokens with a server-wide AES key; Tidepool's are
//! MACed instead (HMAC-SHA256 with a server secret, [`TokenKey`]): what a
//! token says (who, with which key, until when) is not secret, but nobody
//! without the secret can make or alter one. A token names the key whose
//! signature minted it, so removing that key (or the account) revokes it.
//!
//! Guarantees: [`verify`] never panics, compares MACs in constant time, and
//! refuses every token it did not [`issue`] with the same key, or that has
//! expired, with [`AuthError::InvalidAuthToken`].

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::AuthError;

/// How long a token is good for, seconds.
pub const TOKEN_TTL_SECS: i64 = 3600;

const VERSION: &str = "tp1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The server secret tokens are MACed with. `Debug` does not show it.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from 32 secret bytes (derive them from the cluster secret so
    /// every gateway of a deployment accepts the same tokens).
    pub fn new(secret: [u8; 32]) -> TokenKey {
        TokenKey(secret)
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        mac.update(b"tidepool auth token: ");
        mac.update(payload);
        mac
    }
}

/// What a token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The account login.
    pub login: String,
    /// The subuser, when a subuser's key minted it.
    pub subuser: Option<String>,
    /// The MD5 fingerprint (colon hex) of the key that minted it.
    pub fingerprint: String,
    /// The signature algorithm of the minting request.
    pub algorithm: String,
    /// Expiry, Unix seconds.
    pub expires: i64,
}

fn field_ok(s: &str) -> bool {
    !s.contains('|') && !s.chars().any(char::is_control)
}

/// Makes a token for `claims`. `None` when a claim could not be encoded
/// (a `|` or control character in a name: never the case for names that
/// authenticated).
pub fn issue(key: &TokenKey, claims: &TokenClaims) -> Option<String> {
    let sub = claims.subuser.as_deref().unwrap_or("");
    let fields = [
        claims.login.as_str(),
        sub,
        claims.fingerprint.as_str(),
        claims.algorithm.as_str(),
    ];
    if !fields.iter().all(|f| field_ok(f)) {
        return None;
    }
    let payload = format!(
        "{VERSION}|{}|{}|{}|{}|{}",
        claims.expires, claims.login, sub, claims.fingerprint, claims.algorithm
    );
    let tag = key.mac(payload.as_bytes()).finalize().into_bytes();
    Some(format!("{}.{}", B64.encode(payload), B64.encode(tag)))
}

/// Checks a token at time `now` (Unix seconds) and returns its claims.
pub fn verify(key: &TokenKey, token: &str, now: i64) -> Result<TokenClaims, AuthError> {
    let bad = |why: &str| AuthError::InvalidAuthToken(why.to_owned());
    let (payload, tag) = token
        .trim()
        .split_once('.')
        .ok_or_else(|| bad("malformed"))?;
    let payload = B64.decode(payload).map_err(|_| bad("malformed"))?;
    let tag = B64.decode(tag).map_err(|_| bad("malformed"))?;
    key.mac(&payload)
        .verify_slice(&tag)
        .map_err(|_| bad("not issued by this service"))?;
    let payload = String::from_utf8(payload).map_err(|_| bad("malformed"))?;
    let f: Vec<&str> = payload.split('|').collect();
    let [VERSION, expires, login, sub, fingerprint, algorithm] = f.as_slice() else {
        return Err(bad("an invalid version"));
    };
    let expires: i64 = expires.parse().map_err(|_| bad("malformed"))?;
    if now >= expires {
        return Err(bad("expired"));
    }
    Ok(TokenClaims {
        login: (*login).to_owned(),
        subuser: (!sub.is_empty()).then(|| (*sub).to_owned()),
        fingerprint: (*fingerprint).to_owned(),
        algorithm: (*algorithm).to_owned(),
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims() -> TokenClaims {
        TokenClaims {
            login: "alice".into(),
            subuser: None,
            fingerprint: "5a:4c:27:b4:10:75:8a:f2:b2:e9:96:8c:83:2b:dc:31".into(),
            algorithm: "ed25519-sha512".into(),
            expires: 1000,
        }
    }

    #[test]
    fn round_trip_expiry_and_forgery() {
        let key = TokenKey::new([7; 32]);
        let t = issue(&key, &claims()).unwrap();
        assert_eq!(verify(&key, &t, 999).unwrap(), claims());
        let code = |r: Result<TokenClaims, AuthError>| r.unwrap_err().code();
        assert_eq!(code(verify(&key, &t, 1000)), "InvalidAuthenticationToken");
        assert_eq!(
            code(verify(&TokenKey::new([8; 32]), &t, 0)),
            "InvalidAuthenticationToken"
        );
        // Another account or a later expiry under the same MAC.
        let (p, tag) = t.split_once('.').unwrap();
        let p = String::from_utf8(B64.decode(p).unwrap()).unwrap();
        for forged in [p.replace("alice", "bobby"), p.replace("|1000|", "|9999|")] {
            let f = format!("{}.{tag}", B64.encode(forged));
            assert_eq!(code(verify(&key, &f, 0)), "InvalidAuthenticationToken");
        }
        for junk in ["", ".", "abc", "a.b", "tp1|5|x|||"] {
            assert_eq!(code(verify(&key, junk, 0)), "InvalidAuthenticationToken");
        }
        let mut sub = claims();
        sub.subuser = Some("bob".into());
        let t = issue(&key, &sub).unwrap();
        assert_eq!(verify(&key, &t, 0).unwrap().subuser.as_deref(), Some("bob"));
        sub.login = "a|b".into();
        assert_eq!(issue(&key, &sub), None);
    }

    proptest! {
        #[test]
        fn verify_never_panics(s in "[ -~]{0,120}") {
            let _ = verify(&TokenKey::new([1; 32]), &s, 0);
        }
    }
}
