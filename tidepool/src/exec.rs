//! `tidepool exec`: runs one phase pipeline locally, as a job task would.

use clap::Args;

#[derive(Args)]
pub struct ExecArgs {
    /// The phase's `exec` string (POSIX shell syntax).
    pub pipeline: String,
}

/// Runs the phase and returns its exit status.
pub fn run(_args: ExecArgs) -> anyhow::Result<i32> {
    anyhow::bail!("tidepool exec: not implemented yet")
}
