//! The on-disk object store of one node.
//!
//! Layout under the data directory:
//!
//! ```text
//! objects/<first 2 hex of id>/<id>   one file per stored copy
//! objects/<first 2 hex of id>/<id>.sums  its block checksums (crate::sums)
//! tmp/<id>.<random>[.sums]           uploads in progress
//! tombstone/<YYYY-MM-DD>/<id>[.<random>][.sums]  deleted copies, kept for recovery
//! ```
//!
//! Guarantees:
//! * A file appears under `objects/` only complete and durable: the upload
//!   is written to `tmp/`, the file is fsynced, renamed into place and the
//!   directory fsynced before [`ObjectStore::write`] returns. A failed or
//!   abandoned upload leaves nothing under `objects/`, and its temp file is
//!   removed (or, after a crash, by [`ObjectStore::open`]).
//! * Bodies are streamed, never held whole in memory; hashing (md5 and
//!   blake3), writes, fsyncs and reads longer than one checksum block run
//!   on blocking threads, not async workers. Opening a copy and reading at
//!   most one block run inline: page-cache work cheaper than the hand-off.
//! * A read never yields a byte that differs from what was written: every
//!   block is checked against its CRC-32C before it is handed over, whole
//!   reads and range reads alike, and a bad block ends the stream with an
//!   error (so a reader can go on from another copy at that offset). A copy
//!   whose size does not match its checksums (truncated, extended) is
//!   refused when it is opened ([`StoreError::Corrupt`]).
//! * Copies written before block checksums existed (no `.sums` file) are
//!   checked against the whole-object blake3 instead: such a read never ends
//!   cleanly on a mismatch (the last chunk is held back until the hash is
//!   known, and the stream ends with an error instead); their range reads
//!   are unchecked.

use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use md5::{Digest as _, Md5};
use tokio::sync::mpsc;

use crate::protocol::{ByteRange, Capacity, ObjectId, PutReceipt, VerifyReport};
use crate::sums::{self, SumsReader, SumsWriter};

/// Chunk size for reads and for the writer's buffer (a whole number of
/// checksum blocks).
const IO_CHUNK: usize = 4 * sums::BLOCK as usize;
/// Incoming frames smaller than this are batched before going to disk.
const BATCH: usize = 64 * 1024;
/// How far ahead of a read the disk is asked for the next bytes.
const READ_AHEAD: u64 = 8 << 20;
/// Chunks queued between the network and the disk thread, per request.
const QUEUE_DEPTH: usize = 8;
/// Reads of at most this many bytes (a block) are done inline on the
/// caller's thread: for small objects, the hand-off to a blocking thread
/// and the channel back cost more than the read (issue 17's small-GET
/// profile). Longer reads stream from a blocking thread.
const INLINE_READ: u64 = sums::BLOCK;

/// Errors of the object store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such object on this node.
    #[error("object not found")]
    NotFound,
    /// The upload's body stream failed or ended without completing.
    #[error("upload body failed: {0}")]
    Body(String),
    /// The file system is full.
    #[error("no space left on the data directory")]
    NoSpace,
    /// Any other I/O failure; `op` says what was being done.
    #[error("{op}: {source}")]
    Io {
        /// What failed, e.g. "fsync object".
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The copy does not match its block checksums as a whole (truncated,
    /// extended, or its sums file damaged); no byte of it can be trusted.
    #[error("copy is corrupt: {0}")]
    Corrupt(String),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl StoreError {
    fn io(op: &'static str) -> impl FnOnce(io::Error) -> StoreError {
        move |source| match source.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound,
            // A ZFS dataset's quota is a full disk to its writers.
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StoreError::NoSpace,
            _ => StoreError::Io { op, source },
        }
    }
}

/// Runs blocking work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

/// One node's objects on disk. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct ObjectStore {
    root: PathBuf,
}

impl ObjectStore {
    /// Opens (creating if needed) the store at `root` and removes temp files
    /// left by uploads that were running when the process last stopped.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let store = Self { root };
        let (objects, tmp, tombstone) =
            (store.objects_dir(), store.tmp_dir(), store.tombstone_dir());
        blocking(move || {
            for dir in [&objects, &tmp, &tombstone] {
                fs::create_dir_all(dir).map_err(StoreError::io("create data directories"))?;
            }
            // The first acknowledged write must not depend on directory
            // entries that are still only in the page cache.
            if let Some(root) = objects.parent() {
                sync_dir(root)?;
            }
            let mut removed = 0usize;
            for entry in fs::read_dir(&tmp).map_err(StoreError::io("list tmp"))? {
                let entry = entry.map_err(StoreError::io("list tmp"))?;
                fs::remove_file(entry.path()).map_err(StoreError::io("remove stale temp file"))?;
                removed += 1;
            }
            if removed > 0 {
                tracing::info!(removed, "removed temp files of interrupted uploads");
            }
            Ok(())
        })
        .await?;
        Ok(store)
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the copy of `id` lives (whether or not it exists).
    pub fn object_path(&self, id: &ObjectId) -> PathBuf {
        self.objects_dir().join(id.shard()).join(id.as_str())
    }

