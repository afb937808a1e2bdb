//! Reads racing writes and garbage collection (found by the partition
//! suite, issue 19: a GET answered `500 InternalError` under overwrites).
//!
//! A GET reads the object's metadata, then its bytes from a node. When an
//! overwrite commits in between, the old object is released and the nodes'
//! GC may remove its copies before the node read: the GET must then answer
//! from the metadata as it is now (the new version), never a 500, and never
//! bytes other than one whole written version.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use common::Cluster;
use reqwest::Method;
use storage_node::store::ObjectStore;

fn version(i: usize) -> Vec<u8> {
    format!("version {i:05}\n").repeat(200).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_get_racing_an_overwrite_and_gc_answers_a_whole_version_never_500() -> Result<()> {
    let c = Arc::new(Cluster::start().await?);
    c.mkdir("/alice/stor/race").await?;
    let path = "/alice/stor/race/k";
    let r = c.alice(Method::PUT, path).body(version(0)).send().await?;
    assert_eq!(r.status(), 204);

    let done = Arc::new(AtomicBool::new(false));
    // GC on every node in a tight loop: released copies go at once.
    let mut gcs = Vec::new();
    for n in &c.nodes {
        let store = ObjectStore::open(n.data_dir.clone()).await?;
        let (ns, id, done) = (c.ns.clone(), n.id.clone(), done.clone());
        gcs.push(tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let _ = storage_node::gc::collect(&ns, &store, &id, 100).await;
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (c, done) = (c.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0usize;
            let mut bad = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let (status, body) = c.get_bytes(path).await.expect("get");
                reads += 1;
                let whole = std::str::from_utf8(&body[..body.len().min(14)])
                    .ok()
                    .and_then(|l| l.strip_prefix("version "))
                    .and_then(|n| n.trim_end().parse::<usize>().ok())
                    .is_some_and(|n| body == version(n));
                if (status != 200 || !whole) && bad.len() < 10 {
                    bad.push(format!(
                        "{status} {:?}",
                        String::from_utf8_lossy(&body[..body.len().min(80)])
                    ));
                }
            }
            (reads, bad)
        }));
    }
    for i in 1..=300 {
        let r = c.alice(Method::PUT, path).body(version(i)).send().await?;
        assert_eq!(r.status(), 204, "overwrite {i}");
    }
    done.store(true, Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        let (n, bad) = r.await?;
        reads += n;
        assert!(bad.is_empty(), "reads racing overwrites + GC: {bad:?}");
    }
    for g in gcs {
        g.await?;
    }
    assert!(reads > 0);
    let (status, body) = c.get_bytes(path).await?;
    assert_eq!((status.as_u16(), body), (200, version(300)));
    Ok(())
}
