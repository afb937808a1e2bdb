//! The interpreter: runs a lowered [`Script`] with wasm programs as
//! commands.
//!
//! Shell semantics kept: the exit status is the last pipeline stage's (or
//! the last non-zero one with `set -o pipefail`); every stage of a
//! multi-command pipeline runs in its own subshell, concurrently, connected
//! by bounded pipes; `$(...)` runs in a subshell; `( ... )` keeps variable
//! changes to itself. The interpreter checks the run's deadline and
//! cancellation before every command and yields to the executor, so even a
//! loop of builtins (`while :; do :; done`) is stopped by the time limit.
//!
//! Background jobs (`cmd &`) run as tasks of the run, in a subshell with
//! stdin empty (bash without job control), and are bounded: at most
//! [`MAX_BACKGROUND_JOBS`] run at once in one run (a shell that would start
//! another first waits for its own oldest job; one with none of its own
//! runs the command in the foreground), their wasm instances count against
//! the run's memory limit like any other, and a shell waits for the jobs it
//! started before it ends (their output is part of its output, as with
//! bash's open pipes), so nothing outlives the task. Scripts run by `sh`,
//! `bash`, `.` or by path nest at most [`MAX_SCRIPT_DEPTH`] deep.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::builtins;
use crate::HostBuiltin;
use crate::engine::{ModuleBytes, Runtime};
use crate::fs::FsLayout;
use crate::limits::LimitKind;
use crate::pipe::{self, PipeReader};
use crate::run::{RunShared, TaskGuard, drain_out, pump_in};
use crate::stage::{self, KILLED_STATUS, StageSpec, Stdio};
use shell_syntax::ast::*;

/// Why execution of a script stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `exit N`.
    Exit(i32),
    /// A limit tripped or the run was cancelled.
    Killed,
    /// `break N`: leave this many enclosing loops.
    Break(u32),
    /// `continue N`: go on with the N-th enclosing loop's next iteration.
    Continue(u32),
}

/// How many loops enclose the running command, in this shell. A subshell
/// (a clone) starts outside any loop, as in bash: `break` there only
/// complains.
#[derive(Default)]
pub(crate) struct LoopDepth(pub(crate) u32);

impl Clone for LoopDepth {
    fn clone(&self) -> LoopDepth {
        LoopDepth(0)
    }
}

/// What a loop does after its body (or condition) returned `r`.
enum LoopStep {
    /// Go on with the next iteration.
    Next,
    /// Leave this loop; the shell's status is the loop's.
    Leave,
}

/// Consumes one level of a `break`/`continue`: `Ok` if it stops at this
/// loop, `Err` (one level fewer) to pass on to the loop around it.
fn loop_step(r: Flow) -> Result<LoopStep, Stop> {
    match r {
        Ok(()) | Err(Stop::Continue(1)) => Ok(LoopStep::Next),
        Err(Stop::Break(1)) => Ok(LoopStep::Leave),
        Err(Stop::Break(n)) => Err(Stop::Break(n - 1)),
        Err(Stop::Continue(n)) => Err(Stop::Continue(n - 1)),
        Err(e) => Err(e),
    }
}

pub(crate) type Flow = Result<(), Stop>;

/// Whether a resolved command is the installed interpreter.
enum ModuleKind {
    Python,
    Other,
}

/// What every shell of one run shares.
pub(crate) struct PhaseCtx {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) run: Arc<RunShared>,
    pub(crate) fs: Arc<FsLayout>,
    pub(crate) assets: HashMap<String, PathBuf>,
    pub(crate) host_builtins: Arc<HashMap<String, Arc<dyn HostBuiltin>>>,
    /// Asset bytes read once per run.
    pub(crate) asset_cache: Mutex<HashMap<String, ModuleBytes>>,
    /// Bytes written through `>` redirections, charged to the scratch limit.
    pub(crate) redirected: Arc<std::sync::atomic::AtomicU64>,
    /// Background jobs running now, in every shell of the run.
    pub(crate) background: AtomicUsize,
    /// The last process id handed to a background job (`$!`).
    pub(crate) last_pid: AtomicU32,
}

/// Most background jobs running at once in one run.
pub(crate) const MAX_BACKGROUND_JOBS: usize = 32;
/// Deepest nesting of scripts run by `sh`, `bash`, `.` or by path.
pub(crate) const MAX_SCRIPT_DEPTH: usize = 16;

/// One background job.
pub(crate) struct Job {
    pub(crate) pid: u32,
    /// Running: the task; `None` once its status is known.
    task: Option<TaskGuard<Result<i32, Stop>>>,
    pub(crate) status: Option<i32>,
}

