//! Background upkeep of the stored bytes: the workers that keep every
//! object at its durability without anyone asking.
//!
//! * [`audit`] — a node's copies against metadata: copies no name refers to
//!   are removed once older than the grace period; names whose copy on
//!   this node is missing drop it, so repair sees them short.
//! * [`scrub`] — every copy's block checksums and blake3 read and checked
//!   on a schedule; a bad copy is taken out of service (tombstoned, dropped
//!   from metadata) and repair replaces it.
//! * [`repair`] — objects with fewer healthy copies than their durability
//!   (node lost, copy missing or bad, node draining) get new copies from a
//!   good one, on nodes placement chooses, committed in metadata before any
//!   old copy is let go.
//! * [`gc`] — today's garbage collection of freed copies, on the same shape.
//! * [`zpool`] — `zpool scrub` of the ZFS pool under a node, on the scrub
//!   schedule.
//! * [`heartbeat`] — the node's registration and capacity reports, on the
//!   same shape (a beat per tick).
//!
//! Every worker has the shape of [`worker::Worker`]: a named pass run every
//! so often, with progress, last error and an operator's pause published
//! to metadata by a [`worker::Registry`], so `tidepool admin workers` shows
//! (and pauses) every worker of every process. A failing pass is logged,
//! recorded and retried at the next tick: workers never die of metadata or
//! node errors.
//!
//! Work is split without coordination: each node audits and scrubs only
//! its own copies, and of an object needing repair only its *leader* acts
//! — the first node in the name's copy list that serves reads — so two
//! nodes never repair the same name at once (a race with a user's
//! overwrite is settled by [`meta::namespace::Namespace::set_copies`]'s
//! compare-and-set).

pub mod audit;
pub mod config;
pub mod gc;
pub mod heartbeat;
pub mod repair;
pub mod scrub;
pub mod worker;
pub mod zpool;

mod scan;

pub use config::{UpkeepConfig, parse_duration, parse_rate, parse_size};
pub use worker::{Control, Registry, Worker};

/// Why a pass stopped early. The next pass starts over; nothing is lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpkeepError {
    /// Metadata could not be read or written.
    #[error("metadata: {0}")]
    Meta(#[from] meta::namespace::NamespaceError),
    /// The local object store failed.
    #[error("local store: {0}")]
    Store(#[from] storage_node::store::StoreError),
    /// Garbage collection failed.
    #[error(transparent)]
    Gc(#[from] storage_node::gc::GcError),
    /// A `zfs`/`zpool` command failed.
    #[error(transparent)]
    Zfs(#[from] storage_node::zfs::ZfsError),
    /// A worker defined in another crate failed (its error, rendered).
    #[error("{0}")]
    Failed(String),
    /// The pass was cancelled (the process is stopping).
    #[error("cancelled")]
    Cancelled,
}
