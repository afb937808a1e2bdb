//! [`TikvKv`]: the `meta::kv::Kv` trait on tikv-client 0.4 transactions.
//!
//! Guarantees: every call is bounded by [`TikvConfig::operation_timeout`]
//! (tikv-client's own retry loops can otherwise run for tens of seconds
//! against a dead PD); every transaction ends in commit or rollback — a
//! [`TikvTxn`] dropped unfinished rolls back in a spawned task, and
//! tikv-client's drop check is set to warn instead of panic; a commit that
//! fails with a conflict is rolled back at once so its prewrite locks do not
//! stall other writers until their TTL expires.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use meta::kv::{
    KeyRange, Kv, KvError, KvPair, KvResult, MAX_KEY_LEN, Order, Reader, Snapshot, Txn,
};
use tikv_client::{
    BoundRange, CheckLevel, Config, Key, Timestamp, TimestampExt, Transaction, TransactionClient,
    TransactionOptions,
};

use crate::config::TikvConfig;
use crate::error::{Phase, classify};

/// A TiKV-backed metadata store. Cheap to clone; share one per process.
///
/// The PD connection is made on first use ([`TikvKv::lazy`]) or up front
/// ([`TikvKv::connect`]). A lazy store whose cluster is down still lets
/// the process start and serve: every call fails with
/// [`KvError::Unavailable`] within the connect timeout (the gateway's 503)
/// and the next call tries again, so the store recovers when PD comes back.
#[derive(Clone)]
pub struct TikvKv {
    client: Arc<tokio::sync::OnceCell<TransactionClient>>,
    cfg: Arc<TikvConfig>,
    op_timeout: Duration,
}

impl std::fmt::Debug for TikvKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TikvKv")
            .field("pd", &self.cfg.pd_endpoints)
            .field("connected", &self.client.initialized())
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

/// Run `fut` with the operation deadline; a timeout is reported for `phase`.
async fn bounded<T>(
    limit: Duration,
    phase: Phase,
    what: &str,
    fut: impl Future<Output = Result<T, tikv_client::Error>>,
) -> KvResult<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(e, phase)),
        Err(_) => {
            let msg = format!("TiKV {what} did not finish within {limit:?}");
            Err(match phase {
                Phase::Commit => KvError::Undetermined(msg),
                Phase::Other => KvError::Unavailable(msg),
            })
        }
    }
}

fn check_key(key: &[u8]) -> KvResult<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(KvError::KeyTooLarge(key.len()));
    }
    Ok(())
}

impl TikvKv {
    /// A store for the cluster in `cfg` that connects on first use. Never
    /// fails: an unreachable cluster shows up as [`KvError::Unavailable`]
    /// from the calls that need it.
    pub fn lazy(cfg: &TikvConfig) -> Self {
        TikvKv {
            client: Arc::new(tokio::sync::OnceCell::new()),
            cfg: Arc::new(cfg.clone()),
            op_timeout: cfg.operation_timeout,
        }
    }

    /// Connect to the PD endpoints in `cfg` now. Fails with
    /// [`KvError::Unavailable`] when no PD answers within
    /// `cfg.connect_timeout`.
    pub async fn connect(cfg: &TikvConfig) -> KvResult<Self> {
        let kv = TikvKv::lazy(cfg);
        kv.client().await?;
        Ok(kv)
    }

    /// The underlying tikv-client handle (for housekeeping such as GC),
    /// connecting first if this store has not yet.
    pub async fn client(&self) -> KvResult<&TransactionClient> {
        // A failed attempt leaves the cell empty, so the next call retries.
        self.client
            .get_or_try_init(|| async {
                let config = Config::default().with_timeout(self.cfg.request_timeout);
                let endpoints = self.cfg.pd_endpoints.clone();
                bounded(
                    self.cfg.connect_timeout,
                    Phase::Other,
                    "connect",
                    TransactionClient::new_with_config(endpoints, config),
                )
                .await
                .map_err(|e| match e {
                    // Whatever went wrong while discovering PD, the cluster
                    // is not usable from here: 503, not a backend bug.
                    KvError::Backend(b) => KvError::Unavailable(format!("connecting to PD: {b}")),
                    other => other,
                })
            })
            .await
    }

    /// A fresh timestamp from PD's TSO.
    pub async fn current_timestamp(&self) -> KvResult<Timestamp> {
        bounded(
            self.op_timeout,
            Phase::Other,
            "timestamp",
            self.client().await?.current_timestamp(),
        )
        .await
    }

    /// Advance TiKV's GC safe point to `now - keep` (see [`crate::gc`]).
    /// Returns the safe point as a TSO version.
    pub async fn advance_gc_safe_point(&self, keep: Duration) -> KvResult<u64> {
        let now = self.current_timestamp().await?;
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let physical = now.physical.saturating_sub(keep_ms).max(0);
        let safe_point = Timestamp::from_version((physical as u64) << 18);
        let version = safe_point.version();
        bounded(
            self.op_timeout,
            Phase::Other,
            "gc",
            self.client().await?.gc(safe_point),
        )
        .await?;
        Ok(version)
    }
}