/// A job's place in the run's count of running jobs, given back when the
/// job's task ends or is aborted.
struct Slot(Arc<PhaseCtx>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.background.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The background jobs a shell started. A subshell starts with none
/// (cloning gives an empty table): `wait` waits only for the shell's own
/// children, as in bash. Dropping the table aborts what still runs.
#[derive(Default)]
pub(crate) struct Jobs {
    pub(crate) list: Vec<Job>,
}

impl Clone for Jobs {
    fn clone(&self) -> Jobs {
        Jobs::default()
    }
}

/// One shell (the top level, or a subshell: a clone).
#[derive(Clone)]
pub(crate) struct Shell {
    pub(crate) ctx: Arc<PhaseCtx>,
    pub(crate) vars: HashMap<String, String>,
    pub(crate) exported: BTreeSet<String>,
    pub(crate) cwd: String,
    pub(crate) status: i32,
    pub(crate) errexit: bool,
    pub(crate) pipefail: bool,
    /// Inside an `if`/`while` condition or left of `&&`/`||`: `set -e` is off.
    cond_depth: usize,
    /// `$0` and the positional parameters.
    pub(crate) args: Arc<Vec<String>>,
    pub(crate) jobs: Jobs,
    /// `$!`.
    pub(crate) last_bg: Option<u32>,
    /// Scripts (`sh file`, `. file`, `./x.sh`) this shell runs inside.
    pub(crate) script_depth: usize,
    /// Stdin is no longer the shell's own (a pipe or redirection in the
    /// script gave it): background jobs keep it, as in bash.
    stdin_redirected: bool,
    /// Loops around the running command (for `break`/`continue`).
    pub(crate) loops: LoopDepth,
}

/// The `coreutils` tools, generated by build.rs from the multi-call table.
mod tools {
    include!(concat!(env!("OUT_DIR"), "/coreutils_tools.rs"));
}

pub(crate) fn is_coreutils_tool(name: &str) -> bool {
    tools::TOOLS.binary_search(&name).is_ok()
}

pub(crate) fn coreutils_tools() -> &'static [&'static str] {
    tools::TOOLS
}

impl Shell {
    pub(crate) fn new(ctx: Arc<PhaseCtx>, env: &[(String, String)]) -> Shell {
        let mut vars: HashMap<String, String> = env.iter().cloned().collect();
        vars.entry("PWD".into()).or_insert_with(|| "/".into());
        let exported = vars.keys().cloned().collect();
        Shell {
            ctx,
            vars,
            exported,
            cwd: "/".into(),
            status: 0,
            errexit: false,
            pipefail: false,
            cond_depth: 0,
            args: Arc::new(vec!["sh".into()]),
            jobs: Jobs::default(),
            last_bg: None,
            script_depth: 0,
            stdin_redirected: false,
            loops: LoopDepth::default(),
        }
    }

    /// Runs `s` in this shell as a subshell's body, then waits for the
    /// background jobs it started: its status (or `Err(Killed)`).
    pub(crate) async fn run_to_end(&mut self, s: &Script, io: &Stdio) -> Result<i32, Stop> {
        let r = self.script(s, io).await;
        let status = match r {
            Ok(()) => self.status,
            Err(Stop::Exit(c)) => c,
            Err(Stop::Break(_) | Stop::Continue(_)) => self.status,
            Err(Stop::Killed) => return Err(Stop::Killed),
        };
        self.wait_jobs(None).await?;
        Ok(status)
    }

    /// Starts `ao` as a background job.
    async fn background(&mut self, ao: &AndOr, io: &Stdio) -> Flow {
        self.reap();
        let ctx = self.ctx.clone();
        // Over the run's bound: wait for this shell's oldest running job,
        // or (with none of its own) run the command in the foreground.
        while ctx.background.load(Ordering::Acquire) >= MAX_BACKGROUND_JOBS {
            let oldest = self
                .jobs
                .list
                .iter()
                .find(|j| j.task.is_some())
                .map(|j| j.pid);
            match oldest {
                Some(pid) => {
                    self.wait_jobs(Some(pid)).await?;
                }
                None => {
                    let mut fg = ao.clone();
                    fg.background = false;
                    let bg_io = Stdio {
                        stdin: self.job_stdin(io),
                        stdout: io.stdout.clone(),
                        stderr: io.stderr.clone(),
                    };
                    let mut sub = self.clone();
                    let r = sub.and_or(&fg, &bg_io).await;
                    let status = match r {
                        Ok(()) => sub.status,
                        Err(Stop::Exit(c)) => c,
                        Err(Stop::Break(_) | Stop::Continue(_)) => sub.status,
                        Err(Stop::Killed) => return Err(Stop::Killed),
                    };
                    let pid = ctx.last_pid.fetch_add(1, Ordering::AcqRel) + 1;
                    self.jobs.list.push(Job {
                        pid,
                        task: None,
                        status: Some(status),
                    });
                    self.last_bg = Some(pid);
                    self.status = 0;
                    return Ok(());
                }
            }
        }
        ctx.background.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(ctx.clone());
        let pid = ctx.last_pid.fetch_add(1, Ordering::AcqRel) + 1;
        let mut sub = self.clone();
        let mut job = ao.clone();
        job.background = false;
        let bg_io = Stdio {
            stdin: self.job_stdin(io),
            stdout: io.stdout.clone(),
            stderr: io.stderr.clone(),
        };
        let task = TaskGuard::spawn(async move {
            let _slot = slot;
            let r = sub.and_or(&job, &bg_io).await;
            let status = sub.finish(r).await;
            drop(bg_io);
            status
        });
        self.jobs.list.push(Job {
            pid,
            task: Some(task),
            status: None,
        });
        self.last_bg = Some(pid);
        self.status = 0;
        Ok(())
    }

