//! `tidepool up`: a whole Tidepool in one process on one machine —
//! embedded metadata, three storage nodes (own directories, ports and
//! availability zones) and the gateway — plus the lines that point Manta's
//! CLI at it.
//!
//! Restarting with the same `--data` keeps every object: metadata lives in
//! `DATA/meta.redb`, node `i`'s files in `DATA/nodes/node{i}`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use meta::namespace::Namespace;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::keys::{self, KeySource};
use crate::metastore::{Meta, MetaSpec};

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
    /// Number of storage nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub nodes: u32,
    /// Metadata backend: `embedded` (`DATA/meta.redb`) or an external TiKV
    /// cluster, `tikv://PD1:2379,PD2:2379,...`.
    #[arg(long, default_value = "embedded")]
    pub meta: MetaSpec,
}

/// How often nodes report their capacity; the gateway treats a node silent
/// for longer than its heartbeat timeout (30 s) as down.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Job tasks each storage node runs at once.
const TASKS_PER_NODE: usize = 4;

pub async fn run(args: UpArgs) -> Result<()> {
    let data = std::path::absolute(&args.data).context("data directory")?;
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
    let mut tasks = tokio::task::JoinSet::new();
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
    let compute = crate::compute::Compute::new(ns.clone())?;
    for i in 1..=args.nodes {
        let node_dir = data.join("nodes").join(format!("node{i}"));
        let config = storage_node::server::NodeConfig {
            data_dir: node_dir.clone(),
            listen: SocketAddr::new(args.listen.ip(), 0),
            node_id: format!("node{i}"),
            az: format!("az{i}"),
        };
        let node = storage_node::server::NodeServer::bind(config)
            .await
            .with_context(|| format!("start storage node {i}"))?;
        let info = storage_node::heartbeat::NodeInfo {
            node_id: node.identity().node_id.clone(),
            url: node.url(),
            az: node.identity().az.clone(),
        };
        let (registry, store, stop) = (Namespace::clone(&ns), node.store(), shutdown.clone());
        tasks.spawn(async move {
            storage_node::heartbeat::run(registry, store, info, HEARTBEAT, stop).await;
            Ok(())
        });
        let stop = shutdown.clone();
        let app = compute.node_app(&node, &node_dir, TASKS_PER_NODE);
        tasks.spawn(async move { node.serve_with(app, stop).await.context("storage node") });
    }

    let config = gateway::GatewayConfig::with_default_client(ns.clone()).context("node client")?;
    let gateway = gateway::Gateway::new(config);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let stop = shutdown.clone();
    tasks.spawn(async move {
        gateway::serve(listener, gateway, async move { stop.cancelled().await })
            .await
            .context("gateway")
    });

    tasks.spawn(compute.supervisor(shutdown.clone())?);

    print_instructions(
        &url,
        &login,
        &ssh_key.fingerprint_md5,
        &key,
        &data,
        &args.meta,
        args.nodes,
    );

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

fn print_instructions(
    url: &str,
    login: &str,
    fingerprint: &str,
    key: &KeySource,
    data: &std::path::Path,
    meta: &MetaSpec,
    nodes: u32,
) {
    println!(
        "Tidepool is up: gateway {url}, {nodes} storage nodes, data in {}, metadata {meta}",
        data.display()
    );
    println!("Point Manta's CLI (npm install manta@5.4.2) at it by pasting:");
    println!();
    println!("export MANTA_URL={url}");
    println!("export MANTA_USER={login}");
    println!("unset MANTA_SUBUSER MANTA_ROLE MANTA_TLS_INSECURE");
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