    fn objects_dir(&self) -> PathBuf {
        self.root.join("objects")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn tombstone_dir(&self) -> PathBuf {
        self.root.join("tombstone")
    }

    /// Streams `body` into the copy of `id`, durably, and returns its size
    /// and hashes. Storing the same id again replaces the file atomically
    /// (idempotent for identical bytes, which is the only legitimate case:
    /// objects are immutable).
    ///
    /// If `body` yields an error, or this future is dropped before the body
    /// ends, the temp file is removed and nothing is stored.
    pub async fn write<S, E>(&self, id: &ObjectId, body: S) -> Result<PutReceipt, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let tmp = self
            .tmp_dir()
            .join(format!("{id}.{}", uuid::Uuid::new_v4().simple()));
        let dest = self.object_path(id);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        // The disk side runs on its own blocking thread for the whole upload
        // and aborts (removing its temp file) when `tx` is dropped without
        // `Finish` — which also covers this future being dropped.
        let writer = tokio::task::spawn_blocking(move || write_file(rx, &tmp, &dest));

        let mut body = std::pin::pin!(body);
        let mut body_error = None;
        // Network frames can be tiny; batching them keeps the per-message
        // and per-hash-call overhead low without copying big frames.
        let mut pending = BytesMut::new();
        let mut writer_alive = true;
        while let Some(item) = body.next().await {
            let chunk = match item {
                Ok(chunk) => chunk,
                Err(e) => {
                    body_error = Some(e.to_string());
                    break;
                }
            };
            let batch = if pending.is_empty() && chunk.len() >= BATCH {
                chunk
            } else {
                pending.extend_from_slice(&chunk);
                if pending.len() < BATCH {
                    continue;
                }
                pending.split().freeze()
            };
            if tx.send(WriteMsg::Data(batch)).await.is_err() {
                writer_alive = false; // the writer failed; its error is reported below
                break;
            }
        }
        if body_error.is_none() && writer_alive {
            if !pending.is_empty() {
                let _ = tx.send(WriteMsg::Data(pending.freeze())).await;
            }
            // Ignored on failure: the writer's own result says why.
            let _ = tx.send(WriteMsg::Finish).await;
        }
        drop(tx);
        let written = writer.await.map_err(|e| StoreError::Task(e.to_string()))?;
        match body_error {
            Some(e) => Err(StoreError::Body(e)),
            None => written,
        }
    }

    /// Opens the copy of `id` for reading.
    pub async fn open_object(&self, id: &ObjectId) -> Result<OpenObject, StoreError> {
        let path = self.object_path(id);
        // Inline: two path lookups, an fstat and the sums header, all
        // but always answered from the kernel's caches.
        open_copy(&path)
    }

    /// Size of the copy of `id`.
    pub async fn size(&self, id: &ObjectId) -> Result<u64, StoreError> {
        let path = self.object_path(id);
        blocking(move || {
            Ok(fs::metadata(&path)
                .map_err(StoreError::io("stat object"))?
                .len())
        })
        .await
    }

    /// Hashes the whole copy of `id` and compares it with `expected`.
    pub async fn verify(
        &self,
        id: &ObjectId,
        expected: blake3::Hash,
    ) -> Result<VerifyReport, StoreError> {
        let path = self.object_path(id);
        blocking(move || {
            let mut file = File::open(&path).map_err(StoreError::io("open object"))?;
            let len = file
                .metadata()
                .map_err(StoreError::io("stat object"))?
                .len();
            // Damaged sums make the copy unreadable, so they fail it too.
            let mut sums = match open_sums(&path).map_err(StoreError::io("open block checksums"))? {
                Some(f) => SumsReader::new(f, len).map(Some),
                None => Ok(None),
            };
            let block = match &sums {
                Ok(Some(r)) => r.block(),
                _ => sums::BLOCK,
            };
            let mut hasher = blake3::Hasher::new();
            let mut size = 0u64;
            let mut reader =
                ChunkReader::new(&mut file, 0, len).map_err(StoreError::io("read object"))?;
            while !reader.done() {
                let buf = reader
                    .next_chunk(chunk_len(block))
                    .map_err(StoreError::io("read object"))?;
                hasher.update(&buf);
                if let Ok(Some(r)) = &mut sums
                    && let Err(e) = r.check_blocks(size / block, &buf)
                {
                    sums = Err(e);
                }
                size += buf.len() as u64;
            }
            let actual = hasher.finalize();
            Ok(VerifyReport {
                matches: actual == expected && sums.is_ok(),
                size,
                blake3: actual.to_hex().to_string(),
            })
        })
        .await
    }

