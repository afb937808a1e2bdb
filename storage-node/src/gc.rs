//! Garbage collection on a node: deleting the copies no name refers to any
//! more, and emptying the tombstone area.
//!
//! When a name is removed or overwritten and its object loses its last
//! reference, meta writes one GC record per copy in the same transaction.
//! The gateway deletes those copies at once, best effort; [`collect`], run
//! on a schedule by the `upkeep` crate's `gc` worker, is what makes it certain. Each node deletes the copies its records name (a copy
//! that is already gone counts as deleted) and only then forgets the
//! records, so a crash, a node that was down, or a metadata outage in
//! between only means the work is done again later.
//!
//! Deleting moves a copy to `tombstone/<day>/` (see [`crate::store`]);
//! tombstone days older than [`GcConfig::tombstone_days`] are removed here,
//! which is when the space comes back.

use meta::namespace::{Namespace, NamespaceError};

use crate::protocol::{InvalidObjectId, ObjectId};
use crate::store::{ObjectStore, StoreError};

/// How much a node collects per step (the pace is the `upkeep` crate's
/// `gc` worker's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcConfig {
    /// GC records handled per metadata transaction.
    pub batch: usize,
    /// Days deleted copies are kept in the tombstone area (0: only today's).
    pub tombstone_days: u32,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
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
