//! Object bytes on storage nodes, as the gateway needs them: which nodes
//! get a new object (meta's node registrations + `placement`), streaming an
//! upload to all of them at once (`storage_node::client`), reading from the
//! first working copy, and deleting orphans.
//!
//! Guarantees: an upload either returns a receipt from every target, all
//! with the same size and MD5, or an error (never a partial success); the
//! upload is never buffered whole; a body over the cap fails with `413`.

use crate::Gateway;
use crate::error::ApiError;
use crate::format::b64;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use membership::ClusterView;
use meta::namespace::{CopyRef, NodeRecord, ObjectInfo};
use placement::{Candidate, PlacementError};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use storage_node::protocol::ByteRange;
use storage_node::{NodeTarget, ReadError, ReplicateError};

/// What a successful upload produced.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub size: u64,
    pub md5: String,
    pub blake3: String,
    pub copies: Vec<String>,
}

fn seed() -> u64 {
    uuid::Uuid::new_v4().as_u128() as u64
}

/// How long reads may order copies by node records read earlier.
const READ_VIEW_TTL: Duration = Duration::from_millis(250);

/// The node records as last read, for ordering a read's copies: reading
/// them for every GET was a metadata scan and a decode per node per
/// request. Records up to [`READ_VIEW_TTL`] old can miss a node that just
/// joined or moved, so a read that fails on them is tried once more on
/// fresh ones ([`read`]). Writes always read them fresh.
#[derive(Default)]
pub(crate) struct ReadView(std::sync::Mutex<Option<(std::time::Instant, Arc<Vec<NodeRecord>>)>>);

impl ReadView {
    /// The records, and whether they came from the cache.
    async fn records(
        &self,
        gw: &Gateway,
        fresh: bool,
    ) -> Result<(Arc<Vec<NodeRecord>>, bool), ApiError> {
        let lock = || self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !fresh
            && let Some((at, nodes)) = lock().as_ref()
            && at.elapsed() < READ_VIEW_TTL
        {
            return Ok((nodes.clone(), true));
        }
        let nodes = Arc::new(gw.inner.namespace.list_nodes().await?);
        *lock() = Some((std::time::Instant::now(), nodes.clone()));
        Ok((nodes, false))
    }
}

/// The cluster as the gateway sees it now ([`membership`]'s one rule,
/// with the transfers this gateway saw fail), and the records by id.
async fn node_view(gw: &Gateway) -> Result<(ClusterView, HashMap<String, NodeRecord>), ApiError> {
    let nodes = gw.inner.namespace.list_nodes().await?;
    Ok(view_of(gw, nodes))
}

fn view_of(gw: &Gateway, nodes: Vec<NodeRecord>) -> (ClusterView, HashMap<String, NodeRecord>) {
    let by_id = nodes.iter().map(|n| (n.id.clone(), n.clone())).collect();
    let view =
        ClusterView::from_records(nodes, gw.inner.health, Some(&gw.inner.suspects), now_ms(gw));
    (view, by_id)
}

fn now_ms(gw: &Gateway) -> u64 {
    u64::try_from(
        gw.now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0),
    )
    .unwrap_or(u64::MAX)
}

/// Marks `node` suspect after a transfer to it failed.
fn suspect(gw: &Gateway, node: &str) {
    tracing::warn!(node, "storage node marked suspect");
    gw.inner.suspects.mark(node, now_ms(gw));
}

/// Chooses `n` distinct nodes for a new object (before the body is read).
pub(crate) async fn choose_targets(
    gw: &Gateway,
    n: usize,
    size_hint: Option<u64>,
) -> Result<Vec<NodeTarget>, ApiError> {
    let (view, by_id) = node_view(gw).await?;
    let chosen = placement::choose_for_write(&view.candidates(true), n, size_hint, seed())
        .map_err(|e| match e {
            PlacementError::NotEnoughNodes { wanted, available } => {
                ApiError::NotEnoughNodes { wanted, available }
            }
            PlacementError::NotEnoughSpace { .. } => ApiError::NotEnoughSpace,
            other => ApiError::internal(other),
        })?;
    chosen
        .into_iter()
        .map(|id| {
            let rec = by_id
                .get(&id)
                .ok_or_else(|| ApiError::internal(format!("placement chose unknown node {id}")))?;
            Ok(NodeTarget::new(rec.id.clone(), rec.url.clone()))
        })
        .collect()
}