    /// Moves the copy of `id` to today's tombstone directory (kept for
    /// recovery; a separate sweeper may expire old days).
    pub async fn delete(&self, id: &ObjectId) -> Result<(), StoreError> {
        let src = self.object_path(id);
        let day_dir = self
            .tombstone_dir()
            .join(time::OffsetDateTime::now_utc().date().to_string());
        let tombstone_dir = self.tombstone_dir();
        let name = id.as_str().to_owned();
        blocking(move || {
            if !src.exists() {
                return Err(StoreError::NotFound);
            }
            ensure_dir(&day_dir, &tombstone_dir)?;
            let mut dest = day_dir.join(&name);
            if dest.exists() {
                // The same id deleted twice (re-put in between): keep both.
                dest = day_dir.join(format!("{name}.{}", uuid::Uuid::new_v4().simple()));
            }
            fs::rename(&src, &dest).map_err(StoreError::io("move object to tombstone"))?;
            // After the object: a crash in between leaves only an orphan
            // sums file, never an object without its sums.
            match fs::rename(sums::sums_path(&src), sums::sums_path(&dest)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(StoreError::io("move block checksums to tombstone")(e));
                }
                _ => {}
            }
            sync_dir(&day_dir)?;
            if let Some(shard) = src.parent() {
                sync_dir(shard)?;
            }
            Ok(())
        })
        .await
    }

    /// Removes tombstone days older than `keep_days` days before today
    /// (UTC) and returns how many day directories were removed. Directories
    /// whose names are not dates are left alone.
    pub async fn purge_tombstones(&self, keep_days: u32) -> Result<usize, StoreError> {
        let dir = self.tombstone_dir();
        let today = time::OffsetDateTime::now_utc().date();
        let cutoff = today.saturating_sub(time::Duration::days(i64::from(keep_days)));
        blocking(move || {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let mut removed = 0;
            for name in read_names(&dir)? {
                let Ok(day) = time::Date::parse(&name, &format) else {
                    continue;
                };
                if day < cutoff {
                    fs::remove_dir_all(dir.join(&name))
                        .map_err(StoreError::io("remove tombstone day"))?;
                    removed += 1;
                }
            }
            if removed > 0 {
                sync_dir(&dir)?;
            }
            Ok(removed)
        })
        .await
    }

    /// Ids stored here, ascending, strictly after `after`, at most `limit`.
    pub async fn list(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let objects = self.objects_dir();
        blocking(move || {
            let after = after.unwrap_or_default();
            let mut shards = read_names(&objects)?;
            shards.retain(|s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit()));
            shards.sort();
            let mut out = Vec::new();
            // Ids sort by their first two characters first, so shards can be
            // walked in order and those before the marker's shard skipped.
            for shard in shards
                .into_iter()
                .filter(|s| after.get(..2).is_none_or(|a| s.as_str() >= a))
            {
                if out.len() >= limit {
                    break;
                }
                let mut names = read_names(&objects.join(&shard))?;
                names.retain(|n| *n > after && ObjectId::parse(n).is_ok());
                names.sort();
                out.extend(names.into_iter().take(limit - out.len()));
            }
            Ok(out)
        })
        .await
    }

    /// Capacity of the file system holding the data directory.
    pub async fn capacity(&self) -> Result<Capacity, StoreError> {
        let root = self.root.clone();
        blocking(move || {
            let s = rustix::fs::statvfs(&root).map_err(|e| StoreError::io("statvfs")(e.into()))?;
            let unit = s.f_frsize.max(1);
            Ok(Capacity {
                total_bytes: s.f_blocks.saturating_mul(unit),
                used_bytes: s.f_blocks.saturating_sub(s.f_bfree).saturating_mul(unit),
                free_bytes: s.f_bavail.saturating_mul(unit),
            })
        })
        .await
    }
}

/// An open object file (with its block checksums when it has them) and its
/// size, ready to stream.
#[derive(Debug)]
pub struct OpenObject {
    file: File,
    sums: Option<SumsReader>,
    size: u64,
}

