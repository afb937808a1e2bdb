//! The compute agent of a storage node: runs job tasks next to the data.
//!
//! Route (merged into the node's router, see [`routes`]):
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /agent/tasks` | [`TaskRequest`] → runs it → [`TaskResponse`] |
//!
//! A map task's input object must have a copy on this node: its file is
//! hard-linked (objects are immutable) into a per-task directory mounted
//! read-only in the sandbox at `/manta`, so the guest finds it at
//! `MANTA_INPUT_FILE` = `/manta/<object path>`, and it is the task's stdin.
//! A reducer's stdin is the concatenation of its inputs, streamed from
//! whichever node holds each one, page by page from the job tables.
//! stdout goes to a local file and, on success, becomes the output object
//! (this node plus one peer, then committed in meta); on failure stderr is
//! saved as the task's stderr object. `init` runs once per phase on this
//! node ([`crate::task::PhaseInstance`]): each task starts from a copy of
//! the scratch it left; if it failed, the task that ran it reports why and
//! the phase's other tasks here are aborted. A task that dumped core (a
//! wasm trap) saves the trap report as its core object. What a task sees
//! (mounts, environment, limits) is built by [`crate::task`], as `tidepool
//! exec` builds it. The phase's assets are fetched into the task
//! directory and mounted read-only at `/assets` (a `.wasm` asset is also a
//! command).
//!
//! Trust: the route is served behind the node's cluster-credential check
//! (every request signed, see `storage_node::server`), and each attempt
//! must also carry a task grant the supervisor signed over the exact
//! request bytes for this node ([`cluster_auth::grant`]). The grant is
//! checked before the body is parsed; a missing, forged or altered grant is
//! `403 {"code":"InvalidGrant"}` and nothing runs. Owner, input, assets and
//! output names are then taken from the verified request only, and every
//! object name in it is checked as a Manta path the owner may use
//! ([`jobs::naming::readable_by`], [`jobs::naming::writable_by`]) before
//! anything is created on the host: a bad name is `400
//! {"code":"InvalidTask"}`. Host paths under the task directory are built
//! from the validated path segments only. A reducer reads only inputs the
//! owner may read.
//!
//! Phases (`init`, `exec`) run through a [`PhaseRunner`]: with
//! [`AgentConfig::worker`] set (as nodes run) in the agent's pool of task
//! worker processes ([`crate::workers`]), so a host fault a guest triggers
//! kills one worker, and the attempt ends as a retryable `InternalError`
//! ("task worker crashed: ...") instead of taking the node down.
//!
//! Guarantees: at most `max_tasks` map tasks and `max_stages` wasm
//! instances run at once, and as many again for reducers, each shared
//! fairly between accounts ([`crate::fair`]). Reducers have their own
//! share because they stream: a reducer runs while the maps feeding it
//! still do, waiting for their outputs, and in the maps' share enough
//! waiting reducers would leave those maps no room (the supervisor
//! streams only the first unfinished reduce phase of a job, so a waiting
//! reducer only ever waits for maps). A task
//! waits for its share (until its job is cancelled or its time runs out),
//! it never fails because another tenant filled the node; a pipeline wider
//! than the node is refused with a `TaskInitError`. Each task has one
//! memory budget (the phase's `memory`, summed over its stages) and one
//! disk budget (the phase's `disk`: scratch, stdout file, `msplit` spools
//! and in-task uploads together; the assets, streamed to disk, are bounded
//! by it too). An answer of 200 means the attempt ran to an outcome
//! (success or a
//! user failure) and its objects are committed; any infrastructure failure
//! (input copy missing, a write that could not be made durable) is a `503`
//! so the supervisor retries elsewhere. The per-task directory is removed
//! when the task ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cluster_auth::{ClusterKey, GrantVerifier};
use jobs::executor::ReducerFeed;
use jobs::protocol::{
    EmittedOutput, ErrorCode, ReducerInputsRequest, TaskInput, TaskOutcome, TaskRequest,
    TaskResponse,
};
use jobs::supervisor::StoreFeed;
use meta::jobs::JobStore;
use sandbox::{LimitKind, Limits, RunReport, Sandbox};
use tokio::io::AsyncWriteExt as _;

use crate::builtins::{TaskIo, TaskRegistry};
use crate::fair::{Admission, Capacity};
use crate::metering::{TaskMeter, UsageRecorder};
use crate::objects::{ObjectError, ObjectIo};
use crate::runner::{InProcess, PhaseError, PhaseInput, PhaseJob, PhaseOutput, PhaseRunner};
use crate::task::{self, TASK_WALL_TIME, TaskPhases, TaskStdin};
use crate::workers::{WorkerPool, WorkerProgram};
use storage_node::protocol::{ErrorBody, ObjectId};
use storage_node::store::ObjectStore;

/// The agent's route for running one task attempt.
pub const TASKS_PATH: &str = "/agent/tasks";
/// Reducer inputs asked per page.
const FEED_PAGE: u32 = 64;
/// How long a reducer waits before asking again for inputs not there yet.
const FEED_IDLE: Duration = Duration::from_millis(50);
/// Pipe between the reducer input fetcher and the sandbox.
const FEED_BUFFER: usize = 256 * 1024;
/// How long the file system's size read for the dispatch check is used.
const DISK_TOTAL_TTL: Duration = Duration::from_secs(1);
/// How often a running task checks whether its job was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// How to run a node's agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This node's id (as registered in meta).
    pub node_id: String,
    /// Directory for per-task files (on the same filesystem as the node's
    /// objects, so inputs can be hard-linked).
    pub work_dir: PathBuf,
    /// Tasks run at once.
    pub max_tasks: usize,
    /// The cluster credential task grants are checked with.
    pub cluster_key: ClusterKey,
    /// The program of the worker processes that run the tasks' phases (one
    /// per task slot); `None` runs them in this process, where a host fault
    /// a guest triggers takes the process down.
    pub worker: Option<WorkerProgram>,
    /// Wasm instances (pipeline stages) run at once on this node.
    pub max_stages: u32,
    /// Largest `memory` (MB) a task may have here; more is refused with
    /// Manta's "not enough memory available".
    pub max_task_memory_mb: u32,
    /// Bytes per GB of a phase's `disk` (1 GiB; smaller only in tests).
    pub disk_unit: u64,
}

