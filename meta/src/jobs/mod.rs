//! Job tables on any [`Kv`] backend: job records, inputs, tasks, committed
//! outputs, errors, the per-owner and live-job indexes, the per-node dispatch
//! queue and the supervisor lease (key layout in [`crate::keys`], tags
//! `0x50..=0x57`).
//!
//! This module stores and indexes; it does not decide. What a manifest
//! means, when a task is created or retried and when a job is done belong to
//! the `jobs` crate, which composes the building blocks of [`JobTxn`] into
//! its own transactions (with [`job_txn!`](crate::job_txn)).
//!
//! Guarantees:
//! - every operation on [`JobStore`] is one transaction, retried on conflict
//!   with bounded backoff;
//! - inputs get dense sequence numbers in submission order (duplicates kept)
//!   and no input is accepted once input has ended or the job is done;
//! - appending inputs never conflicts with the supervisor: an append writes
//!   only the inputs and the job's input head ([`InputHead`]), never the job
//!   record, and appends to one job made through this process take turns,
//!   so they do not conflict with each other either. Only appends from
//!   other processes (and ending or cancelling input) can still conflict,
//!   and those are retried like every other transaction;
//! - a task's outputs are committed at most once: [`JobTxn::finish_task`]
//!   on a task that already finished changes nothing and says so, so a late
//!   duplicate report (a retried attempt, a restarted supervisor) is ignored;
//! - a supervisor's writes are fenced by its lease: [`JobTxn::check_lease`]
//!   locks the lease key, so once another supervisor has taken over an
//!   expired lease, the old holder's transactions fail with
//!   [`JobStoreError::LeaseLost`] or conflict;
//! - everything per job is read in pages ([`JobStore::inputs`],
//!   [`JobStore::tasks`], [`JobStore::outputs`], [`JobStore::errors`]) and
//!   deleted in bounded batches ([`JobStore::purge`]); nothing loads a whole
//!   job into memory.
//! - a job created, given inputs, ended or cancelled through any
//!   [`JobStore`] of this process is announced on [`JobStore::changes`]
//!   after its transaction committed, so a supervisor in the same process
//!   (`tidepool up`) reacts at once instead of at its next poll. Only a
//!   hint: it says nothing about other processes, which keep polling.

pub mod conformance;
mod records;
mod txn;

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

pub use records::*;
pub use txn::JobTxn;

use crate::keys;
use crate::kv::{KeyRange, Kv, KvError, Order};
use crate::namespace::{Clock, RetryPolicy, system_now_ms};

/// Errors of the job tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobStoreError {
    /// No such job (never created, or purged).
    #[error("job {0} was not found")]
    NotFound(Uuid),
    /// The job's state forbids the operation (Manta's `InvalidJobState`).
    #[error("job {id} is in state '{state}'")]
    InvalidState {
        /// The job.
        id: Uuid,
        /// `done`, `cancelled` or `inputDone`, as Manta words it.
        state: &'static str,
    },
    /// The caller does not hold the job's supervisor lease (any more).
    #[error("supervisor lease on job {0} is not held")]
    LeaseLost(Uuid),
    /// No such task.
    #[error("task {0} was not found")]
    TaskNotFound(Uuid),
    /// A stored record could not be decoded.
    #[error("corrupt job record: {0}")]
    Corrupt(String),
    /// Conflicts persisted through every retry.
    #[error("too many concurrent updates of job state")]
    ConcurrentRequest,
    /// The backend failed.
    #[error(transparent)]
    Kv(#[from] KvError),
}

impl JobStoreError {
    /// True for errors a whole-transaction retry may cure.
    pub fn is_conflict(&self) -> bool {
        matches!(self, JobStoreError::Kv(KvError::Conflict(_)))
    }
}

/// Result type of the job tables.
pub type JobResult<T> = Result<T, JobStoreError>;

