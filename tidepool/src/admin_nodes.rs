//! `tidepool admin node …`, `tidepool admin workers …` and `tidepool admin
//! backup`: the cluster view, the background workers and metadata backups,
//! for operators.
//!
//! Node states are kept in metadata, so with `--meta tikv://…` these work
//! on a running deployment; every process sees a change within its next
//! metadata read (repair at its next pass).

use std::collections::HashMap;

use anyhow::{Result, bail};
use clap::Subcommand;
use membership::ClusterView;
use meta::namespace::{Namespace, NodeState, system_now_ms};

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Every node: condition, zone, capacity, and the copies metadata
    /// records on it (a draining node with none is safe to remove).
    List {
        #[command(flatten)]
        health: crate::node::HealthArgs,
    },
    /// Takes no new copies or tasks; repair moves every copy it holds to
    /// other nodes.
    Drain { id: String },
    /// Declares the node gone: its copies count as missing, and repair
    /// makes new ones from the other copies.
    Lost { id: String },
    /// Back in service (after `drain` or `lost`).
    Undrain { id: String },
}

#[derive(Subcommand)]
pub enum WorkersCommand {
    /// Every background worker of every process: state, passes, progress,
    /// last error.
    List,
    /// Holds a worker (every scope, or `--scope NODE`) at its next
    /// checkpoint until resumed.
    Pause {
        name: String,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Lets a paused worker run again.
    Resume {
        name: String,
        #[arg(long)]
        scope: Option<String>,
    },
}

pub async fn node(ns: &Namespace, cmd: NodeCommand) -> Result<()> {
    let set = |id: String, state: NodeState| async move {
        if ns.get_node(&id).await?.is_none() {
            bail!("no node {id:?} is registered (see `tidepool admin node list`)");
        }
        ns.set_node_state(&id, state).await?;
        anyhow::Ok(id)
    };
    match cmd {
        NodeCommand::List { health } => {
            let view = ClusterView::load(ns, health.rule(), None, system_now_ms()).await?;
            let copies = copies_per_node(ns).await?;
            for n in view.nodes() {
                let r = &n.record;
                let held = copies.get(&r.id).copied().unwrap_or(0);
                let note = match (r.state, held) {
                    (NodeState::Draining, 0) => "  (drained: safe to remove)",
                    (NodeState::Draining, _) => "  (draining)",
                    _ => "",
                };
                println!(
                    "node {} {} az={} url={} used={}/{} copies={held}{note}",
                    r.id, n.condition, r.az, r.url, r.capacity_used, r.capacity_total
                );
            }
        }
        NodeCommand::Drain { id } => {
            let id = set(id, NodeState::Draining).await?;
            println!(
                "node {id} is draining: it takes nothing new, and repair moves its copies \
                 to other nodes; `tidepool admin node list` says when it holds none"
            );
        }
        NodeCommand::Lost { id } => {
            let id = set(id, NodeState::Lost).await?;
            println!("node {id} is lost: repair makes new copies of what it held");
        }
        NodeCommand::Undrain { id } => {
            let id = set(id, NodeState::Active).await?;
            println!("node {id} is up");
        }
    }
    Ok(())
}

/// Copies metadata records per node (one walk of every name).
async fn copies_per_node(ns: &Namespace) -> Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = ns.scan_objects(after.as_deref(), 4096).await?;
        for o in page.objects {
            for c in o.copies {
                *out.entry(c).or_insert(0) += 1;
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

pub async fn workers(ns: &Namespace, cmd: WorkersCommand) -> Result<()> {
    match cmd {
        WorkersCommand::List => {
            let now = system_now_ms();
            for w in ns.list_workers().await? {
                let age = now.saturating_sub(w.updated_ms) / 1000;
                let paused = if w.paused {
                    " (paused by operator)"
                } else {
                    ""
                };
                println!(
                    "{} {} {}{paused} passes={} updated={age}s ago: {}",
                    w.scope, w.name, w.state, w.passes, w.progress
                );
                if let Some(e) = &w.last_error {
                    println!("    last error: {e}");
                }
            }
        }
        WorkersCommand::Pause { name, scope } => pause(ns, &name, scope.as_deref(), true).await?,
        WorkersCommand::Resume { name, scope } => pause(ns, &name, scope.as_deref(), false).await?,
    }
    Ok(())
}

async fn pause(ns: &Namespace, name: &str, scope: Option<&str>, paused: bool) -> Result<()> {
    let n = ns.set_worker_paused(scope, name, paused).await?;
    if n == 0 {
        bail!("no worker {name:?} has reported (see `tidepool admin workers list`)");
    }
    let what = if paused { "paused" } else { "resumed" };
    println!("{what} {n} {name} worker(s)");
    Ok(())
}

/// Snapshots the ZFS dataset holding `data` and copies `meta.redb` out of
/// the snapshot to `out`. The snapshot is as consistent as a crash at that
/// instant, which redb (every commit fsynced) recovers from; it is kept
/// (`zfs rollback` or `zfs clone` restore it).
pub async fn backup(data: &std::path::Path, out: &std::path::Path) -> Result<()> {
    use storage_node::zfs;
    let data = std::path::absolute(data)?;
    let Some(dataset) = zfs::dataset_at(&data).await? else {
        bail!(
            "{} is not the mount point of a ZFS dataset (start Tidepool with `tidepool up --zfs DATASET`)",
            data.display()
        );
    };
    let stamp = system_now_ms();
    let snap = format!("tidepool-backup-{stamp}");
    zfs::snapshot(&dataset, &snap).await?;
    let clone = format!("{dataset}-backup-{stamp}");
    let mount = std::env::temp_dir().join(&snap);
    let out_file = out.to_path_buf();
    let copied = zfs::with_snapshot_mounted(&dataset, &snap, &clone, &mount, |dir| {
        std::fs::copy(dir.join(crate::metastore::EMBEDDED_FILE), &out_file)
    })
    .await?;
    let _ = std::fs::remove_dir(&mount);
    let bytes =
        copied.map_err(|e| anyhow::anyhow!("copy the metadata out of the snapshot: {e}"))?;
    println!(
        "snapshot {dataset}@{snap} taken; metadata ({bytes} bytes) copied to {}",
        out.display()
    );
    Ok(())
}
