//! The in-cluster object writer ([`ObjectIo`]) against real storage nodes
//! and embedded metadata: a write gets the copies it asks for or fails
//! leaving nothing visible.

use std::sync::Arc;

use compute::objects::{ObjectError, ObjectIo};
use meta::embedded::EmbeddedKv;
use meta::namespace::{Conditions, Namespace, NodeRecord, NodeState, system_now_ms};
use meta::path::MantaPath;
use storage_node::client::{ClientOptions, NodeClient};
use storage_node::protocol::ObjectId;
use storage_node::server::{NodeConfig, NodeServer};
use storage_node::store::{ObjectStore, StoreError};
use tokio_util::sync::CancellationToken;

struct Cluster {
    ns: Arc<Namespace>,
    urls: Vec<String>,
    stores: Vec<Arc<ObjectStore>>,
    _dirs: Vec<tempfile::TempDir>,
    stop: CancellationToken,
    key: storage_node::ClusterKey,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `nodes` real storage nodes registered in fresh embedded metadata with
/// an account `alice`.
async fn cluster(nodes: usize) -> Cluster {
    let meta_dir = tempfile::tempdir().unwrap();
    let kv = Arc::new(
        EmbeddedKv::open(meta_dir.path().join("meta.redb"))
            .await
            .unwrap(),
    );
    let ns = Arc::new(Namespace::new(kv));
    ns.create_account("alice").await.unwrap();
    let stop = CancellationToken::new();
    let key = storage_node::ClusterKey::generate();
    let (mut urls, mut stores, mut dirs) = (Vec::new(), Vec::new(), vec![meta_dir]);
    for i in 1..=nodes {
        let dir = tempfile::tempdir().unwrap();
        let server = NodeServer::bind(NodeConfig {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            node_id: format!("n{i}"),
            az: format!("az{i}"),
            cluster_key: key.clone(),
        })
        .await
        .unwrap();
        urls.push(server.url());
        stores.push(server.store());
        tokio::spawn(server.serve(stop.clone()));
        dirs.push(dir);
    }
    let c = Cluster {
        ns,
        urls,
        stores,
        _dirs: dirs,
        stop,
        key,
    };
    for i in 1..=nodes {
        c.heartbeat(i, system_now_ms()).await;
    }
    c
}

impl Cluster {
    /// Registers node `i` as last heard from at `at_ms`.
    async fn heartbeat(&self, i: usize, at_ms: u64) {
        self.ns
            .register_node(&NodeRecord {
                id: format!("n{i}"),
                url: self.urls[i - 1].clone(),
                az: format!("az{i}"),
                capacity_total: 1 << 40,
                capacity_used: 0,
                heartbeat_ms: at_ms,
                pool_health: None,
                state: NodeState::Active,
            })
            .await
            .unwrap();
    }

    fn io(&self, durability: usize) -> ObjectIo {
        let client = NodeClient::new(ClientOptions::default(), &self.key).unwrap();
        ObjectIo::new(self.ns.clone(), client, Some("n1".into()), durability)
    }

    async fn copies(&self, name: &str) -> Option<usize> {
        let path = MantaPath::parse(name).unwrap();
        let entry = self.ns.get(&path).await.unwrap()?;
        Some(entry.object().expect("an object").copies.len())
    }
}

#[tokio::test]
async fn writes_get_every_copy_asked_or_fail_leaving_nothing() {
    let c = cluster(3).await;
    let io = c.io(2);
    io.put_bytes("/alice/stor/two", b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(c.copies("/alice/stor/two").await, Some(2));

    // Both peers silent for longer than the heartbeat timeout: only this
    // node is left, and a write needing two copies is refused.
    c.heartbeat(2, 1).await;
    c.heartbeat(3, 1).await;
    let err = io
        .put_bytes("/alice/stor/one", b"hello".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ObjectError::NotEnoughNodes {
                wanted: 2,
                available: 1
            }
        ),
        "{err}"
    );
    assert_eq!(c.copies("/alice/stor/one").await, None);

    // One peer back: the write succeeds with both copies.
    c.heartbeat(3, system_now_ms()).await;
    io.put_bytes("/alice/stor/one", b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(c.copies("/alice/stor/one").await, Some(2));
}

#[tokio::test]
async fn a_cluster_smaller_than_the_durability_gets_a_copy_on_every_node() {
    let c = cluster(1).await;
    c.io(2)
        .put_bytes("/alice/stor/solo", b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(c.copies("/alice/stor/solo").await, Some(1));
}

/// Copies of objects whose last name went are deleted by each node's GC
/// pass (the gateway's immediate delete is only best effort), and the
/// records are then forgotten; copies still named stay.
#[tokio::test]
async fn gc_deletes_exactly_the_copies_no_name_refers_to() {
    let c = cluster(3).await;
    let io = c.io(3);
    let path = |p: &str| MantaPath::parse(p).unwrap();
    let object_of = |name: &'static str| {
        let ns = c.ns.clone();
        async move {
            let e = ns
                .get(&MantaPath::parse(name).unwrap())
                .await
                .unwrap()
                .unwrap();
            ObjectId::parse(&e.object().unwrap().object_id.to_string()).unwrap()
        }
    };
    io.put_bytes("/alice/stor/gone", b"a".to_vec())
        .await
        .unwrap();
    io.put_bytes("/alice/stor/over", b"old".to_vec())
        .await
        .unwrap();
    io.put_bytes("/alice/stor/linked", b"l".to_vec())
        .await
        .unwrap();
    let (gone, old, linked) = (
        object_of("/alice/stor/gone").await,
        object_of("/alice/stor/over").await,
        object_of("/alice/stor/linked").await,
    );
    io.put_bytes("/alice/stor/over", b"new".to_vec())
        .await
        .unwrap();
    let new = object_of("/alice/stor/over").await;
    let none = Conditions::default();
    c.ns.snaplink(
        &path("/alice/stor/linked"),
        &path("/alice/stor/link"),
        &none,
    )
    .await
    .unwrap();
    c.ns.delete(&path("/alice/stor/gone"), &none).await.unwrap();
    c.ns.delete(&path("/alice/stor/linked"), &none)
        .await
        .unwrap();

    // One copy was already deleted (as the gateway does at once): still
    // counted as collected.
    c.stores[1].delete(&gone).await.unwrap();
    for (i, store) in c.stores.iter().enumerate() {
        let node = format!("n{}", i + 1);
        let n = storage_node::gc::collect(&c.ns, store, &node, 1)
            .await
            .unwrap();
        assert_eq!(n, 2, "{node}: the deleted and the overwritten object");
        assert!(c.ns.gc_pending(&node, 10).await.unwrap().is_empty());
        for id in [&gone, &old] {
            assert!(matches!(
                store.open_object(id).await,
                Err(StoreError::NotFound)
            ));
        }
        for id in [&new, &linked] {
            store.open_object(id).await.unwrap();
        }
        assert_eq!(
            storage_node::gc::collect(&c.ns, store, &node, 1)
                .await
                .unwrap(),
            0
        );
    }
}
