//! The S3 API against Garage: the same boto3 workload on both, in one run,
//! on this machine, both with fsync on and both keeping two copies.
//!
//! `cargo run --release -p tidepool-bench --bin s3`
//!
//! Tidepool: `tidepool up --s3-listen` (three nodes, embedded metadata,
//! durability 2: two fsynced copies on two nodes). Garage: two `garage
//! server` processes on this machine with `replication_factor = 2`,
//! `data_fsync = true`, `metadata_fsync = true` (LMDB). Garage is built
//! from crates.io, once, outside CI:
//!
//! `cargo install garage --version 2.5.0 --locked --root .tools/garage
//!  --no-default-features --features lmdb,bundled-libs`
//!
//! (or name a binary with `GARAGE_BIN`). boto3 comes from `scripts/setup`
//! (`.tools/s3`). The workload, for each store: 16 client threads PUT then
//! GET `--small-count` 4 KiB objects, then `--large-count` 64 MiB objects
//! (single PUTs); it prints ops/s, MB/s and latency percentiles, and the
//! ratios Tidepool/Garage (above 1: Tidepool faster). Nothing here asserts
//! a time.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tidepool_tests::{Cluster, ClusterOptions};

/// The workload, run by the `.tools/s3` Python with boto3. Prints one JSON
/// line per (size, operation).
const WORKLOAD: &str = r#"
import concurrent.futures as cf, json, os, sys, time
import boto3
from botocore.config import Config

s3 = boto3.client('s3', endpoint_url=os.environ['S3_URL'],
                  region_name=os.environ['S3_REGION'],
                  config=Config(max_pool_connections=64, retries={'max_attempts': 1},
                                s3={'addressing_style': 'path'}))
bucket = os.environ['BUCKET']
threads = int(os.environ['THREADS'])
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]

for size, count in ((4096, int(os.environ['SMALL'])), (64 << 20, int(os.environ['LARGE']))):
    body = os.urandom(size)
    def put(i):
        t = time.perf_counter()
        s3.put_object(Bucket=bucket, Key='b%d/%d' % (size, i), Body=body)
        return time.perf_counter() - t
    def get(i):
        t = time.perf_counter()
        got = s3.get_object(Bucket=bucket, Key='b%d/%d' % (size, i))['Body'].read()
        if got != body:
            sys.exit('wrong bytes for b%d/%d' % (size, i))
        return time.perf_counter() - t
    for op, f in (('PUT', put), ('GET', get)):
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(threads) as ex:
            lat = list(ex.map(f, range(count)))
        wall = time.perf_counter() - t0
        print(json.dumps({'size': size, 'op': op, 'count': count, 'wall': wall,
                          'p50': pct(lat, 0.5), 'p99': pct(lat, 0.99)}), flush=True)
"#;

struct Args {
    small: usize,
    large: usize,
    threads: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        small: 2000,
        large: 32,
        threads: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> Result<usize> {
            it.next()
                .with_context(|| format!("{flag} needs a value"))?
                .parse()
                .with_context(|| format!("{flag}: a number"))
        };
        match flag.as_str() {
            "--small-count" => a.small = value()?,
            "--large-count" => a.large = value()?,
            "--threads" => a.threads = value()?,
            other => bail!(
                "unknown argument {other}; flags: --small-count N --large-count N --threads N"
            ),
        }
    }
    Ok(a)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One store's S3 endpoint and credentials.
struct Endpoint {
    url: String,
    region: String,
    key_id: String,
    secret: String,
}

/// Runs the workload against `ep`; returns its JSON lines.
fn workload(ep: &Endpoint, a: &Args, bucket: &str) -> Result<Vec<Value>> {
    let python = workspace().join(".tools/s3/bin/python3");
    if !python.is_file() {
        bail!("{} is missing: run scripts/setup", python.display());
    }
    let out = Command::new(python)
        .arg("-c")
        .arg(WORKLOAD)
        .env("S3_URL", &ep.url)
        .env("S3_REGION", &ep.region)
        .env("AWS_ACCESS_KEY_ID", &ep.key_id)
        .env("AWS_SECRET_ACCESS_KEY", &ep.secret)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("BUCKET", bucket)
        .env("THREADS", a.threads.to_string())
        .env("SMALL", a.small.to_string())
        .env("LARGE", a.large.to_string())
        .output()
        .context("run the boto3 workload")?;
    if !out.status.success() {
        bail!(
            "workload against {} failed: {}",
            ep.url,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).context("a workload line"))
        .collect()
}

/// Garage: two servers, replication 2, fsync on; killed on drop.
struct Garage {
    servers: Vec<Child>,
    _dir: tempfile::TempDir,
    endpoint: Endpoint,
}

impl Drop for Garage {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

fn garage_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GARAGE_BIN") {
        return Some(p.into());
    }
    let p = workspace().join(".tools/garage/bin/garage");
    p.is_file().then_some(p)
}

