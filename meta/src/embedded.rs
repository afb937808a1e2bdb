//! The embedded single-machine backend: the [`Kv`] trait on one redb file.
//!
//! Why redb (4.x): a pure-Rust, single-file, copy-on-write B-tree with ACID
//! transactions, MVCC read snapshots that never block the writer, and
//! `Durability::Immediate` (fsync on commit) by default — exactly the
//! ordered byte map plus snapshots we need, with no C toolchain (RocksDB) and
//! no WAL to tune (sled is unmaintained). Version 4 is the current release;
//! its API is stable for the subset used here.
//!
//! Transactions are optimistic on top of redb's single writer:
//! - `begin` takes a redb read snapshot and remembers the commit sequence
//!   number it reflects (`start`);
//! - reads come from that snapshot merged with the transaction's buffered
//!   writes (read-your-writes);
//! - `commit` hands the buffered writes to one committer thread. If any key
//!   this transaction wrote, deleted or locked (`get_for_update`/`lock`) was
//!   written or locked by a transaction that committed after `start`, it
//!   fails with [`KvError::Conflict`] (first committer wins, i.e. snapshot
//!   isolation with locking reads); otherwise its writes go into a redb
//!   write transaction committed with fsync, so they survive kill -9.
//! - Counter adds ([`Txn::add`]) are buffered as deltas and applied to the
//!   value current at commit, so adders of one key never conflict with each
//!   other; an add conflicts only with a write, delete or lock of its key
//!   (in either order), which is what keeps `rmdir` (which deletes its
//!   directory's count shards) safe against a create racing it.
//! - Group commit: the committer takes every request already queued, checks
//!   them in arrival order (a later request that touches a key an earlier
//!   one in the batch touched conflicts, exactly as if they had committed
//!   one by one), and applies the survivors in ONE redb transaction and one
//!   fsync. Concurrent writers therefore share fsyncs instead of queueing
//!   behind each other's.
//!
//! The sequence number is read *before* the snapshot is opened and bumped
//! only *after* redb's commit returns, so a snapshot is never older than its
//! `start` (a race can only produce a spurious conflict, never a lost one).
//! The per-key "last written at" table lives in memory: it only needs to
//! cover transactions still running, and is pruned below the oldest one.
//!
//! Commits run on the dedicated committer thread (joined when the last
//! handle to the store is dropped, so the file can be reopened at once);
//! opening the file, batch reads and long scans on tokio's blocking pool
//! (`spawn_blocking`). Opening a snapshot, point reads and short scans run
//! inline on the caller's thread: they touch a few B-tree pages that are
//! almost always in redb's own cache (or else in the page cache, one
//! `pread` each), and handing each to the blocking pool and back cost more
//! than the read itself (a small anonymous GET made about eight such
//! hand-offs; issue 17's profile found them at the top of its time). A read
//! that misses both caches holds one async worker for one disk read.

use std::collections::HashSet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};

use crate::kv::{
    BoxError, KeyRange, Kv, KvError, KvPair, KvResult, MAX_KEY_LEN, Order, Reader, Snapshot, Txn,
    counter_plus, decode_counter,
};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// A buffered write: `None` is a delete.
type Buffered = (Vec<u8>, Option<Vec<u8>>);

/// Prune the version table when it grows past this many keys.
const PRUNE_THRESHOLD: usize = 4096;

/// Most transactions folded into one redb commit.
const MAX_BATCH: usize = 256;

/// Scans asking for at most this many rows, and batch reads of at most
/// this many keys, run inline (see the module documentation); larger ones
/// on the blocking pool.
const INLINE_ROWS: usize = 64;

fn backend<E: Into<BoxError>>(e: E) -> KvError {
    KvError::Backend(e.into())
}

/// Run blocking redb work off the async workers.
async fn blocking<T, F>(f: F) -> KvResult<T>
where
    F: FnOnce() -> KvResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(backend)?
}

