//! Real storage nodes on loopback, driven by the real client.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, stream};
use storage_node::client::{ClientError, ClientOptions, NodeClient};
use storage_node::fanout::{NodeTarget, ReadError, ReplicateError};
use storage_node::protocol::ByteRange;
use storage_node::server::{NodeConfig, NodeServer};
use tokio_util::sync::CancellationToken;

struct Node {
    id: String,
    url: String,
    store: std::sync::Arc<storage_node::store::ObjectStore>,
    dir: tempfile::TempDir,
    cancel: CancellationToken,
}

impl Node {
    async fn start(id: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let server = NodeServer::bind(NodeConfig {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            node_id: id.into(),
            az: format!("az-{id}"),
            cluster_key: key().clone(),
        })
        .await
        .unwrap();
        let url = server.url();
        let store = server.store();
        let cancel = CancellationToken::new();
        tokio::spawn(server.serve(cancel.clone()));
        Node {
            id: id.into(),
            url,
            store,
            dir,
            cancel,
        }
    }

    fn target(&self) -> NodeTarget {
        NodeTarget::new(&self.id, &self.url)
    }

    fn object_file(&self, id: &str) -> PathBuf {
        self.dir.path().join("objects").join(&id[..2]).join(id)
    }

    fn count(&self, sub: &str) -> usize {
        count_files(&self.dir.path().join(sub))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// A URL where connections are accepted but never read from or answered.
/// The returned task holds the connections; abort it to close them.
async fn hanging_node() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (url, holder)
}

/// A URL where nothing listens.
/// A URL whose port refuses connections, and the socket that holds the
/// port for as long as it lives: bound, never listening. (A port released
/// at once could be given to another test's node running meanwhile, and
/// the "dead" target would answer.)
fn dead_url() -> (String, tokio::net::TcpSocket) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    (format!("http://{}", s.local_addr().unwrap()), s)
}

/// The cluster credential of every node and client in these tests.
fn key() -> &'static storage_node::ClusterKey {
    static KEY: std::sync::OnceLock<storage_node::ClusterKey> = std::sync::OnceLock::new();
    KEY.get_or_init(storage_node::ClusterKey::generate)
}

