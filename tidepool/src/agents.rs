//! Compute wiring: the agent each storage node serves next to its objects,
//! and the job supervisor (with archiving) that dispatches to them. Used by
//! `tidepool up`, `tidepool node` and `tidepool supervisor`; only wiring,
//! the logic is in `compute` and `jobs`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use cluster_auth::ClusterKey;
use compute::agent::{Agent, AgentConfig};
use compute::builtins::TaskRegistry;
use compute::objects::ObjectIo;
use compute::task_client::{HttpExecutor, ObjectArchiveSink};
use compute::workers::WorkerProgram;
use jobs::supervisor::{Supervisor, SupervisorConfig};
use meta::jobs::JobStore;
use meta::namespace::Namespace;
use sandbox::{Sandbox, SandboxConfig};
use storage_node::{ClientOptions, NodeClient, NodeServer};
use tokio_util::sync::CancellationToken;

/// Copies of each task output (spec: durability 2).
const OUTPUT_DURABILITY: usize = 2;

/// Shared by every node of one process: one sandbox engine (compiled
/// modules are shared), one node client, the job tables.
pub struct Compute {
    ns: Arc<Namespace>,
    sandbox: Sandbox,
    disk_unit: u64,
    max_task_memory_mb: u32,
    tools: Arc<TaskRegistry>,
    client: NodeClient,
    jobs: JobStore,
    cluster_key: ClusterKey,
    worker: WorkerProgram,
    health: membership::HealthRule,
}

impl Compute {
    /// Sets up the sandbox for `nodes` nodes of this process (compiling
    /// the toolbox in the background): its instance pool holds every
    /// node's [`compute::fair::DEFAULT_NODE_STAGES`] twice (maps and
    /// reducers have a share each), so admission, not the pool, is what
    /// makes a task wait. The nodes and agents it serves
    /// check requests and task grants against `cluster_key`, and its
    /// client signs with it.
    pub fn new(ns: Arc<Namespace>, nodes: u32, cluster_key: &ClusterKey) -> Result<Compute> {
        let tools = Arc::new(TaskRegistry::default());
        let mut config = SandboxConfig::with_default_cache_dir();
        config.max_instances = nodes
            .max(1)
            .saturating_mul(2 * compute::fair::DEFAULT_NODE_STAGES);
        // Phases run in workers; an agent without one runs them here.
        config.python = python_install();
        let sandbox = Sandbox::new(config).context("start the wasm sandbox")?;
        let sandbox = compute::builtins::install(sandbox, tools.clone());
        let warm = sandbox.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let compile = warm.precompile();
            tokio::pin!(compile);
            // A cached toolbox loads in well under this; a fresh compile
            // (first start after a build) takes long enough that a person
            // should know what the machine is busy with.
            let result = tokio::select! {
                r = &mut compile => r,
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {
                    crate::notice("tidepool: compiling the wasm toolbox (first start after a build; cached for later starts)...");
                    let r = (&mut compile).await;
                    if r.is_ok() {
                        crate::notice(&format!("tidepool: wasm toolbox compiled in {:.0?}", started.elapsed()));
                    }
                    r
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "precompiling the toolbox failed");
            }
        });
        let client =
            NodeClient::new(ClientOptions::default(), cluster_key).context("node client")?;
        let jobs = JobStore::new(ns.kv().clone());
        Ok(Compute {
            ns,
            sandbox,
            disk_unit: compute::agent::DISK_UNIT,
            max_task_memory_mb: compute::agent::DEFAULT_MAX_TASK_MEMORY_MB,
            tools,
            client,
            jobs,
            cluster_key: cluster_key.clone(),
            worker: worker_program()?,
            health: membership::HealthRule::default(),
        })
    }

    /// The cluster's health rule for this process's agents' writes.
    pub fn with_health(mut self, health: membership::HealthRule) -> Compute {
        self.health = health;
        self
    }

    /// Bytes per GB of a phase's `disk` for this process's agents (tests
    /// use a small unit to exercise the quota quickly).
    pub fn with_disk_unit(mut self, bytes: u64) -> Compute {
        self.disk_unit = bytes.max(1);
        self
    }

    /// The largest `memory` (MB) this process's agents give one task; a
    /// phase asking for more is refused at dispatch.
    pub fn with_max_task_memory(mut self, mb: u32) -> Compute {
        self.max_task_memory_mb = mb;
        self
    }

    /// Lets every agent of this process reach the node at `url` in `store`
    /// directly rather than over HTTP.
    pub fn add_local_store(&self, url: &str, store: Arc<storage_node::store::ObjectStore>) {
        self.client.add_local_store(url, store);
    }

    /// The cluster credential this process's nodes check requests with.
    pub fn cluster_key(&self) -> &ClusterKey {
        &self.cluster_key
    }

    /// The node's router with its compute agent merged in; `max_tasks`
    /// tasks run at once on it.
    pub fn node_app(&self, node: &NodeServer, data: &Path, max_tasks: usize) -> axum::Router {
        let id = node.identity().clone();
        let io = ObjectIo::new(
            self.ns.clone(),
            self.client.clone(),
            Some(id.node_id.clone()),
            OUTPUT_DURABILITY,
        )
        .with_health(self.health);
        let agent = Agent::new(
            AgentConfig {
                node_id: id.node_id.clone(),
                work_dir: data.join("tasks"),
                max_tasks,
                cluster_key: self.cluster_key.clone(),
                worker: Some(self.worker.clone()),
                max_stages: compute::fair::DEFAULT_NODE_STAGES,
                max_task_memory_mb: self.max_task_memory_mb,
                disk_unit: self.disk_unit,
            },
            node.store(),
            io,
            self.jobs.clone(),
            self.sandbox.clone(),
            self.tools.clone(),
        );
        storage_node::server::router(node.store(), id).merge(compute::agent::routes(agent))
    }
}

