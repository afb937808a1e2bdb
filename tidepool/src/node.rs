//! `tidepool node`: one storage node with its compute agent and heartbeat,
//! on its own, for deployments where gateways, storage nodes and
//! supervisors are separate processes sharing one metadata cluster. Also
//! the per-node wiring `tidepool up` starts for each of its nodes.
//!
//! Every request to the node (objects and the compute agent) must be signed
//! with the cluster credential given by `--cluster-key`. The node listens
//! where `--listen` says: that port must never be reachable from outside
//! the deployment's private network (see `docs/internal-auth.md`).
//!
//! Once serving it prints `tidepool node: ID serving at URL` on stdout
//! (deployment scripts and tests read the URL from it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use meta::namespace::Namespace;
use storage_node::store::ObjectStore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::agents::Compute;
use crate::metastore::{Meta, MetaSpec};

/// How often nodes report their capacity; the gateway treats a node silent
/// for longer than its heartbeat timeout (30 s) as down.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Job tasks a storage node runs at once, unless told otherwise. One
/// account holds at most three quarters of them (`compute::fair`), so 5
/// lets a lone account run 4, and another account start at once.
pub const DEFAULT_TASKS: u32 = 5;

#[derive(Args)]
pub struct NodeArgs {
    /// Metadata cluster shared with the rest of the deployment:
    /// `tikv://PD1:2379,...`.
    #[arg(long)]
    pub meta: MetaSpec,
    /// The node's directory (object files, task scratch space).
    #[arg(long)]
    pub data: PathBuf,
    /// Listen address (port 0 picks a free port). Internal protocol only:
    /// never expose it publicly.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The deployment's cluster key file (`tidepool admin cluster init`),
    /// readable by its owner only.
    #[arg(long, env = cluster_auth::KEY_FILE_ENV)]
    pub cluster_key: PathBuf,
    /// Node id, unique in the deployment; keep it across restarts.
    #[arg(long)]
    pub id: String,
    /// Availability zone (copies of an object go to distinct zones first).
    #[arg(long, default_value = "az1")]
    pub az: String,
    /// Job tasks run at once.
    #[arg(long, default_value_t = DEFAULT_TASKS, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub tasks: u32,
    /// Largest job-phase `memory` (MB) a task may have on this node; a
    /// phase asking for more is refused at dispatch ("not enough memory
    /// available").
    #[arg(long, value_name = "MB", default_value_t = compute::agent::DEFAULT_MAX_TASK_MEMORY_MB)]
    pub task_max_memory: u32,
    #[command(flatten)]
    pub upkeep: UpkeepArgs,
    #[command(flatten)]
    pub health: HealthArgs,
    /// Keep the node's files in this ZFS dataset (created if missing,
    /// mounted at `--data`); its pool's health goes into every heartbeat,
    /// and the pool is scrubbed on the scrub schedule.
    #[arg(long, value_name = "DATASET")]
    pub zfs: Option<String>,
    /// Quota of the node's ZFS dataset (e.g. `500G`): writes beyond it get
    /// `507 NotEnoughSpace`.
    #[arg(long, requires = "zfs", value_parser = upkeep::parse_size)]
    pub zfs_quota: Option<u64>,
    #[command(flatten)]
    pub admin: crate::admin_listen::AdminListenArgs,
}

/// The pace of a node's background workers (`tidepool up` and `tidepool
/// node`): durations like `500ms`, `5s`, `10m`, `7d`; rates in bytes per
/// second like `50M` (0: unlimited).
#[derive(Args, Clone, Debug)]
pub struct UpkeepArgs {
    /// Time between audits of a node's copies against metadata.
    #[arg(long, default_value = "1h", value_parser = upkeep::parse_duration)]
    pub audit_every: Duration,
    /// Time between scrub passes (every copy read and checked).
    #[arg(long, default_value = "7d", value_parser = upkeep::parse_duration)]
    pub scrub_every: Duration,
    /// Time between repair passes.
    #[arg(long, default_value = "1m", value_parser = upkeep::parse_duration)]
    pub repair_every: Duration,
    /// Time between garbage-collection passes.
    #[arg(long, default_value = "1m", value_parser = upkeep::parse_duration)]
    pub gc_every: Duration,
    /// A copy no name refers to is removed by audit only once older than this.
    #[arg(long, default_value = "1d", value_parser = upkeep::parse_duration)]
    pub gc_grace: Duration,
    /// Bytes per second repair copies.
    #[arg(long, default_value = "64M", value_parser = upkeep::parse_rate)]
    pub repair_rate: u64,
    /// Bytes per second scrub reads.
    #[arg(long, default_value = "32M", value_parser = upkeep::parse_rate)]
    pub scrub_rate: u64,
}

