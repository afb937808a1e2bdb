//! Jobs survive `kill -9` of their machinery, in a multi-process
//! deployment (gateway, `tidepool node` x 3, `tidepool supervisor`) on
//! shared metadata, driven by Manta's official `mjob`:
//!
//! - a storage node killed mid-job: every task still runs (on the other
//!   copy of its input), the output is complete and correct, and the job's
//!   stats count the retries;
//! - the supervisor killed mid-job: a new `tidepool supervisor` takes the
//!   job over once its lease expires and finishes it, with each input's
//!   output committed exactly once.
//!
//! "Mid-job" is made certain rather than timed: the job's input stays open
//! until the kill, and half the inputs are added after it. Expected outputs
//! are computed by running the same phase locally with the system's awk.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tidepool_tests::deployment::{Deployment, DeploymentOptions};
use tidepool_tests::{Cluster, describe, ok, run_with_deadline};

/// A map phase doing real work on each line (about 0.5 s of wasm per
/// object), so that tasks are running when a process is killed.
const MAP: &str =
    "awk '{for (i = 0; i < 150; i++) h = (h * 31 + $1 % 97 + i) % 1000003} END {print NR, h}'";

/// Inputs per job (half before the kill, half after).
const INPUTS: usize = 40;

/// Deterministic text objects: `n` objects of ~60 KiB of `number word`
/// lines. Returns their bodies.
fn bodies(n: usize, seed: u64) -> Vec<Vec<u8>> {
    (0..n as u64)
        .map(|i| {
            let mut x = (seed << 16 | i) * 2 + 1;
            let mut s = String::new();
            while s.len() < 60 * 1024 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(&format!("{} w{}\n", x % 1_000_000_007, x >> 50));
            }
            s.into_bytes()
        })
        .collect()
}

/// Uploads `bodies` as `/alice/stor/<dir>/obj<i>` with one `msync`, and
/// returns the object names in order.
fn upload(c: &Cluster, dir: &str, bodies: &[Vec<u8>]) -> Vec<String> {
    let local = c.root.path().join(format!("upload-{dir}"));
    std::fs::create_dir_all(&local).unwrap();
    let names: Vec<String> = (0..bodies.len()).map(|i| format!("obj{i:02}")).collect();
    for (name, b) in names.iter().zip(bodies) {
        std::fs::write(local.join(name), b).unwrap();
    }
    let remote = format!("/alice/stor/{dir}");
    ok(&c.manta("mmkdir", &["-p", &remote]));
    let out = run_with_deadline(
        c.manta_cmd("msync")
            .arg(local.to_str().unwrap())
            .arg(&remote),
        None,
        Duration::from_secs(300),
    );
    ok(&out);
    let ls = ok(&c.manta("mls", &[&remote]));
    assert_eq!(
        ls.lines().count(),
        bodies.len(),
        "msync stored every object: {ls}"
    );
    names.iter().map(|n| format!("{remote}/{n}")).collect()
}

/// The map phase's output for each body, by the system's awk.
fn expected(bodies: &[Vec<u8>]) -> Vec<String> {
    let mut v: Vec<String> = bodies
        .iter()
        .map(|b| {
            let mut cmd = Command::new("awk");
            cmd.arg(MAP.trim_start_matches("awk '").trim_end_matches('\''))
                .env("LC_ALL", "C")
                .stdin(Stdio::piped());
            ok(&run_with_deadline(
                &mut cmd,
                Some(b),
                Duration::from_secs(60),
            ))
            .trim_end()
            .to_owned()
        })
        .collect();
    v.sort();
    v
}

fn lines_of(names: &[String]) -> String {
    names.iter().map(|n| format!("{n}\n")).collect()
}

/// `mjob get ID` as JSON.
fn job_status(d: &Deployment, id: &str) -> serde_json::Value {
    let out = d.gateway.manta("mjob", &["get", id]);
    serde_json::from_str(&ok(&out)).unwrap_or_else(|e| panic!("mjob get: {e}: {}", describe(&out)))
}

/// Creates a job with `mjob create --open` over `inputs`, leaving its input
/// open; returns its id.
fn create_open(d: &Deployment, phases: &[&str], inputs: &[String]) -> String {
    let mut args = vec!["create", "--open"];
    args.extend_from_slice(phases);
    let id = ok(&d
        .gateway
        .manta_stdin("mjob", &args, lines_of(inputs).as_bytes()))
    .trim()
    .to_owned();
    assert_eq!(id.len(), 36, "mjob create prints the job id: {id:?}");
    id
}

