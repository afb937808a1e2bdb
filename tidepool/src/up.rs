//! `tidepool up`: a whole Tidepool in one process on one machine —
//! embedded metadata, three storage nodes (own directories, ports and
//! availability zones), the gateway and a job supervisor — plus the lines
//! that point Manta's CLI at it.
//!
//! With `--meta tikv://...` it is also the gateway of a multi-process
//! deployment: `--nodes 0 --no-supervisor` leaves storage nodes to
//! `tidepool node` processes and jobs to `tidepool supervisor` processes.
//!
//! Internal requests (gateway → nodes, supervisor → agents) are signed with
//! the cluster credential: `DATA/cluster.key`, created (mode 0600) on first
//! start, or `--cluster-key FILE` (required with `--nodes 0`, where the
//! nodes run elsewhere and share it). The storage nodes this process runs
//! listen on loopback only, whatever `--listen` says for the gateway.
//!
//! Restarting with the same `--data` keeps every object: metadata lives in
//! `DATA/meta.redb`, node `i`'s files in `DATA/nodes/node{i}`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use storage_node::{ClientOptions, NodeClient};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::keys::{self, KeySource};
use crate::metastore::{Meta, MetaSpec};
use crate::node;

#[derive(Args)]
pub struct UpArgs {
    /// Data directory (metadata, node files, generated keys).
    #[arg(long, default_value = "./tidepool-data")]
    pub data: PathBuf,
    /// Gateway listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Account to create (if missing) and register the key for; default `$USER`.
    #[arg(long)]
    pub account: Option<String>,
    /// OpenSSH public key for the account; default the first `~/.ssh/id_*.pub`,
    /// else a key pair generated under the data directory.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Number of storage nodes run in this process (0: only the gateway,
    /// for nodes run by `tidepool node` on shared metadata).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub nodes: u32,
    /// Do not run a job supervisor in this process (jobs are then driven
    /// by `tidepool supervisor` processes on shared metadata).
    #[arg(long)]
    pub no_supervisor: bool,
    #[command(flatten)]
    pub supervision: crate::supervise::SupervisionArgs,
    /// Metadata backend: `embedded` (`DATA/meta.redb`) or an external TiKV
    /// cluster, `tikv://PD1:2379,PD2:2379,...`.
    #[arg(long, default_value = "embedded")]
    pub meta: MetaSpec,
    /// Serve the gateway over HTTPS with this PEM certificate chain (leaf
    /// first). Needed for anything beyond loopback: without TLS, requests
    /// and their signatures travel in clear (docs/security.md).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Also serve the S3 API on this address (plain HTTP; off unless
    /// given). Keys: `tidepool admin s3-key add LOGIN`. See docs/s3.md.
    #[arg(long, value_name = "ADDR")]
    pub s3_listen: Option<SocketAddr>,
    /// Cluster key file shared with the deployment's other processes
    /// (`tidepool admin cluster init`); default `DATA/cluster.key`,
    /// created if missing. Required with `--nodes 0`.
    #[arg(long, env = cluster_auth::KEY_FILE_ENV)]
    pub cluster_key: Option<PathBuf>,
    /// Bytes per GB of a job phase's `disk` quota. Only for tests, which
    /// exercise the quota with a small unit.
    #[arg(long, hide = true, default_value_t = compute::agent::DISK_UNIT, value_parser = clap::value_parser!(u64).range(1..))]
    pub task_disk_unit: u64,
    /// Largest job-phase `memory` (MB) a task may have on these nodes; a
    /// phase asking for more is refused at dispatch ("not enough memory
    /// available").
    #[arg(long, value_name = "MB", default_value_t = compute::agent::DEFAULT_MAX_TASK_MEMORY_MB)]
    pub task_max_memory: u32,
    #[command(flatten)]
    pub upkeep: node::UpkeepArgs,
    #[command(flatten)]
    pub health: node::HealthArgs,
    #[command(flatten)]
    pub admin: crate::admin_listen::AdminListenArgs,
    /// Keep everything on ZFS: the data directory becomes dataset
    /// `DATASET` (created if missing; the directory must then be empty or
    /// missing) and node `i` the child dataset `DATASET/node{i}`; `tidepool
    /// admin backup` snapshots the metadata.
    #[arg(long, value_name = "DATASET")]
    pub zfs: Option<String>,
    /// Quota of each node's dataset (e.g. `500G`).
    #[arg(long, requires = "zfs", value_parser = upkeep::parse_size)]
    pub zfs_quota: Option<u64>,
}

/// The cluster key `tidepool up` keeps in its data directory.
pub const CLUSTER_KEY_FILE: &str = "cluster.key";

