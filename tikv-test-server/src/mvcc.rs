//! The in-memory Percolator store behind the test TiKV: multi-version
//! values, locks, and the prewrite/commit/rollback/resolve rules TiKV applies.
//!
//! Guarantees (those a tikv-client user can observe): a read at `ts` sees
//! exactly the writes committed at or before `ts` and is blocked by a
//! prewrite lock with `start_ts <= ts`; prewrite refuses a key with a newer
//! commit or another transaction's lock; commit and rollback are idempotent
//! per `start_ts`; every request is applied all-or-nothing. Not modelled:
//! pessimistic locks, async commit, 1PC, GC of old versions.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::proto::kvrpcpb::{self, KeyError, LockInfo, Op};

/// What a committed (or rolled-back) version of a key says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WriteKind {
    Put(Vec<u8>),
    Delete,
    /// A committed `Op::Lock` mutation: no data change.
    Lock,
    /// Marks `start_ts` as rolled back, so a late prewrite/commit fails.
    Rollback,
}

#[derive(Debug, Clone)]
struct Write {
    start_ts: u64,
    commit_ts: u64,
    kind: WriteKind,
}

/// A prewrite lock.
#[derive(Debug, Clone)]
pub(crate) struct Lock {
    pub primary: Vec<u8>,
    pub start_ts: u64,
    pub ttl: u64,
    pub op: LockOp,
    pub txn_size: u64,
}

/// The mutation a lock will apply when committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LockOp {
    Put(Vec<u8>),
    Delete,
    Lock,
}

impl LockOp {
    fn into_write(self) -> WriteKind {
        match self {
            LockOp::Put(v) => WriteKind::Put(v),
            LockOp::Delete => WriteKind::Delete,
            LockOp::Lock => WriteKind::Lock,
        }
    }

    fn lock_type(&self) -> Op {
        match self {
            LockOp::Put(_) => Op::Put,
            LockOp::Delete => Op::Del,
            LockOp::Lock => Op::Lock,
        }
    }
}

/// Physical milliseconds of a TSO timestamp (`physical << 18 | logical`).
pub(crate) fn physical_ms(ts: u64) -> u64 {
    ts >> 18
}

/// Result of a point read.
#[derive(Debug, PartialEq)]
pub(crate) enum Read {
    Value(Option<Vec<u8>>),
    Locked(Box<LockInfo>),
}

/// The store.
#[derive(Debug, Default)]
pub(crate) struct Mvcc {
    /// Newest first per key.
    writes: BTreeMap<Vec<u8>, Vec<Write>>,
    locks: BTreeMap<Vec<u8>, Lock>,
}

fn lock_info(key: &[u8], l: &Lock) -> LockInfo {
    LockInfo {
        primary_lock: l.primary.clone(),
        lock_version: l.start_ts,
        key: key.to_vec(),
        lock_ttl: l.ttl,
        txn_size: l.txn_size,
        lock_type: l.op.lock_type() as i32,
        ..Default::default()
    }
}

fn locked_error(key: &[u8], l: &Lock) -> KeyError {
    KeyError {
        locked: Some(lock_info(key, l)),
        ..Default::default()
    }
}

fn abort(msg: String) -> KeyError {
    KeyError {
        abort: msg,
        ..Default::default()
    }
}

/// A write-conflict key error, as TiKV reports it for optimistic prewrite.
pub(crate) fn write_conflict(
    key: &[u8],
    primary: &[u8],
    start_ts: u64,
    commit_ts: u64,
) -> KeyError {
    KeyError {
        conflict: Some(kvrpcpb::WriteConflict {
            start_ts,
            conflict_ts: commit_ts,
            conflict_commit_ts: commit_ts,
            key: key.to_vec(),
            primary: primary.to_vec(),
            reason: kvrpcpb::write_conflict::Reason::Optimistic as i32,
        }),
        ..Default::default()
    }
}

impl Mvcc {
    /// Read `key` as of `ts`. Lock-only (`Op::Lock`) locks do not block
    /// readers, as in TiKV.
    pub fn get(&self, key: &[u8], ts: u64) -> Read {
        if let Some(l) = self.locks.get(key)
            && l.start_ts <= ts
            && l.op != LockOp::Lock
        {
            return Read::Locked(Box::new(lock_info(key, l)));
        }
        Read::Value(self.value_at(key, ts))
    }

