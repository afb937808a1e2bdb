//! Direct paths for a guest's standard streams.
//!
//! wasmtime-wasi moves stdio through its generic stream layer: every
//! `fd_write` is cut into 4 KiB pieces, each copied into a fresh `Vec` and
//! flushed separately, and every `fd_read` copies twice. For pipelines that
//! move gigabytes that is most of the host's cost, so `fd_read` on fd 0 and
//! `fd_write` on fds 1 and 2 are shadowed here: bytes go between guest
//! memory and our [`pipe`](crate::pipe)s (or the input file behind a
//! [`file_reader`](crate::pipe::file_reader)) in one copy, waiting the
//! same way (the guest's fiber suspends, never a thread).
//!
//! Guarantees:
//! - the guest sees the same capabilities as without this module: these
//!   are the streams wasmtime-wasi was given for fds 0-2, and every other
//!   descriptor, and every other call, goes to wasmtime-wasi unchanged;
//! - once the guest closes or renumbers one of fds 0-2, that fd is left to
//!   wasmtime-wasi for good, so the two views never disagree;
//! - guest pointers are bounds-checked (`EFAULT`), writes are whole (a
//!   blocking pipe write returns when everything is written or the reader
//!   is gone, `EPIPE`);
//! - `fd_filestat_get` on a file-backed stdin describes the input file, as
//!   `fstat(0)` after a shell redirection `< file` would (GNU `wc` sizes its
//!   columns from it). Everything else about fd 0 (no seeking, its fdstat)
//!   stays a stream's.
//!
//! The shadowed functions delegate to wasmtime-wasi's generated WASIp1
//! entry points (`p1::wasi_snapshot_preview1::*`), which are public but
//! unadvertised; wasmtime is pinned to an exact version, so they cannot
//! shift underneath.

use std::future::poll_fn;

use wasmtime::{AsContextMut, Caller, Extern, Linker, Memory};
use wasmtime_wasi::p1::types::Errno;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;

use crate::engine::StageState;
use crate::pipe::{PipeReader, PipeWriter};
use crate::stage::Stdio;

const MODULE: &str = "wasi_snapshot_preview1";

/// The stage's own streams for fds 0-2, while the guest has not replaced them.
#[derive(Default)]
pub(crate) struct FastStdio {
    stdin: Option<PipeReader>,
    stdout: Option<PipeWriter>,
    stderr: Option<PipeWriter>,
}

impl FastStdio {
    pub(crate) fn new(io: &Stdio) -> FastStdio {
        FastStdio {
            stdin: io.stdin.clone(),
            stdout: Some(io.stdout.clone()),
            stderr: Some(io.stderr.clone()),
        }
    }

    fn writer(&self, fd: i32) -> Option<PipeWriter> {
        match fd {
            1 => self.stdout.clone(),
            2 => self.stderr.clone(),
            _ => None,
        }
    }

    /// `fd` no longer is the stream we were given.
    fn forget(&mut self, fd: i32) {
        match fd {
            0 => self.stdin = None,
            1 => self.stdout = None,
            2 => self.stderr = None,
            _ => {}
        }
    }
}

/// Calls wasmtime-wasi's own implementation of `$func`, exactly as its
/// linker glue would (same memory view, same host-call fuel); `sync` for
/// the entry points wasmtime-wasi implements synchronously (clocks,
/// entropy: [`crate::determinism`]).
macro_rules! delegate {
    ($caller:ident, $func:ident ( $($arg:expr),* )) => {
        $crate::fastio::delegate!(@call [.await] $caller, $func($($arg),*))
    };
    (sync $caller:ident, $func:ident ( $($arg:expr),* )) => {
        $crate::fastio::delegate!(@call [] $caller, $func($($arg),*))
    };
    (@call [$($await:tt)*] $caller:ident, $func:ident ( $($arg:expr),* )) => {{
        let fuel = $caller.as_context_mut().hostcall_fuel();
        let mem = $crate::fastio::memory(&mut $caller)?;
        let (bytes, state) = mem.data_and_store_mut(&mut $caller);
        state.wasi.set_hostcall_fuel(fuel);
        let mut gm = wiggle::GuestMemory::Unshared(bytes);
        wasmtime_wasi::p1::wasi_snapshot_preview1::$func(&mut state.wasi, &mut gm, $($arg),*)
            $($await)*
    }};
}
pub(crate) use delegate;

