//! The `keyId` of a signature: who signs and with which key (spec §2.4).
//!
//! Accepted forms are `/<login>/keys/<fp>` and `/<login>/<user>/keys/<fp>`
//! with each part percent-decoded; anything else is `InvalidKeyId`. The
//! parsed form never contains an empty part, a `/` inside a part, or a
//! control character, so it is safe to use as a lookup key.

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::error::AuthError;
use crate::key::Fingerprint;

/// A parsed keyId.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId {
    /// The account login.
    pub login: String,
    /// The subuser login, for subuser keys.
    pub subuser: Option<String>,
    /// The key fingerprint as given (MD5 or SHA-256).
    pub fingerprint: Fingerprint,
}

impl KeyId {
    /// Parses a keyId; every failure is [`AuthError::InvalidKeyId`].
    pub fn parse(raw: &str) -> Result<KeyId, AuthError> {
        let invalid = || AuthError::InvalidKeyId {
            key_id: raw.to_owned(),
        };
        let rest = raw.strip_prefix('/').ok_or_else(invalid)?;
        let segments: Vec<&str> = rest.split('/').collect();
        // The fingerprint is everything after `keys`: a SHA256 fingerprint's
        // base64 may itself contain `/`. The account form is tried first;
        // the subuser form applies when it does not parse.
        let parse_at = |keys_at: usize| -> Option<(String, Option<String>, Fingerprint)> {
            if segments.get(keys_at) != Some(&"keys") || segments.len() <= keys_at + 1 {
                return None;
            }
            let fp = segments[keys_at + 1..].join("/");
            let fp = percent_decode_str(&fp).decode_utf8().ok()?;
            let fingerprint = Fingerprint::parse(&fp)?;
            let login = decode_part(segments[0])?;
            let subuser = match keys_at {
                1 => None,
                _ => Some(decode_part(segments[1])?),
            };
            Some((login, subuser, fingerprint))
        };
        let (login, subuser, fingerprint) =
            parse_at(1).or_else(|| parse_at(2)).ok_or_else(invalid)?;
        Ok(KeyId {
            login,
            subuser,
            fingerprint,
        })
    }
    /// The account and subuser of a keyId that has Manta's shape
    /// (`/<login>[/<user>]/keys/<something>`) but whose last part is not a
    /// fingerprint. muskie looked such a key up like any other and answered
    /// `KeyDoesNotExist` (after the account checks), not `InvalidKeyId`.
    pub fn parse_unknown_key(raw: &str) -> Option<(String, Option<String>)> {
        let segments: Vec<&str> = raw.strip_prefix('/')?.split('/').collect();
        match segments.as_slice() {
            [login, "keys", fp] if !fp.is_empty() => Some((decode_part(login)?, None)),
            [login, user, "keys", fp] if !fp.is_empty() => {
                Some((decode_part(login)?, Some(decode_part(user)?)))
            }
            _ => None,
        }
    }

    /// [`KeyId::parse`], except that a keyId of Manta's shape whose last
    /// part is not a fingerprint gives a `KeyId` with a placeholder
    /// fingerprint and the keyId's text: the caller must then answer
    /// `KeyDoesNotExist` once the account checks passed.
    pub fn parse_or_unknown(raw: &str) -> Result<(KeyId, Option<String>), AuthError> {
        match KeyId::parse(raw) {
            Ok(k) => Ok((k, None)),
            Err(e) => match KeyId::parse_unknown_key(raw) {
                Some((login, subuser)) => Ok((
                    KeyId::new(&login, subuser.as_deref(), Fingerprint::Md5([0; 16])),
                    Some(raw.to_owned()),
                )),
                None => Err(e),
            },
        }
    }

    /// A keyId for an account key (MD5 fingerprint, as the CLI sends it).
    pub fn new(login: &str, subuser: Option<&str>, fingerprint: Fingerprint) -> KeyId {
        KeyId {
            login: login.to_owned(),
            subuser: subuser.map(str::to_owned),
            fingerprint,
        }
    }
}

