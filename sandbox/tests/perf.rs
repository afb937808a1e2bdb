//! Measurements, not assertions of speed (the machine is shared): run with
//! `cargo test -p sandbox --release --test perf -- --ignored --nocapture`.
//! Each still checks its output, so a broken pipeline cannot look fast.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sandbox::{Input, Output};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time_runs(f: &Fixture, exec: &str, n: usize) -> Duration {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = f.run(exec, b"").await;
        times.push(t.elapsed());
        assert_eq!(r.exit_status, 0, "{exec}: {r:?}");
    }
    median(times)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement; run explicitly"]
async fn startup_latency() {
    let mut f = Fixture::new();
    f.asset("exit0", &wat_exit(0));
    sandbox().precompile().await.unwrap();
    // Warm the module caches.
    let _ = f.run("exit0", b"").await;
    println!(
        "true (builtin):            median {:?}",
        time_runs(&f, "true", 500).await
    );
    println!(
        "tiny wasm (cached module): median {:?}",
        time_runs(&f, "exit0", 500).await
    );
    let r = f.run("basename /a/b", b"").await;
    if r.exit_status == 0 {
        println!(
            "coreutils basename:        median {:?}",
            time_runs(&f, "basename /a/b", 200).await
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement; run explicitly"]
async fn cat_and_wc_throughput() {
    let f = Fixture::new();
    let path = f.dir.path().join("input.log");
    let line =
        b"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326\n";
    let data: Vec<u8> = line.iter().copied().cycle().take(100 << 20).collect();
    std::fs::write(&path, &data).unwrap();
    let lines = data.iter().filter(|&&b| b == b'\n').count();
    sandbox().precompile().await.unwrap();
    for (exec, native) in [("cat", vec!["cat"]), ("wc -l", vec!["wc", "-l"])] {
        let mut spec = f.spec(exec);
        spec.stdin = Input::File(path.clone());
        spec.stdout = if exec == "cat" {
            Output::Discard
        } else {
            Output::Capture
        };
        let t = Instant::now();
        let r = sandbox().run_phase(spec).await.unwrap();
        let wasm = t.elapsed();
        if r.exit_status != 0 {
            println!(
                "{exec}: not available yet ({})",
                String::from_utf8_lossy(&r.stderr).trim()
            );
            continue;
        }
        if exec == "cat" {
            assert_eq!(r.stdout_bytes, data.len() as u64);
        } else {
            assert_eq!(stdout(&r).trim(), lines.to_string());
        }
        let t = Instant::now();
        let out = std::process::Command::new(native[0])
            .args(&native[1..])
            .stdin(std::fs::File::open(&path).unwrap())
            .stdout(std::process::Stdio::piped())
            .output()
            .unwrap();
        let gnu = t.elapsed();
        assert!(out.status.success());
        let mbs = |d: Duration| (data.len() as f64 / (1 << 20) as f64) / d.as_secs_f64();
        println!(
            "{exec:6} 100 MiB: wasm {wasm:?} ({:.0} MiB/s), GNU {gnu:?} ({:.0} MiB/s), ratio {:.2}x",
            mbs(wasm),
            mbs(gnu),
            wasm.as_secs_f64() / gnu.as_secs_f64()
        );
    }
}