/// Commit bookkeeping for conflict detection.
#[derive(Default)]
struct State {
    /// Sequence number of the last successful commit.
    seq: u64,
    /// Key → sequence number of the last commit that wrote, locked or
    /// added to it.
    versions: HashMap<Vec<u8>, u64>,
    /// Key → sequence number of the last commit that wrote or locked it
    /// (what an add conflicts with).
    plain_versions: HashMap<Vec<u8>, u64>,
    /// Start sequence numbers of running transactions (with multiplicity).
    active: BTreeMap<u64, usize>,
}

/// One transaction waiting for the committer.
struct CommitRequest {
    start: u64,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    locks: BTreeSet<Vec<u8>>,
    /// Counter deltas, on keys not in `writes` (a locked key's add is
    /// checked for conflicts like a write).
    adds: BTreeMap<Vec<u8>, i64>,
    reply: tokio::sync::oneshot::Sender<KvResult<()>>,
}

fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // State is updated in single steps under the lock; a panic elsewhere
    // cannot leave it half-written, so a poisoned lock is still usable.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

struct Inner {
    db: Arc<Database>,
    state: Arc<Mutex<State>>,
    /// `None` only while dropping.
    committer: Option<mpsc::Sender<CommitRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel stops the committer after its current batch;
        // joining it releases its handle on the database file.
        self.committer.take();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("embedded metadata committer panicked");
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    fn register(&self) -> u64 {
        let mut s = self.state();
        let start = s.seq;
        *s.active.entry(start).or_default() += 1;
        start
    }

    fn unregister(&self, start: u64) {
        let mut s = self.state();
        if let Some(n) = s.active.get_mut(&start) {
            *n -= 1;
            if *n == 0 {
                s.active.remove(&start);
            }
        }
    }
}

/// The embedded backend; clone-free, share it as `Arc<EmbeddedKv>` /
/// `Arc<dyn Kv>`.
pub struct EmbeddedKv {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKv").finish_non_exhaustive()
    }
}

impl EmbeddedKv {
    /// Open (or create) the database file at `path`. Only one `EmbeddedKv`
    /// may have a file open at a time (redb locks it).
    pub async fn open(path: impl AsRef<Path>) -> KvResult<Self> {
        let path = path.as_ref().to_path_buf();
        let db = blocking(move || {
            let db = Database::create(&path).map_err(backend)?;
            // Make sure the table exists so read snapshots can open it.
            let w = db.begin_write().map_err(backend)?;
            w.open_table(TABLE).map_err(backend)?;
            w.commit().map_err(backend)?;
            Ok(db)
        })
        .await?;
        let db = Arc::new(db);
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = mpsc::channel();
        let thread = {
            let (db, state) = (db.clone(), state.clone());
            std::thread::Builder::new()
                .name("meta-committer".into())
                .spawn(move || run_committer(&db, &state, &rx))
                .map_err(backend)?
        };
        Ok(EmbeddedKv {
            inner: Arc::new(Inner {
                db,
                state,
                committer: Some(tx),
                thread: Some(thread),
            }),
        })
    }

    /// Inline: redb opens a read transaction without waiting for the
    /// writer (a short lock and the root page, which is cached).
    fn open_snapshot(&self) -> KvResult<Arc<RedbSnap>> {
        let txn = self.inner.db.begin_read().map_err(backend)?;
        let table = txn.open_table(TABLE).map_err(backend)?;
        Ok(Arc::new(RedbSnap { table, _txn: txn }))
    }
}

/// A redb read snapshot with the table opened.
struct RedbSnap {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    _txn: ReadTransaction,
}

