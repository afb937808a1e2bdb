//! The in-task builtins across the worker-process boundary.
//!
//! The real builtins ([`crate::builtins`]) need the agent's metadata and
//! node client, which only the agent's process holds. In a task worker
//! every builtin is a [`ProxyBuiltin`]: a call opens a connection to the
//! agent's [`BuiltinServer`] (a unix socket in a fresh directory of mode
//! `0700` under the temporary directory), sends the call (name, argv,
//! environment, working directory) with the task's token, relays stdin to
//! the agent and the agent's stdout/stderr back, and ends with the exit
//! status (frames of [`crate::frame`]).
//!
//! Guarantees:
//! - Only the agent's user can connect (directory mode, and the peer's uid
//!   is checked), and a call acts only for a task registered under the
//!   unguessable token it presents: the token decides the task's identity
//!   (its owner, its files), never anything else the worker sends. An
//!   unknown token gets the builtin's "only available inside a job task".
//! - The builtin runs in the agent with the task's own directories, so
//!   `-f FILE` options see exactly what the phase sees.
//! - A connection lost before the exit status (the worker died, or the
//!   run was stopped) stops the builtin there: an upload cut off that way
//!   is never committed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandbox::pipe::{self, PipeReader};
use sandbox::{BuiltinCall, BuiltinOutcome, BuiltinRequest, HostBuiltin, InputDir, Sandbox};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio_util::sync::CancellationToken;

use crate::builtins::TASK_ENV;
use crate::frame::{Frame, FrameError, Kind, read_frame, write_frame};

/// Bytes of stdio per frame.
const CHUNK: usize = 64 * 1024;
/// How long a new connection may take to say what it calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A builtin call as sent by a worker.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct WireCall {
    token: String,
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    /// Whether the command has a stdin.
    stdin: bool,
    /// What is left of the task's disk budget in the worker's run.
    disk_remaining: u64,
}

/// The directories of a task running in a worker, for its builtin calls.
#[derive(Debug, Clone)]
pub struct TaskFiles {
    /// The phase's scratch directory.
    pub scratch: PathBuf,
    /// Its read-only mounts (input directory, assets).
    pub read_only: Vec<InputDir>,
}

type Tasks = Arc<Mutex<HashMap<String, TaskFiles>>>;

/// The agent's end: serves builtin calls of its workers' tasks with the
/// real builtins of `sandbox`.
#[derive(Debug)]
pub struct BuiltinServer {
    dir: PathBuf,
    socket: PathBuf,
    tasks: Tasks,
    accept: tokio::task::JoinHandle<()>,
}

/// A task's registration; dropping it ends the task's calls.
#[derive(Debug)]
pub struct Registered {
    tasks: Tasks,
    token: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.token);
    }
}

