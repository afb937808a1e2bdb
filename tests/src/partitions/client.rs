//! The suite's clients: a signing HTTP client for the gateway (HTTP
//! Signature with the account's key, exactly as the Manta CLI signs), and
//! the workload each client runs while faults are injected, recording
//! every operation's invocation, answer and timing.
//!
//! What is recorded, per object name, is a register history for
//! [`crate::linearizability`]: a 2xx or a definite refusal (404, 412) is a
//! known outcome; a 5xx, a timeout or a broken connection after the
//! request was sent is `Unknown` (the write may or may not have happened).
//! Every GET's bytes are checked against the value they claim to be: a
//! mismatch is recorded as a problem of its own ("wrong bytes").

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use reqwest::{Method, StatusCode};

use crate::Cluster;
use crate::linearizability::{Input, Op, Output, Value};

use super::Rng;

/// How long one request may take before its outcome counts as unknown.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The directory holding the registers.
pub const DIR: &str = "/alice/stor/p";

/// A client of the gateway signing as `alice`.
#[derive(Clone)]
pub struct Gateway {
    http: reqwest::Client,
    url: String,
    signer: Arc<auth::sign::RequestSigner>,
}

/// An HTTP answer, or why there was none.
pub enum Answer {
    /// Status, `etag` header and the whole body.
    Got(StatusCode, Option<String>, Vec<u8>),
    /// A 201's `location` (job creation), with the status.
    Created(StatusCode, String),
    /// Timeout, connection broken, body cut short: the request may have
    /// been acted on.
    Failed(String),
    /// No connection could be made: the request was never sent.
    NotSent(String),
}

impl Gateway {
    /// A client for `cluster`'s gateway, with the account's private key.
    pub fn connect(cluster: &Cluster) -> Result<Gateway> {
        let key = cluster.signing_key()?;
        Ok(Gateway {
            http: reqwest::Client::builder()
                .no_proxy()
                .tcp_nodelay(true)
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .build()?,
            url: cluster.url(),
            signer: Arc::new(auth::sign::RequestSigner::new(key, "alice", None)),
        })
    }

    /// Sends one signed request and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let date = auth::sign::http_date(SystemTime::now());
        let auth = match self.signer.authorization(&date) {
            Ok(a) => a,
            Err(e) => return Answer::Failed(format!("sign: {e}")),
        };
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("date", date)
            .header("authorization", auth);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Answer::NotSent(format!("{e:#}")),
            Err(e) => return Answer::Failed(format!("{e:#}")),
        };
        let status = resp.status();
        if status == StatusCode::CREATED
            && let Some(l) = resp.headers().get("location").and_then(|v| v.to_str().ok())
        {
            return Answer::Created(status, l.to_owned());
        }
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim_matches('"').to_owned());
        match resp.bytes().await {
            Ok(b) => Answer::Got(status, etag, b.to_vec()),
            Err(e) => Answer::Failed(format!("body: {e:#}")),
        }
    }

    /// PUTs `body` at `path` (durability 2) with extra headers.
    pub async fn put(&self, path: &str, body: Vec<u8>, extra: &[(&str, String)]) -> Answer {
        let mut h = vec![
            ("content-type", "application/octet-stream".to_owned()),
            ("durability-level", "2".to_owned()),
        ];
        h.extend(extra.iter().cloned());
        self.send(Method::PUT, path, &h, Some(body)).await
    }

    /// Creates directory `path` (ok if it exists).
    pub async fn mkdir(&self, path: &str) -> Answer {
        let h = [(
            "content-type",
            "application/json; type=directory".to_owned(),
        )];
        self.send(Method::PUT, path, &h, None).await
    }
}

/// The bytes of value `v` stored under `name`: a header naming both, then
/// deterministic filler of a size depending on `v` (100 B to ~8 KiB).
pub fn body_of(name: &str, v: Value) -> Vec<u8> {
    let mut b = format!("tidepool-partitions value={v} name={name}\n").into_bytes();
    b.extend(crate::payload((v as usize * 7919) % 8000 + 100, v));
    b
}

