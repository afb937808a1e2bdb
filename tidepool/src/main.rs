//! `tidepool`: the one binary. Only wiring and configuration live here;
//! every piece of logic belongs to a library crate.

mod admin;
mod admin_listen;
mod admin_nodes;
mod agents;
mod exec;
mod keys;
mod metastore;
mod node;
mod supervise;
mod up;

use clap::{Parser, Subcommand};

/// glibc's malloc was about a tenth of the CPU under GET load (issue 17's
/// profile: `malloc`, `_int_free`, `malloc_consolidate`; chunks are
/// allocated on one thread and freed on another). With mimalloc, 1 MiB
/// GETs under 16 connections went from 1.36-1.43 to 1.66-1.79 GB/s.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tidepool",
    version,
    about = "Object store with compute: Manta's API on wasm sandboxes"
)]
struct Cli {
    /// Log lines on stderr: `text` for people, `json` (one object a line,
    /// with the request id of every request's lines) for log pipelines.
    /// Verbosity: `RUST_LOG` (default: errors only for text, info for json).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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

/// Errors reach a person as one line, `error: what went wrong: why`, plus
/// a `hint:` line where there is an obvious next step; never a backtrace
/// (anyhow captures one under `RUST_BACKTRACE`, and `Debug` would print it).
fn main() -> std::process::ExitCode {
    // mimalloc asks for transparent huge pages on its arenas, so a page it
    // has purged (after a burst of requests or commits frees memory) comes
    // back as a fault that zeroes 2 MiB. Issue 17's profile of a memoized
    // job: 8% of the process in `clear_page_erms` under such faults. With
    // THP off for this process: memoized tasks/s 3,497 -> 4,051 and tasks/s
    // 377 -> 423 (means of 3 runs each), object rows unchanged.
    // Best effort: without it, only speed differs.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match run(cli.command) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            let hint = hint(&e);
            if json_logs() {
                tracing::error!(error = %format!("{e:#}"), hint, "stopped");
            } else {
                eprintln!("error: {e:#}");
                if let Some(hint) = hint {
                    eprintln!("hint: {hint}");
                }
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether stderr carries JSON logs (`--log-format json`).
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether stderr carries JSON logs, which every line there must then be.
pub fn json_logs() -> bool {
    JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A line for the person watching stderr (progress, where things are):
/// printed as is with text logs, an info event with JSON logs.
pub fn notice(message: &str) {
    if json_logs() {
        tracing::info!("{message}");
    } else {
        eprintln!("{message}");
    }
}

/// A warning that must not go unseen: with text logs both in the log
/// (whose default filter shows errors only) and on stderr as is; with JSON
/// logs, one warning event.
pub fn warning(message: &str) {
    tracing::warn!("{message}");
    if !json_logs() {
        eprintln!("{message}");
    }
}

fn init_logs(format: LogFormat) {
    JSON_LOGS.store(
        format == LogFormat::Json,
        std::sync::atomic::Ordering::Relaxed,
    );
    use tracing_subscriber::EnvFilter;
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_env_filter(EnvFilter::from_default_env())
            .init(),
        // Every line is one JSON object; the fields of the spans it is in
        // (a request's `req_id`, method and path) ride along in `span` (the
        // innermost) and `spans` (all of them, outermost first).
        LogFormat::Json => builder
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// Runs a subcommand; `Ok` holds the process's exit status.
fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Up(args) => runtime()?.block_on(up::run(args))?,
        // The phase's own status (0-255 by construction of the runner).
        Command::Exec(args) => return Ok(u8::try_from(exec::run(args)?).unwrap_or(1)),
        Command::Admin(args) => runtime()?.block_on(admin::run(args))?,
        Command::Supervisor(args) => runtime()?.block_on(supervise::run(args))?,
        Command::Node(args) => runtime()?.block_on(node::run(args))?,
        Command::ComputeWorker(args) => {
            // A worker runs one phase at a time, its stages interleaved at
            // epoch yields: one thread spares each task the cross-thread
            // wake-ups of a multi-thread scheduler (jobs bench, 3 alternating
            // rounds: 354/397/312 tasks/s against 341/330/271; `sort | uniq
            // -c` in the sandbox bench unchanged, 3.84 s against 3.87 s).
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(agents::worker(args.builtins, args.no_cache, args.stdout_fd))?
        }
    }
    Ok(0)
}

/// What to do next, for the failures whose remedy is clear from the cause.
fn hint(e: &anyhow::Error) -> Option<&'static str> {
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::AddrInUse => {
                    return Some(
                        "another process listens on that address: stop it, or pick another \
                         address (port 0 picks a free one)",
                    );
                }
                std::io::ErrorKind::PermissionDenied => {
                    return Some("check the owner and mode of the file or directory named above");
                }
                _ => {}
            }
        }
    }
    let text = format!("{e:#}");
    if text.contains("syntax error") {
        return Some(
            "a phase is a POSIX shell command line: check its quotes and brackets \
             (try it with `tidepool exec '...'`)",
        );
    }
    if text.contains("metadata") && text.contains("unavailable") {
        return Some("is the metadata cluster (--meta) up and reachable from here?");
    }
    None
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
