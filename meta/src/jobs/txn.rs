//! [`JobTxn`]: the job tables' building blocks inside one transaction, so the
//! supervisor can make "commit this task, create the next phase's tasks,
//! update the counters" a single atomic step.
//!
//! Every read that a later write depends on is a `get_for_update`, because
//! the [`Kv`](crate::kv::Kv) contract does not track plain reads.
//!
//! The job record is read together with its [`InputHead`]: the head is
//! read without a lock and written (by [`JobTxn::put_job`]) only when the
//! transaction changed one of its fields. A write conflicts with every
//! transaction that committed a write of the same key after this one
//! started, so a change made from a stale head cannot commit, while the
//! supervisor's writes of the record, which leave the head alone, never
//! conflict with input appends.

use std::collections::HashMap;

use uuid::Uuid;

use super::records::{decode, encode};
use super::{
    InputHead, JobErrorRecord, JobRecord, JobResult, JobStoreError, Lease, ReducerInput,
    TaskOutput, TaskRecord, TaskState,
};
use crate::keys;
use crate::kv::{Order, Txn};
use crate::namespace::{entry_key_of, entry_object_id};

/// One job-table transaction; end it through [`job_txn!`](crate::job_txn)
/// or explicitly with [`JobTxn::commit`] / [`JobTxn::rollback`].
pub struct JobTxn {
    txn: Box<dyn Txn>,
    /// The input head of each job read in this transaction, as read (or
    /// absent for a job whose record predates heads).
    heads: HashMap<Uuid, Option<InputHead>>,
}

impl std::fmt::Debug for JobTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobTxn").finish_non_exhaustive()
    }
}

impl JobTxn {
    pub(crate) fn new(txn: Box<dyn Txn>) -> Self {
        JobTxn {
            txn,
            heads: HashMap::new(),
        }
    }

    /// The underlying transaction, for keys this module has no helper for.
    pub fn raw(&mut self) -> &mut dyn Txn {
        &mut *self.txn
    }

    /// Commit.
    pub async fn commit(self) -> JobResult<()> {
        Ok(self.txn.commit().await?)
    }

    /// Roll back.
    pub async fn rollback(self) -> JobResult<()> {
        Ok(self.txn.rollback().await?)
    }

    /// Read and lock the job record (its input head overlaid, unlocked).
    pub async fn job_for_update(&mut self, id: &Uuid) -> JobResult<JobRecord> {
        let mut job: JobRecord = match self.txn.get_for_update(&keys::job_key(id)).await? {
            Some(v) => decode(&v)?,
            None => return Err(JobStoreError::NotFound(*id)),
        };
        let head = match self.txn.get(&keys::job_input_head_key(id)).await? {
            Some(v) => Some(decode::<InputHead>(&v)?),
            None => None,
        };
        if let Some(h) = &head {
            h.apply(&mut job);
        }
        self.heads.insert(*id, head);
        Ok(job)
    }

    /// Read the job record without locking it and lock its input head, for
    /// appending inputs: the record's state is only read (a job can end
    /// only after its input ended, which writes the head), so appends
    /// conflict with nothing but other changes of the head.
    pub async fn job_for_append(&mut self, id: &Uuid) -> JobResult<JobRecord> {
        let mut job: JobRecord = match self.txn.get(&keys::job_key(id)).await? {
            Some(v) => decode(&v)?,
            None => return Err(JobStoreError::NotFound(*id)),
        };
        let head = match self
            .txn
            .get_for_update(&keys::job_input_head_key(id))
            .await?
        {
            Some(v) => Some(decode::<InputHead>(&v)?),
            None => None,
        };
        if let Some(h) = &head {
            h.apply(&mut job);
        }
        self.heads.insert(*id, head);
        Ok(job)
    }

    /// Write the job record, and its input head if this transaction
    /// changed a head field (or never read the head: a new job).
    pub async fn put_job(&mut self, job: &JobRecord) -> JobResult<()> {
        self.txn.put(keys::job_key(&job.id), encode(job)).await?;
        self.put_input_head(job).await
    }

