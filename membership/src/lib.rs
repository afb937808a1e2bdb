//! One cluster view: which storage nodes exist, what state an operator put
//! them in, and whether they are healthy — decided by one rule, the same in
//! the gateway, the task output writer, the job supervisor and the
//! background workers.
//!
//! A node is
//! * **up** — state `up`, heard from within the heartbeat timeout, and not
//!   suspect: it takes new copies and tasks, and its copies count toward an
//!   object's durability;
//! * **draining** — state `draining` and heard from: it serves reads of its
//!   copies (its copies are the source repair moves them from) but takes
//!   nothing new, and its copies do not count toward durability;
//! * **lost** — state `lost`: its copies count as missing;
//! * **silent** — no heartbeat within the timeout: treated as down for
//!   everything until it heartbeats again (a silence is not a loss: only an
//!   operator declares a node lost);
//! * **suspect** — up by its record, but a request to it failed since its
//!   last heartbeat: passed over while others can do the work, until it
//!   heartbeats again ([`Suspects`]).
//!
//! Guarantees: no I/O except [`ClusterView::load`] (one metadata read), no
//! clock (callers pass `now_ms`), so every decision can be replayed. The
//! heartbeat timeout has one default, [`HealthRule::default`], and every
//! process takes it from its `--node-timeout` flag.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use meta::namespace::{Namespace, NamespaceError, NodeRecord, NodeState};
use placement::Candidate;

/// How long a node may stay silent before it is treated as down.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);

/// The health rule every reader and writer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthRule {
    /// A node without a heartbeat for longer is silent.
    pub heartbeat_timeout: Duration,
}

impl Default for HealthRule {
    fn default() -> Self {
        HealthRule {
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
        }
    }
}

/// Nodes a request failed on, with when (ms since the epoch): a local,
/// advisory memory (losing it on restart costs one more failed request).
/// A node stays suspect until it heartbeats after the failure.
#[derive(Debug, Default)]
pub struct Suspects(Mutex<HashMap<String, u64>>);

impl Suspects {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers that a request to `node` failed at `now_ms` for reasons
    /// of the node or the network (not of the request).
    pub fn mark(&self, node: &str, now_ms: u64) {
        self.map().insert(node.to_owned(), now_ms);
    }

    /// Whether `node` failed a request since its last heartbeat.
    pub fn is_suspect(&self, node: &NodeRecord) -> bool {
        let mut m = self.map();
        match m.get(node.id.as_str()) {
            Some(&at) if at >= node.heartbeat_ms => true,
            Some(_) => {
                m.remove(node.id.as_str());
                false
            }
            None => false,
        }
    }
}

/// What one node is, by the rule above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Takes new copies and tasks; its copies count.
    Up,
    /// Serves reads; takes nothing new; its copies are being moved.
    Draining,
    /// Declared gone by an operator.
    Lost,
    /// No heartbeat within the timeout.
    Silent,
    /// Up by its record, but failed a request since its last heartbeat.
    Suspect,
}

impl Condition {
    /// The word operators see.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Up => "up",
            Condition::Draining => "draining",
            Condition::Lost => "lost",
            Condition::Silent => "silent",
            Condition::Suspect => "suspect",
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// Its record in metadata.
    pub record: NodeRecord,
    /// What the rule makes of it now.
    pub condition: Condition,
}

/// The nodes of the cluster as one process sees them at one moment.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    nodes: Vec<NodeView>,
}

impl ClusterView {
    /// Applies `rule` and `suspects` to `records` at `now_ms`.
    pub fn from_records(
        records: Vec<NodeRecord>,
        rule: HealthRule,
        suspects: Option<&Suspects>,
        now_ms: u64,
    ) -> Self {
        let timeout = u64::try_from(rule.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX);
        let nodes = records
            .into_iter()
            .map(|record| {
                let fresh = now_ms.saturating_sub(record.heartbeat_ms) <= timeout;
                let condition = match record.state {
                    NodeState::Lost => Condition::Lost,
                    _ if !fresh => Condition::Silent,
                    NodeState::Draining => Condition::Draining,
                    NodeState::Active if suspects.is_some_and(|s| s.is_suspect(&record)) => {
                        Condition::Suspect
                    }
                    NodeState::Active => Condition::Up,
                };
                NodeView { record, condition }
            })
            .collect();
        ClusterView { nodes }
    }

