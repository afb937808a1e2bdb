//! The storage node's HTTP service (internal protocol, not the public API).
//!
//! Routes:
//!
//! | route | answer |
//! | --- | --- |
//! | `PUT /objects/{id}` | streamed body stored durably → [`PutReceipt`] |
//! | `GET /objects/{id}` (`Range`, `?blake3=`) | the bytes (200/206) |
//! | `HEAD /objects/{id}` | size in `Content-Length` and `x-object-size` |
//! | `DELETE /objects/{id}` | 204, copy moved to the tombstone area |
//! | `POST /objects/{id}/verify` | [`VerifyRequest`] → [`VerifyReport`] |
//! | `GET /objects?after=&limit=` | [`ObjectList`] |
//! | `GET /status` | [`NodeStatus`] |
//!
//! Every request, to these routes and to any merged in by
//! [`NodeServer::serve_with`] (the compute agent's), must carry the cluster
//! credential's signature ([`cluster_auth::request`]): it is checked in the
//! outermost layer, before any handler runs or any body byte is read, and a
//! request without a valid, fresh, never-used signature gets `401
//! {"code":"NotAuthenticated"}` and touches nothing. The port must still
//! never be public: see `docs/internal-auth.md`.
//!
//! Errors are `{"code","message"}` bodies ([`ErrorBody`]) with stable codes.
//! Durability and integrity guarantees are those of [`crate::store`]; in
//! particular a GET whose file fails its blake3 check is aborted mid-body
//! (the connection is cut), never completed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use cluster_auth::{AuthError, ClusterKey, RequestVerifier};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::protocol::{
    ByteRange, CORRUPT_COPY, ErrorBody, HEADER_OBJECT_SIZE, NodeStatus, ObjectId, ObjectList,
    PutReceipt, RangeError, VerifyReport, VerifyRequest,
};
use crate::store::{ObjectStore, StoreError};

/// Default and maximum page size of `GET /objects`.
const LIST_DEFAULT: usize = 1000;
const LIST_MAX: usize = 10_000;

/// How to run one storage node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Directory holding `objects/`, `tmp/` and `tombstone/`.
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// This node's id, as registered in metadata.
    pub node_id: String,
    /// This node's availability zone.
    pub az: String,
    /// The cluster credential every request must be signed with.
    pub cluster_key: ClusterKey,
}