    /// How a sub-shell (a background job, a pipeline stage) ends, given
    /// what its commands returned: its status (an `exit` in it ends only
    /// the sub-shell, with that code), once every job it started has been
    /// waited for; a kill stops it and its caller.
    async fn finish(&mut self, r: Flow) -> Result<i32, Stop> {
        let status = match r {
            Ok(()) => Ok(self.status),
            Err(Stop::Exit(c)) => Ok(c),
            Err(Stop::Break(_) | Stop::Continue(_)) => Ok(self.status),
            Err(Stop::Killed) => Err(Stop::Killed),
        };
        let waited = self.wait_jobs(None).await;
        waited.and(status)
    }

    /// A background job's stdin: without job control bash gives it
    /// `/dev/null`, unless the script itself redirected or piped the stdin
    /// it would inherit.
    fn job_stdin(&self, io: &Stdio) -> Option<PipeReader> {
        if self.stdin_redirected {
            io.stdin.clone()
        } else {
            None
        }
    }

    /// Forgets jobs whose status was already collected by `wait`.
    fn reap(&mut self) {
        self.jobs
            .list
            .retain(|j| j.status.is_none() || j.task.is_some());
    }

    /// Waits for one job (`Some(pid)`) or all; returns the status of the
    /// one waited for (`None` if it is not this shell's child).
    pub(crate) async fn wait_jobs(&mut self, pid: Option<u32>) -> Result<Option<i32>, Stop> {
        let mut found = None;
        for j in &mut self.jobs.list {
            if pid.is_some_and(|p| p != j.pid) {
                continue;
            }
            if let Some(t) = j.task.take() {
                let r = t.join().await;
                j.status = Some(match r {
                    Some(Ok(s)) => s,
                    Some(Err(Stop::Killed)) => return Err(Stop::Killed),
                    Some(Err(Stop::Exit(c))) => c,
                    Some(Err(Stop::Break(_) | Stop::Continue(_))) => 0,
                    None => KILLED_STATUS,
                });
            }
            found = j.status;
        }
        if pid.is_some() {
            self.jobs.list.retain(|j| pid != Some(j.pid));
        } else {
            self.jobs.list.clear();
        }
        Ok(found)
    }

