//! `python3` in phases: start-up per task, a tiny Python map phase's
//! throughput, and a pandas group-by over a large CSV against `awk` (and
//! against CPython with pandas on the host, when `python3 -c 'import
//! pandas'` works there; `TIDEPOOL_BENCH_PYTHON` names another host
//! interpreter, e.g. a venv's).
//!
//! `cargo run --release -p tidepool-bench --bin python [-- CSV_MIB]`
//! (default 256). Needs `scripts/setup` (the interpreter in `.tools/python`).
//!
//! - start of `python3 -c pass` and of `import pandas`: one `tidepool exec`
//!   phase running the command N times in a shell loop, minus the same loop
//!   running `:`, divided by N (instantiation from the cached module, the
//!   interpreter's start, teardown); the median of three such runs;
//! - tasks/s: a map job of `python3 -c` over many tiny objects through the
//!   real `mjob create -w` on a `tidepool up`, inputs / wall time of the
//!   create-and-wait (so it includes the CLI's own start);
//! - group-by: `k,v` CSV of CSV_MIB, summed by key with pandas in the
//!   sandbox (`tidepool exec --input`, `--limit memory=8G`), with host
//!   `awk`, and with host pandas if present; outputs compared, ratios
//!   printed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tidepool_tests::{Cluster, module_cache_dir, python_dir, run_with_deadline, tidepool_bin};

const GROUP_BY: &str = r#"import sys, pandas as pd; df = pd.read_csv(sys.stdin); print(df.groupby("k")["v"].sum().to_csv(header=False), end="")"#;

fn exec(args: &[&str]) -> Result<(Duration, String)> {
    let t = Instant::now();
    let out = Command::new(tidepool_bin())
        .arg("exec")
        .args(args)
        .env("XDG_CACHE_HOME", module_cache_dir())
        .env("TIDEPOOL_PYTHON_DIR", python_dir())
        .stderr(Stdio::inherit())
        .output()?;
    let d = t.elapsed();
    if !out.status.success() {
        bail!("tidepool exec {args:?} failed: {}", out.status);
    }
    Ok((d, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Per-run cost of `cmd` in a warm phase: N runs minus N of `:`, over N.
fn per_task(cmd: &str, n: usize) -> Result<Duration> {
    let list: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let list = list.join(" ");
    let looped = |body: &str| format!("for i in {list}; do {body}; done");
    let mut all = Vec::new();
    for _ in 0..3 {
        let (with, _) = exec(&[&looped(cmd)])?;
        let (without, _) = exec(&[&looped(":")])?;
        all.push(with.saturating_sub(without) / n as u32);
    }
    Ok(median(all))
}

/// A `k,v` CSV of about `bytes`, deterministic.
fn write_csv(path: &Path, bytes: u64) -> Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    w.write_all(b"k,v\n")?;
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut written = 4;
    while written < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let line = format!("key{},{}\n", x % 1000, (x >> 20) % 1_000_000);
        written += line.len() as u64;
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    Ok(())
}

fn host(cmd: &mut Command, input: &Path) -> Result<(Duration, String)> {
    let t = Instant::now();
    let out = cmd
        .env("LC_ALL", "C")
        .stdin(std::fs::File::open(input)?)
        .stderr(Stdio::inherit())
        .output()?;
    let d = t.elapsed();
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", out.status);
    }
    Ok((d, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn sorted(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v
}

fn main() -> Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(256);
    tidepool_bin(); // built before anything is timed
    let t = Instant::now();
    exec(&["python3 -c pass"]).context("python3 (run scripts/setup)")?;
    println!(
        "first python3 -c pass (compiles the interpreter unless cached): {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let pass = per_task("python3 -c pass", 20)?;
    println!(
        "per task: python3 -c pass {:.1} ms",
        pass.as_secs_f64() * 1e3
    );
    let pandas = per_task("python3 -c 'import pandas'", 5)?;
    println!(
        "per task: import pandas {:.0} ms",
        pandas.as_secs_f64() * 1e3
    );

    // Tasks/s of a tiny Python map phase through mjob.
    let c = Cluster::start()?;
    let n = 60;
    let mut inputs = String::new();
    let ok = |o: std::process::Output| -> Result<String> {
        if !o.status.success() {
            bail!("{}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    ok(c.manta("mmkdir", &["-p", "~~/stor/tiny"]))?;
    for i in 0..n {
        let p = format!("/alice/stor/tiny/o{i}");
        ok(c.manta_stdin("mput", &[&p], format!("{i}\n").as_bytes()))?;
        inputs.push_str(&p);
        inputs.push('\n');
    }
    let mut cmd = c.manta_cmd("mjob");
    cmd.args([
        "create",
        "-w",
        "-m",
        "python3 -c 'import sys; print(int(sys.stdin.read()) * 2)'",
    ]);
    let t = Instant::now();
    let out = run_with_deadline(&mut cmd, Some(inputs.as_bytes()), Duration::from_secs(1800));
    let d = t.elapsed();
    ok(out)?;
    println!(
        "tiny python3 map over {n} objects (mjob create -w): {:.1} s, {:.1} tasks/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );
    drop(c);

    // pandas group-by over a big CSV against awk (and host pandas).
    let dir = std::env::var("TIDEPOOL_BENCH_DIR").unwrap_or_else(|_| "target/bench-data".into());
    std::fs::create_dir_all(&dir)?;
    let csv = Path::new(&dir).join(format!("groupby-{mib}m.csv"));
    if std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0) < mib << 20 {
        write_csv(&csv, mib << 20)?;
    }
    let csv_s = csv.to_str().context("utf-8 path")?;
    let (wasm_t, wasm_out) = exec(&[
        "--input",
        csv_s,
        "--limit",
        "memory=8G",
        &format!("python3 -c '{GROUP_BY}'"),
    ])?;
    let (awk_t, awk_out) = host(
        Command::new("awk").args([
            "-F,",
            r#"NR > 1 { s[$1] += $2 } END { for (k in s) print k "," s[k] }"#,
        ]),
        &csv,
    )?;
    println!(
        "group-by {mib} MiB CSV: sandboxed pandas {:.2} s, host awk {:.2} s: {:.2}x awk's time; outputs {}",
        wasm_t.as_secs_f64(),
        awk_t.as_secs_f64(),
        wasm_t.as_secs_f64() / awk_t.as_secs_f64(),
        if sorted(&wasm_out) == sorted(&awk_out) {
            "identical"
        } else {
            "DIFFER"
        }
    );
    let host_python = std::env::var("TIDEPOOL_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_pandas = Command::new(&host_python)
        .args(["-c", "import pandas"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_pandas {
        let (py_t, py_out) = host(Command::new(&host_python).args(["-c", GROUP_BY]), &csv)?;
        println!(
            "   host CPython pandas {:.2} s: sandboxed is {:.2}x its time; outputs {}",
            py_t.as_secs_f64(),
            wasm_t.as_secs_f64() / py_t.as_secs_f64(),
            if py_out == wasm_out {
                "identical"
            } else {
                "DIFFER"
            }
        );
    } else {
        println!("   (no pandas in the host's python3: not compared with host CPython)");
    }
    Ok(())
}
