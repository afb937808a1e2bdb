//! Named objects written and read from inside the cluster (by the compute
//! agent and the job archiver), acting as the job's owner: stream bytes to
//! this node and enough peers for the durability asked, then commit the name
//! in meta, creating missing parent directories like `mkdir -p`.
//!
//! Guarantees: the metadata commit happens only after every copy is durable
//! and the copies agree (that is [`NodeClient::replicate`]'s contract), so a
//! failure leaves nothing visible; bodies are streamed, never buffered whole.
//! The local node, when registered and healthy, always holds one copy: task
//! outputs are written where they were produced.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::Digest as _;
use meta::namespace::{Conditions, Headers, Namespace, NamespaceError, NewObject};
use meta::path::MantaPath;
use placement::Candidate;
use tokio::io::AsyncWrite;

use crate::client::{BoxError, NodeClient};
use crate::fanout::{NodeTarget, ReadError, ReplicateError};

/// Errors writing or reading a named object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The name is not a valid object path.
    #[error("invalid object name {0:?}")]
    InvalidName(String),
    /// Meta refused or failed.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// Streaming the copies failed.
    #[error(transparent)]
    Replicate(#[from] ReplicateError),
    /// No copy could be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// No healthy storage node to write to.
    #[error("no storage node available")]
    NoNodes,
    /// A local file could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The name is a directory.
    #[error("{0} is a directory")]
    IsDirectory(String),
}

/// Writes and reads named objects for in-cluster services.
#[derive(Clone)]
pub struct ObjectIo {
    ns: Arc<Namespace>,
    client: NodeClient,
    local: Option<String>,
    durability: usize,
    heartbeat_timeout: Duration,
}

impl std::fmt::Debug for ObjectIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectIo")
            .field("local", &self.local)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

fn parse(name: &str) -> Result<MantaPath, ObjectError> {
    MantaPath::parse(name).map_err(|_| ObjectError::InvalidName(name.to_owned()))
}

impl ObjectIo {
    /// Object I/O over `ns` with `client`; `local` is the node that should
    /// hold the first copy of every write (none for a service without one).
    /// Writes make `durability` copies (fewer only if fewer nodes are up).
    pub fn new(
        ns: Arc<Namespace>,
        client: NodeClient,
        local: Option<String>,
        durability: usize,
    ) -> Self {
        ObjectIo {
            ns,
            client,
            local,
            durability: durability.max(1),
            heartbeat_timeout: Duration::from_secs(30),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &Arc<Namespace> {
        &self.ns
    }

    /// The node client.
    pub fn client(&self) -> &NodeClient {
        &self.client
    }

    /// Nodes for a new object: the local node first, then peers chosen by
    /// placement (distinct nodes, distinct AZs first).
    async fn targets(&self, size_hint: Option<u64>) -> Result<Vec<NodeTarget>, ObjectError> {
        let nodes = self.ns.list_nodes().await?;
        let now = meta::namespace::system_now_ms();
        let healthy = |n: &meta::namespace::NodeRecord| n.is_live(now, self.heartbeat_timeout);
        let mut out = Vec::new();
        if let Some(local) = &self.local
            && let Some(n) = nodes.iter().find(|n| &n.id == local && healthy(n))
        {
            out.push(NodeTarget::new(n.id.clone(), n.url.clone()));
        }
        let others: Vec<Candidate> = nodes
            .iter()
            .filter(|n| Some(&n.id) != self.local.as_ref())
            .map(|n| Candidate::new(n.id.clone(), n.az.clone(), n.free_bytes(), healthy(n)))
            .collect();
        let seed = uuid::Uuid::new_v4().as_u128() as u64;
        let mut want = self.durability.saturating_sub(out.len());
        while want > 0 {
            if let Ok(ids) = placement::choose_for_write(&others, want, size_hint, seed) {
                for id in ids {
                    if let Some(n) = nodes.iter().find(|n| n.id == id) {
                        out.push(NodeTarget::new(n.id.clone(), n.url.clone()));
                    }
                }
                break;
            }
            // Fewer healthy peers than asked: write what the cluster has.
            want -= 1;
        }
        if out.is_empty() {
            return Err(ObjectError::NoNodes);
        }
        Ok(out)
    }

    /// `mkdir -p` of every ancestor of `path` below the account's top
    /// directory.
    pub async fn mkdirp_parents(&self, path: &MantaPath) -> Result<(), ObjectError> {
        let mut chain = Vec::new();
        let mut cur = path.parent();
        while let Some(p) = cur {
            if p.rest().is_empty() {
                break;
            }
            match self.ns.get(&p).await? {
                Some(e) if e.is_directory() => break,
                Some(_) => return Err(ObjectError::IsDirectory(p.to_string())),
                None => {}
            }
            cur = p.parent();
            chain.push(p);
        }
        for dir in chain.into_iter().rev() {
            self.ns.put_directory(&dir, &Headers::default()).await?;
        }
        Ok(())
    }

    /// Stores `body` as object `name` (creating parents when `mkdirs`),
    /// replacing any object there. Returns the object's size.
    pub async fn put_stream<S, E>(
        &self,
        name: &str,
        content_type: &str,
        headers: Headers,
        body: S,
        mkdirs: bool,
    ) -> Result<u64, ObjectError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let path = parse(name)?;
        if mkdirs {
            self.mkdirp_parents(&path).await?;
        }
        let object_id = uuid::Uuid::new_v4();
        let targets = self.targets(None).await?;
        let receipts = self
            .client
            .replicate(&targets, &object_id.to_string(), body)
            .await?;
        let first = receipts.first().ok_or(ObjectError::NoNodes)?;
        let new = NewObject {
            object_id,
            size: first.size,
            content_md5: first.md5.clone(),
            blake3: first.blake3.clone(),
            content_type: content_type.to_owned(),
            headers,
            copies: receipts.iter().map(|r| r.node_id.clone()).collect(),
            durability: u8::try_from(receipts.len()).unwrap_or(u8::MAX),
        };
        let size = new.size;
        if let Err(e) = self.ns.put_object(&path, new, &Conditions::none()).await {
            for t in &targets {
                let _ = self.client.delete(&t.url, &object_id.to_string()).await;
            }
            return Err(e.into());
        }
        Ok(size)
    }

    /// Stores the file at `file` as object `name`; an empty file becomes an
    /// object without copies (as the gateway stores empty uploads).
    pub async fn put_file(
        &self,
        name: &str,
        file: &std::path::Path,
        mkdirs: bool,
    ) -> Result<u64, ObjectError> {
        let f = tokio::fs::File::open(file).await?;
        if f.metadata().await?.len() == 0 {
            self.put_empty(name, mkdirs).await?;
            return Ok(0);
        }
        let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024);
        self.put_stream(
            name,
            "application/octet-stream",
            Headers::default(),
            stream,
            mkdirs,
        )
        .await
    }

