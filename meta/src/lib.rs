//! Metadata for Tidepool: the ordered transactional key/value trait
//! ([`kv`]), its key encoding ([`keys`]), the Manta namespace model built on
//! any backend ([`namespace`]), validated paths ([`path`]), the embedded
//! single-machine backend on redb ([`embedded`]), and the backend-generic
//! conformance suite every backend must pass ([`conformance`]).
//!
//! This crate never does HTTP and depends on no other Tidepool crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use meta::{embedded::EmbeddedKv, namespace::Namespace, path::MantaPath};
//!
//! let kv = Arc::new(EmbeddedKv::open("/var/lib/tidepool/meta.redb").await?);
//! let ns = Namespace::new(kv);
//! ns.create_account("alice").await?;
//! let dir = MantaPath::parse("/alice/stor/photos")?;
//! ns.put_directory(&dir, &Default::default()).await?;
//! assert_eq!(ns.count(&dir).await?, 0);
//! # Ok(()) }
//! ```

pub mod conformance;
pub mod embedded;
pub mod jobs;
pub mod keys;
pub mod kv;
pub mod namespace;
pub mod path;
