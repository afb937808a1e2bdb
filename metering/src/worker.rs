//! The metering worker: writes every account's usage reports on a
//! schedule (`--metering-every`, default hourly).
//!
//! The first pass comes one interval after the process starts. Each pass,
//! for each account: the storage report of the current hour
//! (a snapshot taken now; a later pass in the same hour replaces it), and
//! the compute report of every hour that has usage records and no final
//! report yet — the current hour's so far, and each earlier hour once
//! more after it ended (then it is final: its object was written after
//! its hour). `latest` is snaplinked to the newest of each. Usage records
//! older than the retention are purged; an hour is reported before its
//! records can be, as long as the worker ran at least once within the
//! retention.
//!
//! Any number of processes may run it (every supervisor does): a report
//! written twice is written with the same figures, give or take what
//! changed in between.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use compute::objects::ObjectIo;
use meta::jobs::JobStore;
use meta::namespace::{Conditions, Headers, Namespace, system_now_ms};
use meta::path::MantaPath;
use serde_json::Value;
use upkeep::{Control, UpkeepError, Worker};

use crate::compute::{account_compute, oldest_record_ms};
use crate::report::{
    Category, HOUR_MS, category_dir, compute_line, hour_of, report_name, storage_line,
};
use crate::storage::account_storage;
use crate::{MeteringError, Result};

/// Default time between passes.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(3600);
/// Default time usage records are kept.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Media type of report objects (newline-separated JSON).
const REPORT_TYPE: &str = "application/x-json-stream";

/// The metering worker.
pub struct Metering {
    /// Names and accounts.
    pub ns: Arc<Namespace>,
    /// Usage records.
    pub jobs: JobStore,
    /// Where report objects are written.
    pub io: ObjectIo,
    /// Time between passes.
    pub every: Duration,
    /// How long usage records are kept.
    pub retention: Duration,
}

impl Worker for Metering {
    fn name(&self) -> &'static str {
        "metering"
    }

    fn every(&self) -> Duration {
        self.every
    }

    /// Reports are due once an interval has passed (Manta wrote them after
    /// the hour), not the moment a process starts: a short-lived process
    /// writes none, and a restart does not rewrite them.
    fn first_pass_after(&self) -> Duration {
        self.every
    }

    async fn pass(&mut self, ctl: &Control) -> std::result::Result<String, UpkeepError> {
        let now = system_now_ms();
        let accounts = self.ns.list_accounts().await?;
        let mut written = 0usize;
        for (i, a) in accounts.iter().enumerate() {
            ctl.checkpoint().await?;
            ctl.progress(format!("account {}/{}: {}", i + 1, accounts.len(), a.login));
            written += self
                .account(&a.login, now)
                .await
                .map_err(|e| UpkeepError::Failed(format!("{}: {e}", a.login)))?;
        }
        Ok(format!(
            "{} accounts, {written} reports written",
            accounts.len()
        ))
    }
}

impl Metering {
    /// Writes `login`'s due reports; returns how many.
    async fn account(&self, login: &str, now: u64) -> Result<usize> {
        let hour = hour_of(now);
        let storage = account_storage(&self.ns, login).await?;
        let name = report_name(login, Category::Storage, hour);
        self.write(&name, &storage_line(&storage, hour)).await?;
        self.link_latest(login, Category::Storage, &name).await?;
        let mut written = 1;

        let retention_ms = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
        let horizon = hour_of(now.saturating_sub(retention_ms));
        if let Some(oldest) = oldest_record_ms(&self.jobs, login).await? {
            let mut h = hour_of(oldest).max(horizon);
            let mut newest = None;
            while h <= hour {
                let name = report_name(login, Category::Compute, h);
                let done = h < hour && self.written_after(&name, h + HOUR_MS).await?;
                if !done {
                    let usage = account_compute(&self.jobs, login, h, h + HOUR_MS).await?;
                    if !usage.is_empty() {
                        self.write(&name, &compute_line(&usage, h)).await?;
                        written += 1;
                        newest = Some(name);
                    }
                }
                h += HOUR_MS;
            }
            if let Some(name) = newest {
                self.link_latest(login, Category::Compute, &name).await?;
            }
        }
        self.jobs.purge_usage(login, horizon, 256).await?;
        Ok(written)
    }

    /// Whether object `name` exists and was written at or after `ms`.
    async fn written_after(&self, name: &str, ms: u64) -> Result<bool> {
        let path = parse(name)?;
        Ok(self
            .ns
            .get(&path)
            .await?
            .is_some_and(|e| !e.is_directory() && e.mtime_ms >= ms))
    }

    async fn write(&self, name: &str, line: &Value) -> Result<()> {
        let mut body = line.to_string().into_bytes();
        body.push(b'\n');
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(body))]);
        self.io
            .put_stream(name, REPORT_TYPE, Headers::default(), stream, true)
            .await
            .map_err(|e| MeteringError::Write {
                name: name.to_owned(),
                error: e.to_string(),
            })?;
        Ok(())
    }

    async fn link_latest(&self, login: &str, category: Category, name: &str) -> Result<()> {
        let latest = parse(&format!("{}/latest", category_dir(login, category)))?;
        self.ns
            .snaplink(&parse(name)?, &latest, &Conditions::none())
            .await?;
        Ok(())
    }
}

fn parse(name: &str) -> Result<MantaPath> {
    MantaPath::parse(name).map_err(|e| MeteringError::Name(e.to_string()))
}
