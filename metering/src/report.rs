//! Manta's usage reports: their object names and their JSON lines.
//!
//! One object per account, category and hour:
//! `/:login/reports/usage/{storage,compute}/YYYY/MM/DD/HH/hHH.json` (UTC),
//! and `/:login/reports/usage/{category}/latest` a snaplink to the newest.
//! Each holds one JSON line; every count is a decimal string, as in
//! Manta's reports. Storage lines carry Manta's `directories`, `keys`,
//! `objects` and `bytes` per top directory, plus Tidepool's `storedBytes`
//! (bytes × copies); compute lines Manta's `memory`, `disk`, `seconds`,
//! `ntasks` and `bandwidth` per job and phase, plus `gbSeconds`.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::compute::{ComputeUsage, PhaseUsage};
use crate::storage::{Counts, StorageUsage};

/// Milliseconds in an hour.
pub const HOUR_MS: u64 = 3_600_000;

/// A report category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Storage held.
    Storage,
    /// Compute used.
    Compute,
}

impl Category {
    /// Its directory name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Storage => "storage",
            Category::Compute => "compute",
        }
    }
}

fn utc(ms: u64) -> OffsetDateTime {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The start of the hour `ms` falls in.
pub fn hour_of(ms: u64) -> u64 {
    ms - ms % HOUR_MS
}

/// `2013-06-24T17:00:00.000Z`, as Manta wrote report dates (and job times).
pub fn iso_date(ms: u64) -> String {
    jobs::status::iso_time(ms)
}

/// The directory of `login`'s reports of `category`.
pub fn category_dir(login: &str, category: Category) -> String {
    format!("/{login}/reports/usage/{}", category.as_str())
}

/// The object name of `login`'s `category` report for the hour starting
/// at `hour_ms`.
pub fn report_name(login: &str, category: Category, hour_ms: u64) -> String {
    let t = utc(hour_ms);
    format!(
        "{}/{:04}/{:02}/{:02}/{:02}/h{:02}.json",
        category_dir(login, category),
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.hour()
    )
}

fn counts_json(c: &Counts) -> Value {
    json!({
        "directories": c.directories.to_string(),
        "keys": c.keys.to_string(),
        "objects": c.objects.to_string(),
        "bytes": c.bytes.to_string(),
        "storedBytes": c.stored_bytes.to_string(),
    })
}

/// The storage line for the hour starting at `hour_ms`.
pub fn storage_line(usage: &StorageUsage, hour_ms: u64) -> Value {
    let by_top: Map<String, Value> = usage
        .by_top
        .iter()
        .map(|(k, c)| ((*k).to_owned(), counts_json(c)))
        .collect();
    json!({ "storage": by_top, "date": iso_date(hour_ms) })
}

/// Seconds with millisecond precision, as a decimal string.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn phase_json(p: &PhaseUsage) -> Value {
    json!({
        "memory": p.memory_mb.to_string(),
        "disk": p.disk_gb.to_string(),
        "seconds": seconds(p.wall_ms),
        "ntasks": p.ntasks.to_string(),
        "gbSeconds": format!("{:.3}", p.gb_seconds()),
        "bandwidth": { "in": p.bytes_in.to_string(), "out": p.bytes_out.to_string() },
    })
}

/// The compute line for the hour starting at `hour_ms`.
pub fn compute_line(usage: &ComputeUsage, hour_ms: u64) -> Value {
    let jobs: Map<String, Value> = usage
        .jobs
        .iter()
        .map(|(id, phases)| {
            let phases: Map<String, Value> = phases
                .iter()
                .map(|(n, p)| (n.to_string(), phase_json(p)))
                .collect();
            (id.to_string(), Value::Object(phases))
        })
        .collect();
    json!({ "jobs": jobs, "date": iso_date(hour_ms) })
}

/// The summary `tidepool admin usage` prints for one account: storage
/// now and compute over a window, with totals.
pub fn summary_line(
    login: &str,
    storage: &StorageUsage,
    compute: &ComputeUsage,
    from_ms: u64,
    to_ms: u64,
) -> Value {
    let mut s = storage_line(storage, to_ms);
    let mut c = compute_line(compute, from_ms);
    let total = compute.total();
    json!({
        "account": login,
        "date": iso_date(to_ms),
        "storage": s["storage"].take(),
        "storageTotal": counts_json(&storage.total()),
        "compute": {
            "from": iso_date(from_ms),
            "to": iso_date(to_ms),
            "jobs": c["jobs"].take(),
            "total": phase_json(&total),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates_are_utc_hours() {
        // 2013-06-24T17:23:45.678Z
        let ms = 1_372_094_625_678;
        assert_eq!(iso_date(hour_of(ms)), "2013-06-24T17:00:00.000Z");
        assert_eq!(iso_date(ms), "2013-06-24T17:23:45.678Z");
        assert_eq!(
            report_name("jill", Category::Storage, hour_of(ms)),
            "/jill/reports/usage/storage/2013/06/24/17/h17.json"
        );
        assert_eq!(
            report_name("jill", Category::Compute, 0),
            "/jill/reports/usage/compute/1970/01/01/00/h00.json"
        );
    }

    #[test]
    fn counts_are_strings() {
        let mut u = StorageUsage::default();
        u.by_top.insert(
            "stor",
            Counts {
                directories: 2,
                keys: 3,
                objects: 2,
                bytes: u64::MAX,
                stored_bytes: 7,
            },
        );
        let v = storage_line(&u, 0);
        assert_eq!(v["storage"]["stor"]["bytes"], json!(u64::MAX.to_string()));
        assert_eq!(v["storage"]["stor"]["storedBytes"], json!("7"));
        assert_eq!(v["date"], json!("1970-01-01T00:00:00.000Z"));
        assert_eq!(seconds(1_005), "1.005");
    }
}
