//! `tidepool exec`: runs one phase locally as a job's task runs it, so
//! users can test phases before submitting them.
//!
//! What the phase sees is built by the same code as a node's task
//! ([`compute::task`]): the input file (`--input`) is the phase's stdin
//! and is mounted read-only at `/manta/<object path>` (`$MANTA_INPUT_FILE`),
//! where the object path is `--object` (default `/<login>/stor/<file
//! name>`, the login from `$MANTA_USER`, else `$USER`, else `user`); the environment is
//! the task's (spec §4.8: `MANTA_USER`, `MANTA_JOB_ID` (a fresh id),
//! `MANTA_OUTPUT_BASE`, `MANTA_INPUT_FILE`, `MANTA_INPUT_OBJECT`, ...);
//! the limits are a task's (an hour of wall time, `--memory` MB over all
//! stages, one `--disk` GB budget for scratch and stdout, as the phase
//! properties default to), with `--limit` overrides on top. `--init` runs
//! first in the same scratch, as a phase's `init`. The scratch directory
//! (`--scratch`, default a fresh temporary directory removed afterwards)
//! is the guest's `/`. Stdout of the phase goes to our stdout, its stderr
//! to our stderr; our exit status is the phase's (137 when a limit stopped
//! it, with the limit printed on stderr). A script the shell rejects is
//! refused as `mjob create` refuses it: an error, nothing runs.
//!
//! The phase runs in a task worker process through the same pool code as
//! a node's agent (`compute::workers`). The in-task tools (`mcat`,
//! `mpipe`, `mtee`, `msplit`, `mput`, `mget`, `mls`) exist, as in a task,
//! but there is no object store here: each fails with status 1 and
//! "<tool>: only available inside a job task". Faking a store on the
//! local disk would make a phase pass here that fails in a job (names,
//! permissions, reducers), which is what this command exists to prevent.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use compute::builtins::TaskRegistry;
use compute::runner::{PhaseError, PhaseOutput, PhaseRunner as _};
use compute::task::{self, TaskPhases, TaskStdin};
use compute::workers::WorkerPool;
use meta::path::MantaPath;
use sandbox::{RunReport, Sandbox, SandboxConfig};

#[derive(Args)]
pub struct ExecArgs {
    /// File given to the phase on stdin and at `$MANTA_INPUT_FILE`.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The input's object name, as the job would name it (default
    /// `/<login>/stor/<file name>`): the phase sees the input at
    /// `/manta<PATH>` and `$MANTA_INPUT_OBJECT` is PATH.
    #[arg(long, value_name = "PATH", requires = "input")]
    pub object: Option<String>,
    /// The phase's `init`, run first in the same scratch directory.
    #[arg(long, value_name = "SCRIPT")]
    pub init: Option<String>,
    /// The phase's `memory` (MB, over all stages), as in a job.
    #[arg(long, value_name = "MB", default_value_t = jobs::manifest::DEFAULT_MEMORY_MB)]
    pub memory: u32,
    /// The phase's `disk` (GB: scratch, stdout and what tools write), as
    /// in a job.
    #[arg(long, value_name = "GB", default_value_t = jobs::manifest::DEFAULT_DISK_GB)]
    pub disk: u32,
    /// Extra command: `NAME=PATH.wasm` (repeatable).
    #[arg(long = "asset", value_name = "NAME=PATH")]
    pub assets: Vec<String>,
    /// Limit override on top of the task's limits: `time=30s`,
    /// `memory=512M`, `stdout=1G`, `stderr=1M`, `scratch=8G`, `stages=64`,
    /// `args=2M` (repeatable).
    #[arg(long = "limit", value_name = "KEY=VALUE")]
    pub limits: Vec<String>,
    /// Scratch directory (the guest's `/`); default: a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// Don't cache compiled modules on disk.
    #[arg(long)]
    pub no_cache: bool,
    /// The phase's `exec` string (POSIX shell syntax).
    pub pipeline: String,
}

/// Runs the phase and returns its exit status.
pub fn run(args: ExecArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

/// The login the phase runs as by default: `$MANTA_USER`, else `$USER`,
/// else (neither is a valid login) [`FALLBACK_LOGIN`].
fn default_login() -> anyhow::Result<String> {
    Ok(["MANTA_USER", "USER"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|l| meta::path::valid_login(l))
        .unwrap_or_else(|| FALLBACK_LOGIN.to_owned()))
}

/// The login of a run with no usable login in the environment.
const FALLBACK_LOGIN: &str = "user";

/// The input's object name: `--object` normalized, or the default.
fn object_name(args: &ExecArgs, input: &Path) -> anyhow::Result<(String, MantaPath)> {
    let raw = match &args.object {
        Some(o) => o.clone(),
        None => {
            let name = input
                .file_name()
                .and_then(|n| n.to_str())
                .context("--input must name a file with a UTF-8 name")?;
            format!("/{}/stor/{name}", default_login()?)
        }
    };
    let norm = jobs::naming::normalize(&raw);
    match MantaPath::parse(&norm) {
        Ok(p) if p.top().is_some() && !p.rest().is_empty() => Ok((norm, p)),
        _ => bail!("--object {raw:?}: not an object name (/<login>/stor/...)"),
    }
}

/// Make `src` visible at `dst`: a hard link as a node makes it, or a copy
/// where a link cannot be made (another file system).
fn link_or_copy(src: &Path, dst: &Path) -> anyhow::Result<()> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst)
            .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
    }
    Ok(())
}

