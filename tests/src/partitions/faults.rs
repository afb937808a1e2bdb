//! The fault schedule: which fault, on which process or link, for how
//! long, all drawn from the run's seed, so a failing run's faults can be
//! replayed in the same order with the same targets and durations (the
//! clients' interleaving, which depends on timing, cannot be).
//!
//! One fault at a time, then a heal and a quiet gap:
//! - `isolate-node`: a storage node cut off from everyone;
//! - `cut-gateway`: the gateway cut off from one or two nodes only;
//! - `isolate-supervisor`: a supervisor cut off from everyone;
//! - `isolate-meta`: the metadata tier cut off from everyone;
//! - `kill-node`, `kill-supervisor`, `kill-gateway`: `kill -9`, then a
//!   restart at the heal;
//! - `wipe-node` (at most once a run, so no object can lose both copies):
//!   `kill -9`, the node's object files deleted, restart at once; audit
//!   and repair must bring every copy back.
//!
//! The metadata test double is never killed: it keeps its keys only in
//! memory, so its `kill -9` would be the loss of the whole metadata tier,
//! a disaster no object store survives.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::Rng;
use crate::deployment::Deployment;
use crate::netns::Net;

/// One fault as drawn from the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Node (index) cut off from everyone.
    IsolateNode(usize),
    /// Gateway cut off from these nodes (indexes).
    CutGateway(Vec<usize>),
    /// Supervisor (index) cut off from everyone.
    IsolateSupervisor(usize),
    /// The metadata tier cut off from everyone.
    IsolateMeta,
    /// `kill -9` of a node, restarted at the heal.
    KillNode(usize),
    /// `kill -9` of a supervisor, restarted at the heal.
    KillSupervisor(usize),
    /// `kill -9` of the gateway, restarted at the heal.
    KillGateway,
    /// Node killed, its object files deleted, restarted at once.
    WipeNode(usize),
}

impl Fault {
    /// The fault's kind, for counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::IsolateNode(_) => "isolate-node",
            Fault::CutGateway(_) => "cut-gateway",
            Fault::IsolateSupervisor(_) => "isolate-supervisor",
            Fault::IsolateMeta => "isolate-meta",
            Fault::KillNode(_) => "kill-node",
            Fault::KillSupervisor(_) => "kill-supervisor",
            Fault::KillGateway => "kill-gateway",
            Fault::WipeNode(_) => "wipe-node",
        }
    }
}

/// One step of the schedule: a fault held for `hold`, then `quiet` with
/// everything healed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The fault.
    pub fault: Fault,
    /// How long it lasts.
    pub hold: Duration,
    /// The healed gap after it.
    pub quiet: Duration,
}

/// Draws the schedule for `total` time from `seed`.
pub fn schedule(seed: u64, total: Duration, nodes: usize, supervisors: usize) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut steps = Vec::new();
    let mut planned = Duration::ZERO;
    let mut wiped = false;
    // Bounded: each step takes at least 3 s.
    while planned < total {
        let fault = loop {
            let f = match rng.below(8) {
                0 => Fault::IsolateNode(rng.below(nodes as u64) as usize),
                1 => {
                    let a = rng.below(nodes as u64) as usize;
                    let mut v = vec![a];
                    if nodes > 2 && rng.below(2) == 0 {
                        v.push((a + 1 + rng.below(nodes as u64 - 1) as usize) % nodes);
                    }
                    Fault::CutGateway(v)
                }
                2 => Fault::IsolateSupervisor(rng.below(supervisors as u64) as usize),
                3 => Fault::IsolateMeta,
                4 => Fault::KillNode(rng.below(nodes as u64) as usize),
                5 => Fault::KillSupervisor(rng.below(supervisors as u64) as usize),
                6 => Fault::KillGateway,
                _ => Fault::WipeNode(rng.below(nodes as u64) as usize),
            };
            if let Fault::WipeNode(_) = f {
                // Once, and early enough for repair to finish under load.
                if wiped || planned > total / 2 {
                    continue;
                }
                wiped = true;
            }
            break f;
        };
        let hold = Duration::from_millis(2_000 + rng.below(8_000));
        let quiet = Duration::from_millis(1_000 + rng.below(4_000));
        planned += hold + quiet;
        steps.push(Step { fault, hold, quiet });
    }
    steps
}

/// Applies the faults of `steps` to the deployment, in order, until the
/// schedule ends or `deadline` passes; heals after each. Returns the
/// faults injected by kind.
pub fn inject(
    d: &mut Deployment,
    net: &Net,
    steps: &[Step],
    deadline: Instant,
    log: &mut Vec<String>,
) -> Result<BTreeMap<String, u64>> {
    let mut injected = BTreeMap::new();
    let started = Instant::now();
    for step in steps {
        if Instant::now() >= deadline {
            break;
        }
        let at = started.elapsed().as_secs_f32();
        log.push(format!(
            "{at:7.1}s {:?} for {:.1}s",
            step.fault,
            step.hold.as_secs_f32()
        ));
        apply(d, net, &step.fault)?;
        *injected.entry(step.fault.kind().to_owned()).or_default() += 1;
        std::thread::sleep(step.hold);
        heal(d, net)?;
        std::thread::sleep(step.quiet);
    }
    Ok(injected)
}

fn node_host(i: usize) -> String {
    format!("n{}", i + 1)
}

fn apply(d: &mut Deployment, net: &Net, f: &Fault) -> Result<()> {
    match f {
        Fault::IsolateNode(i) => net.isolate(&node_host(*i))?,
        Fault::CutGateway(nodes) => {
            for i in nodes {
                net.cut("gw", &node_host(*i))?;
            }
        }
        Fault::IsolateSupervisor(i) => net.isolate(&format!("s{}", i + 1))?,
        Fault::IsolateMeta => net.isolate("meta")?,
        Fault::KillNode(i) => d.nodes[*i].kill9(),
        Fault::KillSupervisor(i) => d.supervisors[*i].kill9(),
        Fault::KillGateway => d.gateway.kill9(),
        Fault::WipeNode(i) => {
            d.nodes[*i].kill9();
            let objects = d.node_dir(*i).join("objects");
            if objects.exists() {
                std::fs::remove_dir_all(&objects)?;
            }
            d.nodes[*i].restart()?;
        }
    }
    Ok(())
}

/// Heals every link and restarts every process that is not running.
pub fn heal(d: &mut Deployment, net: &Net) -> Result<()> {
    net.heal()?;
    for p in d.nodes.iter_mut().chain(d.supervisors.iter_mut()) {
        if !p.is_running() {
            p.restart()?;
        }
    }
    if !d.gateway.is_running() {
        d.gateway.restart()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_covering_every_kind() {
        let total = Duration::from_secs(1800);
        let a = schedule(7, total, 3, 2);
        assert_eq!(a, schedule(7, total, 3, 2), "replayable");
        assert_ne!(a, schedule(8, total, 3, 2));
        let kinds: std::collections::BTreeSet<&str> = a.iter().map(|s| s.fault.kind()).collect();
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        let wipes = a
            .iter()
            .filter(|s| matches!(s.fault, Fault::WipeNode(_)))
            .count();
        assert_eq!(wipes, 1);
        for s in &a {
            if let Fault::CutGateway(v) = &s.fault {
                assert!(!v.is_empty() && v.len() <= 2 && (v.len() == 1 || v[0] != v[1]));
            }
        }
    }
}
