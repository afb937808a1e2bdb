//! Directory entries: get, put directory/object, delete, metadata updates,
//! snaplinks, listings and counts — plus the transaction retry loop shared by
//! every mutating namespace operation.

use std::ops::Bound;
use std::time::Duration;

use tracing::warn;

use super::records::{ObjectRecord, StoredEntry, StoredGc, decode, encode};
use super::{
    Conditions, CopyRef, DeleteOutcome, Entry, EntryKind, Headers, ListOptions,
    MAX_DIRECTORY_ENTRIES, Marker, MetadataUpdate, Namespace, NamespaceError, NewObject, NsResult,
    ObjectInfo, PutOutcome, SortBy, TypeFilter,
};
use crate::keys::{self, Dk};
use crate::kv::{KvError, Order, Reader, Txn};
use crate::path::MantaPath;

/// Rows fetched per scan while listing.
const SCAN_CHUNK: usize = 1024;

/// What to do after one attempt of a transaction.
pub(crate) enum Step<T> {
    Done(NsResult<T>),
    Retry,
}

/// Run `$body` (a future using `$txn: &mut dyn Txn`) in a transaction,
/// committing on success and retrying the whole thing on conflicts.
macro_rules! in_txn {
    ($ns:expr, $what:expr, $txn:ident => $body:expr) => {{
        let ns: &Namespace = $ns;
        let what: &str = $what;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut boxed = ns.begin_txn(what).await?;
            let res = {
                let $txn: &mut dyn Txn = &mut *boxed;
                $body.await
            };
            match ns.finish(boxed, res, attempt, what).await {
                Step::Done(r) => break r,
                Step::Retry => continue,
            }
        }
    }};
}
pub(crate) use in_txn;

impl Namespace {
    pub(crate) async fn begin_txn(&self, what: &str) -> NsResult<Box<dyn Txn>> {
        self.kv
            .begin()
            .await
            .map_err(|e| NamespaceError::from_kv(e, what))
    }

    /// Commit or roll back one attempt and decide whether to retry.
    pub(crate) async fn finish<T>(
        &self,
        txn: Box<dyn Txn>,
        res: NsResult<T>,
        attempt: u32,
        what: &str,
    ) -> Step<T> {
        let retry_left = attempt < self.retry.max_attempts.max(1);
        match res {
            Ok(v) => match txn.commit().await {
                Ok(()) => Step::Done(Ok(v)),
                Err(KvError::Conflict(_)) if retry_left => {
                    self.backoff(attempt).await;
                    Step::Retry
                }
                Err(e) => Step::Done(Err(NamespaceError::from_kv(e, what))),
            },
            Err(e) => {
                if let Err(rb) = txn.rollback().await {
                    warn!(error = %rb, "rollback failed");
                }
                if matches!(e, NamespaceError::ConcurrentRequest(_)) && retry_left {
                    self.backoff(attempt).await;
                    Step::Retry
                } else {
                    Step::Done(Err(e))
                }
            }
        }
    }

