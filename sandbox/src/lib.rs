//! Runs Manta-style phase scripts — POSIX shell pipelines whose commands
//! are WebAssembly programs — with wasmtime, contained and limited.
//!
//! What it guarantees:
//! - **Nothing of the host is reachable.** Commands resolve to the embedded
//!   `wasi-coreutils` toolbox, to `.wasm` assets given by name, or (for
//!   `python3` and `python`) to the operator's installed CPython module
//!   ([`SandboxConfig::python`], its stdlib mounted read-only at
//!   [`STDLIB_GUEST_DIR`]), never to host programs. A guest sees the
//!   scratch directory at `/` (read-write, with `/tmp` and `/var/tmp` in
//!   it), the input directory read-only (at [`InputDir::guest`], by default
//!   [`DEFAULT_INPUT_GUEST_DIR`]), pipes for stdio, the explicit
//!   environment, and nothing else: no sockets, no other files.
//! - **Every run is bounded** by [`Limits`]: wall time, memory (summed over
//!   every instance of the run), stdout, stderr, scratch bytes, disk (scratch,
//!   the stdout file and what builtins charge through [`DiskBudget`]),
//!   pipeline stages and argument-list size.
//!   The first limit exceeded stops the whole run; the [`RunReport`] names
//!   it with the amount used and keeps the stderr written so far.
//! - **Unsupported shell is rejected before anything runs**, with the
//!   construct named ([`ScriptError::Unsupported`]).
//! - **Cheap instances:** one engine per [`Sandbox`], pooling allocation,
//!   modules compiled once per content hash (in memory, and on disk with
//!   [`SandboxConfig::cache_dir`]); both caches are bounded, and a `.wasm`
//!   command larger than [`MAX_MODULE_BYTES`] is refused. An exhausted
//!   instance pool is a host failure ([`RunReport::infrastructure_error`]),
//!   never blamed on the guest.
//!
//! It must not depend on the object store or the job system: those call it
//! (and add their in-task tools through [`HostBuiltin`]).
//!
//! [`Sandbox::run_phase`] is async and never blocks the tokio worker it runs
//! on: guests yield at every epoch tick, file I/O goes through tokio.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sandbox::SandboxError> {
//! use sandbox::{Input, Output, PhaseSpec, Sandbox, SandboxConfig};
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let scratch = std::path::PathBuf::from("/tmp/scratch");
//! let mut spec = PhaseSpec::new("wc -l", scratch);
//! spec.stdin = Input::Bytes(b"a\nb\n".to_vec());
//! spec.stdout = Output::Capture;
//! let report = sandbox.run_phase(spec).await?;
//! assert_eq!(report.stdout.as_deref(), Some(&b"2\n"[..]));
//! # Ok(()) }
//! ```

mod determinism;
mod engine;
mod error;
mod fastio;
mod fs;
mod limits;
pub mod pipe;
mod python;
mod run;
mod shell;
mod stage;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

pub use determinism::Determinism;
pub use engine::{MAX_MODULE_BYTES, SandboxConfig};
pub use error::{DiskFull, SandboxError, ScriptError};
pub use fs::DEFAULT_INPUT_GUEST_DIR;
pub use limits::{LimitKind, LimitReport, Limits, parse_duration, parse_size};
pub use python::{PYTHON_COMMANDS, PythonInstall, STDLIB_GUEST_DIR};
pub use stage::{KILLED_STATUS, TRAP_STATUS};

use engine::{ModuleBytes, Runtime};
use fs::FsLayout;
use limits::LimitKind as LK;
use pipe::{PipeReader, PipeWriter};
use run::{Capture, RunShared, TaskGuard, drain_out, pump_in};
use shell::{PhaseCtx, Shell};
use stage::Stdio;

/// The wasi-coreutils toolbox, built from the workspace by build.rs.
pub static COREUTILS_WASM: &[u8] = include_bytes!(env!("TIDEPOOL_COREUTILS_WASM"));
static COREUTILS_HASH: OnceLock<blake3::Hash> = OnceLock::new();

/// The guest runtime's identity: the coreutils module, this crate's
/// version (the shell, the host tools' behaviour) and the engine. Two
/// nodes with the same id run a phase the same way; memoized results are
/// keyed by it.
pub fn runtime_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut h = blake3::Hasher::new_derive_key("tidepool guest runtime v1");
        h.update(COREUTILS_WASM);
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(b"wasmtime 48");
        h.finalize().to_hex()[..32].to_owned()
    })
}

