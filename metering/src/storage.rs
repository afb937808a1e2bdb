//! An account's storage, taken by walking its names.
//!
//! Counted per top directory in Manta's order (`stor`, `public`, `jobs`,
//! `reports`, then `uploads`): every directory (the top one included),
//! every key (snaplinks included), and each unique object once — under
//! the first directory in that order that names it, as Manta counted
//! snaplinks — with its logical bytes and its stored bytes (bytes × the
//! copies metadata records). An empty object has no copies and stores
//! nothing.
//!
//! The walk reads directories in pages, so an account of any size is
//! walked in bounded memory apart from the set of object ids already
//! counted (16 bytes an object).

use std::collections::{BTreeMap, HashSet};

use meta::namespace::{EntryKind, ListOptions, Marker, Namespace};
use meta::path::{MantaPath, TopDir};
use serde::Serialize;

use crate::{MeteringError, Result};

/// Entries read per directory page.
const PAGE: usize = 1000;

/// The top directories in the order snaplinks are attributed.
pub const ORDER: [TopDir; 5] = [
    TopDir::Stor,
    TopDir::Public,
    TopDir::Jobs,
    TopDir::Reports,
    TopDir::Uploads,
];

/// The storage under one top directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Directories, the top directory included.
    pub directories: u64,
    /// Object names (snaplinks included).
    pub keys: u64,
    /// Unique objects first named here.
    pub objects: u64,
    /// Their logical bytes.
    pub bytes: u64,
    /// Their bytes on storage nodes: bytes × copies.
    pub stored_bytes: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.directories += o.directories;
        self.keys += o.keys;
        self.objects += o.objects;
        self.bytes += o.bytes;
        self.stored_bytes += o.stored_bytes;
    }
}

/// An account's storage, per top directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageUsage {
    /// By top directory name; directories that do not exist are absent.
    pub by_top: BTreeMap<&'static str, Counts>,
}

impl StorageUsage {
    /// The sum over every top directory.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.by_top.values() {
            t.add(c);
        }
        t
    }
}

/// Walks `login`'s names and counts its storage.
pub async fn account_storage(ns: &Namespace, login: &str) -> Result<StorageUsage> {
    let mut usage = StorageUsage::default();
    let mut seen = HashSet::new();
    for top in ORDER {
        let root =
            MantaPath::top_dir(login, top).map_err(|e| MeteringError::Name(e.to_string()))?;
        match ns.get(&root).await? {
            Some(e) if e.is_directory() => {}
            _ => continue,
        }
        let mut counts = Counts {
            directories: 1,
            ..Counts::default()
        };
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            walk_dir(ns, &dir, &mut counts, &mut seen, &mut dirs).await?;
        }
        usage.by_top.insert(top.as_str(), counts);
    }
    Ok(usage)
}

/// Counts the entries of `dir`, queueing its subdirectories on `dirs`.
async fn walk_dir(
    ns: &Namespace,
    dir: &MantaPath,
    counts: &mut Counts,
    seen: &mut HashSet<uuid::Uuid>,
    dirs: &mut Vec<MantaPath>,
) -> Result<()> {
    let mut marker: Option<String> = None;
    loop {
        let opts = ListOptions {
            limit: PAGE,
            marker: marker.clone().map(Marker::Name),
            ..ListOptions::default()
        };
        let page = ns.list(dir, &opts).await?;
        let full = page.len() == PAGE;
        for e in page {
            // The marker is inclusive: a page starts with the last name of
            // the one before.
            if marker.as_deref() == Some(e.name.as_str()) {
                continue;
            }
            match &e.kind {
                EntryKind::Directory => {
                    counts.directories += 1;
                    let child = dir
                        .join(&e.name)
                        .map_err(|err| MeteringError::Name(err.to_string()))?;
                    dirs.push(child);
                }
                EntryKind::Object(o) => {
                    counts.keys += 1;
                    if seen.insert(o.object_id) {
                        counts.objects += 1;
                        counts.bytes += o.size;
                        counts.stored_bytes += o.size.saturating_mul(o.copies.len() as u64);
                    }
                }
            }
            marker = Some(e.name);
        }
        if !full {
            return Ok(());
        }
    }
}
