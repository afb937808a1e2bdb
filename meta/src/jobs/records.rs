//! Stored job records: one format-version byte, then JSON (like the
//! namespace's records), so fields added later with `#[serde(default)]` stay
//! readable by old and new code.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use super::{JobResult, JobStoreError, NewJob};

const FORMAT_V1: u8 = 1;

/// Encode a record.
pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    // Plain structs with string keys: serializing to a Vec cannot fail.
    serde_json::to_writer(&mut out, v).unwrap_or_default();
    out
}

/// Decode a record written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> JobResult<T> {
    match bytes.split_first() {
        Some((&FORMAT_V1, json)) => {
            serde_json::from_slice(json).map_err(|e| JobStoreError::Corrupt(e.to_string()))
        }
        Some((v, _)) => Err(JobStoreError::Corrupt(format!("unknown record format {v}"))),
        None => Err(JobStoreError::Corrupt("empty record".into())),
    }
}

/// A job's externally visible state (spec §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Created, no supervisor yet.
    Queued,
    /// Owned by a supervisor.
    Running,
    /// Terminal (also for cancelled jobs).
    Done,
}

impl JobState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
        }
    }
}

/// The counters of the status record (spec §3.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStats {
    /// Non-retried errors.
    pub errors: u64,
    /// Committed outputs of last-phase tasks.
    pub outputs: u64,
    /// Retried task attempts.
    pub retries: u64,
    /// Tasks dispatched, one per attempt.
    pub tasks: u64,
    /// Tasks committed (successful or failed).
    pub tasks_done: u64,
    /// Of `tasks_done`, tasks whose outputs were reused from an identical
    /// earlier task instead of running (Tidepool's addition).
    #[serde(default)]
    pub memoized: u64,
}

/// `0x50 jobid`: the job record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id (v4).
    pub id: Uuid,
    /// Owning login.
    pub owner: String,
    /// Name as submitted.
    pub name: String,
    /// The stored phases (JSON array text, key order as stored).
    pub phases_json: String,
    /// Number of phases.
    pub phase_count: u32,
    /// Manifest flag, echoed.
    pub transient: bool,
    /// See [`NewJob::keep_intermediates`](super::NewJob::keep_intermediates);
    /// records written before it existed read as `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_intermediates: bool,
    /// State.
    pub state: JobState,
    /// Cancellation accepted.
    pub cancelled: bool,
    /// Input ended.
    pub input_done: bool,
    /// Creation time, ms since the epoch.
    pub time_created_ms: u64,
    /// Set once `done`.
    #[serde(default)]
    pub time_done_ms: Option<u64>,
    /// Archiving started.
    #[serde(default)]
    pub time_archive_started_ms: Option<u64>,
    /// Archiving finished.
    #[serde(default)]
    pub time_archive_done_ms: Option<u64>,
    /// Counters.
    pub stats: JobStats,
    /// Inputs submitted so far (the next input's sequence number).
    pub next_input_seq: u64,
    /// Inputs the supervisor has turned into tasks or errors.
    #[serde(default)]
    pub inputs_consumed: u64,
    /// The next error's sequence number.
    #[serde(default)]
    pub next_error_seq: u64,
    /// Unfinished tasks per phase.
    #[serde(default)]
    pub open_tasks: Vec<u64>,
    /// When input was last added (idle auto-close).
    #[serde(default)]
    pub last_input_ms: u64,
    /// Whether the supervisor has created the reducers of every reduce phase.
    #[serde(default)]
    pub reducers_created: bool,
    /// See [`NewJob::operator`](super::NewJob::operator); records written
    /// before it existed read as `false`.
    #[serde(default)]
    pub operator: bool,
    /// See [`NewJob::roles`](super::NewJob::roles); `None` for jobs of an
    /// account (and records written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<super::JobRoles>,
    /// How many jobs started this one from inside their tasks: 0 for a
    /// job created through the API, the creating task's job's depth + 1
    /// for one a task created (`mjob create` in a task); bounds a job
    /// that starts itself. Records written before it existed read as 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub depth: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl JobRecord {
    pub(crate) fn new(id: Uuid, new: &NewJob, now_ms: u64) -> Self {
        JobRecord {
            id,
            owner: new.owner.clone(),
            operator: new.operator,
            roles: new.roles.clone(),
            depth: 0,
            name: new.name.clone(),
            phases_json: new.phases_json.clone(),
            phase_count: new.phase_count,
            transient: new.transient,
            keep_intermediates: new.keep_intermediates,
            state: JobState::Queued,
            cancelled: false,
            input_done: false,
            time_created_ms: now_ms,
            time_done_ms: None,
            time_archive_started_ms: None,
            time_archive_done_ms: None,
            stats: JobStats::default(),
            next_input_seq: 0,
            inputs_consumed: 0,
            next_error_seq: 0,
            open_tasks: vec![0; new.phase_count as usize],
            last_input_ms: now_ms,
            reducers_created: false,
        }
    }

    /// Error unless the job can still take inputs (E2's 409 rules).
    pub fn check_accepts_input(&self) -> JobResult<()> {
        self.check_not_finished()?;
        if self.input_done {
            return Err(JobStoreError::InvalidState {
                id: self.id,
                state: "inputDone",
            });
        }
        Ok(())
    }

    /// Error if the job is done or cancelled (E3/E4's 409 rules).
    pub fn check_not_finished(&self) -> JobResult<()> {
        if self.state == JobState::Done {
            return Err(JobStoreError::InvalidState {
                id: self.id,
                state: "done",
            });
        }
        if self.cancelled {
            return Err(JobStoreError::InvalidState {
                id: self.id,
                state: "cancelled",
            });
        }
        Ok(())
    }

    /// Unfinished tasks of `phase` (0 for an unknown phase).
    pub fn open_in(&self, phase: u32) -> u64 {
        self.open_tasks.get(phase as usize).copied().unwrap_or(0)
    }

    /// Add `delta` to the unfinished-task count of `phase`.
    pub fn adjust_open(&mut self, phase: u32, delta: i64) {
        let i = phase as usize;
        if self.open_tasks.len() <= i {
            self.open_tasks.resize(i + 1, 0);
        }
        self.open_tasks[i] = self.open_tasks[i].saturating_add_signed(delta);
    }

    /// True when every submitted input has been consumed and input ended.
    pub fn all_inputs_consumed(&self) -> bool {
        self.input_done && self.inputs_consumed >= self.next_input_seq
    }
}

