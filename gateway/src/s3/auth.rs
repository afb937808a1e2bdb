//! Who an S3 request is: SigV4 (header or presigned URL) checked by `s3s`
//! against the secret of the access key stored in meta, then the key's
//! account, which must exist and be enabled.
//!
//! Guarantees: every request reaching a handler carries a [`Principal`]
//! (anonymous requests are refused before); the principal is the account
//! owning the access key, never a name taken from the request, so a key of
//! one account can only ever name paths of that account. An unknown key, a
//! disabled account and a bad signature all get S3 errors.

use super::error::S3ApiError;
use meta::namespace::{Namespace, NamespaceError, S3Key};
use rand::RngCore;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Error, S3ErrorCode, S3Result};
use std::sync::Arc;

/// The account a signed S3 request acts for (set by [`Access`]).
#[derive(Debug, Clone)]
pub struct Principal {
    /// The account's login: buckets are its `/:login/stor/<bucket>`.
    pub login: String,
}

/// Looks access keys up in meta for `s3s`'s signature check.
pub(crate) struct Auth {
    pub ns: Arc<Namespace>,
}

async fn lookup(ns: &Namespace, access_key: &str) -> S3Result<S3Key> {
    match ns.get_s3_key(access_key).await {
        Ok(Some(k)) => Ok(k),
        Ok(None) => Err(S3ApiError::InvalidAccessKeyId.into()),
        Err(e) => Err(S3ApiError::from(e).into()),
    }
}

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        Ok(SecretKey::from(lookup(&self.ns, access_key).await?.secret))
    }
}

/// After the signature: refuses anonymous requests and disabled accounts,
/// and records the [`Principal`].
pub(crate) struct Access {
    pub ns: Arc<Namespace>,
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(cred) = cx.credentials() else {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "anonymous S3 requests are not allowed: sign with an access key",
            ));
        };
        let principal = principal_for(&self.ns, &cred.access_key).await?;
        cx.extensions_mut().insert(principal);
        Ok(())
    }
}

/// The account an access key acts for: it must exist and be enabled.
async fn principal_for(ns: &Namespace, access_key: &str) -> S3Result<Principal> {
    let key = lookup(ns, access_key).await?;
    match ns.active_account(&key.login).await {
        Ok(_) => Ok(Principal { login: key.login }),
        Err(NamespaceError::AccountBlocked(_)) => Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "this account is disabled",
        )),
        Err(NamespaceError::AccountNotFound(_)) => Err(S3ApiError::InvalidAccessKeyId.into()),
        Err(e) => Err(S3ApiError::from(e).into()),
    }
}

/// A fresh key for `login`: a 20-character id (`TP` + 18 base-32
/// characters) and a 40-character secret, both from the OS CSPRNG.
pub fn generate_key(login: &str, now_ms: u64) -> S3Key {
    const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rngs::OsRng;
    let mut pick = |alphabet: &[u8], n: usize| -> String {
        let mut buf = vec![0u8; n];
        rng.fill_bytes(&mut buf);
        // Both alphabets have a power-of-two size, so masking is unbiased.
        buf.iter()
            .map(|b| alphabet[usize::from(*b) & (alphabet.len() - 1)] as char)
            .collect()
    };
    let id = format!("TP{}", pick(ID_ALPHABET, 18));
    let secret = pick(SECRET_ALPHABET, 40);
    S3Key {
        access_key_id: id,
        secret,
        login: login.to_owned(),
        created_ms: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_act_for_their_enabled_account_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv = meta::embedded::EmbeddedKv::open(dir.path().join("meta.redb"))
            .await
            .expect("kv");
        let ns = Namespace::new(Arc::new(kv));
        ns.create_account("alice").await.expect("alice");
        let key = generate_key("alice", 1);
        ns.add_s3_key(&key).await.expect("key");
        let p = principal_for(&ns, &key.access_key_id)
            .await
            .expect("principal");
        assert_eq!(p.login, "alice");
        let unknown = principal_for(&ns, "TPUNKNOWN00000000000").await;
        assert_eq!(
            unknown.map(|_| ()).unwrap_err().code(),
            &S3ErrorCode::InvalidAccessKeyId
        );
        ns.set_account_disabled("alice", true)
            .await
            .expect("disable");
        let refused = principal_for(&ns, &key.access_key_id).await;
        assert_eq!(
            refused.map(|_| ()).unwrap_err().code(),
            &S3ErrorCode::AccessDenied
        );
        // The secret is still found (signatures are checked first), but
        // nothing runs for a disabled account.
        let auth = Auth { ns: Arc::new(ns) };
        assert!(auth.get_secret_key(&key.access_key_id).await.is_ok());
    }

    #[test]
    fn generated_keys_are_valid_and_distinct() {
        let a = super::generate_key("alice", 1);
        let b = super::generate_key("alice", 1);
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.access_key_id.len(), 20);
        assert!(
            a.access_key_id
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_eq!(a.secret.len(), 40);
    }
}