    /// Stores `bytes` (small: stderr, error reports) as object `name`.
    pub async fn put_bytes(&self, name: &str, bytes: Vec<u8>) -> Result<u64, ObjectError> {
        if bytes.is_empty() {
            self.put_empty(name, true).await?;
            return Ok(0);
        }
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes))]);
        self.put_stream(name, "text/plain", Headers::default(), stream, true)
            .await
    }

    async fn put_empty(&self, name: &str, mkdirs: bool) -> Result<(), ObjectError> {
        let path = parse(name)?;
        if mkdirs {
            self.mkdirp_parents(&path).await?;
        }
        let new = NewObject {
            object_id: uuid::Uuid::new_v4(),
            size: 0,
            content_md5: {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b""))
            },
            blake3: blake3::hash(b"").to_hex().to_string(),
            content_type: "application/octet-stream".into(),
            headers: Headers::default(),
            copies: Vec::new(),
            durability: u8::try_from(self.durability).unwrap_or(2),
        };
        self.ns.put_object(&path, new, &Conditions::none()).await?;
        Ok(())
    }

    /// Copies the whole object `name` into `out`; returns the bytes copied.
    /// A write error on `out` (the reader went away) ends the copy early
    /// with `Ok`, reporting what was written.
    pub async fn copy_to<W: AsyncWrite + Unpin>(
        &self,
        name: &str,
        out: &mut W,
    ) -> Result<Result<u64, std::io::Error>, ObjectError> {
        use tokio::io::AsyncWriteExt as _;
        let path = parse(name)?;
        let entry = self
            .ns
            .get(&path)
            .await?
            .ok_or_else(|| NamespaceError::NotFound(name.to_owned()))?;
        let Some(o) = entry.object() else {
            return Err(ObjectError::IsDirectory(name.to_owned()));
        };
        if o.size == 0 {
            return Ok(Ok(0));
        }
        let nodes = self.ns.list_nodes().await?;
        let mut targets: Vec<NodeTarget> = o
            .copies
            .iter()
            .filter_map(|c| nodes.iter().find(|n| &n.id == c))
            .map(|n| NodeTarget::new(n.id.clone(), n.url.clone()))
            .collect();
        // Prefer the local copy.
        targets.sort_by_key(|t| Some(&t.node_id) != self.local.as_ref());
        let (_, mut stream) = self
            .client
            .read_first(
                &targets,
                &o.object_id.to_string(),
                None,
                Some(o.blake3.as_str()),
            )
            .await?;
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ObjectError::Read(ReadError::AllCopiesFailed {
                    failures: vec![(String::new(), e)],
                })
            })?;
            if let Err(e) = out.write_all(&chunk).await {
                return Ok(Err(e));
            }
            n += chunk.len() as u64;
        }
        Ok(Ok(n))
    }
}