/// Identity a node reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// Node id.
    pub node_id: String,
    /// Availability zone.
    pub az: String,
}

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The data directory could not be prepared.
    #[error("opening data directory: {0}")]
    Store(#[from] StoreError),
    /// Binding or serving the socket failed.
    #[error("{op}: {source}")]
    Io {
        /// What failed.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// A bound, not yet serving, storage node.
#[derive(Debug)]
pub struct NodeServer {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    store: Arc<ObjectStore>,
    identity: NodeIdentity,
    verifier: Arc<RequestVerifier>,
}

impl NodeServer {
    /// Prepares the data directory (cleaning interrupted uploads) and binds
    /// the listen address. Serving starts with [`NodeServer::serve`].
    pub async fn bind(config: NodeConfig) -> Result<Self, ServerError> {
        let store = Arc::new(ObjectStore::open(&config.data_dir).await?);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Io { op: "bind", source })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Io {
            op: "local_addr",
            source,
        })?;
        Ok(Self {
            listener,
            addr,
            store,
            identity: NodeIdentity {
                node_id: config.node_id,
                az: config.az,
            },
            verifier: Arc::new(RequestVerifier::new(&config.cluster_key)),
        })
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of this node, `http://ip:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The node's object store (e.g. for the compute agent or heartbeats).
    pub fn store(&self) -> Arc<ObjectStore> {
        self.store.clone()
    }

    /// The node's identity.
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// Serves [`router`] until `shutdown` is cancelled, then finishes the
    /// requests in flight.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), ServerError> {
        let app = router(self.store.clone(), self.identity.clone());
        self.serve_with(app, shutdown).await
    }

    /// Like [`NodeServer::serve`] but with a caller-extended router (e.g.
    /// the node's router merged with the compute agent's routes). Every
    /// route of `app` is behind the cluster credential check.
    pub async fn serve_with(
        self,
        app: Router,
        shutdown: CancellationToken,
    ) -> Result<(), ServerError> {
        tracing::info!(addr = %self.addr, node = %self.identity.node_id, "storage node serving");
        use axum::serve::ListenerExt;
        // Small answers (PUT receipts, HEADs) must not wait on Nagle +
        // delayed ACK; see `gateway::serve`.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY on an accepted connection");
            }
        });
        let app = app.layer(axum::middleware::from_fn_with_state(
            self.verifier.clone(),
            require_cluster_auth,
        ));
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(|source| ServerError::Io {
                op: "serve",
                source,
            })
    }
}

#[derive(Clone)]
struct AppState {
    store: Arc<ObjectStore>,
    identity: Arc<NodeIdentity>,
}

/// The node's routes over `store`.
pub fn router(store: Arc<ObjectStore>, identity: NodeIdentity) -> Router {
    let state = AppState {
        store,
        identity: Arc::new(identity),
    };
    Router::new()
        .route(
            "/objects/{id}",
            put(put_object)
                .get(get_object)
                .head(head_object)
                .delete(delete_object),
        )
        .route("/objects/{id}/verify", post(verify_object))
        .route("/objects", get(list_objects))
        .route("/status", get(status))
        .layer(axum::middleware::from_fn(trace_request))
        .with_state(state)
}

/// Refuses, before any handler runs and before any body byte is read,
/// every request that does not carry a valid, fresh, unused signature made
/// with the cluster credential.
async fn require_cluster_auth(
    State(verifier): State<Arc<RequestVerifier>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    match verifier.verify(req.method().as_str(), path_and_query, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!(
                method = %req.method(),
                path = %req.uri().path(),
                error = %e,
                "refused an unauthenticated internal request"
            );
            let (status, code) = match e {
                AuthError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
                _ => (StatusCode::UNAUTHORIZED, NOT_AUTHENTICATED),
            };
            let body = ErrorBody {
                code: code.to_owned(),
                message: e.to_string(),
            };
            (status, Json(body)).into_response()
        }
    }
}

/// The error code of a request refused for lack of a valid cluster
/// signature.
pub const NOT_AUTHENTICATED: &str = "NotAuthenticated";

/// Header correlating a node request with the gateway request behind it.
const REQUEST_ID: &str = "x-request-id";

/// Runs each request in a span carrying its request id (the caller's
/// `x-request-id`, or a fresh one), so every log line of a request can be
/// found together, and echoes the id in the answer.
async fn trace_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument as _;
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "node_request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
    );
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    span.in_scope(|| {
        tracing::debug!(
            status = resp.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
    resp
}

/// Everything a handler can fail with, mapped to a status and code once.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    InvalidId(#[from] crate::protocol::InvalidObjectId),
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("invalid blake3 hex: {0}")]
    InvalidHash(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Store(StoreError::NotFound) => (StatusCode::NOT_FOUND, "ObjectNotFound"),
            ApiError::Store(StoreError::Body(_)) => (StatusCode::BAD_REQUEST, "UploadAborted"),
            ApiError::Store(StoreError::NoSpace) => {
                (StatusCode::INSUFFICIENT_STORAGE, "NotEnoughSpace")
            }
            ApiError::Store(StoreError::Corrupt(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, CORRUPT_COPY)
            }
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
            ApiError::InvalidId(_) => (StatusCode::BAD_REQUEST, "InvalidObjectId"),
            ApiError::Range(RangeError::NotSatisfiable { .. }) => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "RangeNotSatisfiable")
            }
            ApiError::Range(_) => (StatusCode::BAD_REQUEST, "InvalidRange"),
            ApiError::InvalidHash(_) => (StatusCode::BAD_REQUEST, "InvalidArgument"),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "storage node request failed");
        } else {
            tracing::debug!(error = %self, "storage node request rejected");
        }
        let body = ErrorBody {
            code: code.to_owned(),
            message: self.to_string(),
        };
        let mut resp = (status, Json(body)).into_response();
        if let ApiError::Range(RangeError::NotSatisfiable { size }) = &self
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        resp
    }
}

fn parse_hash(hex: &str) -> Result<blake3::Hash, ApiError> {
    blake3::Hash::from_hex(hex).map_err(|_| ApiError::InvalidHash(hex.chars().take(80).collect()))
}

async fn put_object(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<PutReceipt>, ApiError> {
    let id = ObjectId::parse(&id)?;
    let receipt = st.store.write(&id, body.into_data_stream()).await?;
    tracing::debug!(object = %id, size = receipt.size, "stored object");
    Ok(Json(receipt))
}

#[derive(Debug, Deserialize)]
struct GetQuery {
    blake3: Option<String>,
}

async fn get_object(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<GetQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = ObjectId::parse(&id)?;
    let expected = q.blake3.as_deref().map(parse_hash).transpose()?;
    let obj = st.store.open_object(&id).await?;
    let size = obj.size();
    let range = match headers.get(header::RANGE) {
        Some(v) => Some(ByteRange::parse(
            v.to_str()
                .map_err(|_| RangeError::Malformed("non-ASCII".into()))?,
            size,
        )?),
        None => None,
    };
    let body = Body::from_stream(obj.stream(range, expected));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(HEADER_OBJECT_SIZE, HeaderValue::from(size));
    match range {
        Some(r) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.len));
            if let Ok(v) =
                HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end_inclusive()))
            {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        None => {
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
    }
    Ok(resp)
}

async fn head_object(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = ObjectId::parse(&id)?;
    let size = st.store.size(&id).await?;
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(HEADER_OBJECT_SIZE, HeaderValue::from(size));
    Ok(resp)
}

async fn delete_object(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ObjectId::parse(&id)?;
    st.store.delete(&id).await?;
    tracing::debug!(object = %id, "moved object to tombstone");
    Ok(StatusCode::NO_CONTENT)
}

async fn verify_object(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<VerifyRequest>,
) -> Result<Json<VerifyReport>, ApiError> {
    let id = ObjectId::parse(&id)?;
    let expected = parse_hash(&req.blake3)?;
    let report = st.store.verify(&id, expected).await?;
    if !report.matches {
        tracing::warn!(object = %id, actual = %report.blake3, "object fails verification");
    }
    Ok(Json(report))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

async fn list_objects(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<ObjectList>, ApiError> {
    let limit = q.limit.unwrap_or(LIST_DEFAULT).clamp(1, LIST_MAX);
    let ids = st.store.list(q.after, limit).await?;
    Ok(Json(ObjectList { ids }))
}

async fn status(State(st): State<AppState>) -> Result<Json<NodeStatus>, ApiError> {
    let capacity = st.store.capacity().await?;
    Ok(Json(NodeStatus {
        node_id: st.identity.node_id.clone(),
        az: st.identity.az.clone(),
        capacity,
    }))
}
