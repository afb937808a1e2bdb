//! The gateway's Prometheus metrics, recorded through the `metrics` facade:
//! nothing is kept unless the binary installed a recorder (the `tidepool`
//! binary does, and renders it on its admin listener, never on the public
//! one).
//!
//! * per request, labelled by `operation` (what a Manta API request was
//!   parsed into, e.g. `putobject`, `getstorage`; `unparsed` when it failed
//!   before that, e.g. a bad signature; `s3get`, `s3put`, ... by method on
//!   the S3 listener) and `status`:
//!   `tidepool_gateway_requests_total` and
//!   `tidepool_gateway_request_duration_seconds` (a histogram: from the
//!   request's arrival to its response's headers, as `x-response-time`;
//!   a streamed body's transfer is counted in bytes, not in time);
//! * `tidepool_gateway_requests_in_flight`;
//! * `tidepool_gateway_received_bytes_total` and
//!   `tidepool_gateway_sent_bytes_total`: body bytes as they stream (Manta
//!   API);
//! * from the cluster view when scraped ([`Gateway::record_cluster_metrics`]):
//!   `tidepool_cluster_node_condition{node,condition}` (1 for the node's
//!   condition, 0 for the others), `tidepool_cluster_nodes{condition}`,
//!   `tidepool_cluster_node_capacity_bytes{node}` and
//!   `..._used_bytes{node}` as the nodes' heartbeats reported them, and the
//!   background workers' records: `tidepool_worker_passes{scope,worker}`,
//!   `tidepool_worker_state{scope,worker,state}` and
//!   `tidepool_worker_report_age_seconds{scope,worker}`.
//!
//! Guarantees: recording costs no I/O and never touches a request's body
//! beyond counting the bytes that pass; label values come from fixed sets
//! (operations, status codes, node and worker names), never from paths.

use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Buf;
use http::StatusCode;
use http_body::{Frame, SizeHint};

use crate::Gateway;

/// Requests answered, by operation and status.
pub const REQUESTS: &str = "tidepool_gateway_requests_total";
/// Request latency histogram, by operation and status.
pub const REQUEST_SECONDS: &str = "tidepool_gateway_request_duration_seconds";
/// Requests being handled now.
pub const IN_FLIGHT: &str = "tidepool_gateway_requests_in_flight";
/// Request body bytes received.
pub const RECEIVED_BYTES: &str = "tidepool_gateway_received_bytes_total";
/// Response body bytes sent.
pub const SENT_BYTES: &str = "tidepool_gateway_sent_bytes_total";

/// The operation a request was parsed into, put in the response's
/// extensions by the handler for the middleware to label it with.
#[derive(Debug, Clone, Copy)]
pub struct Operation(pub &'static str);

/// The label of a request that failed before it was parsed.
pub const UNPARSED: &str = "unparsed";

/// The operation label of an S3 API request: its method (`s3get`,
/// `s3put`, ...); the S3 listener does not parse requests itself.
pub(crate) fn s3_operation(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "s3get",
        http::Method::PUT => "s3put",
        http::Method::HEAD => "s3head",
        http::Method::DELETE => "s3delete",
        http::Method::POST => "s3post",
        _ => "s3other",
    }
}

/// `"100"` ..= `"999"`, made once, so a status label costs no allocation.
fn status_label(status: StatusCode) -> &'static str {
    static LABELS: LazyLock<Vec<String>> =
        LazyLock::new(|| (100..1000).map(|c: u16| c.to_string()).collect());
    LABELS
        .get(usize::from(status.as_u16()).saturating_sub(100))
        .map_or("other", String::as_str)
}

/// Records one answered request.
pub(crate) fn record_request(operation: &'static str, status: StatusCode, seconds: f64) {
    let status = status_label(status);
    metrics::counter!(REQUESTS, "operation" => operation, "status" => status).increment(1);
    metrics::histogram!(REQUEST_SECONDS, "operation" => operation, "status" => status)
        .record(seconds);
}

