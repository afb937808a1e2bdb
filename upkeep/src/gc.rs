//! Garbage collection ([`storage_node::gc`]) as a worker: deleting the
//! copies meta's GC records name on this node, and emptying old tombstone
//! days.

use std::sync::Arc;
use std::time::Duration;

use meta::namespace::Namespace;
use storage_node::store::ObjectStore;

use crate::UpkeepError;
use crate::worker::{Control, Worker};

/// The GC worker of one node.
#[derive(Debug)]
pub struct GcWorker {
    /// Metadata.
    pub ns: Arc<Namespace>,
    /// The node's store.
    pub store: Arc<ObjectStore>,
    /// The node's id.
    pub node_id: String,
    /// Time between passes.
    pub every: Duration,
    /// GC config (batch size, tombstone days).
    pub config: storage_node::gc::GcConfig,
}

impl Worker for GcWorker {
    fn name(&self) -> &'static str {
        "gc"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn pass(&mut self, ctl: &Control) -> Result<String, UpkeepError> {
        ctl.checkpoint().await?;
        let n = storage_node::gc::collect(&self.ns, &self.store, &self.node_id, self.config.batch)
            .await?;
        let days = self
            .store
            .purge_tombstones(self.config.tombstone_days)
            .await?;
        Ok(match (n, days) {
            (0, 0) => String::new(),
            _ => format!("deleted {n} freed copies, removed {days} old tombstone days"),
        })
    }
}