    async fn backoff(&self, attempt: u32) {
        let exp = self
            .retry
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.retry.max_backoff);
        // Full jitter so retrying writers of a hot key spread out.
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX).max(1);
        let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % nanos;
        tokio::time::sleep(Duration::from_nanos(nanos / 2 + jitter / 2)).await;
    }

    // ------------------------------------------------------------ reads

    /// The entry at `path`. `/:login` is a synthesized directory (present iff
    /// the account exists).
    pub async fn get(&self, path: &MantaPath) -> NsResult<Option<Entry>> {
        let mut snap = self.kv.snapshot().await.map_err(|e| ns_err(e, path))?;
        read_path(&mut *snap, path).await
    }

    /// Number of entries in the directory `dir` (sum of its count shards).
    pub async fn count(&self, dir: &MantaPath) -> NsResult<u64> {
        let mut snap = self.kv.snapshot().await.map_err(|e| ns_err(e, dir))?;
        let r: &mut dyn Reader = &mut *snap;
        require_directory(r, dir).await?;
        count_entries(r, &dir_dk(dir)).await
    }

    /// One page of the directory `dir`, read from one snapshot.
    ///
    /// Name order is plain byte order; the marker is inclusive. Exactly
    /// `min(limit, remaining matching)` entries are returned. Sorting by
    /// mtime uses the per-directory mtime index (same key range as the
    /// entries): newest first with ties in descending name order, `reverse`
    /// being the exact opposite; an mtime marker is inclusive.
    pub async fn list(&self, dir: &MantaPath, opts: &ListOptions) -> NsResult<Vec<Entry>> {
        if opts.limit == 0 {
            return Ok(Vec::new());
        }
        let mut snap = self.kv.snapshot().await.map_err(|e| ns_err(e, dir))?;
        let r: &mut dyn Reader = &mut *snap;
        require_directory(r, dir).await?;
        let dk = dir_dk(dir);
        match opts.sort {
            SortBy::Name => list_by_name(r, &dk, opts).await,
            SortBy::Mtime => list_by_mtime(r, &dk, opts).await,
        }
    }

    // ------------------------------------------------------------ writes

    /// Create the directory `path`, or update an existing one's headers
    /// (bumping mtime only when they change). Top directories are a no-op;
    /// `/:login` is refused. Like Manta, an object at `path` is replaced.
    pub async fn put_directory(&self, path: &MantaPath, headers: &Headers) -> NsResult<PutOutcome> {
        if path.is_account_root() {
            return Err(NamespaceError::RootDirectory(path.to_string()));
        }
        let what = path.to_string();
        if path.is_root() {
            return match self.get(path).await? {
                Some(entry) => Ok(PutOutcome {
                    entry,
                    replaced: None,
                    freed: Vec::new(),
                }),
                None => Err(NamespaceError::AccountNotFound(path.login().to_owned())),
            };
        }
        in_txn!(self, &what, txn => self.put_directory_tx(txn, path, headers))
    }

    /// `mkdir -p dir` in one transaction: every missing directory from
    /// the deepest existing one down to `dir` is created (parents first),
    /// so the chain costs one commit however deep it goes. Existing
    /// directories are left as they are (headers, mtime); an object in the
    /// way is [`NamespaceError::ParentNotDirectory`] and nothing changes.
    pub async fn create_directories(&self, dir: &MantaPath) -> NsResult<()> {
        let what = dir.to_string();
        in_txn!(self, &what, txn => self.create_directories_tx(txn, dir))
    }

    async fn create_directories_tx(&self, txn: &mut dyn Txn, dir: &MantaPath) -> NsResult<()> {
        let mut chain = Vec::new();
        let mut cur = Some(dir.clone());
        while let Some(p) = cur {
            if p.is_root() {
                break;
            }
            match read_path(txn, &p).await? {
                Some(e) if e.is_directory() => break,
                Some(_) => return Err(NamespaceError::ParentNotDirectory(p.to_string())),
                None => {}
            }
            cur = p.parent();
            chain.push(p);
        }
        for p in chain.iter().rev() {
            self.put_directory_tx(txn, p, &Headers::default()).await?;
        }
        Ok(())
    }

    /// `mkdir -p` of `path`'s parent (below the account's top directory):
    /// usually there already, which costs one read and no transaction
    /// (the outputs of a job's tasks share their directories); otherwise
    /// [`Self::create_directories`]. An object in the way is
    /// [`NamespaceError::ParentNotDirectory`].
    pub async fn ensure_parent_directories(&self, path: &MantaPath) -> NsResult<()> {
        let Some(parent) = path.parent().filter(|p| !p.is_root()) else {
            return Ok(());
        };
        match self.get(&parent).await? {
            Some(e) if e.is_directory() => Ok(()),
            Some(_) => Err(NamespaceError::ParentNotDirectory(parent.to_string())),
            None => self.create_directories(&parent).await,
        }
    }

    async fn put_directory_tx(
        &self,
        txn: &mut dyn Txn,
        path: &MantaPath,
        headers: &Headers,
    ) -> NsResult<PutOutcome> {
        let (pdk, name) = location(path)?;
        check_parent(txn, path).await?;
        let key = keys::entry_key(&pdk, name);
        let cur = read_entry(txn.get_for_update(&key).await, name, path)?;
        let now = self.now_ms();
        let mut freed = Vec::new();
        match &cur {
            Some(e) if e.is_directory() => {
                if &e.headers == headers {
                    return Ok(PutOutcome {
                        entry: e.clone(),
                        replaced: None,
                        freed,
                    });
                }
            }
            Some(e) => {
                if let Some(o) = e.object() {
                    freed = release_object(txn, o, now).await?;
                }
            }
            None => add_to_count(txn, &pdk, name, path, 1).await?,
        }
        let entry = Entry {
            name: name.to_owned(),
            mtime_ms: now,
            headers: headers.clone(),
            kind: EntryKind::Directory,
        };
        write_entry(txn, &pdk, cur.as_ref().map(|e| e.mtime_ms), &entry).await?;
        Ok(PutOutcome {
            entry,
            replaced: cur,
            freed,
        })
    }

    /// Record a new object at `path` (create or overwrite), evaluating
    /// `cond` against the current entry inside the transaction.
    pub async fn put_object(
        &self,
        path: &MantaPath,
        obj: NewObject,
        cond: &Conditions,
    ) -> NsResult<PutOutcome> {
        self.put_object_in(path, obj, cond, false).await
    }

    /// [`Self::put_object`] that first creates `path`'s missing parent
    /// directories (`mkdir -p`), in the same transaction: the object and
    /// any directory it needed land together, in one commit rather than
    /// two (a task's first output into its job's directories). An object
    /// in the way is [`NamespaceError::ParentNotDirectory`].
    pub async fn put_object_creating_parents(
        &self,
        path: &MantaPath,
        obj: NewObject,
        cond: &Conditions,
    ) -> NsResult<PutOutcome> {
        self.put_object_in(path, obj, cond, true).await
    }

    async fn put_object_in(
        &self,
        path: &MantaPath,
        obj: NewObject,
        cond: &Conditions,
        create_parents: bool,
    ) -> NsResult<PutOutcome> {
        if path.is_root() {
            return Err(NamespaceError::RootDirectory(path.to_string()));
        }
        let what = path.to_string();
        let res = in_txn!(self, &what, txn => async {
            if create_parents && let Some(parent) = path.parent().filter(|p| !p.is_root()) {
                self.create_directories_tx(txn, &parent).await?;
            }
            self.put_object_tx(txn, path, &obj, cond).await
        });
        match res {
            // The commit may have landed: the object id is unique, so finding
            // it at `path` proves it did.
            Err(NamespaceError::Undetermined(_)) => match self.get(path).await? {
                Some(e) if e.object().map(|o| o.object_id) == Some(obj.object_id) => {
                    Ok(PutOutcome {
                        entry: e,
                        replaced: None,
                        freed: Vec::new(),
                    })
                }
                _ => Err(NamespaceError::Undetermined(what)),
            },
            other => other,
        }
    }

    async fn put_object_tx(
        &self,
        txn: &mut dyn Txn,
        path: &MantaPath,
        obj: &NewObject,
        cond: &Conditions,
    ) -> NsResult<PutOutcome> {
        let (pdk, name) = location(path)?;
        check_parent(txn, path).await?;
        let key = keys::entry_key(&pdk, name);
        let cur = read_entry(txn.get_for_update(&key).await, name, path)?;
        if cur.as_ref().is_some_and(Entry::is_directory) {
            return Err(NamespaceError::IsDirectory(path.to_string()));
        }
        if !cond.allows_write(cur.as_ref()) {
            return Err(NamespaceError::PreconditionFailed(path.to_string()));
        }
        let now = self.now_ms();
        let freed = match cur.as_ref().and_then(Entry::object) {
            Some(o) => release_object(txn, o, now).await?,
            None => {
                add_to_count(txn, &pdk, name, path, 1).await?;
                Vec::new()
            }
        };
        let entry = Entry {
            name: name.to_owned(),
            mtime_ms: now,
            headers: obj.headers.clone(),
            kind: EntryKind::Object(ObjectInfo {
                object_id: obj.object_id,
                size: obj.size,
                content_md5: obj.content_md5.clone(),
                blake3: obj.blake3.clone(),
                content_type: obj.content_type.clone(),
                copies: obj.copies.clone(),
                durability: obj.durability,
                linked: false,
            }),
        };
        write_entry(txn, &pdk, cur.as_ref().map(|e| e.mtime_ms), &entry).await?;
        Ok(PutOutcome {
            entry,
            replaced: cur,
            freed,
        })
    }

    /// Delete the object or empty directory at `path`.
    pub async fn delete(&self, path: &MantaPath, cond: &Conditions) -> NsResult<DeleteOutcome> {
        if path.is_root() {
            return Err(NamespaceError::RootDirectory(path.to_string()));
        }
        let what = path.to_string();
        in_txn!(self, &what, txn => self.delete_tx(txn, path, cond))
    }

    async fn delete_tx(
        &self,
        txn: &mut dyn Txn,
        path: &MantaPath,
        cond: &Conditions,
    ) -> NsResult<DeleteOutcome> {
        let (pdk, name) = location(path)?;
        let key = keys::entry_key(&pdk, name);
        let Some(cur) = read_entry(txn.get_for_update(&key).await, name, path)? else {
            return Err(NamespaceError::NotFound(path.to_string()));
        };
        if !cond.allows_write(Some(&cur)) {
            return Err(NamespaceError::PreconditionFailed(path.to_string()));
        }
        let freed = match &cur.kind {
            EntryKind::Directory => {
                let dk = dir_dk(path);
                let any = txn
                    .scan(keys::entries_range(&dk), 1, Order::Asc)
                    .await
                    .map_err(|e| ns_err(e, path))?;
                if !any.is_empty() {
                    return Err(NamespaceError::DirectoryNotEmpty(path.to_string()));
                }
                // Deleting every shard is what makes a concurrent create in
                // this directory (which writes one shard) conflict with us.
                for s in 0..keys::COUNT_SHARDS {
                    txn.delete(keys::count_key(&dk, s))
                        .await
                        .map_err(|e| ns_err(e, path))?;
                }
                Vec::new()
            }
            EntryKind::Object(o) => release_object(txn, o, self.now_ms()).await?,
        };
        remove_entry(txn, &pdk, &cur).await?;
        add_to_count(txn, &pdk, name, path, -1).await?;
        Ok(DeleteOutcome { entry: cur, freed })
    }

    /// Replace the stored headers (and an object's content type if given),
    /// keeping data, etag and copies; mtime is bumped (spec §6.7).
    pub async fn put_metadata(&self, path: &MantaPath, update: &MetadataUpdate) -> NsResult<Entry> {
        if path.is_account_root() {
            return Err(NamespaceError::RootDirectory(path.to_string()));
        }
        let what = path.to_string();
        in_txn!(self, &what, txn => self.put_metadata_tx(txn, path, update))
    }

    async fn put_metadata_tx(
        &self,
        txn: &mut dyn Txn,
        path: &MantaPath,
        update: &MetadataUpdate,
    ) -> NsResult<Entry> {
        let (pdk, name) = location(path)?;
        let key = keys::entry_key(&pdk, name);
        let Some(mut e) = read_entry(txn.get_for_update(&key).await, name, path)? else {
            return Err(NamespaceError::NotFound(path.to_string()));
        };
        let prev_mtime = e.mtime_ms;
        e.headers = update.headers.clone();
        if let (EntryKind::Object(o), Some(ct)) = (&mut e.kind, &update.content_type) {
            o.content_type = ct.clone();
        }
        e.mtime_ms = self.now_ms();
        write_entry(txn, &pdk, Some(prev_mtime), &e).await?;
        Ok(e)
    }

    /// Make `dst` a new name for the object at `src` (spec §7). Conditions
    /// are evaluated against the source. Both names share the object id and
    /// copies; a refcount in the `0x20 objectid` record keeps the copies
    /// alive until the last name goes.
    pub async fn snaplink(
        &self,
        src: &MantaPath,
        dst: &MantaPath,
        cond: &Conditions,
    ) -> NsResult<PutOutcome> {
        if dst.is_root() {
            return Err(NamespaceError::RootDirectory(dst.to_string()));
        }
        if src.is_root() {
            return Err(NamespaceError::LinkNotObject(src.to_string()));
        }
        let what = dst.to_string();
        in_txn!(self, &what, txn => self.snaplink_tx(txn, src, dst, cond))
    }

    async fn snaplink_tx(
        &self,
        txn: &mut dyn Txn,
        src: &MantaPath,
        dst: &MantaPath,
        cond: &Conditions,
    ) -> NsResult<PutOutcome> {
        let (sdk, sname) = location(src)?;
        let skey = keys::entry_key(&sdk, sname);
        let Some(mut source) = read_entry(txn.get_for_update(&skey).await, sname, src)? else {
            return Err(NamespaceError::LinkSourceNotFound(src.to_string()));
        };
        let EntryKind::Object(sobj) = source.kind.clone() else {
            return Err(NamespaceError::LinkNotObject(src.to_string()));
        };
        if !cond.allows_write(Some(&source)) {
            return Err(NamespaceError::PreconditionFailed(dst.to_string()));
        }
        if src == dst {
            return Ok(PutOutcome {
                entry: source,
                replaced: None,
                freed: Vec::new(),
            });
        }
        let (ddk, dname) = location(dst)?;
        check_parent(txn, dst).await?;
        let dkey = keys::entry_key(&ddk, dname);
        let cur = read_entry(txn.get_for_update(&dkey).await, dname, dst)?;
        if cur.as_ref().is_some_and(Entry::is_directory) {
            return Err(NamespaceError::IsDirectory(dst.to_string()));
        }

        // Take the new reference before releasing the replaced one, so the
        // count never touches zero when `dst` already named this object.
        let rkey = keys::object_key(&sobj.object_id);
        let mut rec = if sobj.linked {
            match txn
                .get_for_update(&rkey)
                .await
                .map_err(|e| ns_err(e, dst))?
            {
                Some(v) => decode::<ObjectRecord>(&v)?,
                None => {
                    warn!(object = %sobj.object_id, "linked object without a record; recreating");
                    new_record(&sobj)
                }
            }
        } else {
            let mut linked = source.clone();
            if let EntryKind::Object(o) = &mut linked.kind {
                o.linked = true;
            }
            write_entry(txn, &sdk, Some(linked.mtime_ms), &linked).await?;
            source = linked;
            new_record(&sobj)
        };
        rec.refcount += 1;
        txn.put(rkey, encode(&rec))
            .await
            .map_err(|e| ns_err(e, dst))?;

        let now = self.now_ms();
        let freed = match cur.as_ref().and_then(Entry::object) {
            Some(o) => release_object(txn, o, now).await?,
            None => {
                add_to_count(txn, &ddk, dname, dst, 1).await?;
                Vec::new()
            }
        };
        let entry = Entry {
            name: dname.to_owned(),
            ..source
        };
        write_entry(txn, &ddk, cur.as_ref().map(|e| e.mtime_ms), &entry).await?;
        Ok(PutOutcome {
            entry,
            replaced: cur,
            freed,
        })
    }
}