/// Default [`AgentConfig::max_task_memory_mb`]: Manta's largest `memory`.
pub const DEFAULT_MAX_TASK_MEMORY_MB: u32 = 8192;
/// Default [`AgentConfig::disk_unit`].
pub const DISK_UNIT: u64 = crate::task::DISK_UNIT;
/// Largest `.wasm` asset a task may fetch as a command.
pub const MAX_WASM_ASSET_BYTES: u64 = sandbox::MAX_MODULE_BYTES;

/// The agent; share it as `Arc<Agent>`.
pub struct Agent {
    cfg: AgentConfig,
    store: Arc<ObjectStore>,
    io: ObjectIo,
    jobs: JobStore,
    runner: Arc<dyn PhaseRunner>,
    tools: Arc<TaskRegistry>,
    admission: Admission,
    /// The reducers' share of the node (see the module docs).
    reducers: Admission,
    /// Tasks storing their outputs at once. A task gives back its share of
    /// the node ([`Agent::admission`]: wasm instances, memory) when its run
    /// ends, so the next task runs while this one's outputs are written;
    /// this bounds how many are written at once.
    storing: tokio::sync::Semaphore,
    grants: GrantVerifier,
    usage: UsageRecorder,
    /// Each phase's `init` state on this node.
    instances: task::PhaseInstances,
    /// The size of the node's file system and when it was read: the
    /// dispatch check reads this, not `statvfs`, on every task
    /// ([`Agent::disk_total`]).
    disk_total: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("node", &self.cfg.node_id)
            .finish_non_exhaustive()
    }
}

/// An infrastructure failure: the attempt did not run to an outcome.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The input object has no copy here.
    #[error("object {0} has no copy on this node")]
    NotLocal(String),
    /// Reading or writing objects failed.
    #[error(transparent)]
    Objects(#[from] ObjectError),
    /// A local file operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The task request is not one the agent may run (a malformed or
    /// unauthorized name); nothing was created for it.
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// The sandbox could not start the run.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// What a subuser's job may read could not be decided (its record or
    /// an entry could not be read).
    #[error("job roles: {0}")]
    JobRecord(String),
}

impl IntoResponse for AgentError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            AgentError::InvalidTask(_) => (StatusCode::BAD_REQUEST, "InvalidTask"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "AgentError"),
        };
        tracing::warn!(error = %self, "task attempt failed on this node");
        let body = ErrorBody {
            code: code.into(),
            message: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}

/// Why a phase's `init` has no outcome (it is run again for the next
/// task).
enum InitError {
    /// The worker running it died.
    Crashed(String),
    /// The host failed.
    Agent(AgentError),
}

/// Removes a task's directory when the task ends, however it ends.
struct TaskDir(PathBuf);

impl Drop for TaskDir {
    fn drop(&mut self) {
        let p = std::mem::take(&mut self.0);
        // Off the async worker: a scratch tree may be large.
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&p);
        });
    }
}

/// A map task's input file: `file` (in the task's input tree) is a hard
/// link to `src`, this node's copy, or empty when there is none.
#[derive(Clone)]
struct InputLink {
    src: Option<PathBuf>,
    file: PathBuf,
}

/// How a task's runs treat clocks and entropy: seeded from its memo key
/// when its result may be reused (observed, unless the phase declared
/// itself deterministic), real otherwise.
fn determinism(req: &TaskRequest) -> sandbox::Determinism {
    let Some(seed) = req
        .memo
        .as_ref()
        .and_then(|m| jobs::memo::key_from_hex(&m.key).map(|k| (k, m.declared)))
    else {
        return sandbox::Determinism::Free;
    };
    match seed {
        (key, true) => sandbox::Determinism::Seeded(key),
        (key, false) => sandbox::Determinism::Observed {
            seed: key,
            watch: jobs::memo::PER_TASK_ENV
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        },
    }
}

/// Lays out a task attempt's directory `dir` in one blocking call (each
/// `tokio::fs` call is a thread hand-off; a task made seven): `scratch/`,
/// `assets/` if the phase has assets, and the input file. Nothing else is
/// made ahead: on a file system with many recent deletions every inode
/// allocated costs, and most tasks never use `tmp/` (msplit's spools, made
/// when needed). A leftover tree of an earlier run of the same attempt is
/// removed first. `false` if this node has no copy of the input; then, as on
/// error, nothing is left behind.
fn lay_out(dir: &Path, input: Option<&InputLink>, assets: bool) -> std::io::Result<bool> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let made = (|| {
        std::fs::create_dir_all(dir.join("scratch"))?;
        if assets {
            std::fs::create_dir(dir.join("assets"))?;
        }
        if let Some(i) = input {
            if let Some(parent) = i.file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match &i.src {
                Some(src) => match std::fs::hard_link(src, &i.file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(e),
                },
                None => drop(std::fs::File::create(&i.file)?),
            }
        }
        Ok(true)
    })();
    if !matches!(made, Ok(true)) {
        let _ = std::fs::remove_dir_all(dir);
    }
    made
}

/// Saves a run that dumped core's trap report (spec §4.4, §8.3: the
/// report stands for the core file) as `OUT/cores/<phase>/core.<program>.
/// <uuid>`, `<program>` the first command that trapped; returns its name.
/// `None` when nothing trapped.
async fn save_core(
    io: &ObjectIo,
    req: &TaskRequest,
    r: &RunReport,
) -> Result<Option<String>, AgentError> {
    let Some(first) = r.traps.first() else {
        return Ok(None);
    };
    let program: String = first
        .split(':')
        .next()
        .unwrap_or("core")
        .rsplit('/')
        .next()
        .unwrap_or("core")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    let program = if program.is_empty() || program.chars().all(|c| c == '.') {
        "core".to_owned()
    } else {
        program
    };
    let name = format!(
        "{}/core.{program}.{}",
        jobs::naming::core_dir(&req.owner, &req.job_id, req.phase),
        uuid::Uuid::new_v4()
    );
    let mut report = r.traps.join("\n");
    report.push('\n');
    io.put_bytes(&name, report.into_bytes()).await?;
    Ok(Some(name))
}