/// Streams `body` to every target at once; returns only when all copies are
/// durable and agree. Both frontends (Manta's PUT, S3's PutObject and
/// UploadPart) hand their request body here.
pub(crate) async fn replicate<S, E>(
    gw: &Gateway,
    targets: &[NodeTarget],
    id: uuid::Uuid,
    body: S,
    cap: u64,
) -> Result<Stored, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let guard = Arc::new(BodyGuard::default());
    let stream = guarded(body, cap, gw.inner.upload_idle_timeout, guard.clone());
    // On failure `replicate` has already aborted or deleted every copy.
    let result = gw
        .inner
        .nodes
        .replicate(targets, &id.to_string(), stream)
        .await;
    match result {
        Ok(receipts) => stored(receipts),
        Err(ReplicateError::Body(_)) if guard.over_cap.load(Ordering::SeqCst) => {
            Err(ApiError::MaxContentLengthExceeded(cap))
        }
        Err(ReplicateError::Body(_)) if guard.idle.load(Ordering::SeqCst) => {
            Err(ApiError::UploadTimeout)
        }
        Err(ReplicateError::Body(e)) => Err(ApiError::BadRequest(format!(
            "request body could not be read: {e}"
        ))),
        Err(e) => Err(node_failure(gw, e, targets.len())),
    }
}

/// What storing nothing produces: the empty object needs no copies
/// (muskie did the same).
pub(crate) fn empty() -> Stored {
    Stored {
        size: 0,
        md5: b64(&Md5::digest(b"")),
        blake3: blake3::hash(b"").to_hex().to_string(),
        copies: Vec::new(),
    }
}

/// A new object's bytes on `durability` nodes: placement, then
/// [`replicate`]. An announced length of 0 stores nothing and never reads
/// the body (so no `100 Continue` is sent).
pub(crate) async fn store<S, E>(
    gw: &Gateway,
    durability: u32,
    content_length: Option<u64>,
    id: uuid::Uuid,
    body: S,
    cap: u64,
) -> Result<Stored, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    if content_length == Some(0) {
        return Ok(empty());
    }
    let targets = choose_targets(gw, durability as usize, content_length).await?;
    // From here on the body is polled: hyper sends `100 Continue` now.
    replicate(gw, &targets, id, body, cap).await
}

/// A new object made of existing ones, in order (a multipart commit of
/// either frontend): each part is read from its first working copy and
/// streamed to fresh copies, never buffered whole.
pub(crate) async fn concat(
    gw: &Gateway,
    parts: Vec<ObjectInfo>,
    durability: u32,
    id: uuid::Uuid,
) -> Result<Stored, ApiError> {
    let total: u64 = parts.iter().map(|o| o.size).sum();
    if total == 0 {
        return Ok(empty());
    }
    let targets = choose_targets(gw, durability as usize, Some(total)).await?;
    let reader = gw.clone();
    let stream = futures::stream::iter(parts)
        .then(move |o| {
            let gw = reader.clone();
            async move {
                read(&gw, &o, None)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))
            }
        })
        .try_flatten()
        .boxed();
    replicate_stream(gw, &targets, id, stream).await
}

/// Like [`replicate`] for a body produced by the gateway itself (a
/// multipart commit reading its parts); a failing source is an outage.
pub(crate) async fn replicate_stream(
    gw: &Gateway,
    targets: &[NodeTarget],
    id: uuid::Uuid,
    source: impl Stream<Item = Result<Bytes, std::io::Error>> + Send,
) -> Result<Stored, ApiError> {
    match gw
        .inner
        .nodes
        .replicate(targets, &id.to_string(), source)
        .await
    {
        Ok(receipts) => stored(receipts),
        Err(ReplicateError::Body(e)) => {
            tracing::error!(error = %e, "source of a replicated write failed");
            Err(ApiError::NotEnoughNodes {
                wanted: targets.len(),
                available: 0,
            })
        }
        Err(e) => Err(node_failure(gw, e, targets.len())),
    }
}

