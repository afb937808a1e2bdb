//! `GET /:login/jobs/:id/live/events`: a job's progress pushed to the
//! client as Server-Sent Events (`text/event-stream`), for the web console
//! and anyone else who wants to watch a job without polling.
//!
//! The request is authenticated and authorized like every jobs-API request
//! (the job must belong to the login in the path, else `404`) before the
//! stream starts. Events:
//!
//! - `status`: one JSON object (see [`Snapshot`]): the job's state and
//!   counters, per phase the tasks known so far and how many are queued,
//!   running, done, failed, the errors of the phase, and throughput since
//!   the job was created. Sent first on connect, then whenever any of it
//!   (throughput aside) changes; the one showing `"state":"done"` is the
//!   last, after which the stream ends.
//! - `gone`: the job record disappeared (purged); the stream ends.
//! - `problem`: metadata could not be read; the stream goes on trying.
//! - `: keepalive` comments while nothing changes, so proxies keep the
//!   connection open.
//!
//! Guarantees: the server reads metadata at most every [`TICK`] per stream
//! (earlier when this process commits a change to a job), never holds more
//! than [`MAX_STREAMS`] streams open at once (`503` beyond), and ends a
//! stream after [`MAX_STREAM_AGE`] (the client reconnects and gets the
//! current state first). Task counts are exact up to [`MAX_SCANNED_TASKS`]
//! tasks; beyond, `"partial":true` says they are a lower bound.

use crate::error::ApiError;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, header};
use meta::jobs::{JobChange, JobRecord, JobState, JobStore, TaskState};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How often a stream re-reads the job record when nothing wakes it.
pub const TICK: Duration = Duration::from_millis(250);
/// Task records are re-counted at least this often even when the job
/// record did not change (a task moving from dispatched to running does
/// not touch it).
const RESCAN: Duration = Duration::from_secs(2);
/// A comment line after this much silence.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Streams end after this long; clients reconnect.
pub const MAX_STREAM_AGE: Duration = Duration::from_secs(600);
/// Streams open at once in this process.
pub const MAX_STREAMS: usize = 256;
/// Task records counted per snapshot.
pub const MAX_SCANNED_TASKS: usize = 20_000;
/// Records read per page.
const PAGE: usize = 512;

static OPEN_STREAMS: AtomicUsize = AtomicUsize::new(0);

/// Streams open now in this process.
pub fn open_streams() -> usize {
    OPEN_STREAMS.load(Ordering::Acquire)
}

/// One of the [`MAX_STREAMS`] slots, given back on drop (when the client
/// goes away or the stream ends).
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        OPEN_STREAMS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_STREAMS).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN_STREAMS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Progress of one phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseProgress {
    /// `map` or `reduce`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Tasks created so far (for phase 0 with input ended, at least the
    /// inputs taken).
    pub tasks: u64,
    pub queued: u64,
    /// Dispatched to a node or running there.
    pub running: u64,
    pub done: u64,
    pub failed: u64,
    /// Errors the phase reported (failed tasks, bad inputs).
    pub errors: u64,
}

/// Tasks and bytes per second since the job was created.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub tasks_per_sec: f64,
    /// Input bytes of finished map tasks of phase 0.
    pub bytes_per_sec: f64,
}

/// The body of a `status` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub id: String,
    pub name: String,
    pub state: &'static str,
    pub cancelled: bool,
    pub input_done: bool,
    /// Inputs submitted.
    pub inputs: u64,
    /// Inputs turned into tasks or errors.
    pub inputs_consumed: u64,
    pub tasks: u64,
    pub tasks_done: u64,
    pub errors: u64,
    pub outputs: u64,
    pub retries: u64,
    pub phases: Vec<PhaseProgress>,
    /// Task counts are a lower bound (more than [`MAX_SCANNED_TASKS`]).
    pub partial: bool,
    pub time_created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_done: Option<String>,
    /// Not part of the change detection: it moves with the clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
}

/// The `type` of each phase in the stored manifest.
fn phase_kinds(job: &JobRecord) -> Vec<String> {
    let phases: Vec<serde_json::Value> = serde_json::from_str(&job.phases_json).unwrap_or_default();
    let mut kinds: Vec<String> = phases
        .iter()
        .map(|p| {
            p.get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("map")
                .to_owned()
        })
        .collect();
    kinds.resize(job.phase_count as usize, "map".to_owned());
    kinds
}

