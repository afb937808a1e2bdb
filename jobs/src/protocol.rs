//! The task protocol between the supervisor and a storage node's agent, as
//! serde types (JSON on the wire), and the Manta error codes of job errors
//! (spec §4.10).
//!
//! One exchange per task attempt: the supervisor sends a [`TaskRequest`];
//! the agent runs it and answers a [`TaskResponse`]. A reducer pulls its
//! inputs in pages with [`ReducerInputsRequest`] → [`ReducerInputsPage`]
//! until `ended`. An attempt is identified by `(task_id, attempt)`; the
//! supervisor commits the first response of a task and ignores the rest, so
//! an agent may safely resend a response.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Manta's job error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Missing object or account, malformed name.
    ResourceNotFoundError,
    /// Directory input, bad reducer index, unavailable image.
    InvalidArgumentError,
    /// The owner may not read the input.
    AuthorizationError,
    /// `init`, asset fetch, or resource reservation failed.
    TaskInitError,
    /// `exec` failed.
    UserTaskError,
    /// Killed for excessive resource use (retried).
    TaskKilledError,
    /// Dropped or killed by cancellation.
    JobCancelledError,
    /// Agent crash or timeout, failure saving stdout.
    InternalError,
    /// No server could run the task; reducer input fetch failed.
    ServiceUnavailableError,
}

impl ErrorCode {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ResourceNotFoundError => "ResourceNotFoundError",
            ErrorCode::InvalidArgumentError => "InvalidArgumentError",
            ErrorCode::AuthorizationError => "AuthorizationError",
            ErrorCode::TaskInitError => "TaskInitError",
            ErrorCode::UserTaskError => "UserTaskError",
            ErrorCode::TaskKilledError => "TaskKilledError",
            ErrorCode::JobCancelledError => "JobCancelledError",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::ServiceUnavailableError => "ServiceUnavailableError",
        }
    }

    /// Infrastructure failures are retried on another node; user failures
    /// never are (spec §4.11).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::TaskKilledError | ErrorCode::InternalError)
    }
}

/// What a task reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TaskInput {
    /// A map task: one object, local to the node.
    Map {
        /// Normalized object name (`MANTA_INPUT_OBJECT`).
        object: String,
        /// The object's id (the file the node holds).
        object_id: Uuid,
        /// Size in bytes.
        size: u64,
    },
    /// A reducer: pull inputs with [`ReducerInputsRequest`].
    Reduce {
        /// Reducer index (`MANTA_REDUCER`).
        reducer: u32,
    },
}

/// Resource limits of a task (from the phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    /// RAM cap, MB.
    pub memory_mb: u32,
    /// Scratch and output quota, GB.
    pub disk_gb: u32,
}

/// Supervisor → agent: run one attempt of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRequest {
    /// Job id.
    pub job_id: Uuid,
    /// Job owner (`MANTA_USER`, and the identity tools act as).
    pub owner: String,
    /// The job's reads reach every account (its owner created it as an
    /// operator, [`meta::jobs::NewJob::operator`]); covered by the grant
    /// like every other field.
    #[serde(default)]
    pub operator: bool,
    /// Phase index.
    pub phase: u32,
    /// Task id (the suffix of its output names).
    pub task_id: Uuid,
    /// Attempt number (0 first); responses carry it back.
    pub attempt: u32,
    /// The phase's script.
    pub exec: String,
    /// The phase's init script.
    #[serde(default)]
    pub init: Option<String>,
    /// Asset object names.
    #[serde(default)]
    pub assets: Vec<String>,
    /// What to read.
    pub input: TaskInput,
    /// Environment (spec §4.8), sorted.
    pub env: Vec<(String, String)>,
    /// Object name for captured stdout.
    pub stdout_object: String,
    /// Object name for stderr if the task fails.
    pub stderr_object: String,
    /// Number of reducers of the next phase (0 if it is not a reduce
    /// phase): emits with a reducer index must stay below it.
    pub next_reducers: u32,
    /// Limits.
    pub limits: TaskLimits,
    /// Set for a task whose result may be reused ([`crate::memo`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<TaskMemo>,
}

/// What a memoizable task's result is keyed by, for the agent to run it
/// reproducibly and to confirm what the key assumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMemo {
    /// The memo key (hex blake3); also the seed of the task's entropy and
    /// clocks.
    pub key: String,
    /// The phase declared itself deterministic (`"memo":"deterministic"`):
    /// every clock is seeded and nothing is watched.
    pub declared: bool,
    /// The guest runtime the key assumes.
    pub runtime: String,
    /// The assets (as named in the phase) and the etags the key assumes.
    pub assets: Vec<(String, Uuid)>,
}

/// One object a task emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmittedOutput {
    /// Object name.
    pub name: String,
    /// Reducer of the next phase (`mpipe -r`, `msplit`).
    #[serde(default)]
    pub reducer: Option<u32>,
}

/// How a task attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum TaskOutcome {
    /// Exit 0: these outputs are the task's outputs.
    Success {
        /// Outputs, in emission order.
        outputs: Vec<EmittedOutput>,
    },
    /// The task failed; `code` decides whether it is retried.
    Failure {
        /// Error code.
        code: ErrorCode,
        /// Manta's message (`user command exited with code 1`).
        message: String,
        /// Saved stderr object, if any.
        #[serde(default)]
        stderr: Option<String>,
        /// Saved core object, if any.
        #[serde(default)]
        core: Option<String>,
    },
}

/// Agent → supervisor: the result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResponse {
    /// Task id.
    pub task_id: Uuid,
    /// Attempt number from the request.
    pub attempt: u32,
    /// Node that ran it.
    pub node: String,
    /// Outcome.
    pub outcome: TaskOutcome,
    /// A memoizable task succeeded and its result is reproducible: its only
    /// output is its stdout, the run read no wall clock, no entropy beyond
    /// hash keys and no job-naming values, and it ran with the runtime and
    /// asset etags its key assumed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reproducible: bool,
}

/// Agent → supervisor: the next page of a reducer's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducerInputsRequest {
    /// Job id.
    pub job_id: Uuid,
    /// Phase of the reducer.
    pub phase: u32,
    /// Reducer index.
    pub reducer: u32,
    /// First sequence number wanted.
    pub from: u64,
    /// Page size.
    pub limit: u32,
}

/// Supervisor → agent: a page of reducer inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducerInputsPage {
    /// Object names, in routing order.
    pub inputs: Vec<String>,
    /// Sequence number to ask for next.
    pub next: u64,
    /// True when no more inputs will ever come (after this page).
    pub ended: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes_round_trip() {
        let r = TaskResponse {
            task_id: Uuid::new_v4(),
            attempt: 1,
            node: "n1".into(),
            reproducible: false,
            outcome: TaskOutcome::Failure {
                code: ErrorCode::UserTaskError,
                message: "user command exited with code 1".into(),
                stderr: Some("/u/jobs/j/stor/x.0.err.t".into()),
                core: None,
            },
        };
        let s = serde_json::to_string(&r).expect("ser");
        assert!(s.contains(r#""result":"failure""#) && s.contains(r#""code":"UserTaskError""#));
        assert_eq!(serde_json::from_str::<TaskResponse>(&s).expect("de"), r);
        let input = TaskInput::Reduce { reducer: 3 };
        let s = serde_json::to_string(&input).expect("ser");
        assert_eq!(s, r#"{"kind":"reduce","reducer":3}"#);
        assert!(ErrorCode::InternalError.is_retryable());
        assert!(!ErrorCode::UserTaskError.is_retryable());
        assert_eq!(ErrorCode::TaskInitError.as_str(), "TaskInitError");
    }
}