impl RedbSnap {
    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        Ok(self
            .table
            .get(key)
            .map_err(backend)?
            .map(|g| g.value().to_vec()))
    }

    /// Scan `range` in `order`, merged with `overlay` (buffered writes in
    /// the same range, ascending; `None` = deleted), up to `limit` rows.
    fn scan(
        &self,
        range: &KeyRange,
        limit: usize,
        order: Order,
        overlay: Vec<Buffered>,
    ) -> KvResult<Vec<KvPair>> {
        let mut out = Vec::new();
        if limit == 0 || range.is_empty() {
            return Ok(out);
        }
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (as_ref(&range.start), as_ref(&range.end));
        let iter = self.table.range::<&[u8]>(bounds).map_err(backend)?;
        let mut db: Box<dyn Iterator<Item = _>> = match order {
            Order::Asc => Box::new(iter),
            Order::Desc => Box::new(iter.rev()),
        };
        let mut ov: Box<dyn Iterator<Item = Buffered>> = match order {
            Order::Asc => Box::new(overlay.into_iter()),
            Order::Desc => Box::new(overlay.into_iter().rev()),
        };
        let first_before = |a: &[u8], b: &[u8]| match order {
            Order::Asc => a < b,
            Order::Desc => a > b,
        };
        let mut next_db = || -> KvResult<Option<KvPair>> {
            match db.next() {
                None => Ok(None),
                Some(r) => {
                    let (k, v) = r.map_err(backend)?;
                    Ok(Some((k.value().to_vec(), v.value().to_vec())))
                }
            }
        };
        let mut d = next_db()?;
        let mut o = ov.next();
        while out.len() < limit {
            match (&d, &o) {
                (None, None) => break,
                (Some(_), None) => {
                    out.extend(d.take());
                    d = next_db()?;
                }
                (Some((dk, _)), Some((ok, _))) if first_before(dk, ok) => {
                    out.extend(d.take());
                    d = next_db()?;
                }
                (Some((dk, _)), Some((ok, _))) => {
                    // The overlay shadows the stored value of the same key.
                    if dk == ok {
                        d = next_db()?;
                    }
                    if let Some((k, Some(v))) = o.take() {
                        out.push((k, v));
                    }
                    o = ov.next();
                }
                (None, Some(_)) => {
                    if let Some((k, Some(v))) = o.take() {
                        out.push((k, v));
                    }
                    o = ov.next();
                }
            }
        }
        Ok(out)
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn check_key(key: &[u8]) -> KvResult<()> {
    if key.len() > MAX_KEY_LEN {
        Err(KvError::KeyTooLarge(key.len()))
    } else {
        Ok(())
    }
}

async fn snap_batch_get(snap: &Arc<RedbSnap>, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
    if keys.len() <= INLINE_ROWS {
        return keys.iter().map(|k| snap.get(k)).collect();
    }
    let snap = snap.clone();
    let keys = keys.to_vec();
    blocking(move || keys.iter().map(|k| snap.get(k)).collect()).await
}

async fn snap_scan(
    snap: &Arc<RedbSnap>,
    range: KeyRange,
    limit: usize,
    order: Order,
    overlay: Vec<Buffered>,
) -> KvResult<Vec<KvPair>> {
    if limit <= INLINE_ROWS {
        return snap.scan(&range, limit, order, overlay);
    }
    let snap = snap.clone();
    blocking(move || snap.scan(&range, limit, order, overlay)).await
}

/// A read-only snapshot of the embedded store.
struct EmbeddedSnapshot {
    snap: Arc<RedbSnap>,
}

#[async_trait]
impl Reader for EmbeddedSnapshot {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.snap.get(key)
    }

    async fn batch_get(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        snap_batch_get(&self.snap, keys).await
    }

    async fn scan(&mut self, range: KeyRange, limit: usize, order: Order) -> KvResult<Vec<KvPair>> {
        snap_scan(&self.snap, range, limit, order, Vec::new()).await
    }
}

impl Snapshot for EmbeddedSnapshot {}