fn node_failure(gw: &Gateway, e: ReplicateError, wanted: usize) -> ApiError {
    match e {
        // A node's disk (or ZFS quota) filled up during the upload.
        ReplicateError::Node {
            source: storage_node::ClientError::Status { status: 507, .. },
            ..
        } => {
            tracing::warn!(error = %e, "replication failed: a node is out of space");
            ApiError::NotEnoughSpace
        }
        ReplicateError::Node { .. } | ReplicateError::Stalled { .. } => {
            match &e {
                ReplicateError::Node { node_id, source } if source.is_transport() => {
                    suspect(gw, node_id)
                }
                ReplicateError::Stalled { node_id, .. } => suspect(gw, node_id),
                _ => {}
            }
            tracing::warn!(error = %e, "replication failed");
            ApiError::NotEnoughNodes {
                wanted,
                available: wanted.saturating_sub(1),
            }
        }
        other => ApiError::internal(other),
    }
}

fn stored(receipts: Vec<storage_node::CopyReceipt>) -> Result<Stored, ApiError> {
    // `replicate` guarantees that all receipts agree.
    let first = receipts
        .first()
        .ok_or_else(|| ApiError::internal("replicate returned no receipts"))?;
    Ok(Stored {
        size: first.size,
        md5: first.md5.clone(),
        blake3: first.blake3.clone(),
        copies: receipts.iter().map(|r| r.node_id.clone()).collect(),
    })
}

/// Why the gateway itself cut an upload short.
#[derive(Debug, Default)]
struct BodyGuard {
    over_cap: AtomicBool,
    idle: AtomicBool,
}

/// The request body as a stream that fails once more than `cap` bytes came,
/// or when the client sends nothing for `idle` (muskie: 45 s).
fn guarded<S, E>(
    body: S,
    cap: u64,
    idle: Duration,
    guard: Arc<BodyGuard>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let inner = Box::pin(body);
    futures::stream::unfold((inner, 0u64, false), move |(mut inner, seen, failed)| {
        let guard = guard.clone();
        async move {
            if failed {
                return None;
            }
            match tokio::time::timeout(idle, inner.next()).await {
                Err(_) => {
                    guard.idle.store(true, Ordering::SeqCst);
                    Some((
                        Err(std::io::Error::other("upload idle timeout")),
                        (inner, seen, true),
                    ))
                }
                Ok(None) => None,
                Ok(Some(Err(e))) => Some((
                    Err(std::io::Error::other(e.to_string())),
                    (inner, seen, true),
                )),
                Ok(Some(Ok(chunk))) => {
                    let seen = seen.saturating_add(chunk.len() as u64);
                    if seen > cap {
                        guard.over_cap.store(true, Ordering::SeqCst);
                        let e = std::io::Error::other("request body exceeds the size cap");
                        Some((Err(e), (inner, seen, true)))
                    } else {
                        Some((Ok(chunk), (inner, seen, false)))
                    }
                }
            }
        }
    })
}