fn new_record(o: &ObjectInfo) -> ObjectRecord {
    ObjectRecord {
        refcount: 1,
        copies: o.copies.clone(),
        size: o.size,
    }
}

fn ns_err(e: KvError, path: &MantaPath) -> NamespaceError {
    NamespaceError::from_kv(e, &path.to_string())
}

/// Directory key of `dir` itself (where its children live).
pub(crate) fn dir_dk(dir: &MantaPath) -> Dk {
    keys::dk(dir.login(), &dir.segments())
}

/// Key of `path`'s directory entry, for a transaction outside this module
/// that must lock a name (a job pinning the object a name resolved to:
/// every writer of the name writes this key).
pub fn entry_key_of(path: &MantaPath) -> NsResult<Vec<u8>> {
    let (dk, name) = location(path)?;
    Ok(keys::entry_key(&dk, name))
}

/// The object id named by an entry's stored value (`None`: a directory).
pub fn entry_object_id(stored: &[u8]) -> NsResult<Option<uuid::Uuid>> {
    let s: StoredEntry = decode(stored)?;
    Ok(match s.kind {
        EntryKind::Object(o) => Some(o.object_id),
        EntryKind::Directory => None,
    })
}

/// Where the entry for `path` lives: its parent's dk and its name.
fn location(path: &MantaPath) -> NsResult<(Dk, &str)> {
    let parent = path
        .parent()
        .ok_or_else(|| NamespaceError::RootDirectory(path.to_string()))?;
    let name = path
        .name()
        .ok_or_else(|| NamespaceError::RootDirectory(path.to_string()))?;
    Ok((dir_dk(&parent), name))
}