/// What the counts of the last snapshot were computed from: when it is
/// unchanged the task records need not be read again (until [`RESCAN`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    state: JobState,
    stats: meta::jobs::JobStats,
    open: Vec<u64>,
    consumed: u64,
    inputs: u64,
    input_done: bool,
    cancelled: bool,
    errors: u64,
}

impl Signature {
    fn of(job: &JobRecord) -> Signature {
        Signature {
            state: job.state,
            stats: job.stats,
            open: job.open_tasks.clone(),
            consumed: job.inputs_consumed,
            inputs: job.next_input_seq,
            input_done: job.input_done,
            cancelled: job.cancelled,
            errors: job.next_error_seq,
        }
    }
}

/// One stream's state.
struct Watch {
    store: JobStore,
    id: Uuid,
    kinds: Vec<String>,
    /// Errors per phase counted so far, and the next error to read
    /// (errors are append-only, so they are counted incrementally).
    phase_errors: Vec<u64>,
    next_error: u64,
    /// Per-phase task counts of the last scan, and when it was made.
    counts: Vec<PhaseProgress>,
    partial: bool,
    bytes_done: u64,
    scanned: Option<(Instant, Signature)>,
    last_sent: Option<Snapshot>,
    sent_at: Instant,
    opened: Instant,
    finished: bool,
    problem_sent: bool,
    changes: tokio::sync::watch::Receiver<u64>,
    _slot: Slot,
}

/// One Server-Sent Events frame.
fn frame(event: &str, data: &str) -> Bytes {
    // `data` is compact JSON: no newline can end the field early.
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

impl Watch {
    /// Counts the tasks of every phase (up to [`MAX_SCANNED_TASKS`]).
    async fn scan_tasks(&mut self) -> Result<(), meta::jobs::JobStoreError> {
        let mut counts: Vec<PhaseProgress> = self
            .kinds
            .iter()
            .map(|k| PhaseProgress {
                kind: k.clone(),
                ..PhaseProgress::default()
            })
            .collect();
        let mut after = None;
        let mut seen = 0usize;
        let mut bytes = 0u64;
        self.partial = false;
        loop {
            let page = self.store.tasks(&self.id, after, PAGE).await?;
            for t in &page {
                let i = t.phase as usize;
                if counts.len() <= i {
                    counts.resize(i + 1, PhaseProgress::default());
                }
                let c = &mut counts[i];
                c.tasks += 1;
                match t.state {
                    TaskState::Queued => c.queued += 1,
                    TaskState::Dispatched | TaskState::Running => c.running += 1,
                    TaskState::Done => c.done += 1,
                    TaskState::Failed => c.failed += 1,
                }
                if t.phase == 0 && t.state.is_finished() {
                    bytes = bytes.saturating_add(t.size);
                }
            }
            seen += page.len();
            match page.last() {
                Some(t) if page.len() == PAGE => {
                    if seen >= MAX_SCANNED_TASKS {
                        self.partial = true;
                        break;
                    }
                    after = Some((t.phase, t.id));
                }
                _ => break,
            }
        }
        self.counts = counts;
        self.bytes_done = bytes;
        Ok(())
    }

    /// Reads the errors added since the last call.
    async fn scan_errors(&mut self) -> Result<(), meta::jobs::JobStoreError> {
        loop {
            let page = self.store.errors(&self.id, self.next_error, PAGE).await?;
            for (seq, e) in &page {
                let i = e.phase as usize;
                if self.phase_errors.len() <= i {
                    self.phase_errors.resize(i + 1, 0);
                }
                self.phase_errors[i] += 1;
                self.next_error = seq + 1;
            }
            if page.len() < PAGE {
                return Ok(());
            }
        }
    }

    /// The current snapshot, when it differs from the last one sent;
    /// `Ok(None)` when nothing changed, `Err(None)` when the job is gone.
    async fn refresh(&mut self) -> Result<Option<Snapshot>, Option<String>> {
        let job = match self.store.get_job(&self.id).await {
            Ok(Some(j)) => j,
            Ok(None) => return Err(None),
            Err(e) => return Err(Some(e.to_string())),
        };
        let sig = Signature::of(&job);
        let stale = match &self.scanned {
            Some((at, s)) => *s != sig || at.elapsed() >= RESCAN,
            None => true,
        };
        if stale {
            self.scan_errors().await.map_err(|e| Some(e.to_string()))?;
            self.scan_tasks().await.map_err(|e| Some(e.to_string()))?;
            self.scanned = Some((Instant::now(), sig));
        }
        let mut phases = self.counts.clone();
        for (i, p) in phases.iter_mut().enumerate() {
            p.errors = self.phase_errors.get(i).copied().unwrap_or(0);
        }
        let snap = Snapshot {
            id: job.id.to_string(),
            name: job.name.clone(),
            state: job.state.as_str(),
            cancelled: job.cancelled,
            input_done: job.input_done || job.cancelled,
            inputs: job.next_input_seq,
            inputs_consumed: job.inputs_consumed,
            tasks: job.stats.tasks,
            tasks_done: job.stats.tasks_done,
            errors: job.stats.errors,
            outputs: job.stats.outputs,
            retries: job.stats.retries,
            phases,
            partial: self.partial,
            time_created: jobs::status::iso_time(job.time_created_ms),
            time_done: job.time_done_ms.map(jobs::status::iso_time),
            throughput: None,
        };
        if self.last_sent.as_ref() == Some(&snap) {
            return Ok(None);
        }
        self.last_sent = Some(snap.clone());
        let end = job.time_done_ms.unwrap_or_else(|| self.store.now_ms());
        let secs = end.saturating_sub(job.time_created_ms) as f64 / 1000.0;
        Ok(Some(Snapshot {
            throughput: Some(Throughput {
                tasks_per_sec: rate(job.stats.tasks_done, secs),
                bytes_per_sec: rate(self.bytes_done, secs),
            }),
            ..snap
        }))
    }

    /// The next bytes of the stream, `None` at its end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.finished || self.opened.elapsed() >= MAX_STREAM_AGE {
                return None;
            }
            match self.refresh().await {
                Ok(Some(snap)) => {
                    self.finished = snap.state == JobState::Done.as_str();
                    self.problem_sent = false;
                    self.sent_at = Instant::now();
                    let json = serde_json::to_string(&snap).unwrap_or_default();
                    return Some(frame("status", &json));
                }
                Ok(None) => {}
                Err(None) => {
                    self.finished = true;
                    return Some(frame("gone", "{}"));
                }
                Err(Some(why)) => {
                    tracing::warn!(job = %self.id, error = %why, "job events: reading the job");
                    if !self.problem_sent {
                        self.problem_sent = true;
                        self.sent_at = Instant::now();
                        let body =
                            serde_json::json!({ "message": "the metadata tier is unavailable" });
                        return Some(frame("problem", &body.to_string()));
                    }
                }
            }
            if self.sent_at.elapsed() >= KEEPALIVE {
                self.sent_at = Instant::now();
                return Some(Bytes::from_static(b": keepalive\n\n"));
            }
            tokio::select! {
                _ = self.changes.changed() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }
}