/// An optimistic transaction; see the module documentation.
struct EmbeddedTxn {
    inner: Arc<Inner>,
    snap: Arc<RedbSnap>,
    start: u64,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    locks: BTreeSet<Vec<u8>>,
    /// Counter deltas ([`Txn::add`]) on keys not in `writes`.
    adds: BTreeMap<Vec<u8>, i64>,
    finished: bool,
}

impl EmbeddedTxn {
    /// `base` (the snapshot's value of `key`) with this transaction's
    /// buffered add to `key`, if any.
    fn with_add(&self, key: &[u8], base: Option<Vec<u8>>) -> KvResult<Option<Vec<u8>>> {
        match self.adds.get(key) {
            None => Ok(base),
            Some(d) => counter_plus(base.as_deref(), *d).map(Some),
        }
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.inner.unregister(self.start);
        }
    }
}

impl Drop for EmbeddedTxn {
    fn drop(&mut self) {
        self.finish();
    }
}

#[async_trait]
impl Reader for EmbeddedTxn {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        let base = self.snap.get(key)?;
        self.with_add(key, base)
    }

    async fn batch_get(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        let mut out = snap_batch_get(&self.snap, keys).await?;
        for (slot, k) in out.iter_mut().zip(keys) {
            if let Some(v) = self.writes.get(k) {
                *slot = v.clone();
            } else if self.adds.contains_key(k) {
                *slot = self.with_add(k, slot.take())?;
            }
        }
        Ok(out)
    }

    async fn scan(&mut self, range: KeyRange, limit: usize, order: Order) -> KvResult<Vec<KvPair>> {
        let overlay: Vec<_> = if range.is_empty() {
            Vec::new()
        } else {
            let bounds = (as_ref(&range.start), as_ref(&range.end));
            let mut overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>> = self
                .writes
                .range::<[u8], _>(bounds)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for k in self.adds.range::<[u8], _>(bounds).map(|(k, _)| k) {
                let base = self.snap.get(k)?;
                overlay.insert(k.clone(), self.with_add(k, base)?);
            }
            overlay.into_iter().collect()
        };
        snap_scan(&self.snap, range, limit, order, overlay).await
    }
}

#[async_trait]
impl Txn for EmbeddedTxn {
    async fn get_for_update(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        check_key(key)?;
        self.locks.insert(key.to_vec());
        self.get(key).await
    }

    async fn lock(&mut self, keys: &[Vec<u8>]) -> KvResult<()> {
        for k in keys {
            check_key(k)?;
            self.locks.insert(k.clone());
        }
        Ok(())
    }

    async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        check_key(&key)?;
        self.adds.remove(&key);
        self.writes.insert(key, Some(value));
        Ok(())
    }

    async fn delete(&mut self, key: Vec<u8>) -> KvResult<()> {
        check_key(&key)?;
        self.adds.remove(&key);
        self.writes.insert(key, None);
        Ok(())
    }

    async fn add(&mut self, key: Vec<u8>, delta: i64) -> KvResult<()> {
        check_key(&key)?;
        if let Some(w) = self.writes.get_mut(&key) {
            // Written here already: the add folds into that write.
            *w = Some(counter_plus(w.as_deref(), delta)?);
            return Ok(());
        }
        if !self.adds.contains_key(&key) {
            // A value that is no counter fails here, not in the group
            // commit (where it would fail every request of the group). The
            // value cannot change before commit without this add
            // conflicting: only writes, which adds conflict with, replace it.
            if let Some(v) = self.snap.get(&key)? {
                decode_counter(&v)?;
            }
        }
        let d = self.adds.entry(key).or_default();
        *d = d.saturating_add(delta);
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> KvResult<()> {
        if self.writes.is_empty() && self.locks.is_empty() && self.adds.is_empty() {
            self.finish();
            return Ok(());
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let req = CommitRequest {
            start: self.start,
            writes: std::mem::take(&mut self.writes),
            locks: std::mem::take(&mut self.locks),
            adds: std::mem::take(&mut self.adds),
            reply,
        };
        let sent = match &self.inner.committer {
            Some(tx) => tx.send(req).is_ok(),
            None => false,
        };
        let res = if sent {
            answer.await.unwrap_or_else(|_| {
                Err(KvError::Undetermined(
                    "the committer stopped during the commit".into(),
                ))
            })
        } else {
            Err(KvError::Backend("the committer has stopped".into()))
        };
        self.finish();
        res
    }

    async fn rollback(mut self: Box<Self>) -> KvResult<()> {
        self.finish();
        Ok(())
    }
}

/// The committer thread: group-commit queued requests until the channel closes.
fn run_committer(db: &Database, state: &Mutex<State>, rx: &mpsc::Receiver<CommitRequest>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        commit_batch(db, state, batch);
    }
}

