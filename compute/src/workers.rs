//! Task worker processes: sandbox phases run apart from the agent, so a
//! host fault a guest (or a script) triggers — a stack overflow, an abort,
//! a wasmtime bug, a panic in a builtin — costs one task attempt, never
//! the process holding the store's gateway and metadata.
//!
//! The agent side is [`WorkerPool`], a [`PhaseRunner`]: as many long-lived
//! workers as the agent has task slots, each running one phase at a time
//! (spawned on first need, so a pool costs nothing until tasks come; a
//! process per task would cost more than the tasks themselves). A worker
//! is the agent's program started with [`WorkerProgram::args`] (for
//! `tidepool`, its hidden `compute-worker` subcommand), which calls
//! [`serve`]. The agent talks to it over the worker's stdin and stdout in
//! [`crate::frame`]s:
//!
//! | frame | direction | payload |
//! | --- | --- | --- |
//! | `Run` | agent → worker | the phase (JSON): exec, mounts, environment, limits, stdin/stdout as a path, "stream" or (stdout) the shared one |
//! | `Stdin`, `StdinEnd` | agent → worker | a streamed stdin (a reducer's inputs) |
//! | `Stdout` | worker → agent | a streamed stdout (`tidepool exec`) |
//! | `Stderr` | worker → agent | the run's stderr, in chunks, just before its report |
//! | `Report` | worker → agent | the [`sandbox::RunReport`] (without stderr) or why there is none (JSON) |
//!
//! A map task's input and its stdout file are paths the worker opens
//! itself. `tidepool exec`'s stdout is handed to its worker at spawn
//! ([`WorkerProgram::share_stdout`]) and written there directly: relaying
//! it in frames cost four times the phase's own time on a 256 MiB `cat`.
//! Builtins run in the agent through [`crate::proxy`].
//!
//! Guarantees:
//! - A worker that dies (signal, abort, exit) or breaks the protocol fails
//!   the phase it ran with [`PhaseError::Crashed`] ("task worker crashed:
//!   signal 6 (SIGABRT)"), is reaped, and is replaced by a fresh one on the
//!   next run; other workers and their phases are unaffected.
//! - Dropping a run (a cancelled job) kills its worker; it is replaced.
//! - A worker that has not reported a minute after its phase's wall time
//!   (which it enforces itself) is killed as stuck, failing the phase with
//!   [`PhaseError::Crashed`]; a hung worker never holds a slot for good.
//! - A worker found dead while idle is replaced before it is given a phase,
//!   so an idle crash never costs a task.
//! - A crash frees its slot at once, so crashes never shrink the pool. An
//!   account whose phase crashed a worker is backed off: its next phases
//!   on this pool wait ([`PhaseRunner::admit`], before they take a slot)
//!   0.5 s, doubling with each further crash up to 16 s, forgotten after
//!   a quiet 32 s. So one account's crashing tasks cost it time and cost
//!   at most a few worker restarts a second, while other accounts' phases
//!   start without waiting.

