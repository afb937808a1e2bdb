//! Issue 12, items 4 and 5, as a hostile tenant tries them against a real
//! `tidepool up` with the real `mjob` CLI and two accounts (alice, bob):
//!
//! - bob's wide busy pipelines do not make alice's job fail or wait for
//!   them: it completes with the right output while bob's loops still run
//!   (bob's surplus tasks are queued, not failed);
//! - a task's memory is one budget summed over its stages: an 8-stage
//!   pipeline of allocators at `memory: 256` is stopped as out of memory,
//!   and the server's peak resident memory grows by less than a bound
//!   derived from that budget;
//! - a task's disk is one budget for scratch, stdout, `msplit` spools and
//!   in-task uploads: over it, `msplit` and `mput` stop with "ran out of
//!   local disk space", the upload never appears, and nothing of the task
//!   is left on the node's disk;
//! - a `.wasm` asset over the command size bound fails its task with a
//!   `TaskInitError` saying so, without being compiled.
//!
//! The disk quota is exercised with `tidepool up --task-disk-unit` (bytes
//! per GB of a phase's `disk`) at 16 MiB, so `disk: 2` is 32 MiB and the
//! test writes tens of MB, not gigabytes.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tidepool_tests::{Cluster, ClusterOptions, describe, ok, run_with_deadline, tidepool_bin};

/// Bytes per "GB" of a phase's `disk` in these tests.
const DISK_UNIT: u64 = 16 << 20;

/// `tidepool up` (with `extra` arguments) for alice, plus account bob
/// (same key) added through `tidepool admin` while the server is stopped.
fn start(extra: &[&str]) -> Cluster {
    let mut args = vec!["--task-disk-unit".to_owned(), DISK_UNIT.to_string()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let mut c = Cluster::start_with(ClusterOptions {
        args,
        ..Default::default()
    })
    .expect("tidepool up");
    c.kill9();
    let key = c.public_key();
    for args in [
        vec!["account", "add", "bob"],
        vec!["key", "add", "bob", key.to_str().expect("utf-8 path")],
    ] {
        let mut cmd = Command::new(tidepool_bin());
        cmd.arg("admin").arg("--data").arg(c.data_dir()).args(&args);
        ok(&run_with_deadline(&mut cmd, None, Duration::from_secs(60)));
    }
    c.restart().expect("restart tidepool up");
    c
}

/// Runs a Manta CLI tool as `user` with `input` on stdin.
fn cli(c: &Cluster, user: &str, tool: &str, args: &[&str], input: &[u8]) -> Output {
    cli_within(c, user, tool, args, input, Duration::from_secs(300))
}

/// [`cli`], killed after `deadline`.
fn cli_within(
    c: &Cluster,
    user: &str,
    tool: &str,
    args: &[&str],
    input: &[u8],
    deadline: Duration,
) -> Output {
    let mut cmd = c.manta_cmd(tool);
    cmd.env("MANTA_USER", user).args(args);
    run_with_deadline(&mut cmd, Some(input), deadline)
}

/// Creates a job; returns its id.
fn create(c: &Cluster, user: &str, args: &[&str], inputs: &str) -> String {
    let mut all = vec!["create"];
    all.extend_from_slice(args);
    let id = ok(&cli(c, user, "mjob", &all, inputs.as_bytes()))
        .trim()
        .to_owned();
    assert_eq!(id.len(), 36, "mjob create prints the job id: {id:?}");
    id
}

/// Waits for the job to be done; returns its status.
fn watch(c: &Cluster, user: &str, id: &str) -> serde_json::Value {
    let out = cli(c, user, "mjob", &["watch", id], b"");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", describe(&out)))
}

fn errors(c: &Cluster, user: &str, id: &str) -> Vec<serde_json::Value> {
    ok(&cli(c, user, "mjob", &["errors", id], b""))
        .lines()
        .map(|l| serde_json::from_str(l).expect("error record"))
        .collect()
}

/// `key` (kB) of `pid` and every process below it (the server and its task
/// workers), by pid; processes that end while this reads are skipped.
fn tree_kib(pid: u32, key: &str) -> std::collections::HashMap<u32, u64> {
    let ppid = |p: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        // `pid (comm) state ppid ...`; comm may hold spaces or parens.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let all: Vec<u32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().copied().filter(|&p| ppid(p) == Some(parent)));
        i += 1;
    }
    tree.into_iter()
        .filter_map(|p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            let v = status
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some((p, v))
        })
        .collect()
}

