//! mlogin's session reflector (Manta's "medusa"): `GET
//! /:login/medusa/attach/:jobid/{master,slave}` upgraded to a WebSocket.
//!
//! `mlogin` attaches the *master* half (signed like any request) right after
//! creating its interactive job; the job's task (the node's session agent,
//! `compute::session`) attaches the *slave* half with the URL `mlogin`
//! presigned for it. Until both are there the waiting half gets
//! `medusa:{"type":"wait"}` text frames; once paired both get
//! `medusa:{"type":"linkup"}` and from then on every text and binary frame
//! of one half is relayed unchanged to the other (the `mlogin:` control
//! messages and the terminal's bytes are the two ends' business).
//!
//! Guarantees:
//! - Only the job's owner attaches: the master by a signature of the account
//!   (not a presigned URL), the slave only by a presigned URL of the account
//!   for exactly its path (the signature covers the path). Another account
//!   gets `403`, an unknown or someone else's job `404`, a finished job
//!   `409`, and nothing is upgraded.
//! - One master and one slave per job at a time (a second is `409`); at
//!   most [`MAX_PENDING_PER_ACCOUNT`] unpaired halves per account and
//!   [`MAX_PENDING`] in all (`503 ThrottledError` beyond).
//! - Bounded: frames over [`MAX_FRAME`] bytes end the session, the relay
//!   holds at most one frame per direction (a slow reader slows its
//!   writer), an unpaired half waits at most [`PAIR_WAIT`], a paired session
//!   with no frame either way for [`IDLE`] is closed, and when either half
//!   goes the other is closed.
//!
//! The pairing table lives in this gateway's memory: both halves must reach
//! the same gateway process (true of `tidepool up`; a deployment with
//! several gateways must route `/:login/medusa/` to one of them). The
//! table holds no state a restart must keep: a session cut by a restart is
//! simply over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures::{SinkExt as _, StreamExt as _};
use http::{HeaderValue, Method, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::Gateway;
use crate::error::ApiError;

/// Unpaired halves one account may hold.
pub const MAX_PENDING_PER_ACCOUNT: usize = 8;
/// Unpaired halves in this gateway.
pub const MAX_PENDING: usize = 1024;
/// Largest frame relayed (a terminal's bytes come in small frames).
pub const MAX_FRAME: usize = 1 << 20;
/// How long a half waits for its peer (mlogin's presigned URL lives 5
/// minutes; a job may also queue for a node's share).
pub const PAIR_WAIT: Duration = Duration::from_secs(600);
/// A paired session silent this long is closed (mlogin pings every 15 s).
pub const IDLE: Duration = Duration::from_secs(600);
/// How often a waiting half is told it is still waiting.
const WAIT_TICK: Duration = Duration::from_secs(1);

/// Which end of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The `mlogin` client.
    Master,
    /// The agent inside the job.
    Slave,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Master => "master",
            Side::Slave => "slave",
        }
    }
}

/// A parsed `/:login/medusa/attach/:id/:side` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachPath {
    pub login: String,
    pub job: uuid::Uuid,
    pub side: Side,
}

/// What a `/:login/medusa...` path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MedusaPath {
    Attach(AttachPath),
    /// Under `/:login/medusa` but not an attach point.
    Unknown,
}

/// `Some` when `path` is under `/:login/medusa` (the reflector answers
/// it), `None` for every other path.
pub fn parse_path(path: &str) -> Option<MedusaPath> {
    let mut parts = path.strip_prefix('/')?.split('/');
    let login = parts.next().filter(|l| !l.is_empty())?;
    if parts.next() != Some("medusa") {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    let attach = match rest.as_slice() {
        ["attach", id, side] => {
            let side = match *side {
                "master" => Side::Master,
                "slave" => Side::Slave,
                _ => return Some(MedusaPath::Unknown),
            };
            uuid::Uuid::parse_str(id).ok().map(|job| AttachPath {
                login: login.to_owned(),
                job,
                side,
            })
        }
        _ => None,
    };
    Some(attach.map_or(MedusaPath::Unknown, MedusaPath::Attach))
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// One job's session: which halves are reserved, and the one waiting for
/// its peer.
struct Slot {
    owner: String,
    master: bool,
    slave: bool,
    paired: bool,
    waiting: Option<oneshot::Sender<Handoff>>,
}

/// The pairing table (one per gateway).
#[derive(Default)]
pub struct Reflector {
    slots: Mutex<HashMap<uuid::Uuid, Slot>>,
}

impl std::fmt::Debug for Reflector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reflector").finish_non_exhaustive()
    }
}

