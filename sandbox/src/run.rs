//! State shared by everything running on behalf of one phase run: the
//! limits, the first limit that tripped, cancellation, trap records, the
//! run's memory and disk budgets, and the host tasks that move bytes
//! between pipes and files.
//!
//! The budgets are one counter per run, shared by every stage and host
//! builtin of it: memory is the sum of the linear memories alive now (an
//! instance gives its share back when it ends); disk is the scratch tree's
//! largest size seen plus every byte charged to it (the stdout file, spools
//! and uploads of builtins), which is never given back, so rewriting a
//! spool or re-uploading cannot launder the budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::determinism::Determinism;
use crate::limits::{LimitKind, LimitReport, Limits};
use crate::pipe::{PipeReader, PipeWriter};

/// Shared per-run state.
pub(crate) struct RunShared {
    pub(crate) limits: Limits,
    pub(crate) started: Instant,
    tripped: Mutex<Option<LimitReport>>,
    pub(crate) cancel: CancellationToken,
    traps: Mutex<Vec<String>>,
    /// Linear memory of the run's live instances, in bytes.
    mem_used: AtomicU64,
    /// Largest scratch size seen (by measuring, or by bytes redirected into it).
    scratch_seen: AtomicU64,
    /// Bytes charged to the disk budget besides scratch.
    disk_charged: AtomicU64,
    /// Whether stdout is a host file (then it counts as disk).
    pub(crate) stdout_on_disk: std::sync::atomic::AtomicBool,
    /// A host failure that stopped the run (not the guest's doing).
    infra: Mutex<Option<String>>,
    determinism: Determinism,
    /// The first thing the run did that its inputs do not decide.
    nondeterminism: Mutex<Option<String>>,
}

impl RunShared {
    pub(crate) fn new(limits: Limits, determinism: Determinism) -> Arc<RunShared> {
        Arc::new(RunShared {
            limits,
            started: Instant::now(),
            tripped: Mutex::new(None),
            cancel: CancellationToken::new(),
            traps: Mutex::new(Vec::new()),
            mem_used: AtomicU64::new(0),
            scratch_seen: AtomicU64::new(0),
            disk_charged: AtomicU64::new(0),
            stdout_on_disk: std::sync::atomic::AtomicBool::new(false),
            infra: Mutex::new(None),
            determinism,
            nondeterminism: Mutex::new(None),
        })
    }

    /// Takes `bytes` more linear memory for one instance; `false` (and the
    /// memory limit tripped) when the run's total would pass the limit.
    pub(crate) fn grow_memory(&self, bytes: u64) -> bool {
        let total = self.mem_used.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if total > self.limits.memory_bytes {
            self.mem_used.fetch_sub(bytes, Ordering::AcqRel);
            self.trip(LimitKind::Memory, total);
            return false;
        }
        true
    }

