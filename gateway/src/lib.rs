//! The public HTTP API of Tidepool: Manta v1's object, directory and auth
//! API (`shared/spec/manta-object-api.md`) and its jobs API
//! (`shared/spec/manta-jobs-api.md`) on axum.
//!
//! Requests are parsed into typed values first ([`path`], [`query`],
//! [`headers`], [`endpoint`]), then handled; every failure leaves through
//! [`error::ApiError`], the one place mapping errors to Manta's status codes
//! and JSON bodies. The gateway keeps no state of its own: metadata lives in
//! `meta`, bytes on storage nodes.
//!
//! Guarantees: a `2xx` to a write means every copy is durable and the
//! metadata is committed; a failure before the commit leaves nothing
//! visible. `100 Continue` is only sent once all checks of a PUT passed.
//!
//! Wiring (what the `tidepool` binary does):
//! ```no_run
//! # async fn demo(ns: std::sync::Arc<meta::namespace::Namespace>) -> Result<(), Box<dyn std::error::Error>> {
//! // Node requests are signed with the deployment's cluster credential.
//! let key = storage_node::ClusterKey::load(std::path::Path::new("/var/lib/tidepool/cluster.key"))?;
//! let nodes = storage_node::NodeClient::new(storage_node::ClientOptions::default(), &key)?;
//! let gw = gateway::Gateway::new(gateway::GatewayConfig::new(ns, nodes));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! gateway::serve(listener, gw, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! [`serve_tls`] serves the same router over HTTPS ([`tls`]); anything
//! beyond loopback should use it (`docs/security.md`).

pub mod access;
mod blobs;
pub mod console;
pub mod disposition;
pub mod endpoint;
pub mod error;
pub mod format;
mod handlers;
pub mod headers;
pub mod medusa;
pub mod metrics;
pub mod middleware;
pub mod mime;
pub mod path;
pub mod query;
pub mod roles;
pub mod s3;
pub mod tls;

pub use tls::{ServerTls, TlsError};

use axum::Router;
use endpoint::ParseLimits;
use http::HeaderValue;
use meta::namespace::Namespace;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use storage_node::NodeClient;

/// A source of "now" for signature clock-skew checks (tests pin it).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Everything the gateway needs; build with [`GatewayConfig::new`] and
/// adjust the public fields.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The metadata namespace (accounts, keys, entries, node registrations).
    pub namespace: Arc<Namespace>,
    /// The pooled storage-node client (replicated writes, failover reads).
    pub node_client: NodeClient,
    /// Copies written when the request names none (spec: 2).
    pub default_durability: u32,
    /// Largest accepted `durability-level` (spec: configurable; docs say 6).
    pub max_durability: u32,
    /// Largest accepted upload in bytes (`413 MaxContentLengthExceeded`
    /// beyond); a `max-content-length` header can only lower it.
    pub max_content_length: u64,
    /// The cluster's node health rule (heartbeat timeout): a node it
    /// calls down takes no new copies and is tried last for reads.
    pub health: membership::HealthRule,
    /// An upload whose client sends nothing for this long fails with
    /// `408 UploadTimeout` (muskie: 45 s).
    pub upload_idle_timeout: Duration,
    /// `x-server-name` on every response.
    pub server_name: String,
    /// "Now" for authentication; the system clock by default.
    pub clock: Clock,
    /// The secret `POST /:login/tokens` tokens are MACed with. Random per
    /// process by default; [`GatewayConfig::tokens_from_cluster_key`]
    /// makes every gateway of a deployment accept the same tokens.
    pub token_key: auth::token::TokenKey,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("default_durability", &self.default_durability)
            .field("max_durability", &self.max_durability)
            .field("max_content_length", &self.max_content_length)
            .field("health", &self.health)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl GatewayConfig {
    /// [`GatewayConfig::new`] with a storage-node client using default
    /// timeouts, signing node requests with `cluster_key`.
    pub fn with_default_client(
        namespace: Arc<Namespace>,
        cluster_key: &storage_node::ClusterKey,
    ) -> Result<GatewayConfig, storage_node::ClientError> {
        let client = NodeClient::new(storage_node::ClientOptions::default(), cluster_key)?;
        Ok(GatewayConfig::new(namespace, client))
    }

    /// Defaults: durability 2 (max 6), 5 GiB uploads (muskie's cap), node
    /// heartbeats fresh for 30 s.
    pub fn new(namespace: Arc<Namespace>, node_client: NodeClient) -> GatewayConfig {
        GatewayConfig {
            namespace,
            node_client,
            default_durability: 2,
            max_durability: 6,
            max_content_length: 5 << 30,
            health: membership::HealthRule::default(),
            upload_idle_timeout: Duration::from_secs(45),
            server_name: "tidepool".to_owned(),
            clock: Arc::new(SystemTime::now),
            token_key: auth::token::TokenKey::new(
                storage_node::ClusterKey::generate().derive(TOKEN_KEY_LABEL),
            ),
        }
    }

    /// Derives the token secret from the deployment's cluster secret.
    pub fn tokens_from_cluster_key(&mut self, key: &storage_node::ClusterKey) {
        self.token_key = auth::token::TokenKey::new(key.derive(TOKEN_KEY_LABEL));
    }
}