fn read_entry(
    got: Result<Option<Vec<u8>>, KvError>,
    name: &str,
    path: &MantaPath,
) -> NsResult<Option<Entry>> {
    match got.map_err(|e| ns_err(e, path))? {
        None => Ok(None),
        Some(v) => Ok(Some(to_entry(name.to_owned(), decode(&v)?))),
    }
}

fn to_entry(name: String, s: StoredEntry) -> Entry {
    Entry {
        name,
        mtime_ms: s.mtime_ms,
        headers: s.headers,
        kind: s.kind,
    }
}

/// Store `e` in directory `pdk` and keep the mtime index in step;
/// `prev_mtime` is the replaced entry's mtime, if any.
async fn write_entry(
    txn: &mut dyn Txn,
    pdk: &Dk,
    prev_mtime: Option<u64>,
    e: &Entry,
) -> NsResult<()> {
    let kv = |err| NamespaceError::from_kv(err, "entry");
    let stored = StoredEntry {
        mtime_ms: e.mtime_ms,
        headers: e.headers.clone(),
        kind: e.kind.clone(),
    };
    txn.put(keys::entry_key(pdk, &e.name), encode(&stored))
        .await
        .map_err(kv)?;
    if prev_mtime != Some(e.mtime_ms) {
        if let Some(old) = prev_mtime {
            txn.delete(keys::mtime_key(pdk, old, &e.name))
                .await
                .map_err(kv)?;
        }
        txn.put(keys::mtime_key(pdk, e.mtime_ms, &e.name), Vec::new())
            .await
            .map_err(kv)?;
    }
    Ok(())
}