/// How much `key` grew over the process tree between two [`tree_kib`]
/// readings (a process new since `before` counts whole).
fn tree_growth(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
) -> u64 {
    after
        .iter()
        .map(|(p, v)| v.saturating_sub(before.get(p).copied().unwrap_or(0)))
        .sum()
}

/// Per-task directories present on the nodes now.
fn task_dirs(data: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for node in std::fs::read_dir(data.join("nodes"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let tasks = node.path().join("tasks");
        for t in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            out.push(t.path());
        }
    }
    out
}

/// Waits (with a deadline) until `cond` holds; false if it never did.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

#[test]
fn a_tenants_wide_busy_pipelines_do_not_fail_another_tenants_job() {
    // One node, so every task of both tenants competes for it.
    let c = start(&["--nodes", "1"]);
    // bob: six tasks, each a shell busy loop feeding 63 wasm `cat`s: 384
    // instances wanted at once, more than the old process-wide pool of
    // 256, and two of them would fill the node's 128 stages. They never
    // end on their own; bob's job is cancelled at the end.
    ok(&cli(&c, "bob", "mmkdir", &["-p", "~~/stor/spin"], b""));
    let mut inputs = String::new();
    for i in 0..6 {
        let p = format!("/bob/stor/spin/{i}");
        // One copy: the cluster has one node.
        ok(&cli(
            &c,
            "bob",
            "mput",
            &["-c", "1", &p],
            format!("{i}\n").as_bytes(),
        ));
        inputs.push_str(&p);
        inputs.push('\n');
    }
    let exec = format!("while :; do :; done | {}", ["cat"; 63].join(" | "));
    let bob = create(&c, "bob", &["-m", &exec], &inputs);
    // Bob's tasks are running (each has its task directory) before alice
    // comes.
    assert!(
        wait_until(Duration::from_secs(120), || !task_dirs(&c.data_dir())
            .is_empty()),
        "bob's tasks did not start: {:?}",
        task_dirs(&c.data_dir())
    );

    // Alice's job runs to completion while bob's loops keep running: no
    // account may take the node's last quarter, so she starts at once
    // rather than after one of bob's tasks (which never end) is stopped.
    let body = tidepool_tests::payload(100_000, 7);
    ok(&cli(
        &c,
        "alice",
        "mput",
        &["-c", "1", "/alice/stor/a"],
        &body,
    ));
    let started = Instant::now();
    let alice = create(&c, "alice", &["-m", "wc -c"], "/alice/stor/a\n");
    // Bounded: queued behind bob's endless tasks, she would wait forever.
    let out = cli_within(
        &c,
        "alice",
        "mjob",
        &["watch", &alice],
        b"",
        Duration::from_secs(120),
    );
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", describe(&out)));
    eprintln!(
        "alice's job done in {:?} while bob's loops ran",
        started.elapsed()
    );
    assert_eq!(status["state"], "done", "{status}");
    let errs = errors(&c, "alice", &alice);
    assert!(errs.is_empty(), "alice's job failed: {errs:?}");
    assert_eq!(status["stats"]["outputs"], 1, "{status}");
    let outs = ok(&cli(&c, "alice", "mjob", &["outputs", &alice], b""));
    let got = ok(&cli(&c, "alice", "mget", &[outs.trim()], b""));
    assert_eq!(got.trim(), "100000");

    // Bob's job was still going all along, and none of it failed because
    // the node was busy (queued, not failed).
    let out = cli(&c, "bob", "mjob", &["get", &bob], b"");
    let bob_now: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", describe(&out)));
    assert_eq!(bob_now["state"], "running", "{bob_now}");
    assert!(errors(&c, "bob", &bob).is_empty());
    ok(&cli(&c, "bob", "mjob", &["cancel", &bob], b""));
    let bob_status = watch(&c, "bob", &bob);
    assert_eq!(bob_status["cancelled"], true, "{bob_status}");
}

