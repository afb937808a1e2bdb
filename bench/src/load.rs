//! Object requests under concurrent load on a real `tidepool up`, each
//! against a baseline measured in the same run: the object rows of the
//! speed table ([`crate::table`]). The job rows come from the `jobs` bench;
//! the `speed` bench runs both in one run.
//!
//! `cargo run --release -p tidepool-bench --bin load -- [--seconds S] [--rows put,get,mib,disk]`
//!
//! 1. **4 KiB PUT**, 16 connections, durability 2, for S seconds: PUT/s
//!    against 16 threads each creating a file, writing 4 KiB and fsyncing
//!    it, as fast as they can, on the same filesystem (fio's write+fsync
//!    shape). Two copies on one disk make about 0.5 the ceiling.
//! 2. **4 KiB anonymous GET** (objects under `/alice/public`), 16
//!    connections: requests/s and latency percentiles.
//! 3. **1 MiB GET**, 16 connections: GB/s against the same client reading
//!    1 MiB responses from a minimal HTTP server on loopback that sends
//!    them from memory (what loopback TCP and the client allow here).
//! 4. **64 MiB GET from disk**, one client: every stored copy and every raw
//!    file evicted from the page cache first; MB/s against reading the same
//!    bytes from a raw file. Alternating sides, three rounds, medians; the
//!    same GETs again from the page cache say what the path costs without
//!    the disk.
//!
//! Nothing here asserts a time; every response is checked for its length.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tidepool_tests::{Cluster, payload};

use crate::table::Row;
use crate::{Gateway, evict, mb_per_s, median};

/// Connections (client tasks) of the concurrent rows.
const CONNS: usize = 16;

/// What one concurrent row saw.
struct Load {
    ops: u64,
    bytes: u64,
    elapsed: Duration,
    /// Every request's latency, sorted.
    latencies: Vec<Duration>,
}

impl Load {
    fn per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        let i = ((self.latencies.len().saturating_sub(1)) as f64 * p).round() as usize;
        self.latencies
            .get(i)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }
}

/// Runs `op(connection, sequence)` on `CONNS` tasks for `dur`; `op` returns
/// the bytes it moved.
async fn drive<F, Fut>(dur: Duration, op: F) -> Result<Load>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u64>> + Send,
{
    let op = Arc::new(op);
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for conn in 0..CONNS {
        let (op, seq) = (op.clone(), seq.clone());
        set.spawn(async move {
            let mut lat = Vec::new();
            let mut bytes = 0;
            while start.elapsed() < dur {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                bytes += op(conn, n).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>((lat, bytes))
        });
    }
    let mut load = Load {
        ops: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(r) = set.join_next().await {
        let (lat, bytes) = r??;
        load.ops += lat.len() as u64;
        load.bytes += bytes;
        load.latencies.extend(lat);
    }
    load.elapsed = start.elapsed();
    load.latencies.sort();
    Ok(load)
}

/// 16 threads creating, writing and fsyncing 4 KiB files for `dur`: ops/s.
fn baseline_put(dir: &std::path::Path, dur: Duration) -> Result<f64> {
    let data = payload(4 << 10, 4);
    let start = Instant::now();
    let ops: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CONNS)
            .map(|t| {
                let data = &data;
                s.spawn(move || -> Result<u64> {
                    use std::io::Write;
                    let mut n = 0u64;
                    while start.elapsed() < dur {
                        let p = dir.join(format!("put-{t}-{n}"));
                        let mut f = std::fs::File::create(&p)?;
                        f.write_all(data)?;
                        f.sync_all()?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("baseline thread").unwrap_or(0))
            .sum()
    });
    let rate = ops as f64 / start.elapsed().as_secs_f64();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("put-"))
        {
            std::fs::remove_file(p)?;
        }
    }
    Ok(rate)
}

/// A minimal HTTP/1.1 server on loopback answering every request with
/// `body` from memory (keep-alive): the ceiling of the 1 MiB GET row.
async fn loopback_server(body: bytes::Bytes) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\n\r\n",
                    body.len()
                );
                let mut buf = vec![0u8; 8192];
                let mut pending = Vec::new();
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    // One response per complete request head.
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        if sock.write_all(head.as_bytes()).await.is_err()
                            || sock.write_all(&body).await.is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(format!("http://{addr}"))
}