/// Manta's message for a failed run (spec §4.5).
fn failure_message(r: &RunReport) -> String {
    if !r.traps.is_empty() {
        return "user command or child process dumped core".into();
    }
    match r.limit_exceeded.as_ref().map(|l| l.kind) {
        Some(LimitKind::Memory) => "user task ran out of memory".into(),
        Some(LimitKind::Scratch | LimitKind::Stdout | LimitKind::Disk) => {
            "user task ran out of local disk space".into()
        }
        Some(_) => "user command terminated by SIGKILL".into(),
        None => match python_exception(&r.stderr) {
            Some(exc) => format!("user command exited with code {} ({exc})", r.exit_status),
            None => format!("user command exited with code {}", r.exit_status),
        },
    }
}

/// The exception a Python traceback on `stderr` ended with (its last
/// unindented line after the last `Traceback (most recent call last):`,
/// e.g. `ZeroDivisionError: division by zero`), at most 200 bytes, so a
/// task's error names it as a Python user expects.
fn python_exception(stderr: &[u8]) -> Option<String> {
    const HEAD: &str = "Traceback (most recent call last):";
    let text = String::from_utf8_lossy(stderr);
    let tail = &text[text.rfind(HEAD)? + HEAD.len()..];
    let line = tail
        .lines()
        .rfind(|l| !l.is_empty() && !l.starts_with([' ', '\t']))?;
    let name = line.split(':').next().unwrap_or(line);
    let is_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !is_name {
        return None;
    }
    let mut end = line.len().min(200);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Some(line[..end].to_owned())
}

impl Agent {
    /// An agent for the node whose objects are in `store`, writing outputs
    /// through `io` (whose local node should be this one), reading job
    /// tables from `jobs`, running phases in `sandbox` whose in-task tools
    /// ([`crate::builtins::install`]) resolve tasks through `tools`.
    pub fn new(
        cfg: AgentConfig,
        store: Arc<ObjectStore>,
        io: ObjectIo,
        jobs: JobStore,
        sandbox: Sandbox,
        tools: Arc<TaskRegistry>,
    ) -> Arc<Self> {
        let cfg_tasks = cfg.max_tasks.max(1);
        let capacity = Capacity {
            stages: cfg.max_stages.max(1),
            tasks: u32::try_from(cfg_tasks).unwrap_or(u32::MAX),
        };
        let (admission, reducers) = (Admission::new(capacity), Admission::new(capacity));
        let grants = GrantVerifier::new(&cfg.cluster_key, &cfg.node_id);
        // The agent's sandbox keeps the real builtins; workers call them.
        let runner: Arc<dyn PhaseRunner> = match &cfg.worker {
            // A worker for every map and every reducer slot.
            Some(w) => Arc::new(WorkerPool::new(w.clone(), 2 * cfg_tasks, Some(sandbox))),
            None => Arc::new(InProcess(sandbox)),
        };
        let usage = UsageRecorder::spawn(jobs.clone());
        let instances = task::PhaseInstances::new(cfg.work_dir.clone());
        Arc::new(Agent {
            instances,
            cfg,
            store,
            io,
            jobs,
            usage,
            runner,
            tools,
            admission,
            reducers,
            storing: tokio::sync::Semaphore::new(cfg_tasks),
            grants,
            disk_total: std::sync::Mutex::new(None),
        })
    }

    /// The part of the node `req` runs in: reducers have their own.
    fn share(&self, req: &TaskRequest) -> &Admission {
        match req.input {
            TaskInput::Reduce { .. } => &self.reducers,
            TaskInput::Map { .. } => &self.admission,
        }
    }

