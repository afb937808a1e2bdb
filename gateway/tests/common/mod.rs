//! A real cluster for gateway tests: embedded meta (redb in a tempdir),
//! three real storage-node servers on 127.0.0.1:0 in three AZs, and the
//! gateway on 127.0.0.1:0. Requests are signed with the `auth` crate's
//! signer, exactly like the CLI signs them.

#![allow(dead_code)]

use anyhow::{Context, Result};
use auth::sign::{RequestSigner, SigningKey};
use meta::embedded::EmbeddedKv;
use meta::kv::{Kv, KvError, KvResult, Snapshot, Txn};
use meta::namespace::{Namespace, NodeRecord, NodeState, SshKey};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use storage_node::server::{NodeConfig, NodeServer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Node {
    pub id: String,
    pub url: String,
    pub data_dir: PathBuf,
    token: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// The real embedded backend behind a switch that makes it unreachable
/// (a deliberate fault, like a cut network to the metadata tier).
pub struct SwitchableKv {
    inner: Arc<dyn Kv>,
    pub down: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Kv for SwitchableKv {
    async fn begin(&self) -> KvResult<Box<dyn Txn>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(KvError::Unavailable("test: metadata cut off".into()));
        }
        self.inner.begin().await
    }

    async fn snapshot(&self) -> KvResult<Box<dyn Snapshot>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(KvError::Unavailable("test: metadata cut off".into()));
        }
        self.inner.snapshot().await
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// Set to make the metadata tier unreachable.
    pub meta_down: Arc<AtomicBool>,
    pub ns: Arc<Namespace>,
    pub addr: SocketAddr,
    pub base: String,
    pub nodes: Vec<Node>,
    pub alice: RequestSigner,
    pub bob: RequestSigner,
    pub http: reqwest::Client,
    gw_stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../auth/testdata")
        .join(name)
}

async fn add_key(ns: &Namespace, login: &str, file: &str) -> Result<RequestSigner> {
    let pub_line = std::fs::read_to_string(testdata(&format!("{file}.pub")))?;
    let pk = auth::PublicKey::from_openssh(pub_line.trim())?;
    ns.add_key(
        login,
        None,
        &SshKey {
            fingerprint_md5: pk.fingerprint_md5(),
            fingerprint_sha256: pk.fingerprint_sha256(),
            public_key: pub_line.trim().to_owned(),
            name: file.to_owned(),
        },
    )
    .await?;
    let sk = SigningKey::from_openssh(&std::fs::read_to_string(testdata(file))?)?;
    Ok(RequestSigner::new(sk, login, None))
}

impl Cluster {
    pub async fn start() -> Result<Cluster> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir()?;
        let meta_down = Arc::new(AtomicBool::new(false));
        let kv = Arc::new(SwitchableKv {
            inner: Arc::new(EmbeddedKv::open(dir.path().join("meta.redb")).await?),
            down: meta_down.clone(),
        });
        let ns = Arc::new(Namespace::new(kv));
        ns.create_account("alice").await?;
        ns.create_account("bob").await?;
        let alice = add_key(&ns, "alice", "ed25519").await?;
        let bob = add_key(&ns, "bob", "rsa_2048").await?;

        let cluster_key = storage_node::ClusterKey::generate();
        let mut nodes = Vec::new();
        for (i, az) in ["az-a", "az-b", "az-c"].iter().enumerate() {
            let id = format!("node{i}");
            let data_dir = dir.path().join(&id);
            let server = NodeServer::bind(NodeConfig {
                data_dir: data_dir.clone(),
                listen: "127.0.0.1:0".parse()?,
                node_id: id.clone(),
                az: (*az).to_owned(),
                cluster_key: cluster_key.clone(),
            })
            .await?;
            let url = server.url();
            ns.register_node(&NodeRecord {
                id: id.clone(),
                url: url.clone(),
                az: (*az).to_owned(),
                capacity_total: 1 << 40,
                capacity_used: 0,
                heartbeat_ms: meta::namespace::system_now_ms(),
                pool_health: None,
                state: NodeState::Active,
            })
            .await?;
            let token = CancellationToken::new();
            let t = token.clone();
            let task = tokio::spawn(async move {
                let _ = server.serve(t).await;
            });
            nodes.push(Node {
                id,
                url,
                data_dir,
                token,
                task: Some(task),
            });
        }

