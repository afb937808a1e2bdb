//! Manta-style compute jobs for Tidepool: the job manifest ([`manifest`]),
//! the status record and state machine as the `mjob` CLI reads them
//! ([`status`]), object naming and the task environment ([`naming`]), the
//! task protocol spoken with storage-node agents ([`protocol`]), how tasks
//! are executed ([`executor`]), and the stateless [`supervisor`].
//!
//! All job state lives in `meta` (see `meta::jobs`), so any supervisor can
//! take over a job whose owner died. This crate does no HTTP itself: the
//! gateway maps its types onto the wire, and an HTTP [`executor::TaskExecutor`]
//! talks to node agents. Depends on `meta` and `placement` only.

pub mod archive;
pub mod executor;
pub mod manifest;
pub mod memo;
pub mod naming;
pub mod protocol;
pub mod roles;
pub mod status;
pub mod supervisor;

/// Errors of the jobs crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobsError {
    /// The job tables failed or refused.
    #[error(transparent)]
    Store(#[from] meta::jobs::JobStoreError),
    /// The namespace (object lookups, node list) failed.
    #[error(transparent)]
    Namespace(#[from] meta::namespace::NamespaceError),
    /// A stored manifest no longer parses.
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
}

#[cfg(test)]
mod tests;
