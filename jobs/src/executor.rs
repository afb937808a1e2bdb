//! How the supervisor runs a task: the [`TaskExecutor`] trait (one call per
//! attempt, on a chosen node) and [`InProcessExecutor`], which runs phases
//! inside this process through a [`PhaseRunner`] against a [`BlobStore`] —
//! the shape `tidepool up`'s single-process mode uses, and what the
//! supervisor's tests drive. An HTTP executor that talks to storage-node
//! agents implements the same trait with the [`crate::protocol`] types.
//!
//! Contract: `Ok(TaskResponse)` means the node ran the attempt to an
//! outcome (success or a task failure); `Err(ExecError)` means the
//! infrastructure failed (node unreachable, died, timed out) and the
//! supervisor may retry the task elsewhere.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use uuid::Uuid;

use crate::protocol::{
    EmittedOutput, ErrorCode, ReducerInputsPage, ReducerInputsRequest, TaskInput, TaskOutcome,
    TaskRequest, TaskResponse,
};

/// An infrastructure failure while running an attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The node is gone (crashed, unreachable, restarted).
    #[error("node {0} is unavailable")]
    NodeUnavailable(String),
    /// Reading or writing an object failed.
    #[error("object I/O failed: {0}")]
    Io(String),
    /// The reducer input feed failed.
    #[error("reducer input feed failed: {0}")]
    Feed(String),
}

/// Where a reducer pulls its inputs from (the supervisor implements it).
#[async_trait]
pub trait ReducerFeed: Send + Sync {
    /// The next page of one reducer's inputs.
    async fn page(&self, req: ReducerInputsRequest) -> Result<ReducerInputsPage, ExecError>;
}

/// Runs task attempts on nodes.
#[async_trait]
pub trait TaskExecutor: Send + Sync {
    /// Run one attempt of `req` on `node`.
    async fn execute(
        &self,
        node: &str,
        req: TaskRequest,
        feed: Arc<dyn ReducerFeed>,
    ) -> Result<TaskResponse, ExecError>;
}

/// Object bytes by name, as the task's owner sees them.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// The object's bytes.
    async fn get(&self, name: &str) -> Result<Vec<u8>, ExecError>;
    /// Create or replace an object.
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), ExecError>;
}

/// What a phase program produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhaseOutput {
    /// Exit status (0 = success).
    pub status: i32,
    /// Captured stdout (ignored when `emits` is not empty).
    pub stdout: Vec<u8>,
    /// Captured stderr (saved only on failure).
    pub stderr: Vec<u8>,
    /// Explicit emits (`mpipe`, `msplit`): bytes and optional reducer.
    pub emits: Vec<(Vec<u8>, Option<u32>)>,
}

/// Runs a phase's script over stdin with an environment. Runs on a blocking
/// thread, so it may be CPU-heavy.
pub trait PhaseRunner: Send + Sync {
    /// Run `exec` with `env` and `stdin`.
    fn run(&self, exec: &str, env: &[(String, String)], stdin: &[u8]) -> PhaseOutput;
}

impl<F> PhaseRunner for F
where
    F: Fn(&str, &[(String, String)], &[u8]) -> PhaseOutput + Send + Sync,
{
    fn run(&self, exec: &str, env: &[(String, String)], stdin: &[u8]) -> PhaseOutput {
        self(exec, env, stdin)
    }
}

/// Runs tasks in this process: reads the input (or the reducer's inputs)
/// from a [`BlobStore`], runs the phase on a blocking thread, writes stdout
/// or the emits as output objects and stderr on failure.
///
/// Node faults can be injected ([`InProcessExecutor::kill_node`],
/// [`InProcessExecutor::kill_first_node_used`]) to exercise retries: a task
/// on a dead node still writes its outputs (the node died after the work,
/// before reporting) and then fails with [`ExecError::NodeUnavailable`].
pub struct InProcessExecutor {
    blobs: Arc<dyn BlobStore>,
    runner: Arc<dyn PhaseRunner>,
    dead: Mutex<HashSet<String>>,
    kill_first: Mutex<bool>,
}

impl std::fmt::Debug for InProcessExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessExecutor").finish_non_exhaustive()
    }
}

/// Reducer input page size used by the in-process executor.
const FEED_PAGE: u32 = 64;

