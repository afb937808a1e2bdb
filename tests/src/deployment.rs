//! A multi-process deployment for end-to-end tests: the gateway
//! (`tidepool up --nodes 0 --no-supervisor`), storage nodes (`tidepool
//! node`) and job supervisors (`tidepool supervisor`) as separate real
//! processes sharing one metadata cluster, each of which a test can kill
//! with SIGKILL and start again.
//!
//! The metadata cluster is `tikv-test-server`, the workspace's
//! protocol-level TiKV+PD test double, hosted in this test process on its
//! own tokio runtime (there are no TiKV binaries on a test machine); every
//! `tidepool` process reaches it over gRPC with `--meta tikv://...`
//! exactly as it would reach a real cluster.
//!
//! Every process gets the same cluster key file (`--cluster-key`), made
//! with `tidepool admin cluster init` as an operator would.
//!
//! With [`DeploymentOptions::net`], every process runs on a host of its
//! own ([`crate::netns`]): the metadata tier as the `tikv-test-double`
//! process on host `meta` (so it can be cut off too), the gateway on `gw`,
//! node `i` on `n{i}` and supervisor `j` on `s{j}`, each listening on its
//! host's address; the test process reaches all of them over the bridge.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::netns::Net;
use crate::{Cluster, ClusterOptions, module_cache_dir, tidepool_bin};

/// How long a process may take to say it is serving (it may compile the
/// toolbox first when the module cache is cold).
const START_LIMIT: Duration = Duration::from_secs(180);

/// Compiles the toolbox into the shared module cache once per test
/// process, before any node starts: nodes started together would otherwise
/// each compile it at the same time (minutes of CPU in a debug build on a
/// cold cache), and later ones load it from the cache.
fn warm_module_cache() {
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| {
        let mut cmd = Command::new(tidepool_bin());
        cmd.args(["exec", "--input", "/dev/null", "cat"])
            .env("XDG_CACHE_HOME", module_cache_dir());
        // A failure here only costs time; the nodes compile it themselves.
        let _ = crate::run_with_deadline(&mut cmd, None, START_LIMIT);
    });
}

/// The PD port of the metadata test double on its own host.
const META_PORT: u16 = 2379;
/// The port of every `tidepool node` on its own host: fixed, so a node
/// restarted after `kill -9` comes back at the same address.
const NODE_PORT: u16 = 7000;

/// One server process (`tidepool`, or the metadata test double) started
/// with fixed arguments, optionally inside a network namespace,
/// restartable.
pub struct Proc {
    name: String,
    program: PathBuf,
    netns: Option<String>,
    args: Vec<OsString>,
    ready_prefix: String,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    ready_line: String,
}

impl Proc {
    /// Starts `program ARGS` (in network namespace `netns` when given) and
    /// waits until it prints a line starting with `ready_prefix`.
    fn start_in(
        name: &str,
        program: PathBuf,
        netns: Option<String>,
        args: Vec<OsString>,
        ready_prefix: &str,
    ) -> Result<Proc> {
        let mut p = Proc {
            name: name.to_owned(),
            program,
            netns,
            args,
            ready_prefix: ready_prefix.to_owned(),
            child: None,
            log: Arc::default(),
            ready_line: String::new(),
        };
        p.launch()?;
        Ok(p)
    }

    fn launch(&mut self) -> Result<()> {
        let mut cmd = crate::in_netns(self.netns.as_deref(), &self.program);
        crate::server_env(&mut cmd);
        cmd.args(&self.args);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", self.name))?;
        let (tx, rx) = mpsc::channel::<String>();
        let outs: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        for out in outs {
            let (log, tx) = (self.log.clone(), tx.clone());
            // Drains the pipe for the process's whole life, so it never
            // blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    {
                        let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                        l.push_str(&line);
                        l.push('\n');
                    }
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        self.child = Some(child);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with(&self.ready_prefix) => {
                    self.ready_line = line;
                    return Ok(());
                }
                Ok(_) => {}
                Err(_) => bail!(
                    "{} did not print {:?} within {START_LIMIT:?}; output:\n{}",
                    self.name,
                    self.ready_prefix,
                    self.log()
                ),
            }
        }
    }

    /// Stops the process abruptly (SIGKILL), as `kill -9` would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process is running (not killed, not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills (SIGKILL) and starts the process again with the same arguments.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9();
        self.launch()
    }

    /// The process's name (`node1`, `supervisor2`, `meta`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The line the process printed when it was ready.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// Everything the process printed so far (all its lives).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Options for [`Deployment::start`].