/// Waits (with a deadline, polling) until the job has finished `n` tasks.
fn wait_tasks_done(d: &Deployment, id: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let st = job_status(d, id);
        if st["stats"]["tasksDone"].as_u64().unwrap_or(0) >= n {
            assert_eq!(st["state"], "running", "input is open: {st}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {n} tasks done: {st}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Adds `inputs` and ends the job's input, then waits for the job with
/// `mjob watch`; returns its final status.
fn finish(d: &Deployment, id: &str, inputs: &[String]) -> serde_json::Value {
    ok(&d
        .gateway
        .manta_stdin("mjob", &["addinputs", id], lines_of(inputs).as_bytes()));
    let out = run_with_deadline(
        d.gateway.manta_cmd("mjob").args(["watch", id]),
        None,
        Duration::from_secs(600),
    );
    let st: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("mjob watch: {e}: {}\n{}", describe(&out), d.logs()));
    assert_eq!(st["state"], "done", "{st}\n{}", d.logs());
    eprintln!("job {id} finished: {}", st["stats"]);
    let errors = ok(&d.gateway.manta("mjob", &["errors", id]));
    assert_eq!(
        st["stats"]["errors"],
        0,
        "{st}\nerrors:\n{errors}\n{}",
        d.logs()
    );
    st
}

/// The job's output object names.
fn outputs(d: &Deployment, id: &str) -> Vec<String> {
    ok(&d.gateway.manta("mjob", &["outputs", id]))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The contents of `objects`, concatenated (one `mget`).
fn cat(d: &Deployment, objects: &[String]) -> String {
    let mut cmd = d.gateway.manta_cmd("mget");
    cmd.args(objects);
    ok(&run_with_deadline(&mut cmd, None, Duration::from_secs(300)))
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn kill9_of_a_storage_node_mid_job_retries_on_the_other_copy() {
    let mut d = Deployment::start(DeploymentOptions::default()).unwrap();
    let bodies = bodies(INPUTS, 1);
    let names = upload(&d.gateway, "nodekill", &bodies);
    let (before, after) = names.split_at(INPUTS / 2);

    let id = create_open(&d, &["-m", MAP, "-r", "sort"], before);
    wait_tasks_done(&d, &id, 2);
    d.nodes[1].kill9();
    // Inputs added now are placed by a supervisor that still sees the dead
    // node's last heartbeat as fresh.
    let st = finish(&d, &id, after);

    assert!(
        st["stats"]["retries"].as_u64().unwrap_or(0) > 0,
        "attempts on the killed node were retried: {st}"
    );
    // Spec: `tasks == tasksDone` once done, retried attempts included.
    assert_eq!(st["stats"]["tasks"], st["stats"]["tasksDone"], "{st}");
    let outs = outputs(&d, &id);
    assert_eq!(outs.len(), 1, "one reducer output: {outs:?}");
    let got = cat(&d, &outs);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        expected(&bodies),
        "one line per input, each correct: {st}"
    );
    assert!(!d.nodes[1].is_running());
}

#[test]
fn kill9_of_the_supervisor_mid_job_a_new_one_finishes_it_exactly_once() {
    let mut d = Deployment::start(DeploymentOptions {
        lease_ttl_ms: 2_000,
        ..DeploymentOptions::default()
    })
    .unwrap();
    let bodies = bodies(INPUTS, 2);
    let names = upload(&d.gateway, "supkill", &bodies);
    let (before, after) = names.split_at(INPUTS / 2);

    let id = create_open(&d, &["-m", MAP], before);
    wait_tasks_done(&d, &id, 2);
    d.supervisors[0].kill9();
    // Accepted by the gateway while no supervisor runs; the next one takes
    // the job over when the dead one's lease expires.
    d.start_supervisor().unwrap();
    let st = finish(&d, &id, after);

    assert_eq!(st["stats"]["outputs"], INPUTS as u64, "{st}");
    let outs = outputs(&d, &id);
    assert_eq!(outs.len(), INPUTS, "one output per input: {outs:#?}");
    for n in &names {
        let prefix = format!("/alice/jobs/{id}/stor{n}.0.");
        let count = outs.iter().filter(|o| o.starts_with(&prefix)).count();
        assert_eq!(count, 1, "exactly one output of {n}: {outs:#?}");
    }
    let got = cat(&d, &outs);
    assert_eq!(sorted_lines(&got), expected(&bodies));
}