/// Opens the object file at `path` and its sums.
fn open_copy(path: &Path) -> Result<OpenObject, StoreError> {
    let file = File::open(path).map_err(StoreError::io("open object"))?;
    let size = file
        .metadata()
        .map_err(StoreError::io("stat object"))?
        .len();
    // Checked here, so a truncated or extended copy is refused
    // before any answer starts rather than in the middle of one.
    let sums = match open_sums(path).map_err(StoreError::io("open block checksums"))? {
        Some(f) => Some(SumsReader::new(f, size).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData {
                StoreError::Corrupt(e.to_string())
            } else {
                StoreError::io("read block checksums")(e)
            }
        })?),
        None => None,
    };
    Ok(OpenObject { file, sums, size })
}

/// Opens the sums file of the object file at `object`, if it has one.
fn open_sums(object: &Path) -> io::Result<Option<File>> {
    match File::open(sums::sums_path(object)) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl OpenObject {
    /// Size of the whole object.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Streams `range` (or the whole object), each block checked against
    /// its checksum before it is yielded; a bad block ends the stream with
    /// an [`io::ErrorKind::InvalidData`] error instead.
    ///
    /// A copy without block checksums is checked against `expected` when
    /// it is given and the whole object is read: a mismatch ends the stream
    /// with an error *instead of* its last chunk, so a consumer can never
    /// mistake corrupt data for a complete object. Its range reads are not
    /// checked.
    pub fn stream(
        self,
        range: Option<ByteRange>,
        expected: Option<blake3::Hash>,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
        let (start, len) = range.map_or((0, self.size), |r| (r.start, r.len));
        let expected = if range.is_none() { expected } else { None };
        if len <= INLINE_READ {
            let mut chunks = Vec::new();
            if let Err(e) = self.read(start, len, expected, &mut |c| {
                chunks.push(Ok(c));
                true
            }) {
                chunks.push(Err(e));
            }
            return futures::future::Either::Left(futures::stream::iter(chunks));
        }
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = self.read(start, len, expected, &mut |c| {
                tx.blocking_send(Ok(c)).is_ok()
            }) {
                // The receiver may be gone (client hung up); nothing to do then.
                let _ = tx.blocking_send(Err(e));
            }
        });
        futures::future::Either::Right(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }

    /// Reads `[start, start + len)`, checked, handing each chunk to `send`
    /// until it returns false (the reader is gone).
    fn read(
        self,
        start: u64,
        len: u64,
        expected: Option<blake3::Hash>,
        send: &mut dyn FnMut(Bytes) -> bool,
    ) -> io::Result<()> {
        match self.sums {
            Some(sums) => read_blocks(self.file, sums, self.size, start, len, send),
            None => read_file(self.file, start, len, expected, send),
        }
    }
}

enum WriteMsg {
    Data(Bytes),
    Finish,
}

/// Removes a temp file on drop unless disarmed.
struct TempGuard<'a>(Option<&'a Path>);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0
            && let Err(e) = fs::remove_file(path)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove temp file");
        }
    }
}

fn write_file(
    mut rx: mpsc::Receiver<WriteMsg>,
    tmp: &Path,
    dest: &Path,
) -> Result<PutReceipt, StoreError> {
    let file = File::create_new(tmp).map_err(StoreError::io("create temp file"))?;
    let mut guard = TempGuard(Some(tmp));
    let (tmp_sums, dest_sums) = (sums::sums_path(tmp), sums::sums_path(dest));
    let sums_file = File::create_new(&tmp_sums).map_err(StoreError::io("create temp file"))?;
    let mut sums_guard = TempGuard(Some(&tmp_sums));
    let mut sums = SumsWriter::new(sums_file).map_err(StoreError::io("write block checksums"))?;
    let mut out = BufWriter::with_capacity(IO_CHUNK, file);
    let mut md5 = Md5::new();
    let mut b3 = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        match rx.blocking_recv() {
            Some(WriteMsg::Data(chunk)) => {
                md5.update(&chunk);
                b3.update(&chunk);
                sums.update(&chunk)
                    .map_err(StoreError::io("write block checksums"))?;
                out.write_all(&chunk)
                    .map_err(StoreError::io("write temp file"))?;
                size += chunk.len() as u64;
            }
            Some(WriteMsg::Finish) => break,
            None => return Err(StoreError::Body("upload abandoned".into())),
        }
    }
    let file = out
        .into_inner()
        .map_err(|e| StoreError::io("write temp file")(e.into_error()))?;
    let sums = sums
        .finish()
        .map_err(StoreError::io("write block checksums"))?;
    // Both files' data on its way before either fsync waits: ext4 then
    // commits both in one journal transaction rather than one each.
    start_writeback(&file);
    start_writeback(&sums);
    file.sync_all().map_err(StoreError::io("fsync object"))?;
    drop(file);
    sums.sync_all()
        .map_err(StoreError::io("write block checksums"))?;
    drop(sums);
    let shard = dest
        .parent()
        .ok_or_else(|| StoreError::Task("object path has no parent".into()))?;
    let objects = shard.parent().unwrap_or(shard);
    ensure_dir(shard, objects)?;
    // Sums first: an object file is never in place without its sums (a
    // crash in between leaves an orphan sums file, replaced on a re-put).
    fs::rename(&tmp_sums, &dest_sums).map_err(StoreError::io("rename checksums into place"))?;
    sums_guard.0 = None;
    fs::rename(tmp, dest).map_err(StoreError::io("rename object into place"))?;
    guard.0 = None;
    sync_dir(shard)?;
    Ok(PutReceipt {
        size,
        md5: base64::engine::general_purpose::STANDARD.encode(md5.finalize()),
        blake3: b3.finalize().to_hex().to_string(),
    })
}