/// Remove `e` and its mtime index record from directory `pdk`.
async fn remove_entry(txn: &mut dyn Txn, pdk: &Dk, e: &Entry) -> NsResult<()> {
    let kv = |err| NamespaceError::from_kv(err, "entry");
    txn.delete(keys::entry_key(pdk, &e.name))
        .await
        .map_err(kv)?;
    txn.delete(keys::mtime_key(pdk, e.mtime_ms, &e.name))
        .await
        .map_err(kv)
}

/// Read any path (including the synthesized `/:login`).
pub(crate) async fn read_path(r: &mut dyn Reader, path: &MantaPath) -> NsResult<Option<Entry>> {
    if path.is_account_root() {
        let acct = r
            .get(&keys::account_key(path.login()))
            .await
            .map_err(|e| ns_err(e, path))?;
        return Ok(match acct {
            None => None,
            Some(v) => {
                let a: super::Account = decode(&v)?;
                Some(Entry {
                    name: a.login,
                    mtime_ms: a.created_ms,
                    headers: Headers::new(),
                    kind: EntryKind::Directory,
                })
            }
        });
    }
    let (pdk, name) = location(path)?;
    read_entry(r.get(&keys::entry_key(&pdk, name)).await, name, path)
}

/// `dir` must exist and be a directory.
async fn require_directory(r: &mut dyn Reader, dir: &MantaPath) -> NsResult<()> {
    match read_path(r, dir).await? {
        None => Err(NamespaceError::NotFound(dir.to_string())),
        Some(e) if !e.is_directory() => Err(NamespaceError::NotDirectory(dir.to_string())),
        Some(_) => Ok(()),
    }
}