#[test]
fn memory_is_one_budget_summed_over_a_tasks_stages() {
    let c = start(&[]);
    let pid = c.pid().expect("server pid");
    ok(&cli(&c, "alice", "mput", &["/alice/stor/m"], b"x\n"));
    // Warm up (the toolbox compiled or loaded, a task run once), so the
    // peak measured below is the task's, not start-up's.
    let warm = create(&c, "alice", &["-m", "wc -l"], "/alice/stor/m\n");
    assert_eq!(watch(&c, "alice", &warm)["stats"]["errors"], 0);
    // Phases run in task worker processes: measure the whole tree.
    let before = tree_kib(pid, "VmHWM");

    // Eight stages, each allocating until stopped.
    let grow = r#"awk 'BEGIN { while (1) a[i++] = sprintf("%1000d", i) }'"#;
    let exec = [grow; 8].join(" | ");
    let id = create(
        &c,
        "alice",
        &["--memory", "256", "-m", &exec],
        "/alice/stor/m\n",
    );
    let status = watch(&c, "alice", &id);
    assert_eq!(status["state"], "done", "{status}");
    let errs = errors(&c, "alice", &id);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0]["code"], "UserTaskError", "{errs:?}");
    assert_eq!(
        errs[0]["message"], "user task ran out of memory",
        "{errs:?}"
    );

    // The task's 256 MiB of wasm memory, plus 256 MiB for everything else
    // the task costs the host (eight fiber stacks, pipe buffers, the
    // interpreter, the HTTP exchange). With a limit per instance the same
    // job grew the server by 836 MB.
    let grown = tree_growth(&before, &tree_kib(pid, "VmHWM"));
    eprintln!("8-stage memory: 256 task: peak RSS of server and workers grew by {grown} KiB");
    assert!(
        grown < 512 * 1024,
        "peak RSS grew by {grown} KiB for a 256 MiB task"
    );
}

#[test]
fn disk_is_one_budget_for_spools_uploads_and_output() {
    let c = start(&[]);
    ok(&cli(&c, "alice", "mput", &["/alice/stor/d"], b"x\n"));
    let line = "a".repeat(999);
    // 50 MB of lines through msplit, over a 32 MiB quota: its spool files
    // (in the task's directory) are charged.
    let exec = format!("yes {line} | head -c 50000000 | msplit -n 2");
    let id = create(
        &c,
        "alice",
        &["--disk", "2", "-m", &exec, "--count", "2", "-r", "wc -c"],
        "/alice/stor/d\n",
    );
    let status = watch(&c, "alice", &id);
    assert_eq!(status["state"], "done", "{status}");
    let errs = errors(&c, "alice", &id);
    let disk = errs
        .iter()
        .find(|e| e["message"] == "user task ran out of local disk space")
        .unwrap_or_else(|| panic!("msplit over the quota: {errs:?}"));
    assert_eq!(disk["code"], "UserTaskError");

    // An in-task upload over the quota fails cleanly: the object never
    // appears, and the task's stderr says why.
    let exec = format!("yes {line} | head -c 50000000 | mput ~~/stor/big");
    let id = create(
        &c,
        "alice",
        &["--disk", "2", "-m", &exec],
        "/alice/stor/d\n",
    );
    assert_eq!(watch(&c, "alice", &id)["state"], "done");
    let errs = errors(&c, "alice", &id);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0]["message"], "user task ran out of local disk space");
    let stderr = ok(&cli(
        &c,
        "alice",
        "mget",
        &[errs[0]["stderr"].as_str().unwrap()],
        b"",
    ));
    assert!(stderr.contains("disk quota"), "{stderr}");
    let ls = cli(&c, "alice", "mls", &["~~/stor/big"], b"");
    assert!(
        !ls.status.success(),
        "the upload must not exist: {}",
        describe(&ls)
    );

    // Within the quota the same upload works.
    let exec = format!("yes {line} | head -c 1000000 | mput ~~/stor/small");
    let id = create(
        &c,
        "alice",
        &["--disk", "2", "-m", &exec],
        "/alice/stor/d\n",
    );
    assert_eq!(watch(&c, "alice", &id)["stats"]["errors"], 0);
    let small = cli(&c, "alice", "mget", &["~~/stor/small"], b"");
    assert_eq!(ok(&small).len(), 1_000_000);

    // A `.wasm` asset larger than a command may be is refused before it is
    // compiled (it is streamed to disk, bounded, never read whole), with
    // the error the user sees; `disk: 8` (128 MiB here) leaves room for it.
    let big = tidepool_tests::payload(64 * 1024 * 1024 + 1, 3);
    ok(&cli(&c, "alice", "mput", &["/alice/stor/big.wasm"], &big));
    drop(big);
    let id = create(
        &c,
        "alice",
        &["--disk", "8", "-s", "/alice/stor/big.wasm", "-m", "big"],
        "/alice/stor/d\n",
    );
    assert_eq!(watch(&c, "alice", &id)["state"], "done");
    let errs = errors(&c, "alice", &id);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0]["code"], "TaskInitError", "{errs:?}");
    let message = errs[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is too large") && message.contains("a .wasm command may be at most"),
        "{message}"
    );

    // Nothing of the tasks (scratch, spools, stdout, assets) stays on disk.
    assert!(
        wait_until(Duration::from_secs(30), || task_dirs(&c.data_dir())
            .is_empty()),
        "left behind: {:?}",
        task_dirs(&c.data_dir())
    );
}
