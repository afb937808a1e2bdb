//! Scrub: every copy on this node read whole and checked — each block
//! against its CRC-32C and the whole against the blake3 metadata recorded —
//! at a bounded rate, one full pass per [`Scrub::every`].
//!
//! A copy that fails is taken out of service at once: moved to the
//! tombstone area (so no read can be served from it, and its bytes stay
//! for inspection) and dropped from its names' copies, which makes the
//! object short so repair copies a good one back. The only recorded copy of
//! an object is never dropped (nothing could replace it): it is reported,
//! and reads keep failing over its bad blocks.

use std::sync::Arc;
use std::time::Duration;

use meta::namespace::Namespace;
use storage_node::protocol::ObjectId;
use storage_node::store::{ObjectStore, StoreError};

use crate::UpkeepError;
use crate::scan::{names_on_node, without};
use crate::worker::{Control, Worker};

/// The scrub worker of one node.
#[derive(Debug)]
pub struct Scrub {
    /// Metadata.
    pub ns: Arc<Namespace>,
    /// The node's store.
    pub store: Arc<ObjectStore>,
    /// The node's id.
    pub node_id: String,
    /// Time between the starts of passes.
    pub every: Duration,
    /// Bytes per second read (0: unlimited).
    pub rate: u64,
}

impl Worker for Scrub {
    fn name(&self) -> &'static str {
        "scrub"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn pass(&mut self, ctl: &Control) -> Result<String, UpkeepError> {
        ctl.progress("reading metadata");
        let names = names_on_node(&self.ns, &self.node_id, ctl).await?;
        let total = names.len();
        let (mut checked, mut bytes, mut bad, mut unrepairable) = (0usize, 0u64, 0u64, 0u64);
        for (object_id, names) in names {
            ctl.checkpoint().await?;
            let Some(first) = names.first() else { continue };
            let Ok(id) = ObjectId::parse(&object_id.to_string()) else {
                continue;
            };
            let Ok(expected) = blake3::Hash::from_hex(&first.blake3) else {
                continue; // no recorded hash to check against
            };
            let good = match self.store.verify(&id, expected).await {
                Ok(report) => {
                    bytes += report.size;
                    ctl.pace(report.size, self.rate).await?;
                    report.matches
                }
                Err(StoreError::Corrupt(_)) => false,
                // Missing copies are audit's business.
                Err(StoreError::NotFound) => true,
                Err(e) => return Err(e.into()),
            };
            checked += 1;
            ctl.progress(format!("checked {checked} of {total} copies"));
            if good {
                continue;
            }
            bad += 1;
            if names.iter().all(|n| n.copies.len() <= 1) {
                unrepairable += 1;
                tracing::error!(node = %self.node_id, object = %object_id,
                    "scrub: the only copy of an object is damaged");
                continue;
            }
            tracing::warn!(node = %self.node_id, object = %object_id,
                "scrub: damaged copy taken out of service; repair will replace it");
            match self.store.delete(&id).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            for name in names.iter().filter(|n| n.copies.len() > 1) {
                self.ns
                    .set_copies(name, &without(&name.copies, &self.node_id), &[])
                    .await?;
            }
        }
        Ok(format!(
            "checked {checked} copies ({bytes} bytes); {bad} damaged, {unrepairable} without another copy"
        ))
    }
}
