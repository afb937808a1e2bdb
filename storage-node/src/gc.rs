//! Garbage collection on a node: deleting the copies no name refers to any
//! more, and emptying the tombstone area.
//!
//! When a name is removed or overwritten and its object loses its last
//! reference, meta writes one GC record per copy in the same transaction.
//! The gateway deletes those copies at once, best effort; this loop is what
//! makes it certain. Each node deletes the copies its records name (a copy
//! that is already gone counts as deleted) and only then forgets the
//! records, so a crash, a node that was down, or a metadata outage in
//! between only means the work is done again later.
//!
//! Deleting moves a copy to `tombstone/<day>/` (see [`crate::store`]);
//! tombstone days older than [`GcConfig::tombstone_days`] are removed here,
//! which is when the space comes back.

use std::sync::Arc;
use std::time::Duration;

use meta::namespace::{Namespace, NamespaceError};
use tokio_util::sync::CancellationToken;

use crate::protocol::{InvalidObjectId, ObjectId};
use crate::store::{ObjectStore, StoreError};

/// How often and how much a node collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcConfig {
    /// Time between passes.
    pub interval: Duration,
    /// GC records handled per metadata transaction.
    pub batch: usize,
    /// Days deleted copies are kept in the tombstone area (0: only today's).
    pub tombstone_days: u32,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            batch: 256,
            tombstone_days: 7,
        }
    }
}

/// Why a pass stopped early. The next pass starts over; nothing is lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    /// Metadata could not be read or updated.
    #[error("metadata: {0}")]
    Meta(#[from] NamespaceError),
    /// A GC record names an object id no copy file can have.
    #[error(transparent)]
    InvalidObjectId(#[from] InvalidObjectId),
    /// A copy could not be deleted.
    #[error("delete copy {object}: {source}")]
    Store {
        /// The copy's object id.
        object: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
}

/// Deletes every copy on node `node_id` (whose store is `store`) that has
/// a GC record, then drops the records. Returns how many records were
/// handled.
pub async fn collect(
    ns: &Namespace,
    store: &ObjectStore,
    node_id: &str,
    batch: usize,
) -> Result<usize, GcError> {
    let mut handled = 0;
    loop {
        let records = ns.gc_pending(node_id, batch.max(1)).await?;
        if records.is_empty() {
            return Ok(handled);
        }
        for r in &records {
            let object = r.object_id.to_string();
            let id = ObjectId::parse(&object)?;
            match store.delete(&id).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(source) => return Err(GcError::Store { object, source }),
            }
        }
        ns.gc_done(&records).await?;
        handled += records.len();
    }
}

/// Collects every `config.interval` until `cancel` fires, and removes
/// tombstone days older than `config.tombstone_days`. Failures are logged
/// and retried at the next pass.
pub async fn run(
    ns: Arc<Namespace>,
    store: Arc<ObjectStore>,
    node_id: String,
    config: GcConfig,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        match collect(&ns, &store, &node_id, config.batch).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(node = %node_id, copies = n, "deleted unreferenced copies"),
            Err(e) => {
                tracing::warn!(node = %node_id, error = %e, "garbage collection pass failed; retrying later")
            }
        }
        match store.purge_tombstones(config.tombstone_days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(node = %node_id, days = n, "removed old tombstone days"),
            Err(e) => {
                tracing::warn!(node = %node_id, error = %e, "tombstone purge failed; retrying later")
            }
        }
    }
}
