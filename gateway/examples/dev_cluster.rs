//! A throwaway single-process cluster for poking the gateway with real
//! clients (e.g. the `manta` CLI): embedded meta in a temp dir, three
//! storage nodes, the gateway on the given port, one account with one key.
//!
//! `cargo run -p gateway --example dev_cluster -- 127.0.0.1:8089 alice ~/.ssh/id_ed25519.pub`
//!
//! (`tidepool up` is the real thing; this exists so the gateway can be
//! checked against the CLI without the binary.)

use anyhow::{Context, Result};
use meta::namespace::{Namespace, NodeRecord, NodeState, SshKey};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8089".into());
    let login = args.next().unwrap_or_else(|| "alice".into());
    let key_file = args
        .next()
        .context("usage: dev_cluster ADDR LOGIN PUBKEY_FILE")?;
    let line = std::fs::read_to_string(&key_file)?;
    let pk = auth::PublicKey::from_openssh(line.trim())?;

    let dir = tempfile::tempdir()?;
    let kv = Arc::new(meta::embedded::EmbeddedKv::open(dir.path().join("meta.redb")).await?);
    let ns = Arc::new(Namespace::new(kv));
    ns.create_account(&login).await?;
    ns.add_key(
        &login,
        None,
        &SshKey {
            fingerprint_md5: pk.fingerprint_md5(),
            fingerprint_sha256: pk.fingerprint_sha256(),
            public_key: line.trim().to_owned(),
            name: "dev".into(),
        },
    )
    .await?;
    let stop = CancellationToken::new();
    // A throwaway cluster credential shared by this toy's nodes and gateway.
    let cluster_key = storage_node::ClusterKey::generate();
    for (i, az) in ["az-a", "az-b", "az-c"].iter().enumerate() {
        let id = format!("node{i}");
        let server = storage_node::NodeServer::bind(storage_node::NodeConfig {
            data_dir: dir.path().join(&id),
            listen: "127.0.0.1:0".parse()?,
            node_id: id.clone(),
            az: (*az).into(),
            cluster_key: cluster_key.clone(),
        })
        .await?;
        ns.register_node(&NodeRecord {
            id,
            url: server.url(),
            az: (*az).into(),
            capacity_total: 1 << 40,
            capacity_used: 0,
            heartbeat_ms: meta::namespace::system_now_ms(),
            pool_health: None,
            state: NodeState::Active,
        })
        .await?;
        let s = stop.clone();
        tokio::spawn(async move { server.serve(s).await });
    }
    let mut cfg = gateway::GatewayConfig::with_default_client(ns, &cluster_key)?;
    // No heartbeats in this toy: registrations stay fresh.
    cfg.health.heartbeat_timeout = Duration::from_secs(365 * 24 * 3600);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "export MANTA_URL=http://{} MANTA_USER={login} MANTA_KEY_ID={}",
        listener.local_addr()?,
        pk.fingerprint_md5()
    );
    gateway::serve(listener, gateway::Gateway::new(cfg), async move {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    stop.cancel();
    Ok(())
}