/// The command line of the `load` bench: seconds per row, and which rows
/// to run.
#[derive(Debug, Clone)]
pub struct Args {
    /// Seconds each concurrent row runs for.
    pub secs: u64,
    /// The rows to run, of [`ROWS`].
    pub rows: Vec<String>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            secs: 5,
            rows: ROWS.iter().map(|r| r.to_string()).collect(),
        }
    }
}

impl Args {
    /// Parses flags (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self> {
        const USAGE: &str = "usage: load [--seconds S] [--rows put,get,mib,disk]";
        let mut args = args.into_iter();
        let mut out = Args::default();
        while let Some(a) = args.next() {
            let mut value = || args.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--seconds" => out.secs = value()?.parse().context("--seconds: a number")?,
                "--rows" => {
                    out.rows = value()?.split(',').map(str::to_owned).collect();
                    if let Some(r) = out.rows.iter().find(|r| !ROWS.contains(&r.as_str())) {
                        bail!("unknown row {r:?} ({USAGE})");
                    }
                }
                other => bail!("unknown argument {other:?} ({USAGE})"),
            }
        }
        Ok(out)
    }

    fn runs(&self, row: &str) -> bool {
        self.rows.iter().any(|r| r == row)
    }
}

/// The rows, in the table's order.
pub const ROWS: [&str; 4] = ["put", "get", "mib", "disk"];

/// GETs `url` unsigned, checking the length; the bytes.
async fn get_anon(http: &reqwest::Client, url: &str, want: u64) -> Result<u64> {
    let mut resp = http.get(url).send().await?;
    if !resp.status().is_success() {
        bail!("GET {url}: {}", resp.status());
    }
    let mut n = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        n += chunk.len() as u64;
    }
    if n != want {
        bail!("GET {url}: {n} bytes, expected {want}");
    }
    Ok(n)
}

