//! Commit throughput of the embedded backend with 1 and 16 concurrent
//! writers (each commit fsyncs). Informational: run with
//! `cargo test -p meta --release --test embedded_throughput -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use meta::embedded::EmbeddedKv;
use meta::kv::Kv;

async fn run(kv: Arc<dyn Kv>, writers: u64, per: u64) -> f64 {
    let t0 = Instant::now();
    let mut hs = Vec::new();
    for w in 0..writers {
        let kv = kv.clone();
        hs.push(tokio::spawn(async move {
            for i in 0..per {
                let mut t = kv.begin().await.expect("begin");
                let mut k = vec![0xf2];
                k.extend_from_slice(&w.to_be_bytes());
                k.extend_from_slice(&i.to_be_bytes());
                t.put(k, vec![0; 200]).await.expect("put");
                t.commit().await.expect("commit");
            }
        }));
    }
    for h in hs {
        h.await.expect("task");
    }
    (writers * per) as f64 / t0.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark"]
async fn commit_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv: Arc<dyn Kv> = Arc::new(
        EmbeddedKv::open(dir.path().join("t.redb"))
            .await
            .expect("open"),
    );
    let one = run(kv.clone(), 1, 300).await;
    let many = run(kv.clone(), 16, 100).await;
    println!("commits/s: 1 writer {one:.0}, 16 writers {many:.0}");
    assert!(one > 0.0 && many > 0.0);
}