#[async_trait]
impl Kv for TikvKv {
    async fn begin(&self) -> KvResult<Box<dyn Txn>> {
        // Optimistic: metadata transactions are short and touch few keys,
        // so conflicts are rare and the extra lock round trip per key of a
        // pessimistic transaction would cost every PUT. See the crate doc.
        let opts = TransactionOptions::new_optimistic().drop_check(CheckLevel::Warn);
        let txn = bounded(
            self.op_timeout,
            Phase::Other,
            "begin",
            self.client().await?.begin_with_options(opts),
        )
        .await?;
        Ok(Box::new(TikvTxn {
            txn: Some(txn),
            op_timeout: self.op_timeout,
        }))
    }

    async fn snapshot(&self) -> KvResult<Box<dyn Snapshot>> {
        let ts = self.current_timestamp().await?;
        // A read-only snapshot has nothing to roll back: no drop check.
        let opts = TransactionOptions::new_optimistic()
            .read_only()
            .drop_check(CheckLevel::None);
        Ok(Box::new(TikvSnapshot {
            snap: self.client().await?.snapshot(ts, opts),
            op_timeout: self.op_timeout,
        }))
    }
}

/// tikv-client's range type for a trait range.
fn bound_range(range: KeyRange) -> BoundRange {
    let conv = |b: Bound<Vec<u8>>| match b {
        Bound::Included(k) => Bound::Included(Key::from(k)),
        Bound::Excluded(k) => Bound::Excluded(Key::from(k)),
        Bound::Unbounded => Bound::Unbounded,
    };
    BoundRange::from((conv(range.start), conv(range.end)))
}

/// Align `found` pairs with `keys`.
fn align(
    keys: &[Vec<u8>],
    found: impl Iterator<Item = tikv_client::KvPair>,
) -> Vec<Option<Vec<u8>>> {
    let mut map: HashMap<Vec<u8>, Vec<u8>> = found
        .map(|p| {
            let (k, v): (Key, Vec<u8>) = p.into();
            (Vec::<u8>::from(k), v)
        })
        .collect();
    keys.iter().map(|k| map.remove(k)).collect()
}

fn into_pairs(rows: impl Iterator<Item = tikv_client::KvPair>) -> Vec<KvPair> {
    rows.map(|p| {
        let (k, v): (Key, Vec<u8>) = p.into();
        (Vec::<u8>::from(k), v)
    })
    .collect()
}

/// Scan limits travel as `u32` on the wire.
fn wire_limit(limit: usize) -> u32 {
    u32::try_from(limit).unwrap_or(u32::MAX)
}

/// A read-only view at one TSO timestamp.
pub struct TikvSnapshot {
    snap: tikv_client::Snapshot,
    op_timeout: Duration,
}

#[async_trait]
impl Reader for TikvSnapshot {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        check_key(key)?;
        let t = self.op_timeout;
        bounded(t, Phase::Other, "get", self.snap.get(key.to_vec())).await
    }

    async fn batch_get(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        keys.iter().try_for_each(|k| check_key(k))?;
        let t = self.op_timeout;
        let found = bounded(
            t,
            Phase::Other,
            "batch_get",
            self.snap.batch_get(keys.to_vec()),
        )
        .await?;
        Ok(align(keys, found))
    }

    async fn scan(&mut self, range: KeyRange, limit: usize, order: Order) -> KvResult<Vec<KvPair>> {
        if limit == 0 || range.is_empty() {
            return Ok(Vec::new());
        }
        let (t, r, n) = (self.op_timeout, bound_range(range), wire_limit(limit));
        Ok(match order {
            Order::Asc => into_pairs(bounded(t, Phase::Other, "scan", self.snap.scan(r, n)).await?),
            Order::Desc => {
                into_pairs(bounded(t, Phase::Other, "scan", self.snap.scan_reverse(r, n)).await?)
            }
        })
    }
}

impl Snapshot for TikvSnapshot {}

/// An optimistic TiKV transaction. Always ends in commit or rollback; when
/// dropped unfinished it is rolled back in the background.
pub struct TikvTxn {
    /// `None` once committed or rolled back.
    txn: Option<Transaction>,
    op_timeout: Duration,
}

impl TikvTxn {
    fn txn(&mut self) -> KvResult<&mut Transaction> {
        self.txn
            .as_mut()
            .ok_or_else(|| KvError::Backend("transaction already finished".into()))
    }
}

