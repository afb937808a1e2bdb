//! Helpers shared by the text tools: GNU-style option parsing ([`args`]) and
//! input handling ([`input`]: opening operands, large-buffer line reading,
//! GNU-style error messages).

pub mod args;
pub mod cfmt;
pub mod input;
pub mod posix_regex;

use std::ffi::OsString;
use std::io;

/// Why a text tool stopped early.
#[derive(Debug, thiserror::Error)]
pub enum Fail {
    /// Bad usage (a missing operand, a malformed value): GNU's usage
    /// status for the tool (1, or 2 for `sort` and `grep`).
    #[error("{0}")]
    Usage(String),
    /// An option or construct this implementation does not support (or
    /// does not know): always exit status 2.
    #[error("{0}")]
    Unsupported(String),
    /// Writing the output failed (a vanished reader is not reported).
    #[error("write error: {}", input::errmsg(.0))]
    Write(#[from] io::Error),
    /// A failure already reported on stderr, with the status to exit with.
    #[error("exit {0}")]
    Exit(i32),
}

/// Shorthand for an unsupported option or construct (exit status 2).
pub fn unsupported<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Unsupported(msg.into()))
}

/// Classifies an option-parser error: a missing argument is bad usage,
/// an unknown option is unsupported.
pub fn opt_error(msg: String) -> Fail {
    if msg.contains("requires an argument") {
        Fail::Usage(msg)
    } else {
        Fail::Unsupported(msg)
    }
}

/// Shorthand for a usage error.
pub fn usage<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Usage(msg.into()))
}

/// Runs a tool body and turns its outcome into an exit status, printing
/// the message GNU would (`tool: ...`, plus the `--help` hint for usage errors).
pub fn run(args: &[OsString], body: impl FnOnce(&str, Vec<Vec<u8>>) -> Result<i32, Fail>) -> i32 {
    let tool = crate::common::tool_name(args);
    match body(&tool, args::rest_bytes(args)) {
        Ok(code) => code,
        Err(Fail::Usage(m)) => {
            eprintln!("{tool}: {m}");
            if matches!(tool.as_str(), "sort" | "grep") {
                2
            } else {
                1
            }
        }
        Err(Fail::Unsupported(m)) => crate::common::usage_error(&tool, m),
        Err(Fail::Write(e)) => input::write_failed(&tool, &e),
        Err(Fail::Exit(c)) => c,
    }
}
