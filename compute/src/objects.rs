//! Named objects written and read from inside the cluster (by the compute
//! agent and the job archiver), acting as the job's owner: stream bytes to
//! this node and enough peers for the durability asked, then commit the name
//! in meta, creating missing parent directories like `mkdir -p`.
//!
//! Guarantees: the metadata commit happens only after every copy is durable
//! and the copies agree (that is [`NodeClient::replicate`]'s contract), so a
//! failure leaves nothing visible; bodies are streamed, never buffered whole.
//! The local node, when registered and healthy, always holds one copy: task
//! outputs are written where they were produced. A peer that failed a
//! write is passed over (while enough others look alive) until it
//! heartbeats again, and a write from a file is retried on other peers, so
//! a node that died but still looks alive by its last heartbeat does not
//! fail every task writing next to it.

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::Digest as _;
use membership::{ClusterView, Condition, HealthRule, Suspects};
use meta::namespace::{Conditions, Headers, Namespace, NamespaceError, NewObject};
use meta::path::MantaPath;
use placement::Candidate;
use tokio::io::AsyncWrite;

use storage_node::client::{BoxError, NodeClient};
use storage_node::fanout::{NodeTarget, ReadError, ReplicateError};

use crate::metering::IoMeter;

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
    /// Fewer healthy nodes than the copies a write needs; nothing written.
    #[error("{wanted} copies needed but only {available} storage nodes are available")]
    NotEnoughNodes {
        /// Copies the write needs.
        wanted: usize,
        /// Healthy nodes found.
        available: usize,
    },
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
    health: HealthRule,
    /// Peers a write failed on (the cluster's one suspect rule).
    suspects: Arc<Suspects>,
    /// Counts the bytes this view reads and writes (a task's metering).
    meter: Option<Arc<IoMeter>>,
}

/// Attempts of a write whose body can be read again (a file) when a peer
/// fails it.
const FILE_WRITE_ATTEMPTS: usize = 3;

impl std::fmt::Debug for ObjectIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectIo")
            .field("local", &self.local)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

/// `mkdir -p`'s outcome, an object in the way of a parent reported as
/// [`ObjectError::IsDirectory`] (what a task's write into it sees).
fn parent_in_the_way<T>(r: Result<T, NamespaceError>) -> Result<T, ObjectError> {
    match r {
        Err(NamespaceError::ParentNotDirectory(p)) => Err(ObjectError::IsDirectory(p)),
        r => Ok(r?),
    }
}

fn parse(name: &str) -> Result<MantaPath, ObjectError> {
    MantaPath::parse(name).map_err(|_| ObjectError::InvalidName(name.to_owned()))
}

