//! Compute that takes down what runs it, against a real `tidepool up`:
//! phases run in task worker processes, so a worker that dies (killed
//! with SIGKILL from outside, or aborting inside) costs its task one
//! attempt; a task that kills its worker every time ends its job `done`
//! with an error after its retries; the store keeps answering throughout.
//!
//! The aborts use the debug-build fault switch of `compute::workers`
//! (`TIDEPOOL_TEST_WORKER_FAULTS` in the server's environment, which guests
//! cannot set); the SIGKILL is a real signal sent to the real worker.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tidepool_tests::{Cluster, ClusterOptions, ok};

fn put(c: &Cluster, path: &str, bytes: &[u8]) {
    ok(&c.manta_stdin("mput", &[path], bytes));
}

fn faulty_cluster() -> (Cluster, tempfile::TempDir) {
    let faults = tempfile::tempdir().unwrap();
    let c = Cluster::start_with(ClusterOptions {
        env: vec![(
            "TIDEPOOL_TEST_WORKER_FAULTS".into(),
            faults.path().display().to_string(),
        )],
        ..Default::default()
    })
    .unwrap();
    (c, faults)
}

/// `mjob watch` and `mjob errors` of a job.
fn finish(c: &Cluster, id: &str) -> (serde_json::Value, Vec<serde_json::Value>) {
    let watched = c.manta("mjob", &["watch", id]);
    let status: serde_json::Value = serde_json::from_slice(&watched.stdout)
        .unwrap_or_else(|e| panic!("mjob watch: {e}: {}", tidepool_tests::describe(&watched)));
    let errors = ok(&c.manta("mjob", &["errors", id]));
    let errs = errors
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (status, errs)
}

fn outputs(c: &Cluster, id: &str) -> Vec<String> {
    let names = ok(&c.manta("mjob", &["outputs", id]));
    let mut v: Vec<String> = names
        .lines()
        .map(|n| ok(&c.manta("mget", &[n])).trim().to_owned())
        .collect();
    v.sort();
    v
}

/// The gateway still answers and the server process still runs.
fn store_alive(c: &mut Cluster) {
    assert!(c.is_running(), "tidepool up died:\n{}", c.server_log());
    put(c, "/alice/stor/hc/after", b"still here\n");
    assert_eq!(
        ok(&c.manta("mget", &["/alice/stor/hc/after"])),
        "still here\n"
    );
}

#[test]
fn a_worker_abort_costs_its_task_one_attempt() {
    let (mut c, _faults) = faulty_cluster();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/hc"]));
    let mut inputs = String::new();
    for i in 1..=3 {
        let p = format!("/alice/stor/hc/in{i}");
        put(&c, &p, "x\n".repeat(i).as_bytes());
        inputs.push_str(&p);
        inputs.push('\n');
    }
    // The first task to run this script aborts its worker, once.
    let id = ok(&c.manta_stdin(
        "mjob",
        &["create", "-m", "wc -l # tidepool-test-abort-once"],
        inputs.as_bytes(),
    ))
    .trim()
    .to_owned();
    let (status, errs) = finish(&c, &id);
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["stats"]["errors"], 0, "{status} {errs:?}");
    assert_eq!(status["stats"]["retries"], 1, "{status}");
    assert_eq!(outputs(&c, &id), vec!["1", "2", "3"]);
    let log = c.server_log();
    assert!(
        log.contains("task worker crashed: signal 6 (SIGABRT)"),
        "the crash is logged:\n{log}"
    );
    store_alive(&mut c);
}

#[test]
fn a_task_that_always_crashes_its_worker_fails_after_its_retries() {
    let (mut c, _faults) = faulty_cluster();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/hc"]));
    put(&c, "/alice/stor/hc/a", b"a\n");
    let id = ok(&c.manta_stdin(
        "mjob",
        &["create", "-m", "wc -l # tidepool-test-abort-always"],
        b"/alice/stor/hc/a\n",
    ))
    .trim()
    .to_owned();
    let (status, errs) = finish(&c, &id);
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["stats"]["errors"], 1, "{status}");
    assert_eq!(status["stats"]["retries"], 2, "{status}");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0]["code"], "InternalError", "{errs:?}");
    assert_eq!(
        errs[0]["message"], "task worker crashed: signal 6 (SIGABRT)",
        "{errs:?}"
    );
    assert_eq!(errs[0]["input"], "/alice/stor/hc/a");

    // Compute still works for the next job, and the store answers.
    let id = ok(&c.manta_stdin("mjob", &["create", "-m", "wc -l"], b"/alice/stor/hc/a\n"))
        .trim()
        .to_owned();
    let (status, errs) = finish(&c, &id);
    assert_eq!(status["stats"]["errors"], 0, "{status} {errs:?}");
    assert_eq!(outputs(&c, &id), vec!["1"]);
    store_alive(&mut c);
}

/// Pids of the task workers `parent` started.
fn workers_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, so cut at ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("compute-worker") {
            out.push(pid);
        }
    }
    out
}

fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(root).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

#[test]
fn a_worker_killed_mid_task_costs_its_task_one_attempt() {
    let mut c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/hc"]));
    put(&c, "/alice/stor/hc/in", b"one\ntwo\n");
    // Attempt 1 marks its scratch and runs until killed; once the go
    // object exists (put before the kill) an attempt just counts lines.
    // `mget` runs in the agent through the worker's builtin proxy.
    let script =
        "if mget /alice/stor/hc/go > go; then wc -l; else touch started-mark; yes | wc -l; fi";
    let id = ok(&c.manta_stdin("mjob", &["create", "-m", script], b"/alice/stor/hc/in\n"))
        .trim()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while find_file(&c.data_dir(), "started-mark").is_none() {
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    put(&c, "/alice/stor/hc/go", b"go\n");
    let pid = c.pid().unwrap();
    let workers = workers_of(pid);
    assert!(!workers.is_empty(), "a task worker runs the task");
    for w in &workers {
        let st = Command::new("kill")
            .args(["-KILL", &w.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let (status, errs) = finish(&c, &id);
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["stats"]["errors"], 0, "{status} {errs:?}");
    assert_eq!(status["stats"]["retries"], 1, "{status}");
    assert_eq!(outputs(&c, &id), vec!["2"]);
    let log = c.server_log();
    assert!(
        log.contains("task worker crashed: signal 9 (SIGKILL)"),
        "the crash is logged:\n{log}"
    );
    store_alive(&mut c);
}