fn commit_batch(db: &Database, state: &Mutex<State>, batch: Vec<CommitRequest>) {
    // Conflict checks, in arrival order. Keys touched by requests accepted
    // earlier in this batch count as committed after every start here.
    // Writes and locks conflict with any newer touch of their keys; adds
    // only with newer writes and locks (`plain`).
    let mut touched: HashSet<Vec<u8>> = HashSet::new();
    let mut plain: HashSet<Vec<u8>> = HashSet::new();
    let mut accepted = Vec::with_capacity(batch.len());
    {
        let s = lock_state(state);
        for req in batch {
            let newer = |versions: &HashMap<Vec<u8>, u64>, k: &[u8]| {
                versions.get(k).is_some_and(|&v| v > req.start)
            };
            let conflict = req
                .writes
                .keys()
                .chain(req.locks.iter())
                .find(|k| touched.contains(*k) || newer(&s.versions, k))
                .or_else(|| {
                    req.adds
                        .keys()
                        .filter(|k| !req.locks.contains(*k))
                        .find(|k| plain.contains(*k) || newer(&s.plain_versions, k))
                })
                .map(|k| short_hex(k));
            if let Some(k) = conflict {
                // The loser may be gone (cancelled); nothing to do then.
                let _ = req.reply.send(Err(KvError::Conflict(format!(
                    "key {k} was written by a newer transaction"
                ))));
                continue;
            }
            touched.extend(req.writes.keys().cloned());
            touched.extend(req.locks.iter().cloned());
            touched.extend(req.adds.keys().cloned());
            plain.extend(req.writes.keys().cloned());
            plain.extend(req.locks.iter().cloned());
            accepted.push(req);
        }
    }
    if accepted.is_empty() {
        return;
    }
    let result = write_batch(db, &accepted);
    // Record the versions even after a failed commit: it may have landed,
    // and a spurious conflict is harmless while a missed one is not.
    {
        let mut s = lock_state(state);
        s.seq += 1;
        let seq = s.seq;
        for k in touched {
            s.versions.insert(k, seq);
        }
        for k in plain {
            s.plain_versions.insert(k, seq);
        }
        if s.versions.len() > PRUNE_THRESHOLD {
            // Versions at or below the oldest running start never conflict.
            let floor = s.active.keys().next().copied().unwrap_or(seq);
            s.versions.retain(|_, v| *v > floor);
            s.plain_versions.retain(|_, v| *v > floor);
        }
    }
    for req in accepted {
        let r = match &result {
            Ok(()) => Ok(()),
            Err(KvError::Undetermined(m)) => Err(KvError::Undetermined(m.clone())),
            Err(e) => Err(KvError::Backend(e.to_string().into())),
        };
        let _ = req.reply.send(r);
    }
}

