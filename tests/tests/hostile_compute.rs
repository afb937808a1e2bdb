//! Compute that takes down what runs it, against a real `tidepool up`:
//! phases run in task worker processes, so a worker that dies (killed
//! with SIGKILL from outside, or aborting inside) costs its task one
//! attempt; a task that kills its worker every time ends its job `done`
//! with an error after its retries; the store keeps answering throughout.
//!
//! Another account (bob) keeps using the store and compute while alice's
//! tasks crash their workers; an upload cut off by a killed worker is
//! never visible; crashed workers are reaped; workers do not inherit the
//! server's environment, and their builtin socket is private.
//!
//! The aborts use the debug-build fault switch of `compute::workers`
//! (`TIDEPOOL_TEST_WORKER_FAULTS` in the server's environment, which guests
//! cannot set); the SIGKILL is a real signal sent to the real worker.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tidepool_tests::{Cluster, ClusterOptions, Tenant, describe, ok};

/// A variable of the server's environment no worker may see.
const SENTINEL: (&str, &str) = ("TIDEPOOL_TEST_SENTINEL", "the-server-secret");
/// The only variables a worker's environment may hold.
const WORKER_ENV: [&str; 7] = [
    "HOME",
    "XDG_CACHE_HOME",
    "TMPDIR",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "TIDEPOOL_TEST_WORKER_FAULTS",
    // Where the Python interpreter is installed (an operator's path).
    "TIDEPOOL_PYTHON_DIR",
];