    fn value_at(&self, key: &[u8], ts: u64) -> Option<Vec<u8>> {
        for w in self.writes.get(key)?.iter().filter(|w| w.commit_ts <= ts) {
            match &w.kind {
                WriteKind::Put(v) => return Some(v.clone()),
                WriteKind::Delete => return None,
                WriteKind::Lock | WriteKind::Rollback => {}
            }
        }
        None
    }

    /// Up to `limit` visible pairs (or locks) in `[lower, upper)`, ascending
    /// or descending; an empty `upper` is unbounded.
    pub fn scan(
        &self,
        lower: &[u8],
        upper: &[u8],
        limit: usize,
        ts: u64,
        reverse: bool,
    ) -> Vec<(Vec<u8>, Read)> {
        let range = (
            Bound::Included(lower.to_vec()),
            if upper.is_empty() {
                Bound::Unbounded
            } else {
                Bound::Excluded(upper.to_vec())
            },
        );
        let keys: BTreeSet<&Vec<u8>> = self
            .writes
            .range::<Vec<u8>, _>(range.clone())
            .map(|(k, _)| k)
            .chain(self.locks.range::<Vec<u8>, _>(range).map(|(k, _)| k))
            .collect();
        let ordered: Box<dyn Iterator<Item = &&Vec<u8>>> = if reverse {
            Box::new(keys.iter().rev())
        } else {
            Box::new(keys.iter())
        };
        let mut out = Vec::new();
        for key in ordered {
            if out.len() >= limit {
                break;
            }
            match self.get(key, ts) {
                Read::Value(None) => {}
                r => out.push(((*key).clone(), r)),
            }
        }
        out
    }

    /// Optimistic prewrite; all-or-nothing. Returns per-key errors.
    pub fn prewrite(
        &mut self,
        mutations: &[kvrpcpb::Mutation],
        primary: &[u8],
        start_ts: u64,
        ttl: u64,
        txn_size: u64,
    ) -> Vec<KeyError> {
        let mut errors = Vec::new();
        let mut new_locks = Vec::new();
        for m in mutations {
            let key = &m.key;
            if let Some(l) = self.locks.get(key) {
                if l.start_ts != start_ts {
                    errors.push(locked_error(key, l));
                }
                continue; // our own lock: a retried prewrite
            }
            let history = self.writes.get(key).map(Vec::as_slice).unwrap_or_default();
            if let Some(own) = history.iter().find(|w| w.start_ts == start_ts) {
                if own.kind == WriteKind::Rollback {
                    errors.push(abort(format!("transaction {start_ts} already rolled back")));
                }
                continue; // already committed: a retried prewrite
            }
            if let Some(newer) = history
                .iter()
                .find(|w| w.commit_ts >= start_ts && w.kind != WriteKind::Rollback)
            {
                errors.push(write_conflict(key, primary, start_ts, newer.commit_ts));
                continue;
            }
            let op = match Op::try_from(m.op) {
                Ok(Op::Put) => LockOp::Put(m.value.clone()),
                Ok(Op::Insert) => {
                    if self.value_at(key, u64::MAX).is_some() {
                        errors.push(KeyError {
                            already_exist: Some(kvrpcpb::AlreadyExist { key: key.clone() }),
                            ..Default::default()
                        });
                        continue;
                    }
                    LockOp::Put(m.value.clone())
                }
                Ok(Op::Del) => LockOp::Delete,
                Ok(Op::Lock) => LockOp::Lock,
                Ok(Op::CheckNotExists) => {
                    if self.value_at(key, u64::MAX).is_some() {
                        errors.push(KeyError {
                            already_exist: Some(kvrpcpb::AlreadyExist { key: key.clone() }),
                            ..Default::default()
                        });
                    }
                    continue;
                }
                other => {
                    errors.push(abort(format!(
                        "test server: unsupported mutation {other:?}"
                    )));
                    continue;
                }
            };
            new_locks.push((
                key.clone(),
                Lock {
                    primary: primary.to_vec(),
                    start_ts,
                    ttl,
                    op,
                    txn_size,
                },
            ));
        }
        if errors.is_empty() {
            self.locks.extend(new_locks);
        }
        errors
    }

    /// Commit `keys` of transaction `start_ts` at `commit_ts`; all-or-nothing.
    pub fn commit(&mut self, keys: &[Vec<u8>], start_ts: u64, commit_ts: u64) -> Option<KeyError> {
        for key in keys {
            match self.locks.get(key) {
                Some(l) if l.start_ts == start_ts => {}
                _ => match self.own_write(key, start_ts) {
                    Some(WriteKind::Rollback) | None => {
                        return Some(KeyError {
                            txn_not_found: Some(kvrpcpb::TxnNotFound {
                                start_ts,
                                primary_key: key.clone(),
                            }),
                            abort: format!("txn {start_ts} lock not found (rolled back?)"),
                            ..Default::default()
                        });
                    }
                    Some(_) => {} // already committed: idempotent
                },
            }
        }
        for key in keys {
            self.commit_key(key, start_ts, commit_ts);
        }
        None
    }

