//! The web console at `/console/`: a single-page application embedded in
//! the binary (no CDN, no build step), and the one API of its own, the
//! operator's cluster view at `/console/api/cluster`.
//!
//! Everything else the page shows it reads through the Manta API itself,
//! with the signed-in account's token (`Authorization: Token ...`), so it
//! passes the same authentication and authorization as any client; a job's
//! live progress comes from `GET /:login/jobs/:id/live/events` ([`events`]).
//!
//! Guarantees:
//! - The page and its assets are public and carry no data; every console
//!   response has a `Content-Security-Policy` allowing scripts, styles and
//!   connections to this origin only (no inline script, no `eval`, no
//!   framing), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`
//!   and `Referrer-Policy: no-referrer`.
//! - `/console/api/cluster` answers only an operator account (read from its
//!   stored record, [`crate::access::is_operator`]); anyone else gets `403`.
//! - `/console` is reserved: no account can be called `console`
//!   ([`meta::path::RESERVED_LOGINS`]), so the console shadows nobody's
//!   namespace.

pub mod events;

use crate::Gateway;
use crate::error::{ApiError, json_response};
use crate::metrics::Operation;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// The policy on every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// The embedded files: name under `/console/`, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
];

/// Nodes' queued tasks are counted up to this many.
const QUEUE_COUNT_CAP: usize = 1000;
/// Live jobs are counted up to this many.
const LIVE_JOBS_CAP: usize = 10_000;

/// The console's routes (merged into [`Gateway::router`]).
pub(crate) fn routes() -> Router<Gateway> {
    Router::new()
        .route("/console", get(redirect))
        .route("/console/", get(index))
        .route("/console/api/cluster", get(cluster))
        .route("/console/{*file}", get(asset))
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn finish(mut r: Response, operation: &'static str) -> Response {
    secure(r.headers_mut());
    r.extensions_mut().insert(Operation(operation));
    r
}

async fn redirect() -> Response {
    let mut r = StatusCode::PERMANENT_REDIRECT.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/console/"));
    finish(r, "console")
}

fn serve(name: &str) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        let mut r = (StatusCode::NOT_FOUND, "not found\n").into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return finish(r, "console");
    };
    let mut r = Response::new(axum::body::Body::from(*body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The assets change with the binary: revalidate, never guess.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    finish(r, "console")
}

async fn index() -> Response {
    serve("index.html")
}

async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

async fn cluster(State(gw): State<Gateway>, req: Request) -> Response {
    let target = crate::handlers::raw_target(&req).to_owned();
    let (parts, _) = req.into_parts();
    let r = match cluster_view(&gw, &parts.method, &target, &parts.headers).await {
        Ok(body) => {
            let mut r = json_response(StatusCode::OK, body);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    };
    finish(r, "consolecluster")
}

fn not_operator(who: &str) -> ApiError {
    ApiError::Auth {
        status: StatusCode::FORBIDDEN,
        code: "AuthorizationFailed".to_owned(),
        message: format!("{who} is not allowed to see the cluster (operators only)"),
    }
}

/// The operator's view: nodes (condition, capacity, queued tasks), the
/// background workers' records and a summary.
async fn cluster_view(
    gw: &Gateway,
    method: &http::Method,
    target: &str,
    headers: &HeaderMap,
) -> Result<Vec<u8>, ApiError> {
    let (caller, _) = crate::handlers::authenticate(gw, method, target, headers).await?;
    let Some(caller) = caller else {
        return Err(not_operator("anonymous"));
    };
    let ns = &gw.inner.namespace;
    if !crate::access::is_operator(ns, Some(&caller)).await? {
        let who = match &caller.subuser {
            Some(u) => format!("{}/{u}", caller.login),
            None => caller.login.clone(),
        };
        return Err(not_operator(&who));
    }
    let now_ms = gw
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let view = membership::ClusterView::load(ns, gw.inner.health, Some(&gw.inner.suspects), now_ms)
        .await?;
    let jobs = &gw.inner.jobs;
    let mut nodes = Vec::new();
    let (mut total, mut used) = (0u64, 0u64);
    let mut up = 0u64;
    for n in view.nodes() {
        let id = n.record.id.to_string();
        let queued = jobs.node_queue(&id, QUEUE_COUNT_CAP + 1).await?.len();
        total = total.saturating_add(n.record.capacity_total);
        used = used.saturating_add(n.record.capacity_used);
        up += u64::from(n.condition == membership::Condition::Up);
        nodes.push(serde_json::json!({
            "id": id,
            "url": n.record.url,
            "az": n.record.az,
            "condition": n.condition.as_str(),
            "capacityTotal": n.record.capacity_total,
            "capacityUsed": n.record.capacity_used,
            "heartbeatAgeMs": now_ms.saturating_sub(n.record.heartbeat_ms),
            "poolHealth": n.record.pool_health,
            "queuedTasks": queued.min(QUEUE_COUNT_CAP),
            "queuedTasksCapped": queued > QUEUE_COUNT_CAP,
        }));
    }
    let workers: Vec<serde_json::Value> = ns
        .list_workers()
        .await?
        .into_iter()
        .map(|w| {
            serde_json::json!({
                "scope": w.scope,
                "name": w.name,
                "state": w.state,
                "progress": w.progress,
                "lastError": w.last_error,
                "passes": w.passes,
                "paused": w.paused,
                "reportAgeMs": now_ms.saturating_sub(w.updated_ms),
            })
        })
        .collect();
    let live = jobs.live_jobs(None, LIVE_JOBS_CAP + 1).await?.len();
    let body = serde_json::json!({
        "summary": {
            "nodes": nodes.len(),
            "nodesUp": up,
            "capacityTotal": total,
            "capacityUsed": used,
            "liveJobs": live.min(LIVE_JOBS_CAP),
            "liveJobsCapped": live > LIVE_JOBS_CAP,
            "eventStreams": events::open_streams(),
        },
        "nodes": nodes,
        "workers": workers,
    });
    serde_json::to_vec(&body).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_embedded_with_their_types() {
        for name in ["index.html", "app.js", "app.css"] {
            let r = serve(name);
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            assert_eq!(
                r.headers()[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
            assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("nope.js").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_page_has_no_inline_script_or_remote_asset() {
        let html = ASSETS[0].2;
        for tag in html.split("<script").skip(1) {
            assert!(tag.trim_start().starts_with("src=\"app.js\""), "{tag}");
        }
        for (name, _, body) in ASSETS {
            assert!(!body.contains("http://"), "{name} loads nothing remote");
            assert!(!body.contains("https://"), "{name} loads nothing remote");
            assert!(
                !body.contains("innerHTML"),
                "{name} renders with textContent"
            );
        }
    }
}
