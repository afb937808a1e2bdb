//! Benchmarks that print ratios against baselines measured in the same run.
//!
//! Run them outside CI, in release mode, e.g.
//! `cargo run --release -p tidepool-bench --bin sandbox`. Each binary
//! measures Tidepool and its baseline (raw disk with fsync, native GNU tools)
//! on the same bytes, on this machine, in one run, and prints both figures
//! and their ratio. Nothing here asserts a time.
//!
//! The speed table's rows live in [`jobs`] and [`load`], printed by
//! [`table`]: `--bin speed` runs them all in one run, `--bin jobs` and
//! `--bin load` their halves.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

pub mod jobs;
pub mod load;
pub mod table;

use anyhow::{Result, bail};
use tidepool_tests::Cluster;

/// A client for a test cluster's gateway that signs every request as the
/// Manta CLI does (HTTP Signature with the account's key), so benches time
/// the server rather than the Node.js CLI.
pub struct Gateway {
    /// The underlying HTTP client (TCP_NODELAY).
    pub http: reqwest::Client,
    /// The gateway's base URL.
    pub url: String,
    signer: auth::sign::RequestSigner,
}

impl Gateway {
    /// Signs as `alice` with the private key of the cluster's account.
    pub fn connect(cluster: &Cluster) -> Result<Gateway> {
        let key = cluster.signing_key()?;
        Ok(Gateway {
            http: reqwest::Client::builder().tcp_nodelay(true).build()?,
            url: cluster.url(),
            signer: auth::sign::RequestSigner::new(key, "alice", None),
        })
    }

    /// `date` and `authorization` headers for a request sent now.
    pub fn headers(&self) -> Result<reqwest::header::HeaderMap> {
        let date = auth::sign::http_date(SystemTime::now());
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("authorization", self.signer.authorization(&date)?.parse()?);
        h.insert("date", date.parse()?);
        Ok(h)
    }

    /// `resp` if it succeeded, else an error naming `what` with the body.
    pub async fn check(resp: reqwest::Response, what: &str) -> Result<reqwest::Response> {
        if !resp.status().is_success() {
            bail!(
                "{what}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(resp)
    }

    /// A signed GET of `path`, its status checked.
    pub async fn get(&self, path: &str) -> Result<reqwest::Response> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .headers(self.headers()?)
            .send()
            .await?;
        Self::check(resp, &format!("GET {path}")).await
    }

    /// GETs `path` as text.
    pub async fn get_text(&self, path: &str) -> Result<String> {
        Ok(self.get(path).await?.text().await?)
    }

    /// GETs `path`, counting (not keeping) its bytes.
    pub async fn get_counted(&self, path: &str) -> Result<u64> {
        let mut resp = self.get(path).await?;
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    /// Stores `body` at `path` with durability 2.
    pub async fn put(&self, path: &str, body: impl Into<reqwest::Body>) -> Result<()> {
        let resp = self
            .http
            .put(format!("{}{path}", self.url))
            .headers(self.headers()?)
            .header("content-type", "application/octet-stream")
            .header("durability-level", "2")
            .body(body)
            .send()
            .await?;
        Self::check(resp, &format!("PUT {path}")).await?;
        Ok(())
    }
}

/// Median wall time of `runs` executions of `f`.
pub fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// The median of `times` (the upper one of an even count).
pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Drops the clean page-cache pages of every regular file under `dir`, so
/// the next read of them reads the disk.
pub fn evict(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            evict(&path)?;
        } else if meta.is_file() {
            let f = std::fs::File::open(&path)?;
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
        }
    }
    Ok(())
}

/// Megabytes (10^6 bytes) per second for `bytes` moved in `d`.
pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Writes `size` bytes of Apache-style access-log text to `path`
/// (deterministic), unless a file of that size is already there.
pub fn generate_log(path: &Path, size: u64) -> std::io::Result<()> {
    use std::io::Write;
    if path.metadata().map(|m| m.len() == size).unwrap_or(false) {
        return Ok(());
    }
    let paths = [
        "/login",
        "/index.html",
        "/api/v1/items",
        "/static/app.js",
        "/logout",
        "/search?q=tide",
    ];
    let methods = ["GET", "GET", "GET", "POST", "PUT"];
    let statuses = [200, 200, 200, 304, 404, 500];
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut written = 0u64;
    let mut line = Vec::with_capacity(256);
    while written < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        line.clear();
        let r = x;
        writeln!(
            line,
            "10.{}.{}.{} - - [22/Nov/2026:{:02}:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {} {}",
            (r >> 8) % 4,
            (r >> 16) % 16,
            (r >> 24) % 256,
            (r >> 32) % 24,
            (r >> 40) % 60,
            (r >> 46) % 60,
            methods[((r >> 52) % methods.len() as u64) as usize],
            paths[((r >> 55) % paths.len() as u64) as usize],
            statuses[((r >> 58) % statuses.len() as u64) as usize],
            (r >> 20) % 50_000,
        )?;
        let take = line.len().min((size - written) as usize);
        out.write_all(&line[..take])?;
        written += take as u64;
    }
    out.flush()
}