/// The read size for a copy with `block`-byte checksum blocks: whole
/// blocks, about [`IO_CHUNK`].
fn chunk_len(block: u64) -> usize {
    ((IO_CHUNK as u64).max(block) / block * block) as usize
}

/// Sequential reads of `[start, end)` of an open file, with the disk asked
/// for the bytes ahead of them early.
struct ChunkReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a mut File, start: u64, end: u64) -> io::Result<Self> {
        file.seek(SeekFrom::Start(start))?;
        let reader = Self {
            file,
            pos: start,
            end,
        };
        // Keep the disk busy while this thread checks and hands over
        // chunks: sequential read-ahead, plus the bytes READ_AHEAD past each
        // read requested early (a cold read of a large object otherwise
        // waits on the disk between chunks).
        reader.advise(start, end - start, rustix::fs::Advice::Sequential);
        reader.advise(start, READ_AHEAD, rustix::fs::Advice::WillNeed);
        Ok(reader)
    }

    /// Advice only: errors are ignored.
    fn advise(&self, from: u64, n: u64, advice: rustix::fs::Advice) {
        let n = n.min(self.end.saturating_sub(from));
        if let Some(n) = std::num::NonZeroU64::new(n) {
            let _ = rustix::fs::fadvise(self.file, from, Some(n), advice);
        }
    }

    /// The next `want` bytes (at most what is left before `end`).
    fn next_chunk(&mut self, want: usize) -> io::Result<Vec<u8>> {
        let want = (self.end - self.pos).min(want as u64) as usize;
        // Reads go straight into the chunk's spare capacity (exactly `want`
        // bytes, as `Vec::with_capacity` guarantees): no memset of every
        // byte served, and one large read per chunk.
        let mut buf = Vec::with_capacity(want);
        while buf.len() < want {
            match rustix::io::read(self.file, rustix::buffer::spare_capacity(&mut buf)) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "object file shorter than its size",
                    ));
                }
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += want as u64;
        self.advise(
            self.pos + READ_AHEAD - want as u64,
            want as u64,
            rustix::fs::Advice::WillNeed,
        );
        Ok(buf)
    }

    fn done(&self) -> bool {
        self.pos >= self.end
    }
}

/// Streams `[start, start + len)` of an object file with block checksums:
/// whole blocks are read (so a range read reads at most one block more at
/// each end) and each is checked before any of its bytes are sent.
fn read_blocks(
    mut file: File,
    mut sums: SumsReader,
    size: u64,
    start: u64,
    len: u64,
    send: &mut dyn FnMut(Bytes) -> bool,
) -> Result<(), io::Error> {
    let block = sums.block();
    let end = start.saturating_add(len).min(size);
    let first = start / block;
    let stop = end.div_ceil(block).saturating_mul(block).min(size);
    let mut reader = ChunkReader::new(&mut file, first * block, stop)?;
    while !reader.done() {
        let at = reader.pos;
        let buf = reader.next_chunk(chunk_len(block))?;
        sums.check_blocks(at / block, &buf)?;
        let from = start.saturating_sub(at) as usize;
        let to = (end.min(at + buf.len() as u64) - at) as usize;
        let chunk = Bytes::from(buf).slice(from..to);
        if !send(chunk) {
            return Ok(()); // reader gone
        }
    }
    Ok(())
}