    /// The size of the file system holding this node's objects, read at
    /// most once per [`DISK_TOTAL_TTL`] (a file system's size changes only
    /// when an operator grows it or changes a quota), so the per-task
    /// dispatch check costs no I/O. `None` when it cannot be read.
    async fn disk_total(&self) -> Option<u64> {
        let cached = *self.disk_total.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, total)) = cached
            && at.elapsed() < DISK_TOTAL_TTL
        {
            return Some(total);
        }
        let total = self.store.capacity().await.ok()?.total_bytes;
        *self.disk_total.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), total));
        Some(total)
    }

    /// The task's budgets: its memory (summed over every stage) and its
    /// disk (one budget for scratch, stdout and what the in-task tools
    /// write); `waited` (for admission) comes off its time.
    fn limits(&self, req: &TaskRequest, waited: Duration) -> Limits {
        task::limits(
            req.limits.memory_mb,
            req.limits.disk_gb,
            self.cfg.disk_unit,
            waited,
        )
    }

    /// Wasm instances the task runs at once: its widest pipeline (`exec`
    /// or `init`). A script the shell rejects counts as one; it fails when
    /// run. Parsed on a blocking thread (the parser has its own stack).
    async fn stages(req: &TaskRequest) -> u32 {
        // Both parsed already (the usual case): no blocking thread.
        let recent = |s: &str| sandbox::recent_pipeline_stages(s);
        let init = req.init.as_deref().map_or(Some(1), recent);
        if let (Some(e), Some(i)) = (recent(&req.exec), init) {
            return u32::try_from(e.max(i)).unwrap_or(u32::MAX);
        }
        let (exec, init) = (req.exec.clone(), req.init.clone());
        let width = move || {
            let width = |s: &str| sandbox::pipeline_stages(s).unwrap_or(1);
            width(&exec).max(init.as_deref().map_or(1, width))
        };
        let w = tokio::task::spawn_blocking(width).await.unwrap_or(1);
        u32::try_from(w).unwrap_or(u32::MAX)
    }

    /// Run one attempt to its outcome. The request's names are validated
    /// first ([`validate`]); an invalid one is [`AgentError::InvalidTask`]
    /// and nothing is created.
    ///
    /// Metrics (on the process's recorder, if any): `tidepool_compute_tasks_total`
    /// and `tidepool_compute_task_duration_seconds` by node and outcome
    /// (`success`, the failure's error code, or `error`), and the gauges
    /// `tidepool_compute_tasks_in_agent` and `tidepool_compute_tasks_queued`
    /// (waiting for their account's share of the node) by node.
    pub async fn run(self: &Arc<Self>, req: TaskRequest) -> Result<TaskResponse, AgentError> {
        let started = std::time::Instant::now();
        let node = self.cfg.node_id.clone();
        let _running = GaugeGuard::up(
            metrics::gauge!("tidepool_compute_tasks_in_agent", "node" => node.clone()),
        );
        let meter = TaskMeter::default();
        let result = self.attempt(&req, &meter).await;
        if let Some(u) = meter.usage(&req, meta::namespace::system_now_ms()) {
            self.usage.record(u);
        }
        let outcome: &'static str = match &result {
            Ok(r) => match &r.outcome {
                TaskOutcome::Success { .. } => "success",
                TaskOutcome::Failure { code, .. } => code.as_str(),
            },
            Err(_) => "error",
        };
        metrics::counter!("tidepool_compute_tasks_total", "node" => node.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("tidepool_compute_task_duration_seconds", "node" => node, "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// [`Agent::run`] with the attempt's I/O and time counted by `meter`.
    async fn attempt(
        self: &Arc<Self>,
        req: &TaskRequest,
        meter: &TaskMeter,
    ) -> Result<TaskResponse, AgentError> {
        let io = self.io.metered(meter.io.clone());
        let input_rel = validate(req)?;
        // An owner whose phases keep crashing their worker waits here,
        // holding no share of the node.
        self.runner.admit(&req.owner).await;
        if req.limits.memory_mb > self.cfg.max_task_memory_mb {
            let message = "failed to dispatch task: not enough memory available".into();
            return Ok(self.fail_early::<()>(req, None, ErrorCode::TaskInitError, message, None));
        }
        // A disk budget larger than this node's whole file system can never
        // be given here: refused before it runs (spec §4.7), not queued.
        let disk = u64::from(req.limits.disk_gb).saturating_mul(self.cfg.disk_unit);
        if let Some(total) = self.disk_total().await
            && disk > total
        {
            let message = "failed to dispatch task: not enough disk space available".into();
            return Ok(self.fail_early::<()>(req, None, ErrorCode::TaskInitError, message, None));
        }
        // Wait for this account's share of the node; a cancelled job stops
        // waiting, and the wait comes off the task's time.
        let stages = Self::stages(req).await;
        let queued = std::time::Instant::now();
        let in_queue = GaugeGuard::up(
            metrics::gauge!("tidepool_compute_tasks_queued", "node" => self.cfg.node_id.clone()),
        );
        let admitted = tokio::select! {
            p = self.share(req).acquire(&req.owner, stages) => p,
            () = self.cancelled(req.job_id) => {
                let message = "job was cancelled".into();
                let code = ErrorCode::JobCancelledError;
                return Ok(self.fail_early::<()>(req, None, code, message, None));
            }
            () = tokio::time::sleep(TASK_WALL_TIME) => {
                let message = "user command terminated by SIGKILL".into();
                let code = ErrorCode::UserTaskError;
                return Ok(self.fail_early::<()>(req, None, code, message, None));
            }
        };
        let permit = match admitted {
            Ok(p) => p,
            Err(refused) => {
                let message = format!("failed to dispatch task: {refused}");
                let code = ErrorCode::TaskInitError;
                return Ok(self.fail_early::<()>(req, None, code, message, None));
            }
        };
        drop(in_queue);
        meter.admitted();
        let waited = queued.elapsed();
        let dir = self
            .cfg
            .work_dir
            .join(format!("{}-{}", req.task_id, req.attempt));
        // The input's host file: a hard link to this node's copy (objects
        // are immutable, so sharing the inode is safe), or an empty file
        // for an empty object (which has no copies and runs anywhere).
        let input = match &req.input {
            TaskInput::Map {
                object_id, size, ..
            } => {
                let src = if *size == 0 {
                    None
                } else {
                    let id = ObjectId::parse(&object_id.to_string())
                        .map_err(|_| AgentError::NotLocal(object_id.to_string()))?;
                    Some(self.store.object_path(&id))
                };
                // Built from validated segments only (no `..`, no `/`).
                let file = dir.join("input").join(input_rel.unwrap_or_default());
                Some(InputLink { src, file })
            }
            TaskInput::Reduce { .. } => None,
        };
        let layout = {
            let (dir, input) = (dir.clone(), input.clone());
            let assets = !req.assets.is_empty();
            tokio::task::spawn_blocking(move || lay_out(&dir, input.as_ref(), assets))
                .await
                .map_err(|e| AgentError::Sandbox(e.to_string()))?
        };
        if !layout? {
            let id = match &req.input {
                TaskInput::Map { object_id, .. } => object_id.to_string(),
                TaskInput::Reduce { .. } => String::new(),
            };
            return Err(AgentError::NotLocal(id));
        }
        let _cleanup = TaskDir(dir.clone());
        let scratch = dir.join("scratch");
        let tmp = dir.join("tmp");
        let output_base = req
            .env
            .iter()
            .find(|(k, _)| k == "MANTA_OUTPUT_BASE")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let task_io = Arc::new(
            TaskIo::new(
                io.clone(),
                req.owner.clone(),
                req.operator,
                output_base,
                tmp,
            )
            .for_job(req.job_id, self.jobs.clone()),
        );
        let token = self.tools.register(task_io.clone());
        let stdout_file = dir.join("stdout");
        let mut feeder = None;
        let stdin = match &req.input {
            TaskInput::Map { size, .. } => {
                let root = dir.join("input");
                let file = input.map(|i| i.file).unwrap_or_default();
                meter.io.add_read(*size);
                TaskStdin::Map { root, file }
            }
            TaskInput::Reduce { reducer } => {
                let (w, r) = tokio::io::duplex(FEED_BUFFER);
                let me = self.clone();
                let feed_io = io.clone();
                let (job, phase, reducer) = (req.job_id, req.phase, *reducer);
                let owner = req.owner.clone();
                let operator = req.operator;
                feeder = Some(tokio::spawn(async move {
                    me.feed_reducer(&feed_io, &owner, operator, job, phase, reducer, w)
                        .await
                }));
                TaskStdin::Stream(Some(PhaseInput::Stream(Box::new(r))))
            }
        };

        let assets_root = dir.join("assets");
        let assets = match self.fetch_assets(req, &task_io, &assets_root).await? {
            Ok(a) => a,
            Err(message) => {
                return Ok(self.fail_early(req, feeder, ErrorCode::TaskInitError, message, None));
            }
        };
        let phases = TaskPhases {
            exec: req.exec.clone(),
            init: req.init.clone(),
            scratch: scratch.clone(),
            init_scratch: None,
            env: task::exec_env(&req.env, Some(&token.token)),
            limits: self.limits(req, waited),
            account: Some(req.owner.clone()),
            assets,
            // Assets are read-only files at their paths (Manta: `/assets/...`).
            assets_dir: (!req.assets.is_empty()).then(|| assets_root.clone()),
            determinism: determinism(req),
        };
        let mut phases = phases;

        // `init` runs once per phase on this node (spec §4.5): the first
        // task of the phase here runs it in the phase's instance, and
        // every task (that one included) starts from a copy of the
        // scratch it left. If it failed, the task that ran it reports
        // why and every other task of the phase here is aborted.
        if phases.init_job().is_some() {
            let instance = self.instances.get(req.job_id, req.phase).await?;
            phases.init_scratch = Some(instance.scratch.clone());
            let outcome = instance
                .init
                .get_or_try_init(|| self.run_init(req, &phases, &io))
                .await;
            match outcome {
                Ok(task::InitOutcome::Ready) => {
                    let (from, to) = (instance.scratch.clone(), scratch.clone());
                    tokio::task::spawn_blocking(move || task::copy_tree(&from, &to))
                        .await
                        .map_err(|e| AgentError::Sandbox(e.to_string()))??;
                }
                Ok(task::InitOutcome::Failed {
                    task,
                    message,
                    stderr,
                }) => {
                    let code = ErrorCode::TaskInitError;
                    let (message, stderr) = if *task == req.task_id {
                        (message.clone(), stderr.clone())
                    } else {
                        (task::INIT_ABORTED.to_owned(), None)
                    };
                    return Ok(self.fail_early(req, feeder, code, message, stderr));
                }
                Err(InitError::Crashed(message)) => {
                    return Ok(self.fail_early(
                        req,
                        feeder,
                        ErrorCode::InternalError,
                        message,
                        None,
                    ));
                }
                Err(InitError::Agent(e)) => return Err(e),
            }
        }
        let spec = phases.exec_job(stdin, PhaseOutput::File(stdout_file.clone()));

        if crate::session::is_session(&req.exec) {
            if let Some(f) = feeder {
                f.abort();
            }
            let outcome = self.session(req, spec, &assets_root, &stdout_file).await?;
            drop(token);
            return Ok(self.response(req, outcome));
        }

        // A cancelled job's running tasks are stopped (spec §4.12): the run
        // is dropped, which kills its instances.
        let run = tokio::select! {
            r = self.runner.run(spec) => Some(r),
            () = self.cancelled(req.job_id) => None,
        };
        let Some(run) = run else {
            let message = "job was cancelled".into();
            return Ok(self.fail_early(req, feeder, ErrorCode::JobCancelledError, message, None));
        };
        // The run's instances are gone: the next task may run while this
        // one's outputs are stored (at most `max_tasks` storing at once).
        drop(permit);
        let _storing = self.storing.acquire().await;
        let report = match run {
            // The host failed the run (no instance free): retry elsewhere.
            Ok(r) if r.infrastructure_error.is_some() => {
                return Err(AgentError::Sandbox(
                    r.infrastructure_error.unwrap_or_default(),
                ));
            }
            Ok(r) => Ok(r),
            Err(PhaseError::Script(e)) => Err(e),
            // The attempt is lost, not the user's failure: retried
            // (InternalError) on another copy, up to the job's retries.
            Err(PhaseError::Crashed(message)) => {
                return Ok(self.fail_early(req, feeder, ErrorCode::InternalError, message, None));
            }
            Err(e) => return Err(AgentError::Sandbox(e.to_string())),
        };
        let fed = match feeder {
            Some(f) => f.await.unwrap_or_else(|e| Err(e.to_string())),
            None => Ok(()),
        };
        let mut reproducible = false;
        let outcome = match report {
            // A script the shell rejects fails like bash would (status 2).
            Err(msg) => {
                io.put_bytes(&req.stderr_object, task::script_rejected(&msg))
                    .await?;
                TaskOutcome::Failure {
                    code: ErrorCode::UserTaskError,
                    message: "user command exited with code 2".into(),
                    stderr: Some(req.stderr_object.clone()),
                    core: None,
                }
            }
            Ok(r) => {
                if let Err(e) = fed {
                    // Spec §4.2: a reducer input fetch failure overrides the
                    // user's exit status.
                    TaskOutcome::Failure {
                        code: ErrorCode::ServiceUnavailableError,
                        message: format!("error fetching inputs: {e}"),
                        stderr: None,
                        core: None,
                    }
                } else if r.success() && r.traps.is_empty() {
                    let emitted = task_io.emits();
                    if emitted.is_empty() {
                        io.put_file(&req.stdout_object, &stdout_file, true).await?;
                        reproducible = self.reproducible(req, &r).await;
                        TaskOutcome::Success {
                            outputs: vec![EmittedOutput {
                                name: req.stdout_object.clone(),
                                reducer: None,
                            }],
                        }
                    } else {
                        // Any explicit emit turns stdout capture off (§4.4).
                        TaskOutcome::Success { outputs: emitted }
                    }
                } else {
                    let message = failure_message(&r);
                    io.put_bytes(&req.stderr_object, r.stderr.clone()).await?;
                    let core = save_core(&io, req, &r).await?;
                    TaskOutcome::Failure {
                        code: ErrorCode::UserTaskError,
                        message,
                        stderr: Some(req.stderr_object.clone()),
                        core,
                    }
                }
            }
        };
        drop(token);
        let mut response = self.response(req, outcome);
        response.reproducible = reproducible;
        Ok(response)
    }

    /// Whether a memoizable task's successful run `r` is reproducible: it
    /// did nothing its inputs do not decide, and it ran with the runtime
    /// and the asset versions its key assumed (read after the run, so an
    /// asset replaced in between is seen).
    async fn reproducible(&self, req: &TaskRequest, r: &RunReport) -> bool {
        let Some(m) = &req.memo else {
            return false;
        };
        if r.nondeterminism.is_some() || m.runtime != sandbox::runtime_id() {
            return false;
        }
        for (name, etag) in &m.assets {
            let Ok((_, path)) = jobs::naming::readable_by(&req.owner, req.operator, name) else {
                return false;
            };
            match self.io.namespace().get(&path).await {
                Ok(Some(e)) if e.object().is_some_and(|o| o.object_id == *etag) => {}
                _ => return false,
            }
        }
        true
    }

    /// Runs the phase's `init` for task `req` in its phase instance.
    /// A user failure is an outcome (kept for the phase); a crash of the
    /// worker or a host failure is not (the next task tries again).
    async fn run_init(
        &self,
        req: &TaskRequest,
        phases: &TaskPhases,
        io: &ObjectIo,
    ) -> Result<task::InitOutcome, InitError> {
        let Some(ispec) = phases.init_job() else {
            return Ok(task::InitOutcome::Ready);
        };
        let failed = match self.runner.run(ispec).await {
            Ok(r) if r.infrastructure_error.is_some() => {
                return Err(InitError::Agent(AgentError::Sandbox(
                    r.infrastructure_error.unwrap_or_default(),
                )));
            }
            Ok(r) if r.success() && r.traps.is_empty() => None,
            Ok(r) => Some((failure_message(&r), r.stderr)),
            Err(PhaseError::Script(e)) => Some((
                "user command exited with code 2".into(),
                task::script_rejected(&e),
            )),
            Err(PhaseError::Crashed(message)) => return Err(InitError::Crashed(message)),
            Err(e) => return Err(InitError::Agent(AgentError::Sandbox(e.to_string()))),
        };
        let Some((message, stderr)) = failed else {
            return Ok(task::InitOutcome::Ready);
        };
        io.put_bytes(&req.stderr_object, stderr)
            .await
            .map_err(|e| InitError::Agent(e.into()))?;
        Ok(task::InitOutcome::Failed {
            task: req.task_id,
            message,
            stderr: Some(req.stderr_object.clone()),
        })
    }

    /// Fetch the phase's assets (as the owner; in a subuser's job only what its roles allow) to `<root>/<path>`, shown
    /// read-only at `/assets/<path>`; a `.wasm` asset also becomes a command named after its
    /// file (without the extension). `Ok(Err(message))` is the task's
    /// `TaskInitError` when an asset cannot be fetched.
    async fn fetch_assets(
        &self,
        req: &TaskRequest,
        task_io: &TaskIo,
        root: &Path,
    ) -> Result<Result<std::collections::HashMap<String, PathBuf>, String>, AgentError> {
        let mut commands = std::collections::HashMap::new();
        let mut budget = u64::from(req.limits.disk_gb).saturating_mul(self.cfg.disk_unit);
        for a in &req.assets {
            // mlogin's agent asset does not exist here: the session runs
            // in the agent (crate::session).
            if crate::session::is_session(&req.exec) && crate::session::is_agent_asset(a) {
                continue;
            }
            let mut checked = jobs::naming::readable_by(&req.owner, req.operator, a);
            // A subuser's job fetches only the assets its roles allow.
            if let Ok((name, path)) = &checked
                && task_io
                    .roles_refuse(path)
                    .await
                    .map_err(AgentError::JobRecord)?
            {
                checked = Err(jobs::naming::NameDenied::Forbidden(name.clone()));
            }
            let name = checked
                .as_ref()
                .map_or_else(|_| jobs::naming::normalize(a), |(n, _)| n.clone());
            let is_wasm = name.ends_with(".wasm");
            // Streamed to disk, never held whole; a `.wasm` command may be
            // at most MAX_WASM_ASSET_BYTES, and all assets together at most
            // the task's disk budget.
            let cap = if is_wasm {
                MAX_WASM_ASSET_BYTES.min(budget)
            } else {
                budget
            };
            let mut over = false;
            let fetched = match &checked {
                Ok((name, path)) => {
                    // Built from validated segments only (no `..`, no `/`).
                    let dst = root.join(task::host_relative(path));
                    if let Some(parent) = dst.parent() {
                        tokio::fs::create_dir_all(parent).await?;
                    }
                    let mut f = Bounded::new(tokio::fs::File::create(&dst).await?, cap);
                    let r = task_io.io.copy_to(name, &mut f).await;
                    over = f.over;
                    f.inner.flush().await?;
                    if let Ok(Ok(n)) = &r {
                        budget = budget.saturating_sub(*n);
                    }
                    r.map(|r| r.map(|n| (n, dst)))
                }
                Err(_) => Err(ObjectError::InvalidName(name.clone())),
            };
            if over {
                let what = if is_wasm && cap == MAX_WASM_ASSET_BYTES {
                    format!("a .wasm command may be at most {MAX_WASM_ASSET_BYTES} bytes")
                } else {
                    "assets exceed the task's disk quota".to_owned()
                };
                return Ok(Err(format!(
                    "failed to dispatch task: asset {} is too large ({what})",
                    serde_json::Value::String(a.clone())
                )));
            }
            let (status, dst) = match fetched {
                Ok(Ok((_, dst))) => (None, Some(dst)),
                Ok(Err(e)) => return Err(e.into()),
                Err(ObjectError::Namespace(meta::namespace::NamespaceError::NotFound(_))) => {
                    (Some(404), None)
                }
                Err(ObjectError::InvalidName(_)) => (Some(403), None),
                Err(ObjectError::IsDirectory(_)) => (Some(400), None),
                Err(e) => return Err(e.into()),
            };
            if let Some(code) = status {
                return Ok(Err(format!(
                    "failed to dispatch task: first of 1 error: error retrieving asset {} (status code {code})",
                    serde_json::Value::String(a.clone())
                )));
            }
            if let Some(stem) = name
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".wasm"))
                && !stem.is_empty()
                && let Some(dst) = dst
            {
                commands.insert(stem.to_owned(), dst);
            }
        }
        Ok(Ok(commands))
    }

    /// An `mlogin` task: serves the interactive session ([`crate::session`])
    /// with `spec`'s mounts, environment and limits instead of running a
    /// pipeline, until the user exits, the client goes or the job is
    /// cancelled. The task's stdout object is empty.
    async fn session(
        &self,
        req: &TaskRequest,
        spec: PhaseJob,
        assets_root: &Path,
        stdout_file: &Path,
    ) -> Result<TaskOutcome, AgentError> {
        use crate::session::{CommandTemplate, SessionEnd};
        let fail = |code, message: String| TaskOutcome::Failure {
            code,
            message,
            stderr: None,
            core: None,
        };
        let config = req
            .assets
            .iter()
            .filter_map(|a| jobs::naming::readable_by(&req.owner, req.operator, a).ok())
            .find(|(name, _)| crate::session::is_config_asset(name))
            .map(|(_, path)| assets_root.join(task::host_relative(&path)));
        let Some(config) = config else {
            let message = "mlogin session: the job names no medusa-config asset".into();
            return Ok(fail(ErrorCode::TaskInitError, message));
        };
        let url = match crate::session::slave_url(&config, &req.owner, req.job_id) {
            Ok(u) => u,
            Err(e) => return Ok(fail(ErrorCode::TaskInitError, e.to_string())),
        };
        let stdin_file = match &spec.stdin {
            PhaseInput::File(p) => Some(p.clone()),
            _ => None,
        };
        let what = req
            .env
            .iter()
            .find(|(k, _)| k == "MANTA_INPUT_OBJECT")
            .map_or_else(String::new, |(_, v)| format!(" on {v}"));
        let banner = format!(
            "Tidepool interactive session{what}: each line runs as this job's task (the object is $MANTA_INPUT_FILE and every line's stdin); exit or ^D ends the job."
        );
        let wall = spec.limits.wall_time;
        let template = CommandTemplate {
            scratch: spec.scratch,
            stdin_file,
            input_dir: spec.input_dir,
            read_only_dirs: spec.read_only_dirs,
            env: spec.env,
            assets: spec.assets,
            limits: spec.limits,
            account: spec.account,
        };
        let ran = tokio::select! {
            r = crate::session::run(&url, self.runner.clone(), template, banner, wall) => r,
            () = self.cancelled(req.job_id) => {
                return Ok(fail(ErrorCode::JobCancelledError, "job was cancelled".into()));
            }
        };
        let outcome = match ran {
            Err(e) => fail(ErrorCode::TaskInitError, e.to_string()),
            Ok(SessionEnd::Exited(0)) => {
                tokio::fs::write(stdout_file, b"").await?;
                self.io
                    .put_file(&req.stdout_object, stdout_file, true)
                    .await?;
                TaskOutcome::Success {
                    outputs: vec![EmittedOutput {
                        name: req.stdout_object.clone(),
                        reducer: None,
                    }],
                }
            }
            Ok(SessionEnd::Exited(n)) => fail(
                ErrorCode::UserTaskError,
                format!("user command exited with code {n}"),
            ),
            Ok(SessionEnd::Disconnected) => fail(
                ErrorCode::UserTaskError,
                "mlogin session ended without exit (the client went away)".into(),
            ),
            Ok(SessionEnd::TimedOut) => fail(
                ErrorCode::UserTaskError,
                "user command terminated by SIGKILL".into(),
            ),
        };
        Ok(outcome)
    }

    /// The answer for a task that fails before its phase ran to an end:
    /// stops the reducer feed (if any) and reports `code`.
    fn fail_early<T>(
        &self,
        req: &TaskRequest,
        feeder: Option<tokio::task::JoinHandle<T>>,
        code: ErrorCode,
        message: String,
        stderr: Option<String>,
    ) -> TaskResponse {
        if let Some(f) = feeder {
            f.abort();
        }
        self.response(
            req,
            TaskOutcome::Failure {
                code,
                message,
                stderr,
                core: None,
            },
        )
    }

    fn response(&self, req: &TaskRequest, outcome: TaskOutcome) -> TaskResponse {
        TaskResponse {
            task_id: req.task_id,
            attempt: req.attempt,
            node: self.cfg.node_id.clone(),
            outcome,
            reproducible: false,
        }
    }

    /// Resolves once the job is cancelled (or gone); polls the job record.
    async fn cancelled(&self, job: uuid::Uuid) {
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            match self.jobs.get_job(&job).await {
                Ok(Some(j)) if !j.cancelled => {}
                Ok(_) => return,
                // Meta unreachable: keep running, look again later.
                Err(_) => {}
            }
        }
    }

    /// Stream every input of reducer `reducer` into `w`, then close it.
    /// Only names `owner` may read are read; any other ends the feed with
    /// an error (the supervisor authorizes every reducer input before it is
    /// routed, so this is the second of two checks).
    #[allow(clippy::too_many_arguments)]
    async fn feed_reducer(
        &self,
        io: &ObjectIo,
        owner: &str,
        operator: bool,
        job: uuid::Uuid,
        phase: u32,
        reducer: u32,
        mut w: tokio::io::DuplexStream,
    ) -> Result<(), String> {
        let feed = StoreFeed::new(self.jobs.clone());
        // Subscribed before the first page: a commit after any page read
        // wakes the wait that follows it.
        let mut progress = self.jobs.changes(meta::jobs::JobChange::Progress);
        let mut from = 0;
        loop {
            progress.borrow_and_update();
            let page = feed
                .page(ReducerInputsRequest {
                    job_id: job,
                    phase,
                    reducer,
                    from,
                    limit: FEED_PAGE,
                })
                .await
                .map_err(|e| e.to_string())?;
            for name in &page.inputs {
                let name = match jobs::naming::readable_by(owner, operator, name) {
                    Ok((name, _)) => name,
                    Err(e) => return Err(e.to_string()),
                };
                match io.copy_to(&name, &mut w).await {
                    Ok(Ok(_)) => {}
                    // The reducer stopped reading: its result stands.
                    Ok(Err(_)) => return Ok(()),
                    Err(e) => return Err(format!("{name}: {e}")),
                }
            }
            from = page.next;
            if page.ended {
                break;
            }
            if page.inputs.is_empty() {
                // Upstream still runs: wait for a commit here, or poll
                // (commits made by other processes are not announced).
                tokio::select! {
                    _ = progress.changed() => {}
                    () = tokio::time::sleep(FEED_IDLE) => {}
                }
            }
        }
        let _ = w.shutdown().await;
        Ok(())
    }
}

