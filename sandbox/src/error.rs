//! Errors of the sandbox crate.
//!
//! Only failures of the *host* side are errors: a bad configuration, a
//! module that does not compile, a script that cannot be parsed or uses a
//! construct the shell does not support (rejected before anything runs).
//! What a guest does wrong — a failing command, a trap, an exceeded limit —
//! is part of a successful [`RunReport`](crate::RunReport).

use std::path::PathBuf;

/// Error of [`Sandbox`](crate::Sandbox) operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// Invalid configuration or limits.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The wasmtime engine could not be set up.
    #[error("wasm engine setup failed: {0}")]
    Engine(String),
    /// A module failed to validate, compile or link.
    #[error("module `{name}`: {message}")]
    Module { name: String, message: String },
    /// The phase script is not valid shell or uses an unsupported construct.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// A host file (input, output, scratch, cache) could not be used.
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a phase script was rejected before running (from `shell-syntax`).
pub use shell_syntax::ScriptError;

/// A host builtin's write refused because the run's disk budget
/// ([`Limits::disk_bytes`](crate::Limits::disk_bytes)) is used up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("disk quota of {limit} bytes exceeded")]
#[non_exhaustive]
pub struct DiskFull {
    /// The run's disk budget in bytes.
    pub limit: u64,
}