/// Starts a cluster, runs the rows `args` asks for, and returns them in
/// the table's order.
pub async fn run(args: &Args) -> Result<Vec<Row>> {
    let dur = Duration::from_secs(args.secs);
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let client = Arc::new(Gateway::connect(&cluster)?);
    let raw_dir = cluster.root.path().join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    // Storage nodes register shortly after the exports are printed.
    let ready = Instant::now();
    while let Err(e) = client.put("/alice/stor/ready", "ok\n").await {
        if ready.elapsed() > Duration::from_secs(60) {
            return Err(e.context("no storage nodes after 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "load bench: tidepool up at {}, {CONNS} connections, {} s per row, raw files under {}",
        cluster.url(),
        dur.as_secs(),
        raw_dir.display()
    );
    let mut rows = Vec::new();

    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let url = cluster.url();

    // 1. 4 KiB PUT.
    if args.runs("put") {
        let base = baseline_put(&raw_dir, dur)?;
        let data = bytes::Bytes::from(payload(4 << 10, 44));
        let c = client.clone();
        let puts = drive(dur, move |conn, n| {
            let (c, data) = (c.clone(), data.clone());
            async move {
                c.put(&format!("/alice/stor/p{conn}-{n}"), data).await?;
                Ok(4 << 10)
            }
        })
        .await?;
        let ratio = puts.per_s() / base;
        rows.push(Row {
            figure: format!(
                "4 KiB PUT, {CONNS} connections, durability 2, vs {CONNS}-thread write+fsync"
            ),
            tidepool: format!(
                "{:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
                puts.per_s(),
                puts.pct(0.5),
                puts.pct(0.99)
            ),
            baseline: format!("{base:.0} write+fsync/s"),
            ratio: format!("{ratio:.2}"),
            goal: ">= 0.45",
            met: ratio >= 0.45,
        });
    }

    // 2. 4 KiB anonymous GET.
    if args.runs("get") {
        let small = 256;
        for i in 0..small {
            client
                .put(
                    &format!("/alice/public/load-s{i}"),
                    bytes::Bytes::from(payload(4 << 10, i)),
                )
                .await?;
        }
        let (h, u) = (http.clone(), url.clone());
        let gets = drive(dur, move |_, n| {
            let (h, u) = (h.clone(), u.clone());
            async move {
                get_anon(
                    &h,
                    &format!("{u}/alice/public/load-s{}", n % small),
                    4 << 10,
                )
                .await
            }
        })
        .await?;
        rows.push(Row::alone(
            format!("4 KiB anonymous GET, {CONNS} connections"),
            format!(
                "{:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
                gets.per_s(),
                gets.pct(0.5),
                gets.pct(0.99)
            ),
            ">= 30k/s, p99 < 2 ms",
            gets.per_s() >= 30_000.0 && gets.pct(0.99) < 2.0,
        ));
    }

    // 3. 1 MiB GET against a loopback server sending from memory.
    if args.runs("mib") {
        let big = 32u64;
        let mib = bytes::Bytes::from(payload(1 << 20, 7));
        for i in 0..big {
            client
                .put(&format!("/alice/public/load-m{i}"), mib.clone())
                .await?;
        }
        let (h, u) = (http.clone(), url.clone());
        let tp =
            drive(dur, move |_, n| {
                let (h, u) = (h.clone(), u.clone());
                async move {
                    get_anon(&h, &format!("{u}/alice/public/load-m{}", n % big), 1 << 20).await
                }
            })
            .await?;
        let lo = loopback_server(mib).await?;
        let h = http.clone();
        let raw = drive(dur, move |_, _| {
            let (h, lo) = (h.clone(), lo.clone());
            async move { get_anon(&h, &lo, 1 << 20).await }
        })
        .await?;
        let gbs = |l: &Load| l.bytes as f64 / 1e9 / l.elapsed.as_secs_f64();
        rows.push(Row {
            figure: format!("1 MiB GET, {CONNS} connections"),
            tidepool: format!("{:.2} GB/s, p99 {:.1} ms", gbs(&tp), tp.pct(0.99)),
            baseline: format!("{:.2} GB/s (loopback HTTP from memory)", gbs(&raw)),
            ratio: format!("{:.2}", gbs(&tp) / gbs(&raw)),
            goal: ">= 2.2 GB/s",
            met: gbs(&tp) >= 2.2,
        });
    }

    // 4. 64 MiB GET from disk, one client.
    if args.runs("disk") {
        let count = 4;
        let data = bytes::Bytes::from(payload(64 << 20, 64));
        for i in 0..count {
            std::fs::write(raw_dir.join(format!("big-{i}")), &data)?;
            client
                .put(&format!("/alice/stor/big-{i}"), data.clone())
                .await?;
        }
        let nodes_dir = cluster.data_dir().join("nodes");
        let (mut raw_t, mut tp_t, mut warm_t) = (Vec::new(), Vec::new(), Vec::new());
        let get_all = || async {
            let t = Instant::now();
            for i in 0..count {
                let n = client.get_counted(&format!("/alice/stor/big-{i}")).await?;
                if n != 64 << 20 {
                    bail!("GET returned {n} bytes");
                }
            }
            Ok(t.elapsed())
        };
        for _ in 0..3 {
            evict(&raw_dir)?;
            let t = Instant::now();
            for i in 0..count {
                let n = std::fs::read(raw_dir.join(format!("big-{i}")))?.len();
                if n != 64 << 20 {
                    bail!("raw read {n} bytes");
                }
            }
            raw_t.push(t.elapsed());
            evict(&nodes_dir)?;
            tp_t.push(get_all().await?);
            // The same GETs from the page cache: what the path costs
            // without the disk.
            warm_t.push(get_all().await?);
        }
        let total = (count as u64) * (64 << 20);
        let (r, t, w) = (
            mb_per_s(total, median(raw_t)),
            mb_per_s(total, median(tp_t)),
            mb_per_s(total, median(warm_t)),
        );
        rows.push(Row {
            figure: "64 MiB GET from disk, one client, vs raw read".into(),
            tidepool: format!("{t:.0} MB/s (from the page cache: {w:.0})"),
            baseline: format!("{r:.0} MB/s (raw read, cold)"),
            ratio: format!("{:.2}", t / r),
            goal: ">= 0.9",
            met: t / r >= 0.9,
        });
    }
    Ok(rows)
}