    /// Write only the input head of `job` (when it changed), leaving the
    /// record alone: what an append does.
    pub async fn put_input_head(&mut self, job: &JobRecord) -> JobResult<()> {
        let head = InputHead::of(job);
        if self.heads.get(&job.id).copied().flatten() != Some(head) {
            self.txn
                .put(keys::job_input_head_key(&job.id), encode(&head))
                .await?;
            self.heads.insert(job.id, Some(head));
        }
        Ok(())
    }

    /// Fail with [`JobStoreError::LeaseLost`] unless `owner` holds an
    /// unexpired lease on `job`. Locks the lease key, so a takeover that
    /// commits after this transaction started makes this one conflict.
    pub async fn check_lease(&mut self, job: &Uuid, owner: &str, now_ms: u64) -> JobResult<()> {
        let lease: Option<Lease> = match self.txn.get_for_update(&keys::job_lease_key(job)).await? {
            Some(v) => Some(decode(&v)?),
            None => None,
        };
        match lease {
            Some(l) if l.owner == owner && l.expires_ms > now_ms => Ok(()),
            _ => Err(JobStoreError::LeaseLost(*job)),
        }
    }

    /// Read and lock a task.
    pub async fn task_for_update(
        &mut self,
        job: &Uuid,
        phase: u32,
        task: &Uuid,
    ) -> JobResult<TaskRecord> {
        match self
            .txn
            .get_for_update(&keys::task_key(job, phase, task))
            .await?
        {
            Some(v) => decode(&v),
            None => Err(JobStoreError::TaskNotFound(*task)),
        }
    }

    /// Read and lock reducer `reducer` of a reduce `phase` (such a phase
    /// holds only its at most 128 reducers, so one bounded scan finds it).
    pub async fn reducer_for_update(
        &mut self,
        job: &Uuid,
        phase: u32,
        reducer: u32,
    ) -> JobResult<TaskRecord> {
        let rows = self
            .txn
            .scan(keys::phase_tasks_range(job, phase), 256, Order::Asc)
            .await?;
        for (_, v) in rows {
            let rec: TaskRecord = decode(&v)?;
            if rec.reducer == Some(reducer) {
                return self.task_for_update(job, phase, &rec.id).await;
            }
        }
        Err(JobStoreError::TaskNotFound(Uuid::nil()))
    }

    /// Write a task and keep the per-node dispatch queue in step: the task is
    /// queued on its node while it is dispatched or running, and on no other
    /// node. `previous_node` is the node recorded before this change.
    pub async fn put_task(
        &mut self,
        task: &TaskRecord,
        previous_node: Option<&str>,
    ) -> JobResult<()> {
        let active = matches!(task.state, TaskState::Dispatched | TaskState::Running);
        if let Some(prev) = previous_node
            && (!active || task.node.as_deref() != Some(prev))
        {
            self.txn
                .delete(keys::dispatch_key(prev, &task.job, &task.id))
                .await?;
        }
        if active && let Some(node) = &task.node {
            self.txn
                .put(keys::dispatch_key(node, &task.job, &task.id), Vec::new())
                .await?;
        }
        self.txn
            .put(
                keys::task_key(&task.job, task.phase, &task.id),
                encode(task),
            )
            .await?;
        Ok(())
    }

