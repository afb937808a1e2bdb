//! The client gateways and supervisors use to talk to storage nodes.
//!
//! One [`NodeClient`] per process: it pools connections to all nodes. Calls
//! take the node's base URL (`http://host:port`, as registered in metadata).
//! Timeouts bound connecting and each read, never a whole transfer, so large
//! objects are not cut off while a dead node is still noticed quickly.
//!
//! Guarantee: an [`ObjectStream`] yields exactly the announced number of
//! bytes or ends with an error — a node that dies mid-body, or aborts it on
//! a checksum failure, is never mistaken for a complete object.
//!
//! A node served by this same process can be registered with
//! [`NodeClient::add_local_store`]: reads and writes of its copies then go
//! straight to its [`ObjectStore`] (same range checks, same blake3
//! verification, same durability, same errors) instead of a loopback HTTP
//! round trip, which halves the copies a large GET costs and saves a
//! request per task output in a single-machine deployment.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, RANGE};

use cluster_auth::{ClusterKey, RequestSigner};

use crate::protocol::{
    ByteRange, CORRUPT_COPY, ErrorBody, HEADER_OBJECT_SIZE, InvalidObjectId, NodeStatus, ObjectId,
    ObjectList, PutReceipt, QUERY_BLAKE3, RangeError, VerifyReport, VerifyRequest,
};
use crate::store::{ObjectStore, StoreError};

/// Boxed error type accepted from upload body streams.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Timeouts of a [`NodeClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Limit for establishing a TCP connection to a node. Short, so reads
    /// fail over to the next copy quickly when a node is down.
    pub connect_timeout: Duration,
    /// Limit for any single read from a node (headers or the next body
    /// chunk). Also bounds how long a node may take to fsync and answer.
    pub read_timeout: Duration,
    /// How long replication waits for the slowest node to accept the next
    /// chunk before giving up on it.
    pub stall_timeout: Duration,
    /// Limit for the best-effort deletes after a failed replication.
    pub cleanup_timeout: Duration,
    /// How long [`NodeClient::read_first`] waits for a copy's first byte
    /// before trying the next copy (a node that accepts but hangs).
    pub first_byte_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(60),
            cleanup_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(10),
        }
    }
}

/// Errors talking to one node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The object id is not valid; nothing was sent.
    #[error(transparent)]
    InvalidObjectId(#[from] InvalidObjectId),
    /// The node has no such object (404).
    #[error("object not found on node")]
    NotFound,
    /// The node answered with another error status.
    #[error("node answered {status}: {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The node's error code (`ErrorBody::code`), or empty.
        code: String,
        /// The node's message.
        message: String,
    },
    /// Connecting, sending or receiving failed (node down, connection cut,
    /// timeout, or the node aborted the body, e.g. on a checksum mismatch).
    #[error("transport: {0}")]
    Transport(#[source] reqwest::Error),
    /// The body ended before (or ran past) the announced length.
    #[error("body length mismatch: announced {expected} bytes, got {got}")]
    Length {
        /// Announced byte count.
        expected: u64,
        /// Byte count received.
        got: u64,
    },
    /// The node's answer did not follow the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The node did not answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Reading a copy held by this process failed (I/O error, or the copy
    /// failed its block or blake3 check mid-stream).
    #[error("local copy: {0}")]
    Local(String),
}

impl ClientError {
    /// Whether the error says the node is unreachable or misbehaving, as
    /// opposed to a definite answer about the object (like [`Self::NotFound`]).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Self::Transport(_)
                | Self::Length { .. }
                | Self::Protocol(_)
                | Self::Timeout(_)
                | Self::Local(_)
        )
    }
}

/// A pooled HTTP client for the storage-node protocol. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    pub(crate) opts: ClientOptions,
    request_id: Option<reqwest::header::HeaderValue>,
    /// Signs every request with the cluster credential.
    signer: RequestSigner,
    /// Nodes served by this process, by base URL; shared by all clones.
    local: Arc<RwLock<HashMap<String, Arc<ObjectStore>>>>,
}

