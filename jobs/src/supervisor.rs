//! The job supervisor: stateless, all state in meta, one job owned at a time
//! per lease.
//!
//! A supervisor claims jobs whose lease is free or expired
//! ([`Supervisor::claim_jobs`]) and drives each ([`Supervisor::drive`]):
//! it turns inputs into map tasks on a node holding a copy (placement's
//! `choose_for_task`) or into reducer inputs, dispatches tasks through a
//! [`TaskExecutor`], commits each task's result exactly once, chains
//! outputs into the next phase (map tasks, or reducer inputs routed by the
//! emitted reducer index or at random), dispatches a reducer as soon as an
//! input is routed to it (it streams its inputs while upstream phases still
//! run, and sees the end of its input only once they are complete) or,
//! with no input, once its upstream is complete; retries infrastructure
//! failures on another node up to `max_retries`, records non-retried
//! errors, and marks the job done when input has ended and no task is
//! pending.
//!
//! Crash safety: every step is one meta transaction that also checks the
//! lease, so a supervisor that lost its lease cannot write. A supervisor
//! that takes over re-dispatches every unfinished task it finds; a result
//! that arrives for an already-finished task is ignored, so outputs are
//! never committed twice. Inputs and tasks are read in pages. An attempt
//! in flight when its supervisor stopped counts as a retry (the count is in
//! the task's record), and a task found in flight with its retries used up
//! fails with [`LOST_ATTEMPTS`]: a task that crashes whatever runs it ends
//! the job with an error instead of being re-dispatched forever.
//!
//! Results that arrive together are committed together: up to
//! [`COMMIT_BATCH`] tasks per transaction, in the order they arrived, each
//! still exactly once.
//!
//! Memoized tasks ([`crate::memo`]): before a memoizable map task goes to
//! a node, its memo key is looked up; an earlier reproducible result is
//! reused (its output snaplinked to the task's output name, the task
//! committed as `memoized`) and nothing is dispatched. Otherwise the task
//! carries its key, and a result the agent reports reproducible is
//! recorded in the task's commit.
//!
//! Open input idle for `idle_close` (1 h) is ended automatically.
//! When a job is done, its intermediate objects (outputs of non-final
//! phases under its `stor/`) are deleted ([`Supervisor::delete_intermediates`]),
//! unless its manifest set `keepIntermediates`.
//! Archiving a done job is [`crate::archive::archive_job`]; a supervisor
//! built [`Supervisor::with_archive`] runs it for every job it finishes and
//! for done jobs it finds unarchived.
//!
//! Object versions: a map task runs the version of its input that was
//! resolved when the task was created (the object id and copies are in the
//! task record, and every attempt reads that id). The task pins that
//! object in meta (`JobTxn::pin`) in the transaction that creates it, after
//! checking under a lock that the name still names it; the pin goes when
//! the task is committed. While pinned, the object's copies are not
//! deleted even if the name is overwritten or removed: the gateway skips
//! its immediate delete and the nodes' GC leaves the records for later
//! (`Namespace::gc_pending`). Cost on the task path: one locked entry read
//! and one pin write per created task, one pin delete per commit, all in
//! transactions that ran anyway (no extra round trip on the embedded
//! backend; on TiKV the locked read is one per task).
//!
//! Simplifications (documented gaps): running tasks of a cancelled job are
//! stopped by their agents, not by the supervisor; results that still
//! arrive are ignored.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use meta::job_txn;
use meta::jobs::{
    JobChange, JobErrorRecord, JobRecord, JobState, JobStore, JobStoreError, MemoRecord,
    ReducerInput, TaskOutput, TaskRecord, TaskState,
};
use meta::namespace::Namespace;
use meta::path::MantaPath;
use placement::Candidate;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::JobsError;
use crate::archive::ArchiveSink;
use crate::executor::{ExecError, ReducerFeed, TaskExecutor};
use crate::manifest::{MemoPolicy, Phase, PhaseKind, parse_stored_phases};
use crate::naming;
use crate::protocol::{
    EmittedOutput, ErrorCode, ReducerInputsPage, ReducerInputsRequest, TaskInput, TaskLimits,
    TaskMemo, TaskOutcome, TaskRequest, TaskResponse,
};
use crate::status::{JobEvent, finish_if_ready, ready_to_finish, transition, upstream_complete};

/// Supervisor tunables.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// This supervisor's id (lease owner).
    pub id: String,
    /// Lease duration; renewed every third of it.
    pub lease_ttl: Duration,
    /// How long the driver waits for a result before re-checking the job.
    pub poll_interval: Duration,
    /// An attempt taking longer is treated as a node failure.
    pub task_timeout: Duration,
    /// Retries of infrastructure failures per task (Manta: 2).
    pub max_retries: u32,
    /// Inputs consumed per transaction.
    pub input_batch: usize,
    /// The cluster's node health rule (heartbeat timeout).
    pub health: membership::HealthRule,
    /// `MANTA_URL` given to tasks.
    pub task_url: String,
    /// Open input with no new inputs for this long (since pickup or the
    /// last input) is ended automatically (Manta: 1 hour).
    pub idle_close: Duration,
    /// The guest runtime's identity (`sandbox::runtime_id`), which memo
    /// keys include; `None` turns memoized tasks off ([`crate::memo`]).
    pub runtime: Option<String>,
}

impl SupervisorConfig {
    /// Defaults with the given id.
    pub fn new(id: impl Into<String>) -> Self {
        SupervisorConfig {
            id: id.into(),
            lease_ttl: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            task_timeout: Duration::from_secs(3600),
            max_retries: 2,
            input_batch: 64,
            health: membership::HealthRule::default(),
            task_url: naming::DEFAULT_TASK_URL.into(),
            idle_close: Duration::from_secs(3600),
            runtime: None,
        }
    }
}

/// How [`Supervisor::drive`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveEnd {
    /// The job is done.
    Done,
    /// Another supervisor holds the job now.
    LeaseLost,
}

/// A resolved input object.
#[derive(Debug, Clone)]
struct Resolved {
    name: String,
    /// The name as a path (to lock its entry when the task is pinned).
    path: meta::path::MantaPath,
    object_id: Uuid,
    size: u64,
    copies: Vec<String>,
}

/// A dispatch failure of one input, as a job error.
#[derive(Debug, Clone)]
struct Rejected {
    code: ErrorCode,
    message: String,
}

/// One result flowing back from an executor call.
#[derive(Debug)]
struct Completion {
    phase: u32,
    task: Uuid,
    attempt: u32,
    node: String,
    result: Result<TaskResponse, ExecError>,
    /// The task's memo key, and whether its result was reused (`true`) or
    /// ran (`false`: recorded when the agent reports it reproducible).
    memo: Option<([u8; 32], bool)>,
}

/// Results committed in one transaction at most: bounds the transaction
/// (and its conflicts) while sparing a commit per task under load.
const COMMIT_BATCH: usize = 64;

/// One result's commit, prepared ([`Supervisor::prepare`]) and applied
/// with others in one transaction ([`Supervisor::commit_all`]).
#[derive(Debug)]
struct Commit {
    task: TaskRecord,
    success: bool,
    outputs: Vec<TaskOutput>,
    error: Option<JobErrorRecord>,
    prepared: Vec<Result<TaskRecord, JobErrorRecord>>,
    routed: Vec<(u32, String)>,
    reused: bool,
    record: Option<([u8; 32], MemoRecord)>,
}

/// What a task's commit does with its memo key.
#[derive(Debug, Clone, Copy)]
enum Memo {
    /// The result was reused: the task is marked memoized.
    Reused,
    /// The task ran and its result is reproducible: record it.
    Record([u8; 32]),
}