impl ObjectIo {
    /// Object I/O over `ns` with `client`; `local` is the node that should
    /// hold the first copy of every write (none for a service without one).
    /// Writes make `durability` copies (as many as there are nodes in a
    /// smaller cluster) or fail.
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
            health: HealthRule::default(),
            suspects: Arc::default(),
            meter: None,
        }
    }

    /// The same object I/O, counting the object bytes it reads and writes
    /// into `meter`.
    pub fn metered(&self, meter: Arc<IoMeter>) -> Self {
        ObjectIo {
            meter: Some(meter),
            ..self.clone()
        }
    }

    /// The same object I/O writing `copies` copies (at least one).
    pub fn with_durability(&self, copies: usize) -> Self {
        ObjectIo {
            durability: copies.max(1),
            ..self.clone()
        }
    }

    /// The same object I/O under the cluster's health rule `health`.
    pub fn with_health(mut self, health: HealthRule) -> Self {
        self.health = health;
        self
    }

    /// The peer (not this node, not the body) a replicated write failed
    /// on: writing again elsewhere may succeed.
    fn failed_peer<'e>(&self, e: &'e ReplicateError) -> Option<&'e String> {
        match e {
            ReplicateError::Node { node_id, .. } | ReplicateError::Stalled { node_id, .. }
                if Some(node_id) != self.local.as_ref() =>
            {
                Some(node_id)
            }
            _ => None,
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
        let node_count = nodes.len();
        let view = ClusterView::from_records(nodes, self.health, Some(&self.suspects), now);
        let mut out = Vec::new();
        if let Some(local) = &self.local
            && let Some(n) = view.get(local)
            && matches!(n.condition, Condition::Up | Condition::Suspect)
        {
            out.push(NodeTarget::new(n.record.id.clone(), n.record.url.clone()));
        }
        let peers = |avoid_suspects: bool| -> Vec<Candidate> {
            view.candidates(avoid_suspects)
                .into_iter()
                .filter(|c| Some(&c.id) != self.local.as_ref())
                .collect()
        };
        // Peers that failed a write since their last heartbeat are used
        // only when the others are too few for the durability asked.
        let (trusted, all) = (peers(true), peers(false));
        let seed = uuid::Uuid::new_v4().as_u128() as u64;
        // A cluster smaller than the durability asked (a one-node dev
        // setup) gets a copy on every node; otherwise a write never settles
        // for fewer copies than asked: it fails, and the task is retried.
        let wanted = self.durability.min(node_count).max(1);
        let want = wanted.saturating_sub(out.len());
        if want > 0 {
            let chosen = [&trusted, &all]
                .into_iter()
                .find_map(|others| placement::choose_for_write(others, want, size_hint, seed).ok());
            for id in chosen.into_iter().flatten() {
                if let Some(n) = view.get(&id) {
                    out.push(NodeTarget::new(n.record.id.clone(), n.record.url.clone()));
                }
            }
        }
        if out.is_empty() {
            return Err(ObjectError::NoNodes);
        }
        if out.len() < wanted {
            return Err(ObjectError::NotEnoughNodes {
                wanted,
                available: out.len(),
            });
        }
        Ok(out)
    }

    /// `mkdir -p` of every ancestor of `path` below the account's top
    /// directory.
    pub async fn mkdirp_parents(&self, path: &MantaPath) -> Result<(), ObjectError> {
        parent_in_the_way(self.ns.ensure_parent_directories(path).await)
    }

    /// Commits `new` as the object at `path`, creating its missing parents
    /// in the same transaction when `mkdirs`.
    async fn commit_object(
        &self,
        path: &MantaPath,
        new: NewObject,
        mkdirs: bool,
    ) -> Result<(), ObjectError> {
        let cond = Conditions::none();
        if mkdirs {
            parent_in_the_way(self.ns.put_object_creating_parents(path, new, &cond).await)?;
        } else {
            self.ns.put_object(path, new, &cond).await?;
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
        self.put_once(&path, content_type, headers, body, mkdirs)
            .await
    }

    /// One attempt at writing `body` as the object at `path`, creating its
    /// missing parents in the same metadata commit when `mkdirs`.
    async fn put_once<S, E>(
        &self,
        path: &MantaPath,
        content_type: &str,
        headers: Headers,
        body: S,
        mkdirs: bool,
    ) -> Result<u64, ObjectError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let object_id = uuid::Uuid::new_v4();
        let targets = self.targets(None).await?;
        let receipts = match self
            .client
            .replicate(&targets, &object_id.to_string(), body)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                if let Some(peer) = self.failed_peer(&e) {
                    self.suspects.mark(peer, meta::namespace::system_now_ms());
                }
                return Err(e.into());
            }
        };
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
        if let Err(e) = self.commit_object(path, new, mkdirs).await {
            for t in &targets {
                let _ = self.client.delete(&t.url, &object_id.to_string()).await;
            }
            return Err(e);
        }
        if let Some(m) = &self.meter {
            m.add_written(size);
        }
        Ok(size)
    }

    /// Stores the file at `file` as object `name`; an empty file becomes an
    /// object without copies (as the gateway stores empty uploads). A peer
    /// failing the write makes it start over on other peers (a few times).
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
        let path = parse(name)?;
        let mut f = Some(f);
        let mut attempt = 1;
        loop {
            let f = match f.take() {
                Some(f) => f,
                None => tokio::fs::File::open(file).await?,
            };
            let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024);
            let ct = "application/octet-stream";
            match self
                .put_once(&path, ct, Headers::default(), stream, mkdirs)
                .await
            {
                Err(ObjectError::Replicate(e))
                    if attempt < FILE_WRITE_ATTEMPTS && self.failed_peer(&e).is_some() =>
                {
                    tracing::info!(object = name, error = %e, attempt, "a peer failed the write; writing again");
                    attempt += 1;
                }
                r => return r,
            }
        }
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
        self.commit_object(&path, new, mkdirs).await
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
            // Bytes fetched count as read even when the writer stops early.
            if let Some(m) = &self.meter {
                m.add_read(chunk.len() as u64);
            }
            if let Err(e) = out.write_all(&chunk).await {
                return Ok(Err(e));
            }
            n += chunk.len() as u64;
        }
        Ok(Ok(n))
    }
}