#[derive(Debug, Clone)]
pub struct DeploymentOptions {
    /// `tidepool node` processes (ids `node1`..., zones `az1`...).
    pub nodes: usize,
    /// `tidepool supervisor` processes started with the deployment.
    pub supervisors: usize,
    /// `--lease-ttl-ms` of the supervisors.
    pub lease_ttl_ms: u64,
    /// `--tasks` of each node.
    pub tasks_per_node: u32,
    /// Extra arguments of every `tidepool node` (e.g. worker pace).
    pub node_args: Vec<String>,
    /// Run every process on its own host of this network: it must have
    /// hosts `meta`, `gw`, `n1`..`n{nodes}` and `s1`..`s{supervisors}`
    /// (and `s{k}` for supervisors started later).
    pub net: Option<Arc<Net>>,
}

impl Default for DeploymentOptions {
    fn default() -> Self {
        DeploymentOptions {
            nodes: 3,
            supervisors: 1,
            lease_ttl_ms: 30_000,
            tasks_per_node: 4,
            node_args: Vec::new(),
            net: None,
        }
    }
}

/// A running multi-process deployment. Dropping it kills every process
/// and stops the metadata cluster.
pub struct Deployment {
    /// The gateway (`tidepool up --nodes 0 --no-supervisor`) with the
    /// account's key and the Manta CLI's environment: use its
    /// [`Cluster::manta`] and friends to drive the deployment.
    pub gateway: Cluster,
    /// `tidepool node` processes; `nodes[i]` is `node{i+1}`.
    pub nodes: Vec<Proc>,
    /// `tidepool supervisor` processes, in start order.
    pub supervisors: Vec<Proc>,
    /// The metadata test double's process, when it runs on a host of its
    /// own ([`DeploymentOptions::net`]). Never killed by the deployment
    /// until it is dropped: its keys live only in its memory.
    pub meta_proc: Option<Proc>,
    meta: String,
    lease_ttl_ms: u64,
    /// Holds `cluster.key`, shared by every process.
    key_dir: tempfile::TempDir,
    // Declared last: dropped after every process is gone.
    tikv: Option<tikv_test_server::TestCluster>,
    runtime: tokio::runtime::Runtime,
    net: Option<Arc<Net>>,
}

