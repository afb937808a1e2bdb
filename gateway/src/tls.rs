//! HTTPS for the public listener: rustls (ring provider) over the same
//! router as plain HTTP.
//!
//! Guarantees:
//! - Certificate and key are read and checked at startup
//!   ([`ServerTls::from_pem_files`]); a missing, unreadable, empty or
//!   mismatched file is a [`TlsError`] naming the file, never a panic.
//! - A connection costs only itself: handshakes run on their own tasks,
//!   bounded in number ([`MAX_PENDING_HANDSHAKES`]) and in time
//!   ([`HANDSHAKE_TIMEOUT`]), so a client that stalls, sends garbage or fails
//!   its handshake never delays another client's accept, and an error is
//!   logged at debug level and the socket dropped.
//! - A client that speaks plain HTTP to the TLS port gets a plain
//!   `400 BadRequest` with Manta's JSON error body saying to use `https://`,
//!   then the connection is closed; nothing of it reaches the API.
//! - Only HTTP/1.1 is offered over ALPN (what Manta's clients speak).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A handshake not finished within this is abandoned.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel's
/// accept queue until one finishes or times out.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;
/// Largest plain-HTTP request head read before answering it with a 400.
const MAX_PLAIN_HEAD: usize = 16 * 1024;

/// Why TLS could not be set up (startup only).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("TLS certificate file {path}: {source}")]
    ReadCert { path: PathBuf, source: io::Error },
    #[error("TLS key file {path}: {source}")]
    ReadKey { path: PathBuf, source: io::Error },
    #[error("TLS certificate file {path}: {detail}")]
    BadCert { path: PathBuf, detail: String },
    #[error("TLS key file {path}: {detail}")]
    BadKey { path: PathBuf, detail: String },
    #[error("TLS certificate {cert} and key {key} cannot be used together: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// A checked server configuration, ready to accept connections.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1) and checks that they belong together.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let cert_pem = std::fs::read(cert).map_err(|source| TlsError::ReadCert {
            path: cert.to_owned(),
            source,
        })?;
        let key_pem = std::fs::read(key).map_err(|source| TlsError::ReadKey {
            path: key.to_owned(),
            source,
        })?;
        Self::from_pem(&cert_pem, &key_pem, cert, key)
    }

    /// [`ServerTls::from_pem_files`] on bytes already read; `cert_name` and
    /// `key_name` only label errors.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_name: &Path,
        key_name: &Path,
    ) -> Result<ServerTls, TlsError> {
        let bad_cert = |detail: String| TlsError::BadCert {
            path: cert_name.to_owned(),
            detail,
        };
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_cert(format!("not valid PEM: {e}")))?;
        if chain.is_empty() {
            return Err(bad_cert("no CERTIFICATE block found".to_owned()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::BadKey {
            path: key_name.to_owned(),
            detail: format!("no usable PEM private key ({e})"),
        })?;
        let config_error = |source| TlsError::Config {
            cert: cert_name.to_owned(),
            key: key_name.to_owned(),
            source,
        };
        // An explicit provider: the process-wide default would panic if
        // another crate in the build enabled a second one. ring, not
        // aws-lc-rs: it is already built for the rest of the workspace and
        // needs no C toolchain beyond cc. rustls deprecates it for lacking
        // post-quantum key exchange (X25519MLKEM768); switching to
        // `aws_lc_rs::default_provider()` is this one line plus the feature.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(config_error)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// An axum listener that hands out finished TLS connections. Accepting and
/// handshaking run on a background task (aborted when this is dropped).
pub(crate) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor_task: JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, tls: ServerTls) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor_task = tokio::spawn(accept_loop(listener, tls.acceptor, tx));
        Ok(TlsListener {
            local,
            ready,
            acceptor_task,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends when every sender is gone, which
            // happens when it is aborted (we are being dropped): nothing
            // more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of descriptors and the like: back off instead of
                // spinning (as axum's own listener does).
                tracing::warn!(error = %e, "accepting a TLS connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Responses are written in several small pieces; with Nagle on, a
        // small response waits for the client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY on an accepted connection");
        }
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, tcp)).await {
                Ok(Ok(Some(tls))) => {
                    // Dropped if the server is shutting down.
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Ok(None)) => {
                    tracing::debug!(%peer, "plain HTTP on the TLS port answered with 400");
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Whether the first byte of a connection opens a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The handshake, or `None` when the client spoke plain HTTP and was told so.
async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
) -> io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before any byte",
        ));
    }
    if first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_uppercase() {
        answer_plain_http(tcp).await?;
        return Ok(None);
    }
    acceptor.accept(tcp).await.map(Some)
}

/// Reads the request head (bounded) so the client sees the answer rather
/// than a reset, then answers 400 with Manta's error body and closes.
async fn answer_plain_http(mut tcp: TcpStream) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while head.len() < MAX_PLAIN_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = r#"{"code":"BadRequest","message":"this port speaks HTTPS: use an https:// URL"}"#;
    let resp = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(resp.as_bytes()).await?;
    tcp.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (c.cert.pem(), c.key_pair.serialize_pem())
    }

    fn load(cert: &str, key: &str) -> Result<ServerTls, TlsError> {
        ServerTls::from_pem(
            cert.as_bytes(),
            key.as_bytes(),
            Path::new("cert.pem"),
            Path::new("key.pem"),
        )
    }

    #[test]
    fn a_matching_pair_loads() {
        let (cert, key) = self_signed();
        load(&cert, &key).unwrap();
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let (cert, key) = self_signed();
        let (_, other_key) = self_signed();
        let err = load("", &key).err().unwrap();
        assert!(matches!(err, TlsError::BadCert { .. }), "{err}");
        assert!(err.to_string().contains("cert.pem"), "{err}");
        let err = load("garbage", &key).err().unwrap();
        assert!(matches!(err, TlsError::BadCert { .. }), "{err}");
        let err = load(&cert, "").err().unwrap();
        assert!(matches!(err, TlsError::BadKey { .. }), "{err}");
        // The key where the certificate should be, and the other way round.
        let err = load(&key, &key).err().unwrap();
        assert!(matches!(err, TlsError::BadCert { .. }), "{err}");
        let err = load(&cert, &cert).err().unwrap();
        assert!(matches!(err, TlsError::BadKey { .. }), "{err}");
        let err = load(&cert, &other_key).err().unwrap();
        assert!(matches!(err, TlsError::Config { .. }), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = ServerTls::from_pem_files(&dir.path().join("nope"), &dir.path().join("k"))
            .err()
            .unwrap();
        assert!(matches!(err, TlsError::ReadCert { .. }), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