/// Counts a request as in flight until dropped.
pub(crate) struct InFlight(metrics::Gauge);

impl InFlight {
    pub(crate) fn start() -> InFlight {
        let g = metrics::gauge!(IN_FLIGHT);
        g.increment(1.0);
        InFlight(g)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// A body that adds the bytes of each data frame to a counter as it passes
/// (request bodies as the handler reads them, responses as hyper sends
/// them); size hints and end of stream are the inner body's.
pub(crate) struct Counted {
    inner: Body,
    counter: metrics::Counter,
}

impl Counted {
    /// `body`, counted into `counter` (e.g. [`RECEIVED_BYTES`]).
    pub(crate) fn wrap(body: Body, counter: &'static str) -> Body {
        Body::new(Counted {
            inner: body,
            counter: metrics::counter!(counter),
        })
    }
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter
                .increment(u64::try_from(data.remaining()).unwrap_or(u64::MAX));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// The conditions a node can be in, for zeroing the ones it is not in.
const CONDITIONS: [membership::Condition; 5] = [
    membership::Condition::Up,
    membership::Condition::Draining,
    membership::Condition::Lost,
    membership::Condition::Silent,
    membership::Condition::Suspect,
];

/// Worker states of `meta`'s worker records.
const WORKER_STATES: [&str; 4] = ["idle", "running", "paused", "failing"];

impl Gateway {
    /// Sets the cluster gauges (nodes' condition and capacity, background
    /// workers' progress) from one read of the cluster view and of the
    /// worker records, as this gateway sees them (its suspects included).
    /// Called when metrics are scraped; an unreachable metadata tier
    /// leaves the last values in place and is returned.
    pub async fn record_cluster_metrics(&self) -> Result<(), meta::namespace::NamespaceError> {
        let ns = &self.inner.namespace;
        let now = self.now();
        let now_ms = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let view = membership::ClusterView::load(
            ns,
            self.inner.health,
            Some(&self.inner.suspects),
            now_ms,
        )
        .await?;
        let mut counts = [0u32; CONDITIONS.len()];
        for n in view.nodes() {
            let id = n.record.id.to_string();
            for (i, c) in CONDITIONS.iter().enumerate() {
                let here = *c == n.condition;
                counts[i] += u32::from(here);
                metrics::gauge!("tidepool_cluster_node_condition", "node" => id.clone(), "condition" => c.as_str())
                    .set(if here { 1.0 } else { 0.0 });
            }
            metrics::gauge!("tidepool_cluster_node_capacity_bytes", "node" => id.clone())
                .set(n.record.capacity_total as f64);
            metrics::gauge!("tidepool_cluster_node_used_bytes", "node" => id)
                .set(n.record.capacity_used as f64);
        }
        for (c, count) in CONDITIONS.iter().zip(counts) {
            metrics::gauge!("tidepool_cluster_nodes", "condition" => c.as_str())
                .set(f64::from(count));
        }
        for w in ns.list_workers().await? {
            let (scope, name) = (w.scope, w.name);
            metrics::gauge!("tidepool_worker_passes", "scope" => scope.clone(), "worker" => name.clone())
                .set(w.passes as f64);
            let age_ms = now_ms.saturating_sub(w.updated_ms);
            metrics::gauge!("tidepool_worker_report_age_seconds", "scope" => scope.clone(), "worker" => name.clone())
                .set(age_ms as f64 / 1000.0);
            for s in WORKER_STATES {
                metrics::gauge!("tidepool_worker_state", "scope" => scope.clone(), "worker" => name.clone(), "state" => s)
                    .set(if w.state == s { 1.0 } else { 0.0 });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_labels_are_the_codes() {
        assert_eq!(status_label(StatusCode::OK), "200");
        assert_eq!(status_label(StatusCode::NOT_FOUND), "404");
        assert_eq!(
            status_label(StatusCode::from_u16(999).unwrap()),
            "999",
            "the last code has a label too"
        );
    }
}
