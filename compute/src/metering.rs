//! Metering of task attempts: what each attempt that ran on this node
//! used (wall time from admission, the memory and disk its phase asked
//! for, object bytes read and written), recorded in metadata as
//! [`TaskUsage`] for the compute usage reports (crate `metering`).
//!
//! Guarantees: an attempt is recorded once it was admitted to the node,
//! whatever its outcome; records are written off the task's path, many to
//! a transaction, so metering adds no metadata round trip to a task. They
//! are at-most-once: records still queued when the process dies (at most
//! one flush, about a second) or refused by metadata for longer than the
//! retries are lost and logged, never retried into double counting.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meta::jobs::{JobStore, TaskUsage};
use tokio::sync::mpsc;

use jobs::protocol::TaskRequest;

/// Records queued before new ones are dropped (metadata unreachable).
const QUEUE: usize = 16_384;
/// Records written per transaction.
const BATCH: usize = 256;
/// Attempts at writing one batch.
const WRITE_ATTEMPTS: u32 = 5;

/// Object bytes moved by one task attempt; shared by every [`ObjectIo`]
/// view the attempt uses ([`crate::objects::ObjectIo::metered`]).
///
/// [`ObjectIo`]: crate::objects::ObjectIo
#[derive(Debug, Default)]
pub struct IoMeter {
    read: AtomicU64,
    written: AtomicU64,
}

impl IoMeter {
    /// Counts `n` bytes read.
    pub fn add_read(&self, n: u64) {
        self.read.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` bytes written.
    pub fn add_written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes read so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// The meter of one attempt: its I/O and when it was admitted.
#[derive(Debug, Default)]
pub struct TaskMeter {
    /// Object bytes read and written.
    pub io: Arc<IoMeter>,
    admitted: OnceLock<Instant>,
}

impl TaskMeter {
    /// The attempt got its share of the node: its time starts now (the
    /// wait in the queue is not billed).
    pub fn admitted(&self) {
        let _ = self.admitted.set(Instant::now());
    }

    /// The usage of `req`'s attempt, ended now; `None` if it was never
    /// admitted (it used nothing).
    pub fn usage(&self, req: &TaskRequest, ended_ms: u64) -> Option<TaskUsage> {
        let admitted = self.admitted.get()?;
        Some(TaskUsage {
            owner: req.owner.clone(),
            job: req.job_id,
            phase: req.phase,
            task: req.task_id,
            attempt: req.attempt,
            ended_ms,
            wall_ms: u64::try_from(admitted.elapsed().as_millis()).unwrap_or(u64::MAX),
            memory_mb: req.limits.memory_mb,
            disk_gb: req.limits.disk_gb,
            bytes_in: self.io.read(),
            bytes_out: self.io.written(),
        })
    }
}

/// Writes usage records to metadata in the background, in batches.
#[derive(Debug, Clone)]
pub struct UsageRecorder {
    tx: mpsc::Sender<TaskUsage>,
}

impl UsageRecorder {
    /// A recorder writing through `jobs`; starts its writer task on the
    /// current tokio runtime.
    pub fn spawn(jobs: JobStore) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(jobs, rx));
        UsageRecorder { tx }
    }

    /// Queues `usage`; never waits. A full queue (metadata unreachable for
    /// long) drops the record, logged.
    pub fn record(&self, usage: TaskUsage) {
        if let Err(e) = self.tx.try_send(usage) {
            tracing::warn!(error = %e, "usage record dropped: the metering queue is full");
        }
    }
}

async fn write_loop(jobs: JobStore, mut rx: mpsc::Receiver<TaskUsage>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut attempt = 1;
        loop {
            match jobs.record_usage(&batch).await {
                Ok(()) => break,
                Err(e) if attempt < WRITE_ATTEMPTS => {
                    tracing::info!(error = %e, attempt, "writing usage records; trying again");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, records = batch.len(), "usage records lost: metadata refused them");
                    break;
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_never_admitted_used_nothing() {
        let m = TaskMeter::default();
        let req: TaskRequest = serde_json::from_value(serde_json::json!({
            "job_id": uuid::Uuid::nil(), "owner": "a", "phase": 1,
            "task_id": uuid::Uuid::nil(), "attempt": 2, "exec": "wc",
            "input": {"kind": "reduce", "reducer": 0}, "env": [],
            "stdout_object": "/a/jobs/x", "stderr_object": "/a/jobs/y",
            "next_reducers": 0, "limits": {"memory_mb": 2048, "disk_gb": 16}
        }))
        .expect("request");
        assert!(m.usage(&req, 5).is_none());
        m.admitted();
        m.io.add_read(10);
        m.io.add_written(3);
        m.io.add_read(5);
        let u = m.usage(&req, 5).expect("admitted");
        assert_eq!((u.bytes_in, u.bytes_out), (15, 3));
        assert_eq!(
            (u.memory_mb, u.disk_gb, u.phase, u.attempt),
            (2048, 16, 1, 2)
        );
        assert_eq!(u.owner, "a");
    }
}