pub(crate) fn memory(caller: &mut Caller<'_, StageState>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg("missing required memory export")),
    }
}

pub(crate) fn errno(e: Errno) -> i32 {
    e as i32
}

/// `len` bytes at guest address `ptr`, if they lie inside memory.
pub(crate) fn range(mem: &[u8], ptr: i32, len: u64) -> Result<std::ops::Range<usize>, Errno> {
    let start = ptr as u32 as u64;
    let end = start.checked_add(len).ok_or(Errno::Fault)?;
    if end > mem.len() as u64 {
        return Err(Errno::Fault);
    }
    Ok(start as usize..end as usize)
}

fn load_u32(mem: &[u8], at: u64) -> Result<u32, Errno> {
    let at = usize::try_from(at).map_err(|_| Errno::Fault)?;
    let b = mem
        .get(at..at.checked_add(4).ok_or(Errno::Fault)?)
        .ok_or(Errno::Fault)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn store_u32(mem: &mut [u8], ptr: i32, v: u32) -> Result<(), Errno> {
    let r = range(mem, ptr, 4)?;
    mem[r].copy_from_slice(&v.to_le_bytes());
    Ok(())
}

/// The `i`-th (ptr, len) of an iovec array, bounds-checked.
fn iovec(mem: &[u8], iovs: i32, i: u32) -> Result<std::ops::Range<usize>, Errno> {
    let at = iovs as u32 as u64 + u64::from(i) * 8;
    let ptr = load_u32(mem, at)?;
    let len = load_u32(mem, at + 4)?;
    range(mem, ptr as i32, u64::from(len))
}

/// Most iovecs one call may pass (POSIX `IOV_MAX` on Linux): keeps every
/// host call's bookkeeping short, whatever the guest asks.
const IOV_MAX: i32 = 1024;

/// The iovec count as a loop bound, `EINVAL` outside `0..=IOV_MAX`.
fn iov_count(n: i32) -> Result<u32, Errno> {
    if (0..=IOV_MAX).contains(&n) {
        Ok(n as u32)
    } else {
        Err(Errno::Inval)
    }
}

/// The first non-empty buffer of an iovec array, as wasmtime-wasi reads into.
fn first_nonempty(mem: &[u8], iovs: i32, n: i32) -> Result<Option<std::ops::Range<usize>>, Errno> {
    for i in 0..iov_count(n)? {
        let r = iovec(mem, iovs, i)?;
        if !r.is_empty() {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

async fn read_fast(
    caller: &mut Caller<'_, StageState>,
    src: &PipeReader,
    iovs: i32,
    n_iovs: i32,
    nread: i32,
) -> wasmtime::Result<i32> {
    let mem = memory(caller)?;
    let dst = match first_nonempty(mem.data(&*caller), iovs, n_iovs) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Ok(match store_u32(mem.data_mut(&mut *caller), nread, 0) {
                Ok(()) => 0,
                Err(e) => errno(e),
            });
        }
        Err(e) => return Ok(errno(e)),
    };
    loop {
        poll_fn(|cx| src.poll_readable(cx)).await;
        let data = mem.data_mut(&mut *caller);
        match src.try_read_into(&mut data[dst.clone()]) {
            Ok(Some(n)) => {
                return Ok(match store_u32(data, nread, n as u32) {
                    Ok(()) => 0,
                    Err(e) => errno(e),
                });
            }
            // Someone else (a builtin sharing stdin) took the bytes.
            Ok(None) => continue,
            Err(_) => return Ok(errno(Errno::Io)),
        }
    }
}

async fn write_fast(
    caller: &mut Caller<'_, StageState>,
    dst: &PipeWriter,
    iovs: i32,
    n_iovs: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    let mem = memory(caller)?;
    let n = match iov_count(n_iovs) {
        Ok(n) => n,
        Err(e) => return Ok(errno(e)),
    };
    let mut total = 0u64;
    for i in 0..n {
        match iovec(mem.data(&*caller), iovs, i) {
            Ok(r) => total += r.len() as u64,
            Err(e) => return Ok(errno(e)),
        }
    }
    if u32::try_from(total).is_err() {
        return Ok(errno(Errno::Inval));
    }
    // Where we are: iovec index, offset in it, bytes written so far.
    let (mut i, mut off, mut done) = (0u32, 0usize, 0u64);
    'wait: while i < n {
        if poll_fn(|cx| dst.poll_space(cx)).await.is_none() {
            break;
        }
        let data = mem.data(&*caller);
        while i < n {
            let r = match iovec(data, iovs, i) {
                Ok(r) => r,
                Err(e) => return Ok(errno(e)),
            };
            let chunk = &data[r.start + off..r.end];
            match dst.push(chunk) {
                None => break 'wait,
                Some(k) if k < chunk.len() => {
                    off += k;
                    done += k as u64;
                    continue 'wait;
                }
                Some(k) => {
                    done += k as u64;
                    i += 1;
                    off = 0;
                }
            }
        }
    }
    if done == 0 && total > 0 {
        return Ok(errno(Errno::Pipe));
    }
    Ok(
        match store_u32(mem.data_mut(&mut *caller), nwritten, done as u32) {
            Ok(()) => 0,
            Err(e) => errno(e),
        },
    )
}

/// Writes `md` as a WASIp1 `filestat` (64 bytes: dev, ino, filetype,
/// nlink, size, atim, mtim, ctim).
fn store_filestat(mem: &mut [u8], ptr: i32, md: &std::fs::Metadata) -> Result<(), Errno> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let ft = md.file_type();
    let filetype = if ft.is_file() {
        4
    } else if ft.is_dir() {
        3
    } else if ft.is_char_device() {
        2
    } else if ft.is_block_device() {
        1
    } else {
        0
    };
    let r = range(mem, ptr, 64)?;
    let b = &mut mem[r];
    b.fill(0);
    let nanos = |s: i64, ns: i64| (s.max(0) as u64).saturating_mul(1_000_000_000) + ns as u64;
    b[0..8].copy_from_slice(&md.dev().to_le_bytes());
    b[8..16].copy_from_slice(&md.ino().to_le_bytes());
    b[16] = filetype;
    b[24..32].copy_from_slice(&md.nlink().to_le_bytes());
    b[32..40].copy_from_slice(&md.len().to_le_bytes());
    b[40..48].copy_from_slice(&nanos(md.atime(), md.atime_nsec()).to_le_bytes());
    b[48..56].copy_from_slice(&nanos(md.mtime(), md.mtime_nsec()).to_le_bytes());
    b[56..64].copy_from_slice(&nanos(md.ctime(), md.ctime_nsec()).to_le_bytes());
    Ok(())
}

