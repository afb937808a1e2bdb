//! The one shape of a background worker, and the registry that runs them
//! and publishes their status.
//!
//! A [`Worker`] is a named pass run every [`Worker::every`]. The registry
//! runs each on its own task; a pass that fails is recorded (state
//! `failing`, last error) and tried again at the next tick, so a worker
//! outlives any metadata or node outage. Status (state, progress, passes,
//! last error) is written to metadata every [`PUBLISH_EVERY`] as a
//! [`WorkerRecord`]; the record's pause flag, set by an operator from any
//! process, stops new passes and holds a running one at its next
//! [`Control::checkpoint`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meta::namespace::{Namespace, WorkerRecord, system_now_ms};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::UpkeepError;

/// How often status goes to metadata (and pause flags come back).
pub const PUBLISH_EVERY: Duration = Duration::from_secs(2);
/// How often a paused worker looks at its flag again.
const PAUSE_POLL: Duration = Duration::from_millis(200);

/// A background worker.
pub trait Worker: Send + 'static {
    /// Its name, unique within a scope (`audit`, `repair`, ...).
    fn name(&self) -> &'static str;
    /// Time from the start of one pass to the start of the next.
    fn every(&self) -> Duration;
    /// Time from the start to the first pass (default: at once).
    fn first_pass_after(&self) -> Duration {
        Duration::ZERO
    }
    /// One full pass; returns a summary for people.
    fn pass(&mut self, ctl: &Control) -> impl Future<Output = Result<String, UpkeepError>> + Send;
}

#[derive(Debug)]
struct Status {
    state: &'static str,
    progress: String,
    last_error: Option<String>,
    passes: u64,
}

#[derive(Debug)]
struct Shared {
    name: &'static str,
    status: Mutex<Status>,
    paused: AtomicBool,
}

impl Shared {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a pass uses to report progress and to yield to pause and shutdown.
#[derive(Debug, Clone)]
pub struct Control {
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Control {
    /// Replaces the progress line.
    pub fn progress(&self, text: impl Into<String>) {
        self.shared.status().progress = text.into();
    }

    /// Returns at once unless an operator paused the worker (then waits
    /// for resume); fails with [`UpkeepError::Cancelled`] on shutdown.
    pub async fn checkpoint(&self) -> Result<(), UpkeepError> {
        loop {
            if self.cancel.is_cancelled() {
                return Err(UpkeepError::Cancelled);
            }
            if !self.shared.paused.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.shared.status().state = "paused";
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(UpkeepError::Cancelled),
                _ = tokio::time::sleep(PAUSE_POLL) => {}
            }
            if !self.shared.paused.load(Ordering::Relaxed) {
                self.shared.status().state = "running";
            }
        }
    }

    /// Sleeps as long as moving `bytes` takes at `rate` bytes per second
    /// (nothing when `rate` is 0), so foreground traffic keeps priority.
    pub async fn pace(&self, bytes: u64, rate: u64) -> Result<(), UpkeepError> {
        if rate == 0 || bytes == 0 {
            return self.checkpoint().await;
        }
        let wait = Duration::from_secs_f64(bytes as f64 / rate as f64);
        tokio::select! {
            _ = self.cancel.cancelled() => return Err(UpkeepError::Cancelled),
            _ = tokio::time::sleep(wait) => {}
        }
        self.checkpoint().await
    }
}

/// Runs the workers of one scope (a node, or a process) and publishes
/// their status.
#[derive(Debug)]
pub struct Registry {
    scope: String,
    ns: Arc<Namespace>,
    workers: Mutex<Vec<Arc<Shared>>>,
}

impl Registry {
    /// A registry for `scope` publishing to `ns`.
    pub fn new(scope: impl Into<String>, ns: Arc<Namespace>) -> Arc<Registry> {
        Arc::new(Registry {
            scope: scope.into(),
            ns,
            workers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `worker` until `cancel` fires: a first pass after
    /// [`Worker::first_pass_after`] (at once by default), then one every
    /// [`Worker::every`].
    pub fn spawn<W: Worker>(&self, mut worker: W, cancel: CancellationToken) -> JoinHandle<()> {
        let shared = Arc::new(Shared {
            name: worker.name(),
            status: Mutex::new(Status {
                state: "idle",
                progress: String::new(),
                last_error: None,
                passes: 0,
            }),
            paused: AtomicBool::new(false),
        });
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(shared.clone());
        let scope = self.scope.clone();
        let ctl = Control { shared, cancel };
        tokio::spawn(async move {
            let first = tokio::time::Instant::now() + worker.first_pass_after();
            let mut ticker = tokio::time::interval_at(first, worker.every());
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ctl.cancel.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                if ctl.checkpoint().await.is_err() {
                    break;
                }
                ctl.shared.status().state = "running";
                let result = worker.pass(&ctl).await;
                let mut st = ctl.shared.status();
                match result {
                    Ok(summary) => {
                        st.passes += 1;
                        st.state = "idle";
                        st.last_error = None;
                        // An empty summary keeps the progress the pass set.
                        if !summary.is_empty() {
                            tracing::info!(scope, worker = worker.name(), "{summary}");
                            st.progress = summary;
                        }
                    }
                    Err(UpkeepError::Cancelled) => break,
                    Err(e) => {
                        tracing::warn!(scope, worker = worker.name(), error = %e, "pass failed; retrying at the next tick");
                        st.state = "failing";
                        st.last_error = Some(e.to_string());
                    }
                }
            }
        })
    }

    /// Writes every worker's status to metadata once and takes the pause
    /// flags back.
    pub async fn publish(&self) -> Result<(), UpkeepError> {
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for w in workers {
            let rec = {
                let st = w.status();
                WorkerRecord {
                    scope: self.scope.clone(),
                    name: w.name.to_owned(),
                    state: st.state.to_owned(),
                    progress: st.progress.clone(),
                    last_error: st.last_error.clone(),
                    passes: st.passes,
                    updated_ms: system_now_ms(),
                    paused: false,
                }
            };
            let paused = self.ns.put_worker(&rec).await?;
            w.paused.store(paused, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Publishes every [`PUBLISH_EVERY`] until `cancel` fires.
    pub async fn run_publisher(self: Arc<Self>, cancel: CancellationToken) {
        let mut ticker = tokio::time::interval(PUBLISH_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if let Err(e) = self.publish().await {
                tracing::debug!(scope = %self.scope, error = %e, "cannot publish worker status; retrying");
            }
        }
    }
}
