//! TiKV housekeeping: advancing the MVCC garbage-collection safe point.
//!
//! Without TiDB nothing advances TiKV's GC safe point, so every old version
//! of every key would be kept forever. [`spawn_gc_loop`] calls
//! `TransactionClient::gc(now - keep)` on a schedule until cancelled: it
//! resolves locks older than the safe point, then stores the safe point in
//! PD, after which TiKV compacts versions older than it. Snapshots older
//! than `keep` become unreadable, so `keep` must exceed the longest snapshot
//! lifetime (listings, job scans).
//!
//! Running the loop in several processes is harmless (PD keeps the maximum)
//! but wasteful: run it in one supervisor-like process per cluster.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::TikvKv;

/// Schedule of the GC loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcConfig {
    /// Time between two safe-point advances.
    pub interval: Duration,
    /// How far behind "now" the safe point stays.
    pub keep: Duration,
}

impl Default for GcConfig {
    /// TiDB's defaults: every 10 minutes, keep 10 minutes of history.
    fn default() -> Self {
        GcConfig {
            interval: Duration::from_secs(600),
            keep: Duration::from_secs(600),
        }
    }
}

/// Advance the safe point every `cfg.interval` (first run immediately)
/// until `cancel` fires. Failures are logged and retried next tick; the
/// task never panics.
pub fn spawn_gc_loop(kv: TikvKv, cfg: GcConfig, cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cfg.interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let run = kv.advance_gc_safe_point(cfg.keep);
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = run => match r {
                    Ok(sp) => tracing::debug!(safe_point = sp, "TiKV GC safe point advanced"),
                    Err(e) => tracing::warn!("advancing the TiKV GC safe point failed: {e}"),
                },
            }
        }
    })
}