/// The cluster's one health rule, on every process that places or reads
/// copies (`up`, `node`, `supervisor`): give all of a deployment's
/// processes the same value.
#[derive(Args, Clone, Copy, Debug)]
pub struct HealthArgs {
    /// A node whose last heartbeat is older than this is `silent`: it
    /// takes no new copies and reads try it last. Nodes heartbeat at
    /// least three times per timeout.
    #[arg(long, default_value = "30s", value_parser = parse_node_timeout)]
    pub node_timeout: Duration,
}

impl HealthArgs {
    /// The rule every reader and writer of this process applies.
    pub fn rule(&self) -> membership::HealthRule {
        membership::HealthRule {
            heartbeat_timeout: self.node_timeout,
        }
    }

    /// Time between a node's heartbeats.
    pub fn heartbeat_every(&self) -> Duration {
        HEARTBEAT.min(self.node_timeout / 3)
    }
}

fn parse_node_timeout(s: &str) -> Result<Duration, String> {
    let d = upkeep::parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err("the node timeout must be at least 1s".into());
    }
    Ok(d)
}

/// One storage node to start.
pub struct NodeSpec {
    /// Node id.
    pub id: String,
    /// Availability zone.
    pub az: String,
    /// The node's directory.
    pub dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Job tasks run at once.
    pub tasks: u32,
    /// The pace of its background workers.
    pub upkeep: UpkeepArgs,
    /// The cluster's health rule.
    pub health: HealthArgs,
    /// Its ZFS dataset (mounted at `dir`) and the dataset's quota.
    pub zfs: Option<(String, Option<u64>)>,
}

/// Binds the node described by `spec` and adds its server (with the compute
/// agent), its heartbeat and its garbage collector to `tasks`, all stopping
/// on `shutdown`.
/// Returns the node's URL and its object store (for readers in this
/// process, [`storage_node::NodeClient::add_local_store`]).
pub async fn spawn(
    spec: NodeSpec,
    ns: &Arc<Namespace>,
    compute: &Compute,
    tasks: &mut JoinSet<Result<()>>,
    shutdown: &CancellationToken,
) -> Result<(String, Arc<ObjectStore>)> {
    if let Some((dataset, quota)) = &spec.zfs {
        storage_node::zfs::ensure_dataset(dataset, &spec.dir, *quota)
            .await
            .with_context(|| format!("ZFS dataset {dataset} for node {}", spec.id))?;
    }
    let config = storage_node::server::NodeConfig {
        data_dir: spec.dir.clone(),
        listen: spec.listen,
        node_id: spec.id.clone(),
        az: spec.az.clone(),
        cluster_key: compute.cluster_key().clone(),
    };
    let node = storage_node::server::NodeServer::bind(config)
        .await
        .with_context(|| format!("start storage node {}", spec.id))?;
    let url = node.url();
    let info = storage_node::heartbeat::NodeInfo {
        node_id: node.identity().node_id.clone(),
        url: url.clone(),
        az: node.identity().az.clone(),
        zfs_pool: spec
            .zfs
            .as_ref()
            .map(|(d, _)| storage_node::zfs::pool_of(d).to_owned()),
    };
    let local = node.store();
    // This node's agent writes task outputs (and reads copies) here directly.
    compute.add_local_store(&url, local.clone());
    spawn_workers(
        &spec,
        &url,
        info,
        ns,
        compute,
        local.clone(),
        tasks,
        shutdown,
    )?;
    let stop = shutdown.clone();
    let app = compute.node_app(&node, &spec.dir, spec.tasks as usize);
    tasks.spawn(async move { node.serve_with(app, stop).await.context("storage node") });
    Ok((url, local))
}