pub(crate) fn coreutils_module() -> ModuleBytes {
    ModuleBytes::Static(COREUTILS_WASM, &COREUTILS_HASH)
}

/// Where a phase's stdin comes from.
#[non_exhaustive]
pub enum Input {
    /// Empty stdin.
    None,
    /// A host file (a map task's input object).
    File(PathBuf),
    /// These bytes.
    Bytes(Vec<u8>),
    /// Any async reader (e.g. a streaming object body, or a reducer's inputs).
    Reader(Box<dyn AsyncRead + Send + Unpin>),
}

/// Where a phase's stdout goes.
#[non_exhaustive]
pub enum Output {
    /// Thrown away (still counted against the stdout limit).
    Discard,
    /// Created or truncated host file.
    File(PathBuf),
    /// Kept in memory and returned in [`RunReport::stdout`].
    Capture,
    /// Any async writer (e.g. the process stdout, an upload body).
    Writer(Box<dyn AsyncWrite + Send + Unpin>),
}

/// A host directory shown read-only to guests at `guest`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InputDir {
    pub host: PathBuf,
    pub guest: String,
}

/// Process ids `$!` hands out start above this (they name jobs, not host
/// processes).
const BACKGROUND_PID_BASE: u32 = 1000;

/// One run of a phase script.
#[non_exhaustive]
pub struct PhaseSpec {
    /// The phase's `exec` string (POSIX shell).
    pub exec: String,
    pub stdin: Input,
    /// Read-only input directory (map phases).
    pub input_dir: Option<InputDir>,
    /// More read-only directories (a job's assets at `/assets`). Nothing
    /// under their guest paths can be written, even where scratch would
    /// have room for it.
    pub read_only_dirs: Vec<InputDir>,
    /// Private read-write directory, `/` for guests. Created if missing.
    pub scratch: PathBuf,
    /// The whole environment (e.g. `MANTA_INPUT_FILE`); nothing is inherited.
    pub env: Vec<(String, String)>,
    /// Extra commands: name → `.wasm` file.
    pub assets: HashMap<String, PathBuf>,
    pub limits: Limits,
    pub stdout: Output,
    /// Clocks and entropy: real, real and watched, or seeded.
    pub determinism: Determinism,
}

impl PhaseSpec {
    /// A spec with empty stdin, no input directory, no environment, no
    /// assets, default limits and discarded stdout.
    pub fn new(exec: impl Into<String>, scratch: impl Into<PathBuf>) -> PhaseSpec {
        PhaseSpec {
            exec: exec.into(),
            stdin: Input::None,
            input_dir: None,
            read_only_dirs: Vec::new(),
            scratch: scratch.into(),
            env: Vec::new(),
            assets: HashMap::new(),
            limits: Limits::default(),
            stdout: Output::Discard,
            determinism: Determinism::Free,
        }
    }
}

/// The outcome of a run that started (a rejected script is an `Err`).
/// Serializable, so a process running phases for another can report it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RunReport {
    /// The shell's exit status; [`KILLED_STATUS`] when a limit stopped the run.
    pub exit_status: i32,
    /// Set when a limit stopped the run.
    pub limit_exceeded: Option<LimitReport>,
    /// Everything written to stderr, up to the stderr limit.
    pub stderr: Vec<u8>,
    /// The output, for [`Output::Capture`].
    pub stdout: Option<Vec<u8>>,
    /// Bytes written to stdout.
    pub stdout_bytes: u64,
    /// One line per command that trapped ("dumped core").
    pub traps: Vec<String>,
    pub elapsed: Duration,
    /// Set when the host, not the guest, stopped the run (e.g. no wasm
    /// instance could be allocated): the attempt should be retried, not
    /// reported as the user's failure.
    pub infrastructure_error: Option<String>,
    /// In a [`Determinism::Observed`] run: the first thing it did that its
    /// inputs do not decide (read the clock, ran `env`, ...).
    #[serde(default)]
    pub nondeterminism: Option<String>,
}

impl RunReport {
    /// Exit status 0 and no limit exceeded.
    pub fn success(&self) -> bool {
        self.exit_status == 0 && self.limit_exceeded.is_none()
    }
}

/// What a [`HostBuiltin`] gets: its arguments and streams.
pub struct BuiltinCall<'a> {
    /// argv; `args[0]` is the command name.
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    /// The shell's working directory (a guest path).
    pub cwd: &'a str,
    fs: &'a FsLayout,
    stdio: &'a Stdio,
    run: &'a Arc<RunShared>,
}

