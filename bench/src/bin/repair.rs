//! Repair throughput against the raw copy speed of the same disk, and
//! what repair costs foreground requests.
//!
//! `cargo run --release -p tidepool-bench --bin repair`
//!
//! A multi-process deployment (gateway, three `tidepool node`s on the TiKV
//! test double, repair passes every second, unthrottled): 1 MiB objects at
//! durability 2; node3 is killed and declared lost, and the time until every
//! object it held has two intact copies again (read from the nodes' disks)
//! gives repair's MB/s. Baseline, same run, same file system: copying the
//! same number of bytes file to file with an fsync each (what a copy costs
//! without HTTP, checksums or metadata). Foreground: one client alternating
//! a 4 KiB PUT and a 1 MiB GET, latency percentiles before the loss (no
//! repair) and while repair runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tidepool_bench::{Gateway, mb_per_s};
use tidepool_tests::deployment::{Deployment, DeploymentOptions};
use tidepool_tests::payload;

const OBJECTS: usize = 400;
const SIZE: usize = 1 << 20;

fn copy_path(node_dir: &Path, id: &str) -> PathBuf {
    node_dir.join("objects").join(&id[..2]).join(id)
}

/// Latencies of alternating 4 KiB PUTs and 1 MiB GETs until `stop`.
async fn foreground(
    client: &Gateway,
    stop: &AtomicBool,
    tag: &str,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let small = bytes::Bytes::from(payload(4096, 7));
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        client
            .put(&format!("/alice/stor/fg-{tag}-{i}"), small.clone())
            .await?;
        puts.push(t.elapsed());
        let t = Instant::now();
        let n = client
            .get_counted(&format!("/alice/stor/r{}", i % OBJECTS))
            .await?;
        if n != SIZE as u64 {
            bail!("GET returned {n} bytes");
        }
        gets.push(t.elapsed());
        i += 1;
    }
    Ok((puts, gets))
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut d = tokio::task::spawn_blocking(|| {
        Deployment::start(DeploymentOptions {
            supervisors: 0,
            node_args: [
                "--repair-every",
                "1s",
                "--repair-rate",
                "0",
                "--audit-every",
                "1h",
                "--scrub-every",
                "7d",
            ]
            .map(String::from)
            .to_vec(),
            ..DeploymentOptions::default()
        })
    })
    .await??;
    let client = Gateway::connect(&d.gateway)?;
    let mut ids = Vec::new();
    for i in 0..OBJECTS {
        let body = bytes::Bytes::from(payload(SIZE, i as u64 + 1));
        let path = format!("/alice/stor/r{i}");
        client.put(&path, body).await?;
        let resp = client
            .http
            .head(format!("{}{path}", client.url))
            .headers(client.headers()?)
            .send()
            .await?;
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned();
        ids.push(etag);
    }
    let on_node3: Vec<&String> = ids
        .iter()
        .filter(|id| copy_path(&d.node_dir(2), id).exists())
        .collect();
    let restored_bytes = (on_node3.len() * SIZE) as u64;

    // Baseline: the same bytes copied file to file, fsync each.
    let raw = d.gateway.root.path().join("raw-copy");
    std::fs::create_dir_all(&raw)?;
    let t = Instant::now();
    for id in &on_node3 {
        let src = [0, 1]
            .iter()
            .map(|&n| copy_path(&d.node_dir(n), id))
            .find(|p| p.exists())
            .expect("a surviving copy");
        let bytes = std::fs::read(&src)?;
        let mut f = std::fs::File::create(raw.join(id.as_str()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    let raw_time = t.elapsed();

    // Foreground without repair.
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let (mut q_puts, mut q_gets) = foreground(&client, &stop, "quiet").await?;
    quiet.await?;

    // Lose node3; repair while the foreground client runs.

    d.nodes[2].kill9();
    d.admin(&["node", "lost", "node3"])?;
    let t = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let fg = {
        let (client, stop) = (Gateway::connect(&d.gateway)?, stop.clone());
        tokio::spawn(async move { foreground(&client, &stop, "busy").await })
    };
    loop {
        let short = on_node3
            .iter()
            .filter(|id| {
                ![0, 1].iter().all(|&n| {
                    std::fs::metadata(copy_path(&d.node_dir(n), id))
                        .is_ok_and(|m| m.len() == SIZE as u64)
                })
            })
            .count();
        if short == 0 {
            break;
        }
        if t.elapsed() > Duration::from_secs(900) {
            bail!("repair did not finish: {short} objects short");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let repair_time = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut b_puts, mut b_gets) = fg.await??;

    let (tp, rw) = (
        mb_per_s(restored_bytes, repair_time),
        mb_per_s(restored_bytes, raw_time),
    );
    println!(
        "repair bench: {} of {OBJECTS} 1 MiB objects lost a copy with node3 ({} MB)",
        on_node3.len(),
        restored_bytes / 1_000_000
    );
    println!(
        "restore: repair {tp:.1} MB/s ({:.1} s, including up to 1 s until the next pass) | raw file copy + fsync {rw:.1} MB/s | ratio {:.2}",
        repair_time.as_secs_f64(),
        tp / rw
    );
    println!(
        "foreground 4 KiB PUT ms p50/p99: quiet {:.1}/{:.1}, during repair {:.1}/{:.1} ({} and {} requests)",
        pct(&mut q_puts, 0.5),
        pct(&mut q_puts, 0.99),
        pct(&mut b_puts, 0.5),
        pct(&mut b_puts, 0.99),
        q_puts.len(),
        b_puts.len()
    );
    println!(
        "foreground 1 MiB GET ms p50/p99: quiet {:.1}/{:.1}, during repair {:.1}/{:.1}",
        pct(&mut q_gets, 0.5),
        pct(&mut q_gets, 0.99),
        pct(&mut b_gets, 0.5),
        pct(&mut b_gets, 0.99)
    );
    // The deployment owns a runtime of its own: drop it off this one.
    tokio::task::spawn_blocking(move || drop(d)).await?;
    Ok(())
}
