//! `tidepool exec`: runs one phase pipeline locally, exactly as a job task
//! would run it, so users can test phases before submitting them.
//!
//! The input file (`--input`) is the phase's stdin and is visible read-only
//! inside the sandbox at `/manta/input/<file name>`, which is also
//! `$MANTA_INPUT_FILE` (its directory is mounted, as a job mounts the
//! object's). The scratch directory (`--scratch`, default a fresh temporary
//! directory removed afterwards) is the guest's `/`. Stdout of the phase
//! goes to our stdout, its stderr to our stderr; our exit status is the
//! phase's (137 when a limit stopped it, with the limit printed on stderr).
//!
//! The phase runs in a task worker process through the same pool code as
//! a node's agent (`compute::workers`), so what is tested here is what
//! runs in a job; the in-task builtins (`mcat`, ...) fail as they do
//! outside a job.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use compute::runner::{PhaseError, PhaseInput, PhaseJob, PhaseOutput, PhaseRunner as _};
use compute::workers::WorkerPool;
use sandbox::{InputDir, Limits};

#[derive(Args)]
pub struct ExecArgs {
    /// File given to the phase on stdin and as `$MANTA_INPUT_FILE`.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Extra command: `NAME=PATH.wasm` (repeatable).
    #[arg(long = "asset", value_name = "NAME=PATH")]
    pub assets: Vec<String>,
    /// Limit override: `time=30s`, `memory=512M`, `stdout=1G`, `stderr=1M`,
    /// `scratch=8G`, `stages=64`, `args=2M` (repeatable).
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

/// Guest directory where the input file's directory is mounted.
const INPUT_GUEST_DIR: &str = sandbox::DEFAULT_INPUT_GUEST_DIR;

/// Runs the phase and returns its exit status.
pub fn run(args: ExecArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: ExecArgs) -> anyhow::Result<i32> {
    let mut limits = Limits::default();
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
    // Held until the run ends: dropping it removes the default scratch.
    let temp = match &args.scratch {
        Some(_) => None,
        None => Some(tempfile_dir()?),
    };
    let scratch = args
        .scratch
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.path.clone()))
        .context("no scratch directory")?;

    let mut env = vec![
        ("HOME".to_owned(), "/".to_owned()),
        ("PATH".to_owned(), "/bin".to_owned()),
        ("MANTA_NO_AUTH".to_owned(), "true".to_owned()),
    ];
    let mut spec = PhaseJob::new(args.pipeline, scratch);
    if let Some(input) = &args.input {
        let input = input
            .canonicalize()
            .with_context(|| format!("--input {}", input.display()))?;
        let name = input
            .file_name()
            .and_then(|n| n.to_str())
            .context("--input must name a file with a UTF-8 name")?;
        let dir = input.parent().context("--input has no parent directory")?;
        let guest_file = format!("{INPUT_GUEST_DIR}/{name}");
        env.push(("MANTA_INPUT_FILE".into(), guest_file.clone()));
        env.push(("MANTA_INPUT_OBJECT".into(), guest_file));
        spec.input_dir = Some(InputDir {
            host: dir.to_path_buf(),
            guest: INPUT_GUEST_DIR.to_owned(),
        });
        spec.stdin = PhaseInput::File(input.clone());
    }
    spec.env = env;
    spec.assets = assets;
    spec.limits = limits;
    spec.stdout = PhaseOutput::OwnStdout;

    let mut program = crate::agents::worker_program()?;
    if args.no_cache {
        program.args.push("--no-cache".into());
    }
    program
        .share_stdout()
        .context("sharing stdout with the task worker")?;
    let pool = WorkerPool::new(program, 1, None);
    let report = match pool.run(spec).await {
        Ok(r) => r,
        Err(PhaseError::Script(e)) => bail!("{e}"),
        Err(e) => return Err(e.into()),
    };

    let mut err = std::io::stderr().lock();
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