impl BuiltinCall<'_> {
    /// The run's disk budget: a builtin charges what it writes on the run's
    /// behalf (spool files, uploads) before writing it.
    pub fn disk_budget(&self) -> DiskBudget {
        DiskBudget {
            run: self.run.clone(),
            report: Some((
                self.stdio.stderr.clone(),
                self.args.first().cloned().unwrap_or_default(),
            )),
        }
    }
    /// Charges `bytes` that were written for this command in another
    /// process (a builtin the agent ran for a worker, which has already
    /// told the command's stderr if it ran out): over the budget, the run
    /// stops with [`LimitKind::Disk`].
    pub fn charge_disk_written_elsewhere(&self, bytes: u64) {
        if bytes > 0 {
            self.run.charge_disk(bytes);
        }
    }

    /// stdin, if the command has one.
    pub fn stdin(&self) -> Option<&PipeReader> {
        self.stdio.stdin.as_ref()
    }
    pub fn stdout(&self) -> &PipeWriter {
        &self.stdio.stdout
    }
    pub fn stderr(&self) -> &PipeWriter {
        &self.stdio.stderr
    }
    /// Opens a file by guest path, with the same confinement guests have.
    pub fn open_read(&self, guest_path: &str) -> std::io::Result<std::fs::File> {
        self.fs.open_read(self.cwd, guest_path)
    }
}

impl std::fmt::Debug for BuiltinCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinCall")
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .finish_non_exhaustive()
    }
}

/// A builtin call made by a phase running in another process, for
/// [`Sandbox::run_builtin`]: what the builtin would have seen in that phase.
pub struct BuiltinRequest {
    /// The builtin's name.
    pub name: String,
    /// argv; `args[0]` is the command name.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The shell's working directory (a guest path).
    pub cwd: String,
    /// The phase's scratch directory (the guest's `/`).
    pub scratch: PathBuf,
    /// The phase's read-only mounts (input directory and assets).
    pub read_only: Vec<InputDir>,
    pub stdin: Option<PipeReader>,
    pub stdout: PipeWriter,
    pub stderr: PipeWriter,
    /// What is left of the phase's disk budget when the call starts
    /// ([`DiskBudget::remaining`] in the calling process): the builtin's
    /// writes are charged against it here, and the caller charges what
    /// [`BuiltinOutcome::disk_charged`] says to its own run.
    pub disk_remaining: u64,
}

/// How a [`Sandbox::run_builtin`] call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinOutcome {
    /// The builtin's exit status.
    pub status: i32,
    /// Bytes the builtin charged to the disk budget (including a charge
    /// that was refused, so the caller's run trips its limit too).
    pub disk_charged: u64,
}

impl std::fmt::Debug for BuiltinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinRequest")
            .field("name", &self.name)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// The disk budget of one run ([`Limits::disk_bytes`]), shared by scratch,
/// the stdout file and every host builtin of the run.
#[derive(Clone)]
pub struct DiskBudget {
    run: Arc<RunShared>,
    /// The command's stderr and name, told when the budget refuses it.
    report: Option<(PipeWriter, String)>,
}

impl DiskBudget {
    /// Charges `bytes` about to be written. `Err` once the run's budget is
    /// used up: the command's stderr then says so (`NAME: disk quota of N
    /// bytes exceeded`, written before anything can stop the run), the run
    /// is stopped and reported with [`LimitKind::Disk`], and the caller
    /// must not write the bytes.
    pub fn charge(&self, bytes: u64) -> Result<(), DiskFull> {
        let full = DiskFull {
            limit: self.run.limits.disk_bytes,
        };
        if self.run.disk_used().saturating_add(bytes) > full.limit
            && let Some((stderr, name)) = &self.report
        {
            // Synchronously into the pipe's buffer: the run may be torn
            // down at this command's next await.
            let _ = stderr.push(format!("{name}: {full}\n").as_bytes());
        }
        if self.run.charge_disk(bytes) {
            Ok(())
        } else {
            Err(full)
        }
    }

    /// Bytes still available.
    pub fn remaining(&self) -> u64 {
        self.run
            .limits
            .disk_bytes
            .saturating_sub(self.run.disk_used())
    }
}

impl std::fmt::Debug for DiskBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskBudget")
            .field("limit", &self.run.limits.disk_bytes)
            .field("used", &self.run.disk_used())
            .finish()
    }
}