    fn own_write(&self, key: &[u8], start_ts: u64) -> Option<WriteKind> {
        self.writes
            .get(key)?
            .iter()
            .find(|w| w.start_ts == start_ts)
            .map(|w| w.kind.clone())
    }

    fn commit_key(&mut self, key: &[u8], start_ts: u64, commit_ts: u64) {
        if self.locks.get(key).is_some_and(|l| l.start_ts == start_ts)
            && let Some(l) = self.locks.remove(key)
        {
            self.push_write(key, start_ts, commit_ts, l.op.into_write());
        }
    }

    fn push_write(&mut self, key: &[u8], start_ts: u64, commit_ts: u64, kind: WriteKind) {
        let versions = self.writes.entry(key.to_vec()).or_default();
        let at = versions.partition_point(|w| w.commit_ts > commit_ts);
        versions.insert(
            at,
            Write {
                start_ts,
                commit_ts,
                kind,
            },
        );
    }

    /// Roll back `keys` of `start_ts`; fails if any of them committed.
    pub fn rollback(&mut self, keys: &[Vec<u8>], start_ts: u64) -> Option<KeyError> {
        for key in keys {
            if let Some(kind) = self.own_write(key, start_ts)
                && kind != WriteKind::Rollback
            {
                return Some(abort(format!("txn {start_ts} already committed")));
            }
        }
        for key in keys {
            self.rollback_key(key, start_ts);
        }
        None
    }

    fn rollback_key(&mut self, key: &[u8], start_ts: u64) {
        if self.locks.get(key).is_some_and(|l| l.start_ts == start_ts) {
            self.locks.remove(key);
        }
        if self.own_write(key, start_ts).is_none() {
            self.push_write(key, start_ts, start_ts, WriteKind::Rollback);
        }
    }

    /// TiKV's `CheckTxnStatus` on a primary key: rolls back an expired or
    /// missing primary so its secondaries can be resolved.
    pub fn check_txn_status(
        &mut self,
        primary: &[u8],
        lock_ts: u64,
        current_ts: u64,
        rollback_if_not_exist: bool,
    ) -> Result<kvrpcpb::CheckTxnStatusResponse, KeyError> {
        use kvrpcpb::Action;
        let mut resp = kvrpcpb::CheckTxnStatusResponse::default();
        if let Some(l) = self.locks.get(primary).filter(|l| l.start_ts == lock_ts) {
            if physical_ms(current_ts) >= physical_ms(lock_ts) + l.ttl {
                self.rollback_key(primary, lock_ts);
                resp.action = Action::TtlExpireRollback as i32;
            } else {
                resp.lock_ttl = l.ttl.max(1);
                resp.lock_info = Some(lock_info(primary, l));
            }
            return Ok(resp);
        }
        match self.own_write(primary, lock_ts) {
            Some(WriteKind::Rollback) => Ok(resp),
            Some(_) => {
                resp.commit_version = self
                    .writes
                    .get(primary)
                    .and_then(|ws| ws.iter().find(|w| w.start_ts == lock_ts))
                    .map_or(0, |w| w.commit_ts);
                Ok(resp)
            }
            None if rollback_if_not_exist => {
                self.rollback_key(primary, lock_ts);
                resp.action = Action::LockNotExistRollback as i32;
                Ok(resp)
            }
            None => Err(KeyError {
                txn_not_found: Some(kvrpcpb::TxnNotFound {
                    start_ts: lock_ts,
                    primary_key: primary.to_vec(),
                }),
                ..Default::default()
            }),
        }
    }

    /// Commit (`commit_ts > 0`) or roll back every lock of `start_ts`, or
    /// only those on `keys` when given.
    pub fn resolve(&mut self, start_ts: u64, commit_ts: u64, keys: &[Vec<u8>]) {
        let keys: Vec<Vec<u8>> = if keys.is_empty() {
            self.locks
                .iter()
                .filter(|(_, l)| l.start_ts == start_ts)
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            keys.to_vec()
        };
        for key in keys {
            if commit_ts == 0 {
                self.rollback_key(&key, start_ts);
            } else {
                self.commit_key(&key, start_ts, commit_ts);
            }
        }
    }