/// Starts the node's background workers (heartbeat, gc, audit, scrub,
/// repair) and the publisher of their status.
#[allow(clippy::too_many_arguments)]
fn spawn_workers(
    spec: &NodeSpec,
    url: &str,
    info: storage_node::heartbeat::NodeInfo,
    ns: &Arc<Namespace>,
    compute: &Compute,
    store: Arc<ObjectStore>,
    tasks: &mut JoinSet<Result<()>>,
    shutdown: &CancellationToken,
) -> Result<()> {
    let u = &spec.upkeep;
    let registry = upkeep::Registry::new(spec.id.clone(), ns.clone());
    let client = storage_node::NodeClient::new(
        storage_node::ClientOptions::default(),
        compute.cluster_key(),
    )
    .context("node client for repair")?;
    client.add_local_store(url, store.clone());
    let mut handles = vec![
        registry.spawn(
            upkeep::heartbeat::Heartbeat {
                ns: ns.clone(),
                store: store.clone(),
                node: info,
                every: spec.health.heartbeat_every(),
                registered: false,
            },
            shutdown.clone(),
        ),
        registry.spawn(
            upkeep::gc::GcWorker {
                ns: ns.clone(),
                store: store.clone(),
                node_id: spec.id.clone(),
                every: u.gc_every,
                config: storage_node::gc::GcConfig::default(),
            },
            shutdown.clone(),
        ),
        registry.spawn(
            upkeep::audit::Audit {
                ns: ns.clone(),
                store: store.clone(),
                node_id: spec.id.clone(),
                every: u.audit_every,
                grace: u.gc_grace,
            },
            shutdown.clone(),
        ),
        registry.spawn(
            upkeep::scrub::Scrub {
                ns: ns.clone(),
                store,
                node_id: spec.id.clone(),
                every: u.scrub_every,
                rate: u.scrub_rate,
            },
            shutdown.clone(),
        ),
        registry.spawn(
            upkeep::repair::Repair {
                ns: ns.clone(),
                client,
                node_id: spec.id.clone(),
                every: u.repair_every,
                rate: u.repair_rate,
                rule: spec.health.rule(),
            },
            shutdown.clone(),
        ),
    ];
    if let Some((dataset, _)) = &spec.zfs {
        handles.push(registry.spawn(
            upkeep::zpool::PoolScrub {
                pool: storage_node::zfs::pool_of(dataset).to_owned(),
                every: u.scrub_every,
            },
            shutdown.clone(),
        ));
    }
    let stop = shutdown.clone();
    tasks.spawn(async move {
        registry.run_publisher(stop).await;
        for h in handles {
            // A worker that panicked is a bug; it must not take the node down.
            if let Err(e) = h.await {
                tracing::error!(error = %e, "a background worker stopped abnormally");
            }
        }
        Ok(())
    });
    Ok(())
}

/// Runs `tidepool node` until interrupted or a component stops.
pub async fn run(args: NodeArgs) -> Result<()> {
    if args.meta == MetaSpec::Embedded {
        anyhow::bail!(
            "tidepool node needs metadata shared with the gateway (--meta tikv://PD1:2379,...); \
             on one machine, `tidepool up` runs nodes itself"
        );
    }
    crate::admin_listen::recorder()?;
    let dir = std::path::absolute(&args.data).context("node directory")?;
    let meta = Meta::open(&args.meta, Path::new(&dir)).await?;
    let key = cluster_auth::ClusterKey::load(&args.cluster_key)?;
    let compute = Compute::new(meta.ns.clone(), 1, &key)?
        .with_health(args.health.rule())
        .with_max_task_memory(args.task_max_memory);
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let spec = NodeSpec {
        id: args.id.clone(),
        az: args.az,
        dir,
        listen: args.listen,
        tasks: args.tasks,
        upkeep: args.upkeep,
        health: args.health,
        zfs: args.zfs.map(|d| (d, args.zfs_quota)),
    };
    let (url, _) = spawn(spec, &meta.ns, &compute, &mut tasks, &shutdown).await?;
    let metrics_url = crate::admin_listen::start(&args.admin, None, &mut tasks, &shutdown).await?;
    println!("tidepool node: {} serving at {url}", args.id);
    // Not prefixed `tidepool node:`: scripts wait for that line for the URL.
    crate::notice(&format!(
        "metrics at {metrics_url} (admin listener of node {}: unauthenticated)",
        args.id
    ));
    crate::up::serve_until_interrupted(tasks, shutdown).await
}
