//! `zpool scrub` of the pool under a node's files, on the scrub schedule:
//! ZFS checks every block of every disk of the pool against its checksums
//! and rewrites bad ones from the pool's redundancy (raidz, mirrors), while
//! the node keeps serving. Its findings are in `zpool status` and in this
//! worker's progress line.

use std::time::Duration;

use crate::UpkeepError;
use crate::worker::{Control, Worker};

/// The pool scrub worker of one node.
#[derive(Debug)]
pub struct PoolScrub {
    /// The pool.
    pub pool: String,
    /// Time between scrubs.
    pub every: Duration,
}

impl Worker for PoolScrub {
    fn name(&self) -> &'static str {
        "zpool-scrub"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn pass(&mut self, ctl: &Control) -> Result<String, UpkeepError> {
        ctl.checkpoint().await?;
        // Nodes sharing a pool each ask; a scrub already running is left
        // alone, so the pool is scrubbed once.
        let status = storage_node::zfs::scrub(&self.pool).await?;
        Ok(format!("pool {}: {status}", self.pool))
    }
}
