//! The node's registration and heartbeat loop.
//!
//! A node makes itself known in metadata (id, URL, zone, capacity) and then
//! refreshes its record every `interval`, so placement can tell fresh nodes
//! from dead ones and knows their free space. The loop never gives up: a
//! metadata outage is logged and retried at the next tick, and a record that
//! disappeared is registered again. It stops only when cancelled.
//!
//! The loop is written against [`NodeRegistry`]; [`meta::namespace::Namespace`]
//! implements it. Re-registration keeps an operator-set state (draining,
//! down) and only updates the URL, zone and capacity.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use meta::namespace::{Namespace, NamespaceError, NodeRecord, NodeState};
use tokio_util::sync::CancellationToken;

use crate::protocol::Capacity;
use crate::store::ObjectStore;

/// How a node describes itself to the metadata tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node id.
    pub node_id: String,
    /// Base URL other services use to reach the node, `http://host:port`.
    pub url: String,
    /// Availability zone.
    pub az: String,
    /// The ZFS pool under the node's files, whose health each heartbeat
    /// reports (a pool that is not `ONLINE` takes no new copies).
    pub zfs_pool: Option<String>,
}

/// Where nodes register and heartbeat.
pub trait NodeRegistry: Send + Sync {
    /// Error of the registry.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Creates the node's record, or updates its URL, zone and capacity
    /// while keeping its state.
    fn register(
        &self,
        node: &NodeInfo,
        capacity: Capacity,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Refreshes the node's heartbeat, capacity and (on ZFS) pool health.
    /// `Ok(false)` when the registry has no record of the node (it must
    /// register again).
    fn heartbeat(
        &self,
        node_id: &str,
        capacity: Capacity,
        pool_health: Option<&str>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

impl NodeRegistry for Namespace {
    type Error = NamespaceError;

    async fn register(&self, node: &NodeInfo, capacity: Capacity) -> Result<(), NamespaceError> {
        // Read-then-write is not one transaction: an operator's state change
        // racing a node restart can be lost, which only re-activates a node
        // that restarted anyway.
        let state = match self.get_node(&node.node_id).await? {
            Some(existing) => existing.state,
            None => NodeState::Active,
        };
        self.register_node(&NodeRecord {
            id: node.node_id.clone(),
            url: node.url.clone(),
            az: node.az.clone(),
            capacity_total: capacity.total_bytes,
            capacity_used: recorded_used(capacity),
            heartbeat_ms: 0, // set by the heartbeat that follows, with the namespace's clock
            pool_health: None,
            state,
        })
        .await?;
        Namespace::heartbeat(
            self,
            &node.node_id,
            recorded_used(capacity),
            capacity.total_bytes,
        )
        .await
        .map(|_| ())
    }

    async fn heartbeat(
        &self,
        node_id: &str,
        capacity: Capacity,
        pool_health: Option<&str>,
    ) -> Result<bool, NamespaceError> {
        match Namespace::heartbeat_with_pool(
            self,
            node_id,
            recorded_used(capacity),
            capacity.total_bytes,
            pool_health,
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(NamespaceError::NodeNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The "used" figure recorded in metadata: everything this node cannot
/// write to. Readers compute free space as `total - used`, and that must be
/// what the node can actually accept — which excludes the file system's
/// root-reserved blocks, unlike statvfs's own "used".
fn recorded_used(c: Capacity) -> u64 {
    c.total_bytes.saturating_sub(c.free_bytes)
}

/// Why one heartbeat did not reach metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BeatError {
    /// The store's capacity could not be measured.
    #[error("cannot measure capacity: {0}")]
    Capacity(#[from] crate::store::StoreError),
    /// Metadata refused or could not be reached.
    #[error("{what} failed: {error}")]
    Registry {
        /// `registration` or `heartbeat`.
        what: &'static str,
        /// The registry's error, rendered.
        error: String,
    },
}

/// One heartbeat of `node`: measures capacity (and the ZFS pool's health)
/// and writes them to `registry`, registering the node first when
/// `registered` is false (at start, or after its record vanished). Returns
/// what it did, for people.
pub async fn beat<R: NodeRegistry>(
    registry: &R,
    store: &ObjectStore,
    node: &NodeInfo,
    registered: &mut bool,
) -> Result<String, BeatError> {
    let capacity = store.capacity().await?;
    // The node's own numbers for its process's /metrics (the cluster
    // view's copy of them is only as fresh as the last heartbeat).
    let id = node.node_id.clone();
    metrics::gauge!("tidepool_node_capacity_bytes", "node" => id.clone())
        .set(capacity.total_bytes as f64);
    metrics::gauge!("tidepool_node_used_bytes", "node" => id.clone())
        .set(capacity.used_bytes as f64);
    metrics::gauge!("tidepool_node_free_bytes", "node" => id).set(capacity.free_bytes as f64);
    let pool_health = match &node.zfs_pool {
        // A pool zpool cannot report on is not one to write to.
        Some(pool) => Some(crate::zfs::pool_health(pool).await.unwrap_or_else(|e| {
            tracing::warn!(pool, error = %e, "cannot read the ZFS pool's health");
            "UNKNOWN".to_owned()
        })),
        None => None,
    };
    let used = recorded_used(capacity);
    if *registered {
        match registry
            .heartbeat(&node.node_id, capacity, pool_health.as_deref())
            .await
        {
            Ok(true) => return Ok(format!("used {used} of {} bytes", capacity.total_bytes)),
            Ok(false) => {
                tracing::warn!(node = %node.node_id, "node record vanished; registering again");
                *registered = false;
            }
            Err(e) => {
                return Err(BeatError::Registry {
                    what: "heartbeat",
                    error: e.to_string(),
                });
            }
        }
    }
    registry
        .register(node, capacity)
        .await
        .map_err(|e| BeatError::Registry {
            what: "registration",
            error: e.to_string(),
        })?;
    tracing::info!(node = %node.node_id, url = %node.url, az = %node.az, "registered in metadata");
    *registered = true;
    Ok(format!(
        "registered; used {used} of {} bytes",
        capacity.total_bytes
    ))
}

/// Registers `node` and heartbeats every `interval` until `cancel` fires
/// (nodes run [`beat`] as a background worker instead; this loop is for
/// embedders and tests). Failures are logged and retried at the next tick.
pub async fn run<R: NodeRegistry>(
    registry: R,
    store: Arc<ObjectStore>,
    node: NodeInfo,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registered = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if let Err(e) = beat(&registry, &store, &node, &mut registered).await {
            tracing::warn!(node = %node.node_id, error = %e, "heartbeat failed; will retry");
        }
    }
    tracing::debug!(node = %node.node_id, "heartbeat loop stopped");
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use meta::embedded::EmbeddedKv;

    use super::*;

    /// Polls `check` until it returns `Some` or the deadline passes.
    async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn registers_heartbeats_keeps_state_and_stops_on_cancel() {
        let dir = tempfile::tempdir().unwrap();
        let kv = EmbeddedKv::open(dir.path().join("meta.redb"))
            .await
            .unwrap();
        let ns = Namespace::new(Arc::new(kv));
        let store = Arc::new(ObjectStore::open(dir.path().join("data")).await.unwrap());
        let info = NodeInfo {
            node_id: "node-1".into(),
            url: "http://127.0.0.1:9".into(),
            az: "az-a".into(),
            zfs_pool: None,
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            ns.clone(),
            store,
            info,
            Duration::from_millis(20),
            cancel.clone(),
        ));

        let first = eventually("registration", || async {
            ns.get_node("node-1")
                .await
                .unwrap()
                .filter(|n| n.heartbeat_ms > 0)
        })
        .await;
        assert_eq!(first.url, "http://127.0.0.1:9");
        assert_eq!(first.az, "az-a");
        assert!(first.capacity_total > 0);

        // An operator drains the node; heartbeats must not undo that.
        ns.set_node_state("node-1", NodeState::Draining)
            .await
            .unwrap();
        let later = eventually("a later heartbeat", || async {
            ns.get_node("node-1")
                .await
                .unwrap()
                .filter(|n| n.heartbeat_ms > first.heartbeat_ms)
        })
        .await;
        assert_eq!(later.state, NodeState::Draining);

        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("loop stops when cancelled")
            .unwrap();
    }
}
