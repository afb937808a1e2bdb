//! Accounts, subusers and SSH keys; storage node registrations; garbage
//! collection records.
//!
//! An account is created together with its top directories in one
//! transaction, so `/:login/stor` exists exactly when the account does.
//! Key lookups accept either fingerprint form; the SHA256 form goes through
//! an index written in the same transaction as the key.

use uuid::Uuid;

use super::entries::in_txn;
use super::entries::{Step, dir_dk};
use super::records::{Sha256Index, StoredEntry, StoredGc, decode, encode};
use super::{
    Account, EntryKind, GcRecord, Headers, Namespace, NamespaceError, NodeRecord, NodeState,
    NsResult, S3Key, SshKey, Subuser,
};
use crate::keys;
use crate::kv::{KeyRange, KvError, Order, Reader, Txn};
use crate::path::{MantaPath, TopDir, valid_login};

/// Rows fetched per scan when listing whole tables.
const TABLE_CHUNK: usize = 1024;

fn kv_err(what: &str) -> impl Fn(KvError) -> NamespaceError + '_ {
    move |e| NamespaceError::from_kv(e, what)
}

/// Every row of a (small) table, paged.
async fn scan_all(r: &mut dyn Reader, mut range: KeyRange) -> NsResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    loop {
        let rows = r
            .scan(range.clone(), TABLE_CHUNK, Order::Asc)
            .await
            .map_err(kv_err("scan"))?;
        let full = rows.len() == TABLE_CHUNK;
        if let Some((k, _)) = rows.last() {
            range.start = std::ops::Bound::Excluded(k.clone());
        }
        out.extend(rows);
        if !full {
            return Ok(out);
        }
    }
}

/// Lookups with names that can never have been stored answer "absent"
/// without touching the store (and cannot alias another principal's keys).
fn principal_ok(login: &str, subuser: Option<&str>) -> bool {
    valid_login(login) && subuser.is_none_or(valid_login)
}

fn check_login(login: &str) -> NsResult<()> {
    if valid_login(login) {
        Ok(())
    } else {
        Err(crate::path::PathError::InvalidLogin(login.chars().take(64).collect()).into())
    }
}

