//! The ordered, transactional key/value trait every metadata backend implements.
//!
//! The contract (shared by the embedded redb backend and a TiKV backend):
//! - keys and values are byte strings; keys are ordered by plain byte
//!   comparison;
//! - a [`Txn`] reads from one snapshot taken at [`Kv::begin`], sees its own
//!   buffered writes, and commits atomically. Isolation is at least snapshot
//!   isolation: two transactions that both write (or [`Txn::get_for_update`] /
//!   [`Txn::lock`]) the same key cannot both commit — one gets
//!   [`KvError::Conflict`]. Plain reads are *not* tracked (like TiKV's
//!   optimistic transactions), so lock what you read and then depend on;
//! - a [`Snapshot`] is a read-only, consistent view; use one for reads that
//!   must agree across several calls (e.g. listing pages);
//! - every transaction must end in [`Txn::commit`] or [`Txn::rollback`]
//!   (tikv-client panics when an unfinished transaction is dropped; the
//!   embedded backend just discards it);
//! - errors are classified so callers can act: [`KvError::Conflict`] → retry
//!   the whole transaction, [`KvError::Undetermined`] → the commit may or may
//!   not have happened (re-read), [`KvError::Unavailable`] → answer 503.
//!
//! Reads take `&mut self` because tikv-client's transaction and snapshot
//! reads do; this keeps a TiKV backend free of internal locking.
//!
//! Mapping onto tikv-client 0.4 (transactional API): [`Kv::begin`] →
//! `begin_optimistic` (or `begin_pessimistic`), [`Kv::snapshot`] →
//! `snapshot(current_timestamp, ..)`; `get`/`batch_get` (re-aligned to the
//! requested keys), `scan`/`scan_reverse` with `limit` clamped to `u32`,
//! `get_for_update`, `lock_keys`, `put`, `delete`, `commit`, `rollback`.
//! Its write-conflict and lock errors become [`KvError::Conflict`], commit
//! RPC failures after prewrite [`KvError::Undetermined`], PD/region
//! unreachability [`KvError::Unavailable`].

use std::ops::Bound;

use async_trait::async_trait;

/// A key/value pair as returned by scans.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// Boxed error source for backend-specific failures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Largest key any backend must accept (TiKV's default `max-key-size` is
/// 8 KiB; the namespace keeps keys well below this).
pub const MAX_KEY_LEN: usize = 8 * 1024;

/// Errors from a key/value backend, classified by what the caller can do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// Another transaction wrote or locked a key this one wrote or locked
    /// after this one started. Retrying the whole transaction is safe.
    #[error("transaction conflict: {0}")]
    Conflict(String),
    /// The commit may or may not have been applied (e.g. the connection broke
    /// mid-commit). Writes must be idempotent; re-read to find out.
    #[error("commit outcome undetermined: {0}")]
    Undetermined(String),
    /// The backend cannot be reached or is overloaded; answer 503.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    /// A key longer than [`MAX_KEY_LEN`].
    #[error("key of {0} bytes exceeds the {MAX_KEY_LEN}-byte limit")]
    KeyTooLarge(usize),
    /// Any other backend failure (I/O, corruption, bug).
    #[error("metadata backend error: {0}")]
    Backend(#[source] BoxError),
}

impl KvError {
    /// True when retrying the whole transaction may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, KvError::Conflict(_))
    }
}

/// Result type of the key/value layer.
pub type KvResult<T> = Result<T, KvError>;

/// Direction of a range scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Smallest key first.
    #[default]
    Asc,
    /// Largest key first.
    Desc,
}

/// A range of keys with explicit bounds (both directions use the same range;
/// the order only decides which end rows come from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// `[start, end)`.
    pub fn new(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: Bound::Included(start.into()),
            end: Bound::Excluded(end.into()),
        }
    }

    /// Arbitrary bounds.
    pub fn bounds(start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Self {
        KeyRange { start, end }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        let end = match crate::keys::prefix_successor(prefix) {
            Some(succ) => Bound::Excluded(succ),
            None => Bound::Unbounded,
        };
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end,
        }
    }

    /// True if `key` lies inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }

    /// True if no key can lie inside the range.
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e))
            | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
            _ => false,
        }
    }
}

/// Reads available on both snapshots and transactions.
#[async_trait]
pub trait Reader: Send {
    /// The value of `key`, if present.
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>>;

