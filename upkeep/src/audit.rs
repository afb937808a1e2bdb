//! Audit: one node's copies compared with metadata.
//!
//! A pass reads every name with a copy recorded on this node (from one
//! walk of metadata), *then* lists the copies on disk, so a copy written
//! and committed during the pass is never taken for a stray:
//! * a copy on disk no name refers to is a stray; it is moved to the
//!   tombstone area once its file is older than the grace period (a copy
//!   being uploaded, or written but not yet committed, is younger; uploads
//!   in progress live in `tmp/` and are never seen), and not while a
//!   running job pins it (the version of an input it resolved);
//! * a name whose recorded copy is not on disk drops this node from its
//!   copies (compare-and-set, so a concurrent overwrite wins), which makes
//!   the object short and lets repair restore it — unless this is its only
//!   recorded copy, which is left in place and reported: nothing could
//!   replace it.
//!
//! Known limit: a pass holds the node's referenced object ids in memory
//! (about 100 bytes each).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meta::namespace::Namespace;
use storage_node::protocol::ObjectId;
use storage_node::store::{ObjectStore, StoreError};

use crate::UpkeepError;
use crate::scan::{names_on_node, without};
use crate::worker::{Control, Worker};

/// Ids listed from the store per call.
const LIST_PAGE: usize = 4096;

/// The audit worker of one node.
#[derive(Debug)]
pub struct Audit {
    /// Metadata.
    pub ns: Arc<Namespace>,
    /// The node's store.
    pub store: Arc<ObjectStore>,
    /// The node's id.
    pub node_id: String,
    /// Time between passes.
    pub every: Duration,
    /// Strays younger than this are kept.
    pub grace: Duration,
}

impl Worker for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn pass(&mut self, ctl: &Control) -> Result<String, UpkeepError> {
        ctl.progress("reading metadata");
        let mut expected = names_on_node(&self.ns, &self.node_id, ctl).await?;
        ctl.progress(format!(
            "{} objects recorded here; listing copies",
            expected.len()
        ));
        let (mut on_disk, mut strays, mut young) = (0u64, 0u64, 0u64);
        let mut after = None;
        loop {
            ctl.checkpoint().await?;
            let ids = self.store.list(after.clone(), LIST_PAGE).await?;
            let Some(last) = ids.last() else { break };
            after = Some(last.clone());
            for id in &ids {
                on_disk += 1;
                let Ok(uuid) = uuid::Uuid::parse_str(id) else {
                    continue; // not an object id this deployment makes
                };
                if expected.remove(&uuid).is_some() {
                    continue;
                }
                let Ok(oid) = ObjectId::parse(id) else {
                    continue;
                };
                if self.older_than_grace(&oid).await {
                    match self.store.delete(&oid).await {
                        Ok(()) | Err(StoreError::NotFound) => strays += 1,
                        Err(e) => return Err(e.into()),
                    }
                } else {
                    young += 1;
                }
            }
        }
        // What is left was recorded here but is not on disk.
        let (mut dropped, mut only_copy) = (0u64, 0u64);
        for names in expected.into_values() {
            ctl.checkpoint().await?;
            for name in names {
                if name.copies.len() <= 1 {
                    only_copy += 1;
                    tracing::error!(node = %self.node_id, object = %name.object_id,
                        "the only recorded copy of an object is missing");
                    continue;
                }
                let rest = without(&name.copies, &self.node_id);
                if self.ns.set_copies(&name, &rest, &[]).await? {
                    dropped += 1;
                }
            }
        }
        Ok(format!(
            "{on_disk} copies on disk; removed {strays} strays ({young} within grace); \
             {dropped} names dropped a missing copy; {only_copy} missing only copies"
        ))
    }
}

impl Audit {
    async fn older_than_grace(&self, id: &ObjectId) -> bool {
        let Ok(meta) = tokio::fs::metadata(self.store.object_path(id)).await else {
            return false;
        };
        let Ok(modified) = meta.modified() else {
            return false;
        };
        SystemTime::now()
            .duration_since(modified)
            .is_ok_and(|age| age > self.grace)
    }
}