/// Access key ids are what AWS issues (20 uppercase alphanumerics); any
/// 16..=128 of them is accepted, which keeps keys free of NUL and `/`.
fn valid_access_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn check_node_id(id: &str) -> NsResult<()> {
    if id.is_empty() || id.len() > 255 || id.contains('\0') {
        return Err(NamespaceError::InvalidArgument(format!(
            "node id must be 1..=255 bytes without NUL: {:?}",
            id.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

fn check_fingerprints(key: &SshKey) -> NsResult<()> {
    let md5_ok = key.fingerprint_md5.len() == 47
        && key.fingerprint_md5.split(':').count() == 16
        && key.fingerprint_md5.split(':').all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    let sha_ok = key
        .fingerprint_sha256
        .strip_prefix("SHA256:")
        .is_some_and(|b| !b.is_empty() && !b.contains('=') && !b.contains('\0'));
    if md5_ok && sha_ok {
        Ok(())
    } else {
        Err(NamespaceError::InvalidArgument(
            "fingerprints must be lowercase colon hex MD5 and unpadded SHA256:base64".into(),
        ))
    }
}

impl Namespace {
    // ------------------------------------------------------------ accounts

    /// Create an account and its top directories (`jobs public reports
    /// stor uploads`). Fails with [`NamespaceError::AlreadyExists`] if taken.
    /// Logins in [`crate::path::RESERVED_LOGINS`] are refused as invalid.
    pub async fn create_account(&self, login: &str) -> NsResult<Account> {
        check_login(login)?;
        if crate::path::RESERVED_LOGINS.contains(&login) {
            return Err(crate::path::PathError::InvalidLogin(format!("{login} (reserved)")).into());
        }
        in_txn!(self, login, txn => self.create_account_tx(txn, login))
    }

    async fn create_account_tx(&self, txn: &mut dyn Txn, login: &str) -> NsResult<Account> {
        let key = keys::account_key(login);
        if txn
            .get_for_update(&key)
            .await
            .map_err(kv_err(login))?
            .is_some()
        {
            return Err(NamespaceError::AlreadyExists(format!("account {login}")));
        }
        let now = self.now_ms();
        let account = Account {
            login: login.to_owned(),
            uuid: Uuid::new_v4(),
            disabled: false,
            operator: false,
            created_ms: now,
        };
        txn.put(key, encode(&account))
            .await
            .map_err(kv_err(login))?;
        let root = MantaPath::account_root(login)?;
        let rdk = dir_dk(&root);
        let mut shards = [0i64; keys::COUNT_SHARDS as usize];
        for top in TopDir::ALL {
            let stored = StoredEntry {
                mtime_ms: now,
                headers: Headers::new(),
                kind: EntryKind::Directory,
            };
            txn.put(keys::entry_key(&rdk, top.as_str()), encode(&stored))
                .await
                .map_err(kv_err(login))?;
            txn.put(keys::mtime_key(&rdk, now, top.as_str()), Vec::new())
                .await
                .map_err(kv_err(login))?;
            shards[keys::count_shard(top.as_str()) as usize] += 1;
        }
        for (s, n) in shards.iter().enumerate() {
            if *n > 0 {
                txn.put(
                    keys::count_key(&rdk, s as u8),
                    crate::kv::encode_counter(*n),
                )
                .await
                .map_err(kv_err(login))?;
            }
        }
        Ok(account)
    }

    /// The account, if it exists.
    pub async fn get_account(&self, login: &str) -> NsResult<Option<Account>> {
        if !principal_ok(login, None) {
            return Ok(None);
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        match snap
            .get(&keys::account_key(login))
            .await
            .map_err(kv_err(login))?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// All accounts, by login.
    pub async fn list_accounts(&self) -> NsResult<Vec<Account>> {
        let mut snap = self.kv.snapshot().await.map_err(kv_err("accounts"))?;
        scan_all(&mut *snap, keys::accounts_range())
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// Disable (or re-enable) an account.
    pub async fn set_account_disabled(&self, login: &str, disabled: bool) -> NsResult<Account> {
        self.update_account(login, |a| a.disabled = disabled).await
    }

    /// Make an account an operator (or an ordinary account again). The one
    /// way the flag changes: no request path of the gateway calls this.
    pub async fn set_account_operator(&self, login: &str, operator: bool) -> NsResult<Account> {
        self.update_account(login, |a| a.operator = operator).await
    }

    /// Read-modify-write of an account record in one transaction (`change`
    /// may run again when the transaction retries).
    async fn update_account(
        &self,
        login: &str,
        change: impl Fn(&mut Account) + Send + Sync,
    ) -> NsResult<Account> {
        check_login(login)?;
        in_txn!(self, login, txn => async {
            let key = keys::account_key(login);
            let Some(v) = txn.get_for_update(&key).await.map_err(kv_err(login))? else {
                return Err(NamespaceError::AccountNotFound(login.to_owned()));
            };
            let mut a: Account = decode(&v)?;
            change(&mut a);
            txn.put(key, encode(&a)).await.map_err(kv_err(login))?;
            Ok(a)
        })
    }

    /// The account if it exists and is enabled; otherwise
    /// [`NamespaceError::AccountNotFound`] or [`NamespaceError::AccountBlocked`].
    pub async fn active_account(&self, login: &str) -> NsResult<Account> {
        match self.get_account(login).await? {
            None => Err(NamespaceError::AccountNotFound(login.to_owned())),
            Some(a) if a.disabled => Err(NamespaceError::AccountBlocked(login.to_owned())),
            Some(a) => Ok(a),
        }
    }

    // ------------------------------------------------------------ subusers

    /// Create a subuser of an existing account.
    pub async fn create_subuser(&self, login: &str, name: &str) -> NsResult<Subuser> {
        check_login(login)?;
        check_login(name)?;
        in_txn!(self, login, txn => async {
            if txn.get(&keys::account_key(login)).await.map_err(kv_err(login))?.is_none() {
                return Err(NamespaceError::AccountNotFound(login.to_owned()));
            }
            let key = keys::subuser_key(login, name);
            if txn.get_for_update(&key).await.map_err(kv_err(login))?.is_some() {
                return Err(NamespaceError::AlreadyExists(format!("user {login}/{name}")));
            }
            let s = Subuser {
                login: login.to_owned(),
                name: name.to_owned(),
                uuid: Uuid::new_v4(),
                created_ms: self.now_ms(),
            };
            txn.put(key, encode(&s)).await.map_err(kv_err(login))?;
            Ok(s)
        })
    }

    /// A subuser, if it exists.
    pub async fn get_subuser(&self, login: &str, name: &str) -> NsResult<Option<Subuser>> {
        if !principal_ok(login, Some(name)) {
            return Ok(None);
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        match snap
            .get(&keys::subuser_key(login, name))
            .await
            .map_err(kv_err(login))?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// All subusers of an account.
    pub async fn list_subusers(&self, login: &str) -> NsResult<Vec<Subuser>> {
        if !principal_ok(login, None) {
            return Ok(Vec::new());
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        scan_all(&mut *snap, keys::subusers_range(login))
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    // ------------------------------------------------------------ SSH keys

    /// Register (or replace, by md5 fingerprint) an SSH key of an account
    /// (`subuser` None) or of an existing subuser.
    pub async fn add_key(&self, login: &str, subuser: Option<&str>, key: &SshKey) -> NsResult<()> {
        if !principal_ok(login, subuser) {
            return Err(NamespaceError::AccountNotFound(
                login.chars().take(64).collect(),
            ));
        }
        check_fingerprints(key)?;
        in_txn!(self, login, txn => async {
            if txn.get(&keys::account_key(login)).await.map_err(kv_err(login))?.is_none() {
                return Err(NamespaceError::AccountNotFound(login.to_owned()));
            }
            if let Some(s) = subuser
                && txn.get(&keys::subuser_key(login, s)).await.map_err(kv_err(login))?.is_none()
            {
                return Err(NamespaceError::SubuserNotFound(format!("{login}/{s}")));
            }
            let k = keys::ssh_key_key(login, subuser, &key.fingerprint_md5);
            txn.put(k, encode(key)).await.map_err(kv_err(login))?;
            let idx = Sha256Index { md5: key.fingerprint_md5.clone() };
            txn.put(keys::ssh_key_sha256_key(login, subuser, &key.fingerprint_sha256), encode(&idx))
                .await
                .map_err(kv_err(login))?;
            Ok(())
        })
    }

    /// Remove a key by md5 fingerprint; returns whether it existed.
    pub async fn remove_key(
        &self,
        login: &str,
        subuser: Option<&str>,
        md5_fp: &str,
    ) -> NsResult<bool> {
        if !principal_ok(login, subuser) {
            return Ok(false);
        }
        in_txn!(self, login, txn => async {
            let k = keys::ssh_key_key(login, subuser, md5_fp);
            let Some(v) = txn.get_for_update(&k).await.map_err(kv_err(login))? else {
                return Ok(false);
            };
            let key: SshKey = decode(&v)?;
            txn.delete(k).await.map_err(kv_err(login))?;
            txn.delete(keys::ssh_key_sha256_key(login, subuser, &key.fingerprint_sha256))
                .await
                .map_err(kv_err(login))?;
            Ok(true)
        })
    }

    /// Look a key up by fingerprint: `SHA256:...` form or lowercase colon
    /// hex md5 (as found in an HTTP Signature keyId).
    pub async fn get_key(
        &self,
        login: &str,
        subuser: Option<&str>,
        fingerprint: &str,
    ) -> NsResult<Option<SshKey>> {
        if !principal_ok(login, subuser) {
            return Ok(None);
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        let md5 = if fingerprint.starts_with("SHA256:") {
            match snap
                .get(&keys::ssh_key_sha256_key(login, subuser, fingerprint))
                .await
                .map_err(kv_err(login))?
            {
                Some(v) => decode::<Sha256Index>(&v)?.md5,
                None => return Ok(None),
            }
        } else {
            fingerprint.to_ascii_lowercase()
        };
        match snap
            .get(&keys::ssh_key_key(login, subuser, &md5))
            .await
            .map_err(kv_err(login))?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// All keys of an account (`subuser` None) or subuser.
    pub async fn list_keys(&self, login: &str, subuser: Option<&str>) -> NsResult<Vec<SshKey>> {
        if !principal_ok(login, subuser) {
            return Ok(Vec::new());
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        scan_all(&mut *snap, keys::ssh_keys_range(login, subuser))
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    // ------------------------------------------------------------ S3 keys

    /// Register an S3 access key for an existing account. Fails with
    /// [`NamespaceError::AlreadyExists`] if the id is taken (by anyone).
    pub async fn add_s3_key(&self, key: &S3Key) -> NsResult<()> {
        check_login(&key.login)?;
        if !valid_access_key_id(&key.access_key_id) || key.secret.is_empty() {
            return Err(NamespaceError::InvalidArgument(
                "an S3 access key id is 16..=128 uppercase letters and digits, with a secret"
                    .into(),
            ));
        }
        let login = key.login.as_str();
        in_txn!(self, login, txn => async {
            if txn.get(&keys::account_key(login)).await.map_err(kv_err(login))?.is_none() {
                return Err(NamespaceError::AccountNotFound(login.to_owned()));
            }
            let k = keys::s3_key_key(&key.access_key_id);
            if txn.get_for_update(&k).await.map_err(kv_err(login))?.is_some() {
                return Err(NamespaceError::AlreadyExists(format!("S3 key {}", key.access_key_id)));
            }
            txn.put(k, encode(key)).await.map_err(kv_err(login))?;
            txn.put(keys::s3_key_index_key(login, &key.access_key_id), Vec::new())
                .await
                .map_err(kv_err(login))?;
            Ok(())
        })
    }

    /// The S3 key with this access key id, whoever owns it.
    pub async fn get_s3_key(&self, access_key_id: &str) -> NsResult<Option<S3Key>> {
        if !valid_access_key_id(access_key_id) {
            return Ok(None);
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(access_key_id))?;
        match snap
            .get(&keys::s3_key_key(access_key_id))
            .await
            .map_err(kv_err(access_key_id))?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// An account's S3 keys, by id.
    pub async fn list_s3_keys(&self, login: &str) -> NsResult<Vec<S3Key>> {
        if !valid_login(login) {
            return Ok(Vec::new());
        }
        let mut snap = self.kv.snapshot().await.map_err(kv_err(login))?;
        let rows = scan_all(&mut *snap, keys::s3_key_index_range(login)).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, _) in rows {
            let Some(id) = keys::s3_key_index_id(login, &k) else {
                continue;
            };
            if let Some(v) = snap
                .get(&keys::s3_key_key(&String::from_utf8_lossy(id)))
                .await
                .map_err(kv_err(login))?
            {
                out.push(decode(&v)?);
            }
        }
        Ok(out)
    }

    /// Remove an S3 key of `login`; false if it does not exist or belongs
    /// to another account.
    pub async fn remove_s3_key(&self, login: &str, access_key_id: &str) -> NsResult<bool> {
        if !valid_login(login) || !valid_access_key_id(access_key_id) {
            return Ok(false);
        }
        in_txn!(self, login, txn => async {
            let k = keys::s3_key_key(access_key_id);
            let Some(v) = txn.get_for_update(&k).await.map_err(kv_err(login))? else {
                return Ok(false);
            };
            let key: S3Key = decode(&v)?;
            if key.login != login {
                return Ok(false);
            }
            txn.delete(k).await.map_err(kv_err(login))?;
            txn.delete(keys::s3_key_index_key(login, access_key_id))
                .await
                .map_err(kv_err(login))?;
            Ok(true)
        })
    }

    // ------------------------------------------------------------ nodes

    /// Register or replace a storage node record.
    pub async fn register_node(&self, node: &NodeRecord) -> NsResult<()> {
        check_node_id(&node.id)?;
        in_txn!(self, &node.id, txn => async {
            txn.put(keys::node_key(&node.id), encode(node))
                .await
                .map_err(kv_err(&node.id))
        })
    }

    /// Record a heartbeat with current capacity; returns the updated record.
    pub async fn heartbeat(&self, id: &str, used: u64, total: u64) -> NsResult<NodeRecord> {
        self.heartbeat_with_pool(id, used, total, None).await
    }

    /// [`Namespace::heartbeat`] that also records the health of the ZFS
    /// pool under the node (`None` leaves the recorded one).
    pub async fn heartbeat_with_pool(
        &self,
        id: &str,
        used: u64,
        total: u64,
        pool_health: Option<&str>,
    ) -> NsResult<NodeRecord> {
        check_node_id(id)?;
        in_txn!(self, id, txn => async {
            let key = keys::node_key(id);
            let Some(v) = txn.get_for_update(&key).await.map_err(kv_err(id))? else {
                return Err(NamespaceError::NodeNotFound(id.to_owned()));
            };
            let mut n: NodeRecord = decode(&v)?;
            n.capacity_used = used;
            n.capacity_total = total;
            n.heartbeat_ms = self.now_ms();
            if let Some(h) = pool_health {
                n.pool_health = Some(h.to_owned());
            }
            txn.put(key, encode(&n)).await.map_err(kv_err(id))?;
            Ok(n)
        })
    }

    /// Change a node's state.
    pub async fn set_node_state(&self, id: &str, state: NodeState) -> NsResult<NodeRecord> {
        check_node_id(id)?;
        in_txn!(self, id, txn => async {
            let key = keys::node_key(id);
            let Some(v) = txn.get_for_update(&key).await.map_err(kv_err(id))? else {
                return Err(NamespaceError::NodeNotFound(id.to_owned()));
            };
            let mut n: NodeRecord = decode(&v)?;
            n.state = state;
            txn.put(key, encode(&n)).await.map_err(kv_err(id))?;
            Ok(n)
        })
    }

    /// One node's record.
    pub async fn get_node(&self, id: &str) -> NsResult<Option<NodeRecord>> {
        check_node_id(id)?;
        let mut snap = self.kv.snapshot().await.map_err(kv_err(id))?;
        match snap.get(&keys::node_key(id)).await.map_err(kv_err(id))? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// All registered nodes, by id.
    pub async fn list_nodes(&self) -> NsResult<Vec<NodeRecord>> {
        let mut snap = self.kv.snapshot().await.map_err(kv_err("nodes"))?;
        scan_all(&mut *snap, keys::nodes_range())
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    // ------------------------------------------------------------ GC

    /// Up to `limit` copies waiting for deletion on `node`, oldest first,
    /// leaving out copies of objects a running job's task has pinned (they
    /// are returned by a later call, once the pins are gone). Only the
    /// oldest `4 * limit` records are looked at, so many pinned records can
    /// delay younger ones until their jobs finish; nothing is lost.
    pub async fn gc_pending(&self, node: &str, limit: usize) -> NsResult<Vec<GcRecord>> {
        check_node_id(node)?;
        let mut snap = self.kv.snapshot().await.map_err(kv_err(node))?;
        let rows = snap
            .scan(keys::gc_range(node), limit.saturating_mul(4), Order::Asc)
            .await
            .map_err(kv_err(node))?;
        let mut out = Vec::new();
        for (_, v) in &rows {
            if out.len() >= limit {
                break;
            }
            let g: StoredGc = decode(v)?;
            // Same snapshot as the record: a pin committed before the
            // record (the only order a pin can have, see `crate::jobs`)
            // is seen here.
            if pinned(&mut *snap, &g.object_id).await? {
                continue;
            }
            out.push(GcRecord {
                node: g.node,
                object_id: g.object_id,
                recorded_ms: g.recorded_ms,
            });
        }
        Ok(out)
    }

    /// True while an unfinished job task holds a pin on `object`'s copies:
    /// they must not be deleted yet even if no name refers to them.
    pub async fn is_pinned(&self, object: &Uuid) -> NsResult<bool> {
        let mut snap = self.kv.snapshot().await.map_err(kv_err("pins"))?;
        pinned(&mut *snap, object).await
    }

    /// Forget GC records whose copies have been deleted (idempotent).
    pub async fn gc_done(&self, records: &[GcRecord]) -> NsResult<()> {
        for r in records {
            check_node_id(&r.node)?;
        }
        in_txn!(self, "gc", txn => async {
            for r in records {
                txn.delete(keys::gc_key(&r.node, r.recorded_ms, &r.object_id))
                    .await
                    .map_err(kv_err("gc"))?;
            }
            Ok(())
        })
    }
}

async fn pinned(r: &mut dyn Reader, object: &Uuid) -> NsResult<bool> {
    let rows = r
        .scan(keys::pins_of(object), 1, Order::Asc)
        .await
        .map_err(kv_err("pins"))?;
    Ok(!rows.is_empty())
}
