//! A storage node's compute agent and the cluster side of job tasks.
//!
//! * [`agent`] — the compute agent: runs job tasks on this node's copies in
//!   the sandbox and stores their outputs.
//! * [`builtins`] — Manta's in-task tools (`mcat`, `mpipe`, `mtee`,
//!   `msplit`, `mput`, `mget`, `mls`) as sandbox host builtins acting as the
//!   job's owner.
//! * [`fair`] — admission of tasks to a node's wasm instances, with a fair
//!   share per account.
//! * [`objects`] — named objects written and read from inside the cluster
//!   (task outputs, archives): durable copies first, then one meta commit.
//! * [`task_client`] — the supervisor's HTTP side of the task protocol and
//!   the job archive writer.
//!
//! It stands on `storage-node` (copies and the node client), `jobs` (the
//! task protocol), `sandbox` (running guest code) and `meta` (names). The
//! storage node itself needs none of this: it only stores bytes.

pub mod agent;
pub mod builtins;
pub mod fair;
pub mod objects;
pub mod task_client;