    /// Values of several keys; the result is aligned with `keys`.
    async fn batch_get(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>>;

    /// Up to `limit` pairs inside `range`, in `order`. Always bound the range
    /// tightly: on TiKV each overlapping region is asked for `limit` rows.
    async fn scan(&mut self, range: KeyRange, limit: usize, order: Order) -> KvResult<Vec<KvPair>>;
}

/// A consistent read-only view of the store at one point in time.
#[async_trait]
pub trait Snapshot: Reader {}

/// A read-write transaction; see the module documentation for the contract.
#[async_trait]
pub trait Txn: Reader {
    /// Read `key` and lock it: a concurrent transaction that also writes or
    /// locks it cannot commit too.
    async fn get_for_update(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>>;

    /// Lock keys without reading them (same conflict rule as
    /// [`Txn::get_for_update`]).
    async fn lock(&mut self, keys: &[Vec<u8>]) -> KvResult<()>;

    /// Buffer a write; visible to this transaction's own reads at once.
    async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()>;

    /// Buffer a delete (a write for conflict purposes even if the key is absent).
    async fn delete(&mut self, key: Vec<u8>) -> KvResult<()>;

    /// Add `delta` to the counter at `key` ([`encode_counter`]; absent is
    /// 0) at commit; this transaction's own reads see the sum at once.
    ///
    /// Adds commute, so a backend may apply them without making concurrent
    /// adders of one key conflict with each other (the embedded one does:
    /// hot directory counts were most of the conflicts among concurrent
    /// writes into one directory). An add still conflicts with any other
    /// write, delete or lock of the key, in either order. This default is a
    /// locked read-modify-write, where concurrent adders do conflict.
    async fn add(&mut self, key: Vec<u8>, delta: i64) -> KvResult<()> {
        let cur = self.get_for_update(&key).await?;
        self.put(key, counter_plus(cur.as_deref(), delta)?).await
    }

    /// Atomically apply the buffered writes. On success they are durable.
    async fn commit(self: Box<Self>) -> KvResult<()>;

    /// Discard the buffered writes and release locks.
    async fn rollback(self: Box<Self>) -> KvResult<()>;
}

/// A metadata backend: a factory for transactions and snapshots.
#[async_trait]
pub trait Kv: Send + Sync {
    /// Start a read-write transaction.
    async fn begin(&self) -> KvResult<Box<dyn Txn>>;

    /// Take a consistent read-only snapshot.
    async fn snapshot(&self) -> KvResult<Box<dyn Snapshot>>;
}

/// A counter's stored form: the `i64`, big-endian.
pub fn encode_counter(n: i64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// The stored form of counter `cur` (absent is 0) plus `delta`.
pub fn counter_plus(cur: Option<&[u8]>, delta: i64) -> KvResult<Vec<u8>> {
    let n = cur.map(decode_counter).transpose()?.unwrap_or(0);
    Ok(encode_counter(n.saturating_add(delta)))
}

/// A counter's value; a stored value of the wrong length is corrupt.
pub fn decode_counter(v: &[u8]) -> KvResult<i64> {
    let bytes: [u8; 8] = v
        .try_into()
        .map_err(|_| KvError::Backend(format!("corrupt counter of {} bytes", v.len()).into()))?;
    Ok(i64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_contains_only_prefixed_keys() {
        let r = KeyRange::prefix(&[1, 0xff]);
        assert!(r.contains(&[1, 0xff]));
        assert!(r.contains(&[1, 0xff, 0xff, 3]));
        assert!(!r.contains(&[2]));
        assert!(!r.contains(&[1, 0xfe, 0xff]));
        let all = KeyRange::prefix(&[0xff, 0xff]);
        assert_eq!(all.end, Bound::Unbounded);
    }

    #[test]
    fn counter_round_trip() {
        for n in [0i64, 1, -1, i64::MAX] {
            assert_eq!(decode_counter(&encode_counter(n)).ok(), Some(n));
        }
        assert!(decode_counter(&[1, 2]).is_err());
    }

    #[test]
    fn empty_ranges() {
        assert!(KeyRange::new(vec![2], vec![2]).is_empty());
        assert!(!KeyRange::new(vec![1], vec![2]).is_empty());
        assert!(KeyRange::bounds(Bound::Included(vec![3]), Bound::Included(vec![2])).is_empty());
    }
}