impl Deployment {
    /// Starts the metadata cluster, the gateway, the nodes and the
    /// supervisors, and waits until the gateway stores objects.
    pub fn start(opts: DeploymentOptions) -> Result<Deployment> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("tokio runtime for the metadata cluster")?;
        let net = opts.net.clone();
        let (tikv, meta_proc, meta) = match &net {
            None => {
                let tikv = runtime
                    .block_on(tikv_test_server::TestCluster::start())
                    .context("start the TiKV test server")?;
                let meta = format!("tikv://{}", tikv.pd_endpoint());
                (Some(tikv), None, meta)
            }
            Some(net) => {
                let host = net.host("meta");
                let addr = format!("{}:{META_PORT}", host.ip);
                let p = Proc::start_in(
                    "meta",
                    crate::tikv_double_bin(),
                    Some(host.netns.clone()),
                    vec![addr.clone().into()],
                    "tikv-test-double: serving at ",
                )?;
                (None, Some(p), format!("tikv://{addr}"))
            }
        };
        warm_module_cache();
        let key_dir = tempfile::Builder::new()
            .prefix("tidepool-cluster-key-")
            .tempdir()
            .context("cluster key directory")?;
        let key_file = key_dir.path().join("cluster.key");
        let mut init = Command::new(tidepool_bin());
        init.arg("admin")
            .arg("cluster")
            .arg("init")
            .arg("--out")
            .arg(&key_file);
        let out = crate::run_with_deadline(&mut init, None, Duration::from_secs(60));
        if !out.status.success() {
            bail!("tidepool admin cluster init: {}", crate::describe(&out));
        }
        let key_arg = key_file.to_string_lossy().into_owned();
        let gateway = Cluster::start_with(ClusterOptions {
            key_type: None,
            args: [
                "--meta",
                &meta,
                "--nodes",
                "0",
                "--no-supervisor",
                "--cluster-key",
                &key_arg,
            ]
            .map(String::from)
            .to_vec(),
            netns: net.as_ref().map(|n| n.host("gw").netns.clone()),
            listen_host: net.as_ref().map(|n| n.host("gw").ip.to_string()),
            ..Default::default()
        })?;
        let mut d = Deployment {
            gateway,
            nodes: Vec::new(),
            supervisors: Vec::new(),
            meta,
            lease_ttl_ms: opts.lease_ttl_ms,
            meta_proc,
            key_dir,
            tikv,
            runtime,
            net,
        };
        for i in 1..=opts.nodes {
            let dir = d.gateway.root.path().join(format!("nodes/node{i}"));
            let args: Vec<OsString> = vec![
                "node".into(),
                "--meta".into(),
                d.meta.clone().into(),
                "--data".into(),
                dir.into_os_string(),
                "--listen".into(),
                match &d.net {
                    Some(net) => format!("{}:{NODE_PORT}", net.host(&format!("n{i}")).ip),
                    None => "127.0.0.1:0".into(),
                }
                .into(),
                "--id".into(),
                format!("node{i}").into(),
                "--az".into(),
                format!("az{i}").into(),
                "--tasks".into(),
                opts.tasks_per_node.to_string().into(),
                "--cluster-key".into(),
                d.cluster_key_file().into_os_string(),
            ];
            let args = args
                .into_iter()
                .chain(opts.node_args.iter().map(OsString::from))
                .collect();
            let netns = d
                .net
                .as_ref()
                .map(|n| n.host(&format!("n{i}")).netns.clone());
            let p = Proc::start_in(
                &format!("node{i}"),
                tidepool_bin(),
                netns,
                args,
                "tidepool node: ",
            )?;
            d.nodes.push(p);
        }
        for _ in 0..opts.supervisors {
            d.start_supervisor()?;
        }
        d.wait_writable()?;
        Ok(d)
    }

    /// The cluster key file every process of the deployment uses.
    pub fn cluster_key_file(&self) -> PathBuf {
        self.key_dir.path().join("cluster.key")
    }

    /// The `--meta` value every process of the deployment uses.
    pub fn meta(&self) -> &str {
        &self.meta
    }

    /// The node's directory.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.gateway
            .root
            .path()
            .join(format!("nodes/node{}", i + 1))
    }

    /// Starts one more `tidepool supervisor`; returns its index.
    pub fn start_supervisor(&mut self) -> Result<usize> {
        let n = self.supervisors.len() + 1;
        let args: Vec<OsString> = vec![
            "supervisor".into(),
            "--meta".into(),
            self.meta.clone().into(),
            "--lease-ttl-ms".into(),
            self.lease_ttl_ms.to_string().into(),
            "--cluster-key".into(),
            self.cluster_key_file().into_os_string(),
        ];
        let netns = self
            .net
            .as_ref()
            .map(|net| net.host(&format!("s{n}")).netns.clone());
        let p = Proc::start_in(
            &format!("supervisor{n}"),
            tidepool_bin(),
            netns,
            args,
            "tidepool supervisor: ",
        )?;
        self.supervisors.push(p);
        Ok(n - 1)
    }

    /// Writes (and removes) a probe object until the gateway accepts it:
    /// nodes register with their first heartbeat, just after they serve.
    fn wait_writable(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out =
                self.gateway
                    .manta_stdin("mput", &["/alice/stor/.deployment-probe"], b"probe\n");
            if out.status.success() {
                crate::ok(
                    &self
                        .gateway
                        .manta("mrm", &["/alice/stor/.deployment-probe"]),
                );
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the deployment never accepted a write: {}\n{}",
                    crate::describe(&out),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `tidepool admin --meta META ARGS` against the running
    /// deployment and returns what it printed.
    pub fn admin(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(tidepool_bin());
        cmd.arg("admin").arg("--meta").arg(&self.meta).args(args);
        let out = crate::run_with_deadline(&mut cmd, None, Duration::from_secs(120));
        if !out.status.success() {
            bail!("tidepool admin {args:?}: {}", crate::describe(&out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Every process's output, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = format!("--- gateway\n{}", self.gateway.server_log());
        for p in self
            .nodes
            .iter()
            .chain(&self.supervisors)
            .chain(&self.meta_proc)
        {
            s.push_str(&format!("--- {}\n{}", p.name, p.log()));
        }
        s
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for p in self.supervisors.iter_mut().chain(self.nodes.iter_mut()) {
            p.kill9();
        }
        self.gateway.kill9();
        if let Some(p) = self.meta_proc.as_mut() {
            p.kill9();
        }
        // The test server's shutdown goes through its runtime.
        let _guard = self.runtime.enter();
        self.tikv.take();
    }
}
