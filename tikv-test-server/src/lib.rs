//! **TEST DOUBLE — never use outside tests.** A protocol-level, in-memory
//! TiKV + PD server for exercising the real `tikv-client` 0.4 code path
//! end to end when no TiKV cluster is available (TiKV and PD binaries cannot
//! be had on the build machines).
//!
//! One tonic gRPC server on one loopback port answers both the PD service
//! (`pdpb.PD`) and the TiKV service (`tikvpb.Tikv`), with server code
//! generated at build time from the `.proto` files tikv-client 0.4.0 ships
//! (vendored unchanged under `proto/`; see `build.rs`). Only the RPCs the
//! transactional client actually calls are implemented; the rest answer
//! `Unimplemented`.
//!
//! Model: one region covering every key, one store, one PD member; an
//! in-memory Percolator store ([`mvcc`](crate::mvcc)) with prewrite, commit,
//! rollback, transaction-status checks and lock resolution; timestamps from
//! a hybrid counter (`wall-clock ms << 18 | logical`) on PD's `Tso` stream.
//! Nothing is persisted and there is no replication: this double checks the
//! *client-side protocol* (retries, lock resolution, error mapping), not
//! TiKV's durability.
//!
//! Fault injection, on demand, for what a real cluster rarely shows:
//! write conflicts ([`TestCluster::inject_write_conflicts`]), locks left by
//! crashed writers ([`TestCluster::plant_crashed_writer_lock`],
//! [`TestCluster::plant_half_committed_txn`]), region errors
//! ([`TestCluster::inject_not_leader`], [`TestCluster::bump_region_epoch`]),
//! commits whose response is lost after they were applied
//! ([`TestCluster::drop_commit_responses`]) and an unreachable cluster
//! ([`TestCluster::set_unavailable`]).

// Errors here are the protocol's own types (tonic::Status, kvrpcpb::KeyError),
// returned as-is to the client; boxing them would only add conversions.
#![allow(clippy::result_large_err)]

mod mvcc;
mod service;

/// Code generated from tikv-client's `.proto` files.
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    rustdoc::all,
    unreachable_pub
)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::mvcc::{Lock, LockOp, Mvcc};
use crate::proto::{kvrpcpb, metapb};

/// Region id of the single region.
const REGION_ID: u64 = 1;
/// Store id of the single store.
const STORE_ID: u64 = 1;
/// Peer id of the single (leader) peer.
const PEER_ID: u64 = 1;
/// Cluster id reported in PD headers.
const CLUSTER_ID: u64 = 0x7469_6b76; // "tikv"

/// Pending one-shot faults.
#[derive(Debug, Default)]
struct Faults {
    write_conflicts: u32,
    not_leader: u32,
    dropped_commits: u32,
}

/// State shared by the PD and TiKV services.
#[derive(Debug)]
pub(crate) struct Shared {
    addr: SocketAddr,
    store: Mutex<Mvcc>,
    faults: Mutex<Faults>,
    /// `(physical ms, logical)` of the last timestamp handed out.
    tso: Mutex<(u64, u64)>,
    epoch_version: Mutex<u64>,
    gc_safe_point: Mutex<u64>,
    calls: Mutex<HashMap<&'static str, u64>>,
    unavailable: AtomicBool,
}

/// Poison-tolerant lock: a panicking test thread must not wedge the server.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Mvcc> {
        lock(&self.store)
    }

    fn count(&self, rpc: &'static str) {
        *lock(&self.calls).entry(rpc).or_default() += 1;
    }

    fn is_unavailable(&self) -> bool {
        self.unavailable.load(Ordering::SeqCst)
    }

    /// Allocate `count` consecutive timestamps; returns the last as
    /// `(physical, logical)`, like PD.
    fn allocate_ts(&self, count: u64) -> (u64, u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut t = lock(&self.tso);
        if now > t.0 {
            *t = (now, count);
        } else if t.1 + count >= 1 << 18 {
            *t = (t.0 + 1, count);
        } else {
            t.1 += count;
        }
        *t
    }

    fn next_ts(&self) -> u64 {
        let (p, l) = self.allocate_ts(1);
        (p << 18) | l
    }

    fn peer(&self) -> metapb::Peer {
        metapb::Peer {
            id: PEER_ID,
            store_id: STORE_ID,
            ..Default::default()
        }
    }

    fn epoch(&self) -> metapb::RegionEpoch {
        metapb::RegionEpoch {
            conf_ver: 1,
            version: *lock(&self.epoch_version),
        }
    }

    fn region(&self) -> metapb::Region {
        metapb::Region {
            id: REGION_ID,
            start_key: Vec::new(),
            end_key: Vec::new(),
            region_epoch: Some(self.epoch()),
            peers: vec![self.peer()],
            ..Default::default()
        }
    }

    fn store_meta(&self) -> metapb::Store {
        metapb::Store {
            id: STORE_ID,
            address: self.addr.to_string(),
            state: metapb::StoreState::Up as i32,
            version: "8.5.0".into(),
            ..Default::default()
        }
    }

    fn take_fault(&self, pick: impl FnOnce(&mut Faults) -> &mut u32) -> bool {
        let mut f = lock(&self.faults);
        let n = pick(&mut f);
        if *n > 0 {
            *n -= 1;
            true
        } else {
            false
        }
    }
}