/// The parent of `path` must exist and be a directory. Not locked: creating
/// a name writes the parent's count shard, which deleting the parent also
/// writes, so the two cannot both commit.
async fn check_parent(txn: &mut dyn Txn, path: &MantaPath) -> NsResult<()> {
    let Some(parent) = path.parent() else {
        return Err(NamespaceError::RootDirectory(path.to_string()));
    };
    match read_path(txn, &parent).await? {
        None => Err(NamespaceError::DirectoryDoesNotExist(parent.to_string())),
        Some(e) if !e.is_directory() => Err(NamespaceError::ParentNotDirectory(parent.to_string())),
        Some(_) => Ok(()),
    }
}

async fn count_entries(r: &mut dyn Reader, dk: &Dk) -> NsResult<u64> {
    let rows = r
        .scan(
            keys::counts_range(dk),
            keys::COUNT_SHARDS as usize,
            Order::Asc,
        )
        .await
        .map_err(|e| NamespaceError::from_kv(e, "count"))?;
    let mut total: i64 = 0;
    for (_, v) in rows {
        let n = crate::kv::decode_counter(&v)
            .map_err(|_| NamespaceError::Internal("corrupt count shard".into()))?;
        total = total.saturating_add(n);
    }
    Ok(u64::try_from(total).unwrap_or(0))
}

