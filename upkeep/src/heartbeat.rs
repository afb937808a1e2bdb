//! The node's heartbeat as a background worker: registration, then one
//! capacity (and ZFS pool health) report every tick
//! ([`storage_node::heartbeat::beat`]).
//!
//! A failed beat is the worker's last error and is tried again at the next
//! tick, like every worker's pass. Pausing it (`tidepool admin workers
//! pause heartbeat --scope NODE`) stops the reports: after the cluster's
//! heartbeat timeout the node is `silent` and takes no new copies.

use std::sync::Arc;
use std::time::Duration;

use meta::namespace::Namespace;
use storage_node::heartbeat::{NodeInfo, beat};
use storage_node::store::ObjectStore;

use crate::{Control, UpkeepError, Worker};

/// The heartbeat worker of one node.
pub struct Heartbeat {
    /// Where the node's record is.
    pub ns: Arc<Namespace>,
    /// The node's copies (capacity is measured on their file system).
    pub store: Arc<ObjectStore>,
    /// What the record says of the node.
    pub node: NodeInfo,
    /// Time between beats.
    pub every: Duration,
    /// Whether the node's record was written by this process.
    pub registered: bool,
}

impl Worker for Heartbeat {
    fn name(&self) -> &'static str {
        "heartbeat"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn pass(&mut self, ctl: &Control) -> Result<String, UpkeepError> {
        let did = beat(&*self.ns, &self.store, &self.node, &mut self.registered)
            .await
            .map_err(|e| UpkeepError::Failed(e.to_string()))?;
        // Shown by `admin workers list`, not logged: a beat is routine.
        ctl.progress(did);
        Ok(String::new())
    }
}
