//! Authentication (via the `auth` crate, keys from `meta`) and
//! authorization (who may touch which path).
//!
//! Policy (spec §2.7; full RBAC is out of scope): an account and its
//! subusers have full access to the account's own tree; anyone, signed or
//! anonymous, may GET/HEAD/OPTIONS under `/:login/public`; nothing else.
//! `Role` / `role-tag` headers are parsed and `role-tag` is stored, but roles
//! grant nothing yet.

use crate::error::ApiError;
use auth::{AuthError, Caller, Fingerprint, KeyLookup, LookupError, PublicKey};
use http::StatusCode;
use meta::namespace::{Namespace, NamespaceError};
use meta::path::MantaPath;

/// `auth::KeyLookup` over meta's account/key records.
#[derive(Debug, Clone)]
pub struct MetaKeys {
    pub ns: std::sync::Arc<Namespace>,
}

fn lookup_err(e: NamespaceError) -> LookupError {
    match e {
        NamespaceError::AccountNotFound(_) => LookupError::AccountNotFound,
        NamespaceError::AccountBlocked(_) => LookupError::AccountBlocked,
        NamespaceError::SubuserNotFound(_) => LookupError::UserNotFound,
        other => LookupError::Unavailable(other.to_string()),
    }
}

#[async_trait::async_trait]
impl KeyLookup for MetaKeys {
    async fn lookup(
        &self,
        login: &str,
        subuser: Option<&str>,
        fingerprint: &Fingerprint,
    ) -> Result<Option<PublicKey>, LookupError> {
        self.ns.active_account(login).await.map_err(lookup_err)?;
        if let Some(user) = subuser
            && self
                .ns
                .get_subuser(login, user)
                .await
                .map_err(lookup_err)?
                .is_none()
        {
            return Err(LookupError::UserNotFound);
        }
        let Some(key) = self
            .ns
            .get_key(login, subuser, &fingerprint.to_string())
            .await
            .map_err(lookup_err)?
        else {
            return Ok(None);
        };
        match PublicKey::from_openssh(&key.public_key) {
            Ok(pk) => Ok(Some(pk)),
            // A stored key we cannot parse is a corrupt record, not the
            // caller's fault; it behaves like no key and is logged.
            Err(e) => {
                tracing::error!(%login, error = %e, "stored SSH key does not parse");
                Ok(None)
            }
        }
    }
}

/// An authentication failure on the wire, with auth's own code and status.
pub fn auth_error(e: AuthError) -> ApiError {
    if let AuthError::Unavailable(cause) = &e {
        return ApiError::MetadataUnavailable(cause.clone());
    }
    ApiError::Auth {
        status: StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN),
        code: e.code().to_owned(),
        message: e.message(),
    }
}

fn forbidden(who: &str, path: &MantaPath) -> ApiError {
    ApiError::Auth {
        status: StatusCode::FORBIDDEN,
        code: "AuthorizationFailed".to_owned(),
        message: format!("{who} is not allowed to access {path}"),
    }
}

/// Decides whether `caller` (None = anonymous) may do a request on `path`.
/// `is_read` is true for GET/HEAD/OPTIONS.
pub fn authorize(caller: Option<&Caller>, path: &MantaPath, is_read: bool) -> Result<(), ApiError> {
    let public_read = is_read && path.top() == Some(meta::path::TopDir::Public);
    match caller {
        Some(c) if c.login == path.login() => Ok(()),
        _ if public_read => Ok(()),
        None => Err(forbidden("anonymous", path)),
        Some(c) => {
            let who = match &c.subuser {
                Some(u) => format!("{}/{}", c.login, u),
                None => c.login.clone(),
            };
            Err(forbidden(&who, path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(login: &str) -> Caller {
        Caller {
            login: login.to_owned(),
            subuser: None,
            fingerprint: Fingerprint::Md5([0; 16]),
            algorithm: auth::Algorithm::parse("rsa-sha256").unwrap(),
            presigned: None,
        }
    }

    #[test]
    fn policy() {
        let stor = MantaPath::parse("/alice/stor/x").unwrap();
        let public = MantaPath::parse("/alice/public/x").unwrap();
        let alice = caller("alice");
        let bob = caller("bob");
        assert!(authorize(Some(&alice), &stor, false).is_ok());
        assert!(authorize(Some(&alice), &public, false).is_ok());
        assert!(authorize(None, &public, true).is_ok());
        assert!(authorize(Some(&bob), &public, true).is_ok());
        let e = authorize(Some(&bob), &public, false).unwrap_err();
        assert_eq!(e.code(), "AuthorizationFailed");
        let e = authorize(None, &stor, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "anonymous is not allowed to access /alice/stor/x"
        );
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(authorize(Some(&bob), &stor, true).is_err());
    }
}