/// The cluster-key derivation label of the auth-token secret.
const TOKEN_KEY_LABEL: &str = "gateway auth tokens";

pub(crate) struct Inner {
    pub namespace: Arc<Namespace>,
    pub limits: ParseLimits,
    pub health: membership::HealthRule,
    pub upload_idle_timeout: Duration,
    pub server_name: HeaderValue,
    pub clock: Clock,
    pub nodes: NodeClient,
    pub suspects: membership::Suspects,
    pub read_view: blobs::ReadView,
    /// The job tables (same metadata store as the namespace).
    pub jobs: meta::jobs::JobStore,
    pub token_key: auth::token::TokenKey,
    /// mlogin's session pairing table ([`medusa`]).
    pub medusa: Arc<medusa::Reflector>,
}

/// The gateway: cheap to clone, shares one configuration.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(cfg: GatewayConfig) -> Gateway {
        let server_name = HeaderValue::from_str(&cfg.server_name)
            .unwrap_or_else(|_| HeaderValue::from_static("tidepool"));
        Gateway {
            inner: Arc::new(Inner {
                nodes: cfg.node_client,
                suspects: membership::Suspects::default(),
                read_view: blobs::ReadView::default(),
                jobs: meta::jobs::JobStore::new(cfg.namespace.kv().clone()),
                namespace: cfg.namespace,
                limits: ParseLimits {
                    default_durability: cfg.default_durability,
                    max_durability: cfg.max_durability,
                    max_content_length: cfg.max_content_length,
                },
                health: cfg.health,
                upload_idle_timeout: cfg.upload_idle_timeout,
                server_name,
                clock: cfg.clock,
                token_key: cfg.token_key,
                medusa: Arc::default(),
            }),
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        (self.inner.clock)()
    }

    /// The axum router serving the whole API (every Manta path goes
    /// through one handler: Manta paths are not a fixed route table) and
    /// the web console under `/console/` ([`console`]).
    pub fn router(&self) -> Router {
        let name = self.inner.server_name.clone();
        Router::new()
            .merge(console::routes())
            .fallback(handlers::handle)
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                name,
                middleware::request_context,
            ))
    }
}

/// Serves the API over HTTPS on `listener` until `shutdown` resolves, then
/// drains in-flight requests. See [`tls`] for what a failed handshake or a
/// plain-HTTP client costs (only its own connection).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: ServerTls,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tls::TlsListener::new(listener, tls)?;
    axum::serve(
        listener,
        gateway
            .router()
            .into_make_service_with_connect_info::<roles::Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves the API on `listener` until `shutdown` resolves, then drains
/// in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Responses are written in several small pieces (headers, then body
    // chunks); with Nagle on, a small response waits for the client's
    // delayed ACK (tens of ms per request on loopback).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY on an accepted connection");
        }
    });
    // The peer address is the `sourceip` of access-control conditions.
    axum::serve(
        listener,
        gateway
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