fn decode_part(part: &str) -> Option<String> {
    let decoded = percent_decode_str(part).decode_utf8().ok()?;
    let ok = !decoded.is_empty() && !decoded.chars().any(|c| c == '/' || c.is_control());
    ok.then(|| decoded.into_owned())
}

/// Prints `/<login>[/<user>]/keys/<fp>` unencoded, the way the CLI sends it
/// and the way Manta's `KeyDoesNotExist` message shows it.
impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subuser {
            Some(user) => write!(f, "/{}/{user}/keys/{}", self.login, self.fingerprint),
            None => write!(f, "/{}/keys/{}", self.login, self.fingerprint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "71:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6";

    #[test]
    fn account_and_subuser_forms() {
        let k = KeyId::parse(&format!("/alice/keys/{FP}")).unwrap();
        assert_eq!((k.login.as_str(), k.subuser.as_deref()), ("alice", None));
        assert_eq!(k.to_string(), format!("/alice/keys/{FP}"));
        let k = KeyId::parse(&format!("/alice/bob/keys/MD5:{FP}")).unwrap();
        assert_eq!(k.subuser.as_deref(), Some("bob"));
        assert_eq!(k.to_string(), format!("/alice/bob/keys/{FP}"));
    }

    #[test]
    fn parts_are_percent_decoded() {
        let k = KeyId::parse("/al%40ice/b%20ob/keys/71%3Acd%3A44%3A83%3A0d%3Aa3%3A29%3Af3%3A90%3A84%3A77%3A02%3A68%3Ae4%3Aba%3Ab6").unwrap();
        assert_eq!(k.login, "al@ice");
        assert_eq!(k.subuser.as_deref(), Some("b ob"));
        assert_eq!(k.fingerprint, Fingerprint::parse(FP).unwrap());
    }

    #[test]
    fn sha256_fingerprints_are_accepted() {
        for raw in [
            "/alice/keys/SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "/alice/keys/SHA256:47DEQpj8HBSa+%2FTImW+5JCeuQeRkm5NMpJWZG3hSuFU",
        ] {
            let k = KeyId::parse(raw).unwrap();
            assert!(matches!(k.fingerprint, Fingerprint::Sha256(_)));
            assert_eq!(k.subuser, None);
            assert_eq!(k.to_string(), raw.replace("%2F", "/"));
        }
        let k = KeyId::parse("/alice/bob/keys/SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU")
            .unwrap();
        assert_eq!(k.subuser.as_deref(), Some("bob"));
        // A subuser literally named `keys` still works.
        let k = KeyId::parse("/alice/keys/keys/71:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6")
            .unwrap();
        assert_eq!(k.subuser.as_deref(), Some("keys"));
    }

    #[test]
    fn malformed_key_ids_are_invalid_key_id() {
        for bad in [
            "".to_owned(),
            "alice/keys/x".to_owned(),
            format!("alice/keys/{FP}"),
            format!("/alice/keys/{FP}/"),
            format!("//keys/{FP}"),
            format!("/alice//keys/{FP}"),
            format!("/alice/key/{FP}"),
            format!("/alice/bob/carol/keys/{FP}"),
            "/alice/keys/".to_owned(),
            "/alice/keys/nothex".to_owned(),
            format!("/al%2Fice/keys/{FP}"),
            format!("/al%00ice/keys/{FP}"),
            format!("/al%FFice/keys/{FP}"),
        ] {
            let err = KeyId::parse(&bad).unwrap_err();
            assert_eq!(err.code(), "InvalidKeyId", "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(raw in "(/[a-zA-Z0-9%:+=_.-]{0,12}){0,6}", any in ".{0,80}") {
            let _ = KeyId::parse(&raw);
            let _ = KeyId::parse(&any);
        }

        #[test]
        fn display_round_trips(login in "[a-zA-Z][a-zA-Z0-9_.@]{0,12}", user in proptest::option::of("[a-zA-Z][a-zA-Z0-9_.@]{0,12}"), md5 in proptest::array::uniform16(0u8..=255)) {
            let id = KeyId::new(&login, user.as_deref(), Fingerprint::Md5(md5));
            proptest::prop_assert_eq!(KeyId::parse(&id.to_string()).unwrap(), id);
        }
    }
}
