//! What every tool shares: argument bytes, error reporting with GNU-style
//! exit statuses, and buffered standard output.
//!
//! Exit statuses: a tool's own failure is 1 (as GNU's are), a usage error or
//! an unsupported option/construct is 2 — never a silent wrong answer.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufWriter, Write};

/// Exit status for usage errors and unsupported options.
pub const EXIT_USAGE: i32 = 2;

/// The raw bytes of an argument (WASI and Unix arguments are byte strings).
pub fn arg_bytes(arg: &OsStr) -> &[u8] {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        arg.as_bytes()
    }
    #[cfg(target_os = "wasi")]
    {
        use std::os::wasi::ffi::OsStrExt;
        arg.as_bytes()
    }
}

/// The tool's name as called (argv[0]'s basename), for messages.
pub fn tool_name(args: &[OsString]) -> String {
    let a0 = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    a0.rsplit('/').next().unwrap_or(&a0).to_string()
}

/// Prints `tool: message` to stderr and returns [`EXIT_USAGE`].
pub fn usage_error(tool: &str, msg: impl std::fmt::Display) -> i32 {
    eprintln!("{tool}: {msg}");
    EXIT_USAGE
}

/// Buffered standard output with a large buffer (pipelines move a lot of
/// bytes): whole buffers go to fd 1 in one `fd_write` each.
pub fn stdout() -> BufWriter<RawStdout> {
    BufWriter::with_capacity(STDOUT_BUF, RawStdout::default())
}

/// Size of [`stdout`]'s buffer: few host calls per megabyte, and still a
/// small part of a pipe's capacity.
pub const STDOUT_BUF: usize = 256 * 1024;

/// fd 1 without std's line buffering: `io::stdout()` is a `LineWriter`,
/// which splits every buffer at its last newline and copies the tail, so
/// each flush costs two host calls. Tools that write through this must not
/// also use `print!` (its bytes would sit in std's buffer).
#[derive(Default)]
pub struct RawStdout(());

impl RawStdout {
    #[allow(unsafe_code)]
    fn fd1() -> std::mem::ManuallyDrop<std::fs::File> {
        use std::os::fd::FromRawFd;
        // SAFETY: fd 1 is open for the whole process; `ManuallyDrop` keeps
        // this `File` from ever closing it.
        std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) })
    }
}

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Self::fd1().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// True when a write failed because the reader went away (e.g. `| head`):
/// the tool should stop quietly, as a GNU tool killed by SIGPIPE would.
pub fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// Flushes `out`, treating a closed reader as success.
pub fn finish(out: &mut impl Write) -> io::Result<()> {
    match out.flush() {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        r => r,
    }
}