/// A running test TiKV+PD server on a loopback port. Dropping it stops it.
#[derive(Debug)]
pub struct TestCluster {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestCluster {
    /// Bind `127.0.0.1:0` and serve PD and TiKV on it.
    pub async fn start() -> std::io::Result<TestCluster> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Bind `addr` (port 0 picks one) and serve PD and TiKV on it. PD
    /// hands out the bound address as the store's address, so clients on
    /// other hosts must be able to reach `addr` itself (not a wildcard).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<TestCluster> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            store: Mutex::new(Mvcc::default()),
            faults: Mutex::new(Faults::default()),
            tso: Mutex::new((0, 0)),
            epoch_version: Mutex::new(1),
            gc_safe_point: Mutex::new(0),
            calls: Mutex::new(HashMap::new()),
            unavailable: AtomicBool::new(false),
        });
        let (tx, rx) = oneshot::channel();
        tokio::spawn(service::serve(shared.clone(), listener, rx));
        Ok(TestCluster {
            shared,
            shutdown: Some(tx),
        })
    }

    /// `host:port` to hand to tikv-client as the PD endpoint.
    pub fn pd_endpoint(&self) -> String {
        self.shared.addr.to_string()
    }

    /// The next `n` prewrite requests fail with a write conflict on their
    /// first key (as if another transaction had committed it).
    pub fn inject_write_conflicts(&self, n: u32) {
        lock(&self.shared.faults).write_conflicts += n;
    }

    /// The next `n` TiKV requests answer `NotLeader` (naming the same
    /// peer), so the client must update its leader and retry.
    pub fn inject_not_leader(&self, n: u32) {
        lock(&self.shared.faults).not_leader += n;
    }

    /// Bump the region's epoch (as a split or merge would): requests with
    /// the old epoch get `EpochNotMatch` until the client reloads the
    /// region from PD.
    pub fn bump_region_epoch(&self) {
        *lock(&self.shared.epoch_version) += 1;
    }

    /// The next `n` commit requests are applied, then answered with a
    /// transport-level `Unavailable` status, as if the response was lost.
    pub fn drop_commit_responses(&self, n: u32) {
        lock(&self.shared.faults).dropped_commits += n;
    }

    /// While `true`, every PD and TiKV RPC fails with `Unavailable` and TSO
    /// streams end: the cluster is unreachable.
    pub fn set_unavailable(&self, down: bool) {
        self.shared.unavailable.store(down, Ordering::SeqCst);
    }

    /// Plant a prewrite lock of a writer that crashed before committing:
    /// `key` is its own primary, `value` the write it never finished, and
    /// the lock expires `ttl_ms` after now. Returns the writer's start ts.
    pub fn plant_crashed_writer_lock(&self, key: &[u8], value: &[u8], ttl_ms: u64) -> u64 {
        let start_ts = self.shared.next_ts();
        self.shared.store().plant_lock(
            key,
            Lock {
                primary: key.to_vec(),
                start_ts,
                ttl: ttl_ms,
                op: LockOp::Put(value.to_vec()),
                txn_size: 1,
            },
        );
        start_ts
    }

    /// Plant a transaction that crashed half-way through commit: `primary`
    /// is committed with `value`, `secondary` still holds its prewrite lock
    /// (also writing `value`). Readers of `secondary` must resolve the lock
    /// by committing it.
    pub fn plant_half_committed_txn(&self, primary: &[u8], secondary: &[u8], value: &[u8]) {
        let start_ts = self.shared.next_ts();
        let muts: Vec<kvrpcpb::Mutation> = [primary, secondary]
            .iter()
            .map(|k| kvrpcpb::Mutation {
                op: kvrpcpb::Op::Put as i32,
                key: k.to_vec(),
                value: value.to_vec(),
                ..Default::default()
            })
            .collect();
        let mut store = self.shared.store();
        let errors = store.prewrite(&muts, primary, start_ts, 3_600_000, 2);
        assert!(
            errors.is_empty(),
            "planting a half-committed txn: {errors:?}"
        );
        let commit_ts = self.shared.next_ts();
        let err = store.commit(&[primary.to_vec()], start_ts, commit_ts);
        assert!(err.is_none(), "planting a half-committed txn: {err:?}");
    }

    /// How many times the RPC named `rpc` (e.g. `"KvCheckTxnStatus"`) was
    /// served.
    pub fn rpc_count(&self, rpc: &str) -> u64 {
        lock(&self.shared.calls).get(rpc).copied().unwrap_or(0)
    }

    /// Locks currently held in the store.
    pub fn lock_count(&self) -> usize {
        self.shared.store().lock_count()
    }

    /// The GC safe point last stored through PD's `UpdateGCSafePoint`.
    pub fn gc_safe_point(&self) -> u64 {
        *lock(&self.shared.gc_safe_point)
    }

    /// The newest committed value of `key`, bypassing locks.
    pub fn committed_value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.shared.store().committed_value(key)
    }

    /// Stop serving: RPCs fail from now on and the port is closed.
    pub fn stop(&mut self) {
        self.set_unavailable(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
