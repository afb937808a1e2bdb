//! The whole speed table (issue 17) in one run: the `jobs` bench's rows
//! (40 latency jobs per series, 2,000 map tasks, `grep -c` over 512 MiB in
//! 8 objects), then the `load` bench's (6 s per concurrent row), each on
//! its own fresh `tidepool up`, printed as one table at the end.
//!
//! `cargo run --release -p tidepool-bench --bin speed -- [--seconds S]`
//! (`--seconds` is the load rows'; the other flags of both benches are
//! theirs to take).

use anyhow::{Context, Result, bail};
use tidepool_bench::{jobs, load, table};

#[tokio::main]
async fn main() -> Result<()> {
    let mut secs = 6;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                secs = args
                    .next()
                    .context("--seconds needs a value")?
                    .parse()
                    .context("--seconds: a number")?;
            }
            other => bail!("unknown argument {other:?} (usage: speed [--seconds S])"),
        }
    }
    let jobs_args = jobs::Args {
        latency_jobs: 40,
        tasks: 2000,
        grep_mib: 512,
        ..jobs::Args::default()
    };
    let load_args = load::Args {
        secs,
        ..load::Args::default()
    };
    let mut rows = jobs::run(&jobs_args).await?;
    // The job rows' cluster is gone (dropped with its run) before the
    // object rows start theirs.
    rows.extend(load::run(&load_args).await?);
    let met = rows.iter().filter(|r| r.met).count();
    print!(
        "\nspeed table, one run ({met} of {} rows meet their goal):\n{}",
        rows.len(),
        table::render(&rows)
    );
    Ok(())
}