/// `path?query` of `url`, as it goes on the request line.
fn path_and_query(url: &str) -> String {
    let u = reqwest::Url::parse(url).unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

/// A raw request to a node, signed with `key` as the node client would.
fn signed_with(
    key: &storage_node::ClusterKey,
    method: reqwest::Method,
    url: &str,
) -> reqwest::RequestBuilder {
    let auth =
        cluster_auth::RequestSigner::new(key).header_value(method.as_str(), &path_and_query(url));
    reqwest::Client::new()
        .request(method, url)
        .header(cluster_auth::AUTH_HEADER, auth)
}

/// A raw request signed with the tests' cluster key.
fn signed(method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
    signed_with(key(), method, url)
}

fn client() -> NodeClient {
    NodeClient::new(
        ClientOptions {
            stall_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
        key(),
    )
    .unwrap()
}

fn body(
    data: &[u8],
    chunk: usize,
) -> impl futures::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let parts: Vec<Result<Bytes, io::Error>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(parts)
}

/// A body that yields `good` and then fails, like a client that hangs up.
fn failing_body(
    good: &[u8],
) -> impl futures::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    body(good, 1000).chain(stream::iter([Err(io::Error::other("client hung up"))]))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const ID: &str = "0b5e6a3c-1d2e-4f00-8a9b-0123456789ab";

#[tokio::test]
async fn put_get_range_head_verify_list_delete() {
    let node = Node::start("n1").await;
    let c = client();
    let data = pattern(700_000);

    let receipt = c.put(&node.url, ID, body(&data, 8192)).await.unwrap();
    assert_eq!(receipt.size, data.len() as u64);
    assert_eq!(receipt.blake3, blake3::hash(&data).to_hex().as_str());
    // The durable file holds exactly the bytes.
    assert_eq!(std::fs::read(node.object_file(ID)).unwrap(), data);
    assert_eq!(node.count("tmp"), 0);

    // Idempotent re-put.
    assert_eq!(
        c.put(&node.url, ID, body(&data, 100_000)).await.unwrap(),
        receipt
    );

    let whole = c
        .get(&node.url, ID, None, Some(&receipt.blake3))
        .await
        .unwrap();
    assert_eq!(whole.object_size, data.len() as u64);
    assert_eq!(whole.collect_bytes().await.unwrap(), data);

    let range = ByteRange {
        start: 1000,
        len: 300_000,
    };
    let part = c.get(&node.url, ID, Some(range), None).await.unwrap();
    assert_eq!(part.content_length, 300_000);
    assert_eq!(part.object_size, data.len() as u64);
    assert_eq!(part.collect_bytes().await.unwrap(), &data[1000..301_000]);

    assert_eq!(
        c.head(&node.url, ID).await.unwrap(),
        Some(data.len() as u64)
    );
    assert!(
        c.verify(&node.url, ID, &receipt.blake3)
            .await
            .unwrap()
            .matches
    );
    assert!(
        !c.verify(&node.url, ID, blake3::hash(b"other").to_hex().as_str())
            .await
            .unwrap()
            .matches
    );

    let status = c.status(&node.url).await.unwrap();
    assert_eq!(
        (status.node_id.as_str(), status.az.as_str()),
        ("n1", "az-n1")
    );
    assert!(status.capacity.total_bytes >= status.capacity.free_bytes);

    c.put(&node.url, "ff00", body(b"x", 1)).await.unwrap();
    assert_eq!(c.list(&node.url, None, 10).await.unwrap(), [ID, "ff00"]);
    assert_eq!(c.list(&node.url, Some(ID), 10).await.unwrap(), ["ff00"]);

    assert!(c.delete(&node.url, ID).await.unwrap());
    assert!(!node.object_file(ID).exists());
    assert_eq!(node.count("tombstone"), 2, "the copy and its block sums");
    assert!(!c.delete(&node.url, ID).await.unwrap());
    assert!(matches!(
        c.get(&node.url, ID, None, None).await,
        Err(ClientError::NotFound)
    ));
    assert_eq!(c.head(&node.url, ID).await.unwrap(), None);
}

#[tokio::test]
async fn empty_object_and_bad_requests() {
    let node = Node::start("n1").await;
    let c = client();
    let r = c
        .put(&node.url, "aa", stream::empty::<Result<Bytes, io::Error>>())
        .await
        .unwrap();
    assert_eq!((r.size, r.md5.as_str()), (0, "1B2M2Y8AsgTpgAmY7PhCfg=="));
    assert!(
        c.get(&node.url, "aa", None, Some(&r.blake3))
            .await
            .unwrap()
            .collect_bytes()
            .await
            .unwrap()
            .is_empty()
    );
    // The client refuses ids that could escape the object directory.
    assert!(matches!(
        c.head(&node.url, "../etc").await,
        Err(ClientError::InvalidObjectId(_))
    ));
    // The server does too, and rejects ranges outside the object.
    let resp = signed(reqwest::Method::GET, &format!("{}/objects/zz..", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: storage_node::protocol::ErrorBody = resp.json().await.unwrap();
    assert_eq!(err.code, "InvalidObjectId");
    // HEAD announces the size in the standard header too.
    c.put(&node.url, "cc", body(b"12345", 2)).await.unwrap();
    let resp = signed(reqwest::Method::HEAD, &format!("{}/objects/cc", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-length"], "5");
    c.put(&node.url, "bb", body(b"abc", 3)).await.unwrap();
    let err = c
        .get(&node.url, "bb", Some(ByteRange { start: 5, len: 1 }), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Status { status: 416, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn aborted_upload_leaves_nothing() {
    let node = Node::start("n1").await;
    let c = client();
    let err = c
        .put(&node.url, ID, failing_body(&pattern(50_000)))
        .await
        .unwrap_err();
    assert!(err.is_transport(), "{err}");
    eventually("temp file removal", || async { node.count("tmp") == 0 }).await;
    assert_eq!(node.count("objects"), 0);
    assert!(!node.object_file(ID).exists());
}

#[tokio::test]
async fn local_store_writes_are_durable_copies_like_the_nodes() {
    let (here, there) = (Node::start("here").await, Node::start("there").await);
    let c = client();
    c.add_local_store(&here.url, here.store.clone());

    // A replicated write lands in the local store and on the remote node
    // with the same receipt, and reads back from both.
    let data = pattern(900_000);
    let receipts = c
        .replicate(&[here.target(), there.target()], ID, body(&data, 65536))
        .await
        .unwrap();
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0].blake3, receipts[1].blake3);
    assert_eq!(std::fs::read(here.object_file(ID)).unwrap(), data);
    assert_eq!(std::fs::read(there.object_file(ID)).unwrap(), data);
    assert_eq!(here.count("tmp"), 0);

    // An upload whose body fails keeps nothing, as on a node.
    let other = "abcdef01";
    let err = c
        .put(&here.url, other, failing_body(&pattern(50_000)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Status { status: 400, .. }),
        "{err}"
    );
    eventually("temp file removal", || async { here.count("tmp") == 0 }).await;
    assert!(!here.object_file(other).exists());
}

#[tokio::test]
async fn replicate_to_three_nodes() {
    let nodes = [
        Node::start("a").await,
        Node::start("b").await,
        Node::start("c").await,
    ];
    let targets: Vec<NodeTarget> = nodes.iter().map(Node::target).collect();
    let data = pattern(3 * 1024 * 1024 + 17);
    let receipts = client()
        .replicate(&targets, ID, body(&data, 64 * 1024))
        .await
        .unwrap();
    assert_eq!(receipts.len(), 3);
    for (r, n) in receipts.iter().zip(&nodes) {
        assert_eq!(r.node_id, n.id);
        assert_eq!(r.size, data.len() as u64);
        assert_eq!(r.blake3, blake3::hash(&data).to_hex().as_str());
        assert_eq!(r.md5, receipts[0].md5);
        assert_eq!(std::fs::read(n.object_file(ID)).unwrap(), data);
    }
}

#[tokio::test]
async fn replicate_fails_when_a_node_is_down_and_cleans_up() {
    let live = [Node::start("a").await, Node::start("b").await];
    let mut targets: Vec<NodeTarget> = live.iter().map(Node::target).collect();
    let (dead, _held) = dead_url();
    targets.insert(1, NodeTarget::new("dead", dead));
    let err = client()
        .replicate(&targets, ID, body(&pattern(2_000_000), 32 * 1024))
        .await
        .unwrap_err();
    match &err {
        ReplicateError::Node { node_id, source } => {
            assert_eq!(node_id, "dead");
            assert!(source.is_transport(), "{source}");
        }
        other => panic!("unexpected error {other}"),
    }
    for n in &live {
        eventually("aborted uploads cleaned", || async { n.count("tmp") == 0 }).await;
        assert!(
            !n.object_file(ID).exists(),
            "no copy may stay visible on {}",
            n.id
        );
    }
}

#[tokio::test]
async fn replicate_fails_when_the_incoming_body_fails() {
    let nodes = [Node::start("a").await, Node::start("b").await];
    let targets: Vec<NodeTarget> = nodes.iter().map(Node::target).collect();
    let err = client()
        .replicate(&targets, ID, failing_body(&pattern(300_000)))
        .await
        .unwrap_err();
    assert!(matches!(err, ReplicateError::Body(_)), "{err}");
    for n in &nodes {
        eventually("aborted uploads cleaned", || async { n.count("tmp") == 0 }).await;
        assert!(!n.object_file(ID).exists());
    }
}

#[tokio::test]
async fn read_first_fails_over_to_the_next_copy() {
    let (missing, good) = (Node::start("missing").await, Node::start("good").await);
    let c = client();
    let data = pattern(100_000);
    c.put(&good.url, ID, body(&data, 4096)).await.unwrap();
    let (dead, _held) = dead_url();
    let copies = [
        NodeTarget::new("dead", dead),
        missing.target(),
        good.target(),
    ];
    let (used, stream) = c.read_first(&copies, ID, None, None).await.unwrap();
    assert_eq!(used, 2);
    assert_eq!(stream.collect_bytes().await.unwrap(), data);

    let range = Some(ByteRange { start: 10, len: 5 });
    let (used, stream) = c.read_first(&copies[1..], ID, range, None).await.unwrap();
    assert_eq!(used, 1);
    assert_eq!(stream.collect_bytes().await.unwrap(), &data[10..15]);

    let err = c
        .read_first(&copies[..2], ID, None, None)
        .await
        .unwrap_err();
    match &err {
        ReadError::AllCopiesFailed { failures } => {
            assert_eq!(failures.len(), 2);
            assert!(failures[0].1.is_transport());
            assert!(matches!(failures[1].1, ClientError::NotFound));
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(!err.all_not_found());
}

#[tokio::test]
async fn corrupt_copies_are_never_served_as_complete() {
    let (bad, good) = (Node::start("bad").await, Node::start("good").await);
    let c = client();

    // Large object: corruption is found only at the end, so the stream must
    // end in an error rather than a clean end.
    let data = pattern(1_500_000);
    let r = c.put(&bad.url, ID, body(&data, 65536)).await.unwrap();
    let mut flipped = data.clone();
    flipped[1_000_000] ^= 1;
    std::fs::write(bad.object_file(ID), &flipped).unwrap();
    let got = c
        .get(&bad.url, ID, None, Some(&r.blake3))
        .await
        .unwrap()
        .collect_bytes()
        .await;
    assert!(got.is_err(), "bit flip must not be served as success");

    // Truncated file: refused before the answer starts, not a short success.
    std::fs::write(bad.object_file(ID), &data[..900_000]).unwrap();
    let err = c
        .get(&bad.url, ID, None, Some(&r.blake3))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Status { status: 500, code, .. } if code == "CorruptCopy"),
        "{err}"
    );

    // Small object: corruption is found before the first byte, so read_first
    // moves on to the good copy.
    let small_id = "c0ffee00";
    let small = b"small object".to_vec();
    let r = c.put(&bad.url, small_id, body(&small, 4)).await.unwrap();
    c.put(&good.url, small_id, body(&small, 4)).await.unwrap();
    std::fs::write(bad.object_file(small_id), b"smell object").unwrap();
    assert!(
        !c.verify(&bad.url, small_id, &r.blake3)
            .await
            .unwrap()
            .matches
    );
    let (used, stream) = c
        .read_first(
            &[bad.target(), good.target()],
            small_id,
            None,
            Some(&r.blake3),
        )
        .await
        .unwrap();
    assert_eq!(used, 1);
    assert_eq!(stream.collect_bytes().await.unwrap(), small);
}

#[tokio::test]
async fn a_copy_failing_mid_stream_is_continued_from_another() {
    let nodes = [
        Node::start("bad").await,
        Node::start("worse").await,
        Node::start("good").await,
    ];
    let c = client();
    let data = pattern(1_500_000);
    let mut r = None;
    for n in &nodes {
        r = Some(c.put(&n.url, ID, body(&data, 65536)).await.unwrap());
    }
    let hash = r.unwrap().blake3;
    // Different bad blocks on two copies: the read moves on twice.
    for (n, at) in [(&nodes[0], 1_000_000), (&nodes[1], 1_400_000)] {
        let mut flipped = data.clone();
        flipped[at] ^= 1;
        std::fs::write(n.object_file(ID), &flipped).unwrap();
    }
    let copies: Vec<_> = nodes.iter().map(Node::target).collect();
    let (used, stream) = c.read_first(&copies, ID, None, Some(&hash)).await.unwrap();
    assert_eq!(used, 0, "the first copy delivers its first bytes");
    assert!(stream.collect_bytes().await.unwrap() == data);

    let range = ByteRange {
        start: 700_001,
        len: 750_000,
    };
    let (_, stream) = c.read_first(&copies, ID, Some(range), None).await.unwrap();
    assert!(stream.collect_bytes().await.unwrap() == data[700_001..1_450_001]);

    // Without a good copy the stream ends in an error, never cleanly.
    let (_, stream) = c
        .read_first(&copies[..2], ID, None, Some(&hash))
        .await
        .unwrap();
    assert!(stream.collect_bytes().await.is_err());
}

/// What a read answered: the bytes, or the error's status code / kind.
async fn outcome(
    c: &NodeClient,
    url: &str,
    id: &str,
    range: Option<ByteRange>,
    hash: Option<&str>,
) -> Result<(u64, u64, Vec<u8>), String> {
    let s = match c.get(url, id, range, hash).await {
        Ok(s) => s,
        Err(ClientError::Status { status, code, .. }) => return Err(format!("{status} {code}")),
        Err(ClientError::NotFound) => return Err("not found".into()),
        Err(e) => return Err(format!("other: {e}")),
    };
    let (size, len) = (s.object_size, s.content_length);
    match s.collect_bytes().await {
        Ok(b) => Ok((size, len, b)),
        Err(_) => Err("failed mid-stream".into()),
    }
}

#[tokio::test]
async fn local_store_reads_answer_exactly_like_the_node() {
    let node = Node::start("local").await;
    let http = client();
    let local = client();
    local.add_local_store(&node.url, node.store.clone());
    let data = pattern(700_000);
    let r = http.put(&node.url, ID, body(&data, 65536)).await.unwrap();
    let wrong = blake3::hash(b"other").to_hex().to_string();
    let cases: Vec<(Option<ByteRange>, Option<&str>, &str)> = vec![
        (None, Some(&r.blake3), ID),
        (None, None, ID),
        (
            Some(ByteRange {
                start: 5,
                len: 300_000,
            }),
            Some(&r.blake3),
            ID,
        ),
        (
            Some(ByteRange {
                start: 699_999,
                len: 1,
            }),
            None,
            ID,
        ),
        (
            Some(ByteRange {
                start: 700_000,
                len: 1,
            }),
            None,
            ID,
        ),
        (None, Some("not-hex"), ID),
        (None, Some(&wrong), ID),
        (None, None, "abcdef99"),
    ];
    for (range, hash, id) in cases {
        let want = outcome(&http, &node.url, id, range, hash).await;
        let got = outcome(&local, &node.url, id, range, hash).await;
        match (&want, &got) {
            (Ok(w), Ok(g)) => assert!(w == g, "{range:?} {hash:?}: bytes differ"),
            (Err(w), Err(g)) if w.starts_with("other") => {
                assert!(
                    g.starts_with("other") || g == "failed mid-stream",
                    "{range:?}: {w} vs {g}"
                )
            }
            _ => assert_eq!(want.err(), got.err(), "{range:?} {hash:?} {id}"),
        }
    }
    assert!(
        outcome(&local, &node.url, ID, None, Some(&r.blake3))
            .await
            .unwrap()
            .2
            == data
    );

    // A corrupt local copy is never served as complete, and read_first
    // still moves on from it to another copy.
    let mut flipped = data.clone();
    flipped[600_000] ^= 1;
    std::fs::write(node.object_file(ID), &flipped).unwrap();
    assert_eq!(
        outcome(&local, &node.url, ID, None, Some(&r.blake3))
            .await
            .err()
            .as_deref(),
        Some("failed mid-stream")
    );
    // A truncated copy is refused up front, with the node's answer.
    std::fs::write(node.object_file(ID), &data[..600_000]).unwrap();
    for c in [&http, &local] {
        assert_eq!(
            outcome(c, &node.url, ID, None, None).await.err().as_deref(),
            Some("500 CorruptCopy")
        );
    }
    let small_id = "c0ffee01";
    let good = Node::start("good").await;
    let r = http
        .put(&node.url, small_id, body(b"tiny", 4))
        .await
        .unwrap();
    http.put(&good.url, small_id, body(b"tiny", 4))
        .await
        .unwrap();
    std::fs::write(node.object_file(small_id), b"tidy").unwrap();
    let (used, stream) = local
        .read_first(
            &[node.target(), good.target()],
            small_id,
            None,
            Some(&r.blake3),
        )
        .await
        .unwrap();
    assert_eq!(used, 1);
    assert_eq!(stream.collect_bytes().await.unwrap(), b"tiny");
}

#[tokio::test]
async fn restart_cleans_interrupted_uploads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    std::fs::write(
        dir.path().join("tmp").join(format!("{ID}.deadbeef")),
        b"half",
    )
    .unwrap();
    let server = NodeServer::bind(NodeConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        node_id: "n".into(),
        az: "z".into(),
        cluster_key: key().clone(),
    })
    .await
    .unwrap();
    assert_eq!(count_files(&dir.path().join("tmp")), 0);
    assert_eq!(count_files(&dir.path().join("objects")), 0);
    drop(server);
}

#[tokio::test]
async fn a_stalled_node_fails_replication_and_memory_stays_bounded() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let (stalled_url, holder) = hanging_node().await;
    let good = Node::start("good").await;

    // A 1 GiB body generated on demand, counting what replication pulled.
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();
    let chunk = Bytes::from(vec![5u8; 64 * 1024]);
    let body = stream::iter(0..16 * 1024).map(move |_| {
        counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        Ok::<_, io::Error>(chunk.clone())
    });

    let c = NodeClient::new(
        ClientOptions {
            stall_timeout: Duration::from_millis(300),
            // The best-effort delete on the stalled node cannot succeed either.
            cleanup_timeout: Duration::from_millis(300),
            ..ClientOptions::default()
        },
        key(),
    )
    .unwrap();
    let targets = [good.target(), NodeTarget::new("stalled", &stalled_url)];
    let err = tokio::time::timeout(Duration::from_secs(30), c.replicate(&targets, ID, body))
        .await
        .expect("replication must give up on a stalled node")
        .unwrap_err();
    assert!(
        matches!(&err, ReplicateError::Stalled { node_id, .. } if node_id == "stalled"),
        "{err}"
    );
    // The slowest node sets the pace: only socket buffers and the small
    // per-node queues were filled, not the whole body.
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(
        pulled < 64 * 1024 * 1024,
        "pulled {pulled} bytes of a stalled upload"
    );
    eventually("aborted upload cleaned on the good node", || async {
        good.count("tmp") == 0
    })
    .await;
    assert!(!good.object_file(ID).exists());
    holder.abort();
}

#[tokio::test]
async fn read_first_skips_a_node_that_hangs() {
    let (hung_url, holder) = hanging_node().await;
    let good = Node::start("good").await;
    let c = NodeClient::new(
        ClientOptions {
            first_byte_timeout: Duration::from_millis(300),
            ..ClientOptions::default()
        },
        key(),
    )
    .unwrap();
    c.put(&good.url, ID, body(b"hello", 5)).await.unwrap();
    let copies = [NodeTarget::new("hung", &hung_url), good.target()];
    let (used, stream) = c.read_first(&copies, ID, None, None).await.unwrap();
    assert_eq!(used, 1);
    assert_eq!(stream.collect_bytes().await.unwrap(), b"hello");
    holder.abort();
}

#[tokio::test]
async fn request_ids_travel_to_the_node_and_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // The node echoes the caller's id (or makes one up).
    let node = Node::start("n1").await;
    let url = format!("{}/status", node.url);
    let resp = signed(reqwest::Method::GET, &url)
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-42");
    let resp = signed(reqwest::Method::GET, &url).send().await.unwrap();
    assert!(!resp.headers()["x-request-id"].is_empty());

    // The client sends the id it was given: capture its raw request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let capture_url = format!("http://{}", listener.local_addr().unwrap());
    let capture = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before the request head ended");
            head.extend_from_slice(&buf[..n]);
        }
        sock.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&head).to_lowercase()
    });
    let found = client()
        .with_request_id("req-43")
        .head(&capture_url, ID)
        .await
        .unwrap();
    assert_eq!(found, None);
    let head = capture.await.unwrap();
    assert!(head.contains("x-request-id: req-43"), "{head}");
}

