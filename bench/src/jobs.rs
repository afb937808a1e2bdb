//! Job latency and throughput of a real `tidepool up`, driven over the
//! Jobs HTTP API directly (signed like the Manta CLI, no node.js client in
//! the timings): the job rows of the speed table ([`crate::table`]).
//!
//! `cargo run --release -p tidepool-bench --bin jobs -- [--latency-jobs N]
//! [--tasks N] [--grep-mib MIB] [--grep-object-mib MIB]` (the `speed`
//! bench runs these rows and the `load` bench's in one run).
//!
//! 1. **Latency**: one-object `wc -l` jobs, one after another. For each:
//!    create, add the input, end input, then poll the status every 1 ms
//!    until `state` is `done`. Prints end-of-input → done (from the end
//!    POST returning to the first poll answering `done`) and create → done
//!    (from before the create POST), median and p90, and the server's own
//!    `timeCreated` → `timeDone`. Two series: back to back (each job
//!    created as soon as the previous one is done, which catches the
//!    supervisor awake) and after a random 0-400 ms pause (a job arriving
//!    at an idle supervisor, as a user's job does); both with `"memo":
//!    false`, so every task runs. A third series leaves memoization on:
//!    every job after the first reuses its output (no task runs).
//! 2. **Throughput**: `N` (2,000) one-line objects uploaded first (16 PUTs
//!    in flight, not timed), then one map `wc -l` job over all of them:
//!    tasks/s = N / (time from before the create POST to the first poll,
//!    every 5 ms, answering `done`); inputs are sent in batches of 1,000
//!    (as `mjob addinputs` does) followed by end of input, inside the
//!    timed interval. `--tasks-exec CMD` replaces `wc -l` (e.g. `mcat
//!    $MANTA_INPUT_OBJECT`, which emits by reference and stores nothing,
//!    to separate the cost of storing outputs from the rest). Then the
//!    same job again (2b): every task memoized, timed the same way.
//! 3. **grep -c**: `--grep-mib` (1,024) MiB of access-log text in objects
//!    of `--grep-object-mib` (64) MiB; map-only job `grep -c PATTERN`,
//!    create → done, against GNU `grep -c PATTERN f1 f2 ...` (one process)
//!    over the same bytes stored as plain files on the same filesystem.
//!    Both sides run with the bytes in the page cache (the stored copies
//!    were just written; the plain files are read once before timing).
//!    Also times the same map with a reducer summing the counts.
//!
//! Raw files go to `TIDEPOOL_BENCH_DIR` (default `target/bench-data`); the
//! cluster's data goes under `TMPDIR` like every test cluster.
//! Nothing here asserts a time; the job results are checked for
//! correctness (every output present, counts equal GNU's).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tidepool_tests::{Cluster, md5_b64};

use crate::table::Row;
use crate::{Gateway, generate_log, mb_per_s};

/// What `grep -c` counts in the access log.
const PATTERN: &str = "/login";

/// The gateway client with the Jobs API calls this bench makes.
struct Client(Gateway);

impl std::ops::Deref for Client {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.0
    }
}

impl Client {
    async fn mkdir(&self, path: &str) -> Result<()> {
        let resp = self
            .http
            .put(format!("{}{path}", self.url))
            .headers(self.headers()?)
            .header("content-type", "application/json; type=directory")
            .send()
            .await?;
        Gateway::check(resp, &format!("mkdir {path}")).await?;
        Ok(())
    }

    async fn post(&self, path: &str, ctype: &str, body: Vec<u8>) -> Result<reqwest::Response> {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .headers(self.headers()?)
            .header("content-type", ctype)
            .header("accept", "application/json")
            .header("content-md5", md5_b64(&body))
            .body(body)
            .send()
            .await?;
        Gateway::check(resp, &format!("POST {path}")).await
    }

    /// E1: creates a job with `phases` (JSON array); returns its id.
    async fn create_job(&self, phases: &serde_json::Value) -> Result<String> {
        let body = serde_json::json!({"name": "bench", "phases": phases});
        let resp = self
            .post(
                "/alice/jobs",
                "application/json; type=job",
                serde_json::to_vec(&body)?,
            )
            .await?;
        let loc = resp
            .headers()
            .get("location")
            .context("create: no Location")?
            .to_str()?;
        Ok(loc.rsplit('/').next().unwrap_or_default().to_owned())
    }

