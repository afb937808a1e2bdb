//! Repair: every object back to its durability.
//!
//! A name is *short* when fewer of its copies count toward durability than
//! it asks for, or when some of its copies are on a draining node (to be
//! moved) or a lost or unknown node (to be forgotten). Copies on a node
//! that is merely silent still count: silence is not loss, and an operator
//! declares a node lost.
//!
//! Of a short name only its leader acts: the first node in its copy list
//! that serves reads (up or draining). The leader copies the object from a
//! good copy (its own first; every byte checked against the block
//! checksums and the recorded blake3 on the way) to nodes placement chooses
//! among the up nodes not already holding it, checks the receipt's blake3,
//! and then commits the new copy list with one compare-and-set — new copies
//! in, copies on draining nodes out with GC records (so they are deleted
//! only after the new ones are recorded), copies on lost nodes forgotten.
//! At no point does a name list fewer good copies than before. If the name
//! changed meanwhile (overwritten, deleted, repaired by someone else), the
//! commit does nothing and the fresh copies are left to audit, which
//! removes them as strays after the grace period (deleting them here could
//! delete the same object's copy another name just committed).
//!
//! Names sharing an object (snaplinks) reuse the copies made for the first
//! of them in the same pass. Copying is paced to `rate` bytes per second so
//! foreground traffic keeps the disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use membership::{ClusterView, Condition, HealthRule};
use meta::namespace::{Namespace, ObjectCopies, system_now_ms};
use storage_node::NodeClient;

use crate::UpkeepError;
use crate::scan::ObjectScan;
use crate::worker::{Control, Worker};

/// The repair worker of one node.
#[derive(Debug)]
pub struct Repair {
    /// Metadata.
    pub ns: Arc<Namespace>,
    /// Client to every node (this node's store registered as local).
    pub client: NodeClient,
    /// The node's id.
    pub node_id: String,
    /// Time between passes.
    pub every: Duration,
    /// Bytes per second copied (0: unlimited).
    pub rate: u64,
    /// The cluster's health rule.
    pub rule: HealthRule,
}

#[derive(Debug, Default)]
struct Tally {
    short: u64,
    repaired: u64,
    copies_made: u64,
    bytes: u64,
    no_target: u64,
    failed: u64,
    raced: u64,
}

impl Worker for Repair {
    fn name(&self) -> &'static str {
        "repair"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn pass(&mut self, ctl: &Control) -> Result<String, UpkeepError> {
        let view = ClusterView::load(&self.ns, self.rule, None, system_now_ms()).await?;
        if !view.serves_reads(&self.node_id) {
            return Ok("this node is not serving; no repair led from here".into());
        }
        let mut t = Tally::default();
        let mut made: HashMap<uuid::Uuid, (Vec<String>, Vec<String>)> = HashMap::new();
        let mut scan = ObjectScan::default();
        while let Some(page) = scan.next_page(&self.ns, ctl).await? {
            for name in page {
                self.repair_name(&view, &name, &mut made, &mut t, ctl)
                    .await?;
                ctl.progress(format!(
                    "{} short names led here, {} repaired, {} copies ({} bytes) made",
                    t.short, t.repaired, t.copies_made, t.bytes
                ));
            }
        }
        Ok(format!(
            "{} short names led here: {} repaired with {} new copies ({} bytes); \
             {} without a target node, {} failed, {} changed meanwhile",
            t.short, t.repaired, t.copies_made, t.bytes, t.no_target, t.failed, t.raced
        ))
    }
}

impl Repair {
    async fn repair_name(
        &self,
        view: &ClusterView,
        name: &ObjectCopies,
        made: &mut HashMap<uuid::Uuid, (Vec<String>, Vec<String>)>,
        t: &mut Tally,
        ctl: &Control,
    ) -> Result<(), UpkeepError> {
        let cond = |c: &String| view.condition(c);
        let counted: Vec<String> = name
            .copies
            .iter()
            .filter(|c| {
                matches!(
                    cond(c),
                    Some(Condition::Up | Condition::Suspect | Condition::Silent)
                )
            })
            .cloned()
            .collect();
        let moving: Vec<String> = name
            .copies
            .iter()
            .filter(|c| cond(c) == Some(Condition::Draining))
            .cloned()
            .collect();
        let forgotten = name
            .copies
            .iter()
            .any(|c| matches!(cond(c), None | Some(Condition::Lost)));
        let want = usize::from(name.durability.max(1));
        if counted.len() >= want && moving.is_empty() && !forgotten {
            return Ok(());
        }
        let leader = name.copies.iter().find(|c| view.serves_reads(c));
        if leader.map(String::as_str) != Some(self.node_id.as_str()) {
            return Ok(());
        }
        t.short += 1;
        ctl.checkpoint().await?;
        if let Some((before, after)) = made.get(&name.object_id)
            && *before == name.copies
        {
            if self.ns.set_copies(name, after, &moving).await? {
                t.repaired += 1;
            } else {
                t.raced += 1;
            }
            return Ok(());
        }
        let need = want.saturating_sub(counted.len());
        let mut targets = Vec::new();
        if need > 0 {
            let candidates: Vec<_> = view
                .candidates(true)
                .into_iter()
                .filter(|c| !name.copies.contains(&c.id))
                .collect();
            let seed = uuid::Uuid::new_v4().as_u128() as u64;
            match placement::choose_for_write(&candidates, need, Some(name.size), seed) {
                Ok(ids) => targets = ids,
                Err(e) => {
                    t.no_target += 1;
                    tracing::debug!(object = %name.object_id, error = %e, "repair: no target node");
                    return Ok(());
                }
            }
        }
        let mut sources: Vec<&String> = name
            .copies
            .iter()
            .filter(|c| view.serves_reads(c))
            .collect();
        sources.sort_by_key(|c| **c != self.node_id);
        let mut written = 0;
        for target in &targets {
            let Some(url) = view.get(target).map(|n| n.record.url.clone()) else {
                continue;
            };
            if self.copy_to(view, name, &sources, &url).await {
                written += 1;
                t.copies_made += 1;
                t.bytes += name.size;
                ctl.pace(name.size, self.rate).await?;
            } else {
                break;
            }
        }
        if written < targets.len() {
            t.failed += 1;
            return Ok(());
        }
        let mut copies = counted;
        copies.extend(targets);
        if self.ns.set_copies(name, &copies, &moving).await? {
            t.repaired += 1;
            made.insert(name.object_id, (name.copies.clone(), copies));
        } else {
            t.raced += 1;
        }
        Ok(())
    }

    /// Copies `name`'s object from the first source that delivers it
    /// intact to the node at `target_url`; whether it worked.
    async fn copy_to(
        &self,
        view: &ClusterView,
        name: &ObjectCopies,
        sources: &[&String],
        target_url: &str,
    ) -> bool {
        let id = name.object_id.to_string();
        for source in sources {
            let Some(src) = view.get(source) else {
                continue;
            };
            let stream = match self
                .client
                .get(&src.record.url, &id, None, Some(&name.blake3))
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(object = %id, source = %source, error = %e, "repair: source unreadable");
                    continue;
                }
            };
            match self.client.put(target_url, &id, stream).await {
                Ok(receipt) if receipt.blake3 == name.blake3 && receipt.size == name.size => {
                    return true;
                }
                Ok(receipt) => {
                    tracing::warn!(object = %id, source = %source, got = %receipt.blake3,
                        "repair: copied bytes do not match the recorded blake3");
                }
                Err(e) => {
                    tracing::warn!(object = %id, target = target_url, error = %e, "repair: copy failed");
                }
            }
        }
        false
    }
}