/// The widest pipeline of `exec` (the wasm instances it can run at once),
/// for admission before a run; `Err` if the shell rejects the script.
/// May block while the script is parsed on `shell-syntax`'s parser
/// thread: call it off the async workers, or [`recent_pipeline_stages`]
/// first.
pub fn pipeline_stages(exec: &str) -> Result<u64, ScriptError> {
    Ok(shell_syntax::parse_shared(exec)?.max_pipeline() as u64)
}

/// [`pipeline_stages`] if `exec` was parsed recently; never blocks.
pub fn recent_pipeline_stages(exec: &str) -> Option<u64> {
    shell_syntax::recent(exec).map(|s| s.max_pipeline() as u64)
}

/// A command implemented by the host (e.g. Manta's `mcat`, `mpipe`), found
/// by name before wasm commands. Returns the exit status.
#[async_trait::async_trait]
pub trait HostBuiltin: Send + Sync {
    async fn run(&self, call: BuiltinCall<'_>) -> i32;
}

/// The sandbox: an engine, its module cache, and registered host builtins.
/// Create one per process and share it (`Clone` is cheap).
#[derive(Clone)]
pub struct Sandbox {
    rt: Arc<Runtime>,
    builtins: Arc<HashMap<String, Arc<dyn HostBuiltin>>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("builtins", &self.builtins.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Directories every run's scratch has (guest `/tmp`, `/var/tmp`).
const SCRATCH_DIRS: [&str; 2] = ["tmp", "var/tmp"];

/// How long to wait, after a run ends, for output to reach its destination.
const DRAIN_GRACE: Duration = Duration::from_secs(30);
/// How often scratch usage is measured while a run is going, at the
/// most: a guest writing files itself (not through a shell redirect, which
/// is counted as it writes) is caught this long after it passes its disk
/// budget, so at a few GB/s this bounds the overshoot to tens of MB.
const SCRATCH_POLL: Duration = Duration::from_millis(20);
/// A measurement may take at most this share of the time between two: a
/// scratch tree of many files is measured less often rather than costing
/// a core.
const SCRATCH_POLL_DUTY: u32 = 10;

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        Ok(Sandbox {
            rt: Arc::new(Runtime::new(&config)?),
            builtins: Arc::new(HashMap::new()),
        })
    }

    /// Adds a host builtin (replacing one of the same name).
    pub fn with_builtin(
        mut self,
        name: impl Into<String>,
        builtin: Arc<dyn HostBuiltin>,
    ) -> Sandbox {
        Arc::make_mut(&mut self.builtins).insert(name.into(), builtin);
        self
    }

    /// Names of the toolbox's commands.
    pub fn tools() -> &'static [&'static str] {
        shell::coreutils_tools()
    }

    /// Compiles (or loads from the disk cache) the toolbox now, so the first
    /// run does not pay for it.
    pub async fn precompile(&self) -> Result<(), SandboxError> {
        self.rt
            .instance_pre("wasi-coreutils", coreutils_module())
            .await
            .map(|_| ())
    }

    /// Runs the host builtin `req.name` outside a phase, on behalf of a
    /// phase running elsewhere (another process) with the same directories:
    /// it sees the same confined files (`open_read`) as it would inside
    /// that phase. `None` when no builtin of that name is registered or the
    /// directories cannot be opened.
    pub async fn run_builtin(&self, req: BuiltinRequest) -> Option<BuiltinOutcome> {
        let b = self.builtins.get(&req.name)?.clone();
        let read_only: Vec<(&Path, &str)> = req
            .read_only
            .iter()
            .map(|d| (d.host.as_path(), d.guest.as_str()))
            .collect();
        let fs = FsLayout::new(&req.scratch, &read_only).ok()?;
        let stdio = Stdio {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
        };
        // A run of its own that holds only this call's disk budget: the
        // phase's run (memory, scratch, stdout) lives in the caller.
        let run = RunShared::new(
            Limits {
                disk_bytes: req.disk_remaining,
                ..Limits::default()
            },
            Determinism::Free,
        );
        let call = BuiltinCall {
            args: &req.args,
            env: &req.env,
            cwd: &req.cwd,
            fs: &fs,
            stdio: &stdio,
            run: &run,
        };
        let status = b.run(call).await;
        Some(BuiltinOutcome {
            status,
            disk_charged: run.disk_charged(),
        })
    }