    /// Locks with `start_ts <= max_ts` in `[start, end)` (empty end: unbounded).
    pub fn scan_locks(&self, start: &[u8], end: &[u8], max_ts: u64, limit: usize) -> Vec<LockInfo> {
        let upper = if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(end.to_vec())
        };
        self.locks
            .range::<Vec<u8>, _>((Bound::Included(start.to_vec()), upper))
            .filter(|(_, l)| l.start_ts <= max_ts)
            .take(if limit == 0 { usize::MAX } else { limit })
            .map(|(k, l)| lock_info(k, l))
            .collect()
    }

    /// Extend the TTL of a live primary lock.
    pub fn heartbeat(&mut self, primary: &[u8], start_ts: u64, ttl: u64) -> Result<u64, KeyError> {
        match self.locks.get_mut(primary) {
            Some(l) if l.start_ts == start_ts => {
                l.ttl = l.ttl.max(ttl);
                Ok(l.ttl)
            }
            _ => Err(KeyError {
                txn_not_found: Some(kvrpcpb::TxnNotFound {
                    start_ts,
                    primary_key: primary.to_vec(),
                }),
                ..Default::default()
            }),
        }
    }

    /// Plant a lock directly (fault injection: a writer that crashed after
    /// prewrite).
    pub fn plant_lock(&mut self, key: &[u8], lock: Lock) {
        self.locks.insert(key.to_vec(), lock);
    }

    /// The newest committed value of `key`, ignoring locks.
    pub fn committed_value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.value_at(key, u64::MAX)
    }

    /// Number of locks currently held (for tests).
    pub fn lock_count(&self) -> usize {
        self.locks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8], v: &[u8]) -> kvrpcpb::Mutation {
        kvrpcpb::Mutation {
            op: Op::Put as i32,
            key: key.to_vec(),
            value: v.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn prewrite_commit_read() {
        let mut m = Mvcc::default();
        assert!(m.prewrite(&[put(b"a", b"1")], b"a", 10, 3000, 1).is_empty());
        assert!(matches!(m.get(b"a", 11), Read::Locked(_)));
        assert_eq!(m.get(b"a", 9), Read::Value(None));
        assert!(m.commit(&[b"a".to_vec()], 10, 12).is_none());
        assert_eq!(m.get(b"a", 11), Read::Value(None));
        assert_eq!(m.get(b"a", 12), Read::Value(Some(b"1".to_vec())));
        // Commit is idempotent.
        assert!(m.commit(&[b"a".to_vec()], 10, 12).is_none());
    }

    #[test]
    fn newer_commit_conflicts() {
        let mut m = Mvcc::default();
        assert!(m.prewrite(&[put(b"a", b"1")], b"a", 10, 3000, 1).is_empty());
        assert!(m.commit(&[b"a".to_vec()], 10, 20).is_none());
        let errs = m.prewrite(&[put(b"a", b"2")], b"a", 15, 3000, 1);
        assert!(errs[0].conflict.is_some());
        assert_eq!(m.lock_count(), 0);
    }

    #[test]
    fn expired_primary_is_rolled_back() {
        let mut m = Mvcc::default();
        let start = 1000 << 18;
        assert!(
            m.prewrite(&[put(b"p", b"1")], b"p", start, 100, 1)
                .is_empty()
        );
        let live = m
            .check_txn_status(b"p", start, start + (50 << 18), true)
            .unwrap();
        assert!(live.lock_ttl > 0);
        let dead = m
            .check_txn_status(b"p", start, start + (200 << 18), true)
            .unwrap();
        assert_eq!((dead.lock_ttl, dead.commit_version), (0, 0));
        assert!(m.commit(&[b"p".to_vec()], start, start + 1).is_some());
    }

    #[test]
    fn reverse_scan_and_limits() {
        let mut m = Mvcc::default();
        let muts: Vec<_> = [b"a", b"b", b"c"].iter().map(|k| put(*k, *k)).collect();
        assert!(m.prewrite(&muts, b"a", 1, 3000, 3).is_empty());
        let keys: Vec<_> = [b"a", b"b", b"c"].iter().map(|k| k.to_vec()).collect();
        assert!(m.commit(&keys, 1, 2).is_none());
        let got: Vec<_> = m
            .scan(b"a", b"c", 10, 5, true)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, vec![b"b".to_vec(), b"a".to_vec()]);
        assert_eq!(m.scan(b"", b"", 2, 5, false).len(), 2);
    }
}
