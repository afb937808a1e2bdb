//! `tidepool supervisor`: a job supervisor on its own, for deployments
//! where gateways, storage nodes and supervisors are separate processes
//! sharing one metadata cluster. Any number may run: each job is owned by
//! one supervisor at a time through its lease, and a job whose supervisor
//! died is taken over once the lease expires.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use storage_node::{ClientOptions, NodeClient};
use tokio_util::sync::CancellationToken;

use crate::metastore::{Meta, MetaSpec};

#[derive(Args)]
pub struct SupervisorArgs {
    /// Metadata backend shared with the rest of the deployment:
    /// `tikv://PD1:2379,...` (or `embedded` for a data directory no other
    /// process holds).
    #[arg(long, default_value = "embedded")]
    pub meta: MetaSpec,
    /// Data directory (only for `--meta embedded`).
    #[arg(long, default_value = "./tidepool-data")]
    pub data: PathBuf,
    /// The deployment's cluster key file (`tidepool admin cluster init`);
    /// default `DATA/cluster.key`, as `tidepool up` creates it.
    #[arg(long, env = cluster_auth::KEY_FILE_ENV)]
    pub cluster_key: Option<PathBuf>,
    #[command(flatten)]
    pub health: crate::node::HealthArgs,
    #[command(flatten)]
    pub supervision: SupervisionArgs,
    #[command(flatten)]
    pub admin: crate::admin_listen::AdminListenArgs,
}

/// How a supervisor runs, the same flags on `tidepool supervisor` and on
/// `tidepool up` (whose supervisor runs in-process).
#[derive(Args, Debug, Clone, Copy)]
pub struct SupervisionArgs {
    /// Job lease: a job whose supervisor died is taken over by another
    /// once this has passed without a renewal.
    #[arg(long, default_value_t = DEFAULT_LEASE_TTL_MS, value_parser = clap::value_parser!(u64).range(100..))]
    pub lease_ttl_ms: u64,
    /// Time between passes of the metering worker, which writes every
    /// account's usage reports under `/:login/reports/usage/`.
    #[arg(long, default_value = "1h", value_parser = upkeep::parse_duration)]
    pub metering_every: std::time::Duration,
}

impl SupervisionArgs {
    /// The supervisor's options under the deployment's health rule.
    pub fn options(&self, health: &crate::node::HealthArgs) -> crate::agents::SupervisorOptions {
        crate::agents::SupervisorOptions {
            lease_ttl: std::time::Duration::from_millis(self.lease_ttl_ms),
            metering_every: self.metering_every,
            health: health.rule(),
        }
    }
}

/// Default job lease (ms).
pub const DEFAULT_LEASE_TTL_MS: u64 = 30_000;

pub async fn run(args: SupervisorArgs) -> Result<()> {
    crate::admin_listen::recorder()?;
    let data = std::path::absolute(&args.data)?;
    let meta = Meta::open(&args.meta, &data).await?;
    let shutdown = CancellationToken::new();
    meta.spawn_housekeeping(shutdown.clone());
    let key_file = args
        .cluster_key
        .unwrap_or_else(|| data.join(crate::up::CLUSTER_KEY_FILE));
    let key = cluster_auth::ClusterKey::load(&key_file)?;
    let client = NodeClient::new(ClientOptions::default(), &key)?;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::agents::supervisor(
        meta.ns.clone(),
        client,
        &key,
        args.supervision.options(&args.health),
        shutdown.clone(),
    )?);
    let metrics_url = crate::admin_listen::start(&args.admin, None, &mut tasks, &shutdown).await?;
    crate::notice(&format!(
        "tidepool supervisor: running against metadata {}; metrics at {metrics_url} \
         (admin listener: unauthenticated)",
        args.meta
    ));
    crate::up::serve_until_interrupted(tasks, shutdown).await
}