    /// Gives back memory of an instance that ended.
    pub(crate) fn release_memory(&self, bytes: u64) {
        self.mem_used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes on disk counted so far: scratch's largest size plus charges.
    pub(crate) fn disk_used(&self) -> u64 {
        self.scratch_seen
            .load(Ordering::Acquire)
            .saturating_add(self.disk_charged.load(Ordering::Acquire))
    }

    fn check_disk(&self) -> bool {
        let used = self.disk_used();
        if used > self.limits.disk_bytes {
            self.trip(LimitKind::Disk, used);
            return false;
        }
        true
    }

    /// Records that scratch holds (at least) `bytes`; `false` (and the disk
    /// limit tripped) when the run's disk use passes its budget.
    pub(crate) fn note_scratch(&self, bytes: u64) -> bool {
        self.scratch_seen.fetch_max(bytes, Ordering::AcqRel);
        self.check_disk()
    }

    /// Charges `bytes` written outside scratch to the disk budget; `false`
    /// (and the disk limit tripped) when that passes the budget.
    /// Bytes charged to the disk budget besides scratch.
    pub(crate) fn disk_charged(&self) -> u64 {
        self.disk_charged.load(Ordering::Acquire)
    }

    pub(crate) fn charge_disk(&self, bytes: u64) -> bool {
        self.disk_charged.fetch_add(bytes, Ordering::AcqRel);
        self.check_disk()
    }

    pub(crate) fn determinism(&self) -> &Determinism {
        &self.determinism
    }

    /// Whether expanding `var` makes the result unreproducible.
    pub(crate) fn watches(&self, var: &str) -> bool {
        matches!(&self.determinism, Determinism::Observed { watch, .. } if watch.iter().any(|w| w == var))
    }

    /// Records (the first) reason the run's result is not reproducible.
    pub(crate) fn note_nondeterminism(&self, why: impl Into<String>) {
        let mut n = self
            .nondeterminism
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if n.is_none() {
            *n = Some(why.into());
        }
    }

    pub(crate) fn nondeterminism(&self) -> Option<String> {
        self.nondeterminism
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the run for a host failure (e.g. no wasm instance available):
    /// the report carries it so the caller can retry elsewhere.
    pub(crate) fn fail_infra(&self, why: String) {
        let mut i = self.infra.lock().unwrap_or_else(|e| e.into_inner());
        if i.is_none() {
            *i = Some(why);
        }
        drop(i);
        self.cancel.cancel();
    }

    pub(crate) fn infra_failure(&self) -> Option<String> {
        self.infra.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records that `kind` was exceeded (first one wins) and stops the run.
    pub(crate) fn trip(&self, kind: LimitKind, used: u64) {
        let mut t = self.tripped.lock().unwrap_or_else(|e| e.into_inner());
        if t.is_none() {
            *t = Some(LimitReport {
                kind,
                limit: self.limits.get(kind),
                used,
            });
        }
        drop(t);
        self.cancel.cancel();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Trips the wall-time limit if it has passed; returns whether the run must stop.
    pub(crate) fn check_deadline(&self) -> bool {
        let elapsed = self.started.elapsed();
        if elapsed > self.limits.wall_time {
            self.trip(
                LimitKind::WallTime,
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            );
        }
        self.is_stopped()
    }

    pub(crate) fn tripped(&self) -> Option<LimitReport> {
        self.tripped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn record_trap(&self, msg: String) {
        self.traps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg);
    }

    pub(crate) fn traps(&self) -> Vec<String> {
        self.traps.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A spawned task that is aborted when this handle is dropped, so dropping
/// a run's future tears down everything it started.
pub(crate) struct TaskGuard<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for TaskGuard<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> TaskGuard<T> {
    pub(crate) fn spawn<F>(fut: F) -> Self
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        TaskGuard(tokio::spawn(fut))
    }

    /// Waits for the task; `None` if it panicked or was aborted.
    pub(crate) async fn join(mut self) -> Option<T> {
        (&mut self.0).await.ok()
    }
}

/// Largest single copy between a pipe or file and the host side.
const CHUNK: usize = 1024 * 1024;

/// Copies `src` into the pipe until EOF, the reader leaving, or the run stopping.
pub(crate) async fn pump_in(mut src: impl AsyncRead + Unpin, dst: PipeWriter) {
    let mut buf = vec![0u8; crate::pipe::FIRST_COPY_BUFFER];
    loop {
        match src.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if !dst.write_all(&buf[..n]).await {
                    return;
                }
                crate::pipe::grow_copy_buffer(&mut buf, n, CHUNK);
            }
        }
    }
}

/// Copies the pipe into `dst`, counting bytes against `limit`: past it the
/// run trips `kind`. Returns the bytes written. `counter` accumulates across
/// drains that share a budget (e.g. all redirections into scratch).
pub(crate) async fn drain_out(
    src: PipeReader,
    mut dst: impl AsyncWrite + Unpin,
    counter: Arc<AtomicU64>,
    limit: u64,
    kind: LimitKind,
    run: Arc<RunShared>,
) -> std::io::Result<u64> {
    let mut written = 0u64;
    // One buffer for the whole drain: taking `Bytes` out of the pipe would
    // share its allocation and make the pipe allocate (and fault in) a
    // fresh one for every chunk.
    let mut buf = vec![0u8; crate::pipe::FIRST_COPY_BUFFER];
    loop {
        std::future::poll_fn(|cx| src.poll_readable(cx)).await;
        let n = match src.try_read_into(&mut buf) {
            Ok(Some(0)) | Err(_) => break,
            Ok(Some(n)) => n,
            Ok(None) => continue,
        };
        let chunk = &buf[..n];
        let before = counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        let allowed = limit.saturating_sub(before).min(chunk.len() as u64) as usize;
        // The same bytes count against the run's disk budget: redirections
        // land in scratch, stdout in its file when it has one.
        let on_disk = match kind {
            LimitKind::Scratch => run.note_scratch(before + allowed as u64),
            LimitKind::Stdout if run.stdout_on_disk.load(Ordering::Relaxed) => {
                run.charge_disk(allowed as u64)
            }
            _ => true,
        };
        if !on_disk {
            break;
        }
        dst.write_all(&chunk[..allowed]).await?;
        written += allowed as u64;
        if allowed < chunk.len() {
            run.trip(kind, before + chunk.len() as u64);
            break;
        }
        crate::pipe::grow_copy_buffer(&mut buf, n, CHUNK);
    }
    dst.flush().await?;
    Ok(written)
}

/// An in-memory sink for captured output.
#[derive(Clone, Default)]
pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