/// Shadows the stdio entry points of `linker` (which must already hold
/// wasmtime-wasi's WASIp1 functions).
pub(crate) fn shadow(linker: &mut Linker<StageState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        MODULE,
        "fd_read",
        |mut caller: Caller<'_, StageState>, (fd, iovs, n, nread): (i32, i32, i32, i32)| {
            Box::new(async move {
                if fd == 0
                    && let Some(src) = caller.data().fast.stdin.clone()
                {
                    return read_fast(&mut caller, &src, iovs, n, nread).await;
                }
                delegate!(caller, fd_read(fd, iovs, n, nread))
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, StageState>, (fd, iovs, n, nwritten): (i32, i32, i32, i32)| {
            Box::new(async move {
                if let Some(dst) = caller.data().fast.writer(fd) {
                    return write_fast(&mut caller, &dst, iovs, n, nwritten).await;
                }
                delegate!(caller, fd_write(fd, iovs, n, nwritten))
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_close",
        |mut caller: Caller<'_, StageState>, (fd,): (i32,)| {
            Box::new(async move {
                let r = delegate!(caller, fd_close(fd))?;
                if r == 0 {
                    caller.data_mut().fast.forget(fd);
                }
                Ok(r)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, StageState>, (from, to): (i32, i32)| {
            Box::new(async move {
                let r = delegate!(caller, fd_renumber(from, to))?;
                if r == 0 {
                    let fast = &mut caller.data_mut().fast;
                    fast.forget(from);
                    fast.forget(to);
                }
                Ok(r)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_filestat_get",
        |mut caller: Caller<'_, StageState>, (fd, buf): (i32, i32)| {
            Box::new(async move {
                if fd == 0
                    && let Some(md) = caller
                        .data()
                        .fast
                        .stdin
                        .as_ref()
                        .and_then(PipeReader::file_metadata)
                {
                    let mem = memory(&mut caller)?;
                    return Ok(match store_filestat(mem.data_mut(&mut caller), buf, &md) {
                        Ok(()) => 0,
                        Err(e) => errno(e),
                    });
                }
                delegate!(caller, fd_filestat_get(fd, buf))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
