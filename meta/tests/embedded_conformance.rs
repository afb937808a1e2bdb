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

/// One test per suite function, each on its own fresh store, so a failure
/// names the broken property.
macro_rules! each_on_fresh_store {
    ($($name:ident),* $(,)?) => {
        mod fresh {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let kv = super::open(&dir.path().join("meta.redb")).await;
                    meta::conformance::$name(kv).await;
                }
            )*
        }
    };
}

each_on_fresh_store!(
    kv_basic_crud,
    kv_batch_get,
    kv_scan_bounds_and_order,
    kv_read_your_writes,
    kv_snapshot_isolation,
    kv_write_conflict,
    kv_no_lost_updates,
    kv_rollback_discards,
    kv_counter_adds,
    ns_accounts_and_keys,
    ns_directories_and_objects,
    ns_conditions,
    ns_overwrite_and_gc,
    ns_put_metadata,
    ns_snaplinks,
    ns_concurrent_unlinks,
    ns_listing_order_and_markers,
    ns_listing_pagination,
    ns_listing_by_mtime,
    ns_counts_under_concurrency,
    ns_rmdir_races_create,
    ns_directory_limit,
    ns_counts_survive_a_shard_change,
    ns_nodes,
    ns_roles_and_policies,
    ns_s3_keys,
);

/// Group commit: conflicting transactions that reach the committer together
/// still conflict (exactly one wins), disjoint ones all commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_keeps_first_committer_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv = open(&dir.path().join("meta.redb")).await;
    for round in 0u8..20 {
        let hot = vec![0xf3, round];
        let mut txns = Vec::new();
        for i in 0u8..4 {
            let mut t = kv.begin().await.expect("begin");
            t.get_for_update(&hot).await.expect("lock");
            t.put(hot.clone(), vec![i]).await.expect("put");
            txns.push(t);
        }
        let mut cold = Vec::new();
        for i in 0u8..4 {
            let mut t = kv.begin().await.expect("begin");
            t.put(vec![0xf4, round, i], vec![i]).await.expect("put");
            cold.push(t);
        }
        let hot_results = futures_join(txns.into_iter().map(|t| t.commit())).await;
        let wins = hot_results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {hot_results:?}");
        assert!(
            hot_results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(meta::kv::KvError::Conflict(_))))
        );
        let cold_results = futures_join(cold.into_iter().map(|t| t.commit())).await;
        assert!(cold_results.iter().all(Result::is_ok), "{cold_results:?}");
    }
}

/// Run futures concurrently (so their commits can share a batch).
async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
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