/// Streams `[start, start + len)` of an object file without block
/// checksums (see [`OpenObject::stream`]).
fn read_file(
    mut file: File,
    start: u64,
    len: u64,
    expected: Option<blake3::Hash>,
    send: &mut dyn FnMut(Bytes) -> bool,
) -> Result<(), io::Error> {
    let mut reader = ChunkReader::new(&mut file, start, start.saturating_add(len))?;
    let mut hasher = expected.map(|_| blake3::Hasher::new());
    let mut held: Option<Bytes> = None;
    while !reader.done() {
        let chunk = Bytes::from(reader.next_chunk(IO_CHUNK)?);
        let to_send = match &mut hasher {
            Some(h) => {
                h.update(&chunk);
                held.replace(chunk)
            }
            None => Some(chunk),
        };
        if let Some(chunk) = to_send
            && !send(chunk)
        {
            return Ok(()); // reader gone
        }
    }
    if let (Some(h), Some(expected)) = (hasher, expected) {
        let actual = h.finalize();
        if actual != expected {
            tracing::error!(%actual, %expected, "object file fails its blake3 check");
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "object fails its blake3 check",
            ));
        }
        if let Some(chunk) = held {
            send(chunk);
        }
    }
    Ok(())
}

/// Creates `dir` if missing, fsyncing `parent` so the new entry is durable.
fn ensure_dir(dir: &Path, parent: &Path) -> Result<(), StoreError> {
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::io("create directory")(e)),
    }
}

