//! Authentication (via the `auth` crate, keys from `meta`) and
//! authorization (who may touch which path).
//!
//! Policy (spec §2.7): an account has full access to its own tree, and
//! its subusers pass this gate there too, to be judged by their roles in
//! [`crate::roles`]; anyone, signed or anonymous, may GET/HEAD/OPTIONS
//! under `/:login/public`; an operator account may do anything in every
//! account (muskie's authorizer allowed every action to a caller that is
//! an account, not a subuser, with `isOperator`); nothing else.
//!
//! Guarantees: whether a caller is an operator is read from its stored
//! account record ([`meta::namespace::Account::operator`]) and from nothing
//! the request carries (no header, query parameter, key name or subuser
//! name); a subuser of an operator account is not an operator. The record
//! is read only when the owner and public rules have already refused, so
//! requests in one's own tree cost no extra lookup.

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

/// How an authorized request was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The caller's own account (the account itself, or one of its
    /// subusers, whom [`crate::roles`] judges next).
    Owner,
    /// A read under some account's `/public`.
    Public,
    /// An operator account in another account's tree.
    Operator,
}

/// The decision for a caller whose operator status is known: `operator`
/// must come from the caller's stored account record.
pub fn decide(
    caller: Option<&Caller>,
    operator: bool,
    path: &MantaPath,
    is_read: bool,
) -> Result<Grant, ApiError> {
    let public_read = is_read && path.top() == Some(meta::path::TopDir::Public);
    match caller {
        Some(c) if c.login == path.login() => Ok(Grant::Owner),
        _ if public_read => Ok(Grant::Public),
        // Manta's rule: only the account itself, never one of its subusers.
        Some(c) if operator && c.subuser.is_none() => Ok(Grant::Operator),
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

/// Whether `caller` is an operator: an account (not a subuser) whose
/// stored record says so. An account that is gone or disabled is not.
pub async fn is_operator(ns: &Namespace, caller: Option<&Caller>) -> Result<bool, ApiError> {
    let Some(c) = caller.filter(|c| c.subuser.is_none()) else {
        return Ok(false);
    };
    match ns.get_account(&c.login).await? {
        Some(a) => Ok(a.operator && !a.disabled),
        None => Ok(false),
    }
}

/// Decides whether `caller` (None = anonymous) may do a request on `path`.
/// `is_read` is true for GET/HEAD/OPTIONS. The caller's account record is
/// read only if the owner and public rules refuse.
pub async fn authorize(
    ns: &Namespace,
    caller: Option<&Caller>,
    path: &MantaPath,
    is_read: bool,
) -> Result<Grant, ApiError> {
    match decide(caller, false, path, is_read) {
        Ok(g) => Ok(g),
        Err(denied) => {
            if is_operator(ns, caller).await? {
                decide(caller, true, path, is_read)
            } else {
                Err(denied)
            }
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
        assert_eq!(
            decide(Some(&alice), false, &stor, false).unwrap(),
            Grant::Owner
        );
        assert!(decide(Some(&alice), false, &public, false).is_ok());
        assert_eq!(decide(None, false, &public, true).unwrap(), Grant::Public);
        assert!(decide(Some(&bob), false, &public, true).is_ok());
        let e = decide(Some(&bob), false, &public, false).unwrap_err();
        assert_eq!(e.code(), "AuthorizationFailed");
        let e = decide(None, false, &stor, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "anonymous is not allowed to access /alice/stor/x"
        );
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(decide(Some(&bob), false, &stor, true).is_err());
    }

    #[test]
    fn operators() {
        let stor = MantaPath::parse("/alice/stor/x").unwrap();
        let op = caller("op");
        // An operator account may read and write in another account.
        assert_eq!(
            decide(Some(&op), true, &stor, true).unwrap(),
            Grant::Operator
        );
        assert_eq!(
            decide(Some(&op), true, &stor, false).unwrap(),
            Grant::Operator
        );
        // Its subusers may not, whatever they are called.
        for name in ["operator", "operators", "_operator", "admin"] {
            let sub = Caller {
                subuser: Some(name.to_owned()),
                ..caller("op")
            };
            let e = decide(Some(&sub), true, &stor, true).unwrap_err();
            assert_eq!(e.code(), "AuthorizationFailed");
            assert_eq!(
                e.to_string(),
                format!("op/{name} is not allowed to access /alice/stor/x")
            );
        }
        // Anonymous never is.
        assert!(decide(None, true, &stor, true).is_err());
    }
}
