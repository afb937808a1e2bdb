//! The backend-generic conformance suite: every [`Kv`] backend must pass it.
//!
//! Call [`run_all`] from a backend's tests with a factory for the store (or
//! the individual `pub async fn`s to see failures one by one). Tests
//! namespace their keys with random prefixes and random logins/node ids, so
//! the factory may hand out the *same* shared store (e.g. one TiKV cluster)
//! every time. Failures panic with a message, like ordinary test asserts.
//! [`durability_across_reopen`] additionally needs a way to reopen the same
//! store and is run separately.
//!
//! Covered: get/put/delete, batch_get, scans in both directions with limits
//! and bounds, read-your-writes, snapshot isolation, write-write conflicts on
//! `get_for_update`, lost-update freedom under concurrency, rollback, counter
//! adds, and
//! the namespace semantics (accounts and keys, directories and objects,
//! conditions, listing order/markers/pagination/filters, counts, snaplink
//! refcounts, GC records, storage nodes, races between create and rmdir).

use std::collections::BTreeSet;
use std::future::Future;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use crate::keys;
use crate::kv::{KeyRange, Kv, KvError, Order, Txn};
use crate::namespace::{
    Conditions, CopyRef, Entry, Headers, ListOptions, Marker, MetadataUpdate, Namespace,
    NamespaceError, NewObject, NodeRecord, NodeState, S3Key, SortBy, SshKey, TypeFilter,
    WorkerRecord,
};
use crate::path::MantaPath;

/// Run every test of the suite, each with a store from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Kv>>,
{
    kv_basic_crud(make().await).await;
    kv_batch_get(make().await).await;
    kv_scan_bounds_and_order(make().await).await;
    kv_read_your_writes(make().await).await;
    kv_snapshot_isolation(make().await).await;
    kv_write_conflict(make().await).await;
    kv_no_lost_updates(make().await).await;
    kv_rollback_discards(make().await).await;
    kv_counter_adds(make().await).await;
    ns_accounts_and_keys(make().await).await;
    ns_directories_and_objects(make().await).await;
    ns_create_directories(make().await).await;
    ns_put_object_creating_parents(make().await).await;
    ns_conditions(make().await).await;
    ns_overwrite_and_gc(make().await).await;
    ns_put_metadata(make().await).await;
    ns_snaplinks(make().await).await;
    ns_concurrent_unlinks(make().await).await;
    ns_listing_order_and_markers(make().await).await;
    ns_listing_pagination(make().await).await;
    ns_listing_by_mtime(make().await).await;
    ns_counts_under_concurrency(make().await).await;
    ns_rmdir_races_create(make().await).await;
    ns_directory_limit(make().await).await;
    ns_counts_survive_a_shard_change(make().await).await;
    ns_nodes(make().await).await;
    ns_upkeep(make().await).await;
    ns_roles_and_policies(make().await).await;
    ns_s3_keys(make().await).await;
}

// ---------------------------------------------------------------- helpers

fn prefix() -> Vec<u8> {
    // Tag 0xf0 is unused by the namespace, so suite keys never collide with
    // real metadata on a shared store.
    let mut p = vec![0xf0];
    p.extend_from_slice(Uuid::new_v4().as_bytes());
    p
}

fn k(p: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut v = p.to_vec();
    v.extend_from_slice(suffix);
    v
}

async fn put_commit(kv: &Arc<dyn Kv>, pairs: &[(Vec<u8>, Vec<u8>)]) {
    let mut t = kv.begin().await.expect("begin");
    for (key, v) in pairs {
        t.put(key.clone(), v.clone()).await.expect("put");
    }
    t.commit().await.expect("commit");
}

async fn snap_get(kv: &Arc<dyn Kv>, key: &[u8]) -> Option<Vec<u8>> {
    kv.snapshot()
        .await
        .expect("snapshot")
        .get(key)
        .await
        .expect("get")
}

fn login() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

fn p(s: &str) -> MantaPath {
    MantaPath::parse(s).expect("valid test path")
}

fn new_obj(copies: &[&str]) -> NewObject {
    NewObject {
        object_id: Uuid::new_v4(),
        size: 5,
        content_md5: "XUFAKrxLKna5cZ2REBfFkg==".into(),
        blake3: "ab".repeat(32),
        content_type: "text/plain".into(),
        headers: Headers::from([("m-color".to_owned(), "blue".to_owned())]),
        copies: copies.iter().map(|s| (*s).to_owned()).collect(),
        durability: copies.len() as u8,
    }
}

async fn ns_with_account(kv: Arc<dyn Kv>) -> (Namespace, String) {
    let ns = Namespace::new(kv);
    let l = login();
    ns.create_account(&l).await.expect("create account");
    (ns, l)
}

fn names(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| e.name.clone()).collect()
}

// ---------------------------------------------------------------- kv

/// put, get, overwrite, delete.
pub async fn kv_basic_crud(kv: Arc<dyn Kv>) {
    let p = prefix();
    assert_eq!(snap_get(&kv, &k(&p, b"a")).await, None);
    put_commit(&kv, &[(k(&p, b"a"), b"1".to_vec())]).await;
    assert_eq!(snap_get(&kv, &k(&p, b"a")).await, Some(b"1".to_vec()));
    put_commit(&kv, &[(k(&p, b"a"), b"2".to_vec())]).await;
    assert_eq!(snap_get(&kv, &k(&p, b"a")).await, Some(b"2".to_vec()));
    let mut t = kv.begin().await.expect("begin");
    t.delete(k(&p, b"a")).await.expect("delete");
    t.commit().await.expect("commit");
    assert_eq!(snap_get(&kv, &k(&p, b"a")).await, None);
    // Empty values are values, not absence.
    put_commit(&kv, &[(k(&p, b"e"), Vec::new())]).await;
    assert_eq!(snap_get(&kv, &k(&p, b"e")).await, Some(Vec::new()));
}

/// batch_get returns values aligned with the keys, `None` for missing ones.
pub async fn kv_batch_get(kv: Arc<dyn Kv>) {
    let p = prefix();
    put_commit(
        &kv,
        &[(k(&p, b"x"), b"1".to_vec()), (k(&p, b"z"), b"3".to_vec())],
    )
    .await;
    let keys = vec![k(&p, b"z"), k(&p, b"y"), k(&p, b"x")];
    let mut s = kv.snapshot().await.expect("snapshot");
    let got = s.batch_get(&keys).await.expect("batch_get");
    assert_eq!(got, vec![Some(b"3".to_vec()), None, Some(b"1".to_vec())]);
    let mut t = kv.begin().await.expect("begin");
    t.put(k(&p, b"y"), b"2".to_vec()).await.expect("put");
    t.delete(k(&p, b"z")).await.expect("delete");
    let got = t.batch_get(&keys).await.expect("batch_get");
    assert_eq!(got, vec![None, Some(b"2".to_vec()), Some(b"1".to_vec())]);
    t.rollback().await.expect("rollback");
}

/// Scans honour bounds, limits and direction.
pub async fn kv_scan_bounds_and_order(kv: Arc<dyn Kv>) {
    let p = prefix();
    let pairs: Vec<_> = (0u8..50).map(|i| (k(&p, &[i]), vec![i])).collect();
    put_commit(&kv, &pairs).await;
    let mut s = kv.snapshot().await.expect("snapshot");
    let vals =
        |rows: Vec<(Vec<u8>, Vec<u8>)>| rows.into_iter().map(|(_, v)| v[0]).collect::<Vec<_>>();

    let all = s
        .scan(KeyRange::prefix(&p), 100, Order::Asc)
        .await
        .expect("scan");
    assert_eq!(vals(all), (0..50).collect::<Vec<_>>());
    let first = s
        .scan(KeyRange::prefix(&p), 3, Order::Asc)
        .await
        .expect("scan");
    assert_eq!(vals(first), vec![0, 1, 2]);
    let last = s
        .scan(KeyRange::prefix(&p), 3, Order::Desc)
        .await
        .expect("scan");
    assert_eq!(vals(last), vec![49, 48, 47]);
    let r = KeyRange::new(k(&p, &[10]), k(&p, &[13]));
    assert_eq!(
        vals(s.scan(r.clone(), 10, Order::Asc).await.expect("scan")),
        vec![10, 11, 12]
    );
    assert_eq!(
        vals(s.scan(r, 10, Order::Desc).await.expect("scan")),
        vec![12, 11, 10]
    );
    let r = KeyRange::bounds(Bound::Excluded(k(&p, &[10])), Bound::Included(k(&p, &[13])));
    assert_eq!(
        vals(s.scan(r.clone(), 10, Order::Asc).await.expect("scan")),
        vec![11, 12, 13]
    );
    assert_eq!(
        vals(s.scan(r, 2, Order::Desc).await.expect("scan")),
        vec![13, 12]
    );
    let empty = KeyRange::new(k(&p, &[20]), k(&p, &[20]));
    assert!(
        s.scan(empty, 10, Order::Asc)
            .await
            .expect("scan")
            .is_empty()
    );
    let zero = s
        .scan(KeyRange::prefix(&p), 0, Order::Asc)
        .await
        .expect("scan");
    assert!(zero.is_empty());
    // Keys are returned intact.
    let one = s
        .scan(KeyRange::new(k(&p, &[7]), k(&p, &[8])), 5, Order::Asc)
        .await
        .expect("scan");
    assert_eq!(one, vec![(k(&p, &[7]), vec![7])]);
}