/// `0x50 jobid 0x02`: the job's input head. The fields of [`JobRecord`] that
/// appending inputs changes live here, apart from the record, so that an
/// append (which locks only this key) never conflicts with the supervisor's
/// many writes of the record. Reads of the record overlay it
/// ([`JobRecord::next_input_seq`], [`JobRecord::input_done`],
/// [`JobRecord::last_input_ms`]); a job written before the head existed has
/// none and keeps those fields in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputHead {
    /// See [`JobRecord::next_input_seq`].
    pub next_input_seq: u64,
    /// See [`JobRecord::input_done`].
    pub input_done: bool,
    /// See [`JobRecord::last_input_ms`].
    pub last_input_ms: u64,
}

impl InputHead {
    /// The head fields of `job`.
    pub fn of(job: &JobRecord) -> Self {
        InputHead {
            next_input_seq: job.next_input_seq,
            input_done: job.input_done,
            last_input_ms: job.last_input_ms,
        }
    }

    /// Overlay the head onto `job`.
    pub fn apply(&self, job: &mut JobRecord) {
        job.next_input_seq = self.next_input_seq;
        job.input_done = self.input_done;
        job.last_input_ms = self.last_input_ms;
    }
}

/// `0x50 jobid 0x01`: which supervisor owns the job, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Supervisor id.
    pub owner: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: u64,
}

/// A task's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Created, not sent to a node yet (or waiting for its turn, reducers).
    Queued,
    /// Sent to `node`.
    Dispatched,
    /// The node reported it started.
    Running,
    /// Committed as successful.
    Done,
    /// Committed as failed.
    Failed,
}

impl TaskState {
    /// True for done and failed tasks.
    pub fn is_finished(self) -> bool {
        matches!(self, TaskState::Done | TaskState::Failed)
    }
}