    /// Reads the node records from `ns` and applies the rule.
    pub async fn load(
        ns: &Namespace,
        rule: HealthRule,
        suspects: Option<&Suspects>,
        now_ms: u64,
    ) -> Result<Self, NamespaceError> {
        Ok(Self::from_records(
            ns.list_nodes().await?,
            rule,
            suspects,
            now_ms,
        ))
    }

    /// Every node, by id.
    pub fn nodes(&self) -> &[NodeView] {
        &self.nodes
    }

    /// One node.
    pub fn get(&self, id: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.record.id == id)
    }

    /// Number of registered nodes (whatever their condition).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// No node registered.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The condition of `id` (`None`: not registered).
    pub fn condition(&self, id: &str) -> Option<Condition> {
        self.get(id).map(|n| n.condition)
    }

    /// Whether a copy on `id` counts toward an object's durability.
    pub fn counts_toward_durability(&self, id: &str) -> bool {
        self.condition(id) == Some(Condition::Up)
    }

    /// Whether `id` serves reads of the copies it holds now (up or
    /// draining; a suspect only when nothing better exists, which the
    /// caller decides).
    pub fn serves_reads(&self, id: &str) -> bool {
        matches!(
            self.condition(id),
            Some(Condition::Up | Condition::Draining)
        )
    }

    /// Placement candidates for new copies and tasks: healthy means up.
    /// With `avoid_suspects` false, suspects count as healthy (the fallback
    /// when too few others remain).
    pub fn candidates(&self, avoid_suspects: bool) -> Vec<Candidate> {
        self.nodes
            .iter()
            .map(|n| {
                // A node on a degraded or faulted ZFS pool keeps serving
                // what it holds but takes nothing new.
                let healthy = n.record.storage_ok()
                    && match n.condition {
                        Condition::Up => true,
                        Condition::Suspect => !avoid_suspects,
                        _ => false,
                    };
                Candidate::new(
                    n.record.id.clone(),
                    n.record.az.clone(),
                    n.record.free_bytes(),
                    healthy,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, state: NodeState, heartbeat_ms: u64) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            url: format!("http://{id}"),
            az: "az".into(),
            capacity_total: 100,
            capacity_used: 0,
            heartbeat_ms,
            pool_health: None,
            state,
        }
    }

    #[test]
    fn one_rule_for_every_state() {
        let rule = HealthRule {
            heartbeat_timeout: Duration::from_secs(10),
        };
        let suspects = Suspects::default();
        suspects.mark("s", 5_000);
        suspects.mark("recovered", 1_000);
        let view = ClusterView::from_records(
            vec![
                node("up", NodeState::Active, 9_000),
                node("d", NodeState::Draining, 9_000),
                node("l", NodeState::Lost, 9_000),
                node("quiet", NodeState::Active, 0),
                node("quiet-d", NodeState::Draining, 0),
                node("s", NodeState::Active, 4_000),
                node("recovered", NodeState::Active, 2_000),
            ],
            rule,
            Some(&suspects),
            10_001,
        );
        let cond = |id| view.condition(id).unwrap();
        assert_eq!(cond("up"), Condition::Up);
        assert_eq!(cond("d"), Condition::Draining);
        assert_eq!(cond("l"), Condition::Lost);
        assert_eq!(cond("quiet"), Condition::Silent);
        assert_eq!(cond("quiet-d"), Condition::Silent);
        assert_eq!(cond("s"), Condition::Suspect);
        assert_eq!(
            cond("recovered"),
            Condition::Up,
            "heartbeat after the failure"
        );
        assert!(view.serves_reads("d") && !view.serves_reads("l") && !view.serves_reads("quiet"));
        assert!(view.counts_toward_durability("up") && !view.counts_toward_durability("d"));
        let healthy = |avoid| -> Vec<String> {
            view.candidates(avoid)
                .into_iter()
                .filter(|c| c.healthy)
                .map(|c| c.id)
                .collect()
        };
        assert_eq!(healthy(true), ["up", "recovered"]);
        assert_eq!(healthy(false), ["up", "s", "recovered"]);
        assert_eq!(view.condition("nope"), None);
    }
}
