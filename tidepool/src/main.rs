//! `tidepool`: the one binary. Only wiring and configuration live here;
//! every piece of logic belongs to a library crate.

mod admin;
mod admin_nodes;
mod agents;
mod exec;
mod keys;
mod metastore;
mod node;
mod supervise;
mod up;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tidepool",
    version,
    about = "Object store with compute: Manta's API on wasm sandboxes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a single-machine Tidepool: embedded metadata, storage nodes, gateway.
    Up(up::UpArgs),
    /// Run a job phase locally, exactly as a job task would run it.
    Exec(exec::ExecArgs),
    /// Manage accounts and keys of a (stopped) deployment.
    Admin(admin::AdminArgs),
    /// Run a job supervisor on its own against shared metadata.
    Supervisor(supervise::SupervisorArgs),
    /// Run one storage node (with its compute agent) against shared metadata.
    Node(node::NodeArgs),
    /// A task worker process of a compute agent (started by the agent).
    #[command(name = "compute-worker", hide = true)]
    ComputeWorker(WorkerArgs),
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// The agent's builtin socket.
    #[arg(long)]
    builtins: Option<std::path::PathBuf>,
    /// Don't cache compiled modules on disk.
    #[arg(long)]
    no_cache: bool,
    /// An inherited descriptor that is the spawning process's stdout.
    #[arg(long)]
    stdout_fd: Option<i32>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => runtime()?.block_on(up::run(args)),
        Command::Exec(args) => std::process::exit(exec::run(args)?),
        Command::Admin(args) => runtime()?.block_on(admin::run(args)),
        Command::Supervisor(args) => runtime()?.block_on(supervise::run(args)),
        Command::Node(args) => runtime()?.block_on(node::run(args)),
        Command::ComputeWorker(args) => {
            // A worker runs one phase at a time, its stages interleaved at
            // epoch yields: one thread spares each task the cross-thread
            // wake-ups of a multi-thread scheduler (jobs bench, 3 alternating
            // rounds: 354/397/312 tasks/s against 341/330/271; `sort | uniq
            // -c` in the sandbox bench unchanged, 3.84 s against 3.87 s).
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(agents::worker(args.builtins, args.no_cache, args.stdout_fd))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