fn garage_cmd(bin: &Path, config: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin)
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .with_context(|| format!("garage {args:?}"))?;
    if !out.status.success() {
        bail!(
            "garage {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Retries `f` for up to `limit` (a server still starting).
fn retry<T>(limit: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn start_garage(bin: &Path) -> Result<Garage> {
    let dir = tempfile::Builder::new().prefix("garage-bench-").tempdir()?;
    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand_byte()))
        .collect::<Vec<_>>()
        .concat();
    let s3_port = free_port()?;
    let mut configs = Vec::new();
    let mut servers = Vec::new();
    for n in 0..2 {
        let rpc = free_port()?;
        let root = dir.path().join(format!("n{n}"));
        std::fs::create_dir_all(&root)?;
        // Only the first serves S3; both hold data.
        let api = if n == 0 { s3_port } else { free_port()? };
        let config = root.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "lmdb"
metadata_fsync = true
data_fsync = true
replication_factor = 2
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{api}"
root_domain = ".s3.garage.localhost"
"#,
                root = root.display()
            ),
        )?;
        let log = std::fs::File::create(root.join("log"))?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start garage server")?;
        servers.push(child);
        configs.push(config);
    }
    let mut garage = Garage {
        servers,
        _dir: dir,
        endpoint: Endpoint {
            url: format!("http://127.0.0.1:{s3_port}"),
            region: "garage".into(),
            key_id: String::new(),
            secret: String::new(),
        },
    };
    let ids: Vec<String> = configs
        .iter()
        .map(|c| {
            retry(Duration::from_secs(30), || {
                Ok(garage_cmd(bin, c, &["node", "id", "-q"])?.trim().to_owned())
            })
        })
        .collect::<Result<_>>()?;
    retry(Duration::from_secs(30), || {
        garage_cmd(bin, &configs[0], &["node", "connect", &ids[1]])
    })?;
    for (i, id) in ids.iter().enumerate() {
        let short = id.split('@').next().unwrap_or(id);
        let zone = format!("dc{i}");
        retry(Duration::from_secs(30), || {
            garage_cmd(
                bin,
                &configs[0],
                &["layout", "assign", "-z", &zone, "-c", "10GB", short],
            )
        })?;
    }
    retry(Duration::from_secs(30), || {
        garage_cmd(bin, &configs[0], &["layout", "apply", "--version", "1"])
    })?;
    let key = garage_cmd(bin, &configs[0], &["key", "create", "bench"])?;
    let field = |name: &str| {
        key.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().trim_start_matches(':').trim().to_owned())
            .with_context(|| format!("{name} in `garage key create`: {key}"))
    };
    garage.endpoint.key_id = field("Key ID")?;
    garage.endpoint.secret = field("Secret key")?;
    garage_cmd(
        bin,
        &configs[0],
        &["key", "allow", "--create-bucket", "bench"],
    )?;
    Ok(garage)
}

/// A byte from the kernel's random source (for Garage's RPC secret).
fn rand_byte() -> u8 {
    use std::io::Read as _;
    let mut b = [0u8; 1];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b[0]
}

fn start_tidepool() -> Result<(Cluster, Endpoint)> {
    let mut c = Cluster::start_with(ClusterOptions {
        args: vec!["--s3-listen".into(), "127.0.0.1:0".into()],
        ..Default::default()
    })?;
    let printed = c.admin(&["s3-key", "add", "alice"])?;
    let var = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(str::to_owned)
            .with_context(|| format!("{name} in {printed:?}"))
    };
    let url = c
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("S3 API at "))
        .and_then(|r| r.split_whitespace().next())
        .context("tidepool up prints the S3 API address")?
        .to_owned();
    let ep = Endpoint {
        url,
        region: "us-east-1".into(),
        key_id: var("AWS_ACCESS_KEY_ID")?,
        secret: var("AWS_SECRET_ACCESS_KEY")?,
    };
    Ok((c, ep))
}

fn find(lines: &[Value], size: u64, op: &str) -> Option<(f64, f64, f64, f64)> {
    let l = lines.iter().find(|l| l["size"] == size && l["op"] == op)?;
    let count = l["count"].as_f64()?;
    let wall = l["wall"].as_f64()?;
    Some((
        count / wall,
        count * size as f64 / wall / 1e6,
        l["p50"].as_f64()? * 1e3,
        l["p99"].as_f64()? * 1e3,
    ))
}

fn main() -> Result<()> {
    let a = args()?;
    let (_tidepool, tp) = start_tidepool()?;
    println!(
        "s3 bench: boto3, {} threads; {} x 4 KiB and {} x 64 MiB objects, PUT then GET",
        a.threads, a.small, a.large
    );
    println!("tidepool: {} (3 nodes, durability 2, fsync)", tp.url);
    let t = workload(&tp, &a, "bench")?;
    let g = match garage_bin() {
        Some(bin) => {
            let garage = start_garage(&bin)?;
            println!(
                "garage:   {} (2 servers, replication_factor 2, data_fsync + metadata_fsync, lmdb)",
                garage.endpoint.url
            );
            Some(workload(&garage.endpoint, &a, "bench")?)
        }
        None => {
            println!(
                "garage:   SKIPPED — not built; `cargo install garage --version 2.5.0 --locked \
                 --root .tools/garage --no-default-features --features lmdb,bundled-libs` \
                 (or set GARAGE_BIN)"
            );
            None
        }
    };
    for (size, label) in [(4096u64, "4 KiB"), (64 << 20, "64 MiB")] {
        for op in ["PUT", "GET"] {
            let Some((ops, mbs, p50, p99)) = find(&t, size, op) else {
                bail!("no {op} {label} figures for tidepool");
            };
            print!(
                "  {label:>6} {op}: tidepool {ops:8.1} ops/s {mbs:8.1} MB/s p50 {p50:7.1} ms p99 {p99:7.1} ms"
            );
            match g.as_ref().and_then(|g| find(g, size, op)) {
                Some((gops, gmbs, gp50, gp99)) => println!(
                    " | garage {gops:8.1} ops/s {gmbs:8.1} MB/s p50 {gp50:7.1} ms p99 {gp99:7.1} ms | ratio tidepool/garage {:.2}",
                    ops / gops
                ),
                None => println!(),
            }
        }
    }
    Ok(())
}
