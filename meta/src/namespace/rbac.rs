//! Access-control records of an account: roles and policies (Manta RBAC),
//! and removing a subuser.
//!
//! Guarantees: every write is one transaction that checks what it refers
//! to inside it — a role's members are existing subusers of the account,
//! its default members are members, its policies exist — so a stored role
//! never names a subuser or policy that did not exist when it was written.
//! Removing a policy or a subuser takes it out of every role in the same
//! transaction. Rule texts are stored as given; parsing them is the
//! caller's (the `auth` crate's) job. [`Namespace::subuser_access`] reads
//! from one snapshot.

use uuid::Uuid;

use super::entries::{Step, in_txn};
use super::records::{decode, encode};
use super::{Namespace, NamespaceError, NsResult, Policy, Role, SubuserAccess};
use crate::keys;
use crate::kv::{KeyRange, KvError, Order, Reader, Txn};
use crate::path::valid_login;

const CHUNK: usize = 1024;

fn kv_err(what: &str) -> impl Fn(KvError) -> NamespaceError + '_ {
    move |e| NamespaceError::from_kv(e, what)
}

async fn scan_all(r: &mut dyn Reader, mut range: KeyRange) -> NsResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let rows = r
            .scan(range.clone(), CHUNK, Order::Asc)
            .await
            .map_err(kv_err("scan"))?;
        let full = rows.len() == CHUNK;
        if let Some((k, _)) = rows.last() {
            range.start = std::ops::Bound::Excluded(k.clone());
        }
        out.extend(rows.into_iter().map(|(_, v)| v));
        if !full {
            return Ok(out);
        }
    }
}

/// Role and policy names follow the login rules (no `,`, which separates
/// names in `role` and `role-tag` headers; no `/`, no control characters).
fn check_name(what: &str, name: &str) -> NsResult<()> {
    if valid_login(name) {
        Ok(())
    } else {
        Err(NamespaceError::InvalidArgument(format!(
            "invalid {what} name {:?}",
            name.chars().take(64).collect::<String>()
        )))
    }
}

async fn require_account(txn: &mut dyn Txn, login: &str) -> NsResult<()> {
    if txn
        .get(&keys::account_key(login))
        .await
        .map_err(kv_err(login))?
        .is_none()
    {
        return Err(NamespaceError::AccountNotFound(login.to_owned()));
    }
    Ok(())
}

impl Namespace {
    /// Creates or replaces a policy of `login`.
    pub async fn put_policy(&self, login: &str, name: &str, rules: &[String]) -> NsResult<Policy> {
        check_name("account", login)?;
        check_name("policy", name)?;
        in_txn!(self, login, txn => async {
            require_account(txn, login).await?;
            let key = keys::policy_key(login, name);
            let uuid = match txn.get_for_update(&key).await.map_err(kv_err(login))? {
                Some(v) => decode::<Policy>(&v)?.uuid,
                None => Uuid::new_v4(),
            };
            let p = Policy {
                login: login.to_owned(),
                name: name.to_owned(),
                uuid,
                rules: rules.to_vec(),
            };
            txn.put(key, encode(&p)).await.map_err(kv_err(login))?;
            Ok(p)
        })
    }