        let node_client =
            storage_node::NodeClient::new(storage_node::ClientOptions::default(), &cluster_key)?;
        let mut cfg = gateway::GatewayConfig::new(ns.clone(), node_client);
        cfg.max_content_length = 64 << 20;
        // Nodes in tests never heartbeat; keep them all "fresh".
        cfg.health.heartbeat_timeout = Duration::from_secs(3600);
        cfg.upload_idle_timeout = Duration::from_secs(2);
        let gw = gateway::Gateway::new(cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = gateway::serve(listener, gw, async move {
                let _ = rx.await;
            })
            .await;
        });
        Ok(Cluster {
            dir,
            meta_down,
            ns,
            addr,
            base: format!("http://{addr}"),
            nodes,
            alice,
            bob,
            // The CLI never follows redirects (the MPU lookup answers 301).
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            gw_stop: Some(tx),
        })
    }

    /// Stops a storage node (its port then refuses connections).
    pub async fn kill_node(&mut self, id: &str) -> Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.id == id)
            .context("no such node")?;
        node.token.cancel();
        if let Some(t) = node.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t).await??;
        }
        Ok(())
    }

    pub fn date_now() -> String {
        auth::sign::http_date(SystemTime::now())
    }

    /// A request signed as `signer` (None = anonymous), `path` raw (encoded).
    pub fn req(
        &self,
        signer: Option<&RequestSigner>,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let date = Self::date_now();
        let mut b = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("date", &date);
        if let Some(s) = signer {
            b = b.header("authorization", s.authorization(&date).expect("sign"));
        }
        b
    }

    pub fn alice(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.req(Some(&self.alice), method, path)
    }

    pub async fn mkdir(&self, path: &str) -> Result<()> {
        let r = self
            .alice(reqwest::Method::PUT, path)
            .header("content-type", "application/json; type=directory")
            .send()
            .await?;
        anyhow::ensure!(r.status() == 204, "mkdir {path}: {}", r.status());
        Ok(())
    }

    pub async fn put(&self, path: &str, body: &'static [u8]) -> Result<reqwest::Response> {
        Ok(self
            .alice(reqwest::Method::PUT, path)
            .body(body)
            .send()
            .await?)
    }

    pub async fn get_bytes(&self, path: &str) -> Result<(reqwest::StatusCode, Vec<u8>)> {
        let r = self.alice(reqwest::Method::GET, path).send().await?;
        let s = r.status();
        Ok((s, r.bytes().await?.to_vec()))
    }

    /// Sends `head` on a fresh connection and reads until the server
    /// closes it (or 10 s pass).
    pub async fn raw_exchange(&self, head: &str) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(self.addr).await?;
        sock.write_all(head.as_bytes()).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n = tokio::time::timeout_at(deadline, sock.read(&mut chunk)).await??;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// A request head signed as alice, `extra` being more header lines.
    pub fn signed_head(&self, method: &str, path: &str, extra: &str) -> String {
        let date = Self::date_now();
        let auth = self.alice.authorization(&date).expect("sign");
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nDate: {date}\r\nAuthorization: {auth}\r\n{extra}\r\n",
            self.addr
        )
    }

    /// Names in a listing body.
    pub fn names(body: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(body)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json line");
                v["name"].as_str().expect("name").to_owned()
            })
            .collect()
    }

    /// Overwrites the first copy of the object at `name` from byte `from`
    /// on with different bytes of the same length (silent corruption).
    pub async fn corrupt_first_copy(&self, name: &str, from: usize) -> Result<()> {
        let entry = self
            .ns
            .get(&meta::path::MantaPath::parse(name)?)
            .await?
            .context("no such entry")?;
        let o = entry.object().context("not an object")?;
        let object_id = o.object_id.to_string();
        let node = self
            .nodes
            .iter()
            .find(|n| n.id == o.copies[0])
            .context("node")?;
        let path = node
            .data_dir
            .join("objects")
            .join(&object_id[..2])
            .join(&object_id);
        let mut bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
        for b in bytes.iter_mut().skip(from) {
            *b ^= 0x55;
        }
        std::fs::write(&path, bytes)?;
        Ok(())
    }

    /// Object copies stored under a node's data dir (by object id),
    /// excluding temporary and tombstoned ones.
    pub fn node_files(&self, id: &str) -> Vec<String> {
        let node = self.nodes.iter().find(|n| n.id == id).expect("node");
        let mut out = Vec::new();
        let objects = node.data_dir.join("objects");
        if let Ok(shards) = std::fs::read_dir(&objects) {
            for shard in shards.flatten() {
                if let Ok(files) = std::fs::read_dir(shard.path()) {
                    for f in files.flatten() {
                        let name = f.file_name().to_string_lossy().into_owned();
                        // Block checksums belong to the copy beside them.
                        if !name.ends_with(".sums") {
                            out.push(name);
                        }
                    }
                }
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(tx) = self.gw_stop.take() {
            let _ = tx.send(());
        }
        for n in &self.nodes {
            n.token.cancel();
        }
    }
}

pub fn md5_b64(data: &[u8]) -> String {
    use base64::Engine as _;
    use md5::{Digest, Md5};
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}
