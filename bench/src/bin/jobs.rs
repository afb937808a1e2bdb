//! The job rows of the speed table: see [`tidepool_bench::jobs`].

use anyhow::Result;
use tidepool_bench::{jobs, table};

#[tokio::main]
async fn main() -> Result<()> {
    let args = jobs::Args::parse(std::env::args().skip(1))?;
    let rows = jobs::run(&args).await?;
    print!("\n{}", table::render(&rows));
    Ok(())
}