/// Jobs one supervisor drives at once; more wait for a later claim (by it
/// or another supervisor).
pub const MAX_DRIVEN: usize = 64;

/// The error of a task whose attempts were lost with the process running
/// them on every try (counted in meta, so across supervisor restarts).
pub const LOST_ATTEMPTS: &str =
    "task attempts were lost on every retry (the process running it stopped each time)";

/// The supervisor; share it as `Arc<Supervisor>`.
pub struct Supervisor {
    cfg: SupervisorConfig,
    store: JobStore,
    ns: Namespace,
    exec: Arc<dyn TaskExecutor>,
    load: Mutex<HashMap<String, u64>>,
    /// Nodes an attempt failed on (node unreachable, died mid-task or
    /// answered an error), with when: such a node is passed over while
    /// another copy looks alive, until it heartbeats again. Heartbeats
    /// alone take up to the heartbeat timeout to show a dead node.
    suspects: membership::Suspects,
    archive: Option<Arc<dyn ArchiveSink>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("id", &self.cfg.id)
            .finish_non_exhaustive()
    }
}

/// Renews a driven job's lease every third of its term on a task of its
/// own, so that one long step of the driver (a recovery, a large batch of
/// commits on a slow store) cannot let it lapse: a lapsed lease is taken
/// over, even by this supervisor, and every attempt then in flight counts
/// as lost against its task's retries. Renewing grants nothing by itself:
/// every write of the driver still checks the lease in its transaction.
/// Stops when dropped.
struct LeaseKeeper {
    lost: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseKeeper {
    fn start(sup: &Arc<Supervisor>, id: Uuid) -> LeaseKeeper {
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sup, flag) = (sup.clone(), lost.clone());
        let task = tokio::spawn(async move {
            let ttl = sup.cfg.lease_ttl;
            loop {
                tokio::time::sleep(ttl / 3).await;
                match sup.store.take_lease(&id, &sup.cfg.id, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        flag.store(true, std::sync::atomic::Ordering::Relaxed);
                        return;
                    }
                    // The driver's own transactions see the store fail too;
                    // the next tick tries again.
                    Err(e) => tracing::warn!(job = %id, error = %e, "lease renewal failed"),
                }
            }
        });
        LeaseKeeper { lost, task }
    }

    /// Whether another supervisor holds the lease now.
    fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Per-job context of a driver.
struct JobCtx {
    id: Uuid,
    owner: String,
    /// Reads reach every account ([`naming::may_read`]).
    operator: bool,
    /// A subuser's job: the roles its reads are judged by ([`crate::roles`]).
    roles: Option<crate::roles::JobAccess>,
    phases: Vec<Phase>,
    tx: mpsc::UnboundedSender<Completion>,
    inflight: HashSet<Uuid>,
    /// The reducers among `inflight`, with their phase: a step looks for
    /// reducers to start only while some of the phase are not running.
    reducers_inflight: HashMap<Uuid, u32>,
    picked_up_ms: u64,
}

impl JobCtx {
    /// The directory part of `task`'s output names ([`naming::output_base`]),
    /// as its request and its memo record both need it.
    fn output_base(&self, task: &TaskRecord) -> String {
        naming::output_base(
            &self.owner,
            &self.id,
            task.reducer.is_some(),
            task.p0input.as_deref(),
            task.input.as_deref(),
        )
    }
}

fn what_for(phase: u32, input: &str, p0: Option<&str>) -> String {
    let q = serde_json::Value::String(input.to_owned()).to_string();
    match p0 {
        Some(p0) if phase > 0 => {
            let p = serde_json::Value::String(p0.to_owned()).to_string();
            format!("phase {phase}: input {q} (from job input {p})")
        }
        _ => format!("phase {phase}: input {q}"),
    }
}

impl Supervisor {
    /// A supervisor over `store` (job tables) and `ns` (objects, nodes).
    pub fn new(
        cfg: SupervisorConfig,
        store: JobStore,
        ns: Namespace,
        exec: Arc<dyn TaskExecutor>,
    ) -> Arc<Self> {
        Self::build(cfg, store, ns, exec, None)
    }

    /// Like [`Supervisor::new`], and archive every job it finishes (or
    /// finds done but not archived) into `sink` (spec E12).
    pub fn with_archive(
        cfg: SupervisorConfig,
        store: JobStore,
        ns: Namespace,
        exec: Arc<dyn TaskExecutor>,
        sink: Arc<dyn ArchiveSink>,
    ) -> Arc<Self> {
        Self::build(cfg, store, ns, exec, Some(sink))
    }

    fn build(
        cfg: SupervisorConfig,
        store: JobStore,
        ns: Namespace,
        exec: Arc<dyn TaskExecutor>,
        archive: Option<Arc<dyn ArchiveSink>>,
    ) -> Arc<Self> {
        Arc::new(Supervisor {
            cfg,
            store,
            ns,
            exec,
            load: Mutex::new(HashMap::new()),
            suspects: membership::Suspects::default(),
            archive,
        })
    }

    /// Archive a done job if this supervisor archives (errors are logged:
    /// the job stays unarchived and is picked up again by a later claim).
    async fn archive_done(&self, id: Uuid) {
        let Some(sink) = &self.archive else {
            return;
        };
        if let Err(e) = crate::archive::archive_job(&self.store, &id, sink.as_ref()).await {
            tracing::warn!(job = %id, error = %e, "archiving failed; will retry");
        }
    }

