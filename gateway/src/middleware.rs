//! Per-request plumbing that wraps every handler: the request id (echoed
//! from `x-request-id` or freshly made) and the tracing span carrying it, and
//! the headers every response has (§1.6: `Server: Manta`, `x-request-id`,
//! `x-response-time`, `x-server-name`; hyper adds `Date`).
//!
//! It also records the request's metrics ([`crate::metrics`]): count and
//! latency by operation and status, bytes in and out.
//!
//! Guarantees: never reads the request body (so `100 Continue` stays under
//! the handlers' control: the body is only wrapped to count its bytes as
//! the handler reads them); every log line of a request carries its id.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use std::time::Instant;
use tracing::Instrument;

/// The request id of the current request, for handlers that need it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

tokio::task_local! {
    /// The id of the request this task is answering, so an error body can
    /// name it wherever the error is rendered (see [`current_request_id`]).
    static CURRENT: std::sync::Arc<str>;
}

/// The id of the request being answered, when called from inside a
/// request's handler (`None` elsewhere, e.g. in unit tests).
pub fn current_request_id() -> Option<std::sync::Arc<str>> {
    CURRENT.try_with(|id| id.clone()).ok()
}

/// The axum middleware; `server_name` is the `x-server-name` value.
pub async fn request_context(
    State(server_name): State<HeaderValue>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let _in_flight = crate::metrics::InFlight::start();
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
    let req = req.map(|b| crate::metrics::Counted::wrap(b, crate::metrics::RECEIVED_BYTES));
    let span = tracing::info_span!(
        "request",
        req_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let resp = CURRENT
        .scope(id.as_str().into(), next.run(req).instrument(span.clone()))
        .await;
    let took = started.elapsed();
    let elapsed = took.as_millis();
    let operation = resp
        .extensions()
        .get::<crate::metrics::Operation>()
        .map_or(crate::metrics::UNPARSED, |o| o.0);
    crate::metrics::record_request(operation, resp.status(), took.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = resp.status().as_u16(),
            ms = elapsed as u64,
            operation,
            "done"
        )
    });
    let mut resp = resp.map(|b| crate::metrics::Counted::wrap(b, crate::metrics::SENT_BYTES));
    let h = resp.headers_mut();
    h.insert("server", HeaderValue::from_static("Manta"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    h.insert("x-response-time", HeaderValue::from(elapsed as u64));
    h.insert("x-server-name", server_name);
    resp
}