/// Checks every name of `req` before anything is created for it: the
/// owner is a valid login, a map input is a normalized object path the
/// owner may read, stdout/stderr objects are normalized object paths in
/// the owner's tree. Returns a map task's input as a relative host path.
/// (Assets are checked as they are fetched: an unreadable asset is the
/// task's `TaskInitError`, as in Manta.)
pub fn validate(req: &TaskRequest) -> Result<Option<PathBuf>, AgentError> {
    use jobs::naming::{readable_by, writable_by};
    let invalid = |why: String| AgentError::InvalidTask(why);
    if !meta::path::valid_login(&req.owner) {
        return Err(invalid(format!("invalid owner {:?}", req.owner)));
    }
    for name in [&req.stdout_object, &req.stderr_object] {
        let (norm, _) = writable_by(&req.owner, name).map_err(|e| invalid(e.to_string()))?;
        if norm != *name {
            return Err(invalid(format!("output name {name:?} is not normalized")));
        }
    }
    match &req.input {
        TaskInput::Map { object, .. } => {
            let (norm, path) = readable_by(&req.owner, req.operator, object)
                .map_err(|e| invalid(e.to_string()))?;
            if norm != *object {
                return Err(invalid(format!("input name {object:?} is not normalized")));
            }
            Ok(Some(task::host_relative(&path)))
        }
        TaskInput::Reduce { .. } => Ok(None),
    }
}