fn faulty_cluster() -> (Cluster, tempfile::TempDir) {
    let faults = tempfile::tempdir().unwrap();
    let c = Cluster::start_with(ClusterOptions {
        env: vec![
            (
                "TIDEPOOL_TEST_WORKER_FAULTS".into(),
                faults.path().display().to_string(),
            ),
            (SENTINEL.0.into(), SENTINEL.1.into()),
        ],
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
    c.mput("/alice/stor/hc/after", b"still here\n");
    assert_eq!(
        ok(&c.manta("mget", &["/alice/stor/hc/after"])),
        "still here\n"
    );
}

/// Bob stores, reads and runs a job, with the right answers.
fn bob_served(c: &Cluster, bob: &Tenant, name: &str) {
    let path = format!("/bob/stor/{name}");
    ok(&bob.manta(c, "mput", &[&path], b"b\nb\nb\n"));
    assert_eq!(ok(&bob.manta(c, "mget", &[&path], b"")), "b\nb\nb\n");
    let out = bob.manta(
        c,
        "mjob",
        &["create", "-o", "-m", "wc -l"],
        format!("{path}\n").as_bytes(),
    );
    assert_eq!(ok(&out).trim(), "3", "{}", describe(&out));
}

/// Children of `parent` that exited and were not reaped.
fn zombies_of(parent: u32) -> Vec<u32> {
    children_of(parent)
        .into_iter()
        .filter(|(_, state, _)| *state == 'Z')
        .map(|(pid, _, _)| pid)
        .collect()
}

#[test]
fn a_worker_abort_costs_its_task_one_attempt() {
    let (mut c, _faults) = faulty_cluster();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/hc"]));
    let mut inputs = String::new();
    for i in 1..=3 {
        let p = format!("/alice/stor/hc/in{i}");
        c.mput(&p, "x\n".repeat(i).as_bytes());
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
    let bob = c.add_tenant("bob").unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/hc"]));
    c.mput("/alice/stor/hc/a", b"a\n");
    let id = ok(&c.manta_stdin(
        "mjob",
        &["create", "-m", "wc -l # tidepool-test-abort-always"],
        b"/alice/stor/hc/a\n",
    ))
    .trim()
    .to_owned();
    // Bob is served while alice's task crashes its workers.
    bob_served(&c, &bob, "during");
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
    let log = c.server_log();
    assert!(
        log.contains("backing off an account whose phases crash their worker"),
        "the crashing account is backed off:\n{log}"
    );
    // Every crashed worker was reaped before its task was answered.
    let pid = c.pid().unwrap();
    assert_eq!(zombies_of(pid), Vec::<u32>::new(), "unreaped workers");

    // Compute still works for alice's next job and for bob, and the store
    // answers both.
    let id = ok(&c.manta_stdin("mjob", &["create", "-m", "wc -l"], b"/alice/stor/hc/a\n"))
        .trim()
        .to_owned();
    let (status, errs) = finish(&c, &id);
    assert_eq!(status["stats"]["errors"], 0, "{status} {errs:?}");
    assert_eq!(outputs(&c, &id), vec!["1"]);
    bob_served(&c, &bob, "after");
    store_alive(&mut c);
}

/// `(pid, state, cmdline)` of every child process of `parent`.
fn children_of(parent: u32) -> Vec<(u32, char, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, so cut at ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next());
        let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if let (Some(state), Some(ppid)) = (state, ppid)
            && ppid == parent
        {
            out.push((pid, state, String::from_utf8_lossy(&cmdline).into_owned()));
        }
    }
    out
}

/// Pids of the live task workers `parent` started.
fn workers_of(parent: u32) -> Vec<u32> {
    children_of(parent)
        .into_iter()
        .filter(|(_, state, cmd)| *state != 'Z' && cmd.contains("compute-worker"))
        .map(|(pid, _, _)| pid)
        .collect()
}

/// The environment of process `pid`.
fn environ_of(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .filter_map(|v| {
            let v = String::from_utf8_lossy(v);
            let (k, val) = v.split_once('=')?;
            Some((k.to_owned(), val.to_owned()))
        })
        .collect()
}

/// The builtin socket a worker was told (`--builtins PATH`).
fn socket_of(pid: u32) -> PathBuf {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let i = args.iter().position(|a| a == "--builtins").unwrap();
    PathBuf::from(&args[i + 1])
}

/// Files below the nodes' upload areas (`nodes/*/tmp`) and their sizes.
fn uploads_in_progress(c: &Cluster) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let nodes = c.data_dir().join("nodes");
    for n in std::fs::read_dir(nodes).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(n.path().join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((f.path(), len));
        }
    }
    out
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_killed_mid_task_costs_its_task_one_attempt() {
    let (mut c, _faults) = faulty_cluster();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/hc"]));
    c.mput("/alice/stor/hc/in", b"one\ntwo\n");
    // Attempt 1 uploads without end (`mput` runs in the agent, fed through
    // the worker's builtin proxy) until its worker is killed; once the go
    // object exists (put before the kill) an attempt just counts lines,
    // which also shows `mget` left the phase's stdin to `wc`.
    let script =
        "if mget /alice/stor/hc/go > go; then wc -l; else yes | mput /alice/stor/hc/partial; fi";
    let id = ok(&c.manta_stdin("mjob", &["create", "-m", script], b"/alice/stor/hc/in\n"))
        .trim()
        .to_owned();
    wait_for("the upload to stream", Duration::from_secs(120), || {
        uploads_in_progress(&c)
            .iter()
            .any(|(_, len)| *len >= 1 << 20)
    });
    c.mput("/alice/stor/hc/go", b"go\n");
    let pid = c.pid().unwrap();
    let workers = workers_of(pid);
    assert!(!workers.is_empty(), "a task worker runs the task");
    for w in &workers {
        // Nothing of the server's environment but the listed variables.
        let env = environ_of(*w);
        assert!(
            env.iter().all(|(k, _)| WORKER_ENV.contains(&k.as_str())),
            "worker environment {env:?}"
        );
        assert!(!env.iter().any(|(k, _)| k == SENTINEL.0));
        // The builtin socket is in a directory only we may enter.
        let socket = socket_of(*w);
        let dir = socket.parent().unwrap();
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
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
    // The upload cut off by the kill was never committed, and its partial
    // copies are gone from the nodes.
    let got = c.manta("mget", &["/alice/stor/hc/partial"]);
    assert!(!got.status.success(), "{}", describe(&got));
    assert!(
        String::from_utf8_lossy(&got.stderr).contains("ResourceNotFound"),
        "{}",
        describe(&got)
    );
    wait_for(
        "partial copies to be removed",
        Duration::from_secs(60),
        || uploads_in_progress(&c).is_empty(),
    );
    assert_eq!(zombies_of(pid), Vec::<u32>::new(), "unreaped workers");
    store_alive(&mut c);
}

/// `tidepool exec`'s worker writes the phase's stdout straight into exec's
/// own stdout (an inherited descriptor, not a relay): a file opened for
/// appending keeps what was in it and gets the output after it, and
/// stderr and the exit status still come back through the control channel.
#[test]
fn exec_writes_its_own_stdout_directly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "b\na\nc\n").unwrap();
    let out = dir.path().join("out.txt");
    std::fs::write(&out, "kept\n").unwrap();
    let appended = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    let run = Command::new(tidepool_tests::tidepool_bin())
        .arg("exec")
        .arg("--input")
        .arg(&input)
        .arg("sort; echo oops >&2; exit 3")
        .stdout(appended)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(3), "{}", describe(&run));
    assert_eq!(String::from_utf8_lossy(&run.stderr), "oops\n");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "kept\na\nb\nc\n");

    // A reader that goes away early ends the phase (the guest's writes
    // fail) instead of leaving it writing into nothing, and exec exits
    // rather than dying of SIGPIPE.
    let mut child = Command::new(tidepool_tests::tidepool_bin())
        .args(["exec", "yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 4];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    assert_eq!(&first, b"y\ny\n");
    drop(child.stdout.take());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "exec did not end after its reader left"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.code().is_some(), "{status:?}");
}
