//! `tidepool`: the one binary. Only wiring and configuration live here;
//! every piece of logic belongs to a library crate.

mod exec;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tidepool", version, about = "Object store with compute: Manta's API on wasm sandboxes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job phase locally, exactly as a job task would run it.
    Exec(exec::ExecArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Exec(args) => std::process::exit(exec::run(args)?),
    }
}
