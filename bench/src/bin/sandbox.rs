//! wasm pipelines vs the same GNU commands on the same 1 GiB log file.
//!
//! `cargo run --release -p tidepool-bench --bin sandbox [-- SIZE_MIB]`
//! Each pipeline runs through `tidepool exec --input FILE` (input on stdin,
//! output to /dev/null, module cache warm) and through `bash -c` with GNU
//! tools (`LC_ALL=C`, input on stdin). Prints seconds for both and the ratio.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tidepool_bench::generate_log;

/// Runs `cmd` with stdout into `out` (a file: large outputs are not held
/// in memory) and returns the wall time.
fn time_cmd(cmd: &mut Command, out: &std::path::Path) -> Result<Duration> {
    let t = Instant::now();
    let st = cmd
        .stdout(std::fs::File::create(out)?)
        .stderr(Stdio::inherit())
        .status()?;
    let d = t.elapsed();
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(d)
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> Result<bool> {
    use std::io::Read;
    let (fa, fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ra, mut rb) = (std::io::BufReader::new(fa), std::io::BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = ra.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        rb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

fn main() -> Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1024);
    let dir = std::env::var("TIDEPOOL_BENCH_DIR").unwrap_or_else(|_| "target/bench-data".into());
    std::fs::create_dir_all(&dir)?;
    let input = std::path::Path::new(&dir).join(format!("access-{mib}M.log"));
    eprintln!("generating {} ({mib} MiB) ...", input.display());
    generate_log(&input, mib << 20)?;
    let bin = tidepool_tests::tidepool_bin();
    let scratch = tempfile_dir(&dir)?;

    let cases: &[(&str, &str)] = &[
        ("cat", "cat"),
        ("wc -l", "wc -l"),
        ("grep -c", "grep -c /login"),
        ("sort | uniq -c", "sort | uniq -c"),
        ("awk field sum", "awk '{s += $10} END {print s}'"),
    ];
    // Warm the module cache (compilation is a one-time cost per module).
    let gnu_file = scratch.join("gnu.out");
    let wasm_file = scratch.join("wasm.out");
    time_cmd(Command::new(&bin).args(["exec", "true"]), &wasm_file)?;
    println!(
        "sandbox bench: {mib} MiB of access-log text, {}",
        input.display()
    );
    println!(
        "{:<16} {:>10} {:>10} {:>8} {:>10}",
        "pipeline", "gnu s", "wasm s", "ratio", "same out"
    );
    for (label, pipeline) in cases {
        let gnu = time_cmd(
            Command::new("bash")
                .args(["-c", pipeline])
                .env("LC_ALL", "C")
                .env("PATH", gnu_path())
                .stdin(std::fs::File::open(&input)?),
            &gnu_file,
        )?;
        let wasm = time_cmd(
            Command::new(&bin)
                .arg("exec")
                .arg("--input")
                .arg(&input)
                .arg("--scratch")
                .arg(&scratch)
                .arg("--limit")
                .arg("time=3600s")
                .arg("--limit")
                .arg("stdout=64G")
                .arg(pipeline),
            &wasm_file,
        )?;
        println!(
            "{:<16} {:>10.3} {:>10.3} {:>8.2} {:>10}",
            label,
            gnu.as_secs_f64(),
            wasm.as_secs_f64(),
            wasm.as_secs_f64() / gnu.as_secs_f64(),
            if same_file(&gnu_file, &wasm_file)? {
                "yes"
            } else {
                "NO"
            }
        );
    }
    Ok(())
}

/// PATH with a shim folder first, where `awk` is GNU awk (Debian's default is mawk).
fn gnu_path() -> String {
    let shim = std::env::temp_dir().join("tidepool-bench-gnu");
    let _ = std::fs::create_dir_all(&shim);
    let link = shim.join("awk");
    if !link.exists() {
        let _ = std::os::unix::fs::symlink("/usr/bin/gawk", &link);
    }
    format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn tempfile_dir(base: &str) -> Result<std::path::PathBuf> {
    let p = std::path::Path::new(base).join("scratch");
    std::fs::create_dir_all(&p)?;
    Ok(p)
}