    /// Check, for a new map task `task` read from `path`, that the name
    /// still names the object the task was resolved to, locking the name's
    /// entry. Call it for every new task before writing anything, then
    /// [`JobTxn::pin`] each: on false, resolve the input again.
    ///
    /// Why the lock closes the race with an overwrite: the overwrite writes
    /// the entry too, so it either committed before this transaction's
    /// snapshot (the check sees the new object and fails), or it conflicts
    /// with this transaction, or it commits after the pin and then finds
    /// the pin when it frees the copies.
    pub async fn input_still_named(
        &mut self,
        task: &TaskRecord,
        path: &crate::path::MantaPath,
    ) -> JobResult<bool> {
        let Some(object) = task.object_id.filter(|_| task.size > 0) else {
            return Ok(true);
        };
        let key = entry_key_of(path).map_err(|e| JobStoreError::Corrupt(e.to_string()))?;
        let named = match self.txn.get_for_update(&key).await? {
            Some(v) => entry_object_id(&v).map_err(|e| JobStoreError::Corrupt(e.to_string()))?,
            None => None,
        };
        Ok(named == Some(object))
    }

    /// Record the pin of new map task `task` on its input object's copies
    /// (removed when the task finishes, [`JobTxn::finish_task`]). Empty
    /// objects have no copies and get no pin.
    pub async fn pin(&mut self, task: &TaskRecord) -> JobResult<()> {
        if let Some(object) = task
            .object_id
            .filter(|_| task.size > 0 && task.reducer.is_none())
        {
            self.txn
                .put(keys::pin_key(&object, &task.job, &task.id), Vec::new())
                .await?;
        }
        Ok(())
    }

    /// Commit a task's result exactly once. Returns false (and writes
    /// nothing) when the task already finished — a duplicate report. On
    /// success the outputs are recorded and, for the last phase, counted as
    /// job outputs. Updates `job` and `task` in memory and writes the task;
    /// the caller writes `job` (after any further changes).
    pub async fn finish_task(
        &mut self,
        job: &mut JobRecord,
        task: &mut TaskRecord,
        success: bool,
        outputs: &[TaskOutput],
    ) -> JobResult<bool> {
        if task.state.is_finished() {
            return Ok(false);
        }
        let previous = task.node.clone();
        if success {
            for (i, out) in outputs.iter().enumerate() {
                let seq = u32::try_from(i).unwrap_or(u32::MAX);
                let key = keys::task_output_key(&job.id, task.phase, &task.id, seq);
                self.txn.put(key, encode(out)).await?;
            }
            if task.phase + 1 == job.phase_count {
                job.stats.outputs += outputs.len() as u64;
            }
        }
        task.state = if success {
            TaskState::Done
        } else {
            TaskState::Failed
        };
        if let Some(object) = task.object_id.filter(|_| task.reducer.is_none()) {
            // The task no longer needs its input's copies.
            self.txn
                .delete(keys::pin_key(&object, &task.job, &task.id))
                .await?;
        }
        job.stats.tasks_done += 1;
        job.adjust_open(task.phase, -1);
        self.put_task(task, previous.as_deref()).await?;
        Ok(true)
    }

    /// Route one object to a reducer; the caller writes `reducer` afterwards.
    pub async fn push_reducer_input(
        &mut self,
        reducer: &mut TaskRecord,
        input: &ReducerInput,
    ) -> JobResult<()> {
        let index = reducer.reducer.unwrap_or(0);
        let key =
            keys::reducer_input_key(&reducer.job, reducer.phase, index, reducer.next_input_seq);
        self.txn.put(key, encode(input)).await?;
        reducer.next_input_seq += 1;
        Ok(())
    }

    /// Record `owner`'s memo record under `key` (replacing an older one).
    pub async fn put_memo(
        &mut self,
        owner: &str,
        key: &[u8; 32],
        rec: &super::MemoRecord,
    ) -> JobResult<()> {
        self.txn
            .put(keys::memo_key(owner, key), encode(rec))
            .await?;
        Ok(())
    }

    /// Record a non-retried error and count it; the caller writes `job`.
    pub async fn push_error(&mut self, job: &mut JobRecord, err: &JobErrorRecord) -> JobResult<()> {
        let key = keys::job_error_key(&job.id, job.next_error_seq);
        self.txn.put(key, encode(err)).await?;
        job.next_error_seq += 1;
        job.stats.errors += 1;
        Ok(())
    }
}