/// Adjust the count shard of `name` in directory `pdk` by `delta`; creating
/// a name first enforces the directory limit (read from the snapshot, so
/// concurrent creators may overshoot it by a few entries).
async fn add_to_count(
    txn: &mut dyn Txn,
    pdk: &Dk,
    name: &str,
    path: &MantaPath,
    delta: i64,
) -> NsResult<()> {
    if delta > 0 && count_entries(txn, pdk).await? >= MAX_DIRECTORY_ENTRIES {
        let parent = path.parent().map(|p| p.to_string()).unwrap_or_default();
        return Err(NamespaceError::DirectoryLimitExceeded(parent));
    }
    // An add, not a read-modify-write: concurrent creates in one directory
    // that land on one shard need not conflict (`Txn::add`).
    txn.add(keys::count_key(pdk, keys::count_shard(name)), delta)
        .await
        .map_err(|e| ns_err(e, path))
}

/// Drop one name's reference to an object; when it was the last, write GC
/// records for every copy and return them.
async fn release_object(txn: &mut dyn Txn, o: &ObjectInfo, now: u64) -> NsResult<Vec<CopyRef>> {
    let kv = |e| NamespaceError::from_kv(e, "object");
    if o.linked {
        let rkey = keys::object_key(&o.object_id);
        match txn.get_for_update(&rkey).await.map_err(kv)? {
            Some(v) => {
                let mut rec: ObjectRecord = decode(&v)?;
                rec.refcount = rec.refcount.saturating_sub(1);
                if rec.refcount > 0 {
                    txn.put(rkey, encode(&rec)).await.map_err(kv)?;
                    return Ok(Vec::new());
                }
                txn.delete(rkey).await.map_err(kv)?;
            }
            None => {
                // Leaking beats freeing bytes another name may still use.
                warn!(object = %o.object_id, "linked object without a record; not freeing");
                return Ok(Vec::new());
            }
        }
    }
    let mut freed = Vec::with_capacity(o.copies.len());
    for node in &o.copies {
        put_gc_record(txn, node, o.object_id, now).await?;
        freed.push(CopyRef {
            node: node.clone(),
            object_id: o.object_id,
        });
    }
    Ok(freed)
}

/// Writes the GC record that has `node` delete its copy of `object_id`.
pub(crate) async fn put_gc_record(
    txn: &mut dyn Txn,
    node: &str,
    object_id: uuid::Uuid,
    now: u64,
) -> NsResult<()> {
    let rec = StoredGc {
        node: node.to_owned(),
        object_id,
        recorded_ms: now,
    };
    txn.put(keys::gc_key(node, now, &object_id), encode(&rec))
        .await
        .map_err(|e| NamespaceError::from_kv(e, "gc record"))
}

fn keep(filter: TypeFilter, e: &Entry) -> bool {
    match filter {
        TypeFilter::All => true,
        TypeFilter::Directories => e.is_directory(),
        TypeFilter::Objects => !e.is_directory(),
    }
}

fn decode_row(dk: &Dk, key: &[u8], value: &[u8]) -> NsResult<Entry> {
    let name = keys::entry_name(dk, key)
        .ok_or_else(|| NamespaceError::Internal("foreign key in directory range".into()))?;
    let name = String::from_utf8(name.to_vec())
        .map_err(|_| NamespaceError::Internal("non-UTF-8 entry name".into()))?;
    Ok(to_entry(name, decode(value)?))
}