async fn run_async(args: ExecArgs) -> anyhow::Result<i32> {
    let mut limits = task::limits(args.memory, args.disk, task::DISK_UNIT, Duration::ZERO);
    for l in &args.limits {
        limits.set(l)?;
    }
    let mut assets = HashMap::new();
    for a in &args.assets {
        let Some((name, path)) = a.split_once('=') else {
            bail!("--asset {a:?}: expected NAME=PATH.wasm")
        };
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("--asset {name}: {} is not a file", path.display());
        }
        assets.insert(name.to_owned(), path);
    }
    // The task's directory (its input tree, and its scratch unless one is
    // given); removed when the run ends, as a node removes a task's.
    let work = tempfile_dir()?;
    let scratch = match &args.scratch {
        Some(s) => s.clone(),
        None => {
            let s = work.path.join("scratch");
            std::fs::create_dir(&s).with_context(|| format!("creating {}", s.display()))?;
            s
        }
    };

    // A job id of its own, as each job has.
    let job = uuid::Uuid::new_v4();
    let (login, input_object, stdin) = match &args.input {
        Some(input) => {
            let input = input
                .canonicalize()
                .with_context(|| format!("--input {}", input.display()))?;
            if !input.is_file() {
                bail!("--input {}: not a file", input.display());
            }
            let (name, path) = object_name(&args, &input)?;
            let root = work.path.join("input");
            let file = root.join(task::host_relative(&path));
            link_or_copy(&input, &file)?;
            (
                path.login().to_owned(),
                Some(name),
                TaskStdin::Map { root, file },
            )
        }
        None => (default_login()?, None, TaskStdin::Stream(None)),
    };
    let base = jobs::naming::output_base(&login, &job, false, None, input_object.as_deref());
    let output_base = jobs::naming::manta_output_base(&login, &job, &base, 0);
    let env = jobs::naming::task_env(&jobs::naming::EnvSpec {
        login: &login,
        job: &job,
        output_base: &output_base,
        input_object: input_object.as_deref(),
        reducer: None,
        url: jobs::naming::DEFAULT_TASK_URL,
    });
    let phases = TaskPhases {
        exec: args.pipeline.clone(),
        init: args.init.clone(),
        scratch,
        init_scratch: None,
        // No task token: the in-task tools say they need a job.
        env: task::exec_env(&env, None),
        limits,
        account: Some(login.clone()),
        assets,
        assets_dir: None,
        determinism: sandbox::Determinism::Free,
    };

    let mut program = crate::agents::worker_program()?;
    if args.no_cache {
        program.args.push("--no-cache".into());
    }
    program
        .share_stdout()
        .context("sharing stdout with the task worker")?;
    // The in-task tools are served as for a node's workers, from a
    // registry with no task in it.
    let mut config = SandboxConfig::default();
    config.cache_dir = None;
    let tools = Sandbox::new(config).context("starting the sandbox")?;
    let tools = compute::builtins::install(tools, Arc::new(TaskRegistry::default()));
    let pool = WorkerPool::new(program, 1, Some(tools));

    if let Some(init) = phases.init_job() {
        let report = pool.run(init).await;
        let status = finish(report)?;
        if status != 0 {
            return Ok(status);
        }
    }
    let report = pool
        .run(phases.exec_job(stdin, PhaseOutput::OwnStdout))
        .await;
    let status = finish(report);
    drop(work);
    status
}

/// Writes a run's stderr (and the limit that stopped it) to ours and
/// returns its exit status.
fn finish(report: Result<RunReport, PhaseError>) -> anyhow::Result<i32> {
    let mut err = std::io::stderr().lock();
    let report = match report {
        Ok(r) => r,
        // A job refuses such a phase when it is submitted (`mjob create`
        // says why); so does this command, as a one-line CLI error.
        Err(PhaseError::Script(e)) => bail!("{e}"),
        Err(e) => return Err(e.into()),
    };
    if let Some(e) = &report.infrastructure_error {
        bail!("{e}");
    }
    err.write_all(&report.stderr)?;
    if let Some(limit) = &report.limit_exceeded {
        writeln!(err, "tidepool exec: {limit}")?;
    }
    Ok(report.exit_status)
}

/// A temporary directory removed on drop (the default scratch).
struct TempDir {
    path: PathBuf,
}

fn tempfile_dir() -> anyhow::Result<TempDir> {
    let base = std::env::temp_dir();
    for i in 0..100u32 {
        let path = base.join(format!("tidepool-exec-{}-{i}", std::process::id()));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(TempDir { path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    bail!("could not create a scratch directory in {}", base.display())
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
