//! Multi-node operations: writing one incoming body to N nodes at once, and
//! reading from the first copy that answers.
//!
//! [`NodeClient::replicate`] guarantees:
//! * The body is read once and streamed to every node concurrently through a
//!   bounded queue per node, so memory stays bounded (a few chunks per node)
//!   and the slowest node sets the pace (backpressure to the sender).
//! * Success means every node durably stored the same bytes: all receipts
//!   agree on size, md5 and blake3, and the size equals what was read.
//! * On any failure the uploads still in flight are aborted (the nodes then
//!   keep nothing) and copies that may have completed are deleted best
//!   effort; whatever survives is an orphan for garbage collection, never a
//!   committed object (the caller commits metadata only after success).
//!
//! [`NodeClient::read_first`] tries copies in the given order and moves on
//! when a node is down, lacks the object, fails before its first byte, or
//! does not deliver that byte within `first_byte_timeout`. A copy that
//! fails *after* bytes were delivered (a bad block, a node going away) is
//! replaced mid-stream: the rest is read from the next copies as a range
//! starting at the first byte not yet delivered, so the reader sees one
//! uninterrupted stream, and an error only when no copy can finish it.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::client::{BoxError, ClientError, NodeClient, ObjectStream};
use crate::protocol::{ByteRange, ObjectId, PutReceipt};

/// Chunks queued per node during replication.
const FANOUT_QUEUE: usize = 4;

/// A node to write to or read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTarget {
    /// Node id (as in metadata).
    pub node_id: String,
    /// Base URL, `http://host:port`.
    pub url: String,
}

impl NodeTarget {
    /// Convenience constructor.
    pub fn new(node_id: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            url: url.into(),
        }
    }
}

/// One durable copy written by [`NodeClient::replicate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReceipt {
    /// The node holding the copy.
    pub node_id: String,
    /// Bytes stored.
    pub size: u64,
    /// Base64 MD5 (compare with `Content-MD5`; return as `Computed-MD5`).
    pub md5: String,
    /// Hex blake3 (record in metadata; pass as expected hash on reads).
    pub blake3: String,
}

