//! The S3 API, on its own listener, over the same namespace, metadata and
//! storage nodes as the Manta API (`docs/s3.md`).
//!
//! Built on `s3s`, which parses S3 requests, checks SigV4 (header and
//! presigned) and renders S3's XML bodies and errors. [`auth`] maps access
//! keys to accounts; [`names`] maps buckets and keys to paths; handlers
//! write and read through the gateway's own paths (`blobs::store`,
//! `blobs::concat`, `Gateway::commit_object`, `blobs::read`), so an object
//! written through one API is an ordinary object of the other, and every
//! guarantee of a Manta PUT/GET holds (durable on every copy before the
//! answer, one meta commit, checksummed reads, bodies streamed).
//! Failures leave through [`error::S3ApiError`], the one S3 mapping.

mod auth;
pub mod error;
mod list;
mod mpu;
pub mod names;
mod ops;

pub use auth::{Principal, generate_key};
pub use mpu::RECORD_HEADER as MPU_RECORD_HEADER;

use crate::Gateway;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::service::{S3Service, S3ServiceBuilder};
use std::future::Future;

/// The `s3s` service answering S3 requests for `gw`.
pub fn service(gw: Gateway) -> S3Service {
    let ns = gw.inner.namespace.clone();
    let mut b = S3ServiceBuilder::new(ops::S3Api { gw });
    b.set_auth(auth::Auth { ns: ns.clone() });
    b.set_access(auth::Access { ns });
    b.build()
}

/// Serves the S3 API on `listener` until `shutdown` resolves, then waits
/// for in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gw: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let s3 = service(gw);
    // Counted with the Manta API's requests (crate::metrics), the S3
    // method as the operation.
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let s3 = s3.clone();
        async move {
            let started = std::time::Instant::now();
            let operation = crate::metrics::s3_operation(req.method());
            let resp = hyper::service::Service::call(&s3, req).await;
            if let Ok(r) = &resp {
                crate::metrics::record_request(
                    operation,
                    r.status(),
                    started.elapsed().as_secs_f64(),
                );
            }
            resp
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, _) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: keep serving.
                        tracing::warn!(error = %e, "S3 listener accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY on an S3 connection");
                }
                let conn = builder.serve_connection(TokioIo::new(tcp), svc.clone());
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "S3 connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    graceful.shutdown().await;
    Ok(())
}
