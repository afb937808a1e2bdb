//! ListObjects(V2) over a directory tree: keys in S3's order (bytewise over
//! the whole key) although the namespace lists one directory at a time.
//!
//! Within a directory a subdirectory `d` sorts as `d/` among its siblings'
//! names (`a-b` comes before `a/x`), so the walk keeps subdirectories in a
//! small heap until every sibling name below `d/` has been emitted.
//! Guarantees: keys come out strictly ascending; a page starts strictly
//! after `start_after` (a key or a common prefix), so continuation tokens
//! never repeat or skip a key present in both pages; with delimiter `/`
//! nothing below a common prefix is read; directories are never listed as
//! keys (they are implicit). Directory pages are fetched lazily, so a page
//! of N keys reads about N entries, not the whole tree.

use super::error::S3ApiResult;
use meta::namespace::{Entry, ListOptions, Marker, Namespace, NamespaceError};
use meta::path::MantaPath;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Entries fetched per namespace listing call.
const PAGE: usize = 1000;

/// One listed item.
#[derive(Debug)]
pub enum Item {
    /// An object and its full key.
    Object(String, Entry),
    /// A common prefix (ends with the delimiter).
    Prefix(String),
}

/// A pending subdirectory: ordered by its key (`name/`).
#[derive(Debug)]
struct Pending(String, Entry);

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

struct Frame {
    dir: MantaPath,
    /// Full key prefix of this directory's children (`a/b/`, or `` for the
    /// bucket).
    base: String,
    /// Skip children whose relative key is <= this.
    after: Option<String>,
    /// Only children whose relative key starts with this.
    partial: Option<String>,
    /// Children directories are common prefixes, not walked into.
    delimited: bool,
    marker: Option<String>,
    /// A page was fetched: later pages start at a name already taken.
    started: bool,
    buf: VecDeque<Entry>,
    exhausted: bool,
    pending: BinaryHeap<Reverse<Pending>>,
}

impl Frame {
    fn new(
        dir: MantaPath,
        base: String,
        after: Option<String>,
        partial: Option<String>,
        delimited: bool,
    ) -> Frame {
        // The first name that can sort after `after`: its first component,
        // cut before any byte below '/' (a directory named by that shorter
        // prefix sorts as `prefix/`, after `after`).
        let from_after = after.as_deref().map(|a| {
            let c = a.split('/').next().unwrap_or("");
            match c.bytes().position(|b| b < b'/') {
                Some(i) => c[..i].to_owned(),
                None => c.to_owned(),
            }
        });
        let marker = match (from_after, partial.clone()) {
            (Some(a), Some(p)) => Some(a.max(p)),
            (a, p) => a.or(p),
        }
        .filter(|m| !m.is_empty());
        Frame {
            dir,
            base,
            after: after.filter(|a| !a.is_empty()),
            partial: partial.filter(|p| !p.is_empty()),
            delimited,
            marker,
            started: false,
            buf: VecDeque::new(),
            exhausted: false,
            pending: BinaryHeap::new(),
        }
    }

    /// The next child in key order, with its relative key (`name`, or
    /// `name/` for a directory).
    async fn next_sorted(&mut self, ns: &Namespace) -> S3ApiResult<Option<(String, Entry)>> {
        loop {
            if let Some(Reverse(top)) = self.pending.peek() {
                let release = match self.buf.front() {
                    Some(e) => top.0.as_str() < e.name.as_str(),
                    None => self.exhausted,
                };
                if release && let Some(Reverse(Pending(k, e))) = self.pending.pop() {
                    return Ok(Some((k, e)));
                }
            }
            if let Some(e) = self.buf.pop_front() {
                if e.is_directory() {
                    self.pending
                        .push(Reverse(Pending(format!("{}/", e.name), e)));
                    continue;
                }
                return Ok(Some((e.name.clone(), e)));
            }
            if self.exhausted {
                return Ok(None);
            }
            self.fetch(ns).await?;
        }
    }

