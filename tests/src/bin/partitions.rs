//! The partition suite, for long runs outside CI:
//!
//! ```text
//! cargo run -p tidepool-tests --bin partitions -- --seed N --minutes M [--nodes K]
//! ```
//!
//! Starts a deployment with every process in its own network namespace
//! (root required), injects the faults the seed draws for M minutes while
//! clients run, heals, checks every promise, prints the operations by kind
//! and outcome, the faults injected and the checker's verdicts, and exits
//! 1 on any violation (0 when namespaces are unavailable: it says why).
//! See docs/partitions.md.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tidepool_tests::partitions::{Config, Outcome, run};

fn main() -> Result<()> {
    let mut cfg = Config::ci(1, Duration::from_secs(600));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> Result<u64> {
            args.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| format!("{name} takes a number"))
        };
        match a.as_str() {
            "--seed" => cfg.seed = value("--seed")?,
            "--minutes" => cfg.fault_time = Duration::from_secs(60 * value("--minutes")?),
            "--seconds" => cfg.fault_time = Duration::from_secs(value("--seconds")?),
            "--nodes" => cfg.nodes = value("--nodes")? as usize,
            "--keys" => cfg.keys = value("--keys")? as usize,
            "--clients" => cfg.clients = value("--clients")? as usize,
            _ => bail!(
                "usage: partitions --seed N --minutes M [--seconds S] [--nodes K] [--keys K] [--clients C]"
            ),
        }
    }
    if !(3..=5).contains(&cfg.nodes) {
        bail!("--nodes must be 3 to 5");
    }
    match run(&cfg)? {
        Outcome::Skipped(why) => {
            println!("partitions: SKIPPED: {why}");
            Ok(())
        }
        Outcome::Ran(summary) => {
            println!("{}", summary.render());
            for l in &summary.fault_log {
                println!("fault {l}");
            }
            if !summary.ok() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
