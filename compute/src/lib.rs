//! A storage node's compute agent and the cluster side of job tasks.
//!
//! * [`agent`] — the compute agent: runs job tasks on this node's copies in
//!   the sandbox and stores their outputs.
//! * [`builtins`] — Manta's in-task tools (`mcat`, `mpipe`, `mtee`,
//!   `msplit`, `mput`, `mget`, `mls`, `mrm`, `mmkdir`) as sandbox host builtins acting as the
//!   job's owner.
//! * [`fair`] — admission of tasks to a node's wasm instances, with a fair
//!   share per account.
//! * [`msplit_key`] — msplit's partition keys as Manta built them, and the
//!   JavaScript subset `msplit -e` evaluates.
//! * [`metering`] — what each task attempt used, recorded for usage
//!   reports.
//! * [`objects`] — named objects written and read from inside the cluster
//!   (task outputs, archives): durable copies first, then one meta commit.
//! * [`task`] — what a task's phases see (mounts, environment, limits),
//!   shared by the agent and `tidepool exec`.
//! * [`session`] — `mlogin`'s interactive session: a task running Manta's
//!   medusa agent asset serves a shell over the gateway's reflector.
//! * [`task_jobs`] — `mjob` in a task: jobs started as the owner, nesting bounded.
//! * [`task_client`] — the supervisor's HTTP side of the task protocol and
//!   the job archive writer.
//! * [`runner`], [`workers`], [`proxy`], [`frame`] — where phases run: in
//!   task worker processes the agent supervises (one per task slot, long
//!   lived, replaced when they die), their in-task builtins proxied back to
//!   the agent over a private unix socket.
//!
//! Process model: guest code never runs in the process holding the
//! gateway, the metadata and the agent. A host fault a guest or a script
//! triggers (stack overflow, abort, a wasmtime bug, a panic in a builtin's
//! worker side) kills one worker: the phase it ran fails as
//! `InternalError` "task worker crashed: signal N (NAME)", which the
//! supervisor retries on another copy up to the job's retry budget and then
//! records as the task's error. `tidepool exec` runs phases through the
//! same worker pool.
//!
//! It stands on `storage-node` (copies and the node client), `jobs` (the
//! task protocol), `sandbox` (running guest code) and `meta` (names). The
//! storage node itself needs none of this: it only stores bytes.

pub mod agent;
pub mod builtins;
pub mod fair;
pub mod frame;
pub mod metering;
pub mod msplit_key;
pub mod objects;
pub mod proxy;
pub mod runner;
pub mod session;
pub mod task;
pub mod task_client;
pub mod task_jobs;
pub mod workers;