impl InProcessExecutor {
    /// An executor over `blobs` running phases with `runner`.
    pub fn new(blobs: Arc<dyn BlobStore>, runner: Arc<dyn PhaseRunner>) -> Self {
        InProcessExecutor {
            blobs,
            runner,
            dead: Mutex::new(HashSet::new()),
            kill_first: Mutex::new(false),
        }
    }

    fn dead(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panicking holder cannot leave the set inconsistent.
        self.dead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, attempts on `node` fail after doing their work.
    pub fn kill_node(&self, node: &str) {
        self.dead().insert(node.to_owned());
    }

    /// Kill whichever node runs the next attempt.
    pub fn kill_first_node_used(&self) {
        *self.kill_first.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    async fn stdin_for(
        &self,
        req: &TaskRequest,
        feed: &Arc<dyn ReducerFeed>,
    ) -> Result<Vec<u8>, ExecError> {
        match &req.input {
            TaskInput::Map { object, .. } => self.blobs.get(object).await,
            TaskInput::Reduce { reducer } => {
                let mut out = Vec::new();
                let mut from = 0;
                loop {
                    let page = feed
                        .page(ReducerInputsRequest {
                            job_id: req.job_id,
                            phase: req.phase,
                            reducer: *reducer,
                            from,
                            limit: FEED_PAGE,
                        })
                        .await?;
                    for name in &page.inputs {
                        out.extend_from_slice(&self.blobs.get(name).await?);
                    }
                    from = page.next;
                    if page.ended {
                        return Ok(out);
                    }
                    if page.inputs.is_empty() {
                        // Upstream still runs (reducers stream): let it.
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                }
            }
        }
    }
}

fn env_value<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[async_trait]
impl TaskExecutor for InProcessExecutor {
    async fn execute(
        &self,
        node: &str,
        req: TaskRequest,
        feed: Arc<dyn ReducerFeed>,
    ) -> Result<TaskResponse, ExecError> {
        {
            let mut first = self.kill_first.lock().unwrap_or_else(|p| p.into_inner());
            if std::mem::take(&mut *first) {
                self.dead().insert(node.to_owned());
            }
        }
        let stdin = self.stdin_for(&req, &feed).await?;
        let runner = self.runner.clone();
        let (exec, env) = (req.exec.clone(), req.env.clone());
        let out = tokio::task::spawn_blocking(move || runner.run(&exec, &env, &stdin))
            .await
            .map_err(|e| ExecError::Io(format!("phase runner panicked: {e}")))?;
        let outcome = if out.status == 0 {
            let mut outputs = Vec::new();
            if out.emits.is_empty() {
                self.blobs.put(&req.stdout_object, out.stdout).await?;
                outputs.push(EmittedOutput {
                    name: req.stdout_object.clone(),
                    reducer: None,
                });
            } else {
                let base = env_value(&req.env, "MANTA_OUTPUT_BASE").to_owned();
                for (i, (bytes, reducer)) in out.emits.into_iter().enumerate() {
                    let name = format!("{base}{}.{i}", Uuid::new_v4());
                    self.blobs.put(&name, bytes).await?;
                    outputs.push(EmittedOutput { name, reducer });
                }
            }
            TaskOutcome::Success { outputs }
        } else {
            self.blobs.put(&req.stderr_object, out.stderr).await?;
            TaskOutcome::Failure {
                code: ErrorCode::UserTaskError,
                message: format!("user command exited with code {}", out.status),
                stderr: Some(req.stderr_object.clone()),
                core: None,
            }
        };
        if self.dead().contains(node) {
            return Err(ExecError::NodeUnavailable(node.to_owned()));
        }
        Ok(TaskResponse {
            task_id: req.task_id,
            attempt: req.attempt,
            node: node.to_owned(),
            outcome,
            reproducible: false,
        })
    }
}

/// A [`BlobStore`] in memory (single-process mode without storage nodes,
/// and tests).
#[derive(Debug, Default)]
pub struct MemoryBlobs {
    objects: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
}

impl MemoryBlobs {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Vec<u8>>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Object names with a prefix.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.map()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Put synchronously (test setup).
    pub fn insert(&self, name: &str, bytes: &[u8]) {
        self.map().insert(name.to_owned(), bytes.to_vec());
    }

    /// Get synchronously.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        self.map().get(name).cloned()
    }
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    async fn get(&self, name: &str) -> Result<Vec<u8>, ExecError> {
        self.read(name)
            .ok_or_else(|| ExecError::Io(format!("no such object: {name}")))
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), ExecError> {
        self.map().insert(name.to_owned(), bytes);
        Ok(())
    }
}
