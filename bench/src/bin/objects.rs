//! Object PUT/GET throughput of a real `tidepool up` vs the raw disk.
//!
//! `cargo run --release -p tidepool-bench --bin objects`
//!
//! For 4 KiB, 1 MiB and 64 MiB objects (durability 2), one client PUTs and
//! then GETs every object in turn over HTTP (signed like the Manta CLI).
//! Baselines, measured in the same run on the same filesystem: PUT = write
//! the same bytes to two files with an fsync each; GET = read the same file.
//! GETs are measured twice: *warm* (the bytes are in the page cache on both
//! sides, so the figure is Tidepool's HTTP/copy overhead against a memory
//! copy) and *cold* (every raw file and every stored copy evicted from the
//! page cache with `posix_fadvise(DONTNEED)` first, so both read the disk,
//! as a GET of an object nobody touched recently does). The GET passes
//! alternate between baseline and Tidepool, three rounds, and the median
//! of each side is reported.
//! Prints MB/s for each and the ratio Tidepool/baseline.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tidepool_bench::{Gateway, evict, mb_per_s, median};
use tidepool_tests::{Cluster, payload};

fn baseline_put(dir: &std::path::Path, data: &[u8], count: usize) -> Result<Duration> {
    let t = Instant::now();
    for i in 0..count {
        for copy in 0..2 {
            let mut f = std::fs::File::create(dir.join(format!("raw-{i}-{copy}")))?;
            f.write_all(data)?;
            f.sync_all()?;
        }
    }
    Ok(t.elapsed())
}

fn baseline_get(dir: &std::path::Path, count: usize) -> Result<Duration> {
    let mut buf = vec![0u8; 1 << 20];
    let t = Instant::now();
    for i in 0..count {
        let mut f = std::fs::File::open(dir.join(format!("raw-{i}-0")))?;
        while f.read(&mut buf)? > 0 {}
    }
    Ok(t.elapsed())
}

/// Timed passes of each GET measurement; the median is reported.
const ROUNDS: usize = 3;

#[tokio::main]
async fn main() -> Result<()> {
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let client = Gateway::connect(&cluster)?;
    let raw_dir = cluster.root.path().join("raw");
    std::fs::create_dir_all(&raw_dir)?;

    println!(
        "object bench: one client, sequential requests, durability 2, data under {}",
        raw_dir.display()
    );
    println!(
        "{:>8} {:>5} | {:>12} {:>12} {:>5} | {:>12} {:>12} {:>5} | {:>12} {:>12} {:>5}",
        "size",
        "count",
        "raw put",
        "tp put",
        "ratio",
        "raw get warm",
        "tp get warm",
        "ratio",
        "raw get cold",
        "tp get cold",
        "ratio"
    );
    let get_all = |size: usize, count: usize| {
        let client = &client;
        async move {
            let t = Instant::now();
            for i in 0..count {
                let n = client
                    .get_counted(&format!("/alice/stor/b{size}-{i}"))
                    .await?;
                if n != size as u64 {
                    bail!("GET returned {n} bytes, expected {size}");
                }
            }
            Ok(t.elapsed())
        }
    };
    let nodes_dir = cluster.data_dir().join("nodes");
    for (label, size, count) in [
        ("4 KiB", 4usize << 10, 1000usize),
        ("1 MiB", 1 << 20, 200),
        ("64 MiB", 64 << 20, 8),
    ] {
        let data = bytes::Bytes::from(payload(size, size as u64));
        let total = (size * count) as u64;
        let raw_put = baseline_put(&raw_dir, &data, count)?;
        let t = Instant::now();
        for i in 0..count {
            client
                .put(&format!("/alice/stor/b{size}-{i}"), data.clone())
                .await?;
        }
        let tp_put = t.elapsed();

        // First pass warms whatever caches Tidepool has (and the metadata
        // store's pages), as the raw warm read had its file cached.
        get_all(size, count).await?;
        // The disk's speed drifts by up to 2x within a minute here, so the
        // two sides take turns, ROUNDS times, and each reports its median.
        let (mut raw_warm, mut tp_warm, mut raw_cold, mut tp_cold) =
            (vec![], vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            raw_warm.push(baseline_get(&raw_dir, count)?);
            tp_warm.push(get_all(size, count).await?);
            evict(&raw_dir)?;
            raw_cold.push(baseline_get(&raw_dir, count)?);
            evict(&nodes_dir)?;
            tp_cold.push(get_all(size, count).await?);
        }
        let [raw_warm, tp_warm, raw_cold, tp_cold] =
            [raw_warm, tp_warm, raw_cold, tp_cold].map(median);
        let rate = |d| mb_per_s(total, d);
        let (rp, tpp) = (rate(raw_put), rate(tp_put));
        let (rw, tw, rc, tc) = (rate(raw_warm), rate(tp_warm), rate(raw_cold), rate(tp_cold));
        println!(
            "{label:>8} {count:>5} | {rp:>7.1} MB/s {tpp:>7.1} MB/s {:>5.2} | {rw:>7.1} MB/s {tw:>7.1} MB/s {:>5.2} | {rc:>7.1} MB/s {tc:>7.1} MB/s {:>5.2}",
            tpp / rp,
            tw / rw,
            tc / rc
        );
        for i in 0..count {
            for copy in 0..2 {
                let _ = std::fs::remove_file(raw_dir.join(format!("raw-{i}-{copy}")));
            }
        }
    }
    Ok(())
}