pub async fn run(args: UpArgs) -> Result<()> {
    crate::admin_listen::recorder()?;
    // Checked first: a bad certificate must stop startup before anything runs.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(gateway::ServerTls::from_pem_files(cert, key)?),
        _ => None,
    };
    let data = std::path::absolute(&args.data).context("data directory")?;
    if let Some(dataset) = &args.zfs {
        // Before anything is written to the data directory.
        storage_node::zfs::ensure_dataset(dataset, &data, None)
            .await
            .with_context(|| format!("ZFS dataset {dataset} for the data directory"))?;
    }
    let cluster_key = match &args.cluster_key {
        Some(file) => cluster_auth::ClusterKey::load(file)?,
        None if args.nodes == 0 => anyhow::bail!(
            "--nodes 0 needs --cluster-key FILE (the key the deployment's nodes use; \
             `tidepool admin cluster init --out FILE` makes one)"
        ),
        None => {
            std::fs::create_dir_all(&data).context("data directory")?;
            cluster_auth::ClusterKey::load_or_create(&data.join(CLUSTER_KEY_FILE))?
        }
    };
    let meta = Meta::open(&args.meta, &data).await?;
    let ns = meta.ns.clone();

    let login = match args.account {
        Some(l) => l,
        None => std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "tidepool".into()),
    };
    let key = keys::resolve(args.key, &data)?;
    let ssh_key = admin::read_public_key(key.public_file())?;
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    match admin::ensure_account_key(&ns, &login, None, &ssh_key).await {
        Ok(()) => {}
        // A remote cluster may come up after us: keep serving (503s until
        // then) and register the account as soon as it answers.
        Err(e) if meta.is_remote() => {
            tracing::warn!(error = %format!("{e:#}"), meta = %args.meta, "metadata unreachable; will retry registering the account");
            let (ns, login, ssh_key, stop) =
                (ns.clone(), login.clone(), ssh_key.clone(), shutdown.clone());
            // Detached, not in `tasks`: finishing is its success, not a
            // component stopping.
            tokio::spawn(async move {
                let mut delay = Duration::from_millis(500);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    match admin::ensure_account_key(&ns, &login, None, &ssh_key).await {
                        Ok(()) => {
                            tracing::info!(%login, "account registered");
                            return;
                        }
                        Err(e) => {
                            tracing::debug!(error = %format!("{e:#}"), "account registration")
                        }
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            });
        }
        Err(e) => return Err(e),
    }
    meta.spawn_housekeeping(shutdown.clone());
    // The gateway and the supervisor's archiver reach copies held by this
    // process's nodes straight in their stores, not through loopback HTTP.
    let client = NodeClient::new(ClientOptions::default(), &cluster_key).context("node client")?;
    let mut node_urls = Vec::new();
    // The sandbox (and its toolbox compilation) only where tasks run.
    if args.nodes > 0 {
        let compute = crate::agents::Compute::new(ns.clone(), args.nodes, &cluster_key)?
            .with_disk_unit(args.task_disk_unit)
            .with_max_task_memory(args.task_max_memory)
            .with_health(args.health.rule());
        for i in 1..=args.nodes {
            let spec = node::NodeSpec {
                id: format!("node{i}"),
                az: format!("az{i}"),
                dir: data.join("nodes").join(format!("node{i}")),
                // Internal protocol: loopback only, whatever the gateway's
                // --listen is (the gateway reaches them in-process or here).
                listen: SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), 0),
                tasks: node::DEFAULT_TASKS,
                upkeep: args.upkeep.clone(),
                health: args.health,
                zfs: args
                    .zfs
                    .as_ref()
                    .map(|d| (format!("{d}/node{i}"), args.zfs_quota)),
            };
            let (url, store) = node::spawn(spec, &ns, &compute, &mut tasks, &shutdown).await?;
            client.add_local_store(&url, store);
            node_urls.push((format!("node{i}"), url));
        }
    }

    let mut config = gateway::GatewayConfig::new(ns.clone(), client.clone());
    config.health = args.health.rule();
    config.tokens_from_cluster_key(&cluster_key);
    let gateway = gateway::Gateway::new(config);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let metrics_url =
        crate::admin_listen::start(&args.admin, Some(gateway.clone()), &mut tasks, &shutdown)
            .await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr()?);
    if tls.is_none() && !args.listen.ip().is_loopback() {
        // On stderr as well as in the log: the default log filter shows
        // errors only, and this must not go unseen.
        let warning = format!(
            "WARNING: the gateway serves plain HTTP on {}, beyond loopback: requests, \
             object data and signatures travel in clear, and a captured signature can be \
             replayed within the clock-skew window. Use --tls-cert/--tls-key \
             (docs/security.md).",
            args.listen
        );
        crate::warning(&warning);
    }
    let s3_url = match args.s3_listen {
        None => None,
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen on {addr} (--s3-listen)"))?;
            let s3_url = format!("http://{}", l.local_addr()?);
            if !addr.ip().is_loopback() {
                let warning = format!(
                    "WARNING: the S3 API serves plain HTTP on {addr}, beyond loopback: \
                     object data travels in clear. Put a TLS proxy in front of it."
                );
                crate::warning(&warning);
            }
            let (gw, stop) = (gateway.clone(), shutdown.clone());
            tasks.spawn(async move {
                gateway::s3::serve(l, gw, async move { stop.cancelled().await })
                    .await
                    .context("S3 API")
            });
            Some(s3_url)
        }
    };
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let stopped = async move { stop.cancelled().await };
        let served = match tls {
            Some(tls) => gateway::serve_tls(listener, tls, gateway, stopped).await,
            None => gateway::serve(listener, gateway, stopped).await,
        };
        served.context("gateway")
    });

    if !args.no_supervisor {
        let supervisor = crate::agents::supervisor(
            ns.clone(),
            client,
            &cluster_key,
            args.supervision.options(&args.health),
            shutdown.clone(),
        )?;
        let (ns, nodes) = (ns.clone(), node_urls.clone());
        tasks.spawn(async move {
            nodes_registered(&ns, &nodes).await;
            supervisor.await
        });
    }

    println!("metrics at {metrics_url} (admin listener: unauthenticated, see --admin-listen)");
    if let Some(s3) = &s3_url {
        println!("S3 API at {s3} (access keys: tidepool admin s3-key add LOGIN)");
    }
    print_instructions(&Deployed {
        url: &url,
        login: &login,
        fingerprint: &ssh_key.fingerprint_md5,
        key: &key,
        data: &data,
        meta: &args.meta,
        tls_cert: args.tls_cert.as_deref(),
        nodes: &node_urls,
    });

    serve_until_interrupted(tasks, shutdown).await
}