/// Run `$body` (a future using `$t: &mut JobTxn`) in a job transaction,
/// committing on success and retrying the whole body on conflicts.
#[macro_export]
macro_rules! job_txn {
    ($store:expr, $t:ident => $body:expr) => {{
        let store: &$crate::jobs::JobStore = $store;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut txn = match store.begin().await {
                Ok(txn) => txn,
                Err(e) => break Err(e),
            };
            let res = {
                let $t: &mut $crate::jobs::JobTxn = &mut txn;
                $body.await
            };
            match store.finish(txn, res, attempt).await {
                Some(r) => break r,
                None => continue,
            }
        }
    }};
}

/// Rows read per scan by helpers that walk a whole range.
const PAGE: usize = 256;

/// Handle on the job tables; cheap to clone.
#[derive(Clone)]
pub struct JobStore {
    kv: Arc<dyn Kv>,
    retry: RetryPolicy,
    clock: Clock,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What [`JobStore::create_job`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Owning login.
    pub owner: String,
    /// Job name (may be empty).
    pub name: String,
    /// The phases as stored and echoed (a JSON array, key order kept).
    pub phases_json: String,
    /// Number of phases in `phases_json`.
    pub phase_count: u32,
    /// The manifest's `transient` flag.
    pub transient: bool,
    /// The manifest's `keepIntermediates` flag: the supervisor leaves the
    /// outputs of non-final phases when the job is done.
    pub keep_intermediates: bool,
    /// The owner was an operator account when it created the job (and
    /// created it in its own tree): the job's reads reach every account,
    /// as Manta's jobs kept the creating principal.
    pub operator: bool,
    /// Set when a subuser created the job: the roles that were active,
    /// which its reads are then limited to.
    pub roles: Option<JobRoles>,
}

/// The access a subuser's job runs with: the creator and the roles that
/// were active when it created the job, each with its rule texts (Manta
/// froze the creator's active roles into the job's token).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobRoles {
    /// The creating subuser's login.
    pub subuser: String,
    /// `(role name, rule texts)` of each active role.
    pub roles: Vec<(String, Vec<String>)>,
}

/// The process-wide change signals behind [`JobStore::changes`], indexed
/// by [`JobChange`].
fn signals() -> &'static [tokio::sync::watch::Sender<u64>; 3] {
    static SIGNALS: std::sync::OnceLock<[tokio::sync::watch::Sender<u64>; 3]> =
        std::sync::OnceLock::new();
    SIGNALS.get_or_init(|| std::array::from_fn(|_| tokio::sync::watch::Sender::new(0)))
}

/// This process's turn to append inputs to job `id`: held while the
/// append's transaction runs, released (and forgotten when nobody else
/// waits) on drop.
async fn append_turn(id: &Uuid) -> AppendTurn {
    static TURNS: std::sync::OnceLock<
        std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::OnceLock::new();
    let map = TURNS.get_or_init(Default::default);
    let lock = {
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(*id).or_default().clone()
    };
    let guard = lock.clone().lock_owned().await;
    AppendTurn {
        id: *id,
        map,
        lock,
        guard: Some(guard),
    }
}

struct AppendTurn {
    id: Uuid,
    map: &'static std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for AppendTurn {
    fn drop(&mut self) {
        self.guard = None;
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Held by the map, this turn and the guard just dropped: nobody
        // else waits, so the entry can go.
        if Arc::strong_count(&self.lock) <= 2 {
            m.remove(&self.id);
        }
    }
}

/// Which changes a [`JobStore::changes`] receiver is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobChange {
    /// A job was created, or inputs added, input ended or cancelled.
    Any,
    /// A job was created.
    Created,
    /// A supervisor committed task results ([`JobStore::announce_progress`]):
    /// reducer inputs may have been routed, an upstream phase completed.
    Progress,
}

impl JobStore {
    /// A receiver that changes (a counter is bumped) after each committed
    /// change of kind `kind` made through any `JobStore` in this process. Waiting on it is a way to wake early; it is no substitute
    /// for polling, since changes made by other processes are not seen.
    pub fn changes(&self, kind: JobChange) -> tokio::sync::watch::Receiver<u64> {
        signals()[kind as usize].subscribe()
    }