/// Opens the object for reading from the first copy that answers, in
/// placement's order (healthy nodes first).
pub(crate) async fn read(
    gw: &Gateway,
    o: &ObjectInfo,
    range: Option<(u64, u64)>,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static + use<>, ApiError> {
    let (nodes, cached) = gw.inner.read_view.records(gw, false).await?;
    match read_from(gw, nodes.as_ref().clone(), o, range).await {
        Err(_) if cached => {
            let (nodes, _) = gw.inner.read_view.records(gw, true).await?;
            read_from(gw, nodes.as_ref().clone(), o, range).await
        }
        done => done,
    }
}

/// [`read`] with the node records `nodes`.
async fn read_from(
    gw: &Gateway,
    nodes: Vec<NodeRecord>,
    o: &ObjectInfo,
    range: Option<(u64, u64)>,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static + use<>, ApiError> {
    let (view, by_id) = view_of(gw, nodes);
    // Draining nodes still serve reads; silent, lost and suspect ones are
    // tried last.
    let candidates: Vec<Candidate> = view
        .nodes()
        .iter()
        .map(|n| {
            let id = &n.record.id;
            Candidate::new(id.clone(), n.record.az.clone(), 0, view.serves_reads(id))
        })
        .collect();
    let order = placement::order_for_read(&o.copies, &candidates, seed());
    let targets: Vec<NodeTarget> = order
        .iter()
        .filter_map(|id| by_id.get(id))
        .map(|rec| NodeTarget::new(rec.id.clone(), rec.url.clone()))
        .collect();
    let range = range.map(|(a, b)| ByteRange {
        start: a,
        len: b - a + 1,
    });
    // Nodes verify blake3 only on whole-object reads.
    let expected = if range.is_none() {
        Some(o.blake3.as_str())
    } else {
        None
    };
    let (_, stream) = gw
        .inner
        .nodes
        .read_first(&targets, &o.object_id.to_string(), range, expected)
        .await
        .map_err(|e| {
            if e.all_not_found() || matches!(e, ReadError::NoCopies) {
                // Committed metadata without bytes: data loss, not an
                // outage, unless the object was released meanwhile (the
                // GET handler checks).
                ApiError::CopiesMissing(format!("object {} has no readable copy: {e}", o.object_id))
            } else {
                if let ReadError::AllCopiesFailed { failures } = &e {
                    for (node, err) in failures {
                        if err.is_transport() {
                            suspect(gw, node);
                        }
                    }
                }
                tracing::error!(error = %e, object = %o.object_id, "no copy could be read");
                ApiError::NotEnoughNodes {
                    wanted: 1,
                    available: 0,
                }
            }
        })?;
    Ok(stream.map_err(std::io::Error::other))
}

impl Gateway {
    /// Records a freshly stored object under `path` with one meta commit
    /// (both frontends' last step of a write). A refused commit deletes the
    /// new copies; copies the commit freed are deleted in the background.
    pub(crate) async fn commit_object(
        &self,
        path: &meta::path::MantaPath,
        new: meta::namespace::NewObject,
        cond: &meta::namespace::Conditions,
    ) -> Result<meta::namespace::PutOutcome, ApiError> {
        let (id, copies) = (new.object_id, new.copies.clone());
        match self.inner.namespace.put_object(path, new, cond).await {
            Ok(out) => {
                self.release_copies(out.freed.clone());
                Ok(out)
            }
            Err(e) => {
                self.delete_orphans(id, &copies);
                Err(e.into())
            }
        }
    }

    /// Deletes copies no name refers to any more, in the background. Meta
    /// already holds GC records for them, so a failure here loses nothing.
    pub(crate) fn release_copies(&self, freed: Vec<CopyRef>) {
        if freed.is_empty() {
            return;
        }
        let gw = self.clone();
        tokio::spawn(async move {
            // Copies a running job pinned stay until it lets them go; their
            // GC records free them then.
            let ns = &gw.inner.namespace;
            let mut verdict: HashMap<uuid::Uuid, bool> = HashMap::new();
            let mut free = Vec::with_capacity(freed.len());
            for c in freed {
                let pinned = match verdict.get(&c.object_id) {
                    Some(&p) => p,
                    None => {
                        // Unknown counts as pinned: GC retries it safely.
                        let p = ns.is_pinned(&c.object_id).await.unwrap_or_else(|e| {
                            tracing::warn!(error = %e, object = %c.object_id, "pin check failed");
                            true
                        });
                        verdict.insert(c.object_id, p);
                        p
                    }
                };
                if !pinned {
                    free.push(c);
                }
            }
            gw.delete_copies_best_effort(free).await
        });
    }

    /// Deletes copies of an object that never got committed, in the
    /// background and best-effort.
    pub(crate) fn delete_orphans(&self, id: uuid::Uuid, nodes: &[String]) {
        let refs = nodes
            .iter()
            .map(|n| CopyRef {
                node: n.clone(),
                object_id: id,
            })
            .collect::<Vec<_>>();
        let gw = self.clone();
        tokio::spawn(async move { gw.delete_copies_best_effort(refs).await });
    }

    /// Deletes the given copies, logging (not failing on) errors: meta's GC
    /// records or the node audit retry what is missed here.
    pub(crate) async fn delete_copies_best_effort(&self, copies: Vec<CopyRef>) {
        if copies.is_empty() {
            return;
        }
        let by_id = match node_view(self).await {
            Ok((_, by_id)) => by_id,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list nodes to delete copies");
                return;
            }
        };
        for c in copies {
            let Some(rec) = by_id.get(&c.node) else {
                continue;
            };
            let id = c.object_id.to_string();
            if let Err(e) = self.inner.nodes.delete(&rec.url, &id).await {
                tracing::warn!(error = %e, node = %c.node, object = %c.object_id, "copy delete failed");
            }
        }
    }
}
