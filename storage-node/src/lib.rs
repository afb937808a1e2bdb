//! A storage node: durable object files over HTTP, and the client that talks
//! to nodes.
//!
//! * [`store`] — the on-disk layout: one file per copy, written to a temp
//!   file, fsynced, renamed into place and the directory fsynced before an
//!   upload is acknowledged; deletes move files to a tombstone area.
//! * [`sums`] — the per-block CRC-32C file beside each copy, checked on
//!   every read.
//! * [`gc`] — deleting copies no name refers to any more (meta's GC
//!   records) and emptying old tombstone days.
//! * [`server`] — the node's HTTP service over the store ([`server::NodeServer`]).
//! * [`client`] — [`client::NodeClient`], the pooled client gateways and
//!   supervisors use, including replicated writes to N nodes at once and
//!   reads that fail over between copies ([`fanout`]).
//! * [`heartbeat`] — registration and heartbeats in metadata.
//! * [`protocol`] — the wire types both sides share.
//! * [`zfs`] — a node's files on a ZFS dataset: quota, pool health, scrub,
//!   snapshots (`zfs`/`zpool` commands).
//!
//! Every request to a node is signed with the cluster credential
//! ([`cluster_auth`]); the server refuses unsigned, wrongly signed and
//! replayed requests with 401 before any handler runs, and
//! [`client::NodeClient`] signs everything it sends.
//!
//! What this crate guarantees to its callers: an acknowledged PUT is durable
//! on disk with the returned md5/blake3; a failed PUT leaves nothing visible;
//! a read never delivers a corrupt block, or a truncated object as a
//! complete one (it ends in an error instead, and reads of several copies
//! go on from another copy).
//!
//! It depends on `meta` (node registry, GC records) and nothing that runs
//! guest code: the compute agent lives in the `compute` crate.

pub mod client;
pub mod fanout;
pub mod gc;
pub mod heartbeat;
pub mod protocol;
pub mod server;
pub mod store;
pub mod sums;
pub mod zfs;

pub use client::{ClientError, ClientOptions, NodeClient, ObjectStream};
pub use cluster_auth::ClusterKey;
pub use fanout::{CopyReceipt, NodeTarget, ReadError, ReplicateError};
pub use protocol::{ByteRange, Capacity, NodeStatus, PutReceipt};
pub use server::{NodeConfig, NodeServer};
