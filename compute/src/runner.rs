//! How a task's sandbox phases are run: [`PhaseRunner`], with an
//! in-process implementation ([`InProcess`], for tests and embedders that
//! accept sharing their process with guests) and the worker-process pool
//! ([`crate::workers::WorkerPool`]) that nodes and `tidepool exec` use.
//!
//! A [`PhaseJob`] is a [`sandbox::PhaseSpec`] whose streams can cross a
//! process boundary: stdin is nothing, a file path, or a stream the caller
//! produces; stdout is discarded, a file path, or a stream the caller
//! consumes. A runner reports the run as the sandbox does, or a
//! [`PhaseError`]: the script was rejected, the host could not start the
//! run, or the process running it died ([`PhaseError::Crashed`], an
//! infrastructure failure of the attempt, never of the user's program).

use std::collections::HashMap;
use std::path::PathBuf;

use sandbox::{Determinism, Input, InputDir, Limits, Output, PhaseSpec, RunReport, Sandbox};
use tokio::io::{AsyncRead, AsyncWrite};

/// Where a phase's stdin comes from.
pub enum PhaseInput {
    /// Empty stdin.
    None,
    /// A host file (a map task's input), opened by whoever runs the phase.
    File(PathBuf),
    /// A stream (a reducer's inputs).
    Stream(Box<dyn AsyncRead + Send + Unpin>),
}

/// Where a phase's stdout goes.
pub enum PhaseOutput {
    /// Thrown away (still counted against the stdout limit).
    Discard,
    /// Created or truncated host file.
    File(PathBuf),
    /// A writer of the caller, relayed to it (a worker's output crosses
    /// the control channel).
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
    /// This process's own stdout (`tidepool exec`'s). A worker writes it
    /// directly, with no relay, when its pool's program was made with
    /// [`crate::workers::WorkerProgram::share_stdout`]; in-process it is
    /// [`tokio::io::stdout`].
    OwnStdout,
}

/// One run of a phase: a [`PhaseSpec`] whose streams can be forwarded.
pub struct PhaseJob {
    /// The phase's `exec` (or `init`) string.
    pub exec: String,
    pub stdin: PhaseInput,
    /// Read-only input directory (map phases).
    pub input_dir: Option<InputDir>,
    /// More read-only directories (assets).
    pub read_only_dirs: Vec<InputDir>,
    /// Private read-write directory, `/` for guests.
    pub scratch: PathBuf,
    /// The whole environment of the guests.
    pub env: Vec<(String, String)>,
    /// Extra commands: name → `.wasm` file.
    pub assets: HashMap<String, PathBuf>,
    pub limits: Limits,
    pub stdout: PhaseOutput,
    /// Whose phase this is (the job's owner), for runners that keep
    /// account-level state ([`PhaseRunner::admit`]); never sent to guests.
    pub account: Option<String>,
    /// Clocks and entropy: real, observed or seeded (memoized tasks).
    pub determinism: Determinism,
}

impl PhaseJob {
    /// A job with empty stdin, no mounts, no environment, no assets,
    /// default limits and discarded stdout.
    pub fn new(exec: impl Into<String>, scratch: impl Into<PathBuf>) -> PhaseJob {
        PhaseJob {
            exec: exec.into(),
            stdin: PhaseInput::None,
            input_dir: None,
            read_only_dirs: Vec::new(),
            scratch: scratch.into(),
            env: Vec::new(),
            assets: HashMap::new(),
            limits: Limits::default(),
            stdout: PhaseOutput::Discard,
            account: None,
            determinism: Determinism::Free,
        }
    }

    /// The sandbox spec of this job (in the process that runs it).
    pub fn into_spec(self) -> PhaseSpec {
        let mut spec = PhaseSpec::new(self.exec, self.scratch);
        spec.stdin = match self.stdin {
            PhaseInput::None => Input::None,
            PhaseInput::File(p) => Input::File(p),
            PhaseInput::Stream(r) => Input::Reader(r),
        };
        spec.stdout = match self.stdout {
            PhaseOutput::Discard => Output::Discard,
            PhaseOutput::File(p) => Output::File(p),
            PhaseOutput::Stream(w) => Output::Writer(w),
            PhaseOutput::OwnStdout => Output::Writer(Box::new(tokio::io::stdout())),
        };
        spec.input_dir = self.input_dir;
        spec.read_only_dirs = self.read_only_dirs;
        spec.env = self.env;
        spec.assets = self.assets;
        spec.limits = self.limits;
        spec.determinism = self.determinism;
        spec
    }
}

impl std::fmt::Debug for PhaseJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhaseJob")
            .field("exec", &self.exec)
            .field("scratch", &self.scratch)
            .finish_non_exhaustive()
    }
}

/// Why a phase has no [`RunReport`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PhaseError {
    /// The shell rejected the script (the user's error; nothing ran).
    #[error("{0}")]
    Script(String),
    /// The host could not start the run.
    #[error("sandbox: {0}")]
    Host(String),
    /// The process running the phase died: `task worker crashed: ...`.
    #[error("{0}")]
    Crashed(String),
}

impl From<sandbox::SandboxError> for PhaseError {
    fn from(e: sandbox::SandboxError) -> Self {
        match e {
            sandbox::SandboxError::Script(s) => PhaseError::Script(s.to_string()),
            e => PhaseError::Host(e.to_string()),
        }
    }
}

/// Runs phases to their report.
#[async_trait::async_trait]
pub trait PhaseRunner: Send + Sync + std::fmt::Debug {
    /// Runs one phase. Dropping the future stops the run.
    async fn run(&self, job: PhaseJob) -> Result<RunReport, PhaseError>;

    /// Resolves when a phase of `account` may start. A runner that backs
    /// off an account whose phases crash what runs them waits here; call
    /// it before taking a task slot, so a backed-off account never holds
    /// a slot another account could use.
    async fn admit(&self, _account: &str) {}
}

/// Runs phases in this process's sandbox: a host fault a guest triggers
/// takes this process down. Nodes use [`crate::workers::WorkerPool`].
#[derive(Debug, Clone)]
pub struct InProcess(pub Sandbox);

#[async_trait::async_trait]
impl PhaseRunner for InProcess {
    async fn run(&self, job: PhaseJob) -> Result<RunReport, PhaseError> {
        #[cfg(debug_assertions)]
        test_fault(&job.exec);
        Ok(self.0.run_phase(job.into_spec()).await?)
    }
}

/// Test-only fault injection, compiled into debug builds only and armed
/// only by the environment of the process running the phase (which guests
/// never set): a phase whose script contains `tidepool-test-abort-always`
/// aborts that process, a task worker or, with [`InProcess`], the agent's
/// own; one containing `tidepool-test-abort-once` aborts it the first time
/// that script is seen (a marker file in `$TIDEPOOL_TEST_WORKER_FAULTS`).
/// A host fault a guest could trigger, made on purpose.
#[cfg(debug_assertions)]
pub(crate) fn test_fault(exec: &str) {
    let Some(dir) = std::env::var_os("TIDEPOOL_TEST_WORKER_FAULTS") else {
        return;
    };
    if exec.contains("tidepool-test-abort-always") {
        std::process::abort();
    }
    if exec.contains("tidepool-test-abort-once") {
        let name = blake3::hash(exec.as_bytes()).to_hex();
        let marker = std::path::Path::new(&dir).join(name.as_str());
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(marker)
            .is_ok()
        {
            std::process::abort();
        }
    }
}
