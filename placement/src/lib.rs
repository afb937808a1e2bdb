//! Placement: pure decisions about which storage nodes hold which copies.
//!
//! Three questions, each answered by one function and nothing else:
//!
//! * [`choose_for_write`] — which `n` nodes receive a new object. The answer
//!   always names `n` *distinct*, *healthy* nodes with room for the object,
//!   spreads them over as many availability zones as possible (and as evenly
//!   as possible when `n` exceeds the number of zones), and prefers nodes with
//!   more free space while staying random enough that writes spread out.
//! * [`order_for_read`] — in which order a reader tries an object's copies:
//!   healthy copies first in random order (spreading read load), then the
//!   rest.
//! * [`choose_for_task`] — which copy runs a map task: a healthy one on the
//!   least-loaded node.
//!
//! Guarantees: no I/O, no clocks, no global state. Every function is
//! deterministic for a given `seed`, so callers pick the seed (random in
//! production, fixed in tests) and decisions can be replayed. This crate
//! depends on no other Tidepool crate; callers translate their node records
//! into [`Candidate`]s.
//!
//! ```
//! use placement::{Candidate, choose_for_write};
//! let nodes = vec![
//!     Candidate::new("n1", "az-a", 100 << 30, true),
//!     Candidate::new("n2", "az-a", 100 << 30, true),
//!     Candidate::new("n3", "az-b", 100 << 30, true),
//! ];
//! let chosen = choose_for_write(&nodes, 2, Some(1 << 20), 42).unwrap();
//! // Two distinct zones were available, so both are used.
//! assert!(chosen.contains(&"n3".to_string()));
//! ```

mod read;
mod rng;
mod task;
mod write;

pub use read::order_for_read;
pub use task::choose_for_task;
pub use write::choose_for_write;

/// What placement knows about one storage node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Node id as recorded in metadata.
    pub id: String,
    /// Availability zone (failure domain) the node lives in.
    pub az: String,
    /// Bytes the node can still accept.
    pub free_bytes: u64,
    /// Whether the node's heartbeat is fresh; unhealthy nodes never receive
    /// writes and are tried last for reads.
    pub healthy: bool,
}

impl Candidate {
    /// Convenience constructor.
    pub fn new(
        id: impl Into<String>,
        az: impl Into<String>,
        free_bytes: u64,
        healthy: bool,
    ) -> Self {
        Self {
            id: id.into(),
            az: az.into(),
            free_bytes,
            healthy,
        }
    }
}

/// Why no placement could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// Fewer healthy nodes exist than copies were asked for.
    #[error("not enough storage nodes: wanted {wanted}, {available} healthy")]
    NotEnoughNodes {
        /// Copies asked for.
        wanted: usize,
        /// Distinct healthy nodes known.
        available: usize,
    },
    /// Enough healthy nodes exist, but too few have room for the object.
    #[error(
        "not enough space: wanted {wanted} nodes with {size} bytes free, {available} have room"
    )]
    NotEnoughSpace {
        /// Copies asked for.
        wanted: usize,
        /// Healthy nodes with room for the object.
        available: usize,
        /// Size the object needs on each node (0 when unknown).
        size: u64,
    },
    /// None of an object's copies lives on a healthy node.
    #[error("no healthy node holds a copy")]
    NoHealthyCopy,
}