use std::collections::HashMap;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandbox::{InputDir, Limits, RunReport, Sandbox};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{OnceCell, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::builtins::TASK_ENV;
use crate::frame::{Frame, FrameError, Kind, read_frame, write_frame};
use crate::proxy::{BuiltinServer, TaskFiles};
use crate::runner::{PhaseError, PhaseInput, PhaseJob, PhaseOutput, PhaseRunner};

/// Bytes of a streamed stdin/stdout per frame.
const CHUNK: usize = 1 << 20;
/// Buffer between the control channel and a phase's streams.
const STREAM_BUFFER: usize = 4 << 20;
/// How long a worker whose control channel closed has to exit before it
/// is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long past its phase's wall time a worker may take to report before
/// the agent kills it as stuck.
const WATCHDOG_GRACE: Duration = Duration::from_secs(60);
/// The first wait of an account after a phase of its crashed a worker.
const CRASH_BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The longest such wait.
const CRASH_BACKOFF_MAX: Duration = Duration::from_secs(16);
/// An account with no crash for this long starts again from the minimum.
const CRASH_FORGET: Duration = Duration::from_secs(32);
/// Accounts remembered at once (the map is pruned beyond this).
const CRASH_ACCOUNTS: usize = 4096;
/// The argument naming the builtin socket.
pub const BUILTINS_ARG: &str = "--builtins";
/// The worker argument naming the inherited descriptor that is the
/// spawning process's stdout ([`WorkerProgram::share_stdout`]).
pub const STDOUT_FD_ARG: &str = "--stdout-fd";

/// The program a pool starts its workers with.
#[derive(Debug, Clone)]
pub struct WorkerProgram {
    /// The executable (for `tidepool`, `std::env::current_exe()`).
    pub program: PathBuf,
    /// Its arguments (for `tidepool`, `["compute-worker"]`);
    /// [`BUILTINS_ARG`] and the socket are appended when builtins are served.
    pub args: Vec<String>,
    /// The worker's whole environment: the agent's own is not inherited,
    /// so nothing the agent was given (a cluster key file's path, tokens,
    /// credentials of its operator) reaches a process that runs guests.
    pub env: Vec<(String, String)>,
    /// A duplicate of this process's stdout that workers inherit (see
    /// [`WorkerProgram::share_stdout`]).
    pub stdout: Option<Arc<OwnedFd>>,
}

impl WorkerProgram {
    /// Lets this program's workers write [`PhaseOutput::OwnStdout`]
    /// straight to this process's stdout. The duplicate is inheritable, so
    /// every child this process spawns from now on gets it: meant for a
    /// process whose only children are its workers (`tidepool exec`).
    ///
    /// # Errors
    /// The duplication failing (no stdout, out of descriptors).
    pub fn share_stdout(&mut self) -> std::io::Result<()> {
        use rustix::io::{FdFlags, fcntl_dupfd_cloexec, fcntl_setfd};
        // Above the standard three, so the worker's own stdio is untouched.
        let fd = fcntl_dupfd_cloexec(std::io::stdout(), 3)?;
        fcntl_setfd(&fd, FdFlags::empty())?;
        self.stdout = Some(Arc::new(fd));
        Ok(())
    }
}

/// Stdin and stdout of a phase, as told to the worker.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum WireIn {
    None,
    File(PathBuf),
    Stream,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum WireOut {
    Discard,
    File(PathBuf),
    Stream,
    /// The descriptor given with [`STDOUT_FD_ARG`].
    Shared,
}

/// A [`PhaseJob`] on the wire.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct WireJob {
    exec: String,
    stdin: WireIn,
    input_dir: Option<InputDir>,
    read_only_dirs: Vec<InputDir>,
    scratch: PathBuf,
    env: Vec<(String, String)>,
    assets: HashMap<String, PathBuf>,
    limits: Limits,
    stdout: WireOut,
    #[serde(default)]
    determinism: sandbox::Determinism,
}

/// The worker's answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum WireResult {
    Report(RunReport),
    Script(String),
    Host(String),
}

/// Splits a job into what the worker is told and the streams the agent
/// relays.
type Streams = (
    Option<Box<dyn AsyncRead + Send + Unpin>>,
    Option<Box<dyn AsyncWrite + Send + Unpin>>,
);

fn to_wire(job: PhaseJob) -> (WireJob, Streams) {
    let (stdin, rd) = match job.stdin {
        PhaseInput::None => (WireIn::None, None),
        PhaseInput::File(p) => (WireIn::File(p), None),
        PhaseInput::Stream(r) => (WireIn::Stream, Some(r)),
    };
    let (stdout, wr) = match job.stdout {
        PhaseOutput::Discard => (WireOut::Discard, None),
        PhaseOutput::File(p) => (WireOut::File(p), None),
        PhaseOutput::Stream(w) => (WireOut::Stream, Some(w)),
        PhaseOutput::OwnStdout => (WireOut::Shared, None),
    };
    let wire = WireJob {
        exec: job.exec,
        stdin,
        input_dir: job.input_dir,
        read_only_dirs: job.read_only_dirs,
        scratch: job.scratch,
        env: job.env,
        assets: job.assets,
        limits: job.limits,
        stdout,
        determinism: job.determinism,
    };
    (wire, (rd, wr))
}

/// The pool of an agent (or of `tidepool exec`).
pub struct WorkerPool {
    program: WorkerProgram,
    /// Serves the builtins of the workers' tasks (`None`: no builtins).
    builtins_from: Option<Sandbox>,
    builtins: OnceCell<Arc<BuiltinServer>>,
    slots: Semaphore,
    idle: Mutex<Vec<Worker>>,
    crashes: Mutex<HashMap<String, Crashes>>,
}