    /// E2: adds `names` (one request).
    async fn add_inputs(&self, id: &str, names: &[String]) -> Result<()> {
        let body = names.join("\n").into_bytes();
        self.post(&format!("/alice/jobs/{id}/live/in"), "text/plain", body)
            .await?;
        Ok(())
    }

    /// E3: ends the job's input.
    async fn end_input(&self, id: &str) -> Result<()> {
        self.post(
            &format!("/alice/jobs/{id}/live/in/end"),
            "application/json",
            b"{}".to_vec(),
        )
        .await?;
        Ok(())
    }

    /// E5: the status record.
    async fn status(&self, id: &str) -> Result<serde_json::Value> {
        let text = self
            .get_text(&format!("/alice/jobs/{id}/live/status"))
            .await?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Polls the status every `every` until the job is done; returns the
    /// instant of the first `done` answer and that record. Fails if the job
    /// had errors or not `outputs` outputs.
    async fn wait_done(
        &self,
        id: &str,
        every: Duration,
        outputs: u64,
    ) -> Result<(Instant, serde_json::Value)> {
        loop {
            let st = self.status(id).await?;
            if st["state"] == "done" {
                let at = Instant::now();
                let stats = &st["stats"];
                if stats["errors"] != 0 || stats["outputs"] != outputs {
                    // The first errors say why; a bare count does not.
                    let errors = self
                        .get_text(&format!("/alice/jobs/{id}/live/err"))
                        .await
                        .unwrap_or_else(|e| format!("(errors unavailable: {e})"));
                    let first: Vec<&str> = errors.lines().take(3).collect();
                    bail!(
                        "job {id} finished with unexpected stats: {st}\nfirst errors:\n{}",
                        first.join("\n")
                    );
                }
                return Ok((at, st));
            }
            tokio::time::sleep(every).await;
        }
    }

    /// E9: the job's outputs.
    async fn outputs(&self, id: &str) -> Result<Vec<String>> {
        Ok(self
            .get_text(&format!("/alice/jobs/{id}/live/out"))
            .await?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// `phases` with memoization turned off in every phase: the task runs
/// even though an identical one ran before.
fn unmemoized(mut phases: serde_json::Value) -> serde_json::Value {
    if let Some(list) = phases.as_array_mut() {
        for p in list {
            p["memo"] = serde_json::Value::Bool(false);
        }
    }
    phases
}

fn phases(map: &str, reduce: Option<&str>) -> serde_json::Value {
    let mut v = vec![serde_json::json!({"type": "map", "exec": map})];
    if let Some(r) = reduce {
        v.push(serde_json::json!({"type": "reduce", "exec": r}));
    }
    serde_json::Value::Array(v)
}

/// Milliseconds since the job's `timeCreated` until its `timeDone`, as the
/// server recorded them (ISO 8601 with milliseconds).
fn server_ms(st: &serde_json::Value) -> Option<f64> {
    let ms = |k: &str| -> Option<f64> {
        let s = st[k].as_str()?;
        // ...THH:MM:SS.mmmZ: seconds of the day are enough for a short job.
        let t = s.split('T').nth(1)?.trim_end_matches('Z');
        let mut it = t.split(':');
        let h: f64 = it.next()?.parse().ok()?;
        let m: f64 = it.next()?.parse().ok()?;
        let sec: f64 = it.next()?.parse().ok()?;
        Some(((h * 60.0 + m) * 60.0 + sec) * 1000.0)
    };
    Some(ms("timeDone")? - ms("timeCreated")?)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What to run: the command line of the `jobs` bench.
#[derive(Debug, Clone)]
pub struct Args {
    /// Jobs per latency series.
    pub latency_jobs: usize,
    /// One-line objects of the throughput job (0: no throughput rows).
    pub tasks: usize,
    /// The throughput job's map command.
    pub tasks_exec: String,
    /// MiB of the `grep -c` job's input (0: no grep row).
    pub grep_mib: u64,
    /// MiB per object of that input.
    pub grep_object_mib: u64,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            latency_jobs: 30,
            tasks: 2000,
            tasks_exec: "wc -l".into(),
            grep_mib: 1024,
            grep_object_mib: 64,
        }
    }
}

impl Args {
    /// Parses flags (without the program name).
    pub fn parse(it: impl IntoIterator<Item = String>) -> Result<Args> {
        parse_args(it.into_iter())
    }
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args> {
    let mut a = Args::default();
    while let Some(flag) = it.next() {
        let mut val = || -> Result<u64> {
            it.next()
                .with_context(|| format!("{flag} needs a value"))?
                .parse()
                .with_context(|| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--latency-jobs" => a.latency_jobs = val()?.max(1) as usize,
            "--tasks" => a.tasks = val()? as usize,
            "--tasks-exec" => {
                a.tasks_exec = it.next().context("--tasks-exec needs a value")?;
            }
            "--grep-mib" => a.grep_mib = val()?,
            "--grep-object-mib" => a.grep_object_mib = val()?.max(1),
            other => bail!(
                "unknown argument {other}; flags: --latency-jobs N --tasks N --tasks-exec CMD --grep-mib MIB --grep-object-mib MIB"
            ),
        }
    }
    Ok(a)
}

/// End-of-input → done medians of the three series.
struct Latency {
    back_to_back: Duration,
    after_idle: Duration,
    memoized: Duration,
}

impl Latency {
    fn row(&self) -> Row {
        let (b, i, m) = (
            ms(self.back_to_back),
            ms(self.after_idle),
            ms(self.memoized),
        );
        Row::alone(
            "job end-of-input -> done, one tiny task, median".into(),
            format!("after idle {i:.1} ms, back to back {b:.1} ms (memoized job: {m:.1} ms)"),
            "< 5 ms",
            i < 5.0 && b < 5.0,
        )
    }
}

async fn latency(c: &Client, jobs: usize) -> Result<Latency> {
    let body = "line\n".repeat(100);
    c.put("/alice/stor/bench/one.txt", body).await?;
    println!(
        "1. latency, one-object `wc -l` job ({jobs} jobs, sequential, status polled every 1 ms):"
    );
    // Every job runs its task (memo off): the same job again would
    // otherwise reuse the first one's output.
    let run = unmemoized(phases("wc -l", None));
    // Back to back: each job is created as soon as the previous is done.
    let back_to_back = latency_series(c, jobs, "back to back", &run, |_| Duration::ZERO).await?;
    // A job arriving at a random moment: a pause of 0-400 ms (xorshift)
    // before each, so the supervisor is idle as for a user's first job.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let label = "after a random 0-400 ms idle pause";
    let after_idle = latency_series(c, jobs, label, &run, move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Duration::from_millis(x % 400)
    })
    .await?;
    // Memo on: after the first, every job reuses that job's output.
    let label = "memoized (the same job again, back to back)";
    let memoized =
        latency_series(c, jobs, label, &phases("wc -l", None), |_| Duration::ZERO).await?;
    Ok(Latency {
        back_to_back,
        after_idle,
        memoized,
    })
}

async fn latency_series(
    c: &Client,
    jobs: usize,
    label: &str,
    phases: &serde_json::Value,
    mut pause: impl FnMut(usize) -> Duration,
) -> Result<Duration> {
    let input = vec!["/alice/stor/bench/one.txt".to_owned()];
    let mut end_done = Vec::new();
    let mut create_done = Vec::new();
    let mut server = Vec::new();
    // Two warm-up jobs (module compile/instantiate caches, connections).
    for i in 0..jobs + 2 {
        tokio::time::sleep(pause(i)).await;
        let t0 = Instant::now();
        let id = c.create_job(phases).await?;
        c.add_inputs(&id, &input).await?;
        c.end_input(&id).await?;
        let t_end = Instant::now();
        let (t_done, st) = c.wait_done(&id, Duration::from_millis(1), 1).await?;
        if i == 0 {
            let outs = c.outputs(&id).await?;
            let got = c.get_text(&outs[0]).await?;
            if got.trim() != "100" {
                bail!("wc -l printed {got:?}, expected 100");
            }
        }
        if i >= 2 {
            end_done.push(t_done - t_end);
            create_done.push(t_done - t0);
            if let Some(s) = server_ms(&st) {
                server.push(s);
            }
        }
    }
    end_done.sort();
    create_done.sort();
    server.sort_by(f64::total_cmp);
    println!("  {label}:");
    println!(
        "   end-of-input -> done: median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms   (target < 50 ms median; Manta: 2-3 s)",
        ms(pct(&end_done, 0.5)),
        ms(pct(&end_done, 0.9)),
        ms(end_done[0]),
        ms(end_done[end_done.len() - 1])
    );
    println!(
        "   create -> done:       median {:.1} ms, p90 {:.1} ms   (client side: create + add input + end + wait)",
        ms(pct(&create_done, 0.5)),
        ms(pct(&create_done, 0.9)),
    );
    if !server.is_empty() {
        println!(
            "   server timeCreated -> timeDone: median {:.0} ms, p90 {:.0} ms",
            server[server.len() / 2],
            server[((server.len() - 1) as f64 * 0.9).round() as usize]
        );
    }
    Ok(pct(&end_done, 0.5))
}

/// The throughput job's rows: tasks/s, then memoized tasks/s.
async fn throughput(c: &Arc<Client>, n: usize, exec: &str) -> Result<Vec<Row>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    c.mkdir("/alice/stor/bench/many").await?;
    let names: Vec<String> = (0..n)
        .map(|i| format!("/alice/stor/bench/many/o{i:05}"))
        .collect();
    let t = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (c, names, next) = (c.clone(), names.clone(), next.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(name) = names.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                c.put(name, format!("object {i}\n")).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let upload = t.elapsed();

    let (total, t_end, st) = timed_job(c, &names, exec).await?;
    let tasks_per_s = n as f64 / total.as_secs_f64();
    println!(
        "2. throughput, map `{exec}` over {n} one-line objects (uploaded first, 16 PUTs in flight: {:.1} s, {:.0} PUT/s, not timed):",
        upload.as_secs_f64(),
        n as f64 / upload.as_secs_f64()
    );
    println!(
        "   create -> done {:.0} ms (inputs added + ended after {:.0} ms; status polled every 5 ms): {:.0} tasks/s   (target >= 1,000/s)",
        ms(total),
        ms(t_end),
        tasks_per_s
    );
    if let Some(s) = server_ms(&st) {
        println!(
            "   server timeCreated -> timeDone {s:.0} ms: {:.0} tasks/s",
            n as f64 / (s / 1000.0)
        );
    }
    // The same job again: every task's result is reused.
    let (total, _, st) = timed_job(c, &names, exec).await?;
    let memoized = st["stats"]["memoized"].as_u64().unwrap_or(0);
    let memo_per_s = n as f64 / total.as_secs_f64();
    println!(
        "2b. the same job again, inputs unchanged: {memoized} of {n} tasks memoized, create -> done {:.0} ms: {memo_per_s:.0} tasks/s   (target >= 5,000/s)",
        ms(total),
    );
    Ok(vec![
        Row::alone(
            format!("map tasks/s, {n} one-line objects (`{exec}`)"),
            format!("{tasks_per_s:.0}/s"),
            ">= 1,000",
            tasks_per_s >= 1000.0,
        ),
        Row::alone(
            "same job again, inputs unchanged (memoized)".into(),
            format!("{memo_per_s:.0}/s ({memoized} of {n} tasks memoized)"),
            ">= 5,000 tasks/s",
            memo_per_s >= 5000.0 && memoized == n as u64,
        ),
    ])
}

/// One map job of `exec` over `names`, timed from before the create POST
/// to the first status poll (every 5 ms) answering `done`; its outputs are
/// checked. Returns that time, the time the input was ended at, and the
/// final status.
async fn timed_job(
    c: &Client,
    names: &[String],
    exec: &str,
) -> Result<(Duration, Duration, serde_json::Value)> {
    let n = names.len();
    let t0 = Instant::now();
    let id = c.create_job(&phases(exec, None)).await?;
    for batch in names.chunks(1000) {
        c.add_inputs(&id, batch).await?;
    }
    c.end_input(&id).await?;
    let t_end = Instant::now();
    let (t_done, st) = c.wait_done(&id, Duration::from_millis(5), n as u64).await?;
    let total = t_done - t0;
    let outs = c.outputs(&id).await?;
    if outs.len() != n {
        bail!("{} outputs, expected {n}", outs.len());
    }
    // Spot-check outputs (every one is "1").
    for o in outs
        .iter()
        .step_by((n / 20).max(1))
        .filter(|_| exec == "wc -l")
    {
        let got = c.get_text(o).await?;
        if got.trim() != "1" {
            bail!("output {o} is {got:?}, expected 1");
        }
    }
    Ok((total, t_end - t0, st))
}

/// `grep -c PATTERN files...` (GNU, C locale, one process); total count.
fn gnu_grep(files: &[PathBuf]) -> Result<u64> {
    let out = std::process::Command::new("grep")
        .arg("-c")
        .arg(PATTERN)
        .args(files)
        .env("LC_ALL", "C")
        .output()
        .context("run grep")?;
    if !out.status.success() {
        bail!("grep failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut sum = 0u64;
    for l in text.lines() {
        sum += l.rsplit(':').next().unwrap_or("").trim().parse::<u64>()?;
    }
    Ok(sum)
}

/// The `grep -c` row.
async fn grep(c: &Client, dir: &Path, mib: u64, object_mib: u64) -> Result<Option<Row>> {
    if mib == 0 {
        return Ok(None);
    }
    let count = mib.div_ceil(object_mib) as usize;
    let size = object_mib << 20;
    let total = size * count as u64;
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    // Different sizes give different contents (generate_log is
    // deterministic per size); per-object variety is not needed for grep.
    for i in 0..count {
        let f = dir.join(format!("access-{object_mib}m-{i}.log"));
        let f2 = f.clone();
        tokio::task::spawn_blocking(move || generate_log(&f2, size)).await??;
        files.push(f);
    }
    c.mkdir("/alice/stor/bench/logs").await?;
    let mut names = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let name = format!("/alice/stor/bench/logs/access-{i}.log");
        let file = tokio::fs::File::open(f).await?;
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
        c.put(&name, body).await?;
        names.push(name);
    }

    // Baseline: warm the cache, then the median of 3.
    let want = gnu_grep(&files)?;
    let mut gnu_times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let n = gnu_grep(&files)?;
        gnu_times.push(t.elapsed());
        if n != want {
            bail!("GNU grep counted {n}, then {want}");
        }
    }
    gnu_times.sort();
    let gnu = gnu_times[1];
    let per_core = one_core(&files[0])?;

    let mut map_times = Vec::new();
    for run in 0..3 {
        let t0 = Instant::now();
        // Memo off: the second and third runs would reuse the first's.
        let id = c
            .create_job(&unmemoized(phases(&format!("grep -c {PATTERN}"), None)))
            .await?;
        c.add_inputs(&id, &names).await?;
        c.end_input(&id).await?;
        let (t_done, _) = c
            .wait_done(&id, Duration::from_millis(5), count as u64)
            .await?;
        map_times.push(t_done - t0);
        if run == 0 {
            let mut sum = 0u64;
            for o in c.outputs(&id).await? {
                sum += c.get_text(&o).await?.trim().parse::<u64>()?;
            }
            if sum != want {
                bail!("the job counted {sum} matches, GNU grep {want}");
            }
        }
    }
    map_times.sort();
    let map = map_times[1];

    let t0 = Instant::now();
    let id = c
        .create_job(&unmemoized(phases(
            &format!("grep -c {PATTERN}"),
            Some("awk '{s+=$1} END {print s}'"),
        )))
        .await?;
    c.add_inputs(&id, &names).await?;
    c.end_input(&id).await?;
    let (t_done, _) = c.wait_done(&id, Duration::from_millis(5), 1).await?;
    let reduce = t_done - t0;
    let outs = c.outputs(&id).await?;
    let sum: u64 = c.get_text(&outs[0]).await?.trim().parse()?;
    if sum != want {
        bail!("the map+reduce job counted {sum} matches, GNU grep {want}");
    }

    let (g, m, r) = (
        mb_per_s(total, gnu),
        mb_per_s(total, map),
        mb_per_s(total, reduce),
    );
    println!(
        "3. grep -c {PATTERN} over {} MiB in {count} x {object_mib} MiB objects ({want} matching lines; median of 3, page cache warm on both sides):",
        total >> 20
    );
    println!(
        "   GNU grep -c, one process over {count} files: {:.0} ms, {g:.0} MB/s",
        ms(gnu)
    );
    println!(
        "   job map grep -c, create -> done:          {:.0} ms, {m:.0} MB/s   ratio tidepool/GNU {:.2}",
        ms(map),
        m / g
    );
    println!(
        "   job map + reduce summing (1 run):         {:.0} ms, {r:.0} MB/s   ratio tidepool/GNU {:.2}",
        ms(reduce),
        r / g
    );
    let (gnu1, wasm1) = per_core;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "   one object, one process each: GNU {:.0} MB/s, `tidepool exec` (wasm grep, start-up included) {:.0} MB/s: {:.2} per core, so {cores} cores bound the job near {:.2}",
        mb_per_s(size, gnu1),
        mb_per_s(size, wasm1),
        gnu1.as_secs_f64() / wasm1.as_secs_f64(),
        cores as f64 * gnu1.as_secs_f64() / wasm1.as_secs_f64()
    );
    Ok(Some(Row {
        figure: format!(
            "`grep -c` job over {} MiB in {count} objects vs GNU in one process",
            total >> 20
        ),
        tidepool: format!("{m:.0} MB/s (map + reduce: {r:.0} MB/s, {:.2})", r / g),
        baseline: format!("{g:.0} MB/s (GNU grep -c)"),
        ratio: format!("{:.2}", m / g),
        goal: ">= 1.8x",
        met: m / g >= 1.8,
    }))
}

/// GNU `grep -c` and the wasm `grep -c` a task runs (`tidepool exec`, the
/// same sandbox and coreutils, one process) over one file, page cache
/// warm: medians of 3. What one core does on each side bounds what the
/// job can gain over one GNU process with the machine's cores.
fn one_core(file: &Path) -> Result<(Duration, Duration)> {
    let time = |cmd: &mut std::process::Command| -> Result<Duration> {
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let out = cmd.output().context("run grep")?;
            if !out.status.success() {
                bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            times.push(t.elapsed());
        }
        Ok(crate::median(times))
    };
    let gnu = time(
        std::process::Command::new("grep")
            .env("LC_ALL", "C")
            .args(["-c", PATTERN])
            .arg(file),
    )?;
    let wasm = time(
        std::process::Command::new(tidepool_tests::tidepool_bin())
            .arg("exec")
            .arg("--input")
            .arg(file)
            .arg(format!("grep -c {PATTERN}")),
    )?;
    Ok((gnu, wasm))
}

/// Starts a cluster, runs the rows `args` asks for, and returns them in
/// the table's order.
pub async fn run(args: &Args) -> Result<Vec<Row>> {
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let client = Arc::new(Client(Gateway::connect(&cluster)?));
    let dir = PathBuf::from(
        std::env::var("TIDEPOOL_BENCH_DIR").unwrap_or_else(|_| "target/bench-data".into()),
    );
    println!(
        "jobs bench: tidepool up (3 nodes, embedded meta) at {}, data under {}, raw files under {}",
        cluster.url(),
        cluster.data_dir().display(),
        dir.display()
    );
    client.mkdir("/alice/stor/bench").await?;
    // Storage nodes register with meta shortly after the exports are
    // printed; wait until a write succeeds.
    let ready = Instant::now();
    while let Err(e) = client.put("/alice/stor/bench/ready", "ok\n").await {
        if ready.elapsed() > Duration::from_secs(60) {
            return Err(e.context("no storage nodes after 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rows = vec![latency(&client, args.latency_jobs).await?.row()];
    rows.extend(throughput(&client, args.tasks, &args.tasks_exec).await?);
    rows.extend(grep(&client, &dir, args.grep_mib, args.grep_object_mib).await?);
    Ok(rows)
}