/// Apply the accepted requests in one redb transaction (one fsync). They
/// touch disjoint keys, so their order does not matter.
fn write_batch(db: &Database, accepted: &[CommitRequest]) -> KvResult<()> {
    if accepted
        .iter()
        .all(|r| r.writes.is_empty() && r.adds.is_empty())
    {
        return Ok(());
    }
    let w = db.begin_write().map_err(backend)?;
    {
        let mut t = w.open_table(TABLE).map_err(backend)?;
        for (k, v) in accepted.iter().flat_map(|r| r.writes.iter()) {
            match v {
                Some(v) => {
                    t.insert(k.as_slice(), v.as_slice()).map_err(backend)?;
                }
                None => {
                    t.remove(k.as_slice()).map_err(backend)?;
                }
            }
        }
        // Adds of several requests to one key apply one after another.
        for (k, d) in accepted.iter().flat_map(|r| r.adds.iter()) {
            let sum = {
                let cur = t.get(k.as_slice()).map_err(backend)?;
                counter_plus(cur.as_ref().map(|v| v.value()), *d)?
            };
            t.insert(k.as_slice(), sum.as_slice()).map_err(backend)?;
        }
    }
    // An I/O error inside commit leaves us unsure whether the new root
    // reached the disk.
    w.commit().map_err(|e| KvError::Undetermined(e.to_string()))
}

