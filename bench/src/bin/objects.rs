//! Object PUT/GET throughput of a real `tidepool up` vs the raw disk.
//!
//! `cargo run --release -p tidepool-bench --bin objects`
//!
//! For 4 KiB, 1 MiB and 64 MiB objects (durability 2), one client PUTs and
//! then GETs every object in turn over HTTP (signed like the Manta CLI).
//! Baselines, measured in the same run on the same filesystem: PUT = write
//! the same bytes to two files with an fsync each; GET = read the same file.
//! Prints MB/s for both and the ratio Tidepool/baseline.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use tidepool_bench::mb_per_s;
use tidepool_tests::{Cluster, payload};

struct Client {
    http: reqwest::Client,
    url: String,
    signer: auth::sign::RequestSigner,
}

impl Client {
    fn headers(&self) -> Result<reqwest::header::HeaderMap> {
        let date = auth::sign::http_date(SystemTime::now());
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("authorization", self.signer.authorization(&date)?.parse()?);
        h.insert("date", date.parse()?);
        Ok(h)
    }

    async fn put(&self, path: &str, body: bytes::Bytes) -> Result<()> {
        let resp = self
            .http
            .put(format!("{}{path}", self.url))
            .headers(self.headers()?)
            .header("content-type", "application/octet-stream")
            .header("durability-level", "2")
            .body(body)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "PUT {path}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    async fn get(&self, path: &str) -> Result<u64> {
        let mut resp = self
            .http
            .get(format!("{}{path}", self.url))
            .headers(self.headers()?)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("GET {path}: {}", resp.status());
        }
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            n += chunk.len() as u64;
        }
        Ok(n)
    }
}

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

#[tokio::main]
async fn main() -> Result<()> {
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let key_file = cluster.public_key().with_extension("");
    let pem = std::fs::read_to_string(&key_file).with_context(|| key_file.display().to_string())?;
    let key = auth::sign::SigningKey::from_openssh(&pem)?;
    let client = Client {
        http: reqwest::Client::new(),
        url: cluster.url(),
        signer: auth::sign::RequestSigner::new(key, "alice", None),
    };
    let raw_dir = cluster.root.path().join("raw");
    std::fs::create_dir_all(&raw_dir)?;

    println!(
        "object bench: one client, sequential requests, durability 2, data under {}",
        raw_dir.display()
    );
    println!(
        "{:>8} {:>6} | {:>10} {:>10} {:>6} | {:>10} {:>10} {:>6}",
        "size", "count", "raw put", "tp put", "ratio", "raw get", "tp get", "ratio"
    );
    for (label, size, count) in [
        ("4 KiB", 4usize << 10, 1000usize),
        ("1 MiB", 1 << 20, 200),
        ("64 MiB", 64 << 20, 8),
    ] {
        let data = bytes::Bytes::from(payload(size, size as u64));
        let total = (size * count) as u64;
        let raw_put = baseline_put(&raw_dir, &data, count)?;
        let raw_get = baseline_get(&raw_dir, count)?;

        let t = Instant::now();
        for i in 0..count {
            client
                .put(&format!("/alice/stor/b{size}-{i}"), data.clone())
                .await?;
        }
        let tp_put = t.elapsed();
        let t = Instant::now();
        for i in 0..count {
            let n = client.get(&format!("/alice/stor/b{size}-{i}")).await?;
            if n != size as u64 {
                bail!("GET returned {n} bytes, expected {size}");
            }
        }
        let tp_get = t.elapsed();
        let (rp, tpp, rg, tpg) = (
            mb_per_s(total, raw_put),
            mb_per_s(total, tp_put),
            mb_per_s(total, raw_get),
            mb_per_s(total, tp_get),
        );
        println!(
            "{label:>8} {count:>6} | {rp:>8.1}MB/s {tpp:>8.1}MB/s {:>6.2} | {rg:>8.1}MB/s {tpg:>8.1}MB/s {:>6.2}",
            tpp / rp,
            tpg / rg
        );
        for i in 0..count {
            for copy in 0..2 {
                let _ = std::fs::remove_file(raw_dir.join(format!("raw-{i}-{copy}")));
            }
        }
    }
    Ok(())
}
