//! The admin listener of `tidepool up`, `tidepool node` and `tidepool
//! supervisor` (`--admin-listen ADDR`, loopback with a free port by
//! default): `GET /metrics` in Prometheus' text format and `GET /healthz`.
//! It is a listener of its own, never a route of the public gateway, and
//! it is unauthenticated: keep it on loopback or a private network.
//!
//! The metrics are what the library crates record through the `metrics`
//! facade (gateway requests and bytes, compute tasks and queues, node
//! capacity), plus, in a process with a gateway, the cluster view and the
//! background workers' records, read from metadata when scraped. See
//! `docs/metrics.md` for the list.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Clone, Debug)]
pub struct AdminListenArgs {
    /// Serve Prometheus metrics (`/metrics`) and `/healthz` on this address.
    /// Unauthenticated: keep it on loopback or a private network. Port 0
    /// picks a free port; the URL is printed at startup.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub admin_listen: SocketAddr,
}

/// Upper bounds (seconds) of the latency histograms' buckets: requests of
/// a millisecond up to tasks of minutes.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// How long a scrape waits for the cluster view before answering with the
/// last values (an unreachable metadata tier must not hang Prometheus).
const REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// The process's recorder, installed on first use (one per process).
/// Called first thing by the commands with an admin listener, so that
/// nothing records into the facade's no-op default before it exists.
pub fn recorder() -> Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe();
    metrics::gauge!("tidepool_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(HANDLE.get_or_init(|| handle).clone())
}

#[derive(Clone)]
struct AdminState {
    handle: PrometheusHandle,
    /// The gateway of this process, whose cluster view is recorded at each scrape.
    gateway: Option<gateway::Gateway>,
}

/// Binds `args.admin_listen`, installs the metrics recorder and serves
/// the admin routes in `tasks` until `shutdown`. Returns the `/metrics` URL.
pub async fn start(
    args: &AdminListenArgs,
    gateway: Option<gateway::Gateway>,
    tasks: &mut JoinSet<Result<()>>,
    shutdown: &CancellationToken,
) -> Result<String> {
    let handle = recorder()?;
    let addr = args.admin_listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listen on {addr} (--admin-listen)"))?;
    let url = format!("http://{}/metrics", listener.local_addr()?);
    if !addr.ip().is_loopback() {
        let warning = format!(
            "WARNING: the admin listener ({addr}: metrics) is unauthenticated and serves beyond \
             loopback; make sure only your monitoring can reach it."
        );
        crate::warning(&warning);
    }
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(AdminState {
            handle: handle.clone(),
            gateway,
        });
    let stop = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .context("admin listener")
    });
    // Histograms keep their samples until upkeep folds them in; without it
    // they would grow between scrapes.
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tick.tick() => handle.run_upkeep(),
            }
        }
    });
    Ok(url)
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    if let Some(gw) = &state.gateway {
        match tokio::time::timeout(REFRESH_TIMEOUT, gw.record_cluster_metrics()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "metrics: reading the cluster view"),
            Err(_) => tracing::warn!("metrics: the cluster view took too long; last values served"),
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.handle.render(),
    )
}

/// `# HELP` lines of the main series (docs/metrics.md has them all).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        gateway::metrics::REQUESTS,
        "Requests answered by the Manta API, by operation and HTTP status."
    );
    describe_histogram!(
        gateway::metrics::REQUEST_SECONDS,
        Unit::Seconds,
        "Time from a request's arrival to its response's headers."
    );
    describe_gauge!(gateway::metrics::IN_FLIGHT, "Requests being handled now.");
    describe_counter!(
        gateway::metrics::RECEIVED_BYTES,
        Unit::Bytes,
        "Request body bytes received."
    );
    describe_counter!(
        gateway::metrics::SENT_BYTES,
        Unit::Bytes,
        "Response body bytes sent."
    );
    describe_counter!(
        "tidepool_compute_tasks_total",
        "Job tasks finished by a node's agent, by outcome."
    );
    describe_histogram!(
        "tidepool_compute_task_duration_seconds",
        Unit::Seconds,
        "A task's time in the agent, queueing included."
    );
    describe_gauge!(
        "tidepool_compute_tasks_queued",
        "Tasks waiting for their account's share of the node."
    );
    describe_gauge!(
        "tidepool_cluster_nodes",
        "Nodes per condition of the cluster view."
    );
    describe_gauge!(
        "tidepool_worker_passes",
        "Passes completed by a background worker, as it last published."
    );
}