/// Why a replicated write failed. Nothing may be committed after any of
/// these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicateError {
    /// No targets were given.
    #[error("no target nodes")]
    NoTargets,
    /// The object id is not valid; nothing was sent.
    #[error(transparent)]
    InvalidObjectId(#[from] crate::protocol::InvalidObjectId),
    /// The incoming body failed (e.g. the client went away or exceeded a
    /// limit enforced by the caller's stream).
    #[error("incoming body failed: {0}")]
    Body(#[source] BoxError),
    /// A node failed to store its copy.
    #[error("node {node_id}: {source}")]
    Node {
        /// The failing node.
        node_id: String,
        /// What went wrong.
        #[source]
        source: ClientError,
    },
    /// A node stopped accepting data for longer than the stall timeout.
    #[error("node {node_id} stalled for {timeout:?}")]
    Stalled {
        /// The stalled node.
        node_id: String,
        /// The stall timeout that expired.
        timeout: Duration,
    },
    /// Nodes stored different bytes (or not what was sent).
    #[error("copies disagree: {0}")]
    Mismatch(String),
}

/// Why no copy could be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The object has no copies to try.
    #[error("no copies to read from")]
    NoCopies,
    /// The object id is not valid.
    #[error(transparent)]
    InvalidObjectId(#[from] crate::protocol::InvalidObjectId),
    /// Every copy failed; one entry per copy, in the order tried.
    #[error("all {} copies failed (first: {})", .failures.len(), .failures.first().map(|(n, e)| format!("{n}: {e}")).unwrap_or_default())]
    AllCopiesFailed {
        /// `(node_id, error)` per copy tried.
        failures: Vec<(String, ClientError)>,
    },
}

impl ReadError {
    /// True when every copy answered "not found" — the object's bytes are
    /// gone (a data-loss condition), as opposed to nodes being unreachable.
    pub fn all_not_found(&self) -> bool {
        matches!(self, Self::AllCopiesFailed { failures } if failures.iter().all(|(_, e)| matches!(e, ClientError::NotFound)))
    }
}

/// What the pump (body -> per-node queues) ended with.
enum PumpEnd {
    Done {
        sent: u64,
    },
    Body(BoxError),
    /// Node `i` dropped its queue (its upload failed) or stalled.
    NodeGone(usize),
    Stalled(usize),
}

impl NodeClient {
    /// Streams one incoming `body` to all `targets` at once as `object_id`
    /// and returns one receipt per target, in target order. See the module
    /// doc for the guarantees.
    pub async fn replicate<S, E>(
        &self,
        targets: &[NodeTarget],
        object_id: &str,
        body: S,
    ) -> Result<Vec<CopyReceipt>, ReplicateError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        if targets.is_empty() {
            return Err(ReplicateError::NoTargets);
        }
        let id = ObjectId::parse(object_id)?;
        let result = self.replicate_inner(targets, &id, body).await;
        if result.is_err() {
            self.cleanup(targets, &id).await;
        }
        result
    }

    async fn replicate_inner<S, E>(
        &self,
        targets: &[NodeTarget],
        id: &ObjectId,
        body: S,
    ) -> Result<Vec<CopyReceipt>, ReplicateError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let mut senders = Vec::with_capacity(targets.len());
        let mut uploads = FuturesUnordered::new();
        for (i, t) in targets.iter().enumerate() {
            let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(FANOUT_QUEUE);
            senders.push(tx);
            let stream =
                futures::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
                );
            uploads.push(async move { (i, self.put(&t.url, id.as_str(), stream).await) });
        }

        let stall = self.opts.stall_timeout;
        let pump = async move {
            let mut body = std::pin::pin!(body);
            let mut sent = 0u64;
            while let Some(item) = body.next().await {
                let chunk = match item {
                    Ok(c) => c,
                    Err(e) => {
                        // Make every node see an aborted body, not a clean
                        // end, so none of them stores a truncated copy.
                        for tx in &senders {
                            let _ = tx.try_send(Err(std::io::Error::other("upstream body failed")));
                        }
                        return PumpEnd::Body(e.into());
                    }
                };
                if chunk.is_empty() {
                    continue;
                }
                sent += chunk.len() as u64;
                // Bytes clones share the buffer; each node gets the same data.
                for (i, tx) in senders.iter().enumerate() {
                    match tokio::time::timeout(stall, tx.send(Ok(chunk.clone()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return PumpEnd::NodeGone(i),
                        Err(_) => return PumpEnd::Stalled(i),
                    }
                }
            }
            PumpEnd::Done { sent }
            // Dropping the senders here ends every node's body cleanly.
        };
        let mut pump = std::pin::pin!(pump);

        let mut receipts: Vec<Option<PutReceipt>> = vec![None; targets.len()];
        let mut sent = None;
        let mut remaining = targets.len();
        while remaining > 0 {
            tokio::select! {
                end = &mut pump, if sent.is_none() => match end {
                    PumpEnd::Done { sent: n } => sent = Some(n),
                    PumpEnd::Body(e) => return Err(ReplicateError::Body(e)),
                    PumpEnd::Stalled(i) => {
                        return Err(ReplicateError::Stalled { node_id: targets[i].node_id.clone(), timeout: stall });
                    }
                    PumpEnd::NodeGone(i) => {
                        // The upload of node i ended early; its own result
                        // says why (it is ready or about to be).
                        return Err(self.failure_of(i, targets, &mut uploads).await);
                    }
                },
                Some((i, res)) = uploads.next() => {
                    remaining -= 1;
                    match res {
                        Ok(r) => receipts[i] = Some(r),
                        Err(source) => return Err(ReplicateError::Node { node_id: targets[i].node_id.clone(), source }),
                    }
                }
            }
        }
        let Some(sent) = sent else {
            // Every node answered before the body ended: they cannot have
            // stored all of it.
            return Err(ReplicateError::Mismatch(
                "nodes answered before the body ended".into(),
            ));
        };
        let receipts: Vec<CopyReceipt> = receipts
            .into_iter()
            .zip(targets)
            .filter_map(|(r, t)| {
                r.map(|r| CopyReceipt {
                    node_id: t.node_id.clone(),
                    size: r.size,
                    md5: r.md5,
                    blake3: r.blake3,
                })
            })
            .collect();
        check_agreement(&receipts, sent)?;
        Ok(receipts)
    }

    /// The error of upload `i`, waiting for it briefly.
    async fn failure_of<F>(
        &self,
        i: usize,
        targets: &[NodeTarget],
        uploads: &mut FuturesUnordered<F>,
    ) -> ReplicateError
    where
        F: std::future::Future<Output = (usize, Result<PutReceipt, ClientError>)>,
    {
        let node_id = targets[i].node_id.clone();
        let wait = async {
            while let Some((j, res)) = uploads.next().await {
                if j == i {
                    return res.err();
                }
            }
            None
        };
        match tokio::time::timeout(self.opts.cleanup_timeout, wait).await {
            Ok(Some(source)) => ReplicateError::Node { node_id, source },
            _ => ReplicateError::Node {
                node_id,
                source: ClientError::Protocol("node stopped reading the body".into()),
            },
        }
    }

    /// Best-effort removal of copies a failed replication may have left.
    async fn cleanup(&self, targets: &[NodeTarget], id: &ObjectId) {
        let deletes = targets.iter().map(|t| async move {
            match tokio::time::timeout(self.opts.cleanup_timeout, self.delete(&t.url, id.as_str())).await {
                Ok(Ok(true)) => tracing::info!(node = %t.node_id, object = %id, "removed copy of failed write"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(node = %t.node_id, object = %id, error = %e, "could not remove copy of failed write; left for GC"),
                Err(_) => tracing::warn!(node = %t.node_id, object = %id, "timed out removing copy of failed write; left for GC"),
            }
        });
        futures::future::join_all(deletes).await;
    }

    /// Reads object `id` (or `range` of it) from the first of `copies` that
    /// delivers its first byte, trying them in order. Returns the index of
    /// the copy used and its stream. Copies check every block they send;
    /// `expected_blake3` (hex) makes copies without block checksums verify
    /// whole-object reads. A copy failing before its first byte is skipped;
    /// one failing later is replaced by the next copies from the first
    /// undelivered byte on, and the stream ends with an error only when none
    /// of them can deliver the rest.
    pub async fn read_first(
        &self,
        copies: &[NodeTarget],
        id: &str,
        range: Option<ByteRange>,
        expected_blake3: Option<&str>,
    ) -> Result<(usize, ObjectStream), ReadError> {
        if copies.is_empty() {
            return Err(ReadError::NoCopies);
        }
        ObjectId::parse(id)?;
        let mut failures = Vec::new();
        for (i, copy) in copies.iter().enumerate() {
            match self.open_copy(copy, id, range, expected_blake3).await {
                Ok(stream) => {
                    let rest = Resume {
                        client: self.clone(),
                        copies: copies[i + 1..].to_vec(),
                        id: id.to_owned(),
                        start: range.map_or(0, |r| r.start),
                        delivered: 0,
                        object_size: stream.object_size,
                        content_length: stream.content_length,
                    };
                    return Ok((i, rest.wrap(stream)));
                }
                Err(e) => {
                    tracing::warn!(node = %copy.node_id, object = %id, error = %e, "copy unreadable, trying the next");
                    failures.push((copy.node_id.clone(), e));
                }
            }
        }
        Err(ReadError::AllCopiesFailed { failures })
    }

    /// Opens `copy` and waits (at most `first_byte_timeout`) for its first
    /// byte.
    async fn open_copy(
        &self,
        copy: &NodeTarget,
        id: &str,
        range: Option<ByteRange>,
        expected_blake3: Option<&str>,
    ) -> Result<ObjectStream, ClientError> {
        let attempt = async {
            let mut stream = self.get(&copy.url, id, range, expected_blake3).await?;
            stream.prime().await?;
            Ok(stream)
        };
        let limit = self.opts.first_byte_timeout;
        tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or(Err(ClientError::Timeout(limit)))
    }
}

/// The state of a read that may continue from other copies (see the
/// module docs).
struct Resume {
    client: NodeClient,
    /// Copies not tried yet, in order.
    copies: Vec<NodeTarget>,
    id: String,
    /// Object offset of the stream's first byte.
    start: u64,
    /// Bytes yielded so far.
    delivered: u64,
    object_size: u64,
    content_length: u64,
}

impl Resume {
    /// `first`, continued from the remaining copies when it fails.
    fn wrap(self, first: ObjectStream) -> ObjectStream {
        let (object_size, content_length) = (self.object_size, self.content_length);
        let inner =
            futures::stream::unfold((self, Some(first)), |(mut state, current)| async move {
                let mut current = current?;
                loop {
                    match current.next().await {
                        Some(Ok(chunk)) => {
                            state.delivered += chunk.len() as u64;
                            return Some((Ok(chunk), (state, Some(current))));
                        }
                        None => return None,
                        Some(Err(e)) => match state.next_copy(&e).await {
                            Some(next) => current = next,
                            None => return Some((Err(e), (state, None))),
                        },
                    }
                }
            });
        ObjectStream::new(object_size, content_length, inner)
    }

    /// Opens the undelivered rest on the next copy that delivers its first
    /// byte, after the current copy failed with `cause`.
    async fn next_copy(&mut self, cause: &ClientError) -> Option<ObjectStream> {
        let rest = ByteRange {
            start: self.start + self.delivered,
            len: self.content_length.checked_sub(self.delivered)?,
        };
        if rest.len == 0 || self.copies.is_empty() {
            return None;
        }
        tracing::warn!(object = %self.id, offset = rest.start, error = %cause, "copy failed mid-stream, continuing from another");
        while !self.copies.is_empty() {
            let copy = self.copies.remove(0);
            // A range read: block checksums, not the whole-object hash,
            // check these bytes.
            let opened = self
                .client
                .open_copy(&copy, &self.id, Some(rest), None)
                .await;
            match opened {
                Ok(s) if s.object_size == self.object_size => return Some(s),
                Ok(s) => {
                    tracing::warn!(node = %copy.node_id, object = %self.id, size = s.object_size, expected = self.object_size, "copy has another size, trying the next");
                }
                Err(e) => {
                    tracing::warn!(node = %copy.node_id, object = %self.id, error = %e, "copy unreadable, trying the next");
                }
            }
        }
        None
    }
}

fn check_agreement(receipts: &[CopyReceipt], sent: u64) -> Result<(), ReplicateError> {
    let Some(first) = receipts.first() else {
        return Err(ReplicateError::NoTargets);
    };
    for r in receipts {
        if r.size != sent {
            return Err(ReplicateError::Mismatch(format!(
                "node {} stored {} bytes, {} were sent",
                r.node_id, r.size, sent
            )));
        }
        if r.md5 != first.md5 || r.blake3 != first.blake3 {
            return Err(ReplicateError::Mismatch(format!(
                "node {} hashed {}/{}, node {} hashed {}/{}",
                first.node_id, first.md5, first.blake3, r.node_id, r.md5, r.blake3
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(node: &str, size: u64, md5: &str) -> CopyReceipt {
        CopyReceipt {
            node_id: node.into(),
            size,
            md5: md5.into(),
            blake3: "b".into(),
        }
    }

    #[test]
    fn agreement_requires_same_hashes_and_sent_size() {
        assert!(check_agreement(&[receipt("a", 3, "m"), receipt("b", 3, "m")], 3).is_ok());
        assert!(check_agreement(&[receipt("a", 3, "m"), receipt("b", 3, "x")], 3).is_err());
        assert!(check_agreement(&[receipt("a", 3, "m"), receipt("b", 2, "m")], 3).is_err());
        assert!(check_agreement(&[receipt("a", 2, "m")], 3).is_err());
    }
}