    /// Parses and runs one phase. `Err` only for a rejected script or a host
    /// failure before the run starts; everything the script does, including
    /// exceeding a limit, is in the report.
    pub async fn run_phase(&self, spec: PhaseSpec) -> Result<RunReport, SandboxError> {
        // Parsing runs on shell-syntax's own thread (bounded, large stack);
        // waiting for it is blocking work, so not on this async worker.
        // Every task of a phase runs the same script: usually parsed already.
        let script = match shell_syntax::recent(&spec.exec) {
            Some(s) => s,
            None => {
                let exec = spec.exec.clone();
                tokio::task::spawn_blocking(move || shell_syntax::parse_shared(&exec))
                    .await
                    .map_err(|e| ScriptError::ParserUnavailable(e.to_string()))??
            }
        };
        let limits = spec.limits;
        let stages = script.max_pipeline() as u64;
        if stages > limits.pipeline_stages {
            return Ok(RunReport {
                exit_status: KILLED_STATUS,
                limit_exceeded: Some(LimitReport {
                    kind: LK::PipelineStages,
                    limit: limits.pipeline_stages,
                    used: stages,
                }),
                stderr: Vec::new(),
                stdout: None,
                stdout_bytes: 0,
                traps: Vec::new(),
                elapsed: Duration::ZERO,
                infrastructure_error: None,
                nondeterminism: None,
            });
        }
        let io_err = |context: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| SandboxError::Io {
                context,
                path,
                source,
            }
        };
        // `/tmp` and `/var/tmp` exist and are writable, as on the Unix tree
        // Manta's zones had (scratch is the guest's `/`). They, the stdout
        // file and the input file are made or opened in one blocking call:
        // a `tokio::fs` call each was a thread hand-off each, per task.
        let host_files = {
            let scratch = spec.scratch.clone();
            let stdout = match &spec.stdout {
                Output::File(p) => Some(p.clone()),
                _ => None,
            };
            let stdin = match &spec.stdin {
                Input::File(p) => Some(p.clone()),
                _ => None,
            };
            move || -> Result<_, SandboxError> {
                for dir in SCRATCH_DIRS {
                    let path = scratch.join(dir);
                    std::fs::create_dir_all(&path).map_err(io_err("creating scratch", &path))?;
                }
                let stdout = stdout
                    .map(|p| std::fs::File::create(&p).map_err(io_err("creating stdout file", &p)))
                    .transpose()?;
                let stdin = stdin
                    .map(|p| std::fs::File::open(&p).map_err(io_err("opening input", &p)))
                    .transpose()?;
                Ok((stdout, stdin))
            }
        };
        let (mut stdout_file, mut stdin_file) = tokio::task::spawn_blocking(host_files)
            .await
            .map_err(|e| SandboxError::Io {
                context: "creating scratch",
                path: spec.scratch.clone(),
                source: std::io::Error::other(e),
            })??;
        let read_only: Vec<(&Path, &str)> = spec
            .input_dir
            .iter()
            .chain(&spec.read_only_dirs)
            .map(|d| (d.host.as_path(), d.guest.as_str()))
            .collect();
        let fs = Arc::new(
            FsLayout::new(&spec.scratch, &read_only).map_err(io_err("opening", &spec.scratch))?,
        );
        let run = RunShared::new(limits.clone(), spec.determinism);

        // stdout: one pipe drained into the destination with the stdout budget.
        let (out_w, out_r) = pipe::pipe(pipe::OUTPUT_CAPACITY);
        let out_count = Arc::new(AtomicU64::new(0));
        let capture = Capture::default();
        let drain = |dst: Box<dyn AsyncWrite + Send + Unpin>| {
            TaskGuard::spawn(drain_out(
                out_r,
                dst,
                out_count.clone(),
                limits.stdout_bytes,
                LK::Stdout,
                run.clone(),
            ))
        };
        let (out_task, captured) = match spec.stdout {
            Output::Discard => (drain(Box::new(tokio::io::sink())), false),
            Output::Capture => (drain(Box::new(capture.clone())), true),
            Output::Writer(w) => (drain(w), false),
            Output::File(p) => {
                run.stdout_on_disk
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let f = stdout_file.take().ok_or_else(|| SandboxError::Io {
                    context: "creating stdout file",
                    path: p,
                    source: std::io::ErrorKind::NotFound.into(),
                })?;
                (drain(Box::new(tokio::fs::File::from_std(f))), false)
            }
        };
        let (err_w, err_r) = pipe::pipe(pipe::DEFAULT_CAPACITY);
        let err_buf = Capture::default();
        let err_task = TaskGuard::spawn(drain_out(
            err_r,
            err_buf.clone(),
            Arc::new(AtomicU64::new(0)),
            limits.stderr_bytes,
            LK::Stderr,
            run.clone(),
        ));
        let stdin = match spec.stdin {
            Input::None => None,
            Input::File(p) => {
                let f = stdin_file.take().ok_or_else(|| SandboxError::Io {
                    context: "opening input",
                    path: p,
                    source: std::io::ErrorKind::NotFound.into(),
                })?;
                // Read in place: no copying task, and guests see a regular
                // file's size on fd 0 (as `wc` wants for its columns).
                Some(pipe::file_reader(f))
            }
            Input::Bytes(b) => Some(feed(std::io::Cursor::new(b))),
            Input::Reader(r) => Some(feed(r)),
        };
        let scratch_watch = TaskGuard::spawn(watch_scratch(fs.clone(), run.clone()));