    /// Tell [`JobChange::Progress`] receivers in this process that task
    /// results were committed (a streaming reducer's feed wakes at once
    /// instead of at its next poll).
    pub fn announce_progress(&self) {
        signals()[JobChange::Progress as usize].send_modify(|n| *n = n.wrapping_add(1));
    }

    fn announce(created: bool) {
        let s = signals();
        s[0].send_modify(|n| *n = n.wrapping_add(1));
        if created {
            s[1].send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Job tables over `kv` with the default retry policy and system clock.
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        JobStore {
            kv,
            retry: RetryPolicy::default(),
            clock: Arc::new(system_now_ms),
        }
    }

    /// Replace the clock (lease expiry tests use a controllable one).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Replace the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Milliseconds since the epoch by this store's clock.
    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    /// Start a transaction; prefer [`job_txn!`](crate::job_txn).
    pub async fn begin(&self) -> JobResult<JobTxn> {
        Ok(JobTxn::new(self.kv.begin().await?))
    }

    /// Commit or roll back one attempt of [`job_txn!`](crate::job_txn);
    /// `None` means "run the body again".
    pub async fn finish<T>(
        &self,
        txn: JobTxn,
        res: JobResult<T>,
        attempt: u32,
    ) -> Option<JobResult<T>> {
        let retry_left = attempt < self.retry.max_attempts.max(1);
        match res {
            Ok(v) => match txn.commit().await {
                Ok(()) => Some(Ok(v)),
                Err(e) if e.is_conflict() && retry_left => {
                    self.backoff(attempt).await;
                    None
                }
                Err(e) if e.is_conflict() => Some(Err(JobStoreError::ConcurrentRequest)),
                Err(e) => Some(Err(e)),
            },
            Err(e) => {
                if let Err(rb) = txn.rollback().await {
                    tracing::warn!(error = %rb, "job txn rollback failed");
                }
                if e.is_conflict() && retry_left {
                    self.backoff(attempt).await;
                    None
                } else if e.is_conflict() {
                    Some(Err(JobStoreError::ConcurrentRequest))
                } else {
                    Some(Err(e))
                }
            }
        }
    }

    async fn backoff(&self, attempt: u32) {
        let exp = self
            .retry
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.retry.max_backoff);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX).max(1);
        // Full jitter so a gateway and a supervisor writing one job spread out.
        let jitter = (Uuid::new_v4().as_u128() as u64) % nanos;
        tokio::time::sleep(Duration::from_nanos(nanos / 2 + jitter / 2)).await;
    }

    // ------------------------------------------------------------ jobs

    /// Create a job in state `queued` with a fresh v4 id, indexed for its
    /// owner and for supervisors.
    pub async fn create_job(&self, new: &NewJob) -> JobResult<JobRecord> {
        self.create_job_at_depth(new, 0).await
    }

    /// [`JobStore::create_job`] for a job started from inside a task of a
    /// job of depth `depth - 1` ([`JobRecord::depth`]).
    pub async fn create_job_at_depth(&self, new: &NewJob, depth: u32) -> JobResult<JobRecord> {
        let now = self.now_ms();
        let mut rec = JobRecord::new(Uuid::new_v4(), new, now);
        rec.depth = depth;
        let r = job_txn!(self, t => async {
            t.put_job(&rec).await?;
            t.raw().put(keys::live_job_key(&rec.id), Vec::new()).await?;
            t.raw().put(keys::owner_job_key(&rec.owner, &rec.id), Vec::new()).await?;
            Ok(rec.clone())
        });
        if r.is_ok() {
            Self::announce(true);
        }
        r
    }

    /// The job record, if the job exists.
    pub async fn get_job(&self, id: &Uuid) -> JobResult<Option<JobRecord>> {
        let mut s = self.kv.snapshot().await?;
        let mut rows = s
            .batch_get(&[keys::job_key(id), keys::job_input_head_key(id)])
            .await?
            .into_iter();
        let (Some(Some(rec)), head) = (rows.next(), rows.next().flatten()) else {
            return Ok(None);
        };
        let mut job: JobRecord = decode(&rec)?;
        if let Some(h) = head {
            decode::<InputHead>(&h)?.apply(&mut job);
        }
        Ok(Some(job))
    }

    /// Apply `f` to the job record in one transaction and return the result.
    pub async fn update_job<F>(&self, id: &Uuid, mut f: F) -> JobResult<JobRecord>
    where
        F: FnMut(&mut JobRecord) -> JobResult<()> + Send,
    {
        job_txn!(self, t => async {
            let mut job = t.job_for_update(id).await?;
            f(&mut job)?;
            t.put_job(&job).await?;
            Ok(job)
        })
    }

    /// Append a batch of inputs (kept verbatim, duplicates allowed) and
    /// optionally end input. Fails with [`JobStoreError::InvalidState`] once
    /// the job is done, cancelled or its input ended. Returns the sequence
    /// number of the first input added.
    pub async fn add_inputs(&self, id: &Uuid, names: &[String], end: bool) -> JobResult<u64> {
        // Appends to one job from this process take turns: they all write
        // the job's input head, so running them at once would only make
        // all but one conflict and retry (25 streams into one job turned
        // into 409s). Waiting here costs no more than the retries did.
        let _turn = append_turn(id).await;
        let now = self.now_ms();
        let r = job_txn!(self, t => async {
            let mut job = t.job_for_append(id).await?;
            job.check_accepts_input()?;
            let first = job.next_input_seq;
            for name in names {
                t.raw()
                    .put(keys::job_input_key(id, job.next_input_seq), name.as_bytes().to_vec())
                    .await?;
                job.next_input_seq += 1;
            }
            job.last_input_ms = now;
            if end {
                job.input_done = true;
            }
            t.put_input_head(&job).await?;
            Ok(first)
        });
        if r.is_ok() {
            Self::announce(false);
        }
        r
    }

    /// End input. A no-op on a job whose input already ended; fails on a done
    /// or cancelled job (E3).
    ///
    /// Like an append, it writes only the input head: the job's supervisor
    /// rewrites the record every batch, and a locked record made a client's
    /// end of input lose every retry to a busy supervisor. Reading the
    /// record unlocked is enough: a job ends only after its input has, and
    /// a cancel writes the head too, so either race is a head conflict.
    pub async fn end_input(&self, id: &Uuid) -> JobResult<JobRecord> {
        let _turn = append_turn(id).await;
        let r = job_txn!(self, t => async {
            let mut job = t.job_for_append(id).await?;
            job.check_not_finished()?;
            job.input_done = true;
            t.put_input_head(&job).await?;
            Ok(job)
        });
        if r.is_ok() {
            Self::announce(false);
        }
        r
    }

    /// Request cancellation: sets `cancelled` and forces `inputDone` (E4).
    pub async fn cancel(&self, id: &Uuid) -> JobResult<JobRecord> {
        let r = self
            .update_job(id, |job| {
                job.check_not_finished()?;
                job.cancelled = true;
                job.input_done = true;
                Ok(())
            })
            .await;
        if r.is_ok() {
            Self::announce(false);
        }
        r
    }

    /// Up to `limit` job inputs with sequence numbers `from..`, in order.
    pub async fn inputs(
        &self,
        id: &Uuid,
        from: u64,
        limit: usize,
    ) -> JobResult<Vec<(u64, String)>> {
        let mut s = self.kv.snapshot().await?;
        let rows = s
            .scan(keys::job_inputs_from(id, from), limit, Order::Asc)
            .await?;
        rows.into_iter()
            .map(|(k, v)| {
                let seq = keys::job_input_seq(&k)
                    .ok_or_else(|| JobStoreError::Corrupt("bad input key".into()))?;
                Ok((seq, String::from_utf8_lossy(&v).into_owned()))
            })
            .collect()
    }

    /// Up to `limit` inputs of one reducer with sequence numbers `from..`.
    pub async fn reducer_inputs(
        &self,
        id: &Uuid,
        phase: u32,
        reducer: u32,
        from: u64,
        limit: usize,
    ) -> JobResult<Vec<(u64, ReducerInput)>> {
        let mut s = self.kv.snapshot().await?;
        let range = keys::reducer_inputs_from(id, phase, reducer, from);
        let rows = s.scan(range, limit, Order::Asc).await?;
        rows.into_iter()
            .map(|(k, v)| {
                let seq = keys::reducer_input_seq(&k)
                    .ok_or_else(|| JobStoreError::Corrupt("bad reducer input key".into()))?;
                Ok((seq, decode(&v)?))
            })
            .collect()
    }

    /// Up to `limit` tasks after `after` (a `(phase, task)` position), in
    /// phase order.
    pub async fn tasks(
        &self,
        id: &Uuid,
        after: Option<(u32, Uuid)>,
        limit: usize,
    ) -> JobResult<Vec<TaskRecord>> {
        let mut range = keys::tasks_range(id);
        if let Some((phase, task)) = after {
            range.start = Bound::Excluded(keys::task_key(id, phase, &task));
        }
        let mut s = self.kv.snapshot().await?;
        let rows = s.scan(range, limit, Order::Asc).await?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    /// One task.
    pub async fn get_task(
        &self,
        id: &Uuid,
        phase: u32,
        task: &Uuid,
    ) -> JobResult<Option<TaskRecord>> {
        let mut s = self.kv.snapshot().await?;
        match s.get(&keys::task_key(id, phase, task)).await? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// `owner`'s memo record under `key`, if any.
    pub async fn memo(&self, owner: &str, key: &[u8; 32]) -> JobResult<Option<MemoRecord>> {
        let mut s = self.kv.snapshot().await?;
        match s.get(&keys::memo_key(owner, key)).await? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Forget `owner`'s memo record under `key` if it is still the one
    /// `task` made (its output is gone: it cannot be reused).
    pub async fn forget_memo(&self, owner: &str, key: &[u8; 32], task: &Uuid) -> JobResult<()> {
        let k = keys::memo_key(owner, key);
        crate::job_txn!(self, t => async {
            if let Some(v) = t.raw().get_for_update(&k).await? {
                let rec: MemoRecord = decode(&v)?;
                if rec.task == *task {
                    t.raw().delete(k.clone()).await?;
                }
            }
            Ok(())
        })
    }

    /// Up to `limit` committed outputs of `phase` after the position `after`
    /// (the key returned with the previous page's last row).
    pub async fn outputs(
        &self,
        id: &Uuid,
        phase: u32,
        after: Option<&[u8]>,
        limit: usize,
    ) -> JobResult<Vec<(Vec<u8>, TaskOutput)>> {
        let mut range = keys::phase_outputs_range(id, phase);
        if let Some(a) = after {
            range.start = Bound::Excluded(a.to_vec());
        }
        let mut s = self.kv.snapshot().await?;
        let rows = s.scan(range, limit, Order::Asc).await?;
        rows.into_iter()
            .map(|(k, v)| Ok((k, decode(&v)?)))
            .collect()
    }

    /// Up to `limit` errors with sequence numbers `from..`, oldest first.
    pub async fn errors(
        &self,
        id: &Uuid,
        from: u64,
        limit: usize,
    ) -> JobResult<Vec<(u64, JobErrorRecord)>> {
        let mut range = keys::job_errors_range(id);
        range.start = Bound::Included(keys::job_error_key(id, from));
        let mut s = self.kv.snapshot().await?;
        let rows = s.scan(range, limit, Order::Asc).await?;
        rows.into_iter()
            .map(|(k, v)| {
                let seq = k
                    .get(17..25)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| JobStoreError::Corrupt("bad error key".into()))?;
                Ok((seq, decode(&v)?))
            })
            .collect()
    }

    /// Up to `limit` job ids of `owner` after `after`, by id.
    pub async fn owner_jobs(
        &self,
        owner: &str,
        after: Option<Uuid>,
        limit: usize,
    ) -> JobResult<Vec<Uuid>> {
        let mut range = keys::owner_jobs_range(owner);
        if let Some(a) = after {
            range.start = Bound::Excluded(keys::owner_job_key(owner, &a));
        }
        let mut s = self.kv.snapshot().await?;
        let rows = s.scan(range, limit, Order::Asc).await?;
        Ok(rows
            .iter()
            .filter_map(|(k, _)| keys::owner_job_id(owner, k))
            .collect())
    }

    /// Up to `limit` ids of jobs not yet purged, after `after`, by id (what
    /// supervisors scan for work).
    pub async fn live_jobs(&self, after: Option<Uuid>, limit: usize) -> JobResult<Vec<Uuid>> {
        let mut range = keys::live_jobs_range();
        if let Some(a) = after {
            range.start = Bound::Excluded(keys::live_job_key(&a));
        }
        let mut s = self.kv.snapshot().await?;
        let rows = s.scan(range, limit, Order::Asc).await?;
        Ok(rows
            .iter()
            .filter_map(|(k, _)| keys::live_job_id(k))
            .collect())
    }

    /// Up to `limit` `(job, task)` pairs queued on `node`.
    pub async fn node_queue(&self, node: &str, limit: usize) -> JobResult<Vec<(Uuid, Uuid)>> {
        let mut s = self.kv.snapshot().await?;
        let rows = s
            .scan(keys::dispatch_range(node), limit, Order::Asc)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|(k, _)| keys::dispatch_parts(node, k))
            .collect())
    }

    // ------------------------------------------------------------ leases

    /// Take or renew the supervisor lease on `job` for `ttl`. Succeeds when
    /// the lease is free, expired, or already held by `owner`; returns false
    /// when another supervisor holds an unexpired lease or the job is gone.
    pub async fn take_lease(&self, job: &Uuid, owner: &str, ttl: Duration) -> JobResult<bool> {
        let now = self.now_ms();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        job_txn!(self, t => async {
            if t.raw().get(&keys::job_key(job)).await?.is_none() {
                return Ok(false);
            }
            let key = keys::job_lease_key(job);
            let current: Option<Lease> = match t.raw().get_for_update(&key).await? {
                Some(v) => Some(decode(&v)?),
                None => None,
            };
            if let Some(l) = &current
                && l.owner != owner
                && l.expires_ms > now
            {
                return Ok(false);
            }
            let lease = Lease {
                owner: owner.to_owned(),
                expires_ms: now.saturating_add(ttl_ms),
            };
            t.raw().put(key, encode(&lease)).await?;
            Ok(true)
        })
    }

    /// The current lease of `job`, if any.
    pub async fn lease(&self, job: &Uuid) -> JobResult<Option<Lease>> {
        let mut s = self.kv.snapshot().await?;
        match s.get(&keys::job_lease_key(job)).await? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Give the lease up (only if `owner` holds it).
    pub async fn release_lease(&self, job: &Uuid, owner: &str) -> JobResult<()> {
        job_txn!(self, t => async {
            let key = keys::job_lease_key(job);
            if let Some(v) = t.raw().get_for_update(&key).await? {
                let l: Lease = decode(&v)?;
                if l.owner == owner {
                    t.raw().delete(key).await?;
                }
            }
            Ok(())
        })
    }

    // ------------------------------------------------------------ purge

    /// Delete every key of a job (after it was archived), `batch` keys per
    /// transaction. The job record goes last, so a purge interrupted midway
    /// is finished by calling it again. Returns false if the job was gone.
    pub async fn purge(&self, id: &Uuid, batch: usize) -> JobResult<bool> {
        let Some(job) = self.get_job(id).await? else {
            return Ok(false);
        };
        let batch = batch.clamp(1, 4096);
        // Tasks first: a task still queued on a node owns a dispatch key.
        self.delete_range_batched(keys::tasks_range(id), batch, true)
            .await?;
        for range in [
            keys::inputs_range(id),
            keys::outputs_range(id),
            keys::job_errors_range(id),
        ] {
            self.delete_range_batched(range, batch, false).await?;
        }
        job_txn!(self, t => async {
            for key in [
                keys::owner_job_key(&job.owner, id),
                keys::live_job_key(id),
                keys::job_lease_key(id),
                keys::job_input_head_key(id),
                keys::job_key(id),
            ] {
                t.raw().delete(key).await?;
            }
            Ok(())
        })?;
        Ok(true)
    }

    async fn delete_range_batched(
        &self,
        range: KeyRange,
        batch: usize,
        tasks: bool,
    ) -> JobResult<()> {
        loop {
            let n = job_txn!(self, t => async {
                let rows = t.raw().scan(range.clone(), batch, Order::Asc).await?;
                for (k, v) in &rows {
                    if tasks {
                        let task: TaskRecord = decode(v)?;
                        if let Some(node) = &task.node {
                            t.raw().delete(keys::dispatch_key(node, &task.job, &task.id)).await?;
                        }
                        if let Some(object) = &task.object_id {
                            t.raw().delete(keys::pin_key(object, &task.job, &task.id)).await?;
                        }
                    }
                    t.raw().delete(k.clone()).await?;
                }
                Ok(rows.len())
            })?;
            if n < batch {
                return Ok(());
            }
        }
    }

    // ----------------------------------------------------------- usage

    /// Records task attempts' usage, all in one transaction. Each record
    /// has its own key, so writers never conflict, and writing a record
    /// again only rewrites it.
    pub async fn record_usage(&self, records: &[TaskUsage]) -> JobResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        job_txn!(self, t => async {
            for r in records {
                let k = keys::task_usage_key(&r.owner, r.ended_ms, &r.task, r.attempt);
                t.raw().put(k, encode(r)).await?;
            }
            Ok(())
        })
    }

    /// Up to `limit` usage records of `owner` for attempts that ended in
    /// `[from_ms, to_ms)` after the position `after` (the key of the
    /// previous page's last row), oldest first.
    pub async fn usage(
        &self,
        owner: &str,
        from_ms: u64,
        to_ms: u64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> JobResult<Vec<(Vec<u8>, TaskUsage)>> {
        let mut range = keys::task_usage_range(owner, from_ms, to_ms);
        if let Some(a) = after {
            range.start = Bound::Excluded(a.to_vec());
        }
        let mut s = self.kv.snapshot().await?;
        let rows = s.scan(range, limit.max(1), Order::Asc).await?;
        rows.into_iter()
            .map(|(k, v)| Ok((k, decode(&v)?)))
            .collect()
    }

    /// Deletes `owner`'s usage records of attempts that ended before
    /// `before_ms` (they have been reported), in batches of `batch`.
    pub async fn purge_usage(&self, owner: &str, before_ms: u64, batch: usize) -> JobResult<()> {
        self.delete_range_batched(
            keys::task_usage_range(owner, 0, before_ms),
            batch.max(1),
            false,
        )
        .await
    }

    /// Number of rows in a job table range, counted in pages (tests, tools).
    pub async fn count_range(&self, range: KeyRange) -> JobResult<u64> {
        let mut s = self.kv.snapshot().await?;
        let mut range = range;
        let mut n = 0u64;
        loop {
            let rows = s.scan(range.clone(), PAGE, Order::Asc).await?;
            n += rows.len() as u64;
            match rows.last() {
                Some((k, _)) if rows.len() == PAGE => range.start = Bound::Excluded(k.clone()),
                _ => return Ok(n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedKv;

    #[tokio::test]
    async fn conformance_on_embedded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv: Arc<dyn Kv> = Arc::new(
            EmbeddedKv::open(dir.path().join("m.redb"))
                .await
                .expect("open"),
        );
        conformance::run_all(|| {
            let kv = kv.clone();
            async move { kv }
        })
        .await;
    }
}
