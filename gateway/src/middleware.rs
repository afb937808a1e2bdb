//! Per-request plumbing that wraps every handler: the request id (echoed
//! from `x-request-id` or freshly made) and the tracing span carrying it, and
//! the headers every response has (§1.6: `Server: Manta`, `x-request-id`,
//! `x-response-time`, `x-server-name`; hyper adds `Date`).
//!
//! Guarantees: never touches the request body (so `100 Continue` stays under
//! the handlers' control); every log line of a request carries its id.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use std::time::Instant;
use tracing::Instrument;

/// The request id of the current request, for handlers that need it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The axum middleware; `server_name` is the `x-server-name` value.
pub async fn request_context(
    State(server_name): State<HeaderValue>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // The id is not unique (mfind shares one, retries reuse one): it is only
    // echoed and logged, never used to de-duplicate.
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        req_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed().as_millis();
    span.in_scope(|| tracing::info!(status = resp.status().as_u16(), ms = elapsed as u64, "done"));
    let h = resp.headers_mut();
    h.insert("server", HeaderValue::from_static("Manta"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    h.insert("x-response-time", HeaderValue::from(elapsed as u64));
    h.insert("x-server-name", server_name);
    resp
}