/// Starts writing `file`'s dirty pages back without waiting (Linux's
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`). Only a hint: the fsync that
/// follows is what makes the data durable, so a failure here is ignored.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call (`file`
    // is borrowed); offset 0 with length 0 means "to the end of the file",
    // and the call reads or writes no memory of ours.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File) {}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory"))
}

fn read_names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(StoreError::io("list directory"))? {
        let entry = entry.map_err(StoreError::io("list directory"))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    fn id(s: &str) -> ObjectId {
        ObjectId::parse(s).unwrap()
    }

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, io::Error>> {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    async fn read_all(
        obj: OpenObject,
        range: Option<ByteRange>,
        expected: Option<blake3::Hash>,
    ) -> io::Result<Vec<u8>> {
        let parts: Vec<Bytes> = obj.stream(range, expected).try_collect().await?;
        Ok(parts.concat())
    }

    #[tokio::test]
    async fn write_read_verify_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).await.unwrap();
        let oid = id("ab12");
        let receipt = store
            .write(&oid, chunks(&[b"hello ", b"", b"world"]))
            .await
            .unwrap();
        assert_eq!(receipt.size, 11);
        assert_eq!(receipt.md5, "XrY7u+Ae7tCTyyK7j1rNww==");
        assert_eq!(
            receipt.blake3,
            blake3::hash(b"hello world").to_hex().as_str()
        );
        assert_eq!(
            fs::read(dir.path().join("objects/ab/ab12")).unwrap(),
            b"hello world"
        );
        assert!(
            fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );

        let good = blake3::hash(b"hello world");
        assert_eq!(
            read_all(store.open_object(&oid).await.unwrap(), None, Some(good))
                .await
                .unwrap(),
            b"hello world"
        );
        let range = Some(ByteRange { start: 6, len: 5 });
        assert_eq!(
            read_all(store.open_object(&oid).await.unwrap(), range, None)
                .await
                .unwrap(),
            b"world"
        );
        assert!(store.verify(&oid, good).await.unwrap().matches);
        assert!(
            !store
                .verify(&oid, blake3::hash(b"x"))
                .await
                .unwrap()
                .matches
        );

        store.delete(&oid).await.unwrap();
        assert!(matches!(
            store.open_object(&oid).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete(&oid).await,
            Err(StoreError::NotFound)
        ));
        let day = time::OffsetDateTime::now_utc().date().to_string();
        let tomb = dir.path().join("tombstone").join(day);
        assert_eq!(fs::read(tomb.join("ab12")).unwrap(), b"hello world");
        assert!(tomb.join("ab12.sums").exists());
        assert!(!dir.path().join("objects/ab/ab12.sums").exists());
    }

    #[tokio::test]
    async fn failed_body_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).await.unwrap();
        let body = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"partial")),
            Err(io::Error::other("client went away")),
        ]);
        let err = store.write(&id("cd34"), body).await.unwrap_err();
        assert!(matches!(err, StoreError::Body(_)), "{err}");
        assert!(!store.object_path(&id("cd34")).exists());
        assert!(
            fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    /// Writes `data` as `oid`, then replaces the stored bytes by `corrupt`
    /// (a bit rot the store did not see); returns the recorded blake3.
    async fn stored_then_corrupted(
        store: &ObjectStore,
        oid: &ObjectId,
        data: &[u8],
        corrupt: &[u8],
    ) -> blake3::Hash {
        let receipt = store
            .write(
                oid,
                futures::stream::iter([Ok::<_, io::Error>(Bytes::copy_from_slice(data))]),
            )
            .await
            .unwrap();
        fs::write(store.object_path(oid), corrupt).unwrap();
        blake3::Hash::from_hex(&receipt.blake3).unwrap()
    }

    async fn items(
        store: &ObjectStore,
        oid: &ObjectId,
        range: Option<ByteRange>,
        expected: Option<blake3::Hash>,
    ) -> Vec<io::Result<Bytes>> {
        let obj = store.open_object(oid).await.unwrap();
        obj.stream(range, expected).collect().await
    }

    #[tokio::test]
    async fn a_bad_block_is_never_sent_and_other_blocks_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).await.unwrap();
        let oid = id("ef57");
        let block = sums::BLOCK as usize;
        let data: Vec<u8> = (0..IO_CHUNK * 3 + 10).map(|i| (i % 241) as u8).collect();
        let bad_at = IO_CHUNK + block + 17;
        let mut corrupt = data.clone();
        corrupt[bad_at] ^= 0x80;
        let expected = stored_then_corrupted(&store, &oid, &data, &corrupt).await;

        // Whole reads, with or without the hash: exactly the good bytes
        // before the bad block's chunk, then an error.
        for hash in [Some(expected), None] {
            let got = items(&store, &oid, None, hash).await;
            let (ok, err): (Vec<_>, Vec<_>) = got.into_iter().partition(|r| r.is_ok());
            let sent: Vec<u8> = ok.into_iter().flat_map(|b| b.unwrap()).collect();
            assert_eq!(err.len(), 1);
            assert_eq!(
                err[0].as_ref().unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
            assert!(sent.len() <= bad_at - bad_at % block);
            assert!(sent == data[..sent.len()]);
        }
        // A range inside the bad block fails; ranges around it read fine.
        let r = |start: usize, len: usize| {
            Some(ByteRange {
                start: start as u64,
                len: len as u64,
            })
        };
        let bad = items(&store, &oid, r(bad_at, 1), None).await;
        assert!(bad.iter().all(|i| i.is_err()));
        let first = bad_at - bad_at % block;
        for (start, len) in [
            (0, first),
            (first + block, data.len() - first - block),
            (3, 5),
        ] {
            let got = read_all(store.open_object(&oid).await.unwrap(), r(start, len), None)
                .await
                .unwrap();
            assert!(got == data[start..start + len], "range {start}+{len}");
        }
        assert!(!store.verify(&oid, expected).await.unwrap().matches);
    }

    /// Reads of at most one block are done inline, not streamed from a
    /// blocking thread: the same checks hold there.
    #[tokio::test]
    async fn small_reads_done_inline_are_checked_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).await.unwrap();
        let oid = id("ab12");
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let mut corrupt = data.clone();
        corrupt[1000] ^= 1;
        let expected = stored_then_corrupted(&store, &oid, &data, &data).await;
        let got = read_all(store.open_object(&oid).await.unwrap(), None, Some(expected))
            .await
            .unwrap();
        assert!(got == data);

        fs::write(store.object_path(&oid), &corrupt).unwrap();
        for hash in [Some(expected), None] {
            let got = items(&store, &oid, None, hash).await;
            assert_eq!(got.len(), 1, "one error, no bytes");
            assert_eq!(
                got[0].as_ref().unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
        }
        // Without block sums: the hash withholds the only chunk.
        fs::remove_file(sums::sums_path(&store.object_path(&oid))).unwrap();
        let got = items(&store, &oid, None, Some(expected)).await;
        assert!(got.iter().all(|i| i.is_err()), "no byte of a bad copy");
    }

    #[tokio::test]
    async fn copies_without_block_sums_are_checked_by_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).await.unwrap();
        let oid = id("ef56");
        let data = vec![7u8; IO_CHUNK * 2 + 10];
        let mut corrupt = data.clone();
        corrupt[5] = 8;
        let expected = stored_then_corrupted(&store, &oid, &data, &corrupt).await;
        fs::remove_file(sums::sums_path(&store.object_path(&oid))).unwrap();

        let items = items(&store, &oid, None, Some(expected)).await;
        let ok_bytes: usize = items
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|b| b.len())
            .sum();
        assert!(items.last().unwrap().is_err());
        assert!(ok_bytes < corrupt.len(), "the last chunk must be withheld");
        // Without verification the same bytes are served as they are.
        assert_eq!(
            read_all(store.open_object(&oid).await.unwrap(), None, None)
                .await
                .unwrap(),
            corrupt
        );
        assert!(!store.verify(&oid, expected).await.unwrap().matches);
        fs::write(store.object_path(&oid), &data).unwrap();
        assert!(store.verify(&oid, expected).await.unwrap().matches);
    }

    #[tokio::test]
    async fn truncated_or_extended_copies_are_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).await.unwrap();
        let oid = id("ef58");
        let data = vec![3u8; IO_CHUNK + 5];
        let mut longer = data.clone();
        longer.extend_from_slice(&[0; 70_000]);
        for corrupt in [&data[..IO_CHUNK - 1], &longer[..]] {
            let expected = stored_then_corrupted(&store, &oid, &data, corrupt).await;
            let err = store.open_object(&oid).await.unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
            assert!(!store.verify(&oid, expected).await.unwrap().matches);
            store.delete(&oid).await.unwrap();
        }
    }

    #[tokio::test]
    async fn list_pages_in_order_and_open_cleans_tmp() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("tmp/ab.leftover"), b"x").unwrap();
        let store = ObjectStore::open(dir.path()).await.unwrap();
        assert!(
            fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
        for name in ["ff01", "0a99", "0a10", "b3"] {
            store.write(&id(name), chunks(&[b"x"])).await.unwrap();
        }
        assert_eq!(
            store.list(None, 100).await.unwrap(),
            ["0a10", "0a99", "b3", "ff01"]
        );
        assert_eq!(store.list(None, 2).await.unwrap(), ["0a10", "0a99"]);
        assert_eq!(
            store.list(Some("0a99".into()), 2).await.unwrap(),
            ["b3", "ff01"]
        );
        assert!(store.list(Some("ff01".into()), 2).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn purge_removes_only_old_tombstone_days() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).await.unwrap();
        store.write(&id("aa"), chunks(&[b"x"])).await.unwrap();
        store.delete(&id("aa")).await.unwrap();
        let old = dir.path().join("tombstone/2001-02-03");
        fs::create_dir_all(&old).unwrap();
        fs::write(old.join("bb"), b"y").unwrap();
        fs::create_dir_all(dir.path().join("tombstone/not-a-date")).unwrap();
        assert_eq!(store.purge_tombstones(7).await.unwrap(), 1);
        assert!(!old.exists());
        assert!(dir.path().join("tombstone/not-a-date").exists());
        let today = time::OffsetDateTime::now_utc().date().to_string();
        assert!(
            dir.path()
                .join("tombstone")
                .join(&today)
                .join("aa")
                .exists()
        );
        // keep_days = 0 keeps today too (only days before the cutoff go).
        assert_eq!(store.purge_tombstones(0).await.unwrap(), 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

        /// Whatever the framing of the upload, the stored bytes, the
        /// receipt and every range read agree with the original data.
        #[test]
        fn any_framing_round_trips(
            len in 0usize..(IO_CHUNK * 2 + 1000),
            seed in proptest::prelude::any::<u64>(),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..40),
            range in (proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let data: Vec<u8> = (0..len as u64).map(|i| (i.wrapping_mul(seed | 1) >> 13) as u8).collect();
            let mut cut_at: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
            cut_at.extend([0, len]);
            cut_at.sort_unstable();
            let parts: Vec<Result<Bytes, io::Error>> = cut_at
                .windows(2)
                .map(|w| Ok(Bytes::copy_from_slice(&data[w[0]..w[1]])))
                .collect();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let store = ObjectStore::open(dir.path()).await.unwrap();
                let oid = id("1234");
                let r = store.write(&oid, futures::stream::iter(parts)).await.unwrap();
                assert_eq!(r.size, len as u64);
                assert_eq!(r.blake3, blake3::hash(&data).to_hex().as_str());
                let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&data));
                assert_eq!(r.md5, md5);
                let expected = Some(blake3::hash(&data));
                let whole = read_all(store.open_object(&oid).await.unwrap(), None, expected).await.unwrap();
                assert!(whole == data, "whole read differs");
                if len > 0 {
                    let start = range.0.index(len);
                    let rlen = range.1.index(len - start) + 1;
                    let r = Some(ByteRange { start: start as u64, len: rlen as u64 });
                    let part = read_all(store.open_object(&oid).await.unwrap(), r, None).await.unwrap();
                    assert!(part == data[start..start + rlen], "range read differs");
                    // The same through the path for copies without sums.
                    fs::remove_file(sums::sums_path(&store.object_path(&oid))).unwrap();
                    let whole = read_all(store.open_object(&oid).await.unwrap(), None, expected).await.unwrap();
                    assert!(whole == data, "whole read without sums differs");
                    let part = read_all(store.open_object(&oid).await.unwrap(), r, None).await.unwrap();
                    assert!(part == data[start..start + rlen], "range read without sums differs");
                }
            });
        }
    }

    #[tokio::test]
    async fn capacity_is_plausible() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path()).await.unwrap();
        let c = store.capacity().await.unwrap();
        assert!(
            c.total_bytes > 0 && c.free_bytes <= c.total_bytes && c.used_bytes <= c.total_bytes
        );
    }
}