    /// A policy, if it exists.
    pub async fn get_policy(&self, login: &str, name: &str) -> NsResult<Option<Policy>> {
        if !valid_login(login) || !valid_login(name) {
            return Ok(None);
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        match snap
            .get(&keys::policy_key(login, name))
            .await
            .map_err(kv_err(login))?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// All policies of an account, by name.
    pub async fn list_policies(&self, login: &str) -> NsResult<Vec<Policy>> {
        if !valid_login(login) {
            return Ok(Vec::new());
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        scan_all(&mut *snap, keys::policies_range(login))
            .await?
            .iter()
            .map(|v| decode(v))
            .collect()
    }

    /// Removes a policy and takes it out of every role. `false` if it did
    /// not exist.
    pub async fn delete_policy(&self, login: &str, name: &str) -> NsResult<bool> {
        if !valid_login(login) || !valid_login(name) {
            return Ok(false);
        }
        in_txn!(self, login, txn => async {
            let key = keys::policy_key(login, name);
            if txn.get_for_update(&key).await.map_err(kv_err(login))?.is_none() {
                return Ok(false);
            }
            txn.delete(key).await.map_err(kv_err(login))?;
            self.rewrite_roles(txn, login, |r| {
                let before = r.policies.len();
                r.policies.retain(|p| p != name);
                before != r.policies.len()
            })
            .await?;
            Ok(true)
        })
    }

    /// Creates or replaces a role of `login`. Every member must be a
    /// subuser of the account, every default member a member, every
    /// policy an existing policy of the account.
    pub async fn put_role(
        &self,
        login: &str,
        name: &str,
        members: &[String],
        default_members: &[String],
        policies: &[String],
    ) -> NsResult<Role> {
        check_name("account", login)?;
        check_name("role", name)?;
        if let Some(d) = default_members.iter().find(|d| !members.contains(d)) {
            return Err(NamespaceError::InvalidArgument(format!(
                "default member {d} is not a member of role {name}"
            )));
        }
        in_txn!(self, login, txn => async {
            require_account(txn, login).await?;
            for m in members {
                if !valid_login(m)
                    || txn
                        .get(&keys::subuser_key(login, m))
                        .await
                        .map_err(kv_err(login))?
                        .is_none()
                {
                    return Err(NamespaceError::SubuserNotFound(format!("{login}/{m}")));
                }
            }
            for p in policies {
                if !valid_login(p)
                    || txn
                        .get(&keys::policy_key(login, p))
                        .await
                        .map_err(kv_err(login))?
                        .is_none()
                {
                    return Err(NamespaceError::InvalidArgument(format!(
                        "policy {p} does not exist in account {login}"
                    )));
                }
            }
            let key = keys::role_key(login, name);
            let uuid = match txn.get_for_update(&key).await.map_err(kv_err(login))? {
                Some(v) => decode::<Role>(&v)?.uuid,
                None => Uuid::new_v4(),
            };
            let dedup = |v: &[String]| {
                let mut out: Vec<String> = Vec::new();
                for x in v {
                    if !out.contains(x) {
                        out.push(x.clone());
                    }
                }
                out
            };
            let r = Role {
                login: login.to_owned(),
                name: name.to_owned(),
                uuid,
                members: dedup(members),
                default_members: dedup(default_members),
                policies: dedup(policies),
            };
            txn.put(key, encode(&r)).await.map_err(kv_err(login))?;
            Ok(r)
        })
    }

    /// A role, if it exists.
    pub async fn get_role(&self, login: &str, name: &str) -> NsResult<Option<Role>> {
        if !valid_login(login) || !valid_login(name) {
            return Ok(None);
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        match snap
            .get(&keys::role_key(login, name))
            .await
            .map_err(kv_err(login))?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// All roles of an account, by name.
    pub async fn list_roles(&self, login: &str) -> NsResult<Vec<Role>> {
        if !valid_login(login) {
            return Ok(Vec::new());
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        scan_all(&mut *snap, keys::roles_range(login))
            .await?
            .iter()
            .map(|v| decode(v))
            .collect()
    }

    /// Removes a role. `false` if it did not exist. Tags naming it stay on
    /// entries but grant nothing (and are dropped from answers).
    pub async fn delete_role(&self, login: &str, name: &str) -> NsResult<bool> {
        if !valid_login(login) || !valid_login(name) {
            return Ok(false);
        }
        in_txn!(self, login, txn => async {
            let key = keys::role_key(login, name);
            if txn.get_for_update(&key).await.map_err(kv_err(login))?.is_none() {
                return Ok(false);
            }
            txn.delete(key).await.map_err(kv_err(login))?;
            Ok(true)
        })
    }

    /// Removes a subuser, its SSH keys, and its role memberships. `false`
    /// if it did not exist.
    pub async fn delete_subuser(&self, login: &str, name: &str) -> NsResult<bool> {
        if !valid_login(login) || !valid_login(name) {
            return Ok(false);
        }
        in_txn!(self, login, txn => async {
            let key = keys::subuser_key(login, name);
            if txn.get_for_update(&key).await.map_err(kv_err(login))?.is_none() {
                return Ok(false);
            }
            txn.delete(key).await.map_err(kv_err(login))?;
            for range in [
                keys::ssh_keys_range(login, Some(name)),
                KeyRange::prefix(&keys::ssh_key_sha256_key(login, Some(name), "")),
            ] {
                let rows = txn.scan(range, CHUNK, Order::Asc).await.map_err(kv_err(login))?;
                for (k, _) in rows {
                    txn.delete(k).await.map_err(kv_err(login))?;
                }
            }
            self.rewrite_roles(txn, login, |r| {
                let before = r.members.len() + r.default_members.len();
                r.members.retain(|m| m != name);
                r.default_members.retain(|m| m != name);
                before != r.members.len() + r.default_members.len()
            })
            .await?;
            Ok(true)
        })
    }

    /// Applies `change` to every role of `login`, writing those it changed.
    async fn rewrite_roles(
        &self,
        txn: &mut dyn Txn,
        login: &str,
        change: impl Fn(&mut Role) -> bool,
    ) -> NsResult<()> {
        let mut range = keys::roles_range(login);
        loop {
            let rows = txn
                .scan(range.clone(), CHUNK, Order::Asc)
                .await
                .map_err(kv_err(login))?;
            let full = rows.len() == CHUNK;
            if let Some((k, _)) = rows.last() {
                range.start = std::ops::Bound::Excluded(k.clone());
            }
            for (k, v) in rows {
                let mut r: Role = decode(&v)?;
                if change(&mut r) {
                    txn.put(k, encode(&r)).await.map_err(kv_err(login))?;
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The roles `subuser` of `login` is a member of, with their policies,
    /// from one snapshot (one scan of the account's roles, one read per
    /// policy). Policies a role names but that are gone are left out.
    pub async fn subuser_access(&self, login: &str, subuser: &str) -> NsResult<SubuserAccess> {
        if !valid_login(login) || !valid_login(subuser) {
            return Ok(SubuserAccess::default());
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        let mut roles = Vec::new();
        for v in scan_all(&mut *snap, keys::roles_range(login)).await? {
            let role: Role = decode(&v)?;
            if !role.members.iter().any(|m| m == subuser) {
                continue;
            }
            let mut policies = Vec::new();
            for p in &role.policies {
                if let Some(v) = snap
                    .get(&keys::policy_key(login, p))
                    .await
                    .map_err(kv_err(login))?
                {
                    policies.push(decode(&v)?);
                }
            }
            roles.push((role, policies));
        }
        Ok(SubuserAccess { roles })
    }
}