    /// Kills a job (`kill`): its task is aborted, its wasm instances with
    /// it; `false` if there is no such job.
    pub(crate) fn kill_job(&mut self, pid: u32, signal: i32) -> bool {
        match self.jobs.list.iter_mut().find(|j| j.pid == pid) {
            Some(j) => {
                // A job that already ended keeps its status, as in bash.
                if let Some(t) = j.task.take() {
                    if t.0.is_finished() {
                        j.task = Some(t);
                    } else {
                        drop(t);
                        j.status = Some(128 + signal);
                    }
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn env(&self) -> Vec<(String, String)> {
        self.exported
            .iter()
            .filter_map(|k| self.vars.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    pub(crate) fn script<'a>(&'a mut self, s: &'a Script, io: &'a Stdio) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            for ao in &s.0 {
                if ao.background {
                    self.checkpoint().await?;
                    self.background(ao, io).await?;
                } else {
                    self.and_or(ao, io).await?;
                }
            }
            Ok(())
        })
    }

    async fn and_or(&mut self, ao: &AndOr, io: &Stdio) -> Flow {
        let last = ao.rest.len();
        // Everything but the last pipeline is a condition for `set -e`.
        self.cond_depth += usize::from(last > 0);
        let r = self.pipeline(&ao.first, io).await;
        self.cond_depth -= usize::from(last > 0);
        r?;
        for (i, (conn, p)) in ao.rest.iter().enumerate() {
            let run = match conn {
                Connector::And => self.status == 0,
                Connector::Or => self.status != 0,
            };
            if !run {
                continue;
            }
            let is_cond = i + 1 < last;
            self.cond_depth += usize::from(is_cond);
            let r = self.pipeline(p, io).await;
            self.cond_depth -= usize::from(is_cond);
            r?;
        }
        if self.errexit && self.cond_depth == 0 && self.status != 0 {
            return Err(Stop::Exit(self.status));
        }
        Ok(())
    }

    /// Checks limits and lets other tasks run; called before every command.
    async fn checkpoint(&self) -> Flow {
        if self.ctx.run.check_deadline() {
            return Err(Stop::Killed);
        }
        tokio::task::yield_now().await;
        Ok(())
    }

    async fn pipeline(&mut self, p: &Pipeline, io: &Stdio) -> Flow {
        self.checkpoint().await?;
        if p.cmds.len() == 1 {
            self.command(&p.cmds[0], io).await?;
        } else {
            let n = p.cmds.len();
            let mut ios = Vec::with_capacity(n);
            let mut next_stdin = io.stdin.clone();
            for i in 0..n {
                let (stdout, reader) = if i + 1 == n {
                    (io.stdout.clone(), None)
                } else {
                    let (w, r) = pipe::pipe(pipe::DEFAULT_CAPACITY);
                    (w, Some(r))
                };
                ios.push(Stdio {
                    stdin: next_stdin.take(),
                    stdout,
                    stderr: io.stderr.clone(),
                });
                next_stdin = reader;
            }
            let stages = p.cmds.iter().zip(ios).enumerate().map(|(i, (cmd, sio))| {
                let mut sub = self.clone();
                sub.stdin_redirected |= i > 0;
                async move {
                    let r = sub.command(cmd, &sio).await;
                    let status = sub.finish(r).await;
                    // Close this stage's pipe ends now, so neighbours see EOF/EPIPE.
                    drop(sio);
                    status
                }
            });
            let results = futures::future::join_all(stages).await;
            let mut statuses = Vec::with_capacity(n);
            for r in results {
                statuses.push(r?);
            }
            self.status = if self.pipefail {
                statuses
                    .iter()
                    .rev()
                    .copied()
                    .find(|s| *s != 0)
                    .unwrap_or(0)
            } else {
                statuses.last().copied().unwrap_or(0)
            };
        }
        if p.bang {
            self.status = i32::from(self.status == 0);
        }
        Ok(())
    }

    fn command<'a>(&'a mut self, cmd: &'a Command, io: &'a Stdio) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let (cio, drains) = match self.redirect(&cmd.redirs, io).await {
                Ok(x) => x,
                Err(Stop::Killed) => return Err(Stop::Killed),
                Err(_) => {
                    self.status = 1;
                    return Ok(());
                }
            };
            let redirected = self.stdin_redirected;
            self.stdin_redirected |= cmd
                .redirs
                .iter()
                .any(|r| matches!(r, Redir::Input(_) | Redir::InputText(_)));
            let r = self.command_kind(&cmd.kind, &cio).await;
            self.stdin_redirected = redirected;
            // Output files are complete before the next command can read them.
            drop(cio);
            for d in drains {
                if let Some(Err(e)) = d.join().await {
                    self.complain(io, &format!("write error: {e}")).await;
                    self.status = 1;
                }
            }
            r
        })
    }

    async fn command_kind(&mut self, kind: &CommandKind, io: &Stdio) -> Flow {
        match kind {
            CommandKind::Simple { assigns, words } => self.simple(assigns, words, io).await,
            CommandKind::If { arms, otherwise } => {
                for (cond, then) in arms {
                    self.cond_depth += 1;
                    let r = self.script(cond, io).await;
                    self.cond_depth -= 1;
                    r?;
                    if self.status == 0 {
                        return self.script(then, io).await;
                    }
                }
                match otherwise {
                    Some(e) => self.script(e, io).await,
                    None => {
                        self.status = 0;
                        Ok(())
                    }
                }
            }
            CommandKind::For { var, items, body } => {
                let mut values = Vec::new();
                for w in items {
                    values.extend(self.expand_fields(w, io).await?);
                }
                self.status = 0;
                self.loops.0 += 1;
                let mut r = Ok(());
                for v in values {
                    if let Err(e) = self.checkpoint().await {
                        r = Err(e);
                        break;
                    }
                    self.vars.insert(var.clone(), v);
                    match loop_step(self.script(body, io).await) {
                        Ok(LoopStep::Next) => {}
                        Ok(LoopStep::Leave) => break,
                        Err(e) => {
                            r = Err(e);
                            break;
                        }
                    }
                }
                self.loops.0 -= 1;
                r
            }
            CommandKind::While { cond, body, until } => {
                self.loops.0 += 1;
                let r = self.while_loop(cond, body, *until, io).await;
                self.loops.0 -= 1;
                r
            }
            CommandKind::Group {
                body,
                subshell: false,
            } => self.script(body, io).await,
            CommandKind::Group {
                body,
                subshell: true,
            } => {
                let mut sub = self.clone();
                self.status = sub.run_to_end(body, io).await?;
                Ok(())
            }
            CommandKind::ArithFor {
                init,
                cond,
                step,
                body,
            } => {
                if let Some(e) = init
                    && self.arith_command(e, io).await?.is_none()
                {
                    return Ok(());
                }
                self.loops.0 += 1;
                let r = self
                    .arith_loop(cond.as_ref(), step.as_ref(), body, io)
                    .await;
                self.loops.0 -= 1;
                r
            }
            CommandKind::Arith(e) => {
                if let Some(v) = self.arith_command(e, io).await? {
                    self.status = i32::from(v == 0);
                }
                Ok(())
            }
            CommandKind::Test(expr) => {
                self.status = match self.eval_test(expr, io).await? {
                    Ok(true) => 0,
                    Ok(false) => 1,
                    Err(msg) => {
                        self.complain(io, &format!("[[: {msg}")).await;
                        2
                    }
                };
                Ok(())
            }
        }
    }

    /// A `while`/`until` loop's iterations (the caller counts the loop).
    async fn while_loop(&mut self, cond: &Script, body: &Script, until: bool, io: &Stdio) -> Flow {
        let mut last = 0;
        loop {
            self.checkpoint().await?;
            self.cond_depth += 1;
            let r = self.script(cond, io).await;
            self.cond_depth -= 1;
            match loop_step(r)? {
                LoopStep::Next => {}
                LoopStep::Leave => return Ok(()),
            }
            if (self.status == 0) == until {
                break;
            }
            match loop_step(self.script(body, io).await)? {
                LoopStep::Next => last = self.status,
                LoopStep::Leave => return Ok(()),
            }
        }
        self.status = last;
        Ok(())
    }

    /// A `for ((init; cond; step))` loop's iterations after `init` (the
    /// caller counts the loop).
    async fn arith_loop(
        &mut self,
        cond: Option<&Arith>,
        step: Option<&Arith>,
        body: &Script,
        io: &Stdio,
    ) -> Flow {
        let mut last = 0;
        loop {
            self.checkpoint().await?;
            if let Some(c) = cond {
                match self.arith_command(c, io).await? {
                    None => return Ok(()),
                    Some(0) => break,
                    Some(_) => {}
                }
            }
            match loop_step(self.script(body, io).await)? {
                LoopStep::Next => last = self.status,
                LoopStep::Leave => return Ok(()),
            }
            if let Some(e) = step
                && self.arith_command(e, io).await?.is_none()
            {
                return Ok(());
            }
        }
        self.status = last;
        Ok(())
    }

    async fn simple(&mut self, assigns: &[(String, Word)], words: &[Word], io: &Stdio) -> Flow {
        let mut values = Vec::with_capacity(assigns.len());
        let mut subst_status = None;
        for (name, w) in assigns {
            let before = self.status;
            self.status = 0;
            values.push((name.clone(), self.expand_string(w, io).await?));
            if self.status != 0 {
                subst_status = Some(self.status);
            } else {
                self.status = before;
            }
        }
        let mut fields = Vec::new();
        for w in words {
            fields.extend(self.expand_fields(w, io).await?);
        }
        if fields.is_empty() {
            // Plain assignment: the status is that of the last `$(...)`, else 0.
            for (k, v) in values {
                self.vars.insert(k, v);
            }
            self.status = subst_status.unwrap_or(0);
            return Ok(());
        }
        let mut env = self.env();
        for (k, v) in values {
            env.retain(|(e, _)| *e != k);
            env.push((k, v));
        }
        self.dispatch(fields, env, io).await
    }

    /// Runs an expanded command line: builtins, host builtins, then wasm.
    pub(crate) fn dispatch<'a>(
        &'a mut self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        io: &'a Stdio,
    ) -> BoxFuture<'a, Flow> {
        Box::pin(async move {
            let observed = matches!(
                self.ctx.run.determinism(),
                crate::Determinism::Observed { .. }
            );
            if observed && crate::determinism::prints_environment(&argv) {
                self.ctx.run.note_nondeterminism(format!("ran {}", argv[0]));
            }
            if let Some(flow) = builtins::run_builtin(self, &argv, &env, io).await {
                return flow;
            }
            let name = argv[0].clone();
            if name.contains('/') {
                return self.run_path(argv, env, io).await;
            }
            if let Some(b) = self.ctx.host_builtins.get(&name).cloned() {
                // The host's tools reach beyond the run's input (other
                // objects, side effects): their results are not the input's.
                if observed {
                    self.ctx.run.note_nondeterminism(format!("ran {name}"));
                }
                let call = crate::BuiltinCall {
                    args: &argv,
                    env: &env,
                    cwd: &self.cwd,
                    fs: &self.ctx.fs,
                    stdio: io,
                    run: &self.ctx.run,
                };
                self.status = b.run(call).await;
                return if self.ctx.run.is_stopped() {
                    Err(Stop::Killed)
                } else {
                    Ok(())
                };
            }
            let bytes = match self.resolve(&name).await {
                Ok(Some(b)) => b,
                Ok(None) => {
                    self.complain(io, &format!("{name}: command not found"))
                        .await;
                    self.status = 127;
                    return Ok(());
                }
                Err(msg) => {
                    self.complain(io, &format!("{name}: {msg}")).await;
                    self.status = 126;
                    return Ok(());
                }
            };
            let bytes_kind = if matches!(bytes, ModuleBytes::Installed(..)) {
                ModuleKind::Python
            } else {
                ModuleKind::Other
            };
            let pre = match self.ctx.rt.instance_pre(&name, bytes).await {
                Ok(p) => p,
                Err(e) => {
                    self.complain(io, &e.to_string()).await;
                    self.status = 126;
                    return Ok(());
                }
            };
            // The installed interpreter sees its stdlib read-only.
            let extra_read_only = match (&bytes_kind, &self.ctx.rt.python) {
                (ModuleKind::Python, Some(py)) => vec![(
                    py.stdlib_dir().to_path_buf(),
                    crate::python::STDLIB_GUEST_DIR.to_owned(),
                )],
                _ => Vec::new(),
            };
            let argv = match bytes_kind {
                ModuleKind::Python => crate::python::argv_for(argv, &env),
                ModuleKind::Other => argv,
            };
            let spec = StageSpec {
                name,
                pre,
                argv,
                env,
                io: io.clone(),
                fs: self.ctx.fs.clone(),
                extra_read_only,
            };
            // Each wasm command gets its own task: pipeline stages run in parallel.
            let task = TaskGuard::spawn(stage::run_stage(
                self.ctx.rt.clone(),
                self.ctx.run.clone(),
                spec,
            ));
            self.status = task.join().await.unwrap_or(KILLED_STATUS);
            if self.ctx.run.is_stopped() {
                Err(Stop::Killed)
            } else {
                Ok(())
            }
        })
    }

    /// Runs a command named by its path (`./x.sh`, `/assets/u/stor/x.sh`):
    /// a script is run by a new shell (WASI has no permission bits, so
    /// every readable file may be run), a `.wasm` asset as that asset.
    async fn run_path(
        &mut self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        io: &Stdio,
    ) -> Flow {
        let path = argv[0].clone();
        match self.ctx.fs.metadata(&self.cwd, &path) {
            Ok(m) if m.is_dir() => {
                self.complain(io, &format!("{path}: Is a directory")).await;
                self.status = 126;
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => {
                self.complain(io, &format!("{path}: {e}")).await;
                self.status = 127;
                return Ok(());
            }
        }
        match builtins::read_script(self, &path).await {
            Ok(text) => self.run_child_script(&text, argv, &env, false, io).await,
            Err(_) => {
                // Not text: a wasm asset is run as the command it is.
                let abs = crate::fs::normalize(&self.cwd, &path);
                let asset = abs.strip_prefix("/assets/").and_then(|rest| {
                    self.ctx
                        .assets
                        .iter()
                        .find(|(_, host)| host.ends_with(rest))
                        .map(|(stem, _)| stem.clone())
                });
                match asset {
                    Some(stem) => {
                        let mut argv = argv;
                        argv[0] = stem;
                        self.dispatch(argv, env, io).await
                    }
                    None => {
                        self.complain(io, &format!("{path}: cannot execute binary file"))
                            .await;
                        self.status = 126;
                        Ok(())
                    }
                }
            }
        }
    }

    /// Parses a script the shell was asked to run, within the nesting
    /// bound; `None` when it cannot run (reported, status set).
    async fn load_script(
        &mut self,
        text: &str,
        name: &str,
        io: &Stdio,
    ) -> Result<Option<Arc<Script>>, Stop> {
        if self.script_depth >= MAX_SCRIPT_DEPTH {
            self.complain(
                io,
                &format!("{name}: scripts nested more than {MAX_SCRIPT_DEPTH} deep"),
            )
            .await;
            self.status = 2;
            return Ok(None);
        }
        let script = match shell_syntax::recent(text) {
            Some(s) => Ok(s),
            None => {
                let t = text.to_owned();
                tokio::task::spawn_blocking(move || shell_syntax::parse_shared(&t))
                    .await
                    .unwrap_or_else(|e| {
                        Err(shell_syntax::ScriptError::ParserUnavailable(e.to_string()))
                    })
            }
        };
        let script = match script {
            Ok(s) => s,
            Err(e) => {
                self.complain(io, &format!("{name}: {e}")).await;
                self.status = 2;
                return Ok(None);
            }
        };
        let stages = script.max_pipeline() as u64;
        if stages > self.ctx.run.limits.pipeline_stages {
            self.ctx.run.trip(LimitKind::PipelineStages, stages);
            return Err(Stop::Killed);
        }
        Ok(Some(script))
    }

    /// Runs `text` in a new shell (a child process: only `env`, `$0` and
    /// the positional parameters from `argv`); its status becomes ours.
    pub(crate) async fn run_child_script(
        &mut self,
        text: &str,
        argv: Vec<String>,
        env: &[(String, String)],
        errexit: bool,
        io: &Stdio,
    ) -> Flow {
        let Some(script) = self.load_script(text, &argv[0], io).await? else {
            return Ok(());
        };
        let mut child = Shell::new(self.ctx.clone(), env);
        child.cwd = self.cwd.clone();
        child.vars.insert("PWD".into(), self.cwd.clone());
        child.args = Arc::new(argv);
        child.script_depth = self.script_depth + 1;
        child.errexit = errexit;
        self.status = child.run_to_end(&script, io).await?;
        Ok(())
    }

    /// `. file [args]`: runs `text` in this shell.
    pub(crate) async fn source_script(&mut self, text: &str, args: &[String], io: &Stdio) -> Flow {
        let Some(script) = self.load_script(text, &args[0], io).await? else {
            return Ok(());
        };
        let saved = (args.len() > 1).then(|| {
            let mut a = vec![self.args[0].clone()];
            a.extend(args[1..].iter().cloned());
            std::mem::replace(&mut self.args, Arc::new(a))
        });
        self.script_depth += 1;
        let r = self.script(&script, io).await;
        self.script_depth -= 1;
        if let Some(a) = saved {
            self.args = a;
        }
        r
    }

    /// Finds the module for a command name: assets first, then the toolbox.
    async fn resolve(&self, name: &str) -> Result<Option<ModuleBytes>, String> {
        if let Some(path) = self.ctx.assets.get(name) {
            if let Some(b) = self
                .ctx
                .asset_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
            {
                return Ok(Some(b.clone()));
            }
            let b = ModuleBytes::file(path).await?;
            self.ctx
                .asset_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_owned(), b.clone());
            return Ok(Some(b));
        }
        if is_coreutils_tool(name) {
            return Ok(Some(crate::coreutils_module()));
        }
        if crate::python::is_python(name)
            && let Some(py) = &self.ctx.rt.python
        {
            return py.module_bytes().await.map(Some);
        }
        Ok(None)
    }

    /// Writes a shell diagnostic to the command's stderr.
    pub(crate) async fn complain(&self, io: &Stdio, msg: &str) {
        let _ = io
            .stderr
            .write_all(format!("tidepool: {msg}\n").as_bytes())
            .await;
    }

    /// Applies redirections, returning the command's streams and the tasks
    /// that finish writing its output files. `Err(Exit)` means a redirection
    /// failed (already reported).
    async fn redirect(
        &mut self,
        redirs: &[Redir],
        io: &Stdio,
    ) -> Result<(Stdio, Vec<TaskGuard<std::io::Result<u64>>>), Stop> {
        let mut cio = io.clone();
        let mut drains = Vec::new();
        for r in redirs {
            match r {
                Redir::Input(w) => {
                    let path = self.expand_string(w, io).await?;
                    if is_dev_null(&self.cwd, &path) {
                        cio.stdin = None;
                        continue;
                    }
                    let file = match self.ctx.fs.open_read(&self.cwd, &path) {
                        Ok(f) => f,
                        Err(e) => {
                            self.complain(io, &format!("{path}: {e}")).await;
                            return Err(Stop::Exit(1));
                        }
                    };
                    // A regular file is stdin itself, as after a real `< file`:
                    // `fstat(0)` describes it (GNU `wc` sizes its columns
                    // from it).
                    let regular = file.metadata().is_ok_and(|m| m.is_file());
                    if regular {
                        cio.stdin = Some(pipe::file_reader(file));
                        continue;
                    }
                    let (pw, pr) = pipe::pipe(pipe::DEFAULT_CAPACITY);
                    // Detached on purpose: it ends at EOF or when the reader goes away.
                    tokio::spawn(pump_in(tokio::fs::File::from_std(file), pw));
                    cio.stdin = Some(pr);
                }
                Redir::InputText(w) => {
                    let text = self.expand_string(w, io).await?;
                    let (pw, pr) = pipe::pipe(pipe::DEFAULT_CAPACITY);
                    tokio::spawn(async move { pw.write_all(text.as_bytes()).await });
                    cio.stdin = Some(pr);
                }
                Redir::Output { fd, target, append } => {
                    let w = self.open_output(target, *append, io, &mut drains).await?;
                    if *fd == 2 {
                        cio.stderr = w;
                    } else {
                        cio.stdout = w;
                    }
                }
                Redir::Both { target, append } => {
                    let w = self.open_output(target, *append, io, &mut drains).await?;
                    cio.stdout = w.clone();
                    cio.stderr = w;
                }
                Redir::Dup { fd: 2, to: 1 } => cio.stderr = cio.stdout.clone(),
                Redir::Dup { fd: 1, to: 2 } => cio.stdout = cio.stderr.clone(),
                Redir::Dup { .. } => {}
            }
        }
        Ok((cio, drains))
    }

    async fn open_output(
        &mut self,
        target: &Word,
        append: bool,
        io: &Stdio,
        drains: &mut Vec<TaskGuard<std::io::Result<u64>>>,
    ) -> Result<pipe::PipeWriter, Stop> {
        let path = self.expand_string(target, io).await?;
        if is_dev_null(&self.cwd, &path) {
            let (pw, pr) = pipe::pipe(pipe::DEFAULT_CAPACITY);
            drains.push(TaskGuard::spawn(async move {
                let mut n = 0u64;
                while let Some(c) = pr.read_chunk(1 << 20).await {
                    n += c.len() as u64;
                }
                Ok(n)
            }));
            return Ok(pw);
        }
        let file = match self.ctx.fs.open_write(&self.cwd, &path, append) {
            Ok(f) => f,
            Err(e) => {
                self.complain(io, &format!("{path}: {e}")).await;
                return Err(Stop::Exit(1));
            }
        };
        let (pw, pr) = pipe::pipe(pipe::DEFAULT_CAPACITY);
        let run = self.ctx.run.clone();
        let limit = run.limits.scratch_bytes;
        drains.push(TaskGuard::spawn(drain_out(
            pr,
            tokio::fs::File::from_std(file),
            self.ctx.redirected.clone(),
            limit,
            LimitKind::Scratch,
            run,
        )));
        Ok(pw)
    }

    /// Runs `script` in a subshell and returns its stdout, trailing newlines
    /// removed, at most `args` limit bytes (more trips the limit).
    pub(crate) async fn capture(&mut self, script: &Script, io: &Stdio) -> Result<String, Stop> {
        let (w, r) = pipe::pipe(pipe::DEFAULT_CAPACITY);
        let sub_io = Stdio {
            stdin: io.stdin.clone(),
            stdout: w,
            stderr: io.stderr.clone(),
        };
        let mut sub = self.clone();
        let limit = self.ctx.run.limits.args_bytes;
        let run = self.ctx.run.clone();
        let body = async move {
            let r = sub.run_to_end(script, &sub_io).await;
            drop(sub_io);
            r
        };
        let collect = collect_bounded(r, limit, run);
        let (r, out) = futures::future::join(body, collect).await;
        let status = r?;
        let mut out = out.ok_or(Stop::Killed)?;
        self.status = status;
        while out.last() == Some(&b'\n') {
            out.pop();
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Value of a parameter, `None` if unset.
    pub(crate) fn lookup(&self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.status.to_string()),
            "#" => Some((self.args.len() - 1).to_string()),
            "$" => Some("1".into()),
            "-" => Some(format!("{}{}", if self.errexit { "e" } else { "" }, "h")),
            "@" | "*" => Some(self.args[1..].join(" ")),
            "!" => self.last_bg.map(|p| p.to_string()),
            _ if name.bytes().all(|b| b.is_ascii_digit()) => name
                .parse::<usize>()
                .ok()
                .and_then(|n| self.args.get(n).cloned()),
            _ => {
                if self.ctx.run.watches(name) {
                    self.ctx
                        .run
                        .note_nondeterminism(format!("expanded ${name}"));
                }
                self.vars.get(name).cloned()
            }
        }
    }

    /// Evaluates an arithmetic command or `for ((...))` part: `None` (the
    /// error reported, status 1) when it fails.
    async fn arith_command(&mut self, e: &Arith, io: &Stdio) -> Result<Option<i64>, Stop> {
        match shell_syntax::arith::eval(e, self) {
            Ok(v) => Ok(Some(v)),
            Err(msg) => {
                self.complain(io, &format!("((: {msg}")).await;
                self.status = 1;
                Ok(None)
            }
        }
    }

    /// Trips the args limit if a value grew past it (a `x=$x$x` loop would
    /// otherwise eat host memory).
    pub(crate) fn check_size(&self, len: usize) -> Flow {
        let limit = self.ctx.run.limits.args_bytes;
        if len as u64 > limit {
            self.ctx.run.trip(LimitKind::Args, len as u64);
            return Err(Stop::Killed);
        }
        Ok(())
    }
}

/// `/dev/null` is the one device redirections know: scratch has no `/dev`.
fn is_dev_null(cwd: &str, path: &str) -> bool {
    crate::fs::normalize(cwd, path) == "/dev/null"
}

/// Reads `r` to EOF, keeping at most `limit` bytes; `None` if it tripped.
async fn collect_bounded(r: PipeReader, limit: u64, run: Arc<RunShared>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = r.read_chunk(64 * 1024).await {
        if (out.len() + chunk.len()) as u64 > limit {
            run.trip(LimitKind::Args, (out.len() + chunk.len()) as u64);
            return None;
        }
        out.extend_from_slice(&chunk);
    }
    Some(out)
}

impl shell_syntax::arith::ArithVars for Shell {
    fn get(&self, name: &str) -> Option<String> {
        self.lookup(name)
    }
    fn set(&mut self, name: &str, value: String) {
        self.vars.insert(name.to_owned(), value);
    }
}