/// Asserts `resp` is the node's refusal of an unauthenticated request.
async fn assert_refused(resp: reqwest::Response, what: &str) {
    assert_eq!(resp.status(), 401, "{what}");
    let err: storage_node::protocol::ErrorBody = resp.json().await.unwrap();
    assert_eq!(err.code, "NotAuthenticated", "{what}");
}

#[tokio::test]
async fn requests_without_the_cluster_credential_touch_nothing() {
    use reqwest::Method;

    let node = Node::start("n1").await;
    let c = client();
    let original = pattern(10_000);
    c.put(&node.url, ID, body(&original, 4096)).await.unwrap();
    let file = node.object_file(ID);
    let before = std::fs::read(&file).unwrap();
    let obj = format!("{}/objects/{ID}", node.url);
    let attempts = [
        (Method::GET, format!("{}/objects?limit=10", node.url)),
        (Method::GET, obj.clone()),
        (Method::HEAD, obj.clone()),
        (Method::PUT, obj.clone()),
        (Method::DELETE, obj.clone()),
        (Method::POST, format!("{obj}/verify")),
        (Method::GET, format!("{}/status", node.url)),
        (Method::POST, format!("{}/agent/tasks", node.url)),
    ];
    let http = reqwest::Client::new();
    let stranger = storage_node::ClusterKey::generate();
    for (method, url) in &attempts {
        let what = format!("{method} {url}");
        // No credential at all.
        let resp = http
            .request(method.clone(), url)
            .body(b"forged bytes".to_vec())
            .send()
            .await
            .unwrap();
        if *method == Method::HEAD {
            assert_eq!(resp.status(), 401, "{what}");
        } else {
            assert_refused(resp, &what).await;
        }
        // Signed with another cluster's key.
        let resp = signed_with(&stranger, method.clone(), url)
            .body(b"forged bytes".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "wrong key: {what}");
        // A genuine signature for another method or path.
        let resp = signed(Method::GET, &format!("{}/status", node.url))
            .build()
            .unwrap();
        let auth = resp.headers()[cluster_auth::AUTH_HEADER].clone();
        let resp = http
            .request(method.clone(), url)
            .header(cluster_auth::AUTH_HEADER, auth)
            .body(b"forged bytes".to_vec())
            .send()
            .await
            .unwrap();
        if !(*method == Method::GET && url.ends_with("/status")) {
            assert_eq!(resp.status(), 401, "borrowed signature: {what}");
        }
    }
    // A stale or future timestamp is refused too.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for secs in [now - 600, now + 600] {
        let auth = cluster_auth::RequestSigner::new(key()).header_value_at(
            "DELETE",
            &path_and_query(&obj),
            secs,
        );
        let resp = http
            .delete(&obj)
            .header(cluster_auth::AUTH_HEADER, auth)
            .send()
            .await
            .unwrap();
        assert_refused(resp, "skewed DELETE").await;
    }
    // Nothing was overwritten, deleted or left behind.
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(node.count("tombstone"), 0);
    assert_eq!(node.count("tmp"), 0);
    let back = c.get(&node.url, ID, None, None).await.unwrap();
    assert_eq!(back.collect_bytes().await.unwrap(), original);
}

#[tokio::test]
async fn a_signed_request_is_accepted_once() {
    let node = Node::start("n1").await;
    let c = client();
    c.put(&node.url, ID, body(b"keep me", 7)).await.unwrap();
    // A captured DELETE works once...
    let url = format!("{}/objects/{ID}", node.url);
    let req = signed(reqwest::Method::GET, &url).build().unwrap();
    let captured = signed(reqwest::Method::DELETE, &url).build().unwrap();
    let auth = captured.headers()[cluster_auth::AUTH_HEADER].clone();
    let http = reqwest::Client::new();
    assert_eq!(http.execute(req).await.unwrap().status(), 200);
    let first = http
        .delete(&url)
        .header(cluster_auth::AUTH_HEADER, auth.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 204);
    c.put(&node.url, ID, body(b"written again", 13))
        .await
        .unwrap();
    // ...and its replay is refused: the new copy stays.
    let replay = http
        .delete(&url)
        .header(cluster_auth::AUTH_HEADER, auth)
        .send()
        .await
        .unwrap();
    assert_refused(replay, "replayed DELETE").await;
    let back = c.get(&node.url, ID, None, None).await.unwrap();
    assert_eq!(back.collect_bytes().await.unwrap(), b"written again");
}