/// A job supervisor over `ns` (archiving finished jobs through `client`),
/// holding job leases for `lease_ttl`, that runs until `shutdown`;
/// restarted after a metadata failure. Tasks are sent signed, with grants,
/// by `cluster_key`.
pub fn supervisor(
    ns: Arc<Namespace>,
    client: NodeClient,
    cluster_key: &ClusterKey,
    opts: SupervisorOptions,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = Result<()>> + use<>> {
    let exec = HttpExecutor::new(ns.clone(), cluster_key).context("task client")?;
    let io = ObjectIo::new(ns.clone(), client, None, OUTPUT_DURABILITY).with_health(opts.health);
    let mut cfg = SupervisorConfig::new(format!("supervisor-{}", uuid_like()));
    cfg.lease_ttl = opts.lease_ttl;
    cfg.health = opts.health;
    // Memo keys name the guest runtime this binary's agents run.
    cfg.runtime = Some(sandbox::runtime_id().to_owned());
    let jobs = JobStore::new(ns.kv().clone());
    let sup = Supervisor::with_archive(
        cfg,
        jobs.clone(),
        Namespace::clone(&ns),
        Arc::new(exec),
        Arc::new(ObjectArchiveSink::new(io.clone())),
    );
    // Cluster-wide workers run beside every supervisor; their status is
    // published under the scope `cluster`.
    let registry = upkeep::Registry::new(CLUSTER_SCOPE, ns.clone());
    let metering = registry.spawn(
        metering::worker::Metering {
            ns: ns.clone(),
            jobs,
            io,
            every: opts.metering_every,
            retention: metering::worker::DEFAULT_RETENTION,
        },
        shutdown.clone(),
    );
    tokio::spawn(registry.run_publisher(shutdown.clone()));
    Ok(async move {
        let _metering = metering;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.cancelled().await;
            let _ = tx.send(true);
        });
        // The run loop stops on a metadata error; a supervisor is
        // stateless, so starting it again is the recovery.
        loop {
            match sup.clone().run(rx.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => tracing::warn!(error = %e, "job supervisor failed; restarting"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    })
}

/// How a supervisor (and the cluster-wide workers beside it) runs.
#[derive(Debug, Clone, Copy)]
pub struct SupervisorOptions {
    /// Job leases last this long without a renewal.
    pub lease_ttl: std::time::Duration,
    /// Time between metering passes.
    pub metering_every: std::time::Duration,
    /// The cluster's health rule.
    pub health: membership::HealthRule,
}

/// The worker scope of cluster-wide workers (`tidepool admin workers`).
pub const CLUSTER_SCOPE: &str = "cluster";

/// A unique-enough supervisor id suffix (pid and start time).
fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{t:x}", std::process::id())
}

/// The hidden subcommand task workers run as.
pub const WORKER_COMMAND: &str = "compute-worker";

/// The only variables of our environment a task worker gets: where its
/// module cache is (`HOME`, `XDG_CACHE_HOME`), temporary files, logging
/// (and, set by [`worker_program`], where the Python interpreter is).
/// Everything else (e.g. `TIDEPOOL_CLUSTER_KEY_FILE`) stays with us.
const WORKER_ENV: &[&str] = &[
    "HOME",
    "XDG_CACHE_HOME",
    "TMPDIR",
    "RUST_LOG",
    "RUST_BACKTRACE",
    // Debug builds only read it (see compute::workers).
    #[cfg(debug_assertions)]
    "TIDEPOOL_TEST_WORKER_FAULTS",
];

/// Names the directory of the installed Python interpreter
/// (`scripts/setup` makes `.tools/python` in the repository); empty turns
/// `python3` off.
pub const PYTHON_DIR_ENV: &str = "TIDEPOOL_PYTHON_DIR";

/// Where the interpreter is installed: `$TIDEPOOL_PYTHON_DIR`, else the
/// first `.tools/python` above this binary or the working directory that
/// holds an install.
pub fn python_dir() -> Option<std::path::PathBuf> {
    if let Some(d) = std::env::var_os(PYTHON_DIR_ENV) {
        return (!d.is_empty()).then(|| d.into());
    }
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    [exe, cwd]
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p.ancestors()
                .map(|a| a.join(".tools/python"))
                .collect::<Vec<_>>()
        })
        .find(|d| d.join("artifacts").is_dir())
}

