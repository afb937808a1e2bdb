//! What the background workers (audit, repair, scrub) need from metadata:
//! a paged scan of every object name with its copies, a compare-and-set of
//! one name's copy list, and the status records workers publish so an
//! operator sees (and pauses) them from any process.
//!
//! Guarantees:
//! - [`Namespace::scan_objects`] visits every object name that exists for
//!   the whole scan exactly once (pages are separate snapshots, so names
//!   created or removed meanwhile may or may not appear);
//! - [`Namespace::set_copies`] changes a name's copies only if the name
//!   still holds the same object with the same copies as when it was
//!   scanned, and writes GC records for the copies it drops in the same
//!   transaction: a repair racing an overwrite or delete changes nothing,
//!   and never frees bytes a name refers to;
//! - a worker's record keeps the operator's pause flag across the worker's
//!   own updates.

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::entries::{Step, in_txn, put_gc_record};
use super::records::{ObjectRecord, StoredEntry, decode, encode};
use super::{EntryKind, Namespace, NamespaceError, NodeId, NsResult};
use crate::keys;
use crate::kv::{KeyRange, KvError, Order, Txn};

fn kv_err(what: &str) -> impl Fn(KvError) -> NamespaceError + '_ {
    move |e| NamespaceError::from_kv(e, what)
}

/// One object name as a background worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCopies {
    /// The name's key (opaque; where [`Namespace::set_copies`] writes).
    pub key: Vec<u8>,
    /// The object (also shared by snaplinks).
    pub object_id: Uuid,
    /// Size in bytes.
    pub size: u64,
    /// Hex blake3 of the bytes.
    pub blake3: String,
    /// Nodes recorded as holding a copy.
    pub copies: Vec<NodeId>,
    /// Copies asked for.
    pub durability: u8,
    /// Shared with other names through a snaplink.
    pub linked: bool,
}

/// One page of [`Namespace::scan_objects`].
#[derive(Debug, Clone, Default)]
pub struct ObjectPage {
    /// Object names in key order (directories are skipped).
    pub objects: Vec<ObjectCopies>,
    /// Where the next page starts; `None` once the scan is complete.
    pub next: Option<Vec<u8>>,
}

/// A background worker's published status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Where it runs: a node id, or a process name.
    pub scope: String,
    /// Its name (`audit`, `repair`, ...).
    pub name: String,
    /// `idle`, `running`, `paused` or `failing`.
    pub state: String,
    /// What the current or last pass did, for people.
    pub progress: String,
    /// The last error, if the last pass failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Passes completed.
    pub passes: u64,
    /// When this record was written, ms since the epoch.
    pub updated_ms: u64,
    /// Set by an operator: the worker runs no pass while set.
    #[serde(default)]
    pub paused: bool,
}