/// A reserved half; dropping it frees the reservation (and the slot when
/// no half is left).
struct Ticket {
    reflector: Arc<Reflector>,
    job: uuid::Uuid,
    side: Side,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut slots = self.reflector.lock();
        if let Some(slot) = slots.get_mut(&self.job) {
            match self.side {
                Side::Master => slot.master = false,
                Side::Slave => slot.slave = false,
            }
            if !slot.paired {
                // Only the waiting half has a sender parked, and only an
                // unpaired half drops before its session.
                slot.waiting = None;
            }
            if !slot.master && !slot.slave {
                slots.remove(&self.job);
            }
        }
    }
}

/// A half handed to the waiting peer: its socket and its reservation
/// (held until the session ends).
type Handoff = (Ws, Ticket);

/// An upgraded half with no peer yet: its socket, its reservation and
/// where the peer's half will arrive.
type Waiting = (Ws, Ticket, oneshot::Receiver<Handoff>);

impl Reflector {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, Slot>> {
        // Every change under the lock is one statement, so a panic while
        // holding it leaves the map consistent: a poisoned lock is usable.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `side` of `job` for `owner`, before the upgrade is
    /// answered (so refusals are plain HTTP errors).
    fn reserve(
        self: &Arc<Self>,
        owner: &str,
        job: uuid::Uuid,
        side: Side,
    ) -> Result<Ticket, ApiError> {
        let mut slots = self.lock();
        let pending = |slots: &HashMap<uuid::Uuid, Slot>, who: Option<&str>| {
            slots
                .values()
                .filter(|s| !s.paired && who.is_none_or(|w| s.owner == w))
                .count()
        };
        if !slots.contains_key(&job) {
            if pending(&slots, Some(owner)) >= MAX_PENDING_PER_ACCOUNT {
                return Err(ApiError::Throttled(format!(
                    "{owner} has {MAX_PENDING_PER_ACCOUNT} interactive sessions waiting already"
                )));
            }
            if pending(&slots, None) >= MAX_PENDING {
                return Err(ApiError::Throttled(
                    "too many interactive sessions waiting".into(),
                ));
            }
        }
        let slot = slots.entry(job).or_insert_with(|| Slot {
            owner: owner.to_owned(),
            master: false,
            slave: false,
            paired: false,
            waiting: None,
        });
        let taken = match side {
            Side::Master => &mut slot.master,
            Side::Slave => &mut slot.slave,
        };
        if *taken || slot.paired {
            return Err(ApiError::InvalidJobState(format!(
                "job {job} already has a {} attached",
                side.as_str()
            )));
        }
        *taken = true;
        Ok(Ticket {
            reflector: self.clone(),
            job,
            side,
        })
    }