/// A transaction sees its own buffered writes in get and scan.
pub async fn kv_read_your_writes(kv: Arc<dyn Kv>) {
    let p = prefix();
    put_commit(
        &kv,
        &[
            (k(&p, b"b"), b"B".to_vec()),
            (k(&p, b"d"), b"D".to_vec()),
            (k(&p, b"f"), b"F".to_vec()),
        ],
    )
    .await;
    let mut t = kv.begin().await.expect("begin");
    t.put(k(&p, b"a"), b"A".to_vec()).await.expect("put");
    t.put(k(&p, b"d"), b"D2".to_vec()).await.expect("put");
    t.delete(k(&p, b"f")).await.expect("delete");
    t.put(k(&p, b"g"), b"G".to_vec()).await.expect("put");
    assert_eq!(
        t.get(&k(&p, b"d")).await.expect("get"),
        Some(b"D2".to_vec())
    );
    assert_eq!(t.get(&k(&p, b"f")).await.expect("get"), None);
    let asc = t
        .scan(KeyRange::prefix(&p), 10, Order::Asc)
        .await
        .expect("scan");
    let want: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (k(&p, b"a"), b"A".to_vec()),
        (k(&p, b"b"), b"B".to_vec()),
        (k(&p, b"d"), b"D2".to_vec()),
        (k(&p, b"g"), b"G".to_vec()),
    ];
    assert_eq!(asc, want);
    let desc = t
        .scan(KeyRange::prefix(&p), 3, Order::Desc)
        .await
        .expect("scan");
    let mut rev = want.clone();
    rev.reverse();
    rev.truncate(3);
    assert_eq!(desc, rev);
    t.commit().await.expect("commit");
    let mut s = kv.snapshot().await.expect("snapshot");
    assert_eq!(
        s.scan(KeyRange::prefix(&p), 10, Order::Asc)
            .await
            .expect("scan"),
        want
    );
}

/// Snapshots and transactions do not see commits made after they began.
pub async fn kv_snapshot_isolation(kv: Arc<dyn Kv>) {
    let p = prefix();
    put_commit(&kv, &[(k(&p, b"k"), b"old".to_vec())]).await;
    let mut snap = kv.snapshot().await.expect("snapshot");
    let mut reader = kv.begin().await.expect("begin");
    put_commit(
        &kv,
        &[(k(&p, b"k"), b"new".to_vec()), (k(&p, b"n"), b"x".to_vec())],
    )
    .await;
    assert_eq!(
        snap.get(&k(&p, b"k")).await.expect("get"),
        Some(b"old".to_vec())
    );
    assert_eq!(snap.get(&k(&p, b"n")).await.expect("get"), None);
    let rows = snap
        .scan(KeyRange::prefix(&p), 10, Order::Asc)
        .await
        .expect("scan");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        reader.get(&k(&p, b"k")).await.expect("get"),
        Some(b"old".to_vec())
    );
    reader.rollback().await.expect("rollback");
    assert_eq!(snap_get(&kv, &k(&p, b"k")).await, Some(b"new".to_vec()));
}

/// Two transactions that `get_for_update` and write the same key cannot
/// both commit: the loser sees [`KvError::Conflict`] (from the locking read
/// on pessimistic backends, or from commit on optimistic ones).
pub async fn kv_write_conflict(kv: Arc<dyn Kv>) {
    let p = prefix();
    let key = k(&p, b"c");
    put_commit(&kv, &[(key.clone(), b"0".to_vec())]).await;
    let mut t1 = kv.begin().await.expect("begin");
    let mut t2 = kv.begin().await.expect("begin");
    t1.get_for_update(&key).await.expect("t1 lock");
    t1.put(key.clone(), b"1".to_vec()).await.expect("put");
    let t2_outcome = async {
        t2.get_for_update(&key).await?;
        t2.put(key.clone(), b"2".to_vec()).await?;
        Ok::<_, KvError>(())
    };
    // On a pessimistic backend t2's lock waits for t1; let t1 finish first.
    let t1_commit = t1.commit();
    let (r2, r1) = tokio::join!(t2_outcome, t1_commit);
    r1.expect("first committer wins");
    let r = match r2 {
        Ok(()) => t2.commit().await,
        Err(e) => {
            t2.rollback().await.expect("rollback");
            Err(e)
        }
    };
    assert!(
        matches!(r, Err(KvError::Conflict(_))),
        "second writer must conflict, got {r:?}"
    );
    assert_eq!(snap_get(&kv, &key).await, Some(b"1".to_vec()));
}

/// One increment of the counter at a key inside a transaction.
type Increment =
    for<'a> fn(
        &'a mut dyn Txn,
        &'a [u8],
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), KvError>> + Send + 'a>>;

