//! wasm pipelines vs the same GNU commands on the same 1 GiB log file.
//!
//! `cargo run --release -p tidepool-bench --bin sandbox [-- SIZE_MIB]`
//! Each pipeline runs through `tidepool exec --input FILE` (input on stdin,
//! output to a file, module cache warm) and through `bash -c` with GNU
//! tools (`LC_ALL=C`, input on stdin, output to a file). Prints seconds for
//! both (the median of three runs each), the ratio, and whether the outputs
//! are identical. `sync` runs (untimed) before every command.
//!
//! Then the cost of one short wasm command with a cached module: a phase
//! running a minimal module (`_start` returns at once) `N` times in a shell
//! loop, minus the same loop running the builtin `:`, divided by `N` —
//! instantiation, WASI setup, the call and teardown, as a pipeline stage
//! pays them. The median of several such runs is printed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tidepool_bench::generate_log;

/// Runs of each pipeline, on each side; the median is printed (one run
/// of a 0.1 s pipeline varied by a quarter from run to run).
const RUNS: usize = 3;

/// The median of `runs` timings.
fn median_of(runs: usize, mut time: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut all = (0..runs).map(|_| time()).collect::<Result<Vec<_>>>()?;
    all.sort();
    Ok(all[all.len() / 2])
}

/// Runs `cmd` with stdout into `out` (a file: large outputs are not held
/// in memory) and returns the wall time.
fn time_cmd(cmd: &mut Command, out: &std::path::Path) -> Result<Duration> {
    // Start from clean page cache state: otherwise the previous command's
    // gigabyte of dirty output is written back during this one (it made
    // whichever side ran second look up to 6x slower).
    let _ = std::fs::remove_file(out);
    let _ = Command::new("sync").status();
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
        let gnu = median_of(RUNS, || {
            time_cmd(
                Command::new("bash")
                    .args(["-c", pipeline])
                    .env("LC_ALL", "C")
                    .env("PATH", gnu_path())
                    .stdin(std::fs::File::open(&input)?),
                &gnu_file,
            )
        })?;
        let wasm = median_of(RUNS, || {
            time_cmd(
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
            )
        })?;
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
    startup(&bin, &scratch, &dir)?;
    Ok(())
}

/// A minimal command module: one page of memory and a `_start` that returns.
const EXIT0_WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1 page
    0x07, 0x13, 0x02, // exports: 2
    0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, // "memory" = memory 0
    0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // "_start" = func 0
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
];

/// Per-command cost of a cached tiny module, from shell loops (see the module docs).
fn startup(bin: &std::path::Path, scratch: &std::path::Path, dir: &str) -> Result<()> {
    const N: usize = 500;
    const ROUNDS: usize = 9;
    let wasm = std::path::Path::new(dir).join("exit0.wasm");
    std::fs::write(&wasm, EXIT0_WASM)?;
    let out = scratch.join("startup.out");
    let run = |cmd: &str| -> Result<Duration> {
        time_cmd(
            Command::new(bin)
                .arg("exec")
                .arg("--asset")
                .arg(format!("exit0={}", wasm.display()))
                .arg("--scratch")
                .arg(scratch)
                .arg(format!("for i in $(seq {N}); do {cmd}; done")),
            &out,
        )
    };
    run("exit0")?; // compile and cache the module
    let mut per = Vec::with_capacity(ROUNDS);
    let mut total = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let w = run("exit0")?;
        let b = run(":")?;
        per.push(w.saturating_sub(b) / N as u32);
        total.push(w / N as u32);
    }
    per.sort();
    total.sort();
    println!(
        "true (cached tiny module): median {:.3} ms per command ({:.3} ms per loop iteration incl. shell; {ROUNDS} rounds of {N})",
        per[ROUNDS / 2].as_secs_f64() * 1e3,
        total[ROUNDS / 2].as_secs_f64() * 1e3,
    );
    std::fs::remove_file(&wasm)?;
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