    /// The upgraded `ws` of `ticket`'s half arrives: hand it to a waiting
    /// peer (`None`: the peer's task relays), or become the waiting half.
    fn arrive(&self, ws: Ws, ticket: Ticket) -> Option<Waiting> {
        let job = ticket.job;
        let mut handoff = (ws, ticket);
        loop {
            let peer = self.lock().get_mut(&job).and_then(|s| {
                let tx = s.waiting.take()?;
                s.paired = true;
                Some(tx)
            });
            let Some(tx) = peer else { break };
            // Outside the lock: a failed send hands the ticket back, and
            // dropping tickets takes the lock.
            match tx.send(handoff) {
                Ok(()) => return None,
                // That peer gave up meanwhile: look again.
                Err(back) => {
                    if let Some(s) = self.lock().get_mut(&job) {
                        s.paired = false;
                    }
                    handoff = back;
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        let (ws, ticket) = handoff;
        if let Some(s) = self.lock().get_mut(&ticket.job) {
            s.waiting = Some(tx);
        }
        Some((ws, ticket, rx))
    }
}

fn forbidden(message: String) -> ApiError {
    ApiError::Auth {
        status: StatusCode::FORBIDDEN,
        code: "AuthorizationFailed".to_owned(),
        message,
    }
}

/// Answers a request under `/:login/medusa` after authentication:
/// authorizes the half, reserves it, and upgrades the connection.
pub(crate) async fn attach(
    gw: &Gateway,
    caller: Option<&auth::Caller>,
    what: MedusaPath,
    mut req: Request,
) -> Result<Response, ApiError> {
    let path = req.uri().path().to_owned();
    let MedusaPath::Attach(at) = what else {
        return Err(ApiError::ResourceNotFound(path));
    };
    if req.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed(req.method().to_string()));
    }
    let Some(caller) = caller else {
        return Err(forbidden(format!(
            "anonymous callers may not attach to {path}"
        )));
    };
    if caller.login != at.login {
        return Err(forbidden(format!(
            "{} may not attach to {path}",
            caller.login
        )));
    }
    // The master is the signing user; the slave holds the URL mlogin
    // presigned for it (and nothing else: that URL names only this path).
    match (at.side, caller.presigned.is_some()) {
        (Side::Master, true) => {
            return Err(forbidden(format!(
                "{path} needs a signed request, not a presigned URL"
            )));
        }
        (Side::Slave, false) => {
            return Err(forbidden(format!(
                "{path} needs the session's presigned URL"
            )));
        }
        _ => {}
    }
    let job = gw
        .inner
        .jobs
        .get_job(&at.job)
        .await
        .map_err(|e| ApiError::MetadataUnavailable(e.to_string()))?;
    let job = match job {
        Some(j) if j.owner == at.login => j,
        _ => {
            return Err(ApiError::JobNotFound(format!(
                "/{}/jobs/{}",
                at.login, at.job
            )));
        }
    };
    if job.cancelled || job.state == meta::jobs::JobState::Done {
        return Err(ApiError::InvalidJobState(format!(
            "job {} is not running",
            at.job
        )));
    }
    let key = req
        .headers()
        .get("sec-websocket-key")
        .cloned()
        .filter(|_| {
            req.headers()
                .get(header::UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        })
        .ok_or_else(|| ApiError::BadRequest(format!("{path} is a WebSocket endpoint")))?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ticket = gw.inner.medusa.reserve(&at.login, at.job, at.side)?;
    let reflector = gw.inner.medusa.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "medusa upgrade failed");
                return;
            }
        };
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_FRAME);
        config.max_frame_size = Some(MAX_FRAME);
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        half(reflector, ticket, ws).await;
    });
    let accept = derive_accept_key(key.as_bytes());
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(resp)
}

fn medusa(kind: &str) -> Message {
    Message::text(format!("medusa:{{\"type\":\"{kind}\"}}"))
}

/// One upgraded half: waits for its peer (telling its client so), then
/// relays; the reservations go when the session ends.
async fn half(reflector: Arc<Reflector>, ticket: Ticket, ws: Ws) {
    let Some((mut ws, ticket, mut rx)) = reflector.arrive(ws, ticket) else {
        return;
    };
    let deadline = tokio::time::sleep(PAIR_WAIT);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(WAIT_TICK);
    let (peer, peer_ticket) = loop {
        tokio::select! {
            peer = &mut rx => match peer {
                Ok(p) => break p,
                Err(_) => return,
            },
            _ = tick.tick() => {
                if ws.send(medusa("wait")).await.is_err() {
                    return;
                }
            }
            msg = ws.next() => match msg {
                // Frames before the peer is there (mlogin's pings) go
                // nowhere; a closed half stops waiting.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            () = &mut deadline => {
                let _ = ws.close(None).await;
                return;
            }
        }
    };
    let (master, slave) = match ticket.side {
        Side::Master => (ws, peer),
        Side::Slave => (peer, ws),
    };
    relay(master, slave).await;
    drop((ticket, peer_ticket));
}

/// Relays frames both ways until either half closes, errs or the session
/// idles out; then closes both.
async fn relay(mut master: Ws, mut slave: Ws) {
    if master.send(medusa("linkup")).await.is_err() || slave.send(medusa("linkup")).await.is_err() {
        return;
    }
    loop {
        let step = tokio::select! {
            m = master.next() => forward(m, &mut slave).await,
            s = slave.next() => forward(s, &mut master).await,
            () = tokio::time::sleep(IDLE) => false,
        };
        if !step {
            break;
        }
    }
    let _ = master.close(None).await;
    let _ = slave.close(None).await;
}

/// Sends a text or binary frame on; `false` when the session is over.
async fn forward(msg: Option<Result<Message, impl std::fmt::Display>>, to: &mut Ws) -> bool {
    match msg {
        Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => to.send(m).await.is_ok(),
        // Pings are answered by the library; pongs need nothing.
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => true,
        Some(Ok(Message::Close(_))) | None => false,
        Some(Err(e)) => {
            tracing::debug!(error = %e, "medusa half failed");
            false
        }
    }
}