/// An account's recent worker crashes on one pool.
#[derive(Debug, Clone, Copy)]
struct Crashes {
    /// Crashes in a row (none more than [`CRASH_FORGET`] apart).
    count: u32,
    last: Instant,
    /// Its phases wait until then.
    until: Instant,
}

/// The wait after the `count`th crash in a row.
fn backoff(count: u32) -> Duration {
    let doublings = count.saturating_sub(1).min(16);
    CRASH_BACKOFF_MIN
        .saturating_mul(1 << doublings)
        .min(CRASH_BACKOFF_MAX)
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl WorkerPool {
    /// A pool of at most `size` workers of `program`; their tasks' builtin
    /// calls are served by the builtins of `builtins` (the agent's
    /// sandbox, with [`crate::builtins::install`]ed tools), if any.
    pub fn new(program: WorkerProgram, size: usize, builtins: Option<Sandbox>) -> WorkerPool {
        WorkerPool {
            program,
            builtins_from: builtins,
            builtins: OnceCell::new(),
            slots: Semaphore::new(size.max(1)),
            idle: Mutex::new(Vec::new()),
            crashes: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a crash of a phase of `account`.
    fn crashed(&self, account: &str) {
        let now = Instant::now();
        let mut map = self.crashes.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CRASH_ACCOUNTS && !map.contains_key(account) {
            map.retain(|_, c| now.duration_since(c.last) < CRASH_FORGET);
        }
        if map.len() >= CRASH_ACCOUNTS && !map.contains_key(account) {
            // Still full of recent crashers: forget the one waiting least.
            let soonest = map
                .iter()
                .min_by_key(|(_, c)| c.until)
                .map(|(k, _)| k.clone());
            if let Some(k) = soonest {
                map.remove(&k);
            }
        }
        let c = map.entry(account.to_owned()).or_insert(Crashes {
            count: 0,
            last: now,
            until: now,
        });
        if now.duration_since(c.last) >= CRASH_FORGET {
            c.count = 0;
        }
        c.count = c.count.saturating_add(1);
        c.last = now;
        c.until = now + backoff(c.count);
        tracing::warn!(
            account,
            crashes = c.count,
            wait_ms = backoff(c.count).as_millis() as u64,
            "backing off an account whose phases crash their worker"
        );
    }

    async fn server(&self) -> Result<Option<&Arc<BuiltinServer>>, PhaseError> {
        let Some(sb) = &self.builtins_from else {
            return Ok(None);
        };
        let s = self
            .builtins
            .get_or_try_init(|| async { BuiltinServer::start(sb.clone()) })
            .await
            .map_err(|e| PhaseError::Host(format!("builtin socket: {e}")))?;
        Ok(Some(s))
    }

    /// An idle live worker, or a new one.
    async fn take(&self) -> Result<Worker, PhaseError> {
        loop {
            let w = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some(mut w) = w else { break };
            if matches!(w.child.try_wait(), Ok(None)) {
                return Ok(w);
            }
            tracing::warn!("an idle task worker died; replacing it");
        }
        let socket = self.server().await?.map(|s| s.socket().to_path_buf());
        let mut cmd = Command::new(&self.program.program);
        cmd.args(&self.program.args)
            .env_clear()
            .envs(self.program.env.iter().map(|(k, v)| (k, v)));
        if let Some(s) = socket {
            cmd.arg(BUILTINS_ARG).arg(s);
        }
        if let Some(fd) = &self.program.stdout {
            cmd.arg(STDOUT_FD_ARG).arg(fd.as_raw_fd().to_string());
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            PhaseError::Host(format!(
                "starting task worker {}: {e}",
                self.program.program.display()
            ))
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(PhaseError::Host("task worker has no stdio".into()));
        };
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }
}

#[async_trait::async_trait]
impl PhaseRunner for WorkerPool {
    async fn admit(&self, account: &str) {
        loop {
            let until = self
                .crashes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(account)
                .map(|c| c.until);
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => return,
            }
        }
    }

    async fn run(&self, job: PhaseJob) -> Result<RunReport, PhaseError> {
        let account = job.account.clone();
        let r = self.run_in_worker(job).await;
        if let (Err(PhaseError::Crashed(_)), Some(a)) = (&r, &account) {
            self.crashed(a);
        }
        r
    }
}

impl WorkerPool {
    async fn run_in_worker(&self, job: PhaseJob) -> Result<RunReport, PhaseError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| PhaseError::Host(e.to_string()))?;
        let token = job
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == TASK_ENV)
            .map(|(_, v)| v.clone());
        let _registered = match (token, self.server().await?) {
            (Some(t), Some(s)) => Some(
                s.register(
                    &t,
                    TaskFiles {
                        scratch: job.scratch.clone(),
                        read_only: job
                            .input_dir
                            .iter()
                            .chain(&job.read_only_dirs)
                            .cloned()
                            .collect(),
                    },
                ),
            ),
            _ => None,
        };
        let stderr_cap = job.limits.stderr_bytes;
        let wall_time = job.limits.wall_time;
        let (wire, streams) = to_wire(job);
        let run = Frame::json(Kind::Run, &wire).map_err(|e| PhaseError::Host(e.to_string()))?;
        let mut w = self.take().await?;
        if write_frame(&mut w.stdin, &run).await.is_err() {
            // Died between the liveness check and now: the phase never
            // reached it, so a fresh worker runs it.
            let _ = w.end().await;
            w = self.take().await?;
            if write_frame(&mut w.stdin, &run).await.is_err() {
                return Err(PhaseError::Crashed(w.end().await));
            }
        }
        let exchanged = tokio::time::timeout(wall_time.saturating_add(WATCHDOG_GRACE), async {
            w.exchange(streams, stderr_cap).await
        })
        .await;
        let Ok(exchanged) = exchanged else {
            // The worker enforces the wall time itself; one that has not
            // answered well after it is stuck, and its slot is not lost.
            w.kill().await;
            let why = format!(
                "task worker did not answer within the phase's wall time (+{} s) and was killed",
                WATCHDOG_GRACE.as_secs()
            );
            tracing::warn!(%why, "task worker stuck");
            return Err(PhaseError::Crashed(why));
        };
        match exchanged {
            Ok(r) => {
                self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(w);
                match r {
                    WireResult::Report(r) => Ok(r),
                    WireResult::Script(s) => Err(PhaseError::Script(s)),
                    WireResult::Host(s) => Err(PhaseError::Host(s)),
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "task worker control channel failed");
                let why = w.end().await;
                tracing::warn!(%why, "task worker crashed");
                Err(PhaseError::Crashed(why))
            }
        }
    }
}