async fn list_by_name(r: &mut dyn Reader, dk: &Dk, opts: &ListOptions) -> NsResult<Vec<Entry>> {
    let mut range = keys::entries_range(dk);
    match &opts.marker {
        None => {}
        Some(Marker::Name(m)) => {
            let mk = keys::entry_key(dk, m);
            if opts.reverse {
                range.end = Bound::Included(mk);
            } else {
                range.start = Bound::Included(mk);
            }
        }
        Some(Marker::Mtime(_)) => {
            return Err(NamespaceError::InvalidArgument(
                "an mtime marker needs sort by mtime".into(),
            ));
        }
    }
    let order = if opts.reverse {
        Order::Desc
    } else {
        Order::Asc
    };
    let chunk = opts.limit.clamp(16, SCAN_CHUNK);
    let mut out = Vec::with_capacity(opts.limit.min(SCAN_CHUNK));
    while out.len() < opts.limit && !range.is_empty() {
        let rows = r
            .scan(range.clone(), chunk, order)
            .await
            .map_err(|e| NamespaceError::from_kv(e, "listing"))?;
        let exhausted = rows.len() < chunk;
        for (k, v) in &rows {
            let e = decode_row(dk, k, v)?;
            if keep(opts.filter, &e) {
                out.push(e);
                if out.len() == opts.limit {
                    return Ok(out);
                }
            }
        }
        match rows.last() {
            Some((k, _)) if !exhausted => {
                if opts.reverse {
                    range.end = Bound::Excluded(k.clone());
                } else {
                    range.start = Bound::Excluded(k.clone());
                }
            }
            _ => break,
        }
    }
    Ok(out)
}

/// Listing by mtime walks the `dk 0x02 mtime name` index: newest first
/// (descending `(mtime, name)`), or oldest first with `reverse`; the marker
/// is an inclusive mtime bound. Entries come from one batch_get per chunk.
async fn list_by_mtime(r: &mut dyn Reader, dk: &Dk, opts: &ListOptions) -> NsResult<Vec<Entry>> {
    let mut range = keys::mtime_range(dk);
    match &opts.marker {
        None => {}
        Some(Marker::Mtime(m)) if opts.reverse => {
            range.start = Bound::Included(keys::mtime_floor(dk, *m));
        }
        Some(Marker::Mtime(m)) => {
            if let Some(next) = m.checked_add(1) {
                range.end = Bound::Excluded(keys::mtime_floor(dk, next));
            }
        }
        Some(Marker::Name(_)) => {
            return Err(NamespaceError::InvalidArgument(
                "sort by mtime needs an mtime marker".into(),
            ));
        }
    }
    let order = if opts.reverse {
        Order::Asc
    } else {
        Order::Desc
    };
    let chunk = opts.limit.clamp(16, SCAN_CHUNK);
    let mut out = Vec::with_capacity(opts.limit.min(SCAN_CHUNK));
    while out.len() < opts.limit && !range.is_empty() {
        let rows = r
            .scan(range.clone(), chunk, order)
            .await
            .map_err(|e| NamespaceError::from_kv(e, "listing"))?;
        let mut names = Vec::with_capacity(rows.len());
        let mut entry_keys = Vec::with_capacity(rows.len());
        for (k, _) in &rows {
            let (_, name) = keys::mtime_parts(dk, k)
                .ok_or_else(|| NamespaceError::Internal("foreign key in mtime index".into()))?;
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| NamespaceError::Internal("non-UTF-8 entry name".into()))?;
            entry_keys.push(keys::entry_key(dk, &name));
            names.push(name);
        }
        let values = r
            .batch_get(&entry_keys)
            .await
            .map_err(|e| NamespaceError::from_kv(e, "listing"))?;
        for (name, v) in names.into_iter().zip(values) {
            let Some(v) = v else {
                warn!(name, "mtime index record without an entry; skipped");
                continue;
            };
            let e = to_entry(name, decode(&v)?);
            if keep(opts.filter, &e) {
                out.push(e);
                if out.len() == opts.limit {
                    return Ok(out);
                }
            }
        }
        match rows.last() {
            Some((k, _)) if rows.len() == chunk => {
                if opts.reverse {
                    range.start = Bound::Excluded(k.clone());
                } else {
                    range.end = Bound::Excluded(k.clone());
                }
            }
            _ => break,
        }
    }
    Ok(out)
}