fn short_hex(k: &[u8]) -> String {
    k.iter().take(24).map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl Kv for EmbeddedKv {
    async fn begin(&self) -> KvResult<Box<dyn Txn>> {
        // Order matters: read the sequence number first, then open the
        // snapshot (see the module documentation).
        let start = self.inner.register();
        match self.open_snapshot() {
            Ok(snap) => Ok(Box::new(EmbeddedTxn {
                inner: self.inner.clone(),
                snap,
                start,
                writes: BTreeMap::new(),
                locks: BTreeSet::new(),
                adds: BTreeMap::new(),
                finished: false,
            })),
            Err(e) => {
                self.inner.unregister(start);
                Err(e)
            }
        }
    }

    async fn snapshot(&self) -> KvResult<Box<dyn Snapshot>> {
        Ok(Box::new(EmbeddedSnapshot {
            snap: self.open_snapshot()?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::encode_counter;
    use proptest::prelude::*;

    type Model = BTreeMap<Vec<u8>, Vec<u8>>;

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0x7f, 0xff]), 0..4)
    }

    fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
        prop_oneof![
            Just(Bound::Unbounded),
            key().prop_map(Bound::Included),
            key().prop_map(Bound::Excluded),
        ]
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(Vec<u8>, Vec<u8>),
        Delete(Vec<u8>),
        Add(Vec<u8>, i64),
    }

    impl Op {
        fn key(&self) -> &Vec<u8> {
            match self {
                Op::Put(k, _) | Op::Delete(k) | Op::Add(k, _) => k,
            }
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (key(), prop::collection::vec(any::<u8>(), 0..3)).prop_map(|(k, v)| Op::Put(k, v)),
            key().prop_map(Op::Delete),
            (key(), -5i64..5).prop_map(|(k, d)| Op::Add(k, d)),
        ]
    }

    fn expected(model: &Model, range: &KeyRange, limit: usize, order: Order) -> Vec<KvPair> {
        let it = model
            .iter()
            .filter(|(k, _)| range.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()));
        match order {
            Order::Asc => it.take(limit).collect(),
            Order::Desc => {
                let mut all: Vec<_> = it.collect();
                all.reverse();
                all.truncate(limit);
                all
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Transaction reads (stored data overlaid with buffered writes)
        /// behave exactly like an ordered map, in both directions, with any
        /// bounds and limits — before and after commit.
        #[test]
        fn txn_reads_match_a_btreemap(
            initial in prop::collection::btree_map(key(), prop::collection::vec(any::<u8>(), 0..3), 0..12),
            ops in prop::collection::vec(op(), 0..12),
            scans in prop::collection::vec((bound(), bound(), 0usize..8, any::<bool>()), 1..6),
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let dir = tempfile::tempdir().expect("tempdir");
                let kv = EmbeddedKv::open(dir.path().join("m.redb")).await.expect("open");
                let mut t = kv.begin().await.expect("begin");
                for (k, v) in &initial {
                    t.put(k.clone(), v.clone()).await.expect("put");
                }
                t.commit().await.expect("commit");

                let mut model = initial.clone();
                let mut t = kv.begin().await.expect("begin");
                for o in &ops {
                    match o {
                        Op::Put(k, v) => {
                            t.put(k.clone(), v.clone()).await.expect("put");
                            model.insert(k.clone(), v.clone());
                        }
                        Op::Delete(k) => {
                            t.delete(k.clone()).await.expect("delete");
                            model.remove(k);
                        }
                        Op::Add(k, d) => {
                            let r = t.add(k.clone(), *d).await;
                            match model.get(k).map(|v| decode_counter(v)) {
                                Some(Err(_)) => assert!(r.is_err(), "add to a non-counter must fail"),
                                cur => {
                                    r.expect("add");
                                    let n = cur.transpose().expect("counter").unwrap_or(0);
                                    model.insert(k.clone(), encode_counter(n + d));
                                }
                            }
                        }
                    }
                }
                for (s, e, limit, desc) in &scans {
                    let range = KeyRange::bounds(s.clone(), e.clone());
                    let order = if *desc { Order::Desc } else { Order::Asc };
                    let got = t.scan(range.clone(), *limit, order).await.expect("scan");
                    assert_eq!(got, expected(&model, &range, *limit, order), "in txn: {range:?} {limit} {order:?}");
                }
                let keys: Vec<Vec<u8>> = ops.iter().map(|o| o.key().clone()).collect();
                let got = t.batch_get(&keys).await.expect("batch_get");
                let want: Vec<_> = keys.iter().map(|k| model.get(k).cloned()).collect();
                assert_eq!(got, want);
                t.commit().await.expect("commit");

                let mut snap = kv.snapshot().await.expect("snapshot");
                for (s, e, limit, desc) in &scans {
                    let range = KeyRange::bounds(s.clone(), e.clone());
                    let order = if *desc { Order::Desc } else { Order::Asc };
                    let got = snap.scan(range.clone(), *limit, order).await.expect("scan");
                    assert_eq!(got, expected(&model, &range, *limit, order), "after commit: {range:?}");
                }
            });
        }
    }

    /// Concurrent adders of one key both commit (the point of `add` here);
    /// a write of the key after an adder's start still beats it.
    #[tokio::test]
    async fn adders_of_one_key_do_not_conflict_but_writers_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv = EmbeddedKv::open(dir.path().join("a.redb"))
            .await
            .expect("open");
        let key = b"ctr".to_vec();
        let mut t1 = kv.begin().await.expect("begin");
        let mut t2 = kv.begin().await.expect("begin");
        t1.add(key.clone(), 2).await.expect("add");
        t2.add(key.clone(), 5).await.expect("add");
        assert_eq!(t2.get(&key).await.expect("get"), Some(encode_counter(5)));
        t1.commit().await.expect("first adder");
        t2.commit().await.expect("second adder, no conflict");
        let mut s = kv.snapshot().await.expect("snapshot");
        assert_eq!(s.get(&key).await.expect("get"), Some(encode_counter(7)));

        let mut adder = kv.begin().await.expect("begin");
        let mut writer = kv.begin().await.expect("begin");
        writer.delete(key.clone()).await.expect("delete");
        writer.commit().await.expect("writer");
        adder.add(key.clone(), 1).await.expect("add");
        let r = adder.commit().await;
        assert!(
            matches!(r, Err(KvError::Conflict(_))),
            "add after a newer delete: {r:?}"
        );
    }

    #[tokio::test]
    async fn oversized_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv = EmbeddedKv::open(dir.path().join("k.redb"))
            .await
            .expect("open");
        let mut t = kv.begin().await.expect("begin");
        let r = t.put(vec![1; MAX_KEY_LEN + 1], vec![]).await;
        assert!(matches!(r, Err(KvError::KeyTooLarge(_))));
        t.rollback().await.expect("rollback");
    }
}