/// The event stream of `job` (already authorized), or `503` when
/// [`MAX_STREAMS`] streams are open.
pub(crate) fn job_events(store: JobStore, job: JobRecord) -> Result<Response, ApiError> {
    let slot = Slot::take().ok_or_else(|| {
        ApiError::TooManyStreams(format!(
            "{MAX_STREAMS} event streams are open; try again later"
        ))
    })?;
    let kinds = phase_kinds(&job);
    let changes = store.changes(JobChange::Any);
    let watch = Watch {
        store,
        id: job.id,
        phase_errors: vec![0; kinds.len()],
        kinds,
        next_error: 0,
        counts: Vec::new(),
        partial: false,
        bytes_done: 0,
        scanned: None,
        last_sent: None,
        sent_at: Instant::now(),
        opened: Instant::now(),
        finished: false,
        problem_sent: false,
        changes,
        _slot: slot,
    };
    let stream = futures::stream::unfold(watch, |mut w| async move {
        let chunk = w.next_chunk().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(chunk), w))
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Reverse proxies (nginx) must pass events through as they come.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_sse() {
        assert_eq!(
            &frame("status", "{\"a\":1}")[..],
            b"event: status\ndata: {\"a\":1}\n\n"
        );
    }

    #[test]
    fn slots_are_bounded_and_returned() {
        let held: Vec<Slot> = std::iter::from_fn(Slot::take)
            .take(MAX_STREAMS + 1)
            .collect();
        assert!(held.len() <= MAX_STREAMS, "{}", held.len());
        assert!(Slot::take().is_none(), "all slots taken");
        drop(held);
        assert!(Slot::take().is_some(), "slots come back");
    }
}