    async fn fetch(&mut self, ns: &Namespace) -> S3ApiResult<()> {
        let opts = ListOptions {
            limit: PAGE,
            marker: self.marker.clone().map(Marker::Name),
            ..ListOptions::default()
        };
        let page = match ns.list(&self.dir, &opts).await {
            Ok(p) => p,
            // A directory that is missing (or went away while we walk)
            // simply has no children.
            Err(NamespaceError::NotFound(_))
            | Err(NamespaceError::DirectoryDoesNotExist(_))
            | Err(NamespaceError::NotDirectory(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if page.len() < PAGE {
            self.exhausted = true;
        }
        let skip = if self.started {
            self.marker.clone()
        } else {
            None
        };
        self.started = true;
        if let Some(last) = page.last() {
            self.marker = Some(last.name.clone());
        }
        self.buf.extend(
            page.into_iter()
                .filter(|e| skip.as_deref() != Some(e.name.as_str())),
        );
        Ok(())
    }
}

/// Walks the keys of a bucket in S3 order.
pub struct Walker<'a> {
    ns: &'a Namespace,
    stack: Vec<Frame>,
    /// Whole-key prefix requested.
    prefix: String,
    /// A delimiter other than `/` (grouped after the walk).
    other_delimiter: Option<String>,
    /// Last common prefix emitted for `other_delimiter`.
    last_prefix: Option<String>,
}

impl<'a> Walker<'a> {
    /// Keys of the bucket directory `bucket` starting with `prefix`,
    /// strictly after `after`, grouped by `delimiter`.
    pub fn new(
        ns: &'a Namespace,
        bucket: &MantaPath,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
    ) -> Walker<'a> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut w = Walker {
            ns,
            stack: Vec::new(),
            prefix: prefix.to_owned(),
            other_delimiter: delimiter.filter(|d| *d != "/").map(str::to_owned),
            last_prefix: None,
        };
        if let (Some(d), Some(a)) = (&w.other_delimiter, after)
            && a.ends_with(d.as_str())
        {
            w.last_prefix = Some(a.to_owned());
        }
        let (base, partial) = match prefix.rfind('/') {
            Some(i) => (&prefix[..=i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let mut dir = bucket.clone();
        for seg in base.split('/').filter(|s| !s.is_empty()) {
            match dir.join(seg) {
                Ok(d) => dir = d,
                // No key can have this prefix.
                Err(_) => return w,
            }
        }
        if base.split('/').rev().skip(1).any(str::is_empty) {
            return w;
        }
        let rel_after = match after {
            None => None,
            Some(a) if a.starts_with(base) => Some(a[base.len()..].to_owned()),
            Some(a) if a < base => None,
            // Every key under `base` sorts before `after`.
            Some(_) => return w,
        };
        w.stack.push(Frame::new(
            dir,
            base.to_owned(),
            rel_after,
            Some(partial.to_owned()),
            delimiter == Some("/"),
        ));
        w
    }

    /// The next object or common prefix.
    pub async fn next(&mut self) -> S3ApiResult<Option<Item>> {
        loop {
            let Some(item) = self.next_raw().await? else {
                return Ok(None);
            };
            let (Some(d), Item::Object(key, _)) = (&self.other_delimiter, &item) else {
                return Ok(Some(item));
            };
            let rest = &key[self.prefix.len().min(key.len())..];
            let Some(i) = rest.find(d.as_str()) else {
                return Ok(Some(item));
            };
            let cp = key[..self.prefix.len() + i + d.len()].to_owned();
            if self.last_prefix.as_deref() == Some(cp.as_str()) {
                continue;
            }
            self.last_prefix = Some(cp.clone());
            return Ok(Some(Item::Prefix(cp)));
        }
    }

    async fn next_raw(&mut self) -> S3ApiResult<Option<Item>> {
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some((k, e)) = frame.next_sorted(self.ns).await? else {
                self.stack.pop();
                continue;
            };
            if let Some(p) = &frame.partial
                && !k.starts_with(p.as_str())
            {
                if k.as_str() > p.as_str() {
                    // Keys with this prefix are contiguous: none follow.
                    self.stack.pop();
                }
                continue;
            }
            let full = format!("{}{k}", frame.base);
            let is_dir = e.is_directory();
            if is_dir && frame.delimited {
                if frame
                    .after
                    .as_deref()
                    .is_some_and(|a| k.as_str() <= a || a.starts_with(k.as_str()))
                {
                    continue;
                }
                return Ok(Some(Item::Prefix(full)));
            }
            let mut child_after = None;
            if let Some(a) = frame.after.as_deref() {
                if is_dir && a.starts_with(k.as_str()) {
                    child_after = Some(a[k.len()..].to_owned());
                } else if k.as_str() <= a {
                    continue;
                }
            }
            if is_dir {
                let dir = frame
                    .dir
                    .join(&e.name)
                    .map_err(|e| super::error::S3ApiError::InvalidArgument(e.to_string()))?;
                self.stack
                    .push(Frame::new(dir, full, child_after, None, false));
                continue;
            }
            return Ok(Some(Item::Object(full, e)));
        }
    }
}
