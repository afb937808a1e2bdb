//! The namespace's handling of backend failures, driven by a fault-injecting
//! wrapper around the real embedded backend (like TiKV's failpoints): commit
//! conflicts are retried and then reported as ConcurrentRequest, an
//! undetermined commit of a PUT is resolved by re-reading, an unreachable
//! backend is reported as Unavailable.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use meta::conformance;
use meta::embedded::EmbeddedKv;
use meta::kv::{KeyRange, Kv, KvError, KvPair, KvResult, Order, Reader, Snapshot, Txn};
use meta::namespace::{Conditions, Namespace, NamespaceError, NewObject, RetryPolicy};
use meta::path::MantaPath;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// The next n commits fail with Conflict (without applying).
    Conflicts(u32),
    /// The next commit is applied, then reported as Undetermined.
    AppliedButUndetermined,
    /// The next commit is not applied and reported as Undetermined.
    LostAndUndetermined,
    /// begin/snapshot fail with Unavailable.
    Unavailable,
}

struct FaultyKv {
    inner: Arc<dyn Kv>,
    fault: Arc<Mutex<Fault>>,
}

impl FaultyKv {
    fn set(&self, f: Fault) {
        *self.fault.lock().expect("fault lock") = f;
    }
}

struct FaultyTxn {
    inner: Box<dyn Txn>,
    fault: Arc<Mutex<Fault>>,
}

#[async_trait]
impl Reader for FaultyTxn {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn batch_get(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        self.inner.batch_get(keys).await
    }
    async fn scan(&mut self, range: KeyRange, limit: usize, order: Order) -> KvResult<Vec<KvPair>> {
        self.inner.scan(range, limit, order).await
    }
}

#[async_trait]
impl Txn for FaultyTxn {
    async fn get_for_update(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.inner.get_for_update(key).await
    }
    async fn lock(&mut self, keys: &[Vec<u8>]) -> KvResult<()> {
        self.inner.lock(keys).await
    }
    async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        self.inner.put(key, value).await
    }
    async fn delete(&mut self, key: Vec<u8>) -> KvResult<()> {
        self.inner.delete(key).await
    }
    async fn commit(self: Box<Self>) -> KvResult<()> {
        let fault = {
            let mut f = self.fault.lock().expect("fault lock");
            let now = *f;
            *f = match now {
                Fault::Conflicts(n) if n > 1 => Fault::Conflicts(n - 1),
                Fault::Unavailable => Fault::Unavailable,
                _ => Fault::None,
            };
            now
        };
        match fault {
            Fault::Conflicts(_) => {
                self.inner.rollback().await?;
                Err(KvError::Conflict("injected".into()))
            }
            Fault::AppliedButUndetermined => {
                self.inner.commit().await?;
                Err(KvError::Undetermined("injected".into()))
            }
            Fault::LostAndUndetermined => {
                self.inner.rollback().await?;
                Err(KvError::Undetermined("injected".into()))
            }
            Fault::None | Fault::Unavailable => self.inner.commit().await,
        }
    }
    async fn rollback(self: Box<Self>) -> KvResult<()> {
        self.inner.rollback().await
    }
}

#[async_trait]
impl Kv for FaultyKv {
    async fn begin(&self) -> KvResult<Box<dyn Txn>> {
        if *self.fault.lock().expect("fault lock") == Fault::Unavailable {
            return Err(KvError::Unavailable("injected".into()));
        }
        Ok(Box::new(FaultyTxn {
            inner: self.inner.begin().await?,
            fault: self.fault.clone(),
        }))
    }
    async fn snapshot(&self) -> KvResult<Box<dyn Snapshot>> {
        if *self.fault.lock().expect("fault lock") == Fault::Unavailable {
            return Err(KvError::Unavailable("injected".into()));
        }
        self.inner.snapshot().await
    }
}

fn obj() -> NewObject {
    NewObject {
        object_id: Uuid::new_v4(),
        size: 1,
        content_md5: "x".into(),
        blake3: "y".into(),
        content_type: "text/plain".into(),
        headers: Default::default(),
        copies: vec!["n1".into()],
        durability: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_handles_backend_faults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real: Arc<dyn Kv> = Arc::new(
        EmbeddedKv::open(dir.path().join("f.redb"))
            .await
            .expect("open"),
    );
    let faulty = Arc::new(FaultyKv {
        inner: real,
        fault: Arc::new(Mutex::new(Fault::None)),
    });
    let ns = Namespace::new(faulty.clone()).with_retry(RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    });
    ns.create_account("alice").await.expect("account");
    let path = MantaPath::parse("/alice/stor/o").expect("path");

    // Two conflicts, then success: retried transparently.
    faulty.set(Fault::Conflicts(2));
    ns.put_object(&path, obj(), &Conditions::none())
        .await
        .expect("retried put");

    // More conflicts than attempts: ConcurrentRequest, nothing written.
    faulty.set(Fault::Conflicts(3));
    let before = ns.get(&path).await.expect("get");
    let r = ns.put_object(&path, obj(), &Conditions::none()).await;
    assert!(
        matches!(r, Err(NamespaceError::ConcurrentRequest(ref p)) if p == "/alice/stor/o"),
        "{r:?}"
    );
    assert_eq!(ns.get(&path).await.expect("get"), before);
    faulty.set(Fault::None);

    // The commit landed but the answer was lost: the re-read proves success.
    faulty.set(Fault::AppliedButUndetermined);
    let o = obj();
    let id = o.object_id;
    let out = ns
        .put_object(&path, o, &Conditions::none())
        .await
        .expect("resolved");
    assert_eq!(out.entry.object().map(|o| o.object_id), Some(id));

    // The commit was lost: reported as Undetermined, old object still there.
    faulty.set(Fault::LostAndUndetermined);
    let r = ns.put_object(&path, obj(), &Conditions::none()).await;
    assert!(matches!(r, Err(NamespaceError::Undetermined(_))), "{r:?}");
    let cur = ns.get(&path).await.expect("get").expect("entry");
    assert_eq!(cur.object().map(|o| o.object_id), Some(id));

    // Unreachable backend: Unavailable (→ 503), for reads and writes.
    faulty.set(Fault::Unavailable);
    assert!(matches!(
        ns.get(&path).await,
        Err(NamespaceError::Unavailable(_))
    ));
    assert!(matches!(
        ns.delete(&path, &Conditions::none()).await,
        Err(NamespaceError::Unavailable(_))
    ));
    faulty.set(Fault::None);
    ns.delete(&path, &Conditions::none()).await.expect("delete");
}

/// The conformance suite also passes through a (fault-free) wrapper, so it
/// only relies on the trait, never on the embedded backend's internals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_through_a_wrapper() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real: Arc<dyn Kv> = Arc::new(
        EmbeddedKv::open(dir.path().join("w.redb"))
            .await
            .expect("open"),
    );
    let kv: Arc<dyn Kv> = Arc::new(FaultyKv {
        inner: real,
        fault: Arc::new(Mutex::new(Fault::None)),
    });
    conformance::run_all(|| {
        let kv = kv.clone();
        async move { kv }
    })
    .await;
}