        let ctx = Arc::new(PhaseCtx {
            rt: self.rt.clone(),
            run: run.clone(),
            fs: fs.clone(),
            assets: spec.assets,
            host_builtins: self.builtins.clone(),
            asset_cache: Mutex::new(HashMap::new()),
            redirected: Arc::new(AtomicU64::new(0)),
            background: Default::default(),
            last_pid: std::sync::atomic::AtomicU32::new(BACKGROUND_PID_BASE),
        });
        let mut sh = Shell::new(ctx, &spec.env);
        let io = Stdio {
            stdin,
            stdout: out_w,
            stderr: err_w,
        };
        let body = async move {
            // The shell's background jobs are waited for before it ends.
            let r = sh.run_to_end(&script, &io).await;
            drop(io);
            r.unwrap_or(KILLED_STATUS)
        };
        let deadline = tokio::time::sleep(limits.wall_time);
        let mut exit_status = tokio::select! {
            s = body => s,
            _ = run.cancel.cancelled() => KILLED_STATUS,
            _ = deadline => {
                run.trip(LK::WallTime, u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX));
                KILLED_STATUS
            }
        };
        drop(scratch_watch);
        let used = tokio::task::spawn_blocking({
            let fs = fs.clone();
            move || fs.scratch_usage()
        })
        .await
        .unwrap_or(0);
        if used > limits.scratch_bytes {
            run.trip(LK::Scratch, used);
        }
        run.note_scratch(used);
        // Every writer is gone once the script's future is dropped (stage
        // tasks are aborted with it), so the drains finish promptly.
        let stdout_bytes = match tokio::time::timeout(DRAIN_GRACE, out_task.join()).await {
            Ok(Some(Ok(n))) => n,
            _ => 0,
        };
        let _ = tokio::time::timeout(DRAIN_GRACE, err_task.join()).await;
        let limit_exceeded = run.tripped();
        if limit_exceeded.is_some() {
            exit_status = KILLED_STATUS;
        }
        Ok(RunReport {
            exit_status,
            limit_exceeded,
            stderr: err_buf.take(),
            stdout: captured.then(|| capture.take()),
            stdout_bytes,
            traps: run.traps(),
            elapsed: run.started.elapsed(),
            infrastructure_error: run.infra_failure(),
            nondeterminism: run.nondeterminism(),
        })
    }
}

/// A pipe fed from `src` by a detached task (it ends at EOF or when every
/// reader is gone).
fn feed(src: impl AsyncRead + Send + Unpin + 'static) -> PipeReader {
    let (w, r) = pipe::pipe(pipe::DEFAULT_CAPACITY);
    tokio::spawn(pump_in(src, w));
    r
}

async fn watch_scratch(fs: Arc<FsLayout>, run: Arc<RunShared>) {
    let limit = run.limits.scratch_bytes;
    let mut pause = SCRATCH_POLL;
    loop {
        tokio::time::sleep(pause).await;
        let fs = fs.clone();
        let t = Instant::now();
        let used = tokio::task::spawn_blocking(move || fs.scratch_usage())
            .await
            .unwrap_or(0);
        pause = SCRATCH_POLL.max(t.elapsed() * SCRATCH_POLL_DUTY);
        if used > limit {
            run.trip(LK::Scratch, used);
            return;
        }
        if !run.note_scratch(used) {
            return;
        }
    }
}