/// `0x51 jobid phase taskid`: one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Task id (v4); also the suffix of its output names.
    pub id: Uuid,
    /// The job.
    pub job: Uuid,
    /// Phase index.
    pub phase: u32,
    /// Lifecycle state.
    pub state: TaskState,
    /// Node the current attempt runs on.
    #[serde(default)]
    pub node: Option<String>,
    /// Current attempt (0-based).
    #[serde(default)]
    pub attempt: u32,
    /// Retries so far.
    #[serde(default)]
    pub retries: u32,
    /// Map tasks: the (normalized) input object name.
    #[serde(default)]
    pub input: Option<String>,
    /// The job input this task's lineage started from, if known.
    #[serde(default)]
    pub p0input: Option<String>,
    /// Map tasks: the nodes holding a copy of the input.
    #[serde(default)]
    pub copies: Vec<String>,
    /// Map tasks: the input's object id (the file a node holds).
    #[serde(default)]
    pub object_id: Option<Uuid>,
    /// Map tasks: the input's size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Nodes earlier attempts ran on (retries prefer others).
    #[serde(default)]
    pub tried: Vec<String>,
    /// Reduce tasks: the reducer index.
    #[serde(default)]
    pub reducer: Option<u32>,
    /// Reduce tasks: inputs routed here so far (next sequence number).
    #[serde(default)]
    pub next_input_seq: u64,
    /// Done by reusing an identical earlier task's outputs, not by running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub memoized: bool,
}

impl TaskRecord {
    /// A queued map task.
    pub fn map(
        job: Uuid,
        phase: u32,
        input: String,
        p0input: Option<String>,
        copies: Vec<String>,
    ) -> Self {
        TaskRecord {
            id: Uuid::new_v4(),
            job,
            phase,
            state: TaskState::Queued,
            node: None,
            attempt: 0,
            retries: 0,
            input: Some(input),
            p0input,
            copies,
            object_id: None,
            size: 0,
            tried: Vec::new(),
            reducer: None,
            next_input_seq: 0,
            memoized: false,
        }
    }

    /// A queued reducer.
    pub fn reduce(job: Uuid, phase: u32, reducer: u32) -> Self {
        TaskRecord {
            reducer: Some(reducer),
            input: None,
            ..TaskRecord::map(job, phase, String::new(), None, Vec::new())
        }
    }
}

/// `0x54 ...`: one committed output of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutput {
    /// Object name.
    pub name: String,
    /// Reducer of the next phase this output is routed to, if chosen.
    #[serde(default)]
    pub reducer: Option<u32>,
    /// The job input of the producing task's lineage, if known.
    #[serde(default)]
    pub p0input: Option<String>,
}

/// `0x53 jobid 0x01 ...`: one object fed to a reducer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducerInput {
    /// Object name.
    pub name: String,
}

/// `0x55 jobid seq`: one non-retried job error (spec §4.10).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobErrorRecord {
    /// Phase index.
    pub phase: u32,
    /// Human summary (`phase 0: input "..."`).
    pub what: String,
    /// Manta error code (`UserTaskError`, ...).
    pub code: String,
    /// Human message.
    pub message: String,
    /// Saved stderr object.
    #[serde(default)]
    pub stderr: Option<String>,
    /// Saved core object.
    #[serde(default)]
    pub core: Option<String>,
    /// The object being processed.
    #[serde(default)]
    pub input: Option<String>,
    /// The job input of its lineage.
    #[serde(default)]
    pub p0input: Option<String>,
    /// The task, when one ran.
    #[serde(default)]
    pub task_id: Option<Uuid>,
    /// The node it ran on.
    #[serde(default)]
    pub server: Option<String>,
}

/// What one task attempt used, as metered on the node that ran it
/// (`0x59`): the input of compute usage reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUsage {
    /// The job's owner (the account billed).
    pub owner: String,
    /// The job.
    pub job: Uuid,
    /// Phase index.
    pub phase: u32,
    /// Task id.
    pub task: Uuid,
    /// Attempt number.
    pub attempt: u32,
    /// When the attempt ended, ms since the epoch.
    pub ended_ms: u64,
    /// Wall time from admission to the end, ms.
    pub wall_ms: u64,
    /// Memory the phase asked for, MB.
    pub memory_mb: u32,
    /// Disk the phase asked for, GB.
    pub disk_gb: u32,
    /// Object bytes the attempt read (its input, reducer feed, assets,
    /// tools' reads).
    pub bytes_in: u64,
    /// Object bytes the attempt wrote (outputs, stdout, stderr).
    pub bytes_out: u64,
}

/// `0x5a len(u16) owner key`: a reproducible map task's result, for an
/// identical later task of the same account to reuse (`jobs::memo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoRecord {
    /// The task that produced it.
    pub job: Uuid,
    pub task: Uuid,
    /// Its stdout object, and that object's etag: reused only while the
    /// name still holds this very object.
    pub output: String,
    pub etag: Uuid,
    /// When it was recorded.
    pub created_ms: u64,
}