/// A writer that refuses bytes past `cap` (and notes that it did).
struct Bounded<W> {
    inner: W,
    left: u64,
    over: bool,
}

impl<W> Bounded<W> {
    fn new(inner: W, cap: u64) -> Self {
        Bounded {
            inner,
            left: cap,
            over: false,
        }
    }
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Bounded<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if buf.len() as u64 > self.left {
            self.over = true;
            return std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "size bound reached",
            )));
        }
        let me = &mut *self;
        let r = std::pin::Pin::new(&mut me.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            me.left -= *n as u64;
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `POST /agent/tasks`: checks the grant over the raw body, then parses and
/// runs the attempt. The request itself was authenticated by the node's
/// middleware before this handler was called.
async fn run_task(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TaskResponse>, Response> {
    if let Err(e) = agent
        .grants
        .verify(headers.get(cluster_auth::GRANT_HEADER), &body)
    {
        tracing::warn!(error = %e, "refused a task without a valid grant");
        let body = ErrorBody {
            code: "InvalidGrant".into(),
            message: e.to_string(),
        };
        return Err((StatusCode::FORBIDDEN, Json(body)).into_response());
    }
    let req: TaskRequest = serde_json::from_slice(&body).map_err(|e| {
        let body = ErrorBody {
            code: "InvalidTask".into(),
            message: format!("task request: {e}"),
        };
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    })?;
    // Detached so a supervisor hanging up does not cut a task off midway
    // through committing its objects.
    let handle = tokio::spawn(async move { agent.run(req).await });
    match handle.await {
        Ok(r) => r.map(Json).map_err(IntoResponse::into_response),
        Err(e) => Err(AgentError::Sandbox(format!("task panicked: {e}")).into_response()),
    }
}

/// The agent's routes, to merge into the node's router.
pub fn routes(agent: Arc<Agent>) -> Router {
    Router::new()
        .route(TASKS_PATH, post(run_task))
        .with_state(agent)
}

/// Holds a gauge one higher for as long as it lives (a task running or
/// queued), whichever way the task's future ends.
struct GaugeGuard(metrics::Gauge);

impl GaugeGuard {
    fn up(g: metrics::Gauge) -> GaugeGuard {
        g.increment(1.0);
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::python_exception;

    #[test]
    fn python_exception_is_the_last_line_of_the_last_traceback() {
        let err = b"warming up\nTraceback (most recent call last):\n  File \"<string>\", line 1, in <module>\n    1/0\n    ~^~\nZeroDivisionError: division by zero\n";
        assert_eq!(
            python_exception(err).as_deref(),
            Some("ZeroDivisionError: division by zero")
        );
        let chained = b"Traceback (most recent call last):\n  x\nKeyError: 'a'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"j.py\", line 3\npandas.errors.ParserError: bad\n";
        assert_eq!(
            python_exception(chained).as_deref(),
            Some("pandas.errors.ParserError: bad")
        );
        assert_eq!(python_exception(b"sort: no such file\n"), None);
        let long = format!(
            "Traceback (most recent call last):\nValueError: {}\n",
            "é".repeat(300)
        );
        assert!(python_exception(long.as_bytes()).unwrap().len() <= 200);
    }
}