#[async_trait]
impl Reader for TikvTxn {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        check_key(key)?;
        let t = self.op_timeout;
        let txn = self.txn()?;
        bounded(t, Phase::Other, "get", txn.get(key.to_vec())).await
    }

    async fn batch_get(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        keys.iter().try_for_each(|k| check_key(k))?;
        let t = self.op_timeout;
        let txn = self.txn()?;
        let found = bounded(t, Phase::Other, "batch_get", txn.batch_get(keys.to_vec())).await?;
        Ok(align(keys, found))
    }

    async fn scan(&mut self, range: KeyRange, limit: usize, order: Order) -> KvResult<Vec<KvPair>> {
        if limit == 0 || range.is_empty() {
            return Ok(Vec::new());
        }
        let (t, r, n) = (self.op_timeout, bound_range(range), wire_limit(limit));
        let txn = self.txn()?;
        Ok(match order {
            Order::Asc => into_pairs(bounded(t, Phase::Other, "scan", txn.scan(r, n)).await?),
            Order::Desc => {
                into_pairs(bounded(t, Phase::Other, "scan", txn.scan_reverse(r, n)).await?)
            }
        })
    }
}

#[async_trait]
impl Txn for TikvTxn {
    async fn get_for_update(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        check_key(key)?;
        let t = self.op_timeout;
        let txn = self.txn()?;
        // Optimistic mode: this reads at start_ts and adds a `Lock`
        // mutation, so prewrite fails with a write conflict if anyone
        // committed the key after we started.
        bounded(
            t,
            Phase::Other,
            "get_for_update",
            txn.get_for_update(key.to_vec()),
        )
        .await
    }

    async fn lock(&mut self, keys: &[Vec<u8>]) -> KvResult<()> {
        keys.iter().try_for_each(|k| check_key(k))?;
        let t = self.op_timeout;
        let txn = self.txn()?;
        bounded(t, Phase::Other, "lock", txn.lock_keys(keys.to_vec())).await
    }

    async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        check_key(&key)?;
        let t = self.op_timeout;
        let txn = self.txn()?;
        bounded(t, Phase::Other, "put", txn.put(key, value)).await
    }

    async fn delete(&mut self, key: Vec<u8>) -> KvResult<()> {
        check_key(&key)?;
        let t = self.op_timeout;
        let txn = self.txn()?;
        bounded(t, Phase::Other, "delete", txn.delete(key)).await
    }

    async fn commit(mut self: Box<Self>) -> KvResult<()> {
        let t = self.op_timeout;
        let Some(mut txn) = self.txn.take() else {
            return Err(KvError::Backend("transaction already finished".into()));
        };
        let result = bounded(t, Phase::Commit, "commit", txn.commit()).await;
        match result {
            Ok(_) => Ok(()),
            Err(e @ KvError::Conflict(_)) => {
                // Prewrite was refused: nothing is committed. Release the
                // locks other keys may already hold so other writers need
                // not wait for their TTL.
                if let Err(rb) = bounded(t, Phase::Other, "rollback", txn.rollback()).await {
                    tracing::debug!("rollback after conflict failed: {rb}");
                }
                Err(e)
            }
            // Undetermined: the transaction may be committed; a rollback
            // could race the commit's secondaries, so leave resolution to
            // TiKV's lock resolver.
            Err(e) => Err(e),
        }
    }

    async fn rollback(mut self: Box<Self>) -> KvResult<()> {
        let t = self.op_timeout;
        let Some(mut txn) = self.txn.take() else {
            return Ok(());
        };
        bounded(t, Phase::Other, "rollback", txn.rollback()).await
    }
}

impl Drop for TikvTxn {
    fn drop(&mut self) {
        let Some(mut txn) = self.txn.take() else {
            return;
        };
        // Dropped without commit or rollback (e.g. an early `?` return or
        // a cancelled request): roll back in the background. Optimistic
        // transactions hold no server-side locks before commit, so this is
        // cheap, and it keeps tikv-client's drop check quiet.
        let t = self.op_timeout;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let _ = tokio::time::timeout(t, txn.rollback()).await;
                });
            }
            Err(_) => drop(txn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of(r: KeyRange) -> (Vec<u8>, Option<Vec<u8>>) {
        let (s, e) = bound_range(r).into_keys();
        (s.into(), e.map(Into::into))
    }

    #[test]
    fn directory_scans_are_bounded_by_the_prefix_successor() {
        // Tight end keys matter: tikv-client asks every region overlapping
        // the range for `limit` rows.
        let dk = meta::keys::dk("alice", &["stor", "photos"]);
        let r = meta::keys::entries_range(&dk);
        let (start, end) = keys_of(r.clone());
        let end = end.expect("a directory range is bounded");
        assert!(r.contains(&start));
        assert!(!r.contains(&end));
        assert_eq!(Bound::Excluded(end), r.end);
    }

    #[test]
    fn bounds_convert_exactly() {
        let r = KeyRange::bounds(Bound::Excluded(vec![1, 2]), Bound::Included(vec![5]));
        assert_eq!(keys_of(r), (vec![1, 2, 0], Some(vec![5, 0])));
        let r = KeyRange::bounds(Bound::Unbounded, Bound::Unbounded);
        assert_eq!(keys_of(r), (vec![], None));
        assert_eq!(
            keys_of(KeyRange::new(vec![3], vec![4])),
            (vec![3], Some(vec![4]))
        );
    }

    #[test]
    fn limits_saturate() {
        assert_eq!(wire_limit(usize::MAX), u32::MAX);
        assert_eq!(wire_limit(7), 7);
    }
}