impl NodeClient {
    /// Builds a client with `opts` that signs every request with
    /// `cluster_key`.
    pub fn new(opts: ClientOptions, cluster_key: &ClusterKey) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            // Nodes are on the internal network: never route via a proxy.
            .no_proxy()
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Self {
            http,
            opts,
            request_id: None,
            signer: RequestSigner::new(cluster_key),
            local: Arc::default(),
        })
    }

    /// Makes this client and every clone of it read and write the copies
    /// of the node at `node_url` directly in `store` (a node running in
    /// this process) instead of over HTTP.
    pub fn add_local_store(&self, node_url: &str, store: Arc<ObjectStore>) {
        self.local
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node_url.trim_end_matches('/').to_string(), store);
    }

    fn local_store(&self, node_url: &str) -> Option<Arc<ObjectStore>> {
        let local = self.local.read().unwrap_or_else(|p| p.into_inner());
        local.get(node_url.trim_end_matches('/')).cloned()
    }

    /// A handle (sharing this one's connection pool) that tags every
    /// request with `x-request-id: request_id`, so node logs can be matched
    /// with the gateway request that caused them. Ids that are not valid
    /// header values are ignored.
    pub fn with_request_id(&self, request_id: &str) -> NodeClient {
        NodeClient {
            request_id: reqwest::header::HeaderValue::from_str(request_id).ok(),
            ..self.clone()
        }
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        let req = self.http.request(method, url);
        match &self.request_id {
            Some(id) => req.header("x-request-id", id.clone()),
            None => req,
        }
    }

    /// Signs the request `rb` with the cluster credential (over its final
    /// method, path and query) and sends it.
    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let mut req = rb.build().map_err(ClientError::Transport)?;
        let url = req.url();
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let value = self
            .signer
            .header_value(req.method().as_str(), &path_and_query);
        req.headers_mut().insert(cluster_auth::AUTH_HEADER, value);
        self.http.execute(req).await.map_err(ClientError::Transport)
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Streams `body` to the node as object `id` and returns the node's
    /// receipt once the copy is durable. An error item in `body` aborts the
    /// upload, and the node then keeps nothing.
    pub async fn put<S, E>(
        &self,
        node_url: &str,
        id: &str,
        body: S,
    ) -> Result<PutReceipt, ClientError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        if let Some(store) = self.local_store(node_url) {
            let id = ObjectId::parse(id)?;
            let body = body.map_err(Into::<BoxError>::into);
            // The same answers the node's `PUT /objects/{id}` gives.
            return store.write(&id, body).await.map_err(|e| match e {
                StoreError::NoSpace => ClientError::Status {
                    status: 507,
                    code: "NotEnoughSpace".into(),
                    message: e.to_string(),
                },
                StoreError::Body(_) => ClientError::Status {
                    status: 400,
                    code: "UploadAborted".into(),
                    message: e.to_string(),
                },
                e => ClientError::Local(e.to_string()),
            });
        }
        let url = object_url(node_url, id)?;
        let resp = self
            .send(
                self.request(reqwest::Method::PUT, url)
                    .body(reqwest::Body::wrap_stream(body.map_err(Into::into))),
            )
            .await?;
        json_answer(resp).await
    }

    /// Opens object `id` on the node, optionally only `range`. With
    /// `expected_blake3` (hex) and no range, the node verifies the bytes as
    /// it sends them and aborts the body on a mismatch, which this stream
    /// reports as an error.
    pub async fn get(
        &self,
        node_url: &str,
        id: &str,
        range: Option<ByteRange>,
        expected_blake3: Option<&str>,
    ) -> Result<ObjectStream, ClientError> {
        if let Some(store) = self.local_store(node_url) {
            return get_local(&store, id, range, expected_blake3).await;
        }
        let mut req = self.request(reqwest::Method::GET, object_url(node_url, id)?);
        if let Some(hash) = expected_blake3 {
            req = req.query(&[(QUERY_BLAKE3, hash)]);
        }
        if let Some(r) = range {
            req = req.header(RANGE, r.header_value());
        }
        let resp = self.send(req).await?;
        let resp = check_status(resp).await?;
        let expected_status = if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        if resp.status() != expected_status {
            return Err(ClientError::Protocol(format!(
                "unexpected status {}",
                resp.status()
            )));
        }
        let content_length = header_u64(&resp, CONTENT_LENGTH.as_str())?;
        let object_size = header_u64(&resp, HEADER_OBJECT_SIZE)?;
        Ok(ObjectStream::new(
            object_size,
            content_length,
            checked_length(
                resp.bytes_stream().map_err(ClientError::Transport),
                content_length,
            ),
        ))
    }

    /// Size of object `id` on the node, or `None` if the node has no copy.
    pub async fn head(&self, node_url: &str, id: &str) -> Result<Option<u64>, ClientError> {
        let resp = self
            .send(self.request(reqwest::Method::HEAD, object_url(node_url, id)?))
            .await?;
        match check_status(resp).await {
            Ok(resp) => header_u64(&resp, HEADER_OBJECT_SIZE).map(Some),
            Err(ClientError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves object `id` to the node's tombstone area. `Ok(false)` if the
    /// node had no copy (deleting is idempotent for callers like GC).
    pub async fn delete(&self, node_url: &str, id: &str) -> Result<bool, ClientError> {
        let resp = self
            .send(self.request(reqwest::Method::DELETE, object_url(node_url, id)?))
            .await?;
        match check_status(resp).await {
            Ok(_) => Ok(true),
            Err(ClientError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Asks the node to hash its copy of `id` and compare with
    /// `expected_blake3` (hex).
    pub async fn verify(
        &self,
        node_url: &str,
        id: &str,
        expected_blake3: &str,
    ) -> Result<VerifyReport, ClientError> {
        let url = format!("{}/verify", object_url(node_url, id)?);
        let req = self
            .request(reqwest::Method::POST, url)
            .json(&VerifyRequest {
                blake3: expected_blake3.to_owned(),
            });
        let resp = self.send(req).await?;
        json_answer(resp).await
    }

    /// The node's identity and capacity.
    pub async fn status(&self, node_url: &str) -> Result<NodeStatus, ClientError> {
        let req = self.request(reqwest::Method::GET, format!("{}/status", base(node_url)));
        let resp = self.send(req).await?;
        json_answer(resp).await
    }

    /// One page of the ids stored on the node, ascending, strictly after
    /// `after`. An empty page means the end.
    pub async fn list(
        &self,
        node_url: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, ClientError> {
        let mut req = self
            .request(reqwest::Method::GET, format!("{}/objects", base(node_url)))
            .query(&[("limit", limit)]);
        if let Some(after) = after {
            req = req.query(&[("after", after)]);
        }
        let resp = self.send(req).await?;
        Ok(json_answer::<ObjectList>(resp).await?.ids)
    }
}

/// [`NodeClient::get`] from a node's store in this process, answering
/// exactly as the node's `GET /objects/{id}` would.
async fn get_local(
    store: &ObjectStore,
    id: &str,
    range: Option<ByteRange>,
    expected_blake3: Option<&str>,
) -> Result<ObjectStream, ClientError> {
    let id = ObjectId::parse(id)?;
    let expected = expected_blake3
        .map(|hex| {
            blake3::Hash::from_hex(hex).map_err(|_| ClientError::Status {
                status: 400,
                code: "InvalidArgument".into(),
                message: format!(
                    "invalid blake3 hex: {}",
                    hex.chars().take(80).collect::<String>()
                ),
            })
        })
        .transpose()?;
    let obj = store.open_object(&id).await.map_err(|e| match e {
        StoreError::NotFound => ClientError::NotFound,
        e @ StoreError::Corrupt(_) => ClientError::Status {
            status: 500,
            code: CORRUPT_COPY.into(),
            message: e.to_string(),
        },
        e => ClientError::Local(e.to_string()),
    })?;
    let object_size = obj.size();
    // Re-parsed from its header form so that bounds are checked by the
    // same code as on the node.
    let range = range
        .map(|r| {
            ByteRange::parse(&r.header_value(), object_size).map_err(|e| {
                let (status, code) = match e {
                    RangeError::NotSatisfiable { .. } => (416, "RangeNotSatisfiable"),
                    _ => (400, "InvalidRange"),
                };
                ClientError::Status {
                    status,
                    code: code.into(),
                    message: e.to_string(),
                }
            })
        })
        .transpose()?;
    let content_length = range.map_or(object_size, |r| r.len);
    let bytes = obj
        .stream(range, expected)
        .map_err(|e| ClientError::Local(e.to_string()));
    Ok(ObjectStream::new(
        object_size,
        content_length,
        checked_length(bytes, content_length),
    ))
}

/// The bytes of an object (or range) coming from one node.
///
/// Yields exactly [`ObjectStream::content_length`] bytes, or ends with an
/// error.
pub struct ObjectStream {
    /// Size of the whole object on the node.
    pub object_size: u64,
    /// Bytes this stream will yield (the range's length for range reads).
    pub content_length: u64,
    prefix: Option<Bytes>,
    inner: BoxStream<'static, Result<Bytes, ClientError>>,
}

impl std::fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStream")
            .field("object_size", &self.object_size)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

impl ObjectStream {
    pub(crate) fn new(
        object_size: u64,
        content_length: u64,
        inner: impl Stream<Item = Result<Bytes, ClientError>> + Send + 'static,
    ) -> Self {
        Self {
            object_size,
            content_length,
            prefix: None,
            inner: inner.boxed(),
        }
    }

    /// Waits for the first chunk, so that a node failing before it sends any
    /// byte is detected while another copy can still be tried. The chunk is
    /// kept and yielded first.
    pub(crate) async fn prime(&mut self) -> Result<(), ClientError> {
        if self.prefix.is_none() {
            match self.inner.next().await {
                Some(Ok(chunk)) => self.prefix = Some(chunk),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        Ok(())
    }

    /// Reads the whole stream into memory (tests and small objects only).
    pub async fn collect_bytes(self) -> Result<Vec<u8>, ClientError> {
        let parts: Vec<Bytes> = self.try_collect().await?;
        Ok(parts.concat())
    }
}

impl Stream for ObjectStream {
    type Item = Result<Bytes, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(chunk) = self.prefix.take() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        self.inner.poll_next_unpin(cx)
    }
}

/// Ends `inner` with [`ClientError::Length`] unless it yields exactly
/// `expected` bytes. (hyper already refuses short bodies; this keeps the
/// guarantee independent of the transport.)
fn checked_length(
    inner: impl Stream<Item = Result<Bytes, ClientError>> + Send + 'static,
    expected: u64,
) -> impl Stream<Item = Result<Bytes, ClientError>> + Send + 'static {
    let inner = Box::pin(inner.fuse());
    futures::stream::unfold(
        (inner, 0u64, false),
        move |(mut inner, got, done)| async move {
            if done {
                return None;
            }
            match inner.next().await {
                Some(Ok(chunk)) => {
                    let got = got + chunk.len() as u64;
                    if got > expected {
                        Some((
                            Err(ClientError::Length { expected, got }),
                            (inner, got, true),
                        ))
                    } else {
                        Some((Ok(chunk), (inner, got, false)))
                    }
                }
                Some(Err(e)) => Some((Err(e), (inner, got, true))),
                None if got != expected => Some((
                    Err(ClientError::Length { expected, got }),
                    (inner, got, true),
                )),
                None => None,
            }
        },
    )
}

fn base(node_url: &str) -> &str {
    node_url.trim_end_matches('/')
}

fn object_url(node_url: &str, id: &str) -> Result<String, ClientError> {
    let id = ObjectId::parse(id)?;
    Ok(format!("{}/objects/{id}", base(node_url)))
}

fn header_u64(resp: &reqwest::Response, name: &str) -> Result<u64, ClientError> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ClientError::Protocol(format!("missing or bad {name} header")))
}

/// Turns non-2xx answers into errors, keeping the node's code and message.
async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    if status == StatusCode::NOT_FOUND {
        return Err(ClientError::NotFound);
    }
    // A HEAD answer has no body; a broken body still leaves the status.
    let body = resp.bytes().await.unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => (e.code, e.message),
        Err(_) => (
            String::new(),
            String::from_utf8_lossy(&body).chars().take(200).collect(),
        ),
    };
    Err(ClientError::Status {
        status: status.as_u16(),
        code,
        message,
    })
}

async fn json_answer<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
) -> Result<T, ClientError> {
    let resp = check_status(resp).await?;
    let body = resp.bytes().await.map_err(ClientError::Transport)?;
    serde_json::from_slice(&body)
        .map_err(|e| ClientError::Protocol(format!("bad JSON answer: {e}")))
}