fn check_worker_id(scope: &str, name: &str) -> NsResult<()> {
    for s in [scope, name] {
        if s.is_empty() || s.len() > 255 || s.contains('\0') {
            return Err(NamespaceError::InvalidArgument(format!(
                "worker scope and name must be 1..=255 bytes without NUL: {:?}",
                s.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(())
}

impl Namespace {
    /// Up to `limit` rows of the directory table after `after` (a page's
    /// `next`), with the object names among them.
    pub async fn scan_objects(&self, after: Option<&[u8]>, limit: usize) -> NsResult<ObjectPage> {
        let all = keys::all_directories_range();
        let range = match after {
            Some(a) => KeyRange::bounds(Bound::Excluded(a.to_vec()), all.end),
            None => all,
        };
        let limit = limit.max(1);
        let mut snap = self.kv.snapshot().await.map_err(kv_err("scan"))?;
        let rows = snap
            .scan(range, limit, Order::Asc)
            .await
            .map_err(kv_err("scan"))?;
        let next = (rows.len() == limit).then(|| rows[rows.len() - 1].0.clone());
        let mut objects = Vec::new();
        for (key, value) in rows {
            if keys::any_entry_name(&key).is_none() {
                continue;
            }
            let stored: StoredEntry = decode(&value)?;
            if let EntryKind::Object(o) = stored.kind {
                objects.push(ObjectCopies {
                    key,
                    object_id: o.object_id,
                    size: o.size,
                    blake3: o.blake3,
                    copies: o.copies,
                    durability: o.durability,
                    linked: o.linked,
                });
            }
        }
        Ok(ObjectPage { objects, next })
    }

    /// Sets the copies of the name `seen` was scanned from to `copies`, if
    /// it still holds the same object with the same copies; writes a GC
    /// record for each node of `freed` (copies to delete, e.g. from a
    /// draining node). Returns whether it changed anything.
    pub async fn set_copies(
        &self,
        seen: &ObjectCopies,
        copies: &[NodeId],
        freed: &[NodeId],
    ) -> NsResult<bool> {
        if keys::any_entry_name(&seen.key).is_none() {
            return Err(NamespaceError::InvalidArgument(
                "not an object name's key".into(),
            ));
        }
        let what = "set copies";
        in_txn!(self, what, txn => async {
            let Some(v) = txn.get_for_update(&seen.key).await.map_err(kv_err(what))? else {
                return Ok(false);
            };
            let mut stored: StoredEntry = decode(&v)?;
            let EntryKind::Object(o) = &mut stored.kind else {
                return Ok(false);
            };
            if o.object_id != seen.object_id || o.copies != seen.copies {
                return Ok(false);
            }
            o.copies = copies.to_vec();
            if o.linked {
                let rkey = keys::object_key(&o.object_id);
                if let Some(rv) = txn.get_for_update(&rkey).await.map_err(kv_err(what))? {
                    let mut rec: ObjectRecord = decode(&rv)?;
                    // The record is what the last release frees: it must
                    // know every copy any of the object's names points at.
                    for c in copies {
                        if !rec.copies.contains(c) {
                            rec.copies.push(c.clone());
                        }
                    }
                    txn.put(rkey, encode(&rec)).await.map_err(kv_err(what))?;
                }
            }
            let now = self.now_ms();
            for node in freed {
                put_gc_record(txn, node, seen.object_id, now).await?;
            }
            // Same mtime: the mtime index row stays valid.
            txn.put(seen.key.clone(), encode(&stored))
                .await
                .map_err(kv_err(what))?;
            Ok(true)
        })
    }

    /// Publishes a worker's status; returns whether an operator asked it
    /// to pause (the record's pause flag is kept, whatever `rec` says).
    pub async fn put_worker(&self, rec: &WorkerRecord) -> NsResult<bool> {
        check_worker_id(&rec.scope, &rec.name)?;
        let key = keys::worker_key(&rec.scope, &rec.name);
        in_txn!(self, "worker", txn => async {
            let paused = match txn.get_for_update(&key).await.map_err(kv_err("worker"))? {
                Some(v) => decode::<WorkerRecord>(&v)?.paused,
                None => false,
            };
            let mut rec = rec.clone();
            rec.paused = paused;
            txn.put(key.clone(), encode(&rec)).await.map_err(kv_err("worker"))?;
            Ok(paused)
        })
    }

    /// Every published worker status, by scope then name.
    pub async fn list_workers(&self) -> NsResult<Vec<WorkerRecord>> {
        let mut snap = self.kv.snapshot().await.map_err(kv_err("workers"))?;
        let mut out = Vec::new();
        let mut range = keys::workers_range();
        loop {
            let rows = snap
                .scan(range.clone(), 1024, Order::Asc)
                .await
                .map_err(kv_err("workers"))?;
            for (_, v) in &rows {
                out.push(decode(v)?);
            }
            match rows.last() {
                Some((k, _)) if rows.len() == 1024 => {
                    range = KeyRange::bounds(Bound::Excluded(k.clone()), range.end);
                }
                _ => return Ok(out),
            }
        }
    }

    /// Sets an operator's pause flag on the workers named `name` in
    /// `scope` (every scope when `None`); returns how many it changed.
    pub async fn set_worker_paused(
        &self,
        scope: Option<&str>,
        name: &str,
        paused: bool,
    ) -> NsResult<usize> {
        let targets: Vec<WorkerRecord> = self
            .list_workers()
            .await?
            .into_iter()
            .filter(|w| w.name == name && scope.is_none_or(|s| s == w.scope))
            .collect();
        in_txn!(self, "worker", txn => async {
            let mut changed = 0;
            for w in &targets {
                let key = keys::worker_key(&w.scope, &w.name);
                if let Some(v) = txn.get_for_update(&key).await.map_err(kv_err("worker"))? {
                    let mut rec: WorkerRecord = decode(&v)?;
                    rec.paused = paused;
                    txn.put(key, encode(&rec)).await.map_err(kv_err("worker"))?;
                    changed += 1;
                }
            }
            Ok(changed)
        })
    }
}