/// One worker process and its control channel.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Worker {
    /// After `Run`: relays the streams until the report.
    async fn exchange(
        &mut self,
        streams: Streams,
        stderr_cap: u64,
    ) -> Result<WireResult, FrameError> {
        let (stdin, stdout) = streams;
        let Worker {
            stdin: ctl_in,
            stdout: ctl_out,
            ..
        } = self;
        let stop = CancellationToken::new();
        let feed = async {
            let Some(mut r) = stdin else { return };
            let mut buf = vec![0u8; sandbox::pipe::FIRST_COPY_BUFFER];
            loop {
                // Stop only between frames: the channel stays whole for the
                // next phase (stale stdin frames are skipped by the worker).
                let n = tokio::select! {
                    biased;
                    () = stop.cancelled() => return,
                    n = r.read(&mut buf) => n,
                };
                let f = match n {
                    Ok(0) | Err(_) => Frame::empty(Kind::StdinEnd),
                    Ok(n) => {
                        let f = Frame::new(Kind::Stdin, buf[..n].to_vec());
                        sandbox::pipe::grow_copy_buffer(&mut buf, n, CHUNK);
                        f
                    }
                };
                let end = f.kind == Kind::StdinEnd;
                if write_frame(ctl_in, &f).await.is_err() || end {
                    return;
                }
            }
        };
        let read = async {
            let mut out = stdout;
            let mut stderr = Vec::new();
            let r = loop {
                let Some(f) = read_frame(ctl_out).await? else {
                    break Err(FrameError::Truncated);
                };
                match f.kind {
                    Kind::Stdout => {
                        if let Some(w) = &mut out
                            && w.write_all(&f.payload).await.is_err()
                        {
                            // The caller stopped reading; the phase's stdout
                            // limit still bounds what the worker sends.
                            out = None;
                        }
                    }
                    Kind::Stderr => {
                        // The worker keeps stderr within its limit already;
                        // this only bounds a worker gone wrong.
                        let room = usize::try_from(stderr_cap)
                            .unwrap_or(usize::MAX)
                            .saturating_sub(stderr.len());
                        stderr.extend_from_slice(&f.payload[..f.payload.len().min(room)]);
                    }
                    Kind::Report => {
                        break f.parse::<WireResult>().map(|mut r| {
                            if let WireResult::Report(r) = &mut r {
                                r.stderr = std::mem::take(&mut stderr);
                            }
                            r
                        });
                    }
                    _ => break Err(FrameError::BadPayload("worker frame")),
                }
            };
            if let Some(w) = &mut out {
                let _ = w.flush().await;
            }
            stop.cancel();
            r
        };
        let ((), r) = tokio::join!(feed, read);
        r
    }

    /// Kills the worker and reaps it.
    async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Ends the worker (killing it if it has not exited) and says how it
    /// ended.
    async fn end(mut self) -> String {
        drop(self.stdin);
        let status = match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(s) => s,
            Err(_) => {
                let _ = self.child.start_kill();
                self.child.wait().await
            }
        };
        match status {
            Ok(s) => format!("task worker crashed: {}", describe(s)),
            Err(e) => format!("task worker crashed: {e}"),
        }
    }
}