impl BuiltinServer {
    /// Listens on a fresh private socket; must run inside tokio.
    pub fn start(sandbox: Sandbox) -> std::io::Result<Arc<BuiltinServer>> {
        use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
        // Short path: unix socket paths are limited to ~100 bytes.
        let dir = std::env::temp_dir().join(format!("tidepool-agent-{}", uuid::Uuid::new_v4()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let uid = std::fs::metadata(&dir)?.uid();
        let socket = dir.join("builtins.sock");
        let listener = tokio::net::UnixListener::bind(&socket)?;
        let tasks: Tasks = Arc::default();
        let accept = tokio::spawn({
            let tasks = tasks.clone();
            async move {
                loop {
                    let conn = match listener.accept().await {
                        Ok((c, _)) => c,
                        Err(e) => {
                            tracing::warn!(error = %e, "builtin socket accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if !conn.peer_cred().is_ok_and(|c| c.uid() == uid) {
                        continue;
                    }
                    let (sandbox, tasks) = (sandbox.clone(), tasks.clone());
                    tokio::spawn(async move {
                        if let Err(e) = session(&sandbox, &tasks, conn).await {
                            tracing::debug!(error = %e, "builtin call ended early");
                        }
                    });
                }
            }
        });
        Ok(Arc::new(BuiltinServer {
            dir,
            socket,
            tasks,
            accept,
        }))
    }

    /// The socket workers connect to.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// Lets calls presenting `token` act for the task with `files`.
    pub fn register(&self, token: &str, files: TaskFiles) -> Registered {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_owned(), files);
        Registered {
            tasks: self.tasks.clone(),
            token: token.to_owned(),
        }
    }
}

impl Drop for BuiltinServer {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

async fn send(w: &Writer, f: &Frame) -> Result<(), FrameError> {
    write_frame(&mut *w.lock().await, f).await
}

/// One call, agent side.
async fn session(sandbox: &Sandbox, tasks: &Tasks, conn: UnixStream) -> Result<(), FrameError> {
    let (mut rd, wr) = conn.into_split();
    let wr: Writer = Arc::new(tokio::sync::Mutex::new(wr));
    let first = tokio::time::timeout(CALL_TIMEOUT, read_frame(&mut rd))
        .await
        .map_err(|_| FrameError::Truncated)??;
    let Some(first) = first.filter(|f| f.kind == Kind::Call) else {
        return Err(FrameError::BadPayload("call"));
    };
    let call: WireCall = first.parse()?;
    let files = tasks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&call.token)
        .cloned();
    let Some(files) = files else {
        let msg = format!("{}: only available inside a job task\n", call.name);
        send(&wr, &Frame::new(Kind::Stderr, msg.into_bytes())).await?;
        return send(&wr, &Frame::exit(1)).await;
    };
    // The token presented is the identity, whatever the environment says.
    let mut env = call.env;
    env.retain(|(k, _)| k != TASK_ENV);
    env.push((TASK_ENV.to_owned(), call.token));

    let (in_w, in_r) = pipe::pipe(pipe::DEFAULT_CAPACITY);
    let (out_w, out_r) = pipe::pipe(pipe::OUTPUT_CAPACITY);
    let (err_w, err_r) = pipe::pipe(pipe::DEFAULT_CAPACITY);
    let out_closed = CancellationToken::new();
    let lost = CancellationToken::new();
    // Frames are read by a task of their own (a frame read is not
    // cancel-safe); the loop below waits on them and on the builtin.
    let (ftx, mut frames) = tokio::sync::mpsc::channel(4);
    let frame_reader = tokio::spawn(async move {
        loop {
            let f = read_frame(&mut rd).await;
            let end = !matches!(f, Ok(Some(_)));
            if ftx.send(f).await.is_err() || end {
                return;
            }
        }
    });
    let _frame_reader = AbortOnDrop(frame_reader);
    let reader = tokio::spawn({
        let (out_closed, lost, wr) = (out_closed.clone(), lost.clone(), wr.clone());
        let mut in_w = call.stdin.then_some(in_w);
        async move {
            // stdin is fetched from the worker only as the builtin reads it
            // (one chunk per wait on an empty pipe), so a builtin that does
            // not read leaves the phase's stdin to the commands after it.
            let mut asked = false;
            loop {
                let want = async {
                    match &in_w {
                        Some(w) if !asked => w.wanted().await,
                        _ => std::future::pending().await,
                    }
                };
                tokio::select! {
                    wanted = want => {
                        if !wanted {
                            in_w = None;
                        } else if send(&wr, &Frame::empty(Kind::StdinWant)).await.is_ok() {
                            asked = true;
                        } else {
                            lost.cancel();
                            return;
                        }
                    }
                    f = frames.recv() => match f {
                        Some(Ok(Some(f))) => match f.kind {
                            Kind::Stdin => {
                                asked = false;
                                if let Some(w) = &in_w
                                    && !w.write_all(&f.payload).await
                                {
                                    in_w = None;
                                }
                            }
                            Kind::StdinEnd => in_w = None,
                            Kind::StdoutClosed => out_closed.cancel(),
                            _ => {
                                lost.cancel();
                                return;
                            }
                        },
                        _ => {
                            lost.cancel();
                            return;
                        }
                    },
                }
            }
        }
    });
    let _reader = AbortOnDrop(reader);
    let name = call.name.clone();
    let req = BuiltinRequest {
        name: call.name,
        args: call.args,
        env,
        cwd: call.cwd,
        scratch: files.scratch,
        read_only: files.read_only,
        stdin: call.stdin.then_some(in_r),
        stdout: out_w,
        stderr: err_w,
        disk_remaining: call.disk_remaining,
    };
    let pumps = async {
        tokio::join!(
            pump(out_r, Kind::Stdout, &wr, out_closed),
            pump(err_r, Kind::Stderr, &wr, CancellationToken::new()),
        )
    };
    let run = async {
        let (code, _) = tokio::join!(sandbox.run_builtin(req), pumps);
        code
    };
    let code = tokio::select! {
        c = run => c,
        // The worker is gone: stop here, so nothing half-done is committed.
        () = lost.cancelled() => return Ok(()),
    };
    let outcome = match code {
        Some(o) => o,
        None => {
            let msg = format!("{name}: command not found\n");
            send(&wr, &Frame::new(Kind::Stderr, msg.into_bytes())).await?;
            BuiltinOutcome {
                status: 127,
                disk_charged: 0,
            }
        }
    };
    // What the builtin wrote for the task goes back to the worker's run,
    // so the task keeps one disk budget across both processes.
    send(
        &wr,
        &Frame::exit_charged(outcome.status, outcome.disk_charged),
    )
    .await
}

/// Relays `r` as `kind` frames until it ends (every writer gone) or `stop`.
async fn pump(r: PipeReader, kind: Kind, wr: &Writer, stop: CancellationToken) {
    loop {
        let chunk = tokio::select! {
            c = r.read_chunk(CHUNK) => c,
            () = stop.cancelled() => None,
        };
        let Some(chunk) = chunk else { return };
        if send(wr, &Frame::new(kind, chunk.to_vec())).await.is_err() {
            return;
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The worker's end: one per builtin name, calling the agent at `socket`
/// (`None`: no agent, e.g. `tidepool exec`; calls then fail like outside a
/// task).
#[derive(Debug)]
pub struct ProxyBuiltin {
    name: String,
    socket: Option<PathBuf>,
}

impl ProxyBuiltin {
    /// A proxy for the agent's builtin `name`.
    pub fn new(name: impl Into<String>, socket: Option<PathBuf>) -> ProxyBuiltin {
        ProxyBuiltin {
            name: name.into(),
            socket,
        }
    }
}

/// Adds a proxy for every in-task tool to `sandbox`.
pub fn install_proxies(mut sandbox: Sandbox, socket: Option<PathBuf>) -> Sandbox {
    for name in crate::builtins::TOOL_NAMES {
        let b = Arc::new(ProxyBuiltin::new(name, socket.clone()));
        sandbox = sandbox.with_builtin(name, b);
    }
    sandbox
}

#[async_trait::async_trait]
impl HostBuiltin for ProxyBuiltin {
    async fn run(&self, call: BuiltinCall<'_>) -> i32 {
        let token = call
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == TASK_ENV)
            .map(|(_, v)| v.clone());
        let (Some(token), Some(socket)) = (token, &self.socket) else {
            return fail(&call, &self.name, "only available inside a job task").await;
        };
        let Ok(conn) = UnixStream::connect(socket).await else {
            return fail(&call, &self.name, "cannot reach the task agent").await;
        };
        let (mut rd, wr) = conn.into_split();
        let wr: Writer = Arc::new(tokio::sync::Mutex::new(wr));
        let wire = WireCall {
            token,
            name: self.name.clone(),
            args: call.args.to_vec(),
            env: call.env.to_vec(),
            cwd: call.cwd.to_owned(),
            stdin: call.stdin().is_some(),
            disk_remaining: call.disk_budget().remaining(),
        };
        let sent = match Frame::json(Kind::Call, &wire) {
            Ok(f) => send(&wr, &f).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            return fail(&call, &self.name, &format!("calling the task agent: {e}")).await;
        }
        let stdin = call.stdin().cloned();
        // The agent asks for stdin chunk by chunk as its builtin reads.
        let (want_tx, mut wants) = tokio::sync::mpsc::channel::<()>(4);
        let feed = async {
            let Some(s) = stdin else { return };
            while wants.recv().await.is_some() {
                let f = match s.read_chunk(CHUNK).await {
                    Some(c) => Frame::new(Kind::Stdin, c.to_vec()),
                    None => Frame::empty(Kind::StdinEnd),
                };
                let end = f.kind == Kind::StdinEnd;
                if send(&wr, &f).await.is_err() || end {
                    return;
                }
            }
        };
        let recv = async {
            let mut out_open = true;
            loop {
                let f = match read_frame(&mut rd).await {
                    Ok(Some(f)) => f,
                    _ => return None,
                };
                match f.kind {
                    Kind::Stdout => {
                        if out_open && !call.stdout().write_all(&f.payload).await {
                            out_open = false;
                            let _ = send(&wr, &Frame::empty(Kind::StdoutClosed)).await;
                        }
                    }
                    Kind::Stderr => {
                        call.stderr().write_all(&f.payload).await;
                    }
                    Kind::Exit => {
                        let status = f.exit_status().ok()?;
                        call.charge_disk_written_elsewhere(f.exit_disk_charged().unwrap_or(0));
                        return Some(status);
                    }
                    Kind::StdinWant => {
                        // Full only if the agent asks faster than stdin
                        // comes, which it does not (one ask per chunk).
                        let _ = want_tx.try_send(());
                    }
                    _ => return None,
                }
            }
        };
        tokio::pin!(feed, recv);
        let mut fed = false;
        let status = loop {
            tokio::select! {
                s = &mut recv => break s,
                () = &mut feed, if !fed => fed = true,
            }
        };
        match status {
            Some(s) => s,
            None => fail(&call, &self.name, "lost the connection to the task agent").await,
        }
    }
}

async fn fail(call: &BuiltinCall<'_>, name: &str, msg: &str) -> i32 {
    call.stderr()
        .write_all(format!("{name}: {msg}\n").as_bytes())
        .await;
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandbox::{Output, PhaseSpec, SandboxConfig};

    /// Upper-cases stdin to stdout, writes its arguments and the task
    /// token it was run with to stderr, exits 3.
    struct Upper;

    #[async_trait::async_trait]
    impl HostBuiltin for Upper {
        async fn run(&self, call: BuiltinCall<'_>) -> i32 {
            if let Some(i) = call.stdin() {
                while let Some(c) = i.read_chunk(16).await {
                    call.stdout().write_all(&c.to_ascii_uppercase()).await;
                }
            }
            let token = call
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == TASK_ENV)
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let line = format!("args={} token={token}\n", call.args[1..].join(","));
            call.stderr().write_all(line.as_bytes()).await;
            3
        }
    }

    async fn run(
        worker: &Sandbox,
        scratch: &std::path::Path,
        exec: &str,
        env: &[(&str, &str)],
    ) -> sandbox::RunReport {
        let mut spec = PhaseSpec::new(exec, scratch);
        spec.env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        spec.stdout = Output::Capture;
        worker
            .run_phase(spec)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn builtin_calls_cross_the_socket_as_their_registered_task() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap_or_else(|e| panic!("{e}"));
        let agent = Sandbox::new(SandboxConfig::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_builtin("upper", Arc::new(Upper));
        let server = BuiltinServer::start(agent).unwrap_or_else(|e| panic!("{e}"));
        let socket = server.socket().to_path_buf();
        let worker = Sandbox::new(SandboxConfig::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_builtin("upper", Arc::new(ProxyBuiltin::new("upper", Some(socket))))
            .with_builtin(
                "nosuch",
                Arc::new(ProxyBuiltin::new(
                    "nosuch",
                    Some(server.socket().to_path_buf()),
                )),
            );
        let reg = server.register(
            "tok-1",
            TaskFiles {
                scratch: scratch.clone(),
                read_only: Vec::new(),
            },
        );

        // Streams both ways and the exit status cross; the builtin acts for
        // the task the token names.
        let r = run(
            &worker,
            &scratch,
            "echo hello | upper a b; echo status $?",
            &[(TASK_ENV, "tok-1")],
        )
        .await;
        assert_eq!(r.stdout.as_deref(), Some(&b"HELLO\nstatus 3\n"[..]));
        assert_eq!(String::from_utf8_lossy(&r.stderr), "args=a,b token=tok-1\n");
        // A stdin larger than any buffer on the way crosses whole.
        std::fs::write(scratch.join("big"), "x".repeat(300_000) + "\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let r = run(&worker, &scratch, "upper < big", &[(TASK_ENV, "tok-1")]).await;
        assert_eq!(r.stdout.map(|o| o.len()), Some(300_001));

        // A builtin the agent does not have.
        let r = run(
            &worker,
            &scratch,
            "nosuch; echo status $?",
            &[(TASK_ENV, "tok-1")],
        )
        .await;
        assert_eq!(r.stdout.as_deref(), Some(&b"status 127\n"[..]));

        // An unknown token, no token, and a token no longer registered act
        // for no task.
        for env in [&[(TASK_ENV, "guess")][..], &[]] {
            let r = run(&worker, &scratch, "echo x | upper; echo status $?", env).await;
            assert_eq!(r.stdout.as_deref(), Some(&b"status 1\n"[..]));
            assert!(
                String::from_utf8_lossy(&r.stderr).contains("only available inside a job task")
            );
        }
        drop(reg);
        let r = run(
            &worker,
            &scratch,
            "upper; echo status $?",
            &[(TASK_ENV, "tok-1")],
        )
        .await;
        assert_eq!(r.stdout.as_deref(), Some(&b"status 1\n"[..]));
    }
}