/// Waits for Ctrl-C (then stops every component through `shutdown` and
/// waits for them) or for a component to stop on its own (an error).
pub async fn serve_until_interrupted(
    mut tasks: JoinSet<Result<()>>,
    shutdown: CancellationToken,
) -> Result<()> {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(res) = tasks.join_next() => {
            shutdown.cancel();
            res??;
            anyhow::bail!("a component stopped unexpectedly");
        }
    }
    shutdown.cancel();
    while let Some(res) = tasks.join_next().await {
        res??;
    }
    Ok(())
}

/// What `up` started, for the lines it prints.
struct Deployed<'a> {
    url: &'a str,
    login: &'a str,
    fingerprint: &'a str,
    key: &'a KeySource,
    data: &'a std::path::Path,
    meta: &'a MetaSpec,
    tls_cert: Option<&'a std::path::Path>,
    /// `(node id, node URL)` of the nodes in this process.
    nodes: &'a [(String, String)],
}

fn print_instructions(d: &Deployed<'_>) {
    let Deployed {
        url,
        login,
        fingerprint,
        key,
        data,
        meta,
        tls_cert,
        nodes,
    } = *d;
    println!(
        "Tidepool is up: gateway {url}, {} storage nodes, data in {}, metadata {meta}",
        nodes.len(),
        data.display()
    );
    for (id, node_url) in nodes {
        println!("storage node {id} at {node_url} (internal: cluster key required, loopback only)");
    }
    println!("Point Manta's CLI (npm install manta@5.4.2) at it by pasting:");
    println!();
    println!("export MANTA_URL={url}");
    println!("export MANTA_USER={login}");
    println!("unset MANTA_SUBUSER MANTA_ROLE MANTA_TLS_INSECURE");
    if let Some(cert) = tls_cert {
        let cert = std::path::absolute(cert).unwrap_or_else(|_| cert.to_owned());
        println!(
            "# a self-signed certificate? trust it: export NODE_EXTRA_CA_CERTS={}",
            cert.display()
        );
        println!("# (or skip verification, for tests only: export MANTA_TLS_INSECURE=1)");
    }
    if let KeySource::Generated(public) = key {
        let private = public.with_extension("");
        println!(
            "# the CLI signs with keys from ssh-agent or ~/.ssh; this one was generated for you:"
        );
        println!(
            "eval \"$(ssh-agent -s)\" >/dev/null; ssh-add {}",
            private.display()
        );
    }
    println!("export MANTA_KEY_ID={fingerprint}");
    println!();
    println!("Serving until interrupted (Ctrl-C).");
}

/// How long the supervisor waits for this process's nodes to register.
const REGISTRATION_WAIT: Duration = Duration::from_secs(10);

/// Waits until every node of `nodes` (id, URL) has a record with this
/// process's URL, or [`REGISTRATION_WAIT`] has passed. After a restart the
/// records still name the URLs the nodes had before (their ports are
/// ephemeral): a supervisor claiming a job left from before would send its
/// tasks there, find them refused, and fail them as if no server could run
/// them.
async fn nodes_registered(ns: &meta::namespace::Namespace, nodes: &[(String, String)]) {
    let start = std::time::Instant::now();
    loop {
        let mut all = true;
        for (id, url) in nodes {
            let current = matches!(ns.get_node(id).await, Ok(Some(r)) if &r.url == url);
            all &= current;
        }
        if all {
            return;
        }
        if start.elapsed() >= REGISTRATION_WAIT {
            tracing::warn!(
                "storage nodes not registered after {REGISTRATION_WAIT:?}; starting the supervisor anyway"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
