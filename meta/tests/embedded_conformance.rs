//! Runs the backend-generic conformance suite against the embedded redb
//! backend, plus the embedded-only durability checks (reopen, kill -9).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meta::conformance;
use meta::embedded::EmbeddedKv;
use meta::kv::{Kv, Txn};

async fn open(path: &std::path::Path) -> Arc<dyn Kv> {
    Arc::new(EmbeddedKv::open(path).await.expect("open embedded store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_on_a_shared_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv = open(&dir.path().join("meta.redb")).await;
    // One store for every test: the suite must cope with a shared backend.
    conformance::run_all(|| {
        let kv = kv.clone();
        async move { kv }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_data_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.redb");
    conformance::durability_across_reopen(|| open(&path)).await;
}

const CHILD_ENV: &str = "META_CRASH_CHILD_DB";

/// Child half of the kill -9 test: commit numbered keys forever, printing
/// each number only after its commit returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful when spawned by `commits_survive_kill_9`.
    };
    let kv = open(std::path::Path::new(&path)).await;
    for i in 0u64.. {
        let mut t: Box<dyn Txn> = kv.begin().await.expect("begin");
        t.put(key(i), i.to_be_bytes().to_vec()).await.expect("put");
        t.commit().await.expect("commit");
        println!("committed {i}");
    }
}

fn key(i: u64) -> Vec<u8> {
    let mut k = vec![0xf1];
    k.extend_from_slice(&i.to_be_bytes());
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.redb");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("committed ")
                && tx.send(n.parse::<u64>().expect("number")).is_err()
            {
                return;
            }
        }
    });
    // Wait (with a deadline) until the child acknowledged 50 commits, then
    // SIGKILL it mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acked = None;
    while acked.is_none_or(|n| n < 50) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(n) => acked = Some(n),
            Err(e) => panic!("child made no progress: {e}"),
        }
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    // Everything acknowledged before the kill must be there.
    while let Ok(n) = rx.try_recv() {
        acked = Some(n);
    }
    let acked = acked.expect("acked");
    let kv = open(&path).await;
    let mut snap = kv.snapshot().await.expect("snapshot");
    for i in 0..=acked {
        assert_eq!(
            snap.get(&key(i)).await.expect("get"),
            Some(i.to_be_bytes().to_vec()),
            "commit {i} acknowledged before kill -9 is missing"
        );
    }
}
