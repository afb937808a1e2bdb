//! The Manta namespace model on top of any [`Kv`] backend: accounts and SSH
//! keys, directories and objects, snaplinks, listings and counts, storage
//! node registrations, and garbage-collection records.
//!
//! Guarantees:
//! - every mutating operation is one backend transaction; its checks
//!   (parent exists and is a directory, conditions, emptiness, refcounts) are
//!   evaluated inside that transaction, so they hold at commit;
//! - transactions that hit [`KvError::Conflict`](crate::kv::KvError) are
//!   retried with bounded exponential backoff ([`RetryPolicy`]); when retries
//!   run out the caller gets [`NamespaceError::ConcurrentRequest`];
//! - copies orphaned by an overwrite or delete get GC records in the same
//!   transaction, so bytes are never leaked and never freed while a name
//!   (including a snaplink) still refers to them;
//! - listings are read from one snapshot, so a page is consistent;
//! - a copy whose object an unfinished map task pinned (`0x58` pin keys,
//!   written and removed by the job tables, see [`crate::jobs`]) is not
//!   handed out for deletion: [`Namespace::gc_pending`] skips its GC
//!   records and [`Namespace::is_pinned`] tells the gateway not to delete
//!   it at once. The job's task ran the version it resolved; the copy goes
//!   at the first GC pass after the last pin on it is removed.
//!
//! Concurrency design (the rules that make SI enough): a PUT that creates a
//! name writes its directory's count shard; deleting a directory deletes all
//! [`keys::COUNT_SHARDS`] shards, so "create in dir" and "delete dir" always write a common key
//! and cannot both commit. Writers of one name write the same entry key.
//! Snaplinked objects are released under `get_for_update` of their
//! `0x20 objectid` record.

mod conditions;
mod entries;
mod error;
mod misc;
mod rbac;
mod records;
mod types;
mod upkeep;

use std::sync::Arc;
use std::time::Duration;

pub use entries::{entry_key_of, entry_object_id};
pub use error::{NamespaceError, NsResult};
pub use types::*;
pub use upkeep::{ObjectCopies, ObjectPage, WorkerRecord};

use crate::kv::Kv;

/// Maximum entries in one directory (spec §3).
pub const MAX_DIRECTORY_ENTRIES: u64 = 1_000_000;

/// Bounded exponential backoff for conflicting transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub initial_backoff: Duration,
    /// Cap on one delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            // A conflict is the server's business, not the client's: retry
            // long enough that 16 writers into one directory on a busy
            // TiKV still commit (10 was seen to run out under load).
            max_attempts: 20,
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(200),
        }
    }
}

/// A source of "now" in milliseconds since the Unix epoch (injectable for tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The namespace model; cheap to clone and share.
#[derive(Clone)]
pub struct Namespace {
    kv: Arc<dyn Kv>,
    retry: RetryPolicy,
    clock: Clock,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch from the system clock.
pub fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Namespace {
    /// A namespace over `kv` with the default retry policy and system clock.
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Namespace {
            kv,
            retry: RetryPolicy::default(),
            clock: Arc::new(system_now_ms),
        }
    }

    /// Replace the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Replace the clock (tests use a controllable one).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The backend.
    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    pub(crate) fn now_ms(&self) -> u64 {
        (self.clock)()
    }
}