    /// Delete a done job's intermediate objects (spec §4.3): the
    /// committed outputs of its non-final phases that live under its
    /// `stor/` directory, through the namespace's delete (their copies get
    /// GC records and are reclaimed like any deleted object's), then the
    /// directories that leaves empty below `stor/`. Never an object outside
    /// the job's directory (an `mcat` of the user's object, an `mpipe` to
    /// a named path), never a final output (also when a last phase re-emits
    /// an intermediate by reference), never an error artifact (stderr and
    /// cores are not outputs). Idempotent, so a job found done again (a
    /// takeover, a restart) is cleaned again harmlessly; failures are
    /// logged and leave objects behind, never fail the job. Returns how
    /// many objects were deleted. A job created with `keepIntermediates`
    /// keeps them all (0).
    pub async fn delete_intermediates(&self, id: Uuid) -> u64 {
        match self.try_delete_intermediates(id).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "deleting intermediate objects failed");
                0
            }
        }
    }

    async fn try_delete_intermediates(&self, id: Uuid) -> Result<u64, JobsError> {
        const PAGE: usize = 256;
        let Some(job) = self.store.get_job(&id).await? else {
            return Ok(0);
        };
        if job.state != JobState::Done || job.phase_count < 2 || job.keep_intermediates {
            return Ok(0);
        }
        let stor = naming::job_stor(&job.owner, &id);
        let prefix = format!("{stor}/");
        let outputs_of = |phase: u32| {
            let store = self.store.clone();
            async move {
                let mut all = Vec::new();
                let mut after: Option<Vec<u8>> = None;
                loop {
                    let page = store.outputs(&id, phase, after.as_deref(), PAGE).await?;
                    after = page.last().map(|(k, _)| k.clone());
                    let n = page.len();
                    all.extend(page.into_iter().map(|(_, o)| o.name));
                    if n < PAGE {
                        return Ok::<_, JobsError>(all);
                    }
                }
            }
        };
        let last = job.phase_count - 1;
        let finals: HashSet<String> = outputs_of(last)
            .await?
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        let mut deleted = 0;
        let mut dirs = std::collections::BTreeSet::new();
        let cond = meta::namespace::Conditions::default();
        for phase in 0..last {
            for name in outputs_of(phase).await? {
                if !name.starts_with(&prefix) || finals.contains(&name) {
                    continue;
                }
                let Ok(path) = meta::path::MantaPath::parse(&name) else {
                    continue;
                };
                match self.ns.delete(&path, &cond).await {
                    Ok(_) => deleted += 1,
                    Err(meta::namespace::NamespaceError::NotFound(_)) => {}
                    Err(e) => {
                        tracing::warn!(job = %id, object = %name, error = %e, "intermediate object not deleted");
                        continue;
                    }
                }
                let mut dir = name.as_str();
                while let Some((parent, _)) = dir.rsplit_once('/') {
                    if parent.len() <= stor.len() {
                        break;
                    }
                    dirs.insert(parent.to_owned());
                    dir = parent;
                }
            }
        }
        // Deepest first; a directory still holding anything stays.
        for dir in dirs.iter().rev() {
            if let Ok(path) = meta::path::MantaPath::parse(dir) {
                let _ = self.ns.delete(&path, &cond).await;
            }
        }
        Ok(deleted)
    }

    /// This supervisor's id.
    pub fn id(&self) -> &str {
        &self.cfg.id
    }

    fn load(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.load.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take leases on up to `max` live, unfinished jobs that no other
    /// supervisor holds (free or expired leases); returns their ids.
    pub async fn claim_jobs(&self, max: usize) -> Result<Vec<Uuid>, JobsError> {
        self.claim_new(max, &HashSet::new()).await
    }

    /// [`Self::claim_jobs`] passing over the jobs in `driving` (whose
    /// drivers renew their own leases): no commit per job already driven
    /// each time a new job arrives.
    async fn claim_new(&self, max: usize, driving: &HashSet<Uuid>) -> Result<Vec<Uuid>, JobsError> {
        let mut claimed = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.live_jobs(after, 256).await?;
            for id in &page {
                if claimed.len() >= max {
                    return Ok(claimed);
                }
                if driving.contains(id) {
                    continue;
                }
                let Some(job) = self.store.get_job(id).await? else {
                    continue;
                };
                // Done jobs are claimed only to be archived.
                if job.state == JobState::Done
                    && (self.archive.is_none() || job.time_archive_done_ms.is_some())
                {
                    continue;
                }
                if self
                    .store
                    .take_lease(id, &self.cfg.id, self.cfg.lease_ttl)
                    .await?
                {
                    claimed.push(*id);
                }
            }
            match page.last() {
                Some(last) if page.len() == 256 => after = Some(*last),
                _ => return Ok(claimed),
            }
        }
    }

    /// Run claim-and-drive (at most [`MAX_DRIVEN`] jobs at once) until
    /// `shutdown` turns true.
    pub async fn run(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), JobsError> {
        let mut driving: tokio::task::JoinSet<(Uuid, Result<DriveEnd, JobsError>)> =
            tokio::task::JoinSet::new();
        let mut active: HashSet<Uuid> = HashSet::new();
        // A job created in this process is claimed at once, not at the
        // next poll (jobs created elsewhere still wait for the poll).
        let mut created = self.store.changes(JobChange::Created);
        loop {
            if *shutdown.borrow() {
                driving.abort_all();
                return Ok(());
            }
            let room = MAX_DRIVEN.saturating_sub(active.len());
            for id in self.claim_new(room, &active).await? {
                if active.insert(id) {
                    let me = self.clone();
                    driving.spawn(async move {
                        let res = me.drive_leased(id).await;
                        if matches!(res, Ok(DriveEnd::Done)) {
                            me.delete_intermediates(id).await;
                            me.archive_done(id).await;
                        }
                        (id, res)
                    });
                }
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(joined) = driving.join_next() => {
                    if let Ok((id, res)) = joined {
                        active.remove(&id);
                        if let Err(e) = res {
                            tracing::warn!(job = %id, error = %e, "job driver failed; will retry");
                        }
                    }
                }
                Ok(()) = created.changed() => {}
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
        }
    }

    /// Drive one job (whose lease this supervisor took) until it is done or
    /// the lease is lost.
    pub async fn drive(self: &Arc<Self>, id: Uuid) -> Result<DriveEnd, JobsError> {
        if !self
            .store
            .take_lease(&id, &self.cfg.id, self.cfg.lease_ttl)
            .await?
        {
            return Ok(DriveEnd::LeaseLost);
        }
        self.drive_leased(id).await
    }

    /// [`Self::drive`] of a job whose lease this supervisor has just
    /// taken ([`Self::claim_jobs`]): taking it again would cost a commit
    /// before the job's first task.
    async fn drive_leased(self: &Arc<Self>, id: Uuid) -> Result<DriveEnd, JobsError> {
        let keeper = LeaseKeeper::start(self, id);
        let Some(job) = self.store.get_job(&id).await? else {
            return Err(JobsError::Store(JobStoreError::NotFound(id)));
        };
        let manifest = parse_stored_phases(&job.phases_json)?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut ctx = JobCtx {
            id,
            owner: job.owner.clone(),
            operator: job.operator,
            roles: job.roles.as_ref().map(crate::roles::JobAccess::new),
            phases: manifest.phases,
            tx,
            inflight: HashSet::new(),
            reducers_inflight: HashMap::new(),
            picked_up_ms: self.store.now_ms(),
        };
        match self.pick_up(&ctx).await {
            Err(JobsError::Store(JobStoreError::LeaseLost(_))) => return Ok(DriveEnd::LeaseLost),
            Err(e) => return Err(e),
            Ok(true) => {}
            Ok(false) => return self.finish_done(&ctx).await,
        }
        self.recover(&mut ctx).await?;
        let mut renewed = self.store.now_ms();
        // Subscribed before the first look at the job, so a change made
        // after any later look wakes the wait that follows it.
        let mut changes = self.store.changes(JobChange::Any);
        loop {
            if keeper.lost() {
                return Ok(DriveEnd::LeaseLost);
            }
            let step = self
                .step(&mut ctx, &mut rx, &mut changes, &mut renewed)
                .await;
            match step {
                Ok(Some(end)) => return Ok(end),
                Ok(None) => {}
                Err(JobsError::Store(JobStoreError::LeaseLost(_))) => {
                    return Ok(DriveEnd::LeaseLost);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn finish_done(&self, ctx: &JobCtx) -> Result<DriveEnd, JobsError> {
        self.store.release_lease(&ctx.id, &self.cfg.id).await?;
        Ok(DriveEnd::Done)
    }

    /// One round: renew, handle cancel, consume inputs, dispatch eligible
    /// reducers, finish, or wait for a result.
    async fn step(
        self: &Arc<Self>,
        ctx: &mut JobCtx,
        rx: &mut mpsc::UnboundedReceiver<Completion>,
        changes: &mut tokio::sync::watch::Receiver<u64>,
        renewed: &mut u64,
    ) -> Result<Option<DriveEnd>, JobsError> {
        let ttl_ms = u64::try_from(self.cfg.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        if self.store.now_ms().saturating_sub(*renewed) >= ttl_ms / 3 {
            if !self
                .store
                .take_lease(&ctx.id, &self.cfg.id, self.cfg.lease_ttl)
                .await?
            {
                return Ok(Some(DriveEnd::LeaseLost));
            }
            *renewed = self.store.now_ms();
        }
        let Some(job) = self.store.get_job(&ctx.id).await? else {
            return Ok(Some(DriveEnd::Done));
        };
        if job.state == JobState::Done {
            return self.finish_done(ctx).await.map(Some);
        }
        let idle_ms = u64::try_from(self.cfg.idle_close.as_millis()).unwrap_or(u64::MAX);
        let idle_since = job.last_input_ms.max(ctx.picked_up_ms);
        if !job.input_done && self.store.now_ms().saturating_sub(idle_since) >= idle_ms {
            // The forgotten-open-input case (spec §3.3): end it for the user.
            self.store
                .update_job(&ctx.id, |j| {
                    j.input_done = true;
                    Ok(())
                })
                .await?;
            return Ok(None);
        }
        if job.cancelled {
            self.cancel_all(ctx).await?;
        } else if job.inputs_consumed < job.next_input_seq {
            let created = self.consume_inputs(ctx, job.inputs_consumed).await?;
            for t in created {
                self.dispatch(ctx, t);
            }
            return Ok(None);
        } else {
            self.dispatch_reducers(ctx, &job).await?;
        }
        // Check on the snapshot first: the finishing transaction locks the
        // job record, which would make every poll conflict with the
        // gateway's input appends.
        if (job.cancelled || ready_to_finish(&job)) && self.try_finish(ctx).await? {
            return self.finish_done(ctx).await.map(Some);
        }
        // Wait for a result (or time out and look at the job again: new
        // inputs, end of input and cancellation arrive through meta).
        // (A client change made through this process wakes it early.)
        tokio::select! {
            Some(c) = rx.recv() => {
                // With whatever else is ready, without waiting: committed
                // together.
                let mut batch = vec![c];
                while batch.len() < COMMIT_BATCH * 4
                    && let Ok(c) = rx.try_recv()
                {
                    batch.push(c);
                }
                self.complete_all(ctx, batch).await?;
            }
            Ok(()) = changes.changed() => {}
            () = tokio::time::sleep(self.cfg.poll_interval) => {}
        }
        Ok(None)
    }

    /// queued → running, and create every reduce phase's reducers. Returns
    /// false if the job is already done.
    async fn pick_up(&self, ctx: &JobCtx) -> Result<bool, JobsError> {
        let now = self.store.now_ms();
        let me = self.cfg.id.clone();
        let phases = ctx.phases.clone();
        let r: Result<bool, JobStoreError> = job_txn!(&self.store, t => async {
            t.check_lease(&ctx.id, &me, now).await?;
            let mut job = t.job_for_update(&ctx.id).await?;
            if job.state == JobState::Done {
                return Ok(false);
            }
            // Running already means a takeover; the transition allows it.
            job.state = transition(job.state, JobEvent::PickedUp).unwrap_or(job.state);
            if !job.reducers_created {
                for (p, phase) in phases.iter().enumerate() {
                    if phase.kind == PhaseKind::Reduce {
                        let p = p as u32;
                        for r in 0..phase.count {
                            t.put_task(&TaskRecord::reduce(ctx.id, p, r), None).await?;
                        }
                        job.adjust_open(p, i64::from(phase.count));
                        job.stats.tasks += u64::from(phase.count);
                    }
                }
                job.reducers_created = true;
            }
            t.put_job(&job).await?;
            Ok(true)
        });
        Ok(r?)
    }

    /// After a takeover: re-dispatch every map task left unfinished by the
    /// previous owner (reducers wait for [`Self::dispatch_reducers`]).
    async fn recover(self: &Arc<Self>, ctx: &mut JobCtx) -> Result<(), JobsError> {
        let mut after = None;
        loop {
            let page = self.store.tasks(&ctx.id, after, 256).await?;
            for t in &page {
                let was_sent = matches!(t.state, TaskState::Dispatched | TaskState::Running);
                if was_sent && t.retries >= self.cfg.max_retries {
                    // Its attempts keep being lost with the process that ran
                    // them (a task that crashes its host would otherwise be
                    // re-dispatched after every restart, forever).
                    let outcome = TaskOutcome::Failure {
                        code: ErrorCode::InternalError,
                        message: LOST_ATTEMPTS.into(),
                        stderr: None,
                        core: None,
                    };
                    let node = t.node.clone().unwrap_or_default();
                    let commit = self.prepare(ctx, t.clone(), outcome, node, None).await?;
                    for n in self.commit_all(ctx, std::slice::from_ref(&commit)).await? {
                        self.dispatch(ctx, n);
                    }
                    continue;
                }
                if t.reducer.is_none() && !t.state.is_finished() {
                    let t = self.reassign(ctx, t.clone(), false).await?;
                    if let Some(t) = t {
                        self.dispatch(ctx, t);
                    }
                } else if t.reducer.is_some() && was_sent {
                    // A reducer that was running restarts from its first input.
                    if let Some(t) = self.reassign(ctx, t.clone(), false).await? {
                        self.dispatch(ctx, t);
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == 256 => after = Some((last.phase, last.id)),
                _ => return Ok(()),
            }
        }
    }

    /// Placement candidates by the cluster's one rule; with
    /// `trust_failures`, a node that failed an attempt since its last
    /// heartbeat counts as unhealthy too.
    fn candidates(
        &self,
        nodes: &[meta::namespace::NodeRecord],
        trust_failures: bool,
    ) -> Vec<Candidate> {
        let now = self.store.now_ms();
        membership::ClusterView::from_records(
            nodes.to_vec(),
            self.cfg.health,
            Some(&self.suspects),
            now,
        )
        .candidates(trust_failures)
    }

    /// Remember that an attempt on `node` failed for infrastructure reasons.
    fn suspect(&self, node: &str) {
        self.suspects.mark(node, self.store.now_ms());
    }

    /// Pick a node for a task: a healthy copy (map) or any healthy node
    /// (reducers, empty objects). In order of preference: outside `avoid`
    /// and not failed since its last heartbeat; not failed since its last
    /// heartbeat; outside `avoid`; any live one.
    async fn choose_node(
        &self,
        copies: &[String],
        avoid: &[String],
    ) -> Result<Option<String>, JobsError> {
        let nodes = self.ns.list_nodes().await?;
        let load = self.load().clone();
        let seed = Uuid::new_v4().as_u128() as u64;
        for trust_failures in [true, false] {
            let cands = self.candidates(&nodes, trust_failures);
            let pool: Vec<String> = if copies.is_empty() {
                cands
                    .iter()
                    .filter(|c| c.healthy)
                    .map(|c| c.id.clone())
                    .collect()
            } else {
                copies.to_vec()
            };
            let preferred: Vec<String> = pool
                .iter()
                .filter(|n| !avoid.contains(n))
                .cloned()
                .collect();
            for choices in [&preferred, &pool] {
                if let Ok(n) = placement::choose_for_task(choices, &cands, &load, seed) {
                    return Ok(Some(n));
                }
            }
        }
        Ok(None)
    }

    /// Resolve an input name to an object the owner may read. Every name a
    /// phase will read goes through here first, whether it becomes a map
    /// task or a reducer input ([`naming::readable_by`] is the rule).
    async fn resolve(
        &self,
        ctx: &JobCtx,
        name: &str,
    ) -> Result<Result<Resolved, Rejected>, JobsError> {
        let (owner, operator) = (ctx.owner.as_str(), ctx.operator);
        let reject = |code, message: String| Ok(Err(Rejected { code, message }));
        let q = serde_json::Value::String(name.to_owned()).to_string();
        let (norm, path) = match naming::readable_by(owner, operator, name) {
            Ok(p) => p,
            Err(e @ naming::NameDenied::Malformed(_)) => {
                return reject(ErrorCode::ResourceNotFoundError, e.to_string());
            }
            Err(e @ naming::NameDenied::Forbidden(_)) => {
                return reject(ErrorCode::AuthorizationError, e.to_string());
            }
        };
        match self.ns.get(&path).await? {
            None => reject(
                ErrorCode::ResourceNotFoundError,
                format!("no such object: {q}"),
            ),
            Some(e)
                if ctx
                    .roles
                    .as_ref()
                    .is_some_and(|r| !r.may_read(owner, &ctx.id, &path, &e.headers)) =>
            {
                reject(
                    ErrorCode::AuthorizationError,
                    format!("{q}: none of the job's roles allows getobject"),
                )
            }
            Some(e) => match e.object() {
                None => reject(
                    ErrorCode::InvalidArgumentError,
                    format!("objects of type \"directory\" are not supported: {q}"),
                ),
                Some(o) => Ok(Ok(Resolved {
                    name: norm,
                    path: path.clone(),
                    object_id: o.object_id,
                    size: o.size,
                    copies: o.copies.clone(),
                })),
            },
        }
    }

    /// A map task for a resolved input, already placed on a node; or the
    /// error to record instead.
    async fn new_map_task(
        &self,
        ctx: &JobCtx,
        phase: u32,
        resolved: Result<Resolved, Rejected>,
        input: &str,
        p0input: Option<String>,
    ) -> Result<Result<TaskRecord, JobErrorRecord>, JobsError> {
        let err = |r: Rejected| JobErrorRecord {
            phase,
            what: what_for(phase, input, p0input.as_deref()),
            code: r.code.as_str().into(),
            message: r.message,
            input: Some(input.to_owned()),
            p0input: p0input.clone(),
            ..Default::default()
        };
        let res = match resolved {
            Err(r) => return Ok(Err(err(r))),
            Ok(res) => res,
        };
        let copies = if res.size == 0 {
            Vec::new()
        } else {
            res.copies.clone()
        };
        let Some(node) = self.choose_node(&copies, &[]).await? else {
            return Ok(Err(err(Rejected {
                code: ErrorCode::ServiceUnavailableError,
                message: "no servers available to run task".into(),
            })));
        };
        let mut t = TaskRecord::map(ctx.id, phase, res.name, p0input.clone(), res.copies);
        t.object_id = Some(res.object_id);
        t.size = res.size;
        t.state = TaskState::Dispatched;
        t.node = Some(node);
        Ok(Ok(t))
    }

    /// Consume one batch of job inputs starting at `from`.
    async fn consume_inputs(&self, ctx: &JobCtx, from: u64) -> Result<Vec<TaskRecord>, JobsError> {
        let inputs = self
            .store
            .inputs(&ctx.id, from, self.cfg.input_batch)
            .await?;
        let Some(phase0) = ctx.phases.first() else {
            return Ok(Vec::new());
        };
        enum Item {
            Task(TaskRecord, Option<meta::path::MantaPath>),
            Error(JobErrorRecord),
            Reduce(String),
        }
        let mut items = Vec::with_capacity(inputs.len());
        for (_, name) in &inputs {
            let resolved = self.resolve(ctx, name).await?;
            let path = resolved.as_ref().ok().map(|r| r.path.clone());
            let item = match (phase0.kind, resolved) {
                (PhaseKind::Reduce, Ok(r)) => Item::Reduce(r.name),
                (_, res) => match self
                    .new_map_task(ctx, 0, res, name, Some(name.clone()))
                    .await?
                {
                    Ok(t) => Item::Task(t, path),
                    Err(e) => Item::Error(e),
                },
            };
            items.push(item);
        }
        let now = self.store.now_ms();
        let me = self.cfg.id.clone();
        let n = inputs.len() as u64;
        let count = phase0.count;
        let r: Result<Vec<TaskRecord>, JobStoreError> = job_txn!(&self.store, t => async {
            t.check_lease(&ctx.id, &me, now).await?;
            let mut job = t.job_for_update(&ctx.id).await?;
            if job.inputs_consumed != from {
                // Someone else made progress in between; start over.
                return Ok(Vec::new());
            }
            // Each input must still name the object it was resolved to
            // (checked before anything is written): the task is pinned to
            // that version, see `JobTxn::input_still_named`.
            for item in &items {
                if let Item::Task(task, Some(path)) = item
                    && !t.input_still_named(task, path).await?
                {
                    // Overwritten since it was resolved: start over.
                    return Ok(Vec::new());
                }
            }
            let mut created = Vec::new();
            let mut reducers: HashMap<(u32, u32), TaskRecord> = HashMap::new();
            for item in &items {
                match item {
                    Item::Task(task, _) => {
                        t.pin(task).await?;
                        t.put_task(task, None).await?;
                        job.adjust_open(0, 1);
                        job.stats.tasks += 1;
                        created.push(task.clone());
                    }
                    Item::Error(e) => t.push_error(&mut job, e).await?,
                    Item::Reduce(name) => {
                        let r = (Uuid::new_v4().as_u128() % u128::from(count.max(1))) as u32;
                        route_to_reducer(t, &mut reducers, &ctx.id, 0, r, name).await?;
                    }
                }
            }
            for r in reducers.values() {
                t.put_task(r, r.node.as_deref()).await?;
            }
            job.inputs_consumed = from + n;
            t.put_job(&job).await?;
            Ok(created)
        });
        Ok(r?)
    }

    /// Send one task to its node; the result comes back on the channel.
    fn dispatch(self: &Arc<Self>, ctx: &mut JobCtx, task: TaskRecord) {
        let Some(node) = task.node.clone() else {
            return;
        };
        let Some(phase) = ctx.phases.get(task.phase as usize).cloned() else {
            return;
        };
        ctx.inflight.insert(task.id);
        if task.reducer.is_some() {
            ctx.reducers_inflight.insert(task.id, task.phase);
        }
        *self.load().entry(node.clone()).or_default() += 1;
        let next_reducers = match ctx.phases.get(task.phase as usize + 1) {
            Some(p) if p.kind == PhaseKind::Reduce => p.count,
            _ => 0,
        };
        let reducer = task.reducer.is_some();
        let base = ctx.output_base(&task);
        let out_base = naming::manta_output_base(&ctx.owner, &ctx.id, &base, task.phase);
        let input = match (task.reducer, &task.input) {
            (Some(r), _) => TaskInput::Reduce { reducer: r },
            (None, input) => TaskInput::Map {
                object: input.clone().unwrap_or_default(),
                object_id: task.object_id.unwrap_or_default(),
                size: task.size,
            },
        };
        let env = naming::task_env(&naming::EnvSpec {
            login: &ctx.owner,
            job: &ctx.id,
            output_base: &out_base,
            input_object: task.input.as_deref().filter(|_| !reducer),
            reducer: task.reducer,
            url: &self.cfg.task_url,
        });
        let mut req = TaskRequest {
            job_id: ctx.id,
            owner: ctx.owner.clone(),
            operator: ctx.operator,
            phase: task.phase,
            task_id: task.id,
            attempt: task.attempt,
            exec: phase.exec.clone(),
            init: phase.init.clone(),
            assets: phase.assets.clone(),
            input,
            env,
            stdout_object: naming::stdout_object(&ctx.owner, &ctx.id, &base, task.phase, &task.id),
            stderr_object: naming::stderr_object(&ctx.owner, &ctx.id, &base, task.phase, &task.id),
            next_reducers,
            limits: TaskLimits {
                memory_mb: phase.memory_mb,
                disk_gb: phase.disk_gb,
            },
            memo: None,
        };
        let me = self.clone();
        let tx = ctx.tx.clone();
        let feed: Arc<dyn ReducerFeed> = Arc::new(StoreFeed {
            store: self.store.clone(),
        });
        // A subuser's job fetches only the assets its roles allow, which
        // the agent checks: reusing a result would skip that check.
        let memo_allowed = ctx.roles.is_none() || phase.assets.is_empty();
        tokio::spawn(async move {
            let memo = match (&me.cfg.runtime, task.object_id) {
                (Some(runtime), Some(input))
                    if memo_allowed && !reducer && crate::memo::memoizable(&phase) =>
                {
                    me.memo_for(&req, &phase, runtime, input).await
                }
                _ => None,
            };
            if let Some((key, _)) = &memo
                && let Some(outputs) = me.reuse(&req, key).await
            {
                if let Some(n) = me.load().get_mut(&node) {
                    *n = n.saturating_sub(1);
                }
                let _ = tx.send(Completion {
                    phase: task.phase,
                    task: task.id,
                    attempt: task.attempt,
                    node: node.clone(),
                    result: Ok(TaskResponse {
                        task_id: task.id,
                        attempt: task.attempt,
                        node,
                        outcome: TaskOutcome::Success { outputs },
                        reproducible: true,
                    }),
                    memo: Some((*key, true)),
                });
                return;
            }
            let memo_key = memo.as_ref().map(|(key, _)| (*key, false));
            req.memo = memo.map(|(_, m)| m);
            let run = me.exec.execute(&node, req, feed);
            let result = match tokio::time::timeout(me.cfg.task_timeout, run).await {
                Ok(r) => r,
                Err(_) => Err(ExecError::NodeUnavailable(format!(
                    "{node} (task timed out)"
                ))),
            };
            if let Some(n) = me.load().get_mut(&node) {
                *n = n.saturating_sub(1);
            }
            // The driver may be gone (lease lost); then the result is dropped
            // and the next owner re-runs the task.
            let _ = tx.send(Completion {
                phase: task.phase,
                task: task.id,
                attempt: task.attempt,
                node,
                result,
                memo: memo_key,
            });
        });
    }

    /// The memo key of a memoizable map task and its request (the assets'
    /// etags read now), `None` when an asset cannot be read (the task runs,
    /// and fails there as it would have).
    async fn memo_for(
        &self,
        req: &TaskRequest,
        phase: &Phase,
        runtime: &str,
        input: Uuid,
    ) -> Option<([u8; 32], TaskMemo)> {
        let mut assets = Vec::with_capacity(phase.assets.len());
        for a in &phase.assets {
            let (_, path) = naming::readable_by(&req.owner, req.operator, a).ok()?;
            let etag = self.ns.get(&path).await.ok()??.object()?.object_id;
            assets.push((a.clone(), etag));
        }
        let key = crate::memo::memo_key(&crate::memo::MemoInput {
            owner: &req.owner,
            runtime,
            phase,
            assets: &assets,
            env: &req.env,
            next_reducers: req.next_reducers,
            limits: req.limits,
            input,
        });
        let memo = TaskMemo {
            key: crate::memo::key_hex(&key),
            declared: phase.memo == MemoPolicy::Deterministic,
            runtime: runtime.to_owned(),
            assets,
        };
        Some((key, memo))
    }

    /// Reuses the recorded result under `key` for `req`: its output
    /// snaplinked to `req`'s stdout name. `None` (and the task runs) when
    /// there is none, or its output is gone or replaced (then the record
    /// is forgotten).
    async fn reuse(&self, req: &TaskRequest, key: &[u8; 32]) -> Option<Vec<EmittedOutput>> {
        let rec = self.store.memo(&req.owner, key).await.ok()??;
        let src = MantaPath::parse(&rec.output).ok()?;
        let dst = MantaPath::parse(&req.stdout_object).ok()?;
        self.ns.ensure_parent_directories(&dst).await.ok()?;
        let cond = meta::namespace::Conditions {
            if_match: Some(vec![rec.etag.to_string()]),
            ..Default::default()
        };
        match self.ns.snaplink(&src, &dst, &cond).await {
            Ok(_) => Some(vec![EmittedOutput {
                name: req.stdout_object.clone(),
                reducer: None,
            }]),
            Err(
                meta::namespace::NamespaceError::LinkSourceNotFound(_)
                | meta::namespace::NamespaceError::PreconditionFailed(_),
            ) => {
                let _ = self.store.forget_memo(&req.owner, key, &rec.task).await;
                None
            }
            Err(e) => {
                tracing::info!(error = %e, "memoized output not reused");
                None
            }
        }
    }

    /// Move a task to a (new) node for a new attempt. `retry` counts it as a
    /// retry (infrastructure failure) rather than a takeover re-dispatch.
    /// Returns `None` when no node is available (the task is then failed
    /// with an error) or the task already finished.
    async fn reassign(
        &self,
        ctx: &JobCtx,
        task: TaskRecord,
        retry: bool,
    ) -> Result<Option<TaskRecord>, JobsError> {
        let mut avoid = task.tried.clone();
        if retry && let Some(n) = &task.node {
            avoid.push(n.clone());
        }
        let copies = if task.reducer.is_some() || task.size == 0 {
            Vec::new()
        } else {
            task.copies.clone()
        };
        let node = self
            .choose_node(&copies, if retry { &avoid } else { &[] })
            .await?;
        let now = self.store.now_ms();
        let me = self.cfg.id.clone();
        let r: Result<Option<TaskRecord>, JobStoreError> = job_txn!(&self.store, t => async {
            t.check_lease(&ctx.id, &me, now).await?;
            let mut job = t.job_for_update(&ctx.id).await?;
            let mut cur = t.task_for_update(&ctx.id, task.phase, &task.id).await?;
            if cur.state.is_finished() {
                return Ok(None);
            }
            let previous = cur.node.clone();
            let Some(node) = node.clone() else {
                let e = JobErrorRecord {
                    phase: cur.phase,
                    what: task_what(&cur),
                    code: ErrorCode::ServiceUnavailableError.as_str().into(),
                    message: "no servers available to run task".into(),
                    input: cur.input.clone(),
                    p0input: cur.p0input.clone(),
                    task_id: Some(cur.id),
                    ..Default::default()
                };
                t.finish_task(&mut job, &mut cur, false, &[]).await?;
                t.push_error(&mut job, &e).await?;
                t.put_job(&job).await?;
                return Ok(None);
            };
            if let Some(p) = &previous && !cur.tried.contains(p) {
                cur.tried.push(p.clone());
            }
            cur.attempt += 1;
            if !retry && matches!(cur.state, TaskState::Dispatched | TaskState::Running) {
                // A takeover: the attempt in flight when the previous owner
                // stopped is lost. It counts against the task's retries (in
                // meta, so the bound in `recover` holds across restarts);
                // the job's counters stay as they were.
                cur.retries += 1;
            }
            if retry {
                // The failed attempt is a task done (spec: `tasks ==
                // tasksDone` at done, failures covered by `retries`); the
                // new attempt is a task dispatched.
                cur.retries += 1;
                job.stats.retries += 1;
                job.stats.tasks_done += 1;
                job.stats.tasks += 1;
            }
            cur.node = Some(node);
            cur.state = TaskState::Dispatched;
            t.put_task(&cur, previous.as_deref()).await?;
            t.put_job(&job).await?;
            Ok(Some(cur))
        });
        Ok(r?)
    }

    /// Dispatch every reducer of the job's first unfinished reduce phase
    /// that can start: one that has an input (it streams the rest as
    /// upstream tasks commit them, [`StoreFeed`]), or any, with or without
    /// inputs, once its upstream is complete. Later reduce phases wait for
    /// it, so a reducer waiting for input only ever waits for map tasks
    /// (which agents run in a share of their own: no deadlock).
    async fn dispatch_reducers(
        self: &Arc<Self>,
        ctx: &mut JobCtx,
        job: &JobRecord,
    ) -> Result<(), JobsError> {
        for (p, phase) in ctx.phases.clone().iter().enumerate() {
            let p = p as u32;
            if phase.kind != PhaseKind::Reduce || job.open_in(p) == 0 {
                continue;
            }
            let running = ctx.reducers_inflight.values().filter(|&&q| q == p).count();
            if running as u64 >= job.open_in(p) {
                return Ok(());
            }
            let complete = upstream_complete(job, p);
            let tasks = self
                .store
                .tasks(&ctx.id, Some((p, Uuid::nil())), phase.count as usize + 1)
                .await?;
            let ready: Vec<TaskRecord> = tasks
                .into_iter()
                .filter(|t| {
                    t.phase == p
                        && t.state == TaskState::Queued
                        && (complete || t.next_input_seq > 0)
                        && !ctx.inflight.contains(&t.id)
                })
                .collect();
            for t in ready {
                if let Some(t) = self.reassign(ctx, t, false).await? {
                    self.dispatch(ctx, t);
                }
            }
            return Ok(());
        }
        Ok(())
    }

    /// Commit one result.
    /// Commits the results in `batch` (in as few transactions as
    /// [`COMMIT_BATCH`] allows), retrying or ignoring those that call for
    /// it, and dispatches the tasks the commits created.
    async fn complete_all(
        self: &Arc<Self>,
        ctx: &mut JobCtx,
        batch: Vec<Completion>,
    ) -> Result<(), JobsError> {
        let mut commits = Vec::with_capacity(batch.len());
        for c in batch {
            if let Some(commit) = self.settle(ctx, c).await? {
                commits.push(commit);
            }
        }
        while !commits.is_empty() {
            let rest = commits.split_off(commits.len().min(COMMIT_BATCH));
            let next = self.commit_all(ctx, &commits).await?;
            commits = rest;
            self.store.announce_progress();
            for t in next {
                self.dispatch(ctx, t);
            }
        }
        Ok(())
    }

    /// What to do with one result: `Some` commit to make, or `None` when it
    /// is ignored (a duplicate, a stale attempt) or its task was
    /// re-dispatched for a retry.
    async fn settle(
        self: &Arc<Self>,
        ctx: &mut JobCtx,
        c: Completion,
    ) -> Result<Option<Commit>, JobsError> {
        ctx.inflight.remove(&c.task);
        ctx.reducers_inflight.remove(&c.task);
        let Some(task) = self.store.get_task(&ctx.id, c.phase, &c.task).await? else {
            return Ok(None);
        };
        if task.state.is_finished() {
            return Ok(None);
        }
        let mut reproducible = false;
        let outcome = match c.result {
            Ok(resp) => {
                reproducible = resp.reproducible;
                resp.outcome
            }
            Err(e) => {
                tracing::info!(job = %ctx.id, task = %c.task, error = %e, "task attempt lost");
                self.suspect(&c.node);
                TaskOutcome::Failure {
                    code: ErrorCode::InternalError,
                    message: "internal error".into(),
                    stderr: None,
                    core: None,
                }
            }
        };
        // A stale attempt's failure says nothing about the current attempt.
        if c.attempt != task.attempt && !matches!(outcome, TaskOutcome::Success { .. }) {
            return Ok(None);
        }
        if let TaskOutcome::Failure { code, .. } = &outcome
            && code.is_retryable()
            && task.retries < self.cfg.max_retries
        {
            if let Some(t) = self.reassign(ctx, task, true).await? {
                self.dispatch(ctx, t);
            }
            return Ok(None);
        }
        let memo = match c.memo {
            Some((_, true)) => Some(Memo::Reused),
            Some((key, false)) if reproducible => Some(Memo::Record(key)),
            _ => None,
        };
        Ok(Some(self.prepare(ctx, task, outcome, c.node, memo).await?))
    }

    /// Everything a result's commit needs that can be read before its
    /// transaction: next-phase inputs resolved, errors built, the memo
    /// record.
    async fn prepare(
        &self,
        ctx: &JobCtx,
        task: TaskRecord,
        outcome: TaskOutcome,
        node: String,
        memo: Option<Memo>,
    ) -> Result<Commit, JobsError> {
        let next_phase = ctx.phases.get(task.phase as usize + 1).cloned();
        let record = match (&memo, &outcome) {
            (Some(Memo::Record(key)), TaskOutcome::Success { outputs }) => {
                self.memo_record(ctx, &task, outputs, key).await?
            }
            _ => None,
        };
        let reused = matches!(memo, Some(Memo::Reused));
        let p0 = task.p0input.clone().filter(|_| task.reducer.is_none());
        // Resolve next-phase map inputs before the transaction (reads only).
        let mut prepared: Vec<Result<TaskRecord, JobErrorRecord>> = Vec::new();
        let mut routed: Vec<(u32, String)> = Vec::new();
        let mut outputs: Vec<TaskOutput> = Vec::new();
        let success = matches!(outcome, TaskOutcome::Success { .. });
        if let TaskOutcome::Success { outputs: emitted } = &outcome {
            let np = task.phase + 1;
            for o in emitted {
                outputs.push(TaskOutput {
                    name: o.name.clone(),
                    reducer: o.reducer,
                    p0input: p0.clone(),
                });
                match &next_phase {
                    None => {}
                    Some(ph) if ph.kind == PhaseKind::Map => {
                        let res = self.resolve(ctx, &o.name).await?;
                        prepared.push(self.new_map_task(ctx, np, res, &o.name, p0.clone()).await?);
                    }
                    Some(ph) => match o.reducer {
                        Some(r) if r >= ph.count => prepared.push(Err(JobErrorRecord {
                            phase: np,
                            what: what_for(np, &o.name, p0.as_deref()),
                            code: ErrorCode::InvalidArgumentError.as_str().into(),
                            message: format!(
                                "reducer \"{r}\" specified, but only {} reducers exist",
                                ph.count
                            ),
                            input: Some(o.name.clone()),
                            p0input: p0.clone(),
                            ..Default::default()
                        })),
                        r => {
                            // The same check as a map input: a reducer
                            // reads only what the owner may read.
                            match self.resolve(ctx, &o.name).await? {
                                Ok(res) => {
                                    let r = r.unwrap_or_else(|| {
                                        (Uuid::new_v4().as_u128() % u128::from(ph.count.max(1)))
                                            as u32
                                    });
                                    routed.push((r, res.name));
                                }
                                Err(rej) => prepared.push(Err(JobErrorRecord {
                                    phase: np,
                                    what: what_for(np, &o.name, p0.as_deref()),
                                    code: rej.code.as_str().into(),
                                    message: rej.message,
                                    input: Some(o.name.clone()),
                                    p0input: p0.clone(),
                                    ..Default::default()
                                })),
                            }
                        }
                    },
                }
            }
        }
        let error = match &outcome {
            TaskOutcome::Failure {
                code,
                message,
                stderr,
                core,
            } => Some(JobErrorRecord {
                phase: task.phase,
                what: task_what(&task),
                code: code.as_str().into(),
                message: message.clone(),
                stderr: stderr.clone(),
                core: core.clone(),
                input: task.input.clone().filter(|_| task.reducer.is_none()),
                p0input: p0.clone(),
                task_id: Some(task.id),
                server: Some(node.clone()),
            }),
            TaskOutcome::Success { .. } => None,
        };
        Ok(Commit {
            task,
            success,
            outputs,
            error,
            prepared,
            routed,
            reused,
            record,
        })
    }

    /// One transaction committing `commits` in order: each task's outputs
    /// once (a task committed already is skipped), its errors, the next
    /// phase's tasks and reducer inputs, the counters, and the job's end
    /// when the last result is in. Returns the created map tasks.
    async fn commit_all(
        &self,
        ctx: &JobCtx,
        commits: &[Commit],
    ) -> Result<Vec<TaskRecord>, JobsError> {
        let now = self.store.now_ms();
        let me = self.cfg.id.clone();
        let r: Result<Vec<TaskRecord>, JobStoreError> = job_txn!(&self.store, t => async {
            t.check_lease(&ctx.id, &me, now).await?;
            let mut job = t.job_for_update(&ctx.id).await?;
            let mut created = Vec::new();
            let mut reducers: HashMap<(u32, u32), TaskRecord> = HashMap::new();
            for c in commits {
                let task = &c.task;
                let mut cur = t.task_for_update(&ctx.id, task.phase, &task.id).await?;
                cur.memoized = c.reused && !cur.state.is_finished();
                if !t.finish_task(&mut job, &mut cur, c.success, &c.outputs).await? {
                    // Already committed by an earlier report: ignore this one.
                    continue;
                }
                if c.reused {
                    job.stats.memoized += 1;
                }
                if let Some((key, rec)) = &c.record {
                    t.put_memo(&ctx.owner, key, rec).await?;
                }
                if let Some(e) = &c.error {
                    t.push_error(&mut job, e).await?;
                }
                for p in &c.prepared {
                    match p {
                        Ok(nt) => {
                            // The job's own output, just written: pinned
                            // without the name check of job inputs.
                            t.pin(nt).await?;
                            t.put_task(nt, None).await?;
                            job.adjust_open(nt.phase, 1);
                            job.stats.tasks += 1;
                            created.push(nt.clone());
                        }
                        Err(e) => t.push_error(&mut job, e).await?,
                    }
                }
                for (r, name) in &c.routed {
                    route_to_reducer(t, &mut reducers, &ctx.id, task.phase + 1, *r, name).await?;
                }
            }
            for r in reducers.values() {
                t.put_task(r, r.node.as_deref()).await?;
            }
            // The last result finishes the job in its own commit (one
            // transaction, and the user sees `done` a round trip sooner).
            finish_if_ready(&mut job, now);
            t.put_job(&job).await?;
            Ok(created)
        });
        Ok(r?)
    }

    /// The memo record of a reproducible task's result: its stdout object
    /// and that object's etag as it is now (`None` if the task emitted
    /// anything else, or the object is not there).
    async fn memo_record(
        &self,
        ctx: &JobCtx,
        task: &TaskRecord,
        outputs: &[EmittedOutput],
        key: &[u8; 32],
    ) -> Result<Option<([u8; 32], MemoRecord)>, JobsError> {
        let [out] = outputs else {
            return Ok(None);
        };
        let base = ctx.output_base(task);
        let stdout = naming::stdout_object(&ctx.owner, &ctx.id, &base, task.phase, &task.id);
        if out.name != stdout || out.reducer.is_some() {
            return Ok(None);
        }
        let Ok(path) = MantaPath::parse(&stdout) else {
            return Ok(None);
        };
        let Some(etag) = self
            .ns
            .get(&path)
            .await?
            .and_then(|e| e.object().map(|o| o.object_id))
        else {
            return Ok(None);
        };
        Ok(Some((
            *key,
            MemoRecord {
                job: ctx.id,
                task: task.id,
                output: stdout,
                etag,
                created_ms: self.store.now_ms(),
            },
        )))
    }

    /// Cancellation: fail every unfinished task with `JobCancelledError`,
    /// stop consuming inputs.
    async fn cancel_all(&self, ctx: &mut JobCtx) -> Result<(), JobsError> {
        let mut after = None;
        let me = self.cfg.id.clone();
        loop {
            let page = self.store.tasks(&ctx.id, after, 128).await?;
            let now = self.store.now_ms();
            let r: Result<(), JobStoreError> = job_txn!(&self.store, t => async {
                t.check_lease(&ctx.id, &me, now).await?;
                let mut job = t.job_for_update(&ctx.id).await?;
                for task in page.iter().filter(|t| !t.state.is_finished()) {
                    let mut cur = t.task_for_update(&ctx.id, task.phase, &task.id).await?;
                    if t.finish_task(&mut job, &mut cur, false, &[]).await? {
                        let e = JobErrorRecord {
                            phase: cur.phase,
                            what: task_what(&cur),
                            code: ErrorCode::JobCancelledError.as_str().into(),
                            message: "job was cancelled".into(),
                            input: cur.input.clone().filter(|_| cur.reducer.is_none()),
                            p0input: cur.p0input.clone(),
                            task_id: Some(cur.id),
                            ..Default::default()
                        };
                        t.push_error(&mut job, &e).await?;
                    }
                }
                job.inputs_consumed = job.next_input_seq;
                job.reducers_created = true;
                t.put_job(&job).await
            });
            r?;
            match page.last() {
                Some(last) if page.len() == 128 => after = Some((last.phase, last.id)),
                _ => break,
            }
        }
        ctx.inflight.clear();
        ctx.reducers_inflight.clear();
        Ok(())
    }

    /// Mark the job done if nothing is left; true if it is done now.
    async fn try_finish(&self, ctx: &JobCtx) -> Result<bool, JobsError> {
        let now = self.store.now_ms();
        let me = self.cfg.id.clone();
        let r: Result<bool, JobStoreError> = job_txn!(&self.store, t => async {
            t.check_lease(&ctx.id, &me, now).await?;
            let mut job = t.job_for_update(&ctx.id).await?;
            if job.state == JobState::Done {
                return Ok(true);
            }
            if !finish_if_ready(&mut job, now) {
                return Ok(false);
            }
            t.put_job(&job).await?;
            Ok(true)
        });
        Ok(r?)
    }
}

/// `what` of a task's error.
fn task_what(t: &TaskRecord) -> String {
    match (&t.reducer, &t.input) {
        (Some(_), _) => format!("phase {}: reduce", t.phase),
        (None, input) => what_for(
            t.phase,
            input.as_deref().unwrap_or(""),
            t.p0input.as_deref(),
        ),
    }
}

/// Append `name` to reducer `r` of `phase`, locking the reducer once per
/// transaction (`cache` holds the locked, updated records to write back).
async fn route_to_reducer(
    t: &mut meta::jobs::JobTxn,
    cache: &mut HashMap<(u32, u32), TaskRecord>,
    job: &Uuid,
    phase: u32,
    r: u32,
    name: &str,
) -> Result<(), JobStoreError> {
    let red = match cache.entry((phase, r)) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(t.reducer_for_update(job, phase, r).await?)
        }
    };
    let input = ReducerInput {
        name: name.to_owned(),
    };
    t.push_reducer_input(red, &input).await?;
    Ok(())
}

/// Reducer inputs straight from meta, as they are committed: a reducer
/// runs while its upstream does, so a short page is the end only once the
/// upstream is complete ([`upstream_complete`], read before the page: no
/// input is routed after it holds). Node agents use it too: they read
/// their reducer's inputs from the job tables.
#[derive(Debug, Clone)]
pub struct StoreFeed {
    store: JobStore,
}

impl StoreFeed {
    /// A feed over `store`.
    pub fn new(store: JobStore) -> Self {
        StoreFeed { store }
    }
}

#[async_trait]
impl ReducerFeed for StoreFeed {
    async fn page(&self, req: ReducerInputsRequest) -> Result<ReducerInputsPage, ExecError> {
        let complete = match self.store.get_job(&req.job_id).await {
            Ok(Some(job)) => upstream_complete(&job, req.phase),
            // A job that is gone sends nothing more.
            Ok(None) => true,
            Err(e) => return Err(ExecError::Feed(e.to_string())),
        };
        let rows = self
            .store
            .reducer_inputs(
                &req.job_id,
                req.phase,
                req.reducer,
                req.from,
                req.limit as usize,
            )
            .await
            .map_err(|e| ExecError::Feed(e.to_string()))?;
        let ended = complete && rows.len() < req.limit as usize;
        let next = rows.last().map(|(s, _)| s + 1).unwrap_or(req.from);
        Ok(ReducerInputsPage {
            inputs: rows.into_iter().map(|(_, i)| i.name).collect(),
            next,
            ended,
        })
    }
}