/// `tasks` concurrent tasks each make `per` increments of `key`, each one
/// transaction of `step` retried until it commits.
async fn increment_concurrently(
    kv: &Arc<dyn Kv>,
    key: &[u8],
    tasks: usize,
    per: usize,
    step: Increment,
) {
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (kv, key) = (kv.clone(), key.to_vec());
        handles.push(tokio::spawn(async move {
            for _ in 0..per {
                loop {
                    let mut t = kv.begin().await.expect("begin");
                    match step(&mut *t, &key).await {
                        Ok(()) => {}
                        Err(KvError::Conflict(_)) => {
                            t.rollback().await.expect("rollback");
                            continue;
                        }
                        Err(e) => panic!("increment: {e}"),
                    }
                    match t.commit().await {
                        Ok(()) => break,
                        Err(KvError::Conflict(_)) => tokio::task::yield_now().await,
                        Err(e) => panic!("commit: {e}"),
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
}

/// Concurrent read-modify-write increments with retry never lose an update.
pub async fn kv_no_lost_updates(kv: Arc<dyn Kv>) {
    let p = prefix();
    let key = k(&p, b"ctr");
    let (tasks, per) = (8, 5);
    increment_concurrently(&kv, &key, tasks, per, |t, key| {
        Box::pin(async move {
            let n = t
                .get_for_update(key)
                .await?
                .map_or(0, |v| u64::from_be_bytes(v.try_into().expect("u64")));
            t.put(key.to_vec(), (n + 1).to_be_bytes().to_vec()).await
        })
    })
    .await;
    let v = snap_get(&kv, &key).await.expect("counter");
    assert_eq!(
        u64::from_be_bytes(v.try_into().expect("u64")),
        (tasks * per) as u64
    );
}

/// Counter adds (`Txn::add`): read-your-writes in get, batch_get and scan;
/// folding into a write of the same key; no lost adds among concurrent
/// adders (with retries where a backend makes them conflict); and an add
/// still conflicts with a write or delete of its key in either order.
pub async fn kv_counter_adds(kv: Arc<dyn Kv>) {
    use crate::kv::{decode_counter, encode_counter};
    let p = prefix();
    let (a, b) = (k(&p, b"a"), k(&p, b"b"));
    let mut t = kv.begin().await.expect("begin");
    t.add(a.clone(), 5).await.expect("add");
    t.add(a.clone(), -2).await.expect("add");
    assert_eq!(t.get(&a).await.expect("get"), Some(encode_counter(3)));
    t.put(b.clone(), encode_counter(10)).await.expect("put");
    t.add(b.clone(), 1).await.expect("add onto a write");
    let got = t
        .batch_get(&[a.clone(), b.clone()])
        .await
        .expect("batch_get");
    assert_eq!(got, vec![Some(encode_counter(3)), Some(encode_counter(11))]);
    let rows = t
        .scan(KeyRange::prefix(&p), 10, Order::Asc)
        .await
        .expect("scan");
    assert_eq!(
        rows,
        vec![
            (a.clone(), encode_counter(3)),
            (b.clone(), encode_counter(11))
        ]
    );
    t.commit().await.expect("commit");
    assert_eq!(snap_get(&kv, &a).await, Some(encode_counter(3)));
    assert_eq!(snap_get(&kv, &b).await, Some(encode_counter(11)));

    // Concurrent adders: nothing lost.
    let (tasks, per) = (8, 5);
    increment_concurrently(&kv, &a, tasks, per, |t, key| {
        Box::pin(t.add(key.to_vec(), 1))
    })
    .await;
    let v = snap_get(&kv, &a).await.expect("counter");
    assert_eq!(
        decode_counter(&v).expect("counter"),
        3 + (tasks * per) as i64
    );

    // A write after the adder's start beats the add...
    let mut adder = kv.begin().await.expect("begin");
    let mut writer = kv.begin().await.expect("begin");
    writer
        .put(a.clone(), encode_counter(100))
        .await
        .expect("put");
    writer.commit().await.expect("writer");
    let r = match adder.add(a.clone(), 1).await {
        Ok(()) => adder.commit().await,
        Err(e) => {
            adder.rollback().await.expect("rollback");
            Err(e)
        }
    };
    assert!(
        matches!(r, Err(KvError::Conflict(_))),
        "add after a newer write: {r:?}"
    );
    // ...and an add after a writer's start beats the write.
    let mut adder = kv.begin().await.expect("begin");
    let mut writer = kv.begin().await.expect("begin");
    adder.add(a.clone(), 1).await.expect("add");
    adder.commit().await.expect("adder");
    writer.delete(a.clone()).await.expect("delete");
    let r = writer.commit().await;
    assert!(
        matches!(r, Err(KvError::Conflict(_))),
        "delete after a newer add: {r:?}"
    );
    assert_eq!(snap_get(&kv, &a).await, Some(encode_counter(101)));
}

/// Rolled-back (and dropped) transactions leave no trace.
pub async fn kv_rollback_discards(kv: Arc<dyn Kv>) {
    let p = prefix();
    put_commit(&kv, &[(k(&p, b"keep"), b"1".to_vec())]).await;
    let mut t = kv.begin().await.expect("begin");
    t.put(k(&p, b"new"), b"x".to_vec()).await.expect("put");
    t.delete(k(&p, b"keep")).await.expect("delete");
    t.rollback().await.expect("rollback");
    assert_eq!(snap_get(&kv, &k(&p, b"new")).await, None);
    assert_eq!(snap_get(&kv, &k(&p, b"keep")).await, Some(b"1".to_vec()));
    // A rolled-back locker does not block a later writer.
    let mut t = kv.begin().await.expect("begin");
    t.get_for_update(&k(&p, b"keep")).await.expect("lock");
    t.rollback().await.expect("rollback");
    put_commit(&kv, &[(k(&p, b"keep"), b"2".to_vec())]).await;
    assert_eq!(snap_get(&kv, &k(&p, b"keep")).await, Some(b"2".to_vec()));
}

/// Committed data survives closing and reopening the store. `open` must
/// return the same store each time; the suite drops every handle from the
/// first call before calling it again.
pub async fn durability_across_reopen<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Kv>>,
{
    let p = prefix();
    let l = login();
    {
        let kv = open().await;
        put_commit(&kv, &[(k(&p, b"durable"), b"yes".to_vec())]).await;
        let ns = Namespace::new(kv);
        ns.create_account(&l).await.expect("account");
        ns.put_object(&p_stor(&l, "obj"), new_obj(&["n1"]), &Conditions::none())
            .await
            .expect("put");
    }
    let kv = open().await;
    assert_eq!(
        snap_get(&kv, &k(&p, b"durable")).await,
        Some(b"yes".to_vec())
    );
    let ns = Namespace::new(kv);
    let e = ns.get(&p_stor(&l, "obj")).await.expect("get");
    assert!(e.is_some_and(|e| e.object().is_some()));
}

fn p_stor(login: &str, rest: &str) -> MantaPath {
    p(&format!("/{login}/stor/{rest}"))
}

// ---------------------------------------------------------------- namespace

/// Accounts, top directories, subusers and SSH keys.
pub async fn ns_accounts_and_keys(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    assert!(matches!(
        ns.create_account(&l).await,
        Err(NamespaceError::AlreadyExists(_))
    ));
    // Reserved: the gateway serves its web console at /console/.
    assert!(ns.create_account("console").await.is_err());
    assert!(ns.get_account("console").await.expect("get").is_none());
    let acct = ns.get_account(&l).await.expect("get").expect("exists");
    assert!(!acct.disabled);
    assert!(
        ns.list_accounts()
            .await
            .expect("list")
            .iter()
            .any(|a| a.login == l)
    );
    assert!(ns.get_account("nobodyhere").await.expect("get").is_none());

    let root = MantaPath::account_root(&l).expect("root");
    assert!(
        ns.get(&root)
            .await
            .expect("get")
            .is_some_and(|e| e.is_directory())
    );
    let tops = ns.list(&root, &ListOptions::default()).await.expect("list");
    assert_eq!(
        names(&tops),
        ["jobs", "public", "reports", "stor", "uploads"]
    );
    assert_eq!(ns.count(&root).await.expect("count"), 5);
    assert!(
        ns.get(&p_stor(&l, ""))
            .await
            .expect("get")
            .is_some_and(|e| e.is_directory())
    );

    let md5 = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
    let key = SshKey {
        fingerprint_md5: md5.into(),
        fingerprint_sha256: "SHA256:abcDEF123+/xyz".into(),
        public_key: "ssh-ed25519 AAAA test".into(),
        name: "laptop".into(),
    };
    ns.add_key(&l, None, &key).await.expect("add key");
    assert_eq!(
        ns.get_key(&l, None, md5).await.expect("md5"),
        Some(key.clone())
    );
    assert_eq!(
        ns.get_key(&l, None, &md5.to_uppercase())
            .await
            .expect("md5 upper"),
        Some(key.clone())
    );
    assert_eq!(
        ns.get_key(&l, None, "SHA256:abcDEF123+/xyz")
            .await
            .expect("sha"),
        Some(key.clone())
    );
    assert_eq!(
        ns.get_key(&l, None, "SHA256:nope").await.expect("sha"),
        None
    );
    // Names that cannot exist never alias another principal's keys.
    let aliased = format!("{l}\0bob");
    assert_eq!(ns.get_key(&aliased, None, md5).await.expect("get"), None);
    assert!(ns.get_account(&aliased).await.expect("get").is_none());
    assert!(matches!(
        ns.add_key(&l, Some("bob"), &key).await,
        Err(NamespaceError::SubuserNotFound(_))
    ));
    ns.create_subuser(&l, "bob").await.expect("subuser");
    assert!(matches!(
        ns.create_subuser(&l, "bob").await,
        Err(NamespaceError::AlreadyExists(_))
    ));
    let sub_md5 = "ff:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:00";
    let sub_key = SshKey {
        fingerprint_md5: sub_md5.into(),
        fingerprint_sha256: "SHA256:sub".into(),
        ..key.clone()
    };
    ns.add_key(&l, Some("bob"), &sub_key)
        .await
        .expect("sub key");
    // Account and subuser keys are separate.
    assert_eq!(ns.get_key(&l, None, sub_md5).await.expect("get"), None);
    assert_eq!(ns.get_key(&l, Some("bob"), md5).await.expect("get"), None);
    assert_eq!(
        ns.get_key(&l, Some("bob"), "SHA256:sub")
            .await
            .expect("get"),
        Some(sub_key.clone())
    );
    assert_eq!(
        ns.list_keys(&l, None).await.expect("list"),
        vec![key.clone()]
    );
    assert_eq!(
        ns.list_keys(&l, Some("bob")).await.expect("list"),
        vec![sub_key]
    );
    assert_eq!(ns.list_subusers(&l).await.expect("subusers").len(), 1);
    let bad = SshKey {
        fingerprint_md5: "not-a-fingerprint".into(),
        ..key.clone()
    };
    assert!(matches!(
        ns.add_key(&l, None, &bad).await,
        Err(NamespaceError::InvalidArgument(_))
    ));
    assert!(ns.remove_key(&l, None, md5).await.expect("remove"));
    assert!(!ns.remove_key(&l, None, md5).await.expect("remove again"));
    assert_eq!(
        ns.get_key(&l, None, "SHA256:abcDEF123+/xyz")
            .await
            .expect("sha"),
        None
    );

    ns.set_account_disabled(&l, true).await.expect("disable");
    assert!(matches!(
        ns.active_account(&l).await,
        Err(NamespaceError::AccountBlocked(_))
    ));
    ns.set_account_disabled(&l, false).await.expect("enable");
    ns.active_account(&l).await.expect("active");

    // The operator flag: off at creation, on and off only through
    // set_account_operator, and it survives other account updates.
    assert!(!ns.active_account(&l).await.expect("active").operator);
    assert!(
        ns.set_account_operator(&l, true)
            .await
            .expect("operator")
            .operator
    );
    ns.set_account_disabled(&l, true).await.expect("disable op");
    let a = ns.set_account_disabled(&l, false).await.expect("enable op");
    assert!(a.operator, "disable/enable keeps the operator flag");
    assert!(
        ns.get_account(&l)
            .await
            .expect("get")
            .expect("exists")
            .operator
    );
    assert!(
        !ns.set_account_operator(&l, false)
            .await
            .expect("revoke")
            .operator
    );
    assert!(!ns.active_account(&l).await.expect("active").operator);
    assert!(matches!(
        ns.set_account_operator("nobodyhere", true).await,
        Err(NamespaceError::AccountNotFound(_))
    ));
    assert!(matches!(
        ns.active_account("nobodyhere").await,
        Err(NamespaceError::AccountNotFound(_))
    ));
}

/// Directory and object creation rules, deletes, root protections.
pub async fn ns_directories_and_objects(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let none = Conditions::none();
    let h = Headers::new();
    let d = p_stor(&l, "d");
    ns.put_directory(&d, &h).await.expect("mkdir");
    let first = ns.get(&d).await.expect("get").expect("dir");
    // Idempotent: same headers → unchanged.
    let again = ns.put_directory(&d, &h).await.expect("mkdir again");
    assert_eq!(again.entry, first);
    assert_eq!(ns.count(&p_stor(&l, "")).await.expect("count"), 1);
    // New headers replace the old ones.
    let h2 = Headers::from([("m-x".to_owned(), "1".to_owned())]);
    let upd = ns.put_directory(&d, &h2).await.expect("mkdir headers");
    assert_eq!(upd.entry.headers, h2);

    assert!(matches!(
        ns.put_directory(&p_stor(&l, "no/sub"), &h).await,
        Err(NamespaceError::DirectoryDoesNotExist(p)) if p == format!("/{l}/stor/no")
    ));
    let o = p_stor(&l, "d/o.txt");
    let put = ns
        .put_object(&o, new_obj(&["n1", "n2"]), &none)
        .await
        .expect("put");
    assert!(put.replaced.is_none() && put.freed.is_empty());
    let got = ns.get(&o).await.expect("get").expect("object");
    assert_eq!(got, put.entry);
    assert_eq!(got.name, "o.txt");
    assert_eq!(got.object().expect("object").copies, ["n1", "n2"]);
    assert!(matches!(
        ns.put_object(&p_stor(&l, "d/o.txt/x"), new_obj(&["n1"]), &none)
            .await,
        Err(NamespaceError::ParentNotDirectory(_))
    ));
    assert!(matches!(
        ns.put_object(&d, new_obj(&["n1"]), &none).await,
        Err(NamespaceError::IsDirectory(_))
    ));
    for root in [p_stor(&l, ""), MantaPath::account_root(&l).expect("root")] {
        assert!(matches!(
            ns.put_object(&root, new_obj(&["n1"]), &none).await,
            Err(NamespaceError::RootDirectory(_))
        ));
        assert!(matches!(
            ns.delete(&root, &none).await,
            Err(NamespaceError::RootDirectory(_))
        ));
    }
    // Top directories: PUT directory is a no-op; the account root is refused.
    ns.put_directory(&p_stor(&l, ""), &h)
        .await
        .expect("top dir no-op");
    assert!(matches!(
        ns.put_directory(&MantaPath::account_root(&l).expect("root"), &h)
            .await,
        Err(NamespaceError::RootDirectory(_))
    ));
    assert!(matches!(
        ns.delete(&d, &none).await,
        Err(NamespaceError::DirectoryNotEmpty(_))
    ));
    assert!(matches!(
        ns.delete(&p_stor(&l, "nope"), &none).await,
        Err(NamespaceError::NotFound(_))
    ));
    assert!(matches!(
        ns.list(&o, &ListOptions::default()).await,
        Err(NamespaceError::NotDirectory(_))
    ));
    assert!(matches!(
        ns.list(&p_stor(&l, "nope"), &ListOptions::default()).await,
        Err(NamespaceError::NotFound(_))
    ));
    let del = ns.delete(&o, &none).await.expect("rm");
    assert_eq!(del.freed.len(), 2);
    assert!(ns.get(&o).await.expect("get").is_none());
    ns.delete(&d, &none).await.expect("rmdir");
    assert!(ns.get(&d).await.expect("get").is_none());
    assert_eq!(ns.count(&p_stor(&l, "")).await.expect("count"), 0);

    // A directory PUT over an object replaces it (Manta's last writer wins).
    let x = p_stor(&l, "x");
    ns.put_object(&x, new_obj(&["n9"]), &none)
        .await
        .expect("put");
    let out = ns.put_directory(&x, &h).await.expect("dir over object");
    assert_eq!(out.freed.len(), 1);
    assert!(
        ns.get(&x)
            .await
            .expect("get")
            .is_some_and(|e| e.is_directory())
    );
    assert_eq!(ns.count(&p_stor(&l, "")).await.expect("count"), 1);
}

/// `mkdir -p` in one transaction: missing directories made parents
/// first, existing ones untouched, an object in the way refused with
/// nothing made, and racing chains that share a prefix all succeed.
pub async fn ns_create_directories(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let none = Conditions::none();
    let h = Headers::from([("m-keep".to_owned(), "1".to_owned())]);
    ns.put_directory(&p_stor(&l, "a"), &h)
        .await
        .expect("mkdir a");
    let a = ns.get(&p_stor(&l, "a")).await.expect("get").expect("a");
    ns.create_directories(&p_stor(&l, "a/b/c/d"))
        .await
        .expect("mkdir -p");
    for d in ["a/b", "a/b/c", "a/b/c/d"] {
        let e = ns.get(&p_stor(&l, d)).await.expect("get");
        assert!(e.is_some_and(|e| e.is_directory()), "{d} made");
    }
    assert_eq!(ns.count(&p_stor(&l, "a")).await.expect("count"), 1);
    assert_eq!(ns.count(&p_stor(&l, "a/b/c")).await.expect("count"), 1);
    // The existing directory keeps its headers and mtime.
    let a2 = ns.get(&p_stor(&l, "a")).await.expect("get").expect("a");
    assert_eq!(a2, a);
    // Again: a no-op.
    ns.create_directories(&p_stor(&l, "a/b/c/d"))
        .await
        .expect("mkdir -p again");
    assert_eq!(ns.count(&p_stor(&l, "a/b/c")).await.expect("count"), 1);
    // An object in the way: refused, and nothing below it made.
    ns.put_object(&p_stor(&l, "a/o"), new_obj(&["n1"]), &none)
        .await
        .expect("put");
    assert!(matches!(
        ns.create_directories(&p_stor(&l, "a/o/x/y")).await,
        Err(NamespaceError::ParentNotDirectory(p)) if p == format!("/{l}/stor/a/o")
    ));
    assert!(
        ns.get(&p_stor(&l, "a/o"))
            .await
            .expect("get")
            .is_some_and(|e| e.object().is_some())
    );
    // Top directories are never written.
    ns.create_directories(&p_stor(&l, "")).await.expect("top");
    // Racing chains with a shared prefix all succeed; each directory is
    // counted once.
    let mut racing = Vec::new();
    for i in 0..8 {
        let ns = ns.clone();
        let p = p_stor(&l, &format!("r/s/t{}", i % 2));
        racing.push(tokio::spawn(async move { ns.create_directories(&p).await }));
    }
    for r in racing {
        r.await.expect("join").expect("racing mkdir -p");
    }
    assert_eq!(ns.count(&p_stor(&l, "r")).await.expect("count"), 1);
    assert_eq!(ns.count(&p_stor(&l, "r/s")).await.expect("count"), 2);
}

/// An object put with its missing parents: the directories and the object
/// land together; existing parents are untouched; an object in the way,
/// or a failed condition, leaves no directory behind.
pub async fn ns_put_object_creating_parents(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let none = Conditions::none();
    ns.put_object_creating_parents(&p_stor(&l, "p/q/r/o"), new_obj(&["n1"]), &none)
        .await
        .expect("put with parents");
    for d in ["p", "p/q", "p/q/r"] {
        let e = ns.get(&p_stor(&l, d)).await.expect("get");
        assert!(e.is_some_and(|e| e.is_directory()), "{d} made");
    }
    assert!(
        ns.get(&p_stor(&l, "p/q/r/o"))
            .await
            .expect("get")
            .is_some_and(|e| e.object().is_some())
    );
    assert_eq!(ns.count(&p_stor(&l, "p")).await.expect("count"), 1);
    assert_eq!(ns.count(&p_stor(&l, "p/q/r")).await.expect("count"), 1);
    // Into an existing directory: as a plain put (the directory unchanged).
    let r = ns.get(&p_stor(&l, "p/q/r")).await.expect("get");
    ns.put_object_creating_parents(&p_stor(&l, "p/q/r/o2"), new_obj(&["n1"]), &none)
        .await
        .expect("second put");
    assert_eq!(ns.get(&p_stor(&l, "p/q/r")).await.expect("get"), r);
    assert_eq!(ns.count(&p_stor(&l, "p/q/r")).await.expect("count"), 2);
    // An object in the way: refused, nothing below it made.
    assert!(matches!(
        ns.put_object_creating_parents(&p_stor(&l, "p/q/r/o/x/y"), new_obj(&["n1"]), &none)
            .await,
        Err(NamespaceError::ParentNotDirectory(p)) if p == format!("/{l}/stor/p/q/r/o")
    ));
    // A failed condition rolls the new directories back with the object.
    let only_existing = Conditions {
        if_match: Some(vec!["not-there".into()]),
        ..Default::default()
    };
    assert!(matches!(
        ns.put_object_creating_parents(&p_stor(&l, "s/t/o"), new_obj(&["n1"]), &only_existing)
            .await,
        Err(NamespaceError::PreconditionFailed(_))
    ));
    assert!(ns.get(&p_stor(&l, "s")).await.expect("get").is_none());
}

/// Conditional PUT/DELETE evaluated against the current entry.
pub async fn ns_conditions(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let o = p_stor(&l, "c");
    let only_new = Conditions {
        if_none_match: Some(vec!["*".into()]),
        ..Default::default()
    };
    ns.put_object(&o, new_obj(&["n1"]), &only_new)
        .await
        .expect("create-only on absent");
    assert!(matches!(
        ns.put_object(&o, new_obj(&["n1"]), &only_new).await,
        Err(NamespaceError::PreconditionFailed(_))
    ));
    let etag = ns
        .get(&o)
        .await
        .expect("get")
        .and_then(|e| e.etag())
        .expect("etag");
    let wrong = Conditions {
        if_match: Some(vec!["not-it".into()]),
        ..Default::default()
    };
    assert!(matches!(
        ns.put_object(&o, new_obj(&["n1"]), &wrong).await,
        Err(NamespaceError::PreconditionFailed(_))
    ));
    assert!(matches!(
        ns.delete(&o, &wrong).await,
        Err(NamespaceError::PreconditionFailed(_))
    ));
    let right = Conditions {
        if_match: Some(vec![etag.clone()]),
        ..Default::default()
    };
    let out = ns
        .put_object(&o, new_obj(&["n1"]), &right)
        .await
        .expect("if-match put");
    assert_ne!(
        out.entry.etag(),
        Some(etag.clone()),
        "etag changes on overwrite"
    );
    // The old etag no longer matches.
    assert!(matches!(
        ns.delete(&o, &right).await,
        Err(NamespaceError::PreconditionFailed(_))
    ));
    let any = Conditions {
        if_match: Some(vec!["*".into()]),
        ..Default::default()
    };
    assert!(matches!(
        ns.put_object(&p_stor(&l, "absent"), new_obj(&["n1"]), &any)
            .await,
        Err(NamespaceError::PreconditionFailed(_))
    ));
    let old = Conditions {
        if_unmodified_since: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        ns.delete(&o, &old).await,
        Err(NamespaceError::PreconditionFailed(_))
    ));
    ns.delete(&o, &any).await.expect("delete if-match *");
}

/// Overwrites free the old copies through GC records written atomically.
pub async fn ns_overwrite_and_gc(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let node_a = format!("gc-a-{l}");
    let node_b = format!("gc-b-{l}");
    let o = p_stor(&l, "o");
    let first = new_obj(&[&node_a, &node_b]);
    let first_id = first.object_id;
    ns.put_object(&o, first, &Conditions::none())
        .await
        .expect("put");
    let out = ns
        .put_object(&o, new_obj(&[&node_a]), &Conditions::none())
        .await
        .expect("overwrite");
    let freed: BTreeSet<CopyRef> = out.freed.iter().cloned().collect();
    let want: BTreeSet<CopyRef> = [&node_a, &node_b]
        .iter()
        .map(|n| CopyRef {
            node: (*n).clone(),
            object_id: first_id,
        })
        .collect();
    assert_eq!(freed, want);
    assert_eq!(
        out.replaced.and_then(|e| e.object().map(|o| o.object_id)),
        Some(first_id)
    );
    let pend = ns.gc_pending(&node_b, 10).await.expect("pending");
    assert_eq!(pend.len(), 1);
    assert_eq!(pend[0].object_id, first_id);
    assert_eq!(ns.gc_pending(&node_a, 10).await.expect("pending").len(), 1);
    ns.gc_done(&pend).await.expect("done");
    assert!(
        ns.gc_pending(&node_b, 10)
            .await
            .expect("pending")
            .is_empty()
    );
    ns.gc_done(&pend).await.expect("done is idempotent");
}

/// Metadata updates replace headers and content type, keep data and etag.
pub async fn ns_put_metadata(kv: Arc<dyn Kv>) {
    let clock = Arc::new(AtomicU64::new(1_000_000));
    let c = clock.clone();
    let (ns, l) = ns_with_account(kv).await;
    let ns = ns.with_clock(Arc::new(move || c.fetch_add(1000, Ordering::SeqCst)));
    let o = p_stor(&l, "m");
    let put = ns
        .put_object(&o, new_obj(&["n1"]), &Conditions::none())
        .await
        .expect("put");
    let upd = MetadataUpdate {
        content_type: Some("application/x-thing".into()),
        headers: Headers::from([("m-foo".to_owned(), "bar".to_owned())]),
    };
    let e = ns.put_metadata(&o, &upd).await.expect("chattr");
    assert_eq!(e.headers, upd.headers, "m-color removed, m-foo added");
    assert!(e.mtime_ms > put.entry.mtime_ms);
    let (before, after) = (put.entry.object().expect("o"), e.object().expect("o"));
    assert_eq!(after.content_type, "application/x-thing");
    assert_eq!(after.object_id, before.object_id);
    assert_eq!(after.content_md5, before.content_md5);
    assert_eq!(after.copies, before.copies);
    assert_eq!(ns.get(&o).await.expect("get"), Some(e));
    // Without a content type the old one stays.
    let keep = MetadataUpdate {
        content_type: None,
        headers: Headers::new(),
    };
    let e = ns.put_metadata(&o, &keep).await.expect("chattr");
    assert_eq!(e.object().expect("o").content_type, "application/x-thing");
    assert!(e.headers.is_empty());
    // Directories too.
    let d = p_stor(&l, "dd");
    ns.put_directory(&d, &Headers::new()).await.expect("mkdir");
    let e = ns.put_metadata(&d, &upd).await.expect("chattr dir");
    assert!(e.is_directory() && e.headers == upd.headers);
    assert!(matches!(
        ns.put_metadata(&p_stor(&l, "nope"), &upd).await,
        Err(NamespaceError::NotFound(_))
    ));
}

/// Snaplinks share the object; copies are freed only with the last name.
pub async fn ns_snaplinks(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let none = Conditions::none();
    let src = p_stor(&l, "src");
    let dst = p_stor(&l, "dst");
    let dst2 = p_stor(&l, "dst2");
    let obj = new_obj(&["n1", "n2"]);
    let id = obj.object_id;
    ns.put_object(&src, obj, &none).await.expect("put");
    let link = ns.snaplink(&src, &dst, &none).await.expect("link");
    assert_eq!(link.entry.etag(), Some(id.to_string()));
    assert_eq!(link.entry.name, "dst");
    ns.snaplink(&dst, &dst2, &none).await.expect("link of link");
    assert_eq!(ns.count(&p_stor(&l, "")).await.expect("count"), 3);

    assert!(matches!(
        ns.snaplink(&p_stor(&l, "missing"), &p_stor(&l, "z"), &none)
            .await,
        Err(NamespaceError::LinkSourceNotFound(_))
    ));
    let d = p_stor(&l, "dir");
    ns.put_directory(&d, &Headers::new()).await.expect("mkdir");
    assert!(matches!(
        ns.snaplink(&d, &p_stor(&l, "z"), &none).await,
        Err(NamespaceError::LinkNotObject(_))
    ));
    assert!(matches!(
        ns.snaplink(&src, &d, &none).await,
        Err(NamespaceError::IsDirectory(_))
    ));
    let wrong = Conditions {
        if_match: Some(vec!["nope".into()]),
        ..Default::default()
    };
    assert!(matches!(
        ns.snaplink(&src, &p_stor(&l, "z"), &wrong).await,
        Err(NamespaceError::PreconditionFailed(_))
    ));

    // Delete the source: the links stay readable, nothing is freed.
    let out = ns.delete(&src, &none).await.expect("rm src");
    assert!(out.freed.is_empty());
    assert_eq!(
        ns.get(&dst).await.expect("get").and_then(|e| e.etag()),
        Some(id.to_string())
    );
    // Overwrite one link: still nothing freed (dst2 holds it).
    let out = ns
        .put_object(&dst, new_obj(&["n3"]), &none)
        .await
        .expect("overwrite link");
    assert!(out.freed.is_empty());
    // Re-linking a name onto the object it already holds keeps one reference.
    ns.snaplink(&dst2, &dst2, &none).await.expect("self link");
    // Last name goes: copies freed.
    let out = ns.delete(&dst2, &none).await.expect("rm last");
    assert_eq!(out.freed.len(), 2);
    assert!(out.freed.iter().all(|c| c.object_id == id));
}

/// Concurrent deletes of the two names of a linked object free it exactly once.
pub async fn ns_concurrent_unlinks(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    for round in 0..5 {
        let a = p_stor(&l, &format!("a{round}"));
        let b = p_stor(&l, &format!("b{round}"));
        ns.put_object(&a, new_obj(&["n1"]), &Conditions::none())
            .await
            .expect("put");
        ns.snaplink(&a, &b, &Conditions::none())
            .await
            .expect("link");
        let (n1, n2) = (ns.clone(), ns.clone());
        let (a2, b2) = (a.clone(), b.clone());
        let h1 = tokio::spawn(async move { n1.delete(&a2, &Conditions::none()).await });
        let h2 = tokio::spawn(async move { n2.delete(&b2, &Conditions::none()).await });
        let r1 = h1.await.expect("task").expect("delete a");
        let r2 = h2.await.expect("task").expect("delete b");
        assert_eq!(
            r1.freed.len() + r2.freed.len(),
            1,
            "exactly one delete frees the copy (round {round})"
        );
    }
}

/// Listing order is byte order (incl. non-ASCII), markers are inclusive,
/// reverse and type filters return exactly `limit` entries.
pub async fn ns_listing_order_and_markers(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let dir = p_stor(&l, "");
    let objs = ["b", "a b.txt", "Z", "é", "ü", "日本", "a", "~", "a-"];
    for n in objs {
        ns.put_object(
            &dir.join(n).expect("name"),
            new_obj(&["n1"]),
            &Conditions::none(),
        )
        .await
        .expect("put");
    }
    for n in ["d1", "d2", "d3"] {
        ns.put_directory(&dir.join(n).expect("name"), &Headers::new())
            .await
            .expect("mkdir");
    }
    let mut want: Vec<String> = objs
        .iter()
        .chain(["d1", "d2", "d3"].iter())
        .map(|s| (*s).to_owned())
        .collect();
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let opts = |limit, marker: Option<&str>, reverse, filter| ListOptions {
        limit,
        marker: marker.map(|m| Marker::Name(m.to_owned())),
        reverse,
        filter,
        sort: SortBy::Name,
    };
    let all = ns
        .list(&dir, &opts(100, None, false, TypeFilter::All))
        .await
        .expect("list");
    assert_eq!(names(&all), want);
    assert_eq!(ns.count(&dir).await.expect("count"), want.len() as u64);
    // Inclusive marker.
    let page = ns
        .list(&dir, &opts(3, Some("b"), false, TypeFilter::All))
        .await
        .expect("list");
    let at = want.iter().position(|n| n == "b").expect("b");
    assert_eq!(names(&page), want[at..at + 3].to_vec());
    // Marker that is not a name starts at the next one.
    let page = ns
        .list(&dir, &opts(2, Some("c"), false, TypeFilter::All))
        .await
        .expect("list");
    assert_eq!(names(&page), ["d1", "d2"]);
    // Reverse, inclusive marker.
    let page = ns
        .list(&dir, &opts(2, Some("b"), true, TypeFilter::All))
        .await
        .expect("list");
    assert_eq!(names(&page), [want[at].clone(), want[at - 1].clone()]);
    let mut rev = want.clone();
    rev.reverse();
    let all_rev = ns
        .list(&dir, &opts(100, None, true, TypeFilter::All))
        .await
        .expect("list");
    assert_eq!(names(&all_rev), rev);
    // Filters still fill the page.
    let dirs = ns
        .list(&dir, &opts(2, None, false, TypeFilter::Directories))
        .await
        .expect("list");
    assert_eq!(names(&dirs), ["d1", "d2"]);
    let objs_only = ns
        .list(&dir, &opts(100, None, false, TypeFilter::Objects))
        .await
        .expect("list");
    assert_eq!(objs_only.len(), objs.len());
    assert!(objs_only.iter().all(|e| !e.is_directory()));
    let last_dir = ns
        .list(&dir, &opts(5, None, true, TypeFilter::Directories))
        .await
        .expect("list");
    assert_eq!(names(&last_dir), ["d3", "d2", "d1"]);
    assert!(matches!(
        ns.list(
            &dir,
            &ListOptions {
                marker: Some(Marker::Mtime(5)),
                ..opts(5, None, false, TypeFilter::All)
            }
        )
        .await,
        Err(NamespaceError::InvalidArgument(_))
    ));
}

/// 2,500 entries paginate with an inclusive marker, each seen exactly once.
pub async fn ns_listing_pagination(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let dir = p_stor(&l, "big");
    ns.put_directory(&dir, &Headers::new())
        .await
        .expect("mkdir");
    let total = 2500usize;
    let mut handles = Vec::new();
    for shard in 0..8 {
        let ns = ns.clone();
        let dir = dir.clone();
        handles.push(tokio::spawn(async move {
            for i in (shard..total).step_by(8) {
                let path = dir.join(&format!("obj-{i:05}")).expect("name");
                ns.put_object(&path, new_obj(&["n1"]), &Conditions::none())
                    .await
                    .expect("put");
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    assert_eq!(ns.count(&dir).await.expect("count"), total as u64);
    // Page like the CLI: limit 1024, marker = last name seen, drop the echo.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = ns
            .list(
                &dir,
                &ListOptions {
                    limit: 1024,
                    marker: marker.clone().map(Marker::Name),
                    ..Default::default()
                },
            )
            .await
            .expect("list");
        let mut fresh = 0;
        for e in &page {
            if Some(&e.name) != marker.as_ref() {
                seen.push(e.name.clone());
                fresh += 1;
            }
        }
        if fresh == 0 {
            break;
        }
        marker = page.last().map(|e| e.name.clone());
    }
    let want: Vec<String> = (0..total).map(|i| format!("obj-{i:05}")).collect();
    assert_eq!(seen, want, "every entry exactly once, in order");
}

/// Sorting by mtime: newest first, ties by name, inclusive mtime marker.
pub async fn ns_listing_by_mtime(kv: Arc<dyn Kv>) {
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let c = clock.clone();
    let (ns, l) = ns_with_account(kv).await;
    let ns = ns.with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
    let dir = p_stor(&l, "");
    // mtimes: c=+0, a=+10, b=+10, d=+20
    for (n, t) in [("c", 0), ("a", 10), ("b", 10), ("d", 20)] {
        clock.store(1_700_000_000_000 + t, Ordering::SeqCst);
        ns.put_object(
            &dir.join(n).expect("name"),
            new_obj(&["n1"]),
            &Conditions::none(),
        )
        .await
        .expect("put");
    }
    let opts = |marker: Option<u64>, reverse| ListOptions {
        limit: 10,
        marker: marker.map(Marker::Mtime),
        reverse,
        filter: TypeFilter::All,
        sort: SortBy::Mtime,
    };
    let list = |o: ListOptions| {
        let ns = ns.clone();
        let dir = dir.clone();
        async move { names(&ns.list(&dir, &o).await.expect("list")) }
    };
    assert_eq!(list(opts(None, false)).await, ["d", "b", "a", "c"]);
    assert_eq!(list(opts(None, true)).await, ["c", "a", "b", "d"]);
    assert_eq!(
        list(opts(Some(1_700_000_000_010), false)).await,
        ["b", "a", "c"]
    );
    assert_eq!(
        list(opts(Some(1_700_000_000_010), true)).await,
        ["a", "b", "d"]
    );
    let mut small = opts(None, false);
    small.limit = 2;
    assert_eq!(list(small).await, ["d", "b"]);
    // The index follows metadata updates, overwrites and deletes.
    clock.store(1_700_000_000_030, Ordering::SeqCst);
    ns.put_metadata(&dir.join("c").expect("name"), &MetadataUpdate::default())
        .await
        .expect("chattr");
    clock.store(1_700_000_000_040, Ordering::SeqCst);
    ns.put_object(
        &dir.join("a").expect("name"),
        new_obj(&["n1"]),
        &Conditions::none(),
    )
    .await
    .expect("overwrite");
    ns.delete(&dir.join("b").expect("name"), &Conditions::none())
        .await
        .expect("rm");
    clock.store(1_700_000_000_050, Ordering::SeqCst);
    ns.put_directory(&dir.join("sub").expect("name"), &Headers::new())
        .await
        .expect("mkdir");
    assert_eq!(list(opts(None, false)).await, ["sub", "a", "c", "d"]);
    let mut objs = opts(None, false);
    objs.filter = TypeFilter::Objects;
    assert_eq!(list(objs).await, ["a", "c", "d"]);
    let all = ns.list(&dir, &opts(None, false)).await.expect("list");
    let mtimes: Vec<u64> = all.iter().map(|e| e.mtime_ms - 1_700_000_000_000).collect();
    assert_eq!(mtimes, [50, 40, 30, 20]);
}

/// Concurrent creates in one directory keep the sharded count exact.
pub async fn ns_counts_under_concurrency(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let dir = p_stor(&l, "cnt");
    ns.put_directory(&dir, &Headers::new())
        .await
        .expect("mkdir");
    let mut handles = Vec::new();
    for i in 0..40 {
        let ns = ns.clone();
        let path = dir.join(&format!("f{i}")).expect("name");
        handles.push(tokio::spawn(async move {
            ns.put_object(&path, new_obj(&["n1"]), &Conditions::none())
                .await
        }));
    }
    for h in handles {
        h.await.expect("task").expect("put");
    }
    assert_eq!(ns.count(&dir).await.expect("count"), 40);
    for i in 0..10 {
        ns.delete(
            &dir.join(&format!("f{i}")).expect("name"),
            &Conditions::none(),
        )
        .await
        .expect("rm");
    }
    assert_eq!(ns.count(&dir).await.expect("count"), 30);
    let listed = ns
        .list(
            &dir,
            &ListOptions {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(listed.len(), 30);
}

/// Deleting a directory while a name is created in it: never both succeed.
pub async fn ns_rmdir_races_create(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    for round in 0..10 {
        let dir = p_stor(&l, &format!("race{round}"));
        ns.put_directory(&dir, &Headers::new())
            .await
            .expect("mkdir");
        let child = dir.join("child").expect("name");
        let (n1, n2) = (ns.clone(), ns.clone());
        let (d2, c2) = (dir.clone(), child.clone());
        let rm = tokio::spawn(async move { n1.delete(&d2, &Conditions::none()).await });
        let put = tokio::spawn(async move {
            n2.put_object(&c2, new_obj(&["n1"]), &Conditions::none())
                .await
        });
        let rm = rm.await.expect("task");
        let put = put.await.expect("task");
        match (&rm, &put) {
            (Ok(_), Err(NamespaceError::DirectoryDoesNotExist(_))) => {
                assert!(ns.get(&dir).await.expect("get").is_none());
            }
            (Err(NamespaceError::DirectoryNotEmpty(_)), Ok(_)) => {
                assert!(ns.get(&child).await.expect("get").is_some());
            }
            other => panic!("round {round}: impossible outcome {other:?}"),
        }
    }
}

/// Creating a name in a full directory fails with DirectoryLimitExceeded.
pub async fn ns_directory_limit(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv.clone()).await;
    let dir = p_stor(&l, "full");
    ns.put_directory(&dir, &Headers::new())
        .await
        .expect("mkdir");
    ns.put_object(
        &dir.join("existing").expect("name"),
        new_obj(&["n1"]),
        &Conditions::none(),
    )
    .await
    .expect("put");
    // Pretend the directory is full by loading one count shard.
    let dk = keys::dk(&l, &["stor", "full"]);
    let mut t = kv.begin().await.expect("begin");
    let shard = keys::count_shard("zzz-not-used");
    t.add(
        keys::count_key(&dk, shard),
        crate::namespace::MAX_DIRECTORY_ENTRIES as i64,
    )
    .await
    .expect("add");
    t.commit().await.expect("commit");
    assert!(matches!(
        ns.put_object(&dir.join("new").expect("name"), new_obj(&["n1"]), &Conditions::none()).await,
        Err(NamespaceError::DirectoryLimitExceeded(d)) if d == dir.to_string()
    ));
    // Overwriting an existing name is still allowed.
    ns.put_object(
        &dir.join("existing").expect("name"),
        new_obj(&["n1"]),
        &Conditions::none(),
    )
    .await
    .expect("overwrite in a full directory");
}

/// A name counted under another shard (a store written when
/// [`keys::COUNT_SHARDS`] was smaller) is still counted once, uncounted by
/// its delete, and its directory can then be removed.
pub async fn ns_counts_survive_a_shard_change(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv.clone()).await;
    let dir = p_stor(&l, "reshard");
    ns.put_directory(&dir, &Headers::new())
        .await
        .expect("mkdir");
    let name = (0..)
        .map(|i| format!("n{i}"))
        .find(|n| keys::count_shard(n) >= 16)
        .expect("a name past the old shards");
    let path = dir.join(&name).expect("name");
    ns.put_object(&path, new_obj(&["n1"]), &Conditions::none())
        .await
        .expect("put");
    // Move its count to the shard 16 shards gave it.
    let dk = keys::dk(&l, &["stor", "reshard"]);
    let mut t = kv.begin().await.expect("begin");
    t.delete(keys::count_key(&dk, keys::count_shard(&name)))
        .await
        .expect("delete");
    t.put(
        keys::count_key(&dk, keys::count_shard(&name) % 16),
        crate::kv::encode_counter(1),
    )
    .await
    .expect("put");
    t.commit().await.expect("commit");
    assert_eq!(ns.count(&dir).await.expect("count"), 1);
    ns.delete(&path, &Conditions::none()).await.expect("delete");
    assert_eq!(ns.count(&dir).await.expect("count"), 0);
    ns.delete(&dir, &Conditions::none())
        .await
        .expect("an empty directory is removed");
}

/// Storage node registration, heartbeats and listing.
pub async fn ns_nodes(kv: Arc<dyn Kv>) {
    let ns = Namespace::new(kv).with_clock(Arc::new(|| 42));
    let id = format!("node-{}", Uuid::new_v4().simple());
    let rec = NodeRecord {
        id: id.clone(),
        url: "http://127.0.0.1:9000".into(),
        az: "az1".into(),
        capacity_total: 100,
        capacity_used: 1,
        heartbeat_ms: 0,
        pool_health: None,
        state: NodeState::Active,
    };
    assert!(matches!(
        ns.heartbeat(&id, 1, 2).await,
        Err(NamespaceError::NodeNotFound(_))
    ));
    ns.register_node(&rec).await.expect("register");
    let hb = ns.heartbeat(&id, 50, 200).await.expect("heartbeat");
    assert_eq!(
        (hb.capacity_used, hb.capacity_total, hb.heartbeat_ms),
        (50, 200, 42)
    );
    assert_eq!(ns.get_node(&id).await.expect("get"), Some(hb.clone()));
    let drained = ns
        .set_node_state(&id, NodeState::Draining)
        .await
        .expect("state");
    assert_eq!(drained.state, NodeState::Draining);
    let all = ns.list_nodes().await.expect("list");
    assert!(
        all.iter()
            .any(|n| n.id == id && n.state == NodeState::Draining)
    );
    assert!(matches!(
        ns.register_node(&NodeRecord {
            id: String::new(),
            ..rec
        })
        .await,
        Err(NamespaceError::InvalidArgument(_))
    ));
}

/// What the background workers use: the object scan (pages cover every
/// name once), copy-list compare-and-set with GC records, worker records
/// keeping an operator's pause flag.
pub async fn ns_upkeep(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let none = Conditions::none();
    let mut ids = std::collections::BTreeSet::new();
    for i in 0..7 {
        let o = new_obj(&["n1", "n2"]);
        ids.insert(o.object_id);
        ns.put_object(&p_stor(&l, &format!("o{i}")), o, &none)
            .await
            .expect("put");
    }
    ns.put_directory(&p_stor(&l, "d"), &Headers::new())
        .await
        .expect("mkdir");
    ns.snaplink(&p_stor(&l, "o0"), &p_stor(&l, "d/link"), &none)
        .await
        .expect("link");
    // Small pages: a name split across pages is still seen exactly once.
    let mut seen = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = ns.scan_objects(after.as_deref(), 3).await.expect("scan");
        seen.extend(
            page.objects
                .into_iter()
                .filter(|o| ids.contains(&o.object_id)),
        );
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "7 names and one snaplink");
    let linked: Vec<_> = seen.iter().filter(|o| o.linked).collect();
    assert_eq!(linked.len(), 2, "the source and the link");
    let target = seen
        .iter()
        .find(|o| !o.linked)
        .expect("a plain name")
        .clone();
    assert_eq!(target.copies, ["n1", "n2"]);

    // Replace n2 by n3; n2's copy gets a GC record.
    let moved = ns
        .set_copies(&target, &["n1".into(), "n3".into()], &["n2".into()])
        .await
        .expect("set copies");
    assert!(moved);
    let gc = ns.gc_pending("n2", 100).await.expect("gc");
    assert!(gc.iter().any(|r| r.object_id == target.object_id));
    // The same stale view again changes nothing.
    let again = ns
        .set_copies(&target, &["n1".into(), "n4".into()], &[])
        .await
        .expect("stale set");
    assert!(!again);

    // Workers: the pause flag survives the worker's own updates.
    let rec = WorkerRecord {
        scope: format!("scope-{}", Uuid::new_v4().simple()),
        name: "audit".into(),
        state: "idle".into(),
        progress: String::new(),
        last_error: None,
        passes: 1,
        updated_ms: 5,
        paused: false,
    };
    assert!(!ns.put_worker(&rec).await.expect("put worker"));
    let n = ns
        .set_worker_paused(Some(&rec.scope), "audit", true)
        .await
        .expect("pause");
    assert_eq!(n, 1);
    assert!(ns.put_worker(&rec).await.expect("put worker again"));
    let listed = ns.list_workers().await.expect("list workers");
    assert!(listed.iter().any(|w| w.scope == rec.scope && w.paused));
}

#[allow(dead_code)]
fn _assert_send(ns: &Namespace, p: &MantaPath) {
    // The gateway runs these futures on a multi-threaded runtime.
    fn send<T: Send>(_: T) {}
    send(ns.get(p));
    send(ns.put_object(p, new_obj(&[]), &Conditions::none()));
    send(ns.list(p, &ListOptions::default()));
}

#[allow(dead_code)]
fn _assert_txn_object_safe(_: &dyn Txn) {}

/// Roles and policies: references are checked, removal cascades, and a
/// subuser's access is the roles it is a member of.
pub async fn ns_roles_and_policies(kv: Arc<dyn Kv>) {
    let (ns, l) = ns_with_account(kv).await;
    let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    ns.create_subuser(&l, "bob").await.expect("subuser");
    ns.create_subuser(&l, "carol").await.expect("subuser");
    // A role may only name existing subusers and policies.
    assert!(matches!(
        ns.put_role(&l, "readers", &v(&["nobody"]), &[], &[]).await,
        Err(NamespaceError::SubuserNotFound(_))
    ));
    assert!(matches!(
        ns.put_role(&l, "readers", &v(&["bob"]), &[], &v(&["nopolicy"]))
            .await,
        Err(NamespaceError::InvalidArgument(_))
    ));
    assert!(matches!(
        ns.put_role(&l, "readers", &v(&["bob"]), &v(&["carol"]), &[])
            .await,
        Err(NamespaceError::InvalidArgument(_))
    ));
    assert!(matches!(
        ns.put_role(&l, "a,b", &[], &[], &[]).await,
        Err(NamespaceError::InvalidArgument(_))
    ));
    let p = ns
        .put_policy(&l, "read", &v(&["CAN getobject", "CAN getdirectory"]))
        .await
        .expect("policy");
    let p2 = ns
        .put_policy(&l, "read", &v(&["CAN getobject"]))
        .await
        .expect("replace");
    assert_eq!(p.uuid, p2.uuid, "replacing keeps the id");
    ns.put_policy(&l, "write", &v(&["CAN putobject"]))
        .await
        .expect("policy");
    ns.put_role(
        &l,
        "readers",
        &v(&["bob", "carol"]),
        &v(&["bob"]),
        &v(&["read"]),
    )
    .await
    .expect("role");
    ns.put_role(&l, "writers", &v(&["carol"]), &[], &v(&["write", "read"]))
        .await
        .expect("role");
    assert_eq!(
        ns.list_roles(&l)
            .await
            .expect("list")
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["readers", "writers"]
    );
    assert_eq!(ns.list_policies(&l).await.expect("list").len(), 2);
    let bob = ns.subuser_access(&l, "bob").await.expect("access");
    assert_eq!(bob.member_of(), v(&["readers"]));
    assert_eq!(bob.defaults("bob"), v(&["readers"]));
    assert_eq!(bob.roles[0].1[0].rules, v(&["CAN getobject"]));
    let carol = ns.subuser_access(&l, "carol").await.expect("access");
    assert_eq!(carol.member_of(), v(&["readers", "writers"]));
    assert!(carol.defaults("carol").is_empty());
    assert_eq!(carol.roles[1].1.len(), 2);
    // Removing a policy takes it out of the roles.
    assert!(ns.delete_policy(&l, "write").await.expect("rm"));
    assert!(!ns.delete_policy(&l, "write").await.expect("rm again"));
    assert_eq!(
        ns.get_role(&l, "writers")
            .await
            .expect("get")
            .expect("role")
            .policies,
        v(&["read"])
    );
    // Removing a subuser removes its keys and memberships.
    let key = SshKey {
        fingerprint_md5: "ff:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:01".into(),
        fingerprint_sha256: "SHA256:bobkey".into(),
        public_key: "ssh-ed25519 AAAA bob".into(),
        name: "bob".into(),
    };
    ns.add_key(&l, Some("bob"), &key).await.expect("key");
    assert!(ns.delete_subuser(&l, "bob").await.expect("rm"));
    assert!(ns.get_subuser(&l, "bob").await.expect("get").is_none());
    assert!(
        ns.get_key(&l, Some("bob"), "SHA256:bobkey")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        ns.list_keys(&l, Some("bob"))
            .await
            .expect("keys")
            .is_empty()
    );
    let readers = ns
        .get_role(&l, "readers")
        .await
        .expect("get")
        .expect("role");
    assert_eq!(
        (readers.members, readers.default_members),
        (v(&["carol"]), v(&[]))
    );
    assert!(
        ns.subuser_access(&l, "bob")
            .await
            .expect("access")
            .roles
            .is_empty()
    );
    assert!(ns.delete_role(&l, "readers").await.expect("rm"));
    assert!(ns.get_role(&l, "readers").await.expect("get").is_none());
    assert_eq!(
        ns.subuser_access(&l, "carol")
            .await
            .expect("access")
            .member_of(),
        v(&["writers"])
    );
}

/// S3 access keys: found by id whoever owns them, listed per account,
/// unique ids, removable only by their owner.
pub async fn ns_s3_keys(kv: Arc<dyn Kv>) {
    let ns = Namespace::new(kv);
    let (a, b) = (login(), login());
    ns.create_account(&a).await.expect("account a");
    ns.create_account(&b).await.expect("account b");
    let id = |n: u8| format!("TPK{}{}", Uuid::new_v4().simple(), n).to_ascii_uppercase();
    let key = |login: &str, id: String| S3Key {
        access_key_id: id,
        secret: format!("secret-of-{login}"),
        login: login.to_owned(),
        created_ms: 7,
    };
    let (a1, a2, b1) = (key(&a, id(1)), key(&a, id(2)), key(&b, id(3)));
    for k in [&a1, &a2, &b1] {
        ns.add_s3_key(k).await.expect("add s3 key");
    }
    // Ids are global: another account cannot take one.
    let mut stolen = b1.clone();
    stolen.login = a.clone();
    assert!(matches!(
        ns.add_s3_key(&stolen).await,
        Err(NamespaceError::AlreadyExists(_))
    ));
    assert!(matches!(
        ns.add_s3_key(&key("nosuchaccount", id(4))).await,
        Err(NamespaceError::AccountNotFound(_))
    ));
    assert!(matches!(
        ns.add_s3_key(&key(&a, "lower-case/id".into())).await,
        Err(NamespaceError::InvalidArgument(_))
    ));
    assert_eq!(
        ns.get_s3_key(&b1.access_key_id).await.expect("get"),
        Some(b1.clone())
    );
    assert_eq!(
        ns.get_s3_key("NOSUCHKEY0000000000").await.expect("get"),
        None
    );
    let mut listed = ns.list_s3_keys(&a).await.expect("list");
    listed.sort_by(|x, y| x.access_key_id.cmp(&y.access_key_id));
    let mut want = vec![a1.clone(), a2.clone()];
    want.sort_by(|x, y| x.access_key_id.cmp(&y.access_key_id));
    assert_eq!(listed, want);
    // Only the owner removes a key.
    assert!(!ns.remove_s3_key(&a, &b1.access_key_id).await.expect("rm"));
    assert!(
        ns.get_s3_key(&b1.access_key_id)
            .await
            .expect("get")
            .is_some()
    );
    assert!(ns.remove_s3_key(&a, &a1.access_key_id).await.expect("rm"));
    assert!(
        !ns.remove_s3_key(&a, &a1.access_key_id)
            .await
            .expect("rm again")
    );
    assert_eq!(ns.get_s3_key(&a1.access_key_id).await.expect("get"), None);
    assert_eq!(ns.list_s3_keys(&a).await.expect("list"), vec![a2]);
}
