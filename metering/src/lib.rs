//! Metering: what each account stores and what its jobs ran, as Manta's
//! usage reports.
//!
//! * [`storage`] — an account's storage now: per top directory, the
//!   directories, keys, unique objects, logical bytes and stored bytes
//!   (bytes × copies), from one walk of its names.
//! * [`compute`] — an account's compute over a time window, per job and
//!   phase: task attempts, wall seconds, GB-seconds of the memory asked
//!   for, object bytes in and out, from the records task attempts leave
//!   ([`compute::metering`](::compute::metering)).
//! * [`report`] — both as Manta's JSON report lines, and where report
//!   objects go (`/:login/reports/usage/{storage,compute}/YYYY/MM/DD/HH/hHH.json`).
//! * [`worker`] — the background worker that writes the reports on a
//!   schedule.
//!
//! Figures are exact for what metadata holds when they are taken; all
//! counts in reports are decimal strings, as Manta's were (they may exceed
//! what a JSON number holds exactly).

pub mod compute;
pub mod report;
pub mod storage;
pub mod worker;

/// Errors of metering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeteringError {
    /// Names or accounts could not be read.
    #[error("metadata: {0}")]
    Meta(#[from] meta::namespace::NamespaceError),
    /// Usage records could not be read or purged.
    #[error("job tables: {0}")]
    Jobs(#[from] meta::jobs::JobStoreError),
    /// A report object could not be written.
    #[error("writing report {name}: {error}")]
    Write {
        /// The report's object name.
        name: String,
        /// Why.
        error: String,
    },
    /// A name could not be built (an invalid login).
    #[error("invalid name: {0}")]
    Name(String),
}

/// Result of metering.
pub type Result<T> = std::result::Result<T, MeteringError>;