/// The sandbox's interpreter, if one is installed (a broken install is
/// logged and leaves `python3` not found).
pub fn python_install() -> Option<sandbox::PythonInstall> {
    let dir = python_dir()?;
    match sandbox::PythonInstall::open(&dir) {
        Ok(p) => Some(p),
        Err(why) => {
            tracing::warn!(%why, "python3 is not available");
            None
        }
    }
}

/// This binary, as a task worker.
pub fn worker_program() -> Result<WorkerProgram> {
    let program = std::env::current_exe().context("locating the tidepool binary")?;
    let env = WORKER_ENV
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), std::env::var(k).ok()?)))
        .collect();
    let mut env: Vec<(String, String)> = env;
    // The worker finds the interpreter where we did (it cannot look from
    // our working directory or environment).
    env.retain(|(k, _)| k != PYTHON_DIR_ENV);
    if let Some(dir) = python_dir() {
        env.push((PYTHON_DIR_ENV.to_owned(), dir.display().to_string()));
    }
    Ok(WorkerProgram {
        program,
        // Workers share our stderr: their log lines must be of our format.
        args: if crate::json_logs() {
            vec![
                WORKER_COMMAND.to_owned(),
                "--log-format".into(),
                "json".into(),
            ]
        } else {
            vec![WORKER_COMMAND.to_owned()]
        },
        env,
        stdout: None,
    })
}

/// `tidepool compute-worker`: runs phases for the agent that started it
/// (see `compute::workers`), its builtins proxied to `builtins`.
pub async fn worker(
    builtins: Option<std::path::PathBuf>,
    no_cache: bool,
    stdout_fd: Option<i32>,
) -> Result<()> {
    let shared_stdout = stdout_fd
        .map(compute::workers::inherited_stdout)
        .transpose()
        .context("the shared stdout")?;
    let mut config = if no_cache {
        SandboxConfig::default()
    } else {
        SandboxConfig::with_default_cache_dir()
    };
    config.python = python_install();
    let sandbox = Sandbox::new(config).context("start the wasm sandbox")?;
    let sandbox = compute::proxy::install_proxies(sandbox, builtins);
    compute::workers::serve(sandbox, shared_stdout)
        .await
        .context("task worker control channel")
}
