//! An account's compute over a time window, from the usage records task
//! attempts leave (`meta::jobs::TaskUsage`, written by the node that ran
//! each attempt).
//!
//! Per job and phase, as Manta's compute report broke it down: the
//! memory (MB) and disk (GB) the phase asked for, the attempts seen
//! (`ntasks`; a retried task counts each attempt, as each used the
//! node), their summed wall time, GB-seconds (wall time × memory asked,
//! the unit compute was billed in), and the object bytes they read and
//! wrote.

use std::collections::BTreeMap;

use meta::jobs::{JobStore, TaskUsage};
use uuid::Uuid;

use crate::Result;

/// Records read per page.
const PAGE: usize = 1000;

/// The compute of one phase of one job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseUsage {
    /// Memory asked for, MB (the largest of its attempts').
    pub memory_mb: u32,
    /// Disk asked for, GB (the largest of its attempts').
    pub disk_gb: u32,
    /// Attempts run.
    pub ntasks: u64,
    /// Their wall time, ms.
    pub wall_ms: u64,
    /// Their wall time × memory, MB·ms.
    pub mb_ms: u128,
    /// Object bytes read.
    pub bytes_in: u64,
    /// Object bytes written.
    pub bytes_out: u64,
}

impl PhaseUsage {
    fn add(&mut self, u: &TaskUsage) {
        self.memory_mb = self.memory_mb.max(u.memory_mb);
        self.disk_gb = self.disk_gb.max(u.disk_gb);
        self.ntasks += 1;
        self.wall_ms += u.wall_ms;
        self.mb_ms += u128::from(u.memory_mb) * u128::from(u.wall_ms);
        self.bytes_in += u.bytes_in;
        self.bytes_out += u.bytes_out;
    }

    fn merge(&mut self, o: &PhaseUsage) {
        self.memory_mb = self.memory_mb.max(o.memory_mb);
        self.disk_gb = self.disk_gb.max(o.disk_gb);
        self.ntasks += o.ntasks;
        self.wall_ms += o.wall_ms;
        self.mb_ms += o.mb_ms;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
    }

    /// GB-seconds (wall time × memory asked for, GB = 1024 MB).
    pub fn gb_seconds(&self) -> f64 {
        self.mb_ms as f64 / 1024.0 / 1000.0
    }
}

/// An account's compute in a window, per job and phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComputeUsage {
    /// By job, then phase.
    pub jobs: BTreeMap<Uuid, BTreeMap<u32, PhaseUsage>>,
}

impl ComputeUsage {
    /// Adds one attempt's record.
    pub fn add(&mut self, u: &TaskUsage) {
        self.jobs
            .entry(u.job)
            .or_default()
            .entry(u.phase)
            .or_default()
            .add(u);
    }

    /// The sum over every job and phase (`memory_mb`/`disk_gb`: the
    /// largest asked for).
    pub fn total(&self) -> PhaseUsage {
        let mut t = PhaseUsage::default();
        for p in self.jobs.values().flat_map(|j| j.values()) {
            t.merge(p);
        }
        t
    }

    /// Whether no attempt was recorded.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// `login`'s compute for attempts that ended in `[from_ms, to_ms)`.
pub async fn account_compute(
    jobs: &JobStore,
    login: &str,
    from_ms: u64,
    to_ms: u64,
) -> Result<ComputeUsage> {
    let mut usage = ComputeUsage::default();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = jobs
            .usage(login, from_ms, to_ms, after.as_deref(), PAGE)
            .await?;
        let full = page.len() == PAGE;
        for (_, u) in &page {
            usage.add(u);
        }
        after = page.last().map(|(k, _)| k.clone());
        if !full {
            return Ok(usage);
        }
    }
}

/// When `login`'s oldest usage record not yet purged ended, if any.
pub async fn oldest_record_ms(jobs: &JobStore, login: &str) -> Result<Option<u64>> {
    let first = jobs.usage(login, 0, u64::MAX, None, 1).await?;
    Ok(first.first().map(|(_, u)| u.ended_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(job: Uuid, phase: u32, wall_ms: u64, memory_mb: u32) -> TaskUsage {
        TaskUsage {
            owner: "a".into(),
            job,
            phase,
            task: Uuid::new_v4(),
            attempt: 0,
            ended_ms: 1,
            wall_ms,
            memory_mb,
            disk_gb: 8,
            bytes_in: 100,
            bytes_out: 10,
        }
    }

    #[test]
    fn phases_add_up_per_job_and_in_total() {
        let (j1, j2) = (Uuid::new_v4(), Uuid::new_v4());
        let mut u = ComputeUsage::default();
        u.add(&rec(j1, 0, 1_000, 1024));
        u.add(&rec(j1, 0, 3_000, 1024));
        u.add(&rec(j1, 1, 2_000, 2048));
        u.add(&rec(j2, 0, 500, 512));
        let p = u.jobs[&j1][&0];
        assert_eq!(
            (p.ntasks, p.wall_ms, p.bytes_in, p.bytes_out),
            (2, 4_000, 200, 20)
        );
        assert!((p.gb_seconds() - 4.0).abs() < 1e-9);
        assert!((u.jobs[&j1][&1].gb_seconds() - 4.0).abs() < 1e-9);
        let t = u.total();
        assert_eq!((t.ntasks, t.wall_ms, t.memory_mb), (4, 6_500, 2048));
        assert!((t.gb_seconds() - 8.25).abs() < 1e-9);
    }
}
