//! The object rows of the speed table: see [`tidepool_bench::load`].

use anyhow::Result;
use tidepool_bench::{load, table};

#[tokio::main]
async fn main() -> Result<()> {
    let args = load::Args::parse(std::env::args().skip(1))?;
    let rows = load::run(&args).await?;
    print!("\n{}", table::render(&rows));
    Ok(())
}
