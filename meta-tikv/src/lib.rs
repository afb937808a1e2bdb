//! Tidepool metadata on a TiKV cluster: the `meta::kv::Kv` trait implemented
//! with tikv-client 0.4's transactional API, for when one machine is not
//! enough. Gateways, storage nodes and supervisors on many machines share
//! one cluster; TiKV splits and moves key ranges (regions) as the namespace
//! grows.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use meta_tikv::{TikvConfig, TikvKv};
//!
//! let cfg = TikvConfig::from_url("tikv://pd1:2379,pd2:2379,pd3:2379")?;
//! let kv = TikvKv::connect(&cfg).await?; // KvError::Unavailable if PD is unreachable
//! let ns = meta::namespace::Namespace::new(Arc::new(kv));
//! # let _ = ns; Ok(()) }
//! ```
//!
//! # Transactions
//!
//! - **Optimistic by default.** Metadata transactions are short and touch a
//!   handful of keys (an entry, a count shard, maybe an object record), so
//!   conflicts are rare; an optimistic transaction sends nothing to TiKV
//!   before commit, while a pessimistic one costs a lock round trip per key.
//!   Conflicts surface as [`meta::kv::KvError::Conflict`] at commit, and the
//!   namespace layer retries the whole transaction with backoff.
//! - **`get_for_update` / `lock`** add a `Lock` mutation (tikv-client's
//!   optimistic `lock_keys`): nothing is locked until prewrite, and prewrite
//!   then fails if anyone committed the key after this transaction started.
//!   That is exactly the trait's rule ("locking reads conflict"), because
//!   optimistic transactions do not track plain reads.
//! - **Where pessimistic transactions would pay off** (not used today): a
//!   key written by many concurrent transactions, where optimistic retries
//!   would livelock — e.g. a supervisor lease or a job's counters updated by
//!   every task completion. There, `begin_pessimistic` makes later writers
//!   wait for the lock instead of failing at commit. The job tables are laid
//!   out to avoid such keys (see below), so nothing needs it yet.
//! - **Snapshots** ([`meta::kv::Kv::snapshot`]) are tikv-client read-only
//!   snapshots at a fresh TSO timestamp: no transaction, no commit.
//! - Every transaction ends in commit or rollback; a dropped one is rolled
//!   back in the background ([`store::TikvTxn`]). 1PC and async commit are
//!   off (async commit unwraps a missing `min_commit_ts` in 0.4.0).
//! - **Timeouts**: [`TikvConfig`] bounds connecting, each RPC, and each
//!   trait call including tikv-client's internal retries. An unreachable
//!   PD/TiKV yields `Unavailable` (answer 503, never a wrong 404); a commit
//!   whose outcome cannot be known yields `Undetermined` (rules in the `error` module).
//!
//! # Key layout for scale
//!
//! Keys are produced by `meta::keys` — the one encoding shared with the
//! embedded backend; this crate never builds a key itself. Properties that
//! matter on TiKV:
//!
//! - **A directory is one contiguous range**: `0x10 dk 0x00 s` (16 count
//!   shards), `0x10 dk 0x01 name` (entries), `0x10 dk 0x02 mtime name`
//!   (mtime index), with `dk` a 16-byte blake3 of (account, directory).
//!   A listing page is one scan with a tight end key, normally inside one
//!   region (tikv-client fans a scan out to *every* overlapping region with
//!   the full limit, so ranges are always bounded by the directory's
//!   prefix successor); a PUT touches one region.
//! - **Load spreads**: `dk` hashes different accounts and directories
//!   uniformly over the key space, so regions split and balance by size and
//!   load; object records (`0x20`), multipart uploads and jobs are keyed by
//!   random UUIDv4, never by time at the front of the key.
//! - **No global hot key**: there is no global counter; a directory's entry
//!   count is 16 shards picked by name, so even one busy directory spreads
//!   its count writes over 16 keys. Storage-node records (`0x30`) are
//!   written by heartbeats, one key per node.
//! - **Bounded growth for high-volume tables**: GC records (`0x40 node ts
//!   object`) are deleted once the copy is removed; jobs, tasks, inputs,
//!   outputs and errors (`0x50..0x57`, keyed by random job id first) are
//!   archived into objects when a job finishes and their keys deleted, so
//!   those tables hold only live jobs. Task/heartbeat state is one key per
//!   task or node, overwritten in place rather than appended. Old MVCC
//!   versions of overwritten keys are reclaimed by the GC loop ([`gc`]).
//!
//! # Testing
//!
//! `tests/` runs `meta::conformance` against this backend through the
//! protocol-level test double `tikv-test-server` (a tonic TiKV+PD
//! implementation; test-only), with injected conflicts, stale locks, region
//! errors, lost commit responses and unavailability; and against a real
//! cluster when `TIDEPOOL_TIKV_PD` is set.

pub mod config;
mod error;
pub mod gc;
pub mod store;

pub use config::{ConfigError, TikvConfig};
pub use gc::{GcConfig, spawn_gc_loop};
pub use store::{TikvKv, TikvSnapshot, TikvTxn};