/// The value `bytes` claim to be (from their header line).
pub fn value_in(bytes: &[u8]) -> Option<Value> {
    let line = bytes.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    line.strip_prefix("tidepool-partitions value=")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// The path of register `i`.
pub fn key_path(i: usize) -> String {
    format!("{DIR}/k{i:03}")
}

/// Everything the clients recorded.
#[derive(Default)]
pub struct Record {
    /// Register histories by object path.
    pub histories: BTreeMap<String, Vec<Op>>,
    /// Operations by `kind outcome` (e.g. `put 204`, `get unknown`).
    pub counts: BTreeMap<String, u64>,
    /// Violations found outside the linearizability check (wrong bytes,
    /// an etag naming two values, unexpected statuses).
    pub problems: Vec<String>,
    /// Each etag seen and the value it belongs to.
    pub etags: HashMap<String, Value>,
    /// Server errors other than 503 (the first 20 in full, then counted):
    /// the documented answer to an unavailable dependency is 503, so any
    /// other 5xx is reported as a problem.
    pub notes: Vec<String>,
}

/// State shared by all clients of a run.
pub struct Shared {
    /// The run's clock.
    pub epoch: Instant,
    /// Set when clients must stop.
    pub stop: AtomicBool,
    /// The next value to write.
    pub next_value: AtomicU64,
    /// What was recorded.
    pub record: Mutex<Record>,
}

impl Shared {
    /// A fresh run state.
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
            next_value: AtomicU64::new(1),
            record: Mutex::default(),
        })
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one operation of `kind` with `outcome`.
    pub fn count(&self, kind: &str, outcome: &str) {
        *self
            .lock()
            .counts
            .entry(format!("{kind} {outcome}"))
            .or_default() += 1;
    }

    /// Records an answer that is 5xx but not 503 as a problem, keeping the
    /// first bodies.
    pub fn note(&self, kind: &str, path: &str, a: &Answer) {
        if let Answer::Got(s, _, body) = a
            && s.is_server_error()
            && *s != StatusCode::SERVICE_UNAVAILABLE
        {
            let mut r = self.lock();
            if r.notes.len() < 20 {
                r.notes.push(format!(
                    "{kind} {path}: {s} {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                ));
            }
            r.problems
                .push(format!("{kind} {path}: answered {s}, not 503"));
        }
    }

    /// Records a problem.
    pub fn problem(&self, p: String) {
        self.lock().problems.push(p);
    }

    fn push(&self, path: &str, op: Op) {
        self.lock()
            .histories
            .entry(path.to_owned())
            .or_default()
            .push(op);
    }

    /// Records that `etag` belongs to value `v`; a problem if it already
    /// belonged to another.
    fn learn_etag(&self, path: &str, etag: &str, v: Value) {
        let mut r = self.lock();
        match r.etags.get(etag) {
            Some(&old) if old != v => r.problems.push(format!(
                "{path}: etag {etag} served for value {v}, but it belongs to value {old}"
            )),
            Some(_) => {}
            None => {
                r.etags.insert(etag.to_owned(), v);
            }
        }
    }
}

/// The outcome word of an answer, for counts.
pub fn outcome_word(a: &Answer) -> String {
    match a {
        Answer::Got(s, _, _) | Answer::Created(s, _) => s.as_u16().to_string(),
        Answer::Failed(e) if e.contains("timed out") || e.contains("operation timed out") => {
            "timeout".into()
        }
        Answer::Failed(_) => "no-answer".into(),
        Answer::NotSent(_) => "not-sent".into(),
    }
}

/// One client's register operation: runs it and records it. Returns the
/// value and etag now known for the register, if the answer says so.
pub async fn register_op(
    gw: &Gateway,
    shared: &Shared,
    client: usize,
    path: &str,
    input: Input,
    known_etag: Option<&str>,
) -> Option<Option<(String, Value)>> {
    let call = shared.now();
    let (kind, answer) = match input {
        Input::Get => ("get", gw.send(Method::GET, path, &[], None).await),
        Input::Put(v) => ("put", gw.put(path, body_of(path, v), &[]).await),
        Input::PutIf { new, .. } => {
            let etag = known_etag.unwrap_or_default().to_owned();
            (
                "put-if-match",
                gw.put(path, body_of(path, new), &[("if-match", etag)])
                    .await,
            )
        }
        Input::Delete => ("delete", gw.send(Method::DELETE, path, &[], None).await),
    };
    let ret = shared.now();
    shared.count(kind, &outcome_word(&answer));
    shared.note(kind, path, &answer);
    let (output, learned) = match (&input, &answer) {
        (_, Answer::Failed(_)) => (Some(Output::Unknown), None),
        // Never sent: no effect, nothing to check.
        (_, Answer::NotSent(_)) => (None, None),
        (_, Answer::Created(..)) => (Some(Output::Unknown), None),
        (Input::Get, Answer::Got(s, etag, body)) if s.is_success() => match value_in(body) {
            Some(v) if *body == body_of(path, v) => {
                if let Some(e) = etag {
                    shared.learn_etag(path, e, v);
                }
                (
                    Some(Output::Read(Some(v))),
                    Some(etag.clone().map(|e| (e, v))),
                )
            }
            _ => {
                shared.problem(format!(
                    "{path}: GET served wrong bytes ({} bytes, header {:?})",
                    body.len(),
                    String::from_utf8_lossy(&body[..body.len().min(80)])
                ));
                (None, None)
            }
        },
        (Input::Get, Answer::Got(StatusCode::NOT_FOUND, _, _)) => {
            (Some(Output::Read(None)), Some(None))
        }
        (Input::Put(v) | Input::PutIf { new: v, .. }, Answer::Got(s, etag, _))
            if s.is_success() =>
        {
            if let Some(e) = etag {
                shared.learn_etag(path, e, *v);
            }
            (Some(Output::Done), Some(etag.clone().map(|e| (e, *v))))
        }
        (Input::PutIf { .. }, Answer::Got(StatusCode::PRECONDITION_FAILED, _, _)) => {
            (Some(Output::PreconditionFailed), None)
        }
        (Input::PutIf { .. }, Answer::Got(StatusCode::NOT_FOUND, _, _)) => {
            (Some(Output::NotFound), Some(None))
        }
        (Input::Delete, Answer::Got(s, _, _)) if s.is_success() => (Some(Output::Done), Some(None)),
        (Input::Delete, Answer::Got(StatusCode::NOT_FOUND, _, _)) => {
            (Some(Output::NotFound), Some(None))
        }
        (_, Answer::Got(s, _, _)) if s.is_server_error() => (Some(Output::Unknown), None),
        // `409 ConcurrentRequest`: the metadata transaction lost to
        // concurrent ones (or their leftover locks) every time it was
        // retried and did not commit; the client is to retry. Not part of
        // the history: had it been applied after all, a later read of its
        // value would be a value never written, and a violation.
        (_, Answer::Got(StatusCode::CONFLICT, _, _)) => (None, None),
        (_, Answer::Got(s, _, body)) => {
            // A 4xx not listed above: a refusal, so nothing was written;
            // not part of the history, but not expected either.
            shared.problem(format!(
                "{path}: {kind} answered {s}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
            (None, None)
        }
    };
    if let Some(output) = output {
        shared.push(
            path,
            Op {
                client,
                call,
                ret,
                input,
                output,
            },
        );
    }
    learned
}

/// The workload of one client until `shared.stop`: reads, plain and
/// conditional writes, deletes and listings over `keys` registers, a
/// fifth of them hot (half the operations go to them).
pub async fn run_client(gw: Gateway, shared: Arc<Shared>, client: usize, keys: usize, seed: u64) {
    let mut rng = Rng::new(seed ^ (client as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // What this client last learned of each register: (etag, value).
    let mut known: HashMap<String, (String, Value)> = HashMap::new();
    let hot = (keys / 5).max(1);
    while !shared.stop.load(Ordering::SeqCst) {
        let i = if rng.below(2) == 0 {
            rng.below(hot as u64) as usize
        } else {
            rng.below(keys as u64) as usize
        };
        let path = key_path(i);
        let dice = rng.below(100);
        if dice >= 93 {
            let a = gw
                .send(Method::GET, &format!("{DIR}?limit=1000"), &[], None)
                .await;
            shared.count("list", &outcome_word(&a));
            continue;
        }
        let input = match dice {
            0..=34 => Input::Get,
            35..=59 => Input::Put(shared.next_value.fetch_add(1, Ordering::SeqCst)),
            60..=81 => match known.get(&path) {
                Some((_, v)) => Input::PutIf {
                    expect: *v,
                    new: shared.next_value.fetch_add(1, Ordering::SeqCst),
                },
                None => Input::Get,
            },
            _ => Input::Delete,
        };
        let etag = known.get(&path).map(|(e, _)| e.clone());
        match register_op(&gw, &shared, client, &path, input, etag.as_deref()).await {
            Some(Some((e, v))) => {
                known.insert(path, (e, v));
            }
            Some(None) => {
                known.remove(&path);
            }
            None => {
                // No answer that says anything: the gateway may be down;
                // back off rather than spin on refused connections.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
