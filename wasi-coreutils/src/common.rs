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

/// Buffered standard output with a large buffer (pipelines move a lot of bytes).
pub fn stdout() -> BufWriter<io::StdoutLock<'static>> {
    BufWriter::with_capacity(64 * 1024, io::stdout().lock())
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