/// "signal 6 (SIGABRT)", "exit status 3".
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    if let Some(sig) = status.signal() {
        let name = match sig {
            1 => "SIGHUP",
            2 => "SIGINT",
            3 => "SIGQUIT",
            4 => "SIGILL",
            5 => "SIGTRAP",
            6 => "SIGABRT",
            7 => "SIGBUS",
            8 => "SIGFPE",
            9 => "SIGKILL",
            11 => "SIGSEGV",
            13 => "SIGPIPE",
            15 => "SIGTERM",
            _ => "unknown signal",
        };
        return format!("signal {sig} ({name})");
    }
    match status.code() {
        Some(c) => format!("exit status {c}"),
        None => "unknown exit".into(),
    }
}

/// A worker's main loop: reads phases from stdin, runs them in `sandbox`
/// (whose builtins are [`crate::proxy`]s), writes reports to stdout. Returns
/// when stdin ends (the agent is gone or let it go).
pub async fn serve(sandbox: Sandbox, shared_stdout: Option<OwnedFd>) -> Result<(), FrameError> {
    // Frames are read by one task, so a run ending never cuts a frame.
    let (ftx, mut frames) = mpsc::channel::<Result<Frame, FrameError>>(16);
    tokio::spawn(async move {
        let mut input = tokio::io::stdin();
        loop {
            let f = match read_frame(&mut input).await {
                Ok(Some(f)) => Ok(f),
                Ok(None) => return,
                Err(e) => Err(e),
            };
            let stop = f.is_err();
            if ftx.send(f).await.is_err() || stop {
                return;
            }
        }
    });
    let (otx, mut orx) = mpsc::channel::<Frame>(16);
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(f) = orx.recv().await {
            if write_frame(&mut out, &f).await.is_err() {
                return;
            }
        }
    });
    let warm = sandbox.clone();
    tokio::spawn(async move {
        let _ = warm.precompile().await;
    });
    let r = async {
        while let Some(f) = frames.recv().await {
            let f = f?;
            match f.kind {
                Kind::Run => {
                    let job: WireJob = f.parse()?;
                    let mut result =
                        run_one(&sandbox, job, shared_stdout.as_ref(), &mut frames, &otx).await?;
                    // stderr (up to its limit, which may be large) goes in
                    // chunks ahead of the report.
                    if let WireResult::Report(r) = &mut result {
                        for c in std::mem::take(&mut r.stderr).chunks(CHUNK) {
                            if otx.send(Frame::new(Kind::Stderr, c)).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    let report = Frame::json(Kind::Report, &result)?;
                    if otx.send(report).await.is_err() {
                        return Ok(());
                    }
                }
                // The rest of a stream the last phase did not read.
                Kind::Stdin | Kind::StdinEnd => {}
                _ => return Err(FrameError::BadPayload("agent frame")),
            }
        }
        Ok::<(), FrameError>(())
    }
    .await;
    drop(otx);
    let _ = writer.await;
    r
}

/// Takes the descriptor a worker was given with [`STDOUT_FD_ARG`]; call
/// once, at start, before anything else opens files.
///
/// # Errors
/// `fd` is one of the standard three or not open.
pub fn inherited_stdout(fd: i32) -> std::io::Result<OwnedFd> {
    if fd < 3 || !std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists() {
        return Err(std::io::Error::other(format!(
            "{STDOUT_FD_ARG} {fd}: not an inherited descriptor"
        )));
    }
    // SAFETY: `fd` is open (checked above) and was inherited from the
    // process that spawned us for this purpose alone; nothing else in this
    // process knows its number, so this is its only owner.
    #[allow(unsafe_code)]
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    Ok(owned)
}

/// Runs one phase, relaying its streams.
async fn run_one(
    sandbox: &Sandbox,
    job: WireJob,
    shared_stdout: Option<&OwnedFd>,
    frames: &mut mpsc::Receiver<Result<Frame, FrameError>>,
    out: &mpsc::Sender<Frame>,
) -> Result<WireResult, FrameError> {
    #[cfg(debug_assertions)]
    crate::runner::test_fault(&job.exec);
    let mut pj = PhaseJob::new(job.exec, job.scratch);
    let mut stdin_w = None;
    pj.stdin = match job.stdin {
        WireIn::None => PhaseInput::None,
        WireIn::File(p) => PhaseInput::File(p),
        WireIn::Stream => {
            let (w, r) = tokio::io::duplex(STREAM_BUFFER);
            stdin_w = Some(w);
            PhaseInput::Stream(Box::new(r))
        }
    };
    let mut stdout_pump = None;
    pj.stdout = match job.stdout {
        WireOut::Discard => PhaseOutput::Discard,
        WireOut::File(p) => PhaseOutput::File(p),
        WireOut::Stream => {
            let (w, mut r) = tokio::io::duplex(STREAM_BUFFER);
            let out = out.clone();
            stdout_pump = Some(tokio::spawn(async move {
                let mut buf = vec![0u8; sandbox::pipe::FIRST_COPY_BUFFER];
                while let Ok(n) = r.read(&mut buf).await {
                    if n == 0
                        || out
                            .send(Frame::new(Kind::Stdout, buf[..n].to_vec()))
                            .await
                            .is_err()
                    {
                        return;
                    }
                    sandbox::pipe::grow_copy_buffer(&mut buf, n, CHUNK);
                }
            }));
            PhaseOutput::Stream(Box::new(w))
        }
        WireOut::Shared => {
            let fd = match shared_stdout.map(OwnedFd::try_clone) {
                Some(Ok(fd)) => fd,
                Some(Err(e)) => return Ok(WireResult::Host(format!("shared stdout: {e}"))),
                None => return Ok(WireResult::Host("no shared stdout was given".into())),
            };
            PhaseOutput::Stream(Box::new(tokio::fs::File::from_std(std::fs::File::from(fd))))
        }
    };
    pj.input_dir = job.input_dir;
    pj.read_only_dirs = job.read_only_dirs;
    pj.env = job.env;
    pj.assets = job.assets;
    pj.limits = job.limits;
    pj.determinism = job.determinism;

    let run = sandbox.run_phase(pj.into_spec());
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            f = frames.recv() => {
                let Some(f) = f else {
                    // The agent is gone: nobody wants this run.
                    return Err(FrameError::Truncated);
                };
                let f = f?;
                match f.kind {
                    Kind::Stdin => {
                        if let Some(w) = &mut stdin_w {
                            tokio::select! {
                                r = w.write_all(&f.payload) => if r.is_err() { stdin_w = None },
                                r = &mut run => break r,
                            }
                        }
                    }
                    Kind::StdinEnd => stdin_w = None,
                    _ => return Err(FrameError::BadPayload("frame during a run")),
                }
            }
        }
    };
    drop(stdin_w);
    if let Some(p) = stdout_pump {
        let _ = p.await;
    }
    Ok(match result {
        Ok(r) => WireResult::Report(r),
        Err(sandbox::SandboxError::Script(e)) => WireResult::Script(e.to_string()),
        Err(e) => WireResult::Host(e.to_string()),
    })
}
